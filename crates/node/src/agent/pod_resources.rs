//! What the agent asks of the node's volume manager and environment
//! resolver for each pod: [`PodResources`], implemented by
//! [`crate::volumes::Resources`].

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Container, Pod};
use runtime::Mount;

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

/// Where the kubelet keeps a pod's files.
pub fn pod_dir(root: &Path, uid: &str) -> PathBuf {
    root.join("pods").join(uid)
}
