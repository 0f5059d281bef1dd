//! From (namespace, pod, container) to the runtime's containers and
//! sandboxes, through the runtime's list calls and the labels upstream's
//! kubelet sets (`io.kubernetes.pod.namespace`, `io.kubernetes.pod.name`,
//! `io.kubernetes.pod.uid`, `io.kubernetes.container.name`), with the CRI
//! metadata as a fallback.

use runtime::cri::{
    ContainerState, ContainerStatus, PodSandboxState, PodSandboxStatus, RuntimeService,
};

pub const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
pub const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
pub const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("container {container:?} in pod {pod:?} not found")]
    ContainerNotFound { pod: String, container: String },
    #[error("previous terminated container {container:?} in pod {pod:?} not found")]
    PreviousNotFound { pod: String, container: String },
    #[error("pod {pod:?} in namespace {namespace:?} has no running sandbox")]
    SandboxNotFound { namespace: String, pod: String },
    #[error("{0}")]
    Runtime(#[from] runtime::cri::Error),
}

fn label<'a>(labels: &'a std::collections::BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    labels.get(key).map(String::as_str)
}

/// Whether container `c` is `container` of pod `ns/pod`. Without pod labels,
/// the container's sandbox decides (`sandboxes`: the pod's sandbox IDs).
fn is_container(
    c: &ContainerStatus,
    ns: &str,
    pod: &str,
    container: &str,
    sandboxes: &[String],
) -> bool {
    let name = label(&c.labels, CONTAINER_NAME_LABEL).unwrap_or(&c.metadata.name);
    if name != container {
        return false;
    }
    match (
        label(&c.labels, POD_NAMESPACE_LABEL),
        label(&c.labels, POD_NAME_LABEL),
    ) {
        (Some(n), Some(p)) => n == ns && p == pod,
        _ => sandboxes.contains(&c.pod_sandbox_id),
    }
}

fn is_sandbox(s: &PodSandboxStatus, ns: &str, pod: &str) -> bool {
    match (
        label(&s.labels, POD_NAMESPACE_LABEL),
        label(&s.labels, POD_NAME_LABEL),
    ) {
        (Some(n), Some(p)) => n == ns && p == pod,
        _ => s.metadata.namespace == ns && s.metadata.name == pod,
    }
}

/// The pod's sandboxes, newest (highest attempt, then latest) first.
pub async fn sandboxes(
    rt: &dyn RuntimeService,
    ns: &str,
    pod: &str,
) -> Result<Vec<PodSandboxStatus>, ResolveError> {
    let mut list: Vec<PodSandboxStatus> = rt
        .list_pod_sandbox()
        .await?
        .into_iter()
        .filter(|s| is_sandbox(s, ns, pod))
        .collect();
    list.sort_by(|a, b| {
        (
            b.state == PodSandboxState::Ready,
            b.metadata.attempt,
            b.created_at,
        )
            .cmp(&(
                a.state == PodSandboxState::Ready,
                a.metadata.attempt,
                a.created_at,
            ))
    });
    Ok(list)
}

/// The pod's ready sandbox (port-forward).
pub async fn ready_sandbox(
    rt: &dyn RuntimeService,
    ns: &str,
    pod: &str,
) -> Result<PodSandboxStatus, ResolveError> {
    sandboxes(rt, ns, pod)
        .await?
        .into_iter()
        .find(|s| s.state == PodSandboxState::Ready)
        .ok_or_else(|| ResolveError::SandboxNotFound {
            namespace: ns.to_string(),
            pod: pod.to_string(),
        })
}

/// Every attempt of `container` the runtime still has, newest first.
pub async fn attempts(
    rt: &dyn RuntimeService,
    ns: &str,
    pod: &str,
    container: &str,
) -> Result<Vec<ContainerStatus>, ResolveError> {
    let sandbox_ids: Vec<String> = sandboxes(rt, ns, pod)
        .await?
        .into_iter()
        .map(|s| s.id)
        .collect();
    let mut list: Vec<ContainerStatus> = rt
        .list_containers()
        .await?
        .into_iter()
        .filter(|c| is_container(c, ns, pod, container, &sandbox_ids))
        .collect();
    list.sort_by(|a, b| {
        (b.metadata.attempt, b.created_at).cmp(&(a.metadata.attempt, a.created_at))
    });
    Ok(list)
}

/// The current attempt of `container`.
pub async fn current(
    rt: &dyn RuntimeService,
    ns: &str,
    pod: &str,
    container: &str,
) -> Result<ContainerStatus, ResolveError> {
    attempts(rt, ns, pod, container)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ResolveError::ContainerNotFound {
            pod: pod.to_string(),
            container: container.to_string(),
        })
}

/// The current attempt of `container` if it runs (exec, attach).
pub async fn running(
    rt: &dyn RuntimeService,
    ns: &str,
    pod: &str,
    container: &str,
) -> Result<ContainerStatus, ResolveError> {
    attempts(rt, ns, pod, container)
        .await?
        .into_iter()
        .find(|c| c.state == ContainerState::Running)
        .ok_or_else(|| ResolveError::ContainerNotFound {
            pod: pod.to_string(),
            container: container.to_string(),
        })
}
