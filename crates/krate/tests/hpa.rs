//! The HorizontalPodAutoscaler controller through a real `krate server`
//! with simulated nodes: targets outside [min, max] are brought inside, and
//! with no metrics for their pods (simulated nodes run no containers to
//! measure) the conditions and events say why nothing else happens, as
//! `kubectl describe hpa` shows them.

mod support;

use std::time::Duration;

use support::{eventually_blocking, Cluster};

const WAIT: Duration = Duration::from_secs(45);

fn field(c: &Cluster, kind: &str, name: &str, path: &str) -> String {
    let out = c.kubectl(&["get", kind, name, "-o", &format!("jsonpath={path}")]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_field(c: &Cluster, kind: &str, name: &str, path: &str, want: &str) {
    eventually_blocking(WAIT, &format!("{kind}/{name} {path} = {want}"), || {
        let got = field(c, kind, name, path);
        if got == want {
            Ok(())
        } else {
            Err(format!("got {got:?}"))
        }
    })
}

fn hpa(name: &str, min: i32, max: i32) -> String {
    format!(
        r#"{{"apiVersion":"autoscaling/v2","kind":"HorizontalPodAutoscaler","metadata":{{"name":"{name}"}},"spec":{{"scaleTargetRef":{{"apiVersion":"apps/v1","kind":"Deployment","name":"{name}"}},"minReplicas":{min},"maxReplicas":{max},"metrics":[{{"type":"Resource","resource":{{"name":"cpu","target":{{"type":"Utilization","averageUtilization":50}}}}}}]}}}}"#
    )
}

/// The words of `line`, joined by single spaces.
fn words(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn hpa_brings_its_target_into_min_max_and_reports_pods_without_metrics() {
    let c = Cluster::start_with(&["--simulated-nodes", "2"]);
    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=1",
    ]);
    c.ok(&[
        "create",
        "deployment",
        "big",
        "--image=busybox",
        "--replicas=6",
    ]);
    // Written as autoscaling/v2: the API server does not convert
    // autoscaling/v1 objects (what `kubectl autoscale` sends) yet.
    for (name, min, max) in [("web", 3, 5), ("big", 1, 4)] {
        c.ok_stdin(&["create", "-f", "-"], &hpa(name, min, max));
    }

    wait_field(&c, "deployment", "web", "{.spec.replicas}", "3");
    wait_field(&c, "deployment", "big", "{.spec.replicas}", "4");
    wait_field(&c, "hpa", "web", "{.status.desiredReplicas}", "3");
    assert_eq!(field(&c, "hpa", "web", "{.status.currentReplicas}"), "1");
    assert!(!field(&c, "hpa", "web", "{.status.lastScaleTime}").is_empty());

    // The next sync (15 s later) finds no metrics for the pods.
    let describe = eventually_blocking(WAIT, "ScalingActive False in describe", || {
        let out = c.ok(&["describe", "hpa", "web"]);
        if out.contains("FailedGetResourceMetric") && out.contains("ScalingActive") {
            Ok(out)
        } else {
            Err(out)
        }
    });
    let lines: Vec<String> = describe.lines().map(words).collect();
    let line = |prefix: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .cloned()
            .unwrap_or_else(|| panic!("no {prefix:?} line in\n{describe}"))
    };
    assert_eq!(line("Min replicas:"), "Min replicas: 3");
    assert_eq!(line("Max replicas:"), "Max replicas: 5");
    assert!(
        line("AbleToScale").starts_with("AbleToScale True"),
        "{describe}"
    );
    assert_eq!(
        line("ScalingActive"),
        "ScalingActive False FailedGetResourceMetric the HPA was unable to compute the replica count: \
         unable to get metrics for resource cpu: no metrics returned from resource metrics API"
    );
    assert!(
        describe.contains("New size: 3; reason: Current number of replicas below Spec.MinReplicas"),
        "{describe}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Normal SuccessfulRescale")
                && l.contains("horizontal-pod-autoscaler")),
        "{describe}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("Warning FailedComputeMetricsReplicas")
            && l.ends_with(
                "invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: \
                 failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned \
                 from resource metrics API"
            )),
        "{describe}"
    );

    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=big",
        "-o",
        "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    ]);
    assert!(
        events.contains("SuccessfulRescale: New size: 4; reason: Current number of replicas above Spec.MaxReplicas"),
        "{events}"
    );
}
