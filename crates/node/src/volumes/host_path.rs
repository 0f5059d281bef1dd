//! hostPath `type` checks (upstream's `checkType` in
//! pkg/volume/hostpath/host_path.go), with its messages.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TypeCheckError {
    #[error("hostPath type check failed: {path} is not a directory")]
    NotDirectory { path: String },
    #[error("hostPath type check failed: {path} is not a file")]
    NotFile { path: String },
    #[error("hostPath type check failed: {path} is not a socket file")]
    NotSocket { path: String },
    #[error("hostPath type check failed: {path} is not a character device")]
    NotCharDevice { path: String },
    #[error("hostPath type check failed: {path} is not a block device")]
    NotBlockDevice { path: String },
    #[error("{0}")]
    Other(String),
}

/// Checks (and for the `*OrCreate` types, makes) `path` as `type_` says.
/// An empty or absent type checks nothing.
pub fn check_type(path: &Path, type_: Option<&str>) -> Result<(), TypeCheckError> {
    let display = path.display().to_string();
    let meta = fs::metadata(path);
    let exists = match &meta {
        Ok(_) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        // Dangling symlinks, permission errors: as upstream, "does not exist".
        Err(_) => false,
    };
    let file_type = meta.as_ref().ok().map(|m| m.file_type());
    match type_.unwrap_or("") {
        "" => Ok(()),
        "DirectoryOrCreate" => {
            if !exists {
                return make_dir(path);
            }
            if !file_type.is_some_and(|t| t.is_dir()) {
                return Err(TypeCheckError::NotDirectory { path: display });
            }
            Ok(())
        }
        "Directory" => {
            if !file_type.is_some_and(|t| t.is_dir()) {
                return Err(TypeCheckError::NotDirectory { path: display });
            }
            Ok(())
        }
        "FileOrCreate" => {
            if !exists {
                return make_file(path);
            }
            if !file_type.is_some_and(|t| t.is_file()) {
                return Err(TypeCheckError::NotFile { path: display });
            }
            Ok(())
        }
        "File" => {
            if !file_type.is_some_and(|t| t.is_file()) {
                return Err(TypeCheckError::NotFile { path: display });
            }
            Ok(())
        }
        "Socket" => {
            if !file_type.is_some_and(|t| t.is_socket()) {
                return Err(TypeCheckError::NotSocket { path: display });
            }
            Ok(())
        }
        "CharDevice" => {
            if !file_type.is_some_and(|t| t.is_char_device()) {
                return Err(TypeCheckError::NotCharDevice { path: display });
            }
            Ok(())
        }
        "BlockDevice" => {
            if !file_type.is_some_and(|t| t.is_block_device()) {
                return Err(TypeCheckError::NotBlockDevice { path: display });
            }
            Ok(())
        }
        other => Err(TypeCheckError::Other(format!(
            "{other} is an invalid volume type"
        ))),
    }
}

/// `os.MkdirAll(path, 0755)`.
fn make_dir(path: &Path) -> Result<(), TypeCheckError> {
    fs::create_dir_all(path).map_err(|e| {
        TypeCheckError::Other(format!(
            "hostPath type check failed: could not create directory {}: {e}",
            path.display()
        ))
    })?;
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o755));
    Ok(())
}

/// An empty file with mode 0644; its directory must exist, as upstream.
fn make_file(path: &Path) -> Result<(), TypeCheckError> {
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| {
            TypeCheckError::Other(format!(
                "hostPath type check failed: could not create file {}: {e}",
                path.display()
            ))
        })?;
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o644));
    Ok(())
}
