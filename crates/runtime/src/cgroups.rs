//! Where the kernel keeps a container's cgroup files, on a cgroup v1 host
//! (one hierarchy per controller under /sys/fs/cgroup) or a unified v2 host,
//! what the host supports, the stats read from them, and removal of the
//! cgroup tree the runtime made.

use std::path::{Path, PathBuf};

use crate::cri::LinuxContainerResources;
use crate::spec::{HostDevice, HostInfo};

pub const MOUNT: &str = "/sys/fs/cgroup";

/// A cgroup filesystem: its mount point and whether it is the unified (v2)
/// hierarchy or one hierarchy per controller below it (v1).
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub root: PathBuf,
    pub v2: bool,
}

impl Hierarchy {
    /// The host's, at /sys/fs/cgroup.
    pub fn host() -> &'static Hierarchy {
        static HOST: std::sync::OnceLock<Hierarchy> = std::sync::OnceLock::new();
        HOST.get_or_init(|| Hierarchy {
            root: PathBuf::from(MOUNT),
            v2: Path::new(MOUNT).join("cgroup.controllers").exists(),
        })
    }

    /// The directory of `cgroups_path` in the hierarchy of `controller`
    /// (v1) or the unified hierarchy (v2).
    pub fn dir(&self, controller: &str, cgroups_path: &str) -> PathBuf {
        let rel = cgroups_path.trim_start_matches('/');
        if self.v2 {
            self.root.join(rel)
        } else {
            self.root.join(controller).join(rel)
        }
    }

    /// The file whose `oom_kill` line counts OOM kills in the cgroup.
    pub fn oom_file(&self, cgroups_path: &str) -> PathBuf {
        if self.v2 {
            self.dir("", cgroups_path).join("memory.events")
        } else {
            self.dir("memory", cgroups_path).join("memory.oom_control")
        }
    }
}

pub fn is_v2() -> bool {
    Hierarchy::host().v2
}

/// `/a/b` + `c/` + `d` = `/a/b/c/d`; empty parts are skipped.
pub fn join(parts: &[&str]) -> String {
    let mut out = String::new();
    for p in parts {
        for seg in p.split('/').filter(|s| !s.is_empty()) {
            out.push('/');
            out.push_str(seg);
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The directory of `cgroups_path` on the host; see [`Hierarchy::dir`].
pub fn dir(controller: &str, cgroups_path: &str) -> PathBuf {
    Hierarchy::host().dir(controller, cgroups_path)
}

/// The host's OOM-kill file of the cgroup; see [`Hierarchy::oom_file`].
pub fn oom_file(cgroups_path: &str) -> PathBuf {
    Hierarchy::host().oom_file(cgroups_path)
}

pub fn host_info() -> HostInfo {
    let v2 = is_v2();
    let swap_accounting = if v2 {
        std::fs::read_dir(MOUNT)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join("memory.swap.max").exists())
    } else {
        Path::new(MOUNT)
            .join("memory/memory.memsw.limit_in_bytes")
            .exists()
    };
    let cap_last_cap: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    let bounding = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(u64::MAX);
    let capabilities = bounding & ((2u64 << cap_last_cap.min(62)) - 1);
    HostInfo {
        cgroup_v2: v2,
        swap_accounting,
        capabilities,
        devices: host_devices(),
        min_oom_score_adj: min_oom_score_adj(),
    }
}

fn min_oom_score_adj() -> i64 {
    const CAP_SYS_RESOURCE: u32 = 24;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    if eff & (1 << CAP_SYS_RESOURCE) != 0 {
        return -1000;
    }
    std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// The device nodes of the host's /dev (one level of subdirectories), for
/// privileged containers.
fn host_devices() -> Vec<HostDevice> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let mut dirs = vec![PathBuf::from("/dev")];
    let mut depth = 0;
    while !dirs.is_empty() && depth < 2 {
        let mut next = Vec::new();
        for d in dirs {
            for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let path = entry.path();
                // devpts, mqueue and shm are mounted by the container itself.
                if [
                    "/dev/pts",
                    "/dev/shm",
                    "/dev/mqueue",
                    "/dev/console",
                    "/dev/ptmx",
                ]
                .iter()
                .any(|p| path == Path::new(p))
                {
                    continue;
                }
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                let ft = meta.file_type();
                let kind = if ft.is_char_device() {
                    "c"
                } else if ft.is_block_device() {
                    "b"
                } else {
                    if ft.is_dir() {
                        next.push(path);
                    }
                    continue;
                };
                let dev = meta.rdev();
                out.push(HostDevice {
                    path: path.display().to_string(),
                    kind,
                    major: ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
                    minor: (dev & 0xff) | ((dev >> 12) & !0xff),
                    file_mode: meta.mode() & 0o7777,
                    uid: meta.uid(),
                    gid: meta.gid(),
                });
            }
        }
        dirs = next;
        depth += 1;
    }
    out
}

/// CPU time and working set of a cgroup (working set as cAdvisor and the
/// kubelet compute it: usage minus inactive file pages).
pub fn stats(cgroups_path: &str) -> (Option<u64>, Option<u64>) {
    Hierarchy::host().stats(cgroups_path)
}

impl Hierarchy {
    /// See [`stats`].
    pub fn stats(&self, cgroups_path: &str) -> (Option<u64>, Option<u64>) {
        let read = |p: PathBuf| std::fs::read_to_string(p).ok();
        let stat_value = |text: &str, key: &str| {
            text.lines().find_map(|l| {
                l.strip_prefix(key)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        };
        if self.v2 {
            let d = self.dir("", cgroups_path);
            let cpu = read(d.join("cpu.stat"))
                .and_then(|t| stat_value(&t, "usage_usec"))
                .map(|us| us * 1000);
            let usage = read(d.join("memory.current")).and_then(|t| t.trim().parse::<u64>().ok());
            let inactive = read(d.join("memory.stat"))
                .and_then(|t| stat_value(&t, "inactive_file"))
                .unwrap_or(0);
            (cpu, usage.map(|u| u.saturating_sub(inactive)))
        } else {
            let cpu = read(self.dir("cpuacct", cgroups_path).join("cpuacct.usage"))
                .and_then(|t| t.trim().parse::<u64>().ok());
            let m = self.dir("memory", cgroups_path);
            let usage =
                read(m.join("memory.usage_in_bytes")).and_then(|t| t.trim().parse::<u64>().ok());
            let inactive = read(m.join("memory.stat"))
                .and_then(|t| stat_value(&t, "total_inactive_file"))
                .unwrap_or(0);
            (cpu, usage.map(|u| u.saturating_sub(inactive)))
        }
    }
}

/// Creates the cgroup `cgroups_path` (a pod's, which runc then nests the
/// pod's containers under) with the values of `r` that are set: cpu shares
/// (v2: the weight runc converts them to), cpu quota and period, memory
/// limit, pids limit. On v2 the controllers are enabled down the path first.
pub fn set_pod_resources(cgroups_path: &str, r: &LinuxContainerResources) -> std::io::Result<()> {
    Hierarchy::host().set_pod_resources(cgroups_path, r)
}

impl Hierarchy {
    /// See [`set_pod_resources`].
    pub fn set_pod_resources(
        &self,
        cgroups_path: &str,
        r: &LinuxContainerResources,
    ) -> std::io::Result<()> {
        let write = |controller: &str, file: &str, value: String| -> std::io::Result<()> {
            let d = self.dir(controller, cgroups_path);
            std::fs::create_dir_all(&d)?;
            let path = d.join(file);
            std::fs::write(&path, &value).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("writing {value:?} to {}: {e}", path.display()),
                )
            })
        };
        let quota = r.cpu_quota.filter(|q| *q > 0);
        let period = r.cpu_period.unwrap_or(100_000);
        if self.v2 {
            let mut at = self.root.clone();
            for seg in cgroups_path.split('/').filter(|s| !s.is_empty()) {
                // Best effort: a controller the host lacks is not ours to add.
                let _ = std::fs::write(at.join("cgroup.subtree_control"), "+cpu +memory +pids");
                at = at.join(seg);
                std::fs::create_dir_all(&at)?;
            }
            if let Some(shares) = r.cpu_shares {
                write("", "cpu.weight", shares_to_weight(shares).to_string())?;
            }
            if let Some(q) = quota {
                write("", "cpu.max", format!("{q} {period}"))?;
            }
            if let Some(m) = r.memory_limit_in_bytes {
                write("", "memory.max", m.to_string())?;
            }
            if let Some(p) = r.pids_limit {
                write("", "pids.max", p.to_string())?;
            }
        } else {
            if let Some(shares) = r.cpu_shares {
                write("cpu", "cpu.shares", shares.to_string())?;
            }
            if let Some(q) = quota {
                write("cpu", "cpu.cfs_period_us", period.to_string())?;
                write("cpu", "cpu.cfs_quota_us", q.to_string())?;
            }
            if let Some(m) = r.memory_limit_in_bytes {
                write("memory", "memory.limit_in_bytes", m.to_string())?;
            }
            if let Some(p) = r.pids_limit {
                write("pids", "pids.max", p.to_string())?;
            }
        }
        Ok(())
    }
}

/// runc's `ConvertCPUSharesToCgroupV2Value`: shares 2..262144 onto
/// weights 1..10000.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// Removes the cgroup `cgroups_path` and everything below it in every
/// hierarchy, deepest first; cgroups that still hold processes stay.
pub fn remove_tree(cgroups_path: &str) {
    if cgroups_path.trim_start_matches('/').is_empty() {
        return;
    }
    for dir in dirs(cgroups_path) {
        remove_dirs(&dir);
    }
}

/// The directory of `cgroups_path` in every hierarchy (the one unified
/// hierarchy on v2), whether it exists or not.
pub fn dirs(cgroups_path: &str) -> Vec<PathBuf> {
    let rel = cgroups_path.trim_start_matches('/');
    if is_v2() {
        return vec![Path::new(MOUNT).join(rel)];
    }
    std::fs::read_dir(MOUNT)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.is_symlink())
        .map(|root| root.join(rel))
        .collect()
}

fn remove_dirs(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_dirs(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_makes_one_absolute_path() {
        assert_eq!(
            join(&["/kubepods", "burstable/pod1/", "abc"]),
            "/kubepods/burstable/pod1/abc"
        );
        assert_eq!(join(&["", "x"]), "/x");
        assert_eq!(join(&[]), "/");
    }

    #[test]
    fn shares_map_onto_v2_weights_as_runc_maps_them() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    fn read(path: PathBuf) -> String {
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn guaranteed_pod() -> LinuxContainerResources {
        LinuxContainerResources {
            cpu_shares: Some(512),
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            memory_limit_in_bytes: Some(64 << 20),
            pids_limit: Some(100),
            ..Default::default()
        }
    }

    // The host here is cgroup v1; these run the v2 code against a directory
    // laid out as the unified hierarchy, so both layouts are exercised.
    #[test]
    fn a_v2_pod_cgroup_gets_unified_files_and_controllers_down_its_path() {
        let tmp = tempfile::tempdir().unwrap();
        let h = Hierarchy {
            root: tmp.path().to_path_buf(),
            v2: true,
        };
        h.set_pod_resources("/kubepods/podabc", &guaranteed_pod())
            .unwrap();
        let pod = tmp.path().join("kubepods/podabc");
        assert_eq!(read(pod.join("cpu.weight")), "20");
        assert_eq!(read(pod.join("cpu.max")), "50000 100000");
        assert_eq!(read(pod.join("memory.max")), (64u64 << 20).to_string());
        assert_eq!(read(pod.join("pids.max")), "100");
        // Enabled in every ancestor, so the pod cgroup has the controllers;
        // runc enables them below it for the containers.
        for d in [tmp.path().to_path_buf(), tmp.path().join("kubepods")] {
            assert_eq!(read(d.join("cgroup.subtree_control")), "+cpu +memory +pids");
        }
        assert!(!pod.join("cgroup.subtree_control").exists());
        assert!(!pod.join("cpu.shares").exists());
        assert_eq!(h.oom_file("/kubepods/podabc"), pod.join("memory.events"));
    }

    #[test]
    fn a_v1_pod_cgroup_gets_one_directory_per_controller() {
        let tmp = tempfile::tempdir().unwrap();
        let h = Hierarchy {
            root: tmp.path().to_path_buf(),
            v2: false,
        };
        h.set_pod_resources("/kubepods/podabc", &guaranteed_pod())
            .unwrap();
        let at = |c: &str, f: &str| read(tmp.path().join(c).join("kubepods/podabc").join(f));
        assert_eq!(at("cpu", "cpu.shares"), "512");
        assert_eq!(at("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(at("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(
            at("memory", "memory.limit_in_bytes"),
            (64u64 << 20).to_string()
        );
        assert_eq!(at("pids", "pids.max"), "100");
        assert_eq!(
            h.oom_file("/kubepods/podabc"),
            tmp.path().join("memory/kubepods/podabc/memory.oom_control")
        );
    }

    #[test]
    fn unset_values_are_left_to_the_kernel_defaults() {
        let tmp = tempfile::tempdir().unwrap();
        let h = Hierarchy {
            root: tmp.path().to_path_buf(),
            v2: true,
        };
        let best_effort = LinuxContainerResources {
            cpu_shares: Some(2),
            ..Default::default()
        };
        h.set_pod_resources("/kubepods/besteffort/pod1", &best_effort)
            .unwrap();
        let pod = tmp.path().join("kubepods/besteffort/pod1");
        assert_eq!(read(pod.join("cpu.weight")), "1");
        for f in ["cpu.max", "memory.max", "pids.max"] {
            assert!(!pod.join(f).exists(), "{f} written");
        }
    }

    #[test]
    fn stats_read_cpu_time_and_working_set_in_either_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let v2 = Hierarchy {
            root: tmp.path().join("v2"),
            v2: true,
        };
        let d = v2.dir("", "/pod");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").unwrap();
        std::fs::write(d.join("memory.current"), "10000\n").unwrap();
        std::fs::write(d.join("memory.stat"), "anon 6000\ninactive_file 3000\n").unwrap();
        assert_eq!(v2.stats("/pod"), (Some(1_500_000), Some(7000)));

        let v1 = Hierarchy {
            root: tmp.path().join("v1"),
            v2: false,
        };
        let cpu = v1.dir("cpuacct", "/pod");
        let mem = v1.dir("memory", "/pod");
        std::fs::create_dir_all(&cpu).unwrap();
        std::fs::create_dir_all(&mem).unwrap();
        std::fs::write(cpu.join("cpuacct.usage"), "2500\n").unwrap();
        std::fs::write(mem.join("memory.usage_in_bytes"), "10000\n").unwrap();
        std::fs::write(
            mem.join("memory.stat"),
            "inactive_file 1\ntotal_inactive_file 4000\n",
        )
        .unwrap();
        assert_eq!(v1.stats("/pod"), (Some(2500), Some(6000)));
        assert_eq!(v1.stats("/missing"), (None, None));
    }
}
