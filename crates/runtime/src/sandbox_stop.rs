//! StopPodSandbox and RemovePodSandbox: containers first, then the pause
//! process, the pod network (CNI DEL before the namespace goes, so plugins
//! still find what they set up inside it) and the sandbox's mounts. Both are
//! idempotent: a sandbox already stopped or gone is done.

use std::time::Duration;

use crate::cri::*;
use crate::runc::Runc;

impl Runc {
    /// Ids of the containers created in sandbox `id`.
    pub(crate) fn containers_of(&self, id: &str) -> Vec<String> {
        Self::ids(&self.containers_dir())
            .into_iter()
            .filter(|c| self.load_container(c).is_ok_and(|rec| rec.sandbox_id == id))
            .collect()
    }

    pub(crate) async fn stop_sandbox(&self, id: &str) -> Result<()> {
        let mut rec = match self.load_sandbox(id) {
            Ok(rec) => rec,
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        for c in self.containers_of(id) {
            self.stop(&c, Duration::ZERO).await?;
        }
        let dir = self.sandbox_dir(id);
        if !Self::wait_exited(&dir, Duration::ZERO).await {
            let _ = self.runc("kill", &["kill", id, "KILL"]).await;
            if !Self::wait_exited(&dir, Duration::from_secs(10)).await {
                return Err(Error::Runtime {
                    op: "stopping the pause process".into(),
                    message: format!("sandbox {id} did not exit after SIGKILL"),
                });
            }
        }
        if rec.stopped {
            return Ok(());
        }
        self.tear_down_sandbox(&rec).await;
        rec.netns = None;
        rec.stopped = true;
        self.save_sandbox(&rec)
    }

    pub(crate) async fn remove_sandbox(&self, id: &str) -> Result<()> {
        let rec = match self.load_sandbox(id) {
            Ok(rec) => rec,
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        self.stop_sandbox(id).await?;
        for c in self.containers_of(id) {
            self.remove(&c).await?;
        }
        let _ = self.runc("delete", &["delete", "--force", id]).await;
        crate::cgroups::remove_tree(&crate::cgroups::join(&[&rec.cgroup_parent, id]));
        if crate::cgroups::join(&[&self.cfg.cgroup_root]) != rec.cgroup_parent {
            // The pod's own cgroup, if nothing else is left in it.
            crate::cgroups::remove_tree(&rec.cgroup_parent);
        }
        let _ = std::fs::remove_file(self.socket_path(id, ""));
        let dir = self.sandbox_dir(id);
        if let Some(shm) = &rec.shm {
            let _ = self.sys.unmount(shm);
        }
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
