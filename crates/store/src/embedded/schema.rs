//! The on-disk layout of the embedded store and the checks made when a file
//! is opened.
//!
//! Two tables hold the data:
//! - `kv_log` is the history: one row per revision (puts carry the value,
//!   deletes are tombstones). Compaction removes rows that no revision at or
//!   after the compacted revision can see.
//! - `kv_current` maps each live key to the `kv_log` row of its latest
//!   revision, so reads at the latest revision are one index lookup.
//!
//! `meta` holds the current and compacted revisions in one row that every
//! commit rewrites, so a reader learns the revision of its snapshot in the
//! same read transaction as the data.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::{Result, StoreError};

/// `PRAGMA application_id` of a krate datastore ("KRAT"), so that a foreign
/// SQLite file is refused instead of being written into.
pub const APPLICATION_ID: i32 = 0x4b52_4154;
/// `PRAGMA user_version`: the layout version below.
pub const SCHEMA_VERSION: i32 = 1;

const SCHEMA: &str = "
CREATE TABLE kv_log (
    rev        INTEGER PRIMARY KEY,
    key        BLOB    NOT NULL,
    create_rev INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    deleted    INTEGER NOT NULL,
    lease      INTEGER NOT NULL,
    value      BLOB
);
CREATE INDEX kv_log_key_rev ON kv_log (key, rev);
CREATE TABLE kv_current (
    key   BLOB    PRIMARY KEY,
    rev   INTEGER NOT NULL,
    lease INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX kv_current_lease ON kv_current (lease) WHERE lease != 0;
CREATE TABLE leases (
    id     INTEGER PRIMARY KEY,
    ttl_ms INTEGER NOT NULL
);
CREATE TABLE meta (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    current_rev INTEGER NOT NULL,
    compact_rev INTEGER NOT NULL
);
INSERT INTO meta (id, current_rev, compact_rev) VALUES (1, 0, 0);
";

/// Maps a SQLite error to the store error a user can act on.
pub fn sql_error(path: &Path, context: &str, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::DiskFull {
            path: path.to_path_buf(),
        },
        Some(ErrorCode::NotADatabase) => StoreError::NotADatastore {
            path: path.to_path_buf(),
            reason: "the file is not a SQLite database".into(),
        },
        Some(ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("{context}: {e}"),
        },
        _ => StoreError::Sqlite {
            context: context.to_string(),
            source: e,
        },
    }
}

/// Applies the per-connection settings every connection uses.
fn configure(conn: &Connection, path: &Path) -> Result<()> {
    // FULL: the WAL is fsync'ed at every commit, so an acknowledged write
    // survives power loss, not only a process crash.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA journal_size_limit = 67108864;
         PRAGMA foreign_keys = OFF;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -16384;",
    )
    .map_err(|e| sql_error(path, "configuring connection", e))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(|e| sql_error(path, "setting busy timeout", e))?;
    Ok(())
}

/// Opens (creating if needed) the datastore file for writing and checks that
/// it is ours.
pub fn open_writer(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| sql_error(path, "opening datastore", e))?;
    let (app_id, user_version, tables) = identify(&conn, path)?;
    if tables == 0 && app_id == 0 {
        // A new, empty file. auto_vacuum must be chosen before the first
        // table exists; INCREMENTAL lets compaction give pages back.
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")
            .map_err(|e| sql_error(path, "initialising datastore", e))?;
        configure(&conn, path)?;
        conn.execute_batch(&format!(
            "BEGIN; {SCHEMA} PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ))
        .map_err(|e| sql_error(path, "creating datastore schema", e))?;
        return Ok(conn);
    }
    check_identity(path, app_id, user_version)?;
    configure(&conn, path)?;
    Ok(conn)
}

/// Opens a read-only connection to an existing datastore.
pub fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| sql_error(path, "opening datastore for reading", e))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(|e| sql_error(path, "setting busy timeout", e))?;
    conn.execute_batch("PRAGMA cache_size = -8192;")
        .map_err(|e| sql_error(path, "configuring reader", e))?;
    Ok(conn)
}

/// Checks that a file (a datastore or a snapshot) is a krate datastore of a
/// layout this build understands, and that SQLite finds it intact.
pub fn verify_file(path: &Path) -> Result<()> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| sql_error(path, "opening file", e))?;
    let (app_id, user_version, _) = identify(&conn, path)?;
    check_identity(path, app_id, user_version)?;
    let result: String = conn
        .query_row("PRAGMA integrity_check(1)", [], |r| r.get(0))
        .map_err(|e| sql_error(path, "checking integrity", e))?;
    if result != "ok" {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: result,
        });
    }
    Ok(())
}

/// Checks only that a file is a krate datastore of a known layout.
pub fn verify_header(path: &Path) -> Result<()> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| sql_error(path, "opening file", e))?;
    let (app_id, user_version, _) = identify(&conn, path)?;
    check_identity(path, app_id, user_version)
}

fn identify(conn: &Connection, path: &Path) -> Result<(i32, i32, i64)> {
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| sql_error(path, "reading file header", e))?;
    let user_version: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| sql_error(path, "reading file header", e))?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(|e| sql_error(path, "reading schema", e))?;
    Ok((app_id, user_version, tables))
}

fn check_identity(path: &Path, app_id: i32, user_version: i32) -> Result<()> {
    if app_id != APPLICATION_ID {
        return Err(StoreError::NotADatastore {
            path: path.to_path_buf(),
            reason: format!(
                "it is a SQLite database of another application (application_id {app_id:#x})"
            ),
        });
    }
    if user_version != SCHEMA_VERSION {
        return Err(StoreError::NotADatastore {
            path: path.to_path_buf(),
            reason: format!(
                "its layout version is {user_version}, this krate understands version {SCHEMA_VERSION}"
            ),
        });
    }
    Ok(())
}
