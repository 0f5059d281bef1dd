//! fsGroup on volumes (upstream's `SetVolumeOwnership`,
//! pkg/volume/volume_linux.go): every file and directory gets the group,
//! group read/write (read-only volumes: read), directories also setgid and
//! group execute, so that files created later keep the group.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const RW_MASK: u32 = 0o660;
const RO_MASK: u32 = 0o440;
const EXEC_MASK: u32 = 0o110;
const SETGID: u32 = 0o2000;

/// Applies `fs_group` under `dir`. With policy `OnRootMismatch` nothing is
/// done when the root already has the group and permissions.
pub fn set_volume_ownership(
    dir: &Path,
    fs_group: u32,
    read_only: bool,
    policy: Option<&str>,
) -> io::Result<()> {
    if policy == Some("OnRootMismatch") && !root_mismatch(dir, fs_group, read_only)? {
        return Ok(());
    }
    walk(dir, &mut |path, meta| {
        change_file_permission(path, meta, fs_group, read_only)
    })
}

fn root_mismatch(dir: &Path, fs_group: u32, read_only: bool) -> io::Result<bool> {
    let meta = fs::metadata(dir)?;
    if meta.gid() != fs_group {
        return Ok(true);
    }
    let mask = if read_only { RO_MASK } else { RW_MASK } | SETGID | EXEC_MASK;
    Ok(meta.mode() & mask != mask)
}

fn change_file_permission(
    path: &Path,
    meta: &fs::Metadata,
    fs_group: u32,
    read_only: bool,
) -> io::Result<()> {
    std::os::unix::fs::lchown(path, None, Some(fs_group))?;
    // Symlinks keep their (meaningless) permissions.
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mut mask = if read_only { RO_MASK } else { RW_MASK };
    if meta.is_dir() {
        mask |= SETGID | EXEC_MASK;
    }
    fs::set_permissions(
        path,
        fs::Permissions::from_mode((meta.mode() & 0o7777) | mask),
    )
}

/// Visits `dir` and everything below it without following symlinks.
fn walk(dir: &Path, f: &mut dyn FnMut(&Path, &fs::Metadata) -> io::Result<()>) -> io::Result<()> {
    let meta = fs::symlink_metadata(dir)?;
    f(dir, &meta)?;
    if meta.is_dir() {
        for entry in fs::read_dir(dir)? {
            walk(&entry?.path(), f)?;
        }
    }
    Ok(())
}
