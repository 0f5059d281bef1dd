//! The real kubectl's logs, exec, attach, port-forward and cp through the
//! API server to a kubelet API (node::server) serving a runtime that runs
//! "containers" as processes of this test: the wire protocols end to end
//! (WebSocket v5.channel.k8s.io, SPDY tunneled in a WebSocket, the API
//! server's upgrade proxy and TLS to the kubelet). The same commands
//! against real containers are in agent_streaming.rs.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use kube::api::{Api, Patch, PatchParams, PostParams};
use runtime::cri::*;
use serde_json::json;
use support::Cluster;

/// Pod `default/web`, container `app` (attempt 0 exited, attempt 1
/// running): exec and attach run processes here; port-forward reaches
/// `backend` on loopback.
struct HostRuntime {
    log_dir: PathBuf,
    running: AtomicBool,
    backend: u16,
}

fn labels(container: Option<&str>) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert("io.kubernetes.pod.namespace".into(), "default".into());
    l.insert("io.kubernetes.pod.name".into(), "web".into());
    l.insert("io.kubernetes.pod.uid".into(), "uid-1".into());
    if let Some(c) = container {
        l.insert("io.kubernetes.container.name".into(), c.into());
    }
    l
}

fn io_error(e: std::io::Error) -> Error {
    Error::Io {
        op: "host process".into(),
        source: e,
    }
}

impl HostRuntime {
    fn container(&self, attempt: u32) -> ContainerStatus {
        let running = attempt == 1 && self.running.load(Ordering::SeqCst);
        ContainerStatus {
            id: format!("c{attempt}"),
            pod_sandbox_id: "s1".into(),
            metadata: ContainerMetadata {
                name: "app".into(),
                attempt,
            },
            state: if running {
                ContainerState::Running
            } else {
                ContainerState::Exited
            },
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
            exit_code: None,
            image: String::new(),
            image_ref: String::new(),
            reason: None,
            message: None,
            labels: labels(Some("app")),
            annotations: BTreeMap::new(),
            log_path: self.log_dir.join(format!("app/{attempt}.log")),
            mounts: Vec::new(),
        }
    }

    fn spawn(&self, argv: &[String], opts: &StreamOptions) -> Result<StreamSession> {
        let mut child = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(io_error)?;
        let stdin = child.stdin.take().map(|s| Box::new(s) as BoxedWriter);
        let stdout = child.stdout.take().map(|s| Box::new(s) as BoxedReader);
        let stderr = child.stderr.take().map(|s| Box::new(s) as BoxedReader);
        let (tx, exit) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let code = child.wait().await.ok().and_then(|s| s.code()).unwrap_or(-1);
            let _ = tx.send(code);
        });
        Ok(StreamSession {
            stdin: stdin.filter(|_| opts.stdin),
            stdout: stdout.filter(|_| opts.stdout),
            stderr: stderr.filter(|_| opts.stderr),
            resize: None,
            exit,
        })
    }
}

#[async_trait]
impl RuntimeService for HostRuntime {
    async fn version(&self) -> Result<String> {
        Ok("host://1".into())
    }
    async fn run_pod_sandbox(&self, _: &PodSandboxConfig) -> Result<String> {
        Err(Error::InvalidArgument("not here".into()))
    }
    async fn stop_pod_sandbox(&self, _: &str) -> Result<()> {
        Ok(())
    }
    async fn remove_pod_sandbox(&self, _: &str) -> Result<()> {
        Ok(())
    }
    async fn pod_sandbox_status(&self, _: &str) -> Result<PodSandboxStatus> {
        Ok(self.list_pod_sandbox().await?.remove(0))
    }
    async fn list_pod_sandbox(&self) -> Result<Vec<PodSandboxStatus>> {
        Ok(vec![PodSandboxStatus {
            id: "s1".into(),
            metadata: PodSandboxMetadata {
                name: "web".into(),
                namespace: "default".into(),
                uid: "uid-1".into(),
                attempt: 0,
            },
            state: PodSandboxState::Ready,
            created_at: Utc::now(),
            ips: vec![],
            netns_path: None,
            labels: labels(None),
            annotations: BTreeMap::new(),
        }])
    }
    async fn create_container(
        &self,
        _: &str,
        _: &ContainerConfig,
        _: &PodSandboxConfig,
    ) -> Result<String> {
        Err(Error::InvalidArgument("not here".into()))
    }
    async fn start_container(&self, _: &str) -> Result<()> {
        Ok(())
    }
    async fn stop_container(&self, _: &str, _: Duration) -> Result<()> {
        Ok(())
    }
    async fn remove_container(&self, _: &str) -> Result<()> {
        Ok(())
    }
    async fn container_status(&self, id: &str) -> Result<ContainerStatus> {
        Ok(self.container(if id == "c1" { 1 } else { 0 }))
    }
    async fn list_containers(&self) -> Result<Vec<ContainerStatus>> {
        Ok(vec![self.container(0), self.container(1)])
    }
    async fn update_container_resources(&self, _: &str, _: &LinuxContainerResources) -> Result<()> {
        Ok(())
    }
    async fn reopen_container_log(&self, _: &str) -> Result<()> {
        Ok(())
    }
    async fn exec_sync(&self, _: &str, _: &[String], _: Duration) -> Result<ExecSyncResponse> {
        Err(Error::InvalidArgument("not here".into()))
    }
    async fn exec(&self, _: &str, cmd: &[String], opts: &StreamOptions) -> Result<StreamSession> {
        self.spawn(cmd, opts)
    }
    async fn attach(&self, _: &str, opts: &StreamOptions) -> Result<StreamSession> {
        // The "container's" own stdio: a process that echoes its input.
        self.spawn(
            &["sh".into(), "-c".into(), "echo attached; cat".into()],
            opts,
        )
    }
    async fn port_forward(&self, _: &str, port: u16) -> Result<tokio::net::TcpStream> {
        if port != 80 {
            return Err(Error::InvalidArgument(format!("nothing listens on {port}")));
        }
        tokio::net::TcpStream::connect(("127.0.0.1", self.backend))
            .await
            .map_err(io_error)
    }
    async fn container_stats(&self, _: &str) -> Result<ContainerStats> {
        Err(Error::InvalidArgument("not here".into()))
    }
}

/// A cluster (API only), a kubelet API on loopback registered as Node
/// `host-node`, and pod `web` on it reported running.
struct Setup {
    cluster: Cluster,
    rt: tokio::runtime::Runtime,
    runtime: Arc<HostRuntime>,
    logs: tempfile::TempDir,
}

/// An HTTP/1.0 server: `GET /big` answers 8 MiB, `PUT /sink` the size and
/// byte sum of the body it got, anything else `hello from the pod`.
fn http_backend() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(32) {
            let Ok(s) = stream else { continue };
            std::thread::spawn(move || serve_one(s));
        }
    });
    port
}

fn serve_one(mut s: std::net::TcpStream) {
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut request = String::new();
    let _ = reader.read_line(&mut request);
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let body: Vec<u8> = if request.starts_with("GET /big") {
        (0..8 << 20).map(|i| (i % 251) as u8).collect()
    } else if request.starts_with("PUT /sink") {
        let mut got = vec![0u8; length];
        let _ = reader.read_exact(&mut got);
        let sum: u64 = got.iter().map(|b| *b as u64).sum();
        format!("{} {sum}\n", got.len()).into_bytes()
    } else {
        b"hello from the pod\n".to_vec()
    };
    let _ = write!(
        s,
        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(&body);
}

fn setup() -> Setup {
    let cluster = Cluster::start_with(&["--disable-controllers"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let logs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(logs.path().join("app")).unwrap();
    std::fs::write(
        logs.path().join("app/0.log"),
        "2024-05-01T10:00:00.000000000Z stdout F before the restart\n",
    )
    .unwrap();
    std::fs::write(
        logs.path().join("app/1.log"),
        "2024-05-01T10:00:01.000000000Z stdout F hello\n2024-05-01T10:00:02.000000000Z stderr F world\n",
    )
    .unwrap();
    let runtime = Arc::new(HostRuntime {
        log_dir: logs.path().to_path_buf(),
        running: AtomicBool::new(true),
        backend: http_backend(),
    });
    let pki = apiserver::tls::Pki::ensure(&apiserver::tls::PkiOptions {
        data_dir: cluster.data_dir(),
        ..Default::default()
    })
    .unwrap();
    let (cert, key) = pki
        .issue_kubelet_serving_cert(
            "host-node",
            &[],
            &["127.0.0.1".parse().unwrap()],
            Duration::from_secs(3600),
        )
        .unwrap();
    let (bound, _task) = rt
        .block_on(node::server::start(
            runtime.clone(),
            "127.0.0.1:0".parse().unwrap(),
            &cert,
            &key,
            &pki.ca_cert_pem,
        ))
        .unwrap();
    rt.block_on(async {
        let client = cluster.client().await;
        let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
        nodes
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({ "metadata": { "name": "host-node" } })).unwrap(),
            )
            .await
            .unwrap();
        nodes
            .patch_status(
                "host-node",
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": {
                    "addresses": [{ "type": "InternalIP", "address": "127.0.0.1" }],
                    "daemonEndpoints": { "kubeletEndpoint": { "Port": bound.port() } },
                }})),
            )
            .await
            .unwrap();
        let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client, "default");
        for (name, containers) in [("web", vec!["app"]), ("two", vec!["a", "b"])] {
            let containers: Vec<_> = containers
                .iter()
                .map(|c| json!({ "name": c, "image": "busybox" }))
                .collect();
            pods.create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": { "name": name },
                    "spec": { "nodeName": "host-node", "containers": containers },
                }))
                .unwrap(),
            )
            .await
            .unwrap();
        }
        pods.patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": {
                "phase": "Running",
                "containerStatuses": [{
                    "name": "app", "ready": true, "restartCount": 1, "image": "busybox", "imageID": "",
                    "containerID": "host://c1",
                    "state": { "running": { "startedAt": "2024-05-01T10:00:01Z" } },
                    "lastState": { "terminated": { "exitCode": 1, "containerID": "host://c0",
                        "startedAt": "2024-05-01T10:00:00Z", "finishedAt": "2024-05-01T10:00:00Z" } },
                }],
            }})),
        )
        .await
        .unwrap();
        pods.patch_status(
            "two",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": {
                "phase": "Pending",
                "containerStatuses": [
                    { "name": "a", "ready": false, "restartCount": 0, "image": "busybox", "imageID": "",
                      "state": { "waiting": { "reason": "ContainerCreating" } } },
                    { "name": "b", "ready": false, "restartCount": 0, "image": "busybox", "imageID": "",
                      "state": { "waiting": { "reason": "ContainerCreating" } } },
                ],
            }})),
        )
        .await
        .unwrap();
    });
    Setup {
        cluster,
        rt,
        runtime,
        logs,
    }
}

#[test]
fn logs_with_kubectls_options_and_upstreams_errors() {
    let s = setup();
    let c = &s.cluster;
    assert_eq!(c.ok(&["logs", "web"]), "hello\nworld\n");
    assert_eq!(
        c.ok(&["logs", "web", "-c", "app", "--previous"]),
        "before the restart\n"
    );
    assert_eq!(
        c.ok(&["logs", "web", "--timestamps", "--tail=1"]),
        "2024-05-01T10:00:02.000000000Z world\n"
    );
    assert_eq!(c.ok(&["logs", "web", "--limit-bytes=3"]), "hel");
    assert_eq!(c.ok(&["logs", "web", "--since=1h"]), "");
    assert_eq!(
        c.ok(&["logs", "web", "--since-time=2024-05-01T10:00:02Z"]),
        "world\n"
    );
    let err = c.fails(&["logs", "two", "-c", "b"]);
    assert!(
        err.contains("container \"b\" in pod \"two\" is waiting to start: ContainerCreating"),
        "{err}"
    );
    let err = c.fails(&["get", "--raw", "/api/v1/namespaces/default/pods/two/log"]);
    assert!(
        err.contains("a container name must be specified for pod two, choose one of: [a b]"),
        "{err}"
    );
    let err = c.fails(&["logs", "web", "-c", "nope"]);
    assert!(
        err.contains("container nope is not valid for pod web"),
        "{err}"
    );
    let err = c.fails(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/pods/web/log?tailLines=-1",
    ]);
    assert!(
        err.contains("PodLogOptions \"web\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"),
        "{err}"
    );
}

#[test]
fn logs_follow_until_the_container_exits() {
    let s = setup();
    let mut child = Command::new("kubectl")
        .args(["logs", "-f", "web"])
        .env("KUBECONFIG", &s.cluster.kubeconfig)
        .env("HOME", s.cluster.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "hello\n");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(s.logs.path().join("app/1.log"))
        .unwrap();
    f.write_all(b"2024-05-01T10:00:03.000000000Z stdout P par\n2024-05-01T10:00:03.100000000Z stdout F tial\n")
        .unwrap();
    let mut rest = String::new();
    out.read_line(&mut rest).unwrap(); // world
    rest.clear();
    out.read_line(&mut rest).unwrap();
    assert_eq!(rest, "partial\n");
    s.runtime.running.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "kubectl logs -f did not end with the container"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(s.rt);
}

#[test]
fn exec_prints_output_and_exits_with_the_commands_code() {
    let s = setup();
    let out = s.cluster.kubectl(&[
        "exec",
        "web",
        "--",
        "sh",
        "-c",
        "echo hi; echo err >&2; exit 3",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"));
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = s.cluster.kubectl_stdin(
        &["exec", "-i", "web", "--", "sh", "-c", "tr a-z A-Z"],
        Some("from stdin\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "FROM STDIN\n");
}

#[test]
fn attach_connects_to_the_containers_stdio() {
    let s = setup();
    let out = s
        .cluster
        .kubectl_stdin(&["attach", "-i", "web"], Some("echoed back\n"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("echoed back"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cp_copies_files_both_ways_through_tar_over_exec() {
    let s = setup();
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("local.txt");
    std::fs::write(&local, "to the pod\n").unwrap();
    let remote_dir = work.path().join("pod");
    std::fs::create_dir_all(&remote_dir).unwrap();
    let remote = remote_dir.join("copied.txt");
    s.cluster.ok(&[
        "cp",
        &local.display().to_string(),
        &format!("web:{}", remote.display()),
    ]);
    assert_eq!(std::fs::read_to_string(&remote).unwrap(), "to the pod\n");
    std::fs::write(remote_dir.join("back.txt"), "from the pod\n").unwrap();
    let back = work.path().join("back.txt");
    s.cluster.ok(&[
        "cp",
        &format!("web:{}", remote_dir.join("back.txt").display()),
        &back.display().to_string(),
    ]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "from the pod\n");
    // A file of 16 MiB, there and back.
    let big: Vec<u8> = (0..16u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let big_local = work.path().join("big.bin");
    std::fs::write(&big_local, &big).unwrap();
    let big_remote = remote_dir.join("big.bin");
    s.cluster.ok(&[
        "cp",
        &big_local.display().to_string(),
        &format!("web:{}", big_remote.display()),
    ]);
    assert!(
        std::fs::read(&big_remote).unwrap() == big,
        "16 MiB to the pod"
    );
    let big_back = work.path().join("big-back.bin");
    s.cluster.ok(&[
        "cp",
        &format!("web:{}", big_remote.display()),
        &big_back.display().to_string(),
    ]);
    assert!(
        std::fs::read(&big_back).unwrap() == big,
        "16 MiB from the pod"
    );
}

#[test]
fn port_forward_reaches_the_pods_port() {
    let s = setup();
    let local_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("kubectl")
        .args(["port-forward", "pod/web", &format!("{local_port}:80")])
        .env("KUBECONFIG", &s.cluster.kubeconfig)
        .env("HOME", s.cluster.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut child = Kill(child);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("Forwarding from"), "{line}");
    for _ in 0..2 {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", local_port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        assert!(answer.ends_with("hello from the pod\n"), "{answer}");
    }
    // Megabytes both ways through the SPDY streams.
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", local_port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    conn.write_all(b"GET /big HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).unwrap();
    let start = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let body = &answer[start..];
    assert_eq!(body.len(), 8 << 20);
    assert!(body.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    let upload: Vec<u8> = (0..4 << 20).map(|i| (i % 7) as u8).collect();
    let sum: u64 = upload.iter().map(|b| *b as u64).sum();
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", local_port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        conn,
        "PUT /sink HTTP/1.0\r\nContent-Length: {}\r\n\r\n",
        upload.len()
    )
    .unwrap();
    conn.write_all(&upload).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(
        answer.ends_with(&format!("{} {sum}\n", upload.len())),
        "{answer}"
    );
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "port-forward keeps running"
    );
}

#[test]
fn an_unreachable_kubelet_is_reported_as_upstream_words_it() {
    let s = setup();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    s.rt.block_on(async {
        let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(s.cluster.client().await);
        nodes
            .patch_status(
                "host-node",
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": {
                    "daemonEndpoints": { "kubeletEndpoint": { "Port": closed } },
                }})),
            )
            .await
            .unwrap();
    });
    let err = s.cluster.fails(&["logs", "web"]);
    assert!(
        err.contains(&format!(
            "Error from server: error dialing backend: dial tcp 127.0.0.1:{closed}: connect: connection refused"
        )),
        "{err}"
    );
}

#[test]
fn rbac_verbs_are_upstreams_get_for_logs_and_create_for_exec() {
    let s = setup();
    let c = &s.cluster;
    c.ok(&["create", "serviceaccount", "viewer"]);
    c.ok(&[
        "create",
        "role",
        "logs-only",
        "--verb=get",
        "--resource=pods,pods/log",
    ]);
    c.ok(&[
        "create",
        "rolebinding",
        "viewer",
        "--role=logs-only",
        "--serviceaccount=default:viewer",
    ]);
    let token = c.ok(&["create", "token", "viewer"]);
    // The admin kubeconfig with the token instead of the client certificate.
    let admin = std::fs::read_to_string(&c.kubeconfig).unwrap();
    let viewer: String = admin
        .lines()
        .filter(|l| !l.contains("client-certificate-data") && !l.contains("client-key-data"))
        .map(|l| {
            if l.trim() == "user:" {
                format!("{l}\n    token: {}", token.trim())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = c.dir.path().join("viewer.kubeconfig");
    std::fs::write(&config, viewer).unwrap();
    let config = config.display().to_string();
    assert_eq!(
        c.ok(&["--kubeconfig", &config, "logs", "web"]),
        "hello\nworld\n"
    );
    let err = c.fails(&["--kubeconfig", &config, "exec", "web", "--", "true"]);
    assert!(
        err.contains("pods \"web\" is forbidden: User \"system:serviceaccount:default:viewer\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"default\""),
        "{err}"
    );
    // get alone does not open a WebSocket exec: it needs create too.
    c.ok(&[
        "create",
        "role",
        "exec-get",
        "--verb=get",
        "--resource=pods/exec",
    ]);
    c.ok(&[
        "create",
        "rolebinding",
        "viewer-exec-get",
        "--role=exec-get",
        "--serviceaccount=default:viewer",
    ]);
    let err = c.fails(&["--kubeconfig", &config, "exec", "web", "--", "true"]);
    assert!(
        err.contains("cannot create resource \"pods/exec\""),
        "{err}"
    );
}

/// kubectl as older clients (kubectl 1.29, client-go's SPDY executor)
/// speak: SPDY/3.1 for exec, attach and port-forward.
fn kubectl_spdy(c: &Cluster, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new("kubectl");
    cmd.args(args)
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.dir.path())
        .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
        .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

#[test]
fn exec_and_port_forward_over_spdy_for_older_clients() {
    let s = setup();
    let c = &s.cluster;
    let local_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("kubectl")
        .args(["port-forward", "pod/web", &format!("{local_port}:80")])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.dir.path())
        .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let _child = Kill(child);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("Forwarding from"), "{line}");
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", local_port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.ends_with("hello from the pod\n"), "{answer}");
    let out = kubectl_spdy(
        c,
        &[
            "exec",
            "web",
            "--",
            "sh",
            "-c",
            "echo hi; echo err >&2; exit 3",
        ],
        None,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hi\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"));
    assert_eq!(out.status.code(), Some(3));
    let out = kubectl_spdy(
        c,
        &["exec", "-i", "web", "--", "sh", "-c", "tr a-z A-Z"],
        Some("spdy stdin\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "SPDY STDIN\n");
    let out = kubectl_spdy(c, &["attach", "-i", "web"], Some("over spdy\n"));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("over spdy"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kube_rs_exec_and_port_forward_speak_the_client_library_protocols() {
    use kube::api::AttachParams;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let s = setup();
    s.rt.block_on(async {
        let pods: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(s.cluster.client().await, "default");
        let mut attached = pods
            .exec(
                "web",
                ["sh", "-c", "echo from kube-rs"],
                &AttachParams::default().stderr(false),
            )
            .await
            .unwrap();
        let mut out = String::new();
        attached
            .stdout()
            .unwrap()
            .read_to_string(&mut out)
            .await
            .unwrap();
        assert_eq!(out, "from kube-rs\n");
        let status = attached.take_status().unwrap().await.unwrap();
        assert_eq!(status.status.as_deref(), Some("Success"));

        let mut forwarder = pods.portforward("web", &[80]).await.unwrap();
        let mut conn = forwarder.take_stream(80).unwrap();
        conn.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.ends_with("hello from the pod\n"), "{answer}");
        drop(conn);
        let _ = forwarder.join().await;
    });
}
