//! The scheduler through the API: pods land on nodes that fit, constraints
//! are respected, and unschedulable pods say why in upstream's words, as
//! `kubectl describe pod` shows them.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::Cluster;

/// A Ready node with this much cpu (cores), 8Gi memory, 110 pods, labels and taints.
fn node(name: &str, cpu: &str, labels: Value, taints: Value) -> String {
    let mut all_labels = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"});
    for (k, v) in labels.as_object().unwrap() {
        all_labels[k] = v.clone();
    }
    let capacity =
        json!({"cpu": cpu, "memory": "8Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": all_labels},
        "spec": {"taints": taints},
        "status": {
            "capacity": capacity, "allocatable": capacity,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready"}]
        }
    })
    .to_string()
}

fn add_nodes(c: &Cluster, nodes: &[String]) {
    for n in nodes {
        c.ok_stdin(&["create", "-f", "-"], n);
    }
}

fn plain_nodes(c: &Cluster, count: usize, cpu: &str) {
    let nodes: Vec<String> = (0..count)
        .map(|i| node(&format!("node-{i}"), cpu, json!({}), json!([])))
        .collect();
    add_nodes(c, &nodes);
}

fn pod(name: &str, cpu: &str, extra_spec: Value) -> String {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "demo"}},
        "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": cpu}}}]}
    });
    for (k, v) in extra_spec.as_object().unwrap() {
        p["spec"][k] = v.clone();
    }
    p.to_string()
}

fn get_json(c: &Cluster, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&c.ok(&all)).unwrap()
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn node_of(c: &Cluster, pod: &str) -> Option<String> {
    let p = get_json(c, &["get", "pod", pod]);
    p["spec"]["nodeName"].as_str().map(str::to_string)
}

fn wait_bound(c: &Cluster, pod: &str) -> String {
    wait_for(
        &format!("{pod} to be bound"),
        Duration::from_secs(20),
        || node_of(c, pod),
    )
}

fn scheduled_condition(c: &Cluster, pod: &str) -> Option<Value> {
    let p = get_json(c, &["get", "pod", pod]);
    p["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled").cloned())
}

fn wait_unschedulable(c: &Cluster, pod: &str) -> String {
    wait_for(
        &format!("{pod} to be unschedulable"),
        Duration::from_secs(20),
        || {
            let cond = scheduled_condition(c, pod)?;
            (cond["status"] == "False" && cond["reason"] == "Unschedulable")
                .then(|| cond["message"].as_str().unwrap_or_default().to_string())
        },
    )
}

#[test]
fn pods_are_bound_to_nodes_that_fit_with_a_scheduled_event() {
    let c = Cluster::start();
    plain_nodes(&c, 3, "4");
    c.ok_stdin(&["create", "-f", "-"], &pod("web", "1", json!({})));
    let node = wait_bound(&c, "web");
    assert!(node.starts_with("node-"), "{node}");
    let describe = wait_for("the Scheduled event", Duration::from_secs(10), || {
        let d = c.ok(&["describe", "pod", "web"]);
        d.contains("Scheduled").then_some(d)
    });
    assert!(
        describe.contains(&format!(
            "default-scheduler  Successfully assigned default/web to {node}"
        )),
        "{describe}"
    );
}

#[test]
fn a_burst_of_pods_never_overcommits_a_node() {
    let c = Cluster::start();
    plain_nodes(&c, 3, "2");
    // 3 nodes x 2 cores hold six 1-core pods; the seventh must wait.
    let pods: Vec<String> = (0..7)
        .map(|i| pod(&format!("p{i}"), "1", json!({})))
        .collect();
    c.ok_stdin(&["create", "-f", "-"], &pods.join("\n"));
    let mut per_node = std::collections::HashMap::new();
    wait_for("six pods bound", Duration::from_secs(20), || {
        let list = get_json(&c, &["get", "pods"]);
        let bound: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_string))
            .collect();
        (bound.len() >= 6).then(|| {
            per_node.clear();
            for n in bound {
                *per_node.entry(n).or_insert(0) += 1;
            }
        })
    });
    std::thread::sleep(Duration::from_millis(500));
    let list = get_json(&c, &["get", "pods"]);
    let unbound: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["spec"]["nodeName"].is_null())
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(unbound.len(), 1, "{list}");
    assert!(per_node.values().all(|n| *n == 2), "{per_node:?}");
    let msg = wait_unschedulable(&c, unbound[0]);
    assert_eq!(
        msg,
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    );
}

#[test]
fn unschedulable_pod_shows_pod_scheduled_false_and_failed_scheduling_in_describe() {
    let c = Cluster::start();
    plain_nodes(&c, 3, "2");
    c.ok_stdin(&["create", "-f", "-"], &pod("huge", "10", json!({})));
    let want = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.";
    assert_eq!(wait_unschedulable(&c, "huge"), want);
    let describe = wait_for(
        "the FailedScheduling event",
        Duration::from_secs(10),
        || {
            let d = c.ok(&["describe", "pod", "huge"]);
            d.contains("FailedScheduling").then_some(d)
        },
    );
    assert!(describe.contains("PodScheduled   False"), "{describe}");
    assert!(describe.contains("Warning  FailedScheduling"), "{describe}");
    assert!(describe.contains("default-scheduler"), "{describe}");
    assert!(
        describe.contains("0/3 nodes are available: 3 Insufficient cpu."),
        "{describe}"
    );
    assert!(describe.contains("Node:             <none>"), "{describe}");
}

#[test]
fn unschedulable_pod_is_bound_once_a_node_with_room_appears() {
    let c = Cluster::start();
    plain_nodes(&c, 1, "1");
    c.ok_stdin(&["create", "-f", "-"], &pod("waits", "3", json!({})));
    wait_unschedulable(&c, "waits");
    add_nodes(&c, &[node("big", "8", json!({}), json!([]))]);
    assert_eq!(wait_bound(&c, "waits"), "big");
}

#[test]
fn node_selector_and_taints_are_respected() {
    let c = Cluster::start();
    add_nodes(
        &c,
        &[
            node("plain", "4", json!({}), json!([])),
            node("ssd", "4", json!({"disk": "ssd"}), json!([])),
            node(
                "tainted-ssd",
                "4",
                json!({"disk": "ssd"}),
                json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
            ),
        ],
    );
    for i in 0..4 {
        c.ok_stdin(
            &["create", "-f", "-"],
            &pod(
                &format!("sel{i}"),
                "100m",
                json!({"nodeSelector": {"disk": "ssd"}}),
            ),
        );
    }
    for i in 0..4 {
        assert_eq!(wait_bound(&c, &format!("sel{i}")), "ssd");
    }
    c.ok_stdin(
        &["create", "-f", "-"],
        &pod(
            "db",
            "100m",
            json!({
                "nodeSelector": {"disk": "ssd"},
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["tainted-ssd"]}]}
                ]}}}
            }),
        ),
    );
    assert_eq!(wait_bound(&c, "db"), "tainted-ssd");
    c.ok_stdin(
        &["create", "-f", "-"],
        &pod("nowhere", "100m", json!({"nodeSelector": {"disk": "nvme"}})),
    );
    assert_eq!(
        wait_unschedulable(&c, "nowhere"),
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
}
