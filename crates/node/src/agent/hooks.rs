//! Container lifecycle hooks (upstream `pkg/kubelet/lifecycle/handlers.go`
//! and the hook steps of `kuberuntime_container.go`): postStart and
//! preStop handlers of kind exec (in the container, no timeout), httpGet
//! (to the pod IP, [`super::probes::http`]; only a failed request fails
//! the hook, any HTTP status is fine) and sleep.
//!
//! postStart runs right after the container started; when it fails the
//! worker records `FailedPostStartHook`, kills the container and reports
//! it waiting with `PostStartHookError` and the message built here.
//! preStop runs before SIGTERM whenever the agent kills a running
//! container, within the grace period; the seconds it took are taken off
//! the grace period, leaving at least [`MINIMUM_GRACE_SECONDS`].

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};
use runtime::RuntimeService;

use super::container_config::format_pod;
use super::probes::http;
use crate::env::go_quote;

/// Upstream `minimumGracePeriodInSeconds`: SIGTERM always gets this long
/// before SIGKILL.
pub const MINIMUM_GRACE_SECONDS: i64 = 2;

/// The container a hook runs for.
pub struct Target<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub container_id: &'a str,
    /// The pod's IP (the node's for hostNetwork pods): where an httpGet
    /// without a host goes.
    pub pod_ip: Option<&'a str>,
}

/// What running a handler came to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ran {
    /// The failure, worded as upstream's handler runner words it.
    pub error: Option<String>,
    /// An HTTPS hook answered in plain HTTP and retried so: the message of
    /// the pod's `LifecycleHTTPFallback` event.
    pub http_fallback: Option<String>,
}

/// The spec of the pod's container (or init container) `name`.
pub fn container_spec<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

/// The grace period SIGTERM gets after a preStop hook that took `took`
/// seconds of `grace` (upstream `killContainer`).
pub fn remaining_grace(grace: i64, took: i64) -> i64 {
    (grace - took).max(MINIMUM_GRACE_SECONDS)
}

/// Upstream `handlerRunner.Run`.
pub async fn run(
    handler: &LifecycleHandler,
    target: &Target<'_>,
    runtime: &Arc<dyn RuntimeService>,
) -> Ran {
    let container = go_quote(&target.container.name);
    let pod = go_quote(&format_pod(target.pod));
    if let Some(exec) = &handler.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        let failed = |error: String, output: &str| {
            Ran {
            error: Some(format!(
                "Exec lifecycle hook ([{}]) for Container {container} in Pod {pod} failed - error: {error}, message: {}",
                cmd.join(" "),
                go_quote(output)
            )),
            http_fallback: None,
        }
        };
        return match runtime
            .exec_sync(target.container_id, &cmd, Duration::ZERO)
            .await
        {
            Ok(r) if r.exit_code == 0 => Ran::default(),
            Ok(r) => {
                let stderr = String::from_utf8_lossy(&r.stderr);
                let mut output = String::from_utf8_lossy(&r.stdout).into_owned();
                output.push_str(&stderr);
                let error = format!(
                    "command '{}' exited with {}: {stderr}",
                    cmd.join(" "),
                    r.exit_code
                );
                failed(error, &output)
            }
            Err(e) => failed(e.to_string(), ""),
        };
    }
    if let Some(action) = &handler.http_get {
        let path = action.path.clone().unwrap_or_default();
        let failed = |error: String| {
            Some(format!(
                "HTTP lifecycle hook ({path}) for Container {container} in Pod {pod} failed - error: {error}"
            ))
        };
        let host = action.host.as_deref().filter(|h| !h.is_empty());
        let Some(pod_ip) = host.or(target.pod_ip) else {
            return Ran {
                error: failed("failed to find networking container".into()),
                http_fallback: None,
            };
        };
        let req = match http::Request::for_action(action, target.container, pod_ip, "lifecycle") {
            Ok(req) => req,
            Err(e) => {
                return Ran {
                    error: failed(e),
                    http_fallback: None,
                }
            }
        };
        let Err(e) = http::get(&req, None).await else {
            return Ran::default();
        };
        if req.url.https && e.ends_with("server gave HTTP response to HTTPS client") {
            let mut plain = req.clone();
            plain.url.https = false;
            plain
                .headers
                .retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
            if http::get(&plain, None).await.is_ok() {
                return Ran {
                    error: None,
                    http_fallback: Some(format!(
                        "request to HTTPS lifecycle hook {} got HTTP response, retry with HTTP succeeded",
                        req.url.host_port()
                    )),
                };
            }
        }
        return Ran {
            error: failed(e),
            http_fallback: None,
        };
    }
    if let Some(sleep) = &handler.sleep {
        tokio::time::sleep(Duration::from_secs(sleep.seconds.max(0) as u64)).await;
        return Ran::default();
    }
    Ran {
        error: Some("Cannot run handler: invalid handler: no exec, httpGet or sleep".into()),
        http_fallback: None,
    }
}

/// Upstream `executePreStopHook`: the preStop handler, given at most
/// `grace` seconds. Returns the whole seconds it took, and what it came
/// to unless the grace period ran out first.
pub async fn pre_stop(
    handler: &LifecycleHandler,
    target: &Target<'_>,
    runtime: &Arc<dyn RuntimeService>,
    grace: i64,
) -> (i64, Option<Ran>) {
    let started = std::time::Instant::now();
    let limit = Duration::from_secs(grace.max(0) as u64);
    let ran = tokio::time::timeout(limit, run(handler, target, runtime))
        .await
        .ok();
    (started.elapsed().as_secs() as i64, ran)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigterm_keeps_at_least_two_seconds_after_a_long_pre_stop_hook() {
        assert_eq!(remaining_grace(30, 5), 25);
        assert_eq!(remaining_grace(10, 9), MINIMUM_GRACE_SECONDS);
        assert_eq!(remaining_grace(1, 0), MINIMUM_GRACE_SECONDS);
    }

    #[test]
    fn init_containers_have_specs_too() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {
                "initContainers": [{"name": "init"}],
                "containers": [{"name": "app"}]
            }
        }))
        .unwrap();
        assert_eq!(container_spec(&pod, "init").unwrap().name, "init");
        assert_eq!(container_spec(&pod, "app").unwrap().name, "app");
        assert!(container_spec(&pod, "other").is_none());
    }
}
