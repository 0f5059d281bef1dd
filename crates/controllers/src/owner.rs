//! Ownership between controllers and what they manage (upstream
//! `ControllerRefManager`): the controller reference, label selectors,
//! adoption of orphans and release of objects that stopped matching, as
//! strategic-merge patches that name the object's uid so a patch never lands
//! on a re-created namesake.

use std::collections::BTreeMap;

use api::LabelSelector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector as MetaSelector, ObjectMeta, OwnerReference,
};
use kube::api::{Api, Patch, PatchParams};
use kube::Resource;
use serde::de::DeserializeOwned;
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
    let meta = obj.meta();
    let patch = json!({
        "metadata": {
            "ownerReferences": [controller_ref(owner)],
            "uid": meta.uid,
        }
    });
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
    let meta = obj.meta();
    let patch = json!({
        "metadata": {
            "ownerReferences": [{ "$patch": "delete", "uid": owner_uid }],
            "uid": meta.uid,
        }
    });
    api.patch(
        meta.name.as_deref().unwrap_or_default(),
        &PatchParams::default(),
        &Patch::Strategic(&patch),
    )
    .await
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
