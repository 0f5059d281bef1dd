//! Watches on the configMaps and secrets that this node's pods mount, one
//! per object with a `metadata.name` field selector (as upstream's
//! watch-based configMap and secret managers do), so that an edit reaches
//! the pods' volumes without waiting for the periodic refresh.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::Api;
use tokio::sync::mpsc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    ConfigMap,
    Secret,
}

/// A configMap or secret in a namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

/// The configMaps and secrets whose contents are in `pod`'s volumes
/// (configMap and secret volumes, and projected sources).
pub fn referenced_objects(pod: &Pod) -> HashSet<ObjectKey> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let key = |kind, name: &str| ObjectKey {
        kind,
        namespace: namespace.clone(),
        name: name.to_string(),
    };
    let mut out = HashSet::new();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        if let Some(cm) = &v.config_map {
            out.insert(key(Kind::ConfigMap, &cm.name));
        }
        if let Some(name) = v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) {
            out.insert(key(Kind::Secret, name));
        }
        for source in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(cm) = &source.config_map {
                out.insert(key(Kind::ConfigMap, &cm.name));
            }
            if let Some(s) = &source.secret {
                out.insert(key(Kind::Secret, &s.name));
            }
        }
    }
    out
}

struct Entry {
    pods: HashSet<String>,
    task: tokio::task::JoinHandle<()>,
}

/// The watches of the objects the set-up pods reference; a change is sent
/// as the object's key.
pub struct Watches {
    client: kube::Client,
    changes: mpsc::UnboundedSender<ObjectKey>,
    entries: Mutex<HashMap<ObjectKey, Entry>>,
}

impl Watches {
    pub fn new(client: kube::Client) -> (Watches, mpsc::UnboundedReceiver<ObjectKey>) {
        let (changes, rx) = mpsc::unbounded_channel();
        let watches = Watches {
            client,
            changes,
            entries: Mutex::new(HashMap::new()),
        };
        (watches, rx)
    }

    /// Watches what `pod` references (from now on, for as long as a pod
    /// that references it is here).
    pub fn add_pod(&self, pod: &Pod) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut entries = self.entries.lock().expect("lock");
        for key in referenced_objects(pod) {
            if let Some(entry) = entries.get_mut(&key) {
                entry.pods.insert(uid.clone());
                continue;
            }
            let task = self.spawn_watch(key.clone());
            entries.insert(
                key,
                Entry {
                    pods: HashSet::from([uid.clone()]),
                    task,
                },
            );
        }
    }

    /// Stops watching what only the pod `uid` referenced.
    pub fn remove_pod(&self, uid: &str) {
        self.entries.lock().expect("lock").retain(|_, entry| {
            entry.pods.remove(uid);
            if entry.pods.is_empty() {
                entry.task.abort();
                false
            } else {
                true
            }
        });
    }

    /// The pods that reference `key`.
    pub fn pods_of(&self, key: &ObjectKey) -> Vec<String> {
        self.entries
            .lock()
            .expect("lock")
            .get(key)
            .map(|e| e.pods.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn spawn_watch(&self, key: ObjectKey) -> tokio::task::JoinHandle<()> {
        let client = self.client.clone();
        let changes = self.changes.clone();
        tokio::spawn(async move {
            match key.kind {
                Kind::ConfigMap => {
                    let api: Api<ConfigMap> = Api::namespaced(client, &key.namespace);
                    watch_object(api, key, changes).await
                }
                Kind::Secret => {
                    let api: Api<Secret> = Api::namespaced(client, &key.namespace);
                    watch_object(api, key, changes).await
                }
            }
        })
    }
}

impl Drop for Watches {
    fn drop(&mut self) {
        for entry in self.entries.lock().expect("lock").values() {
            entry.task.abort();
        }
    }
}

/// Sends `key` whenever the object changes (created, updated, deleted, or
/// possibly changed while the watch was re-listing).
async fn watch_object<K>(api: Api<K>, key: ObjectKey, changes: mpsc::UnboundedSender<ObjectKey>)
where
    K: kube::Resource + Clone + std::fmt::Debug + Send + serde::de::DeserializeOwned + 'static,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={}", key.name));
    let mut stream = watcher(api, config).default_backoff().boxed();
    let mut listed_once = false;
    while let Some(event) = stream.next().await {
        let changed = match event {
            Ok(Event::Apply(_)) | Ok(Event::Delete(_)) => true,
            Ok(Event::InitDone) => std::mem::replace(&mut listed_once, true),
            Ok(Event::Init) | Ok(Event::InitApply(_)) => false,
            Err(e) => {
                tracing::debug!(object = ?key, error = %e, "watching a mounted object");
                false
            }
        };
        if changed && changes.send(key.clone()).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_reference_the_configmaps_and_secrets_of_their_volumes() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": { "namespace": "shop", "uid": "u" },
            "spec": {
                "containers": [],
                "volumes": [
                    { "name": "a", "configMap": { "name": "cfg" } },
                    { "name": "b", "secret": { "secretName": "sec" } },
                    { "name": "c", "emptyDir": {} },
                    { "name": "d", "projected": { "sources": [
                        { "configMap": { "name": "kube-root-ca.crt" } },
                        { "secret": { "name": "sec" } },
                        { "serviceAccountToken": { "path": "token" } }
                    ] } }
                ]
            }
        }))
        .unwrap();
        let mut keys: Vec<(Kind, String)> = referenced_objects(&pod)
            .into_iter()
            .map(|k| {
                assert_eq!(k.namespace, "shop");
                (k.kind, k.name)
            })
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                (Kind::ConfigMap, "cfg".to_string()),
                (Kind::ConfigMap, "kube-root-ca.crt".to_string()),
                (Kind::Secret, "sec".to_string()),
            ]
        );
    }
}
