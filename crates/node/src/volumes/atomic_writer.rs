//! Writes a set of files into a volume so that a reader sees either all of
//! the old ones or all of the new ones (upstream's `AtomicWriter`,
//! pkg/volume/util/atomic_writer.go):
//!
//! ```text
//! <volume>/..2026_11_22_21_00_00.123456789/<files>   the data of one write
//! <volume>/..data -> ..2026_11_22_21_00_00.123456789   swapped by rename(2)
//! <volume>/<key> -> ..data/<key>                      what users open
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path};

pub const DATA_DIR: &str = "..data";
const NEW_DATA_DIR: &str = "..data_tmp";
const MAX_FILE_NAME_LENGTH: usize = 255;
const MAX_PATH_LENGTH: usize = 4096;

/// One file of a payload: its bytes and permission bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileProjection {
    pub data: Vec<u8>,
    pub mode: u32,
}

impl FileProjection {
    pub fn new(data: impl Into<Vec<u8>>, mode: u32) -> Self {
        FileProjection {
            data: data.into(),
            mode,
        }
    }
}

/// Relative path -> file.
pub type Payload = BTreeMap<String, FileProjection>;

/// Runs on a new data directory before it becomes visible (fsGroup).
pub type SetPerms<'a> = &'a dyn Fn(&Path) -> io::Result<()>;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("invalid path: {0}")]
    InvalidPath(String),
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(context: &'static str, path: &Path) -> impl FnOnce(io::Error) -> WriteError {
    let path = path.display().to_string();
    move |source| WriteError::Io {
        context,
        path,
        source,
    }
}

/// Upstream's `validatePath`.
pub fn validate_path(path: &str) -> Result<(), WriteError> {
    let invalid = |m: String| Err(WriteError::InvalidPath(m));
    if path.is_empty() {
        return invalid(format!("must not be empty: {path:?}"));
    }
    if path.starts_with('/') {
        return invalid(format!("must be relative path: {path}"));
    }
    if path.len() > MAX_PATH_LENGTH {
        return invalid(format!(
            "must be less than or equal to {MAX_PATH_LENGTH} characters"
        ));
    }
    let items: Vec<&str> = path.split('/').collect();
    for item in &items {
        if *item == ".." {
            return invalid(format!("must not contain '..': {path}"));
        }
        if item.len() > MAX_FILE_NAME_LENGTH {
            return invalid(format!(
                "filenames must be less than or equal to {MAX_FILE_NAME_LENGTH} characters"
            ));
        }
    }
    if items[0].starts_with("..") && items[0].len() > 2 {
        return invalid(format!("must not start with '..': {path}"));
    }
    Ok(())
}

/// `path.Clean` for the relative paths of a payload.
fn clean(path: &str) -> String {
    Path::new(path)
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Writes `payload` into `target_dir` (which must exist). Returns whether
/// anything changed. `set_perms` runs on the new data directory before it
/// becomes visible.
pub fn write(
    target_dir: &Path,
    payload: &Payload,
    set_perms: Option<SetPerms<'_>>,
) -> Result<bool, WriteError> {
    // (1) Validate the payload.
    let mut clean_payload = Payload::new();
    for (path, file) in payload {
        validate_path(path)?;
        clean_payload.insert(clean(path), file.clone());
    }

    // (2) The current data directory, if any.
    let data_dir_path = target_dir.join(DATA_DIR);
    let old_ts_dir = match fs::read_link(&data_dir_path) {
        Ok(p) => Some(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        // `..data` that is not a symlink: start over.
        Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => None,
        Err(e) => return Err(io_err("readlink", &data_dir_path)(e)),
    };
    let old_ts_path = old_ts_dir.as_ref().map(|d| target_dir.join(d));

    // (3), (4) What goes, and whether anything changed.
    let (paths_to_remove, should_write) = match &old_ts_path {
        None => (BTreeSet::new(), true),
        Some(old) => {
            let remove = paths_to_remove(&clean_payload, old)?;
            let changed = !remove.is_empty() || payload_differs(&clean_payload, old);
            (remove, changed)
        }
    };

    if should_write {
        // (5) A new timestamped directory.
        let ts_name = timestamp_dir_name();
        let ts_dir = target_dir.join(&ts_name);
        fs::create_dir(&ts_dir).map_err(io_err("create", &ts_dir))?;
        fs::set_permissions(&ts_dir, fs::Permissions::from_mode(0o755))
            .map_err(io_err("chmod", &ts_dir))?;
        // (6) The payload into it.
        if let Err(e) = write_payload_to_dir(&clean_payload, &ts_dir) {
            let _ = fs::remove_dir_all(&ts_dir);
            return Err(e);
        }
        // (7)
        if let Some(set_perms) = set_perms {
            set_perms(&ts_dir).map_err(io_err("set permissions of", &ts_dir))?;
        }
        // (8), (9) Swap `..data` atomically.
        let new_data_dir_path = target_dir.join(NEW_DATA_DIR);
        let _ = fs::remove_file(&new_data_dir_path);
        std::os::unix::fs::symlink(&ts_name, &new_data_dir_path)
            .map_err(io_err("symlink", &new_data_dir_path))?;
        fs::rename(&new_data_dir_path, &data_dir_path)
            .map_err(io_err("rename", &new_data_dir_path))?;
        // (10) User-visible names of removed top-level paths.
        for p in paths_to_remove.iter().filter(|p| !p.contains('/')) {
            let path = target_dir.join(p);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &path)(e)),
            }
        }
    }

    // (11) User-visible symlinks for the top level of the payload.
    for path in clean_payload.keys() {
        let top = path.split('/').next().unwrap_or(path);
        let link = target_dir.join(top);
        if fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new(DATA_DIR).join(top), &link)
                .map_err(io_err("symlink", &link))?;
        }
    }

    // (12) The old data.
    if should_write {
        if let Some(old) = old_ts_path {
            let _ = fs::remove_dir_all(old);
        }
    }
    Ok(should_write)
}

fn timestamp_dir_name() -> String {
    let now = chrono::Utc::now();
    format!(
        "..{}.{:09}",
        now.format("%Y_%m_%d_%H_%M_%S"),
        now.timestamp_subsec_nanos()
    )
}

/// Every path (files and their directories) of the old data that the new
/// payload no longer has.
fn paths_to_remove(payload: &Payload, old_ts_dir: &Path) -> Result<BTreeSet<String>, WriteError> {
    let mut old = BTreeSet::new();
    walk(old_ts_dir, "", &mut old)?;
    let mut keep = BTreeSet::new();
    for p in payload.keys() {
        let mut prefix = String::new();
        for part in p.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            keep.insert(prefix.clone());
        }
    }
    Ok(old.difference(&keep).cloned().collect())
}

fn walk(dir: &Path, rel: &str, out: &mut BTreeSet<String>) -> Result<(), WriteError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("read", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("read", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk(&entry.path(), &rel, out)?;
        }
        out.insert(rel);
    }
    Ok(())
}

fn payload_differs(payload: &Payload, old_ts_dir: &Path) -> bool {
    payload.iter().any(|(path, file)| {
        let p = old_ts_dir.join(path);
        match (fs::symlink_metadata(&p), fs::read(&p)) {
            (Ok(meta), Ok(data)) => data != file.data || meta.mode() & 0o7777 != file.mode & 0o7777,
            _ => true,
        }
    })
}

fn write_payload_to_dir(payload: &Payload, dir: &Path) -> Result<(), WriteError> {
    for (path, file) in payload {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        fs::write(&full, &file.data).map_err(io_err("write", &full))?;
        // Set the mode explicitly: the umask applied at creation.
        fs::set_permissions(&full, fs::Permissions::from_mode(file.mode & 0o7777))
            .map_err(io_err("chmod", &full))?;
    }
    Ok(())
}
