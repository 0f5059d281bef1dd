//! What a simulated kubelet reports for a pod, as a pure function of the
//! pod, its addresses and the time: the next status (upstream kubelet's
//! `generateAPIPodStatus` shape: phase, conditions, container statuses),
//! the events a kubelet would record on the way, and when to look again.
//!
//! A pod's containers start at once and run until the pod's annotations
//! say otherwise: `sim.krate.io/run-seconds` makes them exit after that
//! long with `sim.krate.io/exit-code` (default 0), then the restart policy
//! decides (restarts back off 10 s, 20 s, ... up to 5 min after the first,
//! as the kubelet's CrashLoopBackOff); `sim.krate.io/ready: "false"` keeps
//! them unready. Pods owned by a Job run 1 s by default. Everything is
//! derived from the status already written, so a restarted server carries
//! on where it was.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
    VolumeMountStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub const READY: &str = "sim.krate.io/ready";
pub const RUN_SECONDS: &str = "sim.krate.io/run-seconds";
pub const EXIT_CODE: &str = "sim.krate.io/exit-code";

const MAX_BACKOFF_SECONDS: i64 = 300;

/// How a pod's containers behave, from its annotations.
#[derive(Clone, Debug, PartialEq)]
pub struct Behaviour {
    pub ready: bool,
    /// Containers exit this long after they start.
    pub run_for: Option<Duration>,
    pub exit_code: i32,
}

impl Behaviour {
    pub fn of(pod: &Pod) -> Behaviour {
        let empty = BTreeMap::new();
        let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
        let get = |k: &str| annotations.get(k).map(|v| v.trim());
        let job_owned = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "Job" && o.api_version.starts_with("batch/"));
        let run_for = match get(RUN_SECONDS).and_then(|v| v.parse::<f64>().ok()) {
            Some(s) if s.is_finite() && s >= 0.0 => {
                Some(Duration::milliseconds((s * 1000.0) as i64))
            }
            _ if job_owned => Some(Duration::seconds(1)),
            _ => None,
        };
        Behaviour {
            ready: get(READY) != Some("false"),
            run_for,
            exit_code: get(EXIT_CODE).and_then(|v| v.parse().ok()).unwrap_or(0),
        }
    }
}

/// Where the pod lives: its node's address and the pod's own.
pub struct Addresses<'a> {
    pub host_ip: &'a str,
    pub pod_ip: &'a str,
}

/// An event a kubelet records about the pod, for one of its containers.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// `spec.containers{name}` or `spec.initContainers{name}`.
    pub field_path: String,
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// The status to write, the events on the way to it, and when the pod
/// changes next by itself (a container exits or restarts).
pub struct Next {
    pub status: PodStatus,
    pub events: Vec<Event>,
    pub wake_at: Option<DateTime<Utc>>,
}

pub fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Init,
    Sidecar,
    Regular,
}

/// The pod's next status at `now` (whole seconds, as the API stores times).
pub fn next(pod: &Pod, addresses: &Addresses<'_>, now: DateTime<Utc>) -> Next {
    let old = pod.status.clone().unwrap_or_default();
    let behaviour = Behaviour::of(pod);
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let start = old.start_time.as_ref().map(|t| t.0).unwrap_or(now);
    let mut events = Vec::new();
    let mut wake_at: Option<DateTime<Utc>> = None;
    let mut wake = |at: DateTime<Utc>| {
        wake_at = Some(wake_at.map_or(at, |w: DateTime<Utc>| w.min(at)));
    };
    let ctx = Ctx {
        pod,
        behaviour: &behaviour,
        now,
    };

    // Init containers complete at once, in order; restartable ones
    // (sidecars) start and keep running.
    let mut init_statuses = Vec::new();
    for c in spec.init_containers.iter().flatten() {
        let previous = find(old.init_container_statuses.as_deref(), &c.name);
        let role = if c.restart_policy.as_deref() == Some("Always") {
            Role::Sidecar
        } else {
            Role::Init
        };
        let (status, at) = ctx.advance(c, role, previous, policy, start, &mut events);
        if let Some(at) = at {
            wake(at);
        }
        init_statuses.push(status);
    }
    let mut statuses = Vec::new();
    for c in &spec.containers {
        let previous = find(old.container_statuses.as_deref(), &c.name);
        let (status, at) = ctx.advance(c, Role::Regular, previous, policy, start, &mut events);
        if let Some(at) = at {
            wake(at);
        }
        statuses.push(status);
    }

    let phase = phase(policy, &statuses, false);
    if matches!(phase, "Succeeded" | "Failed") {
        // The pod is done: its sidecars are stopped with it.
        wake_at = None;
        for s in init_statuses.iter_mut() {
            if is_running(s) {
                stop(s, 0, now);
            }
        }
    }
    let mut status = PodStatus {
        phase: Some(phase.to_string()),
        host_ip: Some(addresses.host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: addresses.host_ip.to_string(),
        }]),
        pod_ip: Some(addresses.pod_ip.to_string()),
        pod_ips: Some(vec![PodIP {
            ip: addresses.pod_ip.to_string(),
        }]),
        start_time: Some(Time(start)),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        container_statuses: Some(statuses),
        ..old.clone()
    };
    status.conditions = Some(conditions(pod, &status, &old, now));
    Next {
        status,
        events,
        wake_at,
    }
}

/// The status of a pod being deleted, once its containers are stopped
/// (exit 0, as a container that handles SIGTERM): terminal, unready, and
/// the events `Killing` for the containers that were running.
pub fn stopped(pod: &Pod, now: DateTime<Utc>) -> (PodStatus, Vec<Event>) {
    let old = pod.status.clone().unwrap_or_default();
    let policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    let mut events = Vec::new();
    let mut stop_all =
        |list: &Option<Vec<ContainerStatus>>, field: &str| -> Option<Vec<ContainerStatus>> {
            list.clone().map(|mut list| {
                for s in list.iter_mut() {
                    if is_running(s) {
                        events.push(Event {
                            field_path: format!("spec.{field}{{{}}}", s.name),
                            warning: false,
                            reason: "Killing",
                            message: format!("Stopping container {}", s.name),
                        });
                        stop(s, 0, now);
                    } else if s
                        .state
                        .as_ref()
                        .and_then(|st| st.terminated.as_ref())
                        .is_none()
                    {
                        // Waiting to restart: it stays stopped.
                        let last = s.last_state.clone().and_then(|l| l.terminated);
                        s.state = Some(ContainerState {
                            terminated: Some(last.unwrap_or(ContainerStateTerminated {
                                exit_code: 0,
                                reason: Some("Completed".into()),
                                finished_at: Some(Time(now)),
                                started_at: Some(Time(now)),
                                ..Default::default()
                            })),
                            ..Default::default()
                        });
                        s.ready = false;
                        s.started = Some(false);
                    }
                }
                list
            })
        };
    let init = stop_all(&old.init_container_statuses, "initContainers");
    let regular = stop_all(&old.container_statuses, "containers");
    if is_terminal(pod) {
        return (old, events);
    }
    let mut status = PodStatus {
        init_container_statuses: init,
        container_statuses: regular,
        ..old.clone()
    };
    let statuses = status.container_statuses.clone().unwrap_or_default();
    status.phase = Some(phase(policy, &statuses, true).to_string());
    status.conditions = Some(conditions(pod, &status, &old, now));
    (status, events)
}

struct Ctx<'a> {
    pod: &'a Pod,
    behaviour: &'a Behaviour,
    now: DateTime<Utc>,
}

impl Ctx<'_> {
    /// Moves one container forward to `now`: start, exit, back off, restart.
    fn advance(
        &self,
        c: &Container,
        role: Role,
        previous: Option<&ContainerStatus>,
        policy: &str,
        pod_start: DateTime<Utc>,
        events: &mut Vec<Event>,
    ) -> (ContainerStatus, Option<DateTime<Utc>>) {
        let now = self.now;
        let field = match role {
            Role::Regular => "containers",
            _ => "initContainers",
        };
        let field_path = format!("spec.{field}{{{}}}", c.name);
        let mut s = previous.cloned().unwrap_or_else(|| ContainerStatus {
            name: c.name.clone(),
            image: normalize_image(c.image.as_deref().unwrap_or_default()),
            image_id: image_id(c.image.as_deref().unwrap_or_default()),
            ..Default::default()
        });
        s.volume_mounts = volume_mounts(c);
        let started_event = |events: &mut Vec<Event>| {
            let image = c.image.clone().unwrap_or_default();
            events.push(Event {
                field_path: field_path.clone(),
                warning: false,
                reason: "Pulled",
                message: format!("Container image \"{image}\" already present on machine"),
            });
            events.push(Event {
                field_path: field_path.clone(),
                warning: false,
                reason: "Created",
                message: format!("Created container: {}", c.name),
            });
            events.push(Event {
                field_path: field_path.clone(),
                warning: false,
                reason: "Started",
                message: format!("Started container {}", c.name),
            });
        };
        // Init containers run to completion at once; nothing else to do.
        if role == Role::Init {
            if !matches!(s.state.as_ref().and_then(|st| st.terminated.as_ref()), Some(t) if t.exit_code == 0)
            {
                started_event(events);
                s.container_id = Some(self.container_id(&c.name, 0));
                s.state = Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        container_id: s.container_id.clone(),
                        exit_code: 0,
                        reason: Some("Completed".into()),
                        started_at: Some(Time(pod_start)),
                        finished_at: Some(Time(pod_start)),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
                s.ready = true;
                s.started = Some(false);
            }
            return (s, None);
        }
        let run_for = match role {
            Role::Sidecar => None,
            _ => self.behaviour.run_for,
        };
        let ready = self.behaviour.ready;
        for _ in 0..64 {
            let state = s.state.clone().unwrap_or_default();
            if let Some(running) = &state.running {
                let started = running.started_at.as_ref().map(|t| t.0).unwrap_or(now);
                s.ready = ready;
                s.started = Some(true);
                match run_for {
                    Some(d) if started + d <= now => {
                        let finished = started + d;
                        stop(&mut s, self.behaviour.exit_code, finished);
                        continue;
                    }
                    Some(d) => return (s, Some(ceil_seconds(started + d))),
                    None => return (s, None),
                }
            }
            if let Some(terminated) = &state.terminated {
                if !restarts(policy, terminated.exit_code) {
                    return (s, None);
                }
                let finished = terminated.finished_at.as_ref().map(|t| t.0).unwrap_or(now);
                let delay = backoff(s.restart_count);
                let at = finished + delay;
                s.last_state = Some(ContainerState {
                    terminated: Some(terminated.clone()),
                    ..Default::default()
                });
                if at <= now {
                    let restarts = s.restart_count + 1;
                    self.start(&mut s, &c.name, restarts, at);
                    started_event(events);
                    continue;
                }
                events.push(Event {
                    field_path: field_path.clone(),
                    warning: true,
                    reason: "BackOff",
                    message: format!(
                        "Back-off restarting failed container {} in pod {}",
                        c.name,
                        self.pod_ref()
                    ),
                });
                s.state = Some(ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some("CrashLoopBackOff".into()),
                        message: Some(format!(
                            "back-off {} restarting failed container={} pod={}",
                            go_duration(delay),
                            c.name,
                            self.pod_ref()
                        )),
                    }),
                    ..Default::default()
                });
                s.ready = false;
                s.started = Some(false);
                return (s, Some(at));
            }
            if let (Some(_), Some(last)) = (
                &state.waiting,
                s.last_state.clone().and_then(|l| l.terminated),
            ) {
                // Backing off: restart when the back-off is over.
                let finished = last.finished_at.as_ref().map(|t| t.0).unwrap_or(now);
                let at = finished + backoff(s.restart_count);
                if at > now {
                    return (s, Some(at));
                }
                let restarts = s.restart_count + 1;
                self.start(&mut s, &c.name, restarts, at);
                started_event(events);
                continue;
            }
            // Not started yet (or waiting for a reason of someone else's).
            let restarts = s.restart_count;
            self.start(&mut s, &c.name, restarts, now);
            started_event(events);
        }
        (s, Some(now))
    }

    fn start(&self, s: &mut ContainerStatus, name: &str, restart_count: i32, at: DateTime<Utc>) {
        s.restart_count = restart_count;
        s.container_id = Some(self.container_id(name, restart_count));
        s.state = Some(ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(at)),
            }),
            ..Default::default()
        });
        s.ready = self.behaviour.ready;
        s.started = Some(true);
    }

    fn container_id(&self, name: &str, attempt: i32) -> String {
        let uid = self.pod.metadata.uid.as_deref().unwrap_or_default();
        format!(
            "krate-sim://{}",
            crate::simulated::hex_id(&format!("{uid}/{name}/{attempt}"), 4)
        )
    }

    /// The kubelet's `format.Pod`: `name_namespace(uid)`.
    fn pod_ref(&self) -> String {
        let m = &self.pod.metadata;
        format!(
            "{}_{}({})",
            m.name.as_deref().unwrap_or_default(),
            m.namespace.as_deref().unwrap_or_default(),
            m.uid.as_deref().unwrap_or_default()
        )
    }
}

fn find<'a>(list: Option<&'a [ContainerStatus]>, name: &str) -> Option<&'a ContainerStatus> {
    list.and_then(|l| l.iter().find(|s| s.name == name))
}

fn is_running(s: &ContainerStatus) -> bool {
    s.state.as_ref().is_some_and(|st| st.running.is_some())
}

/// Ends a container's run with `exit_code` at `at`.
fn stop(s: &mut ContainerStatus, exit_code: i32, at: DateTime<Utc>) {
    let started = s
        .state
        .as_ref()
        .and_then(|st| st.running.as_ref())
        .and_then(|r| r.started_at.clone());
    s.state = Some(ContainerState {
        terminated: Some(ContainerStateTerminated {
            container_id: s.container_id.clone(),
            exit_code,
            reason: Some(if exit_code == 0 { "Completed" } else { "Error" }.into()),
            started_at: started,
            finished_at: Some(Time(at)),
            ..Default::default()
        }),
        ..Default::default()
    });
    s.ready = false;
    s.started = Some(false);
}

fn restarts(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

/// The kubelet's crash-loop back-off before restart number `restarts + 1`:
/// none for the first, then 10 s doubling up to 5 min.
pub fn backoff(restarts: i32) -> Duration {
    if restarts <= 0 {
        return Duration::zero();
    }
    let exp = (restarts - 1).min(10) as u32;
    Duration::seconds((10i64 << exp).min(MAX_BACKOFF_SECONDS))
}

/// A duration as Go's `time.Duration.String()` prints whole seconds.
fn go_duration(d: Duration) -> String {
    let s = d.num_seconds();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec}s"),
        (h, m, sec) => format!("{h}h{m}m{sec}s"),
    }
}

fn ceil_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    let floor = t.trunc_subsecs(0);
    if floor == t {
        t
    } else {
        floor + Duration::seconds(1)
    }
}

/// Upstream kubelet's `getPhase` over the regular containers.
fn phase(policy: &str, statuses: &[ContainerStatus], pod_is_terminal: bool) -> &'static str {
    let mut running = 0;
    let mut stopped = 0;
    let mut succeeded = 0;
    let mut waiting = 0;
    for s in statuses {
        let state = s.state.clone().unwrap_or_default();
        if state.running.is_some() {
            running += 1;
        } else if let Some(t) = &state.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if state.waiting.is_some() {
            if s.last_state
                .as_ref()
                .is_some_and(|l| l.terminated.is_some())
            {
                stopped += 1;
            } else {
                waiting += 1;
            }
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 && !pod_is_terminal {
        return "Running";
    }
    if stopped == statuses.len() || pod_is_terminal {
        if policy == "Always" && !pod_is_terminal {
            return "Running";
        }
        if policy == "OnFailure" && succeeded < stopped && !pod_is_terminal {
            return "Running";
        }
        return if stopped == succeeded {
            "Succeeded"
        } else {
            "Failed"
        };
    }
    "Running"
}

/// The kubelet's conditions: the others' first, kept as they are, then
/// PodReadyToStartContainers, Initialized, Ready, ContainersReady and
/// PodScheduled, each keeping its old lastTransitionTime while its status
/// holds.
fn conditions(
    pod: &Pod,
    status: &PodStatus,
    old: &PodStatus,
    now: DateTime<Utc>,
) -> Vec<PodCondition> {
    const BY_KUBELET: [&str; 5] = [
        "PodScheduled",
        "Ready",
        "Initialized",
        "ContainersReady",
        "PodReadyToStartContainers",
    ];
    let phase = status.phase.as_deref().unwrap_or_default();
    let terminal = matches!(phase, "Succeeded" | "Failed");
    let old_conditions = old.conditions.clone().unwrap_or_default();
    let mut out: Vec<PodCondition> = old_conditions
        .iter()
        .filter(|c| !BY_KUBELET.contains(&c.type_.as_str()))
        .cloned()
        .collect();

    let containers_ready = if terminal && phase == "Failed" {
        ("False", Some("PodFailed"), None)
    } else if terminal {
        ("False", Some("PodCompleted"), None)
    } else {
        let spec = pod.spec.clone().unwrap_or_default();
        let mut unready: Vec<String> = Vec::new();
        for c in spec.init_containers.iter().flatten() {
            let sidecar = c.restart_policy.as_deref() == Some("Always");
            if sidecar
                && !find(status.init_container_statuses.as_deref(), &c.name)
                    .is_some_and(|s| s.ready)
            {
                unready.push(c.name.clone());
            }
        }
        for c in &spec.containers {
            if !find(status.container_statuses.as_deref(), &c.name).is_some_and(|s| s.ready) {
                unready.push(c.name.clone());
            }
        }
        if unready.is_empty() {
            ("True", None, None)
        } else {
            (
                "False",
                Some("ContainersNotReady"),
                Some(format!(
                    "containers with unready status: [{}]",
                    unready.join(" ")
                )),
            )
        }
    };
    let ready = if containers_ready.0 != "True" {
        containers_ready.clone()
    } else {
        let mut messages = Vec::new();
        for gate in pod
            .spec
            .iter()
            .flat_map(|s| s.readiness_gates.iter().flatten())
        {
            let t = &gate.condition_type;
            match old_conditions.iter().find(|c| &c.type_ == t) {
                None => messages.push(format!(
                    "corresponding condition of pod readiness gate \"{t}\" does not exist."
                )),
                Some(c) if c.status != "True" => messages.push(format!(
                    "the status of pod readiness gate \"{t}\" is not \"True\", but {}",
                    c.status
                )),
                Some(_) => {}
            }
        }
        if messages.is_empty() {
            ("True", None, None)
        } else {
            (
                "False",
                Some("ReadinessGatesNotReady"),
                Some(messages.join(", ")),
            )
        }
    };
    let initialized = if phase == "Succeeded" {
        ("True", Some("PodCompleted"), None)
    } else {
        ("True", None, None)
    };
    let sandbox = if terminal { "False" } else { "True" };
    let scheduled = old_conditions
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "True");

    let make = |type_: &str, (status, reason, message): (&str, Option<&str>, Option<String>)| {
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
    out.push(make("PodReadyToStartContainers", (sandbox, None, None)));
    out.push(make("Initialized", initialized));
    out.push(make("Ready", ready));
    out.push(make("ContainersReady", containers_ready));
    out.push(match scheduled {
        Some(c) => c.clone(),
        None => make("PodScheduled", ("True", None, None)),
    });
    out
}

fn volume_mounts(c: &Container) -> Option<Vec<VolumeMountStatus>> {
    let mounts = c.volume_mounts.as_ref()?;
    if mounts.is_empty() {
        return None;
    }
    Some(
        mounts
            .iter()
            .map(|m| {
                let read_only = m.read_only.unwrap_or(false);
                VolumeMountStatus {
                    name: m.name.clone(),
                    mount_path: m.mount_path.clone(),
                    read_only: read_only.then_some(true),
                    recursive_read_only: read_only.then(|| "Disabled".to_string()),
                }
            })
            .collect(),
    )
}

/// An image reference as a container runtime reports it:
/// `nginx` → `docker.io/library/nginx:latest`.
pub fn normalize_image(image: &str) -> String {
    let (name, tag) = split_tag(image);
    let first = name.split('/').next().unwrap_or_default();
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let name = if has_registry {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    match tag {
        Some(t) => format!("{name}{t}"),
        None => format!("{name}:latest"),
    }
}

/// Splits `name[:tag][@digest]` into the name and the `:tag`/`@digest` part.
fn split_tag(image: &str) -> (&str, Option<&str>) {
    if let Some(at) = image.find('@') {
        return (&image[..at], Some(&image[at..]));
    }
    let last_slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[last_slash..].rfind(':') {
        Some(colon) => {
            let i = last_slash + colon;
            (&image[..i], Some(&image[i..]))
        }
        None => (image, None),
    }
}

/// A repo digest for the image: `docker.io/library/nginx@sha256:<64 hex>`.
fn image_id(image: &str) -> String {
    let normalized = normalize_image(image);
    let (name, _) = split_tag(&normalized);
    format!("{name}@sha256:{}", crate::simulated::hex_id(&normalized, 4))
}

#[cfg(test)]
mod tests;
