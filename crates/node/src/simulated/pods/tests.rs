use super::*;
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

fn t(s: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(1_700_000_000 + s)
}

fn pod(annotations: &[(&str, &str)], restart_policy: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("u-1".into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("nginx".into()),
                ..Default::default()
            }],
            restart_policy: Some(restart_policy.into()),
            node_name: Some("sim-node-0".into()),
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Pending".into()),
            qos_class: Some("BestEffort".into()),
            conditions: Some(vec![PodCondition {
                type_: "PodScheduled".into(),
                status: "True".into(),
                last_transition_time: Some(Time(t(-1))),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

const ADDR: Addresses<'static> = Addresses {
    host_ip: "10.41.0.1",
    pod_ip: "10.42.0.2",
};

/// Applies `next` at `at`, as the node would after writing it.
fn step(p: &mut Pod, at: i64) -> Next {
    let n = next(p, &ADDR, t(at));
    p.status = Some(n.status.clone());
    n
}

fn container(p: &Pod) -> ContainerStatus {
    p.status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0]
        .clone()
}

fn condition(p: &Pod, type_: &str) -> PodCondition {
    p.status
        .as_ref()
        .unwrap()
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap()
        .clone()
}

#[test]
fn a_bound_pod_runs_and_is_ready_at_once() {
    let mut p = pod(&[], "Always");
    let n = step(&mut p, 0);
    let s = p.status.clone().unwrap();
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(s.pod_ip.as_deref(), Some("10.42.0.2"));
    assert_eq!(s.host_ip.as_deref(), Some("10.41.0.1"));
    assert_eq!(s.start_time, Some(Time(t(0))));
    assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
    let types: Vec<_> = s
        .conditions
        .unwrap()
        .iter()
        .map(|c| c.type_.clone())
        .collect();
    assert_eq!(
        types,
        [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled"
        ]
    );
    assert_eq!(condition(&p, "Ready").status, "True");
    assert_eq!(
        condition(&p, "PodScheduled").last_transition_time,
        Some(Time(t(-1)))
    );
    let c = container(&p);
    assert!(c.ready);
    assert_eq!(c.started, Some(true));
    assert_eq!(c.image, "docker.io/library/nginx:latest");
    assert!(c.image_id.starts_with("docker.io/library/nginx@sha256:"));
    assert!(c.container_id.unwrap().starts_with("krate-sim://"));
    assert_eq!(n.wake_at, None);
    let reasons: Vec<_> = n.events.iter().map(|e| e.reason).collect();
    assert_eq!(reasons, ["Pulled", "Created", "Started"]);
    assert_eq!(n.events[0].field_path, "spec.containers{app}");
}

#[test]
fn a_second_look_changes_nothing() {
    let mut p = pod(&[], "Always");
    step(&mut p, 0);
    let before = p.status.clone();
    let n = step(&mut p, 30);
    assert_eq!(p.status, before);
    assert!(n.events.is_empty());
}

#[test]
fn a_pod_annotated_unready_runs_but_is_not_ready() {
    let mut p = pod(&[(READY, "false")], "Always");
    step(&mut p, 0);
    assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Running"));
    let ready = condition(&p, "Ready");
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
    assert_eq!(
        ready.message.as_deref(),
        Some("containers with unready status: [app]")
    );
}

#[test]
fn a_failing_container_with_restart_policy_never_fails_the_pod() {
    let mut p = pod(&[(RUN_SECONDS, "2"), (EXIT_CODE, "1")], "Never");
    let n = step(&mut p, 0);
    assert_eq!(n.wake_at, Some(t(2)));
    step(&mut p, 2);
    let s = p.status.clone().unwrap();
    assert_eq!(s.phase.as_deref(), Some("Failed"));
    let term = container(&p).state.unwrap().terminated.unwrap();
    assert_eq!(term.exit_code, 1);
    assert_eq!(term.reason.as_deref(), Some("Error"));
    assert_eq!(term.finished_at, Some(Time(t(2))));
    assert_eq!(condition(&p, "Ready").reason.as_deref(), Some("PodFailed"));
    assert_eq!(condition(&p, "PodReadyToStartContainers").status, "False");
}

#[test]
fn a_job_pod_completes_after_a_second() {
    let mut p = pod(&[], "Never");
    p.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        name: "j".into(),
        uid: "j-1".into(),
        ..Default::default()
    }]);
    assert_eq!(step(&mut p, 0).wake_at, Some(t(1)));
    step(&mut p, 1);
    assert_eq!(
        p.status.as_ref().unwrap().phase.as_deref(),
        Some("Succeeded")
    );
    let term = container(&p).state.unwrap().terminated.unwrap();
    assert_eq!(term.reason.as_deref(), Some("Completed"));
    assert_eq!(
        condition(&p, "Initialized").reason.as_deref(),
        Some("PodCompleted")
    );
    assert_eq!(
        condition(&p, "Ready").reason.as_deref(),
        Some("PodCompleted")
    );
}

#[test]
fn always_restarts_at_once_then_backs_off() {
    let mut p = pod(&[(RUN_SECONDS, "1")], "Always");
    step(&mut p, 0);
    // Exits at 1 and restarts at once.
    let n = step(&mut p, 1);
    let c = container(&p);
    assert_eq!(c.restart_count, 1);
    assert!(c.state.unwrap().running.is_some());
    let last = c.last_state.unwrap().terminated.unwrap();
    assert_eq!(last.exit_code, 0);
    assert_eq!(last.finished_at, Some(Time(t(1))));
    assert_eq!(n.wake_at, Some(t(2)));
    // Exits at 2: back-off 10 s.
    let n = step(&mut p, 2);
    let c = container(&p);
    assert_eq!(c.restart_count, 1);
    let waiting = c.state.unwrap().waiting.unwrap();
    assert_eq!(waiting.reason.as_deref(), Some("CrashLoopBackOff"));
    assert_eq!(
        waiting.message.as_deref(),
        Some("back-off 10s restarting failed container=app pod=web_default(u-1)")
    );
    assert_eq!(n.wake_at, Some(t(12)));
    assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Running"));
    assert_eq!(condition(&p, "Ready").status, "False");
    assert!(n.events.iter().any(|e| e.reason == "BackOff" && e.warning));
    step(&mut p, 12);
    assert_eq!(container(&p).restart_count, 2);
}

#[test]
fn on_failure_restarts_failures_and_completes_on_success() {
    let mut p = pod(&[(RUN_SECONDS, "1"), (EXIT_CODE, "3")], "OnFailure");
    step(&mut p, 0);
    step(&mut p, 1);
    assert_eq!(container(&p).restart_count, 1);
    let mut p = pod(&[(RUN_SECONDS, "1")], "OnFailure");
    step(&mut p, 0);
    step(&mut p, 1);
    assert_eq!(
        p.status.as_ref().unwrap().phase.as_deref(),
        Some("Succeeded")
    );
}

#[test]
fn a_late_look_catches_up_with_everything_that_happened() {
    let mut p = pod(&[(RUN_SECONDS, "1")], "Always");
    step(&mut p, 0);
    // 1: exit and restart, 2: exit, 12: restart, 13: exit, 33: restart,
    // 34: exit, then backing off until 74.
    let n = step(&mut p, 40);
    let c = container(&p);
    assert_eq!(c.restart_count, 3);
    assert!(c.state.unwrap().waiting.is_some());
    let last = c.last_state.unwrap().terminated.unwrap();
    assert_eq!(last.started_at, Some(Time(t(33))));
    assert_eq!(last.finished_at, Some(Time(t(34))));
    assert_eq!(n.wake_at, Some(t(74)));
}

#[test]
fn init_containers_complete_before_the_containers_start() {
    let mut p = pod(&[], "Always");
    p.spec.as_mut().unwrap().init_containers = Some(vec![Container {
        name: "setup".into(),
        image: Some("busybox".into()),
        ..Default::default()
    }]);
    step(&mut p, 0);
    let init = &p
        .status
        .as_ref()
        .unwrap()
        .init_container_statuses
        .as_ref()
        .unwrap()[0];
    let term = init.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(term.reason.as_deref(), Some("Completed"));
    assert_eq!(term.exit_code, 0);
    assert!(init.ready);
    assert_eq!(condition(&p, "Initialized").status, "True");
}

#[test]
fn a_deleted_pod_has_its_containers_stopped() {
    let mut p = pod(&[], "Always");
    step(&mut p, 0);
    let (status, events) = stopped(&p, t(5));
    assert_eq!(status.phase.as_deref(), Some("Succeeded"));
    let term = status.container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(term.finished_at, Some(Time(t(5))));
    assert_eq!(events[0].reason, "Killing");
    assert_eq!(events[0].message, "Stopping container app");
}

#[test]
fn readiness_gates_hold_ready_back() {
    let mut p = pod(&[], "Always");
    p.spec.as_mut().unwrap().readiness_gates =
        Some(vec![k8s_openapi::api::core::v1::PodReadinessGate {
            condition_type: "example.com/lb".into(),
        }]);
    step(&mut p, 0);
    let ready = condition(&p, "Ready");
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason.as_deref(), Some("ReadinessGatesNotReady"));
    assert_eq!(condition(&p, "ContainersReady").status, "True");
}

#[test]
fn images_are_named_as_a_runtime_reports_them() {
    assert_eq!(normalize_image("nginx"), "docker.io/library/nginx:latest");
    assert_eq!(
        normalize_image("nginx:1.27"),
        "docker.io/library/nginx:1.27"
    );
    assert_eq!(
        normalize_image("bitnami/redis"),
        "docker.io/bitnami/redis:latest"
    );
    assert_eq!(
        normalize_image("registry.k8s.io/pause:3.10"),
        "registry.k8s.io/pause:3.10"
    );
    assert_eq!(
        normalize_image("localhost:5000/app"),
        "localhost:5000/app:latest"
    );
}

#[test]
fn back_off_doubles_from_ten_seconds_to_five_minutes() {
    assert_eq!(backoff(0), Duration::zero());
    assert_eq!(backoff(1), Duration::seconds(10));
    assert_eq!(backoff(2), Duration::seconds(20));
    assert_eq!(backoff(6), Duration::seconds(300));
    assert_eq!(backoff(60), Duration::seconds(300));
    assert_eq!(go_duration(Duration::seconds(80)), "1m20s");
    assert_eq!(go_duration(Duration::seconds(300)), "5m0s");
}
