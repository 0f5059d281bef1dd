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
    // stdout and stderr are read apart: their order in the file is not fixed.
    let first = raw.lines().find(|l| l.contains(" stdout ")).unwrap();
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

#[tokio::test(flavor = "multi_thread")]
async fn exit_code_and_finish_time_are_recorded() {
    require_root!();
    let node = Node::new();
    let sb_cfg = node.sandbox_config("exits");
    let sb = node.runtime.run_pod_sandbox(&sb_cfg).await.unwrap();
    let cfg = node.container_config("fail", &["sh", "-c", "printf 'no newline'; exit 3"]);
    let id = node.run(&sb, &sb_cfg, &cfg).await;
    let st = node.wait_exited(&id).await;
    assert_eq!(st.exit_code, Some(3));
    assert_eq!(st.reason.as_deref(), Some("Error"));
    assert!(st.finished_at.unwrap() >= st.started_at.unwrap());
    let raw = std::fs::read_to_string(&st.log_path).unwrap();
    assert!(raw.trim_end().ends_with(" stdout P no newline"), "{raw}");
    // Starting it again is refused; the status stays.
    assert!(node.runtime.start_container(&id).await.is_err());
    assert_eq!(
        node.runtime.container_status(&id).await.unwrap().exit_code,
        Some(3)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_command_fails_to_start_with_start_error() {
    require_root!();
    let node = Node::new();
    let sb_cfg = node.sandbox_config("nope");
    let sb = node.runtime.run_pod_sandbox(&sb_cfg).await.unwrap();
    let cfg = node.container_config("app", &["nope"]);
    let id = node
        .runtime
        .create_container(&sb, &cfg, &sb_cfg)
        .await
        .unwrap();
    let err = node.runtime.start_container(&id).await.unwrap_err();
    let Error::Start { message, .. } = &err else {
        panic!("expected Error::Start, got {err:?}");
    };
    // containerd's words, which the kubelet shows in the container's status.
    assert_eq!(
        message,
        r#"failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown"#
    );
    let st = node.runtime.container_status(&id).await.unwrap();
    assert_eq!(st.state, ContainerState::Exited);
    assert_eq!(st.exit_code, Some(128));
    assert_eq!(st.reason.as_deref(), Some("StartError"));
    assert_eq!(st.message.as_deref(), Some(message.as_str()));
    assert!(st.started_at.is_none());
    // The sandbox is unharmed.
    assert_eq!(
        node.runtime.pod_sandbox_status(&sb).await.unwrap().state,
        PodSandboxState::Ready
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_over_its_memory_limit_is_oom_killed_with_137() {
    require_root!();
    let node = Node::new();
    let sb_cfg = node.sandbox_config("oom");
    let sb = node.runtime.run_pod_sandbox(&sb_cfg).await.unwrap();
    let mut cfg = node.container_config(
        "hog",
        &["sh", "-c", "x=0123456789; while :; do x=$x$x; done"],
    );
    cfg.resources.memory_limit_in_bytes = Some(32 << 20);
    let id = node.run(&sb, &sb_cfg, &cfg).await;
    let st = node.wait_exited(&id).await;
    assert_eq!(st.exit_code, Some(137));
    assert_eq!(st.reason.as_deref(), Some("OOMKilled"));
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_sends_sigterm_then_sigkill_after_the_timeout() {
    require_root!();
    let node = Node::new();
    let sb_cfg = node.sandbox_config("stop");
    let sb = node.runtime.run_pod_sandbox(&sb_cfg).await.unwrap();
    let polite = node.container_config(
        "polite",
        &[
            "sh",
            "-c",
            "trap 'echo bye; exit 7' TERM; while :; do sleep 0.1; done",
        ],
    );
    let stubborn = node.container_config(
        "stubborn",
        &["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"],
    );
    let polite = node.run(&sb, &sb_cfg, &polite).await;
    let stubborn = node.run(&sb, &sb_cfg, &stubborn).await;
    // The traps are set once the shell runs its loop.
    for id in [&polite, &stubborn] {
        wait_for(Duration::from_secs(10), || async {
            let out = node
                .exec(id, &["sh", "-c", "ps -o comm | grep -c sleep"])
                .await;
            (out.exit_code == 0).then_some(())
        })
        .await;
    }
    let t = std::time::Instant::now();
    node.runtime
        .stop_container(&polite, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(10));
    let st = node.runtime.container_status(&polite).await.unwrap();
    assert_eq!(st.exit_code, Some(7));
    assert_eq!(log_lines(&st.log_path, "stdout"), ["bye"]);

    node.runtime
        .stop_container(&stubborn, Duration::from_millis(500))
        .await
        .unwrap();
    let st = node.runtime.container_status(&stubborn).await.unwrap();
    assert_eq!(st.exit_code, Some(137));
    // Stopping again is fine.
    node.runtime
        .stop_container(&stubborn, Duration::from_secs(1))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_app_container_keeps_the_pod_network_namespace() {
    require_root!();
    let node = Node::new();
    let sb_cfg = node.sandbox_config("keep");
    let sb = node.runtime.run_pod_sandbox(&sb_cfg).await.unwrap();
    let netns = node
        .runtime
        .pod_sandbox_status(&sb)
        .await
        .unwrap()
        .netns_path
        .unwrap();
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(&netns).unwrap().ino();
    let expected = format!("net:[{ino}]");
    let cfg = node.container_config("app", &["sleep", "1000"]);
    let first = node.run(&sb, &sb_cfg, &cfg).await;
    let link = node.exec(&first, &["readlink", "/proc/self/ns/net"]).await;
    assert_eq!(String::from_utf8_lossy(&link.stdout).trim(), expected);
    let lo = node
        .exec(&first, &["cat", "/sys/class/net/lo/operstate"])
        .await;
    assert_ne!(String::from_utf8_lossy(&lo.stdout).trim(), "down");

    node.runtime
        .stop_container(&first, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        node.runtime.pod_sandbox_status(&sb).await.unwrap().state,
        PodSandboxState::Ready
    );
    let mut again = cfg.clone();
    again.metadata.attempt = 1;
    again.log_path = "app/1.log".into();
    let second = node.run(&sb, &sb_cfg, &again).await;
    let link = node.exec(&second, &["readlink", "/proc/self/ns/net"]).await;
    assert_eq!(String::from_utf8_lossy(&link.stdout).trim(), expected);
    let host = node.exec(&second, &["hostname"]).await;
    assert_eq!(String::from_utf8_lossy(&host.stdout).trim(), "keep");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_whose_network_fails_leaves_nothing_behind() {
    require_root!();
    let node = Node::with_cni();
    // The network's last plugin fails its ADD (a sysctl the kernel does not
    // have): the bridge has set the pod up, and the pause process started
    // beside it, when ADD fails.
    let conf = node
        .cfg
        .root
        .parent()
        .unwrap()
        .join("net.d")
        .join(net::cni::DEFAULT_CONFIG_FILE);
    let mut list: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&conf).unwrap()).unwrap();
    list["plugins"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "tuning", "sysctl": {"net.krate.no_such_key": "1"}}));
    std::fs::write(&conf, list.to_string()).unwrap();

    let err = node
        .runtime
        .run_pod_sandbox(&node.sandbox_config("broken"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("failed to setup network for sandbox"), "{err}");
    assert!(err.contains("no_such_key"), "{err}");

    assert!(node.runtime.list_pod_sandbox().await.unwrap().is_empty());
    let runc = std::process::Command::new("runc")
        .arg("--root")
        .arg(node.cfg.root.join("runc"))
        .args(["list", "-q"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&runc.stdout).trim(),
        "",
        "no pause is left"
    );
    let left = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert!(left(&node.cfg.root.join("sandboxes")).is_empty());
    assert!(
        left(&node.cfg.run_dir.join("netns")).is_empty(),
        "no namespace is left"
    );
    let network = node.network.as_ref().unwrap();
    let ips: Vec<_> =
        left(&std::path::Path::new(net::default_network::HOST_LOCAL_DATA_DIR).join(&network.name))
            .into_iter()
            .filter(|n| n.to_string_lossy().starts_with("10."))
            .collect();
    assert!(ips.is_empty(), "the address is released: {ips:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_pause_process_makes_the_sandbox_not_ready() {
    require_root!();
    let node = Node::new();
    let sb_cfg = node.sandbox_config("pause");
    let sb = node.runtime.run_pod_sandbox(&sb_cfg).await.unwrap();
    let dir = node.cfg.root.join("sandboxes").join(&sb);
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("status.json")).unwrap()).unwrap();
    let pid = status["pid"].as_i64().unwrap();
    // runc start returns when the init was told to exec; it may not have yet.
    wait_for(Duration::from_secs(10), || async {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        cmdline.starts_with(b"/pause").then_some(())
    })
    .await;
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    wait_for(Duration::from_secs(10), || async {
        let st = node.runtime.pod_sandbox_status(&sb).await.unwrap();
        (st.state == PodSandboxState::NotReady).then_some(())
    })
    .await;
    node.runtime.stop_pod_sandbox(&sb).await.unwrap();
    node.runtime.remove_pod_sandbox(&sb).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn share_process_namespace_shows_pause_as_pid_1() {
    require_root!();
    let node = Node::new();
    let mut sb_cfg = node.sandbox_config("shared");
    sb_cfg.namespace_options.pid = NamespaceMode::Pod;
    let sb = node.runtime.run_pod_sandbox(&sb_cfg).await.unwrap();
    let cfg = node.container_config("app", &["sleep", "1000"]);
    let id = node.run(&sb, &sb_cfg, &cfg).await;
    let ps = node.exec(&id, &["ps", "-o", "pid,comm,args"]).await;
    let out = String::from_utf8_lossy(&ps.stdout);
    let first = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some("1"))
        .unwrap_or_else(|| panic!("no PID 1 in {out}"));
    assert!(first.contains("/pause"), "{out}");
    assert!(out.contains("sleep 1000"), "{out}");

    // Without sharing, the container's own command is PID 1.
    let sb2_cfg = node.sandbox_config("private");
    let sb2 = node.runtime.run_pod_sandbox(&sb2_cfg).await.unwrap();
    let id2 = node.run(&sb2, &sb2_cfg, &cfg).await;
    let ps = node.exec(&id2, &["ps", "-o", "pid,args"]).await;
    let out = String::from_utf8_lossy(&ps.stdout);
    assert!(!out.contains("/pause"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.trim().starts_with("1 ") && l.contains("sleep 1000")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_sync_returns_output_and_exit_code() {
    require_root!();
    let node = Node::new();
    let sb_cfg = node.sandbox_config("exec");
    let sb = node.runtime.run_pod_sandbox(&sb_cfg).await.unwrap();
    let mut cfg = node.container_config("app", &["sleep", "1000"]);
    cfg.envs = vec![("GREETING".into(), "hi there".into())];
    let id = node.run(&sb, &sb_cfg, &cfg).await;
    let out = node
        .exec(&id, &["sh", "-c", "echo $GREETING; echo err >&2; exit 4"])
        .await;
    assert_eq!(out.stdout, b"hi there\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.exit_code, 4);
    let nope = vec!["nope".to_string()];
    let err = node
        .runtime
        .exec_sync(&id, &nope, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(r#"OCI runtime exec failed: exec failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown"#),
        "{err}"
    );
    let cmd: Vec<String> = ["sleep", "10"].iter().map(|s| s.to_string()).collect();
    let t = std::time::Instant::now();
    let err = node
        .runtime
        .exec_sync(&id, &cmd, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_with_a_tty_runs_in_a_terminal_that_resizes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    require_root!();
    let node = Node::new();
    let sb_cfg = node.sandbox_config("tty");
    let sb = node.runtime.run_pod_sandbox(&sb_cfg).await.unwrap();
    let id = node
        .run(
            &sb,
            &sb_cfg,
            &node.container_config("app", &["sleep", "1000"]),
        )
        .await;
    let opts = StreamOptions {
        stdin: true,
        stdout: true,
        stderr: false,
        tty: true,
    };
    let mut session = node
        .runtime
        .exec(&id, &["sh".to_string()], &opts)
        .await
        .unwrap();
    assert!(session.stderr.is_none());
    session
        .resize
        .as_ref()
        .unwrap()
        .send(TerminalSize {
            width: 100,
            height: 40,
        })
        .await
        .unwrap();
    let mut stdin = session.stdin.take().unwrap();
    let mut stdout = session.stdout.take().unwrap();
    stdin.write_all(b"tty; stty size; exit 3\n").await.unwrap();
    let mut seen = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        loop {
            match stdout.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "no EOF; saw {}",
        String::from_utf8_lossy(&seen)
    );
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("40 100"), "{text}");
    assert_eq!(session.exit.await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn attach_reaches_a_container_reading_stdin() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    require_root!();
    let node = Node::new();
    let sb_cfg = node.sandbox_config("attach");
    let sb = node.runtime.run_pod_sandbox(&sb_cfg).await.unwrap();
    let mut cfg = node.container_config("cat", &["cat"]);
    cfg.stdin = true;
    cfg.stdin_once = true;
    let id = node.run(&sb, &sb_cfg, &cfg).await;
    let opts = StreamOptions {
        stdin: true,
        stdout: true,
        stderr: true,
        tty: false,
    };
    let mut session = node.runtime.attach(&id, &opts).await.unwrap();
    let mut stdin = session.stdin.take().unwrap();
    let mut stdout = session.stdout.take().unwrap();
    stdin.write_all(b"hello attach\n").await.unwrap();
    let mut buf = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), stdout.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"hello attach\n");
    // Closing stdin (stdinOnce) ends cat.
    stdin.shutdown().await.unwrap();
    drop(stdin);
    let code = tokio::time::timeout(Duration::from_secs(10), session.exit)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, 0);
    let st = node.wait_exited(&id).await;
    assert_eq!(log_lines(&st.log_path, "stdout"), ["hello attach"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn port_forward_connects_to_a_server_inside_the_pod() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    require_root!();
    let node = Node::new();
    let sb_cfg = node.sandbox_config("web");
    let sb = node.runtime.run_pod_sandbox(&sb_cfg).await.unwrap();
    let cfg = node.container_config(
        "httpd",
        &[
            "sh",
            "-c",
            "echo hello from the pod > /www/index.html; exec httpd -f -p 127.0.0.1:8080 -h /www",
        ],
    );
    node.run(&sb, &sb_cfg, &cfg).await;
    let mut conn = wait_for(Duration::from_secs(10), || async {
        node.runtime.port_forward(&sb, 8080).await.ok()
    })
    .await;
    conn.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut resp = String::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_string(&mut resp))
        .await
        .unwrap()
        .unwrap();
    assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
    assert!(resp.contains("hello from the pod"), "{resp}");
    // Nothing listens on the host's loopback at that port for this pod.
    let err = node.runtime.port_forward(&sb, 8081).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("failed to connect to localhost:8081"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shim_outlives_the_runtime_and_a_new_runtime_sees_the_container() {
    require_root!();
    let node = Node::new();
    let sb_cfg = node.sandbox_config("restart");
    let (sb, id) = {
        // A runtime of its own, dropped like an agent that exits.
        let first = node.reopen();
        let sb = first.run_pod_sandbox(&sb_cfg).await.unwrap();
        let cfg = node.container_config(
            "app",
            &[
                "sh",
                "-c",
                "while [ ! -f /tmp/go ]; do sleep 0.1; done; echo done; exit 4",
            ],
        );
        let id = first.create_container(&sb, &cfg, &sb_cfg).await.unwrap();
        first.start_container(&id).await.unwrap();
        (sb, id)
    };
    let second = node.reopen();
    let st = second.container_status(&id).await.unwrap();
    assert_eq!(st.state, ContainerState::Running);
    assert_eq!(
        second.pod_sandbox_status(&sb).await.unwrap().state,
        PodSandboxState::Ready
    );
    assert_eq!(second.list_pod_sandbox().await.unwrap().len(), 1);
    let touch: Vec<String> = ["touch", "/tmp/go"].iter().map(|s| s.to_string()).collect();
    let out = second
        .exec_sync(&id, &touch, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0);
    let st = wait_for(Duration::from_secs(10), || async {
        let s = second.container_status(&id).await.unwrap();
        (s.state == ContainerState::Exited).then_some(s)
    })
    .await;
    assert_eq!(st.exit_code, Some(4));
    assert_eq!(log_lines(&st.log_path, "stdout"), ["done"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn security_context_read_only_rootfs_dropped_capabilities_and_run_as_user() {
    require_root!();
    let node = Node::new();
    let sb_cfg = node.sandbox_config("secure");
    let sb = node.runtime.run_pod_sandbox(&sb_cfg).await.unwrap();

    let mut ro = node.container_config("ro", &["sleep", "1000"]);
    ro.security_context.readonly_rootfs = true;
    let ro = node.run(&sb, &sb_cfg, &ro).await;
    let out = node.exec(&ro, &["touch", "/x"]).await;
    assert_ne!(out.exit_code, 0);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Read-only file system"),
        "{out:?}"
    );
    // /dev/shm stays writable.
    assert_eq!(node.exec(&ro, &["touch", "/dev/shm/x"]).await.exit_code, 0);

    let mut nocaps = node.container_config("nocaps", &["sleep", "1000"]);
    nocaps.security_context.capabilities = Some(Capability {
        add: vec![],
        drop: vec!["ALL".into()],
    });
    let nocaps = node.run(&sb, &sb_cfg, &nocaps).await;
    let out = node.exec(&nocaps, &["chown", "65534", "/tmp"]).await;
    assert_ne!(out.exit_code, 0);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"),
        "{out:?}"
    );
    let mut caps = node.container_config("caps", &["sleep", "1000"]);
    caps.log_path = "caps/0.log".into();
    let caps = node.run(&sb, &sb_cfg, &caps).await;
    assert_eq!(
        node.exec(&caps, &["chown", "65534", "/tmp"])
            .await
            .exit_code,
        0
    );

    let mut nobody = node.container_config("nobody", &["sleep", "1000"]);
    nobody.security_context.run_as_user = Some(65534);
    nobody.security_context.supplemental_groups = vec![1234];
    let nobody = node.run(&sb, &sb_cfg, &nobody).await;
    let id = node.exec(&nobody, &["id"]).await;
    let text = String::from_utf8_lossy(&id.stdout);
    assert!(
        text.starts_with("uid=65534(nobody) gid=65534(nogroup)"),
        "{text}"
    );
    assert!(text.contains("1234"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_app_container_keeps_the_pod_ip() {
    require_root!();
    let node = Node::with_cni();
    let sb_cfg = node.sandbox_config("ip");
    let sb = node.runtime.run_pod_sandbox(&sb_cfg).await.unwrap();
    let status = node.runtime.pod_sandbox_status(&sb).await.unwrap();
    assert_eq!(status.ips.len(), 1, "{status:?}");
    let ip = status.ips[0].to_string();
    assert!(ip.starts_with("10.201."), "{ip}");

    let cfg = node.container_config("app", &["sleep", "1000"]);
    let first = node.run(&sb, &sb_cfg, &cfg).await;
    let addr = node
        .exec(&first, &["ip", "-4", "-o", "addr", "show", "eth0"])
        .await;
    assert!(String::from_utf8_lossy(&addr.stdout).contains(&format!("inet {ip}/")));
    let hosts = node.exec(&first, &["cat", "/etc/hosts"]).await;
    assert!(String::from_utf8_lossy(&hosts.stdout).contains(&format!("{ip}\tip\n")));

    node.runtime
        .stop_container(&first, Duration::ZERO)
        .await
        .unwrap();
    node.runtime.remove_container(&first).await.unwrap();
    let mut again = cfg.clone();
    again.metadata.attempt = 1;
    again.log_path = "app/1.log".into();
    let second = node.run(&sb, &sb_cfg, &again).await;
    let addr = node
        .exec(&second, &["ip", "-4", "-o", "addr", "show", "eth0"])
        .await;
    assert!(String::from_utf8_lossy(&addr.stdout).contains(&format!("inet {ip}/")));
    assert_eq!(
        node.runtime.pod_sandbox_status(&sb).await.unwrap().ips,
        status.ips
    );

    node.runtime.stop_pod_sandbox(&sb).await.unwrap();
    let stopped = node.runtime.pod_sandbox_status(&sb).await.unwrap();
    assert!(stopped.netns_path.is_none());
    assert!(!status.netns_path.unwrap().exists());
    node.runtime.remove_pod_sandbox(&sb).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_resource_updates_and_log_reopening() {
    require_root!();
    let node = Node::new();
    let sb_cfg = node.sandbox_config("stats");
    let sb = node.runtime.run_pod_sandbox(&sb_cfg).await.unwrap();
    let mut cfg = node.container_config(
        "ticker",
        &[
            "sh",
            "-c",
            "i=0; while :; do echo line$i; i=$((i+1)); sleep 0.02; done",
        ],
    );
    cfg.resources.memory_limit_in_bytes = Some(100 << 20);
    cfg.resources.cpu_shares = Some(256);
    let id = node.run(&sb, &sb_cfg, &cfg).await;
    let stats = node.runtime.container_stats(&id).await.unwrap();
    assert!(stats.cpu_usage_core_nano_seconds.is_some(), "{stats:?}");
    assert!(stats.memory_working_set_bytes.is_some(), "{stats:?}");
    assert!(
        stats.cpu_usage_nano_cores.is_none(),
        "one sample is no rate"
    );
    let stats = node.runtime.container_stats(&id).await.unwrap();
    assert!(stats.cpu_usage_nano_cores.is_some(), "{stats:?}");

    let memory_limit = || {
        let dir = runtime::cgroups::dir("memory", &format!("{}/{id}", node.cfg.cgroup_root));
        let file = if runtime::cgroups::is_v2() {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        std::fs::read_to_string(dir.join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(memory_limit(), (100u64 << 20).to_string());
    let update = LinuxContainerResources {
        memory_limit_in_bytes: Some(200 << 20),
        cpu_shares: Some(512),
        ..LinuxContainerResources::default()
    };
    node.runtime
        .update_container_resources(&id, &update)
        .await
        .unwrap();
    assert_eq!(memory_limit(), (200u64 << 20).to_string());

    // The kubelet rotates: rename, then ask the runtime to reopen.
    let log = node.runtime.container_status(&id).await.unwrap().log_path;
    wait_for(Duration::from_secs(10), || async {
        (!log_lines(&log, "stdout").is_empty()).then_some(())
    })
    .await;
    let rotated = log.with_extension("log.1");
    std::fs::rename(&log, &rotated).unwrap();
    node.runtime.reopen_container_log(&id).await.unwrap();
    wait_for(Duration::from_secs(10), || async {
        (!log_lines(&log, "stdout").is_empty()).then_some(())
    })
    .await;
    let old = log_lines(&rotated, "stdout");
    let new = log_lines(&log, "stdout");
    let last_old: u32 = old.last().unwrap()[4..].parse().unwrap();
    let first_new: u32 = new[0][4..].parse().unwrap();
    assert!(first_new > last_old, "{old:?} then {new:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_network_pid_and_ipc_pod_shares_the_host_namespaces() {
    require_root!();
    let node = Node::new();
    let mut sb_cfg = node.sandbox_config("hostnet");
    sb_cfg.namespace_options = NamespaceOption {
        network: NamespaceMode::Node,
        pid: NamespaceMode::Node,
        ipc: NamespaceMode::Node,
    };
    let sb = node.runtime.run_pod_sandbox(&sb_cfg).await.unwrap();
    let status = node.runtime.pod_sandbox_status(&sb).await.unwrap();
    assert!(status.netns_path.is_none());
    assert!(status.ips.is_empty());
    let id = node
        .run(
            &sb,
            &sb_cfg,
            &node.container_config("app", &["sleep", "1000"]),
        )
        .await;
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let out = node.exec(&id, &["readlink", "/proc/self/ns/net"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        host_ns.to_string_lossy()
    );
    for ns in ["pid", "ipc"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let out = node
            .exec(&id, &["readlink", &format!("/proc/self/ns/{ns}")])
            .await;
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            host.to_string_lossy(),
            "{ns}"
        );
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let out = node.exec(&id, &["hostname"]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), hostname.trim());
}

#[tokio::test(flavor = "multi_thread")]
async fn attach_to_a_tty_container_and_privileged_mounts() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    require_root!();
    let node = Node::new();
    let sb_cfg = node.sandbox_config("tty");
    let sb = node.runtime.run_pod_sandbox(&sb_cfg).await.unwrap();
    let mut cfg = node.container_config("shell", &["sh"]);
    cfg.stdin = true;
    cfg.tty = true;
    let id = node.run(&sb, &sb_cfg, &cfg).await;
    let opts = StreamOptions {
        stdin: true,
        stdout: true,
        stderr: true,
        tty: true,
    };
    let mut session = node.runtime.attach(&id, &opts).await.unwrap();
    assert!(session.stderr.is_none());
    session
        .resize
        .as_ref()
        .unwrap()
        .send(TerminalSize {
            width: 90,
            height: 30,
        })
        .await
        .unwrap();
    let mut stdin = session.stdin.take().unwrap();
    let mut stdout = session.stdout.take().unwrap();
    stdin
        .write_all(b"echo hi-$((40+2)); stty size; tty\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let ok = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stdout.read(&mut buf).await.unwrap();
            assert!(n > 0, "EOF; saw {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen);
            if text.contains("hi-42") && text.contains("30 90") && text.contains("/dev/pts/") {
                break;
            }
        }
    })
    .await;
    assert!(ok.is_ok(), "saw {}", String::from_utf8_lossy(&seen));
    stdin.write_all(b"exit 6\n").await.unwrap();
    let code = tokio::time::timeout(Duration::from_secs(10), session.exit)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, 6);
    let st = node.wait_exited(&id).await;
    assert!(log_lines(&st.log_path, "stdout")
        .iter()
        .any(|l| l.contains("hi-42")));

    let mut privileged = node.container_config("privileged", &["sleep", "1000"]);
    privileged.security_context.privileged = true;
    let privileged = node.run(&sb, &sb_cfg, &privileged).await;
    let out = node
        .exec(
            &privileged,
            &[
                "sh",
                "-c",
                "mkdir -p /mnt/t && mount -t tmpfs none /mnt/t && echo mounted",
            ],
        )
        .await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "mounted",
        "{out:?}"
    );
    let plain = node
        .run(&sb, &sb_cfg, &{
            let mut c = node.container_config("plain", &["sleep", "1000"]);
            c.log_path = "plain/0.log".into();
            c
        })
        .await;
    let out = node
        .exec(
            &plain,
            &["sh", "-c", "mkdir -p /mnt/t && mount -t tmpfs none /mnt/t"],
        )
        .await;
    assert_ne!(out.exit_code, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bare_runc_run_of_the_image_is_timed_and_cleaned_up() {
    require_root!();
    let node = Node::new();
    let work = node.cfg.root.join("bare");
    let took = runtime::bare::bare_runc_run(
        std::path::Path::new("runc"),
        &work,
        std::slice::from_ref(&node.layer),
        &["sleep", "1000"],
    )
    .await
    .unwrap();
    assert!(took > Duration::ZERO);
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
}
