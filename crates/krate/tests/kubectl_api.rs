//! The real `krate server` driven by the real kubectl: what a user sees.

mod support;

use std::time::Duration;

use support::{eventually_blocking, Cluster};

const CONFIGMAP: &str = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"app-config","labels":{"app":"web"}},"data":{"mode":"fast","level":"3"}}"#;

#[test]
fn a_new_server_has_the_system_namespaces_and_kubectl_lists_them() {
    let c = Cluster::start();
    let out = c.ok(&["get", "namespaces"]);
    let lines: Vec<&str> = out.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "AGE"]);
    for ns in ["default", "kube-node-lease", "kube-public", "kube-system"] {
        let row = lines
            .iter()
            .find(|l| l.starts_with(&format!("{ns} ")))
            .unwrap_or_else(|| panic!("{ns} missing:\n{out}"));
        assert!(row.contains("Active"), "{row}");
    }
}

#[test]
fn health_endpoints_answer_ok() {
    let c = Cluster::start();
    assert_eq!(c.ok(&["get", "--raw", "/healthz"]).trim(), "ok");
    assert_eq!(c.ok(&["get", "--raw", "/livez"]).trim(), "ok");
    let verbose = c.ok(&["get", "--raw", "/readyz?verbose"]);
    assert!(verbose.contains("[+]etcd ok"), "{verbose}");
    assert!(
        verbose.trim_end().ends_with("readyz check passed"),
        "{verbose}"
    );
    let version = c.ok(&["version", "-o", "json"]);
    assert!(
        version.contains("\"gitVersion\": \"v1.32.0+krate\""),
        "{version}"
    );
}

#[test]
fn api_resources_show_upstream_names_short_names_and_scope() {
    let c = Cluster::start();
    let apps = c.ok(&["api-resources", "--api-group=apps", "--no-headers"]);
    let rows: Vec<Vec<&str>> = apps
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        vec![
            vec![
                "controllerrevisions",
                "apps/v1",
                "true",
                "ControllerRevision"
            ],
            vec!["daemonsets", "ds", "apps/v1", "true", "DaemonSet"],
            vec!["deployments", "deploy", "apps/v1", "true", "Deployment"],
            vec!["replicasets", "rs", "apps/v1", "true", "ReplicaSet"],
            vec!["statefulsets", "sts", "apps/v1", "true", "StatefulSet"],
        ]
    );
    let core = c.ok(&["api-resources", "--api-group=", "-o", "name"]);
    for r in [
        "pods",
        "services",
        "configmaps",
        "secrets",
        "namespaces",
        "nodes",
        "persistentvolumeclaims",
        "serviceaccounts",
        "events",
    ] {
        assert!(
            core.lines().any(|l| l == r),
            "{r} missing from core resources:\n{core}"
        );
    }
    // kubectl resolves short names and categories from aggregated discovery.
    let out = c.kubectl(&["get", "deploy", "-n", "default"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "No resources found in default namespace."
    );
    let out = c.kubectl(&["get", "all"]);
    assert!(
        out.status.success(),
        "kubectl get all: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = c.fails(&["get", "nosuchthing"]);
    assert!(
        err.contains("the server doesn't have a resource type \"nosuchthing\""),
        "{err}"
    );
}

#[test]
fn configmap_lifecycle_with_every_output_format() {
    let c = Cluster::start();
    let created = c.ok_stdin(&["create", "-f", "-", "--validate=false"], CONFIGMAP);
    assert_eq!(created.trim(), "configmap/app-config created");

    let table = c.ok(&["get", "configmaps"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "DATA", "AGE"]);
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("app-config"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&row[..2], ["app-config", "2"]);

    assert_eq!(
        c.ok(&["get", "cm", "app-config", "-o", "name"]).trim(),
        "configmap/app-config"
    );
    assert_eq!(
        c.ok(&["get", "cm", "app-config", "-o", "jsonpath={.data.mode}"]),
        "fast"
    );
    let json: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "cm", "app-config", "-o", "json"])).unwrap();
    assert_eq!(json["metadata"]["namespace"], "default");
    assert_eq!(json["metadata"]["labels"]["app"], "web");
    assert!(json["metadata"]["uid"]
        .as_str()
        .is_some_and(|u| u.len() == 36));
    assert!(json["metadata"]["resourceVersion"]
        .as_str()
        .is_some_and(|rv| rv.parse::<u64>().is_ok()));
    assert!(json["metadata"]["creationTimestamp"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    let yaml = c.ok(&["get", "cm", "app-config", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: ConfigMap") && yaml.contains("mode: fast"),
        "{yaml}"
    );
    let cols = c.ok(&[
        "get",
        "cm",
        "-o",
        "custom-columns=NAME:.metadata.name,MODE:.data.mode",
    ]);
    assert!(
        cols.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["app-config", "fast"]),
        "{cols}"
    );
    let wide = c.ok(&["get", "cm", "-o", "wide", "--show-labels"]);
    assert!(wide.contains("app=web"), "{wide}");

    let err = c.fails_stdin(&["create", "-f", "-", "--validate=false"], CONFIGMAP);
    assert!(err.contains("Error from server (AlreadyExists): error when creating \"STDIN\": configmaps \"app-config\" already exists"), "{err}");

    assert_eq!(
        c.ok(&["delete", "configmap", "app-config"]).trim(),
        "configmap \"app-config\" deleted"
    );
    let err = c.fails(&["get", "cm", "app-config"]);
    assert_eq!(
        err.trim(),
        "Error from server (NotFound): configmaps \"app-config\" not found"
    );
}

#[test]
fn objects_survive_a_server_restart_with_the_same_credentials() {
    let mut c = Cluster::start();
    c.ok_stdin(&["create", "-f", "-", "--validate=false"], CONFIGMAP);
    let ca_before = std::fs::read(c.data_dir().join("tls").join("ca.crt"))
        .expect("the CA certificate is written");
    let rv_before = c.ok(&[
        "get",
        "cm",
        "app-config",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    c.restart();
    assert_eq!(
        c.ok(&[
            "get",
            "cm",
            "app-config",
            "-o",
            "jsonpath={.metadata.resourceVersion}"
        ]),
        rv_before
    );
    assert_eq!(
        std::fs::read(c.data_dir().join("tls").join("ca.crt")).unwrap(),
        ca_before,
        "the CA was regenerated"
    );
}

#[test]
fn creating_in_a_missing_namespace_is_refused() {
    // The API alone: no controller adds objects (kube-root-ca.crt, ReplicaSets, pods).
    let c = Cluster::start_with(&["--disable-controllers"]);
    let err = c.fails_stdin(
        &["create", "-n", "nope", "-f", "-", "--validate=false"],
        CONFIGMAP,
    );
    assert!(err.contains("namespaces \"nope\" not found"), "{err}");
    assert!(c.ok(&["get", "cm", "-A", "-o", "name"]).trim().is_empty());
}

#[test]
fn an_invalid_name_is_rejected_with_the_upstream_message() {
    // The API alone: no controller adds objects (kube-root-ca.crt, ReplicaSets, pods).
    let c = Cluster::start_with(&["--disable-controllers"]);
    let bad = CONFIGMAP.replace("app-config", "Bad_Name");
    let err = c.fails_stdin(&["create", "-f", "-", "--validate=false"], &bad);
    assert!(
        err.contains("The ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters"),
        "{err}"
    );
    let wrong_type = CONFIGMAP.replace(r#""app":"web""#, r#""app":5"#);
    let err = c.fails_stdin(&["create", "-f", "-", "--validate=false"], &wrong_type);
    assert!(err.contains("metadata.labels"), "{err}");
    assert!(
        c.ok(&["get", "cm", "-o", "name"]).trim().is_empty(),
        "nothing may be stored"
    );
}

#[test]
fn a_watch_streams_changes_as_they_happen() {
    // The API alone: no controller adds objects (kube-root-ca.crt, ReplicaSets, pods).
    let c = Cluster::start_with(&["--disable-controllers"]);
    let path = "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=4";
    let watcher = {
        let kubeconfig = c.kubeconfig.clone();
        let cache = c.dir.path().join("watch-cache");
        std::thread::spawn(move || {
            std::process::Command::new("kubectl")
                .args(["get", "--raw", path])
                .env("KUBECONFIG", kubeconfig)
                .env("KUBECACHEDIR", cache)
                .output()
                .unwrap()
        })
    };
    std::thread::sleep(Duration::from_millis(800));
    c.ok_stdin(&["create", "-f", "-", "--validate=false"], CONFIGMAP);
    c.ok(&["delete", "cm", "app-config"]);
    let out = watcher.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let types: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|e| e["type"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(types, ["ADDED", "DELETED"], "{text}");
}

#[test]
fn anonymous_requests_are_forbidden_but_health_is_public() {
    let c = Cluster::start();
    let url = format!("{}/api/v1/namespaces", c.server_url());
    let out = std::process::Command::new("curl")
        .args(["-sk", &url])
        .output()
        .expect("curl");
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["code"], 403);
    assert_eq!(
        body["message"],
        "namespaces is forbidden: User \"system:anonymous\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
    );
    let health = std::process::Command::new("curl")
        .args(["-sk", &format!("{}/healthz", c.server_url())])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&health.stdout), "ok");
}

#[test]
fn a_second_server_on_a_taken_port_fails_with_a_clear_error() {
    let c = Cluster::start();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_krate"))
        .arg("server")
        .arg("--data-dir")
        .arg(c.dir.path().join("other"))
        .args([
            "--https-listen-port",
            &c.port.to_string(),
            "--bind-address",
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("port {} is already in use", c.port)),
        "{err}"
    );
}

fn service(name: &str, spec: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"{name}"}},"spec":{spec}}}"#
    )
}

#[test]
fn services_get_cluster_ips_and_node_ports_from_their_ranges() {
    let c = Cluster::start();
    let k8s = c.ok(&[
        "get",
        "svc",
        "kubernetes",
        "-o",
        "jsonpath={.spec.clusterIP} {.spec.ports[0].port}",
    ]);
    assert_eq!(k8s, "10.43.0.1 443");

    c.ok_stdin(
        &["create", "-f", "-", "--validate=false"],
        &service("web", r#"{"selector":{"app":"web"},"ports":[{"port":80}]}"#),
    );
    let ip = c.ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(ip.starts_with("10.43.") && ip != "10.43.0.1", "{ip}");
    assert_eq!(
        c.ok(&[
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={.spec.type} {.spec.ports[0].targetPort} {.spec.ports[0].protocol}"
        ]),
        "ClusterIP 80 TCP"
    );

    c.ok_stdin(
        &["create", "-f", "-", "--validate=false"],
        &service("np", r#"{"type":"NodePort","ports":[{"port":80}]}"#),
    );
    let port: u16 = c
        .ok(&[
            "get",
            "svc",
            "np",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}",
        ])
        .parse()
        .unwrap();
    assert!((30000..=32767).contains(&port), "{port}");

    let taken = service(
        "np2",
        &format!(r#"{{"type":"NodePort","ports":[{{"port":80,"nodePort":{port}}}]}}"#),
    );
    let err = c.fails_stdin(&["create", "-f", "-", "--validate=false"], &taken);
    assert!(
        err.contains(&format!("The Service \"np2\" is invalid: spec.ports[0].nodePort: Invalid value: {port}: provided port is already allocated")),
        "{err}"
    );
    let err = c.fails_stdin(
        &["create", "-f", "-", "--validate=false"],
        &service(
            "np3",
            r#"{"type":"NodePort","ports":[{"port":80,"nodePort":20000}]}"#,
        ),
    );
    assert!(
        err.contains(
            "provided port is not in the valid range. The range of valid ports is 30000-32767"
        ),
        "{err}"
    );
    let err = c.fails_stdin(
        &["create", "-f", "-", "--validate=false"],
        &service(
            "dup-ip",
            r#"{"clusterIP":"10.43.0.1","ports":[{"port":80}]}"#,
        ),
    );
    assert!(
        err.contains("failed to allocate IP 10.43.0.1: provided IP is already allocated"),
        "{err}"
    );
    assert!(
        c.fails(&["get", "svc", "np2"]).contains("not found"),
        "a refused service must not be stored"
    );

    // Deleting a service frees its port for another.
    c.ok(&["delete", "svc", "np"]);
    c.ok_stdin(&["create", "-f", "-", "--validate=false"], &taken);
    assert_eq!(
        c.ok(&[
            "get",
            "svc",
            "np2",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}"
        ]),
        port.to_string()
    );
    // A headless service keeps None.
    c.ok_stdin(
        &["create", "-f", "-", "--validate=false"],
        &service("headless", r#"{"clusterIP":"None","ports":[{"port":80}]}"#),
    );
    assert_eq!(
        c.ok(&["get", "svc", "headless", "-o", "jsonpath={.spec.clusterIP}"]),
        "None"
    );
}

const DEPLOYMENT: &str = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"busybox"}]}}}}"#;

#[test]
fn the_scale_subresource_reads_and_sets_replicas() {
    let c = Cluster::start();
    c.ok_stdin(&["create", "-f", "-", "--validate=false"], DEPLOYMENT);
    let path = "/apis/apps/v1/namespaces/default/deployments/web/scale";
    let scale: serde_json::Value = serde_json::from_str(&c.ok(&["get", "--raw", path])).unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 2);
    assert_eq!(scale["status"]["selector"], "app=web");
    let generation = c.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.metadata.generation}",
    ]);
    let body = r#"{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"web","namespace":"default"},"spec":{"replicas":5}}"#;
    let file = support::write(c.dir.path(), "scale.json", body);
    c.ok(&["replace", "--raw", path, "-f", file.to_str().unwrap()]);
    assert_eq!(
        c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "5"
    );
    let after: u64 = c
        .ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.generation}",
        ])
        .parse()
        .unwrap();
    assert_eq!(
        after,
        generation.parse::<u64>().unwrap() + 1,
        "a spec change bumps the generation"
    );
}

#[test]
fn binding_assigns_a_pod_to_a_node_once() {
    let c = Cluster::start();
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#;
    c.ok_stdin(&["create", "-f", "-", "--validate=false"], pod);
    let binding = r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"apiVersion":"v1","kind":"Node","name":"node-1"}}"#;
    let file = support::write(c.dir.path(), "binding.json", binding);
    c.ok(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/p/binding",
        "-f",
        file.to_str().unwrap(),
    ]);
    assert_eq!(
        c.ok(&["get", "pod", "p", "-o", "jsonpath={.spec.nodeName}"]),
        "node-1"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "pod",
            "p",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].status}"
        ]),
        "True"
    );
    let again = support::write(
        c.dir.path(),
        "binding2.json",
        &binding.replace("node-1", "node-2"),
    );
    let err = c.fails(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/p/binding",
        "-f",
        again.to_str().unwrap(),
    ]);
    assert!(
        err.contains("pod p is already assigned to node \"node-1\""),
        "{err}"
    );
    assert_eq!(
        c.ok(&["get", "pod", "p", "-o", "jsonpath={.spec.nodeName}"]),
        "node-1"
    );
}

#[test]
fn label_annotate_and_patch_change_only_what_they_name() {
    let c = Cluster::start();
    c.ok_stdin(&["create", "-f", "-", "--validate=false"], CONFIGMAP);
    assert_eq!(
        c.ok(&["label", "cm", "app-config", "tier=backend"]).trim(),
        "configmap/app-config labeled"
    );
    let err = c.fails(&["label", "cm", "app-config", "app=api"]);
    assert!(
        err.contains("'app' already has a value (web), and --overwrite is false"),
        "{err}"
    );
    c.ok(&["label", "cm", "app-config", "app=api", "--overwrite"]);
    c.ok(&["label", "cm", "app-config", "tier-"]);
    assert_eq!(
        c.ok(&[
            "get",
            "cm",
            "app-config",
            "-o",
            "jsonpath={.metadata.labels}"
        ]),
        r#"{"app":"api"}"#
    );
    assert_eq!(
        c.ok(&["annotate", "cm", "app-config", "note=hello"]).trim(),
        "configmap/app-config annotated"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "cm",
            "app-config",
            "-o",
            "jsonpath={.metadata.annotations.note}"
        ]),
        "hello"
    );

    c.ok(&[
        "patch",
        "cm",
        "app-config",
        "--type=merge",
        "-p",
        r#"{"data":{"mode":"slow","level":null}}"#,
    ]);
    assert_eq!(
        c.ok(&["get", "cm", "app-config", "-o", "jsonpath={.data}"]),
        r#"{"mode":"slow"}"#
    );
    c.ok(&[
        "patch",
        "cm",
        "app-config",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/data/extra","value":"x"}]"#,
    ]);
    assert_eq!(
        c.ok(&["get", "cm", "app-config", "-o", "jsonpath={.data.extra}"]),
        "x"
    );
    let err = c.fails(&[
        "patch",
        "cm",
        "app-config",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/data/extra","value":"y"}]"#,
    ]);
    assert!(err.contains("testing value /data/extra failed"), "{err}");
    c.ok(&[
        "patch",
        "cm",
        "app-config",
        "-p",
        r#"{"data":{"strategic":"yes"}}"#,
    ]);
    assert_eq!(
        c.ok(&[
            "get",
            "cm",
            "app-config",
            "-o",
            "jsonpath={.data.strategic}"
        ]),
        "yes"
    );
}

#[test]
fn strategic_merge_patch_merges_containers_by_name() {
    let c = Cluster::start();
    c.ok_stdin(&["create", "-f", "-", "--validate=false"], DEPLOYMENT);
    c.ok(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"nginx"}]}}}}"#,
    ]);
    assert_eq!(
        c.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[*].name}"
        ]),
        "sidecar web"
    );
    c.ok(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"busybox:2"}]}}}}"#,
    ]);
    assert_eq!(
        c.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[?(@.name==\"web\")].image}"
        ]),
        "busybox:2"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.generation}"
        ]),
        "3"
    );
}

#[test]
fn kubectl_scale_and_edit_go_through_the_api() {
    let c = Cluster::start();
    c.ok_stdin(&["create", "-f", "-", "--validate=false"], DEPLOYMENT);
    assert_eq!(
        c.ok(&["scale", "deploy", "web", "--replicas=4"]).trim(),
        "deployment.apps/web scaled"
    );
    assert_eq!(
        c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "4"
    );
    // An editor that changes the replica count in the file it is given.
    let editor = support::write(
        c.dir.path(),
        "editor.sh",
        "#!/bin/sh\nsed -i 's/replicas: 4/replicas: 7/' \"$1\"\n",
    );
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = std::process::Command::new("kubectl")
        .args(["edit", "deploy", "web", "--validate=false"])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("KUBECACHEDIR", c.dir.path().join("kube-cache"))
        .env("KUBE_EDITOR", &editor)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "deployment.apps/web edited"
    );
    assert_eq!(
        c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "7"
    );
}

#[test]
fn label_and_field_selectors_filter_lists() {
    // The API alone: no controller adds objects (kube-root-ca.crt, ReplicaSets, pods).
    let c = Cluster::start_with(&["--disable-controllers"]);
    for (name, app) in [("a", "web"), ("b", "web"), ("c", "db")] {
        c.ok_stdin(
            &["create", "-f", "-", "--validate=false"],
            &format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","labels":{{"app":"{app}"}}}}}}"#),
        );
    }
    let names = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = c.ok(args).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(
        names(&["get", "cm", "-l", "app=web", "-o", "name"]),
        ["configmap/a", "configmap/b"]
    );
    assert_eq!(
        names(&["get", "cm", "-l", "app in (db)", "-o", "name"]),
        ["configmap/c"]
    );
    assert_eq!(
        names(&["get", "cm", "-l", "app!=web,app", "-o", "name"]),
        ["configmap/c"]
    );
    assert_eq!(
        names(&[
            "get",
            "cm",
            "--field-selector",
            "metadata.name=b",
            "-o",
            "name"
        ]),
        ["configmap/b"]
    );
    let err = c.fails(&["get", "cm", "--field-selector", "spec.foo=x"]);
    assert!(err.contains("\"spec.foo\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""), "{err}");
    let err = c.fails(&["get", "pods", "--field-selector", "spec.foo=x"]);
    assert!(err.contains("field label not supported: spec.foo"), "{err}");
    assert_eq!(c.ok(&["delete", "cm", "-l", "app=web"]).lines().count(), 2);
    assert_eq!(names(&["get", "cm", "-o", "name"]), ["configmap/c"]);
}

#[test]
fn list_pages_with_limit_and_continue() {
    // The API alone: no controller adds objects (kube-root-ca.crt, ReplicaSets, pods).
    let c = Cluster::start_with(&["--disable-controllers"]);
    for i in 0..7 {
        c.ok_stdin(
            &["create", "-f", "-", "--validate=false"],
            &format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{i}"}}}}"#),
        );
    }
    let first: serde_json::Value = serde_json::from_str(&c.ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/configmaps?limit=3",
    ]))
    .unwrap();
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let token = first["metadata"]["continue"]
        .as_str()
        .expect("a continue token")
        .to_string();
    let second: serde_json::Value = serde_json::from_str(&c.ok(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/default/configmaps?limit=3&continue={token}"),
    ]))
    .unwrap();
    assert_eq!(second["items"][0]["metadata"]["name"], "cm-3");
    assert_eq!(
        second["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    // kubectl pages transparently.
    assert_eq!(
        c.ok(&["get", "cm", "--chunk-size=2", "-o", "name"])
            .lines()
            .count(),
        7
    );
}

const CRD: &str = r#"{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"widgets.example.com"},
"spec":{"group":"example.com","scope":"Namespaced","names":{"plural":"widgets","singular":"widget","kind":"Widget","shortNames":["wd"]},
"versions":[{"name":"v1","served":true,"storage":true,"subresources":{"status":{}},
"additionalPrinterColumns":[{"name":"Size","type":"integer","jsonPath":".spec.size"},{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}],
"schema":{"openAPIV3Schema":{"type":"object","properties":{"spec":{"type":"object","required":["size"],"properties":{"size":{"type":"integer","minimum":0},"color":{"type":"string","default":"red"}}},"status":{"type":"object","properties":{"ready":{"type":"boolean"}}}}}}}]}}"#;

#[test]
fn a_custom_resource_definition_serves_its_resource() {
    let c = Cluster::start();
    c.ok_stdin(&["create", "-f", "-", "--validate=false"], CRD);
    c.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=20s",
    ]);
    let widget = r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1"},"spec":{"size":3,"unknown":"dropped"}}"#;
    // kubectl rediscovers after the new type appears.
    let mut created = false;
    for _ in 0..20 {
        if c.kubectl_stdin(&["create", "-f", "-", "--validate=false"], Some(widget))
            .status
            .success()
        {
            created = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(created, "could not create a Widget");
    let table = c.ok(&["get", "wd"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SIZE", "AGE"]);
    assert!(table.lines().nth(1).unwrap().starts_with("w1 "), "{table}");
    let obj: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "widget", "w1", "-o", "json"])).unwrap();
    assert_eq!(
        obj["spec"],
        serde_json::json!({ "size": 3, "color": "red" }),
        "unknown fields pruned, defaults filled"
    );
    assert_eq!(obj["metadata"]["generation"], 1);

    let bad = r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w2"},"spec":{"size":"big"}}"#;
    let err = c.fails_stdin(&["create", "-f", "-", "--validate=false"], bad);
    assert!(err.contains("The Widget \"w2\" is invalid: spec.size: Invalid value: \"big\": spec.size in body must be of type integer: \"string\""), "{err}");

    c.ok(&["delete", "crd", "widgets.example.com"]);
    let mut gone = false;
    for _ in 0..50 {
        if !c
            .kubectl(&["get", "crd", "widgets.example.com"])
            .status
            .success()
        {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(gone, "the definition was not removed");
    let raw = c.kubectl(&[
        "get",
        "--raw",
        "/apis/example.com/v1/namespaces/default/widgets",
    ]);
    assert!(
        !raw.status.success(),
        "widgets are still served after their definition was deleted"
    );
}

#[test]
fn auth_can_i_and_whoami_answer_truthfully() {
    let c = Cluster::start();
    assert_eq!(c.ok(&["auth", "can-i", "create", "pods"]).trim(), "yes");
    assert_eq!(c.ok(&["auth", "can-i", "delete", "nodes"]).trim(), "yes");
    let who = c.ok(&["auth", "whoami"]);
    assert!(
        who.contains("system:admin") && who.contains("system:masters"),
        "{who}"
    );
    // RBAC decides for other users: a Role granting get/list on pods in
    // default, bound to jane.
    let role = r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"pod-reader"},"rules":[{"apiGroups":[""],"resources":["pods"],"verbs":["get","list"]}]}"#;
    let binding = r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"jane-reads"},"subjects":[{"kind":"User","name":"jane","apiGroup":"rbac.authorization.k8s.io"}],"roleRef":{"kind":"Role","name":"pod-reader","apiGroup":"rbac.authorization.k8s.io"}}"#;
    c.ok_stdin(&["create", "-f", "-", "--validate=false"], role);
    c.ok_stdin(&["create", "-f", "-", "--validate=false"], binding);
    let sar = |verb: &str, ns: &str| -> bool {
        let body = format!(
            r#"{{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{{"user":"jane","resourceAttributes":{{"verb":"{verb}","resource":"pods","namespace":"{ns}"}}}}}}"#
        );
        let file = support::write(c.dir.path(), "sar.json", &body);
        let out = c.ok(&[
            "create",
            "--raw",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            "-f",
            file.to_str().unwrap(),
        ]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["status"]["allowed"].as_bool().unwrap()
    };
    assert!(sar("list", "default"));
    assert!(!sar("delete", "default"));
    assert!(!sar("list", "kube-system"));
}

#[test]
fn kubectl_typed_create_commands_work_over_protobuf() {
    let c = Cluster::start();
    assert_eq!(
        c.ok(&["create", "namespace", "team-a"]).trim(),
        "namespace/team-a created"
    );
    assert_eq!(
        c.ok(&[
            "create",
            "configmap",
            "settings",
            "-n",
            "team-a",
            "--from-literal=a=b"
        ])
        .trim(),
        "configmap/settings created"
    );
    assert_eq!(
        c.ok(&[
            "create",
            "secret",
            "generic",
            "creds",
            "-n",
            "team-a",
            "--from-literal=pw=s3cret"
        ])
        .trim(),
        "secret/creds created"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "secret",
            "creds",
            "-n",
            "team-a",
            "-o",
            "jsonpath={.data.pw}"
        ]),
        "czNjcmV0"
    );
    assert_eq!(
        c.ok(&[
            "create",
            "deployment",
            "web",
            "-n",
            "team-a",
            "--image=busybox",
            "--replicas=2"
        ])
        .trim(),
        "deployment.apps/web created"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            "team-a",
            "-o",
            "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}"
        ]),
        "2 busybox"
    );
    assert_eq!(
        c.ok(&[
            "create",
            "service",
            "clusterip",
            "web",
            "-n",
            "team-a",
            "--tcp=80:8080"
        ])
        .trim(),
        "service/web created"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "svc",
            "web",
            "-n",
            "team-a",
            "-o",
            "jsonpath={.spec.ports[0].targetPort}"
        ]),
        "8080"
    );
    assert_eq!(
        c.ok(&["create", "job", "once", "-n", "team-a", "--image=busybox"])
            .trim(),
        "job.batch/once created"
    );
    assert_eq!(
        c.ok(&[
            "create",
            "role",
            "reader",
            "-n",
            "team-a",
            "--verb=get",
            "--resource=pods"
        ])
        .trim(),
        "role.rbac.authorization.k8s.io/reader created"
    );
    assert_eq!(
        c.ok(&[
            "create",
            "rolebinding",
            "reader",
            "-n",
            "team-a",
            "--role=reader",
            "--user=jane"
        ])
        .trim(),
        "rolebinding.rbac.authorization.k8s.io/reader created"
    );
    assert_eq!(
        c.ok(&["create", "quota", "q", "-n", "team-a", "--hard=pods=10"])
            .trim(),
        "resourcequota/q created"
    );
    assert_eq!(
        c.ok(&["create", "serviceaccount", "bot", "-n", "team-a"])
            .trim(),
        "serviceaccount/bot created"
    );
    let err = c.fails(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "team-a",
        "--from-literal=a=b",
    ]);
    assert!(
        err.contains("configmaps \"settings\" already exists"),
        "{err}"
    );
    // Typed gets and deletes use protobuf answers.
    assert_eq!(
        c.ok(&["delete", "namespace", "team-a", "--wait=false"])
            .trim(),
        "namespace \"team-a\" deleted"
    );
}

const DEPLOYMENT_YAML: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: busybox:1.36
        ports:
        - containerPort: 8080
";

#[test]
fn kubectl_apply_creates_then_reports_unchanged_then_configured() {
    let c = Cluster::start();
    let file = support::write(c.dir.path(), "web.yaml", DEPLOYMENT_YAML);
    let f = file.to_str().unwrap();
    assert_eq!(
        c.ok(&["apply", "-f", f]).trim(),
        "deployment.apps/web created"
    );
    assert_eq!(
        c.ok(&["apply", "-f", f]).trim(),
        "deployment.apps/web unchanged"
    );
    support::write(
        c.dir.path(),
        "web.yaml",
        &DEPLOYMENT_YAML.replace("replicas: 2", "replicas: 3"),
    );
    assert_eq!(
        c.ok(&["apply", "-f", f]).trim(),
        "deployment.apps/web configured"
    );
    assert_eq!(
        c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
    let annotation = c.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}",
    ]);
    assert!(annotation.contains("\"replicas\":3"), "{annotation}");
    // A typo is refused by the server's strict field validation.
    support::write(
        c.dir.path(),
        "bad.yaml",
        &DEPLOYMENT_YAML
            .replace("replicas: 2", "replicass: 2")
            .replace("name: web\n  labels", "name: web2\n  labels"),
    );
    let err = c.fails(&[
        "apply",
        "-f",
        c.dir.path().join("bad.yaml").to_str().unwrap(),
    ]);
    assert!(err.contains("Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replicass\""), "{err}");
    assert!(!c.kubectl(&["get", "deploy", "web2"]).status.success());
}

#[test]
fn unknown_fields_are_dropped_with_a_warning_or_silently() {
    let c = Cluster::start();
    let bad = support::write(
        c.dir.path(),
        "bad.yaml",
        &DEPLOYMENT_YAML.replace("replicas: 2", "replicas: 2\n  replicass: 2"),
    );
    let out = c.kubectl(&["create", "-f", bad.to_str().unwrap(), "--validate=warn"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Warning: unknown field \"spec.replicass\""),
        "{stderr}"
    );
    let spec = c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec}"]);
    assert!(
        !spec.contains("replicass"),
        "unknown fields are not stored: {spec}"
    );
    c.ok(&["delete", "deploy", "web"]);
    let out = c.kubectl(&["create", "-f", bad.to_str().unwrap(), "--validate=false"]);
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("Warning"),
        "Ignore is silent"
    );
}

#[test]
fn kubectl_explain_reads_the_served_openapi() {
    let c = Cluster::start();
    let out = c.ok(&["explain", "pods.spec.containers.ports"]);
    assert!(out.contains("FIELD: ports <[]ContainerPort>"), "{out}");
    assert!(out.contains("containerPort\t<integer> -required-"), "{out}");
    let out = c.ok(&["explain", "deployment.spec.strategy"]);
    assert!(
        out.contains("rollingUpdate\t<RollingUpdateDeployment>"),
        "{out}"
    );
}

#[test]
fn pods_are_admitted_with_service_account_priority_and_pending_status() {
    let c = Cluster::start();
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"busybox","resources":{"limits":{"cpu":"1","memory":"64Mi"}}}]}}"#;
    c.ok_stdin(&["create", "-f", "-"], pod);
    assert_eq!(
        c.ok(&["get", "pod", "p", "-o", "jsonpath={.spec.serviceAccountName} {.status.phase} {.status.qosClass} {.spec.priority}"]),
        "default Pending Guaranteed 0"
    );
    let volume = c.ok(&["get", "pod", "p", "-o", "jsonpath={.spec.volumes[0].name}"]);
    assert!(volume.starts_with("kube-api-access-"), "{volume}");
    assert_eq!(
        c.ok(&[
            "get",
            "pod",
            "p",
            "-o",
            "jsonpath={.spec.containers[0].volumeMounts[0].mountPath}"
        ]),
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );
    assert_eq!(
        c.ok(&["get", "priorityclass", "-o", "name"])
            .lines()
            .count(),
        2
    );
    let critical = pod.replace(r#""name":"p"}"#, r#""name":"crit"}"#).replace(
        r#""spec":{"#,
        r#""spec":{"priorityClassName":"system-node-critical","#,
    );
    c.ok_stdin(&["create", "-f", "-"], &critical);
    assert_eq!(
        c.ok(&["get", "pod", "crit", "-o", "jsonpath={.spec.priority}"]),
        "2000001000"
    );
    let unknown = pod
        .replace(r#""name":"p"}"#, r#""name":"u"}"#)
        .replace(r#""spec":{"#, r#""spec":{"priorityClassName":"gold","#);
    let err = c.fails_stdin(&["create", "-f", "-"], &unknown);
    assert!(
        err.contains("no PriorityClass with name gold was found"),
        "{err}"
    );
    // A claim without a class gets the default one.
    c.ok_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"local","annotations":{"storageclass.kubernetes.io/is-default-class":"true"}},"provisioner":"krate.io/local-path"}"#,
    );
    c.ok_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}"#,
    );
    assert_eq!(
        c.ok(&[
            "get",
            "pvc",
            "data",
            "-o",
            "jsonpath={.spec.storageClassName}"
        ]),
        "local"
    );
}

#[test]
fn eviction_respects_the_pod_disruption_budget() {
    let c = Cluster::start();
    // Running, Ready pods count against the budget (Pending ones do not).
    let running_pod = |name: &str| {
        c.ok_stdin(
            &["create", "-f", "-"],
            &format!(r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","labels":{{"app":"web"}}}},"spec":{{"containers":[{{"name":"c","image":"busybox"}}]}}}}"#),
        );
        c.ok(&[
            "patch",
            "pod",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}"#,
        ]);
    };
    running_pod("a");
    running_pod("b");
    c.ok_stdin(&["create", "-f", "-"], r#"{"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"web-pdb"},"spec":{"minAvailable":2,"selector":{"matchLabels":{"app":"web"}}}}"#);
    // The disruption controller's view: two healthy pods, none to spare.
    let status = || {
        c.ok(&[
            "get",
            "pdb",
            "web-pdb",
            "-o",
            "jsonpath={.status.observedGeneration},{.status.currentHealthy},{.status.disruptionsAllowed}",
        ])
    };
    support::eventually_blocking(Duration::from_secs(30), "PDB status", || {
        let s = status();
        (s == "1,2,0").then_some(()).ok_or(s)
    });
    let eviction = support::write(
        c.dir.path(),
        "evict.json",
        r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"a","namespace":"default"}}"#,
    );
    let path = "/api/v1/namespaces/default/pods/a/eviction";
    let err = c.fails(&["create", "--raw", path, "-f", eviction.to_str().unwrap()]);
    assert!(
        err.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{err}"
    );
    assert!(
        c.kubectl(&["get", "pod", "a"]).status.success(),
        "a refused eviction must not delete the pod"
    );
    running_pod("c");
    support::eventually_blocking(Duration::from_secs(30), "PDB status", || {
        let s = status();
        (s == "1,3,1").then_some(()).ok_or(s)
    });
    c.ok(&["create", "--raw", path, "-f", eviction.to_str().unwrap()]);
    let gone = c.kubectl(&[
        "get",
        "pod",
        "a",
        "-o",
        "jsonpath={.metadata.deletionTimestamp}",
    ]);
    assert!(
        !gone.status.success() || !String::from_utf8_lossy(&gone.stdout).is_empty(),
        "the evicted pod is deleted or terminating"
    );
    // The evicted pod is no longer counted healthy; none to spare again.
    support::eventually_blocking(Duration::from_secs(30), "PDB status", || {
        let s = status();
        (s == "1,2,0").then_some(()).ok_or(s)
    });
}

#[test]
fn limit_ranges_fill_defaults_and_quotas_refuse_what_exceeds_them() {
    let c = Cluster::start();
    c.ok_stdin(&["create", "-f", "-"], r#"{"apiVersion":"v1","kind":"LimitRange","metadata":{"name":"lr"},"spec":{"limits":[{"type":"Container","default":{"cpu":"500m","memory":"128Mi"},"defaultRequest":{"cpu":"100m","memory":"64Mi"},"max":{"cpu":"1"}}]}}"#);
    let pod = |name: &str, extra: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},"spec":{{"containers":[{{"name":"c","image":"busybox"{extra}}}]}}}}"#
        )
    };
    c.ok_stdin(&["create", "-f", "-"], &pod("p1", ""));
    assert_eq!(
        c.ok(&["get", "pod", "p1", "-o", "jsonpath={.spec.containers[0].resources.requests.cpu} {.spec.containers[0].resources.limits.cpu} {.status.qosClass}"]),
        "100m 500m Burstable"
    );
    let err = c.fails_stdin(
        &["create", "-f", "-"],
        &pod("p2", r#","resources":{"limits":{"cpu":"2"}}"#),
    );
    assert!(
        err.contains(
            "pods \"p2\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
        ),
        "{err}"
    );

    c.ok(&["create", "quota", "q", "--hard=pods=2,requests.cpu=250m"]);
    c.ok_stdin(
        &["create", "-f", "-"],
        &pod("p3", r#","resources":{"requests":{"cpu":"100m"}}"#),
    );
    let err = c.fails_stdin(
        &["create", "-f", "-"],
        &pod("p4", r#","resources":{"requests":{"cpu":"100m"}}"#),
    );
    assert!(err.contains("pods \"p4\" is forbidden: exceeded quota: q, requested: pods=1,requests.cpu=100m, used: pods=2,requests.cpu=200m, limited: pods=2,requests.cpu=250m"), "{err}");
    assert!(
        !c.kubectl(&["get", "pod", "p4"]).status.success(),
        "a refused pod must not be stored"
    );
}

#[test]
fn server_side_apply_tracks_owners_and_reports_conflicts() {
    let c = Cluster::start();
    let file = support::write(c.dir.path(), "web.yaml", DEPLOYMENT_YAML);
    let f = file.to_str().unwrap();
    assert_eq!(
        c.ok(&["apply", "--server-side", "-f", f]).trim(),
        "deployment.apps/web serverside-applied"
    );
    let managers = c.ok(&[
        "get",
        "deploy",
        "web",
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}:{.metadata.managedFields[*].operation}",
    ]);
    assert_eq!(managers, "kubectl:Apply");
    // Another writer takes spec.replicas...
    c.ok(&[
        "patch",
        "deploy",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":5}}"#,
    ]);
    // ...so applying a different value conflicts.
    support::write(
        c.dir.path(),
        "web.yaml",
        &DEPLOYMENT_YAML.replace("replicas: 2", "replicas: 3"),
    );
    let err = c.fails(&["apply", "--server-side", "-f", f]);
    assert!(err.contains("Apply failed with 1 conflict: conflict with \"kubectl-patch\" using apps/v1: .spec.replicas"), "{err}");
    assert_eq!(
        c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "5"
    );
    c.ok(&["apply", "--server-side", "--force-conflicts", "-f", f]);
    assert_eq!(
        c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
    // Dropping a field from the applied config removes it.
    support::write(
        c.dir.path(),
        "web.yaml",
        &DEPLOYMENT_YAML
            .replace("replicas: 2", "replicas: 3")
            .replace("  labels:\n    app: web\nspec:", "spec:"),
    );
    c.ok(&["apply", "--server-side", "-f", f]);
    assert_eq!(
        c.ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.labels}"]),
        ""
    );
}

#[test]
fn service_account_tokens_authenticate_and_rbac_limits_them() {
    let c = Cluster::start();
    c.ok(&["create", "serviceaccount", "bot"]);
    let token = c.ok(&["create", "token", "bot"]).trim().to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let curl = |path: &str, bearer: &str, body: Option<&str>| -> serde_json::Value {
        let mut cmd = std::process::Command::new("curl");
        cmd.args([
            "-sk",
            "-H",
            &format!("Authorization: Bearer {bearer}"),
            &format!("{}{path}", c.server_url()),
        ]);
        if let Some(b) = body {
            cmd.args([
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "-d",
                b,
            ]);
        }
        serde_json::from_slice(&cmd.output().unwrap().stdout).unwrap()
    };
    let review = r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#;
    let me = curl(
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        &token,
        Some(review),
    );
    assert_eq!(
        me["status"]["userInfo"]["username"],
        "system:serviceaccount:default:bot"
    );
    // Without a binding the account may not list pods; with one it may.
    let denied = curl("/api/v1/namespaces/default/pods", &token, None);
    assert_eq!(denied["code"], 403, "{denied}");
    c.ok(&[
        "create",
        "rolebinding",
        "bot-view",
        "--clusterrole=pod-reader",
        "--serviceaccount=default:bot",
    ]);
    c.ok(&[
        "create",
        "clusterrole",
        "pod-reader",
        "--verb=list",
        "--resource=pods",
    ]);
    let allowed = curl("/api/v1/namespaces/default/pods", &token, None);
    assert_eq!(allowed["kind"], "PodList", "{allowed}");
    // A forged token is refused outright.
    let forged = curl(
        "/api/v1/namespaces/default/pods",
        &format!("{token}x"),
        None,
    );
    assert_eq!(forged["code"], 401, "{forged}");
    // TokenReview says who a token belongs to.
    let body = format!(
        r#"{{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{{"token":"{token}"}}}}"#
    );
    let file = support::write(c.dir.path(), "review.json", &body);
    let out: serde_json::Value = serde_json::from_str(&c.ok(&[
        "create",
        "--raw",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        "-f",
        file.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(out["status"]["authenticated"], true);
    assert_eq!(
        out["status"]["user"]["username"],
        "system:serviceaccount:default:bot"
    );
    let err = c.fails(&["create", "token", "nobody"]);
    assert!(
        err.contains("serviceaccounts \"nobody\" not found"),
        "{err}"
    );
}

#[test]
fn deleting_a_namespace_deletes_its_content_then_the_namespace() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "team"]);
    c.ok(&[
        "create",
        "configmap",
        "plain",
        "-n",
        "team",
        "--from-literal=a=b",
    ]);
    c.ok(&[
        "create",
        "deployment",
        "web",
        "-n",
        "team",
        "--image=busybox",
    ]);
    // An object with a finalizer holds the namespace in Terminating.
    c.ok_stdin(&["create", "-n", "team", "-f", "-"], r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"held","finalizers":["example.com/hold"]}}"#);
    c.ok(&["delete", "namespace", "team", "--wait=false"]);
    let mut phase = String::new();
    let mut message = String::new();
    for _ in 0..50 {
        phase = c.ok(&["get", "ns", "team", "-o", "jsonpath={.status.phase}"]);
        message = c.ok(&[
            "get",
            "ns",
            "team",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"NamespaceContentRemaining\")].message}",
        ]);
        if !message.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(phase, "Terminating");
    // Upstream's words: `resource.group`, with a trailing dot for the core group.
    assert_eq!(
        message,
        "Some resources are remaining: configmaps. has 1 resource instances"
    );
    let finalizers = c.ok(&[
        "get",
        "ns",
        "team",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"NamespaceFinalizersRemaining\")].message}",
    ]);
    assert_eq!(
        finalizers,
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    );
    let describe = c.ok(&["describe", "ns", "team"]);
    for (condition, reason) in [
        ("NamespaceDeletionDiscoveryFailure", "ResourcesDiscovered"),
        ("NamespaceDeletionContentFailure", "ContentDeleted"),
        ("NamespaceContentRemaining", "SomeResourcesRemain"),
        ("NamespaceFinalizersRemaining", "SomeFinalizersRemain"),
    ] {
        assert!(
            describe
                .lines()
                .any(|l| l.contains(condition) && l.contains(reason)),
            "{condition} {reason} in:\n{describe}"
        );
    }
    assert_eq!(
        c.ok(&["get", "cm", "-n", "team", "-o", "name"]).trim(),
        "configmap/held"
    );
    assert!(c
        .ok(&["get", "deploy", "-n", "team", "-o", "name"])
        .trim()
        .is_empty());
    let err = c.fails(&["create", "configmap", "late", "-n", "team"]);
    assert!(err.contains("because it is being terminated"), "{err}");
    // Releasing the finalizer lets the namespace go.
    c.ok(&[
        "patch",
        "cm",
        "held",
        "-n",
        "team",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    c.ok(&["wait", "--for=delete", "namespace/team", "--timeout=20s"]);
    let namespaces = c.ok(&[
        "get",
        "cm",
        "-A",
        "-o",
        "jsonpath={.items[*].metadata.namespace}",
    ]);
    assert!(
        !namespaces.split_whitespace().any(|ns| ns == "team"),
        "nothing of the namespace may remain: {namespaces}"
    );
    let err = c.fails(&["delete", "namespace", "default"]);
    assert!(
        err.contains("namespaces \"default\" is forbidden: this namespace may not be deleted"),
        "{err}"
    );
}

#[test]
fn kubectl_get_watch_prints_rows_as_changes_happen() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "first", "--from-literal=a=b"]);
    let mut watcher = std::process::Command::new("kubectl")
        .args(["get", "configmaps", "--watch"])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("KUBECACHEDIR", c.dir.path().join("watch-cache"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    c.ok(&[
        "create",
        "configmap",
        "second",
        "--from-literal=a=b",
        "--from-literal=c=d",
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    let _ = watcher.kill();
    let out = watcher.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAME", "DATA", "AGE"], "{text}");
    assert!(
        rows.iter()
            .any(|r| r.first() == Some(&"first") && r.get(1) == Some(&"1")),
        "{text}"
    );
    assert!(
        rows.iter()
            .any(|r| r.first() == Some(&"second") && r.get(1) == Some(&"2")),
        "the new object appears as a row: {text}"
    );
}

#[test]
fn the_view_edit_and_admin_roles_aggregate_and_grant_what_upstreams_do() {
    let c = Cluster::start();
    let rules_of =
        |role: &str| -> String { c.ok(&["get", "clusterrole", role, "-o", "jsonpath={.rules}"]) };
    // The controller fills the aggregating roles from system:aggregate-to-*.
    eventually_blocking(Duration::from_secs(30), "view aggregated", || {
        let view = rules_of("view");
        let edit = rules_of("edit");
        let admin = rules_of("admin");
        if view.contains("endpointslices")
            && edit.contains("impersonate")
            && edit.contains("endpointslices")
            && admin.contains("localsubjectaccessreviews")
            && admin.contains("impersonate")
        {
            Ok(())
        } else {
            Err(format!("{view}\n{edit}\n{admin}"))
        }
    });
    let can = |as_user: &str, args: &[&str]| -> String {
        let mut a = vec!["auth", "can-i"];
        a.extend(args);
        a.extend(["-n", "team", "--as", as_user]);
        let out = c.kubectl(&a);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    c.ok(&["create", "namespace", "team"]);
    for (user, role) in [("viewer", "view"), ("editor", "edit"), ("boss", "admin")] {
        c.ok(&[
            "create",
            "rolebinding",
            user,
            "-n",
            "team",
            &format!("--clusterrole={role}"),
            &format!("--user={user}"),
        ]);
    }
    eventually_blocking(Duration::from_secs(30), "the bindings in force", || {
        if can("boss", &["create", "roles"]) == "yes" {
            Ok(())
        } else {
            Err(can("boss", &["create", "roles"]))
        }
    });
    assert_eq!(can("viewer", &["list", "pods"]), "yes");
    assert_eq!(
        can("viewer", &["get", "secrets"]),
        "no",
        "{} {:?}",
        can("nobody", &["get", "secrets"]),
        c.kubectl(&["auth", "can-i", "get", "secrets", "-n", "team", "--as", "viewer", "-v=8"])
    );
    assert_eq!(can("viewer", &["create", "deployments"]), "no");
    assert_eq!(can("editor", &["create", "deployments"]), "yes");
    assert_eq!(can("editor", &["get", "secrets"]), "yes");
    assert_eq!(can("editor", &["create", "pods/exec"]), "yes");
    assert_eq!(can("editor", &["create", "rolebindings"]), "no");
    assert_eq!(can("boss", &["create", "rolebindings"]), "yes");
    // Bound in one namespace only.
    assert_eq!(
        String::from_utf8_lossy(
            &c.kubectl(&["auth", "can-i", "list", "pods", "-n", "default", "--as", "viewer"])
                .stdout
        )
        .trim(),
        "no"
    );

    // A role of one's own labelled to aggregate into view reaches view,
    // edit and admin, and leaves them when deleted.
    assert_eq!(can("viewer", &["list", "podtemplates"]), "no");
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"template-reader","labels":{"rbac.authorization.k8s.io/aggregate-to-view":"true"}},"rules":[{"apiGroups":[""],"resources":["podtemplates"],"verbs":["get","list","watch"]}]}"#,
    );
    let viewer_lists_templates = |want: &'static str| {
        eventually_blocking(
            Duration::from_secs(30),
            &format!("viewer may list podtemplates: {want}"),
            || match can("viewer", &["list", "podtemplates"]).as_str() {
                got if got == want => Ok(()),
                other => Err(format!("{other}\n{}", rules_of("view"))),
            },
        )
    };
    viewer_lists_templates("yes");
    // admin takes it through edit, which takes it through view.
    let admin_has_templates = |want: bool| {
        eventually_blocking(Duration::from_secs(30), "admin's rules", || {
            let admin = rules_of("admin");
            if admin.contains("podtemplates") == want {
                Ok(())
            } else {
                Err(admin)
            }
        })
    };
    admin_has_templates(true);
    eventually_blocking(
        Duration::from_secs(30),
        "boss lists podtemplates",
        || match can("boss", &["list", "podtemplates"]).as_str() {
            "yes" => Ok(()),
            other => Err(other.to_string()),
        },
    );
    c.ok(&["delete", "clusterrole", "template-reader"]);
    viewer_lists_templates("no");
    admin_has_templates(false);
}

#[test]
fn impersonation_acts_as_the_user_once_the_requester_may_impersonate() {
    let c = Cluster::start();
    // The admin may impersonate anyone: whoami and RBAC see the user.
    let who = c.ok(&["auth", "whoami", "--as", "jane", "--as-group", "devs"]);
    assert!(
        who.lines()
            .any(|l| l.split_whitespace().eq(["Username", "jane"])),
        "{who}"
    );
    assert!(who.contains("[devs system:authenticated]"), "{who}");
    let who = c.ok(&[
        "auth",
        "whoami",
        "--as",
        "system:serviceaccount:default:robot",
    ]);
    assert!(
        who.contains(
            "[system:serviceaccounts system:serviceaccounts:default system:authenticated]"
        ),
        "{who}"
    );
    let denied = c.fails(&["get", "pods", "--as", "jane"]);
    assert!(
        denied.contains(r#"pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default""#),
        "{denied}"
    );

    // A service account may impersonate only what it is granted.
    c.ok(&["create", "serviceaccount", "robot"]);
    let token = c.ok(&["create", "token", "robot"]).trim().to_string();
    let server = c.server_url();
    let as_robot = |args: &[&str]| {
        let mut a = vec!["--kubeconfig=/dev/null", "--insecure-skip-tls-verify"];
        let server_flag = format!("--server={server}");
        let token_flag = format!("--token={token}");
        a.push(&server_flag);
        a.push(&token_flag);
        a.extend(args);
        let out = c.kubectl(&a);
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (_, err) = as_robot(&["get", "pods", "--as", "jane"]);
    assert!(
        err.contains(r#"users "jane" is forbidden: User "system:serviceaccount:default:robot" cannot impersonate resource "users" in API group "" at the cluster scope"#),
        "{err}"
    );
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"impersonate-jane"},"rules":[{"apiGroups":[""],"resources":["users"],"resourceNames":["jane"],"verbs":["impersonate"]}]}"#,
    );
    c.ok(&[
        "create",
        "clusterrolebinding",
        "robot-impersonates",
        "--clusterrole=impersonate-jane",
        "--serviceaccount=default:robot",
    ]);
    eventually_blocking(Duration::from_secs(30), "robot acting as jane", || {
        let (out, err) = as_robot(&["auth", "whoami", "--as", "jane"]);
        if out
            .lines()
            .any(|l| l.split_whitespace().eq(["Username", "jane"]))
        {
            Ok(())
        } else {
            Err(format!("{out}{err}"))
        }
    });
    // Only jane, and no groups.
    let (_, err) = as_robot(&["get", "pods", "--as", "joe"]);
    assert!(err.contains(r#"users "joe" is forbidden"#), "{err}");
    let (_, err) = as_robot(&[
        "get",
        "pods",
        "--as",
        "jane",
        "--as-group",
        "system:masters",
    ]);
    assert!(
        err.contains(r#"groups "system:masters" is forbidden: User "system:serviceaccount:default:robot" cannot impersonate resource "groups" in API group "" at the cluster scope"#),
        "{err}"
    );
}

#[test]
fn the_server_serves_its_request_metrics_to_whom_may_read_them() {
    let c = Cluster::start();
    c.ok(&["get", "pods"]);
    c.ok(&["create", "configmap", "counted", "--from-literal=a=b"]);
    let _ = c.kubectl(&["get", "configmap", "missing"]);
    let metrics = c.ok(&["get", "--raw", "/metrics"]);
    let has = |series: &str, labels: &[&str]| {
        metrics
            .lines()
            .any(|l| l.starts_with(series) && labels.iter().all(|want| l.contains(want)))
    };
    assert!(
        has(
            "apiserver_request_total{",
            &[
                r#"code="200""#,
                r#"resource="pods""#,
                r#"verb="LIST""#,
                r#"scope="namespace""#
            ]
        ),
        "{metrics}"
    );
    assert!(
        has(
            "apiserver_request_total{",
            &[
                r#"code="201""#,
                r#"resource="configmaps""#,
                r#"verb="POST""#
            ]
        ),
        "{metrics}"
    );
    assert!(
        has(
            "apiserver_request_total{",
            &[
                r#"code="404""#,
                r#"resource="configmaps""#,
                r#"verb="GET""#,
                r#"scope="resource""#
            ]
        ),
        "{metrics}"
    );
    assert!(
        has(
            "apiserver_request_duration_seconds_bucket{",
            &[r#"resource="pods""#, r#"verb="LIST""#, r#"le="+Inf""#]
        ),
        "{metrics}"
    );
    let rss = metrics
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(rss > 1e6, "{metrics}");

    // Not for everyone: a service account needs system:monitoring.
    c.ok(&["create", "serviceaccount", "scraper"]);
    let token = c.ok(&["create", "token", "scraper"]).trim().to_string();
    let scrape = || {
        let out = c.kubectl(&[
            "--kubeconfig=/dev/null",
            "--insecure-skip-tls-verify",
            &format!("--server={}", c.server_url()),
            &format!("--token={token}"),
            "get",
            "--raw",
            "/metrics",
        ]);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = scrape();
    assert!(!ok && err.contains("Forbidden"), "{err}");
    c.ok(&[
        "create",
        "clusterrolebinding",
        "scraper-monitors",
        "--clusterrole=system:monitoring",
        "--serviceaccount=default:scraper",
    ]);
    eventually_blocking(
        Duration::from_secs(30),
        "the scraper reads /metrics",
        || match scrape() {
            (true, _) => Ok(()),
            (false, err) => Err(err),
        },
    );
}
