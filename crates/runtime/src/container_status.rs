//! ContainerStatus from the record and the shim's status file (so a
//! restarted agent loses nothing), UpdateContainerResources through
//! `runc update`, and ReopenContainerLog through the shim's socket.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::cri::*;
use crate::runc::{runc_message, Runc};
use crate::shim::AttachHeader;

impl Runc {
    pub(crate) fn status(&self, id: &str) -> Result<ContainerStatus> {
        let rec = self.load_container(id)?;
        let shim = Self::shim_status(&self.container_dir(id));
        let mut status = ContainerStatus {
            id: rec.id,
            pod_sandbox_id: rec.sandbox_id,
            metadata: rec.config.metadata,
            state: ContainerState::Created,
            created_at: rec.created_at,
            started_at: None,
            finished_at: None,
            exit_code: None,
            image: rec.config.image.image,
            image_ref: rec.config.image.image_ref,
            reason: None,
            message: None,
            labels: rec.config.labels,
            annotations: rec.config.annotations,
            log_path: rec.log_path,
            mounts: rec.config.mounts,
        };
        let Some(shim) = shim else {
            return Ok(status);
        };
        status.started_at = shim.started_at;
        if shim.exited() {
            let code = shim.exit_code.unwrap_or_default();
            status.state = ContainerState::Exited;
            status.finished_at = shim.finished_at;
            status.exit_code = Some(code);
            status.reason = Some(
                shim.reason
                    .clone()
                    .unwrap_or_else(|| if code == 0 { "Completed" } else { "Error" }.into()),
            );
            status.message = shim.message.clone();
        } else if shim.shim_alive() {
            status.state = ContainerState::Running;
        } else {
            // The shim died with the container (a reboot, a kill -9).
            status.state = ContainerState::Exited;
            status.finished_at = shim.started_at;
            status.exit_code = Some(crate::runc::LOST_EXIT_CODE);
            status.reason = Some(crate::runc::LOST_REASON.into());
            status.message = Some("the container's shim is gone".into());
        }
        Ok(status)
    }

    pub(crate) async fn update_resources(
        &self,
        id: &str,
        resources: &LinuxContainerResources,
    ) -> Result<()> {
        let rec = self.load_container(id)?;
        let privileged = rec.config.security_context.privileged;
        let mut value = crate::spec::resources(resources, &self.host, privileged);
        // The device cgroup is set at creation; update only what changed.
        value.as_object_mut().map(|o| o.remove("devices"));
        let mut child = tokio::process::Command::new(&self.cfg.runc)
            .arg("--root")
            .arg(self.runc_root())
            .args(["update", "--resources", "-", id])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::Io {
                op: "running runc update".into(),
                source,
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(value.to_string().as_bytes()).await;
        }
        let out = child.wait_with_output().await.map_err(|source| Error::Io {
            op: "running runc update".into(),
            source,
        })?;
        if !out.status.success() {
            return Err(Error::Runtime {
                op: "updating container resources".into(),
                message: runc_message(&out.stderr),
            });
        }
        Ok(())
    }

    pub(crate) async fn reopen_log(&self, id: &str) -> Result<()> {
        self.load_container(id)?;
        let sock = self.socket_path(id, "");
        let not_running = |e: std::io::Error| Error::Runtime {
            op: "reopening the container log".into(),
            message: format!("container {id} is not running: {e}"),
        };
        let mut conn = tokio::net::UnixStream::connect(&sock)
            .await
            .map_err(not_running)?;
        let header = AttachHeader {
            reopen_log: true,
            ..AttachHeader::default()
        };
        let mut line = serde_json::to_string(&header).unwrap_or_default();
        line.push('\n');
        conn.write_all(line.as_bytes()).await.map_err(not_running)?;
        let mut reply = String::new();
        BufReader::new(conn)
            .read_line(&mut reply)
            .await
            .map_err(not_running)?;
        match reply.trim() {
            "ok" => Ok(()),
            other => Err(Error::Runtime {
                op: "reopening the container log".into(),
                message: other.trim_start_matches("error ").to_string(),
            }),
        }
    }
}
