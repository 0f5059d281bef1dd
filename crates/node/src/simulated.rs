//! Simulated nodes, as KWOK does them: nodes without machines or containers
//! that register, report Ready, renew their Leases and move the pods bound
//! to them through the kubelet's statuses, so controllers and the scheduler
//! run (and are measured) at scale without containers.
//!
//! What a simulated node does (the contract the rest of krate relies on):
//! - registers `sim-node-<i>` (created, or brought up to date after a
//!   restart) with the kubelet's labels plus `type=simulated`, the
//!   configured capacity, an InternalIP and a pod CIDR (see [`nodes`]) and
//!   the kubelet's four conditions;
//! - renews its Lease in `kube-node-lease` every 10 s and reports its
//!   conditions every 5 minutes, or at once when someone else changed them
//!   (the node lifecycle controller marking it Unknown), as a kubelet does;
//! - runs the pods bound to it: Running and Ready at once with container
//!   statuses, a pod IP from its CIDR, conditions; annotations make them
//!   exit, fail, restart or stay unready (see [`pods`]); a pod being
//!   deleted has its containers stopped and is deleted (grace period 0);
//! - with the annotation `sim.krate.io/stopped: "true"` the node stops
//!   heartbeats and pod updates, as if its machine died, until it is
//!   removed.
//!
//! Cost at scale: one task drives every node's heartbeats, spread over the
//! period in 100 ms batches with at most [`HEARTBEAT_CONCURRENCY`] requests
//! in flight; pods are synced by a fixed pool of workers (`workers`, one
//! request in flight each) from one shared pod informer, and pods that
//! change by themselves later (a container exits) wait in one timer list,
//! not in a task each. Kubelet events (Pulled, Created, Started, Killing,
//! BackOff) are recorded up to [`EVENTS_UP_TO_NODES`] nodes by default and
//! skipped above, where they would double the API traffic.

pub mod ipam;
pub mod nodes;
pub mod pods;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use controllers::events::{Recorder, NORMAL, WARNING};
use controllers::informer::{Change, Informer, Informers, Key};
use controllers::queue::WorkQueue;
use controllers::runner::{is_conflict, is_not_found};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Client, Resource};
use serde_json::json;
use tokio::sync::Notify;
use tokio::time::Instant;

use self::ipam::Ipam;

/// Kubelet events are recorded by default up to this many nodes.
pub const EVENTS_UP_TO_NODES: usize = 100;
/// Heartbeat requests (Lease renewals, node status) in flight at most.
pub const HEARTBEAT_CONCURRENCY: usize = 32;
const LEASE_NAMESPACE: &str = "kube-node-lease";
const LEASE_DURATION_SECONDS: i32 = 40;
const FIELD_MANAGER: &str = "kubelet";

#[derive(Clone, Debug)]
pub struct Options {
    /// How many nodes to register.
    pub count: usize,
    /// Capacity (and allocatable) of each node, e.g. `cpu` → `32`.
    pub capacity: BTreeMap<String, String>,
    /// Record kubelet events; `None`: only up to [`EVENTS_UP_TO_NODES`] nodes.
    pub events: Option<bool>,
    /// How often each node renews its Lease (the kubelet's 10 s).
    pub lease_period: Duration,
    /// How often a node reports unchanged conditions (the kubelet's 5 min).
    pub status_period: Duration,
    /// Pod status writes in flight at most.
    pub workers: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            count: 0,
            capacity: nodes::default_capacity(),
            events: None,
            lease_period: Duration::from_secs(10),
            status_period: Duration::from_secs(300),
            workers: 64,
        }
    }
}

/// Registers the simulated nodes and runs their pods, forever.
pub async fn run(client: Client, options: Options) {
    run_with(Informers::new(client), options).await
}

/// [`run`] reading from `informers` (shared with other components of the
/// process) and writing with their client.
pub async fn run_with(informers: Informers, options: Options) {
    let count = options.count.min(nodes::MAX_NODES);
    if count < options.count {
        tracing::warn!(
            requested = options.count,
            count,
            "too many simulated nodes for their address scheme; registering fewer"
        );
    }
    if count == 0 {
        return std::future::pending().await;
    }
    let sim = Arc::new(Sim::new(informers, options, count));
    sim.register_all().await;
    sim.pods.wait_synced().await;
    sim.reserve_existing_addresses();
    sim.watch();

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(sim.clone().drive_timers());
    tasks.spawn(sim.clone().heartbeat());
    for _ in 0..sim.workers.max(1) {
        tasks.spawn(sim.clone().pod_worker());
    }
    tracing::info!(count, "simulated nodes running");
    while tasks.join_next().await.is_some() {}
    std::future::pending().await
}

/// One node's state, shared by the heartbeat, the handlers and the workers.
#[derive(Default)]
struct Slot {
    uid: Mutex<Option<String>>,
    lease: Mutex<Option<Lease>>,
    /// The node's pod CIDR network (a /24), as registered.
    network: Mutex<Option<Ipv4Addr>>,
    stopped: AtomicBool,
    /// Deleted by someone: no more heartbeats or pods until a restart.
    gone: AtomicBool,
    status_due: AtomicBool,
    lease_due: AtomicBool,
}

struct Sim {
    client: Client,
    count: usize,
    capacity: BTreeMap<String, String>,
    lease_period: Duration,
    status_period: Duration,
    workers: usize,
    _informers: Informers,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    slots: Vec<Slot>,
    ipam: Mutex<Ipam>,
    queue: WorkQueue<Key>,
    timers: Timers,
    heartbeat_wake: Notify,
    recorders: Option<Vec<Recorder>>,
}

const BY_NODE: &str = "spec.nodeName";

impl Sim {
    fn new(informers: Informers, options: Options, count: usize) -> Sim {
        let client = informers.client().clone();
        let pods = informers.get::<Pod>();
        pods.add_index(BY_NODE, |p: &Pod| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .into_iter()
                .collect()
        });
        let nodes = informers.get::<Node>();
        let events = options.events.unwrap_or(count <= EVENTS_UP_TO_NODES);
        let recorders = events.then(|| {
            (0..count)
                .map(|i| Recorder::new(client.clone(), "kubelet").with_host(nodes::name(i)))
                .collect()
        });
        Sim {
            count,
            capacity: options.capacity,
            lease_period: options.lease_period,
            status_period: options.status_period,
            workers: options.workers,
            _informers: informers,
            pods,
            nodes,
            slots: (0..count).map(|_| Slot::default()).collect(),
            ipam: Mutex::new(Ipam::default()),
            queue: WorkQueue::new(),
            timers: Timers::default(),
            heartbeat_wake: Notify::new(),
            recorders,
            client,
        }
    }

    // ---- registration ----

    async fn register_all(&self) {
        futures::stream::iter(0..self.count)
            .for_each_concurrent(HEARTBEAT_CONCURRENCY, |i| async move {
                let mut delay = Duration::from_millis(200);
                while let Err(e) = self.register(i).await {
                    tracing::warn!(node = %nodes::name(i), error = %e, "registering a simulated node; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            })
            .await;
        let networks: Vec<Ipv4Addr> = (0..self.count)
            .map(|i| {
                self.slots[i]
                    .network
                    .lock()
                    .unwrap()
                    .unwrap_or_else(|| nodes::pod_cidr(i, self.count))
            })
            .collect();
        *self.ipam.lock().unwrap() = Ipam::new(networks);
        tracing::info!(count = self.count, "simulated nodes registered");
    }

    /// Creates node `i`, or brings the existing one up to date, reports its
    /// status and creates (or renews) its Lease.
    async fn register(&self, i: usize) -> Result<(), kube::Error> {
        let api: Api<Node> = Api::all(self.client.clone());
        let name = nodes::name(i);
        let now = now();
        let desired = nodes::object(i, self.count, &self.capacity, now);
        let (node, fresh) = match api.create(&PostParams::default(), &desired).await {
            Ok(node) => (node, true),
            Err(e) if is_conflict(&e) => {
                // Registered by an earlier run: labels and annotations are
                // ours to set; a pod CIDR once set stays.
                let existing = api.get(&name).await?;
                let mut patch = json!({ "metadata": {
                    "labels": nodes::labels(i),
                    "annotations": nodes::annotations(),
                }});
                if existing
                    .spec
                    .as_ref()
                    .and_then(|s| s.pod_cidr.as_ref())
                    .is_none()
                {
                    patch["spec"] = json!(desired.spec);
                }
                let node = api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                (node, false)
            }
            Err(e) => return Err(e),
        };
        let slot = &self.slots[i];
        *slot.uid.lock().unwrap() = node.metadata.uid.clone();
        *slot.network.lock().unwrap() = node
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidr.as_deref())
            .and_then(|c| c.split('/').next())
            .and_then(|ip| ip.parse().ok());
        let stopped = is_stopped(&node);
        slot.stopped.store(stopped, Ordering::SeqCst);
        if stopped {
            // A dead machine reports nothing, after a restart too.
            return Ok(());
        }
        let ready_before = fresh || node_ready(&node);
        if !fresh {
            // The status a node created with is kept; an existing node
            // reports afresh.
            let old = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            let status = nodes::status(i, &self.capacity, &old, now);
            api.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "status": status })),
            )
            .await?;
        }
        self.renew_lease(i, fresh).await?;
        self.record_node_start(i, fresh || !ready_before);
        Ok(())
    }

    /// The events a kubelet records about its node when it starts.
    fn record_node_start(&self, i: usize, became_ready: bool) {
        let Some(recorder) = self.recorders.as_ref().map(|r| &r[i]) else {
            return;
        };
        let name = nodes::name(i);
        let reference = node_ref(&name);
        recorder.record(
            reference.clone(),
            NORMAL,
            "Starting",
            "Starting kubelet.".into(),
        );
        for reason in [
            "NodeHasSufficientMemory",
            "NodeHasNoDiskPressure",
            "NodeHasSufficientPID",
        ] {
            recorder.record(
                reference.clone(),
                NORMAL,
                reason,
                format!("Node {name} status is now: {reason}"),
            );
        }
        recorder.record(
            reference.clone(),
            NORMAL,
            "NodeAllocatableEnforced",
            "Updated Node Allocatable limit across pods".into(),
        );
        if became_ready {
            self.record_node_ready(i);
        }
    }

    fn record_node_ready(&self, i: usize) {
        if let Some(recorder) = self.recorders.as_ref().map(|r| &r[i]) {
            let name = nodes::name(i);
            recorder.record(
                node_ref(&name),
                NORMAL,
                "NodeReady",
                format!("Node {name} status is now: NodeReady"),
            );
        }
    }

    /// Pods kept their addresses across a restart: hold them again.
    fn reserve_existing_addresses(&self) {
        let mut ipam = self.ipam.lock().unwrap();
        for i in 0..self.count {
            for pod in self.pods.by_index(BY_NODE, &nodes::name(i)) {
                if pods::is_terminal(&pod) || host_network(&pod) {
                    continue;
                }
                let ip = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref());
                if let (Some(ip), Some(uid)) = (
                    ip.and_then(|ip| ip.parse().ok()),
                    pod.metadata.uid.as_deref(),
                ) {
                    ipam.reserve(i, uid, ip);
                }
            }
        }
    }

    // ---- change handlers ----

    fn watch(self: &Arc<Self>) {
        let sim = Arc::downgrade(self);
        self.pods.on_change(move |change| {
            let Some(sim) = sim.upgrade() else { return };
            let pod = change.object();
            if sim.node_of(pod).is_none() {
                return;
            }
            match change {
                Change::Deleted(pod) => {
                    if let Some(uid) = pod.metadata.uid.as_deref() {
                        sim.ipam.lock().unwrap().release(uid);
                    }
                }
                _ if pods::is_terminal(pod) && pod.metadata.deletion_timestamp.is_none() => {
                    if let Some(uid) = pod.metadata.uid.as_deref() {
                        sim.ipam.lock().unwrap().release(uid);
                    }
                }
                _ => sim.queue.add(Key::of(pod.as_ref())),
            }
        });
        let sim = Arc::downgrade(self);
        self.nodes.on_change(move |change| {
            let Some(sim) = sim.upgrade() else { return };
            let node = change.object();
            let Some(i) = node
                .metadata
                .name
                .as_deref()
                .and_then(|n| nodes::index(n, sim.count))
            else {
                return;
            };
            let slot = &sim.slots[i];
            if let Change::Deleted(_) = change {
                slot.gone.store(true, Ordering::SeqCst);
                return;
            }
            let stopped = is_stopped(node);
            let was_stopped = slot.stopped.swap(stopped, Ordering::SeqCst);
            if stopped {
                return;
            }
            let current = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_deref())
                .unwrap_or_default();
            if was_stopped || !nodes::conditions_current(current) {
                slot.status_due.store(true, Ordering::SeqCst);
            }
            if was_stopped {
                // The machine is back: heartbeat now and catch up its pods.
                slot.lease_due.store(true, Ordering::SeqCst);
                for pod in sim.pods.by_index(BY_NODE, &nodes::name(i)) {
                    sim.queue.add(Key::of(pod.as_ref()));
                }
            }
            if slot.status_due.load(Ordering::SeqCst) {
                sim.heartbeat_wake.notify_one();
            }
        });
    }

    fn node_of(&self, pod: &Pod) -> Option<usize> {
        let name = pod.spec.as_ref()?.node_name.as_deref()?;
        nodes::index(name, self.count)
    }

    // ---- heartbeats ----

    /// Renews every node's Lease each `lease_period` and reports its
    /// conditions each `status_period` (or when due at once), node `i` at
    /// offset `i / count` of the period, in batches every 100 ms.
    async fn heartbeat(self: Arc<Self>) {
        const TICK: Duration = Duration::from_millis(100);
        let n = self.count;
        let start = Instant::now();
        let offset = |period: Duration, i: usize| period.mul_f64(i as f64 / n as f64);
        // Registration just renewed every Lease and reported every status.
        let mut next_lease: Vec<Instant> = (0..n)
            .map(|i| start + self.lease_period + offset(self.lease_period, i))
            .collect();
        let mut next_status: Vec<Instant> = (0..n)
            .map(|i| start + self.status_period + offset(self.status_period, i))
            .collect();
        loop {
            let tick = Instant::now();
            let mut due = Vec::new();
            for i in 0..n {
                let slot = &self.slots[i];
                if slot.stopped.load(Ordering::SeqCst) || slot.gone.load(Ordering::SeqCst) {
                    continue;
                }
                let lease = slot.lease_due.swap(false, Ordering::SeqCst) || next_lease[i] <= tick;
                let status =
                    slot.status_due.swap(false, Ordering::SeqCst) || next_status[i] <= tick;
                if lease {
                    next_lease[i] = advance(next_lease[i], self.lease_period, tick);
                }
                if status {
                    next_status[i] = advance(next_status[i], self.status_period, tick);
                }
                if lease || status {
                    due.push((i, lease, status));
                }
            }
            futures::stream::iter(due)
                .for_each_concurrent(HEARTBEAT_CONCURRENCY, |(i, lease, status)| {
                    let this = &self;
                    async move {
                        if status {
                            if let Err(e) = this.report_status(i).await {
                                tracing::debug!(node = %nodes::name(i), error = %e, "node status");
                                this.slots[i].status_due.store(true, Ordering::SeqCst);
                            }
                        }
                        if lease {
                            if let Err(e) = this.renew_lease(i, false).await {
                                tracing::debug!(node = %nodes::name(i), error = %e, "node lease");
                            }
                        }
                    }
                })
                .await;
            let earliest = next_lease
                .iter()
                .chain(next_status.iter())
                .min()
                .copied()
                .unwrap_or(tick + TICK);
            let wake = earliest.max(tick + TICK);
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = self.heartbeat_wake.notified() => {
                    tokio::time::sleep_until(tick + TICK).await;
                }
            }
        }
    }

    /// Node `i`'s conditions with a fresh heartbeat; the conditions others
    /// own are kept.
    async fn report_status(&self, i: usize) -> Result<(), kube::Error> {
        let name = nodes::name(i);
        let old = self
            .nodes
            .get(&Key::cluster(&name))
            .and_then(|n| n.status.as_ref().and_then(|s| s.conditions.clone()))
            .unwrap_or_default();
        let was_ready = old.iter().any(|c| c.type_ == "Ready" && c.status == "True");
        let mut conditions = nodes::conditions(&old, now());
        let ours: Vec<String> = conditions.iter().map(|c| c.type_.clone()).collect();
        conditions.extend(old.into_iter().filter(|c| !ours.contains(&c.type_)));
        let api: Api<Node> = Api::all(self.client.clone());
        match api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "status": { "conditions": conditions } })),
            )
            .await
        {
            Err(e) if is_not_found(&e) => {
                self.slots[i].gone.store(true, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => Err(e),
            Ok(_) => {
                if !was_ready {
                    self.record_node_ready(i);
                }
                Ok(())
            }
        }
    }

    /// Renews node `i`'s Lease (creating it if it is missing), as the
    /// kubelet's lease controller: holder the node, 40 s, owned by the Node.
    /// `create_first`: at registration, where the Lease is most likely
    /// missing, try creating it before reading it.
    async fn renew_lease(&self, i: usize, create_first: bool) -> Result<(), kube::Error> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), LEASE_NAMESPACE);
        let name = nodes::name(i);
        let slot = &self.slots[i];
        let cached = slot.lease.lock().unwrap().take();
        if let Some(mut lease) = cached {
            lease.spec.get_or_insert_with(Default::default).renew_time =
                Some(MicroTime(Utc::now()));
            match api.replace(&name, &PostParams::default(), &lease).await {
                Ok(lease) => {
                    *slot.lease.lock().unwrap() = Some(lease);
                    return Ok(());
                }
                Err(e) if is_conflict(&e) || is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
        let owner = slot.uid.lock().unwrap().clone().map(|uid| OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: name.clone(),
            uid,
            ..Default::default()
        });
        let spec = |old: Option<LeaseSpec>| LeaseSpec {
            holder_identity: Some(name.clone()),
            lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
            renew_time: Some(MicroTime(Utc::now())),
            ..old.unwrap_or_default()
        };
        let fresh = Lease {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(LEASE_NAMESPACE.into()),
                owner_references: owner.clone().map(|o| vec![o]),
                ..Default::default()
            },
            spec: Some(spec(None)),
        };
        if create_first {
            match api.create(&PostParams::default(), &fresh).await {
                Ok(lease) => {
                    *slot.lease.lock().unwrap() = Some(lease);
                    return Ok(());
                }
                Err(e) if is_conflict(&e) => {}
                Err(e) => return Err(e),
            }
        }
        let lease = match api.get_opt(&name).await? {
            Some(mut lease) => {
                lease.spec = Some(spec(lease.spec.take()));
                if let Some(owner) = owner {
                    lease.metadata.owner_references = Some(vec![owner]);
                }
                api.replace(&name, &PostParams::default(), &lease).await?
            }
            None => api.create(&PostParams::default(), &fresh).await?,
        };
        *slot.lease.lock().unwrap() = Some(lease);
        Ok(())
    }

    // ---- pods ----

    async fn pod_worker(self: Arc<Self>) {
        loop {
            let key = self.queue.get().await;
            match self.sync_pod(&key).await {
                Ok(()) => self.queue.forget(&key),
                Err(e) => {
                    if is_conflict(&e) {
                        tracing::debug!(pod = %key, error = %e, "conflict; retrying");
                    } else {
                        tracing::warn!(pod = %key, error = %e, "updating a simulated pod; retrying");
                    }
                    self.queue.add_rate_limited(key.clone());
                }
            }
            self.queue.done(&key);
        }
    }

    /// Brings one pod's status to where its node would have it now.
    async fn sync_pod(&self, key: &Key) -> Result<(), kube::Error> {
        let Some(pod) = self.pods.get(key) else {
            return Ok(());
        };
        let Some(i) = self.node_of(&pod) else {
            return Ok(());
        };
        let slot = &self.slots[i];
        if slot.stopped.load(Ordering::SeqCst) || slot.gone.load(Ordering::SeqCst) {
            return Ok(());
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.namespace);
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let now = now();
        if pod.metadata.deletion_timestamp.is_some() {
            return self.remove(&api, &pod, i, now).await;
        }
        if pods::is_terminal(&pod) {
            self.ipam.lock().unwrap().release(&uid);
            return Ok(());
        }
        let host_ip = nodes::internal_ip(i).to_string();
        let pod_ip = match pod.status.as_ref().and_then(|s| s.pod_ip.clone()) {
            Some(ip) => ip,
            None if host_network(&pod) => host_ip.clone(),
            None => match self.ipam.lock().unwrap().assign(i, &uid) {
                Some(ip) => ip.to_string(),
                None => {
                    tracing::warn!(pod = %key, node = %nodes::name(i), "no free pod address on the node; retrying in 10s");
                    self.timers
                        .add(key.clone(), Instant::now() + Duration::from_secs(10));
                    return Ok(());
                }
            },
        };
        let next = pods::next(
            &pod,
            &pods::Addresses {
                host_ip: &host_ip,
                pod_ip: &pod_ip,
            },
            now,
        );
        if let Some(at) = next.wake_at {
            self.timers.add_at(key.clone(), at);
        }
        if pod.status.as_ref() == Some(&next.status) {
            return Ok(());
        }
        let terminal = matches!(next.status.phase.as_deref(), Some("Succeeded" | "Failed"));
        let mut updated = (*pod).clone();
        updated.status = Some(next.status);
        match self.write_status(&api, &updated).await {
            Err(e) if is_not_found(&e) => return Ok(()),
            other => drop(other?),
        }
        self.record(i, &pod, &next.events);
        if terminal {
            self.ipam.lock().unwrap().release(&uid);
        }
        Ok(())
    }

    /// A pod being deleted: its containers stop, then it is removed.
    async fn remove(
        &self,
        api: &Api<Pod>,
        pod: &Pod,
        i: usize,
        now: DateTime<Utc>,
    ) -> Result<(), kube::Error> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let (status, events) = pods::stopped(pod, now);
        if pod.status.as_ref() != Some(&status) {
            let mut updated = pod.clone();
            updated.status = Some(status);
            match self.write_status(api, &updated).await {
                Err(e) if is_not_found(&e) => return Ok(()),
                other => drop(other?),
            }
            self.record(i, pod, &events);
        }
        if pod.metadata.deletion_grace_period_seconds != Some(0) {
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(uid.clone()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(&name, &params).await {
                Err(e) if is_not_found(&e) || is_conflict(&e) => {}
                other => drop(other?),
            }
        }
        self.ipam.lock().unwrap().release(&uid);
        Ok(())
    }

    async fn write_status(&self, api: &Api<Pod>, pod: &Pod) -> Result<Pod, kube::Error> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let body = serde_json::to_vec(pod).map_err(kube::Error::SerdeError)?;
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        api.replace_status(&name, &params, body).await
    }

    fn record(&self, i: usize, pod: &Pod, events: &[pods::Event]) {
        let Some(recorder) = self.recorders.as_ref().map(|r| &r[i]) else {
            return;
        };
        for e in events {
            let mut reference = pod.object_ref(&());
            reference.field_path = Some(e.field_path.clone());
            let type_ = if e.warning { WARNING } else { NORMAL };
            recorder.record(reference, type_, e.reason, e.message.clone());
        }
    }

    // ---- timers ----

    async fn drive_timers(self: Arc<Self>) {
        loop {
            let notified = self.timers.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (due, next) = self.timers.take_due(Instant::now());
            for key in due {
                self.queue.add(key);
            }
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }
}

fn advance(next: Instant, period: Duration, now: Instant) -> Instant {
    let later = next + period;
    if later <= now {
        now + period
    } else {
        later
    }
}

/// The kubelet's reference to its node in events: the UID is the node's
/// name (`kubectl describe node` looks for both).
fn node_ref(name: &str) -> ObjectReference {
    ObjectReference {
        kind: Some("Node".into()),
        name: Some(name.into()),
        uid: Some(name.into()),
        ..Default::default()
    }
}

fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

fn is_stopped(node: &Node) -> bool {
    node.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(nodes::STOPPED))
        .is_some_and(|v| v == "true")
}

fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// Now, in whole seconds as the API stores times, so that a status computed
/// twice compares equal to the one written.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// A stable hex id of `words` × 16 digits derived from `seed`.
pub(crate) fn hex_id(seed: &str, words: u64) -> String {
    (0..words)
        .map(|w| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (seed, w).hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect()
}

/// Pods to look at again later: one entry per key (the earliest asked).
#[derive(Default)]
struct Timers {
    state: Mutex<TimerState>,
    notify: Notify,
}

#[derive(Default)]
struct TimerState {
    by_key: HashMap<Key, Instant>,
    order: BTreeSet<(Instant, Key)>,
}

impl Timers {
    fn add(&self, key: Key, at: Instant) {
        let mut s = self.state.lock().unwrap();
        if let Some(&old) = s.by_key.get(&key) {
            if old <= at {
                return;
            }
            s.order.remove(&(old, key.clone()));
        }
        s.by_key.insert(key.clone(), at);
        let first = s.order.first().is_none_or(|(t, _)| at < *t);
        s.order.insert((at, key));
        drop(s);
        if first {
            self.notify.notify_one();
        }
    }

    /// At wall-clock time `at` (a little after, so that the whole second
    /// has begun when the pod is looked at).
    fn add_at(&self, key: Key, at: DateTime<Utc>) {
        let delay = (at - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(50);
        self.add(key, Instant::now() + delay);
    }

    fn take_due(&self, now: Instant) -> (Vec<Key>, Option<Instant>) {
        let mut s = self.state.lock().unwrap();
        let mut due = Vec::new();
        while let Some((at, _)) = s.order.first() {
            if *at > now {
                break;
            }
            let (_, key) = s.order.pop_first().unwrap();
            s.by_key.remove(&key);
            due.push(key);
        }
        (due, s.order.first().map(|(t, _)| *t))
    }
}
