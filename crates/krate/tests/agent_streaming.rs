//! kubectl logs, exec, attach, cp and port-forward on real containers of
//! `krate server`'s own agent: kubectl → API server → kubelet API → runc.
//! Root only; in the nextest group `agent` (one at a time).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{eventually_blocking, Cluster, BUSYBOX};

fn pod_json(c: &Cluster, name: &str) -> Value {
    serde_json::from_str(&c.ok(&["get", "pod", name, "-o", "json"])).unwrap()
}

fn apply(c: &Cluster, manifest: &str) {
    c.ok_stdin(&["apply", "-f", "-"], manifest);
}

/// A pod of one busybox container `app` running `script`.
fn pod(name: &str, restart: &str, script: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {restart}
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", {script:?}]
"#
    )
}

/// [`pod`] whose container has a stdin that the first attach ends.
fn stdin_once_pod(name: &str, restart: &str, script: &str) -> String {
    pod(name, restart, script) + "    stdin: true\n    stdinOnce: true\n"
}

fn wait_running(c: &Cluster, name: &str) -> Value {
    eventually_blocking(
        Duration::from_secs(90),
        &format!("pod {name} Running"),
        || {
            let p = pod_json(c, name);
            let running = p["status"]["phase"] == "Running"
                && p["status"]["containerStatuses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .all(|s| s["state"]["running"].is_object());
            if running {
                Ok(p)
            } else {
                Err(format!("{}", p["status"]))
            }
        },
    )
}

/// kubectl with `args`, stdin from `input`, killed after `within`.
fn kubectl_within(c: &Cluster, args: &[&str], input: Option<&str>, within: Duration) -> Output {
    let mut child = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.dir.path())
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running kubectl");
    if let Some(input) = input {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
    }
    wait_output(child, within, &args.join(" "))
}

fn wait_output(mut child: Child, within: Duration, what: &str) -> Output {
    let deadline = Instant::now() + within;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} did not finish within {within:?}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn kubectl_logs_reads_real_container_output() {
    let c = Cluster::start_with_agent(&[]);
    apply(
        &c,
        &pod(
            "logger",
            "Always",
            // stdout and stderr are separate pipes: the pause orders them in the log.
            "for i in 1 2 3; do echo line $i; done; sleep 0.5; echo to-stderr >&2; sleep 3600",
        ),
    );
    wait_running(&c, "logger");
    let all = eventually_blocking(Duration::from_secs(20), "the logger's lines", || {
        let out = c.ok(&["logs", "logger"]);
        if out.contains("to-stderr") {
            Ok(out)
        } else {
            Err(out)
        }
    });
    assert_eq!(all, "line 1\nline 2\nline 3\nto-stderr\n");
    // The same through nodes/proxy, straight to the kubelet API.
    let node = c.ok(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);
    assert_eq!(
        c.ok(&[
            "get",
            "--raw",
            &format!("/api/v1/nodes/{node}/proxy/containerLogs/default/logger/app?tailLines=2"),
        ]),
        "line 3\nto-stderr\n"
    );
    assert_eq!(
        c.ok(&["logs", "logger", "-c", "app", "--tail=1"]),
        "to-stderr\n"
    );
    assert_eq!(c.ok(&["logs", "logger", "--limit-bytes=4"]), "line");
    assert_eq!(c.ok(&["logs", "logger", "--since=1h"]), all);
    let stamped = c.ok(&["logs", "logger", "--timestamps", "--tail=1"]);
    let (time, text) = stamped.split_once(' ').unwrap();
    assert_eq!(text, "to-stderr\n");
    assert!(
        chrono_like(time),
        "an RFC 3339 time with nanoseconds: {stamped}"
    );

    // -f follows until the container exits.
    apply(&c, &pod("short", "Never", "echo start; sleep 2; echo end"));
    wait_running(&c, "short");
    let out = kubectl_within(&c, &["logs", "-f", "short"], None, Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "start\nend\n");

    // --previous: the attempt before the restart.
    apply(
        &c,
        &pod(
            "restarter",
            "Always",
            "echo run at $(date +%s%N); sleep 1; exit 1",
        ),
    );
    eventually_blocking(Duration::from_secs(90), "a restart", || {
        let p = pod_json(&c, "restarter");
        let restarts = p["status"]["containerStatuses"][0]["restartCount"]
            .as_i64()
            .unwrap_or(0);
        if restarts >= 1 {
            Ok(())
        } else {
            Err(format!("{}", p["status"]))
        }
    });
    let previous = c.ok(&["logs", "restarter", "--previous"]);
    assert!(previous.starts_with("run at "), "{previous}");

    // Upstream's refusals.
    let err = c.fails(&["logs", "logger", "-c", "nope"]);
    assert!(
        err.contains("container nope is not valid for pod logger"),
        "{err}"
    );
    let err = c.fails(&["logs", "logger", "--previous"]);
    assert!(
        err.contains("previous terminated container \"app\" in pod \"logger\" not found"),
        "{err}"
    );
    apply(
        &c,
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: two
spec:
  containers:
  - name: a
    image: {BUSYBOX}
    command: ["sleep", "3600"]
  - name: b
    image: krate.test/not-here:1
    imagePullPolicy: Never
"#
        ),
    );
    let err = eventually_blocking(Duration::from_secs(60), "b waiting", || {
        let out = c.kubectl(&["logs", "two", "-c", "b"]);
        let err = stderr(&out);
        if err.contains("is waiting to start") {
            Ok(err)
        } else {
            Err(err)
        }
    });
    assert!(
        err.contains("container \"b\" in pod \"two\" is waiting to start: ErrImageNeverPull"),
        "{err}"
    );
    let err = c.fails(&["exec", "two", "-c", "b", "--", "true"]);
    assert!(
        err.contains("unable to upgrade connection: container not found (\"b\")"),
        "{err}"
    );
    let err = c.fails(&["get", "--raw", "/api/v1/namespaces/default/pods/two/log"]);
    assert!(
        err.contains("a container name must be specified for pod two, choose one of: [a b]"),
        "{err}"
    );
}

/// `2024-05-01T10:00:00.123456789Z`
fn chrono_like(t: &str) -> bool {
    t.len() == 30 && t.ends_with('Z') && t.as_bytes()[10] == b'T' && t.as_bytes()[19] == b'.'
}

#[test]
fn kubectl_exec_attach_and_cp_on_a_real_container() {
    let c = Cluster::start_with_agent(&[]);
    apply(&c, &pod("box", "Always", "mkdir -p /tmp; sleep 3600"));
    wait_running(&c, "box");
    let t = Duration::from_secs(30);

    let out = kubectl_within(
        &c,
        &["exec", "box", "--", "sh", "-c", "echo hi; exit 3"],
        None,
        t,
    );
    assert_eq!(stdout(&out), "hi\n", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(3));

    let out = kubectl_within(
        &c,
        &["exec", "-i", "box", "--", "sh", "-c", "tr a-z A-Z"],
        Some("from stdin\n"),
        t,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "FROM STDIN\n");

    // -it through a pseudo-terminal that `script` provides.
    let kubeconfig = c.kubeconfig.display().to_string();
    let out = Command::new("script")
        .args([
            "-qec",
            &format!(
                "stty rows 40 cols 100; KUBECONFIG={kubeconfig} kubectl exec -it box -- sh -c 'tty; sleep 1; stty size'"
            ),
            "/dev/null",
        ])
        .env("HOME", c.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(out, t, "kubectl exec -it");
    let text = stdout(&out);
    assert!(
        text.contains("/dev/pts/"),
        "a terminal in the container: {text}"
    );
    assert!(
        text.contains("40 100"),
        "the terminal's size reaches the container: {text}"
    );
    // The same over SPDY, as kubectl up to 1.29 speaks it.
    let out = Command::new("script")
        .args([
            "-qec",
            &format!(
                "stty rows 30 cols 90; KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false KUBECONFIG={kubeconfig} kubectl exec -it box -- sh -c 'tty; sleep 1; stty size'"
            ),
            "/dev/null",
        ])
        .env("HOME", c.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(out, t, "kubectl exec -it over SPDY");
    let text = stdout(&out);
    assert!(
        text.contains("/dev/pts/") && text.contains("30 90"),
        "a terminal of the client's size over SPDY: {text}"
    );

    // cp: tar over exec, both ways.
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("up.txt");
    std::fs::write(&local, "to the pod\n").unwrap();
    c.ok(&["cp", &local.display().to_string(), "box:/tmp/up.txt"]);
    let out = kubectl_within(&c, &["exec", "box", "--", "cat", "/tmp/up.txt"], None, t);
    assert_eq!(stdout(&out), "to the pod\n");
    kubectl_within(
        &c,
        &[
            "exec",
            "box",
            "--",
            "sh",
            "-c",
            "echo from the pod > /tmp/down.txt",
        ],
        None,
        t,
    );
    let down = work.path().join("down.txt");
    c.ok(&["cp", "box:/tmp/down.txt", &down.display().to_string()]);
    assert_eq!(std::fs::read_to_string(&down).unwrap(), "from the pod\n");

    // attach: the container's own stdin and stdout.
    apply(
        &c,
        &stdin_once_pod("reader", "Never", "read line; echo got $line"),
    );
    wait_running(&c, "reader");
    let out = kubectl_within(&c, &["attach", "-i", "reader"], Some("hello\n"), t);
    assert!(
        stdout(&out).contains("got hello"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// `<prefix>"<64 hex>"<suffix>`: a message naming a random exec ID.
fn with_exec_id(text: &str, prefix: &str, suffix: &str) -> bool {
    text.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(suffix))
        .and_then(|id| id.strip_prefix('"')?.strip_suffix('"'))
        .is_some_and(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn kubectl_exec_of_a_missing_command_is_an_internal_error_as_containerd_reports_it() {
    let c = Cluster::start_with_agent(&[]);
    apply(&c, &pod("box", "Always", "sleep 3600"));
    wait_running(&c, "box");
    let t = Duration::from_secs(30);
    let prefix = "error: Internal error occurred: error executing command in container: \
                  failed to exec in container: failed to start exec ";
    let missing = ": OCI runtime exec failed: exec failed: unable to start container process: \
                   exec: \"nope\": executable file not found in $PATH: unknown\n";
    for args in [
        &["exec", "box", "--", "nope"][..],
        &["exec", "-i", "box", "--", "nope", "arg"][..],
    ] {
        let out = kubectl_within(&c, args, Some(""), t);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert_eq!(stdout(&out), "");
        assert!(
            with_exec_id(&stderr(&out), prefix, missing),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // The same words over SPDY, and for a file that is not executable.
    let out = Command::new("kubectl")
        .args(["exec", "box", "--", "/etc/passwd"])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.dir.path())
        .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        with_exec_id(
            &stderr(&out),
            prefix,
            ": OCI runtime exec failed: exec failed: unable to start container process: \
             exec: \"/etc/passwd\": permission denied: unknown\n"
        ),
        "{}",
        stderr(&out)
    );
    // A command that runs keeps its own output and exit code.
    let out = kubectl_within(
        &c,
        &["exec", "box", "--", "sh", "-c", "echo oops >&2; exit 255"],
        None,
        t,
    );
    assert_eq!(
        stderr(&out),
        "oops\ncommand terminated with exit code 255\n"
    );
    assert_eq!(out.status.code(), Some(255));
}

/// `kubectl attach -i POD` fed `input`, stopped once its output has
/// `eofs` lines saying `eof`; returns that output.
fn attach_until(c: &Cluster, pod: &str, input: &str, eofs: usize) -> String {
    let mut child = Command::new("kubectl")
        .args(["attach", "-i", pod])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("running kubectl attach");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = String::new();
    while seen.matches("eof").count() < eofs {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("kubectl attach -i {pod}: not {eofs} eof lines in {seen:?}");
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    seen
}

#[test]
fn stdin_once_closes_the_containers_stdin_when_the_first_attach_ends() {
    let c = Cluster::start_with_agent(&[]);
    apply(
        &c,
        &stdin_once_pod(
            "once",
            "Always",
            "n=0; while true; do if read l; then echo got $l; else n=$((n+1)); echo eof $n; sleep 1; fi; done",
        ),
    );
    wait_running(&c, "once");
    // The first attach writes a line and ends its stdin: the container
    // reads the line, then end of file.
    let seen = attach_until(&c, "once", "one\n", 1);
    assert!(seen.contains("got one"), "{seen}");
    // A later attach still gets the output, but its stdin reaches nothing.
    let seen = attach_until(&c, "once", "two\n", 2);
    assert!(!seen.contains("got two"), "{seen}");
    let logs = c.ok(&["logs", "once"]);
    assert!(logs.starts_with("got one\neof 1\n"), "{logs}");
    assert!(!logs.contains("got two"), "{logs}");
    assert_eq!(
        pod_json(&c, "once")["status"]["containerStatuses"][0]["restartCount"],
        0
    );
}

#[test]
fn without_stdin_once_an_attach_ends_with_its_stdin_and_the_containers_stays_open() {
    let c = Cluster::start_with_agent(&[]);
    apply(
        &c,
        &(pod(
            "keep",
            "Always",
            "while read l; do echo got $l; done; echo eof; sleep 3600",
        ) + "    stdin: true\n"),
    );
    wait_running(&c, "keep");
    let t = Duration::from_secs(30);
    for line in ["one", "two"] {
        // kubectl's stdin ends after the line: so does the attach.
        let out = kubectl_within(&c, &["attach", "-i", "keep"], Some(&format!("{line}\n")), t);
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        let want = format!("got {line}\n");
        eventually_blocking(t, &want, || {
            let logs = c.ok(&["logs", "keep"]);
            logs.contains(&want).then_some(()).ok_or(logs)
        });
    }
    assert!(!c.ok(&["logs", "keep"]).contains("eof"));
}

#[test]
fn kubectl_run_attaches_to_the_new_pod() {
    let c = Cluster::start_with_agent(&[]);
    let t = Duration::from_secs(90);
    let out = kubectl_within(
        &c,
        &[
            "run",
            "-i",
            "--rm",
            "--restart=Never",
            "once",
            &format!("--image={BUSYBOX}"),
            "--",
            "sh",
            "-c",
            "read line; echo got $line",
        ],
        Some("typed\n"),
        t,
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("got typed"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // A terminal: kubectl run -it, driven through script's pty.
    let kubeconfig = c.kubeconfig.display().to_string();
    let child = Command::new("script")
        .args([
            "-qec",
            &format!(
                "KUBECONFIG={kubeconfig} kubectl run -it --rm --restart=Never tty --image={BUSYBOX} -- sh -c 'sleep 1; tty; echo done'"
            ),
            "/dev/null",
        ])
        .env("HOME", c.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, t, "kubectl run -it");
    let text = stdout(&out);
    assert!(
        text.contains("/dev/pts/") && text.contains("done"),
        "{text}{}",
        stderr(&out)
    );
}

#[test]
fn kubectl_port_forward_reaches_busybox_httpd() {
    let c = Cluster::start_with_agent(&[]);
    apply(
        &c,
        &pod(
            "web",
            "Always",
            "mkdir -p /www && echo hello from httpd > /www/index.html && exec httpd -f -p 80 -h /www",
        ),
    );
    wait_running(&c, "web");
    let local_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("kubectl")
        .args(["port-forward", "pod/web", &format!("{local_port}:80")])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let _child = Kill(child);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("Forwarding from 127.0.0.1"), "{line}");
    let answer = eventually_blocking(Duration::from_secs(20), "httpd through the forward", || {
        let mut conn =
            std::net::TcpStream::connect(("127.0.0.1", local_port)).map_err(|e| e.to_string())?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        conn.read_to_string(&mut answer)
            .map_err(|e| e.to_string())?;
        if answer.contains("hello from httpd") {
            Ok(answer)
        } else {
            Err(answer)
        }
    });
    assert!(answer.starts_with("HTTP/1."), "{answer}");
}
