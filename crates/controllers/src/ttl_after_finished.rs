//! The TTL-after-finished controller (upstream
//! `pkg/controller/ttlafterfinished`): a Job with
//! `spec.ttlSecondsAfterFinished` is deleted that many seconds after its
//! `Complete` or `Failed` condition turned True, with Foreground propagation
//! so its pods go first. The time left is [`expires_in`], a pure function.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};
use tokio::task::JoinSet;

use crate::informer::{Informer, Key};
use crate::queue::WorkQueue;
use crate::runner::{self, Action, Reconciler, Result};
use crate::Context;

const COMPONENT: &str = "ttl-after-finished-controller";
const WORKERS: usize = 5;

/// When the Job finished: the transition time of its True `Complete` or
/// `Failed` condition.
pub fn finish_time(job: &Job) -> Option<DateTime<Utc>> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .filter(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .filter_map(|c| c.last_transition_time.as_ref().map(|t| t.0))
        .next_back()
}

/// Whether the controller has anything to do with `job`: finished, with a
/// TTL, and not already being deleted (upstream `needsCleanup`).
pub fn needs_cleanup(job: &Job) -> bool {
    job.spec
        .as_ref()
        .and_then(|s| s.ttl_seconds_after_finished)
        .is_some()
        && job.metadata.deletion_timestamp.is_none()
        && finish_time(job).is_some()
}

/// How long until the Job's TTL runs out at `now` (zero once it has), or
/// `None` if it has no TTL or has not finished.
pub fn expires_in(job: &Job, now: DateTime<Utc>) -> Option<Duration> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let expire_at = finish_time(job)? + chrono::Duration::seconds(ttl.into());
    Some((expire_at - now).to_std().unwrap_or(Duration::ZERO))
}

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let jobs = ctx.informers.get::<Job>();
    let queue = WorkQueue::new();
    {
        let queue = queue.clone();
        jobs.on_change(move |change| {
            let job = change.object();
            if needs_cleanup(job) {
                queue.add(Key::of(job.as_ref()));
            }
        });
    }
    let controller = Arc::new(TtlAfterFinished {
        client: ctx.client.clone(),
        jobs: jobs.clone(),
    });
    tasks.spawn(async move {
        jobs.wait_synced().await;
        let mut workers = JoinSet::new();
        runner::spawn(controller, queue, WORKERS, &mut workers);
        while workers.join_next().await.is_some() {}
    });
}

pub struct TtlAfterFinished {
    client: kube::Client,
    jobs: Informer<Job>,
}

#[async_trait::async_trait]
impl Reconciler for TtlAfterFinished {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let Some(job) = self.jobs.get(key) else {
            return Ok(Action::Done);
        };
        if !needs_cleanup(&job) {
            return Ok(Action::Done);
        }
        match expires_in(&job, Utc::now()) {
            Some(left) if !left.is_zero() => return Ok(Action::RequeueAfter(left)),
            None => return Ok(Action::Done),
            Some(_) => {}
        }
        // The cache may be stale (the TTL may have changed): check the Job
        // as the API has it before deleting, and delete that very version.
        let api: Api<Job> = Api::namespaced(self.client.clone(), &key.namespace);
        let fresh = match api.get(&key.name).await {
            Ok(j) => j,
            Err(e) if runner::is_not_found(&e) => return Ok(Action::Done),
            Err(e) => return Err(e.into()),
        };
        if !needs_cleanup(&fresh) {
            return Ok(Action::Done);
        }
        if let Some(left) = expires_in(&fresh, Utc::now()).filter(|l| !l.is_zero()) {
            return Ok(Action::RequeueAfter(left));
        }
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            preconditions: Some(Preconditions {
                uid: None,
                resource_version: fresh.metadata.resource_version.clone(),
            }),
            ..Default::default()
        };
        match api.delete(&key.name, &dp).await {
            Ok(_) => Ok(Action::Done),
            Err(e) if runner::is_not_found(&e) => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobSpec, JobStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn job(ttl: Option<i32>, finished: Option<(&str, &str)>) -> Job {
        Job {
            spec: Some(JobSpec {
                ttl_seconds_after_finished: ttl,
                ..Default::default()
            }),
            status: Some(JobStatus {
                conditions: finished.map(|(t, when)| {
                    vec![JobCondition {
                        type_: t.into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(at(when))),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_finished_job_expires_its_ttl_after_the_finish() {
        let now = at("2024-05-01T10:00:30Z");
        let j = job(Some(60), Some(("Complete", "2024-05-01T10:00:00Z")));
        assert!(needs_cleanup(&j));
        assert_eq!(expires_in(&j, now), Some(Duration::from_secs(30)));
        let failed = job(Some(10), Some(("Failed", "2024-05-01T10:00:00Z")));
        assert_eq!(expires_in(&failed, now), Some(Duration::ZERO));
    }

    #[test]
    fn jobs_without_ttl_or_not_finished_are_left_alone() {
        assert!(!needs_cleanup(&job(
            None,
            Some(("Complete", "2024-05-01T10:00:00Z"))
        )));
        assert!(!needs_cleanup(&job(Some(5), None)));
        assert!(!needs_cleanup(&job(
            Some(5),
            Some(("SuccessCriteriaMet", "2024-05-01T10:00:00Z"))
        )));
    }
}
