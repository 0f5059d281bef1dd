//! The agent's [`PodResources`] backed by the volume [`Manager`] and
//! [`env::resolve`]: what the kubelet's volume manager, configMap/secret
//! managers and `makeEnvironmentVariables` do for each pod.
//!
//! Besides answering the agent, it keeps the configMap, secret, downwardAPI
//! and projected volumes of running pods up to date (when a mounted
//! configMap or secret changes, and every `refresh interval`, upstream's
//! sync period) and removes the directories of pods that were deleted while
//! the agent was down.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use controllers::events::Recorder;
use k8s_openapi::api::core::v1::{Container, Node, Pod, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ListParams;
use kube::Api;
use runtime::cri::Mount;

use super::watches::{ObjectKey, Watches};
use super::{Manager, MountContext, PodVolumes};
use crate::agent::PodResources;
use crate::env::{self, EnvContext};

/// How often running pods' configMap/secret/downwardAPI/projected volumes
/// are brought up to date by default (the kubelet's sync period).
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// How long the node's allocatable resources and addresses are reused.
const NODE_INFO_TTL: Duration = Duration::from_secs(60);

pub struct Resources {
    manager: Manager,
    client: kube::Client,
    recorder: Recorder,
    node_name: String,
    /// Pods whose volumes are set up: uid -> (namespace, name, volumes).
    pods: Mutex<HashMap<String, (String, String, PodVolumes)>>,
    node_info: Mutex<Option<(Instant, NodeInfo)>>,
    watches: Watches,
    changes: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<ObjectKey>>>,
}

#[derive(Clone, Debug, Default)]
struct NodeInfo {
    host_ips: Vec<String>,
    allocatable: BTreeMap<String, Quantity>,
}

impl Resources {
    /// `data_dir` is the agent's root (pods live in `<data_dir>/pods`).
    pub fn new(client: kube::Client, data_dir: &Path, node_name: impl Into<String>) -> Arc<Self> {
        let node_name = node_name.into();
        let (watches, changes) = Watches::new(client.clone());
        Arc::new(Resources {
            watches,
            changes: Mutex::new(Some(changes)),
            manager: Manager::new(data_dir.join("pods"), client.clone(), node_name.clone()),
            recorder: Recorder::new(client.clone(), "kubelet").with_host(node_name.clone()),
            client,
            node_name,
            pods: Mutex::new(HashMap::new()),
            node_info: Mutex::new(None),
        })
    }

    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    /// Refreshes running pods' volumes when what they mount changes and
    /// every `interval`, and removes the directories of pods this node no
    /// longer has, until aborted.
    /// Also makes the pods root a shared mount first, as the kubelet does
    /// with its root directory at start.
    pub fn spawn_refresh(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        if let Err(e) = self.manager.make_root_shared() {
            tracing::warn!(root = %self.manager.root().display(), error = %e, "making the pods directory a shared mount (mount propagation to containers will not work)");
        }
        let this = self.clone();
        let mut changes = self.changes.lock().expect("lock").take();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let changed = async {
                    match changes.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tick.tick() => this.sync_once().await,
                    key = changed => match key {
                        Some(key) => this.object_changed(&key).await,
                        None => changes = None,
                    },
                }
            }
        })
    }

    /// Refreshes the pods that mount `key`, which just changed.
    async fn object_changed(&self, key: &ObjectKey) {
        for uid in self.watches.pods_of(key) {
            let Some((namespace, name)) = self
                .pods
                .lock()
                .expect("lock")
                .get(&uid)
                .map(|(ns, name, _)| (ns.clone(), name.clone()))
            else {
                continue;
            };
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
            let pod = match api.get_opt(&name).await {
                Ok(Some(p)) if p.metadata.uid.as_deref() == Some(uid.as_str()) => p,
                _ => continue,
            };
            if let Err(e) = self.manager.refresh(&pod).await {
                tracing::warn!(pod = %name, error = %e, "refreshing the pod's volumes");
            }
        }
    }

    /// One pass over the node's pods: those with volumes on this node get
    /// their configMap/secret/downwardAPI/projected volumes brought up to
    /// date from their current objects (labels reach downwardAPI files this
    /// way, also for pods adopted after an agent restart); directories of
    /// pods that are gone (deleted while the agent was down) are torn down.
    pub async fn sync_once(&self) {
        // The directory listing comes first: a pod with a directory was
        // created before the API listing below, so it is in it if it exists.
        let on_disk = self.manager.pod_uids();
        if on_disk.is_empty() {
            return;
        }
        let api: Api<Pod> = Api::all(self.client.clone());
        let params = ListParams::default().fields(&format!("spec.nodeName={}", self.node_name));
        let pods = match api.list(&params).await {
            Ok(list) => list.items,
            Err(e) => {
                tracing::debug!(error = %e, "listing the node's pods");
                return;
            }
        };
        let mut known: HashSet<String> = self.pods.lock().expect("lock").keys().cloned().collect();
        for pod in pods {
            let Some(uid) = pod.metadata.uid.clone() else {
                continue;
            };
            known.insert(uid.clone());
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            let finished = matches!(phase, Some("Succeeded") | Some("Failed"));
            if !on_disk.contains(&uid) || finished || pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            if let Err(e) = self.manager.refresh(&pod).await {
                tracing::warn!(pod = ?pod.metadata.name, error = %e, "refreshing the pod's volumes");
                self.recorder.warning(&pod, "FailedMount", e.to_string());
            }
        }
        for uid in on_disk.into_iter().filter(|u| !known.contains(u)) {
            match self.manager.teardown(&uid).await {
                Ok(()) => {
                    tracing::info!(pod_uid = %uid, "removed the volumes of a pod that is gone")
                }
                Err(e) => {
                    tracing::warn!(pod_uid = %uid, error = %e, "removing the volumes of a pod that is gone")
                }
            }
        }
    }

    /// The node's addresses and allocatable resources, from its Node object.
    async fn node_info(&self) -> NodeInfo {
        if let Some((at, info)) = self.node_info.lock().expect("lock").as_ref() {
            if at.elapsed() < NODE_INFO_TTL {
                return info.clone();
            }
        }
        let api: Api<Node> = Api::all(self.client.clone());
        let Ok(node) = api.get(&self.node_name).await else {
            return NodeInfo::default();
        };
        let status = node.status.unwrap_or_default();
        let info = NodeInfo {
            host_ips: status
                .addresses
                .unwrap_or_default()
                .into_iter()
                .filter(|a| a.type_ == "InternalIP")
                .map(|a| a.address)
                .collect(),
            allocatable: status.allocatable.unwrap_or_default(),
        };
        self.manager.set_node_allocatable(info.allocatable.clone());
        *self.node_info.lock().expect("lock") = Some((Instant::now(), info.clone()));
        info
    }

    /// Service links for a pod (upstream's `getServiceEnvVarMap`).
    async fn service_env(&self, pod: &Pod) -> Vec<(String, String)> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let enable = pod
            .spec
            .as_ref()
            .and_then(|s| s.enable_service_links)
            .unwrap_or(true);
        let mut services: Vec<Service> = Vec::new();
        if enable {
            let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
            match api.list(&ListParams::default()).await {
                Ok(list) => services.extend(list.items),
                Err(e) => tracing::debug!(error = %e, "listing services for service links"),
            }
        }
        if !enable || namespace != "default" {
            let api: Api<Service> = Api::namespaced(self.client.clone(), "default");
            if let Ok(Some(s)) = api.get_opt("kubernetes").await {
                services.push(s);
            }
        }
        env::service_env(&services, namespace, enable)
    }

    async fn volumes_of(&self, pod: &Pod) -> Result<PodVolumes, String> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if let Some((_, _, v)) = self.pods.lock().expect("lock").get(&uid) {
            return Ok(v.clone());
        }
        self.setup_volumes(pod).await?;
        self.pods
            .lock()
            .expect("lock")
            .get(&uid)
            .map(|(_, _, v)| v.clone())
            .ok_or_else(|| "the pod's volumes are not set up".to_string())
    }
}

#[async_trait]
impl PodResources for Resources {
    async fn setup_volumes(&self, pod: &Pod) -> Result<(), String> {
        // Memory-backed volumes are sized by the node's allocatable memory.
        self.node_info().await;
        let volumes = self.manager.setup(pod).await.map_err(|e| e.to_string())?;
        self.watches.add_pod(pod);
        self.pods.lock().expect("lock").insert(
            pod.metadata.uid.clone().unwrap_or_default(),
            (
                pod.metadata.namespace.clone().unwrap_or_default(),
                pod.metadata.name.clone().unwrap_or_default(),
                volumes,
            ),
        );
        Ok(())
    }

    async fn teardown_volumes(&self, pod_uid: &str) -> Result<(), String> {
        self.pods.lock().expect("lock").remove(pod_uid);
        self.watches.remove_pod(pod_uid);
        self.manager
            .teardown(pod_uid)
            .await
            .map_err(|e| e.to_string())
    }

    async fn container_env(
        &self,
        pod: &Pod,
        container: &Container,
        pod_ips: &[String],
    ) -> Result<Vec<(String, String)>, String> {
        let node = self.node_info().await;
        let service_env = self.service_env(pod).await;
        // Host-network pods have the node's IPs.
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        let pod_ips = if pod_ips.is_empty() && host_network {
            &node.host_ips
        } else {
            pod_ips
        };
        let ctx = EnvContext {
            pod_ips,
            host_ips: &node.host_ips,
            node_allocatable: Some(&node.allocatable),
            service_env: &service_env,
        };
        let resolved = env::resolve(&self.client, pod, container, &ctx)
            .await
            .map_err(|e| e.to_string())?;
        for event in resolved.events {
            self.recorder.warning(pod, event.reason, event.message);
        }
        Ok(resolved.vars)
    }

    async fn container_mounts(
        &self,
        pod: &Pod,
        container: &Container,
        env: &[(String, String)],
        pod_ips: &[String],
    ) -> Result<Vec<Mount>, String> {
        let volumes = self.volumes_of(pod).await?;
        let pod = pod.clone();
        let container = container.clone();
        let env = env.to_vec();
        let pod_ips = pod_ips.to_vec();
        tokio::task::spawn_blocking(move || {
            volumes.container_mounts(
                &pod,
                &container,
                &MountContext {
                    pod_ips: &pod_ips,
                    env: &env,
                },
            )
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
    }
}
