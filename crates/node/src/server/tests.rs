//! The kubelet API against a fake runtime: TLS and client certificates,
//! logs, exec over `v5.channel.k8s.io`, and port-forward over SPDY tunneled
//! in a WebSocket.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use futures::{SinkExt, StreamExt};
use runtime::cri::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::spdy::{self, Frame};
use super::*;

/// One pod `default/web` with container `app` (attempts 0 and 1), whose
/// exec runs `sh -c` on this machine, and whose port-forward reaches
/// `forward_to` on loopback.
struct FakeRuntime {
    log_dir: PathBuf,
    forward_to: Mutex<u16>,
}

fn labels(container: Option<&str>) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert(resolve::POD_NAMESPACE_LABEL.into(), "default".into());
    l.insert(resolve::POD_NAME_LABEL.into(), "web".into());
    l.insert(resolve::POD_UID_LABEL.into(), "uid-1".into());
    if let Some(c) = container {
        l.insert(resolve::CONTAINER_NAME_LABEL.into(), c.into());
    }
    l
}

impl FakeRuntime {
    fn container(&self, attempt: u32) -> ContainerStatus {
        ContainerStatus {
            id: format!("c{attempt}"),
            pod_sandbox_id: "s1".into(),
            metadata: ContainerMetadata {
                name: "app".into(),
                attempt,
            },
            state: if attempt == 1 {
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
}

#[async_trait]
impl RuntimeService for FakeRuntime {
    async fn version(&self) -> Result<String> {
        Ok("fake://1".into())
    }
    async fn run_pod_sandbox(&self, _: &PodSandboxConfig) -> Result<String> {
        unimplemented!()
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
        unimplemented!()
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
        let attempt = if id == "c1" { 1 } else { 0 };
        Ok(self.container(attempt))
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
        unimplemented!()
    }
    async fn exec(&self, _: &str, cmd: &[String], opts: &StreamOptions) -> Result<StreamSession> {
        let mut child = tokio::process::Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| runtime::cri::Error::Io {
                op: "spawn".into(),
                source: e,
            })?;
        let stdin = child.stdin.take().map(|s| Box::new(s) as BoxedWriter);
        let stdout = child.stdout.take().map(|s| Box::new(s) as BoxedReader);
        let stderr = child.stderr.take().map(|s| Box::new(s) as BoxedReader);
        let (tx, exit) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let status = child.wait().await.ok().and_then(|s| s.code()).unwrap_or(-1);
            let _ = tx.send(status);
        });
        Ok(StreamSession {
            stdin: stdin.filter(|_| opts.stdin),
            stdout: stdout.filter(|_| opts.stdout),
            stderr: stderr.filter(|_| opts.stderr),
            resize: None,
            exit,
        })
    }
    async fn attach(&self, _: &str, _: &StreamOptions) -> Result<StreamSession> {
        unimplemented!()
    }
    async fn port_forward(&self, _: &str, port: u16) -> Result<TcpStream> {
        let to = *self.forward_to.lock().unwrap();
        assert_eq!(port, 80);
        TcpStream::connect(("127.0.0.1", to))
            .await
            .map_err(|e| runtime::cri::Error::Io {
                op: "connect".into(),
                source: e,
            })
    }
    async fn container_stats(&self, _: &str) -> Result<ContainerStats> {
        unimplemented!()
    }
}

/// A CA, the kubelet's serving certificate and two client certificates.
struct Certs {
    ca_pem: String,
    serving: (String, String),
    admin: (String, String),
    node: (String, String),
}

fn certs() -> Certs {
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "test-ca");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf = |cn: &str, org: Option<&str>, server: bool| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(if server {
            vec!["localhost".to_string()]
        } else {
            vec![]
        })
        .unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        if let Some(o) = org {
            dn.push(DnType::OrganizationName, o);
        }
        p.distinguished_name = dn;
        if server {
            p.subject_alt_names
                .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        } else {
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        }
        let cert = p.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Certs {
        ca_pem: ca.pem(),
        serving: leaf("node-1", None, true),
        admin: leaf("kube-apiserver-kubelet-client", Some(ADMIN_GROUP), false),
        node: leaf("system:node:node-2", Some("system:nodes"), false),
    }
}

struct Harness {
    port: u16,
    certs: Certs,
    dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn start(forward_to: u16) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    std::fs::write(
        dir.path().join("app/0.log"),
        "2024-05-01T10:00:00.000000000Z stdout F before restart\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("app/1.log"),
        "2024-05-01T10:00:01.000000000Z stdout F hello\n2024-05-01T10:00:02.000000000Z stderr F world\n",
    )
    .unwrap();
    let rt = Arc::new(FakeRuntime {
        log_dir: dir.path().to_path_buf(),
        forward_to: Mutex::new(forward_to),
    });
    let certs = certs();
    let (bound, server) = super::start(
        rt,
        "127.0.0.1:0".parse().unwrap(),
        &certs.serving.0,
        &certs.serving.1,
        &certs.ca_pem,
    )
    .await
    .unwrap();
    let port = bound.port();
    Harness {
        port,
        certs,
        dir,
        server,
    }
}

async fn connect(
    h: &Harness,
    client: &(String, String),
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(h.certs.ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let chain: Vec<_> = CertificateDer::pem_slice_iter(client.0.as_bytes())
        .collect::<std::result::Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(client.1.as_bytes()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", h.port)).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap()
}

/// A plain HTTP/1.0 GET; returns the status line's code and the body.
async fn get(h: &Harness, client: &(String, String), path: &str) -> (u16, String) {
    let mut s = connect(h, client).await;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let code = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

#[tokio::test]
async fn only_the_masters_group_may_use_the_api() {
    let h = start(0).await;
    let (code, body) = get(&h, &h.certs.node, "/containerLogs/default/web/app").await;
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("user=system:node:node-2"), "{body}");
    let (code, _) = get(&h, &h.certs.admin, "/containerLogs/default/web/app").await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn container_logs_current_previous_and_timestamps() {
    let h = start(0).await;
    let (_, body) = get(&h, &h.certs.admin, "/containerLogs/default/web/app").await;
    assert_eq!(body, "hello\nworld\n");
    let (_, body) = get(
        &h,
        &h.certs.admin,
        "/containerLogs/default/web/app?previous=true",
    )
    .await;
    assert_eq!(body, "before restart\n");
    let (_, body) = get(
        &h,
        &h.certs.admin,
        "/containerLogs/default/web/app?tailLines=1&timestamps=true",
    )
    .await;
    assert_eq!(body, "2024-05-01T10:00:02.000000000Z world\n");
    let (code, body) = get(&h, &h.certs.admin, "/containerLogs/default/web/nope").await;
    assert_eq!(code, 400, "{body}");
}

async fn websocket(
    h: &Harness,
    path: &str,
    protocols: &str,
) -> (
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>,
    String,
) {
    let stream = connect(h, &h.certs.admin).await;
    let mut req = format!("wss://localhost:{}{path}", h.port)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", protocols.parse().unwrap());
    let (ws, resp) = tokio_tungstenite::client_async(req, stream).await.unwrap();
    let protocol = resp
        .headers()
        .get("Sec-WebSocket-Protocol")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (ws, protocol)
}

#[tokio::test]
async fn exec_streams_stdin_and_output_and_reports_the_exit_code() {
    let h = start(0).await;
    let cmd = "read line; echo got $line; echo oops >&2; exit 3";
    let path = format!(
        "/exec/default/web/app?command=sh&command=-c&command={}&stdin=true&stdout=true&stderr=true",
        form_urlencoded::byte_serialize(cmd.as_bytes()).collect::<String>()
    );
    let (mut ws, protocol) = websocket(&h, &path, "v5.channel.k8s.io, v4.channel.k8s.io").await;
    assert_eq!(protocol, "v5.channel.k8s.io");
    ws.send(Message::Binary(Bytes::from_static(b"\x00hi\n")))
        .await
        .unwrap();
    ws.send(Message::Binary(Bytes::from_static(b"\xff\x00")))
        .await
        .unwrap();
    let (mut stdout, mut stderr, mut status) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(Ok(m)) = ws.next().await {
        match m {
            Message::Binary(b) => match b[0] {
                1 => stdout.extend_from_slice(&b[1..]),
                2 => stderr.extend_from_slice(&b[1..]),
                3 => status.extend_from_slice(&b[1..]),
                _ => {}
            },
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert_eq!(String::from_utf8_lossy(&stdout), "got hi\n");
    assert_eq!(String::from_utf8_lossy(&stderr), "oops\n");
    let status: serde_json::Value = serde_json::from_slice(&status).unwrap();
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "3");
}

#[tokio::test]
async fn port_forward_tunnels_spdy_in_a_websocket() {
    // The "pod's port 80": answers one line and closes.
    let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend_port = backend.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = backend.accept().await.unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await.unwrap();
        s.write_all(b"pong:").await.unwrap();
        s.write_all(&buf).await.unwrap();
    });
    let h = start(backend_port).await;
    let (mut ws, protocol) = websocket(
        &h,
        "/portForward/default/web",
        "SPDY/3.1+portforward.k8s.io",
    )
    .await;
    assert_eq!(protocol, "SPDY/3.1+portforward.k8s.io");
    let mut w = spdy::Writer::default();
    let mut out = BytesMut::new();
    for (id, kind) in [(1, "error"), (3, "data")] {
        w.encode(
            &Frame::SynStream {
                stream_id: id,
                fin: false,
                headers: vec![
                    ("streamtype".into(), kind.into()),
                    ("port".into(), "80".into()),
                    ("requestid".into(), "0".into()),
                ],
            },
            &mut out,
        );
    }
    w.encode(
        &Frame::Data {
            stream_id: 3,
            fin: true,
            data: Bytes::from_static(b"hello"),
        },
        &mut out,
    );
    ws.send(Message::Binary(out.freeze())).await.unwrap();
    let mut r = spdy::Reader::default();
    let mut buf = BytesMut::new();
    let (mut replies, mut data, mut error_closed, mut data_closed) = (0, Vec::new(), false, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(error_closed && data_closed) {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("port-forward answers in time");
        let Some(Ok(Message::Binary(b))) = m else {
            panic!("unexpected {m:?}")
        };
        buf.extend_from_slice(&b);
        while let Some(f) = r.decode(&mut buf).unwrap() {
            match f {
                Frame::SynReply { .. } => replies += 1,
                Frame::Data {
                    stream_id: 3,
                    fin,
                    data: d,
                } => {
                    data.extend_from_slice(&d);
                    data_closed |= fin;
                }
                Frame::Data {
                    stream_id: 1,
                    fin,
                    data: d,
                } => {
                    assert!(d.is_empty(), "error: {}", String::from_utf8_lossy(&d));
                    error_closed |= fin;
                }
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }
    assert_eq!(replies, 2);
    assert_eq!(data, b"pong:hello");
}

#[tokio::test]
async fn port_forward_over_websocket_channels_as_client_libraries_speak_it() {
    let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend_port = backend.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = backend.accept().await.unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await.unwrap();
        s.write_all(b"pong:").await.unwrap();
        s.write_all(&buf).await.unwrap();
    });
    let h = start(backend_port).await;
    let (mut ws, protocol) =
        websocket(&h, "/portForward/default/web?ports=80", "v4.channel.k8s.io").await;
    assert_eq!(protocol, "v4.channel.k8s.io");
    let mut first = Vec::new();
    while first.len() < 2 {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => first.push(b.to_vec()),
            other => panic!("unexpected {other:?}"),
        }
    }
    first.sort();
    assert_eq!(first, vec![vec![0, 80, 0], vec![1, 80, 0]]);
    ws.send(Message::Binary(Bytes::from_static(b"\x00hello")))
        .await
        .unwrap();
    let mut data = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while data.len() < 10 {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the pod answers in time");
        match m {
            Some(Ok(Message::Binary(b))) => {
                assert_eq!(b[0], 0, "data channel: {b:?}");
                data.extend_from_slice(&b[1..]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(data, b"pong:hello");
}

#[tokio::test]
async fn an_exec_that_cannot_start_reports_an_internal_error_on_the_error_channel() {
    let h = start(0).await;
    let (mut ws, _) = websocket(
        &h,
        "/exec/default/web/app?command=/no/such/binary&stdout=true",
        "v5.channel.k8s.io",
    )
    .await;
    let mut status = Vec::new();
    while let Some(Ok(m)) = ws.next().await {
        match m {
            Message::Binary(b) if b[0] == 3 => status.extend_from_slice(&b[1..]),
            Message::Close(_) => break,
            _ => {}
        }
    }
    let status: serde_json::Value = serde_json::from_slice(&status).unwrap();
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "InternalError");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.starts_with("Internal error occurred: error executing command in container: "),
        "{message}"
    );
}

#[tokio::test]
async fn exec_falls_back_to_v4_for_clients_that_offer_only_v4() {
    let h = start(0).await;
    let (mut ws, protocol) = websocket(
        &h,
        "/exec/default/web/app?command=sh&command=-c&command=echo%20v4&stdout=true",
        "v4.channel.k8s.io",
    )
    .await;
    assert_eq!(protocol, "v4.channel.k8s.io");
    let (mut stdout, mut status) = (Vec::new(), Vec::new());
    while let Some(Ok(m)) = ws.next().await {
        match m {
            Message::Binary(b) if b[0] == 1 => stdout.extend_from_slice(&b[1..]),
            Message::Binary(b) if b[0] == 3 => status.extend_from_slice(&b[1..]),
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert_eq!(stdout, b"v4\n");
    let status: serde_json::Value = serde_json::from_slice(&status).unwrap();
    assert_eq!(status["status"], "Success");
}

#[tokio::test]
async fn follow_goes_on_in_the_new_file_after_a_rotation() {
    let h = start(0).await;
    let mut s = connect(&h, &h.certs.admin).await;
    s.write_all(
        b"GET /containerLogs/default/web/app?follow=true HTTP/1.0\r\nHost: localhost\r\n\r\n",
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut rotated = false;
    while !String::from_utf8_lossy(&got).contains("after rotation\n") {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, s.read(&mut buf))
            .await
            .expect("the followed log goes on")
            .unwrap();
        assert!(n > 0, "the stream ended: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        if !rotated && String::from_utf8_lossy(&got).contains("world\n") {
            let dir = h.dir.path().join("app");
            std::fs::rename(dir.join("1.log"), dir.join("1.log.20240501-100003")).unwrap();
            std::fs::write(
                dir.join("1.log"),
                "2024-05-01T10:00:04.000000000Z stdout F after rotation\n",
            )
            .unwrap();
            rotated = true;
        }
    }
}

#[tokio::test]
async fn exec_over_spdy_for_older_clients() {
    let h = start(0).await;
    let mut s = connect(&h, &h.certs.admin).await;
    s.write_all(
        b"POST /exec/default/web/app?command=sh&command=-c&command=echo%20hi%3B%20exit%203&stdout=true&stderr=true HTTP/1.1\r\n\
          Host: localhost\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\
          X-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n",
    )
    .await
    .unwrap();
    // The 101 answer, up to its blank line.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut w = spdy::Writer::default();
    let mut out = BytesMut::new();
    for (id, kind) in [(1, "error"), (3, "stdout"), (5, "stderr")] {
        w.encode(
            &Frame::SynStream {
                stream_id: id,
                fin: false,
                headers: vec![("streamType".into(), kind.into())],
            },
            &mut out,
        );
    }
    s.write_all(&out).await.unwrap();
    let mut r = spdy::Reader::default();
    let mut buf = BytesMut::new();
    let (mut stdout, mut status, mut error_closed) = (Vec::new(), Vec::new(), false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !error_closed {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .expect("the session ends in time")
            .unwrap();
        assert!(n > 0, "connection closed early");
        buf.extend_from_slice(&chunk[..n]);
        while let Some(f) = r.decode(&mut buf).unwrap() {
            match f {
                Frame::Data {
                    stream_id: 3, data, ..
                } => stdout.extend_from_slice(&data),
                Frame::Data {
                    stream_id: 1,
                    data,
                    fin,
                } => {
                    status.extend_from_slice(&data);
                    error_closed |= fin;
                }
                _ => {}
            }
        }
    }
    assert_eq!(stdout, b"hi\n");
    let status: serde_json::Value = serde_json::from_slice(&status).unwrap();
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "3");
}
