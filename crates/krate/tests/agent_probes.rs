//! Container probes on real containers: a failing liveness probe restarts
//! the container with upstream's events, readiness decides the Ready
//! condition (httpGet, tcpSocket), and a startup probe holds both back.
//! Root only; in the nextest group `agent`.

mod support;

use std::time::Duration;

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

fn ready(p: &Value) -> Option<&str> {
    p["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?["status"]
        .as_str()
}

#[test]
fn a_failing_liveness_probe_restarts_the_container() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: live
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 3600"]
    livenessProbe:
      exec:
        command: ["cat", "/tmp/healthy"]
      periodSeconds: 1
      failureThreshold: 2
"#
        ),
    );
    eventually_blocking(
        Duration::from_secs(90),
        "a restart after the liveness probe failed",
        || {
            let p = pod(&c, "live");
            if p["status"]["containerStatuses"][0]["restartCount"].as_i64() >= Some(1) {
                Ok(())
            } else {
                Err(format!("{}", p["status"]))
            }
        },
    );
    let ev = events(&c, "live");
    assert!(
        ev.contains("Liveness probe failed: cat: can't open '/tmp/healthy'"),
        "{ev}"
    );
    assert!(
        ev.contains("Container app failed liveness probe, will be restarted"),
        "{ev}"
    );
}

#[test]
fn readiness_probes_decide_the_ready_condition() {
    let c = Cluster::start_with_agent(&[]);
    let manifest = |name: &str, probe: &str| {
        format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: {BUSYBOX}
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports:
    - name: http
      containerPort: 8080
    readinessProbe:
{probe}      periodSeconds: 1
"#
        )
    };
    c.ok_stdin(
        &["apply", "-f", "-"],
        &manifest(
            "httpok",
            "      httpGet:\n        path: /index.html\n        port: http\n",
        ),
    );
    c.ok_stdin(
        &["apply", "-f", "-"],
        &manifest(
            "http404",
            "      httpGet:\n        path: /missing\n        port: 8080\n",
        ),
    );
    c.ok_stdin(
        &["apply", "-f", "-"],
        &manifest("tcpclosed", "      tcpSocket:\n        port: 9999\n"),
    );
    eventually_blocking(Duration::from_secs(30), "httpok Ready", || {
        let p = pod(&c, "httpok");
        match ready(&p) {
            Some("True") => Ok(()),
            _ => Err(format!("{}\n{}", p["status"], events(&c, "httpok"))),
        }
    });
    for (name, why) in [
        (
            "http404",
            "Readiness probe failed: HTTP probe failed with statuscode: 404",
        ),
        ("tcpclosed", "connect: connection refused"),
    ] {
        eventually_blocking(
            Duration::from_secs(60),
            &format!("{name} Running and not Ready with an event"),
            || {
                let p = pod(&c, name);
                let running = p["status"]["phase"] == "Running";
                let ev = events(&c, name);
                if running && ready(&p) == Some("False") && ev.contains(why) {
                    Ok(())
                } else {
                    Err(format!("{} {ev}", p["status"]))
                }
            },
        );
    }
    let p = pod(&c, "http404");
    assert_eq!(p["status"]["containerStatuses"][0]["ready"], false);
    let cond = p["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "ContainersReady")
        .unwrap()
        .clone();
    assert_eq!(cond["message"], "containers with unready status: [web]");
}
