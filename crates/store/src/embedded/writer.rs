//! The single writer of the embedded store, with group commit.
//!
//! All writes go through one thread that owns the only write connection. It
//! takes every request waiting in its queue, applies them in one SQLite
//! transaction (each request succeeds or fails on its own), commits once —
//! one fsync for the whole batch — and only then answers the callers and
//! publishes the changes to watchers. While it waits for the disk, new
//! requests queue up and form the next batch, so concurrent writers share
//! syncs without any added delay for a lone writer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use super::read::{LogRow, LOG_COLUMNS};
use super::schema::sql_error;
use super::{LeaseState, Shared};
use crate::error::key_string;
use crate::{Event, EventKind, KeyValue, LeaseId, Result, Revision, StoreError};

/// Most requests applied in one transaction.
const MAX_BATCH: usize = 1024;
/// Revisions examined per compaction step; writes are served between steps.
const COMPACTION_STEP: i64 = 2_000;
/// Pages (4 KiB) returned to the filesystem per vacuum step, between write
/// batches: 8 MiB.
const VACUUM_STEP_PAGES: i64 = 2_048;

pub(super) enum WriteOp {
    Create {
        key: Bytes,
        value: Bytes,
        lease: LeaseId,
    },
    Update {
        key: Bytes,
        value: Bytes,
        expected: Revision,
        lease: LeaseId,
    },
    Delete {
        key: Bytes,
        expected: Option<Revision>,
    },
    LeaseGrant {
        ttl: Duration,
    },
    LeaseRevoke {
        lease: LeaseId,
    },
    Compact {
        revision: Revision,
    },
}

pub(super) enum WriteOutcome {
    Kv(KeyValue),
    Deleted(Revision, KeyValue),
    Lease(LeaseId),
    Done,
}

pub(super) struct WriteRequest {
    pub op: WriteOp,
    pub reply: oneshot::Sender<Result<WriteOutcome>>,
}

struct CompactionJob {
    target: Revision,
    next: Revision,
    reply: Option<oneshot::Sender<Result<WriteOutcome>>>,
}

pub(super) struct Writer {
    conn: Connection,
    path: PathBuf,
    shared: Arc<Shared>,
    current: Revision,
    compaction: Option<CompactionJob>,
    /// Free pages still to give back to the filesystem.
    vacuum_pending: i64,
}

impl Writer {
    pub fn new(conn: Connection, path: PathBuf, shared: Arc<Shared>, current: Revision) -> Writer {
        Writer {
            conn,
            path,
            shared,
            current,
            compaction: None,
            vacuum_pending: 0,
        }
    }

    /// Serves requests until every sender is gone.
    pub fn run(mut self, rx: Receiver<WriteRequest>) {
        loop {
            let background_work = self.compaction.is_some() || self.vacuum_pending > 0;
            let first = if background_work {
                match rx.try_recv() {
                    Ok(r) => Some(r),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(r) => Some(r),
                    Err(_) => break,
                }
            };
            if let Some(first) = first {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
                self.commit_batch(batch);
            }
            if self.compaction.is_some() {
                self.compaction_step();
            } else if self.vacuum_pending > 0 {
                self.vacuum_step();
            }
        }
        if let Some(job) = self.compaction.take() {
            if let Some(reply) = job.reply {
                let _ = reply.send(Err(StoreError::Closed));
            }
        }
        // Leave a short WAL behind for the next open.
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }

    fn commit_batch(&mut self, batch: Vec<WriteRequest>) {
        let mut requests = Vec::with_capacity(batch.len());
        let mut ops = Vec::with_capacity(batch.len());
        for req in batch {
            match req.op {
                WriteOp::Compact { revision } => self.start_compaction(revision, req.reply),
                op => {
                    ops.push(op);
                    requests.push(req.reply);
                }
            }
        }
        if ops.is_empty() {
            return;
        }
        let start_rev = self.current;
        let mut events = Vec::new();
        let mut granted: Vec<(LeaseId, Duration)> = Vec::new();
        let mut revoked: Vec<LeaseId> = Vec::new();
        let outcome = self.apply_all(&ops, &mut events, &mut granted, &mut revoked);
        match outcome {
            Ok(results) => {
                self.shared
                    .current_rev
                    .store(self.current, Ordering::Release);
                if !granted.is_empty() || !revoked.is_empty() {
                    let mut leases = self.shared.lock_leases();
                    let now = Instant::now();
                    for (id, ttl) in granted {
                        leases.insert(
                            id,
                            LeaseState {
                                ttl,
                                deadline: now + ttl,
                                revoking: false,
                            },
                        );
                    }
                    for id in revoked {
                        leases.remove(&id);
                    }
                    self.shared.lease_changed.notify_all();
                }
                self.shared.hub.publish(&events, self.current);
                for (reply, result) in requests.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                self.current = start_rev;
                tracing::warn!(error = %e, requests = requests.len(), "datastore write batch failed");
                let full = matches!(e, StoreError::DiskFull { .. });
                let mut first = Some(e);
                for reply in requests {
                    let err = first.take().unwrap_or_else(|| {
                        if full {
                            StoreError::DiskFull {
                                path: self.path.clone(),
                            }
                        } else {
                            StoreError::io(
                                "datastore write failed",
                                std::io::Error::other(
                                    "the batch holding this write was rolled back",
                                ),
                            )
                        }
                    });
                    let _ = reply.send(Err(err));
                }
            }
        }
    }

    /// Applies the ops in one transaction. The outer `Err` means the
    /// transaction failed as a whole (nothing was written); the inner results
    /// are each request's own answer.
    fn apply_all(
        &mut self,
        ops: &[WriteOp],
        events: &mut Vec<Event>,
        granted: &mut Vec<(LeaseId, Duration)>,
        revoked: &mut Vec<LeaseId>,
    ) -> Result<Vec<Result<WriteOutcome>>> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql_error(&path, "starting write", e))?;
        let mut rev = self.current;
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            let result = match op {
                WriteOp::Create { key, value, lease } => {
                    create(&tx, &path, &mut rev, key, value, *lease, events)
                }
                WriteOp::Update {
                    key,
                    value,
                    expected,
                    lease,
                } => update(&tx, &path, &mut rev, key, value, *expected, *lease, events),
                WriteOp::Delete { key, expected } => {
                    delete(&tx, &path, &mut rev, key, *expected, events)
                        .map(|(r, kv)| WriteOutcome::Deleted(r, kv))
                }
                WriteOp::LeaseGrant { ttl } => lease_grant(&tx, &path, *ttl).map(|id| {
                    granted.push((id, *ttl));
                    WriteOutcome::Lease(id)
                }),
                WriteOp::LeaseRevoke { lease } => {
                    lease_revoke(&tx, &path, &mut rev, *lease, events).map(|()| {
                        revoked.push(*lease);
                        WriteOutcome::Done
                    })
                }
                WriteOp::Compact { .. } => {
                    unreachable!("compactions are split off before the batch")
                }
            };
            match result {
                Err(e) if is_fatal(&e) => return Err(e),
                r => results.push(r),
            }
        }
        tx.prepare_cached("UPDATE meta SET current_rev = ?1 WHERE id = 1")
            .and_then(|mut s| s.execute(params![rev]))
            .map_err(|e| sql_error(&path, "recording revision", e))?;
        tx.commit()
            .map_err(|e| sql_error(&path, "committing write", e))?;
        self.current = rev;
        Ok(results)
    }

    fn start_compaction(
        &mut self,
        revision: Revision,
        reply: oneshot::Sender<Result<WriteOutcome>>,
    ) {
        let compacted = self.shared.compact_rev.load(Ordering::Acquire);
        if revision > self.current {
            let _ = reply.send(Err(StoreError::FutureRevision {
                requested: revision,
                current: self.current,
            }));
            return;
        }
        if revision <= compacted {
            let _ = reply.send(Err(StoreError::Compacted {
                requested: revision,
                compacted,
            }));
            return;
        }
        if let Some(job) = self.compaction.take() {
            // A newer compaction supersedes one in progress; the older caller
            // is answered when the newer one finishes (its history is gone by
            // then too).
            if let Some(old) = job.reply {
                let _ = old.send(Ok(WriteOutcome::Done));
            }
        }
        // Record the compacted revision before removing any row, so that no
        // reader can see a partly compacted history under an old bound.
        let path = self.path.clone();
        if let Err(e) = self
            .conn
            .execute(
                "UPDATE meta SET compact_rev = ?1 WHERE id = 1",
                params![revision],
            )
            .map_err(|e| sql_error(&path, "recording compaction", e))
        {
            let _ = reply.send(Err(e));
            return;
        }
        self.shared.compact_rev.store(revision, Ordering::Release);
        let first: Revision = self
            .conn
            .query_row("SELECT COALESCE(MIN(rev), 0) FROM kv_log", [], |r| r.get(0))
            .unwrap_or(0);
        self.compaction = Some(CompactionJob {
            target: revision,
            next: first,
            reply: Some(reply),
        });
    }

    fn compaction_step(&mut self) {
        let Some(job) = self.compaction.as_mut() else {
            return;
        };
        let hi = (job.next + COMPACTION_STEP).min(job.target);
        let target = job.target;
        let lo = job.next;
        let path = self.path.clone();
        let result = self
            .conn
            .prepare_cached(
                "DELETE FROM kv_log WHERE rev >= ?1 AND rev < ?2 AND (deleted = 1 OR EXISTS (
                     SELECT 1 FROM kv_log n WHERE n.key = kv_log.key AND n.rev > kv_log.rev AND n.rev <= ?3))",
            )
            .and_then(|mut s| s.execute(params![lo, hi, target]))
            .map_err(|e| sql_error(&path, "compacting", e));
        match result {
            Err(e) => {
                // The compacted revision is already recorded; the rows left
                // behind are removed by the next compaction.
                if let Some(job) = self.compaction.take() {
                    if let Some(reply) = job.reply {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Ok(_) if hi >= target => {
                let job = self.compaction.take().expect("job present");
                self.after_compaction();
                if let Some(reply) = job.reply {
                    let _ = reply.send(Ok(WriteOutcome::Done));
                }
            }
            Ok(_) => {
                if let Some(job) = self.compaction.as_mut() {
                    job.next = hi;
                }
            }
        }
    }

    /// Plans giving space back after a compaction: free pages beyond an
    /// eighth of the file go back to the filesystem (the rest is reused by
    /// new writes), a chunk at a time between write batches.
    fn after_compaction(&mut self) {
        let pages: i64 = self
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap_or(0);
        let free: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .unwrap_or(0);
        if pages > 0 && free * 4 > pages {
            self.vacuum_pending = free - pages / 8;
        } else {
            self.checkpoint();
        }
    }

    /// Returns one chunk of free pages to the filesystem.
    fn vacuum_step(&mut self) {
        let chunk = self.vacuum_pending.min(VACUUM_STEP_PAGES);
        // Each step of the pragma frees one page: step it to the end (a
        // single `execute` would free just one).
        let result = self
            .conn
            .prepare(&format!("PRAGMA incremental_vacuum({chunk})"))
            .and_then(|mut stmt| {
                let mut rows = stmt.query([])?;
                while rows.next()?.is_some() {}
                Ok(())
            });
        match result {
            Ok(()) => self.vacuum_pending -= chunk,
            Err(e) => {
                tracing::warn!(error = %e, "incremental vacuum failed");
                self.vacuum_pending = 0;
            }
        }
        if self.vacuum_pending <= 0 {
            self.vacuum_pending = 0;
            self.checkpoint();
        }
    }

    /// Truncates the WAL so it does not keep its high-water mark.
    fn checkpoint(&mut self) {
        if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

/// Errors that doom the whole transaction (as opposed to a request's own
/// failure such as a conflict).
fn is_fatal(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Sqlite { .. }
            | StoreError::DiskFull { .. }
            | StoreError::Corrupt { .. }
            | StoreError::NotADatastore { .. }
            | StoreError::Io { .. }
    )
}

fn current_row(tx: &Connection, path: &Path, key: &[u8]) -> Result<Option<LogRow>> {
    tx.prepare_cached(&format!(
        "SELECT {LOG_COLUMNS} FROM kv_current c JOIN kv_log l ON l.rev = c.rev WHERE c.key = ?1"
    ))
    .and_then(|mut s| s.query_row(params![key], LogRow::from_row).optional())
    .map_err(|e| sql_error(path, "reading key", e))
}

fn check_lease(tx: &Connection, path: &Path, lease: LeaseId) -> Result<()> {
    if lease == 0 {
        return Ok(());
    }
    let exists = tx
        .prepare_cached("SELECT 1 FROM leases WHERE id = ?1")
        .and_then(|mut s| s.exists(params![lease]))
        .map_err(|e| sql_error(path, "reading lease", e))?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::LeaseNotFound { lease })
    }
}

fn insert_log(tx: &Connection, path: &Path, kv: &KeyValue, deleted: bool) -> Result<()> {
    let value: Option<&[u8]> = if deleted { None } else { Some(&kv.value) };
    tx.prepare_cached(
        "INSERT INTO kv_log (rev, key, create_rev, version, deleted, lease, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![kv.mod_revision, kv.key.as_ref(), kv.create_revision, kv.version, deleted as i64, kv.lease, value])
    })
    .map(|_| ())
    .map_err(|e| sql_error(path, "writing history", e))
}

fn create(
    tx: &Connection,
    path: &Path,
    rev: &mut Revision,
    key: &Bytes,
    value: &Bytes,
    lease: LeaseId,
    events: &mut Vec<Event>,
) -> Result<WriteOutcome> {
    let exists = tx
        .prepare_cached("SELECT 1 FROM kv_current WHERE key = ?1")
        .and_then(|mut s| s.exists(params![key.as_ref()]))
        .map_err(|e| sql_error(path, "reading key", e))?;
    if exists {
        return Err(StoreError::AlreadyExists {
            key: key_string(key),
        });
    }
    check_lease(tx, path, lease)?;
    let new_rev = *rev + 1;
    let kv = KeyValue {
        key: key.clone(),
        value: value.clone(),
        create_revision: new_rev,
        mod_revision: new_rev,
        version: 1,
        lease,
    };
    insert_log(tx, path, &kv, false)?;
    tx.prepare_cached("INSERT INTO kv_current (key, rev, lease) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![key.as_ref(), new_rev, lease]))
        .map_err(|e| sql_error(path, "writing key", e))?;
    *rev = new_rev;
    events.push(Event {
        kind: EventKind::Put,
        kv: kv.clone(),
        prev: None,
    });
    Ok(WriteOutcome::Kv(kv))
}

#[allow(clippy::too_many_arguments)]
fn update(
    tx: &Connection,
    path: &Path,
    rev: &mut Revision,
    key: &Bytes,
    value: &Bytes,
    expected: Revision,
    lease: LeaseId,
    events: &mut Vec<Event>,
) -> Result<WriteOutcome> {
    let Some(cur) = current_row(tx, path, key)? else {
        return Err(StoreError::NotFound {
            key: key_string(key),
        });
    };
    if cur.rev != expected {
        return Err(StoreError::Conflict {
            key: key_string(key),
            expected,
            current: Some(Box::new(cur.into_kv())),
        });
    }
    check_lease(tx, path, lease)?;
    let new_rev = *rev + 1;
    let prev = cur.into_kv();
    let kv = KeyValue {
        key: key.clone(),
        value: value.clone(),
        create_revision: prev.create_revision,
        mod_revision: new_rev,
        version: prev.version + 1,
        lease,
    };
    insert_log(tx, path, &kv, false)?;
    tx.prepare_cached("UPDATE kv_current SET rev = ?2, lease = ?3 WHERE key = ?1")
        .and_then(|mut s| s.execute(params![key.as_ref(), new_rev, lease]))
        .map_err(|e| sql_error(path, "writing key", e))?;
    *rev = new_rev;
    events.push(Event {
        kind: EventKind::Put,
        kv: kv.clone(),
        prev: Some(prev),
    });
    Ok(WriteOutcome::Kv(kv))
}

fn delete(
    tx: &Connection,
    path: &Path,
    rev: &mut Revision,
    key: &[u8],
    expected: Option<Revision>,
    events: &mut Vec<Event>,
) -> Result<(Revision, KeyValue)> {
    let Some(cur) = current_row(tx, path, key)? else {
        return Err(StoreError::NotFound {
            key: key_string(key),
        });
    };
    if let Some(expected) = expected {
        if cur.rev != expected {
            return Err(StoreError::Conflict {
                key: key_string(key),
                expected,
                current: Some(Box::new(cur.into_kv())),
            });
        }
    }
    let new_rev = *rev + 1;
    let prev = cur.into_kv();
    let tombstone = KeyValue {
        key: prev.key.clone(),
        value: Bytes::new(),
        create_revision: 0,
        mod_revision: new_rev,
        version: 0,
        lease: 0,
    };
    insert_log(tx, path, &tombstone, true)?;
    tx.prepare_cached("DELETE FROM kv_current WHERE key = ?1")
        .and_then(|mut s| s.execute(params![key]))
        .map_err(|e| sql_error(path, "deleting key", e))?;
    *rev = new_rev;
    events.push(Event {
        kind: EventKind::Delete,
        kv: tombstone,
        prev: Some(prev.clone()),
    });
    Ok((new_rev, prev))
}

fn lease_grant(tx: &Connection, path: &Path, ttl: Duration) -> Result<LeaseId> {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    loop {
        let id: LeaseId = rand::random::<i64>() & 0x3fff_ffff_ffff_ffff;
        if id == 0 {
            continue;
        }
        let inserted = tx
            .prepare_cached("INSERT OR IGNORE INTO leases (id, ttl_ms) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![id, ttl_ms]))
            .map_err(|e| sql_error(path, "writing lease", e))?;
        if inserted == 1 {
            return Ok(id);
        }
    }
}

fn lease_revoke(
    tx: &Connection,
    path: &Path,
    rev: &mut Revision,
    lease: LeaseId,
    events: &mut Vec<Event>,
) -> Result<()> {
    let removed = tx
        .prepare_cached("DELETE FROM leases WHERE id = ?1")
        .and_then(|mut s| s.execute(params![lease]))
        .map_err(|e| sql_error(path, "deleting lease", e))?;
    if removed == 0 {
        return Err(StoreError::LeaseNotFound { lease });
    }
    let keys: Vec<Vec<u8>> = tx
        .prepare_cached("SELECT key FROM kv_current WHERE lease = ?1 ORDER BY key")
        .and_then(|mut s| s.query_map(params![lease], |r| r.get(0))?.collect())
        .map_err(|e| sql_error(path, "reading leased keys", e))?;
    for key in keys {
        delete(tx, path, rev, &key, None, events)?;
    }
    Ok(())
}

/// Leases recorded on disk, for a store being opened. Like etcd, a restart
/// gives every lease a fresh TTL.
pub(super) fn load_leases(conn: &Connection, path: &Path) -> Result<HashMap<LeaseId, LeaseState>> {
    let now = Instant::now();
    let rows: Vec<(LeaseId, i64)> = conn
        .prepare("SELECT id, ttl_ms FROM leases")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(|e| sql_error(path, "reading leases", e))?;
    Ok(rows
        .into_iter()
        .map(|(id, ms)| {
            let ttl = Duration::from_millis(ms.max(0) as u64);
            (
                id,
                LeaseState {
                    ttl,
                    deadline: now + ttl,
                    revoking: false,
                },
            )
        })
        .collect())
}
