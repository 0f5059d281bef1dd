//! Mount points of the host (`/proc/self/mountinfo`) and the few mounts a
//! volume needs: tmpfs for memory-backed volumes, bind mounts for local
//! persistent volumes, and their unmounting.

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

/// One line of `/proc/self/mountinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountInfo {
    pub mount_point: PathBuf,
    pub fs_type: String,
    /// In a shared peer group (`shared:N` among the optional fields).
    pub shared: bool,
}

/// Parses `/proc/self/mountinfo` (octal escapes such as `\040` decoded).
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let mount_point = fields.nth(4)?;
            let _options = fields.next()?;
            let mut shared = false;
            for f in fields.by_ref() {
                if f == "-" {
                    break;
                }
                shared |= f.starts_with("shared:");
            }
            let fs_type = fields.next()?;
            Some(MountInfo {
                mount_point: PathBuf::from(unescape(mount_point)),
                fs_type: fs_type.to_string(),
                shared,
            })
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn mounts() -> io::Result<Vec<MountInfo>> {
    Ok(parse_mountinfo(&std::fs::read_to_string(
        "/proc/self/mountinfo",
    )?))
}

/// `path` as the mount table spells it (symlinks resolved), when it exists.
fn real(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

/// The mount at exactly `path`, the last one when several are stacked.
pub fn mount_at(path: &Path) -> io::Result<Option<MountInfo>> {
    let path = real(path);
    Ok(mounts()?.into_iter().rev().find(|m| m.mount_point == path))
}

/// Mount points at or below `dir`, deepest first (the order to unmount).
pub fn mounts_under(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = real(dir);
    let dir = dir.as_path();
    let mut found: Vec<PathBuf> = mounts()?
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    Ok(found)
}

pub fn mount_tmpfs(dir: &Path, size: Option<u64>) -> io::Result<()> {
    let options = size.filter(|s| *s > 0).map(|s| format!("size={s}"));
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::empty(),
        options.as_deref(),
    )
    .map_err(io::Error::from)
}

pub fn bind_mount(source: &Path, target: &Path) -> io::Result<()> {
    nix::mount::mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(io::Error::from)
}

/// Unmounts `path`; a busy mount is detached (it goes when its last user
/// does) so that a pod's directory can always be cleaned up.
pub fn unmount(path: &Path) -> io::Result<()> {
    match nix::mount::umount2(path, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => {
            nix::mount::umount2(path, MntFlags::MNT_DETACH).map_err(io::Error::from)
        }
        Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Unmounts everything at or below `dir`, deepest first, then checks that
/// nothing is left (so that removing `dir` never reaches into a mount).
pub fn unmount_all_under(dir: &Path) -> io::Result<()> {
    for _ in 0..3 {
        let found = mounts_under(dir)?;
        if found.is_empty() {
            return Ok(());
        }
        for p in found {
            unmount(&p)
                .map_err(|e| io::Error::new(e.kind(), format!("unmount {}: {e}", p.display())))?;
        }
    }
    match mounts_under(dir)?.first() {
        None => Ok(()),
        Some(p) => Err(io::Error::other(format!(
            "{} is still mounted",
            p.display()
        ))),
    }
}

/// Makes `dir` a shared mount (recursively), bind-mounting it onto itself
/// first when it is not a mount point (upstream's `MakeRShared` of the
/// kubelet's root), so that mounts made under it reach containers that
/// mount them with HostToContainer or Bidirectional propagation.
pub fn make_rshared(dir: &Path) -> io::Result<()> {
    let dir = real(dir);
    let all = mounts()?;
    // The mount `dir` is on: the deepest mount point above it.
    let containing = all
        .iter()
        .rev()
        .filter(|m| dir.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.components().count());
    if containing.is_some_and(|m| m.shared) {
        return Ok(());
    }
    if containing.is_none_or(|m| m.mount_point != dir) {
        bind_mount(&dir, &dir)?;
    }
    nix::mount::mount(
        None::<&str>,
        &dir,
        None::<&str>,
        MsFlags::MS_SHARED | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(io::Error::from)
}
