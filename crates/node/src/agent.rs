//! The node agent (kubelet) for a real machine: it registers its Node,
//! renews its Lease, waits for the pod CIDR the server allocates and sets
//! up the pod network, then runs the pods bound to it as real containers
//! through a [`runtime::RuntimeService`].
//!
//! Shape (upstream `pkg/kubelet`):
//! - [`node_status`]: the Node object and status (kubelet_node_status.go);
//! - [`actions`]: what a pod sync does, pure (computePodActions);
//! - [`pod_status`]: the status reported, pure (generateAPIPodStatus);
//! - [`container_config`]: argv, env, resources, security, pure;
//! - [`images`]: pull policy and credentials; the store is an [`ImageService`];
//! - [`backoff`]: crash and image-pull back-off;
//! - [`workers`]: one worker per pod (never two syncs of a pod at once),
//!   woken by the pod watch, by a relist of the runtime every second
//!   (upstream's PLEG) and by back-off timers; the worker does the IO.

pub mod actions;
pub mod backoff;
pub mod container_config;
pub mod eviction;
pub mod hooks;
pub mod images;
pub mod node_status;
pub mod pod_resources;
pub mod pod_status;
pub mod probes;
pub mod runtime_class;
pub mod static_pods;
pub mod termination;
pub mod workers;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{SubsecRound, Utc};
use controllers::events::{Recorder, NORMAL, WARNING};
use controllers::runner::{is_conflict, is_not_found};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use runtime::RuntimeService;
use serde_json::json;

pub use images::{ImageInfo, ImageService, PullError, RegistryAuth};
pub use pod_resources::PodResources;

const LEASE_NAMESPACE: &str = "kube-node-lease";
const LEASE_DURATION_SECONDS: i32 = 40;

#[derive(Clone, Debug)]
pub struct Options {
    /// The Node's name (`--node-name`; default: the hostname, lowercased).
    pub node_name: String,
    /// The InternalIP (`--node-ip`; default: the default route's interface).
    pub node_ip: Option<IpAddr>,
    /// The agent's root directory (pods, runtime state, images).
    pub root_dir: PathBuf,
    /// Where container logs go (`/var/log/pods`).
    pub pod_log_dir: PathBuf,
    /// What nodeInfo.kubeletVersion says (the server's version).
    pub kubelet_version: String,
    /// Label the node `node-role.kubernetes.io/control-plane` (a server's
    /// own agent, as k3s does).
    pub control_plane: bool,
    /// The kubelet API port reported in daemonEndpoints.
    pub kubelet_port: i32,
    /// Cluster DNS servers and domain written into pods' resolv.conf.
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    /// Directory of static pod manifests (`--pod-manifest-path`).
    pub pod_manifest_path: Option<PathBuf>,
    /// How often the Lease is renewed (10 s).
    pub lease_period: Duration,
    /// How often the node status is computed (10 s) and, when unchanged,
    /// how often it is reported anyway (5 min).
    pub status_update_period: Duration,
    pub status_report_period: Duration,
    /// Node-pressure eviction (`--eviction-hard`, ...).
    pub eviction: eviction::Config,
}

impl Options {
    pub fn new(root_dir: PathBuf) -> Options {
        Options {
            node_name: default_node_name(),
            node_ip: None,
            root_dir,
            pod_log_dir: "/var/log/pods".into(),
            kubelet_version: "v1.32.0".into(),
            control_plane: false,
            kubelet_port: 10250,
            cluster_dns: vec!["10.43.0.10".into()],
            cluster_domain: "cluster.local".into(),
            pod_manifest_path: None,
            lease_period: Duration::from_secs(10),
            status_update_period: Duration::from_secs(10),
            status_report_period: Duration::from_secs(300),
            eviction: eviction::Config::default(),
        }
    }
}

/// The hostname, lowercased (upstream `nodeutil.GetHostname`).
pub fn default_node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_lowercase())
        .unwrap_or_else(|_| "localhost".into())
}

/// Sets up the node's pod network once its pod CIDR is known.
#[async_trait]
pub trait NodeNetwork: Send + Sync + 'static {
    async fn setup(&self, pod_cidr: &str) -> Result<(), String>;
}

/// What the agent drives.
#[derive(Clone)]
pub struct Services {
    pub runtime: Arc<dyn RuntimeService>,
    pub images: Arc<dyn ImageService>,
    pub resources: Arc<dyn PodResources>,
    pub network: Option<Arc<dyn NodeNetwork>>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the container runtime: {0}")]
    Runtime(#[from] runtime::Error),
    #[error("the API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the pod network: {0}")]
    Network(String),
}

/// Runs the agent until the future is dropped.
pub async fn run(client: Client, options: Options, services: Services) {
    let runtime_version = loop {
        match services.runtime.version().await {
            Ok(v) => break v,
            Err(e) => {
                tracing::warn!(error = %e, "asking the container runtime for its version; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    };
    let runtime_name = runtime_version
        .split("://")
        .next()
        .unwrap_or("runc")
        .to_string();
    let machine = node_status::Machine::read(&options.root_dir);
    let identity = node_status::Identity {
        name: options.node_name.clone(),
        ip: options.node_ip.unwrap_or_else(node_status::default_node_ip),
        hostname: options.node_name.clone(),
        kubelet_version: options.kubelet_version.clone(),
        runtime_version,
        control_plane: options.control_plane,
        kubelet_port: options.kubelet_port,
    };
    let recorder = Recorder::new(client.clone(), "kubelet").with_host(options.node_name.clone());
    let node = NodeAgent {
        client: client.clone(),
        network_ready: Default::default(),
        status_wake: Default::default(),
        identity: identity.clone(),
        machine: machine.clone(),
        recorder: recorder.clone(),
        options: options.clone(),
        images: services.images.clone(),
        pressure: Default::default(),
    };
    let uid = node.register().await;
    let mut tasks = tokio::task::JoinSet::new();
    {
        let node = node.clone();
        tasks.spawn(async move { node.lease_loop(uid).await });
    }
    {
        let node = node.clone();
        tasks.spawn(async move { node.status_loop().await });
    }
    let pod_cidr = node.wait_pod_cidr().await;
    tracing::info!(node = %options.node_name, %pod_cidr, "the node's pod CIDR");
    if let Some(network) = &services.network {
        let mut delay = Duration::from_secs(1);
        while let Err(e) = network.setup(&pod_cidr).await {
            tracing::warn!(error = %e, "setting up the pod network; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }
    node.network_ready
        .store(true, std::sync::atomic::Ordering::SeqCst);
    node.status_wake.notify_one();
    if let Some(dir) = options.pod_manifest_path.clone() {
        tasks.spawn(static_pods::run(
            client.clone(),
            dir,
            options.node_name.clone(),
        ));
    }
    let runtime = services.runtime.clone();
    let pods = workers::Pods::new(workers::Config {
        client,
        services,
        recorder,
        options: options.clone(),
        host_ip: identity.ip.to_string(),
        runtime_name,
        memory_capacity: machine.memory_bytes as i64,
    });
    let evictions = eviction::manager::Manager {
        config: options.eviction.clone(),
        runtime,
        pods: pods.clone(),
        state: node.pressure.clone(),
        images: node.images.clone(),
        image_dir: options.root_dir.join("images"),
        root_dir: options.root_dir.clone(),
        pod_log_dir: options.pod_log_dir.clone(),
        memory_capacity: machine.memory_bytes as i64,
        recorder: node.recorder.clone(),
        node_name: options.node_name.clone(),
    };
    tasks.spawn(evictions.run());
    tasks.spawn(pods.run());
    while tasks.join_next().await.is_some() {}
}

#[derive(Clone)]
struct NodeAgent {
    client: Client,
    /// The pod network is set up: the node may report Ready.
    network_ready: Arc<std::sync::atomic::AtomicBool>,
    /// Wakes the status loop (the network became ready).
    status_wake: Arc<tokio::sync::Notify>,
    identity: node_status::Identity,
    machine: node_status::Machine,
    recorder: Recorder,
    options: Options,
    images: Arc<dyn ImageService>,
    /// The eviction manager's pressure conditions.
    pressure: eviction::manager::PressureState,
}

fn node_ref(name: &str) -> ObjectReference {
    ObjectReference {
        kind: Some("Node".into()),
        name: Some(name.into()),
        uid: Some(name.into()),
        ..Default::default()
    }
}

fn now() -> chrono::DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

impl NodeAgent {
    fn network_ready(&self) -> bool {
        self.network_ready.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// status.images from the image store (none when it cannot be read,
    /// as upstream).
    async fn node_images(&self) -> Option<Vec<k8s_openapi::api::core::v1::ContainerImage>> {
        match self.images.list().await {
            Ok(listed) => node_status::images(&listed),
            Err(e) => {
                tracing::warn!(error = %e, "listing the node's images");
                None
            }
        }
    }

    /// Registers the Node (or brings an existing one up to date), retrying
    /// until it succeeds; returns its UID.
    async fn register(&self) -> String {
        let mut delay = Duration::from_millis(200);
        loop {
            match self.try_register().await {
                Ok(uid) => return uid,
                Err(e) => {
                    tracing::warn!(node = %self.identity.name, error = %e, "registering the node; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(7));
                }
            }
        }
    }

    async fn try_register(&self) -> Result<String, kube::Error> {
        let api: Api<Node> = Api::all(self.client.clone());
        let name = &self.identity.name;
        let network_ready = self.network_ready();
        let mut desired = node_status::object(&self.identity, &self.machine, now(), network_ready);
        let images = self.node_images().await;
        if let Some(status) = desired.status.as_mut() {
            status.images = images.clone();
        }
        self.recorder.record(
            node_ref(name),
            NORMAL,
            "Starting",
            "Starting kubelet.".into(),
        );
        let (node, was_ready) = match api.create(&PostParams::default(), &desired).await {
            Ok(node) => (node, false),
            Err(e) if is_conflict(&e) => {
                let existing = api.get(name).await?;
                if let Some(msg) = node_status::rebooted_message(name, &existing, &self.machine) {
                    self.recorder
                        .record(node_ref(name), WARNING, "Rebooted", msg);
                }
                let patch = json!({ "metadata": {
                    "labels": node_status::labels(&self.identity),
                    "annotations": crate::simulated::nodes::annotations(),
                }});
                api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                let old = existing
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.clone())
                    .unwrap_or_default();
                let mut status =
                    node_status::status(&self.identity, &self.machine, &old, now(), network_ready);
                status.images = images;
                let node = api
                    .patch_status(
                        name,
                        &PatchParams::default(),
                        &Patch::Merge(&json!({ "status": status })),
                    )
                    .await?;
                (node, is_ready(&existing))
            }
            Err(e) => return Err(e),
        };
        for reason in [
            "NodeHasSufficientMemory",
            "NodeHasNoDiskPressure",
            "NodeHasSufficientPID",
        ] {
            self.recorder.record(
                node_ref(name),
                NORMAL,
                reason,
                format!("Node {name} status is now: {reason}"),
            );
        }
        self.recorder.record(
            node_ref(name),
            NORMAL,
            "NodeAllocatableEnforced",
            "Updated Node Allocatable limit across pods".into(),
        );
        if !was_ready && network_ready {
            self.recorder.record(
                node_ref(name),
                NORMAL,
                "NodeReady",
                format!("Node {name} status is now: NodeReady"),
            );
        }
        tracing::info!(node = %name, "node registered");
        Ok(node.metadata.uid.unwrap_or_default())
    }

    /// Renews the node's Lease every lease period (upstream's node lease
    /// controller: holder the node, 40 s, owned by the Node).
    async fn lease_loop(self, node_uid: String) {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), LEASE_NAMESPACE);
        let name = self.identity.name.clone();
        let mut cached: Option<Lease> = None;
        loop {
            let renewed = match cached.take() {
                Some(mut lease) => {
                    lease.spec.get_or_insert_with(Default::default).renew_time =
                        Some(MicroTime(Utc::now()));
                    api.replace(&name, &PostParams::default(), &lease)
                        .await
                        .ok()
                }
                None => None,
            };
            cached = match renewed {
                Some(l) => Some(l),
                None => {
                    let owner = OwnerReference {
                        api_version: "v1".into(),
                        kind: "Node".into(),
                        name: name.clone(),
                        uid: node_uid.clone(),
                        ..Default::default()
                    };
                    let spec = |old: Option<LeaseSpec>| LeaseSpec {
                        holder_identity: Some(name.clone()),
                        lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
                        renew_time: Some(MicroTime(Utc::now())),
                        ..old.unwrap_or_default()
                    };
                    let result = match api.get_opt(&name).await {
                        Ok(Some(mut lease)) => {
                            lease.spec = Some(spec(lease.spec.take()));
                            lease.metadata.owner_references = Some(vec![owner]);
                            api.replace(&name, &PostParams::default(), &lease).await
                        }
                        Ok(None) => {
                            let lease = Lease {
                                metadata: ObjectMeta {
                                    name: Some(name.clone()),
                                    namespace: Some(LEASE_NAMESPACE.into()),
                                    owner_references: Some(vec![owner]),
                                    ..Default::default()
                                },
                                spec: Some(spec(None)),
                            };
                            api.create(&PostParams::default(), &lease).await
                        }
                        Err(e) => Err(e),
                    };
                    match result {
                        Ok(l) => Some(l),
                        Err(e) => {
                            tracing::warn!(node = %name, error = %e, "renewing the node lease");
                            None
                        }
                    }
                }
            };
            tokio::time::sleep(self.options.lease_period).await;
        }
    }

    /// Computes the node status every update period and writes it when it
    /// changed or the report period passed (upstream
    /// nodeStatusUpdateFrequency / nodeStatusReportFrequency).
    async fn status_loop(self) {
        let api: Api<Node> = Api::all(self.client.clone());
        let name = self.identity.name.clone();
        let mut last_report = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.options.status_update_period) => {}
                _ = self.status_wake.notified() => {}
                _ = self.pressure.changed.notified() => {}
            }
            let network_ready = self.network_ready();
            let node = match api.get_opt(&name).await {
                Ok(Some(node)) => node,
                Ok(None) => {
                    // Deleted by someone: register again, as a kubelet does.
                    self.register().await;
                    continue;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "reading the node");
                    continue;
                }
            };
            let old = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            let images = self.node_images().await;
            let pressure = self.pressure.get();
            // The other conditions are compared as if without pressure.
            let mut unpressured = old.clone();
            eviction::Pressure::default().apply(&mut unpressured, &[], now());
            let current = node_status::conditions_current(&unpressured, network_ready)
                && pressure.current(&old)
                && node.status.as_ref().and_then(|s| s.images.as_ref()) == images.as_ref();
            let due = last_report.elapsed() >= self.options.status_report_period;
            if current && !due {
                continue;
            }
            let mut status =
                node_status::status(&self.identity, &self.machine, &old, now(), network_ready);
            status.images = images;
            let mut conditions = status.conditions.take().unwrap_or_default();
            let events = pressure.apply(&mut conditions, &old, now());
            let ours: Vec<String> = conditions.iter().map(|c| c.type_.clone()).collect();
            conditions.extend(old.iter().filter(|c| !ours.contains(&c.type_)).cloned());
            status.conditions = Some(conditions);
            let mut body = json!({ "status": status });
            if status.images.is_none() {
                // The last image went: a merge patch clears the list.
                body["status"]["images"] = serde_json::Value::Null;
            }
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&body))
                .await
            {
                Ok(_) => {
                    last_report = tokio::time::Instant::now();
                    for reason in events {
                        let message = format!("Node {name} status is now: {reason}");
                        self.recorder
                            .record(node_ref(&name), NORMAL, reason, message);
                    }
                    if !is_ready(&node) && network_ready {
                        self.recorder.record(
                            node_ref(&name),
                            NORMAL,
                            "NodeReady",
                            format!("Node {name} status is now: NodeReady"),
                        );
                    }
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => tracing::warn!(error = %e, "updating the node status"),
            }
        }
    }

    /// Waits until the server has given the node its pod CIDR.
    async fn wait_pod_cidr(&self) -> String {
        let api: Api<Node> = Api::all(self.client.clone());
        let mut logged = false;
        loop {
            if let Ok(Some(node)) = api.get_opt(&self.identity.name).await {
                if let Some(cidr) = node
                    .spec
                    .as_ref()
                    .and_then(|s| s.pod_cidr.clone())
                    .filter(|c| !c.is_empty())
                {
                    return cidr;
                }
            }
            if !logged {
                tracing::info!(node = %self.identity.name, "waiting for the node's pod CIDR");
                logged = true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
