//! Pod volumes (upstream's volume manager and in-tree plugins, pkg/volume/*):
//! everything a pod mounts lives under `<root>/<pod-uid>/volumes/<plugin>/
//! <volume>`, with plugin names escaped as upstream (`kubernetes.io~empty-dir`).
//!
//! - emptyDir: a directory, or a tmpfs (`medium: Memory`, sized by
//!   sizeLimit, the pod's memory limit or the node's allocatable memory).
//!   A sizeLimit on disk is enforced by eviction, which is not done here.
//! - hostPath: the host's path itself, after the `type` check.
//! - configMap, secret, downwardAPI, projected: files written by the
//!   [`atomic_writer`] (secret and projected on a tmpfs); [`Manager::refresh`]
//!   keeps them up to date. Service-account tokens come from the TokenRequest
//!   API and are renewed at 80 % of their lifetime.
//! - persistentVolumeClaim (and generic ephemeral volumes): the bound PV;
//!   hostPath PVs are used in place, local PVs are bind-mounted.
//!
//! The pure parts (payloads, sizes, mount lists) are functions over values;
//! the filesystem work runs on the blocking pool.

pub mod atomic_writer;
mod container;
pub mod host_path;
pub mod hosts;
mod mounts;
mod ownership;
mod pod_resources;
pub mod watches;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, DownwardAPIVolumeFile, KeyToPath, PersistentVolume, PersistentVolumeClaim, Pod,
    Secret, ServiceAccount, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::PostParams;
use kube::Api;

use crate::env;
pub use atomic_writer::{FileProjection, Payload};
pub use container::{MountContext, MountsError};
pub use pod_resources::{Resources, DEFAULT_REFRESH_INTERVAL};

pub const EMPTY_DIR_PLUGIN: &str = "kubernetes.io~empty-dir";
pub const CONFIGMAP_PLUGIN: &str = "kubernetes.io~configmap";
pub const SECRET_PLUGIN: &str = "kubernetes.io~secret";
pub const DOWNWARD_API_PLUGIN: &str = "kubernetes.io~downward-api";
pub const PROJECTED_PLUGIN: &str = "kubernetes.io~projected";
pub const LOCAL_VOLUME_PLUGIN: &str = "kubernetes.io~local-volume";

/// The file mode of configMap, secret, downwardAPI and projected files when
/// the pod says none (the API server defaults `defaultMode` to it as well).
pub const DEFAULT_MODE: u32 = 0o644;

/// Why a pod's volumes could not be set up or torn down. The agent records
/// `SetUp` and `Spec` as `FailedMount` events on the pod.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A volume could not be mounted (upstream's wording of the event).
    #[error("MountVolume.SetUp failed for volume \"{volume}\" : {message}")]
    SetUp { volume: String, message: String },
    /// The volume's spec could not be resolved (an unbound or missing claim).
    #[error("{message}")]
    Spec { volume: String, message: String },
    #[error("tearing down the volumes of pod {pod_uid}: {source}")]
    TearDown {
        pod_uid: String,
        #[source]
        source: io::Error,
    },
}

impl VolumeError {
    /// The volume named in the pod spec (for claims: the PV in `SetUp`).
    pub fn volume(&self) -> Option<&str> {
        match self {
            VolumeError::SetUp { volume, .. } | VolumeError::Spec { volume, .. } => Some(volume),
            VolumeError::TearDown { .. } => None,
        }
    }
}

/// A mounted volume: where it is on the host, and whether containers must
/// mount it read-only whatever their volumeMount says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountedVolume {
    pub host_path: PathBuf,
    pub read_only: bool,
}

/// A pod's volumes once set up; turns volumeMounts into runtime mounts.
#[derive(Clone, Debug)]
pub struct PodVolumes {
    pub pod_dir: PathBuf,
    pub volumes: BTreeMap<String, MountedVolume>,
    cluster_domain: String,
}

/// Sets up, refreshes and tears down the volumes of the pods of one node.
pub struct Manager {
    root: PathBuf,
    client: kube::Client,
    node_name: String,
    cluster_domain: RwLock<String>,
    node_allocatable: RwLock<BTreeMap<String, Quantity>>,
    tokens: Mutex<HashMap<TokenKey, CachedToken>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TokenKey {
    pod_uid: String,
    service_account: String,
    audience: String,
    expiration_seconds: i64,
}

#[derive(Clone, Debug)]
struct CachedToken {
    token: String,
    refresh_at: Instant,
}

/// What one volume will be, fetched from the API and ready to apply.
#[derive(Clone, Debug)]
enum Plan {
    EmptyDir {
        dir: PathBuf,
        memory: bool,
        size: Option<u64>,
    },
    HostPath {
        path: PathBuf,
        type_: Option<String>,
        read_only: bool,
    },
    /// configMap, secret, downwardAPI, projected.
    Files {
        dir: PathBuf,
        memory: bool,
        size: Option<u64>,
        payload: Payload,
    },
    Bind {
        dir: PathBuf,
        source: PathBuf,
        read_only: bool,
    },
}

struct Planned {
    /// The name in events: the pod's volume, or the PV of a claim.
    event_name: String,
    plan: Plan,
}

impl Manager {
    /// `root` is `<data-dir>/pods`.
    pub fn new(
        root: impl Into<PathBuf>,
        client: kube::Client,
        node_name: impl Into<String>,
    ) -> Self {
        Manager {
            root: root.into(),
            client,
            node_name: node_name.into(),
            cluster_domain: RwLock::new("cluster.local".to_string()),
            node_allocatable: RwLock::new(BTreeMap::new()),
            tokens: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// The cluster's DNS domain, for pods' FQDNs in /etc/hosts.
    pub fn set_cluster_domain(&self, domain: impl Into<String>) {
        *self.cluster_domain.write().expect("lock") = domain.into();
    }

    /// The node's allocatable resources: the size of memory-backed volumes
    /// and the limits the downward API reports for containers without one.
    pub fn set_node_allocatable(&self, allocatable: BTreeMap<String, Quantity>) {
        *self.node_allocatable.write().expect("lock") = allocatable;
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// Makes the pods root a shared mount (bind-mounted onto itself when
    /// needed), as the kubelet does with its root directory, so that
    /// volumes mounted with HostToContainer or Bidirectional propagation
    /// see mounts made under them. The mount stays until the root is
    /// unmounted (on uninstall, or by test harnesses).
    pub fn make_root_shared(&self) -> io::Result<()> {
        fs::create_dir_all(&self.root)?;
        mounts::make_rshared(&self.root)
    }

    pub fn pod_dir(&self, pod_uid: &str) -> PathBuf {
        self.root.join(pod_uid)
    }

    /// A uid names one directory under the root, never the root itself or
    /// anything outside it.
    fn checked_pod_dir(&self, pod_uid: &str) -> io::Result<PathBuf> {
        if pod_uid.is_empty() || pod_uid == "." || pod_uid == ".." || pod_uid.contains('/') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid pod uid {pod_uid:?}"),
            ));
        }
        Ok(self.pod_dir(pod_uid))
    }

    fn pod_lock(&self, pod_uid: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .expect("lock")
            .entry(pod_uid.to_string())
            .or_default()
            .clone()
    }

    /// Mounts every volume of `pod` (again: it is idempotent, and rewrites
    /// configMap/secret/downwardAPI/projected files that changed). Stops at
    /// the first volume that fails.
    pub async fn setup(&self, pod: &Pod) -> Result<PodVolumes, VolumeError> {
        self.sync(pod, false).await
    }

    /// Brings the configMap, secret, downwardAPI and projected volumes of a
    /// running pod up to date (upstream's periodic remount); other volumes
    /// are left alone.
    pub async fn refresh(&self, pod: &Pod) -> Result<(), VolumeError> {
        self.sync(pod, true).await.map(|_| ())
    }

    async fn sync(&self, pod: &Pod, only_files: bool) -> Result<PodVolumes, VolumeError> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let pod_dir = self.checked_pod_dir(&uid).map_err(|e| VolumeError::Spec {
            volume: String::new(),
            message: e.to_string(),
        })?;
        let lock = self.pod_lock(&uid);
        let _guard = lock.lock().await;
        if only_files && !pod_dir.exists() {
            // Torn down (or never set up): nothing to refresh.
            return Ok(self.pod_volumes(pod_dir, BTreeMap::new()));
        }
        let spec = pod.spec.as_ref();
        let fs_group = spec
            .and_then(|s| s.security_context.as_ref())
            .and_then(|sc| {
                sc.fs_group
                    .map(|g| (g as u32, sc.fs_group_change_policy.clone()))
            });
        let mut volumes = BTreeMap::new();
        for volume in spec.and_then(|s| s.volumes.as_deref()).unwrap_or_default() {
            let is_files = volume.config_map.is_some()
                || volume.secret.is_some()
                || volume.downward_api.is_some()
                || volume.projected.is_some();
            if only_files && !is_files {
                continue;
            }
            let planned = self.plan(pod, volume).await?;
            let fs_group = fs_group.clone();
            let dir = pod_dir.clone();
            let name = planned.event_name.clone();
            let mounted = tokio::task::spawn_blocking(move || {
                make_pod_dirs(&dir)?;
                apply(&planned.plan, fs_group)
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map_err(|message| VolumeError::SetUp {
                volume: name,
                message,
            })?;
            volumes.insert(volume.name.clone(), mounted);
        }
        Ok(self.pod_volumes(pod_dir, volumes))
    }

    fn pod_volumes(
        &self,
        pod_dir: PathBuf,
        volumes: BTreeMap<String, MountedVolume>,
    ) -> PodVolumes {
        PodVolumes {
            pod_dir,
            volumes,
            cluster_domain: self.cluster_domain.read().expect("lock").clone(),
        }
    }

    /// Unmounts every volume of the pod and removes its directory (volumes,
    /// etc-hosts, termination-log files). Works for pods the API no longer
    /// knows, from what is on disk and in the mount table.
    pub async fn teardown(&self, pod_uid: &str) -> Result<(), VolumeError> {
        let dir = self
            .checked_pod_dir(pod_uid)
            .map_err(|source| VolumeError::TearDown {
                pod_uid: pod_uid.to_string(),
                source,
            })?;
        let lock = self.pod_lock(pod_uid);
        let guard = lock.lock().await;
        let result = tokio::task::spawn_blocking(move || remove_pod_dir(&dir))
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e.to_string())));
        drop(guard);
        result.map_err(|source| VolumeError::TearDown {
            pod_uid: pod_uid.to_string(),
            source,
        })?;
        self.tokens
            .lock()
            .expect("lock")
            .retain(|k, _| k.pod_uid != pod_uid);
        self.locks.lock().expect("lock").remove(pod_uid);
        Ok(())
    }

    /// The uids of the pods that have a directory under the root.
    pub fn pod_uids(&self) -> std::collections::HashSet<String> {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return Default::default();
        };
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect()
    }

    async fn plan(&self, pod: &Pod, volume: &Volume) -> Result<Planned, VolumeError> {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let dir = |plugin: &str| volume_dir(&self.root, uid, plugin, &volume.name);
        let set_up_err = |message: String| VolumeError::SetUp {
            volume: volume.name.clone(),
            message,
        };
        let planned = |plan| Planned {
            event_name: volume.name.clone(),
            plan,
        };
        let memory_size = |size_limit: Option<&Quantity>| {
            let allocatable = self.node_allocatable.read().expect("lock");
            empty_dir_memory_size(pod, size_limit, allocatable.get("memory"))
        };

        if let Some(ed) = &volume.empty_dir {
            let memory = ed.medium.as_deref() == Some("Memory");
            return Ok(planned(Plan::EmptyDir {
                dir: dir(EMPTY_DIR_PLUGIN),
                memory,
                size: memory
                    .then(|| memory_size(ed.size_limit.as_ref()))
                    .flatten(),
            }));
        }
        if let Some(hp) = &volume.host_path {
            return Ok(planned(Plan::HostPath {
                path: PathBuf::from(&hp.path),
                type_: hp.type_.clone(),
                read_only: false,
            }));
        }
        if let Some(cm) = &volume.config_map {
            let optional = cm.optional.unwrap_or(false);
            let object = self
                .get_config_map(namespace, &cm.name, optional)
                .await
                .map_err(set_up_err)?;
            let payload = config_map_payload(
                cm.items.as_deref(),
                &object,
                mode(cm.default_mode),
                optional,
            )
            .map_err(set_up_err)?;
            return Ok(planned(Plan::Files {
                dir: dir(CONFIGMAP_PLUGIN),
                memory: false,
                size: None,
                payload,
            }));
        }
        if let Some(s) = &volume.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            let optional = s.optional.unwrap_or(false);
            let object = self
                .get_secret(namespace, &name, optional)
                .await
                .map_err(set_up_err)?;
            let payload =
                secret_payload(s.items.as_deref(), &object, mode(s.default_mode), optional)
                    .map_err(set_up_err)?;
            return Ok(planned(Plan::Files {
                dir: dir(SECRET_PLUGIN),
                memory: true,
                size: memory_size(None),
                payload,
            }));
        }
        if let Some(d) = &volume.downward_api {
            let allocatable = self.node_allocatable.read().expect("lock").clone();
            let payload = downward_api_payload(
                d.items.as_deref().unwrap_or_default(),
                pod,
                mode(d.default_mode),
                &allocatable,
            )
            .map_err(set_up_err)?;
            return Ok(planned(Plan::Files {
                dir: dir(DOWNWARD_API_PLUGIN),
                memory: false,
                size: None,
                payload,
            }));
        }
        if let Some(p) = &volume.projected {
            let payload = self.projected_payload(pod, p).await.map_err(set_up_err)?;
            return Ok(planned(Plan::Files {
                dir: dir(PROJECTED_PLUGIN),
                memory: true,
                size: memory_size(None),
                payload,
            }));
        }
        let claim = if let Some(c) = &volume.persistent_volume_claim {
            Some((c.claim_name.clone(), c.read_only.unwrap_or(false), false))
        } else if volume.ephemeral.is_some() {
            // Generic ephemeral volumes: the claim `<pod>-<volume>`.
            let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
            Some((format!("{pod_name}-{}", volume.name), false, true))
        } else {
            None
        };
        if let Some((claim, read_only, ephemeral)) = claim {
            return self
                .plan_claim(pod, volume, &claim, read_only, ephemeral)
                .await;
        }
        Err(VolumeError::Spec {
            volume: volume.name.clone(),
            message: format!(
                "failed to get Plugin from volumeSpec for volume {:?} err=no volume plugin matched",
                volume.name
            ),
        })
    }

    async fn plan_claim(
        &self,
        pod: &Pod,
        volume: &Volume,
        claim_name: &str,
        read_only: bool,
        ephemeral: bool,
    ) -> Result<Planned, VolumeError> {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let spec_err = |message: String| VolumeError::Spec {
            volume: volume.name.clone(),
            message: format!("error processing PVC {namespace}/{claim_name}: {message}"),
        };
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), namespace);
        let claim = claims.get(claim_name).await.map_err(|e| {
            spec_err(format!(
                "failed to fetch PVC from API server: {}",
                kube_message(&e)
            ))
        })?;
        let pod_uid = pod.metadata.uid.as_deref();
        let owned = claim
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|r| r.controller == Some(true) && Some(r.uid.as_str()) == pod_uid);
        if ephemeral && !owned {
            return Err(spec_err(format!(
                "PVC {namespace}/{claim_name} was not created for pod {namespace}/{} (pod is not owner)",
                pod.metadata.name.as_deref().unwrap_or_default()
            )));
        }
        if claim.metadata.deletion_timestamp.is_some() {
            return Err(spec_err(format!(
                "can't start pod because PVC {namespace}/{claim_name} is being deleted"
            )));
        }
        let phase = claim.status.as_ref().and_then(|s| s.phase.as_deref());
        let pv_name = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .filter(|v| !v.is_empty());
        let Some(pv_name) = pv_name.filter(|_| phase == Some("Bound")) else {
            return Err(spec_err("PVC is not bound".to_string()));
        };
        let pvs: Api<PersistentVolume> = Api::all(self.client.clone());
        let pv = pvs.get(&pv_name).await.map_err(|e| {
            spec_err(format!(
                "failed to fetch PV {pv_name} from API server: {}",
                kube_message(&e)
            ))
        })?;
        let claim_uid = claim.metadata.uid.as_deref();
        match pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
            None => {
                return Err(spec_err(format!(
                    "found PV object {pv_name} but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim"
                )))
            }
            Some(r) if r.uid.as_deref() != claim_uid => {
                return Err(spec_err(format!(
                    "found PV object {pv_name} but its pv.Spec.ClaimRef.UID {} does not point to claim.UID {}",
                    r.uid.as_deref().unwrap_or_default(),
                    claim_uid.unwrap_or_default()
                )))
            }
            Some(_) => {}
        }
        let spec = pv.spec.as_ref().expect("checked above");
        if let Some(hp) = &spec.host_path {
            return Ok(Planned {
                event_name: pv_name,
                plan: Plan::HostPath {
                    path: PathBuf::from(&hp.path),
                    type_: hp.type_.clone(),
                    read_only,
                },
            });
        }
        if let Some(local) = &spec.local {
            return Ok(Planned {
                plan: Plan::Bind {
                    dir: volume_dir(&self.root, uid, LOCAL_VOLUME_PLUGIN, &pv_name),
                    source: PathBuf::from(&local.path),
                    read_only,
                },
                event_name: pv_name,
            });
        }
        Err(VolumeError::Spec {
            volume: volume.name.clone(),
            message: format!(
                "failed to get Plugin from volumeSpec for volume {pv_name:?} err=no volume plugin matched"
            ),
        })
    }

    async fn get_config_map(
        &self,
        namespace: &str,
        name: &str,
        optional: bool,
    ) -> Result<ConfigMap, String> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(Some(cm)) => Ok(cm),
            Ok(None) if optional => Ok(ConfigMap::default()),
            Ok(None) => Err(format!("configmap {name:?} not found")),
            Err(e) => Err(kube_message(&e)),
        }
    }

    async fn get_secret(
        &self,
        namespace: &str,
        name: &str,
        optional: bool,
    ) -> Result<Secret, String> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) if optional => Ok(Secret::default()),
            Ok(None) => Err(format!("secret {name:?} not found")),
            Err(e) => Err(kube_message(&e)),
        }
    }

    /// Upstream's projected `collectData`: every source in order; errors
    /// are collected and reported together.
    async fn projected_payload(
        &self,
        pod: &Pod,
        projected: &k8s_openapi::api::core::v1::ProjectedVolumeSource,
    ) -> Result<Payload, String> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let default_mode = mode(projected.default_mode);
        let fs_group = pod
            .spec
            .as_ref()
            .and_then(|s| s.security_context.as_ref())
            .and_then(|sc| sc.fs_group);
        let mut payload = Payload::new();
        let mut errors = Vec::new();
        for source in projected.sources.iter().flatten() {
            let result = if let Some(s) = &source.secret {
                let optional = s.optional.unwrap_or(false);
                match self.get_secret(namespace, &s.name, optional).await {
                    Ok(object) => {
                        secret_payload(s.items.as_deref(), &object, default_mode, optional)
                    }
                    Err(e) => Err(e),
                }
            } else if let Some(c) = &source.config_map {
                let optional = c.optional.unwrap_or(false);
                match self.get_config_map(namespace, &c.name, optional).await {
                    Ok(object) => {
                        config_map_payload(c.items.as_deref(), &object, default_mode, optional)
                    }
                    Err(e) => Err(e),
                }
            } else if let Some(d) = &source.downward_api {
                let allocatable = self.node_allocatable.read().expect("lock").clone();
                downward_api_payload(
                    d.items.as_deref().unwrap_or_default(),
                    pod,
                    default_mode,
                    &allocatable,
                )
            } else if let Some(t) = &source.service_account_token {
                // With an fsGroup the ownership pass widens 0600 to 0640.
                let mode = if fs_group.is_some() {
                    0o600
                } else {
                    default_mode
                };
                self.service_account_token(
                    pod,
                    t.audience.as_deref().unwrap_or(""),
                    t.expiration_seconds.unwrap_or(3600),
                )
                .await
                .map(|token| Payload::from([(t.path.clone(), FileProjection::new(token, mode))]))
            } else if source.cluster_trust_bundle.is_some() {
                Err("clusterTrustBundle projections are not supported".to_string())
            } else {
                Ok(Payload::new())
            };
            match result {
                Ok(p) => payload.extend(p),
                Err(e) => errors.push(e),
            }
        }
        match errors.len() {
            0 => Ok(payload),
            1 => Err(errors.remove(0)),
            _ => Err(format!("[{}]", errors.join(", "))),
        }
    }

    /// A token for the pod's service account from the TokenRequest API,
    /// bound to the pod, cached until 80 % of its lifetime has passed.
    async fn service_account_token(
        &self,
        pod: &Pod,
        audience: &str,
        expiration_seconds: i64,
    ) -> Result<String, String> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let service_account = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".to_string());
        let key = TokenKey {
            pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
            service_account: service_account.clone(),
            audience: audience.to_string(),
            expiration_seconds,
        };
        if let Some(cached) = self.tokens.lock().expect("lock").get(&key) {
            if Instant::now() < cached.refresh_at {
                return Ok(cached.token.clone());
            }
        }
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: if audience.is_empty() {
                    Vec::new()
                } else {
                    vec![audience.to_string()]
                },
                expiration_seconds: Some(expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".to_string()),
                    kind: Some("Pod".to_string()),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                }),
            },
            ..Default::default()
        };
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let issued = Instant::now();
        let response = api
            .create_token_request(&service_account, &PostParams::default(), &request)
            .await
            .map_err(|e| format!("failed to fetch token: {}", kube_message(&e)))?;
        let status = response
            .status
            .ok_or_else(|| "failed to fetch token: the answer has no status".to_string())?;
        let lifetime = (status.expiration_timestamp.0 - chrono::Utc::now())
            .to_std()
            .unwrap_or(Duration::from_secs(expiration_seconds.max(0) as u64));
        self.tokens.lock().expect("lock").insert(
            key,
            CachedToken {
                token: status.token.clone(),
                refresh_at: issued + lifetime.mul_f64(0.8),
            },
        );
        Ok(status.token)
    }
}

/// `<root>/<pod-uid>/volumes/<plugin>/<volume>`.
pub fn volume_dir(root: &Path, pod_uid: &str, plugin: &str, volume: &str) -> PathBuf {
    root.join(pod_uid).join("volumes").join(plugin).join(volume)
}

fn mode(m: Option<i32>) -> u32 {
    m.map(|m| m as u32).unwrap_or(DEFAULT_MODE)
}

/// The message of an API error, as upstream's clients print it.
fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => status.message.clone(),
        e => e.to_string(),
    }
}

/// Upstream's configMap `MakePayload`: every key (data and binaryData) with
/// `default_mode`, or the listed items with their paths and modes.
pub fn config_map_payload(
    items: Option<&[KeyToPath]>,
    cm: &ConfigMap,
    default_mode: u32,
    optional: bool,
) -> Result<Payload, String> {
    let data = cm.data.clone().unwrap_or_default();
    let binary = cm.binary_data.clone().unwrap_or_default();
    let lookup = |key: &str| -> Option<Vec<u8>> {
        data.get(key)
            .map(|s| s.as_bytes().to_vec())
            .or_else(|| binary.get(key).map(|b| b.0.clone()))
    };
    let mut payload = Payload::new();
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (k, v) in &data {
                payload.insert(k.clone(), FileProjection::new(v.as_bytes(), default_mode));
            }
            for (k, v) in &binary {
                payload.insert(k.clone(), FileProjection::new(v.0.clone(), default_mode));
            }
        }
        Some(items) => {
            for item in items {
                let Some(bytes) = lookup(&item.key) else {
                    if optional {
                        continue;
                    }
                    return Err(format!(
                        "configmap references non-existent config key: {}",
                        item.key
                    ));
                };
                payload.insert(
                    item.path.clone(),
                    FileProjection::new(bytes, item.mode.map(|m| m as u32).unwrap_or(default_mode)),
                );
            }
        }
    }
    Ok(payload)
}

/// Upstream's secret `MakePayload`.
pub fn secret_payload(
    items: Option<&[KeyToPath]>,
    secret: &Secret,
    default_mode: u32,
    optional: bool,
) -> Result<Payload, String> {
    let data = secret.data.clone().unwrap_or_default();
    let mut payload = Payload::new();
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (k, v) in data {
                payload.insert(k, FileProjection::new(v.0, default_mode));
            }
        }
        Some(items) => {
            for item in items {
                let Some(bytes) = data.get(&item.key) else {
                    if optional {
                        continue;
                    }
                    return Err(format!("references non-existent secret key: {}", item.key));
                };
                payload.insert(
                    item.path.clone(),
                    FileProjection::new(
                        bytes.0.clone(),
                        item.mode.map(|m| m as u32).unwrap_or(default_mode),
                    ),
                );
            }
        }
    }
    Ok(payload)
}

/// Upstream's downwardAPI `CollectData`: metadata fields and container
/// resources (limits default to the node's allocatable).
pub fn downward_api_payload(
    items: &[DownwardAPIVolumeFile],
    pod: &Pod,
    default_mode: u32,
    allocatable: &BTreeMap<String, Quantity>,
) -> Result<Payload, String> {
    let mut payload = Payload::new();
    let mut errors = Vec::new();
    for item in items {
        let mode = item.mode.map(|m| m as u32).unwrap_or(default_mode);
        let value = if let Some(field) = &item.field_ref {
            env::metadata_field_value(pod, &field.field_path).map_err(|e| e.to_string())
        } else if let Some(field) = &item.resource_field_ref {
            let name = field.container_name.as_deref().unwrap_or_default();
            match env::find_container(pod, name) {
                Some(c) => {
                    env::resource_value(c, field, Some(allocatable)).map_err(|e| e.to_string())
                }
                None => Err(format!("container {name} not found")),
            }
        } else {
            Ok(String::new())
        };
        match value {
            Ok(v) => {
                let path = item.path.trim_start_matches("./").to_string();
                payload.insert(path, FileProjection::new(v, mode));
            }
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => Ok(payload),
        1 => Err(errors.remove(0)),
        _ => Err(format!("[{}]", errors.join(", "))),
    }
}

/// The size of a memory-backed emptyDir (upstream's
/// `calculateEmptyDirMemorySize`): the node's allocatable memory, lowered
/// to the pod's memory limit when every container has one, lowered to the
/// volume's sizeLimit when that is smaller. `None`: the kernel's default.
pub fn empty_dir_memory_size(
    pod: &Pod,
    size_limit: Option<&Quantity>,
    allocatable_memory: Option<&Quantity>,
) -> Option<u64> {
    let value = |q: &Quantity| api::quantity::Quantity::parse(&q.0).ok().map(|q| q.value());
    let mut size = allocatable_memory.and_then(value);
    let smaller = |candidate: Option<i64>, current: Option<i64>| match (candidate, current) {
        (Some(c), Some(cur)) if c > 0 && c <= cur => Some(c),
        (Some(c), None) if c > 0 => Some(c),
        (_, cur) => cur,
    };
    size = smaller(pod_memory_limit(pod), size);
    size = smaller(size_limit.and_then(value), size);
    size.map(|s| s as u64)
}

/// The pod's memory limit when every container declares one (upstream's
/// `ResourceConfigForPod`): the larger of the app containers' sum and the
/// largest init container.
fn pod_memory_limit(pod: &Pod) -> Option<i64> {
    let spec = pod.spec.as_ref()?;
    let limit = |c: &k8s_openapi::api::core::v1::Container| {
        c.resources
            .as_ref()?
            .limits
            .as_ref()?
            .get("memory")
            .and_then(|q| api::quantity::Quantity::parse(&q.0).ok())
            .map(|q| q.value())
    };
    let mut sum = 0i64;
    for c in &spec.containers {
        sum = sum.saturating_add(limit(c)?);
    }
    let mut max_init = 0i64;
    for c in spec.init_containers.iter().flatten() {
        max_init = max_init.max(limit(c)?);
    }
    Some(sum.max(max_init))
}

/// `<pod>` (0750) and its `volumes` directory.
fn make_pod_dirs(pod_dir: &Path) -> Result<(), String> {
    for dir in [pod_dir.to_path_buf(), pod_dir.join("volumes")] {
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
            let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o750));
        }
    }
    Ok(())
}

/// Applies one volume's plan on the host.
fn apply(plan: &Plan, fs_group: Option<(u32, Option<String>)>) -> Result<MountedVolume, String> {
    let ownership = |dir: &Path, read_only: bool| -> Result<(), String> {
        if let Some((gid, policy)) = &fs_group {
            ownership::set_volume_ownership(dir, *gid, read_only, policy.as_deref())
                .map_err(|e| format!("applying fsGroup {gid} to {}: {e}", dir.display()))?;
        }
        Ok(())
    };
    match plan {
        Plan::EmptyDir { dir, memory, size } => {
            setup_empty_dir(dir, *memory, *size)?;
            ownership(dir, false)?;
            Ok(MountedVolume {
                host_path: dir.clone(),
                read_only: false,
            })
        }
        Plan::HostPath {
            path,
            type_,
            read_only,
        } => {
            host_path::check_type(path, type_.as_deref()).map_err(|e| e.to_string())?;
            Ok(MountedVolume {
                host_path: path.clone(),
                read_only: *read_only,
            })
        }
        Plan::Files {
            dir,
            memory,
            size,
            payload,
        } => {
            setup_empty_dir(dir, *memory, *size)?;
            // The new files get the group before they become visible.
            let set_perms = |ts_dir: &Path| -> io::Result<()> {
                match &fs_group {
                    Some((gid, _)) => ownership::set_volume_ownership(ts_dir, *gid, true, None),
                    None => Ok(()),
                }
            };
            atomic_writer::write(dir, payload, Some(&set_perms)).map_err(|e| e.to_string())?;
            ownership(dir, true)?;
            Ok(MountedVolume {
                host_path: dir.clone(),
                read_only: true,
            })
        }
        Plan::Bind {
            dir,
            source,
            read_only,
        } => {
            if !source.exists() {
                return Err(format!(
                    "path {:?} does not exist",
                    source.display().to_string()
                ));
            }
            create_dir(dir, 0o750)?;
            let mounted = mounts::mount_at(dir).map_err(|e| e.to_string())?.is_some();
            if !mounted {
                mounts::bind_mount(source, dir).map_err(|e| {
                    format!(
                        "mount failed: bind {} on {}: {e}",
                        source.display(),
                        dir.display()
                    )
                })?;
            }
            if !*read_only {
                ownership(dir, false)?;
            }
            Ok(MountedVolume {
                host_path: dir.clone(),
                read_only: *read_only,
            })
        }
    }
}

fn create_dir(dir: &Path, mode: u32) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", dir.display()))
}

/// An emptyDir's directory (0777), with a tmpfs on it for `memory`.
fn setup_empty_dir(dir: &Path, memory: bool, size: Option<u64>) -> Result<(), String> {
    let mounted = mounts::mount_at(dir).map_err(|e| e.to_string())?;
    if mounted.is_none() {
        create_dir(dir, 0o777)?;
    }
    if memory && mounted.is_none_or(|m| m.fs_type != "tmpfs") {
        mounts::mount_tmpfs(dir, size)
            .map_err(|e| format!("mount tmpfs on {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// Unmounts everything under `root` and removes it (test harnesses' clean-up,
/// which must work without an async runtime and after failures).
pub fn clean_root(root: &Path) -> io::Result<()> {
    remove_pod_dir(root)
}

fn remove_pod_dir(dir: &Path) -> io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    mounts::unmount_all_under(dir)?;
    use std::os::unix::fs::MetadataExt;
    let dev = fs::symlink_metadata(dir)?.dev();
    remove_on_device(dir, dev)
}

/// `remove_dir_all` that never crosses into another filesystem: a mount
/// the mount table did not show is an error, not a tree to empty.
fn remove_on_device(dir: &Path, dev: u64) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let meta = fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            if meta.dev() != dev {
                return Err(io::Error::other(format!(
                    "{} is on another filesystem (still mounted?); not removed",
                    path.display()
                )));
            }
            remove_on_device(&path, dev)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    fs::remove_dir(dir)
}

#[cfg(test)]
mod tests;
