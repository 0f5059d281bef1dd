//! A node for runtime tests: a runtime rooted in a temporary directory, with
//! its own cgroup root and netns directory, a busybox image layer built from
//! the host's static busybox, and a Drop guard that removes every container,
//! sandbox, mount, namespace, cgroup and directory it made, even when the
//! test failed.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use runtime::*;

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Skips a test that needs root, runc and busybox when they are missing.
#[macro_export]
macro_rules! require_root {
    () => {
        if !support::is_root() || !std::path::Path::new("/usr/bin/busybox").exists() {
            eprintln!("skipped: needs root, runc and /usr/bin/busybox");
            return;
        }
    };
}

static SEQ: AtomicU32 = AtomicU32::new(0);

pub struct Node {
    pub runtime: Arc<Runc>,
    /// The pod network of [`Node::with_cni`], torn down on drop.
    pub network: Option<net::DefaultNetwork>,
    pub cfg: RuncConfig,
    pub layer: PathBuf,
    pub logs: PathBuf,
    tmp: Option<tempfile::TempDir>,
}

/// The busybox image: /bin/busybox and a symlink per applet, /etc/passwd
/// and /etc/group with root and nobody, a world-writable /tmp.
pub fn busybox_layer(dir: &Path) -> PathBuf {
    let layer = dir.join("layers/busybox");
    let bin = layer.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/usr/bin/busybox", bin.join("busybox")).unwrap();
    let list = std::process::Command::new("/usr/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
        }
    }
    let etc = layer.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(etc.join("group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    for d in ["tmp", "root", "proc", "sys", "dev", "www"] {
        std::fs::create_dir_all(layer.join(d)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(layer.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    layer
}

impl Node {
    pub fn new() -> Node {
        Node::build(false)
    }

    /// A node whose pods get addresses from a bridge network of their own
    /// (a unique bridge and network name, a /24 of 10.201.0.0/16 picked by
    /// process id), through the reference CNI plugins.
    pub fn with_cni() -> Node {
        Node::build(true)
    }

    fn build(with_cni: bool) -> Node {
        let tmp = tempfile::Builder::new()
            .prefix("krate-runtime-test")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let mut cfg = RuncConfig::new(dir.join("runtime"));
        // KRATE_TEST_SHIM: run the shim from another binary (`krate`).
        cfg.shim = std::env::var_os("KRATE_TEST_SHIM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_krate-runtime-shim")));
        cfg.run_dir = dir.join("run");
        cfg.cgroup_root = format!(
            "/krate-test-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let mut network = None;
        if with_cni {
            let seq = SEQ.fetch_add(1, Ordering::SeqCst);
            let pid = std::process::id();
            let cni = net::Cni::new(net::CniConfig {
                conf_dir: dir.join("net.d"),
                cache_dir: dir.join("cni-cache"),
                ..net::CniConfig::default()
            });
            let net = net::DefaultNetwork {
                name: format!("krate-rt-test-{pid}-{seq}"),
                bridge: format!("krr{:x}-{seq}", pid & 0xfffff),
                pod_cidr: format!("10.201.{}.0/24", (pid + seq) % 250),
                mtu: None,
            };
            cni.ensure_default_config(&net).unwrap();
            cfg.cni = Some(cni);
            network = Some(net);
        }
        let runtime = Arc::new(Runc::new(cfg.clone()).unwrap());
        Node {
            runtime,
            network,
            cfg,
            layer: busybox_layer(&dir),
            logs: dir.join("logs"),
            tmp: Some(tmp),
        }
    }

    /// A second runtime over the same state, as after an agent restart.
    pub fn reopen(&self) -> Runc {
        Runc::new(self.cfg.clone()).unwrap()
    }

    pub fn sandbox_config(&self, name: &str) -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: PodSandboxMetadata {
                name: name.into(),
                namespace: "default".into(),
                uid: format!("uid-{name}"),
                attempt: 0,
            },
            hostname: name.into(),
            log_directory: self.logs.join(format!("default_{name}_uid-{name}")),
            namespace_options: NamespaceOption {
                pid: NamespaceMode::Container,
                ..NamespaceOption::default()
            },
            dns_config: Some(DnsConfig {
                servers: vec!["10.43.0.10".into()],
                searches: vec!["default.svc.cluster.local".into()],
                options: vec!["ndots:5".into()],
            }),
            ..PodSandboxConfig::default()
        }
    }

    pub fn container_config(&self, name: &str, args: &[&str]) -> ContainerConfig {
        ContainerConfig {
            metadata: ContainerMetadata {
                name: name.into(),
                attempt: 0,
            },
            image: ImageSpec {
                image: "busybox:test".into(),
                image_ref: "sha256:test".into(),
                layers: vec![self.layer.clone()],
            },
            args: args.iter().map(|s| s.to_string()).collect(),
            log_path: PathBuf::from(format!("{name}/0.log")),
            ..ContainerConfig::default()
        }
    }

    /// Creates and starts a container.
    pub async fn run(
        &self,
        sandbox: &str,
        sandbox_cfg: &PodSandboxConfig,
        cfg: &ContainerConfig,
    ) -> String {
        let id = self
            .runtime
            .create_container(sandbox, cfg, sandbox_cfg)
            .await
            .unwrap();
        self.runtime.start_container(&id).await.unwrap();
        id
    }

    pub async fn wait_exited(&self, id: &str) -> ContainerStatus {
        wait_for(Duration::from_secs(20), || async {
            let s = self.runtime.container_status(id).await.unwrap();
            (s.state == ContainerState::Exited).then_some(s)
        })
        .await
    }

    pub async fn exec(&self, id: &str, cmd: &[&str]) -> ExecSyncResponse {
        let cmd: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        self.runtime
            .exec_sync(id, &cmd, Duration::from_secs(20))
            .await
            .unwrap()
    }

    fn cleanup(&mut self) {
        let Some(tmp) = self.tmp.take() else { return };
        let runtime = self.runtime.clone();
        let cfg = self.cfg.clone();
        let dir = tmp.path().to_path_buf();
        let network = self.network.clone();
        // The test's own async runtime may be the one dropping us.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                for s in runtime.list_pod_sandbox().await.unwrap_or_default() {
                    if let Err(e) = runtime.remove_pod_sandbox(&s.id).await {
                        eprintln!("cleanup: removing sandbox {}: {e}", s.id);
                    }
                }
                for c in runtime.list_containers().await.unwrap_or_default() {
                    let _ = runtime.remove_container(&c.id).await;
                }
            });
            // Whatever a failed removal left: shims, runc state, mounts.
            for sub in ["sandboxes", "containers"] {
                for e in std::fs::read_dir(cfg.root.join(sub))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let status = e.path().join("status.json");
                    if let Ok(s) = std::fs::read(&status) {
                        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&s) {
                            for key in ["pid", "shim_pid"] {
                                if let Some(pid) = v[key].as_i64() {
                                    let _ = std::process::Command::new("kill")
                                        .args(["-9", &pid.to_string()])
                                        .status();
                                }
                            }
                        }
                    }
                    let _ = std::process::Command::new(&cfg.runc)
                        .arg("--root")
                        .arg(cfg.root.join("runc"))
                        .args(["delete", "--force"])
                        .arg(e.file_name())
                        .output();
                }
            }
            let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
                .filter(|m| Path::new(m).starts_with(&dir))
                .collect();
            mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in mounts {
                let _ = std::process::Command::new("umount")
                    .args(["-l", &m])
                    .status();
            }
            let _ = net::netns::remove_all(&cfg.run_dir);
            if let Some(network) = network {
                let _ = net::default_network::tear_down(&network);
            }
            runtime.remove_cgroup_root();
            drop(tmp);
        })
        .join()
        .unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Polls `f` until it gives a value; panics after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The content of a CRI log file's records, per stream.
pub fn log_lines(path: &Path, stream: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(4, ' ');
            let _ts = parts.next()?;
            (parts.next()? == stream).then_some(())?;
            let _tag = parts.next()?;
            Some(parts.next().unwrap_or("").to_string())
        })
        .collect()
}
