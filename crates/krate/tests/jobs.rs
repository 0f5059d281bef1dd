//! Jobs, CronJobs and TTL-after-finished through a real `krate server` with
//! simulated nodes (whose Job pods exit 0 after 1 s unless
//! `sim.krate.io/exit-code` / `run-seconds` say otherwise), checked as a
//! user would: object status, `kubectl get`/`describe`, events.

mod support;

use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use support::{eventually, Cluster};

const WAIT: Duration = Duration::from_secs(60);
const FINALIZER: &str = "batch.kubernetes.io/job-tracking";

fn cluster() -> Cluster {
    Cluster::start_with(&["--simulated-nodes", "3"])
}

/// A Job manifest with `spec` merged over a one-container template.
fn job_manifest(name: &str, spec: serde_json::Value, pod_annotations: serde_json::Value) -> String {
    let mut j = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": { "name": name },
        "spec": {
            "template": {
                "metadata": { "annotations": pod_annotations },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{ "name": "main", "image": "busybox" }],
                },
            },
        },
    });
    for (k, v) in spec.as_object().unwrap() {
        j["spec"][k] = v.clone();
    }
    j.to_string()
}

fn condition<'a>(
    job: &'a Job,
    type_: &str,
) -> Option<&'a k8s_openapi::api::batch::v1::JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

async fn wait_condition(jobs: &Api<Job>, name: &str, type_: &str) -> Job {
    eventually(WAIT, &format!("job {name} {type_}"), || async {
        let j = jobs.get(name).await.map_err(|e| e.to_string())?;
        if condition(&j, type_).is_some() {
            Ok(j)
        } else {
            Err(format!("status {:?}", j.status))
        }
    })
    .await
}

async fn pods_of(pods: &Api<Pod>, job: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}")))
        .await
        .unwrap()
        .items
}

async fn events_of(client: &kube::Client, name: &str) -> Vec<(String, String, String)> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .map(|e| {
            (
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default(),
                e.source.and_then(|s| s.component).unwrap_or_default(),
            )
        })
        .collect()
}

async fn wait_event(client: &kube::Client, object: &str, reason: &str, message: &str) {
    eventually(WAIT, &format!("event {reason} on {object}"), || async {
        let events = events_of(client, object).await;
        if events
            .iter()
            .any(|(r, m, _)| r == reason && m.contains(message))
        {
            Ok(())
        } else {
            Err(format!("{events:?}"))
        }
    })
    .await
}

#[tokio::test]
async fn job_with_completions_runs_at_most_parallelism_pods_and_completes() {
    let c = cluster();
    let client = c.client().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    c.ok_stdin(
        &["apply", "-f", "-"],
        &job_manifest(
            "pi",
            json!({ "completions": 3, "parallelism": 2 }),
            json!({}),
        ),
    );
    // The API server generated the selector and the pod template labels.
    let j = jobs.get("pi").await.unwrap();
    let uid = j.metadata.uid.clone().unwrap();
    let sel = j
        .spec
        .as_ref()
        .unwrap()
        .selector
        .clone()
        .unwrap()
        .match_labels
        .unwrap();
    assert_eq!(sel["batch.kubernetes.io/controller-uid"], uid);

    let most_active = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = eventually(WAIT, "job pi complete", || {
        let (jobs, pods) = (jobs.clone(), pods.clone());
        let most_active = most_active.clone();
        async move {
            let running = pods_of(&pods, "pi")
                .await
                .iter()
                .filter(|p| {
                    let phase = p
                        .status
                        .as_ref()
                        .and_then(|s| s.phase.clone())
                        .unwrap_or_default();
                    phase != "Succeeded" && phase != "Failed"
                })
                .count();
            most_active.fetch_max(running, std::sync::atomic::Ordering::SeqCst);
            let j = jobs.get("pi").await.map_err(|e| e.to_string())?;
            condition(&j, "Complete")
                .map(|_| j.clone())
                .ok_or(format!("{:?}", j.status))
        }
    })
    .await;
    let most_active = most_active.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        most_active <= 2,
        "{most_active} pods ran at once with parallelism 2"
    );
    let status = done.status.clone().unwrap();
    assert_eq!(status.succeeded, Some(3));
    assert_eq!(status.active, None);
    assert!(status.start_time.is_some() && status.completion_time.is_some());
    let met = condition(&done, "SuccessCriteriaMet").expect("SuccessCriteriaMet");
    assert_eq!(met.reason.as_deref(), Some("CompletionsReached"));
    let complete = condition(&done, "Complete").unwrap();
    assert_eq!(
        complete.message.as_deref(),
        Some("Reached expected number of succeeded pods")
    );

    let ps = pods_of(&pods, "pi").await;
    assert_eq!(ps.len(), 3, "one pod per completion");
    for p in &ps {
        let name = p.metadata.name.clone().unwrap();
        assert!(
            name.starts_with("pi-") && name.len() == "pi-".len() + 5,
            "{name}"
        );
        let labels = p.metadata.labels.clone().unwrap();
        assert_eq!(labels["batch.kubernetes.io/controller-uid"], uid);
        assert_eq!(labels["controller-uid"], uid);
        assert_eq!(labels["job-name"], "pi");
        assert!(
            !p.metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == FINALIZER),
            "{name} keeps the tracking finalizer"
        );
    }

    let table = c.ok(&["get", "jobs", "pi"]);
    assert!(
        table.contains("3/3") && table.contains("Complete"),
        "{table}"
    );
    wait_event(&client, "pi", "Completed", "Job completed").await;
    let events = events_of(&client, "pi").await;
    let created = events.iter().filter(|(r, m, s)| {
        r == "SuccessfulCreate" && m.starts_with("Created pod: pi-") && s == "job-controller"
    });
    assert_eq!(created.count(), 3, "{events:?}");
    let described = c.ok(&["describe", "job", "pi"]);
    assert!(
        described.contains("Completed") && described.contains("Job completed"),
        "{described}"
    );
}

#[tokio::test]
async fn failing_pods_back_off_and_exhaust_the_backoff_limit() {
    let c = cluster();
    let client = c.client().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    c.ok_stdin(
        &["apply", "-f", "-"],
        &job_manifest(
            "fails",
            json!({ "backoffLimit": 1 }),
            json!({ "sim.krate.io/exit-code": "1" }),
        ),
    );
    let j = wait_condition(&jobs, "fails", "Failed").await;
    let failed = condition(&j, "Failed").unwrap();
    assert_eq!(failed.reason.as_deref(), Some("BackoffLimitExceeded"));
    assert_eq!(
        failed.message.as_deref(),
        Some("Job has reached the specified backoff limit")
    );
    assert!(condition(&j, "FailureTarget").is_some());
    let status = j.status.clone().unwrap();
    assert_eq!(status.failed, Some(2));
    assert_eq!(status.succeeded, None);
    assert_eq!(status.completion_time, None);

    // The second pod waited out the 10 s back-off after the first failed.
    let mut ps = pods_of(&pods, "fails").await;
    assert_eq!(ps.len(), 2);
    ps.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
    let created = |p: &Pod| p.metadata.creation_timestamp.clone().unwrap().0;
    let gap = created(&ps[1]) - created(&ps[0]);
    assert!(
        gap >= k8s_openapi::chrono::Duration::seconds(10),
        "replacement after {gap}"
    );

    wait_event(
        &client,
        "fails",
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    )
    .await;
    let table = c.ok(&["get", "job", "fails"]);
    assert!(table.contains("Failed") && table.contains("0/1"), "{table}");
}

#[tokio::test]
async fn active_deadline_fails_a_job_and_deletes_its_running_pods() {
    let c = cluster();
    let client = c.client().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    c.ok_stdin(
        &["apply", "-f", "-"],
        &job_manifest(
            "slow",
            json!({ "activeDeadlineSeconds": 3, "parallelism": 2, "completions": 2 }),
            json!({ "sim.krate.io/run-seconds": "600" }),
        ),
    );
    let j = wait_condition(&jobs, "slow", "Failed").await;
    let failed = condition(&j, "Failed").unwrap();
    assert_eq!(failed.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(
        failed.message.as_deref(),
        Some("Job was active longer than specified deadline")
    );
    assert_eq!(j.status.as_ref().unwrap().active, None);
    eventually(WAIT, "pods of slow gone", || async {
        let left = pods_of(&pods, "slow").await;
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{} pods left", left.len()))
        }
    })
    .await;
    wait_event(&client, "slow", "SuccessfulDelete", "Deleted pod: slow-").await;
    wait_event(
        &client,
        "slow",
        "DeadlineExceeded",
        "Job was active longer than specified deadline",
    )
    .await;
}

#[tokio::test]
async fn indexed_job_runs_each_index_once_and_reports_completed_indexes() {
    let c = cluster();
    let client = c.client().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    c.ok_stdin(
        &["apply", "-f", "-"],
        &job_manifest(
            "idx",
            json!({ "completionMode": "Indexed", "completions": 3, "parallelism": 3 }),
            json!({}),
        ),
    );
    let j = wait_condition(&jobs, "idx", "Complete").await;
    let status = j.status.clone().unwrap();
    assert_eq!(status.completed_indexes.as_deref(), Some("0-2"));
    assert_eq!(status.succeeded, Some(3));
    let mut seen = Vec::new();
    for p in pods_of(&pods, "idx").await {
        let ix = p.metadata.annotations.as_ref().unwrap()
            ["batch.kubernetes.io/job-completion-index"]
            .clone();
        assert_eq!(
            p.metadata.labels.as_ref().unwrap()["batch.kubernetes.io/job-completion-index"],
            ix
        );
        let name = p.metadata.name.clone().unwrap();
        assert!(name.starts_with(&format!("idx-{ix}-")), "{name}");
        let spec = p.spec.unwrap();
        assert_eq!(spec.hostname, Some(format!("idx-{ix}")));
        let env = spec.containers[0].env.clone().unwrap();
        assert!(
            env.iter().any(|e| e.name == "JOB_COMPLETION_INDEX"),
            "{env:?}"
        );
        seen.push(ix);
    }
    seen.sort();
    assert_eq!(seen, ["0", "1", "2"]);
    let described = c.ok(&["describe", "job", "idx"]);
    let indexes_line = described
        .lines()
        .find(|l| l.starts_with("Completed Indexes:"))
        .unwrap_or_default();
    assert_eq!(
        indexes_line.split_whitespace().last(),
        Some("0-2"),
        "{described}"
    );
}

#[tokio::test]
async fn suspended_job_starts_no_pods_until_resumed() {
    let c = cluster();
    let client = c.client().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    c.ok_stdin(
        &["apply", "-f", "-"],
        &job_manifest("later", json!({ "suspend": true }), json!({})),
    );
    let j = wait_condition(&jobs, "later", "Suspended").await;
    let suspended = condition(&j, "Suspended").unwrap();
    assert_eq!(suspended.reason.as_deref(), Some("JobSuspended"));
    assert_eq!(j.status.as_ref().unwrap().start_time, None);
    assert!(pods_of(&pods, "later").await.is_empty());
    jobs.patch(
        "later",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "suspend": false } })),
    )
    .await
    .unwrap();
    let j = wait_condition(&jobs, "later", "Complete").await;
    let resumed = j.status.as_ref().unwrap().conditions.clone().unwrap();
    let s = resumed.iter().find(|c| c.type_ == "Suspended").unwrap();
    assert_eq!(
        (s.status.as_str(), s.reason.as_deref()),
        ("False", Some("JobResumed"))
    );
    wait_event(&client, "later", "Resumed", "Job resumed").await;
}

#[tokio::test]
async fn ttl_after_finished_deletes_the_job_and_its_pods() {
    let c = cluster();
    let client = c.client().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    c.ok_stdin(
        &["apply", "-f", "-"],
        &job_manifest("brief", json!({ "ttlSecondsAfterFinished": 2 }), json!({})),
    );
    wait_condition(&jobs, "brief", "Complete").await;
    assert_eq!(pods_of(&pods, "brief").await.len(), 1);
    eventually(WAIT, "job brief and its pods deleted", || async {
        let job = jobs.get_opt("brief").await.map_err(|e| e.to_string())?;
        let left = pods_of(&pods, "brief").await.len();
        if job.is_none() && left == 0 {
            Ok(())
        } else {
            Err(format!("job present: {}, pods: {left}", job.is_some()))
        }
    })
    .await;
}

#[tokio::test]
async fn cronjob_starts_a_job_at_the_next_minute_and_records_it() {
    let c = cluster();
    let client = c.client().await;
    let cronjobs: Api<CronJob> = Api::namespaced(client.clone(), "default");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    c.ok(&[
        "create",
        "cronjob",
        "tick",
        "--image=busybox",
        "--schedule=* * * * *",
    ]);
    let cj = cronjobs.get("tick").await.unwrap();
    let uid = cj.metadata.uid.clone().unwrap();
    // A Job made by hand from the CronJob's template runs at once.
    c.ok(&["create", "job", "by-hand", "--from=cronjob/tick"]);
    wait_condition(&jobs, "by-hand", "Complete").await;
    // The first run is at most a minute away.
    let job = eventually(Duration::from_secs(75), "the first job of tick", || async {
        let list = jobs
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        list.items
            .into_iter()
            .find(|j| {
                j.metadata.name.as_deref() != Some("by-hand")
                    && j.metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .any(|r| r.uid == uid && r.controller == Some(true))
            })
            .ok_or_else(|| "no job yet".to_string())
    })
    .await;
    let name = job.metadata.name.clone().unwrap();
    let stamp = job.metadata.annotations.as_ref().unwrap()
        ["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        .clone();
    let scheduled = k8s_openapi::chrono::DateTime::parse_from_rfc3339(&stamp).unwrap();
    assert_eq!(scheduled.timestamp() % 60, 0, "{stamp}");
    assert_eq!(name, format!("tick-{}", scheduled.timestamp() / 60));
    wait_event(
        &client,
        "tick",
        "SuccessfulCreate",
        &format!("Created job {name}"),
    )
    .await;
    let cj = cronjobs.get("tick").await.unwrap();
    let status = cj.status.clone().unwrap();
    assert_eq!(
        status.last_schedule_time.map(|t| t.0.timestamp()),
        Some(scheduled.timestamp())
    );

    // The job completes: the CronJob notices and keeps the success time.
    wait_condition(&jobs, &name, "Complete").await;
    wait_event(
        &client,
        "tick",
        "SawCompletedJob",
        &format!("Saw completed job: {name}, status: Complete"),
    )
    .await;
    eventually(WAIT, "tick's lastSuccessfulTime", || async {
        let cj = cronjobs.get("tick").await.map_err(|e| e.to_string())?;
        let s = cj.status.clone().unwrap_or_default();
        if s.last_successful_time.is_some() && s.active.as_ref().is_none_or(|a| a.is_empty()) {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    let table = c.ok(&["get", "cronjob", "tick"]);
    assert!(
        table.contains("* * * * *") && table.contains("False"),
        "{table}"
    );
}

#[tokio::test]
async fn pod_failure_policy_fails_the_job_on_a_matching_exit_code() {
    let c = cluster();
    let client = c.client().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let policy = json!({
        "completions": 2,
        "parallelism": 1,
        "podFailurePolicy": { "rules": [
            { "action": "FailJob", "onExitCodes": { "operator": "In", "values": [42] } },
        ] },
    });
    c.ok_stdin(
        &["apply", "-f", "-"],
        &job_manifest("strict", policy, json!({ "sim.krate.io/exit-code": "42" })),
    );
    let j = wait_condition(&jobs, "strict", "Failed").await;
    let ps = pods_of(&pods, "strict").await;
    assert_eq!(ps.len(), 1, "no replacement after a FailJob match");
    let pod_name = ps[0].metadata.name.clone().unwrap();
    let failed = condition(&j, "Failed").unwrap();
    assert_eq!(failed.reason.as_deref(), Some("PodFailurePolicy"));
    let message = format!(
        "Container main for pod default/{pod_name} failed with exit code 42 matching FailJob rule at index 0"
    );
    assert_eq!(failed.message.as_deref(), Some(message.as_str()));
    assert_eq!(j.status.as_ref().unwrap().failed, Some(1));
    wait_event(&client, "strict", "PodFailurePolicy", &message).await;
}

#[tokio::test]
async fn backoff_limit_per_index_retries_each_index_then_reports_failed_indexes() {
    let c = cluster();
    let client = c.client().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let spec = json!({
        "completionMode": "Indexed",
        "completions": 2,
        "parallelism": 2,
        "backoffLimitPerIndex": 1,
    });
    c.ok_stdin(
        &["apply", "-f", "-"],
        &job_manifest("per-index", spec, json!({ "sim.krate.io/exit-code": "1" })),
    );
    let j = wait_condition(&jobs, "per-index", "Failed").await;
    let failed = condition(&j, "Failed").unwrap();
    assert_eq!(failed.reason.as_deref(), Some("FailedIndexes"));
    assert_eq!(failed.message.as_deref(), Some("Job has failed indexes"));
    let status = j.status.clone().unwrap();
    assert_eq!(status.failed_indexes.as_deref(), Some("0-1"));
    assert_eq!(status.failed, Some(4), "two tries per index");
    // Each retry carries the failures of its index so far.
    let mut counts: Vec<(String, String)> = pods_of(&pods, "per-index")
        .await
        .into_iter()
        .map(|p| {
            let a = p.metadata.annotations.unwrap();
            (
                a["batch.kubernetes.io/job-completion-index"].clone(),
                a["batch.kubernetes.io/job-index-failure-count"].clone(),
            )
        })
        .collect();
    counts.sort();
    let want: Vec<(String, String)> = [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(counts, want);
}

#[tokio::test]
async fn deleting_a_running_job_releases_and_removes_its_pods() {
    let c = cluster();
    let client = c.client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    c.ok_stdin(
        &["apply", "-f", "-"],
        &job_manifest(
            "gone",
            json!({ "parallelism": 2, "completions": 2 }),
            json!({ "sim.krate.io/run-seconds": "600" }),
        ),
    );
    eventually(
        WAIT,
        "two running pods with the tracking finalizer",
        || async {
            let ps = pods_of(&pods, "gone").await;
            let tracked = ps
                .iter()
                .filter(|p| {
                    p.metadata
                        .finalizers
                        .iter()
                        .flatten()
                        .any(|f| f == FINALIZER)
                })
                .count();
            if tracked == 2 {
                Ok(())
            } else {
                Err(format!("{tracked} tracked pods"))
            }
        },
    )
    .await;
    c.ok(&["delete", "job", "gone", "--wait=false"]);
    eventually(WAIT, "pods of gone removed", || async {
        let left = pods_of(&pods, "gone").await;
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{:?}",
                left.iter()
                    .map(|p| (&p.metadata.name, &p.metadata.finalizers))
                    .collect::<Vec<_>>()
            ))
        }
    })
    .await;
}

fn has_tracking_finalizer(p: &Pod) -> bool {
    p.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == FINALIZER)
}

#[tokio::test]
async fn job_adopts_a_matching_orphan_pod_and_releases_it_when_relabelled() {
    let c = cluster();
    let client = c.client().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    c.ok_stdin(
        &["apply", "-f", "-"],
        &json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": "stray", "labels": { "app": "adopt-me" } },
            "spec": {
                "restartPolicy": "Never",
                "containers": [{ "name": "main", "image": "busybox" }],
            },
        })
        .to_string(),
    );
    let mut manifest: serde_json::Value = serde_json::from_str(&job_manifest(
        "adopter",
        json!({
            "manualSelector": true,
            "selector": { "matchLabels": { "app": "adopt-me" } },
            "parallelism": 1,
            "completions": 1,
        }),
        json!({ "sim.krate.io/run-seconds": "600" }),
    ))
    .unwrap();
    manifest["spec"]["template"]["metadata"]["labels"] = json!({ "app": "adopt-me" });
    c.ok_stdin(&["apply", "-f", "-"], &manifest.to_string());
    let uid = jobs.get("adopter").await.unwrap().metadata.uid.unwrap();
    eventually(
        WAIT,
        "the orphan adopted with the tracking finalizer",
        || async {
            let p = pods.get("stray").await.map_err(|e| e.to_string())?;
            let owners = p.metadata.owner_references.clone().unwrap_or_default();
            let adopted = owners
                .iter()
                .any(|r| r.uid == uid && r.kind == "Job" && r.controller == Some(true));
            if adopted && has_tracking_finalizer(&p) {
                Ok(())
            } else {
                Err(format!(
                    "owners {owners:?}, finalizers {:?}",
                    p.metadata.finalizers
                ))
            }
        },
    )
    .await;
    eventually(
        WAIT,
        "the adopted pod counted as the one active pod",
        || async {
            let j = jobs.get("adopter").await.map_err(|e| e.to_string())?;
            let active = j.status.as_ref().and_then(|s| s.active).unwrap_or(0);
            if active == 1 {
                Ok(())
            } else {
                Err(format!("active {active}"))
            }
        },
    )
    .await;
    let selected = pods
        .list(&ListParams::default().labels("app=adopt-me"))
        .await
        .unwrap()
        .items;
    assert_eq!(selected.len(), 1, "no pod created beside the adopted one");

    c.ok(&["label", "pod", "stray", "app=elsewhere", "--overwrite"]);
    eventually(
        WAIT,
        "the relabelled pod released without the finalizer",
        || async {
            let p = pods.get("stray").await.map_err(|e| e.to_string())?;
            if p.metadata
                .owner_references
                .clone()
                .unwrap_or_default()
                .is_empty()
                && !has_tracking_finalizer(&p)
            {
                Ok(())
            } else {
                Err(format!(
                    "owners {:?}, finalizers {:?}",
                    p.metadata.owner_references, p.metadata.finalizers
                ))
            }
        },
    )
    .await;
    eventually(WAIT, "a replacement pod owned by the job", || async {
        let ps = pods
            .list(&ListParams::default().labels("app=adopt-me"))
            .await
            .map_err(|e| e.to_string())?
            .items;
        let owned = ps
            .iter()
            .filter(|p| {
                p.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|r| r.uid == uid)
            })
            .count();
        if owned == 1 {
            Ok(())
        } else {
            Err(format!("{owned} owned pods"))
        }
    })
    .await;
}
