use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;

use crate::algorithm::tests::{node, on, pod, schedule, schedule_with};
use crate::algorithm::ObjectMaps;
use crate::snapshot::Snapshot;

fn zones() -> Vec<k8s_openapi::api::core::v1::Node> {
    vec![
        node("a1", "8", json!({"zone": "a"}), json!({})),
        node("a2", "8", json!({"zone": "a"}), json!({})),
        node("b1", "8", json!({"zone": "b"}), json!({})),
    ]
}

fn anti(kind: &str, key: &str) -> serde_json::Value {
    match kind {
        "required" => {
            json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": key}
            ]}}})
        }
        _ => {
            json!({"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": key}}
            ]}}})
        }
    }
}

#[test]
fn required_anti_affinity_by_hostname_keeps_replicas_apart_then_fails() {
    let mut s = Snapshot::from_objects(zones(), []);
    let mut used = Vec::new();
    for i in 0..3 {
        let p = pod(
            &format!("w{i}"),
            "100m",
            json!({"app": "web"}),
            anti("required", "kubernetes.io/hostname"),
        );
        let placed = schedule(&s, p.clone()).unwrap();
        assert!(!used.contains(&placed.node), "{used:?} {}", placed.node);
        used.push(placed.node.clone());
        s.upsert_pod(Arc::new(on(p, &placed.node)));
    }
    let p = pod(
        "w3",
        "100m",
        json!({"app": "web"}),
        anti("required", "kubernetes.io/hostname"),
    );
    let err = schedule(&s, p).unwrap_err();
    assert_eq!(
        err.message(),
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."
    );
}

#[test]
fn preferred_anti_affinity_spreads_but_still_schedules() {
    let mut s = Snapshot::from_objects(zones(), []);
    let mut nodes = HashMap::new();
    for i in 0..4 {
        let p = pod(
            &format!("w{i}"),
            "100m",
            json!({"app": "web"}),
            anti("preferred", "kubernetes.io/hostname"),
        );
        let placed = schedule(&s, p.clone()).unwrap();
        *nodes.entry(placed.node.clone()).or_insert(0) += 1;
        s.upsert_pod(Arc::new(on(p, &placed.node)));
    }
    assert_eq!(nodes.len(), 3, "{nodes:?}");
}

#[test]
fn existing_pods_anti_affinity_keeps_newcomers_out_of_their_zone() {
    let s = Snapshot::from_objects(
        zones(),
        [on(
            pod(
                "loner",
                "100m",
                json!({"app": "loner"}),
                anti("required", "zone"),
            ),
            "a1",
        )],
    );
    let err = schedule_with(
        &Snapshot::from_objects(
            vec![node("a1", "8", json!({"zone": "a"}), json!({}))],
            [on(
                pod("loner", "100m", json!({}), anti("required", "zone")),
                "a1",
            )],
        ),
        pod("web", "100m", json!({"app": "web"}), json!({})),
        &ObjectMaps::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.message(),
        "0/1 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules."
    );
    let placed = schedule(&s, pod("web", "100m", json!({"app": "web"}), json!({}))).unwrap();
    assert_eq!(placed.node, "b1");
}

#[test]
fn required_affinity_follows_matching_pods_zone() {
    let s = Snapshot::from_objects(
        zones(),
        [on(pod("db", "100m", json!({"app": "db"}), json!({})), "b1")],
    );
    let p = pod(
        "app",
        "100m",
        json!({"app": "app"}),
        json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}
        ]}}}),
    );
    assert_eq!(schedule(&s, p).unwrap().node, "b1");
    let lonely = pod(
        "app",
        "100m",
        json!({"app": "app"}),
        json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "zone"}
        ]}}}),
    );
    assert_eq!(
        schedule(&s, lonely).unwrap_err().message(),
        "0/3 nodes are available: 3 node(s) didn't match pod affinity rules."
    );
}

#[test]
fn the_first_pod_of_a_self_affine_group_goes_anywhere() {
    let s = Snapshot::from_objects(zones(), []);
    let p = pod(
        "first",
        "100m",
        json!({"app": "web"}),
        json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone"}
        ]}}}),
    );
    assert!(schedule(&s, p).is_ok());
}

#[test]
fn terms_select_only_their_namespaces() {
    let mut other = pod("db", "100m", json!({"app": "db"}), json!({}));
    other.metadata.namespace = Some("prod".into());
    let s = Snapshot::from_objects(zones(), [on(other, "b1")]);
    let term = |extra: serde_json::Value| {
        let mut t = json!({"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"});
        for (k, v) in extra.as_object().unwrap() {
            t[k] = v.clone();
        }
        json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [t]}}})
    };
    // Own namespace only by default: no match, and it does not match itself.
    assert!(schedule(&s, pod("app", "100m", json!({}), term(json!({})))).is_err());
    assert_eq!(
        schedule(
            &s,
            pod(
                "app",
                "100m",
                json!({}),
                term(json!({"namespaces": ["prod"]}))
            )
        )
        .unwrap()
        .node,
        "b1"
    );
    let objects = ObjectMaps {
        namespaces: [(
            "prod".to_string(),
            [("env".to_string(), "prod".to_string())].into(),
        )]
        .into(),
        ..Default::default()
    };
    let by_selector = pod(
        "app",
        "100m",
        json!({}),
        term(json!({"namespaceSelector": {"matchLabels": {"env": "prod"}}})),
    );
    assert_eq!(schedule_with(&s, by_selector, &objects).unwrap().node, "b1");
}

#[test]
fn preferred_affinity_pulls_towards_matching_pods() {
    let s = Snapshot::from_objects(
        zones(),
        [on(pod("db", "100m", json!({"app": "db"}), json!({})), "a2")],
    );
    let p = pod(
        "app",
        "100m",
        json!({}),
        json!({"affinity": {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}}
        ]}}}),
    );
    assert_eq!(schedule(&s, p).unwrap().node, "a2");
}
