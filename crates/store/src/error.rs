//! Errors of the store. Every variant names the key or revision involved so
//! that the API server can turn it into the right Kubernetes `Status`.

use std::path::PathBuf;

use crate::{KeyValue, LeaseId, Revision};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key {key:?} already exists")]
    AlreadyExists { key: String },

    #[error("key {key:?} not found")]
    NotFound { key: String },

    /// A compare-and-swap found another revision; `current` is the key's
    /// value now (`None` if it no longer exists).
    #[error("key {key:?} has been modified: expected revision {expected}, found {}", current.as_ref().map(|kv| kv.mod_revision).unwrap_or(0))]
    Conflict {
        key: String,
        expected: Revision,
        current: Option<Box<KeyValue>>,
    },

    #[error("revision {requested} has been compacted (compacted revision is {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },

    #[error("revision {requested} is in the future (current revision is {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },

    #[error("key must not be empty")]
    EmptyKey,

    #[error("key {key:?} is {size} bytes, over the limit of {limit} bytes")]
    KeyTooLarge {
        key: String,
        size: usize,
        limit: usize,
    },

    #[error("value for key {key:?} is {size} bytes, over the limit of {limit} bytes")]
    ValueTooLarge {
        key: String,
        size: usize,
        limit: usize,
    },

    #[error("lease {lease} not found")]
    LeaseNotFound { lease: LeaseId },

    #[error("invalid lease TTL: {reason}")]
    InvalidTtl { reason: String },

    #[error("watch fell too far behind and was stopped; re-list and watch again")]
    WatchTooSlow,

    #[error("no space left on the device holding {path}; the write was not stored")]
    DiskFull { path: PathBuf },

    #[error("{path} is not a krate datastore: {reason}")]
    NotADatastore { path: PathBuf, reason: String },

    #[error("datastore {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("datastore error: {context}: {source}")]
    Sqlite {
        context: String,
        #[source]
        source: rusqlite::Error,
    },

    #[error("etcd: {context}: {source}")]
    Etcd {
        context: String,
        #[source]
        source: etcd_client::Error,
    },

    #[error("datastore is closed")]
    Closed,
}

impl StoreError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether this error means the request lost a race and may be retried on
    /// fresh data (the API server's 409 Conflict).
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}

pub(crate) fn key_string(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}
