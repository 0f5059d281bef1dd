use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::json;

use super::*;
use crate::algorithm::tests::{node, on, pod, schedule_with};
use crate::algorithm::ObjectMaps;

fn run(s: &Snapshot, p: &k8s_openapi::api::core::v1::Pod, objects: &ObjectMaps) -> Outcome {
    let err = schedule_with(s, p.clone(), objects).unwrap_err();
    preempt(s, &Arc::new(p.clone()), objects, &err, &HashMap::new())
}

#[test]
fn evicts_the_fewest_lowest_priority_pods_that_make_room() {
    let s = Snapshot::from_objects(
        vec![
            node("n0", "4", json!({}), json!({})),
            node("n1", "4", json!({}), json!({})),
        ],
        [
            on(pod("a", "2", json!({}), json!({"priority": 10})), "n0"),
            on(pod("b", "2", json!({}), json!({"priority": 5})), "n0"),
            on(pod("c", "2", json!({}), json!({"priority": 50})), "n1"),
            on(pod("d", "2", json!({}), json!({"priority": 50})), "n1"),
        ],
    );
    let high = pod("high", "2", json!({}), json!({"priority": 100}));
    let Outcome::Nominate { node, victims } = run(&s, &high, &ObjectMaps::default()) else {
        panic!("expected a nomination")
    };
    assert_eq!(node, "n0");
    let names: Vec<&str> = victims.iter().map(|v| v.key.name.as_str()).collect();
    assert_eq!(names, ["b"]);
}

#[test]
fn pods_of_equal_or_higher_priority_are_never_victims() {
    let s = Snapshot::from_objects(
        vec![node("n0", "2", json!({}), json!({}))],
        [on(pod("a", "2", json!({}), json!({"priority": 100})), "n0")],
    );
    let p = pod("p", "1", json!({}), json!({"priority": 100}));
    let Outcome::Fail { message } = run(&s, &p, &ObjectMaps::default()) else {
        panic!("no victim allowed")
    };
    assert_eq!(
        message,
        "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod"
    );
}

#[test]
fn preemption_policy_never_is_not_eligible() {
    let s = Snapshot::from_objects(
        vec![node("n0", "2", json!({}), json!({}))],
        [on(pod("a", "2", json!({}), json!({"priority": 1})), "n0")],
    );
    let p = pod(
        "p",
        "1",
        json!({}),
        json!({"priority": 100, "preemptionPolicy": "Never"}),
    );
    let Outcome::Fail { message } = run(&s, &p, &ObjectMaps::default()) else {
        panic!("Never must not preempt")
    };
    assert_eq!(
        message,
        "preemption: not eligible due to preemptionPolicy=Never"
    );
}

#[test]
fn nodes_failing_unresolvable_filters_are_not_helped() {
    let s = Snapshot::from_objects(
        vec![node("n0", "2", json!({}), json!({"unschedulable": true}))],
        [on(pod("a", "2", json!({}), json!({"priority": 1})), "n0")],
    );
    let p = pod("p", "1", json!({}), json!({"priority": 100}));
    let Outcome::Fail { message } = run(&s, &p, &ObjectMaps::default()) else {
        panic!("cordoned node")
    };
    assert_eq!(
        message,
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling"
    );
}

#[test]
fn nodes_whose_victims_are_protected_by_a_pdb_are_avoided() {
    let s = Snapshot::from_objects(
        vec![
            node("n0", "2", json!({}), json!({})),
            node("n1", "2", json!({}), json!({})),
        ],
        [
            on(
                pod("guarded", "2", json!({"app": "db"}), json!({"priority": 1})),
                "n0",
            ),
            on(
                pod("free", "2", json!({"app": "web"}), json!({"priority": 5})),
                "n1",
            ),
        ],
    );
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "db"}}},
        "status": {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}
    }))
    .unwrap();
    let objects = ObjectMaps {
        pdbs: vec![Arc::new(pdb)],
        ..Default::default()
    };
    let p = pod("p", "2", json!({}), json!({"priority": 100}));
    let Outcome::Nominate { node, .. } = run(&s, &p, &objects) else {
        panic!("expected a nomination")
    };
    assert_eq!(node, "n1");
}
