//! Measuring the eviction signals on this machine, as the kubelet's stats
//! provider does: memory.available is the capacity less the root cgroup's
//! working set (usage less inactive file pages; cgroup v1 and v2), the
//! filesystems' free bytes and inodes from statvfs(2) (as available to
//! unprivileged users, as cAdvisor), and pid.available from the kernel's
//! pid_max less the tasks that exist.

use std::path::Path;

use super::{Observation, Observations, Signal};

/// Free bytes and inodes of the filesystem holding `path`, as
/// (available, capacity) pairs.
pub fn filesystem(path: &Path) -> Option<(Observation, Observation)> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    let frsize = s.fragment_size() as i64;
    Some((
        Observation {
            available: s.blocks_available() as i64 * frsize,
            capacity: s.blocks() as i64 * frsize,
        },
        Observation {
            available: s.files_free() as i64,
            capacity: s.files() as i64,
        },
    ))
}

/// The number of tasks (threads) that exist, from /proc/loadavg's
/// `running/total` field (what sysinfo(2) calls `procs`).
pub fn parse_loadavg_tasks(loadavg: &str) -> Option<i64> {
    loadavg
        .split_whitespace()
        .nth(3)?
        .split('/')
        .nth(1)?
        .parse()
        .ok()
}

/// pid.available: the smaller of pid_max and threads-max, less the tasks
/// that exist.
pub fn pids() -> Option<Observation> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
    };
    let max = match (
        read("/proc/sys/kernel/pid_max"),
        read("/proc/sys/kernel/threads-max"),
    ) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    let tasks = parse_loadavg_tasks(&std::fs::read_to_string("/proc/loadavg").ok()?)?;
    Some(Observation {
        available: max - tasks,
        capacity: max,
    })
}

/// memory.available: `capacity` less the node's working set.
pub fn memory(capacity: i64) -> Option<Observation> {
    let working_set = crate::server::resource_metrics::node_usage().memory_working_set_bytes?;
    Some(Observation {
        available: (capacity - working_set as i64).max(0),
        capacity,
    })
}

/// Every signal measured now: nodefs is the filesystem of the agent's data
/// directory (pods, emptyDirs, writable layers), imagefs the image store's.
pub fn observe(root_dir: &Path, image_dir: &Path, memory_capacity: i64) -> Observations {
    let mut out = Observations::new();
    if let Some(m) = memory(memory_capacity) {
        out.insert(Signal::MemoryAvailable, m);
    }
    if let Some((bytes, inodes)) = filesystem(root_dir) {
        out.insert(Signal::NodeFsAvailable, bytes);
        out.insert(Signal::NodeFsInodesFree, inodes);
    }
    let image_dir = if image_dir.exists() {
        image_dir
    } else {
        root_dir
    };
    if let Some((bytes, inodes)) = filesystem(image_dir) {
        out.insert(Signal::ImageFsAvailable, bytes);
        out.insert(Signal::ImageFsInodesFree, inodes);
    }
    if let Some(p) = pids() {
        out.insert(Signal::PidAvailable, p);
    }
    out
}
