//! StopContainer (the stop signal, SIGKILL after the timeout) and
//! RemoveContainer (runc state, rootfs mount, directories, cgroup). Both are
//! idempotent.

use std::time::Duration;

use crate::cri::*;
use crate::runc::{Runc, STOP_SIGNAL_ANNOTATION};
use crate::sys;

/// How long a container may take to go after SIGKILL before stop fails.
const KILL_GRACE: Duration = Duration::from_secs(10);

impl Runc {
    pub(crate) async fn stop(&self, id: &str, timeout: Duration) -> Result<()> {
        let rec = match self.load_container(id) {
            Ok(rec) => rec,
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let dir = self.container_dir(id);
        let Some(status) = Self::shim_status(&dir) else {
            return Ok(());
        };
        if status.exited() || !status.shim_alive() {
            return Ok(());
        }
        // The shim is alive and has not reaped the init: the pid is still ours.
        let Some(pid) = status.pid else {
            return Ok(());
        };
        if !timeout.is_zero() {
            let signal = rec
                .config
                .annotations
                .get(STOP_SIGNAL_ANNOTATION)
                .and_then(|s| sys::signal_number(s))
                .unwrap_or(libc::SIGTERM);
            let _ = sys::kill(pid, signal);
            if Self::wait_exited(&dir, timeout).await {
                return Ok(());
            }
        }
        let _ = sys::kill(pid, libc::SIGKILL);
        if Self::wait_exited(&dir, KILL_GRACE).await {
            Ok(())
        } else {
            Err(Error::Runtime {
                op: "stopping the container".into(),
                message: format!("container {id} did not exit after SIGKILL"),
            })
        }
    }

    pub(crate) async fn remove(&self, id: &str) -> Result<()> {
        let rec = match self.load_container(id) {
            Ok(rec) => rec,
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        self.stop(id, Duration::ZERO).await?;
        let _ = self.runc("delete", &["delete", "--force", id]).await;
        let dir = self.container_dir(id);
        let _ = sys::unmount(&dir.join("bundle/rootfs"));
        // Left behind only if the shim itself was killed.
        let _ = std::fs::remove_file(self.socket_path(id, ""));
        crate::cgroups::remove_tree(&rec.cgroups_path);
        std::fs::remove_dir_all(&dir).or_else(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Ok(()),
            _ => Err(Error::Io {
                op: format!("removing {}", dir.display()),
                source: e,
            }),
        })
    }
}
