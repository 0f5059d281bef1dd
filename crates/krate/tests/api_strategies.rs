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

#[test]
fn the_ephemeral_containers_subresource_only_adds_ephemeral_containers() {
    let c = Cluster::start();
    c.ok_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"app","labels":{"a":"b"}},"spec":{"containers":[{"name":"main","image":"busybox"}]}}"#,
    );
    let patch_as = |pod: &str, kind: &str, body: &str| {
        c.kubectl(&[
            "patch",
            "pod",
            pod,
            "--subresource=ephemeralcontainers",
            &format!("--type={kind}"),
            "-p",
            body,
        ])
    };
    let patch = |body: &str| patch_as("app", "strategic", body);
    // Only the ephemeral containers change; the rest of the request is
    // dropped; the new container gets the container defaults.
    let out = patch(
        r#"{"metadata":{"labels":{"a":"changed"}},"spec":{"activeDeadlineSeconds":5,"ephemeralContainers":[{"name":"debugger","image":"busybox","targetContainerName":"main","stdin":true}]}}"#,
    );
    assert!(out.status.success(), "{out:?}");
    let ec: serde_json::Value = serde_json::from_str(&jsonpath(
        &c,
        &["pod", "app"],
        "{.spec.ephemeralContainers[0]}",
    ))
    .unwrap();
    assert_eq!(ec["name"], "debugger");
    assert_eq!(ec["targetContainerName"], "main");
    assert_eq!(ec["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(ec["terminationMessagePolicy"], "File");
    assert_eq!(ec["imagePullPolicy"], "Always");
    assert_eq!(jsonpath(&c, &["pod", "app"], "{.metadata.labels.a}"), "b");
    assert_eq!(
        jsonpath(&c, &["pod", "app"], "{.spec.activeDeadlineSeconds}"),
        ""
    );
    // GET on the subresource answers the pod.
    let got = c.ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/pods/app/ephemeralcontainers",
    ]);
    assert!(got.contains(r#""name":"debugger""#), "{got}");

    // Upstream's refusals, naming the field. (A strategic merge patch
    // without `$setElementOrder` puts new list items first.)
    let err = |out: std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();
    let e = err(patch(
        r#"{"spec":{"ephemeralContainers":[{"name":"ports","image":"busybox","ports":[{"containerPort":80}]}]}}"#,
    ));
    assert!(
        e.contains("spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container"),
        "{e}"
    );
    let e = err(patch(
        r#"{"spec":{"ephemeralContainers":[{"name":"main","image":"busybox"}]}}"#,
    ));
    assert!(
        e.contains(r#"spec.ephemeralContainers[0].name: Duplicate value: "main""#),
        "{e}"
    );
    let e = err(patch(
        r#"{"spec":{"ephemeralContainers":[{"name":"lost","image":"busybox","targetContainerName":"nope"}]}}"#,
    ));
    assert!(
        e.contains(r#"spec.ephemeralContainers[0].targetContainerName: Not found: "nope""#),
        "{e}"
    );
    let e = err(patch(
        r#"{"spec":{"ephemeralContainers":[{"name":"debugger","image":"alpine","targetContainerName":"main","stdin":true}]}}"#,
    ));
    assert!(
        e.contains(r#"spec.ephemeralContainers: Forbidden: existing ephemeral containers "debugger" may not be changed"#),
        "{e}"
    );
    let e = err(patch_as(
        "app",
        "json",
        r#"[{"op":"remove","path":"/spec/ephemeralContainers/0"}]"#,
    ));
    assert!(
        e.contains(r#"spec.ephemeralContainers: Forbidden: existing ephemeral containers "debugger" may not be removed"#),
        "{e}"
    );
    // The pod itself may not change its ephemeral containers.
    let e = err(c.kubectl(&[
        "patch",
        "pod",
        "app",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/ephemeralContainers/-","value":{"name":"direct","image":"busybox"}}]"#,
    ]));
    assert!(
        e.contains("spec: Forbidden: pod updates may not change fields other than"),
        "{e}"
    );
    assert_eq!(
        jsonpath(&c, &["pod", "app"], "{.spec.ephemeralContainers[*].name}"),
        "debugger"
    );
    // A static pod's mirror takes none.
    c.ok_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"static","annotations":{"kubernetes.io/config.mirror":"abc"}},"spec":{"nodeName":"n1","containers":[{"name":"main","image":"busybox"}]}}"#,
    );
    let e = err(patch_as(
        "static",
        "strategic",
        r#"{"spec":{"ephemeralContainers":[{"name":"debugger","image":"busybox"}]}}"#,
    ));
    assert!(
        e.contains("Forbidden: static pods do not support ephemeral containers"),
        "{e}"
    );
}
