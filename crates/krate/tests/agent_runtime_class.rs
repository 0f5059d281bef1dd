//! RuntimeClass on the node: the agent resolves a pod's class to its
//! handler and creates the sandbox with it; runc answers to the `runc`
//! handler, refuses others in containerd's words, and a class that is gone
//! by the time the sandbox is made fails as the kubelet reports it. Both
//! leave the pod ContainerCreating with a FailedCreatePodSandBox event.
//! Root only; in the nextest group `agent`.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{eventually_blocking, Cluster, BUSYBOX};

fn pod(c: &Cluster, name: &str) -> Value {
    serde_json::from_str(&c.ok(&["get", "pod", name, "-o", "json"])).unwrap()
}

fn runtime_class(c: &Cluster, name: &str, handler: &str) {
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!("apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: {name}\nhandler: {handler}\n"),
    );
}

fn pod_with_class(c: &Cluster, name: &str, class: &str) {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "runtimeClassName": class,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "app", "image": BUSYBOX, "command": ["sleep", "3600"]}]
        }
    });
    c.ok_stdin(&["apply", "-f", "-"], &pod.to_string());
}

/// The `kubectl get pod` STATUS column.
fn status_column(c: &Cluster, name: &str) -> String {
    let out = c.ok(&["get", "pod", name, "--no-headers"]);
    out.split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_string()
}

/// Waits for `describe pod` to show a FailedCreatePodSandBox event with
/// `message` and the container waiting as ContainerCreating. The event and
/// the pod's status are separate writes of the agent, so either may be
/// seen first.
fn sandbox_failure(c: &Cluster, name: &str, message: &str) {
    eventually_blocking(
        Duration::from_secs(60),
        &format!("FailedCreatePodSandBox on {name}"),
        || {
            let d = c.ok(&["describe", "pod", name]);
            let shown = d.lines().any(|l| {
                l.contains("Warning  FailedCreatePodSandBox")
                    && l.contains("kubelet")
                    && l.ends_with(message)
            });
            let waiting = d.lines().any(|l| {
                l.split_whitespace().collect::<Vec<_>>() == ["Reason:", "ContainerCreating"]
            });
            if shown && waiting {
                Ok(())
            } else {
                Err(d)
            }
        },
    );
}

#[test]
fn a_pod_whose_class_names_the_runc_handler_runs_and_an_unknown_handler_is_refused() {
    let c = Cluster::start_with_agent(&[]);
    runtime_class(&c, "native", "runc");
    runtime_class(&c, "kata", "kata");
    pod_with_class(&c, "plain", "native");
    pod_with_class(&c, "isolated", "kata");

    eventually_blocking(Duration::from_secs(90), "plain Running", || {
        let p = pod(&c, "plain");
        if p["status"]["phase"] == "Running" {
            Ok(())
        } else {
            Err(p["status"].to_string())
        }
    });
    let describe = c.ok(&["describe", "pod", "plain"]);
    assert!(
        describe
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["Runtime", "Class", "Name:", "native"]),
        "{describe}"
    );
    assert!(!describe.contains("FailedCreatePodSandBox"), "{describe}");

    sandbox_failure(
        &c,
        "isolated",
        r#"Failed to create pod sandbox: failed to get sandbox runtime: no runtime for "kata" is configured"#,
    );
    assert_eq!(status_column(&c, "isolated"), "ContainerCreating");
    assert_eq!(pod(&c, "isolated")["status"]["phase"], "Pending");
}

#[test]
fn a_runtime_class_deleted_before_the_sandbox_is_made_fails_the_sandbox() {
    let c = Cluster::start_with_agent(&[]);
    let node = eventually_blocking(Duration::from_secs(60), "a node", || {
        let out = c.ok(&["get", "nodes", "-o", "name"]);
        out.lines()
            .next()
            .map(str::to_string)
            .ok_or_else(|| "no node yet".to_string())
    });
    // Cordoned, the node gets the pod only after its class is gone.
    c.ok(&["cordon", &node]);
    runtime_class(&c, "ephemeral", "runc");
    pod_with_class(&c, "late", "ephemeral");
    c.ok(&["delete", "runtimeclass", "ephemeral"]);
    c.ok(&["uncordon", &node]);

    sandbox_failure(
        &c,
        "late",
        r#"Failed to create pod sandbox: runtimeclass.node.k8s.io "ephemeral" not found"#,
    );
    assert_eq!(status_column(&c, "late"), "ContainerCreating");
}
