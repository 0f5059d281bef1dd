//! RuntimeClass handlers (upstream kubelet's `runtimeclass.Manager`): a
//! pod's `spec.runtimeClassName` resolves to the RuntimeClass's `handler`,
//! which the sandbox is created with; no class means the default handler
//! (empty). The class is read when a sandbox is created, which is rare
//! enough that a live GET costs less than a cache of every class.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::api::Api;
use kube::Client;
use runtime::{PodSandboxConfig, RuntimeService};

/// Why a sandbox was not created, in the words the kubelet's
/// `FailedCreatePodSandBox` event uses after "Failed to create pod sandbox: ".
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The informer's NotFound: `runtimeclass.node.k8s.io "foo" not found`.
    #[error("runtimeclass.node.k8s.io {0:?} not found")]
    RuntimeClassNotFound(String),
    #[error("failed to lookup RuntimeClass {name}: {source}")]
    Lookup {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Runtime(#[from] runtime::Error),
}

/// Upstream `LookupRuntimeHandler`.
pub async fn lookup_runtime_handler(
    client: &Client,
    class: Option<&str>,
) -> Result<String, SandboxError> {
    let Some(name) = class.filter(|n| !n.is_empty()) else {
        return Ok(String::new());
    };
    match Api::<RuntimeClass>::all(client.clone()).get_opt(name).await {
        Ok(Some(rc)) => Ok(rc.handler),
        Ok(None) => Err(SandboxError::RuntimeClassNotFound(name.to_string())),
        Err(source) => Err(SandboxError::Lookup {
            name: name.to_string(),
            source,
        }),
    }
}

/// Upstream `createPodSandbox`: the pod's handler, then the sandbox.
pub async fn run_pod_sandbox(
    client: &Client,
    runtime: &dyn RuntimeService,
    pod: &Pod,
    config: &PodSandboxConfig,
) -> Result<String, SandboxError> {
    let class = pod
        .spec
        .as_ref()
        .and_then(|s| s.runtime_class_name.as_deref());
    let handler = lookup_runtime_handler(client, class).await?;
    if handler.is_empty() {
        return Ok(runtime.run_pod_sandbox(config).await?);
    }
    tracing::debug!(pod = ?pod.metadata.name, %handler, "running pod with runtime handler");
    let config = PodSandboxConfig {
        runtime_handler: handler,
        ..config.clone()
    };
    Ok(runtime.run_pod_sandbox(&config).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_class_reads_as_the_informer_reports_it() {
        assert_eq!(
            SandboxError::RuntimeClassNotFound("foo".into()).to_string(),
            r#"runtimeclass.node.k8s.io "foo" not found"#
        );
    }
}
