//! `krate agent --server URL --token TOKEN`: a node joins a server with the
//! server's shared token and registers as `system:node:<name>`; a wrong
//! token is refused. Root only; in the nextest group `agent`.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{eventually_blocking, Cluster};

/// A `krate agent` process, killed by PID on drop with what it made.
struct Agent {
    child: Child,
    dir: std::path::PathBuf,
    bridge: String,
    cidrs: Vec<String>,
    cgroup: String,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Mounts the agent made under its data directory, deepest first.
        let dir = self.dir.display().to_string();
        let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&dir))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = Command::new("umount")
                .args(["-l", &m])
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
        for c in &self.cidrs {
            let _ = Command::new("ip")
                .args(["route", "del", "unreachable", c])
                .stderr(Stdio::null())
                .status();
        }
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(h.path().join(&self.cgroup).join("kubepods"));
            let _ = std::fs::remove_dir(h.path().join(&self.cgroup));
        }
    }
}

fn krate_bin() -> std::path::PathBuf {
    std::env::var_os("KRATE_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_krate").into())
}

#[test]
fn an_agent_joins_with_the_server_token_and_gets_a_pod_cidr() {
    let n = std::process::id() % 250;
    let cluster_cidr = format!("10.247.{n}.0/24");
    let service_cidr = format!("10.251.{n}.0/24");
    let c = Cluster::start_with(&[
        "--cluster-cidr",
        &cluster_cidr,
        "--service-cidr",
        &service_cidr,
    ]);
    let token = std::fs::read_to_string(c.data_dir().join("token")).unwrap();
    let dir = c.dir.path().join("worker");
    let log = std::fs::File::create(c.dir.path().join("agent.log")).unwrap();
    let bridge = format!("krj{}", std::process::id() % 1_000_000);
    let cgroup = format!("krate-join-{}", std::process::id());
    let child = Command::new(krate_bin())
        .args([
            "agent",
            "--server",
            &c.server_url(),
            "--token",
            token.trim(),
        ])
        .arg("--data-dir")
        .arg(&dir)
        .args(["--node-name", "Worker-1", "--cni-bridge", &bridge])
        .args([
            "--cluster-cidr",
            &cluster_cidr,
            "--service-cidr",
            &service_cidr,
        ])
        .args(["--cgroup-root", &format!("/{cgroup}/kubepods")])
        .arg("--pod-log-dir")
        .arg(dir.join("pod-logs"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let _agent = Agent {
        child,
        dir: dir.clone(),
        bridge,
        cidrs: vec![cluster_cidr.clone(), service_cidr.clone()],
        cgroup,
    };
    let node = eventually_blocking(
        Duration::from_secs(60),
        "the joined node Ready with a pod CIDR",
        || {
            let out = c.kubectl(&["get", "node", "worker-1", "-o", "json"]);
            let node: serde_json::Value = serde_json::from_slice(&out.stdout)
                .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&out.stderr)))?;
            let ready = node["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            if ready && node["spec"]["podCIDR"].is_string() {
                Ok(node)
            } else {
                Err(format!("{node}"))
            }
        },
    );
    assert_eq!(node["spec"]["podCIDR"], cluster_cidr.as_str());
    assert!(node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"].is_null());
    // Its Lease is renewed under its name.
    c.ok(&["get", "lease", "-n", "kube-node-lease", "worker-1"]);
    // The join token is a node identity, nothing more: a wrong one is refused.
    let wrong = Command::new("kubectl")
        .args([
            "--server",
            &c.server_url(),
            "--insecure-skip-tls-verify",
            "--token",
            "wrong:worker-1",
            "get",
            "nodes",
        ])
        .env("KUBECONFIG", "/dev/null")
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    let why = String::from_utf8_lossy(&wrong.stderr);
    assert!(why.contains("You must be logged in to the server"), "{why}");
    let right = Command::new("kubectl")
        .args([
            "--server",
            &c.server_url(),
            "--insecure-skip-tls-verify",
            "--token",
            &format!("{}:worker-1", token.trim()),
            "auth",
            "whoami",
        ])
        .env("KUBECONFIG", "/dev/null")
        .output()
        .unwrap();
    let who = String::from_utf8_lossy(&right.stdout);
    assert!(
        who.contains("system:node:worker-1") && who.contains("system:nodes"),
        "{who}{}",
        String::from_utf8_lossy(&right.stderr)
    );
}
