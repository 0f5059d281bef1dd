//! Images for containers, as upstream's `images/image_manager.go`
//! EnsureImageExists: the pull policy (defaulted as the API does: `:latest`
//! or no tag → Always, else IfNotPresent), the Pulling/Pulled events and
//! their words, ErrImagePull then ImagePullBackOff with back-off, and
//! registry credentials from the pod's dockerconfigjson pull secrets.
//! The store itself is behind [`ImageService`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Container, Secret};

use super::container_config::ImageConfig;

/// An image present on the node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageInfo {
    /// `sha256:<config digest>`.
    pub id: String,
    /// What status.imageID shows: a repo digest (`name@sha256:...`) when
    /// known, else the ID.
    pub image_ref: String,
    /// Unpacked layers, lowest first.
    pub layers: Vec<PathBuf>,
    pub config: ImageConfig,
    pub size: u64,
}

/// An image as the runtime lists it (CRI `ListImages`): what the Node's
/// status.images reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListedImage {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub size: u64,
}

/// Credentials for one registry, from a dockerconfigjson secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistryAuth {
    pub server: String,
    pub username: String,
    pub password: String,
}

/// Why a pull failed; `NotFound` and `Unauthorized` word it as containerd.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PullError(pub String);

/// The node's image store, as the kubelet uses it.
#[async_trait]
pub trait ImageService: Send + Sync + 'static {
    /// The image if present on the node.
    async fn status(&self, image: &str) -> Result<Option<ImageInfo>, PullError>;
    async fn pull(&self, image: &str, auth: &[RegistryAuth]) -> Result<ImageInfo, PullError>;
    /// Every image on the node.
    async fn list(&self) -> Result<Vec<ListedImage>, PullError> {
        Ok(Vec::new())
    }
    /// Deletes the image `id` (the eviction manager's image garbage
    /// collection), keeping what the images `in_use` (IDs) need.
    async fn remove(&self, id: &str, in_use: &[String]) -> Result<(), PullError> {
        let _ = in_use;
        Err(PullError(format!(
            "cannot remove image {id}: not supported"
        )))
    }
}

/// The pull policy the API would default (`Never`, `Always`,
/// `IfNotPresent`).
pub fn pull_policy(c: &Container) -> String {
    if let Some(p) = c.image_pull_policy.as_deref().filter(|p| !p.is_empty()) {
        return p.to_string();
    }
    let image = c.image.as_deref().unwrap_or_default();
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, "latest")) | None if !image.contains('@') => "Always".into(),
        _ => "IfNotPresent".into(),
    }
}

/// Registry credentials from pull secrets of type
/// `kubernetes.io/dockerconfigjson` (or the older `dockercfg`).
pub fn registry_auths(secrets: &[Secret]) -> Vec<RegistryAuth> {
    use base64::Engine;
    let mut out = Vec::new();
    for s in secrets {
        let data: &BTreeMap<String, k8s_openapi::ByteString> = match s.data.as_ref() {
            Some(d) => d,
            None => continue,
        };
        let auths = if let Some(json) = data.get(".dockerconfigjson") {
            serde_json::from_slice::<serde_json::Value>(&json.0)
                .ok()
                .and_then(|v| v.get("auths").cloned())
        } else if let Some(json) = data.get(".dockercfg") {
            serde_json::from_slice::<serde_json::Value>(&json.0).ok()
        } else {
            None
        };
        let Some(serde_json::Value::Object(auths)) = auths else {
            continue;
        };
        for (server, entry) in auths {
            let mut username = entry
                .get("username")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string();
            let mut password = entry
                .get("password")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string();
            if let Some(auth) = entry.get("auth").and_then(|v| v.as_str()) {
                if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(auth) {
                    if let Some((u, p)) = String::from_utf8_lossy(&decoded).split_once(':') {
                        username = u.to_string();
                        password = p.to_string();
                    }
                }
            }
            let server = server
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .trim_end_matches("/v1")
                .trim_end_matches("/v2")
                .to_string();
            out.push(RegistryAuth {
                server,
                username,
                password,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(image: &str, policy: Option<&str>) -> Container {
        Container {
            name: "c".into(),
            image: Some(image.into()),
            image_pull_policy: policy.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn pull_policy_defaults_as_the_api_does() {
        assert_eq!(pull_policy(&c("busybox", None)), "Always");
        assert_eq!(pull_policy(&c("busybox:latest", None)), "Always");
        assert_eq!(pull_policy(&c("localhost:5000/busybox", None)), "Always");
        assert_eq!(
            pull_policy(&c("krate.test/busybox:1", None)),
            "IfNotPresent"
        );
        assert_eq!(pull_policy(&c("busybox@sha256:abc", None)), "IfNotPresent");
        assert_eq!(pull_policy(&c("busybox", Some("Never"))), "Never");
    }

    #[test]
    fn dockerconfigjson_secrets_give_registry_credentials() {
        let json = r#"{"auths":{"https://reg.example:5000":{"auth":"dXNlcjpwYXNz"}}}"#;
        let s = Secret {
            data: Some(
                [(
                    ".dockerconfigjson".to_string(),
                    k8s_openapi::ByteString(json.into()),
                )]
                .into(),
            ),
            ..Default::default()
        };
        assert_eq!(
            registry_auths(&[s]),
            [RegistryAuth {
                server: "reg.example:5000".into(),
                username: "user".into(),
                password: "pass".into(),
            }]
        );
    }
}
