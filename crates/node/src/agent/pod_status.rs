//! The pod status the kubelet reports, computed without IO from the pod,
//! the runtime's view of it and what the last sync ran into (upstream
//! `kubelet_pods.go` generateAPIPodStatus, convertToAPIContainerStatuses,
//! getPhase, and `status/generate.go` for the conditions).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{
    Container, ContainerState as ApiState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus as ApiStatus, HostIP, Pod, PodCondition, PodIP,
    PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use runtime::{ContainerState, ContainerStatus};

use super::actions::{restart_policy, RuntimePod};

/// Why a container is not running, from the last sync: a waiting reason
/// (`CrashLoopBackOff`, `ErrImagePull`, `CreateContainerConfigError`, ...)
/// and message.
pub type SyncErrors = HashMap<String, (String, String)>;

/// Inputs beside the pod and the runtime.
pub struct Context<'a> {
    pub host_ip: &'a str,
    /// The runtime's name for container IDs (`runc`).
    pub runtime_name: &'a str,
    pub errors: &'a SyncErrors,
    /// Readiness probe results by container (absent: no probe or unknown).
    pub readiness: &'a HashMap<String, bool>,
    /// Startup probe results by container.
    pub startup: &'a HashMap<String, bool>,
    /// The pod is being torn down (deleted, or its node gave up on it).
    pub terminating: bool,
    pub now: DateTime<Utc>,
}

fn time(t: Option<DateTime<Utc>>) -> Option<Time> {
    t.map(|t| Time(chrono::SubsecRound::trunc_subsecs(t, 0)))
}

fn terminated(s: &ContainerStatus, runtime_name: &str) -> ContainerStateTerminated {
    let exit = s.exit_code.unwrap_or(0);
    ContainerStateTerminated {
        exit_code: exit,
        reason: Some(
            s.reason
                .clone()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| if exit == 0 { "Completed" } else { "Error" }.into()),
        ),
        message: s.message.clone().filter(|m| !m.is_empty()),
        started_at: time(s.started_at),
        finished_at: time(s.finished_at),
        container_id: Some(format!("{runtime_name}://{}", s.id)),
        signal: None,
    }
}

fn api_state(s: &ContainerStatus, runtime_name: &str, default_waiting: &str) -> ApiState {
    match s.state {
        ContainerState::Running => ApiState {
            running: Some(ContainerStateRunning {
                started_at: time(s.started_at.or(Some(s.created_at))),
            }),
            ..Default::default()
        },
        ContainerState::Exited => ApiState {
            terminated: Some(terminated(s, runtime_name)),
            ..Default::default()
        },
        ContainerState::Created | ContainerState::Unknown => ApiState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(default_waiting.into()),
                message: None,
            }),
            ..Default::default()
        },
    }
}

fn container_statuses(
    containers: &[Container],
    old: Option<&Vec<ApiStatus>>,
    rt: &RuntimePod,
    ctx: &Context<'_>,
    default_waiting: &str,
) -> Vec<ApiStatus> {
    containers
        .iter()
        .map(|c| {
            let mut all = rt.all(&c.name);
            let latest = all.next();
            let previous = all.next();
            let old = old.and_then(|o| o.iter().find(|s| s.name == c.name));
            let mut status = ApiStatus {
                name: c.name.clone(),
                image: c.image.clone().unwrap_or_default(),
                image_id: String::new(),
                ready: false,
                started: Some(false),
                restart_count: 0,
                state: Some(ApiState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some(default_waiting.into()),
                        message: None,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            };
            if let Some(s) = latest {
                let running = s.state == ContainerState::Running;
                status.container_id = Some(format!("{}://{}", ctx.runtime_name, s.id));
                status.image_id = s.image_ref.clone();
                status.restart_count = s.metadata.attempt as i32;
                status.state = Some(api_state(s, ctx.runtime_name, default_waiting));
                status.started = Some(running && ctx.startup.get(&c.name).copied().unwrap_or(true));
                status.ready = running
                    && status.started == Some(true)
                    && ctx
                        .readiness
                        .get(&c.name)
                        .copied()
                        .unwrap_or(c.readiness_probe.is_none());
                if let Some(p) = previous.filter(|p| p.state == ContainerState::Exited) {
                    status.last_state = Some(ApiState {
                        terminated: Some(terminated(p, ctx.runtime_name)),
                        ..Default::default()
                    });
                }
            } else if let Some(old) = old {
                // Containers gone from the runtime keep what was reported.
                status.restart_count = old.restart_count;
                status.last_state = old.last_state.clone();
            }
            let running = latest.is_some_and(|s| s.state == ContainerState::Running);
            if let Some((reason, message)) = ctx.errors.get(&c.name).filter(|_| !running) {
                if let Some(s) = latest.filter(|s| s.state == ContainerState::Exited) {
                    status.last_state = Some(ApiState {
                        terminated: Some(terminated(s, ctx.runtime_name)),
                        ..Default::default()
                    });
                }
                status.state = Some(ApiState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some(reason.clone()),
                        message: Some(message.clone()).filter(|m| !m.is_empty()),
                    }),
                    ..Default::default()
                });
            }
            status
        })
        .collect()
}

fn is_waiting(s: &ApiStatus) -> bool {
    s.state.as_ref().is_some_and(|st| st.waiting.is_some())
}

fn exit_code(s: &ApiStatus) -> Option<i32> {
    s.state
        .as_ref()
        .and_then(|st| st.terminated.as_ref())
        .map(|t| t.exit_code)
}

fn last_exit_code(s: &ApiStatus) -> Option<i32> {
    s.last_state
        .as_ref()
        .and_then(|st| st.terminated.as_ref())
        .map(|t| t.exit_code)
}

/// Upstream `getPhase`.
pub fn phase(pod: &Pod, inits: &[ApiStatus], containers: &[ApiStatus]) -> &'static str {
    let policy = restart_policy(pod);
    let mut pending_init = 0;
    let mut failed_init = 0;
    for s in inits {
        match exit_code(s) {
            Some(0) => {}
            Some(_) => failed_init += 1,
            None if is_waiting(s) && last_exit_code(s).is_some_and(|c| c != 0) => failed_init += 1,
            None => pending_init += 1,
        }
    }
    let (mut waiting, mut running, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in containers {
        let st = s.state.as_ref();
        if st.is_some_and(|st| st.running.is_some()) {
            running += 1;
        } else if let Some(code) = exit_code(s) {
            stopped += 1;
            if code == 0 {
                succeeded += 1;
            }
        } else if is_waiting(s) {
            if s.last_state
                .as_ref()
                .is_some_and(|l| l.terminated.is_some())
            {
                stopped += 1;
            } else {
                waiting += 1;
            }
        }
    }
    if failed_init > 0 && policy == "Never" {
        return "Failed";
    }
    if pending_init > 0
        || (failed_init > 0
            && containers
                .iter()
                .all(|s| is_waiting(s) && s.last_state.is_none()))
    {
        return "Pending";
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        if policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

/// The full status. Conditions the kubelet does not own (PodScheduled,
/// DisruptionTarget, readiness gates' own) are kept from the old status.
pub fn generate(pod: &Pod, rt: &RuntimePod, ctx: &Context<'_>) -> PodStatus {
    let spec = pod.spec.clone().unwrap_or_default();
    let old = pod.status.clone().unwrap_or_default();
    let inits_spec = spec.init_containers.clone().unwrap_or_default();
    let default_waiting = if inits_spec.is_empty() {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let inits = container_statuses(
        &inits_spec,
        old.init_container_statuses.as_ref(),
        rt,
        ctx,
        default_waiting,
    );
    let containers = container_statuses(
        &spec.containers,
        old.container_statuses.as_ref(),
        rt,
        ctx,
        default_waiting,
    );
    // Ephemeral containers never count toward readiness or the phase.
    let ephemeral = container_statuses(
        &super::container_config::ephemeral_containers(pod),
        old.ephemeral_container_statuses.as_ref(),
        rt,
        ctx,
        default_waiting,
    );
    let ephemeral: Vec<ApiStatus> = ephemeral
        .into_iter()
        .map(|s| ApiStatus { ready: false, ..s })
        .collect();
    let mut phase = phase(pod, &inits, &containers).to_string();
    // A terminal phase is never left (upstream's status manager refuses it).
    if matches!(old.phase.as_deref(), Some("Succeeded" | "Failed")) {
        phase = old.phase.clone().unwrap_or_default();
    }
    if ctx.terminating && phase == "Running" {
        // Deleted pods keep reporting Running until their containers stop;
        // once stopped, a pod of policy Always counts as Failed/Succeeded
        // by its exit codes, as upstream's terminal status does.
        let all_stopped = containers
            .iter()
            .all(|s| s.state.as_ref().is_none_or(|st| st.running.is_none()));
        if all_stopped && restart_policy(pod) == "Always" {
            phase = if containers.iter().all(|s| exit_code(s) == Some(0)) {
                "Succeeded".into()
            } else {
                "Failed".into()
            };
        }
    }

    let host_network = spec.host_network.unwrap_or(false);
    let sandbox_ips: Vec<String> = rt
        .sandboxes
        .first()
        .map(|s| s.ips.iter().map(|ip| ip.to_string()).collect())
        .unwrap_or_default();
    let pod_ips: Vec<String> = if host_network {
        vec![ctx.host_ip.to_string()]
    } else if !sandbox_ips.is_empty() {
        sandbox_ips
    } else {
        old.pod_ips
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.ip)
            .collect()
    };

    let initialized = inits.iter().all(|s| exit_code(s) == Some(0));
    let unready: Vec<String> = containers
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.clone())
        .collect();
    let mut conditions = Vec::new();
    let old_conditions = old.conditions.clone().unwrap_or_default();
    let now = chrono::SubsecRound::trunc_subsecs(ctx.now, 0);
    let make = |type_: &str, status: bool, reason: Option<&str>, message: Option<String>| {
        let status = if status { "True" } else { "False" };
        let transition = old_conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        PodCondition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.map(Into::into),
            message,
            last_probe_time: None,
            last_transition_time: Some(transition),
        }
    };
    let sandbox_ready = rt.ready_sandbox().is_some();
    conditions.push(make("PodReadyToStartContainers", sandbox_ready, None, None));
    let succeeded = phase == "Succeeded";
    conditions.push(if initialized {
        make(
            "Initialized",
            true,
            succeeded.then_some("PodCompleted"),
            None,
        )
    } else {
        let incomplete: Vec<String> = inits
            .iter()
            .filter(|s| exit_code(s) != Some(0))
            .map(|s| s.name.clone())
            .collect();
        make(
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            )),
        )
    });
    let (ready, reason, message) = if succeeded {
        (false, Some("PodCompleted"), None)
    } else if !initialized {
        let incomplete: Vec<String> = inits
            .iter()
            .filter(|s| exit_code(s) != Some(0))
            .map(|s| s.name.clone())
            .collect();
        (
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            )),
        )
    } else if !unready.is_empty() {
        (
            false,
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    } else {
        (true, None, None)
    };
    conditions.push(make("Ready", ready, reason, message.clone()));
    conditions.push(make("ContainersReady", ready, reason, message));
    let ours = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
    ];
    for c in &old_conditions {
        if !ours.contains(&c.type_.as_str()) {
            conditions.push(c.clone());
        }
    }
    if !conditions.iter().any(|c| c.type_ == "PodScheduled") {
        conditions.push(make("PodScheduled", true, None, None));
    }

    PodStatus {
        phase: Some(phase),
        conditions: Some(conditions),
        host_ip: Some(ctx.host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: ctx.host_ip.to_string(),
        }]),
        pod_ip: pod_ips.first().cloned(),
        pod_ips: (!pod_ips.is_empty())
            .then(|| pod_ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()),
        start_time: old.start_time.clone().or(Some(Time(now))),
        qos_class: Some(super::container_config::qos_class(pod)),
        init_container_statuses: (!inits.is_empty()).then_some(inits),
        container_statuses: Some(containers),
        ephemeral_container_statuses: (!ephemeral.is_empty()).then_some(ephemeral),
        nominated_node_name: old.nominated_node_name.clone(),
        message: old.message.clone(),
        reason: old.reason.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;
    use runtime::{ContainerMetadata, PodSandboxMetadata, PodSandboxState, PodSandboxStatus};

    fn pod(policy: &str) -> Pod {
        Pod {
            spec: Some(PodSpec {
                restart_policy: Some(policy.into()),
                containers: vec![Container {
                    name: "app".into(),
                    image: Some("krate.test/busybox:1".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn rt(state: ContainerState, exit: Option<i32>, attempt: u32) -> RuntimePod {
        RuntimePod::new(
            vec![PodSandboxStatus {
                id: "sb".into(),
                metadata: PodSandboxMetadata::default(),
                state: PodSandboxState::Ready,
                created_at: Utc::now(),
                ips: vec!["10.42.0.5".parse().unwrap()],
                netns_path: None,
                labels: Default::default(),
                annotations: Default::default(),
            }],
            vec![ContainerStatus {
                id: "c1".into(),
                pod_sandbox_id: "sb".into(),
                metadata: ContainerMetadata {
                    name: "app".into(),
                    attempt,
                },
                state,
                created_at: Utc::now(),
                started_at: Some(Utc::now()),
                finished_at: exit.map(|_| Utc::now()),
                exit_code: exit,
                image: "krate.test/busybox:1".into(),
                image_ref: "sha256:abc".into(),
                reason: None,
                message: None,
                labels: Default::default(),
                annotations: Default::default(),
                log_path: Default::default(),
                mounts: Vec::new(),
            }],
        )
    }

    fn ctx<'a>(errors: &'a SyncErrors, probes: &'a HashMap<String, bool>) -> Context<'a> {
        Context {
            host_ip: "192.0.2.1",
            runtime_name: "runc",
            errors,
            readiness: probes,
            startup: probes,
            terminating: false,
            now: Utc::now(),
        }
    }

    #[test]
    fn a_running_container_makes_a_ready_running_pod_with_its_ip() {
        let (e, p) = (SyncErrors::new(), HashMap::new());
        let s = generate(
            &pod("Always"),
            &rt(ContainerState::Running, None, 0),
            &ctx(&e, &p),
        );
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.pod_ip.as_deref(), Some("10.42.0.5"));
        let c = &s.container_statuses.as_ref().unwrap()[0];
        assert!(c.ready);
        assert_eq!(c.container_id.as_deref(), Some("runc://c1"));
        let types: Vec<_> = s
            .conditions
            .unwrap()
            .iter()
            .map(|c| format!("{}={}", c.type_, c.status))
            .collect();
        assert_eq!(
            types,
            [
                "PodReadyToStartContainers=True",
                "Initialized=True",
                "Ready=True",
                "ContainersReady=True",
                "PodScheduled=True"
            ]
        );
    }

    #[test]
    fn exit_0_with_never_is_succeeded_and_a_back_off_shows_crash_loop() {
        let (e, p) = (SyncErrors::new(), HashMap::new());
        let s = generate(
            &pod("Never"),
            &rt(ContainerState::Exited, Some(0), 0),
            &ctx(&e, &p),
        );
        assert_eq!(s.phase.as_deref(), Some("Succeeded"));
        let t = s.container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .terminated
            .unwrap();
        assert_eq!(t.reason.as_deref(), Some("Completed"));
        let mut e = SyncErrors::new();
        e.insert(
            "app".into(),
            (
                "CrashLoopBackOff".into(),
                "back-off 10s restarting failed container=app pod=p_ns(u)".into(),
            ),
        );
        let s = generate(
            &pod("Always"),
            &rt(ContainerState::Exited, Some(1), 1),
            &ctx(&e, &p),
        );
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let c = &s.container_statuses.unwrap()[0];
        assert_eq!(
            c.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("CrashLoopBackOff")
        );
        assert_eq!(
            c.last_state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("Error")
        );
        assert_eq!(c.restart_count, 1);
    }
}
