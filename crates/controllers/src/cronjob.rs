//! The CronJob controller (upstream `pkg/controller/cronjob`, the v2
//! controller). A sync of one CronJob:
//! 1. reconciles `status.active` with the Jobs it controls (finished Jobs
//!    leave it with a `SawCompletedJob` event, vanished ones with
//!    `MissingJob`) and `status.lastSuccessfulTime`;
//! 2. deletes the oldest finished Jobs beyond the history limits;
//! 3. unless suspended, finds the most recent missed schedule time and, if
//!    it is within `startingDeadlineSeconds` and the concurrency policy
//!    allows, creates the Job `<cronjob>-<minutes since epoch>`;
//! 4. asks to be woken at the next schedule time (plus 100 ms, as upstream).
//!
//! The decision of step 3 is [`decide`], a pure function of the CronJob,
//! the time and the schedule; schedules are parsed by [`api::kinds::cron`]
//! (as API validation parses them) and walked by [`schedule::next`].

pub mod schedule;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use tokio::task::JoinSet;

use crate::events::Recorder;
use crate::informer::{Change, Informer, Key};
use crate::owner::{self, CONTROLLER_INDEX};
use crate::queue::WorkQueue;
use crate::runner::{self, Action, Reconciler, Result};
use crate::Context;

pub use api::kinds::cron::Schedule;

const COMPONENT: &str = "cronjob-controller";
/// Upstream's `nextScheduleDelta`: wake a little after the schedule time.
const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);
/// The annotation with the Job's scheduled time (RFC 3339, in the
/// CronJob's time zone).
pub const SCHEDULED_TIMESTAMP_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
const WORKERS: usize = 5;

/// The time zone a schedule is read in: `spec.timeZone` (or a `TZ=` prefix)
/// from the tz database, else the controller's local zone as upstream.
#[derive(Clone, Copy, Debug)]
pub enum Zone {
    Local,
    Named(chrono_tz::Tz),
}

impl Zone {
    pub fn parse(name: &str) -> Result<Zone, String> {
        if name.is_empty() || name == "UTC" {
            return Ok(Zone::Named(chrono_tz::UTC));
        }
        if name == "Local" {
            return Ok(Zone::Local);
        }
        name.parse::<chrono_tz::Tz>()
            .map(Zone::Named)
            .map_err(|_| format!("unknown time zone {name}"))
    }

    pub fn next(&self, sched: &Schedule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Zone::Local => schedule::next(sched, after, &chrono::Local),
            Zone::Named(tz) => schedule::next(sched, after, tz),
        }
    }

    /// Go's `time.RFC3339` of `t` in this zone.
    fn rfc3339(&self, t: DateTime<Utc>) -> String {
        match self {
            Zone::Local => t.to_rfc3339_opts(SecondsFormat::Secs, true),
            Zone::Named(tz) => tz
                .from_utc_datetime(&t.naive_utc())
                .to_rfc3339_opts(SecondsFormat::Secs, true),
        }
    }
}

/// How many schedule times were missed since the last one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missed {
    None,
    Few,
    Many,
}

/// What a CronJob needs for scheduling, read off the object.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub name: String,
    pub created: DateTime<Utc>,
    pub last_schedule_time: Option<DateTime<Utc>>,
    pub starting_deadline_seconds: Option<i64>,
    pub concurrency_policy: String,
    pub active_names: Vec<String>,
}

impl Inputs {
    pub fn of(cj: &CronJob) -> Inputs {
        let spec = cj.spec.clone().unwrap_or_default();
        let status = cj.status.clone().unwrap_or_default();
        Inputs {
            name: cj.metadata.name.clone().unwrap_or_default(),
            created: cj
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0)
                .unwrap_or_else(Utc::now),
            last_schedule_time: status.last_schedule_time.map(|t| t.0),
            starting_deadline_seconds: spec.starting_deadline_seconds,
            concurrency_policy: spec.concurrency_policy.unwrap_or_else(|| "Allow".into()),
            active_names: status
                .active
                .unwrap_or_default()
                .into_iter()
                .filter_map(|r| r.name)
                .collect(),
        }
    }
}

/// What to do about a CronJob now (the scheduling half of upstream's
/// `syncCronJob`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing is due; look again after this long.
    Wait(Duration),
    /// The schedule cannot yield runs (upstream's `InvalidSchedule`).
    Invalid(String),
    /// The due run is past `startingDeadlineSeconds` (`MissSchedule`).
    Missed {
        scheduled: DateTime<Utc>,
        requeue: Duration,
    },
    /// Forbid, and a Job is still running (`JobAlreadyActive`).
    AlreadyActive(Duration),
    /// Create the Job for `scheduled` (after deleting the active Jobs if
    /// `replace`).
    Run {
        scheduled: DateTime<Utc>,
        replace: bool,
        too_many_missed: bool,
        requeue: Duration,
    },
}

/// The earliest time considered, the most recent schedule time (if any)
/// and how many were missed.
pub type MostRecent = (DateTime<Utc>, Option<DateTime<Utc>>, Missed);

/// upstream `mostRecentScheduleTime`: the earliest time considered, the
/// most recent schedule time in (earliest, now] if any, and how many were
/// missed (counted roughly, as upstream does).
pub fn most_recent_schedule_time(
    cj: &Inputs,
    now: DateTime<Utc>,
    sched: &Schedule,
    zone: &Zone,
    include_deadline: bool,
) -> Result<MostRecent, String> {
    let mut earliest = cj.last_schedule_time.unwrap_or(cj.created);
    if include_deadline {
        if let Some(d) = cj.starting_deadline_seconds {
            let deadline = now - chrono::Duration::seconds(d);
            if deadline > earliest {
                earliest = deadline;
            }
        }
    }
    let Some(t1) = zone.next(sched, earliest) else {
        return Ok((earliest, None, Missed::None));
    };
    if now < t1 {
        return Ok((earliest, None, Missed::None));
    }
    let Some(t2) = zone.next(sched, t1) else {
        return Ok((earliest, Some(t1), Missed::None));
    };
    if now < t2 {
        return Ok((earliest, Some(t1), Missed::None));
    }
    let between = (t2 - t1).num_milliseconds().saturating_add(500) / 1000;
    if between < 1 {
        return Err("time difference between two schedules is less than 1 second".to_string());
    }
    let elapsed = (now - t1).num_seconds();
    let missed = elapsed / between + 1;
    let potential_earliest = t1 + chrono::Duration::seconds((missed - 2) * between);
    let mut most_recent = None;
    let mut t = zone.next(sched, potential_earliest);
    while let Some(x) = t.filter(|x| *x <= now) {
        most_recent = Some(x);
        t = zone.next(sched, x);
    }
    let missed = if missed > 100 {
        Missed::Many
    } else if missed > 0 {
        Missed::Few
    } else {
        Missed::None
    };
    Ok((earliest, most_recent, missed))
}

/// upstream `nextScheduleTimeDuration`: how long until the next schedule
/// time after the most recent one, plus 100 ms.
pub fn next_schedule_duration(
    cj: &Inputs,
    now: DateTime<Utc>,
    sched: &Schedule,
    zone: &Zone,
) -> Duration {
    let base = match most_recent_schedule_time(cj, now, sched, zone, false) {
        Err(_) => now,
        Ok((_, Some(t), _)) => t,
        Ok((earliest, None, Missed::None)) => earliest,
        Ok((_, None, _)) => now,
    };
    match zone.next(sched, base) {
        Some(next) => (next - now).to_std().unwrap_or_default() + NEXT_SCHEDULE_DELTA,
        // Nothing within five years: look again in a day.
        None => Duration::from_secs(24 * 3600),
    }
}

/// The Job name for a run scheduled at `t`: `<cronjob>-<minutes since epoch>`.
pub fn job_name(cronjob: &str, t: DateTime<Utc>) -> String {
    format!("{cronjob}-{}", t.timestamp().div_euclid(60))
}

/// The scheduling decision for a CronJob that is not suspended.
pub fn decide(cj: &Inputs, now: DateTime<Utc>, sched: &Schedule, zone: &Zone) -> Decision {
    let requeue = || next_schedule_duration(cj, now, sched, zone);
    let (_, most_recent, missed) = match most_recent_schedule_time(cj, now, sched, zone, true) {
        Ok(r) => r,
        Err(e) => return Decision::Invalid(e),
    };
    let Some(scheduled) = most_recent.filter(|t| *t <= now) else {
        return Decision::Wait(requeue());
    };
    if let Some(d) = cj.starting_deadline_seconds {
        if scheduled + chrono::Duration::seconds(d) < now {
            return Decision::Missed {
                scheduled,
                requeue: requeue(),
            };
        }
    }
    let name = job_name(&cj.name, scheduled);
    if cj.active_names.contains(&name) || cj.last_schedule_time == Some(scheduled) {
        return Decision::Wait(requeue());
    }
    if cj.concurrency_policy == "Forbid" && !cj.active_names.is_empty() {
        return Decision::AlreadyActive(requeue());
    }
    // The run about to start is the latest one: the next wake-up is the
    // schedule time after it.
    let mut after = cj.clone();
    after.last_schedule_time = Some(scheduled);
    Decision::Run {
        scheduled,
        replace: cj.concurrency_policy == "Replace" && !cj.active_names.is_empty(),
        too_many_missed: missed == Missed::Many,
        requeue: next_schedule_duration(&after, now, sched, zone),
    }
}

/// The finished condition of a Job: `Complete` or `Failed`, if True.
pub fn finished_condition(job: &Job) -> Option<&str> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| c.type_.as_str())
}

/// The finished Jobs to delete to keep `limit` of them, oldest start first
/// (upstream `removeOldestJobs` with `byJobStartTime`).
pub fn oldest_beyond_limit(mut jobs: Vec<Arc<Job>>, limit: i32) -> Vec<Arc<Job>> {
    let excess = jobs.len() as i64 - limit.max(0) as i64;
    if excess <= 0 {
        return Vec::new();
    }
    let start = |j: &Job| {
        j.status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0)
    };
    jobs.sort_by(|a, b| match (start(a), start(b)) {
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (x, y) if x == y => a.metadata.name.cmp(&b.metadata.name),
        (x, y) => x.cmp(&y),
    });
    jobs.truncate(excess as usize);
    jobs
}

/// The Job a CronJob starts for `scheduled` (upstream `getJobFromTemplate2`).
pub fn job_from_template(cj: &CronJob, scheduled: DateTime<Utc>, zone: &Zone) -> Job {
    let template = cj
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP_ANNOTATION.into(),
        zone.rfc3339(scheduled),
    );
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(
                cj.metadata.name.as_deref().unwrap_or_default(),
                scheduled,
            )),
            namespace: cj.metadata.namespace.clone(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![owner::controller_ref(cj)]),
            ..Default::default()
        },
        spec: Some(template.spec.unwrap_or_default()),
        status: None,
    }
}

fn job_ref(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        ..Default::default()
    }
}

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let cronjobs = ctx.informers.get::<CronJob>();
    let jobs = ctx.informers.get::<Job>();
    jobs.add_index(CONTROLLER_INDEX, owner::index_by_controller);
    let queue = WorkQueue::new();
    let controller = Arc::new(CronJobController {
        client: ctx.client.clone(),
        cronjobs: cronjobs.clone(),
        jobs: jobs.clone(),
        recorder: ctx.recorder(COMPONENT),
    });
    {
        let queue = queue.clone();
        let recorder = controller.recorder.clone();
        cronjobs.on_change(move |change| match change {
            Change::Updated { old, new } => {
                let (os, ns) = (
                    old.spec.clone().unwrap_or_default(),
                    new.spec.clone().unwrap_or_default(),
                );
                let key = Key::of(new.as_ref());
                if os.schedule != ns.schedule || os.time_zone != ns.time_zone {
                    match parse_for(new) {
                        Ok((sched, zone)) => {
                            let wait =
                                next_schedule_duration(&Inputs::of(new), Utc::now(), &sched, &zone);
                            queue.add_after(key, wait);
                        }
                        Err(_) => recorder.warning(
                            new.as_ref(),
                            "UnParseableCronJobSchedule",
                            format!("unparseable schedule for cronjob: {}", ns.schedule),
                        ),
                    }
                } else {
                    queue.add(key);
                }
            }
            other => queue.add(Key::of(other.object().as_ref())),
        });
    }
    {
        let queue = queue.clone();
        let cronjobs = cronjobs.clone();
        jobs.on_change(move |change| {
            let owner_of = |job: &Job| {
                let r = owner::controller_of(&job.metadata)?;
                if r.kind != "CronJob" {
                    return None;
                }
                let key = Key::new(
                    job.metadata.namespace.clone().unwrap_or_default(),
                    r.name.clone(),
                );
                let cj = cronjobs.get(&key)?;
                (cj.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(key)
            };
            if let Change::Updated { old, .. } = change {
                if let Some(key) = owner_of(old) {
                    queue.add(key);
                }
            }
            if let Some(key) = owner_of(change.object()) {
                queue.add(key);
            }
        });
    }
    let synced = async move {
        cronjobs.wait_synced().await;
        jobs.wait_synced().await;
    };
    runner::spawn_when_synced(tasks, synced, controller, queue, WORKERS);
}

/// The schedule and zone of a CronJob, or upstream's error text.
fn parse_for(cj: &CronJob) -> Result<(Schedule, Zone), String> {
    let spec = cj.spec.clone().unwrap_or_default();
    let sched = api::kinds::cron::parse(&spec.schedule)?;
    let zone = match (&sched.zone, &spec.time_zone) {
        (Some(prefix), _) => Zone::parse(prefix)
            .map_err(|_| format!("provided bad location {prefix}: unknown time zone {prefix}"))?,
        (None, Some(tz)) => Zone::parse(tz)?,
        (None, None) => Zone::Local,
    };
    Ok((sched, zone))
}

pub struct CronJobController {
    client: kube::Client,
    cronjobs: Informer<CronJob>,
    jobs: Informer<Job>,
    recorder: Recorder,
}

impl CronJobController {
    /// Deletes a Job in the background, as upstream's `jobControl.DeleteJob`.
    async fn delete_job(&self, cj: &CronJob, ns: &str, name: &str) -> bool {
        let api: Api<Job> = Api::namespaced(self.client.clone(), ns);
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        };
        match api.delete(name, &dp).await {
            Ok(_) => {
                self.recorder
                    .normal(cj, "SuccessfulDelete", format!("Deleted job {name}"));
                true
            }
            Err(e) => {
                self.recorder.warning(
                    cj,
                    "FailedDelete",
                    format!("Deleted job: {}", crate::replicaset::api_message(&e)),
                );
                false
            }
        }
    }
}

#[async_trait::async_trait]
impl Reconciler for CronJobController {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let Some(cached) = self.cronjobs.get(key) else {
            return Ok(Action::Done);
        };
        let ns = key.namespace.as_str();
        let api: Api<CronJob> = Api::namespaced(self.client.clone(), ns);
        let jobs_api: Api<Job> = Api::namespaced(self.client.clone(), ns);
        let mut cj: CronJob = (*cached).clone();
        let uid = cj.metadata.uid.clone().unwrap_or_default();
        let children: Vec<Arc<Job>> = self.jobs.by_index(CONTROLLER_INDEX, &uid);
        let mut update_status = false;
        let status = cj.status.get_or_insert_with(Default::default);

        // History limits first, as upstream's `cleanupFinishedJobs`.
        let spec = cj.spec.clone().unwrap_or_default();
        let mut deleted = Vec::new();
        for (kind, limit) in [
            ("Complete", spec.successful_jobs_history_limit),
            ("Failed", spec.failed_jobs_history_limit),
        ] {
            let Some(limit) = limit else { continue };
            let finished: Vec<Arc<Job>> = children
                .iter()
                .filter(|j| finished_condition(j) == Some(kind))
                .cloned()
                .collect();
            for job in oldest_beyond_limit(finished, limit) {
                let name = job.metadata.name.clone().unwrap_or_default();
                if self.delete_job(&cached, ns, &name).await {
                    deleted.push(job.metadata.uid.clone());
                    update_status = true;
                }
            }
        }
        if !deleted.is_empty() {
            if let Some(active) = status.active.as_mut() {
                active.retain(|r| !deleted.contains(&r.uid));
            }
        }

        // Reconcile the active list with the Jobs seen.
        for job in &children {
            let job_uid = job.metadata.uid.clone();
            let in_active = status.active.iter().flatten().any(|r| r.uid == job_uid);
            let finished = finished_condition(job);
            let name = job.metadata.name.clone().unwrap_or_default();
            if !in_active && finished.is_none() {
                let fresh = api.get_status(&key.name).await?;
                let fresh_active = fresh.status.as_ref().and_then(|s| s.active.as_ref());
                if fresh_active.is_some_and(|a| a.iter().any(|r| r.uid == job_uid)) {
                    // Our cache is behind our own status write: carry on
                    // from the CronJob as the API has it.
                    *status = fresh.status.clone().unwrap_or_default();
                    if let Some(active) = status.active.as_mut() {
                        active.retain(|r| !deleted.contains(&r.uid));
                    }
                    cj.metadata = fresh.metadata.clone();
                    cj.spec = fresh.spec.clone();
                    continue;
                }
                self.recorder.warning(
                    cached.as_ref(),
                    "UnexpectedJob",
                    format!("Saw a job that the controller did not create or forgot: {name}"),
                );
            } else if in_active && finished.is_some() {
                if let Some(active) = status.active.as_mut() {
                    active.retain(|r| r.uid != job_uid);
                }
                self.recorder.normal(
                    cached.as_ref(),
                    "SawCompletedJob",
                    format!(
                        "Saw completed job: {name}, status: {}",
                        finished.unwrap_or_default()
                    ),
                );
                update_status = true;
            }
            if finished == Some("Complete") {
                let done = job.status.as_ref().and_then(|s| s.completion_time.clone());
                if let Some(done) = done {
                    if status
                        .last_successful_time
                        .as_ref()
                        .is_none_or(|t| t.0 < done.0)
                    {
                        status.last_successful_time = Some(done);
                        update_status = true;
                    }
                }
            }
        }
        let gone: Vec<ObjectReference> = status
            .active
            .iter()
            .flatten()
            .filter(|r| !children.iter().any(|j| j.metadata.uid == r.uid))
            .cloned()
            .collect();
        for r in gone {
            let name = r.name.clone().unwrap_or_default();
            match jobs_api.get(&name).await {
                Err(e) if runner::is_not_found(&e) => {
                    self.recorder.normal(
                        cached.as_ref(),
                        "MissingJob",
                        format!("Active job went missing: {name}"),
                    );
                    if let Some(active) = status.active.as_mut() {
                        active.retain(|x| x.uid != r.uid);
                    }
                    update_status = true;
                }
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
        }

        let action = self
            .schedule(&cached, &mut cj, &jobs_api, &mut update_status)
            .await;
        if update_status {
            if let Some(status) = cj.status.as_mut() {
                if status.active.as_ref().is_some_and(|a| a.is_empty()) {
                    status.active = None;
                }
            }
            let data = serde_json::to_vec(&cj).map_err(|e| runner::Error::Other(e.to_string()))?;
            match api
                .replace_status(&key.name, &PostParams::default(), data)
                .await
            {
                Ok(_) => {}
                Err(e) if runner::is_not_found(&e) => return Ok(Action::Done),
                Err(e) => return Err(e.into()),
            }
        }
        action
    }
}

impl CronJobController {
    /// Steps 3 and 4 of the sync: start the due Job, if any.
    async fn schedule(
        &self,
        cached: &Arc<CronJob>,
        cj: &mut CronJob,
        jobs_api: &Api<Job>,
        update_status: &mut bool,
    ) -> Result<Action> {
        let obj = cached.as_ref();
        if cj.metadata.deletion_timestamp.is_some() {
            return Ok(Action::Done);
        }
        let spec = cj.spec.clone().unwrap_or_default();
        if let Some(tz) = &spec.time_zone {
            if let Err(e) = Zone::parse(tz) {
                self.recorder.warning(
                    obj,
                    "UnknownTimeZone",
                    format!("invalid timeZone: {tz:?}: {e}"),
                );
                return Ok(Action::Done);
            }
        }
        if spec.suspend == Some(true) {
            return Ok(Action::Done);
        }
        if spec.schedule.contains("TZ") {
            self.recorder.warning(
                obj,
                "UnsupportedSchedule",
                format!(
                    "CRON_TZ or TZ used in schedule {:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details",
                    spec.schedule
                ),
            );
        }
        let (sched, zone) = match parse_for(cj) {
            Ok(p) => p,
            Err(e) => {
                self.recorder.warning(
                    obj,
                    "UnparseableSchedule",
                    format!("unparseable schedule: {:?} : {e}", spec.schedule),
                );
                return Ok(Action::Done);
            }
        };
        let now = Utc::now();
        let inputs = Inputs::of(cj);
        let (scheduled, replace, requeue) = match decide(&inputs, now, &sched, &zone) {
            Decision::Wait(d) => return Ok(Action::RequeueAfter(d)),
            Decision::Invalid(e) => {
                self.recorder.warning(
                    obj,
                    "InvalidSchedule",
                    format!("invalid schedule: {} : {e}", spec.schedule),
                );
                return Ok(Action::Done);
            }
            Decision::Missed { scheduled, requeue } => {
                self.recorder.warning(
                    obj,
                    "MissSchedule",
                    format!(
                        "Missed scheduled time to start a job: {}",
                        scheduled.format("%a, %d %b %Y %H:%M:%S %z")
                    ),
                );
                return Ok(Action::RequeueAfter(requeue));
            }
            Decision::AlreadyActive(d) => {
                self.recorder.normal(
                    obj,
                    "JobAlreadyActive",
                    "Not starting job because prior execution is running and concurrency policy is Forbid",
                );
                return Ok(Action::RequeueAfter(d));
            }
            Decision::Run {
                scheduled,
                replace,
                too_many_missed,
                requeue,
            } => {
                if too_many_missed {
                    self.recorder.warning(
                        obj,
                        "TooManyMissedTimes",
                        "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
                    );
                }
                (scheduled, replace, requeue)
            }
        };
        if replace {
            let active: Vec<ObjectReference> = cj
                .status
                .as_ref()
                .and_then(|s| s.active.clone())
                .unwrap_or_default();
            for r in active {
                let name = r.name.clone().unwrap_or_default();
                if let Err(e) = jobs_api.get(&name).await {
                    self.recorder.warning(
                        obj,
                        "FailedGet",
                        format!("Get job: {}", crate::replicaset::api_message(&e)),
                    );
                    return Err(e.into());
                }
                if !self
                    .delete_job(
                        obj,
                        cj.metadata.namespace.as_deref().unwrap_or_default(),
                        &name,
                    )
                    .await
                {
                    return Err(runner::Error::Other(format!(
                        "could not replace job {name}"
                    )));
                }
                if let Some(active) = cj.status.as_mut().and_then(|s| s.active.as_mut()) {
                    active.retain(|x| x.uid != r.uid);
                }
                *update_status = true;
            }
        }
        let job = job_from_template(cj, scheduled, &zone);
        let created = match jobs_api.create(&PostParams::default(), &job).await {
            Ok(created) => {
                self.recorder.normal(
                    obj,
                    "SuccessfulCreate",
                    format!(
                        "Created job {}",
                        created.metadata.name.clone().unwrap_or_default()
                    ),
                );
                created
            }
            Err(e) if runner::is_conflict(&e) => {
                let name = job.metadata.name.clone().unwrap_or_default();
                let existing = jobs_api.get(&name).await?;
                let ours = owner::controller_of(&existing.metadata)
                    .is_some_and(|r| Some(&r.uid) == cj.metadata.uid.as_ref());
                let listed = cj
                    .status
                    .as_ref()
                    .and_then(|s| s.active.as_ref())
                    .is_some_and(|a| a.iter().any(|r| r.uid == existing.metadata.uid));
                if !ours || listed {
                    return Ok(Action::Done);
                }
                existing
            }
            Err(e) => {
                let message = crate::replicaset::api_message(&e);
                if message.contains("because it is being terminated") {
                    return Err(e.into());
                }
                self.recorder.warning(
                    obj,
                    "FailedCreate",
                    format!("Error creating job: {message}"),
                );
                return Err(e.into());
            }
        };
        let status = cj.status.get_or_insert_with(Default::default);
        status
            .active
            .get_or_insert_with(Vec::new)
            .push(job_ref(&created));
        status.last_schedule_time = Some(Time(scheduled));
        *update_status = true;
        Ok(Action::RequeueAfter(requeue))
    }
}

#[cfg(test)]
mod tests;
