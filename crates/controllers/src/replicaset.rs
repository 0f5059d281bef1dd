//! The ReplicaSet and ReplicationController controllers (upstream
//! `pkg/controller/replicaset`; the ReplicationController one is the same
//! code over the older kind). A sync of one set:
//! 1. claims pods: adopts orphans its selector matches, releases pods it
//!    controls that stopped matching, leaves pods of other controllers alone;
//! 2. if its earlier creations and deletions have all been seen, creates or
//!    deletes pods to reach `spec.replicas` (creations in slow-start batches
//!    of 1, 2, 4, ...; surplus pods deleted in upstream's order: unscheduled,
//!    pending, not ready, ... newest first);
//! 3. writes status: replicas, fullyLabeledReplicas, readyReplicas,
//!    availableReplicas, observedGeneration, the ReplicaFailure condition.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::future::join_all;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{
    Pod, PodTemplateSpec, ReplicationController, ReplicationControllerCondition,
    ReplicationControllerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector as MetaSelector, ObjectMeta, Time,
};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::Resource;
use serde_json::json;
use tokio::task::JoinSet;

use crate::events::Recorder;
use crate::expectations::Expectations;
use crate::informer::{Change, Informer, Key, Object};
use crate::owner::{self, CONTROLLER_INDEX};
use crate::pod;
use crate::queue::WorkQueue;
use crate::runner::{self, Action, Reconciler, Result};
use crate::Context;

/// Upstream's `BurstReplicas`: at most this many creations or deletions per sync.
const BURST_REPLICAS: usize = 500;
/// Upstream's `ConcurrentRSSyncs`.
const WORKERS: usize = 5;
/// Annotation that ranks pods for deletion (lower cost goes first).
const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// What the controller needs of a replicated kind, so one controller serves
/// ReplicaSets and ReplicationControllers.
pub trait Replicated: Object + Resource<Scope = k8s_openapi::NamespaceResourceScope> {
    /// Upstream's component name in events.
    const COMPONENT: &'static str;
    fn selector(&self) -> api::LabelSelector;
    fn template(&self) -> Option<&PodTemplateSpec>;
    fn replicas(&self) -> i32;
    fn min_ready_seconds(&self) -> i32;
    fn status(&self) -> Counts;
    /// The status to write, keeping fields this controller does not own.
    fn status_patch(&self, counts: &Counts, failure: Option<(&str, &str)>) -> serde_json::Value;
}

/// The replica counts of a status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub replicas: i32,
    pub fully_labeled: i32,
    pub ready: i32,
    pub available: i32,
    pub observed_generation: i64,
    /// The ReplicaFailure condition's (reason, message), if set.
    pub failure: Option<(String, String)>,
}

impl Replicated for ReplicaSet {
    const COMPONENT: &'static str = "replicaset-controller";
    fn selector(&self) -> api::LabelSelector {
        owner::selector(self.spec.as_ref().map(|s| &s.selector))
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn status(&self) -> Counts {
        let s = self.status.clone().unwrap_or_default();
        Counts {
            replicas: s.replicas,
            fully_labeled: s.fully_labeled_replicas.unwrap_or(0),
            ready: s.ready_replicas.unwrap_or(0),
            available: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
            failure: failure_of(
                s.conditions
                    .iter()
                    .flatten()
                    .map(|c| (&c.type_, &c.reason, &c.message)),
            ),
        }
    }
    fn status_patch(&self, c: &Counts, failure: Option<(&str, &str)>) -> serde_json::Value {
        let old = self.status.clone().unwrap_or_default();
        let conditions = set_failure(
            old.conditions.unwrap_or_default(),
            failure,
            |c: &ReplicaSetCondition| c.type_ == "ReplicaFailure",
            |reason, message| ReplicaSetCondition {
                type_: "ReplicaFailure".into(),
                status: "True".into(),
                reason: Some(reason.into()),
                message: Some(message.into()),
                last_transition_time: Some(Time(Utc::now())),
            },
        );
        let status = ReplicaSetStatus {
            replicas: c.replicas,
            fully_labeled_replicas: Some(c.fully_labeled),
            ready_replicas: Some(c.ready),
            available_replicas: Some(c.available),
            observed_generation: Some(c.observed_generation),
            conditions: (!conditions.is_empty()).then_some(conditions),
            ..old
        };
        json!({ "status": status })
    }
}

impl Replicated for ReplicationController {
    const COMPONENT: &'static str = "replication-controller";
    fn selector(&self) -> api::LabelSelector {
        // A ReplicationController's selector is a plain map; an empty one
        // defaults (at the API) to the template's labels.
        let set = self
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default();
        if set.is_empty() {
            return api::LabelSelector::Nothing;
        }
        owner::selector(Some(&MetaSelector {
            match_labels: Some(set),
            match_expressions: None,
        }))
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn status(&self) -> Counts {
        let s = self.status.clone().unwrap_or_default();
        Counts {
            replicas: s.replicas,
            fully_labeled: s.fully_labeled_replicas.unwrap_or(0),
            ready: s.ready_replicas.unwrap_or(0),
            available: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
            failure: failure_of(
                s.conditions
                    .iter()
                    .flatten()
                    .map(|c| (&c.type_, &c.reason, &c.message)),
            ),
        }
    }
    fn status_patch(&self, c: &Counts, failure: Option<(&str, &str)>) -> serde_json::Value {
        let old = self.status.clone().unwrap_or_default();
        let conditions = set_failure(
            old.conditions.unwrap_or_default(),
            failure,
            |c: &ReplicationControllerCondition| c.type_ == "ReplicaFailure",
            |reason, message| ReplicationControllerCondition {
                type_: "ReplicaFailure".into(),
                status: "True".into(),
                reason: Some(reason.into()),
                message: Some(message.into()),
                last_transition_time: Some(Time(Utc::now())),
            },
        );
        let status = ReplicationControllerStatus {
            replicas: c.replicas,
            fully_labeled_replicas: Some(c.fully_labeled),
            ready_replicas: Some(c.ready),
            available_replicas: Some(c.available),
            observed_generation: Some(c.observed_generation),
            conditions: (!conditions.is_empty()).then_some(conditions),
        };
        json!({ "status": status })
    }
}

fn failure_of<'a>(
    conditions: impl Iterator<Item = (&'a String, &'a Option<String>, &'a Option<String>)>,
) -> Option<(String, String)> {
    conditions
        .filter(|(t, ..)| t.as_str() == "ReplicaFailure")
        .map(|(_, r, m)| (r.clone().unwrap_or_default(), m.clone().unwrap_or_default()))
        .next()
}

/// Sets or clears the ReplicaFailure condition, keeping the others.
fn set_failure<C>(
    mut conditions: Vec<C>,
    failure: Option<(&str, &str)>,
    is_failure: impl Fn(&C) -> bool,
    make: impl Fn(&str, &str) -> C,
) -> Vec<C> {
    let existing = conditions.iter().position(&is_failure);
    match (failure, existing) {
        (Some((reason, message)), None) => conditions.push(make(reason, message)),
        (Some((reason, message)), Some(i)) => conditions[i] = make(reason, message),
        (None, Some(i)) => {
            conditions.remove(i);
        }
        (None, None) => {}
    }
    conditions
}

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    start_kind::<ReplicaSet>(ctx, tasks);
    start_kind::<ReplicationController>(ctx, tasks);
}

fn start_kind<K: Replicated>(ctx: &Context, tasks: &mut JoinSet<()>) {
    let sets = ctx.informers.get::<K>();
    let pods = ctx.informers.get::<Pod>();
    pods.add_index(CONTROLLER_INDEX, owner::index_by_controller);
    let queue = WorkQueue::new();
    let controller = Arc::new(ReplicaSetController {
        client: ctx.client.clone(),
        sets: sets.clone(),
        pods: pods.clone(),
        expectations: Expectations::new(),
        recorder: ctx.recorder(K::COMPONENT),
        queue: queue.clone(),
    });
    {
        let queue = queue.clone();
        sets.on_change(move |change| queue.add(Key::of(change.object().as_ref())));
    }
    {
        let this = controller.clone();
        pods.on_change(move |change| this.pod_changed(change));
    }
    let synced = async move {
        sets.wait_synced().await;
        pods.wait_synced().await;
    };
    runner::spawn_when_synced(tasks, synced, controller, queue, WORKERS);
}

pub struct ReplicaSetController<K: Replicated> {
    client: kube::Client,
    sets: Informer<K>,
    pods: Informer<Pod>,
    expectations: Expectations,
    recorder: Recorder,
    queue: WorkQueue<Key>,
}

impl<K: Replicated> ReplicaSetController<K> {
    /// The set controlling `pod`, if it is one of ours and still exists.
    fn owner_key(&self, pod: &Pod) -> Option<Key> {
        let r = owner::controller_of(&pod.metadata)?;
        if r.kind != K::kind(&()) {
            return None;
        }
        let key = Key::new(
            pod.metadata.namespace.clone().unwrap_or_default(),
            r.name.clone(),
        );
        let set = self.sets.get(&key)?;
        (set.meta().uid.as_deref() == Some(r.uid.as_str())).then_some(key)
    }

    /// The sets whose selector matches an orphan pod.
    fn matching_sets(&self, pod: &Pod) -> Vec<Key> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let labels = owner::labels(&pod.metadata);
        self.sets
            .list_namespace(ns)
            .into_iter()
            .filter(|s| s.selector().matches(labels))
            .map(|s| Key::of(s.as_ref()))
            .collect()
    }

    fn pod_changed(&self, change: &Change<'_, Pod>) {
        match change {
            Change::Added(pod) => {
                if let Some(key) = self.owner_key(pod) {
                    if pod.metadata.deletion_timestamp.is_some() {
                        self.expectations
                            .uid_deleted(&key, pod.metadata.uid.as_deref().unwrap_or_default());
                    } else {
                        self.expectations.creation_observed(&key);
                    }
                    self.queue.add(key);
                } else if owner::controller_of(&pod.metadata).is_none() {
                    for key in self.matching_sets(pod) {
                        self.queue.add(key);
                    }
                }
            }
            Change::Updated { old, new } => {
                let new_owner = self.owner_key(new);
                if new.metadata.deletion_timestamp.is_some()
                    && old.metadata.deletion_timestamp.is_none()
                {
                    if let Some(key) = &new_owner {
                        self.expectations
                            .uid_deleted(key, new.metadata.uid.as_deref().unwrap_or_default());
                    }
                }
                let old_owner = self.owner_key(old);
                if old_owner != new_owner {
                    if let Some(key) = old_owner {
                        self.queue.add(key);
                    }
                }
                match new_owner {
                    Some(key) => {
                        // A pod that just became ready becomes available
                        // after minReadySeconds: look again then.
                        if !pod::is_ready(old) && pod::is_ready(new) {
                            if let Some(set) = self.sets.get(&key) {
                                let min = set.min_ready_seconds();
                                if min > 0 {
                                    self.queue.add_after(
                                        key.clone(),
                                        Duration::from_secs(min as u64 + 1),
                                    );
                                }
                            }
                        }
                        self.queue.add(key);
                    }
                    None if owner::controller_of(&new.metadata).is_none()
                        && (old.metadata.labels != new.metadata.labels
                            || owner::controller_of(&old.metadata).is_some()) =>
                    {
                        for key in self.matching_sets(new) {
                            self.queue.add(key);
                        }
                    }
                    None => {}
                }
            }
            Change::Deleted(pod) => {
                if let Some(key) = self.owner_key(pod) {
                    self.expectations
                        .uid_deleted(&key, pod.metadata.uid.as_deref().unwrap_or_default());
                    self.queue.add(key);
                }
            }
        }
    }

    fn api(&self, namespace: &str) -> Api<K> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Claims pods for `set`: its own that still match, plus adopted
    /// orphans; releases its own that no longer match. Returns the claimed
    /// active pods.
    async fn claim_pods(&self, set: &K) -> Result<Vec<Arc<Pod>>> {
        let ns = set.meta().namespace.clone().unwrap_or_default();
        let selector = set.selector();
        let candidates = owner::claim_candidates(&self.pods, set.meta())
            .into_iter()
            .filter(|p| pod::is_active(p));
        let pods_api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let matches = |p: &Pod| selector.matches(owner::labels(&p.metadata));
        Ok(owner::claim(&pods_api, set, &self.api(&ns), candidates, matches, &[]).await?)
    }

    /// Creates or deletes pods to reach the wanted count. Returns the
    /// ReplicaFailure (reason, message) when a write failed.
    async fn manage_replicas(
        &self,
        key: &Key,
        set: &K,
        pods: &[Arc<Pod>],
    ) -> Option<(String, String)> {
        let want = set.replicas().max(0) as usize;
        let ns = key.namespace.as_str();
        let pods_api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        match pods.len().cmp(&want) {
            Ordering::Less => {
                let n = (want - pods.len()).min(BURST_REPLICAS);
                self.expectations.expect(key, n as i64, 0);
                let Some(template) = set.template() else {
                    for _ in 0..n {
                        self.expectations.creation_observed(key);
                    }
                    return None;
                };
                let pod = pod_from_template(set, template);
                let mut failure = None;
                let mut created = 0;
                let mut batch = 1;
                // Slow start: 1, 2, 4, ... at a time; stop at the first failure.
                while created < n {
                    let size = batch.min(n - created);
                    let pp = PostParams::default();
                    let results = join_all((0..size).map(|_| pods_api.create(&pp, &pod))).await;
                    let mut failed = 0;
                    for r in results {
                        match r {
                            Ok(p) => self.recorder.normal(
                                set,
                                "SuccessfulCreate",
                                format!("Created pod: {}", p.metadata.name.unwrap_or_default()),
                            ),
                            Err(e) => {
                                failed += 1;
                                self.expectations.creation_observed(key);
                                let message = api_message(&e);
                                // A terminating namespace refuses new pods;
                                // that is not the set's failure.
                                if !message.contains("because it is being terminated") {
                                    self.recorder.warning(
                                        set,
                                        "FailedCreate",
                                        format!("Error creating: {message}"),
                                    );
                                    failure = Some(("FailedCreate".to_string(), message));
                                }
                            }
                        }
                    }
                    created += size;
                    if failed > 0 {
                        // The rest of this sync's creations will not happen.
                        for _ in created..n {
                            self.expectations.creation_observed(key);
                        }
                        break;
                    }
                    batch *= 2;
                }
                failure
            }
            Ordering::Greater => {
                let n = (pods.len() - want).min(BURST_REPLICAS);
                let victims = pods_to_delete(pods, n);
                self.expectations.expect_uids(
                    key,
                    0,
                    victims.iter().filter_map(|p| p.metadata.uid.clone()),
                );
                let results = join_all(victims.iter().map(|p| {
                    let name = p.metadata.name.clone().unwrap_or_default();
                    let dp = DeleteParams {
                        preconditions: Some(Preconditions {
                            uid: p.metadata.uid.clone(),
                            resource_version: None,
                        }),
                        ..Default::default()
                    };
                    let pods_api = pods_api.clone();
                    async move {
                        let r = pods_api.delete(&name, &dp).await;
                        (name, r)
                    }
                }))
                .await;
                let mut failure = None;
                for ((name, r), p) in results.into_iter().zip(&victims) {
                    match r {
                        Ok(_) => self.recorder.normal(
                            set,
                            "SuccessfulDelete",
                            format!("Deleted pod: {name}"),
                        ),
                        Err(e) => {
                            self.expectations
                                .uid_deleted(key, p.metadata.uid.as_deref().unwrap_or_default());
                            if !runner::is_not_found(&e) {
                                let message = api_message(&e);
                                self.recorder.warning(
                                    set,
                                    "FailedDelete",
                                    format!("Error deleting: {message}"),
                                );
                                failure = Some(("FailedDelete".to_string(), message));
                            }
                        }
                    }
                }
                failure
            }
            Ordering::Equal => None,
        }
    }
}

#[async_trait::async_trait]
impl<K: Replicated> Reconciler for ReplicaSetController<K> {
    fn name(&self) -> &'static str {
        K::COMPONENT
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let Some(set) = self.sets.get(key) else {
            self.expectations.forget(key);
            return Ok(Action::Done);
        };
        let needs_sync =
            self.expectations.satisfied(key) && set.meta().deletion_timestamp.is_none();
        let pods = self.claim_pods(set.as_ref()).await?;
        let mut failure = None;
        if needs_sync {
            failure = self.manage_replicas(key, set.as_ref(), &pods).await;
        }
        let now = Utc::now();
        let min_ready = set.min_ready_seconds();
        let template_labels = set
            .template()
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let counts = Counts {
            replicas: pods.len() as i32,
            fully_labeled: pods
                .iter()
                .filter(|p| {
                    let labels = owner::labels(&p.metadata);
                    template_labels
                        .iter()
                        .all(|(k, v)| labels.get(k) == Some(v))
                })
                .count() as i32,
            ready: pods.iter().filter(|p| pod::is_ready(p)).count() as i32,
            available: pods
                .iter()
                .filter(|p| pod::is_available(p, min_ready, now))
                .count() as i32,
            observed_generation: set.meta().generation.unwrap_or(0),
            failure: failure.clone().or_else(|| {
                // Keep an earlier failure until a sync manages replicas cleanly.
                if needs_sync {
                    None
                } else {
                    set.status().failure
                }
            }),
        };
        if counts != set.status() {
            let patch = set.status_patch(
                &counts,
                counts
                    .failure
                    .as_ref()
                    .map(|(r, m)| (r.as_str(), m.as_str())),
            );
            let name = key.name.as_str();
            match self
                .api(&key.namespace)
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(e) if runner::is_not_found(&e) => return Ok(Action::Done),
                Err(e) => return Err(e.into()),
            }
        }
        // Ready pods become available once minReadySeconds pass.
        if min_ready > 0 && counts.ready > counts.available {
            let wait = pods
                .iter()
                .filter_map(|p| pod::until_available(p, min_ready, now))
                .min()
                .unwrap_or(Duration::from_secs(1));
            return Ok(Action::RequeueAfter(wait + Duration::from_millis(100)));
        }
        Ok(Action::Done)
    }
}

/// A new pod from `set`'s template (upstream `GetPodFromTemplate`).
pub fn pod_from_template<K: Resource<DynamicType = ()>>(
    set: &K,
    template: &PodTemplateSpec,
) -> Pod {
    let tm = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!(
                "{}-",
                set.meta().name.as_deref().unwrap_or_default()
            )),
            namespace: set.meta().namespace.clone(),
            labels: tm.labels,
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: Some(vec![owner::controller_ref(set)]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// The message of an API error as the API server wrote it.
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// The `n` pods to delete first, in upstream's order
/// (`ActivePodsWithRanks`): unscheduled before scheduled; Pending before
/// Unknown before Running; not ready before ready; lower deletion cost;
/// pods doubled up on a node before others; ready for a shorter time; more
/// restarts; newer.
pub fn pods_to_delete(pods: &[Arc<Pod>], n: usize) -> Vec<Arc<Pod>> {
    let mut per_node: HashMap<&str, i32> = HashMap::new();
    for p in pods {
        if let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            *per_node.entry(node).or_default() += 1;
        }
    }
    let rank = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .and_then(|n| per_node.get(n).copied())
            .unwrap_or(0)
    };
    let mut sorted: Vec<Arc<Pod>> = pods.to_vec();
    sorted.sort_by(|a, b| delete_order(a, b, rank(a), rank(b)));
    sorted.truncate(n);
    sorted
}

fn delete_order(a: &Pod, b: &Pod, rank_a: i32, rank_b: i32) -> Ordering {
    let assigned = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    let phase_rank = |p: &Pod| match pod::phase(p) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    };
    let cost = |p: &Pod| {
        p.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(POD_DELETION_COST))
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(0)
    };
    assigned(a)
        .cmp(&assigned(b))
        .then(phase_rank(a).cmp(&phase_rank(b)))
        .then(pod::is_ready(a).cmp(&pod::is_ready(b)))
        .then(cost(a).cmp(&cost(b)))
        .then(rank_b.cmp(&rank_a))
        // Ready for less time first: the later transition goes first.
        .then_with(|| match (pod::ready_since(a), pod::ready_since(b)) {
            (Some(x), Some(y)) => y.cmp(&x),
            _ => Ordering::Equal,
        })
        .then(pod::restart_count(b).cmp(&pod::restart_count(a)))
        .then_with(|| {
            let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            created(b).cmp(&created(a))
        })
}

/// Labels as a map, for tests and callers that build pods.
pub fn label_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};

    fn pod(
        name: &str,
        node: Option<&str>,
        phase: &str,
        ready: bool,
        created_secs: i64,
    ) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(
                    chrono::DateTime::from_timestamp(created_secs, 0).unwrap(),
                )),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(String::from),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        })
    }

    fn names(pods: &[Arc<Pod>]) -> Vec<String> {
        pods.iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect()
    }

    #[test]
    fn surplus_pods_are_deleted_unscheduled_then_pending_then_not_ready_first() {
        let pods = vec![
            pod("running-ready", Some("n1"), "Running", true, 1),
            pod("unscheduled", None, "Pending", false, 1),
            pod("running-not-ready", Some("n2"), "Running", false, 1),
            pod("pending", Some("n3"), "Pending", false, 1),
        ];
        assert_eq!(
            names(&pods_to_delete(&pods, 4)),
            [
                "unscheduled",
                "pending",
                "running-not-ready",
                "running-ready"
            ]
        );
    }

    #[test]
    fn among_equal_pods_the_newest_and_doubled_up_go_first() {
        let pods = vec![
            pod("old", Some("n1"), "Running", false, 1),
            pod("new", Some("n2"), "Running", false, 5),
            pod("doubled-a", Some("n3"), "Running", false, 1),
            pod("doubled-b", Some("n3"), "Running", false, 2),
        ];
        assert_eq!(names(&pods_to_delete(&pods, 2)), ["doubled-b", "doubled-a"]);
        assert_eq!(names(&pods_to_delete(&pods[..2], 1)), ["new"]);
    }

    #[test]
    fn a_pod_from_a_template_is_controlled_by_its_set_and_named_after_it() {
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some("web-abc".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(label_map(&[("app", "web")])),
                ..Default::default()
            }),
            spec: Some(PodSpec::default()),
        };
        let p = pod_from_template(&rs, &template);
        assert_eq!(p.metadata.generate_name.as_deref(), Some("web-abc-"));
        assert_eq!(p.metadata.namespace.as_deref(), Some("ns"));
        let refs = p.metadata.owner_references.unwrap();
        assert_eq!(refs[0].kind, "ReplicaSet");
        assert_eq!(refs[0].uid, "u1");
        assert_eq!(refs[0].controller, Some(true));
        assert_eq!(refs[0].block_owner_deletion, Some(true));
    }
}
