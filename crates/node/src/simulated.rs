//! Simulated nodes. Not written yet.

use kube::Client;

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// How many nodes to register.
    pub count: usize,
}

/// Registers the simulated nodes and runs their pods, forever.
pub async fn run(client: Client, options: Options) {
    let _ = (client, options);
    std::future::pending::<()>().await
}
