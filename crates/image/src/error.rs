//! The image store's errors. The node agent maps them to container waiting
//! reasons (`ErrImagePull`, `ImagePullBackOff`) and shows the message, so
//! registry failures read like containerd's.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The name is not a valid image reference.
    #[error("invalid reference format: {reference}: {reason}")]
    InvalidReference { reference: String, reason: String },

    /// The registry has no such manifest (HTTP 404 on the manifest).
    #[error("failed to resolve reference \"{reference}\": {reference}: not found")]
    NotFound { reference: String },

    /// The registry refused the credentials, or none were given where they
    /// are needed.
    #[error("failed to resolve reference \"{reference}\": {detail}")]
    Unauthorized { reference: String, detail: String },

    /// The registry could not be reached or answered with an unexpected
    /// status; the message is containerd's wording.
    #[error("{message}")]
    Registry { reference: String, message: String },

    /// A blob's content does not match its digest.
    #[error("failed to verify {what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    /// An image document (manifest, index, config, archive) is not what the
    /// OCI and docker formats allow, or a layer tarball is unsafe.
    #[error("invalid {what}: {reason}")]
    Malformed { what: String, reason: String },

    /// No image in the store matches the name or ID.
    #[error("image \"{0}\" not found")]
    ImageNotFound(String),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The registry has no such image: retrying will not help until the
    /// image is pushed.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Error::Unauthorized { .. })
    }

    /// The image itself is broken (bad JSON, digest mismatch, unsafe layer).
    pub fn is_malformed(&self) -> bool {
        matches!(self, Error::Malformed { .. } | Error::DigestMismatch { .. })
    }

    pub(crate) fn malformed(what: impl Into<String>, reason: impl std::fmt::Display) -> Error {
        Error::Malformed {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
