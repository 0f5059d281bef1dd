use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{json, Value};

use super::*;
use crate::snapshot::{NodeInfo, PodInfo};

pub(crate) fn node(v: Value) -> NodeInfo {
    let n: Node = serde_json::from_value(v).unwrap();
    NodeInfo::new(Arc::new(n))
}

pub(crate) fn pod(v: Value) -> PodInfo {
    let p: Pod = serde_json::from_value(v).unwrap();
    PodInfo::new(Arc::new(p))
}

fn basic_node(name: &str) -> NodeInfo {
    node(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "zone": "a", "gen": "5"}},
        "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "3", "ephemeral-storage": "10Gi", "example.com/gpu": "1"}}
    }))
}

#[test]
fn unschedulable_node_is_rejected_unless_the_pod_tolerates_it() {
    let mut node = (*basic_node("n1").node).clone();
    node.spec = Some(k8s_openapi::api::core::v1::NodeSpec {
        unschedulable: Some(true),
        ..Default::default()
    });
    let n = NodeInfo::new(Arc::new(node));
    let p = pod(json!({"spec": {"containers": []}}));
    let s = node_unschedulable(&p.pod, &n).unwrap();
    assert_eq!(s.reasons, ["node(s) were unschedulable"]);
    assert!(s.unresolvable);
    let tolerant = pod(json!({"spec": {"containers": [], "tolerations": [
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}
    ]}}));
    assert!(node_unschedulable(&tolerant.pod, &n).is_none());
}

#[test]
fn node_name_must_match_when_set() {
    let n = basic_node("n1");
    let p = pod(json!({"spec": {"containers": [], "nodeName": "n2"}}));
    assert_eq!(
        node_name(&p.pod, &n).unwrap().reasons,
        ["node(s) didn't match the requested node name"]
    );
    let p = pod(json!({"spec": {"containers": [], "nodeName": "n1"}}));
    assert!(node_name(&p.pod, &n).is_none());
}

#[test]
fn untolerated_no_schedule_taint_names_the_taint() {
    let n = node(json!({"metadata": {"name": "n1"}, "spec": {"taints": [
        {"key": "soft", "value": "x", "effect": "PreferNoSchedule"},
        {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
    ]}}));
    let p = pod(json!({"spec": {"containers": []}}));
    let s = taint_toleration(&p.pod, &n).unwrap();
    assert_eq!(s.reasons, ["node(s) had untolerated taint {dedicated: db}"]);
    assert!(s.unresolvable);
    let ok = pod(json!({"spec": {"containers": [], "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}
    ]}}));
    assert!(taint_toleration(&ok.pod, &n).is_none());
    let wrong_value = pod(json!({"spec": {"containers": [], "tolerations": [
        {"key": "dedicated", "value": "web"}
    ]}}));
    assert!(taint_toleration(&wrong_value.pod, &n).is_some());
    let all = pod(json!({"spec": {"containers": [], "tolerations": [{"operator": "Exists"}]}}));
    assert!(taint_toleration(&all.pod, &n).is_none());
}

#[test]
fn no_execute_taints_also_filter() {
    let n = node(json!({"metadata": {"name": "n1"}, "spec": {"taints": [
        {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}
    ]}}));
    let p = pod(json!({"spec": {"containers": []}}));
    assert_eq!(
        taint_toleration(&p.pod, &n).unwrap().reasons,
        ["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"]
    );
}

#[test]
fn node_selector_and_required_affinity_must_both_hold() {
    let n = basic_node("n1");
    let p = pod(json!({"spec": {"containers": [], "nodeSelector": {"zone": "b"}}}));
    assert_eq!(
        node_affinity(&p.pod, &n).unwrap().reasons,
        ["node(s) didn't match Pod's node affinity/selector"]
    );
    let p = pod(json!({"spec": {"containers": [], "nodeSelector": {"zone": "a"}}}));
    assert!(node_affinity(&p.pod, &n).is_none());
}

fn with_required(exprs: Value) -> PodInfo {
    pod(
        json!({"spec": {"containers": [], "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": exprs}
        }}}}),
    )
}

#[test]
fn node_affinity_operators_behave_as_upstream() {
    let n = basic_node("n1");
    let fits = |terms: Value| node_affinity(&with_required(terms).pod, &n).is_none();
    assert!(fits(
        json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}])
    ));
    assert!(!fits(
        json!([{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}])
    ));
    assert!(fits(
        json!([{"matchExpressions": [{"key": "missing", "operator": "NotIn", "values": ["a"]}]}])
    ));
    assert!(fits(
        json!([{"matchExpressions": [{"key": "zone", "operator": "Exists"}]}])
    ));
    assert!(fits(
        json!([{"matchExpressions": [{"key": "missing", "operator": "DoesNotExist"}]}])
    ));
    assert!(fits(
        json!([{"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}]}])
    ));
    assert!(!fits(
        json!([{"matchExpressions": [{"key": "gen", "operator": "Lt", "values": ["5"]}]}])
    ));
    assert!(!fits(
        json!([{"matchExpressions": [{"key": "zone", "operator": "Gt", "values": ["1"]}]}])
    ));
    assert!(fits(
        json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}])
    ));
    assert!(!fits(
        json!([{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}])
    ));
    // Terms are ORed; an empty term matches nothing.
    assert!(fits(
        json!([{}, {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}])
    ));
    assert!(!fits(json!([{}])));
}

#[test]
fn host_ports_conflict_on_same_protocol_and_port_with_wildcard_ip() {
    let mut n = basic_node("n1");
    let running = pod(
        json!({"metadata": {"name": "a", "namespace": "d"}, "spec": {"containers": [
            {"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}
        ]}}),
    );
    n.add_pod(Arc::new(running));
    let same = pod(json!({"spec": {"containers": [
        {"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"}]}
    ]}}));
    assert_eq!(
        node_ports(&same, &n).unwrap().reasons,
        ["node(s) didn't have free ports for the requested pod ports"]
    );
    let udp = pod(json!({"spec": {"containers": [
        {"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]}
    ]}}));
    assert!(node_ports(&udp, &n).is_none());
}

#[test]
fn resources_fit_lists_every_insufficient_resource_in_upstream_order() {
    let mut n = basic_node("n1");
    n.add_pod(Arc::new(pod(
        json!({"metadata": {"name": "a", "namespace": "d"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "1500m", "memory": "1Gi"}}}
        ]}}),
    )));
    let big = pod(json!({"spec": {"containers": [
        {"name": "c", "resources": {"requests": {"cpu": "1", "memory": "4Gi", "example.com/gpu": "2"}}}
    ]}}));
    let s = node_resources_fit(&big, &n, None).unwrap();
    assert_eq!(
        s.reasons,
        [
            "Insufficient cpu",
            "Insufficient memory",
            "Insufficient example.com/gpu"
        ]
    );
    assert!(!s.unresolvable);
    let small = pod(json!({"spec": {"containers": [
        {"name": "c", "resources": {"requests": {"cpu": "500m"}}}
    ]}}));
    assert!(node_resources_fit(&small, &n, None).is_none());
}

#[test]
fn too_many_pods_counts_pods_even_without_requests() {
    let mut n = basic_node("n1");
    for i in 0..3 {
        n.add_pod(Arc::new(pod(json!({"metadata": {"name": format!("p{i}"), "namespace": "d"}, "spec": {"containers": []}}))));
    }
    let p = pod(json!({"spec": {"containers": []}}));
    assert_eq!(
        node_resources_fit(&p, &n, None).unwrap().reasons,
        ["Too many pods"]
    );
}

#[test]
fn nominated_pods_hold_their_resources() {
    let n = basic_node("n1");
    let p = pod(
        json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}}),
    );
    let held = crate::resources::Resources {
        milli_cpu: 1500,
        allowed_pod_number: 1,
        ..Default::default()
    };
    assert_eq!(
        node_resources_fit(&p, &n, Some(&held)).unwrap().reasons,
        ["Insufficient cpu"]
    );
}
