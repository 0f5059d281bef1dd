use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;

use crate::algorithm::tests::{node, on, pod, schedule};
use crate::snapshot::Snapshot;

fn zones() -> Vec<k8s_openapi::api::core::v1::Node> {
    vec![
        node("a1", "8", json!({"zone": "a"}), json!({})),
        node("a2", "8", json!({"zone": "a"}), json!({})),
        node("b1", "8", json!({"zone": "b"}), json!({})),
        node("nozone", "64", json!({}), json!({})),
    ]
}

fn spread(when: &str, key: &str, skew: i32, extra: serde_json::Value) -> serde_json::Value {
    let mut c = json!({"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": when,
        "labelSelector": {"matchLabels": {"app": "web"}}});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    json!({"topologySpreadConstraints": [c]})
}

#[test]
fn do_not_schedule_keeps_zones_within_max_skew() {
    let mut s = Snapshot::from_objects(zones(), []);
    let mut per_zone: HashMap<String, i32> = HashMap::new();
    for i in 0..6 {
        let p = pod(
            &format!("w{i}"),
            "100m",
            json!({"app": "web"}),
            spread("DoNotSchedule", "zone", 1, json!({})),
        );
        let placed = schedule(&s, p.clone()).unwrap();
        assert_ne!(placed.node, "nozone");
        let zone = if placed.node.starts_with('a') {
            "a"
        } else {
            "b"
        };
        *per_zone.entry(zone.into()).or_default() += 1;
        let (a, b) = (
            per_zone.get("a").copied().unwrap_or(0),
            per_zone.get("b").copied().unwrap_or(0),
        );
        assert!((a - b).abs() <= 1, "{per_zone:?}");
        s.upsert_pod(Arc::new(on(p, &placed.node)));
    }
}

#[test]
fn skew_violations_and_missing_labels_are_reported_as_upstream() {
    let s = Snapshot::from_objects(
        zones(),
        [
            on(pod("x", "100m", json!({"app": "web"}), json!({})), "a1"),
            on(pod("y", "100m", json!({"app": "web"}), json!({})), "a2"),
        ],
    );
    let p = pod(
        "w",
        "100m",
        json!({"app": "web"}),
        spread(
            "DoNotSchedule",
            "zone",
            1,
            json!({"nodeAffinityPolicy": "Honor"}),
        ),
    );
    assert_eq!(schedule(&s, p).unwrap().node, "b1");
    let full = Snapshot::from_objects(
        vec![
            node("a1", "8", json!({"zone": "a"}), json!({})),
            node("b1", "1", json!({"zone": "b"}), json!({})),
            node("nozone", "8", json!({}), json!({})),
        ],
        [on(pod("x", "100m", json!({"app": "web"}), json!({})), "a1")],
    );
    let p = pod(
        "w",
        "2",
        json!({"app": "web"}),
        spread("DoNotSchedule", "zone", 1, json!({})),
    );
    let msg = schedule(&full, p).unwrap_err().message();
    assert_eq!(
        msg,
        "0/3 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match pod topology spread constraints, 1 node(s) didn't match pod topology spread constraints (missing required label)."
    );
}

#[test]
fn min_domains_treats_missing_domains_as_empty() {
    let s = Snapshot::from_objects(
        vec![
            node("a1", "8", json!({"zone": "a"}), json!({})),
            node("b1", "8", json!({"zone": "b"}), json!({})),
        ],
        [
            on(pod("x", "100m", json!({"app": "web"}), json!({})), "a1"),
            on(pod("y", "100m", json!({"app": "web"}), json!({})), "b1"),
        ],
    );
    // Two domains hold one pod each; with minDomains 3 the global minimum
    // counts as 0, so a second pod in either zone would be skew 2.
    let p = pod(
        "w",
        "100m",
        json!({"app": "web"}),
        spread("DoNotSchedule", "zone", 1, json!({"minDomains": 3})),
    );
    assert!(schedule(&s, p).is_err());
    let p = pod(
        "w",
        "100m",
        json!({"app": "web"}),
        spread("DoNotSchedule", "zone", 1, json!({})),
    );
    assert!(schedule(&s, p).is_ok());
}

#[test]
fn node_affinity_policy_ignore_counts_domains_the_pod_cannot_use() {
    let s = Snapshot::from_objects(
        vec![
            node("a1", "8", json!({"zone": "a", "pool": "x"}), json!({})),
            node("b1", "8", json!({"zone": "b", "pool": "y"}), json!({})),
        ],
        [on(pod("x", "100m", json!({"app": "web"}), json!({})), "a1")],
    );
    let mut spec = spread("DoNotSchedule", "zone", 1, json!({}));
    spec["nodeSelector"] = json!({"pool": "x"});
    // Honor (default): only zone a counts, skew stays 0 -> fits.
    assert!(schedule(&s, pod("w", "100m", json!({"app": "web"}), spec.clone())).is_ok());
    spec["topologySpreadConstraints"][0]["nodeAffinityPolicy"] = json!("Ignore");
    // Ignore: zone b (empty) counts, a second pod in a makes skew 2.
    assert!(schedule(&s, pod("w", "100m", json!({"app": "web"}), spec)).is_err());
}

#[test]
fn schedule_anyway_prefers_the_emptier_domain() {
    let s = Snapshot::from_objects(
        vec![
            node("a1", "8", json!({"zone": "a"}), json!({})),
            node("b1", "8", json!({"zone": "b"}), json!({})),
        ],
        [
            on(pod("x", "100m", json!({"app": "web"}), json!({})), "a1"),
            on(pod("y", "100m", json!({"app": "web"}), json!({})), "a1"),
        ],
    );
    let p = pod(
        "w",
        "100m",
        json!({"app": "web"}),
        spread("ScheduleAnyway", "zone", 1, json!({})),
    );
    assert_eq!(schedule(&s, p).unwrap().node, "b1");
}
