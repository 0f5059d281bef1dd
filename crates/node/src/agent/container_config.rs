//! What a container is made of, computed from the pod spec and the image
//! without IO (upstream `kuberuntime_container.go` generateContainerConfig
//! and `kuberuntime_container_linux.go`): argv, environment, resources as
//! cgroup values, the pod's QoS cgroup, the security context and the
//! runAsNonRoot check, and the labels that find a pod's sandboxes and
//! containers again after a restart.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements};
use runtime::{Capability, LinuxContainerResources, LinuxContainerSecurityContext};

pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";

/// The parts of an image's config a container needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    /// `USER` of the image: `uid`, `uid:gid`, `name` or `name:group`.
    pub user: Option<String>,
}

pub const MIN_SHARES: u64 = 2;
pub const SHARES_PER_CPU: u64 = 1024;
pub const QUOTA_PERIOD: u64 = 100_000;
pub const MIN_QUOTA_PERIOD: i64 = 1000;

/// Upstream `MilliCPUToShares`.
pub fn milli_cpu_to_shares(milli: i64) -> u64 {
    if milli <= 0 {
        return MIN_SHARES;
    }
    ((milli as u64) * SHARES_PER_CPU / 1000).max(MIN_SHARES)
}

/// Upstream `milliCPUToQuota`: 0 (no quota) without a limit.
pub fn milli_cpu_to_quota(milli: i64, period: u64) -> i64 {
    if milli <= 0 {
        return 0;
    }
    (milli * period as i64 / 1000).max(MIN_QUOTA_PERIOD)
}

fn quantity(
    r: Option<&ResourceRequirements>,
    which: &str,
    name: &str,
) -> Option<api::quantity::Quantity> {
    let r = r?;
    let map = if which == "limits" {
        r.limits.as_ref()
    } else {
        r.requests.as_ref()
    };
    map?.get(name)
        .and_then(|q| api::quantity::Quantity::parse(&q.0).ok())
}

/// The pod's QoS class as the API server recorded it (or computed).
pub fn qos_class(pod: &Pod) -> String {
    if let Some(q) = pod.status.as_ref().and_then(|s| s.qos_class.clone()) {
        return q;
    }
    let spec = pod.spec.as_ref();
    let containers = spec.into_iter().flat_map(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
    });
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let r = c.resources.as_ref();
        for name in ["cpu", "memory"] {
            let limit = quantity(r, "limits", name);
            let request = quantity(r, "requests", name).or_else(|| limit.clone());
            if limit.is_some() || request.is_some() {
                any = true;
            }
            match (limit, request) {
                (Some(l), Some(q)) if l == q => {}
                _ => guaranteed = false,
            }
        }
    }
    if !any {
        "BestEffort".into()
    } else if guaranteed {
        "Guaranteed".into()
    } else {
        "Burstable".into()
    }
}

/// The pod's cgroup relative to the runtime's `kubepods` root (upstream's
/// cgroupfs names): `pod<uid>`, `burstable/pod<uid>`, `besteffort/pod<uid>`.
pub fn pod_cgroup_parent(pod: &Pod) -> String {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    match qos_class(pod).as_str() {
        "Guaranteed" => format!("pod{uid}"),
        "Burstable" => format!("burstable/pod{uid}"),
        _ => format!("besteffort/pod{uid}"),
    }
}

/// Resources of one container as cgroup values (upstream
/// `generateLinuxContainerResources` + `GetContainerOOMScoreAdjust`).
pub fn container_resources(
    pod: &Pod,
    c: &Container,
    memory_capacity: i64,
) -> LinuxContainerResources {
    let r = c.resources.as_ref();
    let cpu_limit = quantity(r, "limits", "cpu")
        .map(|q| q.milli_value())
        .unwrap_or(0);
    let cpu_request = quantity(r, "requests", "cpu")
        .map(|q| q.milli_value())
        .unwrap_or(0);
    let memory_limit = quantity(r, "limits", "memory")
        .map(|q| q.value())
        .unwrap_or(0);
    let memory_request = quantity(r, "requests", "memory")
        .map(|q| q.value())
        .unwrap_or(memory_limit);
    let shares = if cpu_request == 0 && cpu_limit != 0 {
        milli_cpu_to_shares(cpu_limit)
    } else {
        milli_cpu_to_shares(cpu_request)
    };
    let quota = milli_cpu_to_quota(cpu_limit, QUOTA_PERIOD);
    LinuxContainerResources {
        cpu_period: (quota > 0).then_some(QUOTA_PERIOD),
        cpu_quota: (quota > 0).then_some(quota),
        cpu_shares: Some(shares),
        memory_limit_in_bytes: (memory_limit > 0).then_some(memory_limit),
        oom_score_adj: Some(oom_score_adj(
            &qos_class(pod),
            memory_request,
            memory_capacity,
        )),
        pids_limit: None,
    }
}

/// The pod cgroup's values (upstream `ResourceConfigForPod`): cpu shares
/// from the pod's cpu requests (the minimum for a BestEffort pod); a cpu
/// quota and a memory limit only when every container declares that limit.
/// The pod's requests and limits are the larger of its app containers' sum
/// and its largest init container, plus the pod overhead.
pub fn pod_resources(pod: &Pod) -> LinuxContainerResources {
    let spec = pod.spec.as_ref();
    let apps: Vec<&Container> = spec
        .map(|s| s.containers.iter().collect())
        .unwrap_or_default();
    let inits: Vec<&Container> = spec
        .and_then(|s| s.init_containers.as_ref())
        .map(|i| i.iter().collect())
        .unwrap_or_default();
    let overhead = |name: &str| -> i64 {
        spec.and_then(|s| s.overhead.as_ref())
            .and_then(|o| o.get(name))
            .and_then(|q| api::quantity::Quantity::parse(&q.0).ok())
            .map(|q| {
                if name == "cpu" {
                    q.milli_value()
                } else {
                    q.value()
                }
            })
            .unwrap_or(0)
    };
    // (value, whether every container declares it) of `which` `name`.
    let total = |which: &str, name: &str| -> (i64, bool) {
        let value = |c: &Container| {
            let r = c.resources.as_ref();
            let q = quantity(r, which, name).or_else(|| {
                (which == "requests")
                    .then(|| quantity(r, "limits", name))
                    .flatten()
            });
            q.map(|q| {
                if name == "cpu" {
                    q.milli_value()
                } else {
                    q.value()
                }
            })
        };
        let declared = apps.iter().chain(&inits).all(|c| value(c).is_some());
        let sum: i64 = apps.iter().filter_map(|c| value(c)).sum();
        let init = inits.iter().filter_map(|c| value(c)).max().unwrap_or(0);
        (sum.max(init) + overhead(name), declared)
    };
    let (cpu_requests, _) = total("requests", "cpu");
    let (cpu_limits, cpu_declared) = total("limits", "cpu");
    let (memory_limits, memory_declared) = total("limits", "memory");
    let best_effort = qos_class(pod) == "BestEffort";
    let shares = if best_effort {
        MIN_SHARES
    } else {
        milli_cpu_to_shares(cpu_requests)
    };
    let quota = if cpu_declared && !best_effort {
        milli_cpu_to_quota(cpu_limits, QUOTA_PERIOD)
    } else {
        0
    };
    LinuxContainerResources {
        cpu_period: (quota > 0).then_some(QUOTA_PERIOD),
        cpu_quota: (quota > 0).then_some(quota),
        cpu_shares: Some(shares),
        memory_limit_in_bytes: (memory_declared && !best_effort && memory_limits > 0)
            .then_some(memory_limits),
        oom_score_adj: None,
        pids_limit: None,
    }
}

/// Upstream `GetContainerOOMScoreAdjust`.
pub fn oom_score_adj(qos: &str, memory_request: i64, memory_capacity: i64) -> i64 {
    match qos {
        "Guaranteed" => -997,
        "BestEffort" => 1000,
        _ => {
            if memory_capacity <= 0 {
                return 999;
            }
            let adj = 1000 - (1000 * memory_request) / memory_capacity;
            if adj < 1000 - 997 {
                1000 - 997
            } else if adj == 1000 {
                999
            } else {
                adj
            }
        }
    }
}

/// The container's argv: command (else the image's entrypoint) followed
/// by args (else, when the command is not set either, the image's cmd),
/// with `$(VAR)` references expanded (upstream `ExpandContainerCommandAndArgs`).
pub fn argv(c: &Container, image: &ImageConfig, env: &[(String, String)]) -> Vec<String> {
    let env: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let command = c.command.clone().filter(|v| !v.is_empty());
    let args = c.args.clone().filter(|v| !v.is_empty());
    let mut out: Vec<String> = Vec::new();
    match (&command, &args) {
        (Some(cmd), Some(args)) => {
            out.extend(cmd.iter().map(|s| expand(s, &env)));
            out.extend(args.iter().map(|s| expand(s, &env)));
        }
        (Some(cmd), None) => out.extend(cmd.iter().map(|s| expand(s, &env))),
        (None, Some(args)) => {
            out.extend(image.entrypoint.iter().cloned());
            out.extend(args.iter().map(|s| expand(s, &env)));
        }
        (None, None) => {
            out.extend(image.entrypoint.iter().cloned());
            out.extend(image.cmd.iter().cloned());
        }
    }
    out
}

/// Kubernetes' `$(VAR)` expansion: defined variables are replaced, `$$`
/// escapes a `$`, anything else is kept as written.
pub fn expand(s: &str, env: &HashMap<&str, &str>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match env.get(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The image's environment overlaid with the container's (the container
/// wins for a name both set), in the image's order then the container's.
pub fn merge_env(image: &ImageConfig, container: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = image
        .env
        .iter()
        .filter_map(|e| {
            e.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    for (k, v) in container {
        match out.iter_mut().find(|(name, _)| *name == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

/// The effective security context of a container (container settings
/// over the pod's).
pub fn security_context(pod: &Pod, c: &Container) -> LinuxContainerSecurityContext {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let csc = c.security_context.as_ref();
    let run_as_user = csc
        .and_then(|s| s.run_as_user)
        .or_else(|| psc.and_then(|s| s.run_as_user))
        .map(|u| u as u32);
    let run_as_group = csc
        .and_then(|s| s.run_as_group)
        .or_else(|| psc.and_then(|s| s.run_as_group))
        .map(|g| g as u32);
    let mut supplemental: Vec<u32> = psc
        .and_then(|s| s.supplemental_groups.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|g| g as u32)
        .collect();
    if let Some(fs_group) = psc.and_then(|s| s.fs_group) {
        supplemental.push(fs_group as u32);
    }
    let privileged = csc.and_then(|s| s.privileged).unwrap_or(false);
    LinuxContainerSecurityContext {
        capabilities: csc
            .and_then(|s| s.capabilities.as_ref())
            .map(|caps| Capability {
                add: caps.add.clone().unwrap_or_default(),
                drop: caps.drop.clone().unwrap_or_default(),
            }),
        privileged,
        run_as_user,
        run_as_group,
        run_as_username: None,
        readonly_rootfs: csc
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false),
        supplemental_groups: supplemental,
        no_new_privs: !privileged && csc.and_then(|s| s.allow_privilege_escalation) == Some(false),
    }
}

fn run_as_non_root(pod: &Pod, c: &Container) -> bool {
    c.security_context
        .as_ref()
        .and_then(|s| s.run_as_non_root)
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.security_context.as_ref())
                .and_then(|s| s.run_as_non_root)
        })
        .unwrap_or(false)
}

/// `Pod` as the kubelet formats it in messages: `name_namespace(uid)`.
pub fn format_pod(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    )
}

/// Upstream `verifyRunAsNonRoot`: with runAsNonRoot, the user the
/// container runs as must be known not to be root.
pub fn verify_run_as_non_root(
    pod: &Pod,
    c: &Container,
    sc: &LinuxContainerSecurityContext,
    image: &ImageConfig,
) -> Result<(), String> {
    if !run_as_non_root(pod, c) {
        return Ok(());
    }
    let who = format!("(pod: {:?}, container: {})", format_pod(pod), c.name);
    if let Some(uid) = sc.run_as_user {
        if uid == 0 {
            return Err(format!(
                "container's runAsUser breaks non-root policy {who}"
            ));
        }
        return Ok(());
    }
    let user = image
        .user
        .as_deref()
        .map(|u| u.split(':').next().unwrap_or(""))
        .unwrap_or("");
    if user.is_empty() {
        return Err(format!(
            "container has runAsNonRoot and image will run as root {who}"
        ));
    }
    match user.parse::<u32>() {
        Ok(0) => Err(format!("container has runAsNonRoot and image will run as root {who}")),
        Ok(_) => Ok(()),
        Err(_) => Err(format!(
            "container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root {who}"
        )),
    }
}

/// Labels of a sandbox: who its pod is.
pub fn sandbox_labels(pod: &Pod) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = pod.metadata.labels.clone().unwrap_or_default();
    labels.insert(
        LABEL_POD_NAME.into(),
        pod.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(
        LABEL_POD_NAMESPACE.into(),
        pod.metadata.namespace.clone().unwrap_or_default(),
    );
    labels.insert(
        LABEL_POD_UID.into(),
        pod.metadata.uid.clone().unwrap_or_default(),
    );
    labels
}

/// An ephemeral container as the container it runs as: the fields the two
/// share (upstream's `EphemeralContainerCommon`).
pub fn ephemeral_container(ec: &k8s_openapi::api::core::v1::EphemeralContainer) -> Container {
    Container {
        name: ec.name.clone(),
        image: ec.image.clone(),
        image_pull_policy: ec.image_pull_policy.clone(),
        command: ec.command.clone(),
        args: ec.args.clone(),
        working_dir: ec.working_dir.clone(),
        env: ec.env.clone(),
        env_from: ec.env_from.clone(),
        volume_mounts: ec.volume_mounts.clone(),
        volume_devices: ec.volume_devices.clone(),
        security_context: ec.security_context.clone(),
        stdin: ec.stdin,
        stdin_once: ec.stdin_once,
        tty: ec.tty,
        termination_message_path: ec.termination_message_path.clone(),
        termination_message_policy: ec.termination_message_policy.clone(),
        ..Default::default()
    }
}

/// The pod's ephemeral containers as containers.
pub fn ephemeral_containers(pod: &Pod) -> Vec<Container> {
    let spec = pod.spec.as_ref();
    let list = spec.and_then(|s| s.ephemeral_containers.as_deref());
    list.unwrap_or_default()
        .iter()
        .map(ephemeral_container)
        .collect()
}

/// The container whose processes the ephemeral container `name` sees
/// (its `targetContainerName`).
pub fn ephemeral_target<'a>(pod: &'a Pod, name: &str) -> Option<&'a str> {
    let spec = pod.spec.as_ref()?;
    let ec = spec
        .ephemeral_containers
        .as_ref()?
        .iter()
        .find(|e| e.name == name)?;
    ec.target_container_name
        .as_deref()
        .filter(|t| !t.is_empty())
}

pub fn container_labels(pod: &Pod, c: &Container) -> BTreeMap<String, String> {
    [
        (
            LABEL_POD_NAME,
            pod.metadata.name.clone().unwrap_or_default(),
        ),
        (
            LABEL_POD_NAMESPACE,
            pod.metadata.namespace.clone().unwrap_or_default(),
        ),
        (LABEL_POD_UID, pod.metadata.uid.clone().unwrap_or_default()),
        (LABEL_CONTAINER_NAME, c.name.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSecurityContext, PodSpec, SecurityContext};

    fn container(command: Option<&[&str]>, args: Option<&[&str]>) -> Container {
        Container {
            name: "c".into(),
            command: command.map(|v| v.iter().map(|s| s.to_string()).collect()),
            args: args.map(|v| v.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn argv_merges_command_and_args_with_the_image_as_upstream() {
        let image = ImageConfig {
            entrypoint: vec!["/entry".into()],
            cmd: vec!["default".into()],
            ..Default::default()
        };
        let env = vec![("WHO".to_string(), "you".to_string())];
        assert_eq!(
            argv(&container(None, None), &image, &env),
            ["/entry", "default"]
        );
        assert_eq!(
            argv(&container(None, Some(&["x"])), &image, &env),
            ["/entry", "x"]
        );
        assert_eq!(argv(&container(Some(&["sh"]), None), &image, &env), ["sh"]);
        assert_eq!(
            argv(
                &container(Some(&["echo"]), Some(&["$(WHO)", "$$(WHO)", "$(NOPE)"])),
                &image,
                &env
            ),
            ["echo", "you", "$(WHO)", "$(NOPE)"]
        );
    }

    #[test]
    fn cpu_and_memory_become_shares_quota_and_limit() {
        assert_eq!(milli_cpu_to_shares(0), 2);
        assert_eq!(milli_cpu_to_shares(1), 2);
        assert_eq!(milli_cpu_to_shares(250), 256);
        assert_eq!(milli_cpu_to_quota(500, 100_000), 50_000);
        assert_eq!(milli_cpu_to_quota(1, 100_000), 1000);
        assert_eq!(oom_score_adj("Burstable", 0, 1000), 999);
        assert_eq!(oom_score_adj("Burstable", 999, 1000), 3);
    }

    fn pod_of(spec: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "uid": "u1"},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn the_pod_cgroup_sums_requests_and_limits_declared_by_every_container() {
        let burstable = pod_of(serde_json::json!({
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "32Mi"},
                                            "limits": {"cpu": "500m", "memory": "64Mi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "100m"},
                                            "limits": {"cpu": "200m", "memory": "16Mi"}}},
            ],
            "initContainers": [
                {"name": "i", "resources": {"limits": {"cpu": "1", "memory": "8Mi"}}},
            ],
            "overhead": {"cpu": "50m", "memory": "1Mi"},
        }));
        let r = pod_resources(&burstable);
        // Requests: max(350m, the init's 1 CPU) + 50m overhead.
        assert_eq!(r.cpu_shares, Some(milli_cpu_to_shares(1050)));
        assert_eq!(r.cpu_quota, Some(105_000));
        assert_eq!(r.cpu_period, Some(QUOTA_PERIOD));
        assert_eq!(r.memory_limit_in_bytes, Some(81 << 20));

        // One container without limits: shares only.
        let partial = pod_of(serde_json::json!({
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "500m"}}},
                {"name": "b"},
            ],
        }));
        let r = pod_resources(&partial);
        assert_eq!(r.cpu_shares, Some(256));
        assert_eq!((r.cpu_quota, r.memory_limit_in_bytes), (None, None));

        let best_effort = pod_of(serde_json::json!({"containers": [{"name": "a"}]}));
        let r = pod_resources(&best_effort);
        assert_eq!(r.cpu_shares, Some(MIN_SHARES));
        assert_eq!((r.cpu_quota, r.memory_limit_in_bytes), (None, None));
    }

    #[test]
    fn run_as_non_root_refuses_an_image_that_runs_as_root() {
        let pod = Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("p".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                security_context: Some(PodSecurityContext {
                    run_as_non_root: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let c = container(None, None);
        let sc = security_context(&pod, &c);
        let err = verify_run_as_non_root(&pod, &c, &sc, &ImageConfig::default()).unwrap_err();
        assert_eq!(
            err,
            "container has runAsNonRoot and image will run as root (pod: \"p_default(u1)\", container: c)"
        );
        let image = ImageConfig {
            user: Some("1000".into()),
            ..Default::default()
        };
        assert!(verify_run_as_non_root(&pod, &c, &sc, &image).is_ok());
        let mut c2 = c.clone();
        c2.security_context = Some(SecurityContext {
            run_as_user: Some(0),
            ..Default::default()
        });
        let sc2 = security_context(&pod, &c2);
        assert!(verify_run_as_non_root(&pod, &c2, &sc2, &image)
            .unwrap_err()
            .starts_with("container's runAsUser breaks non-root policy"));
    }
}
