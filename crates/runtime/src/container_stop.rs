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
        let Some(pid) = self.running_pid(id) else {
            return Ok(());
        };
        if !timeout.is_zero() {
            let signal = rec
                .config
                .annotations
                .get(STOP_SIGNAL_ANNOTATION)
                .and_then(|s| sys::signal_number(s))
                .unwrap_or(libc::SIGTERM);
            let _ = self.sys.kill(pid, signal);
            if Self::wait_exited(&dir, timeout).await {
                return Ok(());
            }
        }
        let _ = self.sys.kill(pid, libc::SIGKILL);
        if Self::wait_exited(&dir, KILL_GRACE).await {
            Ok(())
        } else {
            Err(Error::Runtime {
                op: "stopping the container".into(),
                message: format!("container {id} did not exit after SIGKILL"),
            })
        }
    }

    /// The host PID of a running container's process: its shim is alive
    /// and has not reaped the init, so the pid is still the container's.
    pub(crate) fn running_pid(&self, id: &str) -> Option<i32> {
        let status = Self::shim_status(&self.container_dir(id))?;
        if status.exited() || !status.shim_alive() {
            return None;
        }
        status.pid
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
        let _ = self.sys.unmount(&dir.join("bundle/rootfs"));
        // Left behind only if the shim itself was killed.
        let _ = std::fs::remove_file(self.socket_path(id, ""));
        crate::cgroups::remove_tree(&rec.cgroups_path);
        let removed = std::fs::remove_dir_all(&dir);
        self.forget_record(id);
        removed.or_else(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Ok(()),
            _ => Err(Error::Io {
                op: format!("removing {}", dir.display()),
                source: e,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;
    use crate::runc::RuncConfig;
    use crate::state::{self, ContainerRecord, ShimStatus};
    use crate::sys::{Call, Recording};

    /// A pretend running container: its shim is this test process (alive),
    /// its init a pid nobody has; `exits_on` is the signal after which the
    /// "shim" records an exit.
    struct Fixture {
        _tmp: tempfile::TempDir,
        runc: Runc,
        sys: Arc<Recording>,
        id: String,
    }

    const PID: i32 = 999_999;

    fn fixture(stop_signal: Option<&str>) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = RuncConfig::new(tmp.path().join("runtime"));
        cfg.runc = "/nonexistent/runc".into();
        cfg.run_dir = tmp.path().join("run");
        let sys = Arc::new(Recording::default());
        let runc = Runc::with_syscall(cfg, sys.clone()).unwrap();
        let id = state::new_id();
        let dir = runc.container_dir(&id);
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = ContainerConfig::default();
        if let Some(s) = stop_signal {
            config
                .annotations
                .insert(STOP_SIGNAL_ANNOTATION.into(), s.into());
        }
        let rec = ContainerRecord {
            id: id.clone(),
            sandbox_id: "sb".into(),
            config,
            created_at: Utc::now(),
            log_path: dir.join("0.log"),
            cgroups_path: "/krate-unit-test-nonexistent/c".into(),
        };
        state::write_json(&dir.join(state::CONTAINER_RECORD), &rec).unwrap();
        let me = std::process::id() as i32;
        let status = ShimStatus {
            shim_pid: me,
            shim_start_time: state::process_start_time(me).unwrap(),
            pid: Some(PID),
            started_at: Some(Utc::now()),
            ..ShimStatus::default()
        };
        state::write_json(&dir.join(state::STATUS), &status).unwrap();
        Fixture {
            _tmp: tmp,
            runc,
            sys,
            id,
        }
    }

    /// Plays the shim: records an exit once `signal` was sent.
    fn exit_on(f: &Fixture, signal: i32) -> tokio::task::JoinHandle<()> {
        let sys = f.sys.clone();
        let path = f.runc.container_dir(&f.id).join(state::STATUS);
        tokio::spawn(async move {
            loop {
                let sent = sys
                    .calls()
                    .iter()
                    .any(|c| matches!(c, Call::Kill { signal: s, .. } if *s == signal));
                if sent {
                    let mut status: ShimStatus = state::read_json(&path).unwrap();
                    status.exit_code = Some(128 + signal);
                    status.finished_at = Some(Utc::now());
                    state::write_json(&path, &status).unwrap();
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    }

    fn kills(f: &Fixture) -> Vec<i32> {
        f.sys
            .calls()
            .iter()
            .filter_map(|c| match c {
                Call::Kill { pid, signal } if *pid == PID => Some(*signal),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn stop_sends_sigterm_and_is_done_when_the_container_exits() {
        let f = fixture(None);
        let shim = exit_on(&f, libc::SIGTERM);
        f.runc.stop(&f.id, Duration::from_secs(30)).await.unwrap();
        shim.await.unwrap();
        assert_eq!(kills(&f), [libc::SIGTERM]);
        // Stopped is stopped.
        f.runc.stop(&f.id, Duration::from_secs(30)).await.unwrap();
        assert_eq!(kills(&f), [libc::SIGTERM]);
    }

    #[tokio::test]
    async fn stop_sends_the_image_stop_signal_then_sigkill_after_the_timeout() {
        let f = fixture(Some("SIGQUIT"));
        let shim = exit_on(&f, libc::SIGKILL);
        f.runc.stop(&f.id, Duration::from_millis(50)).await.unwrap();
        shim.await.unwrap();
        assert_eq!(kills(&f), [libc::SIGQUIT, libc::SIGKILL]);
    }

    #[tokio::test]
    async fn stop_without_a_timeout_kills_at_once() {
        let f = fixture(None);
        let shim = exit_on(&f, libc::SIGKILL);
        f.runc.stop(&f.id, Duration::ZERO).await.unwrap();
        shim.await.unwrap();
        assert_eq!(kills(&f), [libc::SIGKILL]);
    }

    #[tokio::test]
    async fn remove_unmounts_the_rootfs_and_deletes_the_directory() {
        let f = fixture(None);
        let shim = exit_on(&f, libc::SIGKILL);
        let dir = f.runc.container_dir(&f.id);
        f.runc.remove(&f.id).await.unwrap();
        shim.await.unwrap();
        assert!(f
            .sys
            .calls()
            .contains(&Call::Unmount(dir.join("bundle/rootfs"))));
        assert!(!dir.exists());
        assert!(matches!(f.runc.status(&f.id), Err(Error::NotFound { .. })));
        // Removing what is gone succeeds.
        f.runc.remove(&f.id).await.unwrap();
    }
}
