//! PodSandboxStatus: Ready while the pause process runs (and the sandbox was
//! not stopped); a dead pause makes it NotReady, which tells the node agent to
//! re-create the pod's sandbox and containers.

use crate::cri::*;
use crate::runc::Runc;

impl Runc {
    pub(crate) fn sandbox_status(&self, id: &str) -> Result<PodSandboxStatus> {
        let rec = self.load_sandbox(id)?;
        let running = Self::shim_status(&self.sandbox_dir(id))
            .is_some_and(|s| s.pid.is_some() && !s.exited() && s.shim_alive());
        Ok(PodSandboxStatus {
            id: rec.id,
            metadata: rec.config.metadata,
            state: if running && !rec.stopped {
                PodSandboxState::Ready
            } else {
                PodSandboxState::NotReady
            },
            created_at: rec.created_at,
            ips: rec.ips,
            netns_path: rec.netns,
            labels: rec.config.labels,
            annotations: rec.config.annotations,
        })
    }

    /// The pause process's pid while it runs.
    pub(crate) fn sandbox_pid(&self, id: &str) -> Option<i32> {
        Self::shim_status(&self.sandbox_dir(id))
            .filter(|s| !s.exited() && s.shim_alive())
            .and_then(|s| s.pid)
    }
}
