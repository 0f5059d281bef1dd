//! krate's controllers, the counterpart of kube-controller-manager. Each
//! controller is a module with a level-triggered `sync` of one key: it reads
//! the world from shared informers and fixes it through the API, whatever
//! event woke it. The framework they share:
//! - [`informer`]: one watch-backed cache per resource type, shared by every
//!   controller, with change handlers that enqueue keys;
//! - [`queue`]: client-go's work queue (deduplicated keys, never two workers
//!   on one key, per-key exponential back-off);
//! - [`runner`]: the worker loop that drives a [`runner::Reconciler`];
//! - [`events`]: core/v1 Events as upstream's recorder writes them;
//! - [`expectations`]: creations/deletions in flight, so a controller does
//!   not act twice before its informer has seen its own writes;
//! - [`leader`]: leader election through a coordination.k8s.io Lease;
//! - [`owner`]: controller references, selectors, adoption and release;
//! - [`pod`]: pod predicates (active, ready, available).
//!
//! Each controller module has `start(&Context, &mut JoinSet<()>)`: it takes
//! the informers it needs, registers handlers that enqueue keys, and spawns
//! its workers into the set, most through [`runner::spawn_when_synced`]
//! (workers start once the informers have listed). Dropping the set stops
//! them all.

pub mod events;
pub mod expectations;
pub mod history;
pub mod informer;
pub mod leader;
pub mod owner;
pub mod pod;
pub mod queue;
pub mod runner;

pub mod certificates;
pub mod clusterrole_aggregation;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod endpointslice_mirroring;
pub mod garbage_collector;
pub mod horizontal;
pub mod job;
pub mod node_ipam;
pub mod node_lifecycle;
pub mod persistent_volume;
pub mod podgc;
pub mod replicaset;
pub mod resource_quota;
pub mod serviceaccount;
pub mod statefulset;
pub mod ttl_after_finished;

use std::time::Duration;

use kube::Client;
use tokio::task::JoinSet;

use crate::events::Recorder;
use crate::informer::Informers;

/// Settings of the controllers, with upstream's defaults.
#[derive(Clone, Debug)]
pub struct Options {
    /// A node whose status and Lease have not been renewed for this long is
    /// marked Unknown (`--node-monitor-grace-period`, 40 s).
    pub node_monitor_grace_period: Duration,
    /// Terminated pods kept before the pod GC deletes the oldest
    /// (`--terminated-pod-gc-threshold`, 12,500).
    pub terminated_pod_gc_threshold: usize,
    /// How long the pod GC waits before deleting the pods of a node that
    /// is gone (upstream's fixed 40 s quarantine; shorter in tests).
    pub pod_gc_orphan_quarantine: Duration,
    /// Where the `krate.io/local-path` provisioner makes volume directories.
    pub local_path_root: std::path::PathBuf,
    /// The cluster CA (PEM), published as `kube-root-ca.crt` in every namespace.
    pub root_ca_pem: String,
    /// The range nodes' pod CIDRs are allocated from (`--cluster-cidr`);
    /// `None`: pod CIDRs are not allocated.
    pub cluster_cidr: Option<String>,
    /// The prefix length of each node's pod CIDR (`--node-cidr-mask-size`).
    pub node_cidr_mask_size: u8,
    /// Signs Approved CertificateSigningRequests (`None`: no CSR signer).
    pub csr_authority: Option<std::sync::Arc<dyn certificates::Authority>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            node_monitor_grace_period: Duration::from_secs(40),
            terminated_pod_gc_threshold: 12_500,
            pod_gc_orphan_quarantine: Duration::from_secs(40),
            local_path_root: "/var/lib/krate/storage".into(),
            root_ca_pem: String::new(),
            cluster_cidr: None,
            node_cidr_mask_size: 24,
            csr_authority: None,
        }
    }
}

/// What every controller gets: the API client, the shared informers and the
/// options.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    pub informers: Informers,
    pub options: Options,
}

impl Context {
    pub fn new(client: Client, options: Options) -> Context {
        Context::with_informers(Informers::new(client.clone()), options)
    }

    /// A context reading from `informers` and writing with its client.
    pub fn with_informers(informers: Informers, options: Options) -> Context {
        Context {
            client: informers.client().clone(),
            informers,
            options,
        }
    }

    /// An event recorder for `component` (e.g. `replicaset-controller`).
    pub fn recorder(&self, component: &'static str) -> Recorder {
        Recorder::new(self.client.clone(), component)
    }
}

/// Starts every controller; they run until the returned set is dropped.
pub fn start_all(ctx: &Context) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    replicaset::start(ctx, &mut tasks);
    deployment::start(ctx, &mut tasks);
    statefulset::start(ctx, &mut tasks);
    daemonset::start(ctx, &mut tasks);
    job::start(ctx, &mut tasks);
    cronjob::start(ctx, &mut tasks);
    ttl_after_finished::start(ctx, &mut tasks);
    garbage_collector::start(ctx, &mut tasks);
    serviceaccount::start(ctx, &mut tasks);
    endpoints::start(ctx, &mut tasks);
    endpointslice::start(ctx, &mut tasks);
    endpointslice_mirroring::start(ctx, &mut tasks);
    node_lifecycle::start(ctx, &mut tasks);
    node_ipam::start(ctx, &mut tasks);
    podgc::start(ctx, &mut tasks);
    disruption::start(ctx, &mut tasks);
    resource_quota::start(ctx, &mut tasks);
    persistent_volume::start(ctx, &mut tasks);
    horizontal::start(ctx, &mut tasks);
    certificates::start(ctx, &mut tasks);
    clusterrole_aggregation::start(ctx, &mut tasks);
    tasks
}

/// Runs the controllers while this process holds the
/// `kube-controller-manager` Lease (leader election), forever.
pub async fn run(client: Client, options: Options, identity: String) {
    run_with(Informers::new(client), options, identity).await
}

/// [`run`] reading from `informers` (shared with other components of the
/// process) and writing with their client.
pub async fn run_with(informers: Informers, options: Options, identity: String) {
    let client = informers.client().clone();
    let election = leader::LeaderElection::new("kube-controller-manager", &identity);
    election
        .run(client.clone(), || {
            // Each term registers its handlers through its own handle, so
            // that they stop with the term.
            let ctx =
                Context::with_informers(informers.with_client(client.clone()), options.clone());
            async move {
                let mut tasks = start_all(&ctx);
                while tasks.join_next().await.is_some() {}
                // Every controller ended (none should): hold leadership
                // without doing anything rather than spin.
                std::future::pending::<()>().await
            }
        })
        .await
}
