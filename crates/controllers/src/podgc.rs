//! The pod garbage collector (upstream `pkg/controller/podgc`, component
//! `pod-garbage-collector`). Every pass (20 s) it force-deletes, after
//! marking them Failed:
//! - terminated pods beyond `--terminated-pod-gc-threshold`, evicted ones
//!   first, then oldest first;
//! - terminating pods on a node that is not Ready and carries the
//!   `node.kubernetes.io/out-of-service` taint;
//! - pods bound to a node that no longer exists, once the node has been
//!   missing for a quarantine (40 s) and the API confirms it is gone
//!   (condition DisruptionTarget, reason DeletionByPodGC);
//! - terminating pods that were never scheduled.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::informer::{Informer, Key};
use crate::node_lifecycle;
use crate::pod;
use crate::runner::is_not_found;
use crate::Context;

/// Upstream's `gcCheckPeriod`.
const GC_PERIOD: Duration = Duration::from_secs(20);
const TAINT_OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let quarantine = ctx.options.pod_gc_orphan_quarantine;
    let mut gc = PodGc {
        client: ctx.client.clone(),
        pods: ctx.informers.get::<Pod>(),
        nodes: ctx.informers.get::<Node>(),
        threshold: ctx.options.terminated_pod_gc_threshold,
        quarantine,
        missing: HashMap::new(),
    };
    // A quarantine shortened below the period is checked more often.
    let period = GC_PERIOD
        .min(quarantine / 2)
        .max(Duration::from_millis(500));
    tasks.spawn(async move {
        gc.pods.wait_synced().await;
        gc.nodes.wait_synced().await;
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            gc.pass().await;
        }
    });
}

struct PodGc {
    client: kube::Client,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    threshold: usize,
    quarantine: Duration,
    /// Nodes pods are bound to that were missing, and since when.
    missing: HashMap<String, Instant>,
}

fn evicted(p: &Pod) -> bool {
    pod::phase(p) == "Failed"
        && p.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("Evicted")
}

/// Upstream `byEvictionAndCreationTimestamp`: evicted pods first, then the
/// oldest, then by name.
pub fn gc_order(a: &Pod, b: &Pod) -> Ordering {
    evicted(b)
        .cmp(&evicted(a))
        .then_with(|| {
            let t = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            t(a).cmp(&t(b))
        })
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// The terminated pods to delete so that at most `threshold` remain.
pub fn terminated_to_delete(pods: &[Arc<Pod>], threshold: usize) -> Vec<Arc<Pod>> {
    if threshold == 0 {
        return Vec::new();
    }
    let mut terminated: Vec<Arc<Pod>> = pods
        .iter()
        .filter(|p| pod::is_terminal(p))
        .cloned()
        .collect();
    if terminated.len() <= threshold {
        return Vec::new();
    }
    let excess = terminated.len() - threshold;
    terminated.sort_by(|a, b| gc_order(a, b));
    terminated.truncate(excess);
    terminated
}

fn node_name(p: &Pod) -> &str {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

impl PodGc {
    async fn pass(&mut self) {
        let pods = self.pods.list();
        if self.threshold > 0 {
            for p in terminated_to_delete(&pods, self.threshold) {
                self.delete(&p, None).await;
            }
        }
        self.gc_terminating(&pods).await;
        self.gc_orphaned(&pods).await;
        for p in pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_some() && node_name(p).is_empty())
        {
            self.delete(p, None).await;
        }
    }

    /// Terminating pods on out-of-service nodes (upstream `gcTerminating`).
    async fn gc_terminating(&self, pods: &[Arc<Pod>]) {
        let mut doomed: Vec<&Arc<Pod>> = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_some() && !node_name(p).is_empty())
            .filter(|p| {
                self.nodes
                    .get(&Key::cluster(node_name(p)))
                    .is_some_and(|n| {
                        let ready = node_lifecycle::condition(&n, "Ready")
                            .is_some_and(|c| c.status == "True");
                        let out_of_service = n
                            .spec
                            .as_ref()
                            .and_then(|s| s.taints.as_ref())
                            .is_some_and(|ts| ts.iter().any(|t| t.key == TAINT_OUT_OF_SERVICE));
                        !ready && out_of_service
                    })
            })
            .collect();
        doomed.sort_by(|a, b| gc_order(a, b));
        for p in doomed {
            self.delete(p, None).await;
        }
    }

    /// Pods of nodes that are gone (upstream `gcOrphaned`).
    async fn gc_orphaned(&mut self, pods: &[Arc<Pod>]) {
        let existing: HashSet<String> = self
            .nodes
            .list()
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        let now = Instant::now();
        let mut wanted = HashSet::new();
        for p in pods {
            let n = node_name(p);
            if !n.is_empty() && !existing.contains(n) {
                wanted.insert(n.to_string());
                self.missing.entry(n.to_string()).or_insert(now);
            }
        }
        self.missing.retain(|n, _| wanted.contains(n));
        let due: Vec<String> = self
            .missing
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= self.quarantine)
            .map(|(n, _)| n.clone())
            .collect();
        let api: Api<Node> = Api::all(self.client.clone());
        let mut deleted = HashSet::new();
        for name in due {
            match api.get_opt(&name).await {
                Ok(None) => {
                    deleted.insert(name);
                }
                Ok(Some(_)) => {
                    self.missing.remove(&name);
                }
                Err(e) => {
                    tracing::warn!(node = %name, error = %e, "checking whether a node exists")
                }
            }
        }
        if deleted.is_empty() {
            return;
        }
        let condition = json!({
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists",
            "lastTransitionTime": Time(Utc::now()),
        });
        for p in pods.iter().filter(|p| deleted.contains(node_name(p))) {
            tracing::info!(pod = %Key::of(p.as_ref()), node = node_name(p), "deleting the pod of a node that no longer exists");
            self.delete(p, Some(condition.clone())).await;
        }
    }

    /// Upstream `markFailedAndDeletePodWithCondition`: a pod not yet
    /// finished is marked Failed (so that it does not stay Running with no
    /// kubelet to say otherwise), then deleted with no grace period.
    async fn delete(&self, p: &Pod, condition: Option<Value>) {
        let key = Key::of(p);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.namespace);
        if !pod::is_terminal(p) {
            let mut status = json!({ "phase": "Failed" });
            if let Some(c) = condition {
                status["conditions"] = json!([c]);
            }
            let patch = json!({ "metadata": { "uid": p.metadata.uid }, "status": status });
            match api
                .patch_status(
                    &key.name,
                    &PatchParams::default(),
                    &Patch::Strategic(&patch),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => return,
                Err(e) => {
                    tracing::warn!(pod = %key, error = %e, "marking a pod Failed before deleting it");
                    return;
                }
            }
        }
        let mut params = DeleteParams::default().grace_period(0);
        params.preconditions = p.metadata.uid.clone().map(|uid| kube::api::Preconditions {
            uid: Some(uid),
            resource_version: None,
        });
        match api.delete(&key.name, &params).await {
            Ok(_) => tracing::info!(pod = %key, "pod GC deleted the pod"),
            Err(e) if is_not_found(&e) => {}
            Err(e) => tracing::warn!(pod = %key, error = %e, "pod GC deleting a pod"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(name: &str, phase: &str, age_secs: i64, reason: Option<&str>) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(Utc::now() - chrono::Duration::seconds(age_secs))),
                ..Default::default()
            },
            status: Some(PodStatus {
                phase: Some(phase.into()),
                reason: reason.map(Into::into),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn terminated_pods_beyond_the_threshold_go_evicted_then_oldest_first() {
        let pods = vec![
            pod("new", "Succeeded", 10, None),
            pod("old", "Failed", 100, None),
            pod("running", "Running", 1000, None),
            pod("evicted", "Failed", 5, Some("Evicted")),
            pod("middle", "Succeeded", 50, None),
        ];
        let names = |v: Vec<Arc<Pod>>| {
            v.iter()
                .map(|p| p.metadata.name.clone().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(terminated_to_delete(&pods, 2)),
            vec!["evicted", "old"]
        );
        assert!(terminated_to_delete(&pods, 4).is_empty());
        assert!(terminated_to_delete(&pods, 0).is_empty());
    }
}
