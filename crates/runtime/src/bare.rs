//! A bare `runc run` of an image, timed: the baseline the pod start benchmark
//! prints beside krate's own pod start latency (same machine, same run). The
//! container gets the image's layers as an overlay root, new namespaces, the
//! default mounts and the given command; its time is from mounting the root
//! to `runc run --detach` returning (the process started).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::container_create::overlay_options;
use crate::cri::{Error, Result};
use crate::sys::{self, Syscall};

/// Runs `args` from `layers` (lowest first) with runc under `work_dir`
/// (state, bundle, upper and work dirs; removed afterwards), stops it, and
/// returns how long the start took.
pub async fn bare_runc_run(
    runc: &Path,
    work_dir: &Path,
    layers: &[PathBuf],
    args: &[&str],
) -> Result<Duration> {
    let id = format!("bare-{}", &crate::state::new_id()[..12]);
    let dir = work_dir.join(&id);
    let rootfs = dir.join("bundle/rootfs");
    let result = run(runc, &dir, &rootfs, &id, layers, args).await;
    let _ = tokio::process::Command::new(runc)
        .arg("--root")
        .arg(dir.join("runc"))
        .args(["delete", "--force", &id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    let _ = sys::Linux.unmount(&rootfs);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(
    runc: &Path,
    dir: &Path,
    rootfs: &Path,
    id: &str,
    layers: &[PathBuf],
    args: &[&str],
) -> Result<Duration> {
    let io = |op: &str| {
        let op = op.to_string();
        move |source| Error::Io { op, source }
    };
    let (upper, work) = (dir.join("upper"), dir.join("work"));
    for d in [rootfs, &upper, &work] {
        std::fs::create_dir_all(d).map_err(io("creating the bare bundle"))?;
    }
    let start = Instant::now();
    let lower: Vec<&Path> = layers.iter().map(|p| p.as_path()).collect();
    sys::Linux
        .mount(
            "overlay",
            rootfs,
            "overlay",
            0,
            Some(&overlay_options(&lower, &upper, &work)),
        )
        .map_err(io("mounting the bare rootfs"))?;
    let spec = json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": [format!("PATH={}", crate::spec::DEFAULT_PATH)],
            "cwd": "/",
            "capabilities": {
                "bounding": crate::spec::DEFAULT_CAPABILITIES,
                "effective": crate::spec::DEFAULT_CAPABILITIES,
                "permitted": crate::spec::DEFAULT_CAPABILITIES,
            },
        },
        "root": {"path": rootfs},
        "hostname": "bare",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                {"type": "mount"}, {"type": "network"},
            ],
            "maskedPaths": crate::spec::MASKED_PATHS,
            "readonlyPaths": crate::spec::READONLY_PATHS,
        },
    });
    crate::state::write_json(&dir.join("bundle/config.json"), &spec)
        .map_err(io("writing the bare config.json"))?;
    // A detached runc hands its own stdio to the container: no pipes here
    // (they would stay open as long as the container runs); errors go to
    // runc's log.
    let log = dir.join("runc.log");
    let status = tokio::process::Command::new(runc)
        .arg("--root")
        .arg(dir.join("runc"))
        .arg("--log")
        .arg(&log)
        .args(["run", "--detach", "--bundle"])
        .arg(dir.join("bundle"))
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .map_err(io("running runc"))?;
    let took = start.elapsed();
    if !status.success() {
        let text = std::fs::read(&log).unwrap_or_default();
        return Err(Error::Runtime {
            op: "bare runc run".into(),
            message: crate::runc::runc_message(&text),
        });
    }
    Ok(took)
}
