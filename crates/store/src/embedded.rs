//! The embedded backend: the default datastore of a single krate server.
//!
//! # Engine
//!
//! SQLite (bundled through rusqlite) in WAL mode with `synchronous = FULL`.
//! It was chosen over a pure-Rust engine because it gives, off the shelf and
//! proven for two decades, the three properties this store cannot do
//! without: atomic multi-row commits that survive power loss at any instant,
//! readers that never block the writer (WAL snapshots, which is what makes
//! consistent paged ranges cheap), and reuse of freed pages, so disk use
//! follows live data rather than history. What made k3s' SQLite store grow
//! without bound (a history table never compacted, a WAL that never
//! checkpointed behind long readers) is handled here explicitly: automatic
//! compaction, short read transactions, and a truncating checkpoint after
//! every compaction. The measured write throughput against a real etcd on
//! the same machine is printed by `krate bench store` (see the README).
//!
//! # Shape
//!
//! - one writer thread ([`writer`]) with group commit;
//! - a pool of read connections; each read is one read transaction;
//! - watches fed from memory by the writer after each commit ([`watch`]),
//!   with history replayed from disk for watches that start in the past;
//! - a lease thread that revokes expired leases, and a compactor thread
//!   that keeps a window of history (default 5 minutes, at least 1000
//!   revisions).

mod read;
mod schema;
mod watch;
mod writer;

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::Connection;
use tokio::sync::oneshot;

use self::schema::sql_error;
use self::watch::Hub;
use self::writer::{WriteOp, WriteOutcome, WriteRequest, Writer};
use crate::{
    check_key, check_write, Event, KeyValue, LeaseId, RangeRequest, RangeResponse, Result,
    Revision, SnapshotInfo, Store, StoreError, WatchStream,
};

/// File name of the datastore inside its directory.
pub const DB_FILE: &str = "state.db";
const LOCK_FILE: &str = "state.lock";

/// Tuning of the embedded store.
#[derive(Clone, Debug)]
pub struct Options {
    /// Automatically compact history older than `compaction_window`.
    pub auto_compaction: bool,
    /// How much history (by age) automatic compaction keeps.
    pub compaction_window: Duration,
    /// Automatic compaction always keeps at least this many revisions.
    pub compaction_min_revisions: i64,
    /// How often the compactor samples the revision.
    pub compaction_check_interval: Duration,
    /// Events a watcher may have undelivered before it is cut off.
    pub watch_buffer: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            auto_compaction: true,
            compaction_window: Duration::from_secs(5 * 60),
            compaction_min_revisions: 1000,
            compaction_check_interval: Duration::from_secs(10),
            watch_buffer: 10_000,
        }
    }
}

pub(crate) struct LeaseState {
    ttl: Duration,
    deadline: Instant,
    /// The lease thread has asked the writer to revoke it.
    revoking: bool,
}

/// State shared by the front end, the writer and the background threads.
pub(crate) struct Shared {
    path: PathBuf,
    hub: Hub,
    current_rev: AtomicI64,
    compact_rev: AtomicI64,
    leases: Mutex<HashMap<LeaseId, LeaseState>>,
    lease_changed: Condvar,
    closing: AtomicBool,
    stop_lock: Mutex<()>,
    stop: Condvar,
}

impl Shared {
    fn lock_leases(&self) -> MutexGuard<'_, HashMap<LeaseId, LeaseState>> {
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A pool of read-only connections.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => schema::open_reader(&self.path)?,
        };
        let out = f(&mut conn);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < 16 {
            idle.push(conn);
        }
        out
    }

    async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Connection, &Path) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.with(|c| f(c, &me.path)))
            .await
            .map_err(|_| StoreError::Closed)?
    }
}

/// The embedded datastore. Open one per directory; a second open of the
/// same directory (from any process) is refused while the first is open.
pub struct Embedded {
    shared: Arc<Shared>,
    readers: Arc<Readers>,
    sender: Mutex<Option<mpsc::Sender<WriteRequest>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    _lock: File,
}

impl Embedded {
    /// Opens the datastore in `dir` (created if missing) with default
    /// options.
    pub fn open(dir: &Path) -> Result<Embedded> {
        Self::open_with(dir, Options::default())
    }

    pub fn open_with(dir: &Path, options: Options) -> Result<Embedded> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
        let lock = lock_dir(dir)?;
        let path = dir.join(DB_FILE);
        let conn = schema::open_writer(&path)?;
        let (current, compacted) = conn
            .query_row(
                "SELECT current_rev, compact_rev FROM meta WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| sql_error(&path, "reading revisions", e))?;
        let leases = writer::load_leases(&conn, &path)?;
        let shared = Arc::new(Shared {
            path: path.clone(),
            hub: Hub::new(current, options.watch_buffer),
            current_rev: AtomicI64::new(current),
            compact_rev: AtomicI64::new(compacted),
            leases: Mutex::new(leases),
            lease_changed: Condvar::new(),
            closing: AtomicBool::new(false),
            stop_lock: Mutex::new(()),
            stop: Condvar::new(),
        });
        let (tx, rx) = mpsc::channel();
        let w = Writer::new(conn, path.clone(), shared.clone(), current);
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || w.run(rx))
            .map_err(|e| StoreError::io("starting datastore writer", e))?;
        let mut threads = Vec::new();
        {
            let (shared, tx) = (shared.clone(), tx.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("store-leases".into())
                    .spawn(move || expire_leases(shared, tx))
                    .map_err(|e| StoreError::io("starting lease thread", e))?,
            );
        }
        if options.auto_compaction {
            let (shared, tx, opts) = (shared.clone(), tx.clone(), options.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("store-compactor".into())
                    .spawn(move || auto_compact(shared, tx, opts))
                    .map_err(|e| StoreError::io("starting compactor", e))?,
            );
        }
        Ok(Embedded {
            readers: Arc::new(Readers {
                path,
                idle: Mutex::new(Vec::new()),
            }),
            shared,
            sender: Mutex::new(Some(tx)),
            threads: Mutex::new(threads),
            writer: Mutex::new(Some(writer)),
            _lock: lock,
        })
    }

    /// The datastore file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Number of live watches (for tests and metrics).
    pub fn watcher_count(&self) -> usize {
        self.shared.hub.watcher_count()
    }

    /// Replaces the datastore in `dir` with the snapshot at `snapshot`,
    /// after checking that the snapshot is an intact krate datastore. The
    /// store must not be open. Returns the revision the snapshot holds.
    pub fn restore(snapshot: &Path, dir: &Path) -> Result<Revision> {
        schema::verify_file(snapshot)?;
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
        let _lock = lock_dir(dir)?;
        let target = dir.join(DB_FILE);
        let staging = dir.join(format!("{DB_FILE}.restoring"));
        std::fs::copy(snapshot, &staging).map_err(|e| {
            StoreError::io(
                format!("copying {} to {}", snapshot.display(), staging.display()),
                e,
            )
        })?;
        sync_file(&staging)?;
        for suffix in ["-wal", "-shm"] {
            let side = dir.join(format!("{DB_FILE}{suffix}"));
            match std::fs::remove_file(&side) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(format!("removing {}", side.display()), e)),
            }
        }
        std::fs::rename(&staging, &target)
            .map_err(|e| StoreError::io(format!("moving {} into place", staging.display()), e))?;
        sync_file(dir)?;
        let conn = schema::open_reader(&target)?;
        let rev = read::meta(&conn, &target)?.0;
        Ok(rev)
    }

    /// Checks a datastore or snapshot file without opening it for writing.
    pub fn verify(path: &Path) -> Result<()> {
        schema::verify_file(path)
    }

    /// Stops the writer and background threads after the queued writes are
    /// done. Dropping the store does the same.
    pub fn close(&self) {
        if self.shared.closing.swap(true, Ordering::AcqRel) {
            return;
        }
        {
            let _g = self
                .shared
                .stop_lock
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            self.shared.stop.notify_all();
        }
        {
            let _g = self.shared.lock_leases();
            self.shared.lease_changed.notify_all();
        }
        for t in self
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = t.join();
        }
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = w.join();
        }
        self.shared.hub.close();
    }

    async fn write(&self, op: WriteOp) -> Result<WriteOutcome> {
        let (reply, rx) = oneshot::channel();
        {
            let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner());
            let sender = sender.as_ref().ok_or(StoreError::Closed)?;
            sender
                .send(WriteRequest { op, reply })
                .map_err(|_| StoreError::Closed)?;
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.close();
    }
}

fn lock_dir(dir: &Path) -> Result<File> {
    let lock_path = dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::io(format!("opening {}", lock_path.display()), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::io(
            format!("locking {}", dir.display()),
            std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "the datastore is in use by another krate process",
            ),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::io(
            format!("locking {}", lock_path.display()),
            e,
        )),
    }
}

fn sync_file(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::io(format!("syncing {}", path.display()), e))
}

/// Sends a request from a background thread and waits for its answer.
fn send_blocking(tx: &mpsc::Sender<WriteRequest>, op: WriteOp) -> Result<WriteOutcome> {
    let (reply, rx) = oneshot::channel();
    tx.send(WriteRequest { op, reply })
        .map_err(|_| StoreError::Closed)?;
    rx.blocking_recv().map_err(|_| StoreError::Closed)?
}

/// Revokes leases whose deadline passed. Sleeps until the next deadline or
/// until a lease changes; never polls the data.
fn expire_leases(shared: Arc<Shared>, tx: mpsc::Sender<WriteRequest>) {
    let mut leases = shared.lock_leases();
    loop {
        if shared.closing.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let expired: Vec<LeaseId> = leases
            .iter_mut()
            .filter(|(_, l)| !l.revoking && l.deadline <= now)
            .map(|(id, l)| {
                l.revoking = true;
                *id
            })
            .collect();
        if !expired.is_empty() {
            drop(leases);
            for id in expired {
                match send_blocking(&tx, WriteOp::LeaseRevoke { lease: id }) {
                    Ok(_) | Err(StoreError::LeaseNotFound { .. }) => {}
                    Err(e) => {
                        tracing::warn!(lease = id, error = %e, "revoking expired lease failed; retrying in 1s");
                        if let Some(l) = shared.lock_leases().get_mut(&id) {
                            l.revoking = false;
                            l.deadline = Instant::now() + Duration::from_secs(1);
                        }
                    }
                }
            }
            leases = shared.lock_leases();
            continue;
        }
        let wait = leases
            .values()
            .filter(|l| !l.revoking)
            .map(|l| l.deadline.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_secs(3600));
        leases = shared
            .lease_changed
            .wait_timeout(leases, wait)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}

/// The revision automatic compaction should compact to, given samples of
/// (time, revision) taken over time; `None` when nothing is due.
fn compaction_target(
    samples: &VecDeque<(Instant, Revision)>,
    now: Instant,
    current: Revision,
    compacted: Revision,
    options: &Options,
) -> Option<Revision> {
    let old_enough = samples
        .iter()
        .rev()
        .find(|(t, _)| now.saturating_duration_since(*t) >= options.compaction_window)?
        .1;
    let target = old_enough.min(current - options.compaction_min_revisions);
    (target > compacted).then_some(target)
}

fn auto_compact(shared: Arc<Shared>, tx: mpsc::Sender<WriteRequest>, options: Options) {
    let mut samples: VecDeque<(Instant, Revision)> = VecDeque::new();
    let mut guard = shared.stop_lock.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if shared.closing.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let current = shared.current_rev.load(Ordering::Acquire);
        samples.push_back((now, current));
        // Keep one sample older than the window, drop the rest of the old.
        while samples.len() > 1
            && now.saturating_duration_since(samples[1].0) >= options.compaction_window
        {
            samples.pop_front();
        }
        let compacted = shared.compact_rev.load(Ordering::Acquire);
        if let Some(target) = compaction_target(&samples, now, current, compacted, &options) {
            drop(guard);
            match send_blocking(&tx, WriteOp::Compact { revision: target }) {
                Ok(_) => tracing::debug!(revision = target, "compacted datastore history"),
                Err(StoreError::Compacted { .. }) => {}
                Err(e) => {
                    tracing::warn!(revision = target, error = %e, "automatic compaction failed")
                }
            }
            guard = shared.stop_lock.lock().unwrap_or_else(|p| p.into_inner());
        }
        guard = shared
            .stop
            .wait_timeout(guard, options.compaction_check_interval)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}

enum WatchPhase {
    History { after: Revision, upto: Revision },
    Live,
    Done,
}

struct WatchState {
    prefix: Vec<u8>,
    readers: Arc<Readers>,
    sub: watch::Subscription,
    buffered: VecDeque<Event>,
    phase: WatchPhase,
}

const HISTORY_PAGE: usize = 1000;

async fn next_event(mut st: WatchState) -> Option<(Result<Event>, WatchState)> {
    loop {
        if let Some(ev) = st.buffered.pop_front() {
            return Some((Ok(ev), st));
        }
        match st.phase {
            WatchPhase::Done => return None,
            WatchPhase::History { after, upto } => {
                if after >= upto {
                    st.phase = WatchPhase::Live;
                    continue;
                }
                let prefix = st.prefix.clone();
                let page = st
                    .readers
                    .run(move |c, p| read::history_page(c, p, &prefix, after, upto, HISTORY_PAGE))
                    .await;
                match page {
                    Err(e) => {
                        st.phase = WatchPhase::Done;
                        return Some((Err(e), st));
                    }
                    Ok(events) => {
                        let full = events.len() == HISTORY_PAGE;
                        let last = events.last().map(|e| e.revision()).unwrap_or(upto);
                        st.buffered.extend(events);
                        st.phase = if full {
                            WatchPhase::History { after: last, upto }
                        } else {
                            WatchPhase::Live
                        };
                    }
                }
            }
            WatchPhase::Live => match st.sub.rx.recv().await {
                Some(ev) => return Some((Ok(ev), st)),
                None => {
                    st.phase = WatchPhase::Done;
                    let err = if st.sub.too_slow.load(Ordering::Acquire) {
                        StoreError::WatchTooSlow
                    } else {
                        StoreError::Closed
                    };
                    return Some((Err(err), st));
                }
            },
        }
    }
}

fn kv_outcome(outcome: WriteOutcome) -> KeyValue {
    match outcome {
        WriteOutcome::Kv(kv) => kv,
        _ => unreachable!("create/update answer with a key-value"),
    }
}

#[async_trait]
impl Store for Embedded {
    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.shared.current_rev.load(Ordering::Acquire))
    }

    async fn get(&self, key: &[u8], revision: Revision) -> Result<(Option<KeyValue>, Revision)> {
        check_key(key)?;
        let key = key.to_vec();
        self.readers
            .run(move |c, p| read::get(c, p, &key, revision))
            .await
    }

    async fn range(&self, request: RangeRequest) -> Result<RangeResponse> {
        self.readers
            .run(move |c, p| read::range(c, p, &request))
            .await
    }

    async fn count(&self, prefix: &[u8]) -> Result<i64> {
        let prefix = prefix.to_vec();
        self.readers
            .run(move |c, p| read::count(c, p, &prefix))
            .await
    }

    async fn count_range(&self, request: RangeRequest) -> Result<i64> {
        self.readers
            .run(move |c, p| read::count_range(c, p, &request))
            .await
    }

    async fn create(&self, key: &[u8], value: Bytes, lease: LeaseId) -> Result<KeyValue> {
        check_write(key, &value)?;
        let op = WriteOp::Create {
            key: Bytes::copy_from_slice(key),
            value,
            lease,
        };
        self.write(op).await.map(kv_outcome)
    }

    async fn update(
        &self,
        key: &[u8],
        value: Bytes,
        expected_revision: Revision,
        lease: LeaseId,
    ) -> Result<KeyValue> {
        check_write(key, &value)?;
        let op = WriteOp::Update {
            key: Bytes::copy_from_slice(key),
            value,
            expected: expected_revision,
            lease,
        };
        self.write(op).await.map(kv_outcome)
    }

    async fn delete(
        &self,
        key: &[u8],
        expected_revision: Option<Revision>,
    ) -> Result<(Revision, KeyValue)> {
        check_key(key)?;
        match self
            .write(WriteOp::Delete {
                key: Bytes::copy_from_slice(key),
                expected: expected_revision,
            })
            .await?
        {
            WriteOutcome::Deleted(rev, kv) => Ok((rev, kv)),
            _ => unreachable!("delete answers with the deleted key"),
        }
    }

    async fn watch(&self, prefix: &[u8], from_revision: Revision) -> Result<WatchStream> {
        let compacted = self.shared.compact_rev.load(Ordering::Acquire);
        let from = if from_revision <= 0 {
            (compacted - 1).max(0)
        } else {
            from_revision
        };
        if from + 1 < compacted {
            return Err(StoreError::Compacted {
                requested: from_revision,
                compacted,
            });
        }
        let current = self.shared.current_rev.load(Ordering::Acquire);
        if from > current {
            return Err(StoreError::FutureRevision {
                requested: from,
                current,
            });
        }
        let sub = self.shared.hub.subscribe(prefix);
        let upto = sub.from;
        let state = WatchState {
            prefix: prefix.to_vec(),
            readers: self.readers.clone(),
            sub,
            buffered: VecDeque::new(),
            phase: WatchPhase::History { after: from, upto },
        };
        Ok(Box::pin(futures::stream::unfold(state, next_event)))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.write(WriteOp::Compact { revision }).await.map(|_| ())
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.shared.compact_rev.load(Ordering::Acquire))
    }

    async fn lease_grant(&self, ttl: Duration) -> Result<LeaseId> {
        if ttl.is_zero() {
            return Err(StoreError::InvalidTtl {
                reason: "TTL must be positive".into(),
            });
        }
        match self.write(WriteOp::LeaseGrant { ttl }).await? {
            WriteOutcome::Lease(id) => Ok(id),
            _ => unreachable!("lease grant answers with the lease"),
        }
    }

    async fn lease_keep_alive(&self, lease: LeaseId) -> Result<Duration> {
        let mut leases = self.shared.lock_leases();
        let now = Instant::now();
        match leases.get_mut(&lease) {
            Some(l) if !l.revoking && l.deadline > now => {
                l.deadline = now + l.ttl;
                Ok(l.ttl)
            }
            _ => Err(StoreError::LeaseNotFound { lease }),
        }
    }

    async fn lease_revoke(&self, lease: LeaseId) -> Result<()> {
        self.write(WriteOp::LeaseRevoke { lease }).await.map(|_| ())
    }

    async fn snapshot(&self, path: &Path) -> Result<SnapshotInfo> {
        let target = path.to_path_buf();
        self.readers
            .run(move |c, p| write_snapshot(c, p, &target))
            .await
    }
}

/// Writes a consistent copy of the datastore behind `conn` to `target`:
/// written beside it, fsync'ed, then renamed into place, so `target` is
/// either absent or complete.
fn write_snapshot(conn: &mut Connection, db: &Path, target: &Path) -> Result<SnapshotInfo> {
    let staging = staging_path(target);
    let _ = std::fs::remove_file(&staging);
    conn.execute("VACUUM INTO ?1", [staging.to_string_lossy().as_ref()])
        .map_err(|e| sql_error(db, "writing snapshot", e))?;
    sync_file(&staging)?;
    let revision = {
        let snap = schema::open_reader(&staging)?;
        read::meta(&snap, &staging)?.0
    };
    std::fs::rename(&staging, target)
        .map_err(|e| StoreError::io(format!("moving snapshot to {}", target.display()), e))?;
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_file(parent)?;
    }
    let size_bytes = std::fs::metadata(target)
        .map_err(|e| StoreError::io(format!("reading {}", target.display()), e))?
        .len();
    Ok(SnapshotInfo {
        revision,
        size_bytes,
    })
}

impl Embedded {
    /// Snapshots the datastore in `dir` from outside the process that has it
    /// open (WAL readers need no lock), e.g. `krate snapshot save` beside a
    /// running server.
    pub fn snapshot_dir(dir: &Path, target: &Path) -> Result<SnapshotInfo> {
        let db = dir.join(DB_FILE);
        if !db.exists() {
            return Err(StoreError::io(
                format!("reading {}", db.display()),
                std::io::Error::new(std::io::ErrorKind::NotFound, "no datastore here"),
            ));
        }
        schema::verify_header(&db)?;
        let mut conn = schema::open_reader(&db)?;
        write_snapshot(&mut conn, &db, target)
    }
}

fn staging_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".partial");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(window_secs: u64, min_revs: i64) -> Options {
        Options {
            compaction_window: Duration::from_secs(window_secs),
            compaction_min_revisions: min_revs,
            ..Options::default()
        }
    }

    #[test]
    fn compaction_waits_until_history_is_older_than_the_window() {
        let now = Instant::now();
        let samples: VecDeque<_> = [(now - Duration::from_secs(10), 5000)]
            .into_iter()
            .collect();
        assert_eq!(
            compaction_target(&samples, now, 9000, 0, &opts(300, 1000)),
            None
        );
    }

    #[test]
    fn compaction_keeps_the_window_and_the_minimum_revisions() {
        let now = Instant::now();
        let samples: VecDeque<_> = [
            (now - Duration::from_secs(400), 5000),
            (now - Duration::from_secs(10), 8000),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            compaction_target(&samples, now, 9000, 0, &opts(300, 1000)),
            Some(5000)
        );
        // Few revisions in the window: the minimum count wins.
        assert_eq!(
            compaction_target(&samples, now, 5500, 0, &opts(300, 1000)),
            Some(4500)
        );
        // Already compacted that far: nothing to do.
        assert_eq!(
            compaction_target(&samples, now, 9000, 5000, &opts(300, 1000)),
            None
        );
    }
}
