//! The built-in `krate.io/local-path` provisioner, an external provisioner
//! in upstream's sense (as k3s's `rancher.io/local-path`): it creates a
//! volume for each claim the PersistentVolume controller hands it (the
//! claim's `volume.kubernetes.io/storage-provisioner` annotation names it),
//! on the node the scheduler selected: a directory
//! `<local_path_root>/pvc-<claim uid>_<namespace>_<claim>` and a
//! PersistentVolume `pvc-<claim uid>` of type hostPath (or `local`, class
//! parameter `volumeType: local`) with nodeAffinity to that node, pre-bound
//! to the claim. When such a volume is Released and its policy is Delete,
//! it removes the directory and the volume.
//!
//! Directories are made on this machine; for simulated nodes that is where
//! they would be.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, LocalVolumeSource, NodeSelector, NodeSelectorRequirement,
    NodeSelectorTerm, ObjectReference, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeSpec, VolumeNodeAffinity,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use tokio::task::JoinSet;

use super::binder::{
    claim_class, claim_key, ANN_BETA_STORAGE_PROVISIONER, ANN_BIND_COMPLETED, ANN_PROVISIONED_BY,
    ANN_SELECTED_NODE, ANN_STORAGE_PROVISIONER,
};
use crate::events::Recorder;
use crate::informer::{Informer, Key};
use crate::queue::WorkQueue;
use crate::runner::{self, is_conflict, is_not_found, Action, Reconciler, Result};
use crate::Context;

pub const PROVISIONER: &str = "krate.io/local-path";
const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let claims = ctx.informers.get::<PersistentVolumeClaim>();
    let volumes = ctx.informers.get::<PersistentVolume>();
    let classes = ctx.informers.get::<StorageClass>();
    let nodes = ctx.informers.get::<Node>();
    let queue = WorkQueue::new();
    {
        let queue = queue.clone();
        claims.on_change(move |change| {
            if wants_us(change.object()) {
                queue.add(Key::of(change.object().as_ref()));
            }
        });
    }
    {
        let queue = queue.clone();
        volumes.on_change(move |change| {
            let v = change.object();
            let ours = v
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANN_PROVISIONED_BY))
                .map(String::as_str)
                == Some(PROVISIONER);
            if ours {
                queue.add(Key::of(v.as_ref()));
            }
        });
    }
    let controller = Arc::new(LocalPathProvisioner {
        client: ctx.client.clone(),
        root: ctx.options.local_path_root.clone(),
        claims: claims.clone(),
        volumes: volumes.clone(),
        classes: classes.clone(),
        nodes: nodes.clone(),
        recorder: ctx.recorder(PROVISIONER),
    });
    tasks.spawn(async move {
        claims.wait_synced().await;
        volumes.wait_synced().await;
        classes.wait_synced().await;
        nodes.wait_synced().await;
        let mut workers = JoinSet::new();
        runner::spawn(controller, queue, 2, &mut workers);
        while workers.join_next().await.is_some() {}
    });
}

/// A claim handed to this provisioner and not bound yet.
fn wants_us(claim: &PersistentVolumeClaim) -> bool {
    let a = claim.metadata.annotations.as_ref();
    let get = |k: &str| a.and_then(|a| a.get(k)).map(String::as_str);
    let asked = get(ANN_STORAGE_PROVISIONER) == Some(PROVISIONER)
        || get(ANN_BETA_STORAGE_PROVISIONER) == Some(PROVISIONER);
    asked
        && get(ANN_BIND_COMPLETED).is_none()
        && claim.metadata.deletion_timestamp.is_none()
        && claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .unwrap_or_default()
            .is_empty()
}

/// The volume directory of a claim.
pub fn volume_dir(root: &Path, claim: &PersistentVolumeClaim) -> PathBuf {
    root.join(format!(
        "pvc-{}_{}_{}",
        claim.metadata.uid.as_deref().unwrap_or_default(),
        claim.metadata.namespace.as_deref().unwrap_or_default(),
        claim.metadata.name.as_deref().unwrap_or_default(),
    ))
}

/// The PersistentVolume for `claim` of `class` on the node whose hostname
/// label is `hostname`, its storage at `path`.
pub fn volume_for(
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    hostname: &str,
    path: &Path,
) -> PersistentVolume {
    let spec = claim.spec.clone().unwrap_or_default();
    let storage = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .cloned()
        .unwrap_or_else(|| Quantity("0".into()));
    let path = path.to_string_lossy().into_owned();
    let local = class
        .parameters
        .as_ref()
        .and_then(|p| p.get("volumeType"))
        .is_some_and(|t| t.eq_ignore_ascii_case("local"));
    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(format!(
                "pvc-{}",
                claim.metadata.uid.as_deref().unwrap_or_default()
            )),
            annotations: Some(BTreeMap::from([
                (ANN_PROVISIONED_BY.to_string(), PROVISIONER.to_string()),
                (ANN_SELECTED_NODE.to_string(), hostname.to_string()),
            ])),
            ..Default::default()
        },
        spec: Some(PersistentVolumeSpec {
            capacity: Some(BTreeMap::from([("storage".to_string(), storage)])),
            access_modes: spec.access_modes.clone(),
            persistent_volume_reclaim_policy: Some(
                class
                    .reclaim_policy
                    .clone()
                    .unwrap_or_else(|| "Delete".into()),
            ),
            storage_class_name: class.metadata.name.clone(),
            mount_options: class.mount_options.clone(),
            volume_mode: spec.volume_mode.clone(),
            claim_ref: Some(ObjectReference {
                kind: Some("PersistentVolumeClaim".into()),
                api_version: Some("v1".into()),
                namespace: claim.metadata.namespace.clone(),
                name: claim.metadata.name.clone(),
                uid: claim.metadata.uid.clone(),
                resource_version: claim.metadata.resource_version.clone(),
                ..Default::default()
            }),
            host_path: (!local).then(|| HostPathVolumeSource {
                path: path.clone(),
                type_: Some("DirectoryOrCreate".into()),
            }),
            local: local.then(|| LocalVolumeSource {
                path: path.clone(),
                fs_type: None,
            }),
            node_affinity: Some(VolumeNodeAffinity {
                required: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: HOSTNAME_LABEL.into(),
                            operator: "In".into(),
                            values: Some(vec![hostname.to_string()]),
                        }]),
                        match_fields: None,
                    }],
                }),
            }),
            ..Default::default()
        }),
        status: None,
    }
}

/// The directory of one of our volumes, if it is a volume directory under
/// `root` (never anything else is removed).
pub fn owned_dir(root: &Path, volume: &PersistentVolume) -> Option<PathBuf> {
    let spec = volume.spec.as_ref()?;
    let path = spec
        .host_path
        .as_ref()
        .map(|h| h.path.as_str())
        .or(spec.local.as_ref().map(|l| l.path.as_str()))?;
    let path = PathBuf::from(path);
    let name = path.file_name()?.to_str()?;
    (path.parent() == Some(root) && name.starts_with("pvc-")).then_some(path)
}

pub struct LocalPathProvisioner {
    client: kube::Client,
    root: PathBuf,
    claims: Informer<PersistentVolumeClaim>,
    volumes: Informer<PersistentVolume>,
    classes: Informer<StorageClass>,
    nodes: Informer<Node>,
    recorder: Recorder,
}

#[async_trait::async_trait]
impl Reconciler for LocalPathProvisioner {
    fn name(&self) -> &'static str {
        PROVISIONER
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        if key.namespace.is_empty() {
            match self.volumes.get(key) {
                Some(v) => self.sync_volume(&v).await,
                None => Ok(Action::Done),
            }
        } else {
            match self.claims.get(key) {
                Some(c) if wants_us(&c) => self.provision(&c).await,
                _ => Ok(Action::Done),
            }
        }
    }
}

impl LocalPathProvisioner {
    async fn provision(&self, claim: &PersistentVolumeClaim) -> Result<Action> {
        let name = format!("pvc-{}", claim.metadata.uid.as_deref().unwrap_or_default());
        if self.volumes.get(&Key::cluster(&name)).is_some() {
            return Ok(Action::Done);
        }
        let class_name = claim_class(claim).to_string();
        let Some(class) = self.classes.get(&Key::cluster(&class_name)) else {
            return Ok(Action::Done);
        };
        if class.provisioner != PROVISIONER {
            return Ok(Action::Done);
        }
        let selected = claim
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANN_SELECTED_NODE))
            .cloned();
        let Some(node) = selected else {
            if class.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer") {
                // The scheduler has not chosen a node yet.
                return Ok(Action::Done);
            }
            self.recorder.warning(
                claim,
                "ProvisioningFailed",
                format!("failed to provision volume with StorageClass {class_name:?}: configuration error, no node was specified"),
            );
            return Ok(Action::Done);
        };
        self.recorder.normal(
            claim,
            "Provisioning",
            format!(
                "External provisioner is provisioning volume for claim {:?}",
                claim_key(claim)
            ),
        );
        let hostname = self
            .nodes
            .get(&Key::cluster(&node))
            .and_then(|n| n.metadata.labels.as_ref()?.get(HOSTNAME_LABEL).cloned())
            .unwrap_or(node);
        let dir = volume_dir(&self.root, claim);
        if let Err(e) = make_dir(&dir) {
            self.recorder.warning(
                claim,
                "ProvisioningFailed",
                format!(
                    "failed to provision volume with StorageClass {class_name:?}: creating {}: {e}",
                    dir.display()
                ),
            );
            return Err(runner::Error::Other(format!(
                "creating {}: {e}",
                dir.display()
            )));
        }
        let volume = volume_for(claim, &class, &hostname, &dir);
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        match api.create(&PostParams::default(), &volume).await {
            Ok(_) => {}
            Err(e) if is_conflict(&e) => return Ok(Action::Done),
            Err(e) => {
                self.recorder.warning(
                    claim,
                    "ProvisioningFailed",
                    format!("failed to provision volume with StorageClass {class_name:?}: {e}"),
                );
                return Err(e.into());
            }
        }
        self.recorder.normal(
            claim,
            "ProvisioningSucceeded",
            format!("Successfully provisioned volume {name}"),
        );
        Ok(Action::Done)
    }

    /// Deletes a Released volume of ours whose policy is Delete.
    async fn sync_volume(&self, volume: &PersistentVolume) -> Result<Action> {
        let spec = volume.spec.as_ref();
        let released = volume.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
        let delete =
            spec.and_then(|s| s.persistent_volume_reclaim_policy.as_deref()) == Some("Delete");
        if !released || !delete || volume.metadata.deletion_timestamp.is_some() {
            return Ok(Action::Done);
        }
        let name = volume.metadata.name.clone().unwrap_or_default();
        if let Some(dir) = owned_dir(&self.root, volume) {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    self.recorder.warning(
                        volume,
                        "VolumeFailedDelete",
                        format!("removing {}: {e}", dir.display()),
                    );
                    return Err(runner::Error::Other(format!(
                        "removing {}: {e}",
                        dir.display()
                    )));
                }
            }
        }
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => Ok(Action::Done),
            Err(e) if is_not_found(&e) => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }
}

fn make_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    // Any container user may write its volume, as local-path volumes are.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claim() -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": { "name": "data", "namespace": "web", "uid": "1234", "resourceVersion": "7" },
            "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "2Gi" } }, "storageClassName": "local-path" },
        }))
        .unwrap()
    }

    fn class(extra: serde_json::Value) -> StorageClass {
        let mut v = json!({ "metadata": { "name": "local-path" }, "provisioner": PROVISIONER, "reclaimPolicy": "Delete" });
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_provisioned_volume_is_pre_bound_to_its_claim_on_the_selected_node() {
        let root = Path::new("/data/storage");
        let dir = volume_dir(root, &claim());
        assert_eq!(dir, Path::new("/data/storage/pvc-1234_web_data"));
        let v = volume_for(&claim(), &class(json!({})), "sim-node-1", &dir);
        assert_eq!(v.metadata.name.as_deref(), Some("pvc-1234"));
        let spec = v.spec.as_ref().unwrap();
        assert_eq!(spec.capacity.as_ref().unwrap()["storage"].0, "2Gi");
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Delete")
        );
        assert_eq!(spec.storage_class_name.as_deref(), Some("local-path"));
        assert_eq!(
            spec.claim_ref.as_ref().unwrap().uid.as_deref(),
            Some("1234")
        );
        assert_eq!(
            spec.host_path.as_ref().unwrap().path,
            "/data/storage/pvc-1234_web_data"
        );
        let term = &spec
            .node_affinity
            .as_ref()
            .unwrap()
            .required
            .as_ref()
            .unwrap()
            .node_selector_terms[0];
        assert_eq!(
            term.match_expressions.as_ref().unwrap()[0]
                .values
                .as_ref()
                .unwrap(),
            &["sim-node-1".to_string()]
        );
        assert_eq!(owned_dir(root, &v), Some(dir.clone()));
        let local = volume_for(
            &claim(),
            &class(json!({ "parameters": { "volumeType": "local" }, "reclaimPolicy": "Retain" })),
            "n",
            &dir,
        );
        assert!(local.spec.as_ref().unwrap().local.is_some());
        assert_eq!(
            local
                .spec
                .as_ref()
                .unwrap()
                .persistent_volume_reclaim_policy
                .as_deref(),
            Some("Retain")
        );
    }

    #[test]
    fn only_volume_directories_under_the_root_are_ever_removed() {
        let root = Path::new("/data/storage");
        let mut v = volume_for(&claim(), &class(json!({})), "n", Path::new("/etc"));
        assert_eq!(owned_dir(root, &v), None);
        v.spec.as_mut().unwrap().host_path.as_mut().unwrap().path = "/data/storage/other".into();
        assert_eq!(owned_dir(root, &v), None);
        v.spec.as_mut().unwrap().host_path.as_mut().unwrap().path =
            "/data/storage/pvc-x/../..".into();
        assert_eq!(owned_dir(root, &v), None);
    }
}
