//! Storage object in-use protection (upstream `pvcprotection` and
//! `pvprotection`): a claim keeps its `kubernetes.io/pvc-protection`
//! finalizer while a scheduled pod uses it, a volume keeps
//! `kubernetes.io/pv-protection` while it is Bound; once deleted and no
//! longer in use, the finalizer is removed and the object goes. Objects
//! without the finalizer (created before admission added it) get it.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use tokio::task::JoinSet;

use super::{finalizers_patch, index_pod_claims, CLAIM_INDEX};
use crate::informer::{Change, Informer, Key};
use crate::queue::WorkQueue;
use crate::runner::{self, is_not_found, Action, Reconciler, Result};
use crate::Context;

pub const PVC_PROTECTION_FINALIZER: &str = "kubernetes.io/pvc-protection";
pub const PV_PROTECTION_FINALIZER: &str = "kubernetes.io/pv-protection";

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    start_claims(ctx, tasks);
    start_volumes(ctx, tasks);
}

fn has_finalizer(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    f: &str,
) -> bool {
    meta.finalizers.iter().flatten().any(|x| x == f)
}

/// Being deleted and still holding the finalizer.
fn deletion_candidate(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    f: &str,
) -> bool {
    meta.deletion_timestamp.is_some() && has_finalizer(meta, f)
}

fn needs_finalizer(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    f: &str,
) -> bool {
    meta.deletion_timestamp.is_none() && !has_finalizer(meta, f)
}

fn with(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, f: &str) -> Vec<String> {
    let mut list = meta.finalizers.clone().unwrap_or_default();
    list.push(f.to_string());
    list
}

fn without(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    f: &str,
) -> Vec<String> {
    meta.finalizers
        .iter()
        .flatten()
        .filter(|x| x.as_str() != f)
        .cloned()
        .collect()
}

/// Whether a pod holds the claim (upstream's `podUsesPVC`): only scheduled
/// pods count, since a kubelet refuses to start a pod on a claim being
/// deleted; a pod already shut down (deleted with no grace left) no longer
/// holds the claim of its ephemeral volume.
pub fn pod_uses_claim(pod: &Pod, claim: &str) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    if spec.node_name.as_deref().unwrap_or_default().is_empty() {
        return false;
    }
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    let shut_down = pod.metadata.deletion_timestamp.is_some()
        && pod.metadata.deletion_grace_period_seconds == Some(0);
    spec.volumes.iter().flatten().any(|v| {
        v.persistent_volume_claim
            .as_ref()
            .is_some_and(|c| c.claim_name == claim)
            || (!shut_down && v.ephemeral.is_some() && format!("{pod_name}-{}", v.name) == claim)
    })
}

// --- claims ------------------------------------------------------------------

fn start_claims(ctx: &Context, tasks: &mut JoinSet<()>) {
    let claims = ctx.informers.get::<PersistentVolumeClaim>();
    let pods = ctx.informers.get::<Pod>();
    pods.add_index(CLAIM_INDEX, index_pod_claims);
    let queue = WorkQueue::new();
    {
        let queue = queue.clone();
        claims.on_change(move |change| {
            let meta = &change.object().metadata;
            if !matches!(change, Change::Deleted(_))
                && (deletion_candidate(meta, PVC_PROTECTION_FINALIZER)
                    || needs_finalizer(meta, PVC_PROTECTION_FINALIZER))
            {
                queue.add(Key::of(change.object().as_ref()));
            }
        });
    }
    {
        let queue = queue.clone();
        let claims = claims.clone();
        pods.on_change(move |change| {
            // A pod that goes away or finishes may release a claim being deleted.
            for value in index_pod_claims(change.object()) {
                let (ns, name) = value.split_once('/').unwrap_or_default();
                let key = Key::new(ns, name);
                if claims
                    .get(&key)
                    .is_some_and(|c| c.metadata.deletion_timestamp.is_some())
                {
                    queue.add(key);
                }
            }
        });
    }
    let controller = Arc::new(ClaimProtection {
        client: ctx.client.clone(),
        claims: claims.clone(),
        pods: pods.clone(),
    });
    tasks.spawn(async move {
        claims.wait_synced().await;
        pods.wait_synced().await;
        let mut workers = JoinSet::new();
        runner::spawn(controller, queue, 1, &mut workers);
        while workers.join_next().await.is_some() {}
    });
}

pub struct ClaimProtection {
    client: kube::Client,
    claims: Informer<PersistentVolumeClaim>,
    pods: Informer<Pod>,
}

#[async_trait::async_trait]
impl Reconciler for ClaimProtection {
    fn name(&self) -> &'static str {
        "pvc-protection-controller"
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let Some(claim) = self.claims.get(key) else {
            return Ok(Action::Done);
        };
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &key.namespace);
        let meta = &claim.metadata;
        let patch = if deletion_candidate(meta, PVC_PROTECTION_FINALIZER) {
            if self.in_use(key).await? {
                return Ok(Action::Done);
            }
            finalizers_patch(meta, without(meta, PVC_PROTECTION_FINALIZER))
        } else if needs_finalizer(meta, PVC_PROTECTION_FINALIZER) {
            finalizers_patch(meta, with(meta, PVC_PROTECTION_FINALIZER))
        } else {
            return Ok(Action::Done);
        };
        match api
            .patch(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(Action::Done),
            Err(e) if is_not_found(&e) => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }
}

impl ClaimProtection {
    /// The cache first; if it shows no user, the API itself, so a pod the
    /// cache has not seen yet still holds the claim.
    async fn in_use(&self, key: &Key) -> Result<bool> {
        let index = key.to_string();
        if self
            .pods
            .by_index(CLAIM_INDEX, &index)
            .iter()
            .any(|p| pod_uses_claim(p, &key.name))
        {
            return Ok(true);
        }
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &key.namespace);
        let live = pods.list(&ListParams::default()).await?;
        Ok(live.items.iter().any(|p| pod_uses_claim(p, &key.name)))
    }
}

// --- volumes -----------------------------------------------------------------

fn start_volumes(ctx: &Context, tasks: &mut JoinSet<()>) {
    let volumes = ctx.informers.get::<PersistentVolume>();
    let queue = WorkQueue::new();
    {
        let queue = queue.clone();
        volumes.on_change(move |change| {
            let meta = &change.object().metadata;
            if !matches!(change, Change::Deleted(_))
                && (deletion_candidate(meta, PV_PROTECTION_FINALIZER)
                    || needs_finalizer(meta, PV_PROTECTION_FINALIZER))
            {
                queue.add(Key::of(change.object().as_ref()));
            }
        });
    }
    let controller = Arc::new(VolumeProtection {
        client: ctx.client.clone(),
        volumes: volumes.clone(),
    });
    tasks.spawn(async move {
        volumes.wait_synced().await;
        let mut workers = JoinSet::new();
        runner::spawn(controller, queue, 1, &mut workers);
        while workers.join_next().await.is_some() {}
    });
}

pub struct VolumeProtection {
    client: kube::Client,
    volumes: Informer<PersistentVolume>,
}

#[async_trait::async_trait]
impl Reconciler for VolumeProtection {
    fn name(&self) -> &'static str {
        "pv-protection-controller"
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let Some(volume) = self.volumes.get(key) else {
            return Ok(Action::Done);
        };
        let meta = &volume.metadata;
        let patch = if deletion_candidate(meta, PV_PROTECTION_FINALIZER) {
            // Upstream's `isBeingUsed`: a Bound volume is in use.
            let bound = volume.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
            if bound {
                return Ok(Action::Done);
            }
            finalizers_patch(meta, without(meta, PV_PROTECTION_FINALIZER))
        } else if needs_finalizer(meta, PV_PROTECTION_FINALIZER) {
            finalizers_patch(meta, with(meta, PV_PROTECTION_FINALIZER))
        } else {
            return Ok(Action::Done);
        };
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        match api
            .patch(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(Action::Done),
            Err(e) if is_not_found(&e) => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(extra: serde_json::Value) -> Pod {
        let mut v = json!({
            "metadata": { "name": "web-0", "namespace": "default" },
            "spec": { "containers": [{ "name": "c" }], "volumes": [
                { "name": "data", "persistentVolumeClaim": { "claimName": "data" } },
                { "name": "scratch", "ephemeral": { "volumeClaimTemplate": { "spec": {} } } },
            ] },
        });
        if let (Some(a), serde_json::Value::Object(b)) = (v.as_object_mut(), extra) {
            for (k, x) in b {
                if let (Some(serde_json::Value::Object(inner)), serde_json::Value::Object(add)) =
                    (a.get_mut(&k), x.clone())
                {
                    inner.extend(add);
                } else {
                    a.insert(k, x);
                }
            }
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_a_scheduled_pod_holds_its_claims_and_a_shut_down_one_not_its_ephemeral_claim() {
        assert!(!pod_uses_claim(&pod(json!({})), "data"));
        let scheduled = pod(json!({ "spec": { "nodeName": "n1" } }));
        assert!(pod_uses_claim(&scheduled, "data"));
        assert!(pod_uses_claim(&scheduled, "web-0-scratch"));
        assert!(!pod_uses_claim(&scheduled, "other"));
        let gone = pod(
            json!({ "spec": { "nodeName": "n1" }, "metadata": { "deletionTimestamp": "2024-01-01T00:00:00Z", "deletionGracePeriodSeconds": 0 } }),
        );
        assert!(pod_uses_claim(&gone, "data"));
        assert!(!pod_uses_claim(&gone, "web-0-scratch"));
    }
}
