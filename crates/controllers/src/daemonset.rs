//! The DaemonSet controller (upstream `pkg/controller/daemon`). A sync of
//! one set:
//! 1. finds its ControllerRevision for the current template (named
//!    `<set>-<hash>`, the hash also labelling its pods as
//!    `controller-revision-hash`), creating or renumbering it;
//! 2. claims pods (adopting orphans its selector matches);
//! 3. unless earlier creations and deletions are still unseen: creates a
//!    pod on every eligible node that has none (nodeSelector, required node
//!    affinity, taints against the tolerations plus those every daemon pod
//!    gets), pinned there by a required node affinity on `metadata.name`
//!    for the scheduler to bind; deletes pods on nodes that no longer fit,
//!    failed pods, and extra pods;
//! 4. rolls out a new template (RollingUpdate with maxUnavailable or
//!    maxSurge; OnDelete waits for the user to delete pods);
//! 5. trims the revision history and writes status.

mod placement;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::future::join_all;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;
use tokio::task::JoinSet;

use crate::events::Recorder;
use crate::expectations::Expectations;
use crate::history;
use crate::informer::{Change, Informer, Key};
use crate::owner::{self, CONTROLLER_INDEX};
use crate::queue::WorkQueue;
use crate::runner::{self, Action, Error, Reconciler, Result};
use crate::Context;

pub use placement::{add_daemon_tolerations, should_run, REVISION_LABEL};

const COMPONENT: &str = "daemonset-controller";
/// Upstream's `--concurrent-daemonset-syncs`.
const WORKERS: usize = 2;
/// Upstream's `BurstReplicas` for daemon sets.
const BURST_REPLICAS: usize = 250;

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let sets = ctx.informers.get::<DaemonSet>();
    let pods = ctx.informers.get::<Pod>();
    let nodes = ctx.informers.get::<Node>();
    let revisions = ctx.informers.get::<ControllerRevision>();
    pods.add_index(CONTROLLER_INDEX, owner::index_by_controller);
    revisions.add_index(CONTROLLER_INDEX, owner::index_by_controller);
    let queue = WorkQueue::new();
    let controller = Arc::new(DaemonSetController {
        client: ctx.client.clone(),
        sets: sets.clone(),
        pods: pods.clone(),
        nodes: nodes.clone(),
        revisions: revisions.clone(),
        expectations: Expectations::new(),
        recorder: ctx.recorder(COMPONENT),
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
    {
        let this = controller.clone();
        nodes.on_change(move |change| this.node_changed(change));
    }
    {
        let queue = queue.clone();
        let sets = sets.clone();
        revisions.on_change(move |change| {
            if let Some(key) = owning_set(&sets, &change.object().metadata) {
                queue.add(key);
            }
        });
    }
    let synced = async move {
        sets.wait_synced().await;
        pods.wait_synced().await;
        nodes.wait_synced().await;
        revisions.wait_synced().await;
    };
    runner::spawn_when_synced(tasks, synced, controller, queue, WORKERS);
}

fn owning_set(sets: &Informer<DaemonSet>, meta: &ObjectMeta) -> Option<Key> {
    let r = owner::controller_of(meta)?;
    if r.kind != "DaemonSet" {
        return None;
    }
    let key = Key::new(meta.namespace.clone().unwrap_or_default(), r.name.clone());
    let set = sets.get(&key)?;
    (set.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(key)
}

fn selector_of(ds: &DaemonSet) -> api::LabelSelector {
    owner::selector(ds.spec.as_ref().map(|s| &s.selector))
}

fn set_name(ds: &DaemonSet) -> &str {
    ds.metadata.name.as_deref().unwrap_or_default()
}

fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

struct DaemonSetController {
    client: kube::Client,
    sets: Informer<DaemonSet>,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    revisions: Informer<ControllerRevision>,
    expectations: Expectations,
    recorder: Recorder,
    queue: WorkQueue<Key>,
}

impl DaemonSetController {
    fn pod_changed(&self, change: &Change<'_, Pod>) {
        let uid = |p: &Pod| p.metadata.uid.clone().unwrap_or_default();
        match change {
            Change::Added(pod) => match owning_set(&self.sets, &pod.metadata) {
                Some(key) => {
                    if pod.metadata.deletion_timestamp.is_some() {
                        self.expectations.uid_deleted(&key, &uid(pod));
                    } else {
                        self.expectations.creation_observed(&key);
                    }
                    self.queue.add(key);
                }
                None if owner::controller_of(&pod.metadata).is_none() => self.enqueue_matching(pod),
                None => {}
            },
            Change::Updated { old, new } => {
                let new_owner = owning_set(&self.sets, &new.metadata);
                let old_owner = owning_set(&self.sets, &old.metadata);
                if new.metadata.deletion_timestamp.is_some()
                    && old.metadata.deletion_timestamp.is_none()
                {
                    if let Some(key) = &new_owner {
                        self.expectations.uid_deleted(key, &uid(new));
                    }
                }
                if old_owner != new_owner {
                    if let Some(key) = old_owner {
                        self.queue.add(key);
                    }
                }
                match new_owner {
                    Some(key) => {
                        if !crate::pod::is_ready(old) && crate::pod::is_ready(new) {
                            let min = self
                                .sets
                                .get(&key)
                                .and_then(|s| s.spec.as_ref().and_then(|s| s.min_ready_seconds))
                                .unwrap_or(0);
                            if min > 0 {
                                self.queue
                                    .add_after(key.clone(), Duration::from_secs(min as u64 + 1));
                            }
                        }
                        self.queue.add(key);
                    }
                    None if owner::controller_of(&new.metadata).is_none() => {
                        self.enqueue_matching(new)
                    }
                    None => {}
                }
            }
            Change::Deleted(pod) => {
                if let Some(key) = owning_set(&self.sets, &pod.metadata) {
                    self.expectations.uid_deleted(&key, &uid(pod));
                    self.queue.add(key);
                }
            }
        }
    }

    fn enqueue_matching(&self, pod: &Pod) {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let labels = owner::labels(&pod.metadata);
        for ds in self.sets.list_namespace(ns) {
            if selector_of(&ds).matches(labels) {
                self.queue.add(Key::of(ds.as_ref()));
            }
        }
    }

    /// Node additions and removals, and changes to what placement reads
    /// (labels, taints, unschedulable), wake every set; heartbeats do not.
    fn node_changed(&self, change: &Change<'_, Node>) {
        if let Change::Updated { old, new } = change {
            let spec = |n: &Node| {
                let s = n.spec.clone().unwrap_or_default();
                (s.taints, s.unschedulable)
            };
            if old.metadata.labels == new.metadata.labels && spec(old) == spec(new) {
                return;
            }
        }
        for ds in self.sets.list() {
            self.queue.add(Key::of(ds.as_ref()));
        }
    }

    /// The set's revision for its current template, and the other
    /// (older) revisions (upstream `constructHistory`).
    async fn construct_history(
        &self,
        ds: &DaemonSet,
    ) -> Result<(Arc<ControllerRevision>, Vec<Arc<ControllerRevision>>)> {
        let ns = ds.metadata.namespace.clone().unwrap_or_default();
        let uid = ds.metadata.uid.clone().unwrap_or_default();
        let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), &ns);
        let mut revisions = self.revisions.by_index(CONTROLLER_INDEX, &uid);
        let selector = selector_of(ds);
        for r in self
            .revisions
            .by_index(CONTROLLER_INDEX, &owner::orphan_index_value(&ns))
        {
            if selector.matches(owner::labels(&r.metadata)) {
                match owner::adopt(&api, r.as_ref(), ds).await {
                    Ok(adopted) => revisions.push(Arc::new(adopted)),
                    Err(e) if runner::is_not_found(&e) || runner::is_conflict(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        history::sort(&mut revisions);
        let template = ds
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let collision_count = ds.status.as_ref().and_then(|s| s.collision_count);
        let hash = history::hash_template(&template, collision_count);
        let data = history::template_patch(&template);
        let max = revisions.last().map_or(0, |r| r.revision);
        let (mut current, old): (Vec<_>, Vec<_>) = revisions.into_iter().partition(|r| {
            owner::labels(&r.metadata).get(REVISION_LABEL) == Some(&hash)
                || history::data(r) == &data
        });
        // Duplicates of the current revision: keep the newest.
        let mut stale = Vec::new();
        if current.len() > 1 {
            let keep = current.pop().unwrap();
            stale = std::mem::take(&mut current);
            current.push(keep);
        }
        for r in stale {
            let _ = api
                .delete(
                    r.metadata.name.as_deref().unwrap_or_default(),
                    &DeleteParams::default(),
                )
                .await;
        }
        let cur = match current.pop() {
            Some(r) if r.revision < max => {
                let patched = api
                    .patch(
                        r.metadata.name.as_deref().unwrap_or_default(),
                        &PatchParams::default(),
                        &Patch::Merge(json!({ "revision": max + 1 })),
                    )
                    .await?;
                Arc::new(patched)
            }
            Some(r) => r,
            None => {
                let mut labels = template
                    .metadata
                    .as_ref()
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default();
                labels.insert(REVISION_LABEL.to_string(), hash.clone());
                let name = history::revision_name(set_name(ds), &hash);
                let revision = ControllerRevision {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(ns.clone()),
                        labels: Some(labels),
                        annotations: ds.metadata.annotations.clone(),
                        owner_references: Some(vec![owner::controller_ref(ds)]),
                        ..Default::default()
                    },
                    data: Some(RawExtension(data.clone())),
                    revision: max + 1,
                };
                match api.create(&PostParams::default(), &revision).await {
                    Ok(created) => Arc::new(created),
                    Err(e) if runner::is_conflict(&e) => {
                        // Equal data is this template's revision whoever
                        // owns it (upstream `Match`): one an orphaning delete
                        // left is adopted by a later sync.
                        let existing = api.get(&name).await?;
                        if history::data(&existing) == &data {
                            Arc::new(existing)
                        } else {
                            // A name collision: count it, so the next hash differs.
                            let count = collision_count.unwrap_or(0) + 1;
                            Api::<DaemonSet>::namespaced(self.client.clone(), &ns)
                                .patch_status(
                                    set_name(ds),
                                    &PatchParams::default(),
                                    &Patch::Merge(json!({ "status": { "collisionCount": count } })),
                                )
                                .await?;
                            return Err(Error::Other(format!(
                                "found a hash collision for DaemonSet {:?} - bumping collisionCount to {count} to resolve it",
                                set_name(ds)
                            )));
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        Ok((cur, old))
    }

    /// The set's pods by the node they are on or pinned to; adopts
    /// orphans, releases pods that stopped matching.
    async fn node_pods(&self, ds: &DaemonSet) -> Result<BTreeMap<String, Vec<Arc<Pod>>>> {
        let ns = ds.metadata.namespace.clone().unwrap_or_default();
        let selector = selector_of(ds);
        let matches = |p: &Pod| selector.matches(owner::labels(&p.metadata));
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let sets_api = Api::<DaemonSet>::namespaced(self.client.clone(), &ns);
        let candidates = owner::claim_candidates(&self.pods, &ds.metadata);
        let claimed = owner::claim(&api, ds, &sets_api, candidates, matches, &[]).await?;
        let mut by_node: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
        for p in claimed {
            // A terminal pod being deleted no longer counts.
            if crate::pod::is_terminal(&p) && p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            if let Some(node) = placement::target_node(&p) {
                by_node.entry(node).or_default().push(p);
            }
        }
        Ok(by_node)
    }

    /// Creates pods on `create_on` and deletes `delete` (upstream
    /// `syncNodes`), at most a burst of each per sync.
    async fn sync_nodes(
        &self,
        key: &Key,
        ds: &DaemonSet,
        delete: &[String],
        create_on: &[String],
        hash: &str,
    ) -> Result<()> {
        let ns = ds.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let create_on = &create_on[..create_on.len().min(BURST_REPLICAS)];
        let delete = &delete[..delete.len().min(BURST_REPLICAS)];
        let uids: Vec<(String, Option<String>)> = delete
            .iter()
            .map(|name| {
                let uid = self
                    .pods
                    .get(&Key::new(&ns, name))
                    .and_then(|p| p.metadata.uid.clone());
                (name.clone(), uid)
            })
            .collect();
        self.expectations.expect_uids(
            key,
            create_on.len() as i64,
            uids.iter().filter_map(|(_, u)| u.clone()),
        );
        let mut errors = Vec::new();

        let mut template = ds
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let meta = template.metadata.get_or_insert_with(Default::default);
        let labels = meta.labels.get_or_insert_with(Default::default);
        labels.insert(REVISION_LABEL.to_string(), hash.to_string());
        if let Some(g) = placement::template_generation(ds) {
            labels.insert(
                placement::TEMPLATE_GENERATION_LABEL.to_string(),
                g.to_string(),
            );
        }
        let mut spec = template.spec.clone().unwrap_or_default();
        add_daemon_tolerations(&mut spec);
        let base = Pod {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", set_name(ds))),
                namespace: Some(ns.clone()),
                labels: meta.labels.clone(),
                annotations: meta.annotations.clone(),
                finalizers: meta.finalizers.clone(),
                owner_references: Some(vec![owner::controller_ref(ds)]),
                ..Default::default()
            },
            spec: Some(spec),
            status: None,
        };
        // Slow start: 1, 2, 4, ... creations at a time; stop at a failure.
        let mut done = 0;
        let mut batch = 1;
        while done < create_on.len() {
            let size = batch.min(create_on.len() - done);
            let results = join_all(create_on[done..done + size].iter().map(|node| {
                let mut pod = base.clone();
                let spec = pod.spec.as_mut().unwrap();
                spec.affinity = Some(placement::pin_to_node(spec.affinity.take(), node));
                let api = api.clone();
                async move { api.create(&PostParams::default(), &pod).await }
            }))
            .await;
            let mut failed = false;
            for r in results {
                match r {
                    Ok(p) => self.recorder.normal(
                        ds,
                        "SuccessfulCreate",
                        format!("Created pod: {}", p.metadata.name.unwrap_or_default()),
                    ),
                    Err(e) => {
                        failed = true;
                        self.expectations.creation_observed(key);
                        let message = api_message(&e);
                        if !message.contains("because it is being terminated") {
                            self.recorder.warning(
                                ds,
                                "FailedCreate",
                                format!("Error creating: {message}"),
                            );
                        }
                        errors.push(e);
                    }
                }
            }
            done += size;
            if failed {
                for _ in done..create_on.len() {
                    self.expectations.creation_observed(key);
                }
                break;
            }
            batch *= 2;
        }

        let results = join_all(uids.iter().map(|(name, uid)| {
            let api = api.clone();
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: uid.clone(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            async move { (name, uid, api.delete(name, &dp).await) }
        }))
        .await;
        for (name, uid, r) in results {
            match r {
                Ok(_) => {
                    self.recorder
                        .normal(ds, "SuccessfulDelete", format!("Deleted pod: {name}"))
                }
                Err(e) => {
                    if let Some(uid) = uid {
                        self.expectations.uid_deleted(key, uid);
                    }
                    if !runner::is_not_found(&e) {
                        self.recorder.warning(
                            ds,
                            "FailedDelete",
                            format!("Error deleting: {}", api_message(&e)),
                        );
                        errors.push(e);
                    }
                }
            }
        }
        match errors.into_iter().next() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Deletes old revisions no pod uses beyond `revisionHistoryLimit`
    /// (upstream `cleanupHistory`).
    async fn cleanup_history(
        &self,
        ds: &DaemonSet,
        node_pods: &BTreeMap<String, Vec<Arc<Pod>>>,
        old: &[Arc<ControllerRevision>],
    ) -> Result<()> {
        let limit = ds
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10)
            .max(0) as usize;
        if old.len() <= limit {
            return Ok(());
        }
        let live: HashSet<&str> = node_pods
            .values()
            .flatten()
            .filter_map(|p| {
                owner::labels(&p.metadata)
                    .get(REVISION_LABEL)
                    .map(String::as_str)
            })
            .collect();
        let unused: Vec<&Arc<ControllerRevision>> = old
            .iter()
            .filter(|r| {
                owner::labels(&r.metadata)
                    .get(REVISION_LABEL)
                    .is_none_or(|h| !live.contains(h.as_str()))
            })
            .collect();
        let excess = old.len() - limit;
        let api: Api<ControllerRevision> = Api::namespaced(
            self.client.clone(),
            ds.metadata.namespace.as_deref().unwrap_or_default(),
        );
        for r in unused.into_iter().take(excess) {
            match api
                .delete(
                    r.metadata.name.as_deref().unwrap_or_default(),
                    &DeleteParams::default(),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if runner::is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn update_status(
        &self,
        ds: &DaemonSet,
        nodes: &[Arc<Node>],
        hash: &str,
        observed: bool,
    ) -> Result<placement::Counts> {
        // Read the pods again: this sync's own writes may have landed.
        let node_pods = self.node_pods_cached(ds);
        let c = placement::count(ds, nodes, &node_pods, hash, Utc::now());
        let old = ds.status.clone().unwrap_or_default();
        let status = DaemonSetStatus {
            desired_number_scheduled: c.desired,
            current_number_scheduled: c.current,
            number_misscheduled: c.misscheduled,
            number_ready: c.ready,
            number_available: Some(c.available),
            number_unavailable: Some(c.desired - c.available),
            updated_number_scheduled: Some(c.updated),
            observed_generation: if observed {
                ds.metadata.generation
            } else {
                old.observed_generation
            },
            collision_count: old.collision_count,
            conditions: old.conditions.clone(),
        };
        if status != old {
            Api::<DaemonSet>::namespaced(
                self.client.clone(),
                ds.metadata.namespace.as_deref().unwrap_or_default(),
            )
            .patch_status(
                set_name(ds),
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await?;
        }
        Ok(c)
    }

    /// The set's pods by node from the cache alone (no adoption).
    fn node_pods_cached(&self, ds: &DaemonSet) -> BTreeMap<String, Vec<Arc<Pod>>> {
        let selector = selector_of(ds);
        let mut by_node: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
        for p in self.pods.by_index(
            CONTROLLER_INDEX,
            ds.metadata.uid.as_deref().unwrap_or_default(),
        ) {
            if !selector.matches(owner::labels(&p.metadata))
                || (crate::pod::is_terminal(&p) && p.metadata.deletion_timestamp.is_some())
            {
                continue;
            }
            if let Some(node) = placement::target_node(&p) {
                by_node.entry(node).or_default().push(p);
            }
        }
        by_node
    }
}

#[async_trait::async_trait]
impl Reconciler for DaemonSetController {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let Some(ds) = self.sets.get(key) else {
            self.expectations.forget(key);
            return Ok(Action::Done);
        };
        if ds.metadata.deletion_timestamp.is_some() {
            return Ok(Action::Done);
        }
        let everything = ds.spec.as_ref().is_some_and(|s| {
            s.selector
                .match_labels
                .as_ref()
                .is_none_or(|m| m.is_empty())
                && s.selector
                    .match_expressions
                    .as_ref()
                    .is_none_or(|e| e.is_empty())
        });
        if everything {
            self.recorder.warning(
                ds.as_ref(),
                "SelectingAll",
                "This daemon set is selecting all pods. A non-empty selector is required.",
            );
            return Ok(Action::Done);
        }
        let mut nodes = self.nodes.list();
        nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let (current, old) = self.construct_history(&ds).await?;
        let hash = owner::labels(&current.metadata)
            .get(REVISION_LABEL)
            .cloned()
            .unwrap_or_default();
        if !self.expectations.satisfied(key) {
            self.update_status(&ds, &nodes, &hash, false).await?;
            return Ok(Action::Done);
        }
        let node_pods = self.node_pods(&ds).await?;
        let plan = placement::plan(&ds, &nodes, &node_pods, &hash);
        for failed in &plan.failed {
            self.recorder.warning(
                ds.as_ref(),
                "FailedDaemonPod",
                format!(
                    "Found failed daemon pod {}/{} on node {}, will try to kill it",
                    key.namespace, failed.name, failed.node
                ),
            );
        }
        self.sync_nodes(key, &ds, &plan.delete, &plan.create_on, &hash)
            .await?;
        if self.expectations.satisfied(key) && placement::is_rolling_update(&ds) {
            let spec = placement::daemon_spec(&ds);
            let desired = nodes
                .iter()
                .filter(|n| {
                    spec.as_ref()
                        .is_some_and(|s| placement::spec_should_run(s, n).0)
                })
                .count() as i32;
            let (delete, create) =
                placement::rolling_update(&ds, &node_pods, desired, &hash, Utc::now());
            if !delete.is_empty() || !create.is_empty() {
                self.sync_nodes(key, &ds, &delete, &create, &hash).await?;
            }
        }
        self.cleanup_history(&ds, &node_pods, &old).await?;
        let counts = self.update_status(&ds, &nodes, &hash, true).await?;
        let min_ready = ds
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0);
        if min_ready > 0 && counts.ready != counts.available {
            return Ok(Action::RequeueAfter(Duration::from_secs(min_ready as u64)));
        }
        Ok(Action::Done)
    }
}
