use serde_json::json;

use super::*;
use crate::filters::tests::{node, pod};

#[test]
fn least_allocated_is_the_mean_free_share_of_cpu_and_memory() {
    let n = node(
        json!({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "4", "memory": "4Gi"}}}),
    );
    let p = pod(
        json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}}]}}),
    );
    // cpu (4-1)/4 = 75, memory (4-2)/4 = 50.
    assert_eq!(least_allocated(&p, &n), 62);
}

#[test]
fn pods_without_requests_count_upstream_defaults_when_scoring() {
    let n = node(
        json!({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "1", "memory": "1000Mi"}}}),
    );
    let p = pod(json!({"spec": {"containers": [{"name": "c"}]}}));
    // cpu (1000-100)/1000 = 90, memory (1000-200)/1000 = 80.
    assert_eq!(least_allocated(&p, &n), 85);
}

#[test]
fn balanced_allocation_is_full_when_cpu_and_memory_shares_match() {
    let n = node(
        json!({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "4", "memory": "4Gi"}}}),
    );
    let even = pod(
        json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2", "memory": "2Gi"}}}]}}),
    );
    assert_eq!(balanced_allocation(&even, &n), 100);
    let skewed = pod(
        json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "4"}}}]}}),
    );
    assert_eq!(balanced_allocation(&skewed, &n), 50);
}

#[test]
fn untolerated_prefer_no_schedule_taints_are_counted() {
    let n = node(json!({"metadata": {"name": "n"}, "spec": {"taints": [
        {"key": "a", "effect": "PreferNoSchedule"},
        {"key": "b", "effect": "PreferNoSchedule"},
        {"key": "c", "effect": "NoSchedule"}
    ]}}));
    let p = pod(
        json!({"spec": {"containers": [], "tolerations": [{"key": "a", "operator": "Exists"}]}}),
    );
    assert_eq!(taint_toleration_raw(&p.pod, &n), 1);
}

#[test]
fn default_normalize_scales_by_the_maximum_and_can_reverse() {
    let mut s = vec![0, 1, 2];
    default_normalize(&mut s, true);
    assert_eq!(s, [100, 50, 0]);
    let mut s = vec![0, 5, 10];
    default_normalize(&mut s, false);
    assert_eq!(s, [0, 50, 100]);
    let mut zeros = vec![0, 0];
    default_normalize(&mut zeros, true);
    assert_eq!(zeros, [100, 100]);
}

#[test]
fn preferred_node_affinity_sums_matching_weights() {
    let n = node(json!({"metadata": {"name": "n", "labels": {"a": "1", "b": "2"}}}));
    let p = pod(
        json!({"spec": {"containers": [], "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}},
            {"weight": 5, "preference": {"matchExpressions": [{"key": "b", "operator": "In", "values": ["2"]}]}},
            {"weight": 7, "preference": {"matchExpressions": [{"key": "c", "operator": "Exists"}]}}
        ]}}}}),
    );
    assert_eq!(node_affinity_raw(&p.pod, &n), 15);
}

#[test]
fn image_names_without_tag_mean_latest() {
    assert_eq!(normalized_image_name("nginx"), "nginx:latest");
    assert_eq!(
        normalized_image_name("localhost:5000/app"),
        "localhost:5000/app:latest"
    );
    assert_eq!(normalized_image_name("nginx:1.27"), "nginx:1.27");
    assert_eq!(
        normalized_image_name("nginx@sha256:abc"),
        "nginx@sha256:abc"
    );
}
