//! What the agent asks of the node's volume manager and environment
//! resolver for each pod: [`PodResources`]. [`Basic`] is the fallback
//! used until a full implementation is plugged in: emptyDir and hostPath
//! volumes, literal env values and the pod's own fields.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Container, Pod};
use runtime::{Mount, MountPropagation};

#[async_trait]
pub trait PodResources: Send + Sync + 'static {
    /// Makes the pod's volumes ready (idempotent; called before every
    /// container start). The error is the `FailedMount` event's message.
    async fn setup_volumes(&self, pod: &Pod) -> Result<(), String>;
    /// Unmounts and removes everything of the pod `uid`.
    async fn teardown_volumes(&self, pod_uid: &str) -> Result<(), String>;
    /// The container's environment (envFrom, env), resolved, in order.
    /// The error is the `CreateContainerConfigError` message.
    async fn container_env(
        &self,
        pod: &Pod,
        container: &Container,
        pod_ips: &[String],
    ) -> Result<Vec<(String, String)>, String>;
    /// The container's mounts: its volumeMounts, then /etc/hosts.
    /// The error is the `CreateContainerConfigError` message.
    async fn container_mounts(
        &self,
        pod: &Pod,
        container: &Container,
        env: &[(String, String)],
        pod_ips: &[String],
    ) -> Result<Vec<Mount>, String>;
}

/// emptyDir (on disk) and hostPath volumes under `<root>/pods/<uid>`;
/// env values written literally or taken from the pod's own fields.
pub struct Basic {
    pub root_dir: PathBuf,
}

impl Basic {
    fn pod_dir(&self, uid: &str) -> PathBuf {
        self.root_dir.join("pods").join(uid)
    }
}

fn field(pod: &Pod, path: &str) -> Option<String> {
    let m = &pod.metadata;
    match path {
        "metadata.name" => m.name.clone(),
        "metadata.namespace" => m.namespace.clone(),
        "metadata.uid" => m.uid.clone(),
        "spec.nodeName" => pod.spec.as_ref()?.node_name.clone(),
        "spec.serviceAccountName" => pod.spec.as_ref()?.service_account_name.clone(),
        "status.podIP" => pod.status.as_ref()?.pod_ip.clone(),
        "status.hostIP" => pod.status.as_ref()?.host_ip.clone(),
        _ => {
            let (kind, key) = path.split_once('[')?;
            let key = key.trim_end_matches(']').trim_matches('\'');
            match kind {
                "metadata.labels" => m.labels.as_ref()?.get(key).cloned(),
                "metadata.annotations" => m.annotations.as_ref()?.get(key).cloned(),
                _ => None,
            }
        }
    }
}

impl Basic {
    fn volumes(&self, pod: &Pod) -> Result<HashMap<String, PathBuf>, String> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut out = HashMap::new();
        for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            let path = if v.empty_dir.is_some() {
                let p = self
                    .pod_dir(&uid)
                    .join("volumes/kubernetes.io~empty-dir")
                    .join(&v.name);
                std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                p
            } else if let Some(h) = &v.host_path {
                let p = PathBuf::from(&h.path);
                if h.type_.as_deref() == Some("DirectoryOrCreate") {
                    std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                }
                p
            } else {
                continue;
            };
            out.insert(v.name.clone(), path);
        }
        Ok(out)
    }

    fn etc_hosts(&self, pod: &Pod, pod_ips: &[String]) -> Option<PathBuf> {
        let spec = pod.spec.as_ref()?;
        if spec.host_network.unwrap_or(false) {
            return None;
        }
        let dir = self.pod_dir(pod.metadata.uid.as_deref().unwrap_or_default());
        std::fs::create_dir_all(&dir).ok()?;
        let path = dir.join("etc-hosts");
        let hostname = spec
            .hostname
            .clone()
            .or_else(|| pod.metadata.name.clone())
            .unwrap_or_default();
        let mut text = String::from(
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
        );
        for ip in pod_ips {
            text.push_str(&format!("{ip}\t{hostname}\n"));
        }
        std::fs::write(&path, text).ok()?;
        Some(path)
    }
}

#[async_trait]
impl PodResources for Basic {
    async fn setup_volumes(&self, pod: &Pod) -> Result<(), String> {
        self.volumes(pod).map(|_| ())
    }

    async fn teardown_volumes(&self, pod_uid: &str) -> Result<(), String> {
        let dir = self.pod_dir(pod_uid);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("{}: {e}", dir.display()))
            }
            _ => Ok(()),
        }
    }

    async fn container_env(
        &self,
        pod: &Pod,
        container: &Container,
        pod_ips: &[String],
    ) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        for e in container.env.iter().flatten() {
            let value = match (&e.value, &e.value_from) {
                (Some(v), _) => v.clone(),
                (None, Some(from)) => match &from.field_ref {
                    Some(f) if f.field_path == "status.podIP" => {
                        pod_ips.first().cloned().unwrap_or_default()
                    }
                    Some(f) => field(pod, &f.field_path).unwrap_or_default(),
                    None => continue,
                },
                (None, None) => String::new(),
            };
            out.push((e.name.clone(), value));
        }
        Ok(out)
    }

    async fn container_mounts(
        &self,
        pod: &Pod,
        c: &Container,
        _env: &[(String, String)],
        pod_ips: &[String],
    ) -> Result<Vec<Mount>, String> {
        let volumes = self.volumes(pod)?;
        let mut mounts = Vec::new();
        for m in c.volume_mounts.iter().flatten() {
            let Some(host) = volumes.get(&m.name) else {
                return Err(format!(
                    "cannot find volume {:?} to mount into container {:?}",
                    m.name, c.name
                ));
            };
            let mut host_path = host.clone();
            if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                host_path = host_path.join(sub);
                let _ = std::fs::create_dir_all(&host_path);
            }
            mounts.push(Mount {
                container_path: m.mount_path.clone(),
                host_path,
                readonly: m.read_only.unwrap_or(false),
                propagation: match m.mount_propagation.as_deref() {
                    Some("HostToContainer") => MountPropagation::HostToContainer,
                    Some("Bidirectional") => MountPropagation::Bidirectional,
                    _ => MountPropagation::Private,
                },
            });
        }
        if !mounts.iter().any(|m| m.container_path == "/etc/hosts") {
            if let Some(hosts) = self.etc_hosts(pod, pod_ips) {
                mounts.push(Mount {
                    container_path: "/etc/hosts".into(),
                    host_path: hosts,
                    readonly: false,
                    propagation: MountPropagation::Private,
                });
            }
        }
        Ok(mounts)
    }
}

/// Where the kubelet keeps a pod's files.
pub fn pod_dir(root: &Path, uid: &str) -> PathBuf {
    root.join("pods").join(uid)
}

/// The node's volume manager ([`crate::volumes::Manager`]) and environment
/// resolver ([`crate::env::resolve`]).
pub struct Kubelet {
    pub volumes: crate::volumes::Manager,
    pub client: kube::Client,
    pub host_ips: Vec<String>,
    set_up: std::sync::Mutex<HashMap<String, crate::volumes::PodVolumes>>,
}

impl Kubelet {
    pub fn new(
        volumes: crate::volumes::Manager,
        client: kube::Client,
        host_ips: Vec<String>,
    ) -> Kubelet {
        Kubelet {
            volumes,
            client,
            host_ips,
            set_up: Default::default(),
        }
    }
}

#[async_trait]
impl PodResources for Kubelet {
    async fn setup_volumes(&self, pod: &Pod) -> Result<(), String> {
        let volumes = self.volumes.setup(pod).await.map_err(|e| e.to_string())?;
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        self.set_up.lock().unwrap().insert(uid, volumes);
        Ok(())
    }

    async fn teardown_volumes(&self, pod_uid: &str) -> Result<(), String> {
        self.set_up.lock().unwrap().remove(pod_uid);
        self.volumes
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
        let ctx = crate::env::EnvContext {
            pod_ips,
            host_ips: &self.host_ips,
            node_allocatable: None,
            service_env: &[],
        };
        let env = crate::env::resolve(&self.client, pod, container, &ctx)
            .await
            .map_err(|e| e.to_string())?;
        for e in &env.events {
            tracing::warn!(pod = ?pod.metadata.name, reason = e.reason, message = %e.message, "container environment");
        }
        Ok(env.vars)
    }

    async fn container_mounts(
        &self,
        pod: &Pod,
        container: &Container,
        env: &[(String, String)],
        pod_ips: &[String],
    ) -> Result<Vec<Mount>, String> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let cached = self.set_up.lock().unwrap().get(&uid).cloned();
        let volumes = match cached {
            Some(v) => v,
            None => self.volumes.setup(pod).await.map_err(|e| e.to_string())?,
        };
        let ctx = crate::volumes::MountContext { pod_ips, env };
        volumes
            .container_mounts(pod, container, &ctx)
            .map_err(|e| e.to_string())
    }
}
