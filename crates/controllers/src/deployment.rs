//! The Deployment controller (upstream `pkg/controller/deployment`): rolls
//! a deployment's pod template out through ReplicaSets named
//! `<deployment>-<pod-template-hash>`, RollingUpdate within maxSurge and
//! maxUnavailable or Recreate, scales them in proportion when the
//! deployment is scaled mid-rollout, keeps revisions for `kubectl rollout
//! history/undo`, reports progress against progressDeadlineSeconds, and
//! prunes old ReplicaSets beyond revisionHistoryLimit.
//!
//! The arithmetic lives in [`util`] without IO; this module and its
//! submodules (`sync`, `rolling`, `recreate`, `progress`, `rollback`, as
//! upstream splits them) read the informers and write through the API.

pub mod util;

mod progress;
mod recreate;
mod rollback;
mod rolling;
mod sync;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;
use tokio::task::JoinSet;

use crate::events::Recorder;
use crate::informer::{Change, Informer, Key};
use crate::owner::{self, CONTROLLER_INDEX};
use crate::queue::WorkQueue;
use crate::runner::{self, Action, Error, Reconciler, Result};
use crate::Context;

const COMPONENT: &str = "deployment-controller";
/// Upstream `--concurrent-deployment-syncs`.
const WORKERS: usize = 5;

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let deployments = ctx.informers.get::<Deployment>();
    let replica_sets = ctx.informers.get::<ReplicaSet>();
    let pods = ctx.informers.get::<Pod>();
    replica_sets.add_index(CONTROLLER_INDEX, owner::index_by_controller);
    pods.add_index(CONTROLLER_INDEX, owner::index_by_controller);
    let queue: WorkQueue<Key> = WorkQueue::new();

    {
        let queue = queue.clone();
        deployments.on_change(move |change| queue.add(Key::of(change.object().as_ref())));
    }
    {
        let queue = queue.clone();
        let deployments = deployments.clone();
        replica_sets.on_change(move |change| on_replica_set(&deployments, &queue, change));
    }
    {
        let queue = queue.clone();
        let deployments = deployments.clone();
        let replica_sets = replica_sets.clone();
        let pods_cache = pods.clone();
        pods.on_change(move |change| {
            if let Change::Deleted(pod) = change {
                on_pod_deleted(&deployments, &replica_sets, &pods_cache, &queue, pod);
            }
        });
    }

    let controller = Arc::new(DeploymentController {
        client: ctx.client.clone(),
        deployments,
        replica_sets,
        pods,
        recorder: ctx.recorder(COMPONENT),
    });
    runner::spawn(controller, queue, WORKERS, tasks);
}

/// The deployment a controller reference names, if it still is that one.
fn resolve(
    deployments: &Informer<Deployment>,
    namespace: &str,
    r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> Option<Arc<Deployment>> {
    if r.kind != "Deployment" {
        return None;
    }
    deployments
        .get(&Key::new(namespace, &r.name))
        .filter(|d| d.metadata.uid.as_deref() == Some(r.uid.as_str()))
}

/// Deployments in the ReplicaSet's namespace whose selector takes it.
fn deployments_selecting(
    deployments: &Informer<Deployment>,
    rs: &ReplicaSet,
) -> Vec<Arc<Deployment>> {
    let labels = owner::labels(&rs.metadata);
    if labels.is_empty() {
        return Vec::new();
    }
    deployments
        .list_namespace(rs.metadata.namespace.as_deref().unwrap_or_default())
        .into_iter()
        .filter(|d| {
            let sel = owner::selector(d.spec.as_ref().map(|s| &s.selector));
            !sel.is_empty() && sel.matches(labels)
        })
        .collect()
}

fn on_replica_set(
    deployments: &Informer<Deployment>,
    queue: &WorkQueue<Key>,
    change: &Change<'_, ReplicaSet>,
) {
    let rs = change.object();
    let ns = rs.metadata.namespace.clone().unwrap_or_default();
    let enqueue = |d: &Deployment| queue.add(Key::of(d));
    match change {
        Change::Added(_) | Change::Deleted(_) => {
            if let Some(r) = owner::controller_of(&rs.metadata) {
                if let Some(d) = resolve(deployments, &ns, r) {
                    enqueue(&d);
                }
            } else if matches!(change, Change::Added(_)) {
                // An orphan: whoever selects it may adopt it.
                deployments_selecting(deployments, rs)
                    .iter()
                    .for_each(|d| enqueue(d));
            }
        }
        Change::Updated { old, new } => {
            if old.metadata.resource_version == new.metadata.resource_version {
                return;
            }
            let cur_ref = owner::controller_of(&new.metadata);
            let old_ref = owner::controller_of(&old.metadata);
            let ref_changed = cur_ref != old_ref;
            if ref_changed {
                if let Some(d) = old_ref.and_then(|r| resolve(deployments, &ns, r)) {
                    enqueue(&d);
                }
            }
            if let Some(r) = cur_ref {
                if let Some(d) = resolve(deployments, &ns, r) {
                    enqueue(&d);
                }
                return;
            }
            if ref_changed || old.metadata.labels != new.metadata.labels {
                deployments_selecting(deployments, new)
                    .iter()
                    .for_each(|d| enqueue(d));
            }
        }
    }
}

/// A Recreate rollout waits for the old pods to be gone: the last one's
/// deletion wakes its deployment.
fn on_pod_deleted(
    deployments: &Informer<Deployment>,
    replica_sets: &Informer<ReplicaSet>,
    pods: &Informer<Pod>,
    queue: &WorkQueue<Key>,
    pod: &Pod,
) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let Some(r) = owner::controller_of(&pod.metadata).filter(|r| r.kind == "ReplicaSet") else {
        return;
    };
    let Some(rs) = replica_sets
        .get(&Key::new(&ns, &r.name))
        .filter(|rs| rs.metadata.uid.as_deref() == Some(r.uid.as_str()))
    else {
        return;
    };
    let Some(d) = owner::controller_of(&rs.metadata).and_then(|r| resolve(deployments, &ns, r))
    else {
        return;
    };
    if util::strategy_type(&d) != util::RECREATE {
        return;
    }
    // Sync once none of the deployment's ReplicaSets has a pod left.
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let left = replica_sets
        .by_index(CONTROLLER_INDEX, &uid)
        .iter()
        .any(|rs| {
            let rs_uid = rs.metadata.uid.clone().unwrap_or_default();
            !pods.by_index(CONTROLLER_INDEX, &rs_uid).is_empty()
        });
    if !left {
        queue.add(Key::of(d.as_ref()));
    }
}

pub struct DeploymentController {
    client: Client,
    deployments: Informer<Deployment>,
    replica_sets: Informer<ReplicaSet>,
    pods: Informer<Pod>,
    recorder: Recorder,
}

#[async_trait::async_trait]
impl Reconciler for DeploymentController {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        self.deployments.wait_synced().await;
        self.replica_sets.wait_synced().await;
        self.pods.wait_synced().await;
        let Some(d) = self.deployments.get(key) else {
            return Ok(Action::Done);
        };
        let mut run = Run::new(self, (*d).clone());
        run.sync_deployment().await?;
        Ok(match run.requeue {
            Some(after) => Action::RequeueAfter(after),
            None => Action::Done,
        })
    }
}

/// One sync of one deployment: the deployment as this sync has written
/// it, and its ReplicaSets as last read or written.
pub(crate) struct Run<'a> {
    c: &'a DeploymentController,
    d: Deployment,
    /// The annotations the API has, to tell whether a status write must
    /// carry annotation changes too.
    written_annotations: Option<BTreeMap<String, String>>,
    rs_list: Vec<ReplicaSet>,
    requeue: Option<Duration>,
}

impl<'a> Run<'a> {
    fn new(c: &'a DeploymentController, d: Deployment) -> Run<'a> {
        Run {
            c,
            written_annotations: d.metadata.annotations.clone(),
            d,
            rs_list: Vec::new(),
            requeue: None,
        }
    }

    fn ns(&self) -> &str {
        self.d.metadata.namespace.as_deref().unwrap_or_default()
    }

    fn name(&self) -> &str {
        self.d.metadata.name.as_deref().unwrap_or_default()
    }

    fn rs_api(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.c.client.clone(), self.ns())
    }

    fn d_api(&self) -> Api<Deployment> {
        Api::namespaced(self.c.client.clone(), self.ns())
    }

    /// Upstream `syncDeployment`.
    async fn sync_deployment(&mut self) -> Result<()> {
        let selector = &self
            .d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        let empty = selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
            && selector
                .match_expressions
                .as_ref()
                .is_none_or(|m| m.is_empty());
        if empty {
            self.c.recorder.warning(
                &self.d,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            );
            let generation = self.d.metadata.generation;
            let status = self.d.status.get_or_insert_with(Default::default);
            if status.observed_generation < generation {
                status.observed_generation = generation;
                self.write_status().await?;
            }
            return Ok(());
        }

        self.rs_list = self.claim_replica_sets().await?;

        if self.d.metadata.deletion_timestamp.is_some() {
            return self.sync_status_only().await;
        }

        // Pausing and resuming set an Unknown Progressing condition, so a
        // deployment resumed after its deadline does not time out at once.
        self.check_paused_conditions().await?;

        if util::paused(&self.d) {
            return self.sync().await;
        }

        if rollback::rollback_to(&self.d).is_some() {
            return self.rollback().await;
        }

        if self.is_scaling_event().await? {
            return self.sync().await;
        }

        match util::strategy_type(&self.d) {
            util::RECREATE => self.rollout_recreate().await,
            util::ROLLING_UPDATE => self.rollout_rolling().await,
            other => Err(Error::Other(format!(
                "unexpected deployment strategy type: {other}"
            ))),
        }
    }

    /// The ReplicaSets this deployment controls, after adopting orphans
    /// its selector takes and releasing its own that it no longer selects
    /// (upstream `ClaimReplicaSets`).
    async fn claim_replica_sets(&mut self) -> Result<Vec<ReplicaSet>> {
        let ns = self.ns().to_string();
        let uid = self.d.metadata.uid.clone().unwrap_or_default();
        let selector = owner::selector(self.d.spec.as_ref().map(|s| &s.selector));
        let deleting = self.d.metadata.deletion_timestamp.is_some();
        let mut candidates = self.c.replica_sets.by_index(CONTROLLER_INDEX, &uid);
        candidates.extend(
            self.c
                .replica_sets
                .by_index(CONTROLLER_INDEX, &owner::orphan_index_value(&ns)),
        );
        candidates.retain(|rs| rs.metadata.namespace.as_deref() == Some(ns.as_str()));
        candidates.sort_by(|a, b| util::by_creation(a, b));

        let api = self.rs_api();
        let mut owned = Vec::new();
        let mut can_adopt: Option<bool> = None;
        for rs in candidates {
            let matches = selector.matches(owner::labels(&rs.metadata));
            match owner::controller_of(&rs.metadata) {
                Some(r) if r.uid == uid => {
                    if matches {
                        owned.push((*rs).clone());
                    } else if !deleting {
                        match owner::release(&api, rs.as_ref(), &uid).await {
                            Ok(_) => {}
                            Err(e) if runner::is_not_found(&e) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
                Some(_) => {}
                None => {
                    if deleting || !matches || rs.metadata.deletion_timestamp.is_some() {
                        continue;
                    }
                    if can_adopt.is_none() {
                        // Recheck with a live read that the deployment is
                        // not being deleted before adopting anything.
                        let fresh = self.d_api().get(self.name()).await?;
                        if fresh.metadata.uid.as_deref() != Some(uid.as_str()) {
                            return Err(Error::Other(format!(
                                "original Deployment {}/{} is gone: got uid {}, wanted {}",
                                ns,
                                self.name(),
                                fresh.metadata.uid.unwrap_or_default(),
                                uid
                            )));
                        }
                        if fresh.metadata.deletion_timestamp.is_some() {
                            return Err(Error::Other(format!(
                                "{}/{} has just been deleted",
                                ns,
                                self.name()
                            )));
                        }
                        can_adopt = Some(true);
                    }
                    match owner::adopt(&api, rs.as_ref(), &self.d).await {
                        Ok(adopted) => owned.push(adopted),
                        Err(e) if runner::is_not_found(&e) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(owned)
    }

    /// Pods of each of the deployment's ReplicaSets, by ReplicaSet uid.
    fn pod_map(&self) -> BTreeMap<String, Vec<Arc<Pod>>> {
        let selector = owner::selector(self.d.spec.as_ref().map(|s| &s.selector));
        self.rs_list
            .iter()
            .map(|rs| {
                let uid = rs.metadata.uid.clone().unwrap_or_default();
                let pods = self
                    .c
                    .pods
                    .by_index(CONTROLLER_INDEX, &uid)
                    .into_iter()
                    .filter(|p| selector.matches(owner::labels(&p.metadata)))
                    .collect();
                (uid, pods)
            })
            .collect()
    }

    /// Replaces (or adds) a ReplicaSet in this sync's list after a write.
    fn remember(&mut self, rs: &ReplicaSet) {
        match self
            .rs_list
            .iter_mut()
            .find(|x| x.metadata.uid == rs.metadata.uid)
        {
            Some(slot) => *slot = rs.clone(),
            None => self.rs_list.push(rs.clone()),
        }
    }

    async fn update_rs(&mut self, rs: &ReplicaSet) -> Result<ReplicaSet> {
        let name = rs.metadata.name.clone().unwrap_or_default();
        let updated = self
            .rs_api()
            .replace(&name, &PostParams::default(), rs)
            .await?;
        self.remember(&updated);
        Ok(updated)
    }

    /// Writes the deployment's status (upstream `UpdateStatus`), and
    /// first its annotations if this sync changed them (the revision).
    async fn write_status(&mut self) -> Result<()> {
        let api = self.d_api();
        let name = self.name().to_string();
        if self.d.metadata.annotations != self.written_annotations {
            let mut changes = serde_json::Map::new();
            for (k, v) in self.d.metadata.annotations.iter().flatten() {
                if self.written_annotations.as_ref().and_then(|a| a.get(k)) != Some(v) {
                    changes.insert(k.clone(), json!(v));
                }
            }
            for k in self.written_annotations.iter().flatten().map(|(k, _)| k) {
                if !self
                    .d
                    .metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(k))
                {
                    changes.insert(k.clone(), serde_json::Value::Null);
                }
            }
            let patch = json!({
                "metadata": {
                    "annotations": changes,
                    "resourceVersion": self.d.metadata.resource_version,
                }
            });
            let updated = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            self.d.metadata.resource_version = updated.metadata.resource_version;
            self.written_annotations = self.d.metadata.annotations.clone();
        }
        let body = serde_json::to_vec(&self.d).map_err(|e| Error::Other(e.to_string()))?;
        let updated = api
            .replace_status(&name, &PostParams::default(), body)
            .await?;
        self.d.metadata.resource_version = updated.metadata.resource_version;
        Ok(())
    }

    /// Writes the deployment itself (spec and annotations; a rollback).
    async fn write_deployment(&mut self) -> Result<()> {
        let name = self.name().to_string();
        let updated = self
            .d_api()
            .replace(&name, &PostParams::default(), &self.d)
            .await?;
        self.written_annotations = updated.metadata.annotations.clone();
        self.d = updated;
        Ok(())
    }

    /// The new ReplicaSet (by uid) and the others, from this sync's list.
    fn split(&self, new_uid: Option<&str>) -> (Option<ReplicaSet>, Vec<ReplicaSet>) {
        let mut new = None;
        let mut old = Vec::new();
        for rs in &self.rs_list {
            if new_uid.is_some() && rs.metadata.uid.as_deref() == new_uid {
                new = Some(rs.clone());
            } else {
                old.push(rs.clone());
            }
        }
        (new, old)
    }
}

fn uid(rs: &ReplicaSet) -> String {
    rs.metadata.uid.clone().unwrap_or_default()
}

fn rs_name(rs: &ReplicaSet) -> String {
    rs.metadata.name.clone().unwrap_or_default()
}

fn active(rss: &[ReplicaSet]) -> Vec<ReplicaSet> {
    rss.iter()
        .filter(|rs| util::rs_replicas(rs) > 0)
        .cloned()
        .collect()
}

fn all_of<'r>(new_rs: Option<&'r ReplicaSet>, old: &'r [ReplicaSet]) -> Vec<&'r ReplicaSet> {
    old.iter().chain(new_rs).collect()
}

fn api_message(e: &Error) -> String {
    match e {
        Error::Kube(kube::Error::Api(s)) => s.message.clone(),
        e => e.to_string(),
    }
}
