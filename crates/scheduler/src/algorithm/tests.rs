//! Whole decisions over small snapshots: which node, or the exact message
//! upstream prints.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{json, Value};

use super::*;

pub(crate) fn node(name: &str, cpu: &str, labels: Value, spec: Value) -> Node {
    let mut l = json!({"kubernetes.io/hostname": name});
    for (k, v) in labels.as_object().unwrap() {
        l[k] = v.clone();
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": l},
        "spec": spec,
        "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}
    }))
    .unwrap()
}

pub(crate) fn pod(name: &str, cpu: &str, labels: Value, spec: Value) -> Pod {
    let mut p = json!({
        "metadata": {"name": name, "namespace": "default", "labels": labels, "uid": format!("uid-{name}")},
        "spec": {"containers": [{"name": "c", "image": "app", "resources": {"requests": {"cpu": cpu}}}]}
    });
    for (k, v) in spec.as_object().unwrap() {
        p["spec"][k] = v.clone();
    }
    serde_json::from_value(p).unwrap()
}

pub(crate) fn on(mut p: Pod, node: &str) -> Pod {
    p.spec.as_mut().unwrap().node_name = Some(node.into());
    p
}

pub(crate) fn schedule(snapshot: &Snapshot, p: Pod) -> Result<Placement, FitError> {
    schedule_with(snapshot, p, &ObjectMaps::default())
}

pub(crate) fn schedule_with(
    snapshot: &Snapshot,
    p: Pod,
    objects: &ObjectMaps,
) -> Result<Placement, FitError> {
    Algorithm::default().schedule(snapshot, &Arc::new(p), objects, &HashMap::new())
}

fn three_nodes(cpu: &str) -> Vec<Node> {
    (0..3)
        .map(|i| node(&format!("n{i}"), cpu, json!({}), json!({})))
        .collect()
}

#[test]
fn failure_message_counts_reasons_over_nodes_sorted_as_upstream() {
    let mut nodes = three_nodes("1");
    nodes.push(node(
        "cordoned",
        "8",
        json!({}),
        json!({"unschedulable": true}),
    ));
    let s = Snapshot::from_objects(nodes, []);
    let err = schedule(&s, pod("big", "2", json!({}), json!({}))).unwrap_err();
    assert_eq!(
        err.message(),
        "0/4 nodes are available: 1 node(s) were unschedulable, 3 Insufficient cpu."
    );
    assert_eq!(err.plugins(), ["NodeResourcesFit", "NodeUnschedulable"]);
}

#[test]
fn failure_message_appends_what_preemption_said() {
    let s = Snapshot::from_objects(three_nodes("1"), []);
    let mut err = schedule(&s, pod("big", "2", json!({}), json!({}))).unwrap_err();
    let crate::preemption::Outcome::Fail { message } = crate::preemption::preempt(
        &s,
        &Arc::new(pod("big", "2", json!({}), json!({}))),
        &ObjectMaps::default(),
        &err,
        &HashMap::new(),
    ) else {
        panic!("nothing to preempt")
    };
    err.postfilter = Some(message);
    assert_eq!(
        err.message(),
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    );
}

#[test]
fn no_nodes_at_all() {
    let s = Snapshot::new();
    let err = schedule(&s, pod("p", "1", json!({}), json!({}))).unwrap_err();
    assert_eq!(err.message(), "0/0 nodes are available:");
}

#[test]
fn prefilter_rejection_is_reported_once_not_per_node() {
    let s = Snapshot::from_objects(three_nodes("4"), []);
    let p = pod(
        "vol",
        "1",
        json!({}),
        json!({"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "missing"}}]}),
    );
    let err = schedule(&s, p).unwrap_err();
    assert_eq!(
        err.message(),
        "0/3 nodes are available: persistentvolumeclaim \"missing\" not found."
    );
}

#[test]
fn least_allocated_prefers_the_emptier_node() {
    let s = Snapshot::from_objects(
        three_nodes("4"),
        [
            on(pod("a", "3", json!({}), json!({})), "n0"),
            on(pod("b", "3", json!({}), json!({})), "n1"),
        ],
    );
    assert_eq!(
        schedule(&s, pod("p", "1", json!({}), json!({})))
            .unwrap()
            .node,
        "n2"
    );
}

#[test]
fn pods_spread_over_equal_nodes_as_they_are_assumed() {
    let mut s = Snapshot::from_objects(three_nodes("4"), []);
    let mut alg = Algorithm::default();
    let mut count: HashMap<String, usize> = HashMap::new();
    for i in 0..9 {
        let p = Arc::new(pod(&format!("p{i}"), "100m", json!({}), json!({})));
        let placed = alg
            .schedule(&s, &p, &ObjectMaps::default(), &HashMap::new())
            .unwrap();
        s.upsert_pod(Arc::new(on((*p).clone(), &placed.node)));
        *count.entry(placed.node).or_default() += 1;
    }
    assert!(count.values().all(|n| *n == 3), "{count:?}");
}

#[test]
fn percentage_of_nodes_to_score_is_adaptive() {
    assert_eq!(num_feasible_nodes_to_find(0, 50), 50);
    assert_eq!(num_feasible_nodes_to_find(0, 1000), 420);
    assert_eq!(num_feasible_nodes_to_find(0, 5000), 500);
    assert_eq!(num_feasible_nodes_to_find(0, 6000), 300);
    assert_eq!(num_feasible_nodes_to_find(0, 200), 100);
    assert_eq!(num_feasible_nodes_to_find(100, 5000), 5000);
}

#[test]
fn sampling_walks_nodes_round_robin() {
    let nodes: Vec<Node> = (0..1000)
        .map(|i| node(&format!("n{i}"), "4", json!({}), json!({})))
        .collect();
    let s = Snapshot::from_objects(nodes, []);
    let mut alg = Algorithm::default();
    let p = Arc::new(pod("p", "1", json!({}), json!({})));
    let first = alg
        .schedule(&s, &p, &ObjectMaps::default(), &HashMap::new())
        .unwrap();
    assert_eq!((first.evaluated, first.feasible), (420, 420));
    assert_eq!(alg.next_start, 420);
}

#[test]
fn preferred_node_affinity_wins_over_resources() {
    let nodes = vec![
        node("plain", "64", json!({}), json!({})),
        node("fast", "4", json!({"disk": "ssd"}), json!({})),
    ];
    let s = Snapshot::from_objects(nodes, []);
    let p = pod(
        "p",
        "1",
        json!({}),
        json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}
        ]}}}),
    );
    assert_eq!(schedule(&s, p).unwrap().node, "fast");
}

#[test]
fn prefer_no_schedule_taints_push_pods_elsewhere() {
    let nodes = vec![
        node(
            "soft",
            "64",
            json!({}),
            json!({"taints": [{"key": "k", "effect": "PreferNoSchedule"}]}),
        ),
        node("clean", "4", json!({}), json!({})),
    ];
    let s = Snapshot::from_objects(nodes, []);
    assert_eq!(
        schedule(&s, pod("p", "1", json!({}), json!({})))
            .unwrap()
            .node,
        "clean"
    );
}

#[test]
fn nominated_node_is_tried_first() {
    let s = Snapshot::from_objects(three_nodes("4"), []);
    let mut p = pod("p", "1", json!({}), json!({}));
    p.status = Some(k8s_openapi::api::core::v1::PodStatus {
        nominated_node_name: Some("n1".into()),
        ..Default::default()
    });
    let placed = schedule(&s, p).unwrap();
    assert_eq!((placed.node.as_str(), placed.evaluated), ("n1", 1));
}

#[test]
fn nominated_pods_of_higher_priority_hold_room_for_lower_ones() {
    let s = Snapshot::from_objects(vec![node("n0", "2", json!({}), json!({}))], []);
    let mut nominated: HashMap<String, Vec<Arc<crate::snapshot::PodInfo>>> = HashMap::new();
    let high = pod("high", "2", json!({}), json!({"priority": 100}));
    nominated.insert(
        "n0".into(),
        vec![Arc::new(crate::snapshot::PodInfo::new(Arc::new(high)))],
    );
    let low = Arc::new(pod("low", "1", json!({}), json!({"priority": 1})));
    let err = Algorithm::default()
        .schedule(&s, &low, &ObjectMaps::default(), &nominated)
        .unwrap_err();
    assert_eq!(
        err.message(),
        "0/1 nodes are available: 1 Insufficient cpu."
    );
}

#[test]
fn image_locality_prefers_nodes_with_the_image() {
    let mut with_image = node("cached", "4", json!({}), json!({}));
    with_image.status.as_mut().unwrap().images =
        Some(vec![k8s_openapi::api::core::v1::ContainerImage {
            names: Some(vec!["docker.io/library/big:1".into(), "big:1".into()]),
            size_bytes: Some(900 * 1024 * 1024),
        }]);
    let nodes = vec![
        node("a", "4", json!({}), json!({})),
        with_image,
        node("b", "4", json!({}), json!({})),
    ];
    let s = Snapshot::from_objects(nodes, []);
    let mut p = pod("p", "1", json!({}), json!({}));
    p.spec.as_mut().unwrap().containers[0].image = Some("big:1".into());
    assert_eq!(schedule(&s, p).unwrap().node, "cached");
}
