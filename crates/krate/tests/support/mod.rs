//! The e2e harness: a real `krate server` on a free loopback port with its
//! own data directory, driven by the real `kubectl`. Dropping a [`Cluster`]
//! stops the server by its PID and removes its directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Cluster {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub kubeconfig: PathBuf,
    /// The extra `krate server` flags, kept for restarts.
    extra: Vec<String>,
    /// The host-global names of this cluster's node agent, when it runs one.
    pub agent: Option<AgentNames>,
}

/// What a test cluster's agent creates on the machine under names of its
/// own, so that the harness can remove it (see `Drop for Cluster`).
#[derive(Clone, Debug)]
pub struct AgentNames {
    pub bridge: String,
    pub cluster_cidr: String,
    pub service_cidr: String,
    /// The cgroup (relative to each hierarchy) pods go under.
    pub cgroup_parent: String,
}

/// The image every agent cluster has: busybox, imported at start.
pub const BUSYBOX: &str = "krate.test/busybox:1";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    pub fn start() -> Cluster {
        Self::start_with(&[])
    }

    /// A cluster without a node agent (`--disable-agent`) and `extra` flags.
    pub fn start_with(extra: &[&str]) -> Cluster {
        let mut flags = extra.to_vec();
        if !flags.contains(&"--disable-agent") {
            flags.insert(0, "--disable-agent");
        }
        Self::spawn(&flags, None, |_| {})
    }

    /// The node agent's hard eviction thresholds in tests: memory only, and
    /// out of reach.
    pub const EVICTION_HARD: &'static str = "--eviction-hard=memory.available<1Ki";

    /// A cluster whose server runs a node agent on this machine, with a
    /// bridge, pod and service CIDRs and cgroup of its own, and the busybox
    /// image ([`BUSYBOX`]) imported.
    pub fn start_with_agent(extra: &[&str]) -> Cluster {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // A /23 cluster CIDR (the node gets its first /24: the bridge's
        // route must be more specific than the cluster CIDR's unreachable
        // route) out of 10.244.0.0/14, a /24 service CIDR out of 10.248.0.0/14.
        let n = (std::process::id().wrapping_mul(7).wrapping_add(seq)) % 512;
        let names = AgentNames {
            bridge: format!("krt{}", std::process::id() % 100_000 * 10 + seq % 10),
            cluster_cidr: format!("10.{}.{}.0/23", 244 + n / 128, (n % 128) * 2),
            service_cidr: format!("10.{}.{}.0/24", 248 + n / 128, (n % 128) * 2),
            cgroup_parent: format!("krate-test-{}-{seq}", std::process::id()),
        };
        let cgroup_root = format!("/{}/kubepods", names.cgroup_parent);
        let mut flags: Vec<String> = vec![
            "--cni-bridge".into(),
            names.bridge.clone(),
            "--cluster-cidr".into(),
            names.cluster_cidr.clone(),
            "--service-cidr".into(),
            names.service_cidr.clone(),
            "--cgroup-root".into(),
            cgroup_root,
            // Any free port for the kubelet API: clusters share the machine.
            "--kubelet-port".into(),
            "0".into(),
            // Upstream's disk thresholds would fail every pod on a nearly
            // full disk; a test's own `--eviction-hard` wins (last given).
            Self::EVICTION_HARD.into(),
        ];
        flags.extend(extra.iter().map(|s| s.to_string()));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        Self::spawn(&flags, Some(names), |data| {
            let images = data.join("agent").join("images");
            std::fs::create_dir_all(&images).unwrap();
            image::testing::busybox_oci_archive(&images.join("busybox.tar"), BUSYBOX)
                .expect("writing the busybox image archive");
        })
    }

    fn spawn(extra: &[&str], agent: Option<AgentNames>, prepare: impl FnOnce(&Path)) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        prepare(&dir.path().join("data"));
        let mut extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if agent.is_some() {
            extra.push("--pod-log-dir".into());
            extra.push(dir.path().join("pod-logs").display().to_string());
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(krate_bin())
            .arg("server")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args([
                "--https-listen-port",
                &port.to_string(),
                "--bind-address",
                "127.0.0.1",
            ])
            .args(&extra)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting krate server");
        let kubeconfig = dir.path().join("data").join("admin.kubeconfig");
        let mut cluster = Cluster {
            child: Some(child),
            dir,
            port,
            kubeconfig,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            agent,
        };
        cluster.wait_ready();
        cluster
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                // Between `free_port` and the server's bind another process
                // may take the port (ephemeral ports are shared by every
                // client on the machine). The server binds before it writes
                // anything, so a first start can just take another port.
                let log = self.log();
                if !self.kubeconfig.exists() && log.matches("is already in use").count() < 5 {
                    self.port = free_port();
                    self.restart();
                    return;
                }
                panic!("krate server exited ({status}):\n{log}");
            }
            if self.kubeconfig.exists() {
                let out = self.kubectl(&["get", "--raw", "/readyz"]);
                if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok" {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("krate server not ready within 30s:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn server_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Runs kubectl against this cluster, with a discovery cache of its own.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_stdin(args, None)
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new("kubectl");
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.dir.path().join("kube-cache"))
            .env("HOME", self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match stdin {
            Some(input) => {
                use std::io::Write;
                cmd.stdin(Stdio::piped());
                let mut child = cmd.spawn().expect("running kubectl");
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(input.as_bytes())
                    .unwrap();
                child.wait_with_output().unwrap()
            }
            None => cmd.stdin(Stdio::null()).output().expect("running kubectl"),
        }
    }

    /// Runs kubectl and returns its stdout, failing the test on error.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.kubectl_stdin(args, Some(stdin));
        assert!(
            out.status.success(),
            "kubectl {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl expecting failure; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {} should have failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn fails_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.kubectl_stdin(args, Some(stdin));
        assert!(
            !out.status.success(),
            "kubectl {} should have failed",
            args.join(" ")
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Stops the server (SIGKILL by PID) without removing its data.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let child = Command::new(krate_bin())
            .arg("server")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args([
                "--https-listen-port",
                &self.port.to_string(),
                "--bind-address",
                "127.0.0.1",
            ])
            .args(&self.extra)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("restarting krate server");
        self.child = Some(child);
        self.wait_ready();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let Some(names) = self.agent.clone() else {
            self.kill();
            return;
        };
        // Let the agent tear its pods down (network included) first.
        if self.child.is_some() {
            // Controllers first (orphaning their pods), or they replace
            // the pods force-deleted below.
            let _ = self.kubectl(&[
                "delete",
                "deployments,replicasets,statefulsets,daemonsets,jobs,cronjobs,replicationcontrollers",
                "--all",
                "-A",
                "--cascade=orphan",
            ]);
            let _ = self.kubectl(&[
                "delete",
                "pods",
                "--all",
                "-A",
                "--wait=false",
                "--grace-period=0",
                "--force",
            ]);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && !self.runc_ids().is_empty() {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        self.kill();
        self.remove_agent_leftovers(&names);
    }
}

fn run_quiet(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Cluster {
    pub fn runc_root(&self) -> PathBuf {
        self.data_dir().join("runtime").join("runc")
    }

    /// IDs of the runc containers (sandboxes included) of this cluster.
    pub fn runc_ids(&self) -> Vec<String> {
        runc_ids_in(&self.runc_root())
    }

    /// `runc state` of a container as JSON.
    pub fn runc_state(&self, id: &str) -> Option<serde_json::Value> {
        let root = self.runc_root().display().to_string();
        let out = run_quiet("runc", &["--root", &root, "state", id])?;
        serde_json::from_str(&out).ok()
    }

    /// Removes what the agent left on the machine: containers, mounts,
    /// network namespaces, the bridge, routes and cgroups.
    fn remove_agent_leftovers(&self, names: &AgentNames) {
        remove_node_leftovers(
            &self.runc_root(),
            self.dir.path(),
            &names.bridge,
            &[&names.cluster_cidr, &names.service_cidr],
            &names.cgroup_parent,
        );
    }

    /// Unmounts everything mounted under the test directory, deepest first.
    fn unmount_all(&self) {
        unmount_under(self.dir.path());
    }
}

/// Removes what a node agent made, after it was killed: its runc
/// containers (`runc_root`), the mounts under `dir`, its default network on
/// `bridge`, the unreachable routes for `cidrs` and the cgroup tree
/// `cgroup`.
pub fn remove_node_leftovers(
    runc_root: &Path,
    dir: &Path,
    bridge: &str,
    cidrs: &[&str],
    cgroup: &str,
) {
    let root = runc_root.display().to_string();
    for id in runc_ids_in(runc_root) {
        let _ = run_quiet("runc", &["--root", &root, "kill", &id, "KILL"]);
    }
    std::thread::sleep(Duration::from_millis(200));
    for id in runc_ids_in(runc_root) {
        let _ = run_quiet("runc", &["--root", &root, "delete", "--force", &id]);
    }
    unmount_under(dir);
    let _ = net::default_network::tear_down(&net::DefaultNetwork {
        name: format!("krate-{bridge}"),
        bridge: bridge.to_string(),
        ..Default::default()
    });
    for cidr in cidrs {
        let _ = run_quiet("ip", &["route", "del", "unreachable", cidr]);
    }
    runtime::cgroups::remove_tree(cgroup);
}

/// The ids of the containers runc knows under `root`.
fn runc_ids_in(root: &Path) -> Vec<String> {
    let Some(out) = run_quiet(
        "runc",
        &["--root", &root.display().to_string(), "list", "-q"],
    ) else {
        return Vec::new();
    };
    out.lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Unmounts everything mounted under `dir`, deepest first.
pub fn unmount_under(dir: &Path) {
    let dir = dir.display().to_string();
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&dir))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let _ = run_quiet("umount", &["-l", &m]);
    }
}

pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

impl Cluster {
    /// A kube-rs client of this cluster with the admin credentials.
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .expect("reading the admin kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("kube config");
        kube::Client::try_from(config).expect("kube client")
    }
}

/// Polls `check` every 100 ms until it returns `Ok`, for at most `within`;
/// panics with the last reason otherwise. Returns what `check` returned.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(why) if tokio::time::Instant::now() >= deadline => {
                panic!("{what} not reached within {within:?}: {why}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Polls a blocking `check` (kubectl calls) until it returns `Ok`.
pub fn eventually_blocking<T>(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match check() {
            Ok(v) => return v,
            Err(why) if Instant::now() >= deadline => {
                panic!("{what} not reached within {within:?}: {why}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The `krate` binary under test: `KRATE_BIN` if set (a private copy, when
/// several people build into one target directory), else Cargo's.
fn krate_bin() -> PathBuf {
    std::env::var_os("KRATE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_krate").into())
}

// ---------------------------------------------------------------------------
// A simulated machine reboot of an agent cluster.

impl Cluster {
    /// What a reboot does to this cluster's node, the data directory left
    /// as it is on disk: the server is killed (SIGKILL), and so is every
    /// shim, pause and container process (by PID: the shims recorded in the
    /// runtime's status files, the processes of the pods' cgroup tree); the
    /// mounts under the test directory (network namespaces, sandbox shm,
    /// container root filesystems, pod volumes), the cgroups, the veths, the
    /// bridge, the network's iptables rules and unreachable routes, and the
    /// run directory go; the Node and the runtime's files tell of another
    /// boot id. host-local's IP allocations stay, as on a real node's disk.
    /// [`Cluster::restart`] then boots the node again.
    pub fn simulate_reboot(&mut self) {
        let names = self.agent.clone().expect("a cluster with an agent");
        // The Node, like the files, tells of the boot before.
        for node in self.ok(&["get", "nodes", "-o", "name"]).lines() {
            let boot = format!(r#"{{"status":{{"nodeInfo":{{"bootID":"{BOOT_BEFORE}"}}}}}}"#);
            let patch = [
                "patch",
                node,
                "--subresource=status",
                "--type=merge",
                "-p",
                &boot,
            ];
            self.ok(&patch);
        }
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let pids = self
                .shim_pids()
                .into_iter()
                .chain(cgroup_pids(&names.cgroup_parent));
            let pids: Vec<i32> = pids.collect();
            if pids.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "processes outlived SIGKILL: {pids:?}"
            );
            for pid in pids {
                let _ = run_quiet("kill", &["-9", &pid.to_string()]);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.unmount_all();
        runtime::cgroups::remove_tree(&names.cgroup_parent);
        // The host ends of the pods' veths, should a namespace linger.
        if let Some(links) = run_quiet("ip", &["-o", "link", "show", "master", &names.bridge]) {
            for link in links.lines() {
                if let Some(name) = link.split(": ").nth(1) {
                    let name = name.split('@').next().unwrap_or(name);
                    let _ = run_quiet("ip", &["link", "del", name]);
                }
            }
        }
        // tear_down also forgets host-local's allocations, which a reboot
        // keeps: they are put back.
        let network = format!("krate-{}", names.bridge);
        let ips = Path::new(net::default_network::HOST_LOCAL_DATA_DIR).join(&network);
        let kept = self.dir.path().join("host-local-before-reboot");
        let _ = std::fs::rename(&ips, &kept);
        net::default_network::tear_down(&net::DefaultNetwork {
            name: network,
            bridge: names.bridge.clone(),
            ..Default::default()
        })
        .expect("removing the pod network's host side");
        if kept.exists() {
            std::fs::rename(&kept, &ips).unwrap();
        }
        for cidr in [&names.cluster_cidr, &names.service_cidr] {
            let _ = run_quiet("ip", &["route", "del", "unreachable", cidr]);
        }
        // The run directory is on a tmpfs: after a boot it is not there.
        let run = self.data_dir().join("run");
        if run.exists() {
            std::fs::remove_dir_all(&run).unwrap();
        }
        // The runtime's files now come from the boot before.
        for path in self.shim_status_files() {
            if let Ok(mut status) = runtime::state::read_json::<runtime::state::ShimStatus>(&path) {
                status.boot_id = Some(BOOT_BEFORE.into());
                runtime::state::write_json(&path, &status).unwrap();
            }
        }
        std::fs::write(self.data_dir().join("runtime/boot_id"), BOOT_BEFORE).unwrap();
    }

    /// The runtime's shim status files, of sandboxes and containers.
    fn shim_status_files(&self) -> Vec<PathBuf> {
        let root = self.data_dir().join("runtime");
        ["sandboxes", "containers"]
            .iter()
            .flat_map(|kind| {
                std::fs::read_dir(root.join(kind))
                    .into_iter()
                    .flatten()
                    .flatten()
            })
            .map(|e| e.path().join(runtime::state::STATUS))
            .collect()
    }

    /// PIDs of the live shims recorded in the runtime's status files.
    fn shim_pids(&self) -> Vec<i32> {
        self.shim_status_files()
            .iter()
            .filter_map(|path| runtime::state::read_json::<runtime::state::ShimStatus>(path).ok())
            .filter(|s| s.shim_alive())
            .map(|s| s.shim_pid)
            .collect()
    }
}

/// The boot id [`Cluster::simulate_reboot`] gives the boot before.
pub const BOOT_BEFORE: &str = "00000000-0000-4000-8000-000000000000";

/// PIDs in the cgroup `path` and below it, in every hierarchy.
fn cgroup_pids(path: &str) -> Vec<i32> {
    fn walk(dir: &Path, out: &mut Vec<i32>) {
        if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            out.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&e.path(), out);
            }
        }
    }
    let mut pids = Vec::new();
    for dir in runtime::cgroups::dirs(path) {
        walk(&dir, &mut pids);
    }
    pids.sort();
    pids.dedup();
    pids
}
