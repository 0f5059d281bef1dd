//! The Job controller (upstream `pkg/controller/job`, v1.32 behaviour with
//! its default feature gates). A sync of one Job:
//! 1. counts its pods: active, ready, terminating, and the finished ones not
//!    yet counted (pods carry the `batch.kubernetes.io/job-tracking`
//!    finalizer until the Job's status has counted them);
//! 2. decides whether the Job has failed (more failures than
//!    `backoffLimit`: `BackoffLimitExceeded`; running longer than
//!    `activeDeadlineSeconds`: `DeadlineExceeded`) or succeeded (enough
//!    completions), first as the interim `FailureTarget` /
//!    `SuccessCriteriaMet` condition, then, once no pod is left running,
//!    as `Failed` / `Complete`;
//! 3. otherwise creates pods up to `parallelism` (after the pod-failure
//!    back-off: 10 s doubling up to 6 min), deletes surplus ones, or deletes
//!    all of them while `suspend` is set;
//! 4. writes status, moving finished pods through
//!    `uncountedTerminatedPods` into `succeeded` / `failed` (or
//!    `completedIndexes`) as it removes their finalizers.
//!
//! The arithmetic is in pure functions ([`wanted_active`],
//! [`backoff_remaining`], [`indexes`]); [`JobController::sync`] does the IO.

pub mod indexes;
pub mod pod_failure_policy;

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use k8s_openapi::api::batch::v1::{Job, JobCondition, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;
use tokio::task::JoinSet;

use crate::events::Recorder;
use crate::expectations::Expectations;
use crate::informer::{Change, Informer, Key};
use crate::owner::{self, CONTROLLER_INDEX};
use crate::pod;
use crate::queue::WorkQueue;
use crate::replicaset::{api_message, pods_to_delete};
use crate::runner::{self, Action, Reconciler, Result};
use crate::Context;

const COMPONENT: &str = "job-controller";
/// The finalizer that keeps a pod until its Job has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Upstream's `syncJobBatchPeriod`: pod events are batched this long.
const BATCH_PERIOD: Duration = Duration::from_secs(1);
/// Upstream's `DefaultJobPodFailureBackOff` and `MaxJobPodFailureBackOff`.
pub const POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(360);
/// Upstream's `MaxPodCreateDeletePerSync` and `MaxUncountedPods`.
const MAX_POD_CREATE_DELETE_PER_SYNC: usize = 500;
const MAX_UNCOUNTED_PODS: usize = 500;
const WORKERS: usize = 5;

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let jobs = ctx.informers.get::<Job>();
    let pods = ctx.informers.get::<Pod>();
    pods.add_index(CONTROLLER_INDEX, owner::index_by_controller);
    let queue = WorkQueue::new();
    let orphans = WorkQueue::new();
    let controller = Arc::new(JobController {
        client: ctx.client.clone(),
        jobs: jobs.clone(),
        pods: pods.clone(),
        expectations: Expectations::new(),
        finalizers: FinalizerExpectations::default(),
        recorder: ctx.recorder(COMPONENT),
        queue: queue.clone(),
        orphans: orphans.clone(),
    });
    {
        let this = controller.clone();
        jobs.on_change(move |change| this.job_changed(change));
    }
    {
        let this = controller.clone();
        pods.on_change(move |change| this.pod_changed(change));
    }
    let synced = async move {
        jobs.wait_synced().await;
        pods.wait_synced().await;
    };
    let orphan_worker = Arc::new(OrphanPods(controller.clone()));
    tasks.spawn(async move {
        synced.await;
        let mut workers = JoinSet::new();
        runner::spawn(controller, queue, WORKERS, &mut workers);
        runner::spawn(orphan_worker, orphans, 1, &mut workers);
        while workers.join_next().await.is_some() {}
    });
}

/// Pods whose tracking-finalizer removal is in flight, per Job (upstream
/// `uidTrackingExpectations`): until the informer shows the removal, the
/// pod is not counted again.
#[derive(Default)]
struct FinalizerExpectations(Mutex<std::collections::HashMap<Key, HashSet<String>>>);

impl FinalizerExpectations {
    fn expect(&self, key: &Key, uids: impl IntoIterator<Item = String>) {
        self.0
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_default()
            .extend(uids);
    }
    fn observed(&self, key: &Key, uid: &str) {
        let mut m = self.0.lock().unwrap();
        if let Some(set) = m.get_mut(key) {
            set.remove(uid);
            if set.is_empty() {
                m.remove(key);
            }
        }
    }
    fn get(&self, key: &Key) -> HashSet<String> {
        self.0.lock().unwrap().get(key).cloned().unwrap_or_default()
    }
    fn forget(&self, key: &Key) {
        self.0.lock().unwrap().remove(key);
    }
}

pub struct JobController {
    client: kube::Client,
    jobs: Informer<Job>,
    pods: Informer<Pod>,
    expectations: Expectations,
    finalizers: FinalizerExpectations,
    recorder: Recorder,
    queue: WorkQueue<Key>,
    orphans: WorkQueue<Key>,
}

pub fn has_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

/// `Complete` or `Failed` is True.
pub fn is_finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

fn condition<'a>(job: &'a Job, type_: &str) -> Option<&'a JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn job_selector(job: &Job) -> api::LabelSelector {
    owner::selector(job.spec.as_ref().and_then(|s| s.selector.as_ref()))
}

fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

fn suspended(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.suspend) == Some(true)
}

/// Replacement pods wait for the old ones to be gone (`podReplacementPolicy:
/// Failed`, the default with a podFailurePolicy).
fn only_replace_failed(job: &Job) -> bool {
    let spec = job.spec.as_ref();
    spec.and_then(|s| s.pod_replacement_policy.as_deref()) == Some("Failed")
        || spec.is_some_and(|s| s.pod_failure_policy.is_some())
}

/// upstream `isPodFailed`: Failed, or (unless only failed pods are
/// replaced) deleted before it succeeded.
fn is_pod_failed(p: &Pod, job: &Job) -> bool {
    let phase = pod::phase(p);
    if phase == "Failed" {
        return true;
    }
    if only_replace_failed(job) {
        return false;
    }
    p.metadata.deletion_timestamp.is_some() && phase != "Succeeded"
}

fn is_terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some() && !pod::is_terminal(p)
}

/// When a pod finished (upstream `getFinishedTime`): its containers' last
/// finish, else its deletion, else its creation.
pub fn finished_time(p: &Pod) -> DateTime<Utc> {
    let containers = p
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max();
    containers
        .or_else(|| p.metadata.deletion_timestamp.as_ref().map(|t| t.0))
        .or_else(|| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or_else(Utc::now)
}

/// How long pod creation still waits after failures (upstream
/// `backoffRecord.getRemainingTime`): failures since the last success
/// count; the first waits 10 s, each further one doubles it, up to 6 min,
/// measured from the last failure.
pub fn backoff_remaining(finished: &[(DateTime<Utc>, bool)], now: DateTime<Utc>) -> Duration {
    let last_success = finished.iter().filter(|(_, ok)| *ok).map(|(t, _)| *t).max();
    let failures: Vec<DateTime<Utc>> = finished
        .iter()
        .filter(|(t, ok)| !*ok && last_success.is_none_or(|s| *t > s))
        .map(|(t, _)| *t)
        .collect();
    let Some(last_failure) = failures.iter().max() else {
        return Duration::ZERO;
    };
    let mut backoff = POD_FAILURE_BACKOFF;
    for _ in 1..failures.len() {
        backoff *= 2;
        if backoff >= MAX_POD_FAILURE_BACKOFF {
            backoff = MAX_POD_FAILURE_BACKOFF;
            break;
        }
    }
    let elapsed = (now - *last_failure).to_std().unwrap_or_default();
    backoff.saturating_sub(elapsed)
}

/// How many pods should be running (upstream `manageJob`): up to
/// `parallelism`, never more than the completions still missing; without
/// `completions`, none more once one pod succeeded.
pub fn wanted_active(
    completions: Option<i32>,
    parallelism: i32,
    succeeded: i32,
    active: i32,
) -> i32 {
    match completions {
        None if succeeded > 0 => active,
        None => parallelism,
        Some(c) => (c - succeeded).min(parallelism).max(0),
    }
}

/// Pods of an Indexed Job to delete regardless of counts: without a valid
/// index, past `completions`, or repeating another pod's index (upstream
/// `appendDuplicatedIndexPodsForRemoval`). Returns (to delete, the rest).
pub fn duplicate_index_pods(pods: &[Arc<Pod>], completions: i32) -> (Vec<Arc<Pod>>, Vec<Arc<Pod>>) {
    let mut by_index: std::collections::BTreeMap<i32, Vec<Arc<Pod>>> = Default::default();
    let mut rm = Vec::new();
    for p in pods {
        match indexes::of_pod(p) {
            Some(ix) if ix < completions => by_index.entry(ix).or_default().push(p.clone()),
            _ => rm.push(p.clone()),
        }
    }
    let mut left = Vec::new();
    for (_, group) in by_index {
        if group.len() == 1 {
            left.extend(group);
            continue;
        }
        // Keep the pod furthest along; delete the others.
        let mut order = pods_to_delete(&group, group.len());
        let keep = order.pop();
        rm.extend(order);
        left.extend(keep);
    }
    (rm, left)
}

fn new_condition(type_: &str, reason: &str, message: &str, now: DateTime<Utc>) -> JobCondition {
    JobCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// upstream `ensureJobConditionStatus`: sets a condition's status, reason
/// and message; a False condition is never added, only updated.
fn ensure_condition(
    list: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) -> bool {
    if let Some(c) = list.iter_mut().find(|c| c.type_ == type_) {
        if c.status != status
            || c.reason.as_deref() != Some(reason)
            || c.message.as_deref() != Some(message)
        {
            *c = JobCondition {
                status: status.into(),
                ..new_condition(type_, reason, message, now)
            };
            return true;
        }
        return false;
    }
    if status != "False" {
        list.push(JobCondition {
            status: status.into(),
            ..new_condition(type_, reason, message, now)
        });
        return true;
    }
    false
}

/// The pod template of a Job's pods: the tracking finalizer, and for an
/// Indexed Job the `JOB_COMPLETION_INDEX` variable in every container.
fn pod_template(job: &Job) -> PodTemplateSpec {
    let mut template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    if is_indexed(job) {
        if let Some(spec) = template.spec.as_mut() {
            let env = EnvVar {
                name: indexes::COMPLETION_INDEX_ENV.into(),
                value: None,
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        api_version: Some("v1".into()),
                        field_path: format!(
                            "metadata.annotations['{}']",
                            indexes::COMPLETION_INDEX
                        ),
                    }),
                    ..Default::default()
                }),
            };
            for c in spec
                .init_containers
                .iter_mut()
                .flatten()
                .chain(spec.containers.iter_mut())
            {
                let list = c.env.get_or_insert_with(Vec::new);
                if !list.iter().any(|e| e.name == env.name) {
                    list.push(env.clone());
                }
            }
        }
    }
    let meta = template.metadata.get_or_insert_with(Default::default);
    let finalizers = meta.finalizers.get_or_insert_with(Vec::new);
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.into());
    }
    template
}

/// A new pod of `job` (for `index`, in an Indexed Job).
pub fn new_pod(job: &Job, template: &PodTemplateSpec, index: Option<i32>) -> Pod {
    let name = job.metadata.name.clone().unwrap_or_default();
    let tm = template.metadata.clone().unwrap_or_default();
    let mut spec = template.spec.clone();
    let mut annotations = tm.annotations;
    let mut labels = tm.labels;
    let generate_name = match index {
        Some(ix) => {
            annotations
                .get_or_insert_with(Default::default)
                .insert(indexes::COMPLETION_INDEX.into(), ix.to_string());
            labels
                .get_or_insert_with(Default::default)
                .insert(indexes::COMPLETION_INDEX.into(), ix.to_string());
            if let Some(spec) = spec.as_mut() {
                spec.hostname = Some(format!("{name}-{ix}"));
            }
            // upstream `podGenerateNameWithIndex`: the name is cut so the
            // index and the random suffix always fit.
            let suffix = format!("-{ix}-");
            let mut prefix = format!("{name}{suffix}");
            if prefix.len() > 58 {
                prefix = format!(
                    "{}{suffix}",
                    &name[..58usize.saturating_sub(suffix.len()).min(name.len())]
                );
            }
            prefix
        }
        None => format!("{name}-"),
    };
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            namespace: job.metadata.namespace.clone(),
            labels,
            annotations,
            finalizers: tm.finalizers,
            owner_references: Some(vec![owner::controller_ref(job)]),
            ..Default::default()
        },
        spec,
        status: None,
    }
}

/// What one sync works with (upstream `syncJobCtx`).
struct SyncCtx {
    key: Key,
    job: Job,
    pods: Vec<Arc<Pod>>,
    active_pods: Vec<Arc<Pod>>,
    ready: i32,
    terminating: i32,
    succeeded: i32,
    uncounted_succeeded: HashSet<String>,
    uncounted_failed: HashSet<String>,
    expected_rm: HashSet<String>,
    prev_succeeded_indexes: BTreeSet<i32>,
    succeeded_indexes: BTreeSet<i32>,
    /// With `backoffLimitPerIndex`: the indexes failed for good, and the
    /// failures of every index.
    failed_indexes: Option<BTreeSet<i32>>,
    index_failures: std::collections::BTreeMap<i32, indexes::IndexFailures>,
    finished: Option<JobCondition>,
    requeue: Option<Duration>,
}

impl SyncCtx {
    fn completions(&self) -> i32 {
        self.job
            .spec
            .as_ref()
            .and_then(|s| s.completions)
            .unwrap_or(0)
    }

    fn uid_of(p: &Pod) -> String {
        p.metadata.uid.clone().unwrap_or_default()
    }

    fn valid_index(&self, p: &Pod) -> bool {
        !is_indexed(&self.job) || indexes::of_pod(p).is_some_and(|ix| ix < self.completions())
    }

    fn requeue_at_most(&mut self, d: Duration) {
        self.requeue = Some(self.requeue.map_or(d, |r| r.min(d)));
    }
}

impl JobController {
    fn job_changed(&self, change: &Change<'_, Job>) {
        let key = Key::of(change.object().as_ref());
        match change {
            Change::Added(_) => self.queue.add(key),
            Change::Updated { old, new } => {
                if old.metadata.generation == new.metadata.generation {
                    self.queue.add_after(key.clone(), BATCH_PERIOD);
                } else {
                    self.queue.add(key.clone());
                }
                if is_finished(new) {
                    self.cleanup_finalizers(new);
                }
                let ads = |j: &Job| j.spec.as_ref().and_then(|s| s.active_deadline_seconds);
                if let (Some(start), Some(cur)) = (
                    new.status.as_ref().and_then(|s| s.start_time.as_ref()),
                    ads(new),
                ) {
                    if ads(old) != Some(cur) {
                        let total = chrono::Duration::seconds(cur);
                        let left = (start.0 + total - Utc::now()).to_std().unwrap_or_default();
                        self.queue.add_after(key, left);
                    }
                }
            }
            Change::Deleted(job) => {
                self.queue.add(key);
                self.cleanup_finalizers(job);
            }
        }
    }

    /// Sends the pods of a finished or deleted Job that still carry the
    /// tracking finalizer to the orphan worker.
    fn cleanup_finalizers(&self, job: &Job) {
        let uid = job.metadata.uid.clone().unwrap_or_default();
        for p in self.pods.by_index(CONTROLLER_INDEX, &uid) {
            if has_finalizer(&p) {
                self.orphans.add(Key::of(p.as_ref()));
            }
        }
    }

    /// The Job controlling `pod`, if it exists in the cache.
    fn owner(&self, pod: &Pod) -> Option<(Key, Arc<Job>)> {
        let r = owner::controller_of(&pod.metadata)?;
        if r.kind != "Job" || !r.api_version.starts_with("batch/") {
            return None;
        }
        let key = Key::new(
            pod.metadata.namespace.clone().unwrap_or_default(),
            r.name.clone(),
        );
        let job = self.jobs.get(&key)?;
        (job.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some((key, job))
    }

    /// The unfinished Jobs whose selector matches `pod` (upstream
    /// `GetPodJobs`).
    fn matching_jobs(&self, pod: &Pod) -> Vec<Key> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let labels = owner::labels(&pod.metadata);
        self.jobs
            .list_namespace(ns)
            .into_iter()
            .filter(|j| !is_finished(j) && job_selector(j).matches(labels))
            .map(|j| Key::of(j.as_ref()))
            .collect()
    }

    fn pod_changed(&self, change: &Change<'_, Pod>) {
        let p = change.object();
        let uid = p.metadata.uid.clone().unwrap_or_default();
        let owned = owner::controller_of(&p.metadata).is_some_and(|r| r.kind == "Job");
        let Some((key, job)) = self.owner(p) else {
            if owned && has_finalizer(p) && !matches!(change, Change::Deleted(_)) {
                self.orphans.add(Key::of(p.as_ref()));
            }
            if let Change::Updated { old, new } = change {
                if let Some((old_key, _)) = self.owner(old) {
                    self.queue.add_after(old_key, BATCH_PERIOD);
                }
                if old.metadata.labels == new.metadata.labels
                    && owner::controller_of(&old.metadata) == owner::controller_of(&new.metadata)
                {
                    return;
                }
            }
            // An orphan: the Jobs whose selector matches may adopt it.
            if owner::controller_of(&p.metadata).is_none() && !matches!(change, Change::Deleted(_))
            {
                for key in self.matching_jobs(p) {
                    self.queue.add_after(key, BATCH_PERIOD);
                }
            }
            return;
        };
        if is_finished(&job) {
            if has_finalizer(p) && !matches!(change, Change::Deleted(_)) {
                self.orphans.add(Key::of(p.as_ref()));
            }
            return;
        }
        match change {
            Change::Added(_) => {
                if p.metadata.deletion_timestamp.is_some() {
                    self.expectations.uid_deleted(&key, &uid);
                } else {
                    self.expectations.creation_observed(&key);
                }
            }
            Change::Updated { old, new } => {
                if new.metadata.deletion_timestamp.is_some()
                    && old.metadata.deletion_timestamp.is_none()
                {
                    self.expectations.uid_deleted(&key, &uid);
                }
                if !has_finalizer(new) {
                    self.finalizers.observed(&key, &uid);
                }
                if let Some((old_key, _)) = self.owner(old) {
                    if old_key != key {
                        self.queue.add_after(old_key, BATCH_PERIOD);
                    }
                }
            }
            Change::Deleted(_) => {
                self.expectations.uid_deleted(&key, &uid);
                self.finalizers.observed(&key, &uid);
            }
        }
        self.queue.add_after(key, BATCH_PERIOD);
    }

    /// The Job's pods: its own that still match its selector, plus
    /// orphans it adopts with the tracking finalizer; its own that stopped
    /// matching are released and lose the finalizer (upstream
    /// `getPodsForJob`).
    async fn claim_pods(&self, job: &Job) -> Result<Vec<Arc<Pod>>> {
        let ns = job.metadata.namespace.clone().unwrap_or_default();
        let selector = job_selector(job);
        let candidates = owner::claim_candidates(&self.pods, &job.metadata);
        let matches = |p: &Pod| selector.matches(owner::labels(&p.metadata));
        let jobs_api: Api<Job> = Api::namespaced(self.client.clone(), &ns);
        Ok(owner::claim(
            &self.pods_api(&ns),
            job,
            &jobs_api,
            candidates,
            matches,
            &[TRACKING_FINALIZER],
        )
        .await?)
    }

    fn pods_api(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Removes the tracking finalizer from `p` (a strategic-merge
    /// `$deleteFromPrimitiveList`, as upstream). A pod already gone counts
    /// as done.
    async fn remove_finalizer(&self, p: &Pod) -> std::result::Result<(), kube::Error> {
        if !has_finalizer(p) {
            return Ok(());
        }
        let patch =
            json!({ "metadata": { "$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER] } });
        let name = p.metadata.name.clone().unwrap_or_default();
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        match self
            .pods_api(&ns)
            .patch(&name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if runner::is_not_found(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn delete_pod(&self, p: &Pod) -> std::result::Result<(), kube::Error> {
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: p.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        let name = p.metadata.name.clone().unwrap_or_default();
        self.pods_api(p.metadata.namespace.as_deref().unwrap_or_default())
            .delete(&name, &dp)
            .await
            .map(|_| ())
    }

    /// Deletes active pods of a Job that has failed or succeeded, keeping
    /// their finalizers (upstream `deleteActivePods`). Returns how many
    /// deletions (and of ready pods) went through.
    async fn delete_active_pods(&self, ctx: &SyncCtx) -> (i32, i32, Option<kube::Error>) {
        let results = join_all(ctx.active_pods.iter().map(|p| self.delete_pod(p))).await;
        let (mut deleted, mut ready, mut err) = (0, 0, None);
        for (r, p) in results.into_iter().zip(&ctx.active_pods) {
            let name = p.metadata.name.clone().unwrap_or_default();
            match r {
                Ok(()) => {
                    deleted += 1;
                    self.recorder.normal(
                        &ctx.job,
                        "SuccessfulDelete",
                        format!("Deleted pod: {name}"),
                    );
                }
                Err(e) if runner::is_not_found(&e) => deleted += 1,
                Err(e) => {
                    self.recorder.warning(
                        &ctx.job,
                        "FailedDelete",
                        format!("Error deleting: {}", api_message(&e)),
                    );
                    err = Some(e);
                    continue;
                }
            }
            if pod::is_ready(p) {
                ready += 1;
            }
        }
        (deleted, ready, err)
    }

    /// Deletes surplus pods, their finalizer first (upstream
    /// `deleteJobPods`), with `SuccessfulDelete` events.
    async fn delete_job_pods(
        &self,
        ctx: &SyncCtx,
        victims: &[Arc<Pod>],
    ) -> (i32, i32, Option<kube::Error>) {
        self.expectations.expect_uids(
            &ctx.key,
            0,
            victims.iter().filter_map(|p| p.metadata.uid.clone()),
        );
        let results = join_all(victims.iter().map(|p| async move {
            self.remove_finalizer(p).await?;
            self.delete_pod(p).await
        }))
        .await;
        let (mut deleted, mut ready, mut err) = (0, 0, None);
        for (r, p) in results.into_iter().zip(victims) {
            let name = p.metadata.name.clone().unwrap_or_default();
            match r {
                Ok(()) => {
                    self.recorder.normal(
                        &ctx.job,
                        "SuccessfulDelete",
                        format!("Deleted pod: {name}"),
                    );
                }
                Err(e) => {
                    self.expectations
                        .uid_deleted(&ctx.key, p.metadata.uid.as_deref().unwrap_or_default());
                    if !runner::is_not_found(&e) {
                        self.recorder.warning(
                            &ctx.job,
                            "FailedDelete",
                            format!("Error deleting: {}", api_message(&e)),
                        );
                        err = Some(e);
                        continue;
                    }
                }
            }
            deleted += 1;
            if pod::is_ready(p) {
                ready += 1;
            }
        }
        (deleted, ready, err)
    }

    /// Creates, deletes or keeps pods (upstream `manageJob`); returns the
    /// active count.
    async fn manage_job(&self, ctx: &mut SyncCtx) -> std::result::Result<i32, kube::Error> {
        let job = ctx.job.clone();
        let mut active = ctx.active_pods.len() as i32;
        let spec = job.spec.clone().unwrap_or_default();
        let parallelism = spec.parallelism.unwrap_or(1);
        if suspended(&job) {
            let victims = pods_to_delete(&ctx.active_pods, ctx.active_pods.len());
            let (removed, removed_ready, err) = self.delete_job_pods(ctx, &victims).await;
            active -= removed;
            ctx.terminating += removed;
            ctx.ready -= removed_ready;
            return err.map_or(Ok(active), Err);
        }
        let want = wanted_active(spec.completions, parallelism, ctx.succeeded, active);
        let rm_at_least = (active - want).max(0) as usize;
        let (mut victims, left) = if is_indexed(&job) {
            duplicate_index_pods(&ctx.active_pods, ctx.completions())
        } else {
            (Vec::new(), ctx.active_pods.clone())
        };
        if victims.len() < rm_at_least {
            victims.extend(pods_to_delete(&left, rm_at_least - victims.len()));
        }
        victims.truncate(MAX_POD_CREATE_DELETE_PER_SYNC);
        if !victims.is_empty() {
            let (removed, removed_ready, err) = self.delete_job_pods(ctx, &victims).await;
            active -= removed;
            ctx.terminating += removed;
            ctx.ready -= removed_ready;
            return err.map_or(Ok(active), Err);
        }
        let terminating = if only_replace_failed(&job) {
            ctx.terminating
        } else {
            0
        };
        let mut diff = want - terminating - active;
        if diff <= 0 {
            return Ok(active);
        }
        let now = Utc::now();
        let finished: Vec<(DateTime<Utc>, bool)> = ctx
            .pods
            .iter()
            .filter(|p| pod::phase(p) == "Succeeded" || is_pod_failed(p, &job))
            .map(|p| (finished_time(p), pod::phase(p) == "Succeeded"))
            .collect();
        let per_index = ctx.failed_indexes.is_some();
        let remaining = if per_index {
            Duration::ZERO
        } else {
            backoff_remaining(&finished, now)
        };
        if !remaining.is_zero() {
            ctx.requeue_at_most(remaining.max(BATCH_PERIOD));
            return Ok(active);
        }
        diff = diff.min(MAX_POD_CREATE_DELETE_PER_SYNC as i32);
        let mut to_add: Vec<Option<i32>> = if is_indexed(&job) {
            let mut taken = ctx.succeeded_indexes.clone();
            taken.extend(ctx.active_pods.iter().filter_map(|p| indexes::of_pod(p)));
            if only_replace_failed(&job) {
                // An index whose pod is still terminating waits for it.
                taken.extend(
                    ctx.pods
                        .iter()
                        .filter(|p| is_terminating(p))
                        .filter_map(|p| indexes::of_pod(p)),
                );
            }
            if let Some(failed) = &ctx.failed_indexes {
                taken.extend(failed.iter().copied());
            }
            let mut pending =
                indexes::first_pending(&taken, ctx.completions() as usize, ctx.completions());
            if per_index {
                // Each index backs off after its own failures.
                let mut wait: Option<Duration> = None;
                pending.retain(|ix| {
                    let f = ctx.index_failures.get(ix).copied().unwrap_or_default();
                    let left = match f.last {
                        Some(at) if f.count > 0 => {
                            backoff_remaining(&vec![(at, false); f.count as usize], now)
                        }
                        _ => Duration::ZERO,
                    };
                    if !left.is_zero() {
                        wait = Some(wait.map_or(left, |w| w.min(left)));
                    }
                    left.is_zero()
                });
                if let Some(w) = wait {
                    ctx.requeue_at_most(w.max(BATCH_PERIOD));
                }
            }
            pending.truncate(diff as usize);
            pending.into_iter().map(Some).collect()
        } else {
            vec![None; diff as usize]
        };
        let n = to_add.len();
        self.expectations.expect(&ctx.key, n as i64, 0);
        let template = pod_template(&job);
        let api = self.pods_api(&ctx.key.namespace);
        let pp = PostParams::default();
        let mut batch = 1;
        let mut done = 0;
        let mut err = None;
        active += n as i32;
        // Slow start: 1, 2, 4, ... at a time; stop at the first failure.
        while done < n {
            let size = batch.min(n - done);
            let chunk: Vec<Option<i32>> = to_add.drain(..size).collect();
            let results = join_all(chunk.iter().map(|ix| {
                let mut pod = new_pod(&job, &template, *ix);
                if let (Some(ix), true) = (ix, per_index) {
                    let count = ctx.index_failures.get(ix).map_or(0, |f| f.count);
                    pod.metadata
                        .annotations
                        .get_or_insert_with(Default::default)
                        .insert(indexes::INDEX_FAILURE_COUNT.into(), count.to_string());
                }
                let api = api.clone();
                let pp = pp.clone();
                async move { api.create(&pp, &pod).await }
            }))
            .await;
            let mut failed = 0;
            for r in results {
                match r {
                    Ok(p) => self.recorder.normal(
                        &job,
                        "SuccessfulCreate",
                        format!("Created pod: {}", p.metadata.name.unwrap_or_default()),
                    ),
                    Err(e) => {
                        failed += 1;
                        active -= 1;
                        self.expectations.creation_observed(&ctx.key);
                        let message = api_message(&e);
                        if !message.contains("because it is being terminated") {
                            self.recorder.warning(
                                &job,
                                "FailedCreate",
                                format!("Error creating: {message}"),
                            );
                            err = Some(e);
                        }
                    }
                }
            }
            done += size;
            if failed > 0 {
                for _ in done..n {
                    self.expectations.creation_observed(&ctx.key);
                    active -= 1;
                }
                break;
            }
            batch *= 2;
        }
        err.map_or(Ok(active), Err)
    }

    /// Writes the Job status (a PUT of the whole object, as upstream's
    /// `UpdateStatus`) and returns what the server stored.
    async fn update_status(&self, job: &Job) -> Result<Job> {
        let api: Api<Job> = Api::namespaced(
            self.client.clone(),
            job.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let data = serde_json::to_vec(job).map_err(|e| runner::Error::Other(e.to_string()))?;
        Ok(api
            .replace_status(
                job.metadata.name.as_deref().unwrap_or_default(),
                &PostParams::default(),
                data,
            )
            .await?)
    }

    /// Counts finished pods into the status and removes their finalizers,
    /// then marks the Job finished when it is (upstream
    /// `trackJobStatusAndRemoveFinalizers`).
    async fn track_status(&self, ctx: &mut SyncCtx, mut needs_flush: bool) -> Result<()> {
        let indexed = is_indexed(&ctx.job);
        let completions = ctx.completions();
        let mut with_finalizer: HashSet<String> = ctx
            .pods
            .iter()
            .filter(|p| has_finalizer(p) && !ctx.expected_rm.contains(&SyncCtx::uid_of(p)))
            .map(|p| SyncCtx::uid_of(p))
            .collect();
        let status = ctx.job.status.get_or_insert_with(Default::default);
        needs_flush |= clean_uncounted(status, &with_finalizer);
        let mut to_remove: Vec<Arc<Pod>> = Vec::new();
        let mut new_indexes = Vec::new();
        let job_deleting = ctx.job.metadata.deletion_timestamp.is_some();
        let finishing_as_failure = ctx
            .finished
            .as_ref()
            .is_some_and(|c| c.type_ != "SuccessCriteriaMet");
        let mut reached_max = false;
        let policy = ctx
            .job
            .spec
            .as_ref()
            .and_then(|s| s.pod_failure_policy.clone());
        for p in ctx.pods.clone() {
            let uid = SyncCtx::uid_of(&p);
            if !has_finalizer(&p) || ctx.expected_rm.contains(&uid) {
                continue;
            }
            let failed = is_pod_failed(&p, &ctx.job);
            let can_remove =
                job_deleting || ctx.finished.is_some() || pod::phase(&p) == "Succeeded" || failed;
            if !can_remove {
                continue;
            }
            to_remove.push(p.clone());
            let valid = ctx.valid_index(&p);
            let uncounted = ctx
                .job
                .status
                .get_or_insert_with(Default::default)
                .uncounted_terminated_pods
                .get_or_insert_with(Default::default);
            if pod::phase(&p) == "Succeeded" && !ctx.uncounted_failed.contains(&uid) {
                if indexed {
                    if let Some(ix) = indexes::of_pod(&p).filter(|ix| *ix < completions) {
                        if !ctx.prev_succeeded_indexes.contains(&ix) {
                            new_indexes.push(ix);
                            needs_flush = true;
                        }
                    }
                } else if !ctx.uncounted_succeeded.contains(&uid) {
                    needs_flush = true;
                    uncounted
                        .succeeded
                        .get_or_insert_with(Vec::new)
                        .push(uid.clone());
                }
            } else if (failed || finishing_as_failure)
                && pod_failure_policy::evaluate(policy.as_ref(), &p).count
                && !ctx.uncounted_failed.contains(&uid)
                && valid
            {
                needs_flush = true;
                uncounted
                    .failed
                    .get_or_insert_with(Vec::new)
                    .push(uid.clone());
            }
            let n = new_indexes.len()
                + uncounted.succeeded.as_ref().map_or(0, Vec::len)
                + uncounted.failed.as_ref().map_or(0, Vec::len);
            if n >= MAX_UNCOUNTED_PODS {
                reached_max = true;
                break;
            }
        }
        if indexed {
            ctx.succeeded_indexes.extend(new_indexes);
            let text = indexes::format(&ctx.succeeded_indexes);
            let status = ctx.job.status.get_or_insert_with(Default::default);
            if status.completed_indexes.clone().unwrap_or_default() != text {
                needs_flush = true;
            }
            let total = ctx.succeeded_indexes.len() as i32;
            status.succeeded = (total > 0).then_some(total);
            status.completed_indexes = (!text.is_empty()).then_some(text);
            let failed_text = ctx.failed_indexes.as_ref().map(indexes::format);
            if status.failed_indexes != failed_text {
                status.failed_indexes = failed_text;
                needs_flush = true;
            }
        }
        let now = Utc::now();
        let conditions = |job: &mut Job| {
            job.status
                .get_or_insert_with(Default::default)
                .conditions
                .get_or_insert_with(Vec::new)
                .clone()
        };
        if let Some(c) = ctx.finished.clone() {
            let reason = c.reason.clone().unwrap_or_default();
            let message = c.message.clone().unwrap_or_default();
            match c.type_.as_str() {
                "FailureTarget" => {
                    let mut list = conditions(&mut ctx.job);
                    if !list
                        .iter()
                        .any(|x| x.type_ == "FailureTarget" && x.status == "True")
                    {
                        list.push(c.clone());
                        needs_flush = true;
                    }
                    ctx.job.status.as_mut().unwrap().conditions = Some(list);
                    ctx.finished = Some(new_condition("Failed", &reason, &message, now));
                }
                "SuccessCriteriaMet" => {
                    let mut list = conditions(&mut ctx.job);
                    if !list
                        .iter()
                        .any(|x| x.type_ == "SuccessCriteriaMet" && x.status == "True")
                    {
                        list.push(c.clone());
                        needs_flush = true;
                    }
                    ctx.job.status.as_mut().unwrap().conditions = Some(list);
                    ctx.finished = Some(new_condition("Complete", &reason, &message, now));
                }
                _ => {}
            }
        }
        // Flush the uncounted pods (and interim conditions) before removing
        // finalizers, so a crash in between loses no count.
        if needs_flush {
            ctx.job = self.update_status(&ctx.job).await?;
            needs_flush = false;
        }
        let mut rm_err = None;
        if !to_remove.is_empty() {
            self.finalizers
                .expect(&ctx.key, to_remove.iter().map(|p| SyncCtx::uid_of(p)));
            let results = join_all(to_remove.iter().map(|p| self.remove_finalizer(p))).await;
            for (r, p) in results.into_iter().zip(&to_remove) {
                let uid = SyncCtx::uid_of(p);
                match r {
                    Ok(()) => {
                        with_finalizer.remove(&uid);
                    }
                    Err(e) => {
                        self.finalizers.observed(&ctx.key, &uid);
                        rm_err = Some(e);
                    }
                }
            }
        }
        let status = ctx.job.status.get_or_insert_with(Default::default);
        if clean_uncounted(status, &with_finalizer) {
            needs_flush = true;
        }
        if let Some(e) = rm_err {
            if needs_flush {
                self.update_status(&ctx.job).await?;
            }
            return Err(e.into());
        }
        let finished = !reached_max && self.enact_finished(ctx, now);
        if finished {
            needs_flush = true;
        }
        if needs_flush {
            ctx.job = self.update_status(&ctx.job).await?;
            if finished {
                self.record_finished(ctx);
            }
        }
        Ok(())
    }

    /// Adds `Complete` or `Failed` once nothing is left uncounted or
    /// terminating (upstream `enactJobFinished`).
    fn enact_finished(&self, ctx: &mut SyncCtx, now: DateTime<Utc>) -> bool {
        let Some(c) = ctx.finished.clone() else {
            return false;
        };
        let status = ctx.job.status.get_or_insert_with(Default::default);
        let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        if uncounted.succeeded.as_ref().map_or(0, Vec::len)
            + uncounted.failed.as_ref().map_or(0, Vec::len)
            > 0
        {
            return false;
        }
        if ctx.terminating > 0 {
            return false;
        }
        let list = status.conditions.get_or_insert_with(Vec::new);
        ensure_condition(
            list,
            &c.type_,
            "True",
            c.reason.as_deref().unwrap_or_default(),
            c.message.as_deref().unwrap_or_default(),
            now,
        );
        if c.type_ == "Complete" {
            status.completion_time = Some(Time(now));
        }
        true
    }

    fn record_finished(&self, ctx: &SyncCtx) {
        let Some(c) = &ctx.finished else { return };
        if c.type_ == "Complete" {
            let succeeded = ctx
                .job
                .status
                .as_ref()
                .and_then(|s| s.succeeded)
                .unwrap_or(0);
            if ctx
                .job
                .spec
                .as_ref()
                .and_then(|s| s.completions)
                .is_some_and(|n| succeeded > n)
            {
                self.recorder.warning(
                    &ctx.job,
                    "TooManySucceededPods",
                    "Too many succeeded pods running after completion count reached",
                );
            }
            self.recorder.normal(&ctx.job, "Completed", "Job completed");
        } else {
            self.recorder.warning(
                &ctx.job,
                c.reason.as_deref().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            );
        }
    }
}

/// Moves uncounted pods whose finalizer is gone into the counters (upstream
/// `cleanUncountedPodsWithoutFinalizers`). Returns whether anything changed.
fn clean_uncounted(
    status: &mut k8s_openapi::api::batch::v1::JobStatus,
    with_finalizer: &HashSet<String>,
) -> bool {
    let uncounted = status
        .uncounted_terminated_pods
        .get_or_insert_with(UncountedTerminatedPods::default);
    let mut changed = false;
    let keep = |list: &mut Option<Vec<String>>| -> i32 {
        let before = list.as_ref().map_or(0, Vec::len);
        let kept: Vec<String> = list
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter(|u| with_finalizer.contains(u))
            .collect();
        let moved = (before - kept.len()) as i32;
        *list = (!kept.is_empty()).then_some(kept);
        moved
    };
    let s = keep(&mut uncounted.succeeded);
    let f = keep(&mut uncounted.failed);
    if s > 0 {
        status.succeeded = Some(status.succeeded.unwrap_or(0) + s);
        changed = true;
    }
    if f > 0 {
        status.failed = Some(status.failed.unwrap_or(0) + f);
        changed = true;
    }
    changed
}

#[async_trait::async_trait]
impl Reconciler for JobController {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let Some(cached) = self.jobs.get(key) else {
            self.expectations.forget(key);
            self.finalizers.forget(key);
            return Ok(Action::Done);
        };
        let mut job: Job = (*cached).clone();
        if is_finished(&job) {
            return Ok(Action::Done);
        }
        let spec = job.spec.clone().unwrap_or_default();
        if let Some(mode) = spec.completion_mode.as_deref() {
            if mode != "NonIndexed" && mode != "Indexed" {
                self.recorder.warning(
                    &job,
                    "UnknownCompletionMode",
                    "Skipped Job sync because completion mode is unknown",
                );
                return Ok(Action::Done);
            }
        }
        let status = job.status.get_or_insert_with(Default::default);
        let uncounted = status
            .uncounted_terminated_pods
            .get_or_insert_with(Default::default)
            .clone();
        let satisfied = self.expectations.satisfied(key);
        let pods = self.claim_pods(&job).await?;
        let active_pods: Vec<Arc<Pod>> =
            pods.iter().filter(|p| pod::is_active(p)).cloned().collect();
        let mut ctx = SyncCtx {
            key: key.clone(),
            ready: active_pods.iter().filter(|p| pod::is_ready(p)).count() as i32,
            terminating: pods.iter().filter(|p| is_terminating(p)).count() as i32,
            active_pods,
            pods,
            succeeded: 0,
            uncounted_succeeded: uncounted
                .succeeded
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            uncounted_failed: uncounted
                .failed
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            expected_rm: self.finalizers.get(key),
            prev_succeeded_indexes: BTreeSet::new(),
            failed_indexes: None,
            index_failures: Default::default(),
            succeeded_indexes: BTreeSet::new(),
            finished: None,
            requeue: None,
            job,
        };
        let mut active = ctx.active_pods.len() as i32;
        // Finished pods not yet in the status.
        let fresh = |p: &&Arc<Pod>| {
            let uid = SyncCtx::uid_of(p);
            has_finalizer(p) && !ctx.expected_rm.contains(&uid) && ctx.valid_index(p)
        };
        let new_succeeded = ctx
            .pods
            .iter()
            .filter(fresh)
            .filter(|p| {
                !ctx.uncounted_succeeded.contains(&SyncCtx::uid_of(p))
                    && pod::phase(p) == "Succeeded"
            })
            .count() as i32;
        let new_failed = ctx
            .pods
            .iter()
            .filter(fresh)
            .filter(|p| {
                !ctx.uncounted_failed.contains(&SyncCtx::uid_of(p)) && is_pod_failed(p, &ctx.job)
            })
            // Failures an `Ignore` rule matches do not count.
            .filter(|p| pod_failure_policy::evaluate(spec.pod_failure_policy.as_ref(), p).count)
            .count() as i32;
        let status = ctx.job.status.clone().unwrap_or_default();
        ctx.succeeded =
            status.succeeded.unwrap_or(0) + new_succeeded + ctx.uncounted_succeeded.len() as i32;
        let failed = status.failed.unwrap_or(0) + new_failed + ctx.uncounted_failed.len() as i32;
        let now = Utc::now();
        if status.start_time.is_none() && !suspended(&ctx.job) {
            ctx.job.status.as_mut().unwrap().start_time = Some(Time(now));
        }
        let start_time = ctx
            .job
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0);

        // Has the Job failed or succeeded already (an interim condition)?
        ctx.finished = condition(&ctx.job, "SuccessCriteriaMet")
            .filter(|c| c.status == "True")
            .cloned();
        if ctx.finished.is_none() {
            if let Some(c) = condition(&ctx.job, "FailureTarget").filter(|c| c.status == "True") {
                ctx.finished = Some(new_condition(
                    "Failed",
                    c.reason.as_deref().unwrap_or_default(),
                    c.message.as_deref().unwrap_or_default(),
                    now,
                ));
            } else if let Some(message) = ctx
                .pods
                .iter()
                .filter(|p| is_pod_failed(p, &ctx.job))
                .find_map(|p| {
                    pod_failure_policy::evaluate(spec.pod_failure_policy.as_ref(), p).fail_job
                })
            {
                // A `FailJob` rule matched: record why before the pods go.
                ctx.finished = Some(new_condition(
                    "FailureTarget",
                    "PodFailurePolicy",
                    &message,
                    now,
                ));
            }
        }
        if ctx.finished.is_none() {
            let backoff_limit = spec.backoff_limit.unwrap_or(6);
            if failed > backoff_limit
                || past_backoff_limit_on_failure(&ctx.job, &ctx.pods, backoff_limit)
            {
                ctx.finished = Some(new_condition(
                    "FailureTarget",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    now,
                ));
            } else if let (Some(ads), Some(start), false) = (
                spec.active_deadline_seconds,
                start_time,
                suspended(&ctx.job),
            ) {
                let deadline = start + chrono::Duration::seconds(ads);
                if now >= deadline {
                    ctx.finished = Some(new_condition(
                        "FailureTarget",
                        "DeadlineExceeded",
                        "Job was active longer than specified deadline",
                        now,
                    ));
                } else {
                    ctx.requeue_at_most((deadline - now).to_std().unwrap_or_default());
                }
            }
        }
        if is_indexed(&ctx.job) {
            let completions = ctx.completions();
            ctx.prev_succeeded_indexes = indexes::parse(
                status.completed_indexes.as_deref().unwrap_or_default(),
                completions,
            );
            let mut set = ctx.prev_succeeded_indexes.clone();
            for p in &ctx.pods {
                if pod::phase(p) == "Succeeded" && has_finalizer(p) {
                    if let Some(ix) = indexes::of_pod(p).filter(|ix| *ix < completions) {
                        set.insert(ix);
                    }
                }
            }
            ctx.succeeded = set.len() as i32;
            ctx.succeeded_indexes = set;
            if let Some(limit) = spec.backoff_limit_per_index {
                let policy = spec.pod_failure_policy.clone();
                let job = ctx.job.clone();
                ctx.index_failures = indexes::failures(&ctx.pods, completions, |p| {
                    if !is_pod_failed(p, &job) {
                        return None;
                    }
                    let v = pod_failure_policy::evaluate(policy.as_ref(), p);
                    Some((
                        v.count,
                        v.action.as_deref() == Some("FailIndex"),
                        finished_time(p),
                    ))
                });
                let previous = indexes::parse(
                    status.failed_indexes.as_deref().unwrap_or_default(),
                    completions,
                );
                let failed = indexes::failed_indexes(
                    &previous,
                    &ctx.index_failures,
                    limit,
                    &ctx.succeeded_indexes,
                );
                if ctx.finished.is_none() {
                    let n = failed.len() as i32;
                    if spec.max_failed_indexes.is_some_and(|m| n > m) {
                        ctx.finished = Some(new_condition(
                            "FailureTarget",
                            "MaxFailedIndexesExceeded",
                            "Job has exceeded the specified maximal number of failed indexes",
                            now,
                        ));
                    } else if n > 0 && n + ctx.succeeded >= completions {
                        ctx.finished = Some(new_condition(
                            "FailureTarget",
                            "FailedIndexes",
                            "Job has failed indexes",
                            now,
                        ));
                    }
                }
                ctx.failed_indexes = Some(failed);
            }
        }

        let mut suspend_changed = false;
        let mut manage_err = None;
        if ctx.finished.is_some() {
            let (deleted, deleted_ready, err) = self.delete_active_pods(&ctx).await;
            if deleted != active || !satisfied {
                // Pods still to go, or creations not yet seen: finish later.
                ctx.finished = None;
            }
            active -= deleted;
            ctx.terminating += deleted;
            ctx.ready -= deleted_ready;
            manage_err = err;
        } else {
            let mut managed = false;
            if satisfied && ctx.job.metadata.deletion_timestamp.is_none() {
                match self.manage_job(&mut ctx).await {
                    Ok(a) => active = a,
                    Err(e) => {
                        manage_err = Some(e);
                        active = ctx.active_pods.len() as i32;
                    }
                }
                managed = true;
            }
            let complete = match spec.completions {
                None => ctx.succeeded > 0 && active == 0,
                Some(c) => ctx.succeeded >= c && active == 0,
            };
            if complete {
                ctx.finished = Some(new_condition(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    now,
                ));
            } else if managed {
                let is_suspended = suspended(&ctx.job);
                let list = ctx
                    .job
                    .status
                    .get_or_insert_with(Default::default)
                    .conditions
                    .get_or_insert_with(Vec::new);
                if is_suspended {
                    if ensure_condition(
                        list,
                        "Suspended",
                        "True",
                        "JobSuspended",
                        "Job suspended",
                        now,
                    ) {
                        suspend_changed = true;
                        self.recorder
                            .normal(cached.as_ref(), "Suspended", "Job suspended");
                    }
                } else if ensure_condition(
                    list,
                    "Suspended",
                    "False",
                    "JobResumed",
                    "Job resumed",
                    now,
                ) {
                    suspend_changed = true;
                    self.recorder
                        .normal(cached.as_ref(), "Resumed", "Job resumed");
                    // activeDeadlineSeconds counts from the resumption.
                    ctx.job.status.as_mut().unwrap().start_time = Some(Time(now));
                }
            }
        }
        let status = ctx.job.status.get_or_insert_with(Default::default);
        let needs_update = suspend_changed
            || status.start_time != cached.status.as_ref().and_then(|s| s.start_time.clone())
            || status.active.unwrap_or(0) != active
            || status.ready != Some(ctx.ready)
            || status.terminating != Some(ctx.terminating);
        if status.conditions.as_ref().is_some_and(|c| c.is_empty()) {
            status.conditions = None;
        }
        status.active = (active > 0).then_some(active);
        status.ready = Some(ctx.ready);
        status.terminating = Some(ctx.terminating);
        self.track_status(&mut ctx, needs_update).await?;
        if let Some(e) = manage_err {
            return Err(e.into());
        }
        Ok(match ctx.requeue {
            Some(d) => Action::RequeueAfter(d),
            None => Action::Done,
        })
    }
}

/// With `restartPolicy: OnFailure`, restarts of running pods count as
/// failures (upstream `pastBackoffLimitOnFailure`).
fn past_backoff_limit_on_failure(job: &Job, pods: &[Arc<Pod>], limit: i32) -> bool {
    let policy = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.restart_policy.as_deref());
    if policy != Some("OnFailure") {
        return false;
    }
    let restarts: i32 = pods
        .iter()
        .filter(|p| matches!(pod::phase(p), "Running" | "Pending"))
        .map(|p| {
            let s = p.status.as_ref();
            let init: i32 = s
                .and_then(|s| s.init_container_statuses.as_ref())
                .map(|cs| cs.iter().map(|c| c.restart_count).sum())
                .unwrap_or(0);
            init + pod::restart_count(p)
        })
        .sum();
    if limit == 0 {
        restarts > 0
    } else {
        restarts >= limit
    }
}

/// Removes the tracking finalizer from pods whose Job is gone or finished
/// (upstream `syncOrphanPod`).
struct OrphanPods(Arc<JobController>);

#[async_trait::async_trait]
impl Reconciler for OrphanPods {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let Some(p) = self.0.pods.get(key) else {
            return Ok(Action::Done);
        };
        if let Some(r) = owner::controller_of(&p.metadata) {
            if r.kind != "Job" || r.api_version != "batch/v1" {
                return Ok(Action::Done);
            }
            if let Some((_, job)) = self.0.owner(&p) {
                if !is_finished(&job) {
                    return Ok(Action::Done);
                }
            }
        }
        self.0.remove_finalizer(&p).await?;
        Ok(Action::Done)
    }
}

#[cfg(test)]
mod tests;
