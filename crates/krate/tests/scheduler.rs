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

fn pod_with_labels(name: &str, cpu: &str, labels: Value, extra_spec: Value) -> String {
    let mut p: Value = serde_json::from_str(&pod(name, cpu, extra_spec)).unwrap();
    p["metadata"]["labels"] = labels;
    p.to_string()
}

fn bound_nodes(c: &Cluster, selector: &str) -> (Vec<String>, Vec<String>) {
    let list = get_json(c, &["get", "pods", "-l", selector]);
    let mut bound = Vec::new();
    let mut pending = Vec::new();
    for p in list["items"].as_array().unwrap() {
        match p["spec"]["nodeName"].as_str() {
            Some(n) => bound.push(n.to_string()),
            None => pending.push(p["metadata"]["name"].as_str().unwrap().to_string()),
        }
    }
    (bound, pending)
}

fn anti_affinity(kind: &str) -> Value {
    let term = json!({"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"});
    if kind == "hard" {
        json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}})
    } else {
        json!({"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": term}
        ]}}})
    }
}

#[test]
fn hostname_anti_affinity_hard_leaves_a_fourth_replica_pending_on_three_nodes() {
    let c = Cluster::start_with(&["--simulated-nodes", "3", "--disable-agent"]);
    let pods: Vec<String> = (0..4)
        .map(|i| {
            pod_with_labels(
                &format!("web-{i}"),
                "100m",
                json!({"app": "web"}),
                anti_affinity("hard"),
            )
        })
        .collect();
    c.ok_stdin(&["create", "-f", "-"], &pods.join("\n"));
    let (bound, pending) = wait_for("three replicas bound", Duration::from_secs(30), || {
        let (b, p) = bound_nodes(&c, "app=web");
        (b.len() == 3).then_some((b, p))
    });
    let mut distinct = bound.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{bound:?}");
    assert_eq!(pending.len(), 1);
    assert_eq!(
        wait_unschedulable(&c, &pending[0]),
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    );
}

#[test]
fn hostname_anti_affinity_soft_spreads_first_and_still_schedules_every_replica() {
    let c = Cluster::start_with(&["--simulated-nodes", "3", "--disable-agent"]);
    let pods: Vec<String> = (0..4)
        .map(|i| {
            pod_with_labels(
                &format!("web-{i}"),
                "100m",
                json!({"app": "web"}),
                anti_affinity("soft"),
            )
        })
        .collect();
    // One at a time, so each decision sees the previous pods.
    for p in &pods[..3] {
        c.ok_stdin(&["create", "-f", "-"], p);
        let name = serde_json::from_str::<Value>(p).unwrap()["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        wait_bound(&c, &name);
    }
    let (bound, _) = bound_nodes(&c, "app=web");
    let mut distinct = bound.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{bound:?}");
    c.ok_stdin(&["create", "-f", "-"], &pods[3]);
    wait_bound(&c, "web-3");
}

#[test]
fn topology_spread_keeps_pods_per_node_within_max_skew() {
    let c = Cluster::start_with(&["--simulated-nodes", "3", "--disable-agent"]);
    let spread = json!({"topologySpreadConstraints": [{
        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "spread"}}
    }]});
    let pods: Vec<String> = (0..9)
        .map(|i| {
            pod_with_labels(
                &format!("s-{i}"),
                "100m",
                json!({"app": "spread"}),
                spread.clone(),
            )
        })
        .collect();
    c.ok_stdin(&["create", "-f", "-"], &pods.join("\n"));
    let bound = wait_for("nine pods bound", Duration::from_secs(30), || {
        let (b, _) = bound_nodes(&c, "app=spread");
        (b.len() == 9).then_some(b)
    });
    let mut per_node = std::collections::HashMap::new();
    for n in bound {
        *per_node.entry(n).or_insert(0) += 1;
    }
    assert_eq!(per_node.len(), 3, "{per_node:?}");
    assert!(per_node.values().all(|n| *n == 3), "{per_node:?}");
}

#[test]
fn a_higher_priority_pod_preempts_a_lower_priority_one() {
    let c = Cluster::start_with(&[
        "--simulated-nodes",
        "2",
        "--disable-agent",
        "--simulated-node-capacity",
        "cpu=2",
    ]);
    c.ok_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high"}, "value": 1000}"#,
    );
    let low: Vec<String> = (0..4)
        .map(|i| pod_with_labels(&format!("low-{i}"), "1", json!({"tier": "low"}), json!({})))
        .collect();
    c.ok_stdin(&["create", "-f", "-"], &low.join("\n"));
    wait_for("the nodes filled", Duration::from_secs(30), || {
        (bound_nodes(&c, "tier=low").0.len() == 4).then_some(())
    });
    c.ok_stdin(
        &["create", "-f", "-"],
        &pod_with_labels(
            "vip",
            "1",
            json!({"tier": "high"}),
            json!({"priorityClassName": "high"}),
        ),
    );
    let node = wait_bound(&c, "vip");
    let (low_bound, _) = bound_nodes(&c, "tier=low");
    assert_eq!(
        low_bound.len(),
        3,
        "one low-priority pod must have been evicted"
    );
    let events = wait_for("the Preempted event", Duration::from_secs(10), || {
        let e = c.ok(&[
            "get",
            "events",
            "--field-selector",
            "reason=Preempted",
            "-o",
            "json",
        ]);
        let v: Value = serde_json::from_str(&e).unwrap();
        (!v["items"].as_array().unwrap().is_empty()).then_some(v)
    });
    let msg = events["items"][0]["message"].as_str().unwrap();
    let uid = get_json(&c, &["get", "pod", "vip"])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(msg, format!("Preempted by pod {uid} on node {node}"));
    assert_eq!(
        events["items"][0]["source"]["component"],
        "default-scheduler"
    );
}

#[test]
fn preemption_policy_never_waits_instead_of_evicting() {
    let c = Cluster::start_with(&[
        "--simulated-nodes",
        "1",
        "--disable-agent",
        "--simulated-node-capacity",
        "cpu=1",
    ]);
    c.ok_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "polite"}, "value": 1000, "preemptionPolicy": "Never"}"#,
    );
    c.ok_stdin(&["create", "-f", "-"], &pod("low", "1", json!({})));
    wait_bound(&c, "low");
    c.ok_stdin(
        &["create", "-f", "-"],
        &pod("polite", "1", json!({"priorityClassName": "polite"})),
    );
    assert_eq!(
        wait_unschedulable(&c, "polite"),
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
    );
    assert!(node_of(&c, "low").is_some());
}

#[test]
fn a_pod_using_a_missing_claim_says_so() {
    let c = Cluster::start_with(&["--simulated-nodes", "2", "--disable-agent"]);
    c.ok_stdin(
        &["create", "-f", "-"],
        &pod(
            "needs-data",
            "100m",
            json!({"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}),
        ),
    );
    assert_eq!(
        wait_unschedulable(&c, "needs-data"),
        "0/2 nodes are available: persistentvolumeclaim \"data\" not found. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
    // Creating the claim (local-path, WaitForFirstConsumer) lets it schedule,
    // and the claim names the chosen node.
    c.ok_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-path",
                     "resources": {"requests": {"storage": "1Gi"}}}}"#,
    );
    let node = wait_bound(&c, "needs-data");
    let claim = get_json(&c, &["get", "pvc", "data"]);
    assert_eq!(
        claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"].as_str(),
        Some(node.as_str()),
        "{claim}"
    );
}
