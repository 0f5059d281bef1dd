//! What one sync of a pod must do, decided without IO (upstream
//! `kuberuntime_manager.go` computePodActions): create the sandbox (and
//! then every container) when there is none or it is not ready, run init
//! containers one at a time in order, then start the app containers that
//! should run by the restart policy; kill the pod when nothing is left to
//! run.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{Container, Pod};
use runtime::{ContainerState, ContainerStatus, PodSandboxState, PodSandboxStatus};

/// The runtime's view of one pod: its sandboxes and containers, newest
/// first.
#[derive(Clone, Debug, Default)]
pub struct RuntimePod {
    pub sandboxes: Vec<PodSandboxStatus>,
    pub containers: Vec<ContainerStatus>,
}

impl RuntimePod {
    /// Sorts newest first.
    pub fn new(
        mut sandboxes: Vec<PodSandboxStatus>,
        mut containers: Vec<ContainerStatus>,
    ) -> RuntimePod {
        sandboxes.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then(b.metadata.attempt.cmp(&a.metadata.attempt))
        });
        containers.sort_by(|a, b| {
            b.metadata
                .attempt
                .cmp(&a.metadata.attempt)
                .then(b.created_at.cmp(&a.created_at))
        });
        RuntimePod {
            sandboxes,
            containers,
        }
    }

    /// The latest status of the container named `name`.
    pub fn latest(&self, name: &str) -> Option<&ContainerStatus> {
        self.containers.iter().find(|c| c.metadata.name == name)
    }

    /// Every status of `name`, newest first.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a ContainerStatus> + 'a {
        self.containers
            .iter()
            .filter(move |c| c.metadata.name == name)
    }

    pub fn ready_sandbox(&self) -> Option<&PodSandboxStatus> {
        self.sandboxes
            .first()
            .filter(|s| s.state == PodSandboxState::Ready)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Actions {
    /// Stop every container and the sandbox (the pod is done).
    pub kill_pod: bool,
    pub create_sandbox: bool,
    /// The sandbox to use when not creating one.
    pub sandbox_id: Option<String>,
    /// The attempt of the sandbox to create.
    pub attempt: u32,
    /// Index of the init container to start next.
    pub next_init_container: Option<usize>,
    /// An init container failed and the policy says never restart: the pod
    /// is Failed.
    pub init_failed: bool,
    /// Indexes of app containers to start.
    pub containers_to_start: Vec<usize>,
    /// Indexes of ephemeral containers to start: those that never ran
    /// (they are never restarted).
    pub ephemeral_to_start: Vec<usize>,
    /// Running containers to stop: (id, name, message).
    pub containers_to_kill: Vec<(String, String, String)>,
}

pub fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

fn should_restart_on_failure(pod: &Pod) -> bool {
    restart_policy(pod) != "Never"
}

fn is_init_failed(s: &ContainerStatus) -> bool {
    match s.state {
        ContainerState::Exited => s.exit_code.unwrap_or(0) != 0,
        ContainerState::Unknown => true,
        _ => false,
    }
}

/// Upstream `ShouldContainerBeRestarted`.
pub fn should_container_be_restarted(c: &Container, pod: &Pod, rt: &RuntimePod) -> bool {
    let Some(status) = rt.latest(&c.name) else {
        return true;
    };
    match status.state {
        ContainerState::Running => return false,
        ContainerState::Unknown | ContainerState::Created => return true,
        ContainerState::Exited => {}
    }
    match restart_policy(pod) {
        "Never" => false,
        "OnFailure" => status.exit_code.unwrap_or(0) != 0,
        _ => true,
    }
}

/// Upstream `findNextInitContainerToRun`: (the last init container's
/// status, the next one to run, whether all are done).
fn next_init_container<'a>(
    pod: &'a Pod,
    rt: &'a RuntimePod,
) -> (Option<&'a ContainerStatus>, Option<usize>, bool) {
    let spec = pod.spec.as_ref();
    let inits: &[Container] = spec
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or(&[]);
    if inits.is_empty() {
        return (None, None, true);
    }
    // A running (or created) app container means the init containers are
    // done; an exited one does not: after a reboot every container of the
    // old sandbox has exited, and the new sandbox runs its init containers
    // again (upstream's podHasInitialized).
    let containers: &[Container] = spec.map(|s| s.containers.as_slice()).unwrap_or(&[]);
    let initialized =
        |s: &ContainerStatus| matches!(s.state, ContainerState::Running | ContainerState::Created);
    if containers
        .iter()
        .any(|c| rt.latest(&c.name).is_some_and(initialized))
    {
        return (None, None, true);
    }
    // A failed init container is retried (or fails the pod) first.
    for (i, c) in inits.iter().enumerate().rev() {
        if let Some(s) = rt.latest(&c.name) {
            if is_init_failed(s) {
                return (Some(s), Some(i), false);
            }
        }
    }
    for (i, c) in inits.iter().enumerate() {
        let Some(s) = rt.latest(&c.name) else {
            return (None, Some(i), false);
        };
        match s.state {
            ContainerState::Running | ContainerState::Created => return (None, None, false),
            ContainerState::Exited if i == inits.len() - 1 => return (None, None, true),
            ContainerState::Exited => {
                if rt.latest(&inits[i + 1].name).is_none() {
                    return (Some(s), Some(i + 1), false);
                }
            }
            ContainerState::Unknown => return (Some(s), Some(i), false),
        }
    }
    (None, None, true)
}

/// Upstream `computePodActions`. `liveness_failed`: running containers
/// whose liveness probe failed (restarted as their policy says).
pub fn compute(pod: &Pod, rt: &RuntimePod, liveness_failed: &HashSet<String>) -> Actions {
    let mut actions = Actions::default();
    let spec = pod.spec.as_ref();
    let containers: &[Container] = spec.map(|s| s.containers.as_slice()).unwrap_or(&[]);
    let has_inits = spec
        .and_then(|s| s.init_containers.as_ref())
        .is_some_and(|i| !i.is_empty());

    // Sandbox changed: none, or the newest one not ready.
    let (create, attempt, sandbox_id) = match rt.sandboxes.first() {
        None => (true, 0, None),
        Some(s) if s.state != PodSandboxState::Ready => {
            (true, s.metadata.attempt + 1, Some(s.id.clone()))
        }
        Some(s) => (false, s.metadata.attempt, Some(s.id.clone())),
    };
    actions.attempt = attempt;
    actions.sandbox_id = sandbox_id;
    if create {
        // A pod that must not restart and has run already stays down.
        if !should_restart_on_failure(pod) && attempt != 0 && !rt.containers.is_empty() {
            return actions;
        }
        // OnFailure: containers that succeeded are not run again.
        let to_start: Vec<usize> = containers
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                !(restart_policy(pod) == "OnFailure"
                    && rt.latest(&c.name).is_some_and(|s| {
                        s.state == ContainerState::Exited && s.exit_code == Some(0)
                    }))
            })
            .map(|(i, _)| i)
            .collect();
        if to_start.is_empty() && !containers.is_empty() && !has_inits {
            return actions;
        }
        actions.create_sandbox = true;
        actions.sandbox_id = None;
        if has_inits {
            actions.next_init_container = Some(0);
        } else {
            actions.containers_to_start = to_start;
        }
        return actions;
    }

    // Ephemeral containers start before init containers: they may be
    // needed to troubleshoot a failing one.
    let ephemeral = spec.and_then(|s| s.ephemeral_containers.as_deref());
    actions.ephemeral_to_start = ephemeral
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter(|(_, c)| rt.latest(&c.name).is_none())
        .map(|(i, _)| i)
        .collect();

    let (last, next, done) = next_init_container(pod, rt);
    if !done {
        if let Some(next) = next {
            let failed = last.is_some_and(is_init_failed);
            if failed && !should_restart_on_failure(pod) {
                actions.kill_pod = true;
                actions.init_failed = true;
            } else {
                actions.next_init_container = Some(next);
            }
        }
        return actions;
    }

    let mut keep = 0;
    for (i, c) in containers.iter().enumerate() {
        let status = rt.latest(&c.name);
        match status {
            Some(s) if s.state == ContainerState::Running => {
                if liveness_failed.contains(&c.name) {
                    actions.containers_to_kill.push((
                        s.id.clone(),
                        c.name.clone(),
                        format!(
                            "Container {} failed liveness probe, will be restarted",
                            c.name
                        ),
                    ));
                    if restart_policy(pod) != "Never" {
                        actions.containers_to_start.push(i);
                    }
                    continue;
                }
                keep += 1;
            }
            _ => {
                if should_container_be_restarted(c, pod, rt) {
                    actions.containers_to_start.push(i);
                }
            }
        }
    }
    if keep == 0 && actions.containers_to_start.is_empty() {
        actions.kill_pod = true;
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use k8s_openapi::api::core::v1::PodSpec;
    use runtime::{ContainerMetadata, PodSandboxMetadata};

    fn pod(policy: &str, inits: &[&str], containers: &[&str]) -> Pod {
        let c = |n: &&str| Container {
            name: n.to_string(),
            ..Default::default()
        };
        Pod {
            spec: Some(PodSpec {
                restart_policy: Some(policy.into()),
                init_containers: Some(inits.iter().map(c).collect()),
                containers: containers.iter().map(c).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn sandbox(state: PodSandboxState, attempt: u32) -> PodSandboxStatus {
        PodSandboxStatus {
            id: format!("sb{attempt}"),
            metadata: PodSandboxMetadata {
                attempt,
                ..Default::default()
            },
            state,
            created_at: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(attempt.into()),
            ips: vec![],
            netns_path: None,
            labels: Default::default(),
            annotations: Default::default(),
        }
    }

    fn container(
        name: &str,
        attempt: u32,
        state: ContainerState,
        exit: Option<i32>,
    ) -> ContainerStatus {
        ContainerStatus {
            id: format!("{name}-{attempt}"),
            pod_sandbox_id: "sb0".into(),
            metadata: ContainerMetadata {
                name: name.into(),
                attempt,
            },
            state,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            started_at: None,
            finished_at: None,
            exit_code: exit,
            image: String::new(),
            image_ref: String::new(),
            reason: None,
            message: None,
            labels: Default::default(),
            annotations: Default::default(),
            log_path: Default::default(),
            mounts: Vec::new(),
        }
    }

    #[test]
    fn a_new_pod_gets_a_sandbox_and_all_containers_or_its_first_init_container() {
        let none = HashSet::new();
        let a = compute(
            &pod("Always", &[], &["a", "b"]),
            &RuntimePod::default(),
            &none,
        );
        assert!(a.create_sandbox);
        assert_eq!(a.containers_to_start, [0, 1]);
        let a = compute(
            &pod("Always", &["i1", "i2"], &["a"]),
            &RuntimePod::default(),
            &none,
        );
        assert_eq!(a.next_init_container, Some(0));
        assert!(a.containers_to_start.is_empty());
    }

    #[test]
    fn init_containers_run_in_order_and_a_failed_one_fails_a_never_pod() {
        let none = HashSet::new();
        let p = pod("Never", &["i1", "i2"], &["a"]);
        let rt = RuntimePod::new(
            vec![sandbox(PodSandboxState::Ready, 0)],
            vec![container("i1", 0, ContainerState::Exited, Some(0))],
        );
        assert_eq!(compute(&p, &rt, &none).next_init_container, Some(1));
        let rt = RuntimePod::new(
            vec![sandbox(PodSandboxState::Ready, 0)],
            vec![
                container("i1", 0, ContainerState::Exited, Some(0)),
                container("i2", 0, ContainerState::Exited, Some(0)),
            ],
        );
        assert_eq!(compute(&p, &rt, &none).containers_to_start, [0]);
        let rt = RuntimePod::new(
            vec![sandbox(PodSandboxState::Ready, 0)],
            vec![container("i1", 0, ContainerState::Exited, Some(1))],
        );
        let a = compute(&p, &rt, &none);
        assert!(a.kill_pod && a.init_failed);
        let a = compute(&pod("Always", &["i1"], &["a"]), &rt, &none);
        assert_eq!(a.next_init_container, Some(0));
    }

    #[test]
    fn exited_containers_restart_by_policy_and_a_finished_pod_is_killed() {
        let none = HashSet::new();
        let rt = RuntimePod::new(
            vec![sandbox(PodSandboxState::Ready, 0)],
            vec![container("a", 0, ContainerState::Exited, Some(0))],
        );
        assert_eq!(
            compute(&pod("Always", &[], &["a"]), &rt, &none).containers_to_start,
            [0]
        );
        assert!(compute(&pod("OnFailure", &[], &["a"]), &rt, &none).kill_pod);
        assert!(compute(&pod("Never", &[], &["a"]), &rt, &none).kill_pod);
        // The sandbox of a finished Never pod is not recreated.
        let rt = RuntimePod::new(
            vec![sandbox(PodSandboxState::NotReady, 0)],
            vec![container("a", 0, ContainerState::Exited, Some(0))],
        );
        assert!(!compute(&pod("Never", &[], &["a"]), &rt, &none).create_sandbox);
        // A lost sandbox of an Always pod is recreated with all containers.
        let a = compute(&pod("Always", &[], &["a"]), &rt, &none);
        assert!(a.create_sandbox);
        assert_eq!(a.attempt, 1);
    }

    #[test]
    fn after_a_reboot_the_app_waits_for_the_init_container_of_the_new_sandbox() {
        let none = HashSet::new();
        let p = pod("Always", &["i1"], &["a"]);
        let old = vec![
            container("i1", 0, ContainerState::Exited, Some(0)),
            container("a", 0, ContainerState::Exited, Some(255)),
        ];
        let sandboxes = vec![
            sandbox(PodSandboxState::Ready, 1),
            sandbox(PodSandboxState::NotReady, 0),
        ];
        let rt = |init: ContainerStatus| {
            let mut containers = old.clone();
            containers.push(init);
            RuntimePod::new(sandboxes.clone(), containers)
        };
        let a = compute(
            &p,
            &rt(container("i1", 1, ContainerState::Running, None)),
            &none,
        );
        assert!(a.containers_to_start.is_empty() && a.next_init_container.is_none());
        assert!(!a.kill_pod);
        let a = compute(
            &p,
            &rt(container("i1", 1, ContainerState::Exited, Some(0))),
            &none,
        );
        assert_eq!(a.containers_to_start, [0]);
    }

    #[test]
    fn a_failed_liveness_probe_restarts_the_container() {
        let rt = RuntimePod::new(
            vec![sandbox(PodSandboxState::Ready, 0)],
            vec![container("a", 0, ContainerState::Running, None)],
        );
        let failed: HashSet<String> = ["a".to_string()].into();
        let a = compute(&pod("Always", &[], &["a"]), &rt, &failed);
        assert_eq!(a.containers_to_kill.len(), 1);
        assert_eq!(a.containers_to_start, [0]);
    }
}
