//! What the runtime keeps on disk, so that a restarted node agent finds every
//! sandbox and container again: the records the runtime writes at creation,
//! the shim's config, and the status file the shim keeps up to date.
//!
//! ```text
//! <root>/runc/                        runc --root
//! <root>/sandboxes/<id>/sandbox.json  + hostname, hosts, resolv.conf, shm/, bundle/
//! <root>/containers/<id>/container.json  + bundle/, upper/, work/
//! <dir>/shim.json  <dir>/status.json                     (per shim)
//! <run_dir>/shim/<id[..16]>.sock (attach), <id[..16]>-*.sock (consoles)
//! ```

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::cri::{ContainerConfig, PodSandboxConfig};

pub const SHIM_CONFIG: &str = "shim.json";
pub const STATUS: &str = "status.json";
pub const SANDBOX_RECORD: &str = "sandbox.json";
pub const CONTAINER_RECORD: &str = "container.json";

/// Written by the runtime when a sandbox is created, updated when it stops.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: String,
    pub config: PodSandboxConfig,
    pub created_at: DateTime<Utc>,
    /// The pinned network namespace; `None` with host networking or after stop.
    pub netns: Option<PathBuf>,
    pub ips: Vec<IpAddr>,
    /// `<cgroup_root>/<cgroup_parent>`: the pause and containers' cgroups go below.
    pub cgroup_parent: String,
    /// The sandbox's /dev/shm tmpfs (`None` with hostIPC).
    pub shm: Option<PathBuf>,
    pub stopped: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub sandbox_id: String,
    pub config: ContainerConfig,
    pub created_at: DateTime<Utc>,
    /// Absolute path of the CRI log file.
    pub log_path: PathBuf,
    pub cgroups_path: String,
}

/// How a shim runs one container (or a sandbox's pause).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShimConfig {
    pub id: String,
    pub runc: PathBuf,
    pub runc_root: PathBuf,
    pub bundle: PathBuf,
    /// `None` for the pause process, whose output is dropped.
    pub log_path: Option<PathBuf>,
    pub stdin: bool,
    pub stdin_once: bool,
    pub tty: bool,
    /// The file whose `oom_kill` counter tells an OOM kill (v1
    /// `memory.oom_control`, v2 `memory.events`).
    pub oom_file: Option<PathBuf>,
    /// Where the shim serves attach; kept short (unix socket paths are
    /// limited to 108 bytes), so under the run directory rather than beside
    /// the bundle.
    pub attach_socket: PathBuf,
}

/// Kept by the shim: the container's process and, once it exited, how.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimStatus {
    pub shim_pid: i32,
    /// /proc/<pid>/stat start time of the shim, so that a reused pid after a
    /// reboot is not taken for the shim.
    pub shim_start_time: u64,
    /// The kernel's boot id when the shim started: after a reboot a pid and
    /// start time can both come round again (boots are alike), the boot id
    /// does not. `None` in files written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    pub pid: Option<i32>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub message: Option<String>,
}

impl ShimStatus {
    /// Whether the shim that wrote this is still running.
    pub fn shim_alive(&self) -> bool {
        self.shim_pid > 0
            && self
                .boot_id
                .as_deref()
                .is_none_or(|id| boot_id().as_deref() == Some(id))
            && process_start_time(self.shim_pid) == Some(self.shim_start_time)
    }

    pub fn exited(&self) -> bool {
        self.exit_code.is_some()
    }
}

/// This boot's id (/proc/sys/kernel/random/boot_id), new at every boot.
pub fn boot_id() -> Option<String> {
    static ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        Some(id.trim().to_string()).filter(|id| !id.is_empty())
    })
    .clone()
}

/// Field 22 of /proc/<pid>/stat (clock ticks after boot).
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<T> {
    let data = std::fs::read(path)?;
    serde_json::from_slice(&data).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Written aside and renamed, so a reader never sees half a file.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let data = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

/// 64 hex characters, as containerd's IDs.
pub fn new_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shim_of_another_boot_is_not_alive_though_its_pid_and_start_time_match() {
        let me = std::process::id() as i32;
        let mut status = ShimStatus {
            shim_pid: me,
            shim_start_time: process_start_time(me).unwrap(),
            boot_id: boot_id(),
            ..ShimStatus::default()
        };
        assert!(status.boot_id.is_some());
        assert!(status.shim_alive());
        status.boot_id = Some("00000000-0000-0000-0000-000000000000".into());
        assert!(!status.shim_alive());
        // Files from before boot ids were recorded go by pid and start time.
        status.boot_id = None;
        assert!(status.shim_alive());
        status.shim_start_time += 1;
        assert!(!status.shim_alive());
    }

    #[test]
    fn this_process_has_a_start_time_and_ids_are_unique_hex() {
        assert!(process_start_time(std::process::id() as i32).is_some());
        let (a, b) = (new_id(), new_id());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
