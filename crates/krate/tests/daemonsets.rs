//! The DaemonSet controller, through the API of a real `krate server` with
//! three simulated nodes: one pod per eligible node (nodeSelector, taints
//! and tolerations, new nodes), rolling updates with maxUnavailable and
//! maxSurge, OnDelete, and kubectl's rollout status.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::{json, Value};
use support::{eventually, Cluster};

const WAIT: Duration = Duration::from_secs(40);

/// A DaemonSet `name` labelled `app: name`, with `pod_spec` merged into
/// its pod template's spec and `spec` into its own.
fn daemonset(name: &str, pod_spec: Value, spec: Value) -> String {
    let mut v = json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": { "name": name },
        "spec": {
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "agent", "image": "agent:1" }] },
            },
        },
    });
    merge(&mut v["spec"]["template"]["spec"], pod_spec);
    merge(&mut v["spec"], spec);
    v.to_string()
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn node_of(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default()
}

fn image(p: &Pod) -> String {
    p.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap_or_default()
}

async fn live_pods(client: &kube::Client, app: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(client.clone(), "default")
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

/// Waits for ready daemon pods on exactly `nodes`, one each.
async fn wait_on_nodes(client: &kube::Client, app: &str, nodes: &[&str]) -> Vec<Pod> {
    let want: BTreeSet<String> = nodes.iter().map(|n| n.to_string()).collect();
    eventually(WAIT, &format!("{app} on {nodes:?}"), || async {
        let pods = live_pods(client, app).await;
        let on: Vec<String> = pods.iter().map(node_of).collect();
        let set: BTreeSet<String> = on.iter().cloned().collect();
        if on.len() == want.len() && set == want && pods.iter().all(is_ready) {
            Ok(pods)
        } else {
            Err(format!("pods on {on:?}"))
        }
    })
    .await
}

async fn get_ds(client: &kube::Client, name: &str) -> DaemonSet {
    Api::<DaemonSet>::namespaced(client.clone(), "default")
        .get(name)
        .await
        .unwrap()
}

/// Waits until `pick` of the DaemonSet's status equals `want`.
async fn wait_counts<T: PartialEq + std::fmt::Debug>(
    client: &kube::Client,
    name: &str,
    pick: impl Fn(&DaemonSetStatus) -> T,
    want: T,
) {
    eventually(WAIT, &format!("{name} status {want:?}"), || async {
        let got = get_ds(client, name).await.status.as_ref().map(&pick);
        if got.as_ref() == Some(&want) {
            Ok(())
        } else {
            Err(format!("status counts {got:?}"))
        }
    })
    .await
}

fn chrono_now() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::chrono::Utc::now())
}

const ALL: [&str; 3] = ["sim-node-0", "sim-node-1", "sim-node-2"];

/// A server with three simulated nodes, once they have registered.
fn cluster() -> Cluster {
    let c = Cluster::start_with(&["--simulated-nodes", "3"]);
    support::eventually_blocking(WAIT, "three nodes registered", || {
        let out = c.kubectl(&["get", "nodes", "-o", "name"]);
        let names = String::from_utf8_lossy(&out.stdout).to_string();
        if ALL.iter().all(|n| names.contains(&format!("node/{n}"))) {
            Ok(())
        } else {
            Err(names)
        }
    });
    c
}

#[tokio::test]
async fn daemonset_runs_one_pod_on_every_node() {
    let c = cluster();
    let client = c.client().await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &daemonset("agent", json!({}), json!({})),
    );
    let pods = wait_on_nodes(&client, "agent", &ALL).await;
    let out = c.ok(&["rollout", "status", "daemonset/agent", "--timeout=40s"]);
    assert!(
        out.contains("daemon set \"agent\" successfully rolled out"),
        "{out}"
    );

    let ds = get_ds(&client, "agent").await;
    let s = ds.status.unwrap();
    assert_eq!(
        (
            s.desired_number_scheduled,
            s.current_number_scheduled,
            s.number_ready,
            s.number_misscheduled
        ),
        (3, 3, 3, 0)
    );
    assert_eq!(
        (s.number_available, s.updated_number_scheduled),
        (Some(3), Some(3))
    );
    assert_eq!(s.observed_generation, ds.metadata.generation);

    for p in &pods {
        let name = p.metadata.name.clone().unwrap();
        assert!(name.starts_with("agent-"), "{name}");
        let hash = &p.metadata.labels.as_ref().unwrap()["controller-revision-hash"];
        assert!(!hash.is_empty());
        // Pinned to its node by a required affinity the scheduler honours.
        let spec = p.spec.as_ref().unwrap();
        let terms = &spec
            .affinity
            .as_ref()
            .unwrap()
            .node_affinity
            .as_ref()
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .unwrap()
            .node_selector_terms;
        let field = &terms[0].match_fields.as_ref().unwrap()[0];
        assert_eq!(field.key, "metadata.name");
        assert_eq!(field.values.as_ref().unwrap(), &vec![node_of(p)]);
        let tolerations: Vec<_> = spec
            .tolerations
            .as_ref()
            .unwrap()
            .iter()
            .filter_map(|t| Some((t.key.clone()?, t.effect.clone()?)))
            .collect();
        for (key, effect) in [
            ("node.kubernetes.io/not-ready", "NoExecute"),
            ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/disk-pressure", "NoSchedule"),
            ("node.kubernetes.io/memory-pressure", "NoSchedule"),
            ("node.kubernetes.io/pid-pressure", "NoSchedule"),
            ("node.kubernetes.io/unschedulable", "NoSchedule"),
        ] {
            assert!(
                tolerations.contains(&(key.into(), effect.into())),
                "{key} in {tolerations:?}"
            );
        }
    }
    let revisions = c.ok(&["get", "controllerrevisions", "-o", "name"]);
    assert!(
        revisions.contains("controllerrevision.apps/agent-"),
        "{revisions}"
    );
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=DaemonSet,involvedObject.name=agent",
        "-o",
        r#"jsonpath={range .items[*]}{.reason}|{.message}|{.source.component}{"\n"}{end}"#,
    ]);
    let name = pods[0].metadata.name.clone().unwrap();
    assert!(
        events.contains(&format!(
            "SuccessfulCreate|Created pod: {name}|daemonset-controller"
        )),
        "{events}"
    );
}

#[tokio::test]
async fn daemonset_node_selector_restricts_and_follows_node_labels() {
    let c = cluster();
    let client = c.client().await;
    c.ok(&["label", "node", "sim-node-1", "disk=ssd"]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &daemonset(
            "ssd",
            json!({ "nodeSelector": { "disk": "ssd" } }),
            json!({}),
        ),
    );
    wait_on_nodes(&client, "ssd", &["sim-node-1"]).await;
    c.ok(&["label", "node", "sim-node-2", "disk=ssd"]);
    wait_on_nodes(&client, "ssd", &["sim-node-1", "sim-node-2"]).await;
    // A node that stops matching loses its pod.
    c.ok(&["label", "node", "sim-node-1", "disk-"]);
    wait_on_nodes(&client, "ssd", &["sim-node-2"]).await;
    // Status follows the pods once the controller has written it.
    wait_counts(&client, "ssd", |s| s.desired_number_scheduled, 1).await;
}

#[tokio::test]
async fn daemonset_skips_a_tainted_node_unless_it_tolerates_the_taint() {
    let c = cluster();
    let client = c.client().await;
    c.ok(&["taint", "node", "sim-node-0", "dedicated=db:NoSchedule"]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &daemonset("plain", json!({}), json!({})),
    );
    c.ok_stdin(
        &["apply", "-f", "-"],
        &daemonset(
            "tolerant",
            json!({ "tolerations": [{ "key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule" }] }),
            json!({}),
        ),
    );
    wait_on_nodes(&client, "plain", &["sim-node-1", "sim-node-2"]).await;
    wait_on_nodes(&client, "tolerant", &ALL).await;
    wait_counts(
        &client,
        "plain",
        |s| (s.desired_number_scheduled, s.number_ready),
        (2, 2),
    )
    .await;

    // A cordoned node still runs daemon pods (automatic toleration).
    c.ok(&["cordon", "sim-node-1"]);
    c.ok(&["delete", "pods", "-l", "app=plain", "--wait=false"]);
    wait_on_nodes(&client, "plain", &["sim-node-1", "sim-node-2"]).await;
}

#[tokio::test]
async fn daemonset_puts_a_pod_on_a_node_that_joins() {
    let c = cluster();
    let client = c.client().await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &daemonset("agent", json!({}), json!({})),
    );
    wait_on_nodes(&client, "agent", &ALL).await;
    // A node joins (registered through the API, reporting Ready).
    c.ok_stdin(
        &["apply", "-f", "-"],
        &json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": { "name": "late-node", "labels": { "kubernetes.io/hostname": "late-node" } },
        })
        .to_string(),
    );
    let now = chrono_now();
    c.ok(&[
        "patch",
        "node",
        "late-node",
        "--subresource=status",
        "--type=merge",
        "-p",
        &json!({ "status": {
            "capacity": { "cpu": "4", "memory": "8Gi", "pods": "110" },
            "allocatable": { "cpu": "4", "memory": "8Gi", "pods": "110" },
            "conditions": [{ "type": "Ready", "status": "True", "reason": "KubeletReady",
                             "lastHeartbeatTime": now, "lastTransitionTime": now }],
        }})
        .to_string(),
    ]);
    // The new pod is pinned to the new node (whether or not anything runs it).
    eventually(WAIT, "a pod for late-node", || async {
        let pods = live_pods(&client, "agent").await;
        let pinned = pods.iter().any(|p| {
            serde_json::to_string(&p.spec.as_ref().unwrap().affinity)
                .unwrap()
                .contains("late-node")
        });
        let desired = get_ds(&client, "agent")
            .await
            .status
            .map(|s| s.desired_number_scheduled);
        if pinned && pods.len() == 4 && desired == Some(4) {
            Ok(())
        } else {
            Err(format!("{} pods, desired {desired:?}", pods.len()))
        }
    })
    .await;
    // The node leaves: its pod goes.
    c.ok(&["delete", "node", "late-node"]);
    wait_on_nodes(&client, "agent", &ALL).await;
}

#[tokio::test]
async fn daemonset_rolling_update_replaces_every_pod() {
    let c = cluster();
    let client = c.client().await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &daemonset("agent", json!({}), json!({})),
    );
    let before = wait_on_nodes(&client, "agent", &ALL).await;
    let old_hash = before[0].metadata.labels.as_ref().unwrap()["controller-revision-hash"].clone();
    c.ok(&["set", "image", "daemonset/agent", "agent=agent:2"]);
    let out = c.ok(&["rollout", "status", "daemonset/agent", "--timeout=40s"]);
    assert!(
        out.contains("daemon set \"agent\" successfully rolled out"),
        "{out}"
    );
    let after = wait_on_nodes(&client, "agent", &ALL).await;
    for p in &after {
        assert_eq!(image(p), "agent:2");
        assert_ne!(
            p.metadata.labels.as_ref().unwrap()["controller-revision-hash"],
            old_hash
        );
    }
    let history = c.ok(&["rollout", "history", "daemonset/agent"]);
    assert!(
        history.lines().any(|l| l.trim_start().starts_with('2')),
        "{history}"
    );

    // Surge: new pods start beside the old ones, which go once replaced.
    c.ok(&[
        "patch",
        "daemonset/agent",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":0}},"template":{"spec":{"containers":[{"name":"agent","image":"agent:3"}]}}}}"#,
    ]);
    let out = c.ok(&["rollout", "status", "daemonset/agent", "--timeout=40s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let after = wait_on_nodes(&client, "agent", &ALL).await;
    assert!(after.iter().all(|p| image(p) == "agent:3"));

    // Undo goes back through the ControllerRevisions.
    c.ok(&["rollout", "undo", "daemonset/agent"]);
    eventually(WAIT, "back at agent:2", || async {
        let pods = live_pods(&client, "agent").await;
        if pods.len() == 3 && pods.iter().all(|p| image(p) == "agent:2" && is_ready(p)) {
            Ok(())
        } else {
            Err(format!("{:?}", pods.iter().map(image).collect::<Vec<_>>()))
        }
    })
    .await;
}

#[tokio::test]
async fn daemonset_on_delete_replaces_only_deleted_pods() {
    let c = cluster();
    let client = c.client().await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &daemonset(
            "agent",
            json!({}),
            json!({ "updateStrategy": { "type": "OnDelete" } }),
        ),
    );
    let before = wait_on_nodes(&client, "agent", &ALL).await;
    c.ok(&["set", "image", "daemonset/agent", "agent=agent:2"]);
    eventually(WAIT, "new generation observed", || async {
        let ds = get_ds(&client, "agent").await;
        let s = ds.status.clone().unwrap_or_default();
        if s.observed_generation == ds.metadata.generation && s.updated_number_scheduled == Some(0)
        {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    let victim = before
        .iter()
        .find(|p| node_of(p) == "sim-node-1")
        .unwrap()
        .metadata
        .name
        .clone()
        .unwrap();
    c.ok(&["delete", "pod", &victim, "--wait=false"]);
    eventually(WAIT, "sim-node-1 at agent:2", || async {
        let pods = live_pods(&client, "agent").await;
        let images: Vec<(String, String)> = pods.iter().map(|p| (node_of(p), image(p))).collect();
        let updated: Vec<_> = images.iter().filter(|(_, i)| i == "agent:2").collect();
        if pods.len() == 3
            && updated.len() == 1
            && updated[0].0 == "sim-node-1"
            && pods.iter().all(is_ready)
        {
            Ok(())
        } else {
            Err(format!("{images:?}"))
        }
    })
    .await;
}
