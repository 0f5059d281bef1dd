//! The StatefulSet controller (upstream `pkg/controller/statefulset`). A
//! sync of one set:
//! 1. claims pods named as its members whose labels match its selector
//!    (adopting orphans, releasing members that stopped matching);
//! 2. finds its current and update ControllerRevisions, creating the update
//!    revision `<set>-<hash>` when the template changed (or renumbering an
//!    older equal one, which is how `kubectl rollout undo` rolls back);
//! 3. brings the members to `spec.replicas`: a missing ordinal gets its
//!    claims `<template>-<set>-<ordinal>` and then its pod `<set>-<ordinal>`;
//!    OrderedReady goes one pod at a time, waiting for each to be Running
//!    and Ready, and scales down from the highest ordinal; Parallel does all
//!    at once. Claims get the owner references the retention policy asks
//!    for, so the garbage collector deletes them with the set or the pod;
//! 4. for RollingUpdate, deletes the highest-ordinal pod at or above the
//!    partition that is not at the update revision, one at a time, once all
//!    are available (the recreated pod comes back at the update revision);
//!    OnDelete leaves that to the user;
//! 5. writes status and trims the revision history.

mod pods;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::future::join_all;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::events::Recorder;
use crate::history;
use crate::informer::{Change, Informer, Key};
use crate::owner::{self, CONTROLLER_INDEX};
use crate::pod as podutil;
use crate::queue::WorkQueue;
use crate::runner::{self, Action, Error, Reconciler, Result};
use crate::Context;

pub use pods::{POD_INDEX_LABEL, POD_NAME_LABEL, REVISION_LABEL};

const COMPONENT: &str = "statefulset-controller";
/// Upstream's `--concurrent-statefulset-syncs`.
const WORKERS: usize = 5;
/// Upstream's `MaxBatchSize` for Parallel pod management.
const MAX_BATCH: usize = 500;

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let sets = ctx.informers.get::<StatefulSet>();
    let pods = ctx.informers.get::<Pod>();
    let revisions = ctx.informers.get::<ControllerRevision>();
    let claims = ctx.informers.get::<PersistentVolumeClaim>();
    pods.add_index(CONTROLLER_INDEX, owner::index_by_controller);
    revisions.add_index(CONTROLLER_INDEX, owner::index_by_controller);
    let queue = WorkQueue::new();
    let controller = Arc::new(StatefulSetController {
        client: ctx.client.clone(),
        sets: sets.clone(),
        pods: pods.clone(),
        revisions: revisions.clone(),
        claims: claims.clone(),
        recorder: ctx.recorder(COMPONENT),
    });
    {
        let queue = queue.clone();
        sets.on_change(move |change| queue.add(Key::of(change.object().as_ref())));
    }
    {
        let queue = queue.clone();
        let sets = sets.clone();
        pods.on_change(move |change| {
            for key in sets_of_pod(&sets, change) {
                queue.add(key);
            }
        });
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
    tasks.spawn(async move {
        sets.wait_synced().await;
        pods.wait_synced().await;
        revisions.wait_synced().await;
        claims.wait_synced().await;
        let mut workers = JoinSet::new();
        runner::spawn(controller, queue, WORKERS, &mut workers);
        while workers.join_next().await.is_some() {}
    });
}

/// The StatefulSet controlling an object, if it still exists.
fn owning_set(sets: &Informer<StatefulSet>, meta: &ObjectMeta) -> Option<Key> {
    let r = owner::controller_of(meta)?;
    if r.kind != "StatefulSet" {
        return None;
    }
    let key = Key::new(meta.namespace.clone().unwrap_or_default(), r.name.clone());
    let set = sets.get(&key)?;
    (set.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(key)
}

/// The sets a pod change concerns: its controller (old and new), or, for
/// an orphan, the sets that could adopt it.
fn sets_of_pod(sets: &Informer<StatefulSet>, change: &Change<'_, Pod>) -> Vec<Key> {
    let mut keys = Vec::new();
    if let Change::Updated { old, .. } = change {
        keys.extend(owning_set(sets, &old.metadata));
    }
    let pod = change.object();
    match owning_set(sets, &pod.metadata) {
        Some(key) => keys.push(key),
        None if owner::controller_of(&pod.metadata).is_none()
            && !matches!(change, Change::Deleted(_)) =>
        {
            let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
            let labels = owner::labels(&pod.metadata);
            keys.extend(
                sets.list_namespace(ns)
                    .into_iter()
                    .filter(|s| pods::is_member_of(s, pod))
                    .filter(|s| {
                        owner::selector(s.spec.as_ref().map(|sp| &sp.selector)).matches(labels)
                    })
                    .map(|s| Key::of(s.as_ref())),
            );
        }
        None => {}
    }
    keys.dedup();
    keys
}

struct StatefulSetController {
    client: kube::Client,
    sets: Informer<StatefulSet>,
    pods: Informer<Pod>,
    revisions: Informer<ControllerRevision>,
    claims: Informer<PersistentVolumeClaim>,
    recorder: Recorder,
}

/// One wanted ordinal: the pod that exists, or the one to create.
struct Member {
    pod: Arc<Pod>,
    created: bool,
}

fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

fn name_of(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}

fn uid_preconditions(uid: Option<String>) -> DeleteParams {
    DeleteParams {
        preconditions: Some(Preconditions {
            uid,
            resource_version: None,
        }),
        ..Default::default()
    }
}

impl StatefulSetController {
    fn pods_api(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    fn claims_api(&self, ns: &str) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client.clone(), ns)
    }

    fn revisions_api(&self, ns: &str) -> Api<ControllerRevision> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// The set's members: pods it controls that still match (released
    /// otherwise), plus orphans named as members that match (adopted).
    async fn claim_pods(&self, set: &StatefulSet) -> Result<Vec<Arc<Pod>>> {
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        let selector = owner::selector(set.spec.as_ref().map(|s| &s.selector));
        let matches =
            |p: &Pod| selector.matches(owner::labels(&p.metadata)) && pods::is_member_of(set, p);
        let sets_api = Api::<StatefulSet>::namespaced(self.client.clone(), &ns);
        let candidates = owner::claim_candidates(&self.pods, &set.metadata);
        Ok(owner::claim(
            &self.pods_api(&ns),
            set,
            &sets_api,
            candidates,
            matches,
            &[],
        )
        .await?)
    }

    /// The set's revisions, oldest first, adopting orphans its selector
    /// matches.
    async fn revisions_of(&self, set: &StatefulSet) -> Result<Vec<Arc<ControllerRevision>>> {
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        let uid = set.metadata.uid.clone().unwrap_or_default();
        let mut revisions = self.revisions.by_index(CONTROLLER_INDEX, &uid);
        if set.metadata.deletion_timestamp.is_none() {
            let selector = owner::selector(set.spec.as_ref().map(|s| &s.selector));
            let api = self.revisions_api(&ns);
            for r in self
                .revisions
                .by_index(CONTROLLER_INDEX, &owner::orphan_index_value(&ns))
            {
                if selector.matches(owner::labels(&r.metadata)) {
                    match owner::adopt(&api, r.as_ref(), set).await {
                        Ok(adopted) => revisions.push(Arc::new(adopted)),
                        Err(e) if runner::is_not_found(&e) || runner::is_conflict(&e) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        history::sort(&mut revisions);
        Ok(revisions)
    }

    /// The current and update revisions, and the collision count (upstream
    /// `getStatefulSetRevisions`).
    async fn current_and_update_revisions(
        &self,
        set: &StatefulSet,
        revisions: &[Arc<ControllerRevision>],
    ) -> Result<(Arc<ControllerRevision>, Arc<ControllerRevision>, i32)> {
        let mut collision_count = set
            .status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0);
        let template = set
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let data = history::template_patch(&template);
        let equal = history::find_equal(revisions, &data);
        let update = match (equal.last(), revisions.last()) {
            (Some(e), Some(last)) if e.metadata.name == last.metadata.name => (*e).clone(),
            (Some(e), _) => {
                // An older template is back (a rollback): renumber its revision.
                let next = history::next_revision(revisions);
                let patched = self
                    .revisions_api(set.metadata.namespace.as_deref().unwrap_or_default())
                    .patch(
                        e.metadata.name.as_deref().unwrap_or_default(),
                        &PatchParams::default(),
                        &Patch::Merge(json!({ "revision": next })),
                    )
                    .await?;
                Arc::new(patched)
            }
            (None, _) => {
                self.create_revision(
                    set,
                    &data,
                    history::next_revision(revisions),
                    &mut collision_count,
                )
                .await?
            }
        };
        let current_name = set
            .status
            .as_ref()
            .and_then(|s| s.current_revision.as_deref());
        let current = revisions
            .iter()
            .find(|r| r.metadata.name.as_deref() == current_name && current_name.is_some())
            .cloned()
            .unwrap_or_else(|| update.clone());
        Ok((current, update, collision_count))
    }

    /// Creates revision `number` with `data`; a name taken by a revision
    /// with other data bumps the collision count and tries the next name
    /// (upstream `CreateControllerRevision`, which compares data only).
    async fn create_revision(
        &self,
        set: &StatefulSet,
        data: &Value,
        number: i64,
        collision_count: &mut i32,
    ) -> Result<Arc<ControllerRevision>> {
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        let api = self.revisions_api(&ns);
        let labels = set
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.labels.clone());
        loop {
            let hash = history::hash_revision(data, Some(*collision_count));
            let name = history::revision_name(pods::set_name(set), &hash);
            let revision = ControllerRevision {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(ns.clone()),
                    labels: labels.clone(),
                    annotations: set.metadata.annotations.clone(),
                    owner_references: Some(vec![owner::controller_ref(set)]),
                    ..Default::default()
                },
                data: Some(RawExtension(data.clone())),
                revision: number,
            };
            match api.create(&PostParams::default(), &revision).await {
                Ok(created) => return Ok(Arc::new(created)),
                Err(e) if runner::is_conflict(&e) => {
                    // Equal data is this template's revision whoever owns
                    // it: one an orphaning delete of a same-named set left,
                    // which the cache may still show as owned by the old
                    // set, is adopted by a later sync. Counting it as a
                    // collision would roll every pod to a new revision.
                    let existing = api.get(&name).await?;
                    if history::data(&existing) == data {
                        return Ok(Arc::new(existing));
                    }
                    *collision_count += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Creates the member's missing claims (upstream
    /// `createPersistentVolumeClaims`). A claim being deleted blocks the pod.
    async fn create_claims(&self, set: &StatefulSet, pod: &Pod) -> Result<()> {
        let Some(ord) = pods::ordinal(pod) else {
            return Ok(());
        };
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        let api = self.claims_api(&ns);
        for claim in pods::claims_for(set, ord) {
            let name = claim.metadata.name.clone().unwrap_or_default();
            if let Some(existing) = self.claims.get(&Key::new(&ns, &name)) {
                if existing.metadata.deletion_timestamp.is_some() {
                    return Err(Error::Other(format!("pvc {name} is being deleted")));
                }
                continue;
            }
            match api.create(&PostParams::default(), &claim).await {
                Ok(_) => self.recorder.normal(
                    set,
                    "SuccessfulCreate",
                    format!(
                        "create Claim {name} Pod {} in StatefulSet {} success",
                        name_of(pod),
                        pods::set_name(set)
                    ),
                ),
                Err(e) if runner::is_conflict(&e) => {}
                Err(e) => {
                    self.recorder.warning(
                        set,
                        "FailedCreate",
                        format!(
                            "create Claim {name} for Pod {} in StatefulSet {} failed error: {}",
                            name_of(pod),
                            pods::set_name(set),
                            api_message(&e)
                        ),
                    );
                    return Err(Error::Other(format!(
                        "failed to create PVC {name}: {}",
                        api_message(&e)
                    )));
                }
            }
        }
        Ok(())
    }

    /// Claims first, then the pod (upstream `CreateStatefulPod`).
    async fn create_pod(&self, set: &StatefulSet, pod: &Pod) -> Result<()> {
        let verb_failed = |e: &str| {
            self.recorder.warning(
                set,
                "FailedCreate",
                format!(
                    "create Pod {} in StatefulSet {} failed error: {e}",
                    name_of(pod),
                    pods::set_name(set)
                ),
            )
        };
        if let Err(e) = self.create_claims(set, pod).await {
            verb_failed(&e.to_string());
            return Err(e);
        }
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        match self.pods_api(&ns).create(&PostParams::default(), pod).await {
            Ok(_) => {
                self.recorder.normal(
                    set,
                    "SuccessfulCreate",
                    format!(
                        "create Pod {} in StatefulSet {} successful",
                        name_of(pod),
                        pods::set_name(set)
                    ),
                );
                Ok(())
            }
            // The cache had not seen it yet: the next sync will.
            Err(e) if runner::is_conflict(&e) => Err(e.into()),
            Err(e) => {
                verb_failed(&api_message(&e));
                Err(e.into())
            }
        }
    }

    async fn delete_pod(&self, set: &StatefulSet, pod: &Pod) -> Result<()> {
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        match self
            .pods_api(&ns)
            .delete(name_of(pod), &uid_preconditions(pod.metadata.uid.clone()))
            .await
        {
            Ok(_) => {
                self.recorder.normal(
                    set,
                    "SuccessfulDelete",
                    format!(
                        "delete Pod {} in StatefulSet {} successful",
                        name_of(pod),
                        pods::set_name(set)
                    ),
                );
                Ok(())
            }
            Err(e) if runner::is_not_found(&e) => Ok(()),
            Err(e) => {
                self.recorder.warning(
                    set,
                    "FailedDelete",
                    format!(
                        "delete Pod {} in StatefulSet {} failed error: {}",
                        name_of(pod),
                        pods::set_name(set),
                        api_message(&e)
                    ),
                );
                Err(e.into())
            }
        }
    }

    /// Sets the member's claims' owner references as the retention policy
    /// wants (upstream `UpdatePodClaimForRetentionPolicy`).
    async fn fix_claim_owners(&self, set: &StatefulSet, pod: &Pod) -> Result<()> {
        let Some(ord) = pods::ordinal(pod) else {
            return Ok(());
        };
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        for want in pods::claims_for(set, ord) {
            let name = want.metadata.name.clone().unwrap_or_default();
            let Some(claim) = self.claims.get(&Key::new(&ns, &name)) else {
                continue;
            };
            if let Some(refs) = pods::claim_owner_refs(set, pod, &claim) {
                let patch = json!({
                    "metadata": {
                        "ownerReferences": refs,
                        "resourceVersion": claim.metadata.resource_version,
                    }
                });
                match self
                    .claims_api(&ns)
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {}
                    Err(e) if runner::is_not_found(&e) => {}
                    Err(e) => {
                        return Err(Error::Other(format!(
                            "could not update claim {name} for delete policy ownerRefs: {}",
                            api_message(&e)
                        )))
                    }
                }
            }
        }
        Ok(())
    }

    fn claims_match_policy(&self, set: &StatefulSet, pod: &Pod) -> bool {
        let Some(ord) = pods::ordinal(pod) else {
            return true;
        };
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        pods::claims_for(set, ord).iter().all(|want| {
            let name = want.metadata.name.clone().unwrap_or_default();
            self.claims
                .get(&Key::new(&ns, &name))
                .is_none_or(|c| pods::claim_owner_refs(set, pod, &c).is_none())
        })
    }

    /// One wanted ordinal (upstream `processReplica`). Returns whether the
    /// sync must stop here (monotonic mode waits on this member).
    async fn process_member(
        &self,
        set: &StatefulSet,
        monotonic: bool,
        member: &Member,
    ) -> Result<bool> {
        let pod = member.pod.as_ref();
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        let phase = podutil::phase(pod);
        if member.created && (phase == "Failed" || phase == "Succeeded") {
            if pod.metadata.deletion_timestamp.is_none() {
                let (type_, reason, what) = if phase == "Failed" {
                    ("Warning", "RecreatingFailedPod", "failed")
                } else {
                    ("Normal", "RecreatingTerminatedPod", "terminated")
                };
                let message = format!(
                    "StatefulSet {ns}/{} is recreating {what} Pod {}",
                    pods::set_name(set),
                    name_of(pod)
                );
                if type_ == "Warning" {
                    self.recorder.warning(set, reason, message);
                } else {
                    self.recorder.normal(set, reason, message);
                }
                self.delete_pod(set, pod).await?;
            }
            return Ok(true);
        }
        if !member.created {
            self.create_pod(set, pod).await?;
            return Ok(monotonic);
        }
        if phase == "Pending" {
            self.create_claims(set, pod).await?;
        }
        if monotonic {
            if pods::is_terminating(pod) || !pods::is_running_and_ready(pod) {
                return Ok(true);
            }
            if !pods::is_running_and_available(pod, pods::min_ready_seconds(set), Utc::now()) {
                return Ok(true);
            }
        }
        if !pods::storage_matches(set, pod) {
            // Pod volumes cannot change; the claims at least exist.
            self.create_claims(set, pod).await?;
        }
        if !self.claims_match_policy(set, pod) {
            self.fix_claim_owners(set, pod).await?;
        }
        if !pods::identity_matches(set, pod) {
            if let Some(ord) = pods::ordinal(pod) {
                let patch =
                    json!({ "metadata": { "labels": pods::identity_labels(name_of(pod), ord) } });
                match self
                    .pods_api(&ns)
                    .patch(name_of(pod), &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {}
                    Err(e) if runner::is_not_found(&e) => {}
                    Err(e) => {
                        self.recorder.warning(
                            set,
                            "FailedUpdate",
                            format!(
                                "update Pod {} in StatefulSet {} failed error: {}",
                                name_of(pod),
                                pods::set_name(set),
                                api_message(&e)
                            ),
                        );
                        return Err(e.into());
                    }
                }
            }
        }
        Ok(false)
    }

    /// One member beyond the wanted ordinals (upstream `processCondemned`).
    async fn process_condemned(
        &self,
        set: &StatefulSet,
        monotonic: bool,
        pod: &Pod,
        first_unhealthy: Option<&str>,
    ) -> Result<bool> {
        if pods::is_terminating(pod) {
            return Ok(monotonic);
        }
        let min_ready = pods::min_ready_seconds(set);
        if monotonic
            && Some(name_of(pod)) != first_unhealthy
            && !pods::is_running_and_available(pod, min_ready, Utc::now())
        {
            return Ok(true);
        }
        self.delete_pod(set, pod).await?;
        Ok(true)
    }

    /// Runs `f` over `items` in order, stopping at the first that asks to
    /// stop (monotonic), or over all in slow-start batches (burst).
    async fn run_for_all<'a, T, F, Fut>(
        &self,
        items: &'a [T],
        monotonic: bool,
        f: F,
    ) -> Result<bool>
    where
        F: Fn(&'a T) -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        if monotonic {
            for item in items {
                if f(item).await? {
                    return Ok(true);
                }
            }
            return Ok(false);
        }
        let mut done = 0;
        let mut batch = 1;
        while done < items.len() {
            let size = batch.min(items.len() - done);
            let results = join_all(items[done..done + size].iter().map(&f)).await;
            if let Some(e) = results.into_iter().find_map(|r| r.err()) {
                return Err(e);
            }
            done += size;
            batch = (batch * 2).min(MAX_BATCH);
        }
        Ok(false)
    }

    /// Brings the members to the wanted state (upstream `updateStatefulSet`)
    /// and returns the status to write.
    async fn update_members(
        &self,
        set: &StatefulSet,
        current: &ControllerRevision,
        update: &ControllerRevision,
        collision_count: i32,
        claimed: &[Arc<Pod>],
    ) -> (StatefulSetStatus, Result<()>) {
        let now = Utc::now();
        let min_ready = pods::min_ready_seconds(set);
        let mut status = StatefulSetStatus {
            observed_generation: set.metadata.generation,
            current_revision: current.metadata.name.clone(),
            update_revision: update.metadata.name.clone(),
            collision_count: Some(collision_count),
            conditions: set.status.as_ref().and_then(|s| s.conditions.clone()),
            ..Default::default()
        };
        pods::count_status(
            &mut status,
            claimed.iter().map(|p| (p.as_ref(), true)),
            min_ready,
            now,
        );

        let start = pods::start_ordinal(set);
        let count = pods::replicas(set).max(0);
        let mut slots: Vec<Option<Arc<Pod>>> = vec![None; count as usize];
        let mut condemned: Vec<Arc<Pod>> = Vec::new();
        for p in claimed {
            match pods::ordinal(p) {
                Some(o) if o >= start && o < start + count => {
                    slots[(o - start) as usize] = Some(p.clone())
                }
                Some(_) => condemned.push(p.clone()),
                None => {}
            }
        }
        let current_template = history::template_of(current).unwrap_or_default();
        let update_template = history::template_of(update).unwrap_or_default();
        let members: Vec<Member> = slots
            .into_iter()
            .enumerate()
            .map(|(i, slot)| match slot {
                Some(pod) => Member { pod, created: true },
                None => {
                    let ord = start + i as i32;
                    let (template, revision): (&PodTemplateSpec, &ControllerRevision) =
                        if pods::created_at_current_revision(set, ord) {
                            (&current_template, current)
                        } else {
                            (&update_template, update)
                        };
                    let name = revision.metadata.name.as_deref().unwrap_or_default();
                    Member {
                        pod: Arc::new(pods::new_pod(set, template, name, ord)),
                        created: false,
                    }
                }
            })
            .collect();
        condemned.sort_by_key(|p| std::cmp::Reverse(pods::ordinal(p)));

        // The first unhealthy member, in ordinal order, then the condemned
        // from the lowest ordinal up.
        let first_unhealthy = members
            .iter()
            .filter(|m| !m.created || pods::is_unavailable(&m.pod, min_ready, now))
            .map(|m| m.pod.clone())
            .chain(
                condemned
                    .iter()
                    .rev()
                    .filter(|p| pods::is_unavailable(p, min_ready, now))
                    .cloned(),
            )
            .next();
        let first_unhealthy_name = first_unhealthy.as_ref().map(|p| name_of(p).to_string());

        let recount = |status: &mut StatefulSetStatus| {
            pods::count_status(
                status,
                members
                    .iter()
                    .map(|m| (m.pod.as_ref(), m.created))
                    .chain(condemned.iter().map(|p| (p.as_ref(), true))),
                min_ready,
                now,
            );
        };

        if set.metadata.deletion_timestamp.is_some() {
            return (status, Ok(()));
        }
        let monotonic = !pods::allows_burst(set);

        match self
            .run_for_all(&members, monotonic, |m| {
                self.process_member(set, monotonic, m)
            })
            .await
        {
            Ok(false) => {}
            Ok(true) => {
                recount(&mut status);
                return (status, Ok(()));
            }
            Err(e) => {
                recount(&mut status);
                return (status, Err(e));
            }
        }
        // Claims of condemned members take the scale-down policy before the
        // pods go.
        for p in &condemned {
            if !self.claims_match_policy(set, p) {
                if let Err(e) = self.fix_claim_owners(set, p).await {
                    recount(&mut status);
                    return (status, Err(e));
                }
            }
        }
        match self
            .run_for_all(&condemned, monotonic, |p| {
                self.process_condemned(set, monotonic, p, first_unhealthy_name.as_deref())
            })
            .await
        {
            Ok(false) => {}
            Ok(true) => {
                recount(&mut status);
                return (status, Ok(()));
            }
            Err(e) => {
                recount(&mut status);
                return (status, Err(e));
            }
        }
        recount(&mut status);

        if pods::update_strategy(set) == "OnDelete" {
            return (status, Ok(()));
        }
        // Rolling update: replace the highest ordinal not at the update
        // revision, one at a time, waiting for each to be available.
        let update_min = pods::partition(set).unwrap_or(0).max(0) as usize;
        let update_name = update.metadata.name.as_deref().unwrap_or_default();
        for m in members.iter().skip(update_min).rev() {
            if pods::revision_of(&m.pod) != update_name && !pods::is_terminating(&m.pod) {
                let r = self.delete_pod(set, &m.pod).await;
                if r.is_ok() {
                    status.current_replicas = status.current_replicas.map(|c| c - 1);
                }
                return (status, r);
            }
            if pods::is_unavailable(&m.pod, min_ready, now) {
                return (status, Ok(()));
            }
        }
        (status, Ok(()))
    }

    async fn write_status(&self, set: &StatefulSet, mut status: StatefulSetStatus) -> Result<()> {
        pods::complete_rolling_update(set, &mut status);
        let old = set.status.clone().unwrap_or_default();
        if old == status {
            return Ok(());
        }
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        Api::<StatefulSet>::namespaced(self.client.clone(), &ns)
            .patch_status(
                pods::set_name(set),
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await?;
        Ok(())
    }

    /// Deletes the oldest revisions no pod and neither the current nor the
    /// update revision uses, beyond `revisionHistoryLimit` (upstream
    /// `truncateHistory`).
    async fn truncate_history(
        &self,
        set: &StatefulSet,
        claimed: &[Arc<Pod>],
        revisions: &[Arc<ControllerRevision>],
        live: &[&str],
    ) -> Result<()> {
        let limit = set
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10);
        if limit < 0 {
            return Ok(());
        }
        let mut in_use: HashMap<&str, ()> = live.iter().map(|n| (*n, ())).collect();
        for p in claimed {
            in_use.insert(pods::revision_of(p), ());
        }
        let old: Vec<&Arc<ControllerRevision>> = revisions
            .iter()
            .filter(|r| !in_use.contains_key(r.metadata.name.as_deref().unwrap_or_default()))
            .collect();
        let excess = old.len().saturating_sub(limit as usize);
        let api = self.revisions_api(set.metadata.namespace.as_deref().unwrap_or_default());
        for r in old.into_iter().take(excess) {
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
}

#[async_trait::async_trait]
impl Reconciler for StatefulSetController {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let Some(set) = self.sets.get(key) else {
            return Ok(Action::Done);
        };
        let claimed = self.claim_pods(&set).await?;
        let revisions = self.revisions_of(&set).await?;
        let (current, update, collision_count) =
            self.current_and_update_revisions(&set, &revisions).await?;
        let (status, result) = self
            .update_members(&set, &current, &update, collision_count, &claimed)
            .await;
        let available = status.available_replicas.unwrap_or(0);
        let status_result = self.write_status(&set, status).await;
        result?;
        status_result?;
        let live = [
            current.metadata.name.as_deref().unwrap_or_default(),
            update.metadata.name.as_deref().unwrap_or_default(),
        ];
        let mut all = revisions.clone();
        if !all.iter().any(|r| r.metadata.name == update.metadata.name) {
            all.push(update.clone());
        }
        self.truncate_history(&set, &claimed, &all, &live).await?;
        let min_ready = pods::min_ready_seconds(&set);
        if min_ready > 0 && available != pods::replicas(&set) {
            return Ok(Action::RequeueAfter(Duration::from_secs(min_ready as u64)));
        }
        Ok(Action::Done)
    }
}
