//! Node-pressure eviction on real containers: a pod over its emptyDir
//! sizeLimit, its containers' ephemeral-storage limits or one container's
//! limit is failed with reason Evicted and upstream's message; a node
//! whose memory threshold is crossed reports MemoryPressure, is tainted,
//! evicts a BestEffort pod and keeps new pods away; one under disk
//! pressure rejects new pods and deletes unused images. Root only; in the
//! nextest group `agent`.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{eventually_blocking, Cluster, BUSYBOX};

/// The signals are measured every second instead of every 10.
const FAST: &str = "--eviction-monitoring-interval=1s";

fn pod(c: &Cluster, name: &str) -> Value {
    serde_json::from_str(&c.ok(&["get", "pod", name, "-o", "json"])).unwrap()
}

fn events(c: &Cluster, name: &str) -> String {
    c.ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={name}"),
    ])
}

/// Waits until the pod is Failed with reason Evicted; returns its status.
/// (`kubectl get pod` shows STATUS Evicted until the killed containers'
/// states are reported, then their terminated reason, as upstream's
/// printer does.)
fn wait_evicted(c: &Cluster, name: &str) -> Value {
    eventually_blocking(
        Duration::from_secs(90),
        &format!("pod {name} evicted"),
        || {
            let status = pod(c, name)["status"].clone();
            if status["reason"] == "Evicted" {
                Ok(status)
            } else {
                Err(status.to_string())
            }
        },
    )
}

/// The pod's status says Failed/Evicted with `message`, `describe` shows
/// it, and a Warning `Evicted` event carries it.
fn assert_evicted_with(c: &Cluster, name: &str, message: &str) {
    let status = wait_evicted(c, name);
    assert_eq!(status["phase"], "Failed", "{status}");
    assert_eq!(status["reason"], "Evicted", "{status}");
    assert_eq!(status["message"], message, "{status}");
    let disruption = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "DisruptionTarget")
        .cloned()
        .unwrap_or_default();
    assert_eq!(disruption["reason"], "TerminationByKubelet", "{status}");
    let describe = c.ok(&["describe", "pod", name]);
    assert!(describe.contains("Status:           Failed"), "{describe}");
    assert!(describe.contains("Reason:           Evicted"), "{describe}");
    assert!(describe.contains(message.trim_end()), "{describe}");
    let events = events(c, name);
    let evicted = events
        .lines()
        .find(|l| l.contains("Evicted"))
        .unwrap_or_else(|| panic!("no Evicted event:\n{events}"));
    assert!(evicted.contains("Warning"), "{events}");
    assert!(evicted.contains(message.trim_end()), "{events}");
    // The containers were killed.
    eventually_blocking(Duration::from_secs(30), "the containers stopped", || {
        let p = pod(c, name);
        let statuses = p["status"]["containerStatuses"].as_array().cloned();
        if statuses
            .unwrap_or_default()
            .iter()
            .all(|s| s["state"]["running"].is_null())
        {
            Ok(())
        } else {
            Err(p["status"].to_string())
        }
    });
}

#[test]
fn a_pod_writing_past_its_emptydir_size_limit_is_evicted() {
    let c = Cluster::start_with_agent(&[FAST]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: filler
spec:
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "dd if=/dev/zero of=/scratch/fill bs=1024 count=2048; sleep 3600"]
    volumeMounts:
    - name: scratch
      mountPath: /scratch
  volumes:
  - name: scratch
    emptyDir:
      sizeLimit: 1Mi
"#
        ),
    );
    assert_evicted_with(
        &c,
        "filler",
        "Usage of EmptyDir volume \"scratch\" exceeds the limit \"1Mi\". ",
    );
    // The evicted pod's emptyDir is removed: the disk is freed.
    let uid = c.ok(&["get", "pod", "filler", "-o", "jsonpath={.metadata.uid}"]);
    let scratch = c
        .data_dir()
        .join("pods")
        .join(uid.trim())
        .join("volumes/kubernetes.io~empty-dir/scratch");
    eventually_blocking(Duration::from_secs(30), "the emptyDir removed", || {
        if scratch.exists() {
            Err(scratch.display().to_string())
        } else {
            Ok(())
        }
    });
}

#[test]
fn containers_over_their_ephemeral_storage_limits_are_evicted() {
    let c = Cluster::start_with_agent(&[FAST]);
    let container = |name: &str, limit: &str, fill_kib: u32| {
        format!(
            r#"  - name: {name}
    image: {BUSYBOX}
    command: ["sh", "-c", "dd if=/dev/zero of=/fill bs=1024 count={fill_kib}; sleep 3600"]
    resources:
      limits:
        ephemeral-storage: {limit}
"#
        )
    };
    let pod_of = |name: &str, containers: String| {
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n{containers}")
    };
    // One container over its own limit, the pod within the sum.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod_of(
            "one-over",
            container("small", "1Mi", 2048) + &container("roomy", "100Mi", 0),
        ),
    );
    // The pod over the sum of its containers' limits.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod_of("all-over", container("app", "1Mi", 2048)),
    );
    assert_evicted_with(
        &c,
        "one-over",
        "Container small exceeded its local ephemeral storage limit \"1Mi\". ",
    );
    assert_evicted_with(
        &c,
        "all-over",
        "Pod ephemeral local storage usage exceeds the total limit of containers 1Mi. ",
    );
}

fn condition(c: &Cluster, node: &str, type_: &str) -> Value {
    let n: Value = serde_json::from_str(&c.ok(&["get", "node", node, "-o", "json"])).unwrap();
    n["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
        .unwrap_or_default()
}

fn registered_node(c: &Cluster) -> String {
    eventually_blocking(Duration::from_secs(60), "the node registered", || {
        let names = c.ok(&["get", "nodes", "-o", "name"]);
        match names.trim().strip_prefix("node/") {
            Some(n) => Ok(n.to_string()),
            None => Err(names),
        }
    })
}

/// Waits for the node's MemoryPressure to be True; returns the condition.
fn memory_pressure(c: &Cluster, node: &str) -> Value {
    eventually_blocking(Duration::from_secs(60), "MemoryPressure True", || {
        let m = condition(c, node, "MemoryPressure");
        if m["status"] == "True" {
            Ok(m)
        } else {
            Err(m.to_string())
        }
    })
}

#[test]
fn a_node_under_memory_pressure_is_tainted_and_evicts_best_effort_pods() {
    // A threshold above any machine's memory: always crossed.
    let c = Cluster::start_with_agent(&[
        FAST,
        "--eviction-hard=memory.available<1000Ti",
        "--eviction-pressure-transition-period=5s",
    ]);
    let node = registered_node(&c);
    let memory = memory_pressure(&c, &node);
    assert_eq!(memory["reason"], "KubeletHasInsufficientMemory");
    assert_eq!(
        memory["message"],
        "kubelet has insufficient memory available"
    );
    assert_eq!(condition(&c, &node, "DiskPressure")["status"], "False");
    assert_eq!(
        condition(&c, &node, "DiskPressure")["reason"],
        "KubeletHasNoDiskPressure"
    );
    eventually_blocking(Duration::from_secs(30), "the memory-pressure taint", || {
        let describe = c.ok(&["describe", "node", &node]);
        if describe.contains("node.kubernetes.io/memory-pressure:NoSchedule") {
            Ok(())
        } else {
            Err(describe)
        }
    });
    eventually_blocking(Duration::from_secs(30), "the node event", || {
        let e = events(&c, &node);
        if e.contains("NodeHasInsufficientMemory") {
            Ok(())
        } else {
            Err(e)
        }
    });

    // A BestEffort pod that tolerates the taint is scheduled, then evicted.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: besteffort
spec:
  tolerations:
  - key: node.kubernetes.io/memory-pressure
    operator: Exists
    effect: NoSchedule
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sleep", "3600"]
"#
        ),
    );
    let status = wait_evicted(&c, "besteffort");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "The node was low on resource: memory. Threshold quantity: 1000Ti, available: "
        ),
        "{status}"
    );
    let evicted = events(&c, "besteffort");
    assert!(
        evicted.contains("Evicted") && evicted.contains("The node was low on resource: memory."),
        "{evicted}"
    );

    // A pod without the toleration is not scheduled.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: waiting
spec:
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sleep", "3600"]
"#
        ),
    );
    eventually_blocking(Duration::from_secs(30), "FailedScheduling", || {
        let e = events(&c, "waiting");
        if e.contains("FailedScheduling") && e.contains("node.kubernetes.io/memory-pressure") {
            Ok(())
        } else {
            Err(e)
        }
    });
    let p = pod(&c, "waiting");
    assert_eq!(p["status"]["phase"], "Pending", "{p}");
    assert!(p["spec"]["nodeName"].is_null(), "{p}");

    // A BestEffort pod bound to the node past the scheduler is rejected
    // by the node agent's admission.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: bound
spec:
  nodeName: {node}
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sleep", "3600"]
"#
        ),
    );
    let status = wait_evicted(&c, "bound");
    assert_eq!(status["phase"], "Failed", "{status}");
    assert_eq!(
        status["message"], "Pod was rejected: The node had condition: [MemoryPressure]. ",
        "{status}"
    );
    let table = c.ok(&["get", "pod", "bound", "--no-headers"]);
    assert_eq!(table.split_whitespace().nth(2), Some("Evicted"), "{table}");
    let rejected = events(&c, "bound");
    assert!(
        rejected.contains("Evicted")
            && rejected.contains("The node had condition: [MemoryPressure]."),
        "{rejected}"
    );
}

#[test]
fn a_node_under_disk_and_pid_pressure_is_tainted_and_rejects_new_pods() {
    // Thresholds no machine is above: nearly all of the disk free, more
    // PIDs free than any kernel has.
    let c = Cluster::start_with_agent(&[
        FAST,
        "--eviction-hard=nodefs.available<99.999%,pid.available<100G",
        "--image-minimum-gc-age=0s",
    ]);
    let node = registered_node(&c);
    eventually_blocking(
        Duration::from_secs(60),
        "DiskPressure and PIDPressure",
        || {
            let (disk, pid) = (
                condition(&c, &node, "DiskPressure"),
                condition(&c, &node, "PIDPressure"),
            );
            if disk["status"] == "True" && pid["status"] == "True" {
                Ok(())
            } else {
                Err(format!("{disk} {pid}"))
            }
        },
    );
    let disk = condition(&c, &node, "DiskPressure");
    assert_eq!(disk["reason"], "KubeletHasDiskPressure");
    assert_eq!(disk["message"], "kubelet has disk pressure");
    let pid = condition(&c, &node, "PIDPressure");
    assert_eq!(pid["reason"], "KubeletHasInsufficientPID");
    assert_eq!(pid["message"], "kubelet has insufficient PID available");
    assert_eq!(
        condition(&c, &node, "MemoryPressure")["reason"],
        "KubeletHasSufficientMemory"
    );
    eventually_blocking(Duration::from_secs(30), "the pressure taints", || {
        let describe = c.ok(&["describe", "node", &node]);
        if describe.contains("node.kubernetes.io/disk-pressure:NoSchedule")
            && describe.contains("node.kubernetes.io/pid-pressure:NoSchedule")
        {
            Ok(())
        } else {
            Err(describe)
        }
    });
    let node_events = events(&c, &node);
    assert!(
        node_events.contains("NodeHasDiskPressure")
            && node_events.contains("NodeHasInsufficientPID"),
        "{node_events}"
    );

    // Under disk pressure even a pod that tolerates the taints and asks
    // for memory is rejected.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: tolerant
spec:
  tolerations:
  - operator: Exists
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    resources:
      requests:
        memory: 1Mi
"#
        ),
    );
    let status = wait_evicted(&c, "tolerant");
    assert_eq!(
        status["message"], "Pod was rejected: The node had condition: [DiskPressure PIDPressure]. ",
        "{status}"
    );

    // Before evicting for disk the node deletes the images no container
    // uses: busybox leaves the node's image list.
    eventually_blocking(Duration::from_secs(60), "the unused image deleted", || {
        let images = c.ok(&["get", "node", &node, "-o", "jsonpath={.status.images}"]);
        if images.contains("krate.test/busybox") {
            Err(images)
        } else {
            Ok(())
        }
    });
}

#[test]
fn a_soft_threshold_reports_pressure_at_once_and_evicts_gracefully_after_its_grace_period() {
    // Always crossed, as above, but soft: pods go only after it has held
    // for 4 s, and get up to 20 s of their own grace period.
    let c = Cluster::start_with_agent(&[
        FAST,
        "--eviction-hard=memory.available<0%",
        "--eviction-soft=memory.available<1000Ti",
        "--eviction-soft-grace-period=memory.available=4s",
        "--eviction-max-pod-grace-period=20",
    ]);
    let node = registered_node(&c);
    memory_pressure(&c, &node);
    eventually_blocking(Duration::from_secs(30), "EvictionThresholdMet", || {
        let e = events(&c, &node);
        let met = e.lines().any(|l| {
            l.contains("Warning")
                && l.contains("EvictionThresholdMet")
                && l.ends_with("Attempting to reclaim memory")
        });
        if met {
            Ok(())
        } else {
            Err(e)
        }
    });

    // The pod takes 3 s to stop after SIGTERM: longer than the 2 s a hard
    // eviction leaves, within the grace period a soft one gives.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: graceful
spec:
  terminationGracePeriodSeconds: 15
  tolerations:
  - key: node.kubernetes.io/memory-pressure
    operator: Exists
    effect: NoSchedule
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "trap 'sleep 3; exit 7' TERM; sleep 3600 & wait"]
"#
        ),
    );
    let status = wait_evicted(&c, "graceful");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "The node was low on resource: memory. Threshold quantity: 1000Ti, available: "
        ),
        "{status}"
    );
    let terminated = eventually_blocking(Duration::from_secs(60), "the container stopped", || {
        let p = pod(&c, "graceful");
        let state = p["status"]["containerStatuses"][0]["state"].clone();
        if state["terminated"].is_object() {
            Ok(state["terminated"].clone())
        } else {
            Err(p["status"].to_string())
        }
    });
    // It ran its SIGTERM handler to the end rather than being killed.
    assert_eq!(terminated["exitCode"], 7, "{terminated}");
}
