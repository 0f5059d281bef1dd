//! CreateContainer: the container's root filesystem (overlayfs of the image
//! layers with a per-container upper and work dir), its OCI spec generated
//! from the CRI config and the sandbox, and its record. Nothing runs yet:
//! runc creates the process in StartContainer, as containerd creates the
//! task there.

use std::path::Path;

use chrono::Utc;

use crate::cri::*;
use crate::runc::{io_err, Runc};
use crate::sandbox_run::sandbox_files;
use crate::spec::{self, ContainerSpecInput};
use crate::state::{self, ContainerRecord};

/// The overlayfs options for `layers` (lowest first): overlay takes the
/// lowerdirs top first.
pub(crate) fn overlay_options(layers: &[&Path], upper: &Path, work: &Path) -> String {
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|l| l.display().to_string())
        .collect();
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    )
}

impl Runc {
    pub(crate) async fn create(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        sandbox_config: &PodSandboxConfig,
    ) -> Result<String> {
        let sandbox = self.load_sandbox(sandbox_id)?;
        let not_running = || Error::Runtime {
            op: "creating the container".into(),
            message: format!("sandbox container {sandbox_id:?} is not running"),
        };
        if sandbox.stopped {
            return Err(not_running());
        }
        let pause_pid = self.sandbox_pid(sandbox_id).ok_or_else(not_running)?;
        let pid_target = match &config.pid_namespace_target {
            Some(target) => Some(self.running_pid(target).ok_or_else(|| Error::Runtime {
                op: "creating the container".into(),
                message: format!("target container {target:?} is not running"),
            })?),
            None => None,
        };
        if config.args.is_empty() {
            return Err(Error::InvalidArgument("no command specified".into()));
        }
        for layer in &config.image.layers {
            if !layer.is_dir() {
                return Err(Error::InvalidArgument(format!(
                    "image layer {} does not exist",
                    layer.display()
                )));
            }
        }
        let id = state::new_id();
        let dir = self.container_dir(&id);
        let rootfs = dir.join("bundle/rootfs");
        let result = async {
            let upper = dir.join("upper");
            let work = dir.join("work");
            for d in [&rootfs, &upper, &work] {
                std::fs::create_dir_all(d).map_err(io_err(format!("creating {}", d.display())))?;
            }
            let mut layers: Vec<&Path> = config.image.layers.iter().map(|p| p.as_path()).collect();
            let empty = dir.join("empty");
            if layers.is_empty() {
                std::fs::create_dir_all(&empty)
                    .map_err(io_err(format!("creating {}", empty.display())))?;
                layers.push(&empty);
            }
            self.sys
                .mount(
                    "overlay",
                    &rootfs,
                    "overlay",
                    0,
                    Some(&overlay_options(&layers, &upper, &work)),
                )
                .map_err(io_err(format!(
                    "mounting the rootfs at {}",
                    rootfs.display()
                )))?;

            let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).ok();
            let group = std::fs::read_to_string(rootfs.join("etc/group")).ok();
            let cgroups_path = crate::cgroups::join(&[&sandbox.cgroup_parent, &id]);
            let files = sandbox_files(&self.sandbox_dir(sandbox_id), sandbox.shm.as_deref());
            let spec = spec::container_spec(&ContainerSpecInput {
                config,
                sandbox: sandbox_config,
                rootfs: &rootfs,
                sandbox_pid: pause_pid,
                netns: sandbox.netns.as_deref(),
                files: &files,
                cgroups_path: cgroups_path.clone(),
                passwd: passwd.as_deref(),
                group: group.as_deref(),
                host: &self.host,
                pid_target,
            })
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
            let config_json = dir.join("bundle/config.json");
            state::write_json(&config_json, &spec)
                .map_err(io_err(format!("writing {}", config_json.display())))?;

            let log_dir = if sandbox_config.log_directory.as_os_str().is_empty() {
                &sandbox.config.log_directory
            } else {
                &sandbox_config.log_directory
            };
            let rec = ContainerRecord {
                id: id.clone(),
                sandbox_id: sandbox_id.to_string(),
                config: config.clone(),
                created_at: Utc::now(),
                log_path: log_dir.join(&config.log_path),
                cgroups_path,
            };
            let path = dir.join(state::CONTAINER_RECORD);
            state::write_json(&path, &rec).map_err(io_err(format!("writing {}", path.display())))
        }
        .await;
        match result {
            Ok(()) => Ok(id),
            Err(e) => {
                let _ = self.sys.unmount(&rootfs);
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_takes_the_top_layer_first() {
        let layers = [
            Path::new("/l/base"),
            Path::new("/l/mid"),
            Path::new("/l/top"),
        ];
        assert_eq!(
            overlay_options(&layers, Path::new("/c/upper"), Path::new("/c/work")),
            "lowerdir=/l/top:/l/mid:/l/base,upperdir=/c/upper,workdir=/c/work"
        );
    }
}
