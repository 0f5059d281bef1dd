//! The EndpointSlice mirroring controller through kubectl against a real
//! `krate server`: a Service without a selector and an Endpoints object
//! written by hand get mirrored EndpointSlices that follow the Endpoints'
//! updates and go away with the Endpoints, with the Service, or when the
//! Service gains a selector.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{eventually_blocking, Cluster};

const WAIT: Duration = Duration::from_secs(30);
const MIRRORED: &str =
    "endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io";

fn service(name: &str) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": name },
        "spec": { "ports": [{ "name": "http", "port": 80, "targetPort": 8080 }] },
    })
    .to_string()
}

fn endpoints(name: &str, ips: &[&str], labels: Value) -> String {
    let addresses: Vec<Value> = ips.iter().map(|ip| json!({ "ip": ip })).collect();
    json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": { "name": name, "labels": labels },
        "subsets": [{
            "addresses": addresses,
            "ports": [{ "name": "http", "port": 8080, "protocol": "TCP" }],
        }],
    })
    .to_string()
}

/// The mirrored slices of `service`, as `kubectl get -o json` lists them.
fn mirrored(c: &Cluster, service: &str) -> Vec<Value> {
    let out = c.ok(&[
        "get",
        "endpointslices",
        "-l",
        &format!("{MIRRORED},kubernetes.io/service-name={service}"),
        "-o",
        "json",
    ]);
    let list: Value = serde_json::from_str(&out).unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
}

fn addresses(slice: &Value) -> Vec<String> {
    let mut v: Vec<String> = slice["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["addresses"][0].as_str().unwrap_or_default().to_string())
        .collect();
    v.sort();
    v
}

/// Waits until `service` has exactly one mirrored slice holding `ips`.
fn wait_mirrored(c: &Cluster, service: &str, ips: &[&str]) -> Value {
    eventually_blocking(WAIT, &format!("{service} mirrored as {ips:?}"), || {
        let slices = mirrored(c, service);
        match slices.as_slice() {
            [one] if addresses(one) == ips => Ok(one.clone()),
            _ => Err(format!("{slices:#?}")),
        }
    })
}

fn wait_unmirrored(c: &Cluster, service: &str) {
    eventually_blocking(WAIT, &format!("{service}'s mirrored slices gone"), || {
        let slices = mirrored(c, service);
        if slices.is_empty() {
            Ok(())
        } else {
            Err(format!("{slices:#?}"))
        }
    })
}

#[test]
fn selectorless_service_endpoints_are_mirrored_to_endpointslices_and_follow_updates() {
    let c = Cluster::start();
    c.ok_stdin(&["apply", "-f", "-"], &service("ext"));
    c.ok_stdin(
        &["apply", "-f", "-"],
        &endpoints("ext", &["10.9.0.1", "10.9.0.2"], json!({ "team": "a" })),
    );
    let slice = wait_mirrored(&c, "ext", &["10.9.0.1", "10.9.0.2"]);
    let name = slice["metadata"]["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("ext-") && name.len() > 4, "{name}");
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["ports"],
        json!([{ "name": "http", "port": 8080, "protocol": "TCP" }])
    );
    assert_eq!(slice["metadata"]["labels"]["team"], "a");
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Endpoints");
    assert_eq!(slice["endpoints"][0]["conditions"]["ready"], true);
    let table = c.ok(&["get", "endpointslices", &name]);
    let row = table.lines().nth(1).unwrap_or_default();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cols[..4],
        [name.as_str(), "IPv4", "8080", "10.9.0.1,10.9.0.2"],
        "{table}"
    );

    // An update of the Endpoints rewrites the same slice.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &endpoints(
            "ext",
            &["10.9.0.1", "10.9.0.3", "10.9.0.4"],
            json!({ "team": "a" }),
        ),
    );
    let updated = wait_mirrored(&c, "ext", &["10.9.0.1", "10.9.0.3", "10.9.0.4"]);
    assert_eq!(updated["metadata"]["name"], name.as_str());

    // Deleting the Endpoints deletes its slices.
    c.ok(&["delete", "endpoints", "ext"]);
    wait_unmirrored(&c, "ext");
}

#[test]
fn mirrored_slices_go_with_the_service_or_its_new_selector_and_skip_mirror_is_honoured() {
    let c = Cluster::start();
    for name in ["gone", "selected", "skipped"] {
        c.ok_stdin(&["apply", "-f", "-"], &service(name));
    }
    c.ok_stdin(
        &["apply", "-f", "-"],
        &endpoints("gone", &["10.9.1.1"], json!({})),
    );
    c.ok_stdin(
        &["apply", "-f", "-"],
        &endpoints("selected", &["10.9.2.1"], json!({})),
    );
    c.ok_stdin(
        &["apply", "-f", "-"],
        &endpoints(
            "skipped",
            &["10.9.3.1"],
            json!({ "endpointslice.kubernetes.io/skip-mirror": "true" }),
        ),
    );
    // Endpoints without a Service are not mirrored.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &endpoints("lonely", &["10.9.4.1"], json!({})),
    );
    wait_mirrored(&c, "gone", &["10.9.1.1"]);
    wait_mirrored(&c, "selected", &["10.9.2.1"]);
    assert!(
        mirrored(&c, "skipped").is_empty(),
        "skip-mirror is honoured"
    );
    assert!(mirrored(&c, "lonely").is_empty(), "no Service, no mirror");

    c.ok(&["delete", "service", "gone"]);
    wait_unmirrored(&c, "gone");

    c.ok(&[
        "patch",
        "service",
        "selected",
        "-p",
        r#"{"spec":{"selector":{"app":"web"}}}"#,
    ]);
    wait_unmirrored(&c, "selected");

    // A Service created after its Endpoints starts the mirroring.
    c.ok_stdin(&["apply", "-f", "-"], &service("lonely"));
    wait_mirrored(&c, "lonely", &["10.9.4.1"]);
}
