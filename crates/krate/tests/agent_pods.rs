//! The node agent of `krate server`, black-box through kubectl: a Ready
//! node with the kubelet's labels, capacity and node info, and pods that
//! are real runc containers with their upstream statuses and events.
//! Root only; in the nextest group `agent` (one at a time).

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{eventually_blocking, Cluster, BUSYBOX};

fn json(c: &Cluster, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&c.ok(&a)).unwrap()
}

fn node(c: &Cluster) -> Value {
    eventually_blocking(Duration::from_secs(60), "a Ready, labelled node", || {
        let nodes = json(c, &["get", "nodes"]);
        let node = nodes["items"]
            .as_array()
            .and_then(|i| i.first())
            .cloned()
            .ok_or("no node")?;
        let ready = node["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        // The server labels its node's role once the node is registered,
        // which may be a moment after the node is Ready.
        let labelled =
            node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] == "true";
        if ready && labelled && node["spec"]["podCIDR"].is_string() {
            Ok(node)
        } else {
            Err(format!("not ready yet: {node}"))
        }
    })
}

fn pod(c: &Cluster, name: &str) -> Value {
    json(c, &["get", "pod", name])
}

fn apply(c: &Cluster, manifest: &str) {
    c.ok_stdin(&["apply", "-f", "-"], manifest);
}

fn pod_manifest(name: &str, restart: &str, command: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {restart}
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", {command:?}]
"#
    )
}

fn wait_phase(c: &Cluster, name: &str, phase: &str, within: u64) -> Value {
    eventually_blocking(
        Duration::from_secs(within),
        &format!("pod {name} {phase}"),
        || {
            let p = pod(c, name);
            if p["status"]["phase"] == phase {
                Ok(p)
            } else {
                Err(format!("{}", p["status"]))
            }
        },
    )
}

fn in_cidr(ip: &str, cidr: &str) -> bool {
    let (base, len) = cidr.split_once('/').unwrap();
    let ip: std::net::Ipv4Addr = ip.parse().unwrap();
    let base: std::net::Ipv4Addr = base.parse().unwrap();
    let len: u32 = len.parse().unwrap();
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(ip) & mask == u32::from(base) & mask
}

#[test]
fn a_fresh_server_registers_a_ready_control_plane_node() {
    let c = Cluster::start_with_agent(&[]);
    let node = node(&c);
    let labels = &node["metadata"]["labels"];
    let name = node["metadata"]["name"].as_str().unwrap();
    assert_eq!(labels["kubernetes.io/hostname"], name);
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert_eq!(labels["kubernetes.io/arch"], "amd64");
    assert_eq!(labels["beta.kubernetes.io/os"], "linux");
    assert_eq!(labels["node-role.kubernetes.io/control-plane"], "true");
    let status = &node["status"];
    assert_eq!(status["capacity"]["pods"], "110");
    assert!(
        status["capacity"]["cpu"]
            .as_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            >= 1
    );
    assert!(status["capacity"]["memory"]
        .as_str()
        .unwrap()
        .ends_with("Ki"));
    assert!(status["capacity"]["ephemeral-storage"].is_string());
    let info = &status["nodeInfo"];
    assert_eq!(info["operatingSystem"], "linux");
    assert_eq!(info["architecture"], "amd64");
    assert_eq!(info["kubeletVersion"], "v1.32.0");
    assert!(info["containerRuntimeVersion"]
        .as_str()
        .unwrap()
        .starts_with("runc://"));
    assert!(!info["kernelVersion"].as_str().unwrap().is_empty());
    assert!(!info["osImage"].as_str().unwrap().is_empty());
    let names = c.agent.clone().unwrap();
    let first_24 = names.cluster_cidr.replace("/23", "/24");
    assert_eq!(node["spec"]["podCIDR"], first_24.as_str());
    let types: Vec<&str> = status["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["InternalIP", "Hostname"]);
    let ready = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["reason"], "KubeletReady");
    assert_eq!(ready["message"], "kubelet is posting ready status");
    // The heartbeat Lease.
    let lease = json(&c, &["get", "lease", "-n", "kube-node-lease", name]);
    assert_eq!(lease["spec"]["holderIdentity"], name);
    // kubectl get nodes shows it Ready with its role.
    let out = c.ok(&["get", "nodes"]);
    assert!(
        out.contains("Ready") && out.contains("control-plane"),
        "{out}"
    );
}

#[test]
fn a_deployment_runs_real_containers_with_ips_from_the_node_cidr() {
    let c = Cluster::start_with_agent(&[]);
    let node = node(&c);
    let cidr = node["spec"]["podCIDR"].as_str().unwrap().to_string();
    c.ok(&[
        "create",
        "deployment",
        "web",
        &format!("--image={BUSYBOX}"),
        "--replicas=2",
        "--",
        "sleep",
        "3600",
    ]);
    let pods = eventually_blocking(Duration::from_secs(60), "2 Running pods", || {
        let pods = json(&c, &["get", "pods", "-l", "app=web"]);
        let items = pods["items"].as_array().cloned().unwrap_or_default();
        let running: Vec<Value> = items
            .into_iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .filter(|p| p["status"]["containerStatuses"][0]["ready"] == true)
            .collect();
        if running.len() == 2 {
            Ok(running)
        } else {
            Err(format!("{pods}"))
        }
    });
    let ids = c.runc_ids();
    for p in &pods {
        let ip = p["status"]["podIP"].as_str().unwrap();
        assert!(in_cidr(ip, &cidr), "{ip} not in {cidr}");
        let cs = &p["status"]["containerStatuses"][0];
        assert_eq!(cs["image"], BUSYBOX);
        assert!(cs["state"]["running"]["startedAt"].is_string());
        let id = cs["containerID"].as_str().unwrap();
        let id = id.strip_prefix("runc://").expect("runc:// container ID");
        assert!(ids.iter().any(|i| i == id), "{id} not in runc list {ids:?}");
        let state = c.runc_state(id).unwrap();
        assert_eq!(state["status"], "running");
        let pid = state["pid"].as_u64().unwrap();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        assert!(
            String::from_utf8_lossy(&cmdline).contains("sleep"),
            "{cmdline:?}"
        );
        assert_eq!(p["status"]["qosClass"], "BestEffort");
        let conds: Vec<String> = p["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{}={}",
                    c["type"].as_str().unwrap(),
                    c["status"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            conds,
            [
                "PodReadyToStartContainers=True",
                "Initialized=True",
                "Ready=True",
                "ContainersReady=True",
                "PodScheduled=True"
            ]
        );
    }
    let name = pods[0]["metadata"]["name"].as_str().unwrap();
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={name}"),
    ]);
    for reason in ["Scheduled", "Pulled", "Created", "Started"] {
        assert!(events.contains(reason), "{reason} missing:\n{events}");
    }
    assert!(
        events.contains(&format!(
            "Container image \"{BUSYBOX}\" already present on machine"
        )),
        "{events}"
    );
}

#[test]
fn a_pod_that_exits_0_with_restart_never_succeeds() {
    let c = Cluster::start_with_agent(&[]);
    node(&c);
    apply(&c, &pod_manifest("done", "Never", "exit 0"));
    let p = wait_phase(&c, "done", "Succeeded", 60);
    let t = &p["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["reason"], "Completed");
    assert_eq!(t["exitCode"], 0);
    let out = c.ok(&["get", "pod", "done"]);
    assert!(out.contains("Completed"), "{out}");
}

#[test]
fn termination_messages_come_from_the_message_file_or_the_logs_of_a_failure() {
    let c = Cluster::start_with_agent(&[]);
    node(&c);
    apply(
        &c,
        &pod_manifest(
            "told",
            "Never",
            "printf 'disk full' > /dev/termination-log; exit 3",
        ),
    );
    apply(
        &c,
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: logged
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "echo starting; echo cannot reach the database; exit 1"]
    terminationMessagePolicy: FallbackToLogsOnError
"#
        ),
    );
    let told = wait_phase(&c, "told", "Failed", 60);
    let t = &told["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["exitCode"], 3);
    assert_eq!(t["message"], "disk full");
    let logged = wait_phase(&c, "logged", "Failed", 60);
    let t = &logged["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["message"], "starting\ncannot reach the database\n");
    let describe = c.ok(&["describe", "pod", "told"]);
    assert!(describe.contains("Message:      disk full"), "{describe}");
}

#[test]
fn a_crashing_container_backs_off_in_crash_loop() {
    let c = Cluster::start_with_agent(&[]);
    node(&c);
    apply(&c, &pod_manifest("crash", "Always", "exit 1"));
    let p = eventually_blocking(Duration::from_secs(90), "CrashLoopBackOff", || {
        let p = pod(&c, "crash");
        let cs = &p["status"]["containerStatuses"][0];
        if cs["state"]["waiting"]["reason"] == "CrashLoopBackOff" {
            Ok(p)
        } else {
            Err(format!("{}", p["status"]))
        }
    });
    let cs = &p["status"]["containerStatuses"][0];
    assert!(cs["restartCount"].as_i64().unwrap() >= 1);
    let message = cs["state"]["waiting"]["message"].as_str().unwrap();
    let uid = p["metadata"]["uid"].as_str().unwrap();
    assert!(
        message.starts_with("back-off ")
            && message.ends_with(&format!(
                "restarting failed container=app pod=crash_default({uid})"
            )),
        "{message}"
    );
    let last = &cs["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 1);
    assert_eq!(last["reason"], "Error");
    assert_eq!(p["status"]["phase"], "Running");
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=crash",
    ]);
    assert!(
        events.contains("Back-off restarting failed container app in pod crash_default"),
        "{events}"
    );
}

#[test]
fn a_missing_image_is_err_image_pull_then_image_pull_back_off() {
    let c = Cluster::start_with_agent(&[]);
    node(&c);
    apply(
        &c,
        r#"apiVersion: v1
kind: Pod
metadata:
  name: noimage
spec:
  containers:
  - name: app
    image: 127.0.0.1:1/nothing/here:1
"#,
    );
    let mut seen = std::collections::HashSet::new();
    eventually_blocking(
        Duration::from_secs(60),
        "ErrImagePull and ImagePullBackOff",
        || {
            let p = pod(&c, "noimage");
            if let Some(r) =
                p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"].as_str()
            {
                seen.insert(r.to_string());
            }
            if seen.contains("ErrImagePull") && seen.contains("ImagePullBackOff") {
                Ok(())
            } else {
                Err(format!("{seen:?} {}", p["status"]))
            }
        },
    );
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=noimage",
    ]);
    assert!(
        events.contains("Pulling image \"127.0.0.1:1/nothing/here:1\""),
        "{events}"
    );
    assert!(
        events.contains("Failed to pull image \"127.0.0.1:1/nothing/here:1\""),
        "{events}"
    );
    assert!(events.contains("Error: ErrImagePull"), "{events}");
    assert!(events.contains("Back-off pulling image"), "{events}");
}

#[test]
fn run_as_non_root_refuses_an_image_that_runs_as_root() {
    let c = Cluster::start_with_agent(&[]);
    node(&c);
    apply(
        &c,
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: nonroot
spec:
  securityContext:
    runAsNonRoot: true
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sleep", "3600"]
"#
        ),
    );
    let p = eventually_blocking(
        Duration::from_secs(60),
        "CreateContainerConfigError",
        || {
            let p = pod(&c, "nonroot");
            let w = &p["status"]["containerStatuses"][0]["state"]["waiting"];
            if w["reason"] == "CreateContainerConfigError" {
                Ok(p)
            } else {
                Err(format!("{}", p["status"]))
            }
        },
    );
    let uid = p["metadata"]["uid"].as_str().unwrap();
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
        format!("container has runAsNonRoot and image will run as root (pod: \"nonroot_default({uid})\", container: app)")
    );
}

#[test]
fn a_missing_command_is_a_start_error() {
    let c = Cluster::start_with_agent(&[]);
    node(&c);
    apply(
        &c,
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: nocmd
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["/no/such/binary"]
"#
        ),
    );
    eventually_blocking(Duration::from_secs(60), "a start error", || {
        let p = pod(&c, "nocmd");
        let st = &p["status"]["containerStatuses"][0]["state"];
        let reason = st["waiting"]["reason"]
            .as_str()
            .or(st["terminated"]["reason"].as_str())
            .unwrap_or("");
        if reason == "RunContainerError" || reason == "StartError" || reason == "ContainerCannotRun"
        {
            Ok(())
        } else {
            Err(format!("{}", p["status"]))
        }
    });
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=nocmd",
    ]);
    assert!(events.contains("Failed"), "{events}");
}

#[test]
fn a_container_over_its_memory_limit_is_oom_killed() {
    let c = Cluster::start_with_agent(&[]);
    node(&c);
    apply(
        &c,
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: oom
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "x=$(head -c 64000000 /dev/zero | tr '\\0' a); sleep 5"]
    resources:
      limits:
        memory: 16Mi
"#
        ),
    );
    let p = wait_phase(&c, "oom", "Failed", 60);
    let t = &p["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["reason"], "OOMKilled", "{}", p["status"]);
    assert_eq!(t["exitCode"], 137);
}

#[test]
fn deleting_a_pod_stops_and_removes_its_containers() {
    let c = Cluster::start_with_agent(&[]);
    node(&c);
    apply(&c, &pod_manifest("gone", "Always", "sleep 3600"));
    let p = wait_phase(&c, "gone", "Running", 60);
    let id = p["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("runc://")
        .to_string();
    assert!(c.runc_ids().contains(&id));
    c.ok(&["delete", "pod", "gone", "--wait=true", "--timeout=60s"]);
    eventually_blocking(Duration::from_secs(30), "containers removed", || {
        let ids = c.runc_ids();
        if ids.is_empty() {
            Ok(())
        } else {
            Err(format!("{ids:?}"))
        }
    });
}

#[test]
fn killing_the_app_container_keeps_the_pod_ip() {
    let c = Cluster::start_with_agent(&[]);
    node(&c);
    apply(&c, &pod_manifest("keepip", "Always", "sleep 3600"));
    let p = wait_phase(&c, "keepip", "Running", 60);
    let ip = p["status"]["podIP"].as_str().unwrap().to_string();
    let id = p["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("runc://")
        .to_string();
    let pid = c.runc_state(&id).unwrap()["pid"].as_u64().unwrap();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let p = eventually_blocking(Duration::from_secs(60), "the container restarted", || {
        let p = pod(&c, "keepip");
        let cs = &p["status"]["containerStatuses"][0];
        if cs["restartCount"].as_i64() >= Some(1) && cs["state"]["running"].is_object() {
            Ok(p)
        } else {
            Err(format!("{}", p["status"]))
        }
    });
    assert_eq!(p["status"]["podIP"], ip.as_str());
    assert_eq!(
        p["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"],
        137
    );
}

#[test]
fn restarting_the_server_leaves_containers_running_and_readopts_them() {
    let mut c = Cluster::start_with_agent(&[]);
    node(&c);
    apply(&c, &pod_manifest("stay", "Always", "sleep 3600"));
    let p = wait_phase(&c, "stay", "Running", 60);
    let id = p["status"]["containerStatuses"][0]["containerID"].clone();
    let node_name = node(&c)["metadata"]["name"].as_str().unwrap().to_string();
    let renewed = |c: &Cluster| {
        json(c, &["get", "lease", "-n", "kube-node-lease", &node_name])["spec"]["renewTime"].clone()
    };
    let before = renewed(&c);
    c.restart();
    // The new agent is up once it renewed the Lease; the pod still runs
    // the same container.
    eventually_blocking(
        Duration::from_secs(60),
        "the restarted agent's heartbeat",
        || {
            if renewed(&c) != before {
                Ok(())
            } else {
                Err("lease not renewed".to_string())
            }
        },
    );
    let p = wait_phase(&c, "stay", "Running", 60);
    assert_eq!(p["status"]["containerStatuses"][0]["containerID"], id);
    assert_eq!(p["status"]["containerStatuses"][0]["restartCount"], 0);
    let raw = id.as_str().unwrap().trim_start_matches("runc://");
    assert_eq!(c.runc_state(raw).unwrap()["status"], "running");
}

#[test]
fn init_containers_run_in_order_before_the_app_container() {
    let c = Cluster::start_with_agent(&[]);
    node(&c);
    apply(
        &c,
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: inits
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: work
    emptyDir: {{}}
  initContainers:
  - name: first
    image: {BUSYBOX}
    command: ["sh", "-c", "echo first >> /work/order"]
    volumeMounts: [{{name: work, mountPath: /work}}]
  - name: second
    image: {BUSYBOX}
    command: ["sh", "-c", "sleep 2; echo second >> /work/order"]
    volumeMounts: [{{name: work, mountPath: /work}}]
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "cat /work/order; sleep 3600"]
    volumeMounts: [{{name: work, mountPath: /work}}]
"#
        ),
    );
    // While the second init container runs, the app waits PodInitializing.
    let p = eventually_blocking(
        Duration::from_secs(60),
        "the second init container running",
        || {
            let p = pod(&c, "inits");
            if p["status"]["initContainerStatuses"][1]["state"]["running"].is_object() {
                Ok(p)
            } else {
                Err(format!("{}", p["status"]))
            }
        },
    );
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "PodInitializing"
    );
    assert_eq!(
        p["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
    let init = p["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Initialized")
        .unwrap()
        .clone();
    assert_eq!(init["status"], "False");
    assert_eq!(
        init["message"],
        "containers with incomplete status: [second]"
    );
    let out = c.ok(&["get", "pod", "inits"]);
    assert!(out.contains("Init:1/2"), "{out}");
    let p = wait_phase(&c, "inits", "Running", 60);
    assert_eq!(
        p["status"]["initContainerStatuses"][1]["state"]["terminated"]["exitCode"],
        0
    );
    eventually_blocking(Duration::from_secs(30), "the app's log", || {
        let logs = c.kubectl(&["logs", "inits", "-c", "app"]);
        let text = String::from_utf8_lossy(&logs.stdout).to_string();
        if text == "first\nsecond\n" {
            Ok(())
        } else {
            Err(format!(
                "{text:?} {}",
                String::from_utf8_lossy(&logs.stderr)
            ))
        }
    });
}

/// The cgroup directory of `pid` in the hierarchy of `controller` (v1).
fn cgroup_dir(pid: u64, controller: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|c| c == controller))
        })
        .unwrap_or_else(|| panic!("no {controller} cgroup in {text}"));
    let path = line.splitn(3, ':').nth(2).unwrap();
    let dir = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .split(',')
                .any(|c| c == controller)
        })
        .unwrap();
    dir.join(path.trim_start_matches('/'))
}

#[test]
fn resources_become_cgroup_limits_under_the_pods_qos_cgroup() {
    if !std::path::Path::new("/sys/fs/cgroup/memory").exists() {
        eprintln!("skipped: cgroup v1 memory hierarchy not mounted");
        return;
    }
    let c = Cluster::start_with_agent(&[]);
    node(&c);
    apply(
        &c,
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: limited
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    resources:
      requests:
        cpu: 250m
        memory: 32Mi
      limits:
        cpu: 500m
        memory: 64Mi
  - name: side
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    resources:
      requests:
        cpu: 100m
      limits:
        cpu: 200m
        memory: 16Mi
"#
        ),
    );
    let p = wait_phase(&c, "limited", "Running", 60);
    assert_eq!(p["status"]["qosClass"], "Burstable");
    let uid = p["metadata"]["uid"].as_str().unwrap();
    let id = p["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("runc://")
        .to_string();
    let pid = c.runc_state(&id).unwrap()["pid"].as_u64().unwrap();
    let memory = cgroup_dir(pid, "memory");
    assert!(
        memory
            .display()
            .to_string()
            .contains(&format!("burstable/pod{uid}")),
        "{}",
        memory.display()
    );
    let read = |dir: &std::path::Path, file: &str| {
        std::fs::read_to_string(dir.join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read(&memory, "memory.limit_in_bytes"), "67108864");
    let cpu = cgroup_dir(pid, "cpu");
    assert_eq!(read(&cpu, "cpu.shares"), "256");
    assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000");
    // The pod cgroup above holds the sum: 350m of requests, 700m and 80Mi
    // of limits.
    let (pod_memory, pod_cpu) = (memory.parent().unwrap(), cpu.parent().unwrap());
    assert!(
        pod_memory.ends_with(format!("pod{uid}")),
        "{}",
        pod_memory.display()
    );
    assert_eq!(read(pod_memory, "memory.limit_in_bytes"), "83886080");
    assert_eq!(read(pod_cpu, "cpu.shares"), "358");
    assert_eq!(read(pod_cpu, "cpu.cfs_quota_us"), "70000");
}

#[test]
fn a_graceful_delete_sends_sigterm_and_waits_for_the_container() {
    let c = Cluster::start_with_agent(&[]);
    node(&c);
    apply(
        &c,
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: graceful
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "trap 'echo got TERM > /dev/termination-log; exit 0' TERM; while true; do sleep 0.2; done"]
"#
        ),
    );
    wait_phase(&c, "graceful", "Running", 60);
    let started = std::time::Instant::now();
    c.ok(&["delete", "pod", "graceful", "--wait=true", "--timeout=60s"]);
    // SIGTERM ended it well before the 30 s grace period.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=graceful",
    ]);
    assert!(events.contains("Stopping container app"), "{events}");
}

#[test]
fn killing_the_sandbox_recreates_the_pods_containers() {
    let c = Cluster::start_with_agent(&[]);
    node(&c);
    apply(&c, &pod_manifest("resandbox", "Always", "sleep 3600"));
    let p = wait_phase(&c, "resandbox", "Running", 60);
    let id = p["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("runc://")
        .to_string();
    let sandbox = c
        .runc_ids()
        .into_iter()
        .find(|i| *i != id)
        .expect("the sandbox's runc container");
    let pid = c.runc_state(&sandbox).unwrap()["pid"].as_u64().unwrap();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    eventually_blocking(
        Duration::from_secs(60),
        "the pod running again in a new sandbox",
        || {
            let p = pod(&c, "resandbox");
            let cs = &p["status"]["containerStatuses"][0];
            let new_container = cs["containerID"] != format!("runc://{id}").as_str();
            if cs["restartCount"].as_i64() >= Some(1)
                && cs["state"]["running"].is_object()
                && new_container
            {
                Ok(())
            } else {
                Err(format!("{}", p["status"]))
            }
        },
    );
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=resandbox",
    ]);
    assert!(
        events.contains("Pod sandbox changed, it will be killed and re-created."),
        "{events}"
    );
}

#[test]
fn a_host_network_pod_has_the_node_ip() {
    let c = Cluster::start_with_agent(&[]);
    node(&c);
    apply(
        &c,
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: hostnet
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sleep", "3600"]
"#
        ),
    );
    let p = wait_phase(&c, "hostnet", "Running", 60);
    assert_eq!(p["status"]["podIP"], p["status"]["hostIP"]);
}

#[test]
fn a_force_deleted_pod_is_torn_down() {
    let c = Cluster::start_with_agent(&[]);
    node(&c);
    apply(&c, &pod_manifest("forced", "Always", "sleep 3600"));
    wait_phase(&c, "forced", "Running", 60);
    assert!(!c.runc_ids().is_empty());
    c.ok(&["delete", "pod", "forced", "--grace-period=0", "--force"]);
    eventually_blocking(
        Duration::from_secs(30),
        "its containers and sandbox removed",
        || {
            let ids = c.runc_ids();
            if ids.is_empty() {
                Ok(())
            } else {
                Err(format!("{ids:?}"))
            }
        },
    );
}

#[test]
fn an_absent_image_with_pull_policy_never_is_err_image_never_pull() {
    let c = Cluster::start_with_agent(&[]);
    node(&c);
    apply(
        &c,
        r#"apiVersion: v1
kind: Pod
metadata:
  name: neverpull
spec:
  containers:
  - name: app
    image: krate.test/absent:1
    imagePullPolicy: Never
"#,
    );
    let p = eventually_blocking(Duration::from_secs(60), "ErrImageNeverPull", || {
        let p = pod(&c, "neverpull");
        if p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImageNeverPull"
        {
            Ok(p)
        } else {
            Err(format!("{}", p["status"]))
        }
    });
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
        "Container image \"krate.test/absent:1\" is not present with pull policy of Never"
    );
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=neverpull",
    ]);
    assert!(events.contains("ErrImageNeverPull"), "{events}");
    assert!(!events.contains("Pulling"), "{events}");
}

#[test]
fn the_node_lists_its_images_with_their_names_and_sizes() {
    let c = Cluster::start_with_agent(&[]);
    node(&c);
    let name = c.ok(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);
    let images: Value = eventually_blocking(Duration::from_secs(30), "status.images", || {
        let out = c.ok(&["get", "node", &name, "-o", "jsonpath={.status.images}"]);
        serde_json::from_str::<Value>(&out).map_err(|e| format!("{e}: {out}"))
    });
    let busybox = images
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["names"].as_array().unwrap().iter().any(|n| n == BUSYBOX))
        .unwrap_or_else(|| panic!("{BUSYBOX} is not in {images}"));
    // Repo digests first, then repo tags, as containerd's CRI names them.
    let names = busybox["names"].as_array().unwrap();
    assert!(
        names[0]
            .as_str()
            .unwrap()
            .starts_with("krate.test/busybox@sha256:"),
        "{busybox}"
    );
    assert_eq!(names.last().unwrap(), BUSYBOX);
    assert!(
        busybox["sizeBytes"].as_i64().unwrap() > 100_000,
        "{busybox}"
    );
}
