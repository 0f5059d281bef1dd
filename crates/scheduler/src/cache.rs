//! The scheduler cache: the [`Snapshot`] kept current from informer
//! changes, plus pods the scheduler has placed but whose binding the
//! informer has not shown yet ("assumed" pods, so a burst of decisions does
//! not overcommit a node), and pods nominated to a node by preemption.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::snapshot::{PodInfo, PodKey, Snapshot};

#[derive(Default)]
pub struct Cache {
    pub snapshot: Snapshot,
    assumed: HashSet<PodKey>,
    /// Node → pods nominated there (status.nominatedNodeName).
    pub nominated: HashMap<String, Vec<Arc<PodInfo>>>,
    nominated_at: HashMap<PodKey, String>,
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }

    pub fn upsert_node(&mut self, node: Arc<Node>) {
        self.snapshot.upsert_node(node);
    }

    pub fn remove_node(&mut self, name: &str) {
        self.snapshot.remove_node(name);
    }

    /// A pod as the informer shows it now.
    pub fn upsert_pod(&mut self, pod: &Arc<Pod>) {
        let key = PodKey::of(pod);
        if node_name(pod).is_some() {
            self.assumed.remove(&key);
            self.unnominate(&key);
            self.snapshot.upsert_pod(pod.clone());
            return;
        }
        // Not bound (yet): an assumed pod keeps its place until the binding
        // shows up or fails.
        if !self.assumed.contains(&key) {
            self.snapshot.remove_pod(&key);
        }
        let nominated = pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .filter(|n| !n.is_empty());
        match nominated {
            Some(node) if pod.metadata.deletion_timestamp.is_none() => {
                self.unnominate(&key);
                self.nominated
                    .entry(node.to_string())
                    .or_default()
                    .push(Arc::new(PodInfo::new(pod.clone())));
                self.nominated_at.insert(key, node.to_string());
            }
            _ => self.unnominate(&key),
        }
    }

    pub fn remove_pod(&mut self, key: &PodKey) {
        self.assumed.remove(key);
        self.unnominate(key);
        self.snapshot.remove_pod(key);
    }

    fn unnominate(&mut self, key: &PodKey) {
        if let Some(node) = self.nominated_at.remove(key) {
            if let Some(list) = self.nominated.get_mut(&node) {
                list.retain(|p| &p.key != key);
                if list.is_empty() {
                    self.nominated.remove(&node);
                }
            }
        }
    }

    /// Places `pod` on `node` before the API has confirmed it.
    pub fn assume(&mut self, pod: &Pod, node: &str) {
        let mut bound = pod.clone();
        bound.spec.get_or_insert_with(Default::default).node_name = Some(node.to_string());
        let key = PodKey::of(pod);
        self.unnominate(&key);
        self.snapshot.upsert_pod(Arc::new(bound));
        self.assumed.insert(key);
    }

    /// The binding failed: the assumed pod leaves its node.
    pub fn forget(&mut self, key: &PodKey) {
        if self.assumed.remove(key) {
            self.snapshot.remove_pod(key);
        }
    }

    pub fn is_assumed(&self, key: &PodKey) -> bool {
        self.assumed.contains(key)
    }
}
