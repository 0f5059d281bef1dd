//! The interface between the node agent and a container runtime, shaped like
//! the Kubernetes CRI `RuntimeService` (k8s.io/cri-api runtime/v1): pod
//! sandboxes that hold a pod's shared namespaces, and containers inside them.
//! Field names follow CRI's so that upstream kubelet logic maps one to one.
//! Images are resolved by the caller (the `image` crate) and handed over as
//! unpacked layer directories; the runtime only mounts them.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};

/// Who a sandbox or container is, as CRI's `PodSandboxMetadata` /
/// `ContainerMetadata`: `attempt` counts re-creations (the restart count).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodSandboxMetadata {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub attempt: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerMetadata {
    pub name: String,
    pub attempt: u32,
}

/// Which namespace a pod shares: its own (`Pod`), each container's own
/// (`Container`, PID only), or the host's (`Node`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NamespaceMode {
    #[default]
    Pod,
    Container,
    Node,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceOption {
    /// `Node` for hostNetwork.
    pub network: NamespaceMode,
    /// `Pod` for shareProcessNamespace, `Node` for hostPID, else `Container`.
    pub pid: NamespaceMode,
    /// `Node` for hostIPC.
    pub ipc: NamespaceMode,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsConfig {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// A hostPort: traffic to `host_ip:host_port` goes to the pod's `container_port`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub protocol: Protocol,
    pub container_port: u16,
    pub host_port: u16,
    pub host_ip: Option<IpAddr>,
}

/// Resources of a container (or, on the sandbox, of the whole pod), in the
/// units the kernel takes: CFS shares, quota and period in microseconds, bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxContainerResources {
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub memory_limit_in_bytes: Option<i64>,
    pub oom_score_adj: Option<i64>,
    pub pids_limit: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capability {
    /// Capability names as the pod spec spells them (`NET_ADMIN`, or `ALL`).
    pub add: Vec<String>,
    pub drop: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxContainerSecurityContext {
    pub capabilities: Option<Capability>,
    pub privileged: bool,
    pub run_as_user: Option<u32>,
    pub run_as_group: Option<u32>,
    /// A user name from the image's config (`USER name`), resolved through the
    /// image's /etc/passwd when `run_as_user` is unset.
    pub run_as_username: Option<String>,
    pub readonly_rootfs: bool,
    pub supplemental_groups: Vec<u32>,
    pub no_new_privs: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodSandboxConfig {
    pub metadata: PodSandboxMetadata,
    pub hostname: String,
    /// `/var/log/pods/<namespace>_<name>_<uid>`; container log paths are
    /// relative to it.
    pub log_directory: PathBuf,
    pub dns_config: Option<DnsConfig>,
    pub port_mappings: Vec<PortMapping>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The pod-level cgroup (by QoS class) containers are placed under.
    pub cgroup_parent: Option<String>,
    pub namespace_options: NamespaceOption,
    pub sysctls: BTreeMap<String, String>,
    /// The pod cgroup's values (cpu shares and quota, memory limit: the
    /// kubelet's sum of its containers' requests and limits with the pod
    /// overhead), written before the pause process starts.
    pub resources: Option<LinuxContainerResources>,
    /// RuntimeClass handler; empty for the default (`runc`).
    pub runtime_handler: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodSandboxState {
    Ready,
    #[default]
    NotReady,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodSandboxStatus {
    pub id: String,
    pub metadata: PodSandboxMetadata,
    pub state: PodSandboxState,
    pub created_at: DateTime<Utc>,
    /// The pod's IPs, primary first; empty with host networking.
    pub ips: Vec<IpAddr>,
    /// Path of the pod's network namespace (`None` with host networking).
    pub netns_path: Option<PathBuf>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// How a volume's mount propagates, as `mountPropagation` in the pod spec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountPropagation {
    #[default]
    Private,
    HostToContainer,
    Bidirectional,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub container_path: String,
    pub host_path: PathBuf,
    pub readonly: bool,
    pub propagation: MountPropagation,
}

/// The image a container runs: its name as the pod spec wrote it, the image
/// ID (`sha256:<config digest>`) and its unpacked layers, lowest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSpec {
    pub image: String,
    pub image_ref: String,
    pub layers: Vec<PathBuf>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub metadata: ContainerMetadata,
    pub image: ImageSpec,
    /// The full argv (the kubelet has already merged the image's entrypoint
    /// and cmd with the pod's command and args).
    pub args: Vec<String>,
    pub working_dir: Option<String>,
    pub envs: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    /// Relative to the sandbox's `log_directory`: `<container>/<attempt>.log`.
    pub log_path: PathBuf,
    pub stdin: bool,
    pub stdin_once: bool,
    pub tty: bool,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub resources: LinuxContainerResources,
    pub security_context: LinuxContainerSecurityContext,
    /// The container whose PID namespace this one joins (CRI's `TARGET`
    /// namespace mode: an ephemeral container's `targetContainerName`).
    #[serde(default)]
    pub pid_namespace_target: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    #[default]
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStatus {
    pub id: String,
    pub pod_sandbox_id: String,
    pub metadata: ContainerMetadata,
    pub state: ContainerState,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    pub image: String,
    pub image_ref: String,
    /// Why it exited, in kubelet's words: `Completed`, `Error`, `OOMKilled`.
    pub reason: Option<String>,
    pub message: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Absolute path of the container's log file.
    pub log_path: PathBuf,
    /// The mounts it was created with (the node agent reads the
    /// termination message through them).
    pub mounts: Vec<Mount>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSyncResponse {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

/// A terminal size change for an exec or attach session with a tty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    pub width: u16,
    pub height: u16,
}

pub type BoxedReader = Box<dyn AsyncRead + Send + Unpin>;
pub type BoxedWriter = Box<dyn AsyncWrite + Send + Unpin>;

/// A running exec or attach session. With a tty, stderr is `None` (merged
/// into stdout) and `resize` changes the terminal size.
pub struct StreamSession {
    pub stdin: Option<BoxedWriter>,
    pub stdout: Option<BoxedReader>,
    pub stderr: Option<BoxedReader>,
    pub resize: Option<tokio::sync::mpsc::Sender<TerminalSize>>,
    /// Resolves to the exit code of the exec'd process (attach: the container's).
    pub exit: tokio::sync::oneshot::Receiver<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStats {
    pub container_id: String,
    pub cpu_usage_nano_cores: Option<u64>,
    pub cpu_usage_core_nano_seconds: Option<u64>,
    pub memory_working_set_bytes: Option<u64>,
    /// Bytes the container wrote into its writable layer (CRI
    /// `writable_layer.used_bytes`).
    pub writable_layer_used_bytes: Option<u64>,
}

/// The usage of a pod's own cgroup, which holds the pause process and
/// every container of the pod (CRI `PodSandboxStats`, cAdvisor's pod
/// cgroup).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodSandboxStats {
    pub sandbox_id: String,
    pub cpu_usage_core_nano_seconds: Option<u64>,
    pub memory_working_set_bytes: Option<u64>,
}

/// Errors of a runtime call; `NotFound` lets callers treat a sandbox or
/// container that is already gone as done.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{kind} {id:?} not found")]
    NotFound { kind: &'static str, id: String },
    /// The container's argv[0] could not be started (missing, not executable):
    /// the kubelet reports this as `StartError` / `RunContainerError`.
    #[error("failed to start container {id:?}: {message}")]
    Start { id: String, message: String },
    #[error("{0}")]
    InvalidArgument(String),
    /// An exec whose command could not be started, in containerd's words
    /// ("failed to exec in container: failed to start exec ...").
    #[error("{0}")]
    ExecStart(String),
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{op} failed: {message}")]
    Runtime { op: String, message: String },
    #[error("network: {0}")]
    Network(String),
    /// A sandbox asked for a RuntimeClass handler this runtime does not
    /// have (containerd's words).
    #[error("failed to get sandbox runtime: no runtime for {0:?} is configured")]
    NoRuntimeHandler(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The CRI `RuntimeService`, in the shape the node agent drives it. Calls are
/// idempotent where CRI's are: stopping or removing something already gone
/// succeeds.
#[async_trait]
pub trait RuntimeService: Send + Sync + 'static {
    /// The runtime's name and version, for `nodeInfo.containerRuntimeVersion`
    /// (`runc://1.1.5`).
    async fn version(&self) -> Result<String>;

    /// Creates the pod's namespaces (pause process, network through CNI) and
    /// returns the sandbox ID.
    async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<String>;
    /// Stops every container of the sandbox and the sandbox itself, tearing
    /// down its network; the sandbox can still be inspected afterwards.
    async fn stop_pod_sandbox(&self, id: &str) -> Result<()>;
    async fn remove_pod_sandbox(&self, id: &str) -> Result<()>;
    async fn pod_sandbox_status(&self, id: &str) -> Result<PodSandboxStatus>;
    async fn list_pod_sandbox(&self) -> Result<Vec<PodSandboxStatus>>;

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        sandbox_config: &PodSandboxConfig,
    ) -> Result<String>;
    async fn start_container(&self, id: &str) -> Result<()>;
    /// SIGTERM, then SIGKILL after `timeout`.
    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()>;
    async fn remove_container(&self, id: &str) -> Result<()>;
    async fn container_status(&self, id: &str) -> Result<ContainerStatus>;
    async fn list_containers(&self) -> Result<Vec<ContainerStatus>>;
    async fn update_container_resources(
        &self,
        id: &str,
        resources: &LinuxContainerResources,
    ) -> Result<()>;
    /// Re-opens the container's log file after it was rotated.
    async fn reopen_container_log(&self, id: &str) -> Result<()>;

    /// Runs `cmd` in the container and collects its output (probes, hooks).
    async fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecSyncResponse>;
    /// Runs `cmd` in the container with streams (kubectl exec).
    async fn exec(&self, id: &str, cmd: &[String], opts: &StreamOptions) -> Result<StreamSession>;
    /// Connects to the container's own stdio (kubectl attach).
    async fn attach(&self, id: &str, opts: &StreamOptions) -> Result<StreamSession>;
    /// A TCP connection to `port` on the pod's loopback, made inside the
    /// sandbox's network namespace (kubectl port-forward).
    async fn port_forward(&self, sandbox_id: &str, port: u16) -> Result<tokio::net::TcpStream>;

    async fn container_stats(&self, id: &str) -> Result<ContainerStats>;
    /// The pod cgroup's usage; `None` for a pod without a cgroup of its own.
    async fn pod_sandbox_stats(&self, _id: &str) -> Result<Option<PodSandboxStats>> {
        Ok(None)
    }
}
