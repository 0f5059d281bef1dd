//! The real kubectl (v1.32) against the documents: `kubectl explain` (which
//! reads `/openapi/v3`, or `/openapi/v2` as protobuf for
//! `--output plaintext-openapiv2`) and `kubectl apply --validate=strict`
//! (which validates client side against `/openapi/v2` unless the server
//! says it validates fields itself). The server here is a minimal plain
//! HTTP/1.1 one on loopback: legacy discovery for a few resources, the
//! OpenAPI endpoints, and 404 for everything else.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};
use openapi::{OpenApi, Options};
use serde_json::json;

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  strategy:
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx
        ports:
        - containerPort: 80
        resources:
          requests: {cpu: 1, memory: 64Mi}
";

fn discovery(path: &str) -> Option<serde_json::Value> {
    let resource = |name: &str, kind: &str, short: &[&str]| {
        json!({
            "name": name, "singularName": "", "namespaced": true, "kind": kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            "shortNames": short,
        })
    };
    Some(match path {
        "/version" => {
            json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0", "platform": "linux/amd64"})
        }
        "/api" => json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
        }),
        "/apis" => json!({
            "kind": "APIGroupList", "apiVersion": "v1",
            "groups": [{
                "name": "apps",
                "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
            }],
        }),
        "/api/v1" => json!({
            "kind": "APIResourceList", "groupVersion": "v1",
            "resources": [resource("pods", "Pod", &["po"]), resource("configmaps", "ConfigMap", &["cm"])],
        }),
        "/apis/apps/v1" => json!({
            "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1",
            "resources": [resource("deployments", "Deployment", &["deploy"])],
        }),
        _ => return None,
    })
}

fn answer(
    openapi: &OpenApi,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
) -> Response<Bytes> {
    let uri = target.parse().unwrap_or_default();
    if let Some(response) = openapi.respond(method, &uri, headers) {
        return response;
    }
    let (status, body) = match discovery(uri.path()) {
        Some(body) => (StatusCode::OK, body),
        None => (
            StatusCode::NOT_FOUND,
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "the server could not find the requested resource", "reason": "NotFound", "code": 404,
            }),
        ),
    };
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Serves one connection: HTTP/1.1 requests, kept alive until the client
/// closes.
fn connection(openapi: &OpenApi, stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("GET").parse().unwrap_or(Method::GET);
        let target = parts.next().unwrap_or("/").to_string();
        let mut headers = HeaderMap::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::try_from(name.trim()),
                    HeaderValue::from_str(value.trim()),
                ) {
                    headers.append(name, value);
                }
            }
        }
        let length: usize = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        reader
            .by_ref()
            .take(length as u64)
            .read_to_end(&mut Vec::new())?;

        let response = answer(openapi, &method, &target, &headers);
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Length: {}\r\n",
            response.status().as_u16(),
            response.status().canonical_reason().unwrap_or(""),
            response.body().len()
        );
        for (name, value) in response.headers() {
            head.push_str(&format!("{}: {}\r\n", name, value.to_str().unwrap_or("")));
        }
        head.push_str("\r\n");
        writer.write_all(head.as_bytes())?;
        writer.write_all(response.body())?;
        writer.flush()?;
    }
}

/// A loopback server answering discovery and the OpenAPI endpoints, and a
/// kubeconfig pointing at it. Stops when dropped.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
    dir: tempfile::TempDir,
}

impl Server {
    fn start(options: Options) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let openapi = Arc::new(OpenApi::new(common::BUILTIN.to_vec(), options));
        let stopping = stop.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::Acquire) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let openapi = openapi.clone();
                thread::spawn(move || {
                    let _ = connection(&openapi, stream);
                });
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\n\
             clusters: [{{name: test, cluster: {{server: \"http://127.0.0.1:{port}\"}}}}]\n\
             users: [{{name: test, user: {{}}}}]\n\
             contexts: [{{name: test, context: {{cluster: test, user: test, namespace: default}}}}]\n\
             current-context: test\n"
        );
        std::fs::write(dir.path().join("kubeconfig"), kubeconfig).unwrap();
        Server { port, stop, dir }
    }

    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let dir: &Path = self.dir.path();
        let mut cmd = Command::new("kubectl");
        cmd.args(args)
            .env("KUBECONFIG", dir.join("kubeconfig"))
            .env("KUBECACHEDIR", dir.join("cache"))
            .env("HOME", dir)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("running kubectl");
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

    /// Runs kubectl, failing the test unless it succeeds; returns stdout.
    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs kubectl, failing the test if it succeeds; returns stderr.
    fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl(args, stdin);
        assert!(
            !out.status.success(),
            "kubectl {} succeeded:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

#[test]
fn kubectl_explain_prints_upstream_field_documentation() {
    let server = Server::start(Options::default());
    let out = server.ok(&["explain", "pods.spec.containers.ports"], None);
    eprintln!("{out}");
    assert!(out.contains("KIND:       Pod"), "{out}");
    assert!(out.contains("FIELD: ports <[]ContainerPort>"), "{out}");
    assert!(
        out.contains("List of ports to expose from the container."),
        "{out}"
    );
    assert!(out.contains("containerPort\t<integer> -required-"), "{out}");

    let out = server.ok(&["explain", "deployment.spec.strategy"], None);
    eprintln!("{out}");
    assert!(out.contains("GROUP:      apps"), "{out}");
    assert!(
        out.contains("FIELD: strategy <DeploymentStrategy>"),
        "{out}"
    );
    assert!(
        out.contains("rollingUpdate\t<RollingUpdateDeployment>"),
        "{out}"
    );

    let out = server.ok(
        &["explain", "deployment.spec.strategy.rollingUpdate.maxSurge"],
        None,
    );
    assert!(out.contains("FIELD: maxSurge <IntOrString>"), "{out}");
}

#[test]
fn kubectl_explain_reads_the_protobuf_swagger_document() {
    let server = Server::start(Options::default());
    let out = server.ok(
        &[
            "explain",
            "pods.spec.containers.ports",
            "--output=plaintext-openapiv2",
        ],
        None,
    );
    eprintln!("{out}");
    assert!(out.contains("RESOURCE: ports <[]Object>"), "{out}");
    assert!(
        out.contains("List of ports to expose from the container."),
        "{out}"
    );
    assert!(out.contains("containerPort\t<integer> -required-"), "{out}");
}

#[test]
fn kubectl_validates_manifests_against_the_served_schema() {
    let server = Server::start(Options::default());
    let out = server.ok(
        &["apply", "-f", "-", "--dry-run=client", "--validate=strict"],
        Some(DEPLOYMENT),
    );
    assert_eq!(out.trim(), "deployment.apps/web created (dry run)");

    let bad = DEPLOYMENT.replace("  replicas: 2", "  replicass: 2");
    let err = server.fails(
        &["apply", "-f", "-", "--dry-run=client", "--validate=strict"],
        Some(&bad),
    );
    eprintln!("{err}");
    // Client-side validation words it this way; a server validating with
    // fieldValidation=Strict says `unknown field "spec.replicass"`.
    assert!(
        err.contains(r#"ValidationError(Deployment.spec): unknown field "replicass" in io.k8s.api.apps.v1.DeploymentSpec"#),
        "{err}"
    );

    // A wrong type is caught too.
    let bad = DEPLOYMENT.replace("containerPort: 80", "containerPort: eighty");
    let err = server.fails(&["apply", "-f", "-", "--dry-run=client"], Some(&bad));
    eprintln!("{err}");
    assert!(
        err.contains("spec.template.spec.containers[0].ports[0].containerPort"),
        "{err}"
    );
}

#[test]
fn kubectl_leaves_field_validation_to_a_server_that_says_it_does_it() {
    let server = Server::start(Options {
        field_validation: true,
    });
    let bad = DEPLOYMENT.replace("  replicas: 2", "  replicass: 2");
    let out = server.ok(
        &["apply", "-f", "-", "--dry-run=client", "--validate=strict"],
        Some(&bad),
    );
    assert_eq!(out.trim(), "deployment.apps/web created (dry run)");

    // The items of a `kind: List` are always validated on the client.
    let list = format!(
        "apiVersion: v1\nkind: List\nitems:\n- {}",
        bad.trim_end().replace('\n', "\n  ")
    );
    let err = server.fails(&["apply", "-f", "-", "--dry-run=client"], Some(&list));
    assert!(
        err.contains(r#"unknown field "replicass" in io.k8s.api.apps.v1.DeploymentSpec"#),
        "{err}"
    );
}
