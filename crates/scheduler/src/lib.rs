//! krate's scheduler (kube-scheduler). Not written yet.

use kube::Client;

/// Schedules pending pods while this process holds the `kube-scheduler`
/// Lease, forever.
pub async fn run(client: Client, identity: String) {
    let _ = (client, identity);
    std::future::pending::<()>().await
}
