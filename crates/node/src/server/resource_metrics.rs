//! `GET /metrics/resource`: the kubelet's resource metrics endpoint
//! (upstream `pkg/kubelet/metrics/collectors/resource_metrics.go`), the
//! Prometheus text that metrics-server (and krate's own collector in the
//! API server) scrapes for `kubectl top` and the HorizontalPodAutoscaler.
//!
//! The node's figures come from the root cgroup (as cAdvisor's `/`
//! container), falling back to `/proc/stat` and `/proc/meminfo`; a
//! container's from the runtime's `container_stats`; a pod's from its pod
//! cgroup (`pod_sandbox_stats`: the pause process counts, as in cAdvisor's
//! numbers upstream), or, for a pod without one, the sums of its running
//! containers'. Families, help texts and stability markers
//! are upstream v1.32's (`scrape_error`, deprecated since 1.29, is hidden
//! there and so absent here); samples carry their collection time in
//! milliseconds, except `container_start_time_seconds` and
//! `resource_scrape_error`, which upstream sends without one.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use http::{header, HeaderValue, Response, StatusCode};
use runtime::cri::{ContainerState, PodSandboxState, RuntimeService};

use super::resolve::{CONTAINER_NAME_LABEL, POD_NAMESPACE_LABEL, POD_NAME_LABEL};
use super::{full, Body, KubeletServer};

/// The Prometheus text format version upstream's endpoint answers in.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// CPU time (core-nanoseconds) and working set (bytes) measured at `at`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    pub at: DateTime<Utc>,
    pub cpu_core_nanoseconds: Option<u64>,
    pub memory_working_set_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ContainerMetrics {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub start_time: DateTime<Utc>,
    pub usage: Usage,
}

/// A pod's own cgroup.
#[derive(Clone, Debug, PartialEq)]
pub struct PodMetrics {
    pub namespace: String,
    pub pod: String,
    pub usage: Usage,
}

/// One collection: the node, the pod cgroups, and the running containers
/// of the pods.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResourceMetrics {
    pub node: Usage,
    pub pods: Vec<PodMetrics>,
    pub containers: Vec<ContainerMetrics>,
    /// Whether reading the containers failed (`resource_scrape_error 1`).
    pub error: bool,
}

/// A metric family in the exposition: name, help, type.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
}

const fn family(name: &'static str, help: &'static str, kind: &'static str) -> Family {
    Family { name, help, kind }
}

const CONTAINER_CPU: Family = family(
    "container_cpu_usage_seconds_total",
    "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
    "counter",
);
const CONTAINER_MEMORY: Family = family(
    "container_memory_working_set_bytes",
    "[STABLE] Current working set of the container in bytes",
    "gauge",
);
const CONTAINER_START: Family = family(
    "container_start_time_seconds",
    "[STABLE] Start time of the container since unix epoch in seconds",
    "gauge",
);
const NODE_CPU: Family = family(
    "node_cpu_usage_seconds_total",
    "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
    "counter",
);
const NODE_MEMORY: Family = family(
    "node_memory_working_set_bytes",
    "[STABLE] Current working set of the node in bytes",
    "gauge",
);
const POD_CPU: Family = family(
    "pod_cpu_usage_seconds_total",
    "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
    "counter",
);
const POD_MEMORY: Family = family(
    "pod_memory_working_set_bytes",
    "[STABLE] Current working set of the pod in bytes",
    "gauge",
);
const SCRAPE_ERROR: Family = family(
    "resource_scrape_error",
    "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
    "gauge",
);

/// One sample line: sorted label pairs, value, optional timestamp (ms).
type Sample = (Vec<(&'static str, String)>, f64, Option<i64>);

fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// The exposition of `m`, as client_golang's text encoder writes it:
/// families in name order (empty ones left out), samples in label order,
/// values as Go's `%v` of a float64.
pub fn render(m: &ResourceMetrics) -> String {
    let ms = |t: &DateTime<Utc>| Some(t.timestamp_millis());
    let mut families: Vec<(&Family, Vec<Sample>)> = Vec::new();
    let container_labels = |c: &ContainerMetrics| {
        vec![
            ("container", c.container.clone()),
            ("namespace", c.namespace.clone()),
            ("pod", c.pod.clone()),
        ]
    };
    let mut cpu = Vec::new();
    let mut memory = Vec::new();
    let mut start = Vec::new();
    // Pods: (namespace, pod) → summed usage, at the latest container time.
    let mut pods: BTreeMap<(String, String), Usage> = BTreeMap::new();
    for c in &m.containers {
        if c.start_time.timestamp() > 0 {
            let start_seconds = c.start_time.timestamp_nanos_opt().unwrap_or(0) as f64 / 1e9;
            start.push((container_labels(c), start_seconds, None));
        }
        if let Some(v) = c.usage.cpu_core_nanoseconds {
            cpu.push((container_labels(c), seconds(v), ms(&c.usage.at)));
        }
        if let Some(v) = c.usage.memory_working_set_bytes {
            memory.push((container_labels(c), v as f64, ms(&c.usage.at)));
        }
        let pod = pods
            .entry((c.namespace.clone(), c.pod.clone()))
            .or_insert_with(|| Usage {
                at: c.usage.at,
                ..Usage::default()
            });
        pod.at = pod.at.max(c.usage.at);
        if let Some(v) = c.usage.cpu_core_nanoseconds {
            pod.cpu_core_nanoseconds = Some(pod.cpu_core_nanoseconds.unwrap_or(0) + v);
        }
        if let Some(v) = c.usage.memory_working_set_bytes {
            pod.memory_working_set_bytes = Some(pod.memory_working_set_bytes.unwrap_or(0) + v);
        }
    }
    families.push((&CONTAINER_CPU, cpu));
    families.push((&CONTAINER_MEMORY, memory));
    families.push((&CONTAINER_START, start));
    let node_cpu = m
        .node
        .cpu_core_nanoseconds
        .map(|v| (vec![], seconds(v), ms(&m.node.at)));
    families.push((&NODE_CPU, node_cpu.into_iter().collect()));
    let node_memory = m
        .node
        .memory_working_set_bytes
        .map(|v| (vec![], v as f64, ms(&m.node.at)));
    families.push((&NODE_MEMORY, node_memory.into_iter().collect()));
    // A pod cgroup's figures stand for the pod where the runtime has them.
    for p in &m.pods {
        let pod = pods
            .entry((p.namespace.clone(), p.pod.clone()))
            .or_default();
        pod.at = p.usage.at;
        if p.usage.cpu_core_nanoseconds.is_some() {
            pod.cpu_core_nanoseconds = p.usage.cpu_core_nanoseconds;
        }
        if p.usage.memory_working_set_bytes.is_some() {
            pod.memory_working_set_bytes = p.usage.memory_working_set_bytes;
        }
    }
    let pod_labels =
        |(ns, pod): &(String, String)| vec![("namespace", ns.clone()), ("pod", pod.clone())];
    let pod_cpu = pods
        .iter()
        .filter_map(|(k, u)| Some((pod_labels(k), seconds(u.cpu_core_nanoseconds?), ms(&u.at))))
        .collect();
    let pod_memory = pods
        .iter()
        .filter_map(|(k, u)| Some((pod_labels(k), u.memory_working_set_bytes? as f64, ms(&u.at))))
        .collect();
    families.push((&POD_CPU, pod_cpu));
    families.push((&POD_MEMORY, pod_memory));
    let error = if m.error { 1.0 } else { 0.0 };
    families.push((&SCRAPE_ERROR, vec![(vec![], error, None)]));

    let mut out = String::new();
    for (f, mut samples) in families {
        if samples.is_empty() {
            continue;
        }
        samples.sort_by(|a, b| a.0.cmp(&b.0));
        let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(f.help));
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for (labels, value, ts) in samples {
            out.push_str(f.name);
            if !labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                }
                out.push('}');
            }
            let _ = write!(out, " {}", api::gofmt::float(value));
            if let Some(ts) = ts {
                let _ = write!(out, " {ts}");
            }
            out.push('\n');
        }
    }
    out
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('"', "\\\"")
}

/// The node's CPU time and working set now: the root cgroup's, or the
/// kernel's totals when the root cgroup does not account them (cgroup v2
/// keeps no `memory.current` at the root).
pub fn node_usage() -> Usage {
    let (cgroup_cpu, cgroup_memory) = runtime::cgroups::stats("/");
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    Usage {
        at: Utc::now(),
        cpu_core_nanoseconds: cgroup_cpu.or_else(|| proc_stat_cpu(&read("/proc/stat"))),
        memory_working_set_bytes: cgroup_memory
            .or_else(|| meminfo_working_set(&read("/proc/meminfo"))),
    }
}

/// Busy CPU time of all CPUs from `/proc/stat` (user, nice, system, irq,
/// softirq, steal; in USER_HZ = 100 ticks per second), in nanoseconds.
fn proc_stat_cpu(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let busy = [0usize, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|i| f.get(*i))
        .sum::<u64>();
    Some(busy * 10_000_000)
}

/// Working set from `/proc/meminfo`: memory in use (total − free) less
/// the inactive file cache, as cAdvisor computes it for the root.
fn meminfo_working_set(meminfo: &str) -> Option<u64> {
    let kib = |key: &str| {
        meminfo.lines().find_map(|l| {
            let rest = l.strip_prefix(key)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
    };
    let used = kib("MemTotal")?.saturating_sub(kib("MemFree")?);
    Some(used.saturating_sub(kib("Inactive(file)").unwrap_or(0)) * 1024)
}

/// Reads the node's and every running container's usage.
pub async fn collect(rt: &dyn RuntimeService) -> ResourceMetrics {
    let node = node_usage();
    let mut out = ResourceMetrics {
        node,
        ..ResourceMetrics::default()
    };
    let (sandboxes, containers) = match (rt.list_pod_sandbox().await, rt.list_containers().await) {
        (Ok(s), Ok(c)) => (s, c),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "resource metrics: listing containers failed");
            out.error = true;
            return out;
        }
    };
    for s in sandboxes
        .iter()
        .filter(|s| s.state == PodSandboxState::Ready)
    {
        let stats = match rt.pod_sandbox_stats(&s.id).await {
            Ok(Some(stats)) => stats,
            Ok(None) | Err(runtime::cri::Error::NotFound { .. }) => continue,
            Err(e) => {
                tracing::warn!(sandbox = %s.id, error = %e, "resource metrics: pod sandbox stats failed");
                out.error = true;
                continue;
            }
        };
        let label = |key: &str, or: &String| s.labels.get(key).unwrap_or(or).clone();
        out.pods.push(PodMetrics {
            namespace: label(POD_NAMESPACE_LABEL, &s.metadata.namespace),
            pod: label(POD_NAME_LABEL, &s.metadata.name),
            usage: Usage {
                at: Utc::now(),
                cpu_core_nanoseconds: stats.cpu_usage_core_nano_seconds,
                memory_working_set_bytes: stats.memory_working_set_bytes,
            },
        });
    }
    let pods: HashMap<&str, (&str, &str)> = sandboxes
        .iter()
        .map(|s| {
            let ns = s
                .labels
                .get(POD_NAMESPACE_LABEL)
                .unwrap_or(&s.metadata.namespace);
            let name = s.labels.get(POD_NAME_LABEL).unwrap_or(&s.metadata.name);
            (s.id.as_str(), (ns.as_str(), name.as_str()))
        })
        .collect();
    for c in containers
        .iter()
        .filter(|c| c.state == ContainerState::Running)
    {
        let (ns, pod) = match (
            c.labels.get(POD_NAMESPACE_LABEL),
            c.labels.get(POD_NAME_LABEL),
        ) {
            (Some(ns), Some(pod)) => (ns.as_str(), pod.as_str()),
            _ => match pods.get(c.pod_sandbox_id.as_str()) {
                Some(p) => *p,
                None => continue,
            },
        };
        let stats = match rt.container_stats(&c.id).await {
            Ok(s) => s,
            // Gone between the list and the read.
            Err(runtime::cri::Error::NotFound { .. }) => continue,
            Err(e) => {
                tracing::warn!(container = %c.id, error = %e, "resource metrics: container stats failed");
                out.error = true;
                continue;
            }
        };
        out.containers.push(ContainerMetrics {
            namespace: ns.to_string(),
            pod: pod.to_string(),
            container: c
                .labels
                .get(CONTAINER_NAME_LABEL)
                .unwrap_or(&c.metadata.name)
                .clone(),
            start_time: c.started_at.unwrap_or(c.created_at),
            usage: Usage {
                at: Utc::now(),
                cpu_core_nanoseconds: stats.cpu_usage_core_nano_seconds,
                memory_working_set_bytes: stats.memory_working_set_bytes,
            },
        });
    }
    out
}

pub async fn serve(server: Arc<KubeletServer>) -> Response<Body> {
    let metrics = collect(server.runtime().as_ref()).await;
    let mut resp = Response::new(full(render(&metrics)));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    #[test]
    fn exposition_matches_the_upstream_kubelet_text() {
        let usage = |ms, cpu, mem| Usage {
            at: at(ms),
            cpu_core_nanoseconds: Some(cpu),
            memory_working_set_bytes: Some(mem),
        };
        let m = ResourceMetrics {
            node: usage(1_624_396_278_302, 357_354_910_000, 1_616_084_992),
            pods: vec![],
            containers: vec![
                ContainerMetrics {
                    namespace: "kube-system".into(),
                    pod: "coredns-558bd4d5db-4x6kv".into(),
                    container: "coredns".into(),
                    start_time: at(1_624_396_200_000),
                    usage: usage(1_624_396_278_303, 195_744_000, 12_963_840),
                },
                ContainerMetrics {
                    namespace: "default".into(),
                    pod: "busy".into(),
                    container: "busy".into(),
                    start_time: at(1_624_396_210_500),
                    usage: usage(1_624_396_278_304, 1_000_000_000, 4096),
                },
            ],
            error: false,
        };
        let want = "\
# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container=\"busy\",namespace=\"default\",pod=\"busy\"} 1 1624396278304
container_cpu_usage_seconds_total{container=\"coredns\",namespace=\"kube-system\",pod=\"coredns-558bd4d5db-4x6kv\"} 0.195744 1624396278303
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container=\"busy\",namespace=\"default\",pod=\"busy\"} 4096 1624396278304
container_memory_working_set_bytes{container=\"coredns\",namespace=\"kube-system\",pod=\"coredns-558bd4d5db-4x6kv\"} 1.296384e+07 1624396278303
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container=\"busy\",namespace=\"default\",pod=\"busy\"} 1.6243962105e+09
container_start_time_seconds{container=\"coredns\",namespace=\"kube-system\",pod=\"coredns-558bd4d5db-4x6kv\"} 1.6243962e+09
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 357.35491 1624396278302
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 1.616084992e+09 1624396278302
# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace=\"default\",pod=\"busy\"} 1 1624396278304
pod_cpu_usage_seconds_total{namespace=\"kube-system\",pod=\"coredns-558bd4d5db-4x6kv\"} 0.195744 1624396278303
# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes
# TYPE pod_memory_working_set_bytes gauge
pod_memory_working_set_bytes{namespace=\"default\",pod=\"busy\"} 4096 1624396278304
pod_memory_working_set_bytes{namespace=\"kube-system\",pod=\"coredns-558bd4d5db-4x6kv\"} 1.296384e+07 1624396278303
# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 0
";
        assert_eq!(render(&m), want);
    }

    #[test]
    fn a_pod_sums_its_containers_and_empty_families_are_left_out() {
        let c = |name: &str, cpu, mem| ContainerMetrics {
            namespace: "ns".into(),
            pod: "p".into(),
            container: name.into(),
            start_time: at(1_000),
            usage: Usage {
                at: at(5_000),
                cpu_core_nanoseconds: Some(cpu),
                memory_working_set_bytes: mem,
            },
        };
        let m = ResourceMetrics {
            node: Usage::default(),
            pods: vec![],
            containers: vec![c("a", 500_000_000, Some(1024)), c("b", 250_000_000, None)],
            error: true,
        };
        let text = render(&m);
        assert!(
            text.contains("pod_cpu_usage_seconds_total{namespace=\"ns\",pod=\"p\"} 0.75 5000\n")
        );
        assert!(
            text.contains("pod_memory_working_set_bytes{namespace=\"ns\",pod=\"p\"} 1024 5000\n")
        );
        assert!(!text.contains("node_cpu_usage_seconds_total"), "{text}");
        assert!(text.ends_with("resource_scrape_error 1\n"), "{text}");
    }

    #[test]
    fn a_pods_own_cgroup_stands_for_the_pod_pause_included() {
        let usage = |ms, cpu, mem| Usage {
            at: at(ms),
            cpu_core_nanoseconds: Some(cpu),
            memory_working_set_bytes: Some(mem),
        };
        let m = ResourceMetrics {
            node: Usage::default(),
            pods: vec![PodMetrics {
                namespace: "ns".into(),
                pod: "p".into(),
                usage: usage(6_000, 800_000_000, 1_310_720),
            }],
            containers: vec![ContainerMetrics {
                namespace: "ns".into(),
                pod: "p".into(),
                container: "app".into(),
                start_time: at(1_000),
                usage: usage(5_000, 500_000_000, 1_048_576),
            }],
            error: false,
        };
        let text = render(&m);
        assert!(
            text.contains("pod_cpu_usage_seconds_total{namespace=\"ns\",pod=\"p\"} 0.8 6000\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "pod_memory_working_set_bytes{namespace=\"ns\",pod=\"p\"} 1.31072e+06 6000\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("container_memory_working_set_bytes{container=\"app\",namespace=\"ns\",pod=\"p\"} 1.048576e+06 5000\n"),
            "{text}"
        );
    }

    #[test]
    fn kernel_totals_stand_in_for_a_root_cgroup_without_accounting() {
        let stat = "cpu  100 20 30 4000 50 6 7 8 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        // user + nice + system + irq + softirq + steal = 171 ticks.
        assert_eq!(proc_stat_cpu(stat), Some(1_710_000_000));
        let meminfo =
            "MemTotal:       8000 kB\nMemFree:        3000 kB\nInactive(file):  1000 kB\n";
        assert_eq!(meminfo_working_set(meminfo), Some(4000 * 1024));
    }
}
