//! Container probes on real containers: a failing liveness probe restarts
//! the container with upstream's events, readiness decides the Ready
//! condition (httpGet, tcpSocket, gRPC against a real gRPC health server,
//! HTTPS against a self-signed server), and a startup probe holds both
//! back. Root only; in the nextest group `agent`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use support::{eventually_blocking, Cluster, BUSYBOX};

fn pod(c: &Cluster, name: &str) -> Value {
    serde_json::from_str(&c.ok(&["get", "pod", name, "-o", "json"])).unwrap()
}

fn events(c: &Cluster, name: &str) -> String {
    c.ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={name}"),
    ])
}

fn ready(p: &Value) -> Option<&str> {
    p["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?["status"]
        .as_str()
}

/// A pod whose container is healthy for 2 s, then fails `probe` (more
/// lines of its exec liveness probe).
fn unhealthy_after_2s(name: &str, grace: u32, probe: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: {grace}
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 3600"]
    livenessProbe:
      exec:
        command: ["cat", "/tmp/healthy"]
      periodSeconds: 1
{probe}"#
    )
}

fn wait_restarted(c: &Cluster, name: &str, within: u64) {
    eventually_blocking(
        Duration::from_secs(within),
        &format!("a restart of {name} after the liveness probe failed"),
        || {
            let p = pod(c, name);
            if p["status"]["containerStatuses"][0]["restartCount"].as_i64() >= Some(1) {
                Ok(())
            } else {
                Err(format!("{}", p["status"]))
            }
        },
    );
}

#[test]
fn a_failing_liveness_probe_restarts_the_container() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &unhealthy_after_2s("live", 1, "      failureThreshold: 2\n"),
    );
    wait_restarted(&c, "live", 90);
    let ev = events(&c, "live");
    assert!(
        ev.contains("Liveness probe failed: cat: can't open '/tmp/healthy'"),
        "{ev}"
    );
    assert!(
        ev.contains("Container app failed liveness probe, will be restarted"),
        "{ev}"
    );
}

#[test]
fn readiness_probes_decide_the_ready_condition() {
    let c = Cluster::start_with_agent(&[]);
    let manifest = |name: &str, probe: &str| {
        format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: {BUSYBOX}
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports:
    - name: http
      containerPort: 8080
    readinessProbe:
{probe}      periodSeconds: 1
"#
        )
    };
    c.ok_stdin(
        &["apply", "-f", "-"],
        &manifest(
            "httpok",
            "      httpGet:\n        path: /index.html\n        port: http\n",
        ),
    );
    c.ok_stdin(
        &["apply", "-f", "-"],
        &manifest(
            "http404",
            "      httpGet:\n        path: /missing\n        port: 8080\n",
        ),
    );
    c.ok_stdin(
        &["apply", "-f", "-"],
        &manifest("tcpclosed", "      tcpSocket:\n        port: 9999\n"),
    );
    eventually_blocking(Duration::from_secs(30), "httpok Ready", || {
        let p = pod(&c, "httpok");
        match ready(&p) {
            Some("True") => Ok(()),
            _ => Err(format!("{}\n{}", p["status"], events(&c, "httpok"))),
        }
    });
    for (name, why) in [
        (
            "http404",
            "Readiness probe failed: HTTP probe failed with statuscode: 404",
        ),
        ("tcpclosed", "connect: connection refused"),
    ] {
        eventually_blocking(
            Duration::from_secs(60),
            &format!("{name} Running and not Ready with an event"),
            || {
                let p = pod(&c, name);
                let running = p["status"]["phase"] == "Running";
                let ev = events(&c, name);
                if running && ready(&p) == Some("False") && ev.contains(why) {
                    Ok(())
                } else {
                    Err(format!("{} {ev}", p["status"]))
                }
            },
        );
    }
    let p = pod(&c, "http404");
    assert_eq!(p["status"]["containerStatuses"][0]["ready"], false);
    let cond = p["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "ContainersReady")
        .unwrap()
        .clone();
    assert_eq!(cond["message"], "containers with unready status: [web]");
}

/// A hostNetwork pod (its IP is the node's) whose readiness probe is
/// `probe`: it reaches servers the test runs on the host.
fn host_network_pod(name: &str, probe: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    readinessProbe:
{probe}      periodSeconds: 1
"#
    )
}

fn wait_ready(c: &Cluster, name: &str, want: &str, event: Option<&str>) {
    eventually_blocking(
        Duration::from_secs(60),
        &format!("{name} Ready={want}"),
        || {
            let p = pod(c, name);
            let ev = events(c, name);
            let running = p["status"]["phase"] == "Running";
            if running && ready(&p) == Some(want) && event.is_none_or(|e| ev.contains(e)) {
                Ok(())
            } else {
                Err(format!("{} {ev}", p["status"]))
            }
        },
    );
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn grpc_readiness_follows_the_served_health_status() {
    let c = Cluster::start_with_agent(&[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let port = free_port();
    let (reporter, service) = tonic_health::server::health_reporter();
    rt.block_on(reporter.set_service_status("", tonic_health::ServingStatus::NotServing));
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve(([0, 0, 0, 0], port).into()),
    );
    let grpc = |service: &str| {
        format!("      grpc:\n        port: {port}\n        service: \"{service}\"\n")
    };
    c.ok_stdin(&["apply", "-f", "-"], &host_network_pod("grpc", &grpc("")));
    c.ok_stdin(
        &["apply", "-f", "-"],
        &host_network_pod("nosuch", &grpc("nosuch")),
    );
    wait_ready(
        &c,
        "grpc",
        "False",
        Some(r#"Readiness probe failed: service unhealthy (responded with "NOT_SERVING")"#),
    );
    rt.block_on(reporter.set_service_status("", tonic_health::ServingStatus::Serving));
    wait_ready(&c, "grpc", "True", None);
    wait_ready(
        &c,
        "nosuch",
        "False",
        Some("error: health rpc probe failed: rpc error: code = NotFound desc = service not registered"),
    );
}

#[test]
fn an_https_readiness_probe_takes_a_self_signed_certificate() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let c = Cluster::start_with_agent(&[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["probe.test".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("0.0.0.0:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    let probe = |scheme: &str| {
        format!("      httpGet:\n        scheme: {scheme}\n        path: /healthz\n        port: {port}\n")
    };
    c.ok_stdin(
        &["apply", "-f", "-"],
        &host_network_pod("https", &probe("HTTPS")),
    );
    c.ok_stdin(
        &["apply", "-f", "-"],
        &host_network_pod("plain", &probe("HTTP")),
    );
    wait_ready(&c, "https", "True", None);
    // Plain HTTP to the TLS server gets no HTTP answer.
    wait_ready(
        &c,
        "plain",
        "False",
        Some("Readiness probe failed: Get \"http://"),
    );
}

#[test]
fn a_liveness_probes_own_grace_period_bounds_the_restart() {
    let c = Cluster::start_with_agent(&[]);
    // The pod's grace period is long and the container ignores SIGTERM:
    // only the probe's 1 s (2 s at least, as upstream) lets it restart soon.
    let probe = "      failureThreshold: 1\n      terminationGracePeriodSeconds: 1\n";
    c.ok_stdin(
        &["apply", "-f", "-"],
        &unhealthy_after_2s("quick", 300, probe),
    );
    wait_restarted(&c, "quick", 45);
    c.ok(&["delete", "pod", "quick", "--grace-period=1", "--wait=true"]);
}
