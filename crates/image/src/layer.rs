//! Unpacking a layer tarball (uncompressed, gzip or zstd) into a directory
//! that overlayfs can use as a lower layer: OCI whiteouts become overlayfs
//! whiteouts (a 0:0 character device for `.wh.<name>`, the xattr
//! `trusted.overlay.opaque=y` for `.wh..wh..opq`), ownership, modes,
//! times, links, device nodes and xattrs are kept, and no entry can write
//! outside the directory (`..`, absolute or relative symlinks followed
//! during extraction).

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, XattrFlags, CWD};

use crate::digest::Hashing;
use crate::error::{Error, Result};

const WHITEOUT_PREFIX: &str = ".wh.";
const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// How a layer blob is compressed, told by its first bytes (media types
/// lie often enough: docker archives say nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// A reader of the uncompressed tar stream inside `blob`.
pub fn open_decompressed(blob: &Path) -> Result<Box<dyn Read>> {
    let file = File::open(blob).map_err(Error::io(blob))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let head = reader.fill_buf().map_err(Error::io(blob))?;
    Ok(match Compression::detect(head) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(reader).map_err(Error::io(blob))?)
        }
        Compression::None => Box::new(reader),
    })
}

/// Unpacks the layer in `blob` into the empty directory `dest` and returns
/// the digest of the uncompressed tar (the layer's diff ID). With
/// `expected_diff_id`, a different digest is an error.
pub fn unpack(blob: &Path, dest: &Path, expected_diff_id: Option<&str>) -> Result<String> {
    let what = || format!("layer {}", blob.display());
    let mut stream = Hashing::new(open_decompressed(blob)?);
    fs::set_permissions(dest, fs::Permissions::from_mode(0o755)).map_err(Error::io(dest))?;
    let mut dirs = Vec::new();
    {
        let mut archive = tar::Archive::new(&mut stream);
        let entries = archive.entries().map_err(|e| Error::malformed(what(), e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| Error::malformed(what(), e))?;
            if let Some(dir) = unpack_entry(dest, &mut entry).map_err(|e| match e {
                Error::Io { path, source } if source.kind() == io::ErrorKind::InvalidData => {
                    Error::malformed(what(), format!("{}: {source}", path.display()))
                }
                e => e,
            })? {
                dirs.push(dir);
            }
        }
    }
    // The hash covers the whole stream, tar padding after the end included.
    io::copy(&mut stream, &mut io::sink()).map_err(|e| Error::malformed(what(), e))?;
    // Directory times last: writing into a directory changes its mtime.
    for (path, mtime) in dirs.iter().rev() {
        set_mtime(path, *mtime)?;
    }
    let (diff_id, _, _) = stream.finish();
    if let Some(expected) = expected_diff_id {
        if expected != diff_id {
            return Err(Error::DigestMismatch {
                what: format!("uncompressed {}", what()),
                expected: expected.to_string(),
                actual: diff_id,
            });
        }
    }
    Ok(diff_id)
}

/// What a PAX header says beyond the path.
#[derive(Default)]
struct Pax {
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<i64>,
    xattrs: Vec<(String, Vec<u8>)>,
}

fn read_pax<R: Read>(entry: &mut tar::Entry<R>) -> Pax {
    let mut pax = Pax::default();
    let Ok(Some(exts)) = entry.pax_extensions() else {
        return pax;
    };
    for ext in exts.flatten() {
        let Ok(key) = ext.key() else { continue };
        let value = ext.value_bytes();
        let text = std::str::from_utf8(value).unwrap_or("");
        match key {
            "uid" => pax.uid = text.parse().ok(),
            "gid" => pax.gid = text.parse().ok(),
            "mtime" => pax.mtime = text.split('.').next().and_then(|s| s.parse().ok()),
            k if k.starts_with("SCHILY.xattr.") => pax
                .xattrs
                .push((k["SCHILY.xattr.".len()..].to_string(), value.to_vec())),
            _ => {}
        }
    }
    pax
}

/// Unpacks one entry; returns a directory whose mtime is to be set at the
/// end.
fn unpack_entry<R: Read>(root: &Path, entry: &mut tar::Entry<R>) -> Result<Option<(PathBuf, i64)>> {
    let raw = entry
        .path()
        .map_err(|e| Error::malformed("layer entry path", e))?
        .into_owned();
    let kind = entry.header().entry_type();
    if matches!(
        kind,
        tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink
    ) {
        return Ok(None);
    }
    let rel = clean(&raw)?;
    let pax = read_pax(entry);
    let header = entry.header();
    let mode = header.mode().unwrap_or(0o644) & 0o7777;
    let uid = pax.uid.or_else(|| header.uid().ok()).unwrap_or(0) as u32;
    let gid = pax.gid.or_else(|| header.gid().ok()).unwrap_or(0) as u32;
    let mtime = pax
        .mtime
        .or_else(|| header.mtime().ok().map(|m| m as i64))
        .unwrap_or(0);

    let Some(base) = rel.file_name().map(|b| b.to_string_lossy().into_owned()) else {
        // The layer's root itself (`./`).
        if kind.is_dir() {
            apply_attrs(root, uid, gid, Some(mode), &pax.xattrs)?;
            return Ok(Some((root.to_path_buf(), mtime)));
        }
        return Ok(None);
    };
    let parent = resolve_in_root(root, rel.parent().unwrap_or(Path::new("")))?;
    fs::create_dir_all(&parent).map_err(Error::io(&parent))?;

    if base == WHITEOUT_OPAQUE {
        rustix::fs::lsetxattr(&parent, OPAQUE_XATTR, b"y", XattrFlags::empty())
            .map_err(|e| Error::io(&parent)(e.into()))?;
        return Ok(None);
    }
    if base.starts_with(WHITEOUT_META_PREFIX) {
        // aufs hard-link directories and the like: nothing for overlayfs.
        return Ok(None);
    }
    if let Some(hidden) = base.strip_prefix(WHITEOUT_PREFIX) {
        let path = parent.join(hidden);
        remove_existing(&path, false)?;
        rustix::fs::mknodat(CWD, &path, FileType::CharacterDevice, Mode::empty(), 0)
            .map_err(|e| Error::io(&path)(e.into()))?;
        apply_attrs(&path, uid, gid, None, &[])?;
        return Ok(None);
    }

    let path = parent.join(&base);
    remove_existing(&path, kind.is_dir())?;
    let io_err = Error::io(path.clone());
    match kind {
        tar::EntryType::Directory => {
            if !path.is_dir() {
                fs::create_dir(&path).map_err(Error::io(&path))?;
            }
            apply_attrs(&path, uid, gid, Some(mode), &pax.xattrs)?;
            return Ok(Some((path, mtime)));
        }
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(Error::io(&path))?;
            io::copy(entry, &mut file)
                .map_err(|e| Error::io(&path)(io::Error::new(io::ErrorKind::InvalidData, e)))?;
        }
        tar::EntryType::Symlink => {
            let target = entry
                .link_name()
                .map_err(|e| Error::malformed("layer symlink", e))?
                .ok_or_else(|| {
                    Error::malformed("layer symlink", format!("{} has no target", raw.display()))
                })?;
            // The target is only stored, never followed here: it is read
            // inside the container's root.
            std::os::unix::fs::symlink(&*target, &path).map_err(io_err)?;
            apply_attrs(&path, uid, gid, None, &pax.xattrs)?;
            set_mtime(&path, mtime)?;
            return Ok(None);
        }
        tar::EntryType::Link => {
            let target = entry
                .link_name()
                .map_err(|e| Error::malformed("layer hard link", e))?
                .ok_or_else(|| {
                    Error::malformed(
                        "layer hard link",
                        format!("{} has no target", raw.display()),
                    )
                })?;
            let target_rel = clean(&target)?;
            let target_parent =
                resolve_in_root(root, target_rel.parent().unwrap_or(Path::new("")))?;
            let target_path = match target_rel.file_name() {
                Some(name) => target_parent.join(name),
                None => {
                    return Err(Error::malformed(
                        "layer hard link",
                        "link to the layer root",
                    ))
                }
            };
            fs::hard_link(&target_path, &path).map_err(io_err)?;
            return Ok(None);
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            let file_type = match kind {
                tar::EntryType::Char => FileType::CharacterDevice,
                tar::EntryType::Block => FileType::BlockDevice,
                _ => FileType::Fifo,
            };
            let major = header.device_major().ok().flatten().unwrap_or(0);
            let minor = header.device_minor().ok().flatten().unwrap_or(0);
            rustix::fs::mknodat(
                CWD,
                &path,
                file_type,
                Mode::from_bits_truncate(mode),
                rustix::fs::makedev(major, minor),
            )
            .map_err(|e| io_err(e.into()))?;
        }
        other => {
            tracing::debug!(entry = %raw.display(), kind = ?other, "skipping layer entry of unsupported type");
            return Ok(None);
        }
    }
    apply_attrs(&path, uid, gid, Some(mode), &pax.xattrs)?;
    set_mtime(&path, mtime)?;
    Ok(None)
}

/// Owner, then mode (chown clears set-user-ID bits), then xattrs.
fn apply_attrs(
    path: &Path,
    uid: u32,
    gid: u32,
    mode: Option<u32>,
    xattrs: &[(String, Vec<u8>)],
) -> Result<()> {
    rustix::fs::chownat(
        CWD,
        path,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::io(path)(e.into()))?;
    if let Some(mode) = mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(Error::io(path))?;
    }
    for (name, value) in xattrs {
        if let Err(e) = rustix::fs::lsetxattr(path, name.as_str(), value, XattrFlags::empty()) {
            tracing::debug!(path = %path.display(), xattr = %name, error = %e, "layer xattr not kept");
        }
    }
    Ok(())
}

fn set_mtime(path: &Path, mtime: i64) -> Result<()> {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        CWD,
        path,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::io(path)(e.into()))
}

/// Makes room for a new entry at `path`: a directory over a directory is
/// merged, anything else replaces what is there.
fn remove_existing(path: &Path, new_is_dir: bool) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() && new_is_dir => Ok(()),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(Error::io(path)),
        Ok(_) => fs::remove_file(path).map_err(Error::io(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path)(e)),
    }
}

/// The entry's path relative to the layer root, refusing `..` that would
/// climb out of it. A leading `/` or `./` is dropped.
pub fn clean(raw: &Path) -> Result<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(Error::malformed(
                        "layer",
                        format!(
                            "entry {:?} points outside the layer",
                            raw.display().to_string()
                        ),
                    ));
                }
            }
            Component::Prefix(_) => {
                return Err(Error::malformed(
                    "layer",
                    format!("entry {:?}", raw.display().to_string()),
                ))
            }
        }
    }
    Ok(parts.iter().collect())
}

/// `rel` inside `root`, with symlinks already unpacked into `root` followed
/// as the container would see them (absolute targets and `..` stay inside
/// `root`), so that no write goes through a symlink to the host.
pub fn resolve_in_root(root: &Path, rel: &Path) -> Result<PathBuf> {
    let mut resolved: Vec<OsString> = Vec::new();
    let mut pending: Vec<OsString> = components_rev(rel);
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        if part == "." || part.is_empty() {
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&part);
        match fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > 255 {
                    return Err(Error::malformed(
                        "layer",
                        format!("too many symlinks resolving {}", rel.display()),
                    ));
                }
                let target = fs::read_link(&candidate).map_err(Error::io(&candidate))?;
                if target.is_absolute() {
                    resolved.clear();
                }
                pending.extend(components_rev(&target));
            }
            Ok(m) if !m.is_dir() => {
                return Err(Error::malformed(
                    "layer",
                    format!(
                        "{} is not a directory",
                        candidate.strip_prefix(root).unwrap_or(&candidate).display()
                    ),
                ))
            }
            _ => resolved.push(part),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

fn components_rev(p: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    v.reverse();
    v
}

#[cfg(test)]
mod tests;
