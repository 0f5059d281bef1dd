//! The node agent after a machine reboot, black-box through kubectl: every
//! process, mount, namespace, cgroup and network device of the node is gone
//! and only the data directory is left. As with the kubelet and containerd,
//! the old sandboxes are NotReady, their containers exited with 255
//! `Unknown`, each pod gets a new sandbox (`SandboxChanged`) and its
//! containers come back as the restartPolicy says; the old sandboxes' IPs
//! are released. Root only; in the nextest group `agent` (one at a time).

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::{eventually_blocking, Cluster, BUSYBOX};

fn json(c: &Cluster, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&c.ok(&a)).unwrap()
}

fn pod(c: &Cluster, name: &str) -> Value {
    json(c, &["get", "pod", name])
}

/// A pod sleeping in `app`; with `init`, an init container that completes
/// after two seconds first.
fn manifest(name: &str, restart: &str, init: bool) -> String {
    let init = if init {
        format!(
            r#"  initContainers:
  - name: init
    image: {BUSYBOX}
    command: ["sleep", "2"]
"#
        )
    } else {
        String::new()
    };
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {restart}
  terminationGracePeriodSeconds: 1
{init}  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sleep", "3600"]
---
"#
    )
}

fn wait_running(c: &Cluster, name: &str, restarts: i64) -> Value {
    eventually_blocking(
        Duration::from_secs(90),
        &format!("pod {name} Running with {restarts} restarts"),
        || {
            let p = pod(c, name);
            let cs = &p["status"]["containerStatuses"][0];
            if p["status"]["phase"] == "Running"
                && cs["state"]["running"].is_object()
                && cs["ready"] == true
                && cs["restartCount"] == restarts
            {
                Ok(p)
            } else {
                Err(format!("{}", p["status"]))
            }
        },
    )
}

/// host-local's allocations of the cluster's network: (IP, sandbox id).
fn allocated_ips(dir: &Path) -> Vec<(String, String)> {
    let mut ips: Vec<(String, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.parse::<std::net::IpAddr>().ok()?;
            let owner = std::fs::read_to_string(e.path()).ok()?;
            Some((name, owner.lines().next().unwrap_or_default().to_string()))
        })
        .collect();
    ips.sort();
    ips
}

fn sandbox_changed_events(c: &Cluster, name: &str) -> Vec<Value> {
    let selector = format!("involvedObject.name={name},reason=SandboxChanged");
    let events = json(c, &["get", "events", "--field-selector", &selector]);
    events["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn after_a_reboot_pods_come_back_as_their_restart_policy_says() {
    let mut c = Cluster::start_with_agent(&[]);
    let names = c.agent.clone().unwrap();
    let ip_dir = PathBuf::from(net::default_network::HOST_LOCAL_DATA_DIR)
        .join(format!("krate-{}", names.bridge));
    let manifests = [
        manifest("always", "Always", true),
        manifest("onfailure", "OnFailure", false),
        manifest("never", "Never", false),
    ]
    .concat();
    c.ok_stdin(&["apply", "-f", "-"], &manifests);
    let before: Vec<Value> = ["always", "onfailure", "never"]
        .iter()
        .map(|name| wait_running(&c, name, 0))
        .collect();
    assert_eq!(allocated_ips(&ip_dir).len(), 3);

    c.simulate_reboot();
    let booted = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    c.restart();

    for (name, old) in ["always", "onfailure"].iter().zip(&before) {
        let p = wait_running(&c, name, 1);
        let cs = &p["status"]["containerStatuses"][0];
        let last = &cs["lastState"]["terminated"];
        assert_eq!(last["exitCode"], 255, "{name}: {cs}");
        assert_eq!(last["reason"], "Unknown", "{name}: {cs}");
        assert_eq!(
            last["containerID"], old["status"]["containerStatuses"][0]["containerID"],
            "{name}: {cs}"
        );
        assert_ne!(cs["containerID"], last["containerID"]);
        // It ran from its start until the runtime found it gone, as
        // containerd records it.
        assert_eq!(
            last["startedAt"],
            old["status"]["containerStatuses"][0]["state"]["running"]["startedAt"],
            "{name}: {cs}"
        );
        assert!(
            last["finishedAt"].as_str().unwrap() >= booted.as_str(),
            "{name}: {cs}"
        );
        let events = sandbox_changed_events(&c, name);
        assert_eq!(events.len(), 1, "{name}: {events:?}");
        assert_eq!(
            events[0]["message"],
            "Pod sandbox changed, it will be killed and re-created."
        );
        assert_eq!(events[0]["type"], "Normal");
    }
    // The node says it rebooted, as the kubelet does.
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let rebooted = json(
        &c,
        &["get", "events", "--field-selector", "reason=Rebooted"],
    );
    let rebooted = rebooted["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(rebooted.len(), 1, "{rebooted:?}");
    let node = rebooted[0]["involvedObject"]["name"].as_str().unwrap();
    assert_eq!(rebooted[0]["involvedObject"]["kind"], "Node");
    assert_eq!(rebooted[0]["type"], "Warning");
    assert_eq!(
        rebooted[0]["message"],
        format!("Node {node} has been rebooted, boot id: {}", boot_id.trim())
    );
    // runc's state of the boot before is gone with it, as on a tmpfs.
    let runc_ids = c.runc_ids();
    for old in &before {
        let id = old["status"]["containerStatuses"][0]["containerID"]
            .as_str()
            .unwrap()
            .trim_start_matches("runc://");
        assert!(!runc_ids.iter().any(|i| i == id), "{id} in {runc_ids:?}");
    }
    // With a new sandbox the init container runs again, as upstream's
    // computePodActions says.
    let always = pod(&c, "always");
    let init = &always["status"]["initContainerStatuses"][0];
    assert_eq!(init["restartCount"], 1, "{init}");
    assert_eq!(init["state"]["terminated"]["reason"], "Completed", "{init}");
    let app = &always["status"]["containerStatuses"][0];
    let (done, started) = (
        init["state"]["terminated"]["finishedAt"].as_str().unwrap(),
        app["state"]["running"]["startedAt"].as_str().unwrap(),
    );
    assert!(
        done <= started,
        "the app started at {started}, before its init container finished at {done}"
    );

    let never = eventually_blocking(Duration::from_secs(60), "pod never Failed", || {
        let p = pod(&c, "never");
        if p["status"]["phase"] == "Failed" {
            Ok(p)
        } else {
            Err(format!("{}", p["status"]))
        }
    });
    // A pod that never restarts gets no new sandbox.
    let events = sandbox_changed_events(&c, "never");
    assert!(events.is_empty(), "{events:?}");
    let cs = &never["status"]["containerStatuses"][0];
    assert_eq!(cs["restartCount"], 0, "{cs}");
    assert_eq!(cs["state"]["terminated"]["exitCode"], 255, "{cs}");
    assert_eq!(cs["state"]["terminated"]["reason"], "Unknown", "{cs}");
    let finished = cs["state"]["terminated"]["finishedAt"].as_str().unwrap();
    assert!(finished >= booted.as_str(), "{cs}");
    assert_eq!(
        cs["containerID"],
        before[2]["status"]["containerStatuses"][0]["containerID"]
    );
    let table = c.ok(&["get", "pods", "--no-headers"]);
    for (name, status, restarts) in [
        ("always", "Running", "1"),
        ("onfailure", "Running", "1"),
        ("never", "Unknown", "0"),
    ] {
        let row: Vec<&str> = table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{table}"))
            .split_whitespace()
            .collect();
        assert_eq!(row[2], status, "{table}");
        assert!(row[3].starts_with(restarts), "{table}");
    }

    // The old sandboxes' addresses are released (CNI DEL of a sandbox whose
    // namespace is gone): one address per running pod is left, theirs.
    let running_ips: Vec<String> = ["always", "onfailure"]
        .iter()
        .map(|n| pod(&c, n)["status"]["podIP"].as_str().unwrap().to_string())
        .collect();
    eventually_blocking(
        Duration::from_secs(30),
        "the old sandboxes' IPs released",
        || {
            let ips = allocated_ips(&ip_dir);
            let mut held: Vec<String> = ips.iter().map(|(ip, _)| ip.clone()).collect();
            held.sort();
            let mut want = running_ips.clone();
            want.sort();
            if held == want {
                Ok(())
            } else {
                Err(format!("allocated {ips:?}, pods have {want:?}"))
            }
        },
    );

    // What the reboot took is back: the service-account token volume (a
    // tmpfs), the bridge between the pods and to the node.
    let namespace = c.ok(&[
        "exec",
        "always",
        "-c",
        "app",
        "--",
        "cat",
        "/var/run/secrets/kubernetes.io/serviceaccount/namespace",
    ]);
    assert_eq!(namespace, "default");
    let (prefix, _) = running_ips[0].rsplit_once('.').unwrap();
    let gateway = format!("{prefix}.1");
    for target in [&running_ips[1], &gateway] {
        let ping = [
            "exec", "always", "-c", "app", "--", "ping", "-c", "1", "-W", "5",
        ];
        c.ok(&[&ping[..], &[target.as_str()]].concat());
    }

    // Deleting the pods removes the old sandboxes and containers with the
    // new ones: no record, runc state, cached CNI result, mount or address
    // is left.
    c.ok(&["delete", "pods", "--all", "--grace-period=1"]);
    let runtime = c.data_dir().join("runtime");
    eventually_blocking(Duration::from_secs(30), "the runtime emptied", || {
        let left: Vec<PathBuf> = ["sandboxes", "containers"]
            .iter()
            .flat_map(|d| {
                std::fs::read_dir(runtime.join(d))
                    .into_iter()
                    .flatten()
                    .flatten()
            })
            .map(|e| e.path())
            .chain(c.runc_ids().into_iter().map(PathBuf::from))
            .chain(
                std::fs::read_dir(c.data_dir().join("agent/cni/results"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            )
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("left: {left:?}"))
        }
    });
    assert_eq!(allocated_ips(&ip_dir), []);
    let dir = c.dir.path().to_path_buf();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let left: Vec<&str> = mounts
        .lines()
        .filter(|l| l.contains(&*dir.join("data/runtime").to_string_lossy()))
        .collect();
    assert!(left.is_empty(), "runtime mounts left: {left:?}");

    // The harness removes the rest through the restarted agent.
    drop(c);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let left: Vec<&str> = mounts
        .lines()
        .filter(|l| l.contains(&*dir.to_string_lossy()))
        .collect();
    assert!(left.is_empty(), "mounts left: {left:?}");
    assert!(!ip_dir.exists(), "{} left", ip_dir.display());
    let link = std::process::Command::new("ip")
        .args(["link", "show", &names.bridge])
        .output()
        .unwrap();
    assert!(!link.status.success(), "bridge {} left", names.bridge);
}
