//! Container lifecycle hooks on real containers: postStart (exec and
//! httpGet) runs right after the container starts and a failing one kills
//! and restarts it with upstream's events and waiting reason; preStop (exec
//! and sleep) runs before SIGTERM within the grace period.
//! Root only; in the nextest group `agent`.

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{eventually_blocking, Cluster, BUSYBOX};

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

/// A pod whose one container `app` (busybox) runs `command` (a YAML
/// list); `container` and `spec` are more YAML lines for the container
/// and the pod spec.
fn pod_yaml(name: &str, grace: u32, command: &str, container: &str, spec: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: {grace}
{spec}  containers:
  - name: app
    image: {BUSYBOX}
    command: {command}
{container}"#
    )
}

fn running(c: &Cluster, name: &str) {
    eventually_blocking(Duration::from_secs(60), &format!("{name} Running"), || {
        let p = pod(c, name);
        if p["status"]["containerStatuses"][0]["state"]["running"].is_object() {
            Ok(())
        } else {
            Err(format!("{}\n{}", p["status"], events(c, name)))
        }
    });
}

fn restarts(c: &Cluster, name: &str) -> i64 {
    pod(c, name)["status"]["containerStatuses"][0]["restartCount"]
        .as_i64()
        .unwrap_or(0)
}

/// A plain HTTP server on every address of the host: answers 200 and
/// keeps the request lines it got.
fn http_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
                // A TLS ClientHello gets the plain HTTP answer at once.
                if request.first() == Some(&0x16) {
                    break;
                }
            }
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&request).into_owned());
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (port, seen)
}

/// A preStop hook that appends `preStop` to `log` in `dir` (a hostPath
/// mounted at /shared).
fn logging_pre_stop(dir: &std::path::Path) -> String {
    format!(
        r#"    volumeMounts:
    - name: shared
      mountPath: /shared
    lifecycle:
      preStop:
        exec:
          command: ["sh", "-c", "echo preStop >> /shared/log"]
  volumes:
  - name: shared
    hostPath:
      path: {}
      type: Directory
"#,
        dir.display()
    )
}

/// A container command that exits at once on SIGTERM.
const TERMINATES: &str = r#"["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]"#;

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn a_post_start_exec_hook_runs_in_the_container_after_it_started() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod_yaml(
            "hooked",
            1,
            r#"["sh", "-c", "echo main > /tmp/order; sleep 3600"]"#,
            r#"    lifecycle:
      postStart:
        exec:
          command: ["sh", "-c", "sleep 1; echo postStart >> /tmp/order"]
"#,
            "",
        ),
    );
    running(&c, "hooked");
    // The container was Running only once the hook had finished.
    let order = c.ok(&["exec", "hooked", "--", "cat", "/tmp/order"]);
    assert_eq!(order, "main\npostStart\n");
    let ev = events(&c, "hooked");
    assert!(!ev.contains("FailedPostStartHook"), "{ev}");
}

#[test]
fn a_failing_post_start_hook_kills_and_restarts_the_container() {
    let c = Cluster::start_with_agent(&[]);
    // Every status the pod goes through.
    let mut watch = Command::new("kubectl")
        .args([
            "get",
            "pods",
            "--watch",
            "-o",
            r#"jsonpath={.metadata.name} {.status.containerStatuses[0].state.waiting.reason} {.status.containerStatuses[0].state.waiting.message}{"\n"}"#,
        ])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut watched = watch.stdout.take().unwrap();
    let collected = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = watched.read_to_string(&mut out);
        out
    });
    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod_yaml(
            "badhook",
            1,
            r#"["sleep", "3600"]"#,
            r#"    lifecycle:
      postStart:
        exec:
          command: ["sh", "-c", "echo no luck; exit 3"]
"#,
            "",
        ),
    );
    eventually_blocking(Duration::from_secs(90), "two restarts", || {
        match restarts(&c, "badhook") {
            n if n >= 2 => Ok(()),
            n => Err(format!("{n} restarts; {}", events(&c, "badhook"))),
        }
    });
    let _ = watch.kill();
    let _ = watch.wait();
    let seen = collected.join().unwrap();
    let uid = pod(&c, "badhook")["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let expected = format!(
        r#"badhook PostStartHookError Exec lifecycle hook ([sh -c echo no luck; exit 3]) for Container "app" in Pod "badhook_default({uid})" failed - error: command 'sh -c echo no luck; exit 3' exited with 3: , message: "no luck\n""#
    );
    assert!(
        seen.lines().any(|l| l == expected),
        "{expected}\nin\n{seen}"
    );
    let ev = events(&c, "badhook");
    assert!(ev.contains("FailedPostStartHook"), "{ev}");
    assert!(ev.contains("PostStartHook failed"), "{ev}");
    // The Killing event's message is the reason of the kill.
    assert!(
        ev.lines()
            .any(|l| l.contains("Killing") && l.trim_end().ends_with("FailedPostStartHook")),
        "{ev}"
    );
}

#[test]
fn post_start_http_hooks_reach_their_server_and_a_refused_one_fails() {
    let c = Cluster::start_with_agent(&[]);
    let (port, seen) = http_server();
    let closed = closed_port();
    let manifest = |name: &str, port: u16| {
        let scheme = if name == "fallback" { "HTTPS" } else { "HTTP" };
        let hook = format!(
            "    lifecycle:\n      postStart:\n        httpGet:\n          scheme: {scheme}\n          path: /started?pod={name}\n          port: {port}\n"
        );
        let sleep = r#"["sleep", "3600"]"#;
        pod_yaml(name, 1, sleep, &hook, "  hostNetwork: true\n")
    };
    c.ok_stdin(&["apply", "-f", "-"], &manifest("httphook", port));
    c.ok_stdin(&["apply", "-f", "-"], &manifest("refused", closed));
    c.ok_stdin(&["apply", "-f", "-"], &manifest("fallback", port));
    running(&c, "httphook");
    let requests = seen.lock().unwrap().clone();
    let request = requests
        .iter()
        .find(|r| r.starts_with("GET /started?pod=httphook HTTP/1.1\r\n"))
        .unwrap_or_else(|| panic!("{requests:?}"));
    assert!(
        request.contains("User-Agent: kube-lifecycle/1.32\r\n"),
        "{request}"
    );
    eventually_blocking(Duration::from_secs(60), "a failed httpGet hook", || {
        let ev = events(&c, "refused");
        if ev.contains("FailedPostStartHook") && restarts(&c, "refused") >= 1 {
            Ok(())
        } else {
            Err(ev)
        }
    });
    assert_eq!(restarts(&c, "httphook"), 0);
    // HTTPS answered in plain HTTP: retried so, with a warning.
    running(&c, "fallback");
    let ev = events(&c, "fallback");
    assert!(ev.contains("LifecycleHTTPFallback"), "{ev}");
    assert!(
        ev.contains(&format!(
            ":{port} got HTTP response, retry with HTTP succeeded"
        )),
        "{ev}"
    );
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.starts_with("GET /started?pod=fallback HTTP/1.1\r\n")));
}

#[test]
fn a_pre_stop_exec_hook_runs_before_the_container_is_stopped() {
    let c = Cluster::start_with_agent(&[]);
    let shared = c.dir.path().join("prestop");
    std::fs::create_dir_all(&shared).unwrap();
    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod_yaml(
            "prestop",
            20,
            r#"["sh", "-c", "trap 'echo TERM >> /shared/log; exit 0' TERM; while true; do sleep 0.1; done"]"#,
            &logging_pre_stop(&shared),
            "",
        ),
    );
    running(&c, "prestop");
    c.ok(&["delete", "pod", "prestop", "--wait=true", "--timeout=60s"]);
    let log = std::fs::read_to_string(shared.join("log")).unwrap();
    assert_eq!(log, "preStop\nTERM\n");
    let ev = events(&c, "prestop");
    assert!(!ev.contains("FailedPreStopHook"), "{ev}");
}

#[test]
fn a_failing_pre_stop_hook_is_reported_and_the_container_still_stops() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod_yaml(
            "badstop",
            10,
            TERMINATES,
            "    lifecycle:\n      preStop:\n        exec:\n          command: [\"sh\", \"-c\", \"exit 1\"]\n",
            "",
        ),
    );
    running(&c, "badstop");
    c.ok(&["delete", "pod", "badstop", "--wait=true", "--timeout=60s"]);
    let ev = events(&c, "badstop");
    assert!(ev.contains("FailedPreStopHook"), "{ev}");
    assert!(ev.contains("PreStopHook failed"), "{ev}");
}

#[test]
fn a_pre_stop_sleep_delays_termination_within_the_grace_period() {
    let c = Cluster::start_with_agent(&[]);
    let manifest = |name: &str, grace: u32, pre_stop: &str| {
        let hook = format!("    lifecycle:\n      preStop:\n{pre_stop}");
        pod_yaml(name, grace, TERMINATES, &hook, "")
    };
    c.ok_stdin(
        &["apply", "-f", "-"],
        &manifest("napping", 20, "        sleep:\n          seconds: 4\n"),
    );
    // A hook that would outlast the grace period: SIGKILL ends it.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &manifest(
            "overtime",
            3,
            "        exec:\n          command: [\"sleep\", \"60\"]\n",
        ),
    );
    running(&c, "napping");
    running(&c, "overtime");
    let started = Instant::now();
    c.ok(&["delete", "pod", "napping", "--wait=true", "--timeout=60s"]);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(15),
        "{took:?}"
    );
    let started = Instant::now();
    c.ok(&["delete", "pod", "overtime", "--wait=true", "--timeout=60s"]);
    let took = started.elapsed();
    // The 3 s grace period, then the 2 s SIGTERM always gets.
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(20),
        "{took:?}"
    );
}

#[test]
fn a_container_is_not_running_until_its_post_start_hook_returns() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod_yaml(
            "stuck",
            1,
            r#"["sleep", "3600"]"#,
            "    lifecycle:\n      postStart:\n        exec:\n          command: [\"sleep\", \"3600\"]\n",
            "",
        ),
    );
    eventually_blocking(Duration::from_secs(60), "the container started", || {
        let ev = events(&c, "stuck");
        if ev.contains("Started container app") {
            Ok(())
        } else {
            Err(ev)
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    let p = pod(&c, "stuck");
    assert_eq!(p["status"]["phase"], "Pending", "{}", p["status"]);
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"], "ContainerCreating",
        "{}",
        p["status"]
    );
    // Deleting the pod does not wait for the hook.
    let started = Instant::now();
    c.ok(&["delete", "pod", "stuck", "--wait=true", "--timeout=60s"]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_liveness_restart_runs_the_pre_stop_hook_first() {
    let c = Cluster::start_with_agent(&[]);
    let shared = c.dir.path().join("liveness");
    std::fs::create_dir_all(&shared).unwrap();
    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod_yaml(
            "unwell",
            20,
            r#"["sh", "-c", "trap 'echo TERM >> /shared/log; exit 0' TERM; touch /tmp/healthy; sleep 2; rm /tmp/healthy; while true; do sleep 0.1; done"]"#,
            &format!(
                r#"    livenessProbe:
      exec:
        command: ["cat", "/tmp/healthy"]
      periodSeconds: 1
      failureThreshold: 1
{}"#,
                logging_pre_stop(&shared)
            ),
            "",
        ),
    );
    eventually_blocking(
        Duration::from_secs(90),
        "a liveness restart",
        || match restarts(&c, "unwell") {
            n if n >= 1 => Ok(()),
            n => Err(format!("{n} restarts; {}", events(&c, "unwell"))),
        },
    );
    let log = std::fs::read_to_string(shared.join("log")).unwrap();
    assert!(log.starts_with("preStop\nTERM\n"), "{log:?}");
}

#[test]
fn force_deletion_does_not_wait_for_a_pre_stop_hook() {
    let c = Cluster::start_with_agent(&[]);
    let hook =
        "    lifecycle:\n      preStop:\n        exec:\n          command: [\"sleep\", \"120\"]\n";
    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod_yaml("lingering", 120, TERMINATES, hook, ""),
    );
    running(&c, "lingering");
    c.ok(&["delete", "pod", "lingering", "--wait=false"]);
    eventually_blocking(Duration::from_secs(30), "the Killing event", || {
        let ev = events(&c, "lingering");
        if ev.contains("Stopping container app") {
            Ok(())
        } else {
            Err(ev)
        }
    });
    let started = Instant::now();
    c.ok(&["delete", "pod", "lingering", "--grace-period=0", "--force"]);
    eventually_blocking(Duration::from_secs(30), "no containers left", || {
        match c.runc_ids() {
            ids if ids.is_empty() => Ok(()),
            ids => Err(format!("{ids:?}")),
        }
    });
    assert!(started.elapsed() < Duration::from_secs(30));
}
