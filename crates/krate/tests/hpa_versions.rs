//! HorizontalPodAutoscalers served at autoscaling/v1 and v2 from one stored
//! object: `kubectl autoscale` writes v1, the HPA controller reads and
//! writes v2, and each client sees its own version's shape.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{eventually_blocking, Cluster};

const WAIT: Duration = Duration::from_secs(45);

fn json(c: &Cluster, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&c.ok(&a)).expect("kubectl printed JSON")
}

#[test]
fn kubectl_autoscale_makes_an_hpa_the_controller_reconciles() {
    let c = Cluster::start_with(&["--simulated-nodes", "1"]);
    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=1",
    ]);
    let out = c.ok(&[
        "autoscale",
        "deployment",
        "web",
        "--min=2",
        "--max=5",
        "--cpu-percent=80",
    ]);
    assert!(
        out.contains("horizontalpodautoscaler.autoscaling/web autoscaled"),
        "{out}"
    );

    // The controller (an autoscaling/v2 client) clamps the target up to min.
    eventually_blocking(WAIT, "deployment scaled to --min", || {
        let got = c.ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.replicas}",
        ]);
        if got == "2" {
            Ok(())
        } else {
            Err(got)
        }
    });

    let table = c.ok(&["get", "hpa", "web"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "REFERENCE",
            "TARGETS",
            "MINPODS",
            "MAXPODS",
            "REPLICAS",
            "AGE"
        ]
    );
    assert!(
        table.contains("Deployment/web   cpu: <unknown>/80%   2         5"),
        "{table}"
    );

    let v2 = json(
        &c,
        &["get", "horizontalpodautoscalers.v2.autoscaling", "web"],
    );
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        80
    );
    assert!(v2["metadata"].get("annotations").is_none(), "{v2}");

    // v1 keeps what it has no fields for in annotations, conditions among
    // them once the controller has written status.
    let v1 = eventually_blocking(WAIT, "v1 conditions annotation", || {
        let v1 = json(
            &c,
            &["get", "horizontalpodautoscalers.v1.autoscaling", "web"],
        );
        if v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/conditions"].is_string() {
            Ok(v1)
        } else {
            Err(v1.to_string())
        }
    });
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 80);
    assert_eq!(v1["spec"]["minReplicas"], 2);
    assert!(v1["spec"].get("metrics").is_none());
    assert_eq!(v1["status"]["desiredReplicas"], 2);

    // Writes through v1 (patch, apply, replace) land in the stored v2
    // object.
    c.ok(&[
        "patch",
        "horizontalpodautoscalers.v1.autoscaling",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"targetCPUUtilizationPercentage":60}}"#,
    ]);
    let v2 = json(
        &c,
        &["get", "horizontalpodautoscalers.v2.autoscaling", "web"],
    );
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        60
    );
    let applied = r#"{"apiVersion":"autoscaling/v1","kind":"HorizontalPodAutoscaler","metadata":{"name":"web"},"spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"},"minReplicas":3,"maxReplicas":5,"targetCPUUtilizationPercentage":70}}"#;
    c.ok_stdin(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        applied,
    );
    let v2 = json(&c, &["get", "hpa", "web"]);
    assert_eq!(v2["spec"]["minReplicas"], 3);
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        70
    );
    eventually_blocking(WAIT, "deployment scaled to the new min", || {
        let got = c.ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.replicas}",
        ]);
        if got == "3" {
            Ok(())
        } else {
            Err(got)
        }
    });
}
