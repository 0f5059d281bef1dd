//! Reads of the embedded store. Each read runs in one SQLite read
//! transaction, so the data and the revision it reports come from the same
//! snapshot (invariant 4).

use std::path::Path;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::schema::sql_error;
use crate::{
    keys, Event, EventKind, KeyValue, RangeRequest, RangeResponse, Result, Revision, StoreError,
};

/// Columns selected from `kv_log` by every read, in this order.
pub(super) const LOG_COLUMNS: &str =
    "l.rev, l.key, l.create_rev, l.version, l.deleted, l.lease, l.value";

/// A `kv_log` row.
pub(super) struct LogRow {
    pub rev: Revision,
    pub key: Bytes,
    pub create_rev: Revision,
    pub version: i64,
    pub deleted: bool,
    pub lease: i64,
    pub value: Bytes,
}

impl LogRow {
    pub fn from_row(row: &Row<'_>) -> rusqlite::Result<LogRow> {
        Ok(LogRow {
            rev: row.get(0)?,
            key: Bytes::from(row.get::<_, Vec<u8>>(1)?),
            create_rev: row.get(2)?,
            version: row.get(3)?,
            deleted: row.get::<_, i64>(4)? != 0,
            lease: row.get(5)?,
            value: row
                .get::<_, Option<Vec<u8>>>(6)?
                .map(Bytes::from)
                .unwrap_or_default(),
        })
    }

    pub fn into_kv(self) -> KeyValue {
        KeyValue {
            key: self.key,
            value: self.value,
            create_revision: self.create_rev,
            mod_revision: self.rev,
            version: self.version,
            lease: self.lease,
        }
    }
}

/// The revisions recorded in `meta` as seen by the current transaction.
pub(super) fn meta(conn: &Connection, path: &Path) -> Result<(Revision, Revision)> {
    conn.prepare_cached("SELECT current_rev, compact_rev FROM meta WHERE id = 1")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(|e| sql_error(path, "reading revisions", e))
}

/// Runs `f` inside one read transaction.
pub(super) fn in_snapshot<T>(
    conn: &mut Connection,
    path: &Path,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    let tx = conn
        .transaction()
        .map_err(|e| sql_error(path, "starting read", e))?;
    let out = f(&tx)?;
    // A read transaction has nothing to commit; ending it releases the
    // snapshot so checkpoints can progress.
    tx.finish().map_err(|e| sql_error(path, "ending read", e))?;
    Ok(out)
}

/// Resolves the revision a read is served at, failing for revisions that
/// were compacted or are in the future.
fn read_revision(requested: Revision, current: Revision, compacted: Revision) -> Result<Revision> {
    if requested <= 0 {
        return Ok(current);
    }
    if requested > current {
        return Err(StoreError::FutureRevision { requested, current });
    }
    if requested < compacted {
        return Err(StoreError::Compacted {
            requested,
            compacted,
        });
    }
    Ok(requested)
}

pub(super) fn get(
    conn: &mut Connection,
    path: &Path,
    key: &[u8],
    revision: Revision,
) -> Result<(Option<KeyValue>, Revision)> {
    in_snapshot(conn, path, |conn| {
        let (current, compacted) = meta(conn, path)?;
        let at = read_revision(revision, current, compacted)?;
        let row = if at == current {
            conn.prepare_cached(&format!(
                "SELECT {LOG_COLUMNS} FROM kv_current c JOIN kv_log l ON l.rev = c.rev WHERE c.key = ?1"
            ))
            .and_then(|mut s| s.query_row(params![key], LogRow::from_row).optional())
        } else {
            conn.prepare_cached(&format!(
                "SELECT {LOG_COLUMNS} FROM kv_log l WHERE l.key = ?1 AND l.rev <= ?2 ORDER BY l.rev DESC LIMIT 1"
            ))
            .and_then(|mut s| s.query_row(params![key, at], LogRow::from_row).optional())
        }
        .map_err(|e| sql_error(path, "reading key", e))?;
        Ok((row.filter(|r| !r.deleted).map(LogRow::into_kv), at))
    })
}

pub(super) fn range(
    conn: &mut Connection,
    path: &Path,
    req: &RangeRequest,
) -> Result<RangeResponse> {
    let start = req.start.clone().unwrap_or_else(|| req.prefix.clone());
    // The empty key sorts below every key, so "no upper bound" is expressed
    // as an end that no key reaches: NULL compared with `<` is never true, so
    // use a flag instead.
    let end = keys::prefix_end(&req.prefix);
    let (has_end, end) = match end {
        Some(e) => (1, e),
        None => (0, Vec::new()),
    };
    // Ask for one more than the limit to learn whether more keys exist.
    let fetch: i64 = if req.limit == 0 {
        -1
    } else {
        req.limit as i64 + 1
    };
    in_snapshot(conn, path, |conn| {
        let (current, compacted) = meta(conn, path)?;
        let at = read_revision(req.revision, current, compacted)?;
        let mut rows: Vec<KeyValue> = if at == current {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {LOG_COLUMNS} FROM kv_current c JOIN kv_log l ON l.rev = c.rev
                     WHERE c.key >= ?1 AND (?2 = 0 OR c.key < ?3) ORDER BY c.key LIMIT ?4"
                ))
                .map_err(|e| sql_error(path, "preparing range", e))?;
            let rows = stmt
                .query_map(params![start, has_end, end, fetch], LogRow::from_row)
                .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(|e| sql_error(path, "reading range", e))?;
            rows.into_iter().map(LogRow::into_kv).collect()
        } else {
            // The latest row of each key at or below the revision; SQLite
            // returns the bare columns of the row holding MAX(rev).
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {LOG_COLUMNS} FROM kv_log l WHERE l.rev IN (
                         SELECT MAX(rev) FROM kv_log
                         WHERE key >= ?1 AND (?2 = 0 OR key < ?3) AND rev <= ?4 GROUP BY key)
                     AND l.deleted = 0 ORDER BY l.key LIMIT ?5"
                ))
                .map_err(|e| sql_error(path, "preparing range", e))?;
            let rows = stmt
                .query_map(params![start, has_end, end, at, fetch], LogRow::from_row)
                .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(|e| sql_error(path, "reading range", e))?;
            rows.into_iter().map(LogRow::into_kv).collect()
        };
        let more = req.limit > 0 && rows.len() > req.limit;
        if more {
            rows.truncate(req.limit);
        }
        Ok(RangeResponse {
            kvs: rows,
            revision: at,
            more,
        })
    })
}

/// The number of keys [`range`] would return without a limit.
pub(super) fn count_range(conn: &mut Connection, path: &Path, req: &RangeRequest) -> Result<i64> {
    let start = req.start.clone().unwrap_or_else(|| req.prefix.clone());
    let (has_end, end) = match keys::prefix_end(&req.prefix) {
        Some(e) => (1, e),
        None => (0, Vec::new()),
    };
    in_snapshot(conn, path, |conn| {
        let (current, compacted) = meta(conn, path)?;
        let at = read_revision(req.revision, current, compacted)?;
        if at == current {
            conn.prepare_cached(
                "SELECT count(*) FROM kv_current WHERE key >= ?1 AND (?2 = 0 OR key < ?3)",
            )
            .and_then(|mut s| s.query_row(params![start, has_end, end], |r| r.get(0)))
        } else {
            conn.prepare_cached(
                "SELECT count(*) FROM kv_log l WHERE l.rev IN (
                     SELECT MAX(rev) FROM kv_log
                     WHERE key >= ?1 AND (?2 = 0 OR key < ?3) AND rev <= ?4 GROUP BY key)
                 AND l.deleted = 0",
            )
            .and_then(|mut s| s.query_row(params![start, has_end, end, at], |r| r.get(0)))
        }
        .map_err(|e| sql_error(path, "counting a range", e))
    })
}

pub(super) fn count(conn: &mut Connection, path: &Path, prefix: &[u8]) -> Result<i64> {
    let (has_end, end) = match keys::prefix_end(prefix) {
        Some(e) => (1, e),
        None => (0, Vec::new()),
    };
    in_snapshot(conn, path, |conn| {
        conn.prepare_cached(
            "SELECT count(*) FROM kv_current WHERE key >= ?1 AND (?2 = 0 OR key < ?3)",
        )
        .and_then(|mut s| s.query_row(params![prefix, has_end, end], |r| r.get(0)))
        .map_err(|e| sql_error(path, "counting keys", e))
    })
}

/// One page of history for a watch: the changes under `prefix` with
/// revision in `(after, upto]`, at most `limit` of them, oldest first.
///
/// Fails with `Compacted` if the snapshot shows that changes the watcher
/// still needs were compacted away, so no change is ever skipped silently.
pub(super) fn history_page(
    conn: &mut Connection,
    path: &Path,
    prefix: &[u8],
    after: Revision,
    upto: Revision,
    limit: usize,
) -> Result<Vec<Event>> {
    let (has_end, end) = match keys::prefix_end(prefix) {
        Some(e) => (1, e),
        None => (0, Vec::new()),
    };
    in_snapshot(conn, path, |conn| {
        let (_, compacted) = meta(conn, path)?;
        if after + 1 < compacted {
            return Err(StoreError::Compacted {
                requested: after,
                compacted,
            });
        }
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {LOG_COLUMNS} FROM kv_log l
                 WHERE l.rev > ?1 AND l.rev <= ?2 AND l.key >= ?3 AND (?4 = 0 OR l.key < ?5)
                 ORDER BY l.rev LIMIT ?6"
            ))
            .map_err(|e| sql_error(path, "preparing history read", e))?;
        let rows = stmt
            .query_map(
                params![after, upto, prefix, has_end, end, limit as i64],
                LogRow::from_row,
            )
            .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| sql_error(path, "reading history", e))?;
        let mut prev_stmt = conn
            .prepare_cached(&format!(
                "SELECT {LOG_COLUMNS} FROM kv_log l WHERE l.key = ?1 AND l.rev < ?2 ORDER BY l.rev DESC LIMIT 1"
            ))
            .map_err(|e| sql_error(path, "preparing history read", e))?;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            // A create (version 1) has no previous value by definition.
            let prev = if row.deleted || row.version > 1 {
                prev_stmt
                    .query_row(params![row.key.as_ref(), row.rev], LogRow::from_row)
                    .optional()
                    .map_err(|e| sql_error(path, "reading previous value", e))?
                    .filter(|p| !p.deleted)
                    .map(LogRow::into_kv)
            } else {
                None
            };
            let kind = if row.deleted {
                EventKind::Delete
            } else {
                EventKind::Put
            };
            let mut kv = row.into_kv();
            if kind == EventKind::Delete {
                kv.create_revision = 0;
                kv.version = 0;
                kv.lease = 0;
            }
            events.push(Event { kind, kv, prev });
        }
        Ok(events)
    })
}
