use super::*;
use api::kinds::cron;
use k8s_openapi::api::batch::v1::{CronJobSpec, JobCondition, JobStatus, JobTemplateSpec};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn inputs(created: &str) -> Inputs {
    Inputs {
        name: "hello".into(),
        created: at(created),
        last_schedule_time: None,
        starting_deadline_seconds: None,
        concurrency_policy: "Allow".into(),
        active_names: Vec::new(),
    }
}

fn utc() -> Zone {
    Zone::Named(chrono_tz::UTC)
}

fn every_minute() -> Schedule {
    cron::parse("* * * * *").unwrap()
}

#[test]
fn nothing_is_due_before_the_first_schedule_time() {
    let cj = inputs("2024-05-01T10:00:10Z");
    let d = decide(&cj, at("2024-05-01T10:00:40Z"), &every_minute(), &utc());
    // Wakes 20 s later, at 10:01:00 plus upstream's 100 ms.
    assert_eq!(d, Decision::Wait(Duration::from_millis(20_100)));
}

#[test]
fn a_due_run_creates_the_job_named_after_its_minute() {
    let cj = inputs("2024-05-01T10:00:10Z");
    let d = decide(&cj, at("2024-05-01T10:01:00.5Z"), &every_minute(), &utc());
    let Decision::Run {
        scheduled,
        replace,
        too_many_missed,
        requeue,
    } = d
    else {
        panic!("{d:?}")
    };
    assert_eq!(scheduled, at("2024-05-01T10:01:00Z"));
    assert!(!replace && !too_many_missed);
    assert_eq!(requeue, Duration::from_millis(59_600));
    assert_eq!(job_name("hello", scheduled), "hello-28575961");
}

#[test]
fn a_run_already_started_is_not_started_again() {
    let mut cj = inputs("2024-05-01T10:00:10Z");
    cj.last_schedule_time = Some(at("2024-05-01T10:01:00Z"));
    let d = decide(&cj, at("2024-05-01T10:01:30Z"), &every_minute(), &utc());
    assert_eq!(d, Decision::Wait(Duration::from_millis(30_100)));
}

#[test]
fn only_the_most_recent_missed_time_runs() {
    let mut cj = inputs("2024-05-01T09:00:00Z");
    cj.last_schedule_time = Some(at("2024-05-01T10:00:00Z"));
    let d = decide(&cj, at("2024-05-01T10:07:30Z"), &every_minute(), &utc());
    assert!(
        matches!(d, Decision::Run { scheduled, too_many_missed: false, .. } if scheduled == at("2024-05-01T10:07:00Z")),
        "{d:?}"
    );
}

#[test]
fn more_than_a_hundred_missed_times_are_reported() {
    let cj = inputs("2024-05-01T00:00:00Z");
    let d = decide(&cj, at("2024-05-01T12:00:30Z"), &every_minute(), &utc());
    assert!(
        matches!(d, Decision::Run { scheduled, too_many_missed: true, .. } if scheduled == at("2024-05-01T12:00:00Z")),
        "{d:?}"
    );
}

#[test]
fn a_starting_deadline_bounds_how_far_back_runs_are_looked_for() {
    let mut cj = inputs("2024-05-01T00:00:00Z");
    cj.starting_deadline_seconds = Some(200);
    // With a deadline, earlier misses are not counted as "many".
    let d = decide(&cj, at("2024-05-01T12:00:30Z"), &every_minute(), &utc());
    assert!(
        matches!(
            d,
            Decision::Run {
                too_many_missed: false,
                ..
            }
        ),
        "{d:?}"
    );
}

#[test]
fn a_run_later_than_its_starting_deadline_is_missed() {
    let mut cj = inputs("2024-05-01T09:00:00Z");
    cj.last_schedule_time = Some(at("2024-05-01T09:00:00Z"));
    cj.starting_deadline_seconds = Some(10);
    let hourly = cron::parse("0 * * * *").unwrap();
    // 10:00 was due; now is 10:00:30, 20 s past the deadline. Nothing in the
    // deadline window: upstream then finds no run at all.
    let d = decide(&cj, at("2024-05-01T10:00:30Z"), &hourly, &utc());
    assert!(matches!(d, Decision::Wait(_)), "{d:?}");
    // Without the window filter (deadline longer than the lag) it runs.
    cj.starting_deadline_seconds = Some(60);
    let d = decide(&cj, at("2024-05-01T10:00:30Z"), &hourly, &utc());
    assert!(matches!(d, Decision::Run { .. }), "{d:?}");
}

#[test]
fn forbid_skips_a_run_while_a_job_is_active() {
    let mut cj = inputs("2024-05-01T10:00:10Z");
    cj.concurrency_policy = "Forbid".into();
    cj.active_names = vec!["hello-28575960".into()];
    cj.last_schedule_time = Some(at("2024-05-01T10:00:00Z"));
    let d = decide(&cj, at("2024-05-01T10:01:00.5Z"), &every_minute(), &utc());
    assert!(matches!(d, Decision::AlreadyActive(_)), "{d:?}");
}

#[test]
fn replace_deletes_the_active_job_before_the_next_run() {
    let mut cj = inputs("2024-05-01T10:00:10Z");
    cj.concurrency_policy = "Replace".into();
    cj.active_names = vec!["hello-28575960".into()];
    cj.last_schedule_time = Some(at("2024-05-01T10:00:00Z"));
    let d = decide(&cj, at("2024-05-01T10:01:00.5Z"), &every_minute(), &utc());
    assert!(matches!(d, Decision::Run { replace: true, .. }), "{d:?}");
}

#[test]
fn allow_runs_alongside_an_active_job() {
    let mut cj = inputs("2024-05-01T10:00:10Z");
    cj.active_names = vec!["hello-28575960".into()];
    cj.last_schedule_time = Some(at("2024-05-01T10:00:00Z"));
    let d = decide(&cj, at("2024-05-01T10:01:00.5Z"), &every_minute(), &utc());
    assert!(matches!(d, Decision::Run { replace: false, .. }), "{d:?}");
}

#[test]
fn schedules_follow_the_cronjob_time_zone() {
    let zone = Zone::parse("Europe/Berlin").unwrap();
    let daily6 = cron::parse("0 6 * * *").unwrap();
    let cj = inputs("2024-07-01T00:00:00Z");
    // 06:00 in Berlin in July is 04:00 UTC.
    let d = decide(&cj, at("2024-07-01T04:00:01Z"), &daily6, &zone);
    assert!(
        matches!(d, Decision::Run { scheduled, .. } if scheduled == at("2024-07-01T04:00:00Z")),
        "{d:?}"
    );
    let cron = CronJob {
        metadata: ObjectMeta {
            name: Some("hello".into()),
            namespace: Some("default".into()),
            uid: Some("u1".into()),
            ..Default::default()
        },
        spec: Some(CronJobSpec {
            schedule: "0 6 * * *".into(),
            job_template: JobTemplateSpec::default(),
            ..Default::default()
        }),
        status: None,
    };
    let job = job_from_template(&cron, at("2024-07-01T04:00:00Z"), &zone);
    assert_eq!(job.metadata.name.as_deref(), Some("hello-28663440"));
    assert_eq!(
        job.metadata.annotations.unwrap()[SCHEDULED_TIMESTAMP_ANNOTATION],
        "2024-07-01T06:00:00+02:00"
    );
    let job = job_from_template(&cron, at("2024-07-01T04:00:00Z"), &utc());
    assert_eq!(
        job.metadata.annotations.unwrap()[SCHEDULED_TIMESTAMP_ANNOTATION],
        "2024-07-01T04:00:00Z"
    );
    assert_eq!(job.metadata.owner_references.unwrap()[0].kind, "CronJob");
}

#[test]
fn unknown_time_zones_are_refused() {
    assert_eq!(
        Zone::parse("Mars/Olympus").unwrap_err(),
        "unknown time zone Mars/Olympus"
    );
}

fn finished(name: &str, cond: &str, start_secs: i64) -> Arc<Job> {
    Arc::new(Job {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: None,
        status: Some(JobStatus {
            start_time: Some(Time(DateTime::from_timestamp(start_secs, 0).unwrap())),
            conditions: Some(vec![JobCondition {
                type_: cond.into(),
                status: "True".into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    })
}

#[test]
fn history_limits_delete_the_oldest_finished_jobs() {
    let jobs = vec![
        finished("c", "Complete", 300),
        finished("a", "Complete", 100),
        finished("d", "Complete", 400),
        finished("b", "Complete", 200),
    ];
    let names: Vec<_> = oldest_beyond_limit(jobs.clone(), 3)
        .iter()
        .map(|j| j.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["a"]);
    assert_eq!(oldest_beyond_limit(jobs.clone(), 0).len(), 4);
    assert!(oldest_beyond_limit(jobs, 5).is_empty());
    assert_eq!(
        finished_condition(&finished("x", "Failed", 1)),
        Some("Failed")
    );
}
