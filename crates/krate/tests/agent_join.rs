//! `krate agent --server URL --token TOKEN`: a node joins a server with the
//! server's token, checks the server's CA against the hash in it, gets a
//! kubelet client certificate with the token (TLS bootstrap), registers
//! as `system:node:<name>` with it, and serves its kubelet API with a certificate
//! from an auto-approved kubelet-serving CSR, so that `kubectl logs` and
//! `kubectl exec` work for its pods; a wrong token, a wrong CA hash or a
//! bare secret are refused. Root only; in the nextest group `agent`.

#[path = "agent_join/node_auth.rs"]
mod node_auth;
mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{eventually_blocking, Cluster, BUSYBOX};

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
        let cidrs: Vec<&str> = self.cidrs.iter().map(String::as_str).collect();
        support::remove_node_leftovers(
            &self.dir.join("runtime").join("runc"),
            &self.dir,
            &self.bridge,
            &cidrs,
            &self.cgroup,
        );
    }
}

/// Runs `krate agent` expecting it to give up; returns what it printed.
fn failed_join(c: &Cluster, token: &str, name: &str) -> String {
    let dir = c.dir.path().join(name);
    let mut child = Command::new(krate_bin())
        .args(["agent", "--server", &c.server_url(), "--token", token])
        .arg("--data-dir")
        .arg(&dir)
        .args(["--node-name", name, "--kubelet-port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("krate agent with token {token:?} did not give up");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn krate_bin() -> std::path::PathBuf {
    std::env::var_os("KRATE_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_krate").into())
}

#[test]
fn an_agent_joins_with_the_server_token_and_serves_logs_and_exec() {
    // A /23 (the node's /24 route is more specific than the cluster
    // CIDR's unreachable route), away from the ranges of support's agents.
    let n = std::process::id() % 256;
    let cluster_cidr = format!("10.{}.{}.0/23", 240 + n / 128, (n % 128) * 2);
    let service_cidr = format!("10.{}.{}.0/24", 252 + n / 128, (n % 128) * 2);
    let c = Cluster::start_with(&[
        "--cluster-cidr",
        &cluster_cidr,
        "--service-cidr",
        &service_cidr,
    ]);
    let token = std::fs::read_to_string(c.data_dir().join("token")).unwrap();
    let dir = c.dir.path().join("worker");
    let images = dir.join("agent").join("images");
    std::fs::create_dir_all(&images).unwrap();
    image::testing::busybox_oci_archive(&images.join("busybox.tar"), BUSYBOX).unwrap();
    let log_path = c.dir.path().join("agent.log");
    let bridge = format!("krj{}", std::process::id() % 1_000_000);
    let cgroup = format!("krate-join-{}", std::process::id());
    let spawn = || {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        Command::new(krate_bin())
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
            .args(["--kubelet-port", "0", Cluster::EVICTION_HARD])
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
            .unwrap()
    };
    let mut agent = Agent {
        child: spawn(),
        dir: dir.clone(),
        bridge: bridge.clone(),
        cidrs: vec![cluster_cidr.clone(), service_cidr.clone()],
        cgroup: cgroup.clone(),
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
    assert_eq!(
        node["spec"]["podCIDR"],
        cluster_cidr.replace("/23", "/24").as_str()
    );
    assert!(node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"].is_null());
    // Its Lease is renewed under its name.
    c.ok(&["get", "lease", "-n", "kube-node-lease", "worker-1"]);
    // A wrong join token is refused.
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
    // The kubelet API serves with a certificate from an approved,
    // issued kubelet-serving CSR of the node.
    let csr = eventually_blocking(
        Duration::from_secs(60),
        "the node's serving CSR issued",
        || {
            let out = c.ok(&["get", "csr", "-o", "json"]);
            let list: serde_json::Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
            list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|i| {
                    i["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
                        && i["spec"]["username"] == "system:node:worker-1"
                        && i["status"]["certificate"].is_string()
                })
                .cloned()
                .ok_or(out)
        },
    );
    assert_eq!(csr["status"]["conditions"][0]["type"], "Approved");
    assert_eq!(csr["status"]["conditions"][0]["reason"], "AutoApproved");

    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hello\nspec:\n  nodeName: worker-1\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n    command: [\"sh\", \"-c\", \"echo hello from worker-1; sleep 3600\"]\n"
        ),
    );
    let logs = eventually_blocking(Duration::from_secs(60), "kubectl logs of the pod", || {
        let out = c.kubectl(&["logs", "hello"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && text.contains("hello from worker-1") {
            Ok(text)
        } else {
            Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
        }
    });
    assert_eq!(logs.trim(), "hello from worker-1");
    let out = c.ok(&[
        "exec",
        "hello",
        "--",
        "sh",
        "-c",
        "echo exec on $(hostname)",
    ]);
    assert_eq!(out.trim(), "exec on hello");
    node_auth::node_credentials_are_its_own(&c, token.trim(), "worker-1", &dir);

    // A restarted agent reuses its stored client certificate (no second
    // kubelet client CSR) and serves its running pod again.
    let client_csrs = || {
        c.ok(&["get", "csr", "-o", "json"])
            .matches("kubernetes.io/kube-apiserver-client-kubelet")
            .count()
    };
    let before = client_csrs();
    let _ = agent.child.kill();
    let _ = agent.child.wait();
    agent.child = spawn();
    eventually_blocking(
        Duration::from_secs(60),
        "exec through the restarted agent",
        || {
            let out = c.kubectl(&["exec", "hello", "--", "echo", "again"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if text.trim() == "again" {
                Ok(())
            } else {
                Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
            }
        },
    );
    assert_eq!(client_csrs(), before);
    assert!(std::fs::read_to_string(&log_path)
        .unwrap()
        .contains("using the stored kubelet client certificate"));
    c.ok(&[
        "delete",
        "pod",
        "hello",
        "--grace-period=1",
        "--wait=true",
        "--timeout=60s",
    ]);

    // A token whose CA hash is not the server's CA: the agent refuses the
    // server before sending it anything.
    let secret = token.trim().rsplit_once("::server:").unwrap().1;
    let wrong = format!("K10{}::server:{secret}", "0".repeat(64));
    let why = failed_join(&c, &wrong, "wrong-ca");
    assert!(
        why.contains("the server's CA certificate does not match the token")
            && why.contains(&"0".repeat(64)),
        "{why}"
    );
    // A bare secret vouches for no server.
    let why = failed_join(&c, secret, "bare-secret");
    assert!(why.contains("--ca-file"), "{why}");
}
