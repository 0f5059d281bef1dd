//! The PersistentVolume controller (upstream
//! `pkg/controller/volume/persistentvolume`, events from
//! `persistentvolume-controller`): binds claims to volumes, moves both
//! through their phases (volumes Available/Bound/Released/Failed, claims
//! Pending/Bound/Lost), reclaims volumes whose claim is gone (Retain keeps
//! them Released, Delete leaves provisioned volumes to their provisioner,
//! Recycle is not supported and fails the volume as upstream does without a
//! recycler) and asks provisioners for volumes (the claim's
//! `volume.kubernetes.io/storage-provisioner` annotation).
//!
//! Binding waits for the first consumer when the class says so: until the
//! scheduler names a node in `volume.kubernetes.io/selected-node`, only a
//! volume pre-bound to the claim is bound. A scheduler that binds the pod
//! without naming the node leaves the claim waiting forever upstream; here
//! the node of a scheduled pod that uses the claim is taken as selected.
//!
//! Submodules: [`binder`] (matching, no IO), [`protection`] (the
//! `kubernetes.io/pvc-protection` and `pv-protection` finalizers) and
//! [`local_path`] (the built-in `krate.io/local-path` provisioner).

pub mod binder;
pub mod local_path;
pub mod protection;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use self::binder::{
    claim_class, claim_key, claim_ref, find_best_match, is_bound_to_claim, NodeInfo,
    ANN_BETA_STORAGE_PROVISIONER, ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER, ANN_PROVISIONED_BY,
    ANN_SELECTED_NODE, ANN_STORAGE_PROVISIONER,
};
use crate::events::Recorder;
use crate::informer::{Change, Informer, Key};
use crate::queue::WorkQueue;
use crate::runner::{self, is_not_found, Action, Reconciler, Result};
use crate::Context;

const COMPONENT: &str = "persistentvolume-controller";
/// Upstream's `--pvclaimbinder-sync-period`: unbound claims and volumes are
/// looked at again this often.
const RESYNC: Duration = Duration::from_secs(15);
/// Pods indexed by the claims they use (`namespace/claim`).
pub(crate) const CLAIM_INDEX: &str = "persistent-volume-claims";
const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
const BETA_DEFAULT_CLASS_ANNOTATION: &str = "storageclass.beta.kubernetes.io/is-default-class";

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    start_binder(ctx, tasks);
    protection::start(ctx, tasks);
    local_path::start(ctx, tasks);
}

/// The claims a pod uses: its persistentVolumeClaim volumes and the
/// `<pod>-<volume>` claims of its ephemeral volumes.
pub(crate) fn pod_claims(pod: &Pod) -> Vec<String> {
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

pub(crate) fn index_pod_claims(pod: &Pod) -> Vec<String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    pod_claims(pod)
        .into_iter()
        .map(|c| format!("{ns}/{c}"))
        .collect()
}

fn annotation<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

fn volume_phase(v: &PersistentVolume) -> &str {
    v.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn claim_phase(c: &PersistentVolumeClaim) -> &str {
    c.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn volume_name(c: &PersistentVolumeClaim) -> &str {
    c.spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .unwrap_or("")
}

fn reclaim_policy(v: &PersistentVolume) -> &str {
    v.spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
        .unwrap_or("Retain")
}

/// Whether a class is marked default (GA or beta annotation).
pub(crate) fn is_default_class(class: &StorageClass) -> bool {
    [DEFAULT_CLASS_ANNOTATION, BETA_DEFAULT_CLASS_ANNOTATION]
        .iter()
        .any(|a| annotation(&class.metadata, a) == Some("true"))
}

fn start_binder(ctx: &Context, tasks: &mut JoinSet<()>) {
    let volumes = ctx.informers.get::<PersistentVolume>();
    let claims = ctx.informers.get::<PersistentVolumeClaim>();
    let classes = ctx.informers.get::<StorageClass>();
    let pods = ctx.informers.get::<Pod>();
    let nodes = ctx.informers.get::<Node>();
    pods.add_index(CLAIM_INDEX, index_pod_claims);
    let queue = WorkQueue::new();
    let controller = Arc::new(PersistentVolumeController {
        client: ctx.client.clone(),
        volumes: volumes.clone(),
        claims: claims.clone(),
        classes: classes.clone(),
        pods: pods.clone(),
        nodes: nodes.clone(),
        recorder: ctx.recorder(COMPONENT),
        queue: queue.clone(),
    });
    {
        let queue = queue.clone();
        claims.on_change(move |change| {
            let claim = change.object();
            queue.add(Key::of(claim.as_ref()));
            if let Change::Deleted(_) = change {
                let volume = volume_name(claim);
                if !volume.is_empty() {
                    queue.add(Key::cluster(volume));
                }
            }
        });
    }
    {
        let this = controller.clone();
        volumes.on_change(move |change| this.volume_changed(change));
    }
    {
        let this = controller.clone();
        classes.on_change(move |_| this.enqueue_unbound_claims());
    }
    {
        let this = controller.clone();
        pods.on_change(move |change| {
            let pod = change.object();
            let scheduled = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some();
            if matches!(change, Change::Deleted(_)) || !scheduled {
                return;
            }
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            for name in pod_claims(pod) {
                let key = Key::new(ns.clone(), name);
                if this
                    .claims
                    .get(&key)
                    .is_some_and(|c| annotation(&c.metadata, ANN_BIND_COMPLETED).is_none())
                {
                    this.queue.add(key);
                }
            }
        });
    }
    let synced = async move {
        volumes.wait_synced().await;
        claims.wait_synced().await;
        classes.wait_synced().await;
        pods.wait_synced().await;
        nodes.wait_synced().await;
    };
    // One worker, as upstream's binder: two claims never race for one volume.
    runner::spawn_when_synced(tasks, synced, controller, queue, 1);
}

pub struct PersistentVolumeController {
    client: kube::Client,
    volumes: Informer<PersistentVolume>,
    claims: Informer<PersistentVolumeClaim>,
    classes: Informer<StorageClass>,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    recorder: Recorder,
    queue: WorkQueue<Key>,
}

#[async_trait::async_trait]
impl Reconciler for PersistentVolumeController {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        if key.namespace.is_empty() {
            let Some(volume) = self.volumes.get(key) else {
                return Ok(Action::Done);
            };
            self.sync_volume(&volume).await
        } else {
            let Some(claim) = self.claims.get(key) else {
                return Ok(Action::Done);
            };
            if annotation(&claim.metadata, ANN_BIND_COMPLETED).is_some() {
                self.sync_bound_claim(&claim).await
            } else {
                self.sync_unbound_claim(&claim).await
            }
        }
    }
}

impl PersistentVolumeController {
    fn volume_changed(&self, change: &Change<'_, PersistentVolume>) {
        let volume = change.object();
        self.queue.add(Key::of(volume.as_ref()));
        if let Some(r) = claim_ref(volume) {
            if let (Some(ns), Some(name)) = (&r.namespace, &r.name) {
                self.queue.add(Key::new(ns.clone(), name.clone()));
            }
        }
        // A volume that became free may be what a waiting claim needs.
        let freed = match change {
            Change::Added(_) => true,
            Change::Updated { old, new } => {
                volume_phase(new) == "Available" && volume_phase(old) != "Available"
            }
            Change::Deleted(_) => false,
        };
        if freed {
            self.enqueue_unbound_claims();
        }
    }

    fn enqueue_unbound_claims(&self) {
        for claim in self.claims.list() {
            if annotation(&claim.metadata, ANN_BIND_COMPLETED).is_none() {
                self.queue.add(Key::of(claim.as_ref()));
            }
        }
    }

    fn volumes_api(&self) -> Api<PersistentVolume> {
        Api::all(self.client.clone())
    }

    fn claims_api(&self, claim: &PersistentVolumeClaim) -> Api<PersistentVolumeClaim> {
        Api::namespaced(
            self.client.clone(),
            claim.metadata.namespace.as_deref().unwrap_or_default(),
        )
    }

    // --- claims ---------------------------------------------------------

    async fn sync_unbound_claim(&self, claim: &PersistentVolumeClaim) -> Result<Action> {
        let wanted = volume_name(claim);
        if !wanted.is_empty() {
            return self.sync_claim_naming_volume(claim, wanted).await;
        }
        let delay_binding = self.delay_binding(claim);
        let node = if delay_binding {
            self.selected_node(claim).await?
        } else {
            None
        };
        let volumes = self.volumes.list();
        let found =
            find_best_match(claim, &volumes, node.as_ref(), delay_binding).map_err(|e| {
                runner::Error::Other(format!(
                    "error finding PV for claim {:?}: {e}",
                    claim_key(claim)
                ))
            })?;
        if let Some(volume) = found {
            self.bind(&volume, claim).await?;
            return Ok(Action::Done);
        }
        if self.assign_default_class(claim).await? {
            return Ok(Action::Done);
        }
        if delay_binding && node.is_none() {
            self.emit_waiting_for_consumer(claim);
        } else if !claim_class(claim).is_empty() {
            self.provision(claim).await?;
        } else {
            self.recorder.normal(
                claim,
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set",
            );
        }
        self.update_claim_status(claim, "Pending", None).await?;
        Ok(Action::RequeueAfter(RESYNC))
    }

    /// The claim names its volume in `spec.volumeName`.
    async fn sync_claim_naming_volume(
        &self,
        claim: &PersistentVolumeClaim,
        wanted: &str,
    ) -> Result<Action> {
        let Some(volume) = self.volumes.get(&Key::cluster(wanted)) else {
            // The volume may appear later; keep waiting.
            self.update_claim_status(claim, "Pending", None).await?;
            return Ok(Action::RequeueAfter(RESYNC));
        };
        if claim_ref(&volume).is_none() {
            if let Err(why) = binder::check_volume_satisfies_claim(&volume, claim) {
                self.recorder.warning(
                    claim,
                    "VolumeMismatch",
                    format!("Cannot bind to requested volume {wanted:?}: {why}"),
                );
                self.update_claim_status(claim, "Pending", None).await?;
                return Ok(Action::RequeueAfter(RESYNC));
            }
            self.bind(&volume, claim).await?;
            return Ok(Action::Done);
        }
        if is_bound_to_claim(&volume, claim) {
            self.bind(&volume, claim).await?;
            return Ok(Action::Done);
        }
        if annotation(&claim.metadata, ANN_BOUND_BY_CONTROLLER).is_none() {
            // The user asked for a volume another claim holds: wait.
            self.update_claim_status(claim, "Pending", None).await?;
            return Ok(Action::RequeueAfter(RESYNC));
        }
        let holder = claim_ref(&volume)
            .map(|r| {
                format!(
                    "{}/{}",
                    r.namespace.as_deref().unwrap_or_default(),
                    r.name.as_deref().unwrap_or_default()
                )
            })
            .unwrap_or_default();
        Err(runner::Error::Other(format!(
            "Invalid binding of claim {:?} to volume {wanted:?}: volume already claimed by {holder:?}",
            claim_key(claim)
        )))
    }

    async fn sync_bound_claim(&self, claim: &PersistentVolumeClaim) -> Result<Action> {
        let wanted = volume_name(claim);
        if wanted.is_empty() {
            self.claim_lost(
                claim,
                "ClaimLost",
                "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!",
            )
            .await?;
            return Ok(Action::Done);
        }
        let Some(volume) = self.volumes.get(&Key::cluster(wanted)) else {
            // The cache may lag behind a volume created just now.
            match self.volumes_api().get_opt(wanted).await? {
                Some(v) => {
                    self.bind(&v, claim).await?;
                }
                None => {
                    self.claim_lost(
                        claim,
                        "ClaimLost",
                        "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
                    )
                    .await?
                }
            }
            return Ok(Action::Done);
        };
        let bound_uid = claim_ref(&volume).map(|r| r.uid.clone().unwrap_or_default());
        match bound_uid {
            None => self.bind(&volume, claim).await?,
            Some(uid) if Some(uid.as_str()) == claim.metadata.uid.as_deref() => {
                self.bind(&volume, claim).await?
            }
            Some(_) => {
                self.claim_lost(
                    claim,
                    "ClaimMisbound",
                    "Two claims are bound to the same volume, this one is bound incorrectly",
                )
                .await?
            }
        }
        Ok(Action::Done)
    }

    async fn claim_lost(
        &self,
        claim: &PersistentVolumeClaim,
        reason: &str,
        message: &str,
    ) -> Result<()> {
        if claim_phase(claim) == "Lost" {
            return Ok(());
        }
        self.update_claim_status(claim, "Lost", None).await?;
        self.recorder.warning(claim, reason, message);
        Ok(())
    }

    /// Whether the claim's class binds only once a pod uses the claim
    /// (upstream's `IsDelayBindingMode`).
    fn delay_binding(&self, claim: &PersistentVolumeClaim) -> bool {
        let class = claim_class(claim);
        if class.is_empty() {
            return false;
        }
        self.classes
            .get(&Key::cluster(class))
            .and_then(|c| c.volume_binding_mode.clone())
            .as_deref()
            == Some("WaitForFirstConsumer")
    }

    /// The node the claim's first consumer runs on: the scheduler's
    /// `selected-node`, else (a scheduler that did not set it) the node of
    /// a scheduled pod that uses the claim, recorded on the claim.
    async fn selected_node(&self, claim: &PersistentVolumeClaim) -> Result<Option<NodeInfo>> {
        let name = match annotation(&claim.metadata, ANN_SELECTED_NODE) {
            Some(n) => n.to_string(),
            None => {
                let Some(node) = self.scheduled_consumer_node(claim) else {
                    return Ok(None);
                };
                let patch = json!({ "metadata": {
                    "resourceVersion": claim.metadata.resource_version,
                    "annotations": { ANN_SELECTED_NODE: node },
                } });
                self.claims_api(claim)
                    .patch(
                        claim.metadata.name.as_deref().unwrap_or_default(),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await?;
                node
            }
        };
        Ok(Some(self.node_info(&name)))
    }

    fn scheduled_consumer_node(&self, claim: &PersistentVolumeClaim) -> Option<String> {
        let key = Key::of(claim).to_string();
        let mut pods = self.pods.by_index(CLAIM_INDEX, &key);
        pods.sort_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
        });
        pods.iter()
            .filter(|p| crate::pod::is_active(p))
            .find_map(|p| p.spec.as_ref()?.node_name.clone())
    }

    fn node_info(&self, name: &str) -> NodeInfo {
        match self.nodes.get(&Key::cluster(name)) {
            Some(node) => NodeInfo {
                name: name.to_string(),
                labels: node.metadata.labels.clone().unwrap_or_default(),
            },
            None => NodeInfo {
                name: name.to_string(),
                labels: BTreeMap::from([("kubernetes.io/hostname".to_string(), name.to_string())]),
            },
        }
    }

    /// A claim created without a class while no default class existed gets
    /// the default class once there is one (upstream's retroactive default
    /// StorageClass assignment). Whether the claim was changed.
    async fn assign_default_class(&self, claim: &PersistentVolumeClaim) -> Result<bool> {
        if claim
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.as_ref())
            .is_some()
            || annotation(&claim.metadata, binder::ANN_BETA_CLASS).is_some()
        {
            return Ok(false);
        }
        let default = self
            .classes
            .list()
            .into_iter()
            .filter(|c| is_default_class(c))
            .max_by(|a, b| {
                // The newest; of two created in the same second, the first by name.
                a.metadata
                    .creation_timestamp
                    .cmp(&b.metadata.creation_timestamp)
                    .then_with(|| b.metadata.name.cmp(&a.metadata.name))
            });
        let Some(default) = default else {
            return Ok(false);
        };
        let patch = json!({
            "metadata": { "resourceVersion": claim.metadata.resource_version },
            "spec": { "storageClassName": default.metadata.name },
        });
        self.claims_api(claim)
            .patch(
                claim.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        Ok(true)
    }

    /// Upstream's `emitEventForUnboundDelayBindingClaim`.
    fn emit_waiting_for_consumer(&self, claim: &PersistentVolumeClaim) {
        let key = Key::of(claim).to_string();
        let mut waiting: Vec<String> = self
            .pods
            .by_index(CLAIM_INDEX, &key)
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none())
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        waiting.sort();
        match waiting.len() {
            0 => self.recorder.normal(
                claim,
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding",
            ),
            1 => self.recorder.normal(
                claim,
                "WaitForPodScheduled",
                format!("waiting for pod {} to be scheduled", waiting[0]),
            ),
            _ => self.recorder.normal(
                claim,
                "WaitForPodScheduled",
                format!("waiting for pods {} to be scheduled", waiting.join(",")),
            ),
        }
    }

    /// Asks the class's provisioner for a volume: every provisioner is
    /// external to this controller (upstream's
    /// `provisionClaimOperationExternal`), ours included.
    async fn provision(&self, claim: &PersistentVolumeClaim) -> Result<()> {
        let class_name = claim_class(claim);
        let Some(class) = self.classes.get(&Key::cluster(class_name)) else {
            self.recorder.warning(
                claim,
                "ProvisioningFailed",
                format!("storageclass.storage.k8s.io {class_name:?} not found"),
            );
            return Ok(());
        };
        let provisioner = class.provisioner.as_str();
        if provisioner.starts_with("kubernetes.io/") {
            // In-tree plugins are not built in; none matches.
            self.recorder.warning(
                claim,
                "ProvisioningFailed",
                format!("no volume plugin matched name: {provisioner}"),
            );
            return Ok(());
        }
        let has = |key: &str| annotation(&claim.metadata, key) == Some(provisioner);
        if !has(ANN_STORAGE_PROVISIONER) || !has(ANN_BETA_STORAGE_PROVISIONER) {
            let patch = json!({ "metadata": {
                "resourceVersion": claim.metadata.resource_version,
                "annotations": {
                    ANN_BETA_STORAGE_PROVISIONER: provisioner,
                    ANN_STORAGE_PROVISIONER: provisioner,
                },
            } });
            if let Err(e) = self
                .claims_api(claim)
                .patch(
                    claim.metadata.name.as_deref().unwrap_or_default(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                self.recorder.warning(
                    claim,
                    "ProvisioningFailed",
                    format!("Error saving claim: {e}"),
                );
                return Err(e.into());
            }
        }
        self.recorder.normal(
            claim,
            "ExternalProvisioning",
            format!(
                "Waiting for a volume to be created either by the external provisioner '{provisioner}' \
                 or manually by the system administrator. If volume creation is delayed, please verify \
                 that the provisioner is running and correctly registered."
            ),
        );
        Ok(())
    }

    /// Binds volume and claim, each half written only if it differs
    /// (upstream's `bind`): the volume's claimRef, the volume's phase, the
    /// claim's volumeName and annotations, the claim's status.
    async fn bind(&self, volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> Result<()> {
        let volume_name = volume.metadata.name.clone().unwrap_or_default();
        let mut volume = volume.clone();
        let r = claim_ref(&volume);
        let same_claim = r.is_some_and(|r| {
            r.name.as_deref() == claim.metadata.name.as_deref()
                && r.namespace.as_deref() == claim.metadata.namespace.as_deref()
                && r.uid.as_deref() == claim.metadata.uid.as_deref()
        });
        if !same_claim {
            let mut annotations = serde_json::Map::new();
            if !is_bound_to_claim(&volume, claim)
                && annotation(&volume.metadata, ANN_BOUND_BY_CONTROLLER).is_none()
            {
                annotations.insert(ANN_BOUND_BY_CONTROLLER.into(), json!("yes"));
            }
            let patch = json!({
                "metadata": { "resourceVersion": volume.metadata.resource_version, "annotations": annotations },
                "spec": { "claimRef": {
                    "kind": "PersistentVolumeClaim",
                    "apiVersion": "v1",
                    "namespace": claim.metadata.namespace,
                    "name": claim.metadata.name,
                    "uid": claim.metadata.uid,
                    "resourceVersion": claim.metadata.resource_version,
                } },
            });
            volume = self
                .volumes_api()
                .patch(&volume_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        self.update_volume_phase(&volume, "Bound", None).await?;

        let mut claim = claim.clone();
        let names_volume = claim.spec.as_ref().and_then(|s| s.volume_name.as_deref())
            == Some(volume_name.as_str());
        if !names_volume || annotation(&claim.metadata, ANN_BIND_COMPLETED).is_none() {
            let mut annotations = serde_json::Map::new();
            annotations.insert(ANN_BIND_COMPLETED.into(), json!("yes"));
            if !names_volume {
                annotations.insert(ANN_BOUND_BY_CONTROLLER.into(), json!("yes"));
            }
            let patch = json!({
                "metadata": { "resourceVersion": claim.metadata.resource_version, "annotations": annotations },
                "spec": { "volumeName": volume_name },
            });
            claim = self
                .claims_api(&claim)
                .patch(
                    claim.metadata.name.as_deref().unwrap_or_default(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
        }
        self.update_claim_status(&claim, "Bound", Some(&volume))
            .await?;
        Ok(())
    }

    /// Writes the claim's phase, with the volume's access modes and
    /// capacity (bound) or without them.
    async fn update_claim_status(
        &self,
        claim: &PersistentVolumeClaim,
        phase: &str,
        volume: Option<&PersistentVolume>,
    ) -> Result<()> {
        let status = claim.status.clone().unwrap_or_default();
        let (modes, capacity) = match volume.and_then(|v| v.spec.as_ref()) {
            Some(spec) => (spec.access_modes.clone(), spec.capacity.clone()),
            None => (None, None),
        };
        if status.phase.as_deref() == Some(phase)
            && status.access_modes == modes
            && status.capacity == capacity
        {
            return Ok(());
        }
        let patch =
            json!({ "status": { "phase": phase, "accessModes": modes, "capacity": capacity } });
        match self
            .claims_api(claim)
            .patch_status(
                claim.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn update_volume_phase(
        &self,
        volume: &PersistentVolume,
        phase: &str,
        message: Option<&str>,
    ) -> Result<()> {
        if volume_phase(volume) == phase {
            return Ok(());
        }
        let patch = json!({ "status": {
            "phase": phase,
            "message": message,
            "lastPhaseTransitionTime": Time(Utc::now()),
        } });
        self.volumes_api()
            .patch_status(
                volume.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        Ok(())
    }

    /// Sets the phase and, if it changed, records the event.
    async fn update_volume_phase_with_event(
        &self,
        volume: &PersistentVolume,
        phase: &str,
        reason: &str,
        message: &str,
    ) -> Result<()> {
        if volume_phase(volume) == phase {
            return Ok(());
        }
        self.update_volume_phase(volume, phase, Some(message))
            .await?;
        self.recorder.warning(volume, reason, message);
        Ok(())
    }

    // --- volumes --------------------------------------------------------

    async fn sync_volume(&self, volume: &PersistentVolume) -> Result<Action> {
        let Some(r) = claim_ref(volume) else {
            self.update_volume_phase(volume, "Available", None).await?;
            return Ok(Action::Done);
        };
        if r.uid.as_deref().unwrap_or_default().is_empty() {
            // Pre-bound by a user; the claim's sync finishes the binding.
            self.update_volume_phase(volume, "Available", None).await?;
            return Ok(Action::Done);
        }
        let ns = r.namespace.clone().unwrap_or_default();
        let name = r.name.clone().unwrap_or_default();
        let mut claim = self.claims.get(&Key::new(ns.clone(), name.clone()));
        if claim.is_none() {
            // The cache may not have a claim created a moment ago.
            let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
            claim = api.get_opt(&name).await?.map(Arc::new);
        }
        let claim = claim.filter(|c| c.metadata.uid == r.uid);
        let Some(claim) = claim else {
            // The claim is gone: release and reclaim.
            let mut volume = volume.clone();
            if !matches!(volume_phase(&volume), "Released" | "Failed") {
                self.update_volume_phase(&volume, "Released", None).await?;
                volume.status.get_or_insert_with(Default::default).phase = Some("Released".into());
            }
            self.reclaim_volume(&volume).await?;
            return Ok(Action::Done);
        };
        let claimed = volume_name(&claim);
        let this_name = volume.metadata.name.as_deref().unwrap_or_default();
        if claimed.is_empty() {
            // Half bound; the claim's sync completes it.
            self.queue.add(Key::of(claim.as_ref()));
            return Ok(Action::Done);
        }
        if claimed == this_name {
            self.update_volume_phase(volume, "Bound", None).await?;
            return Ok(Action::Done);
        }
        // The claim is bound to another volume.
        let provisioned = annotation(&volume.metadata, ANN_PROVISIONED_BY).is_some();
        if provisioned && reclaim_policy(volume) == "Delete" {
            let mut volume = volume.clone();
            if !matches!(volume_phase(&volume), "Released" | "Failed") {
                self.update_volume_phase(&volume, "Released", None).await?;
                volume.status.get_or_insert_with(Default::default).phase = Some("Released".into());
            }
            self.reclaim_volume(&volume).await?;
            return Ok(Action::Done);
        }
        self.unbind_volume(volume).await?;
        Ok(Action::Done)
    }

    /// Frees a volume: the controller's own binding is removed, a user's
    /// pre-binding keeps its claim name without the UID.
    async fn unbind_volume(&self, volume: &PersistentVolume) -> Result<()> {
        let patch = if annotation(&volume.metadata, ANN_BOUND_BY_CONTROLLER).is_some() {
            json!({
                "metadata": { "resourceVersion": volume.metadata.resource_version, "annotations": { ANN_BOUND_BY_CONTROLLER: null } },
                "spec": { "claimRef": null },
            })
        } else {
            json!({
                "metadata": { "resourceVersion": volume.metadata.resource_version },
                "spec": { "claimRef": { "uid": null } },
            })
        };
        let updated = self
            .volumes_api()
            .patch(
                volume.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        self.update_volume_phase(&updated, "Available", None).await
    }

    /// Upstream's `reclaimVolume` for a Released volume.
    async fn reclaim_volume(&self, volume: &PersistentVolume) -> Result<()> {
        match reclaim_policy(volume) {
            "Retain" => Ok(()),
            "Recycle" => {
                // Recycling (scrubbing the volume from a pod) is deprecated
                // upstream and not built here: no recycler matches.
                self.update_volume_phase_with_event(
                    volume,
                    "Failed",
                    "VolumeFailedRecycle",
                    "No recycler plugin found for the volume!",
                )
                .await
            }
            "Delete" => self.delete_volume(volume).await,
            _ => {
                self.update_volume_phase_with_event(
                    volume,
                    "Failed",
                    "VolumeUnknownReclaimPolicy",
                    "Volume has unrecognized PersistentVolumeReclaimPolicy",
                )
                .await
            }
        }
    }

    /// Deletes a Released volume whose policy is Delete. A volume from an
    /// external provisioner (every one but the in-tree `kubernetes.io/`
    /// ones) is left to that provisioner, which deletes the storage and the
    /// object. Of manually created volumes only hostPath ones under /tmp can
    /// be deleted, as upstream's hostPath deleter.
    async fn delete_volume(&self, volume: &PersistentVolume) -> Result<()> {
        if volume.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let name = volume.metadata.name.clone().unwrap_or_default();
        if let Some(provisioner) = annotation(&volume.metadata, ANN_PROVISIONED_BY) {
            if !provisioner.starts_with("kubernetes.io/") {
                return Ok(());
            }
        }
        let result = match volume.spec.as_ref().and_then(|s| s.host_path.as_ref()) {
            Some(hp) => {
                let path = hp.path.as_str();
                if path.len() > "/tmp/".len() && path.starts_with("/tmp/") {
                    match std::fs::remove_dir_all(path) {
                        Ok(()) => Ok(()),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                        Err(e) => Err(e.to_string()),
                    }
                } else {
                    Err(format!("host_path deleter only supports /tmp/.+ but received provided {path}"))
                }
            }
            None => Err(format!(
                "error getting deleter volume plugin for volume {name:?}: no deletable volume plugin matched"
            )),
        };
        match result {
            Ok(()) => {
                match self
                    .volumes_api()
                    .delete(&name, &DeleteParams::default())
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if is_not_found(&e) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(message) => {
                self.update_volume_phase_with_event(
                    volume,
                    "Failed",
                    "VolumeFailedDelete",
                    &message,
                )
                .await
            }
        }
    }
}

/// A merge patch that sets `finalizers` on an object, guarded by its
/// resourceVersion so it never overwrites a newer list.
pub(crate) fn finalizers_patch(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    finalizers: Vec<String>,
) -> Value {
    json!({ "metadata": { "resourceVersion": meta.resource_version, "finalizers": finalizers } })
}
