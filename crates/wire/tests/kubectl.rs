//! The real kubectl against a fake API server on loopback: kubectl's typed
//! commands send protobuf bodies, which must decode to the JSON kubectl itself
//! prints for the same object (`--dry-run=client -o json`); the fake server
//! answers in protobuf (encoded here), and the object kubectl decodes and
//! prints with `-o json` must be the one the server meant.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// One request kubectl made.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    content_type: String,
    accept: String,
    body: Vec<u8>,
    /// The object the fake server answered with (before encoding).
    answer: Option<Value>,
}

struct FakeServer {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeServer {
    fn start() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let log = log.clone();
                std::thread::spawn(move || serve(stream, log));
            }
        });
        FakeServer { port, seen }
    }

    fn posts(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.method == "POST")
            .cloned()
            .collect()
    }

    fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

fn serve(stream: TcpStream, log: Arc<Mutex<Vec<Seen>>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let length: usize = header("content-length").parse().unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let path = target.split('?').next().unwrap_or_default().to_owned();
        let mut seen = Seen {
            method,
            path,
            content_type: header("content-type"),
            accept: header("accept"),
            body,
            answer: None,
        };
        let (status, content_type, payload) = respond(&mut seen);
        log.lock().unwrap().push(seen);
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            payload.len()
        );
        if writer
            .write_all(head.as_bytes())
            .and_then(|_| writer.write_all(&payload))
            .is_err()
        {
            return;
        }
    }
}

fn resource(name: &str, kind: &str, namespaced: bool, verbs: &[&str]) -> Value {
    json!({"name": name, "singularName": kind.to_lowercase(), "namespaced": namespaced, "kind": kind, "verbs": verbs})
}

const CRUD: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

fn discovery(path: &str) -> Option<Value> {
    let group = |name: &str, version: &str| {
        json!({"name": name, "versions": [{"groupVersion": format!("{name}/{version}"), "version": version}],
               "preferredVersion": {"groupVersion": format!("{name}/{version}"), "version": version}})
    };
    let list = |gv: &str, resources: Vec<Value>| json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources});
    Some(match path {
        "/api" => {
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
        }
        "/apis" => json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            group("apps", "v1"), group("batch", "v1"), group("rbac.authorization.k8s.io", "v1"),
            group("authorization.k8s.io", "v1"), group("policy", "v1"), group("scheduling.k8s.io", "v1")
        ]}),
        "/api/v1" => list(
            "v1",
            vec![
                resource("namespaces", "Namespace", false, CRUD),
                resource("configmaps", "ConfigMap", true, CRUD),
                resource("secrets", "Secret", true, CRUD),
                resource("services", "Service", true, CRUD),
                resource("pods", "Pod", true, CRUD),
                resource("serviceaccounts", "ServiceAccount", true, CRUD),
                json!({"name": "serviceaccounts/token", "singularName": "", "namespaced": true, "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest", "verbs": ["create"]}),
                resource("resourcequotas", "ResourceQuota", true, CRUD),
            ],
        ),
        "/apis/apps/v1" => list(
            "apps/v1",
            vec![resource("deployments", "Deployment", true, CRUD)],
        ),
        "/apis/batch/v1" => list(
            "batch/v1",
            vec![
                resource("jobs", "Job", true, CRUD),
                resource("cronjobs", "CronJob", true, CRUD),
            ],
        ),
        "/apis/rbac.authorization.k8s.io/v1" => list(
            "rbac.authorization.k8s.io/v1",
            vec![
                resource("roles", "Role", true, CRUD),
                resource("rolebindings", "RoleBinding", true, CRUD),
                resource("clusterroles", "ClusterRole", false, CRUD),
                resource("clusterrolebindings", "ClusterRoleBinding", false, CRUD),
            ],
        ),
        "/apis/authorization.k8s.io/v1" => list(
            "authorization.k8s.io/v1",
            vec![resource(
                "selfsubjectaccessreviews",
                "SelfSubjectAccessReview",
                false,
                &["create"],
            )],
        ),
        "/apis/policy/v1" => list(
            "policy/v1",
            vec![resource(
                "poddisruptionbudgets",
                "PodDisruptionBudget",
                true,
                CRUD,
            )],
        ),
        "/apis/scheduling.k8s.io/v1" => list(
            "scheduling.k8s.io/v1",
            vec![resource("priorityclasses", "PriorityClass", false, CRUD)],
        ),
        _ => return None,
    })
}

/// What the fake server answers: discovery as JSON, creations echoed back
/// with server-set fields, encoded in protobuf when kubectl accepts it.
fn respond(seen: &mut Seen) -> (&'static str, &'static str, Vec<u8>) {
    if seen.method == "GET" {
        return match discovery(&seen.path) {
            Some(doc) => ("200 OK", "application/json", serde_json::to_vec(&doc).unwrap()),
            None => ("404 Not Found", "application/json", serde_json::to_vec(&json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "NotFound", "code": 404
            })).unwrap()),
        };
    }
    let object = if seen.content_type.starts_with(wire::PROTOBUF) {
        wire::decode(&seen.body)
    } else {
        serde_json::from_slice(&seen.body)
            .map_err(|e| panic!("kubectl sent {}: {e}", seen.content_type))
    };
    let mut answer = match object {
        Ok(object) => object,
        Err(e) => {
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": e.to_string(), "reason": "BadRequest", "code": 400});
            return (
                "400 Bad Request",
                "application/json",
                serde_json::to_vec(&status).unwrap(),
            );
        }
    };
    match answer["kind"].as_str() {
        Some("SelfSubjectAccessReview") => {
            answer["status"] = json!({"allowed": true, "reason": "fake server allows everything"})
        }
        Some("TokenRequest") => {
            answer["status"] =
                json!({"token": "fake-token-123", "expirationTimestamp": "2030-01-02T03:04:05Z"})
        }
        _ => {
            let api_version = answer["apiVersion"].clone();
            let meta = answer["metadata"]
                .as_object_mut()
                .expect("created objects have metadata");
            meta.insert("uid".into(), json!("5d3c0e1f-2a4b-4c6d-8e9f-0a1b2c3d4e5f"));
            meta.insert("resourceVersion".into(), json!("4242"));
            meta.insert("creationTimestamp".into(), json!("2024-05-06T07:08:09Z"));
            meta.insert("generation".into(), json!(1));
            meta.insert("managedFields".into(), json!([{
                "manager": "kubectl-create", "operation": "Update", "apiVersion": api_version,
                "time": "2024-05-06T07:08:09Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:name": {}}}
            }]));
        }
    }
    seen.answer = Some(answer.clone());
    if seen.accept.contains(wire::PROTOBUF) {
        let bytes = wire::encode(&answer).expect("the fake server encodes what it decoded");
        ("201 Created", wire::PROTOBUF, bytes)
    } else {
        (
            "201 Created",
            "application/json",
            serde_json::to_vec(&answer).unwrap(),
        )
    }
}

struct Kubectl {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Kubectl {
    fn find() -> Option<Kubectl> {
        let bin = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .map(|d| d.join("kubectl"))
            .find(|p| p.is_file())?;
        Some(Kubectl {
            bin,
            dir: tempfile::tempdir().expect("tempdir"),
        })
    }

    fn run(&self, server: &FakeServer, args: &[&str]) -> String {
        let kubeconfig = self.dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{}\n\
                 contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n\
                 users:\n- name: fake\n  user: {{}}\ncurrent-context: fake\n",
                server.port
            ),
        )
        .unwrap();
        let output = Command::new(&self.bin)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("KUBECONFIG")
            .output()
            .expect("run kubectl");
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stdout).unwrap()
    }
}

/// `kubectl create ...` against the fake server: the protobuf body must decode
/// to exactly what kubectl prints for `--dry-run=client -o json`, and kubectl
/// must print back, from our protobuf answer, the object the server meant.
fn check_create(kubectl: &Kubectl, server: &FakeServer, args: &[&str]) -> Value {
    // Flags go before a `--` that starts a container command.
    let with = |flags: &[&'static str]| {
        let at = args.iter().position(|a| *a == "--").unwrap_or(args.len());
        [&args[..at], flags, &args[at..]].concat()
    };
    server.clear();
    let printed: Value =
        serde_json::from_str(&kubectl.run(server, &with(&["-o", "json", "--show-managed-fields"])))
            .unwrap();
    let posts = server.posts();
    assert_eq!(posts.len(), 1, "one POST for {args:?}: {posts:?}");
    let post = &posts[0];
    assert_eq!(
        post.content_type,
        wire::PROTOBUF,
        "kubectl {args:?} sent protobuf"
    );
    assert!(
        post.accept.starts_with(wire::PROTOBUF),
        "kubectl {args:?} accepts protobuf first: {}",
        post.accept
    );
    let decoded = wire::decode(&post.body).unwrap();

    let client_side: Value =
        serde_json::from_str(&kubectl.run(server, &with(&["--dry-run=client", "-o", "json"])))
            .unwrap();
    assert_eq!(
        decoded, client_side,
        "kubectl {args:?}: protobuf body vs kubectl's own JSON"
    );
    assert_eq!(
        &printed,
        post.answer.as_ref().unwrap(),
        "kubectl {args:?}: our protobuf answer as kubectl read it"
    );
    decoded
}

#[test]
fn kubectl_typed_commands_speak_protobuf_both_ways() {
    let Some(kubectl) = Kubectl::find() else {
        eprintln!("kubectl not on PATH: skipping the real-client protobuf test");
        return;
    };
    let server = FakeServer::start();

    let ns = check_create(&kubectl, &server, &["create", "namespace", "demo"]);
    assert_eq!(ns["metadata"]["name"], "demo");
    assert_eq!(ns["kind"], "Namespace");

    let cm = check_create(
        &kubectl,
        &server,
        &[
            "create",
            "configmap",
            "c",
            "--from-literal=a=b",
            "--from-literal=multi=x\ny",
            "-n",
            "default",
        ],
    );
    assert_eq!(cm["data"], json!({"a": "b", "multi": "x\ny"}));
    assert_eq!(cm["metadata"]["namespace"], "default");

    let secret = check_create(
        &kubectl,
        &server,
        &[
            "create",
            "secret",
            "generic",
            "s",
            "--from-literal=k=v",
            "--type=Opaque",
        ],
    );
    assert_eq!(secret["data"], json!({"k": "dg=="}));
    assert_eq!(secret["type"], "Opaque");

    let deployment = check_create(
        &kubectl,
        &server,
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.27",
            "--replicas=2",
            "--port=80",
        ],
    );
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        80
    );
    let idle = check_create(
        &kubectl,
        &server,
        &[
            "create",
            "deployment",
            "idle",
            "--image=nginx",
            "--replicas=0",
        ],
    );
    assert_eq!(
        idle["spec"]["replicas"], 0,
        "a pointer field keeps its explicit zero"
    );

    let service = check_create(
        &kubectl,
        &server,
        &[
            "create",
            "service",
            "nodeport",
            "web",
            "--tcp=80:8080",
            "--node-port=30080",
        ],
    );
    assert_eq!(service["spec"]["ports"][0]["targetPort"], 8080);
    assert_eq!(service["spec"]["ports"][0]["nodePort"], 30080);

    check_create(
        &kubectl,
        &server,
        &[
            "create",
            "job",
            "pi",
            "--image=perl",
            "--",
            "perl",
            "-e",
            "print 1",
        ],
    );
    check_create(
        &kubectl,
        &server,
        &[
            "create",
            "cronjob",
            "tick",
            "--image=busybox",
            "--schedule=*/5 * * * *",
        ],
    );
    let role = check_create(
        &kubectl,
        &server,
        &[
            "create",
            "role",
            "reader",
            "--verb=get,list",
            "--resource=pods,deployments.apps",
        ],
    );
    assert_eq!(role["rules"][0]["verbs"], json!(["get", "list"]));
    let binding = check_create(
        &kubectl,
        &server,
        &[
            "create",
            "rolebinding",
            "rb",
            "--role=reader",
            "--user=jane",
            "--serviceaccount=default:builder",
        ],
    );
    assert_eq!(binding["roleRef"]["name"], "reader");
    let quota = check_create(
        &kubectl,
        &server,
        &[
            "create",
            "quota",
            "q",
            "--hard=pods=10,requests.cpu=500m,requests.memory=1Gi",
        ],
    );
    assert_eq!(
        quota["spec"]["hard"],
        json!({"pods": "10", "requests.cpu": "500m", "requests.memory": "1Gi"})
    );
    let pdb = check_create(
        &kubectl,
        &server,
        &[
            "create",
            "poddisruptionbudget",
            "pdb",
            "--selector=app=web",
            "--min-available=50%",
        ],
    );
    assert_eq!(pdb["spec"]["minAvailable"], "50%");
    check_create(
        &kubectl,
        &server,
        &[
            "create",
            "priorityclass",
            "high",
            "--value=1000",
            "--description=important",
        ],
    );
    check_create(&kubectl, &server, &["create", "serviceaccount", "builder"]);

    // auth can-i: a SelfSubjectAccessReview in protobuf, "yes" read from our protobuf answer.
    server.clear();
    let answer = kubectl.run(
        &server,
        &[
            "auth",
            "can-i",
            "create",
            "deployments.apps",
            "-n",
            "default",
        ],
    );
    assert_eq!(answer.trim(), "yes");
    let post = server.posts().pop().expect("can-i posts a review");
    assert_eq!(post.content_type, wire::PROTOBUF);
    let review = wire::decode(&post.body).unwrap();
    assert_eq!(review["kind"], "SelfSubjectAccessReview");
    assert_eq!(
        review["spec"]["resourceAttributes"],
        json!({"namespace": "default", "verb": "create", "group": "apps", "resource": "deployments"})
    );

    // create token: a TokenRequest in protobuf, the token read from our protobuf answer.
    server.clear();
    let token = kubectl.run(
        &server,
        &[
            "create",
            "token",
            "builder",
            "--duration=1h",
            "--audience=https://example.com",
        ],
    );
    assert_eq!(token.trim(), "fake-token-123");
    let post = server
        .posts()
        .pop()
        .expect("create token posts a TokenRequest");
    assert_eq!(
        post.path,
        "/api/v1/namespaces/default/serviceaccounts/builder/token"
    );
    let request = wire::decode(&post.body).unwrap();
    assert_eq!(request["kind"], "TokenRequest");
    assert_eq!(request["spec"]["expirationSeconds"], 3600);
    assert_eq!(request["spec"]["audiences"], json!(["https://example.com"]));
}
