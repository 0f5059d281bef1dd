//! Container probes (upstream `pkg/kubelet/prober`): one task per probe of
//! a running container, with initialDelaySeconds, periodSeconds (10),
//! timeoutSeconds (1), successThreshold (1) and failureThreshold (3).
//! Readiness starts failed and startup unknown; liveness and readiness
//! wait until the startup probe succeeded. A failed probe records an
//! `Unhealthy` event (`Liveness probe failed: ...`), a success with a
//! warning (a redirect to another host) a `ProbeWarning` event; the
//! worker restarts a container whose liveness probe failed and reports
//! readiness in the pod status.
//!
//! Handlers: exec (through the runtime's `exec_sync`), httpGet
//! ([`http`]: HTTP or HTTPS to the pod IP, 200-399 is success), tcpSocket
//! (a connection within the timeout) and grpc ([`grpc`]: the gRPC health
//! protocol).

pub mod grpc;
pub mod http;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use runtime::RuntimeService;
use tokio::sync::Notify;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Liveness,
    Readiness,
    Startup,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
            Kind::Startup => "Startup",
        }
    }

    pub fn of(self, c: &Container) -> Option<&Probe> {
        match self {
            Kind::Liveness => c.liveness_probe.as_ref(),
            Kind::Readiness => c.readiness_probe.as_ref(),
            Kind::Startup => c.startup_probe.as_ref(),
        }
    }
}

/// What one run of a probe found (upstream `probe.Result`).
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Success(String),
    /// A success that is reported as a `ProbeWarning` event.
    Warning(String),
    Failure(String),
}

/// An event a probe has to report on its container.
#[derive(Debug, PartialEq, Eq)]
pub struct Event {
    pub container: String,
    pub reason: &'static str,
    pub message: String,
}

/// The probe results of one pod, by (container name, container ID).
#[derive(Default)]
pub struct Results {
    results: HashMap<(String, String, Kind), bool>,
    /// Events not yet recorded (failures and warnings).
    pub events: Vec<Event>,
}

impl Results {
    pub fn get(&self, name: &str, id: &str, kind: Kind) -> Option<bool> {
        self.results
            .get(&(name.to_string(), id.to_string(), kind))
            .copied()
    }

    fn set(&mut self, name: &str, id: &str, kind: Kind, ok: bool) -> bool {
        let key = (name.to_string(), id.to_string(), kind);
        self.results.insert(key, ok) != Some(ok)
    }

    /// The grace period of a container killed because its liveness or
    /// startup probe failed: that probe's terminationGracePeriodSeconds,
    /// when it has one (upstream `setTerminationGracePeriod`).
    pub fn kill_grace(&self, c: &Container, id: &str) -> Option<i64> {
        [Kind::Liveness, Kind::Startup]
            .into_iter()
            .filter(|kind| self.get(&c.name, id, *kind) == Some(false))
            .find_map(|kind| kind.of(c)?.termination_grace_period_seconds)
    }

    pub fn forget_except(&mut self, live_ids: &[String]) {
        self.results.retain(|(_, id, _), _| live_ids.contains(id));
    }
}

/// Where a probe connects: the pod's IP.
pub struct Target {
    pub pod_ip: Option<String>,
    pub container_id: String,
    pub container: Container,
}

fn port_number(port: &IntOrString, c: &Container) -> Option<u16> {
    match port {
        IntOrString::Int(p) => u16::try_from(*p).ok(),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .or_else(|| name.parse().ok()),
    }
}

/// Runs one probe once.
pub async fn run_once(
    probe: &Probe,
    target: &Target,
    runtime: &Arc<dyn RuntimeService>,
) -> Outcome {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    if let Some(exec) = &probe.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        return match runtime.exec_sync(&target.container_id, &cmd, timeout).await {
            Ok(r) => {
                let mut out = String::from_utf8_lossy(&r.stdout).into_owned();
                out.push_str(&String::from_utf8_lossy(&r.stderr));
                if r.exit_code == 0 {
                    Outcome::Success(out)
                } else {
                    Outcome::Failure(out)
                }
            }
            Err(e) => Outcome::Failure(e.to_string()),
        };
    }
    let pod_ip = target.pod_ip.as_deref().unwrap_or("127.0.0.1");
    let host = |h: Option<&String>| {
        h.cloned()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| pod_ip.to_string())
    };
    if let Some(action) = &probe.http_get {
        return match http::Request::for_action(action, &target.container, pod_ip, "probe") {
            Ok(req) => http::probe(&req, timeout).await,
            Err(e) => Outcome::Failure(e),
        };
    }
    if let Some(tcp) = &probe.tcp_socket {
        let host = host(tcp.host.as_ref());
        let port = port_number(&tcp.port, &target.container).unwrap_or(0);
        return match tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        {
            Ok(Ok(_)) => Outcome::Success(String::new()),
            Ok(Err(e)) => Outcome::Failure(format!("dial tcp {host}:{port}: {}", dial_error(&e))),
            Err(_) => Outcome::Failure(format!("dial tcp {host}:{port}: i/o timeout")),
        };
    }
    if let Some(g) = &probe.grpc {
        let Ok(port) = u16::try_from(g.port) else {
            return Outcome::Failure(format!("invalid port number: {}", g.port));
        };
        let service = g.service.as_deref().unwrap_or_default();
        return grpc::probe(pod_ip, port, service, timeout).await;
    }
    Outcome::Failure("missing probe handler".into())
}

/// An IO error as Go's net package words it (`connect: connection refused`).
fn dial_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    let lower = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("connect: {lower}")
}

/// Runs the probe `kind` of a running container until aborted, writing
/// results into `results` and waking the pod's worker on each change.
pub async fn run(
    kind: Kind,
    target: Target,
    started_at: chrono::DateTime<chrono::Utc>,
    runtime: Arc<dyn RuntimeService>,
    results: Arc<Mutex<Results>>,
    wake: Arc<Notify>,
) {
    let Some(probe) = kind.of(&target.container).cloned() else {
        return;
    };
    let name = target.container.name.clone();
    let id = target.container_id.clone();
    let period = Duration::from_secs(probe.period_seconds.unwrap_or(10).max(1) as u64);
    let success_threshold = probe.success_threshold.unwrap_or(1).max(1);
    let failure_threshold = probe.failure_threshold.unwrap_or(3).max(1);
    let initial = chrono::Duration::seconds(probe.initial_delay_seconds.unwrap_or(0).into());
    let delay = (started_at + initial - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(delay).await;
    let (mut successes, mut failures) = (0, 0);
    loop {
        // Liveness and readiness wait for the startup probe.
        let gated = kind != Kind::Startup
            && target.container.startup_probe.is_some()
            && results.lock().unwrap().get(&name, &id, Kind::Startup) != Some(true);
        if !gated {
            let outcome = run_once(&probe, &target, &runtime).await;
            let mut r = results.lock().unwrap();
            let warning = |message: String| Event {
                container: name.clone(),
                reason: "ProbeWarning",
                message: format!("{} probe warning: {message}", kind.word()),
            };
            let changed = match outcome {
                Outcome::Success(_) | Outcome::Warning(_) => {
                    if let Outcome::Warning(message) = outcome {
                        r.events.push(warning(message));
                    }
                    failures = 0;
                    successes += 1;
                    successes >= success_threshold && r.set(&name, &id, kind, true)
                }
                Outcome::Failure(message) => {
                    successes = 0;
                    failures += 1;
                    r.events.push(Event {
                        container: name.clone(),
                        reason: "Unhealthy",
                        message: format!("{} probe failed: {}", kind.word(), message.trim_end()),
                    });
                    let mut changed =
                        failures >= failure_threshold && r.set(&name, &id, kind, false);
                    if kind == Kind::Readiness && r.get(&name, &id, kind).is_none() {
                        changed |= r.set(&name, &id, kind, false);
                    }
                    changed
                }
            };
            let has_events = !r.events.is_empty();
            drop(r);
            if changed || has_events {
                wake.notify_one();
            }
            // A container that failed liveness or finished starting is
            // not probed for that again (the worker restarts it).
            let r = results.lock().unwrap();
            if (kind == Kind::Liveness && r.get(&name, &id, kind) == Some(false))
                || (kind == Kind::Startup && r.get(&name, &id, kind) == Some(true))
            {
                return;
            }
        }
        tokio::time::sleep(period).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_probe_with_its_own_grace_period_sets_the_kill_grace() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "app",
            "livenessProbe": {"exec": {"command": ["true"]}, "terminationGracePeriodSeconds": 3},
            "startupProbe": {"exec": {"command": ["true"]}}
        }))
        .unwrap();
        let mut r = Results::default();
        assert_eq!(r.kill_grace(&c, "id"), None);
        r.set("app", "id", Kind::Startup, false);
        assert_eq!(r.kill_grace(&c, "id"), None);
        r.set("app", "id", Kind::Liveness, false);
        assert_eq!(r.kill_grace(&c, "id"), Some(3));
        assert_eq!(r.kill_grace(&c, "other"), None);
    }
}
