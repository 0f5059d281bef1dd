use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use serde_json::json;

use super::pods::*;

fn set(extra: serde_json::Value) -> StatefulSet {
    let mut v = json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "set-uid"},
        "spec": {
            "replicas": 3,
            "serviceName": "nginx",
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "www"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
            }],
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
        }
    });
    merge(&mut v, extra);
    serde_json::from_value(v).unwrap()
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn pod(name: &str, uid: &str) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default", "uid": uid}}))
        .unwrap()
}

#[test]
fn pod_names_split_into_parent_and_ordinal() {
    assert_eq!(parent_and_ordinal("web-0"), Some(("web", 0)));
    assert_eq!(parent_and_ordinal("my-web-12"), Some(("my-web", 12)));
    assert_eq!(parent_and_ordinal("web-"), None);
    assert_eq!(parent_and_ordinal("web-x1"), None);
    assert_eq!(parent_and_ordinal("web"), None);
}

#[test]
fn a_new_pod_has_the_identity_storage_and_revision_of_its_ordinal() {
    let s = set(json!({}));
    let p = new_pod(&s, &s.spec.as_ref().unwrap().template, "web-abc", 1);
    assert_eq!(p.metadata.name.as_deref(), Some("web-1"));
    assert_eq!(p.metadata.generate_name.as_deref(), Some("web-"));
    let labels = p.metadata.labels.clone().unwrap();
    assert_eq!(labels["app"], "nginx");
    assert_eq!(labels[POD_NAME_LABEL], "web-1");
    assert_eq!(labels[POD_INDEX_LABEL], "1");
    assert_eq!(labels[REVISION_LABEL], "web-abc");
    let spec = p.spec.as_ref().unwrap();
    assert_eq!(spec.hostname.as_deref(), Some("web-1"));
    assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
    let volumes = spec.volumes.as_ref().unwrap();
    assert_eq!(volumes[0].name, "www");
    assert_eq!(
        volumes[0]
            .persistent_volume_claim
            .as_ref()
            .unwrap()
            .claim_name,
        "www-web-1"
    );
    let owner = &p.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("StatefulSet", Some(true))
    );
    assert!(identity_matches(&s, &p));
    assert!(storage_matches(&s, &p));
}

#[test]
fn ordinals_start_where_spec_ordinals_says() {
    let s = set(json!({"spec": {"ordinals": {"start": 5}}}));
    let mut p = pod("web-4", "u");
    assert!(!in_ordinal_range(&s, &p));
    p.metadata.name = Some("web-7".into());
    assert!(in_ordinal_range(&s, &p));
    p.metadata.name = Some("web-8".into());
    assert!(!in_ordinal_range(&s, &p));
}

#[test]
fn claims_carry_selector_labels_and_a_set_owner_only_when_deleted_with_the_set() {
    let retain = set(json!({}));
    let c = &claims_for(&retain, 2)[0];
    assert_eq!(c.metadata.name.as_deref(), Some("www-web-2"));
    assert_eq!(c.metadata.labels.as_ref().unwrap()["app"], "nginx");
    assert!(c.metadata.owner_references.is_none());
    let delete =
        set(json!({"spec": {"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete"}}}));
    let c = &claims_for(&delete, 2)[0];
    assert_eq!(
        c.metadata.owner_references.as_ref().unwrap()[0].uid,
        "set-uid"
    );
}

#[test]
fn a_scaled_down_member_hands_its_claim_to_the_pod_when_whenscaled_is_delete() {
    let s = set(
        json!({"spec": {"replicas": 1, "persistentVolumeClaimRetentionPolicy": {
        "whenDeleted": "Delete", "whenScaled": "Delete"}}}),
    );
    let condemned = pod("web-2", "pod-2");
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({"metadata": {
        "name": "www-web-2",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "set-uid"}]
    }}))
    .unwrap();
    let refs = claim_owner_refs(&s, &condemned, &claim).expect("refs change");
    assert_eq!(refs.len(), 1);
    assert_eq!(
        (refs[0].kind.as_str(), refs[0].uid.as_str()),
        ("Pod", "pod-2")
    );
    // A member in range keeps the set's reference and needs no change.
    let member = pod("web-0", "pod-0");
    let claim0: PersistentVolumeClaim = serde_json::from_value(json!({"metadata": {
        "name": "www-web-0",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "set-uid"}]
    }}))
    .unwrap();
    assert!(claim_owner_refs(&s, &member, &claim0).is_none());
}

#[test]
fn retain_policy_removes_owner_references_this_set_added() {
    let s = set(json!({}));
    let member = pod("web-0", "pod-0");
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({"metadata": {
        "name": "www-web-0",
        "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "set-uid"},
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": "x"}
        ]
    }}))
    .unwrap();
    let refs = claim_owner_refs(&s, &member, &claim).unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].uid, "x");
}

#[test]
fn ordinals_below_the_partition_are_recreated_at_the_current_revision() {
    let s = set(json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 2}}}}));
    assert!(created_at_current_revision(&s, 1));
    assert!(!created_at_current_revision(&s, 2));
    let on_delete =
        set(json!({"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": null}}}));
    assert!(!created_at_current_revision(&on_delete, 0));
}

#[test]
fn a_rolling_update_completes_when_every_replica_is_updated_and_ready() {
    let s = set(json!({}));
    let mut status = StatefulSetStatus {
        replicas: 3,
        ready_replicas: Some(3),
        updated_replicas: Some(3),
        current_replicas: Some(0),
        current_revision: Some("web-old".into()),
        update_revision: Some("web-new".into()),
        ..Default::default()
    };
    complete_rolling_update(&s, &mut status);
    assert_eq!(status.current_revision.as_deref(), Some("web-new"));
    assert_eq!(status.current_replicas, Some(3));
    let mut partial = StatefulSetStatus {
        replicas: 3,
        ready_replicas: Some(3),
        updated_replicas: Some(1),
        current_revision: Some("web-old".into()),
        update_revision: Some("web-new".into()),
        ..Default::default()
    };
    complete_rolling_update(&s, &mut partial);
    assert_eq!(partial.current_revision.as_deref(), Some("web-old"));
}

#[test]
fn status_counts_ready_and_revisions_of_created_members() {
    let ready: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web-0", "labels": {"controller-revision-hash": "web-new"}},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    }))
    .unwrap();
    let pending: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web-1", "labels": {"controller-revision-hash": "web-old"}},
        "status": {"phase": "Pending"}
    }))
    .unwrap();
    let missing = pod("web-2", "");
    let mut status = StatefulSetStatus {
        current_revision: Some("web-old".into()),
        update_revision: Some("web-new".into()),
        ..Default::default()
    };
    count_status(
        &mut status,
        [(&ready, true), (&pending, true), (&missing, false)],
        0,
        chrono::Utc::now(),
    );
    assert_eq!(status.replicas, 2);
    assert_eq!(status.ready_replicas, Some(1));
    assert_eq!(status.available_replicas, Some(1));
    assert_eq!(status.current_replicas, Some(1));
    assert_eq!(status.updated_replicas, Some(1));
}
