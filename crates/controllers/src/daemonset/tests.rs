use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{json, Value};

use super::placement::*;

fn ds(spec: Value) -> DaemonSet {
    let mut v = json!({
        "metadata": {"name": "agent", "namespace": "default", "uid": "ds-uid"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "a", "image": "agent"}]}
            }
        }
    });
    if let (Some(t), Value::Object(extra)) = (v.pointer_mut("/spec/template/spec"), spec) {
        for (k, val) in extra {
            t[k] = val;
        }
    }
    serde_json::from_value(v).unwrap()
}

fn node(name: &str, labels: Value, taints: Value) -> Arc<Node> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints}
        }))
        .unwrap(),
    )
}

fn daemon_pod(name: &str, node: &str, hash: &str, ready: bool) -> Arc<Pod> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": "agent", "controller-revision-hash": hash},
                         "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"nodeName": node, "containers": []},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
        .unwrap(),
    )
}

#[test]
fn daemon_pods_tolerate_node_trouble_and_cordons() {
    let mut spec = ds(json!({})).spec.unwrap().template.spec.unwrap();
    add_daemon_tolerations(&mut spec);
    let keys: Vec<_> = spec
        .tolerations
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| (t.key.clone().unwrap(), t.effect.clone().unwrap()))
        .collect();
    assert!(keys.contains(&("node.kubernetes.io/not-ready".into(), "NoExecute".into())));
    assert!(keys.contains(&("node.kubernetes.io/unreachable".into(), "NoExecute".into())));
    assert!(keys.contains(&(
        "node.kubernetes.io/unschedulable".into(),
        "NoSchedule".into()
    )));
    assert!(keys.contains(&(
        "node.kubernetes.io/pid-pressure".into(),
        "NoSchedule".into()
    )));
    assert!(!keys
        .iter()
        .any(|(k, _)| k == "node.kubernetes.io/network-unavailable"));
    // Adding them twice changes nothing.
    let before = spec.tolerations.clone();
    add_daemon_tolerations(&mut spec);
    assert_eq!(spec.tolerations, before);

    let mut host = ds(json!({"hostNetwork": true}))
        .spec
        .unwrap()
        .template
        .spec
        .unwrap();
    add_daemon_tolerations(&mut host);
    assert!(host
        .tolerations
        .unwrap()
        .iter()
        .any(|t| t.key.as_deref() == Some("node.kubernetes.io/network-unavailable")));
}

#[test]
fn node_selector_and_required_affinity_restrict_nodes() {
    let d = ds(json!({"nodeSelector": {"disk": "ssd"}}));
    assert_eq!(
        should_run(&d, &node("a", json!({"disk": "ssd"}), json!([]))),
        (true, true)
    );
    assert_eq!(
        should_run(&d, &node("b", json!({"disk": "hdd"}), json!([]))),
        (false, false)
    );

    let d = ds(
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1", "z2"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["special"]}]}
        ]}}}}),
    );
    assert!(should_run(&d, &node("a", json!({"zone": "z2"}), json!([]))).0);
    assert!(should_run(&d, &node("special", json!({}), json!([]))).0);
    assert!(!should_run(&d, &node("c", json!({"zone": "z3"}), json!([]))).0);
}

#[test]
fn taints_keep_new_pods_off_and_only_noexecute_evicts() {
    let d = ds(json!({}));
    let no_schedule = node(
        "a",
        json!({}),
        json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
    );
    assert_eq!(should_run(&d, &no_schedule), (false, true));
    let no_execute = node(
        "b",
        json!({}),
        json!([{"key": "dedicated", "value": "db", "effect": "NoExecute"}]),
    );
    assert_eq!(should_run(&d, &no_execute), (false, false));
    // The automatic tolerations cover a cordoned or unreachable node.
    let cordoned = node(
        "c",
        json!({}),
        json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
               {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]),
    );
    assert_eq!(should_run(&d, &cordoned), (true, true));
    let tolerant =
        ds(json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db"}]}));
    assert_eq!(should_run(&tolerant, &no_execute), (true, true));
}

#[test]
fn pods_are_pinned_by_a_metadata_name_affinity() {
    let a = pin_to_node(None, "sim-node-1");
    let pod: Pod =
        serde_json::from_value(json!({"spec": {"containers": [], "affinity": a}})).unwrap();
    assert_eq!(target_node(&pod).as_deref(), Some("sim-node-1"));
}

#[test]
fn the_plan_creates_on_uncovered_nodes_and_removes_extra_and_misplaced_pods() {
    let d = ds(json!({"nodeSelector": {"run": "yes"}}));
    let nodes = vec![
        node("n0", json!({"run": "yes"}), json!([])),
        node("n1", json!({"run": "yes"}), json!([])),
        node("n2", json!({"run": "no"}), json!([])),
    ];
    let mut node_pods = BTreeMap::new();
    let mut older = (*daemon_pod("p1", "n1", "h", true)).clone();
    older.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2023-01-01T00:00:00Z".parse().unwrap(),
    ));
    node_pods.insert(
        "n1".to_string(),
        vec![daemon_pod("p1b", "n1", "h", true), Arc::new(older)],
    );
    node_pods.insert("n2".to_string(), vec![daemon_pod("p2", "n2", "h", true)]);
    node_pods.insert(
        "gone".to_string(),
        vec![daemon_pod("p3", "gone", "h", true)],
    );
    let plan = plan(&d, &nodes, &node_pods, "h");
    assert_eq!(plan.create_on, vec!["n0".to_string()]);
    let mut deleted = plan.delete.clone();
    deleted.sort();
    assert_eq!(
        deleted,
        vec!["p1b".to_string(), "p2".to_string(), "p3".to_string()]
    );
}

#[test]
fn rolling_update_deletes_up_to_max_unavailable_old_pods() {
    let d: DaemonSet = {
        let mut d = ds(json!({}));
        d.spec.as_mut().unwrap().update_strategy = serde_json::from_value(json!({
            "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}
        }))
        .unwrap();
        d
    };
    let mut node_pods = BTreeMap::new();
    node_pods.insert("n0".to_string(), vec![daemon_pod("a", "n0", "old", true)]);
    node_pods.insert("n1".to_string(), vec![daemon_pod("b", "n1", "old", true)]);
    node_pods.insert("n2".to_string(), vec![daemon_pod("c", "n2", "new", true)]);
    let (delete, create) = rolling_update(&d, &node_pods, 3, "new", Utc::now());
    assert_eq!(delete.len(), 1);
    assert!(create.is_empty());
    // An unavailable new pod uses up the budget.
    node_pods.insert("n2".to_string(), vec![daemon_pod("c", "n2", "new", false)]);
    let (delete, _) = rolling_update(&d, &node_pods, 3, "new", Utc::now());
    assert!(delete.is_empty());
}

#[test]
fn rolling_update_with_surge_creates_beside_old_pods_then_deletes_them() {
    let mut d = ds(json!({}));
    d.spec.as_mut().unwrap().update_strategy = serde_json::from_value(json!({
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}
    }))
    .unwrap();
    let mut node_pods = BTreeMap::new();
    node_pods.insert("n0".to_string(), vec![daemon_pod("a", "n0", "old", true)]);
    node_pods.insert("n1".to_string(), vec![daemon_pod("b", "n1", "old", true)]);
    let (delete, create) = rolling_update(&d, &node_pods, 2, "new", Utc::now());
    assert!(delete.is_empty());
    assert_eq!(create, vec!["n0".to_string()]);
    node_pods.insert(
        "n0".to_string(),
        vec![
            daemon_pod("a", "n0", "old", true),
            daemon_pod("a2", "n0", "new", true),
        ],
    );
    let (delete, create) = rolling_update(&d, &node_pods, 2, "new", Utc::now());
    assert_eq!(delete, vec!["a".to_string()]);
    assert_eq!(create, vec!["n1".to_string()]);
}

#[test]
fn percentages_round_up() {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    assert_eq!(scaled(Some(&IntOrString::String("10%".into())), 3, 1), 1);
    assert_eq!(scaled(Some(&IntOrString::String("50%".into())), 3, 1), 2);
    assert_eq!(scaled(Some(&IntOrString::Int(0)), 3, 1), 0);
}

#[test]
fn status_counts_desired_ready_updated_and_misscheduled() {
    let d = ds(json!({"nodeSelector": {"run": "yes"}}));
    let nodes = vec![
        node("n0", json!({"run": "yes"}), json!([])),
        node("n1", json!({"run": "yes"}), json!([])),
        node("n2", json!({"run": "no"}), json!([])),
    ];
    let mut node_pods = BTreeMap::new();
    node_pods.insert("n0".to_string(), vec![daemon_pod("a", "n0", "h", true)]);
    node_pods.insert("n2".to_string(), vec![daemon_pod("c", "n2", "h", true)]);
    let c = count(&d, &nodes, &node_pods, "h", Utc::now());
    assert_eq!(
        c,
        Counts {
            desired: 2,
            current: 1,
            misscheduled: 1,
            ready: 1,
            available: 1,
            updated: 1
        }
    );
}
