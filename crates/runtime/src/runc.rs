//! [`Runc`]: the [`RuntimeService`] on the OCI runtime `runc`. Each lifecycle
//! verb lives in a module of its own (`sandbox_run.rs`, `container_start.rs`,
//! ...); this module holds the configuration, the on-disk layout and the
//! helpers they share.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;

use crate::cri::*;
use crate::spec::HostInfo;
use crate::state::{self, ContainerRecord, SandboxRecord, ShimStatus};

/// How the runtime runs runc, its shims and the pod network.
#[derive(Clone, Debug)]
pub struct RuncConfig {
    /// `<data-dir>/runtime`: sandboxes, containers and runc's own state.
    pub root: PathBuf,
    /// The runc binary ("runc": looked up in PATH).
    pub runc: PathBuf,
    /// The binary that runs the shim and the arguments before `launch DIR`:
    /// by default this executable with `__shim` (krate's hidden subcommand).
    pub shim: PathBuf,
    pub shim_args: Vec<String>,
    /// The pod network; `None` gives each sandbox a network namespace with
    /// only loopback, up.
    pub cni: Option<net::Cni>,
    /// Network namespaces are pinned at `<run_dir>/netns/<name>`.
    pub run_dir: PathBuf,
    /// The cgroup every pod goes under (one per cluster on a shared machine);
    /// a sandbox's `cgroup_parent` is relative to it.
    pub cgroup_root: String,
    /// The RuntimeClass handlers a sandbox may ask for, all run by runc
    /// (containerd's `runtimes` table; k3s names its runc handler `runc`).
    /// The empty handler is the default runtime's.
    pub runtime_handlers: Vec<String>,
}

impl RuncConfig {
    pub fn new(root: impl Into<PathBuf>) -> RuncConfig {
        RuncConfig {
            root: root.into(),
            runc: PathBuf::from("runc"),
            shim: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("krate")),
            shim_args: vec!["__shim".into()],
            cni: None,
            run_dir: PathBuf::from(net::netns::DEFAULT_RUN_DIR),
            cgroup_root: "/kubepods".into(),
            runtime_handlers: vec![String::new(), "runc".into()],
        }
    }
}

/// The annotation of a container config that carries the image's
/// `StopSignal` (`SIGQUIT`, `3`, ...); SIGTERM without it.
pub const STOP_SIGNAL_ANNOTATION: &str = "io.krate.image.stop-signal";

/// containerd's exit code and reason of a container whose task vanished.
pub(crate) const LOST_EXIT_CODE: i32 = 255;
pub(crate) const LOST_REASON: &str = "Unknown";

/// How long starting a container (the shim's `runc run`) may take.
const SHIM_ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Runc {
    pub(crate) cfg: RuncConfig,
    pub(crate) sys: std::sync::Arc<dyn crate::sys::Syscall>,
    pub(crate) host: HostInfo,
    /// The last CPU usage sample per container, for a usage rate
    /// (nanocores) between two stats calls, as containerd keeps one.
    cpu_samples: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, u64)>>,
    /// Records read or written once (a container's never changes; a
    /// sandbox's changes only through `save_sandbox`): listing a node's
    /// containers for every pod sync would otherwise parse each record
    /// again. An entry counts while its directory exists.
    container_records: std::sync::Mutex<std::collections::HashMap<String, ContainerRecord>>,
    sandbox_records: std::sync::Mutex<std::collections::HashMap<String, SandboxRecord>>,
}

impl Runc {
    pub fn new(cfg: RuncConfig) -> Result<Runc> {
        Runc::with_syscall(cfg, std::sync::Arc::new(crate::sys::Linux))
    }

    /// A runtime whose mounts and signals go to `sys` (tests record them).
    pub fn with_syscall(
        cfg: RuncConfig,
        sys: std::sync::Arc<dyn crate::sys::Syscall>,
    ) -> Result<Runc> {
        let runc = Runc {
            sys,
            host: crate::cgroups::host_info(),
            cpu_samples: Default::default(),
            container_records: Default::default(),
            sandbox_records: Default::default(),
            cfg,
        };
        for dir in [
            runc.runc_root(),
            runc.sandboxes_dir(),
            runc.containers_dir(),
        ] {
            std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        }
        runc.forget_runc_state_of_another_boot();
        runc.record_lost_containers();
        Ok(runc)
    }

    /// Containers whose shim is gone without recording an exit (a reboot, a
    /// kill -9) exited with 255 `Unknown` when the runtime found them so,
    /// as containerd records a running container whose task vanished.
    fn record_lost_containers(&self) {
        for id in Self::ids(&self.containers_dir()) {
            let path = self.container_dir(&id).join(state::STATUS);
            let Some(mut status) = Self::shim_status(&self.container_dir(&id)) else {
                continue;
            };
            if status.exited() || status.shim_alive() {
                continue;
            }
            status.exit_code = Some(LOST_EXIT_CODE);
            status.reason = Some(LOST_REASON.into());
            status.finished_at = Some(chrono::Utc::now());
            if let Err(e) = state::write_json(&path, &status) {
                tracing::warn!(container = %id, error = %e, "recording a lost container's exit");
            }
        }
    }

    /// runc's state lives on disk here, not on a tmpfs that a reboot empties
    /// (containerd's /run): after a reboot it would name processes that are
    /// gone, by pids that another process may hold now. Every container of
    /// a boot before is dead, so its state goes (the runtime's records stay:
    /// they tell how the containers ended).
    fn forget_runc_state_of_another_boot(&self) {
        let Some(now) = state::boot_id() else {
            return;
        };
        let file = self.cfg.root.join("boot_id");
        let before = std::fs::read_to_string(&file).ok();
        if before.as_deref().is_some_and(|b| b.trim() != now) {
            tracing::info!("the machine rebooted: forgetting runc's state of the boot before");
            for id in Self::ids(&self.runc_root()) {
                let _ = std::fs::remove_dir_all(self.runc_root().join(id));
            }
        }
        if before.as_deref().map(str::trim) != Some(now.as_str()) {
            if let Err(e) = std::fs::write(&file, &now) {
                tracing::warn!(file = %file.display(), error = %e, "recording the boot id");
            }
        }
    }

    pub fn config(&self) -> &RuncConfig {
        &self.cfg
    }

    /// Removes the cgroups under `cgroup_root` (after every sandbox is gone:
    /// cgroups that still hold processes stay).
    pub fn remove_cgroup_root(&self) {
        crate::cgroups::remove_tree(&self.cfg.cgroup_root);
    }

    pub(crate) fn runc_root(&self) -> PathBuf {
        self.cfg.root.join("runc")
    }
    pub(crate) fn sandboxes_dir(&self) -> PathBuf {
        self.cfg.root.join("sandboxes")
    }
    pub(crate) fn containers_dir(&self) -> PathBuf {
        self.cfg.root.join("containers")
    }
    pub(crate) fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.sandboxes_dir().join(id)
    }
    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    /// A unix socket path for container `id`: `<run_dir>/shim/<id[..16]>`,
    /// or, when the run directory is too deep for sun_path (108 bytes), a
    /// directory named after it under /run/krate-shim.
    pub(crate) fn socket_path(&self, id: &str, suffix: &str) -> PathBuf {
        let name = format!("{}{suffix}.sock", &id[..id.len().min(16)]);
        let mut dir = self.cfg.run_dir.join("shim");
        if dir.as_os_str().len() + name.len() + 16 > 100 {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            self.cfg.run_dir.hash(&mut h);
            dir = PathBuf::from(format!("/run/krate-shim/{:016x}", h.finish()));
        }
        let _ = std::fs::create_dir_all(&dir);
        dir.join(name)
    }

    pub(crate) fn load_sandbox(&self, id: &str) -> Result<SandboxRecord> {
        check_id(id)?;
        let dir = self.sandbox_dir(id);
        let not_found = || Error::NotFound {
            kind: "sandbox",
            id: id.to_string(),
        };
        let mut cache = self.sandbox_records.lock().unwrap();
        if !dir.exists() {
            cache.remove(id);
            return Err(not_found());
        }
        if let Some(rec) = cache.get(id) {
            return Ok(rec.clone());
        }
        let rec: SandboxRecord =
            state::read_json(&dir.join(state::SANDBOX_RECORD)).map_err(|_| not_found())?;
        cache.insert(id.to_string(), rec.clone());
        Ok(rec)
    }

    pub(crate) fn save_sandbox(&self, rec: &SandboxRecord) -> Result<()> {
        let path = self.sandbox_dir(&rec.id).join(state::SANDBOX_RECORD);
        let mut cache = self.sandbox_records.lock().unwrap();
        cache.remove(&rec.id);
        state::write_json(&path, rec).map_err(io_err(format!("writing {}", path.display())))?;
        cache.insert(rec.id.clone(), rec.clone());
        Ok(())
    }

    /// Drops the cached records of a removed container or sandbox.
    pub(crate) fn forget_record(&self, id: &str) {
        self.container_records.lock().unwrap().remove(id);
        self.sandbox_records.lock().unwrap().remove(id);
    }

    pub(crate) fn load_container(&self, id: &str) -> Result<ContainerRecord> {
        check_id(id)?;
        let dir = self.container_dir(id);
        let not_found = || Error::NotFound {
            kind: "container",
            id: id.to_string(),
        };
        let mut cache = self.container_records.lock().unwrap();
        if !dir.exists() {
            cache.remove(id);
            return Err(not_found());
        }
        if let Some(rec) = cache.get(id) {
            return Ok(rec.clone());
        }
        let rec: ContainerRecord =
            state::read_json(&dir.join(state::CONTAINER_RECORD)).map_err(|_| not_found())?;
        cache.insert(id.to_string(), rec.clone());
        Ok(rec)
    }

    /// The shim's status of a container or sandbox directory (`None`: never
    /// started).
    pub(crate) fn shim_status(dir: &Path) -> Option<ShimStatus> {
        state::read_json(&dir.join(state::STATUS)).ok()
    }

    /// Ids of the records in `dir`.
    pub(crate) fn ids(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect()
    }

    /// Runs runc with `args` and returns its stdout; a failure carries runc's
    /// error message.
    pub(crate) async fn runc(&self, op: &str, args: &[&str]) -> Result<Vec<u8>> {
        let out = tokio::process::Command::new(&self.cfg.runc)
            .arg("--root")
            .arg(self.runc_root())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .await
            .map_err(io_err(format!("running {}", self.cfg.runc.display())))?;
        if !out.status.success() {
            return Err(Error::Runtime {
                op: op.to_string(),
                message: runc_message(&out.stderr),
            });
        }
        Ok(out.stdout)
    }

    /// Starts a shim for the bundle whose `shim.json` is in `dir` and waits
    /// for its one-line answer: the container's pid, or why it did not start.
    pub(crate) async fn launch_shim(&self, dir: &Path) -> Result<i32, String> {
        let shim = tokio::process::Command::new(&self.cfg.shim)
            .args(&self.cfg.shim_args)
            .arg("launch")
            .arg(dir)
            // A shim allocates little; mimalloc (krate's allocator) would
            // otherwise commit a 4 MiB arena up front in each of them.
            .env("MIMALLOC_ARENA_EAGER_COMMIT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .output();
        // runc hanging (a stuck mount, a hook) must not hang the caller.
        let out = tokio::time::timeout(SHIM_ANSWER_TIMEOUT, shim)
            .await
            .map_err(|_| {
                format!(
                    "the shim did not answer within {}s",
                    SHIM_ANSWER_TIMEOUT.as_secs()
                )
            })?
            .map_err(|e| format!("starting the shim {}: {e}", self.cfg.shim.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().next().unwrap_or_default();
        if let Some(pid) = line.strip_prefix("ok ") {
            return pid
                .trim()
                .parse()
                .map_err(|_| format!("the shim answered {line:?}"));
        }
        Err(line
            .strip_prefix("error ")
            .map(str::to_string)
            .unwrap_or_else(|| format!("the shim exited ({}) without an answer", out.status)))
    }

    /// Waits until the shim of `dir` recorded an exit, up to `timeout`;
    /// whether it did.
    pub(crate) async fn wait_exited(dir: &Path, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match Self::shim_status(dir) {
                Some(s) if s.exited() => return true,
                Some(s) if !s.shim_alive() => return true,
                None => return true,
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// CPU usage in nanocores (nanoseconds of CPU per second) between two
/// samples of cumulative usage.
fn nano_cores(prev: (std::time::Instant, u64), now: (std::time::Instant, u64)) -> Option<u64> {
    let elapsed = now.0.checked_duration_since(prev.0)?.as_nanos();
    if elapsed == 0 || now.1 < prev.1 {
        return None;
    }
    Some(((now.1 - prev.1) as u128 * 1_000_000_000 / elapsed) as u64)
}

/// runc's error on stderr, without logrus' decoration.
pub(crate) fn runc_message(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    if let Some(i) = line.find("msg=\"") {
        let rest = &line[i + 5..];
        if let Some(end) = rest.rfind('"') {
            return rest[..end].replace("\\\"", "\"");
        }
    }
    line.trim().to_string()
}

pub(crate) fn io_err(op: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { op, source }
}

/// IDs name directories: refuse anything that could leave them.
fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || id.contains('/') || id == "." || id == ".." || id.contains('\0') {
        return Err(Error::InvalidArgument(format!("invalid id {id:?}")));
    }
    Ok(())
}

#[async_trait]
impl RuntimeService for Runc {
    async fn version(&self) -> Result<String> {
        let out = self.runc("version", &["--version"]).await?;
        let text = String::from_utf8_lossy(&out);
        let version = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("runc version "))
            .map(|v| v.split('+').next().unwrap_or(v).trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        Ok(format!("runc://{version}"))
    }

    async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<String> {
        self.run_sandbox(config).await
    }
    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        self.stop_sandbox(id).await
    }
    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        self.remove_sandbox(id).await
    }
    async fn pod_sandbox_status(&self, id: &str) -> Result<PodSandboxStatus> {
        self.sandbox_status(id)
    }
    async fn list_pod_sandbox(&self) -> Result<Vec<PodSandboxStatus>> {
        let mut all: Vec<PodSandboxStatus> = Self::ids(&self.sandboxes_dir())
            .iter()
            .filter_map(|id| self.sandbox_status(id).ok())
            .collect();
        all.sort_by_key(|s| s.created_at);
        Ok(all)
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        sandbox_config: &PodSandboxConfig,
    ) -> Result<String> {
        self.create(sandbox_id, config, sandbox_config).await
    }
    async fn start_container(&self, id: &str) -> Result<()> {
        self.start(id).await
    }
    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()> {
        self.stop(id, timeout).await
    }
    async fn remove_container(&self, id: &str) -> Result<()> {
        self.remove(id).await
    }
    async fn container_status(&self, id: &str) -> Result<ContainerStatus> {
        self.status(id)
    }
    async fn list_containers(&self) -> Result<Vec<ContainerStatus>> {
        let mut all: Vec<ContainerStatus> = Self::ids(&self.containers_dir())
            .iter()
            .filter_map(|id| self.status(id).ok())
            .collect();
        all.sort_by_key(|s| s.created_at);
        Ok(all)
    }
    async fn update_container_resources(
        &self,
        id: &str,
        resources: &LinuxContainerResources,
    ) -> Result<()> {
        self.update_resources(id, resources).await
    }
    async fn reopen_container_log(&self, id: &str) -> Result<()> {
        self.reopen_log(id).await
    }

    async fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecSyncResponse> {
        self.exec_collect(id, cmd, timeout).await
    }
    async fn exec(&self, id: &str, cmd: &[String], opts: &StreamOptions) -> Result<StreamSession> {
        self.exec_streams(id, cmd, opts).await
    }
    async fn attach(&self, id: &str, opts: &StreamOptions) -> Result<StreamSession> {
        self.attach_streams(id, opts).await
    }
    async fn port_forward(&self, sandbox_id: &str, port: u16) -> Result<tokio::net::TcpStream> {
        self.connect_in_sandbox(sandbox_id, port).await
    }

    async fn pod_sandbox_stats(&self, id: &str) -> Result<Option<PodSandboxStats>> {
        let rec = self.load_sandbox(id)?;
        if rec.config.cgroup_parent.is_none() {
            return Ok(None);
        }
        let (cpu, mem) = crate::cgroups::stats(&rec.cgroup_parent);
        Ok(Some(PodSandboxStats {
            sandbox_id: id.to_string(),
            cpu_usage_core_nano_seconds: cpu,
            memory_working_set_bytes: mem,
        }))
    }

    async fn container_stats(&self, id: &str) -> Result<ContainerStats> {
        let rec = self.load_container(id)?;
        let (cpu, mem) = crate::cgroups::stats(&rec.cgroups_path);
        let now = std::time::Instant::now();
        let mut samples = self.cpu_samples.lock().unwrap();
        samples.retain(|_, (t, _)| now.duration_since(*t) < Duration::from_secs(600));
        let nano_cores = cpu.and_then(|usage| {
            let prev = samples.insert(id.to_string(), (now, usage))?;
            nano_cores(prev, (now, usage))
        });
        drop(samples);
        Ok(ContainerStats {
            container_id: id.to_string(),
            cpu_usage_nano_cores: nano_cores,
            cpu_usage_core_nano_seconds: cpu,
            memory_working_set_bytes: mem,
            writable_layer_used_bytes: Some(
                crate::disk_usage::disk_usage(&self.container_dir(id).join("upper")).0,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nano_cores_is_cpu_time_per_wall_second() {
        let t = std::time::Instant::now();
        let later = t + Duration::from_millis(500);
        assert_eq!(
            nano_cores((t, 1_000), (later, 250_001_000)),
            Some(500_000_000)
        );
        assert_eq!(nano_cores((t, 10), (t, 20)), None);
        assert_eq!(nano_cores((t, 20), (later, 10)), None);
    }

    #[test]
    fn runc_state_of_another_boot_is_forgotten_at_start() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("runtime");
        let state = root.join("runc/c1/state.json");
        let start = |boot: Option<&str>| {
            std::fs::create_dir_all(state.parent().unwrap()).unwrap();
            std::fs::write(&state, "{}").unwrap();
            match boot {
                Some(b) => std::fs::write(root.join("boot_id"), b).unwrap(),
                None => {
                    let _ = std::fs::remove_file(root.join("boot_id"));
                }
            }
            let mut cfg = RuncConfig::new(&root);
            cfg.runc = "/nonexistent/runc".into();
            cfg.run_dir = root.join("run");
            let sys = std::sync::Arc::new(crate::sys::Recording::default());
            Runc::with_syscall(cfg, sys).unwrap();
            state.exists()
        };
        let now = state::boot_id().unwrap();
        // A first start cannot tell: the state stays.
        assert!(start(None));
        assert_eq!(std::fs::read_to_string(root.join("boot_id")).unwrap(), now);
        assert!(start(Some(&now)));
        assert!(!start(Some("00000000-0000-4000-8000-000000000000")));
        assert_eq!(std::fs::read_to_string(root.join("boot_id")).unwrap(), now);
    }

    #[test]
    fn a_container_whose_shim_is_gone_is_recorded_exited_unknown_at_start() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("runtime");
        let dir = root.join("containers").join("c1");
        std::fs::create_dir_all(&dir).unwrap();
        let rec = ContainerRecord {
            id: "c1".into(),
            sandbox_id: "sb".into(),
            config: ContainerConfig::default(),
            created_at: chrono::Utc::now(),
            log_path: dir.join("0.log"),
            cgroups_path: "/krate-unit-test-nonexistent/c1".into(),
        };
        state::write_json(&dir.join(state::CONTAINER_RECORD), &rec).unwrap();
        let started = chrono::Utc::now() - chrono::Duration::minutes(5);
        let lost = ShimStatus {
            // No process has this pid (above pid_max).
            shim_pid: 1 << 23,
            shim_start_time: 1,
            pid: Some(1 << 23),
            started_at: Some(started),
            ..ShimStatus::default()
        };
        state::write_json(&dir.join(state::STATUS), &lost).unwrap();
        let before = chrono::Utc::now();
        let mut cfg = RuncConfig::new(&root);
        cfg.runc = "/nonexistent/runc".into();
        cfg.run_dir = root.join("run");
        let sys = std::sync::Arc::new(crate::sys::Recording::default());
        let runc = Runc::with_syscall(cfg, sys).unwrap();
        let status = runc.status("c1").unwrap();
        assert_eq!(status.state, ContainerState::Exited);
        assert_eq!(status.exit_code, Some(255));
        assert_eq!(status.reason.as_deref(), Some("Unknown"));
        assert_eq!(status.message, None);
        assert_eq!(status.started_at, Some(started));
        assert!(status.finished_at.unwrap() >= before);
    }

    #[test]
    fn runc_messages_lose_the_logrus_decoration() {
        assert_eq!(
            runc_message(b"time=\"2024\" level=error msg=\"container \\\"x\\\" does not exist\"\n"),
            "container \"x\" does not exist"
        );
        assert_eq!(runc_message(b"plain error\n"), "plain error");
    }
}
