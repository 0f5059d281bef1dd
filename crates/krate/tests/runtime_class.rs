//! RuntimeClass through the API, as upstream's RuntimeClass admission
//! plugin and scheduler treat it: a pod naming a class that does not exist
//! is refused, the class's overhead becomes the pod's and counts toward a
//! node's resources, and the class's scheduling constraints are merged into
//! the pod's. No node agent: admission and scheduling only.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{eventually_blocking, Cluster};

fn get_json(c: &Cluster, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&c.ok(&all)).unwrap()
}

fn create(c: &Cluster, obj: &Value) {
    c.ok_stdin(&["create", "-f", "-"], &obj.to_string());
}

fn runtime_class(name: &str, handler: &str, extra: Value) -> Value {
    let mut rc = json!({
        "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
        "metadata": {"name": name}, "handler": handler
    });
    for (k, v) in extra.as_object().unwrap() {
        rc[k] = v.clone();
    }
    rc
}

fn pod(name: &str, class: Option<&str>, cpu: &str, extra_spec: Value) -> Value {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": cpu}}}]}
    });
    if let Some(class) = class {
        p["spec"]["runtimeClassName"] = json!(class);
    }
    for (k, v) in extra_spec.as_object().unwrap() {
        p["spec"][k] = v.clone();
    }
    p
}

/// A Ready node with `cpu` cores, labels and taints.
fn node(name: &str, cpu: &str, labels: Value, taints: Value) -> Value {
    let capacity =
        json!({"cpu": cpu, "memory": "8Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    let mut all_labels = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"});
    for (k, v) in labels.as_object().unwrap() {
        all_labels[k] = v.clone();
    }
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": all_labels},
        "spec": {"taints": taints},
        "status": {
            "capacity": capacity, "allocatable": capacity,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready"}]
        }
    })
}

fn scheduled(c: &Cluster, pod: &str) -> Value {
    eventually_blocking(
        Duration::from_secs(20),
        &format!("a PodScheduled condition on {pod}"),
        || {
            let p = get_json(c, &["get", "pod", pod]);
            p["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled").cloned())
                .ok_or_else(|| p["status"].to_string())
        },
    )
}

#[test]
fn runtime_classes_list_with_their_handler_and_pods_show_their_class() {
    let c = Cluster::start();
    create(&c, &runtime_class("gvisor", "runsc", json!({})));
    let out = c.ok(&["get", "runtimeclass"]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "HANDLER", "AGE"], "{out}");
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..2], ["gvisor", "runsc"], "{out}");

    create(&c, &pod("sandboxed", Some("gvisor"), "100m", json!({})));
    let describe = c.ok(&["describe", "pod", "sandboxed"]);
    assert!(
        describe
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["Runtime", "Class", "Name:", "gvisor"]),
        "{describe}"
    );
}

#[test]
fn a_pod_naming_a_missing_runtime_class_is_forbidden() {
    let c = Cluster::start();
    let err = c.fails_stdin(
        &["create", "-f", "-"],
        &pod("lost", Some("foo"), "100m", json!({})).to_string(),
    );
    assert!(
        err.contains(
            r#"Error from server (Forbidden): error when creating "STDIN": pods "lost" is forbidden: pod rejected: RuntimeClass "foo" not found"#
        ),
        "{err}"
    );
    c.fails(&["get", "pod", "lost"]);
}

#[test]
fn the_runtime_class_overhead_is_set_on_the_pod_and_counts_toward_the_node() {
    let c = Cluster::start();
    create(
        &c,
        &runtime_class(
            "kata",
            "kata",
            json!({"overhead": {"podFixed": {"cpu": "250m", "memory": "120Mi"}}}),
        ),
    );
    create(&c, &pod("heavy", Some("kata"), "100m", json!({})));
    let p = get_json(&c, &["get", "pod", "heavy"]);
    assert_eq!(
        p["spec"]["overhead"],
        json!({"cpu": "250m", "memory": "120Mi"})
    );

    // A pod's own overhead must be the class's.
    let err = c.fails_stdin(
        &["create", "-f", "-"],
        &pod(
            "liar",
            Some("kata"),
            "100m",
            json!({"overhead": {"cpu": "10m"}}),
        )
        .to_string(),
    );
    assert!(
        err.contains(r#"pods "liar" is forbidden: pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"#),
        "{err}"
    );
    let err = c.fails_stdin(
        &["create", "-f", "-"],
        &pod(
            "classless",
            None,
            "100m",
            json!({"overhead": {"cpu": "10m"}}),
        )
        .to_string(),
    );
    assert!(
        err.contains(r#"pods "classless" is forbidden: pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"#),
        "{err}"
    );

    // 800m fits a one-core node; 800m plus 250m of overhead does not.
    c.ok(&["delete", "pod", "heavy", "--wait=false"]);
    create(&c, &node("small", "1", json!({}), json!([])));
    create(&c, &pod("too-big", Some("kata"), "800m", json!({})));
    let cond = scheduled(&c, "too-big");
    assert_eq!(cond["status"], "False", "{cond}");
    assert!(
        cond["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Insufficient cpu"),
        "{cond}"
    );
    create(&c, &pod("fits", None, "800m", json!({})));
    let cond = scheduled(&c, "fits");
    assert_eq!(cond["status"], "True", "{cond}");
}

#[test]
fn runtime_class_scheduling_is_merged_into_the_pod() {
    let c = Cluster::start();
    create(
        &c,
        &runtime_class(
            "sandboxed",
            "runc",
            json!({"scheduling": {
                "nodeSelector": {"sandbox": "yes"},
                "tolerations": [{"key": "sandbox-only", "operator": "Exists", "effect": "NoSchedule"}]
            }}),
        ),
    );
    create(&c, &node("plain", "4", json!({}), json!([])));
    create(
        &c,
        &node(
            "isolated",
            "4",
            json!({"sandbox": "yes"}),
            json!([{"key": "sandbox-only", "value": "true", "effect": "NoSchedule"}]),
        ),
    );
    create(
        &c,
        &pod(
            "guest",
            Some("sandboxed"),
            "100m",
            json!({"nodeSelector": {"disk": "any"}}),
        ),
    );
    let p = get_json(&c, &["get", "pod", "guest"]);
    assert_eq!(
        p["spec"]["nodeSelector"],
        json!({"disk": "any", "sandbox": "yes"})
    );
    let tolerations = p["spec"]["tolerations"].as_array().unwrap();
    assert!(
        tolerations.contains(
            &json!({"key": "sandbox-only", "operator": "Exists", "effect": "NoSchedule"})
        ),
        "{tolerations:?}"
    );

    // Without the class the pod could only go to the untainted node; with
    // it, only the labelled, tainted one fits.
    create(&c, &pod("placed", Some("sandboxed"), "100m", json!({})));
    let node = eventually_blocking(Duration::from_secs(20), "placed is bound", || {
        get_json(&c, &["get", "pod", "placed"])["spec"]["nodeName"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| "not bound".to_string())
    });
    assert_eq!(node, "isolated");

    let err = c.fails_stdin(
        &["create", "-f", "-"],
        &pod(
            "clash",
            Some("sandboxed"),
            "100m",
            json!({"nodeSelector": {"sandbox": "no"}}),
        )
        .to_string(),
    );
    assert!(
        err.contains(r#"pods "clash" is forbidden: conflict: runtimeClass.scheduling.nodeSelector[sandbox] = yes; pod.spec.nodeSelector[sandbox] = no"#),
        "{err}"
    );
}

#[test]
fn the_runtime_class_overhead_counts_toward_resource_quota() {
    let c = Cluster::start();
    create(
        &c,
        &runtime_class(
            "kata",
            "kata",
            json!({"overhead": {"podFixed": {"cpu": "250m"}}}),
        ),
    );
    create(
        &c,
        &json!({
            "apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "compute"},
            "spec": {"hard": {"requests.cpu": "500m"}}
        }),
    );
    create(&c, &pod("first", Some("kata"), "100m", json!({})));
    let err = c.fails_stdin(
        &["create", "-f", "-"],
        &pod("second", Some("kata"), "100m", json!({})).to_string(),
    );
    assert!(
        err.contains(r#"pods "second" is forbidden: exceeded quota: compute, requested: requests.cpu=350m, used: requests.cpu=350m, limited: requests.cpu=500m"#),
        "{err}"
    );
}

#[test]
fn a_runtime_class_handler_is_a_dns_label_and_immutable() {
    let c = Cluster::start();
    let err = c.fails_stdin(
        &["create", "-f", "-"],
        &runtime_class("bad", "Kata_Qemu", json!({})).to_string(),
    );
    assert!(
        err.contains(r#"The RuntimeClass "bad" is invalid: handler: Invalid value: "Kata_Qemu": a lowercase RFC 1123 label must consist of"#),
        "{err}"
    );
    create(&c, &runtime_class("kata", "kata", json!({})));
    let err = c.fails(&[
        "patch",
        "runtimeclass",
        "kata",
        "-p",
        r#"{"handler":"runc"}"#,
    ]);
    assert!(
        err.contains(r#"The RuntimeClass "kata" is invalid: handler: Invalid value: "runc": field is immutable"#),
        "{err}"
    );
}
