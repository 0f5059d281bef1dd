//! krate's scheduler (kube-scheduler): a pure algorithm over a snapshot of
//! nodes and pods ([`algorithm`], with the filters and scores of upstream's
//! default profile in their own modules), the cache and queue that feed it,
//! and a thin driver that watches the API and binds pods
//! through `pods/binding`.

pub mod algorithm;
pub mod bench;
pub mod cache;
mod driver;
pub mod filters;
pub mod interpod;
pub mod preemption;
pub mod queue;
pub mod resources;
pub mod scores;
pub mod snapshot;
pub mod spread;
pub mod volumes;

pub use driver::{lead, lead_with, run_with, SCHEDULER_NAME};

use kube::Client;

/// Schedules pending pods while this process holds the `kube-scheduler`
/// Lease, forever.
pub async fn run(client: Client, identity: String) {
    driver::run(client, identity).await
}
