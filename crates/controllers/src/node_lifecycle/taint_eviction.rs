//! The NoExecute taint manager (upstream `pkg/controller/tainteviction`,
//! component `taint-eviction-controller`): a pod on a node with NoExecute
//! taints it does not tolerate is deleted at once; one that tolerates them
//! for a while (`tolerationSeconds`, 300 s from the DefaultTolerationSeconds
//! admission) is deleted when the shortest toleration runs out, unless the
//! taints go first. Each deletion is preceded by a `TaintManagerEviction`
//! event and a `DisruptionTarget` pod condition.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Taint, Toleration};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use tokio::task::JoinSet;

use super::{tolerates, NODE_NAME_INDEX, NO_EXECUTE};
use crate::events::{Recorder, NORMAL};
use crate::informer::{Change, Informer, Key};
use crate::queue::WorkQueue;
use crate::runner::{self, is_not_found, Action, Reconciler, Result};
use crate::Context;

const COMPONENT: &str = "taint-eviction-controller";
/// Upstream's `UpdateWorkerSize`.
const WORKERS: usize = 8;

fn no_execute_taints(node: &Node) -> Vec<Taint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.effect == NO_EXECUTE)
        .cloned()
        .collect()
}

fn tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()?
        .node_name
        .as_deref()
        .filter(|n| !n.is_empty())
}

/// How long a pod may stay on a node with `taints` (upstream
/// `GetMatchingTolerations` + `getMinTolerationTime`): `None` if some taint
/// is not tolerated (evict now), `Some(None)` if all are tolerated forever.
pub fn toleration_time(taints: &[Taint], tolerations: &[Toleration]) -> Option<Option<Duration>> {
    let mut used = Vec::new();
    for taint in taints {
        used.push(tolerations.iter().find(|t| tolerates(t, taint))?);
    }
    if used.is_empty() {
        return Some(Some(Duration::ZERO));
    }
    let mut min: Option<i64> = None;
    for t in used {
        if let Some(s) = t.toleration_seconds {
            if s <= 0 {
                return Some(Some(Duration::ZERO));
            }
            min = Some(min.map_or(s, |m| m.min(s)));
        }
    }
    Some(min.map(|s| Duration::from_secs(s as u64)))
}

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let nodes = ctx.informers.get::<Node>();
    let pods = ctx.informers.get::<Pod>();
    pods.add_index(NODE_NAME_INDEX, super::index_by_node_name);
    let queue = WorkQueue::new();
    let controller = Arc::new(TaintEviction {
        client: ctx.client.clone(),
        nodes: nodes.clone(),
        pods: pods.clone(),
        recorder: ctx.recorder(COMPONENT),
        scheduled: Mutex::new(HashMap::new()),
    });
    {
        let queue = queue.clone();
        pods.on_change(move |change| {
            // Upstream looks again only when the node or tolerations change.
            if let Change::Updated { old, new } = change {
                if node_name(old) == node_name(new) && tolerations(old) == tolerations(new) {
                    return;
                }
            }
            queue.add(Key::of(change.object().as_ref()));
        });
    }
    {
        let queue = queue.clone();
        let pods = pods.clone();
        nodes.on_change(move |change| {
            let (old, new) = match change {
                Change::Added(n) => (Vec::new(), no_execute_taints(n)),
                Change::Updated { old, new } => (no_execute_taints(old), no_execute_taints(new)),
                Change::Deleted(n) => (no_execute_taints(n), Vec::new()),
            };
            if old == new {
                return;
            }
            let name = change.object().metadata.name.clone().unwrap_or_default();
            for pod in pods.by_index(NODE_NAME_INDEX, &name) {
                queue.add(Key::of(pod.as_ref()));
            }
        });
    }
    tasks.spawn(async move {
        nodes.wait_synced().await;
        pods.wait_synced().await;
        let mut workers = JoinSet::new();
        runner::spawn(controller, queue, WORKERS, &mut workers);
        while workers.join_next().await.is_some() {}
    });
}

struct TaintEviction {
    client: kube::Client,
    nodes: Informer<Node>,
    pods: Informer<Pod>,
    recorder: Recorder,
    /// Pods waiting out their toleration: when the wait started and when
    /// it ends (upstream `TimedWorkerQueue`).
    scheduled: Mutex<HashMap<Key, (Instant, Instant)>>,
}

fn pod_ref(key: &Key) -> ObjectReference {
    // Upstream names the pod without its uid.
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some(key.name.clone()),
        namespace: Some(key.namespace.clone()),
        ..Default::default()
    }
}

impl TaintEviction {
    fn cancel(&self, key: &Key) {
        if self.scheduled.lock().unwrap().remove(key).is_some() {
            self.recorder.record(
                pod_ref(key),
                NORMAL,
                "TaintManagerEviction",
                format!("Cancelling deletion of Pod {key}"),
            );
        }
    }

    async fn evict(&self, key: &Key) -> Result<Action> {
        self.scheduled.lock().unwrap().remove(key);
        self.recorder.record(
            pod_ref(key),
            NORMAL,
            "TaintManagerEviction",
            format!("Marking for deletion Pod {key}"),
        );
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.namespace);
        let pod = match api.get(&key.name).await {
            Ok(p) => p,
            Err(e) if is_not_found(&e) => return Ok(Action::Done),
            Err(e) => return Err(e.into()),
        };
        let marked = crate::pod::condition(&pod, "DisruptionTarget").is_some_and(|c| {
            c.status == "True" && c.reason.as_deref() == Some("DeletionByTaintManager")
        });
        if !marked {
            let patch = json!({
                "metadata": { "uid": pod.metadata.uid },
                "status": { "conditions": [{
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": "DeletionByTaintManager",
                    "message": "Taint manager: deleting due to NoExecute taint",
                    "lastTransitionTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(chrono::Utc::now()),
                }] },
            });
            match api
                .patch_status(
                    &key.name,
                    &PatchParams::default(),
                    &Patch::Strategic(&patch),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => return Ok(Action::Done),
                Err(e) => return Err(e.into()),
            }
        }
        match api.delete(&key.name, &DeleteParams::default()).await {
            Ok(_) => Ok(Action::Done),
            Err(e) if is_not_found(&e) => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait::async_trait]
impl Reconciler for TaintEviction {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let Some(pod) = self.pods.get(key) else {
            self.cancel(key);
            return Ok(Action::Done);
        };
        let Some(node) = node_name(&pod).and_then(|n| self.nodes.get(&Key::cluster(n))) else {
            self.scheduled.lock().unwrap().remove(key);
            return Ok(Action::Done);
        };
        let taints = no_execute_taints(&node);
        if taints.is_empty() {
            self.cancel(key);
            return Ok(Action::Done);
        }
        let now = Instant::now();
        let wait = match toleration_time(&taints, tolerations(&pod)) {
            None => {
                self.cancel(key);
                return self.evict(key).await;
            }
            Some(None) => {
                self.cancel(key);
                return Ok(Action::Done);
            }
            Some(Some(wait)) => wait,
        };
        let fire = {
            let mut scheduled = self.scheduled.lock().unwrap();
            scheduled.entry(key.clone()).or_insert((now, now + wait)).1
        };
        if fire <= now {
            return self.evict(key).await;
        }
        Ok(Action::RequeueAfter(fire - now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_lifecycle::{taint, TAINT_NOT_READY, TAINT_UNREACHABLE};

    fn toleration(key: &str, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(NO_EXECUTE.into()),
            toleration_seconds: seconds,
            ..Default::default()
        }
    }

    #[test]
    fn an_untolerated_taint_evicts_at_once() {
        let taints = [taint(TAINT_UNREACHABLE, NO_EXECUTE)];
        assert_eq!(toleration_time(&taints, &[]), None);
        assert_eq!(
            toleration_time(&taints, &[toleration(TAINT_NOT_READY, Some(5))]),
            None
        );
    }

    #[test]
    fn the_shortest_matching_toleration_wins() {
        let taints = [taint(TAINT_UNREACHABLE, NO_EXECUTE), taint("x", NO_EXECUTE)];
        let tols = [
            toleration(TAINT_UNREACHABLE, Some(300)),
            toleration("x", Some(7)),
        ];
        assert_eq!(
            toleration_time(&taints, &tols),
            Some(Some(Duration::from_secs(7)))
        );
    }

    #[test]
    fn a_toleration_without_seconds_tolerates_forever() {
        let taints = [taint(TAINT_UNREACHABLE, NO_EXECUTE)];
        assert_eq!(
            toleration_time(&taints, &[toleration(TAINT_UNREACHABLE, None)]),
            Some(None)
        );
        assert_eq!(
            toleration_time(&taints, &[toleration(TAINT_UNREACHABLE, Some(0))]),
            Some(Some(Duration::ZERO))
        );
    }
}
