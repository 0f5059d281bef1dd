//! StartContainer: a shim of its own runs `runc run --detach` and
//! reports the container's pid, or why it could not start (argv[0] missing:
//! `Error::Start`, which the kubelet shows as StartError / RunContainerError;
//! the status then says exit code 128, reason StartError, as containerd's).

use crate::cri::*;
use crate::runc::{io_err, Runc};
use crate::state::{self, ShimConfig};

impl Runc {
    pub(crate) async fn start(&self, id: &str) -> Result<()> {
        let rec = self.load_container(id)?;
        let dir = self.container_dir(id);
        if let Some(status) = Self::shim_status(&dir) {
            return Err(Error::InvalidArgument(format!(
                "container {id:?} is in {} state",
                if status.exited() {
                    "CONTAINER_EXITED"
                } else {
                    "CONTAINER_RUNNING"
                }
            )));
        }
        let cfg = &rec.config;
        let shim = ShimConfig {
            id: id.to_string(),
            runc: self.cfg.runc.clone(),
            runc_root: self.runc_root(),
            bundle: dir.join("bundle"),
            log_path: Some(rec.log_path.clone()),
            stdin: cfg.stdin,
            stdin_once: cfg.stdin_once,
            tty: cfg.tty,
            oom_file: Some(crate::cgroups::oom_file(&rec.cgroups_path)),
            attach_socket: self.socket_path(id, ""),
        };
        let path = dir.join(state::SHIM_CONFIG);
        state::write_json(&path, &shim).map_err(io_err(format!("writing {}", path.display())))?;
        self.launch_shim(&dir)
            .await
            .map(drop)
            .map_err(|message| Error::Start {
                id: id.to_string(),
                message,
            })
    }
}
