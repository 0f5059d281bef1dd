//! Per-kind write rules of the API server as kubectl sees them: what a
//! status update may change, and the DaemonSet template generation.

mod support;

use std::time::Duration;

use support::{eventually_blocking, Cluster};

const WAIT: Duration = Duration::from_secs(30);

fn jsonpath(c: &Cluster, what: &[&str], path: &str) -> String {
    let mut args = vec!["get"];
    args.extend(what);
    let p = format!("jsonpath={path}");
    args.extend(["-o", &p]);
    c.ok(&args)
}

#[test]
fn deployment_status_updates_write_annotations_but_not_labels() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "web", "--image=busybox"]);
    c.ok(&[
        "patch",
        "deployment",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"metadata":{"annotations":{"note":"from-status"},"labels":{"app":"changed"}},"spec":{"replicas":7}}"#,
    ]);
    assert_eq!(
        jsonpath(&c, &["deployment", "web"], "{.metadata.annotations.note}"),
        "from-status"
    );
    assert_eq!(
        jsonpath(&c, &["deployment", "web"], "{.metadata.labels.app}"),
        "web"
    );
    assert_eq!(
        jsonpath(&c, &["deployment", "web"], "{.spec.replicas}"),
        "1"
    );
}

const DAEMONSET: &str = r#"{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"agent"},"spec":{"selector":{"matchLabels":{"app":"agent"}},"template":{"metadata":{"labels":{"app":"agent"}},"spec":{"containers":[{"name":"agent","image":"busybox"}]}}}}"#;

#[test]
fn daemonset_template_generation_annotation_follows_template_changes() {
    let c = Cluster::start_with(&["--simulated-nodes", "1"]);
    c.ok_stdin(&["create", "-f", "-"], DAEMONSET);
    let annotation = "{.metadata.annotations.deprecated\\.daemonset\\.template\\.generation}";
    assert_eq!(jsonpath(&c, &["daemonset", "agent"], annotation), "1");
    eventually_blocking(WAIT, "pod labelled with its template generation", || {
        let got = jsonpath(
            &c,
            &["pods", "-l", "app=agent"],
            "{.items[*].metadata.labels.pod-template-generation}",
        );
        if got == "1" {
            Ok(())
        } else {
            Err(got)
        }
    });

    // Clients cannot set it; a template change bumps it with the generation.
    c.ok(&[
        "annotate",
        "daemonset",
        "agent",
        "--overwrite",
        "deprecated.daemonset.template.generation=9",
    ]);
    assert_eq!(jsonpath(&c, &["daemonset", "agent"], annotation), "1");
    c.ok(&["set", "image", "daemonset/agent", "agent=busybox:1.36"]);
    assert_eq!(jsonpath(&c, &["daemonset", "agent"], annotation), "2");
    assert_eq!(
        jsonpath(&c, &["daemonset", "agent"], "{.metadata.generation}"),
        "2"
    );
    eventually_blocking(WAIT, "pod replaced at the new template generation", || {
        let got = jsonpath(
            &c,
            &["pods", "-l", "app=agent"],
            "{.items[*].metadata.labels.pod-template-generation}",
        );
        if got == "2" {
            Ok(())
        } else {
            Err(got)
        }
    });
}
