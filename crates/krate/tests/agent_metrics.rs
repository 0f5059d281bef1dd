//! Resource metrics on real containers: the kubelet's `/metrics/resource`,
//! the metrics API (`metrics.k8s.io/v1beta1`) the server builds from it,
//! `kubectl top pod` / `kubectl top node`, and a HorizontalPodAutoscaler
//! scaling a busy deployment on CPU (and measuring its memory). The servers
//! scrape every 2 s (hidden `--metric-resolution`) instead of
//! metrics-server's 15 s. Root only; in the nextest group `agent`.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{eventually_blocking, Cluster, BUSYBOX};

const RESOLUTION: &[&str] = &["--metric-resolution", "2s"];

/// The metadata and spec of a pod whose shell busy-loops, requesting
/// 100m CPU; `indent` places it in a manifest.
fn busy_template(name: &str, indent: &str) -> String {
    let template = format!(
        r#"metadata:
  name: {name}
  labels:
    app: {name}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: spin
    image: {BUSYBOX}
    command: ["sh", "-c", "while :; do :; done"]
    resources:
      requests:
        cpu: 100m
        memory: 64Mi
"#
    );
    template.lines().map(|l| format!("{indent}{l}\n")).collect()
}

fn busy_pod(name: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\n{}", busy_template(name, ""))
}

fn wait_running(c: &Cluster, name: &str) {
    eventually_blocking(Duration::from_secs(60), &format!("{name} running"), || {
        let phase = c.ok(&["get", "pod", name, "-o", "jsonpath={.status.phase}"]);
        (phase == "Running").then_some(()).ok_or(phase)
    });
}

/// The CPU time (clock ticks, 100 per second) the pod's busy shell used.
fn shell_ticks(c: &Cluster, pod: &str) -> u64 {
    let stat = c.ok(&["exec", pod, "--", "cat", "/proc/1/stat"]);
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime: fields 14 and 15, counted from the state (field 3).
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// The words of the lines of `out`.
fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn millicores(cell: &str) -> u64 {
    cell.strip_suffix('m')
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("{cell:?} is not millicores"))
}

#[test]
fn kubectl_top_shows_a_busy_pod_near_its_real_use_and_its_node() {
    let c = Cluster::start_with_agent(RESOLUTION);
    c.ok_stdin(&["apply", "-f", "-"], &busy_pod("busy"));
    wait_running(&c, "busy");
    let node = c.ok(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);

    // The kubelet's own endpoint, through the API server's node proxy.
    let raw = c.ok(&[
        "get",
        "--raw",
        &format!("/api/v1/nodes/{node}/proxy/metrics/resource"),
    ]);
    assert!(
        raw.contains("# TYPE container_cpu_usage_seconds_total counter\n")
            && raw.contains("container_cpu_usage_seconds_total{container=\"spin\",namespace=\"default\",pod=\"busy\"} ")
            && raw.contains("pod_memory_working_set_bytes{namespace=\"default\",pod=\"busy\"} ")
            && raw.contains("\nnode_cpu_usage_seconds_total ")
            && raw.contains("\nnode_memory_working_set_bytes ")
            && raw.ends_with("resource_scrape_error 0\n"),
        "{raw}"
    );
    // The pod's figures are its pod cgroup's: the pause process counts.
    let sample = |prefix: &str| -> f64 {
        raw.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in {raw}"))
    };
    let pod_memory = sample("pod_memory_working_set_bytes{namespace=\"default\",pod=\"busy\"} ");
    let container_memory = sample(
        "container_memory_working_set_bytes{container=\"spin\",namespace=\"default\",pod=\"busy\"} ",
    );
    assert!(pod_memory > container_memory, "{raw}");

    // Metrics appear once two scrapes saw the container.
    let top = eventually_blocking(Duration::from_secs(30), "kubectl top pod busy", || {
        let out = c.kubectl(&["top", "pod", "busy"]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
            .ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
    });
    let table = rows(&top);
    assert_eq!(table[0], ["NAME", "CPU(cores)", "MEMORY(bytes)"], "{top}");
    assert_eq!(table[1][0], "busy", "{top}");
    assert!(table[1][2].ends_with("Mi"), "{top}");

    // The PodMetrics object as metrics-server shapes it.
    let metrics: Value = serde_json::from_str(&c.ok(&[
        "get",
        "--raw",
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/busy",
    ]))
    .unwrap();
    assert_eq!(metrics["kind"], "PodMetrics");
    assert_eq!(metrics["metadata"]["labels"]["app"], "busy");
    let window = metrics["window"].as_str().unwrap();
    // One resolution between the two points (timestamps are in ms).
    let seconds: f64 = window.strip_suffix('s').unwrap().parse().unwrap();
    assert!((1.5..4.0).contains(&seconds), "{metrics}");
    assert!(
        metrics["timestamp"].as_str().unwrap().ends_with('Z'),
        "{metrics}"
    );
    let usage = &metrics["containers"][0]["usage"];
    assert_eq!(metrics["containers"][0]["name"], "spin");
    assert!(
        usage["memory"].as_str().unwrap().ends_with("Ki"),
        "{metrics}"
    );
    assert!(usage["memory"] != "0", "{metrics}");

    // Against the CPU time the shell really used over a few windows.
    let (t0, ticks0) = (Instant::now(), shell_ticks(&c, "busy"));
    let mut seen = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        let out = c.ok(&["top", "pod", "busy", "--no-headers"]);
        seen.push(millicores(&rows(&out)[0][1]));
        std::thread::sleep(Duration::from_millis(500));
    }
    let (t1, ticks1) = (Instant::now(), shell_ticks(&c, "busy"));
    let real = (ticks1 - ticks0) * 10_000 / (t1 - t0).as_millis() as u64;
    let reported = seen.iter().sum::<u64>() / seen.len() as u64;
    assert!(
        real >= 100 && reported * 2 >= real && reported <= real * 3 / 2 + 100,
        "kubectl top said {seen:?} (mean {reported}m); the shell used {real}m"
    );

    // The node, with its share of allocatable CPU and memory.
    let top = eventually_blocking(Duration::from_secs(30), "kubectl top node", || {
        let out = c.kubectl(&["top", "node"]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
            .ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
    });
    let table = rows(&top);
    assert_eq!(
        table[0],
        ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"],
        "{top}"
    );
    let row = &table[1];
    assert_eq!(row[0], node, "{top}");
    assert!(millicores(&row[1]) >= 100, "{top}");
    assert!(row[2].ends_with('%') && row[4].ends_with('%'), "{top}");
    assert!(row[3].ends_with("Mi"), "{top}");

    // Discovery lists the group; unknown objects are NotFound as
    // metrics-server words it.
    let resources = c.ok(&["api-resources", "--api-group=metrics.k8s.io"]);
    assert!(
        resources.contains("PodMetrics") && resources.contains("NodeMetrics"),
        "{resources}"
    );
    let err = c.fails(&["top", "pod", "nothere"]);
    assert!(err.contains("pods \"nothere\" not found"), "{err}");
    // Label selectors choose pods by their labels.
    let selected = c.ok(&["top", "pod", "-l", "app=busy", "--no-headers"]);
    assert!(selected.starts_with("busy "), "{selected}");
    let all = c.ok(&["top", "pod", "-A", "--containers", "--no-headers"]);
    assert!(
        rows(&all)
            .iter()
            .any(|r| r[..3] == ["default", "busy", "spin"]),
        "{all}"
    );
    let none = c.ok(&["top", "pod", "-l", "app=other"]);
    assert_eq!(none, "");
    let podmetrics = c.ok(&["get", "podmetrics", "busy"]);
    assert!(podmetrics.starts_with("NAME"), "{podmetrics}");
}

#[test]
fn hpa_scales_a_busy_deployment_on_cpu_from_the_metrics_api() {
    let c = Cluster::start_with_agent(RESOLUTION);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: spin\nspec:\n  replicas: 1\n  \
             selector:\n    matchLabels:\n      app: spin\n  template:\n{}",
            busy_template("spin", "    ")
        ),
    );
    c.ok_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"autoscaling/v2","kind":"HorizontalPodAutoscaler","metadata":{"name":"spin"},"spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"spin"},"minReplicas":1,"maxReplicas":2,"metrics":[{"type":"Resource","resource":{"name":"cpu","target":{"type":"Utilization","averageUtilization":50}}},{"type":"Resource","resource":{"name":"memory","target":{"type":"Utilization","averageUtilization":80}}}]}}"#,
    );
    eventually_blocking(Duration::from_secs(60), "the HPA scaling spin to 2", || {
        let replicas = c.ok(&[
            "get",
            "deployment",
            "spin",
            "-o",
            "jsonpath={.spec.replicas}",
        ]);
        (replicas == "2").then_some(()).ok_or(replicas)
    });
    let hpa: Value = eventually_blocking(Duration::from_secs(30), "currentMetrics", || {
        let hpa: Value =
            serde_json::from_str(&c.ok(&["get", "hpa", "spin", "-o", "json"])).unwrap();
        let active = hpa["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "ScalingActive" && c["status"] == "True");
        let measured = |i: usize| {
            hpa["status"]["currentMetrics"][i]["resource"]["current"]["averageUtilization"]
                .as_i64()
                .is_some()
        };
        (active && measured(0) && measured(1))
            .then_some(hpa.clone())
            .ok_or(hpa.to_string())
    });
    let metric = &hpa["status"]["currentMetrics"][0]["resource"];
    assert_eq!(metric["name"], "cpu", "{hpa}");
    assert!(
        metric["current"]["averageUtilization"].as_i64().unwrap() > 50,
        "{hpa}"
    );
    // The busy shell holds far less than its 64Mi memory request: CPU
    // decides the scale.
    let memory = &hpa["status"]["currentMetrics"][1]["resource"];
    assert_eq!(memory["name"], "memory", "{hpa}");
    assert!(
        memory["current"]["averageUtilization"].as_i64().unwrap() < 80,
        "{hpa}"
    );
    let active = hpa["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "ScalingActive")
        .unwrap();
    assert_eq!(active["reason"], "ValidMetricFound", "{hpa}");
    let describe = c.ok(&["describe", "hpa", "spin"]);
    assert!(
        describe.contains("resource cpu on pods  (as a percentage of request):")
            && describe.contains("/ 50%")
            && describe.contains("resource memory on pods  (as a percentage of request):")
            && describe.contains("SuccessfulRescale")
            && describe.contains("New size: 2; reason: cpu resource utilization (percentage of request) above target"),
        "{describe}"
    );
}
