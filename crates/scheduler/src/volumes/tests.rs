use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::{json, Value};

use super::*;
use crate::algorithm::tests::{node, on, pod, schedule_with};
use crate::algorithm::ObjectMaps;

fn pvc(name: &str, class: &str, volume: Option<&str>, modes: Value) -> Arc<PersistentVolumeClaim> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"storageClassName": class, "volumeName": volume, "accessModes": modes,
                     "resources": {"requests": {"storage": "1Gi"}}}
        }))
        .unwrap(),
    )
}

fn class(name: &str, provisioner: &str, mode: &str) -> Arc<StorageClass> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name}, "provisioner": provisioner, "volumeBindingMode": mode
        }))
        .unwrap(),
    )
}

fn local_pv(name: &str, class: &str, host: &str, phase: &str) -> Arc<PersistentVolume> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"storageClassName": class, "capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"],
                "local": {"path": "/mnt"},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}]}]}}},
            "status": {"phase": phase}
        }))
        .unwrap(),
    )
}

fn using(claim: &str) -> k8s_openapi::api::core::v1::Pod {
    pod(
        "p",
        "100m",
        json!({}),
        json!({"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}),
    )
}

fn nodes() -> Vec<k8s_openapi::api::core::v1::Node> {
    vec![
        node("n0", "4", json!({}), json!({})),
        node("n1", "4", json!({}), json!({})),
    ]
}

fn objects(
    pvcs: Vec<Arc<PersistentVolumeClaim>>,
    pvs: Vec<Arc<PersistentVolume>>,
    classes: Vec<Arc<StorageClass>>,
) -> ObjectMaps {
    ObjectMaps {
        pvcs: pvcs
            .into_iter()
            .map(|c| (("default".to_string(), c.metadata.name.clone().unwrap()), c))
            .collect(),
        pvs: pvs
            .into_iter()
            .map(|p| (p.metadata.name.clone().unwrap(), p))
            .collect(),
        classes: classes
            .into_iter()
            .map(|c| (c.metadata.name.clone().unwrap(), c))
            .collect(),
        ..Default::default()
    }
}

#[test]
fn a_bound_local_volume_pins_the_pod_to_its_node() {
    let s = Snapshot::from_objects(nodes(), []);
    let o = objects(
        vec![pvc("data", "local", Some("pv1"), json!(["ReadWriteOnce"]))],
        vec![local_pv("pv1", "local", "n1", "Bound")],
        vec![],
    );
    assert_eq!(schedule_with(&s, using("data"), &o).unwrap().node, "n1");
    let o = objects(
        vec![pvc("data", "local", Some("pv1"), json!(["ReadWriteOnce"]))],
        vec![local_pv("pv1", "local", "gone", "Bound")],
        vec![],
    );
    assert_eq!(
        schedule_with(&s, using("data"), &o).unwrap_err().message(),
        "0/2 nodes are available: 2 node(s) had volume node affinity conflict."
    );
}

#[test]
fn an_unbound_immediate_claim_keeps_the_pod_pending() {
    let s = Snapshot::from_objects(nodes(), []);
    let o = objects(
        vec![pvc("data", "fast", None, json!(["ReadWriteOnce"]))],
        vec![],
        vec![class("fast", "example.com/x", "Immediate")],
    );
    assert_eq!(
        schedule_with(&s, using("data"), &o).unwrap_err().message(),
        "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    );
}

#[test]
fn wait_for_first_consumer_selects_the_node_for_provisioning() {
    let s = Snapshot::from_objects(nodes(), []);
    let o = objects(
        vec![pvc("data", "local-path", None, json!(["ReadWriteOnce"]))],
        vec![],
        vec![class(
            "local-path",
            "krate.io/local-path",
            "WaitForFirstConsumer",
        )],
    );
    let placed = schedule_with(&s, using("data"), &o).unwrap();
    assert_eq!(
        placed.volumes.select_node,
        [("default".to_string(), "data".to_string())]
    );
}

#[test]
fn wait_for_first_consumer_without_provisioner_needs_an_available_local_volume() {
    let s = Snapshot::from_objects(nodes(), []);
    let o = objects(
        vec![pvc("data", "manual", None, json!(["ReadWriteOnce"]))],
        vec![
            local_pv("pv0", "manual", "n0", "Available"),
            local_pv("pv1", "manual", "n1", "Bound"),
        ],
        vec![class(
            "manual",
            "kubernetes.io/no-provisioner",
            "WaitForFirstConsumer",
        )],
    );
    assert_eq!(schedule_with(&s, using("data"), &o).unwrap().node, "n0");
    let o = objects(
        vec![pvc("data", "manual", None, json!(["ReadWriteOnce"]))],
        vec![local_pv("pv1", "manual", "n1", "Bound")],
        vec![class(
            "manual",
            "kubernetes.io/no-provisioner",
            "WaitForFirstConsumer",
        )],
    );
    assert_eq!(
        schedule_with(&s, using("data"), &o).unwrap_err().message(),
        "0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind."
    );
}

#[test]
fn a_read_write_once_pod_claim_in_use_blocks_a_second_pod() {
    let mut other = using("solo");
    other.metadata.name = Some("first".into());
    let s = Snapshot::from_objects(nodes(), [on(other, "n0")]);
    let o = objects(
        vec![pvc(
            "solo",
            "local",
            Some("pv1"),
            json!(["ReadWriteOncePod"]),
        )],
        vec![local_pv("pv1", "local", "n0", "Bound")],
        vec![],
    );
    assert_eq!(
        schedule_with(&s, using("solo"), &o).unwrap_err().message(),
        "0/2 nodes are available: node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode."
    );
}
