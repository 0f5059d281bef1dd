//! A StatefulSet's members as values (upstream `stateful_set_utils.go`):
//! ordinals and names, the identity and storage a member must have, the
//! pod and claims built for an ordinal, the claims' owner references under
//! the retention policy, and the status counted from the members. No IO.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::owner;
use crate::pod as podutil;

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
pub const REVISION_LABEL: &str = "controller-revision-hash";

pub const RETAIN: &str = "Retain";
pub const DELETE: &str = "Delete";

/// Splits `web-3` into the parent `web` and ordinal 3 (upstream
/// `getParentNameAndOrdinal`, regex `(.*)-([0-9]+)$`).
pub fn parent_and_ordinal(name: &str) -> Option<(&str, i32)> {
    let (parent, digits) = name.rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, digits.parse().ok()?))
}

pub fn ordinal(pod: &Pod) -> Option<i32> {
    parent_and_ordinal(pod.metadata.name.as_deref()?).map(|(_, o)| o)
}

/// Whether `pod` is named as a member of `set` (upstream `isMemberOf`).
pub fn is_member_of(set: &StatefulSet, pod: &Pod) -> bool {
    pod.metadata
        .name
        .as_deref()
        .and_then(parent_and_ordinal)
        .is_some_and(|(parent, _)| Some(parent) == set.metadata.name.as_deref())
}

pub fn set_name(set: &StatefulSet) -> &str {
    set.metadata.name.as_deref().unwrap_or_default()
}

pub fn replicas(set: &StatefulSet) -> i32 {
    set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// The first ordinal (`spec.ordinals.start`, default 0).
pub fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.ordinals.as_ref())
        .and_then(|o| o.start)
        .unwrap_or(0)
}

/// Whether the pod's ordinal is one the set wants now.
pub fn in_ordinal_range(set: &StatefulSet, pod: &Pod) -> bool {
    ordinal(pod).is_some_and(|o| o >= start_ordinal(set) && o < start_ordinal(set) + replicas(set))
}

pub fn pod_name(set: &StatefulSet, ordinal: i32) -> String {
    format!("{}-{ordinal}", set_name(set))
}

/// `<template>-<set>-<ordinal>`.
pub fn claim_name(set: &StatefulSet, template: &str, ordinal: i32) -> String {
    format!("{template}-{}-{ordinal}", set_name(set))
}

pub fn min_ready_seconds(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

pub fn service_name(set: &StatefulSet) -> Option<&str> {
    set.spec
        .as_ref()
        .and_then(|s| s.service_name.as_deref())
        .filter(|s| !s.is_empty())
}

pub fn update_strategy(set: &StatefulSet) -> &str {
    set.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        .unwrap_or("RollingUpdate")
}

pub fn partition(set: &StatefulSet) -> Option<i32> {
    set.spec
        .as_ref()?
        .update_strategy
        .as_ref()?
        .rolling_update
        .as_ref()?
        .partition
}

/// Parallel pod management lets pods be created and deleted at once
/// (upstream `allowsBurst`).
pub fn allows_burst(set: &StatefulSet) -> bool {
    set.spec
        .as_ref()
        .and_then(|s| s.pod_management_policy.as_deref())
        == Some("Parallel")
}

/// `(whenDeleted, whenScaled)`, Retain unless said otherwise.
pub fn retention_policy(set: &StatefulSet) -> (&str, &str) {
    let p = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    (
        p.and_then(|p| p.when_deleted.as_deref()).unwrap_or(RETAIN),
        p.and_then(|p| p.when_scaled.as_deref()).unwrap_or(RETAIN),
    )
}

pub fn revision_of(pod: &Pod) -> &str {
    owner::labels(&pod.metadata)
        .get(REVISION_LABEL)
        .map(String::as_str)
        .unwrap_or_default()
}

pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Running with the Ready condition True (upstream `isRunningAndReady`).
pub fn is_running_and_ready(pod: &Pod) -> bool {
    podutil::phase(pod) == "Running" && podutil::is_ready(pod)
}

pub fn is_running_and_available(pod: &Pod, min_ready_seconds: i32, now: DateTime<Utc>) -> bool {
    is_running_and_ready(pod) && podutil::is_available(pod, min_ready_seconds, now)
}

/// Not (running, ready, available and staying) (upstream `isUnavailable`).
pub fn is_unavailable(pod: &Pod, min_ready_seconds: i32, now: DateTime<Utc>) -> bool {
    is_terminating(pod) || !is_running_and_available(pod, min_ready_seconds, now)
}

/// The pod has the name, namespace and labels of its ordinal (upstream
/// `identityMatches`).
pub fn identity_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let Some(name) = pod.metadata.name.as_deref() else {
        return false;
    };
    let Some((parent, ord)) = parent_and_ordinal(name) else {
        return false;
    };
    let labels = owner::labels(&pod.metadata);
    Some(parent) == set.metadata.name.as_deref()
        && name == pod_name(set, ord)
        && pod.metadata.namespace == set.metadata.namespace
        && labels.get(POD_NAME_LABEL).map(String::as_str) == Some(name)
        && labels.get(POD_INDEX_LABEL) == Some(&ord.to_string())
}

/// The identity labels of a member (upstream `updateIdentity`).
pub fn identity_labels(pod_name: &str, ordinal: i32) -> BTreeMap<String, String> {
    BTreeMap::from([
        (POD_NAME_LABEL.to_string(), pod_name.to_string()),
        (POD_INDEX_LABEL.to_string(), ordinal.to_string()),
    ])
}

fn claim_templates(set: &StatefulSet) -> &[PersistentVolumeClaim] {
    set.spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_deref())
        .unwrap_or_default()
}

fn template_name(t: &PersistentVolumeClaim) -> &str {
    t.metadata.name.as_deref().unwrap_or_default()
}

/// The pod mounts the claim of each volumeClaimTemplate (upstream
/// `storageMatches`).
pub fn storage_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let Some(ord) = ordinal(pod) else {
        return false;
    };
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default();
    claim_templates(set).iter().all(|t| {
        volumes.iter().any(|v| {
            v.name == template_name(t)
                && v.persistent_volume_claim
                    .as_ref()
                    .map(|c| c.claim_name.as_str())
                    == Some(claim_name(set, template_name(t), ord).as_str())
        })
    })
}

/// The claims of the member at `ordinal`, named and labelled (upstream
/// `getPersistentVolumeClaims`), with the owner references the retention
/// policy wants while the member is in range.
pub fn claims_for(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let selector_labels = set
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    let (when_deleted, _) = retention_policy(set);
    claim_templates(set)
        .iter()
        .map(|t| {
            let mut claim = t.clone();
            let mut labels = claim.metadata.labels.take().unwrap_or_default();
            labels.extend(selector_labels.clone());
            claim.metadata = ObjectMeta {
                name: Some(claim_name(set, template_name(t), ordinal)),
                namespace: set.metadata.namespace.clone(),
                labels: Some(labels),
                annotations: claim.metadata.annotations.take(),
                ..Default::default()
            };
            if when_deleted == DELETE {
                claim.metadata.owner_references = Some(vec![set_owner_ref(set)]);
            }
            claim.status = None;
            claim
        })
        .collect()
}

/// Pod volumes for the claims, replacing same-named template volumes
/// (upstream `updateStorage`).
fn set_storage(set: &StatefulSet, ordinal: i32, pod: &mut Pod) {
    let templates = claim_templates(set);
    if templates.is_empty() {
        return;
    }
    let spec = pod.spec.get_or_insert_with(Default::default);
    let mut volumes: Vec<Volume> = templates
        .iter()
        .map(|t| Volume {
            name: template_name(t).to_string(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(set, template_name(t), ordinal),
                read_only: None,
            }),
            ..Default::default()
        })
        .collect();
    for v in spec.volumes.take().unwrap_or_default() {
        if !templates.iter().any(|t| template_name(t) == v.name) {
            volumes.push(v);
        }
    }
    spec.volumes = Some(volumes);
}

/// The pod for `ordinal` from `template` at `revision` (upstream
/// `newStatefulSetPod` + `setPodRevision`): the template's labels,
/// annotations and spec, the set as controller, generateName `<set>-`,
/// identity labels, hostname and subdomain, claim volumes.
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, revision: &str, ordinal: i32) -> Pod {
    let name = pod_name(set, ordinal);
    let tmeta = template.metadata.clone().unwrap_or_default();
    let mut labels = tmeta.labels.unwrap_or_default();
    labels.extend(identity_labels(&name, ordinal));
    labels.insert(REVISION_LABEL.to_string(), revision.to_string());
    let mut pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            generate_name: Some(format!("{}-", set_name(set))),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![owner::controller_ref(set)]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    };
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = Some(name);
    spec.subdomain = service_name(set).map(str::to_string);
    set_storage(set, ordinal, &mut pod);
    pod
}

/// Which revision a missing pod is created at (upstream
/// `newVersionedStatefulSetPod`): ordinals below the partition (or below
/// the current replicas when no partition is given) stay at the current
/// revision during a rolling update; all others get the update revision.
pub fn created_at_current_revision(set: &StatefulSet, ordinal: i32) -> bool {
    if update_strategy(set) != "RollingUpdate" {
        return false;
    }
    let rolling = set
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref());
    let limit = match rolling {
        None => set
            .status
            .as_ref()
            .and_then(|s| s.current_replicas)
            .unwrap_or(0),
        Some(r) => r.partition.unwrap_or(0),
    };
    ordinal < start_ordinal(set) + limit
}

pub fn set_owner_ref(set: &StatefulSet) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "StatefulSet".into(),
        name: set_name(set).to_string(),
        uid: set.metadata.uid.clone().unwrap_or_default(),
        controller: None,
        block_owner_deletion: None,
    }
}

pub fn pod_owner_ref(pod: &Pod) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        controller: None,
        block_owner_deletion: None,
    }
}

fn has_ref(refs: &[OwnerReference], uid: &str) -> bool {
    !uid.is_empty() && refs.iter().any(|r| r.uid == uid)
}

/// The owner references a member's claim should have under the retention
/// policy (upstream `updateClaimOwnerRefForSetAndPod`): the set owns it
/// when it is to go with the set (whenDeleted Delete) and the member is in
/// range; the pod owns it when it is to go on scale-down (whenScaled
/// Delete) and the member is out of range. Other references are kept.
/// `None` when the references are already right.
pub fn claim_owner_refs(
    set: &StatefulSet,
    pod: &Pod,
    claim: &PersistentVolumeClaim,
) -> Option<Vec<OwnerReference>> {
    let (when_deleted, when_scaled) = retention_policy(set);
    let scaled_down = !in_ordinal_range(set, pod);
    let want_set = when_deleted == DELETE && !(when_scaled == DELETE && scaled_down);
    let want_pod = when_scaled == DELETE && scaled_down;
    let set_uid = set.metadata.uid.clone().unwrap_or_default();
    let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
    let refs = claim.metadata.owner_references.clone().unwrap_or_default();
    let has_set = has_ref(&refs, &set_uid);
    let has_pod = has_ref(&refs, &pod_uid);
    if has_set == want_set && (has_pod == want_pod || pod_uid.is_empty()) {
        return None;
    }
    let mut refs: Vec<OwnerReference> = refs
        .into_iter()
        .filter(|r| r.uid != set_uid && (pod_uid.is_empty() || r.uid != pod_uid))
        .collect();
    if want_set {
        refs.push(set_owner_ref(set));
    }
    if want_pod && !pod_uid.is_empty() {
        refs.push(pod_owner_ref(pod));
    }
    Some(refs)
}

/// Counts of a list of members (upstream `computeReplicaStatus`). `created`
/// tells the members that exist from the ones about to be created.
pub fn count_status<'a>(
    status: &mut StatefulSetStatus,
    members: impl IntoIterator<Item = (&'a Pod, bool)>,
    min_ready_seconds: i32,
    now: DateTime<Utc>,
) {
    let mut replicas = 0;
    let mut ready = 0;
    let mut available = 0;
    let mut current = 0;
    let mut updated = 0;
    let current_revision = status.current_revision.clone().unwrap_or_default();
    let update_revision = status.update_revision.clone().unwrap_or_default();
    for (pod, created) in members {
        if !created {
            continue;
        }
        replicas += 1;
        if is_running_and_ready(pod) {
            ready += 1;
            if is_running_and_available(pod, min_ready_seconds, now) {
                available += 1;
            }
        }
        if !is_terminating(pod) {
            let revision = revision_of(pod);
            if revision == current_revision {
                current += 1;
            }
            if revision == update_revision {
                updated += 1;
            }
        }
    }
    status.replicas = replicas;
    status.ready_replicas = Some(ready);
    status.available_replicas = Some(available);
    status.current_replicas = Some(current);
    status.updated_replicas = Some(updated);
}

/// A finished rolling update makes the update revision current (upstream
/// `completeRollingUpdate`).
pub fn complete_rolling_update(set: &StatefulSet, status: &mut StatefulSetStatus) {
    if update_strategy(set) == "RollingUpdate"
        && status.updated_replicas == Some(status.replicas)
        && status.ready_replicas == Some(status.replicas)
    {
        status.current_replicas = status.updated_replicas;
        status.current_revision = status.update_revision.clone();
    }
}
