//! Ownership between controllers and what they manage (upstream
//! `ControllerRefManager`): the controller reference, label selectors,
//! adoption of orphans and release of objects that stopped matching, as
//! strategic-merge patches that name the object's uid so a patch never lands
//! on a re-created namesake.

use std::collections::BTreeMap;
use std::sync::Arc;

use api::LabelSelector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector as MetaSelector, ObjectMeta, OwnerReference,
};
use kube::api::{Api, Patch, PatchParams};
use kube::Resource;
use serde::de::DeserializeOwned;

use crate::informer::{Informer, Object};
use serde_json::json;

/// The owner reference with `controller: true`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// A controller reference to `owner` as upstream controllers write it
/// (`controller: true`, `blockOwnerDeletion: true`).
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    let meta = owner.meta();
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A parsed selector; `None` selects nothing, as does an invalid selector.
pub fn selector(sel: Option<&MetaSelector>) -> LabelSelector {
    LabelSelector::from_metav1(sel).unwrap_or(LabelSelector::Nothing)
}

pub fn labels(meta: &ObjectMeta) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    meta.labels.as_ref().unwrap_or(&EMPTY)
}

/// Makes `owner` the controller of `obj` (upstream `AdoptPod` and kin).
pub async fn adopt<K, O>(api: &Api<K>, obj: &K, owner: &O) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    O: Resource<DynamicType = ()>,
{
    adopt_with_finalizers(api, obj, owner, &[]).await
}

/// [`adopt`], adding `finalizers` in the same patch (a Job adopts a pod
/// with its tracking finalizer).
pub async fn adopt_with_finalizers<K, O>(
    api: &Api<K>,
    obj: &K,
    owner: &O,
    finalizers: &[&str],
) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    O: Resource<DynamicType = ()>,
{
    let meta = obj.meta();
    let mut patch = json!({
        "metadata": {
            "ownerReferences": [controller_ref(owner)],
            "uid": meta.uid,
        }
    });
    if !finalizers.is_empty() {
        patch["metadata"]["finalizers"] = json!(finalizers);
    }
    api.patch(
        meta.name.as_deref().unwrap_or_default(),
        &PatchParams::default(),
        &Patch::Strategic(&patch),
    )
    .await
}

/// Removes `owner_uid`'s reference from `obj` (upstream `ReleasePod`).
pub async fn release<K>(api: &Api<K>, obj: &K, owner_uid: &str) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    release_with_finalizers(api, obj, owner_uid, &[]).await
}

/// [`release`], removing `finalizers` in the same patch (upstream
/// `GenerateDeleteOwnerRefStrategicMergeBytes` with finalizers).
pub async fn release_with_finalizers<K>(
    api: &Api<K>,
    obj: &K,
    owner_uid: &str,
    finalizers: &[&str],
) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let meta = obj.meta();
    let mut patch = json!({
        "metadata": {
            "ownerReferences": [{ "$patch": "delete", "uid": owner_uid }],
            "uid": meta.uid,
        }
    });
    if !finalizers.is_empty() {
        patch["metadata"]["$deleteFromPrimitiveList/finalizers"] = json!(finalizers);
    }
    api.patch(
        meta.name.as_deref().unwrap_or_default(),
        &PatchParams::default(),
        &Patch::Strategic(&patch),
    )
    .await
}

/// What a controller does with an object it looks at (upstream
/// `BaseControllerRefManager.ClaimObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Controlled by the owner and matching: keep it.
    Keep,
    /// Controlled by the owner but no longer matching: let it go.
    Release,
    /// An orphan that matches: make the owner its controller.
    Adopt,
    /// Someone else's, or nothing to do.
    Ignore,
}

/// Decides what `owner` does with `obj`, whose labels (and any other
/// filter of the controller) `matches`. A deleting owner neither releases
/// nor adopts; a deleting orphan is not adopted.
pub fn claim_decision(owner: &ObjectMeta, obj: &ObjectMeta, matches: bool) -> Claim {
    let deleting = owner.deletion_timestamp.is_some();
    match controller_of(obj) {
        Some(r) if Some(&r.uid) != owner.uid.as_ref() => Claim::Ignore,
        Some(_) if matches => Claim::Keep,
        Some(_) if deleting => Claim::Ignore,
        Some(_) => Claim::Release,
        None if deleting || !matches || obj.deletion_timestamp.is_some() => Claim::Ignore,
        None if owner.namespace.is_some() && owner.namespace != obj.namespace => Claim::Ignore,
        None => Claim::Adopt,
    }
}

/// Claims `candidates` for `owner` (upstream `ControllerRefManager.ClaimPods`
/// and kin): keeps its own objects that `matches`, releases its own that
/// no longer do, adopts matching orphans, ignores the rest; returns the
/// claimed objects. Adoption first reads the owner fresh from `owner_api`
/// and adopts nothing if it is gone, re-created or being deleted (upstream
/// `RecheckDeletionTimestamp`). `finalizers` are added on adoption and
/// removed on release.
pub async fn claim<K, O>(
    api: &Api<K>,
    owner: &O,
    owner_api: &Api<O>,
    candidates: impl IntoIterator<Item = Arc<K>>,
    matches: impl Fn(&K) -> bool,
    finalizers: &[&str],
) -> Result<Vec<Arc<K>>, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    O: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let owner_meta = owner.meta();
    let owner_uid = owner_meta.uid.clone().unwrap_or_default();
    let mut claimed = Vec::new();
    let mut orphans = Vec::new();
    for obj in candidates {
        match claim_decision(owner_meta, obj.meta(), matches(&obj)) {
            Claim::Keep => claimed.push(obj),
            Claim::Release => {
                match release_with_finalizers(api, &obj, &owner_uid, finalizers).await {
                    Ok(_) => {}
                    Err(e) if is_code(&e, 404) => {}
                    Err(e) => return Err(e),
                }
            }
            Claim::Adopt => orphans.push(obj),
            Claim::Ignore => {}
        }
    }
    if orphans.is_empty() {
        return Ok(claimed);
    }
    // Upstream's sync fails here and is retried with back-off: a stale
    // owner must not go on to create or delete anything either.
    let (namespace, name) = (
        owner_meta.namespace.as_deref().unwrap_or_default(),
        owner_meta.name.as_deref().unwrap_or_default(),
    );
    let fresh = owner_api.get(name).await?;
    if fresh.meta().uid != owner_meta.uid {
        return Err(conflict(format!(
            "original {} {namespace}/{name} is gone: got uid {}, wanted {}",
            O::kind(&()),
            fresh.meta().uid.as_deref().unwrap_or_default(),
            owner_uid
        )));
    }
    if let Some(at) = &fresh.meta().deletion_timestamp {
        return Err(conflict(format!(
            "{namespace}/{name} has just been deleted at {}",
            at.0.to_rfc3339()
        )));
    }
    for obj in orphans {
        match adopt_with_finalizers(api, obj.as_ref(), owner, finalizers).await {
            Ok(adopted) => claimed.push(Arc::new(adopted)),
            // Gone, changed under us or no longer valid: the next sync
            // sees it.
            Err(e) if is_code(&e, 404) || is_code(&e, 409) || is_code(&e, 422) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(claimed)
}

/// An error of [`claim`]'s own, as a 409 the callers' back-off retries.
fn conflict(message: String) -> kube::Error {
    kube::Error::Api(kube::core::ErrorResponse {
        status: "Failure".into(),
        message,
        reason: "Conflict".into(),
        code: 409,
    })
}

fn is_code(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// Index values of [`index_by_controller`]: the controller's uid, or
/// `orphan/<namespace>` for objects without a controller.
pub const CONTROLLER_INDEX: &str = "controller";

pub fn index_by_controller<K: Resource>(obj: &K) -> Vec<String> {
    let meta = obj.meta();
    match controller_of(meta) {
        Some(r) => vec![r.uid.clone()],
        None => vec![orphan_index_value(
            meta.namespace.as_deref().unwrap_or_default(),
        )],
    }
}

pub fn orphan_index_value(namespace: &str) -> String {
    format!("orphan/{namespace}")
}

/// What [`claim`] looks at for `owner`: the objects it controls and the
/// orphans of its namespace, from an informer indexed by
/// [`index_by_controller`].
pub fn claim_candidates<K: Object>(informer: &Informer<K>, owner: &ObjectMeta) -> Vec<Arc<K>> {
    let mut candidates =
        informer.by_index(CONTROLLER_INDEX, owner.uid.as_deref().unwrap_or_default());
    candidates.extend(informer.by_index(
        CONTROLLER_INDEX,
        &orphan_index_value(owner.namespace.as_deref().unwrap_or_default()),
    ));
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn meta(uid: &str, controller: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            namespace: Some("default".into()),
            uid: Some(uid.into()),
            owner_references: controller.map(|c| {
                vec![OwnerReference {
                    uid: c.into(),
                    controller: Some(true),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }
    }

    fn deleting(mut m: ObjectMeta) -> ObjectMeta {
        m.deletion_timestamp = Some(Time(chrono::Utc::now()));
        m
    }

    #[test]
    fn an_owner_keeps_its_matching_objects_and_releases_the_others() {
        let owner = meta("o", None);
        let own = meta("p", Some("o"));
        assert_eq!(claim_decision(&owner, &own, true), Claim::Keep);
        assert_eq!(claim_decision(&owner, &own, false), Claim::Release);
        assert_eq!(claim_decision(&deleting(owner), &own, false), Claim::Ignore);
    }

    #[test]
    fn only_matching_live_orphans_of_the_namespace_are_adopted_by_a_live_owner() {
        let owner = meta("o", None);
        let orphan = meta("p", None);
        assert_eq!(claim_decision(&owner, &orphan, true), Claim::Adopt);
        assert_eq!(claim_decision(&owner, &orphan, false), Claim::Ignore);
        assert_eq!(
            claim_decision(&owner, &deleting(orphan.clone()), true),
            Claim::Ignore
        );
        assert_eq!(
            claim_decision(&deleting(owner.clone()), &orphan, true),
            Claim::Ignore
        );
        let mut elsewhere = orphan;
        elsewhere.namespace = Some("other".into());
        assert_eq!(claim_decision(&owner, &elsewhere, true), Claim::Ignore);
    }

    #[test]
    fn objects_of_another_controller_are_never_claimed() {
        let owner = meta("o", None);
        let theirs = meta("p", Some("x"));
        assert_eq!(claim_decision(&owner, &theirs, true), Claim::Ignore);
        assert_eq!(claim_decision(&owner, &theirs, false), Claim::Ignore);
    }
}
