//! Request handling details clients rely on, through the real kubectl:
//! what a page of a list says about the rest, and how duplicate fields in
//! a request body are reported per `fieldValidation`.

mod support;

use serde_json::Value;
use support::Cluster;

fn raw(c: &Cluster, path: &str) -> Value {
    serde_json::from_str(&c.ok(&["get", "--raw", path])).unwrap()
}

#[test]
fn pages_of_unfiltered_lists_count_the_items_that_remain() {
    // The API alone: no controller adds objects (kube-root-ca.crt).
    let c = Cluster::start_with(&["--disable-controllers"]);
    for i in 0..7 {
        let label = if i % 2 == 0 { "even" } else { "odd" };
        c.ok_stdin(
            &["create", "-f", "-"],
            &format!(
                r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{i}","labels":{{"parity":"{label}"}}}}}}"#
            ),
        );
    }
    let base = "/api/v1/namespaces/default/configmaps";
    let first = raw(&c, &format!("{base}?limit=3"));
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    assert_eq!(first["metadata"]["remainingItemCount"], 4);
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();

    // A new object after the first page is not counted: the pages read
    // the list as it was.
    c.ok_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-late"}}"#,
    );
    let second = raw(&c, &format!("{base}?limit=3&continue={token}"));
    assert_eq!(second["metadata"]["remainingItemCount"], 1);
    let token = second["metadata"]["continue"].as_str().unwrap().to_string();
    let last = raw(&c, &format!("{base}?limit=3&continue={token}"));
    assert_eq!(last["items"].as_array().unwrap().len(), 1);
    assert!(last["metadata"].get("continue").is_none(), "{last}");
    assert!(
        last["metadata"].get("remainingItemCount").is_none(),
        "{last}"
    );

    // With a selector the store's count would be wrong: upstream leaves it out.
    let even = raw(&c, &format!("{base}?limit=2&labelSelector=parity%3Deven"));
    assert_eq!(even["items"].as_array().unwrap().len(), 2);
    assert!(even["metadata"]["continue"].is_string(), "{even}");
    assert!(
        even["metadata"].get("remainingItemCount").is_none(),
        "{even}"
    );
    let cluster_wide = raw(&c, "/api/v1/configmaps?limit=5");
    assert_eq!(cluster_wide["metadata"]["remainingItemCount"], 3);

    // kubectl pages through Tables transparently.
    assert_eq!(
        c.ok(&["get", "cm", "--chunk-size=2", "-o", "name"])
            .lines()
            .count(),
        8
    );
    let table = c.ok(&["get", "cm", "--chunk-size=3", "-l", "parity=odd"]);
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(table.starts_with("NAME"), "{table}");
}

/// A ConfigMap whose body names `metadata.name`, `data.a` and
/// `metadata.labels.app` twice, and an unknown field once.
const DUPLICATED: &str = r#"{"apiVersion":"v1","kind":"ConfigMap",
"metadata":{"name":"first","name":"dup","labels":{"app":"x","app":"y"}},
"bogus":1,
"data":{"a":"1","a":"2"}}"#;

#[test]
fn duplicate_json_fields_are_refused_or_warned_about_per_field_validation() {
    let c = Cluster::start_with(&["--disable-controllers"]);
    let body = support::write(c.dir.path(), "dup.json", DUPLICATED);
    let body = body.to_str().unwrap();
    let base = "/api/v1/namespaces/default/configmaps";

    let err = c.fails(&[
        "create",
        "--raw",
        &format!("{base}?fieldValidation=Strict"),
        "-f",
        body,
    ]);
    assert!(
        err.contains(
            "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: \
             duplicate field \"metadata.name\", duplicate field \"metadata.labels.app\", \
             unknown field \"bogus\", duplicate field \"data.a\""
        ),
        "{err}"
    );
    assert!(!c.kubectl(&["get", "cm", "dup"]).status.success());

    // Warn (the default): stored with the last value of each field.
    let out = c.kubectl(&["create", "--raw", base, "-f", body]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("Warning:"))
        .collect();
    assert_eq!(
        warnings,
        [
            "Warning: duplicate field \"metadata.name\"",
            "Warning: duplicate field \"metadata.labels.app\"",
            "Warning: unknown field \"bogus\"",
            "Warning: duplicate field \"data.a\"",
        ]
    );
    assert_eq!(
        c.ok(&[
            "get",
            "cm",
            "dup",
            "-o",
            "jsonpath={.data.a}/{.metadata.labels.app}"
        ]),
        "2/y"
    );

    // Ignore says nothing.
    let out = c.kubectl(&[
        "replace",
        "--raw",
        &format!("{base}/dup?fieldValidation=Ignore"),
        "-f",
        body,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("Warning"));

    // A merge patch is read the same way.
    let patch = support::write(c.dir.path(), "patch.json", r#"{"data":{"b":"1","b":"3"}}"#);
    let out = c.kubectl(&[
        "patch",
        "cm",
        "dup",
        "--type=merge",
        "--patch-file",
        patch.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Warning: duplicate field \"data.b\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(c.ok(&["get", "cm", "dup", "-o", "jsonpath={.data.b}"]), "3");

    // A JSON patch: its operations' own keys are checked (kubectl itself
    // keeps only the last of a duplicated key there).
    let out = c.kubectl(&[
        "patch",
        "cm",
        "dup",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/data/c","value":"1","foo":"bar"},{"op":"add","path":"/data/d","path":"/data/e","value":"2"}]"#,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("Warning:"))
        .collect();
    assert_eq!(warnings, ["Warning: json patch unknown field \"[0].foo\""]);
    assert_eq!(c.ok(&["get", "cm", "dup", "-o", "jsonpath={.data.e}"]), "2");
}

/// A Deployment in YAML whose keys `name` (line 5), `paused` (line 10)
/// and `imagePullPolicy` (line 21) are set twice, with an unknown field.
const DUPLICATED_YAML: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: first
  name: web
spec:
  unknown1: val1
  selector: {matchLabels: {app: web}}
  paused: true
  paused: false
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx
        unknownNested: x
        imagePullPolicy: Always
        imagePullPolicy: Never
";

/// POSTs `body` as YAML with the admin credentials (kubectl always sends
/// JSON); returns the status, the `Warning` headers and the body.
fn post_yaml(c: &Cluster, path: &str, body: &str) -> (u16, Vec<String>, String) {
    send(c, http::Method::POST, path, "application/yaml", body)
}

/// Sends `body` with the admin credentials; returns the status, the
/// `Warning` headers and the answer's body.
fn send(
    c: &Cluster,
    method: http::Method,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, Vec<String>, String) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let kubeconfig = kube::config::Kubeconfig::read_from(&c.kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .body(kube::client::Body::from(body.as_bytes().to_vec()))
            .unwrap();
        let response = client.send(request).await.unwrap();
        let warnings = response
            .headers()
            .get_all("warning")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        let status = response.status().as_u16();
        let body = response.into_body().collect_bytes().await.unwrap();
        (
            status,
            warnings,
            String::from_utf8_lossy(&body).into_owned(),
        )
    })
}

#[test]
fn duplicate_yaml_keys_are_reported_by_line_per_field_validation() {
    let c = Cluster::start_with(&["--disable-controllers"]);
    let base = "/apis/apps/v1/namespaces/default/deployments";
    let (status, _, body) = post_yaml(
        &c,
        &format!("{base}?fieldValidation=Strict"),
        DUPLICATED_YAML,
    );
    assert_eq!(status, 400, "{body}");
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        status["message"],
        "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: \
         yaml: unmarshal errors:\n  line 5: key \"name\" already set in map\n  \
         line 10: key \"paused\" already set in map\n  \
         line 21: key \"imagePullPolicy\" already set in map, \
         unknown field \"spec.template.spec.containers[0].unknownNested\", \
         unknown field \"spec.unknown1\""
    );
    assert!(!c.kubectl(&["get", "deploy", "web"]).status.success());

    let (status, warnings, body) = post_yaml(&c, base, DUPLICATED_YAML);
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        warnings,
        [
            r#"299 - "line 5: key \"name\" already set in map""#,
            r#"299 - "line 10: key \"paused\" already set in map""#,
            r#"299 - "line 21: key \"imagePullPolicy\" already set in map""#,
            r#"299 - "unknown field \"spec.template.spec.containers[0].unknownNested\"""#,
            r#"299 - "unknown field \"spec.unknown1\"""#,
        ]
    );
    // The last value of each key is the one stored.
    assert_eq!(
        c.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.paused}/{.spec.template.spec.containers[0].imagePullPolicy}"
        ]),
        "false/Never"
    );
}

#[test]
fn a_server_side_apply_patch_may_be_yaml() {
    let c = Cluster::start_with(&["--disable-controllers"]);
    let path = "/api/v1/namespaces/default/configmaps/applied?fieldManager=yaml-client";
    let body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  answer: \"42\"\n  enabled: \"true\"\n";
    let (status, _, answer) = send(
        &c,
        http::Method::PATCH,
        path,
        "application/apply-patch+yaml",
        body,
    );
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        c.ok(&[
            "get",
            "cm",
            "applied",
            "-o",
            "jsonpath={.data.answer}/{.data.enabled}/{.metadata.managedFields[0].manager}"
        ]),
        "42/true/yaml-client"
    );
    // Applying again changes the object in place: 200, not 201.
    let (status, _, answer) = send(
        &c,
        http::Method::PATCH,
        path,
        "application/apply-patch+yaml",
        &body.replace("42", "43"),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        c.ok(&["get", "cm", "applied", "-o", "jsonpath={.data.answer}"]),
        "43"
    );
}
