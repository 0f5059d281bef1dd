//! The datastore behind the API server: an etcd-shaped, revisioned key-value
//! contract ([`Store`]), its embedded backend ([`embedded::Embedded`], the
//! default) and its etcd backend ([`etcd::Etcd`], for HA), plus the
//! conformance suite and crash harness that every backend must pass
//! ([`testing`]).
//!
//! Only the API server talks to a `Store`; every other component is an API
//! client.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

pub mod embedded;
mod error;
pub mod etcd;
pub mod keys;
pub mod testing;

pub use error::StoreError;

/// A store revision. Revisions start at 1 for the first change of an empty
/// store; `0` means "no revision" (an empty store, or "the latest" in a
/// request).
pub type Revision = i64;

/// The id of a lease. `0` means "no lease".
pub type LeaseId = i64;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Largest value a client may write: Kubernetes' (and etcd's default) request
/// cap of 1.5 MiB.
pub const MAX_VALUE_BYTES: usize = 1536 * 1024;

/// Largest key a client may write. Kubernetes keys are
/// `/registry/<group>/<resource>/<namespace>/<name>`, each name at most 253
/// bytes, so 3 KiB leaves ample room.
pub const MAX_KEY_BYTES: usize = 3 * 1024;

/// One key at one revision.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Bytes,
    pub value: Bytes,
    /// Revision of the change that created the key (since its last deletion).
    pub create_revision: Revision,
    /// Revision of the change that last wrote the key.
    pub mod_revision: Revision,
    /// Number of writes since creation: 1 after create, +1 per update.
    pub version: i64,
    /// Lease the key is attached to, `0` for none.
    pub lease: LeaseId,
}

impl fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyValue")
            .field("key", &String::from_utf8_lossy(&self.key))
            .field("value_len", &self.value.len())
            .field("create_revision", &self.create_revision)
            .field("mod_revision", &self.mod_revision)
            .field("version", &self.version)
            .field("lease", &self.lease)
            .finish()
    }
}

/// What a change did to its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created or updated; `kv` holds the new value.
    Put,
    /// The key was deleted; `kv` holds the key, `mod_revision` is the
    /// revision of the deletion, the value is empty.
    Delete,
}

/// One committed change, as a watcher sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    /// The key's value before this change: present for updates and deletes,
    /// absent for creates (and for changes whose previous value has been
    /// compacted away).
    pub prev: Option<KeyValue>,
}

impl Event {
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// A read of the keys under a prefix at one revision.
#[derive(Clone, Debug, Default)]
pub struct RangeRequest {
    /// Keys that start with this prefix are returned (all keys if empty).
    pub prefix: Vec<u8>,
    /// Start from this key (inclusive) instead of the start of the prefix;
    /// used to continue a paged read.
    pub start: Option<Vec<u8>>,
    /// Read at this revision; `0` reads the latest.
    pub revision: Revision,
    /// At most this many keys; `0` means no limit.
    pub limit: usize,
}

/// The answer to a [`RangeRequest`].
#[derive(Clone, Debug, Default)]
pub struct RangeResponse {
    /// Matching keys in ascending byte order.
    pub kvs: Vec<KeyValue>,
    /// The revision the read was served at. To read the next page at the same
    /// revision, pass it back with `start` set to [`keys::next_key`] of the
    /// last key.
    pub revision: Revision,
    /// Whether more keys matched beyond `limit`.
    pub more: bool,
}

/// A stream of committed changes in revision order. It ends with an error
/// when the watch cannot go on ([`StoreError::Compacted`] at the start,
/// [`StoreError::WatchTooSlow`] when the watcher fell behind); the caller
/// then re-lists and watches again.
pub type WatchStream = BoxStream<'static, Result<Event>>;

/// Facts about a snapshot written by [`Store::snapshot`].
#[derive(Clone, Debug)]
pub struct SnapshotInfo {
    /// The revision whose state the snapshot holds.
    pub revision: Revision,
    pub size_bytes: u64,
}

/// An etcd-shaped, revisioned key-value store.
///
/// # Invariants every backend keeps
///
/// 1. **One global revision.** Every committed create, update and delete
///    gets its own revision, one greater than the revision before it.
///    Failed requests change nothing and consume no revision. (The keys a
///    lease expiry or revoke deletes get one revision each on the embedded
///    store; etcd deletes them all at one revision.)
/// 2. **Per-key metadata.** A key's `create_revision` is the revision that
///    created it, `mod_revision` the one that last wrote it, `version` counts
///    writes since creation (1 after create). Deleting a key and creating it
///    again starts over.
/// 3. **Durability.** When a write returns `Ok`, it survives a crash of the
///    process (and, for the embedded backend, of the machine) at any later
///    instant. A write that returns `Err` left nothing behind.
/// 4. **Reads are consistent.** A read at revision `r` returns exactly the
///    state after change `r`. A read at the latest revision reflects every
///    write that returned before the read began.
/// 5. **Watches are complete and ordered.** A watch from revision `r`
///    delivers every change with revision `> r`, each exactly once, in
///    revision order, with the previous value on updates and deletes, and
///    never skips one silently: if it cannot deliver, it ends with an error.
/// 6. **Compaction.** After `compact(c)`, reads at revisions `< c` and
///    watches that would need changes `< c` fail with
///    [`StoreError::Compacted`]; the state at every revision `>= c` stays
///    readable.
/// 7. **Leases.** A key attached to a lease is deleted (as a normal, watched
///    change) when the lease expires or is revoked. A lease expires when it
///    has not been kept alive for its TTL.
/// 8. **Limits.** Keys are non-empty and at most [`MAX_KEY_BYTES`]; values
///    at most [`MAX_VALUE_BYTES`]. Larger writes fail with a clear error and
///    store nothing.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The revision of the latest committed change.
    async fn current_revision(&self) -> Result<Revision>;

    /// The value of `key` at `revision` (`0` = latest), with the revision the
    /// read was served at.
    async fn get(&self, key: &[u8], revision: Revision) -> Result<(Option<KeyValue>, Revision)>;

    /// Keys under a prefix, in key order, paged with `limit` and `start`.
    async fn range(&self, request: RangeRequest) -> Result<RangeResponse>;

    /// How many keys exist under `prefix` at the latest revision.
    async fn count(&self, prefix: &[u8]) -> Result<i64>;

    /// How many keys [`Store::range`] would return for `request` without a
    /// limit, counted without reading their values (a list's
    /// `remainingItemCount`).
    async fn count_range(&self, request: RangeRequest) -> Result<i64>;

    /// Creates `key`; fails with [`StoreError::AlreadyExists`] if it exists.
    /// Returns the new key-value.
    async fn create(&self, key: &[u8], value: Bytes, lease: LeaseId) -> Result<KeyValue>;

    /// Replaces the value of `key` if its `mod_revision` is still
    /// `expected_revision`; otherwise fails with [`StoreError::Conflict`]
    /// (carrying the current value) or [`StoreError::NotFound`].
    async fn update(
        &self,
        key: &[u8],
        value: Bytes,
        expected_revision: Revision,
        lease: LeaseId,
    ) -> Result<KeyValue>;

    /// Deletes `key`, only if its `mod_revision` is `expected_revision` when
    /// that is given. Returns the revision of the deletion and the value
    /// that was deleted.
    async fn delete(
        &self,
        key: &[u8],
        expected_revision: Option<Revision>,
    ) -> Result<(Revision, KeyValue)>;

    /// Every change to keys under `prefix` with revision `> from_revision`.
    /// `from_revision = 0` starts with the first change still held (use a
    /// range to list the current state, then watch from its revision).
    async fn watch(&self, prefix: &[u8], from_revision: Revision) -> Result<WatchStream>;

    /// Discards history below `revision` (see invariant 6).
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The revision of the last compaction (`0` if never compacted).
    async fn compacted_revision(&self) -> Result<Revision>;

    /// Grants a lease that expires after `ttl` unless kept alive.
    async fn lease_grant(&self, ttl: Duration) -> Result<LeaseId>;

    /// Restarts the lease's TTL; returns the TTL. Fails with
    /// [`StoreError::LeaseNotFound`] if it expired or never existed.
    async fn lease_keep_alive(&self, lease: LeaseId) -> Result<Duration>;

    /// Ends the lease now and deletes the keys attached to it.
    async fn lease_revoke(&self, lease: LeaseId) -> Result<()>;

    /// Writes a consistent snapshot of the whole store to `path` while the
    /// store keeps serving.
    async fn snapshot(&self, path: &Path) -> Result<SnapshotInfo>;
}

/// Checks a write against the limits of invariant 8 before any backend
/// touches storage.
pub(crate) fn check_write(key: &[u8], value: &[u8]) -> Result<()> {
    check_key(key)?;
    if value.len() > MAX_VALUE_BYTES {
        return Err(StoreError::ValueTooLarge {
            key: error::key_string(key),
            size: value.len(),
            limit: MAX_VALUE_BYTES,
        });
    }
    Ok(())
}

pub(crate) fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(StoreError::EmptyKey);
    }
    if key.len() > MAX_KEY_BYTES {
        let shown = String::from_utf8_lossy(&key[..64]).into_owned() + "...";
        return Err(StoreError::KeyTooLarge {
            key: shown,
            size: key.len(),
            limit: MAX_KEY_BYTES,
        });
    }
    Ok(())
}
