//! The runtime against real runc (root): sandboxes, containers, logs, exit
//! codes, OOM kills, stop signals, namespaces, exec, attach, port-forward and
//! a restart of the runtime. Each test's `Node` removes what it made.

mod support;

use std::time::Duration;

use runtime::*;
use support::{log_lines, wait_for, Node};

#[tokio::test(flavor = "multi_thread")]
async fn a_container_runs_in_a_sandbox_and_its_output_lands_in_the_cri_log() {
    require_root!();
    let node = Node::new();
    let rt = &node.runtime;
    assert!(rt.version().await.unwrap().starts_with("runc://1."));
    let sb_cfg = node.sandbox_config("web");
    let sb = rt.run_pod_sandbox(&sb_cfg).await.unwrap();
    let status = rt.pod_sandbox_status(&sb).await.unwrap();
    assert_eq!(status.state, PodSandboxState::Ready);
    assert!(status.netns_path.as_ref().unwrap().exists());

    let cfg = node.container_config(
        "app",
        &[
            "sh",
            "-c",
            "echo hello; echo oops >&2; hostname; cat /etc/resolv.conf",
        ],
    );
    let id = node.run(&sb, &sb_cfg, &cfg).await;
    let st = node.wait_exited(&id).await;
    assert_eq!(st.exit_code, Some(0));
    assert_eq!(st.reason.as_deref(), Some("Completed"));
    let (started, finished) = (st.started_at.unwrap(), st.finished_at.unwrap());
    assert!(st.created_at <= started && started <= finished);
    assert_eq!(st.log_path, sb_cfg.log_directory.join("app/0.log"));
    let out = log_lines(&st.log_path, "stdout");
    assert_eq!(
        out,
        [
            "hello",
            "web",
            "search default.svc.cluster.local",
            "nameserver 10.43.0.10",
            "options ndots:5"
        ]
    );
    assert_eq!(log_lines(&st.log_path, "stderr"), ["oops"]);
    let raw = std::fs::read_to_string(&st.log_path).unwrap();
    let first = raw.lines().next().unwrap();
    assert!(first.ends_with(" stdout F hello"), "{first}");
    assert!(first.starts_with("20") && first.split(' ').next().unwrap().ends_with('Z'));

    let listed = rt.list_containers().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].pod_sandbox_id, sb);
    rt.stop_pod_sandbox(&sb).await.unwrap();
    assert_eq!(
        rt.pod_sandbox_status(&sb).await.unwrap().state,
        PodSandboxState::NotReady
    );
    rt.stop_pod_sandbox(&sb).await.unwrap();
    rt.remove_pod_sandbox(&sb).await.unwrap();
    rt.remove_pod_sandbox(&sb).await.unwrap();
    assert!(rt.list_containers().await.unwrap().is_empty());
    assert!(matches!(
        rt.pod_sandbox_status(&sb).await,
        Err(Error::NotFound { .. })
    ));
}
