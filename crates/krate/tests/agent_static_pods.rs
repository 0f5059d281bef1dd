//! Static pods from `--pod-manifest-path`: a manifest becomes a running pod
//! `<name>-<node>` controlled by the Node; removing the file removes it.
//! Root only; in the nextest group `agent`.

mod support;

use std::time::Duration;

use support::{eventually_blocking, Cluster, BUSYBOX};

#[test]
fn a_static_pod_manifest_runs_as_a_pod_controlled_by_the_node() {
    let manifests = tempfile::tempdir().unwrap();
    let file = manifests.path().join("static-web.yaml");
    std::fs::write(
        &file,
        format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: static-web
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: {BUSYBOX}
    command: ["sleep", "3600"]
"#
        ),
    )
    .unwrap();
    let c = Cluster::start_with_agent(&[
        "--pod-manifest-path",
        &manifests.path().display().to_string(),
    ]);
    let node = eventually_blocking(Duration::from_secs(60), "the node", || {
        let out = c.ok(&["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]);
        if out.trim().is_empty() {
            Err("no node".to_string())
        } else {
            Ok(out.trim().to_string())
        }
    });
    let name = format!("static-web-{node}");
    eventually_blocking(Duration::from_secs(60), "the static pod Running", || {
        let out = c.kubectl(&["get", "pod", &name, "-o", "jsonpath={.status.phase}"]);
        match String::from_utf8_lossy(&out.stdout).as_ref() {
            "Running" => Ok(()),
            other => Err(format!("{other} {}", String::from_utf8_lossy(&out.stderr))),
        }
    });
    let describe = c.ok(&["describe", "pod", &name]);
    assert!(
        describe.contains(&format!("Controlled By:  Node/{node}")),
        "{describe}"
    );
    assert!(
        describe.contains("kubernetes.io/config.source: file"),
        "{describe}"
    );
    std::fs::remove_file(&file).unwrap();
    eventually_blocking(Duration::from_secs(60), "the static pod gone", || {
        let out = c.kubectl(&["get", "pod", &name]);
        if !out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stdout).into_owned())
        }
    });
}
