//! Static pods (upstream `pkg/kubelet/config/file.go` + mirror pods): every
//! manifest in `--pod-manifest-path` (`.yaml`, `.yml`, `.json`, one Pod
//! each) becomes a pod named `<name>-<node>` bound to this node, with the
//! `kubernetes.io/config.*` annotations and the Node as its controller
//! ("Controlled By: Node/<name>" in `kubectl describe`). The directory is
//! read every 20 s (upstream's fileCheckFrequency); a changed manifest
//! replaces its pod, a removed one deletes it.
//!
//! Here the mirror pod is the pod: the agent runs it from the API like any
//! other, so a static pod needs the API server to be reachable.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use controllers::runner::{is_conflict, is_not_found};
use k8s_openapi::api::core::v1::{Node, Pod, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::Client;

pub const CONFIG_HASH: &str = "kubernetes.io/config.hash";
pub const CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";
pub const CONFIG_SOURCE: &str = "kubernetes.io/config.source";
pub const CONFIG_SEEN: &str = "kubernetes.io/config.seen";
const CHECK_PERIOD: Duration = Duration::from_secs(20);

/// The pod a manifest makes on `node`; `Err` says why the file is not one.
pub fn from_manifest(text: &str, node: &str) -> Result<Pod, String> {
    let value: serde_json::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    if value.get("kind").and_then(|k| k.as_str()) != Some("Pod") {
        return Err("not a Pod".into());
    }
    let mut pod: Pod = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let name = pod
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or("a static pod needs metadata.name")?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(&pod).unwrap_or_default().hash(&mut h);
    node.hash(&mut h);
    let hash = format!("{:016x}", h.finish());
    pod.metadata.name = Some(format!("{name}-{node}"));
    if pod.metadata.namespace.as_deref().is_none_or(str::is_empty) {
        pod.metadata.namespace = Some("default".into());
    }
    let annotations = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(CONFIG_HASH.into(), hash.clone());
    annotations.insert(CONFIG_MIRROR.into(), hash);
    annotations.insert(CONFIG_SOURCE.into(), "file".into());
    annotations.insert(CONFIG_SEEN.into(), chrono::Utc::now().to_rfc3339());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.node_name = Some(node.to_string());
    // Upstream: static pods tolerate every NoExecute taint.
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    if !tolerations
        .iter()
        .any(|t| t.operator.as_deref() == Some("Exists") && t.key.is_none())
    {
        tolerations.push(Toleration {
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            ..Default::default()
        });
    }
    pod.status = None;
    Ok(pod)
}

fn manifests(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
        })
        .collect();
    files.sort();
    files
}

fn hash_of(pod: &Pod) -> Option<&str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(CONFIG_MIRROR)
        .map(String::as_str)
}

/// Keeps the mirror pods of `dir` in the API, forever.
pub async fn run(client: Client, dir: PathBuf, node: String) {
    loop {
        let wait = match sync(&client, &dir, &node).await {
            Ok(()) => CHECK_PERIOD,
            Err(e) => {
                // E.g. the namespace's service account is not made yet.
                tracing::warn!(dir = %dir.display(), error = %e, "static pods; retrying");
                Duration::from_secs(2)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

async fn sync(client: &Client, dir: &Path, node: &str) -> Result<(), kube::Error> {
    let node_uid = Api::<Node>::all(client.clone())
        .get(node)
        .await?
        .metadata
        .uid
        .unwrap_or_default();
    let mut desired: BTreeMap<(String, String), Pod> = BTreeMap::new();
    for file in manifests(dir) {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "reading a static pod manifest");
                continue;
            }
        };
        match from_manifest(&text, node) {
            Ok(mut pod) => {
                pod.metadata.owner_references = Some(vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "Node".into(),
                    name: node.to_string(),
                    uid: node_uid.clone(),
                    controller: Some(true),
                    ..Default::default()
                }]);
                let key = (
                    pod.metadata.namespace.clone().unwrap_or_default(),
                    pod.metadata.name.clone().unwrap_or_default(),
                );
                desired.insert(key, pod);
            }
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "not a static pod manifest")
            }
        }
    }
    let all: Api<Pod> = Api::all(client.clone());
    let existing = all
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await?;
    let mut mirrors: BTreeMap<(String, String), Pod> = BTreeMap::new();
    for p in existing.items {
        if hash_of(&p).is_some() {
            let key = (
                p.metadata.namespace.clone().unwrap_or_default(),
                p.metadata.name.clone().unwrap_or_default(),
            );
            mirrors.insert(key, p);
        }
    }
    for (key, pod) in &desired {
        let api: Api<Pod> = Api::namespaced(client.clone(), &key.0);
        match mirrors.get(key) {
            Some(m) if hash_of(m) == hash_of(pod) => continue,
            Some(m) if m.metadata.deletion_timestamp.is_none() => {
                // The manifest changed: the old pod goes, the new one comes.
                match api.delete(&key.1, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(e),
                }
                continue;
            }
            Some(_) => continue,
            None => match api.create(&PostParams::default(), pod).await {
                Ok(_) => {
                    tracing::info!(pod = %key.1, namespace = %key.0, "created the mirror pod of a static pod")
                }
                Err(e) if is_conflict(&e) => {}
                Err(e) => return Err(e),
            },
        }
    }
    for (key, m) in &mirrors {
        if !desired.contains_key(key) && m.metadata.deletion_timestamp.is_none() {
            let api: Api<Pod> = Api::namespaced(client.clone(), &key.0);
            match api.delete(&key.1, &DeleteParams::default()).await {
                Ok(_) => {
                    tracing::info!(pod = %key.1, namespace = %key.0, "deleted the pod of a removed static pod manifest")
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_becomes_a_pod_named_after_the_node() {
        let pod = from_manifest(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: busybox\n",
            "node-1",
        )
        .unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("web-node-1"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
        let a = pod.metadata.annotations.as_ref().unwrap();
        assert_eq!(a[CONFIG_SOURCE], "file");
        assert_eq!(a[CONFIG_HASH], a[CONFIG_MIRROR]);
        assert_eq!(
            pod.spec.as_ref().unwrap().node_name.as_deref(),
            Some("node-1")
        );
        assert!(from_manifest("kind: Service\n", "n").is_err());
    }
}
