//! `kubectl debug` on real containers: an ephemeral container added through
//! the pods/ephemeralcontainers subresource runs in the pod's sandbox,
//! sees its target container's processes, takes the user's stdin, reports
//! its status in `ephemeralContainerStatuses` and is never restarted.
//! Root only; in the nextest group `agent`.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{eventually_blocking, Cluster, BUSYBOX};

fn pod(c: &Cluster, name: &str) -> Value {
    serde_json::from_str(&c.ok(&["get", "pod", name, "-o", "json"])).unwrap()
}

fn ephemeral_status(p: &Value, name: &str) -> Value {
    p["status"]["ephemeralContainerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap_or_default()
}

/// Waits for the ephemeral container to end; returns its status.
fn wait_terminated(c: &Cluster, pod_name: &str, name: &str) -> Value {
    eventually_blocking(Duration::from_secs(60), &format!("{name} done"), || {
        let s = ephemeral_status(&pod(c, pod_name), name);
        if s["state"]["terminated"].is_object() {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    })
}

/// A running pod whose one container is a recognisable process.
fn running_pod(c: &Cluster) {
    c.ok(&[
        "run",
        "web",
        &format!("--image={BUSYBOX}"),
        "--",
        "sleep",
        "31337",
    ]);
    eventually_blocking(Duration::from_secs(90), "web Running", || {
        let p = pod(c, "web");
        if p["status"]["phase"] == "Running" {
            Ok(())
        } else {
            Err(p["status"].to_string())
        }
    });
}

#[test]
fn kubectl_debug_runs_an_ephemeral_container_that_sees_its_targets_processes() {
    let c = Cluster::start_with_agent(&[]);
    running_pod(&c);
    let out = c.ok(&[
        "debug",
        "web",
        &format!("--image={BUSYBOX}"),
        "--target=web",
        "--container=debugger",
        "--profile=general",
        "--",
        "sh",
        "-c",
        "ps; echo debugged",
    ]);
    assert!(out.contains("Targeting container \"web\""), "{out}");

    // The container ran once and ended; it is not restarted.
    let terminated = wait_terminated(&c, "web", "debugger");
    assert_eq!(
        terminated["state"]["terminated"]["exitCode"], 0,
        "{terminated}"
    );
    assert_eq!(terminated["state"]["terminated"]["reason"], "Completed");
    assert_eq!(terminated["restartCount"], 0, "{terminated}");
    assert_eq!(terminated["image"], BUSYBOX);
    assert!(terminated["containerID"]
        .as_str()
        .unwrap_or_default()
        .starts_with("runc://"));

    // Its output: the target's process, seen from the debugger's shared
    // PID namespace.
    let logs = c.ok(&["logs", "web", "-c", "debugger"]);
    assert!(logs.contains("sleep 31337"), "{logs}");
    assert!(logs.contains("debugged"), "{logs}");

    // The pod itself is untouched: still Running and Ready, its container
    // never restarted, and the debugger's events name it.
    let p = pod(&c, "web");
    assert_eq!(p["status"]["phase"], "Running");
    assert_eq!(p["status"]["containerStatuses"][0]["restartCount"], 0);
    assert_eq!(p["status"]["containerStatuses"][0]["ready"], true);
    // Events are written apart from the status: wait for them.
    eventually_blocking(Duration::from_secs(30), "the debugger's events", || {
        let describe = c.ok(&["describe", "pod", "web"]);
        let started = describe.lines().any(|l| {
            l.contains("Started")
                && l.contains("kubelet")
                && l.ends_with("Started container debugger")
        });
        let events = c.ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.fieldPath=spec.ephemeralContainers{debugger}",
            "-o",
            "jsonpath={.items[*].reason}",
        ]);
        if describe.contains("Ephemeral Containers:")
            && started
            && events.contains("Created")
            && events.contains("Started")
        {
            Ok(())
        } else {
            Err(format!("{events}\n{describe}"))
        }
    });
    std::thread::sleep(Duration::from_secs(3));
    let s = ephemeral_status(&pod(&c, "web"), "debugger");
    assert_eq!(s["restartCount"], 0, "{s}");
    assert!(s["state"]["terminated"].is_object(), "{s}");
}

#[test]
fn kubectl_debug_interactive_takes_stdin_and_prints_the_output() {
    use std::io::{BufRead, Write};
    let c = Cluster::start_with_agent(&[]);
    running_pod(&c);
    // As a user types: stdin stays open while the output comes back
    // (without stdinOnce, an attach ends with its stdin, as containerd's).
    let mut kubectl = std::process::Command::new("kubectl")
        .args([
            "debug",
            "-i",
            "web",
            &format!("--image={BUSYBOX}"),
            "--container=shell",
            "--profile=general",
            "--",
            "sh",
        ])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("running kubectl");
    let mut stdin = kubectl.stdin.take().unwrap();
    let stdout = kubectl.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !seen.iter().any(|l: &String| l == "typed-into-the-debugger") {
        // Until the shell is attached, what is typed may go unseen: type
        // again each second, as a user would press enter.
        let _ = stdin.write_all(b"echo typed-into-the-debugger\n");
        if let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) {
            seen.push(line);
        }
        assert!(std::time::Instant::now() < deadline, "{seen:?}");
    }
    stdin.write_all(b"exit 3\n").unwrap();
    drop(stdin);
    let status = kubectl.wait().unwrap();
    assert!(status.success(), "{status:?} {seen:?}");
    let terminated = wait_terminated(&c, "web", "shell");
    assert_eq!(
        terminated["state"]["terminated"]["exitCode"], 3,
        "{terminated}"
    );
}

#[test]
fn a_debug_container_targeting_a_container_that_is_not_running_waits_with_upstreams_error() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: done
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["true"]
  - name: keep
    image: {BUSYBOX}
    command: ["sleep", "3600"]
"#
        ),
    );
    eventually_blocking(Duration::from_secs(90), "app exited", || {
        let p = pod(&c, "done");
        let app = &p["status"]["containerStatuses"][0];
        if app["state"]["terminated"].is_object() && p["status"]["phase"] == "Running" {
            Ok(())
        } else {
            Err(p["status"].to_string())
        }
    });
    c.ok(&[
        "debug",
        "done",
        &format!("--image={BUSYBOX}"),
        "--target=app",
        "--container=late",
        "--profile=general",
        "--",
        "ps",
    ]);
    let waiting = eventually_blocking(Duration::from_secs(60), "late waiting", || {
        let s = ephemeral_status(&pod(&c, "done"), "late");
        if s["state"]["waiting"]["reason"] == "CreateContainerConfigError" {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    });
    assert_eq!(
        waiting["state"]["waiting"]["message"], "unable to find target container app",
        "{waiting}"
    );
}
