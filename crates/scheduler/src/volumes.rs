//! VolumeBinding and VolumeRestrictions, as far as the API objects tell:
//! every claim a pod uses must exist; a claim bound to a volume with node
//! affinity pins the pod to matching nodes; an unbound claim of a
//! `WaitForFirstConsumer` class is decided on the chosen node (a matching
//! Available local volume there, or a provisioner allowed in that
//! topology) and the claim is then annotated with
//! `volume.kubernetes.io/selected-node` before the pod is bound, as
//! upstream's volume binder does; an unbound claim of an immediate class
//! keeps the pod pending; a `ReadWriteOncePod` claim in use elsewhere
//! blocks the pod.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::algorithm::Objects;
use crate::filters::{node_selector_matches, Status};
use crate::resources::Resources;
use crate::snapshot::{NodeInfo, Snapshot};

pub const BINDING: &str = "VolumeBinding";
pub const RESTRICTIONS: &str = "VolumeRestrictions";
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
pub const ERR_NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
pub const ERR_BIND_CONFLICT: &str = "node(s) didn't find available persistent volumes to bind";
pub const ERR_UNBOUND_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";
pub const ERR_READ_WRITE_ONCE_POD: &str =
    "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode";
const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";

/// The claims of one pod, sorted by what the filter must check.
#[derive(Default)]
pub struct State {
    /// Volumes of bound claims.
    bound: Vec<Arc<PersistentVolume>>,
    /// Unbound claims waiting for their first consumer, with their class.
    delayed: Vec<(Arc<PersistentVolumeClaim>, Option<Arc<StorageClass>>)>,
}

/// What to do before binding the pod.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Actions {
    /// Claims (namespace, name) to annotate with the selected node.
    pub select_node: Vec<(String, String)>,
}

/// The claim names a pod's volumes use (ephemeral volumes use
/// `<pod>-<volume>`).
pub fn claim_names(pod: &Pod) -> Vec<String> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| {
            if let Some(c) = &v.persistent_volume_claim {
                Some(c.claim_name.clone())
            } else {
                v.ephemeral
                    .as_ref()
                    .map(|_| format!("{pod_name}-{}", v.name))
            }
        })
        .collect()
}

fn access_modes(pvc: &PersistentVolumeClaim) -> &[String] {
    pvc.spec
        .as_ref()
        .and_then(|s| s.access_modes.as_deref())
        .unwrap_or_default()
}

pub fn prefilter(pod: &Pod, snapshot: &Snapshot, objects: &dyn Objects) -> Result<State, Status> {
    let names = claim_names(pod);
    let mut state = State::default();
    if names.is_empty() {
        return Ok(state);
    }
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let mut immediate_unbound = false;
    for name in &names {
        let Some(pvc) = objects.pvc(ns, name) else {
            return Err(Status::unresolvable(
                BINDING,
                format!("persistentvolumeclaim \"{name}\" not found"),
            ));
        };
        if pvc.metadata.deletion_timestamp.is_some() {
            return Err(Status::unresolvable(
                BINDING,
                format!("persistentvolumeclaim \"{name}\" is being deleted"),
            ));
        }
        if access_modes(&pvc).iter().any(|m| m == "ReadWriteOncePod") {
            let in_use = snapshot.pods().any(|(_, p)| {
                p.namespace() == ns
                    && p.key.name != pod.metadata.name.as_deref().unwrap_or_default()
                    && claim_names(&p.pod).contains(name)
            });
            if in_use {
                return Err(Status::unresolvable(RESTRICTIONS, ERR_READ_WRITE_ONCE_POD));
            }
        }
        let volume_name = pvc
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .unwrap_or_default();
        if !volume_name.is_empty() {
            let Some(pv) = objects.pv(&volume_name) else {
                return Err(Status::unresolvable(
                    BINDING,
                    format!("pvc {ns}/{name} is bound to non-existent pv {volume_name}"),
                ));
            };
            state.bound.push(pv);
            continue;
        }
        let class_name = pvc
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.clone())
            .unwrap_or_default();
        let class = (!class_name.is_empty())
            .then(|| objects.storage_class(&class_name))
            .flatten();
        let delayed = class
            .as_ref()
            .and_then(|c| c.volume_binding_mode.as_deref())
            == Some("WaitForFirstConsumer");
        if delayed {
            state.delayed.push((pvc, class));
        } else {
            immediate_unbound = true;
        }
    }
    if immediate_unbound {
        return Err(Status::unresolvable(BINDING, ERR_UNBOUND_IMMEDIATE));
    }
    Ok(state)
}

fn pv_fits_node(pv: &PersistentVolume, node: &NodeInfo) -> bool {
    pv.spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
        .is_none_or(|r| node_selector_matches(r, node))
}

/// An Available volume of the claim's class, big enough, with the access
/// modes, usable from `node`, not reserved for another claim.
fn static_match(
    pvc: &PersistentVolumeClaim,
    node: &NodeInfo,
    pvs: &[Arc<PersistentVolume>],
) -> bool {
    let spec = pvc.spec.as_ref();
    let class = spec
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or_default();
    let want = Resources::from_list(
        spec.and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref()),
    );
    let modes = access_modes(pvc);
    pvs.iter().any(|pv| {
        let Some(s) = pv.spec.as_ref() else {
            return false;
        };
        let available = pv
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_none_or(|p| p == "Available");
        let free = s.claim_ref.as_ref().is_none_or(|r| {
            r.name.as_deref() == pvc.metadata.name.as_deref()
                && r.namespace.as_deref() == pvc.metadata.namespace.as_deref()
        });
        let capacity = Resources::from_list(s.capacity.as_ref());
        available
            && free
            && s.storage_class_name.as_deref().unwrap_or_default() == class
            && capacity.scalar("storage") >= want.scalar("storage")
            && modes
                .iter()
                .all(|m| s.access_modes.iter().flatten().any(|x| x == m))
            && pv_fits_node(pv, node)
    })
}

fn provisioner_allows(class: &StorageClass, node: &NodeInfo) -> bool {
    let terms = class.allowed_topologies.as_deref().unwrap_or_default();
    terms.is_empty()
        || terms.iter().any(|t| {
            t.match_label_expressions.iter().flatten().all(|e| {
                node.label(&e.key)
                    .is_some_and(|v| e.values.iter().any(|x| x == v))
            })
        })
}

pub fn filter(state: &State, node: &NodeInfo, objects: &dyn Objects) -> Option<Status> {
    let mut reasons = Vec::new();
    if state.bound.iter().any(|pv| !pv_fits_node(pv, node)) {
        reasons.push(ERR_NODE_CONFLICT.to_string());
    }
    if !state.delayed.is_empty() {
        let mut pvs: Option<Vec<Arc<PersistentVolume>>> = None;
        let ok = state.delayed.iter().all(|(pvc, class)| {
            let provisioner = class
                .as_ref()
                .map(|c| c.provisioner.as_str())
                .unwrap_or(NO_PROVISIONER);
            let pvs = pvs.get_or_insert_with(|| objects.pvs());
            static_match(pvc, node, pvs)
                || (provisioner != NO_PROVISIONER
                    && class.as_ref().is_some_and(|c| provisioner_allows(c, node)))
        });
        if !ok {
            reasons.push(ERR_BIND_CONFLICT.to_string());
        }
    }
    (!reasons.is_empty()).then_some(Status {
        plugin: BINDING,
        reasons,
        unresolvable: true,
    })
}

pub fn actions(state: &State, node: &NodeInfo, _objects: &dyn Objects) -> Actions {
    let select_node = state
        .delayed
        .iter()
        .filter(|(pvc, _)| {
            pvc.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANN_SELECTED_NODE))
                != Some(&node.name)
        })
        .map(|(pvc, _)| {
            (
                pvc.metadata.namespace.clone().unwrap_or_default(),
                pvc.metadata.name.clone().unwrap_or_default(),
            )
        })
        .collect();
    Actions { select_node }
}

/// Carries out the volume actions before the pod is bound.
pub async fn apply(
    client: &kube::Client,
    _pod: &Pod,
    node: &str,
    actions: &Actions,
) -> Result<(), kube::Error> {
    for (ns, name) in &actions.select_node {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        let patch = json!({"metadata": {"annotations": {ANN_SELECTED_NODE: node}}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
