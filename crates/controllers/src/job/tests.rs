use super::*;
use k8s_openapi::api::batch::v1::{JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{Container, PodSpec};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn job(name: &str, mode: &str) -> Job {
    Job {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some("job-uid".into()),
            ..Default::default()
        },
        spec: Some(JobSpec {
            completion_mode: Some(mode.into()),
            completions: Some(3),
            parallelism: Some(2),
            template: PodTemplateSpec {
                metadata: None,
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "main".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

#[test]
fn active_pods_stay_within_parallelism_and_remaining_completions() {
    assert_eq!(wanted_active(Some(3), 2, 0, 0), 2);
    assert_eq!(wanted_active(Some(3), 2, 2, 1), 1);
    assert_eq!(wanted_active(Some(3), 2, 3, 0), 0);
    assert_eq!(wanted_active(Some(3), 2, 5, 0), 0);
    // Without completions: parallelism until one succeeds, then no more.
    assert_eq!(wanted_active(None, 4, 0, 1), 4);
    assert_eq!(wanted_active(None, 4, 1, 3), 3);
}

#[test]
fn pod_failure_backoff_doubles_from_ten_seconds_up_to_six_minutes() {
    let now = at("2024-05-01T10:00:30Z");
    assert_eq!(backoff_remaining(&[], now), Duration::ZERO);
    let one = [(at("2024-05-01T10:00:25Z"), false)];
    assert_eq!(backoff_remaining(&one, now), Duration::from_secs(5));
    let two = [
        (at("2024-05-01T10:00:10Z"), false),
        (at("2024-05-01T10:00:25Z"), false),
    ];
    assert_eq!(backoff_remaining(&two, now), Duration::from_secs(15));
    let many: Vec<_> = (0..10)
        .map(|_| (at("2024-05-01T10:00:29Z"), false))
        .collect();
    assert_eq!(backoff_remaining(&many, now), Duration::from_secs(359));
    // A success resets the count: only later failures matter.
    let reset = [
        (at("2024-05-01T10:00:00Z"), false),
        (at("2024-05-01T10:00:01Z"), false),
        (at("2024-05-01T10:00:20Z"), true),
        (at("2024-05-01T10:00:25Z"), false),
    ];
    assert_eq!(backoff_remaining(&reset, now), Duration::from_secs(5));
    let old = [(at("2024-05-01T09:00:00Z"), false)];
    assert_eq!(backoff_remaining(&old, now), Duration::ZERO);
}

#[test]
fn pods_of_a_job_are_named_after_it_and_carry_the_tracking_finalizer() {
    let j = job("pi", "NonIndexed");
    let t = pod_template(&j);
    let p = new_pod(&j, &t, None);
    assert_eq!(p.metadata.generate_name.as_deref(), Some("pi-"));
    assert_eq!(
        p.metadata.finalizers.as_deref(),
        Some(&[TRACKING_FINALIZER.to_string()][..])
    );
    let r = &p.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (r.kind.as_str(), r.controller, r.block_owner_deletion),
        ("Job", Some(true), Some(true))
    );
    assert!(p.spec.unwrap().containers[0].env.is_none());
}

#[test]
fn indexed_pods_get_their_index_hostname_and_environment() {
    let j = job("pi", "Indexed");
    let t = pod_template(&j);
    let p = new_pod(&j, &t, Some(2));
    assert_eq!(p.metadata.generate_name.as_deref(), Some("pi-2-"));
    assert_eq!(
        p.metadata.annotations.as_ref().unwrap()[indexes::COMPLETION_INDEX],
        "2"
    );
    assert_eq!(
        p.metadata.labels.as_ref().unwrap()[indexes::COMPLETION_INDEX],
        "2"
    );
    let spec = p.spec.unwrap();
    assert_eq!(spec.hostname.as_deref(), Some("pi-2"));
    let env = &spec.containers[0].env.as_ref().unwrap()[0];
    assert_eq!(env.name, "JOB_COMPLETION_INDEX");
    assert_eq!(
        env.value_from
            .as_ref()
            .unwrap()
            .field_ref
            .as_ref()
            .unwrap()
            .field_path,
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );
    let long = job(&"x".repeat(60), "Indexed");
    let p = new_pod(&long, &t, Some(12));
    assert_eq!(p.metadata.generate_name.unwrap().len(), 58);
}

fn indexed_pod(name: &str, index: Option<&str>) -> Arc<Pod> {
    Arc::new(Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            annotations: index
                .map(|i| [(indexes::COMPLETION_INDEX.to_string(), i.to_string())].into()),
            ..Default::default()
        },
        spec: None,
        status: None,
    })
}

#[test]
fn repeated_missing_and_out_of_range_indexes_are_deleted() {
    let pods = vec![
        indexed_pod("a", Some("0")),
        indexed_pod("b", Some("0")),
        indexed_pod("c", Some("1")),
        indexed_pod("d", None),
        indexed_pod("e", Some("7")),
    ];
    let (rm, left) = duplicate_index_pods(&pods, 3);
    let names = |v: &[Arc<Pod>]| {
        let mut n: Vec<String> = v.iter().map(|p| p.metadata.name.clone().unwrap()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&rm).len(), 3);
    assert!(names(&rm).contains(&"d".to_string()) && names(&rm).contains(&"e".to_string()));
    assert_eq!(left.len(), 2);
    assert!(names(&left).contains(&"c".to_string()));
}

#[test]
fn conditions_are_added_true_and_only_updated_to_false() {
    let now = at("2024-05-01T10:00:00Z");
    let mut list = Vec::new();
    assert!(!ensure_condition(
        &mut list,
        "Suspended",
        "False",
        "JobResumed",
        "Job resumed",
        now
    ));
    assert!(list.is_empty());
    assert!(ensure_condition(
        &mut list,
        "Suspended",
        "True",
        "JobSuspended",
        "Job suspended",
        now
    ));
    assert!(!ensure_condition(
        &mut list,
        "Suspended",
        "True",
        "JobSuspended",
        "Job suspended",
        now
    ));
    assert!(ensure_condition(
        &mut list,
        "Suspended",
        "False",
        "JobResumed",
        "Job resumed",
        now
    ));
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].status, "False");
}

#[test]
fn uncounted_pods_move_into_counters_once_their_finalizer_is_gone() {
    let mut status = JobStatus {
        succeeded: Some(1),
        uncounted_terminated_pods: Some(UncountedTerminatedPods {
            succeeded: Some(vec!["a".into(), "b".into()]),
            failed: Some(vec!["c".into()]),
        }),
        ..Default::default()
    };
    let still: HashSet<String> = ["b".to_string()].into();
    assert!(clean_uncounted(&mut status, &still));
    assert_eq!(status.succeeded, Some(2));
    assert_eq!(status.failed, Some(1));
    let u = status.uncounted_terminated_pods.unwrap();
    assert_eq!(u.succeeded, Some(vec!["b".to_string()]));
    assert_eq!(u.failed, None);
}
