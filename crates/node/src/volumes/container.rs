//! A container's mounts (upstream's `makeMounts` in kubelet_pods.go and the
//! termination-message file of kuberuntime's `makeMounts`): its
//! volumeMounts with subPath / subPathExpr, the pod's /etc/hosts, and the
//! file behind `terminationMessagePath`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::{Container, Pod};
use runtime::cri::{Mount, MountPropagation};

use super::{hosts, PodVolumes};
use crate::env;

pub const ETC_HOSTS_PATH: &str = "/etc/hosts";

/// What the mounts of a container need besides the pod: the pod's IPs (for
/// /etc/hosts) and the container's resolved environment (for subPathExpr).
#[derive(Clone, Copy, Debug, Default)]
pub struct MountContext<'a> {
    pub pod_ips: &'a [String],
    pub env: &'a [(String, String)],
}

/// Why a container's mounts can't be made; the container waits with reason
/// `CreateContainerConfigError` and this message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MountsError {
    #[error("cannot find volume {volume:?} to mount into container {container:?}")]
    VolumeNotFound { volume: String, container: String },
    #[error("error SubPath `{0}` must not be an absolute path")]
    AbsoluteSubPath(String),
    #[error("unable to provision SubPath `{0}`: must not contain '..'")]
    BackstepSubPath(String),
    #[error("missing value for {0}")]
    SubPathExpr(String),
    #[error(
        "failed to create subPath directory for volumeMount {volume:?} of container {container:?}"
    )]
    CreateSubPath { volume: String, container: String },
    #[error("failed to prepare subPath for volumeMount {volume:?} of container {container:?}")]
    PrepareSubPath { volume: String, container: String },
    #[error("Bidirectional mount propagation is available only to privileged containers")]
    BidirectionalNotPrivileged,
    #[error("{0}")]
    Io(String),
}

static TERMINATION_LOG_SEQ: AtomicU64 = AtomicU64::new(0);

impl PodVolumes {
    /// The runtime mounts of `container`, in volumeMount order, then
    /// /etc/hosts (unless the container mounts its own), then the
    /// termination-message file. Writes `<pod-dir>/etc-hosts`.
    pub fn container_mounts(
        &self,
        pod: &Pod,
        container: &Container,
        ctx: &MountContext<'_>,
    ) -> Result<Vec<Mount>, MountsError> {
        let privileged = container
            .security_context
            .as_ref()
            .and_then(|s| s.privileged)
            .unwrap_or(false);
        let mut mounts = Vec::new();
        let mut mounts_etc_hosts = false;
        for vm in container.volume_mounts.iter().flatten() {
            let volume = self
                .volumes
                .get(&vm.name)
                .ok_or_else(|| MountsError::VolumeNotFound {
                    volume: vm.name.clone(),
                    container: container.name.clone(),
                })?;
            mounts_etc_hosts |= vm.mount_path == ETC_HOSTS_PATH;
            let mut sub_path = vm.sub_path.clone().unwrap_or_default();
            if let Some(expr) = vm.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
                sub_path = expand_sub_path_expr(expr, ctx.env)?;
            }
            let host_path = if sub_path.is_empty() {
                volume.host_path.clone()
            } else {
                validate_sub_path(&sub_path)?;
                prepare_sub_path(&volume.host_path, &sub_path).map_err(|e| match e {
                    SubPathError::Create => MountsError::CreateSubPath {
                        volume: vm.name.clone(),
                        container: container.name.clone(),
                    },
                    SubPathError::Prepare => MountsError::PrepareSubPath {
                        volume: vm.name.clone(),
                        container: container.name.clone(),
                    },
                })?
            };
            let propagation = match vm.mount_propagation.as_deref() {
                Some("HostToContainer") => MountPropagation::HostToContainer,
                Some("Bidirectional") if !privileged => {
                    return Err(MountsError::BidirectionalNotPrivileged)
                }
                Some("Bidirectional") => MountPropagation::Bidirectional,
                _ => MountPropagation::Private,
            };
            // A missing source is made a directory, as containerd's CRI
            // does for bind mounts (hostPath volumes without a type).
            if fs::symlink_metadata(&host_path).is_err() {
                fs::create_dir_all(&host_path)
                    .and_then(|()| {
                        fs::set_permissions(&host_path, fs::Permissions::from_mode(0o755))
                    })
                    .map_err(|e| {
                        MountsError::Io(format!(
                            "failed to mkdir {:?}: {e}",
                            host_path.display().to_string()
                        ))
                    })?;
            }
            mounts.push(Mount {
                container_path: vm.mount_path.clone(),
                host_path,
                readonly: vm.read_only.unwrap_or(false) || volume.read_only,
                propagation,
            });
        }
        // Host-network pods get the node's hosts file even when their
        // sandbox reports no IPs of its own.
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        if !mounts_etc_hosts && (!ctx.pod_ips.is_empty() || host_network) {
            let path = self.write_etc_hosts(pod, ctx.pod_ips)?;
            mounts.push(Mount {
                container_path: ETC_HOSTS_PATH.to_string(),
                host_path: path,
                readonly: false,
                propagation: MountPropagation::Private,
            });
        }
        if let Some(path) = container
            .termination_message_path
            .as_deref()
            .filter(|p| !p.is_empty())
        {
            let host_path = self.new_termination_log(&container.name)?;
            mounts.push(Mount {
                container_path: path.to_string(),
                host_path,
                readonly: false,
                propagation: MountPropagation::Private,
            });
        }
        Ok(mounts)
    }

    /// Writes the pod's hosts file (`<pod-dir>/etc-hosts`).
    pub fn write_etc_hosts(&self, pod: &Pod, pod_ips: &[String]) -> Result<PathBuf, MountsError> {
        let spec = pod.spec.as_ref();
        let aliases = spec
            .and_then(|s| s.host_aliases.clone())
            .unwrap_or_default();
        let content = if spec.and_then(|s| s.host_network).unwrap_or(false) {
            let node = fs::read_to_string("/etc/hosts").unwrap_or_default();
            hosts::node_hosts_file_content(&node, &aliases)
        } else {
            let (hostname, domain) = hosts::pod_hostname_and_domain(pod, &self.cluster_domain);
            hosts::managed_hosts_file_content(pod_ips, &hostname, &domain, &aliases)
        };
        let path = self.pod_dir.join("etc-hosts");
        fs::create_dir_all(&self.pod_dir).map_err(|e| MountsError::Io(e.to_string()))?;
        fs::write(&path, content)
            .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o644)))
            .map_err(|e| MountsError::Io(format!("write {}: {e}", path.display())))?;
        Ok(path)
    }

    /// A new empty, world-writable file `<pod-dir>/containers/<name>/<id>`
    /// for one run of a container to leave its termination message in.
    fn new_termination_log(&self, container: &str) -> Result<PathBuf, MountsError> {
        let dir = self.pod_dir.join("containers").join(container);
        fs::create_dir_all(&dir)
            .map_err(|e| MountsError::Io(format!("create {}: {e}", dir.display())))?;
        let id = format!(
            "{:08x}{:04x}",
            chrono::Utc::now().timestamp_subsec_nanos() ^ std::process::id(),
            TERMINATION_LOG_SEQ.fetch_add(1, Ordering::Relaxed) & 0xffff
        );
        let path = dir.join(id);
        fs::write(&path, b"")
            .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o666)))
            .map_err(|e| MountsError::Io(format!("create {}: {e}", path.display())))?;
        Ok(path)
    }
}

/// Upstream's `ExpandContainerVolumeMounts`: `$(VAR)` from the container's
/// environment; a missing or empty variable is an error.
pub fn expand_sub_path_expr(expr: &str, env: &[(String, String)]) -> Result<String, MountsError> {
    let mut missing = std::collections::BTreeSet::new();
    let expanded = env::expand(expr, |name| {
        let value = env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if value.is_empty() {
            missing.insert(name.to_string());
        }
        Some(value)
    });
    if !missing.is_empty() {
        return Err(MountsError::SubPathExpr(
            missing.into_iter().collect::<Vec<_>>().join(", "),
        ));
    }
    Ok(expanded)
}

/// A subPath is relative and never steps up.
pub fn validate_sub_path(sub_path: &str) -> Result<(), MountsError> {
    if sub_path.starts_with('/') {
        return Err(MountsError::AbsoluteSubPath(sub_path.to_string()));
    }
    if sub_path.split('/').any(|p| p == "..") {
        return Err(MountsError::BackstepSubPath(sub_path.to_string()));
    }
    Ok(())
}

#[derive(Debug)]
enum SubPathError {
    Create,
    Prepare,
}

/// The host path of `sub_path` inside the volume, made (as a directory with
/// the volume's mode) when missing, resolved through symlinks, and refused
/// when it leads out of the volume.
fn prepare_sub_path(volume: &Path, sub_path: &str) -> Result<PathBuf, SubPathError> {
    let root = volume.canonicalize().map_err(|_| SubPathError::Prepare)?;
    let target = root.join(sub_path);
    if fs::symlink_metadata(&target).is_err() {
        // The part that exists must stay inside the volume before making
        // the rest.
        let mut existing = target.clone();
        while fs::symlink_metadata(&existing).is_err() {
            if !existing.pop() {
                return Err(SubPathError::Create);
            }
        }
        let resolved = existing.canonicalize().map_err(|_| SubPathError::Create)?;
        if !resolved.starts_with(&root) {
            return Err(SubPathError::Create);
        }
        let mode = fs::metadata(&root)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o755);
        let rest = target
            .strip_prefix(&existing)
            .map_err(|_| SubPathError::Create)?;
        let mut dir = resolved;
        for part in rest.components() {
            dir.push(part);
            fs::create_dir(&dir).map_err(|_| SubPathError::Create)?;
            let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(mode));
        }
    }
    let resolved = target.canonicalize().map_err(|_| SubPathError::Prepare)?;
    if !resolved.starts_with(&root) {
        return Err(SubPathError::Prepare);
    }
    Ok(resolved)
}
