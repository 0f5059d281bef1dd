//! The embedded backend: the shared conformance suite, plus what only a
//! local datastore can be asked — durability across reopen and SIGKILL, a
//! full disk, foreign and corrupt files, bounded disk use, snapshots.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use store::embedded::{Embedded, Options, DB_FILE};
use store::testing::conformance::{next_event, Fixture};
use store::{RangeRequest, Store, StoreError};

async fn embedded_fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Embedded::open(dir.path()).unwrap();
    Fixture {
        store: Arc::new(store),
        guards: vec![Box::new(dir)],
    }
}

store::conformance_tests!(embedded_fixture);

const CHILD: &str = env!("CARGO_BIN_EXE_store-test-child");

fn v(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[tokio::test]
async fn reopen_keeps_every_acknowledged_write_and_the_revision() {
    let dir = tempfile::tempdir().unwrap();
    let (rev, a) = {
        let store = Embedded::open(dir.path()).unwrap();
        let a = store.create(b"/x/a", v("1"), 0).await.unwrap();
        let a = store
            .update(b"/x/a", v("2"), a.mod_revision, 0)
            .await
            .unwrap();
        store.create(b"/x/b", v("1"), 0).await.unwrap();
        store.delete(b"/x/b", None).await.unwrap();
        (store.current_revision().await.unwrap(), a)
    };
    let store = Embedded::open(dir.path()).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), rev);
    assert_eq!(store.get(b"/x/a", 0).await.unwrap().0.unwrap(), a);
    assert!(store.get(b"/x/b", 0).await.unwrap().0.is_none());
    let next = store.create(b"/x/c", v("1"), 0).await.unwrap();
    assert_eq!(next.mod_revision, rev + 1);
}

#[tokio::test]
async fn second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Embedded::open(dir.path()).unwrap();
    let err = Embedded::open(dir.path())
        .err()
        .expect("second open must fail");
    assert!(
        err.to_string().contains("in use by another krate process"),
        "{err}"
    );
}

#[test]
fn acknowledged_writes_survive_sigkill_at_random_moments() {
    let dir = tempfile::tempdir().unwrap();
    let report = store::testing::crash::run(dir.path(), 20, |round| {
        let mut cmd = Command::new(CHILD);
        cmd.arg("crash")
            .arg(dir.path())
            .arg(round.to_string())
            .arg("8");
        cmd
    })
    .unwrap_or_else(|e| panic!("crash test failed: {e}"));
    assert_eq!(report.kills, 20);
    assert!(report.acknowledged > 20);
    println!(
        "crash test: {} kills, {} acknowledged writes checked, final revision {}",
        report.kills, report.acknowledged, report.final_revision
    );
}

#[test]
fn a_full_disk_fails_writes_cleanly_and_loses_nothing() {
    // A 6 MiB tmpfs in a private mount namespace of the child: it vanishes
    // with the child whatever happens.
    assert!(
        nix_is_root(),
        "the full-disk test needs root (CI runs as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=6m krate-test "$1" && exec "$2" fill "$1""#)
        .args(["sh", &dir.path().to_string_lossy(), CHILD])
        .output()
        .expect("running unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stdout}{stderr}");
    assert!(stdout.starts_with("ok:"), "{stdout}");
    assert!(
        stdout.contains("no space left"),
        "error names the cause: {stdout}"
    );
    println!("{stdout}");
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

fn file_digest(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[tokio::test]
async fn a_foreign_sqlite_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('alice');")
            .unwrap();
    }
    let before = file_digest(&path);
    let err = Embedded::open(dir.path()).err().expect("must refuse");
    assert!(matches!(err, StoreError::NotADatastore { .. }), "{err}");
    assert!(err.to_string().contains("another application"), "{err}");
    assert_eq!(file_digest(&path), before, "the foreign file was modified");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    std::fs::write(
        &path,
        b"this is not a database, it is a text file\n".repeat(200),
    )
    .unwrap();
    let before = file_digest(&path);
    let err = Embedded::open(dir.path()).err().expect("must refuse");
    assert!(matches!(err, StoreError::NotADatastore { .. }), "{err}");
    assert!(err.to_string().contains("not a krate datastore"), "{err}");
    assert_eq!(file_digest(&path), before);
}

#[tokio::test]
async fn a_corrupt_datastore_gives_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Embedded::open(dir.path()).unwrap();
        for i in 0..300 {
            store
                .create(
                    format!("/c/{i:04}").as_bytes(),
                    Bytes::from(vec![b'v'; 2000]),
                    0,
                )
                .await
                .unwrap();
        }
    }
    let path = dir.path().join(DB_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 64 * 1024);
    // Overwrite pages in the middle of the file (not the header).
    for b in &mut bytes[16 * 1024..48 * 1024] {
        *b = 0xa5;
    }
    std::fs::write(&path, &bytes).unwrap();

    let verify = Embedded::verify(&path).unwrap_err();
    assert!(matches!(verify, StoreError::Corrupt { .. }), "{verify}");
    assert!(verify.to_string().contains("corrupt"), "{verify}");
    // Opening may succeed (the header is intact); reading the damaged part
    // must then fail with a clear error.
    match Embedded::open(dir.path()) {
        Err(e) => assert!(matches!(e, StoreError::Corrupt { .. }), "{e}"),
        Ok(store) => {
            let err = store
                .range(RangeRequest {
                    prefix: b"/c/".to_vec(),
                    ..Default::default()
                })
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_watcher_is_cut_off_with_an_error_and_never_blocks_writers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Embedded::open_with(
        dir.path(),
        Options {
            watch_buffer: 16,
            ..Options::default()
        },
    )
    .unwrap();
    let start = store.current_revision().await.unwrap();
    let mut slow = store.watch(b"/s/", start).await.unwrap();
    let mut fast = store.watch(b"/s/", start).await.unwrap();
    let writes = 100;
    let mut fast_seen = 0;
    for i in 0..writes {
        store
            .create(format!("/s/{i}").as_bytes(), v("x"), 0)
            .await
            .unwrap();
        // The fast watcher keeps up.
        next_event(&mut fast).await.unwrap();
        fast_seen += 1;
    }
    assert_eq!(fast_seen, writes);
    let mut delivered = 0;
    let err = loop {
        match next_event(&mut slow).await {
            Ok(_) => delivered += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, StoreError::WatchTooSlow), "{err}");
    assert!(
        delivered <= 16,
        "a cut-off watcher delivered {delivered} events"
    );
    assert!(slow.next().await.is_none(), "nothing after the error");
}

#[tokio::test]
async fn a_dropped_watch_is_unregistered() {
    let dir = tempfile::tempdir().unwrap();
    let store = Embedded::open(dir.path()).unwrap();
    let w = store.watch(b"/d/", 0).await.unwrap();
    assert_eq!(store.watcher_count(), 1);
    drop(w);
    store.create(b"/other", v("x"), 0).await.unwrap();
    assert_eq!(store.watcher_count(), 0);
}

#[tokio::test]
async fn a_snapshot_restores_the_state_it_was_taken_at() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("backup.db");
    let (snap_rev, kept) = {
        let store = Embedded::open(&dir.path().join("a")).unwrap();
        for i in 0..100 {
            store
                .create(
                    format!("/b/{i:03}").as_bytes(),
                    Bytes::from(format!("v{i}")),
                    0,
                )
                .await
                .unwrap();
        }
        let info = store.snapshot(&snap).await.unwrap();
        let kept = store
            .range(RangeRequest {
                prefix: b"/b/".to_vec(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(info.revision, kept.revision);
        // Changes after the snapshot are not in it.
        store.delete(b"/b/000", None).await.unwrap();
        store.create(b"/b/new", v("x"), 0).await.unwrap();
        (info.revision, kept.kvs)
    };
    let restored_dir = dir.path().join("b");
    assert_eq!(Embedded::restore(&snap, &restored_dir).unwrap(), snap_rev);
    let store = Embedded::open(&restored_dir).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), snap_rev);
    let now = store
        .range(RangeRequest {
            prefix: b"/b/".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(now.kvs, kept);
    let next = store.create(b"/b/after-restore", v("x"), 0).await.unwrap();
    assert_eq!(next.mod_revision, snap_rev + 1);
}

#[tokio::test]
async fn restore_refuses_a_file_that_is_not_a_snapshot_and_keeps_the_datastore() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Embedded::open(dir.path()).unwrap();
        store.create(b"/keep", v("me"), 0).await.unwrap();
    }
    let bogus = dir.path().join("bogus.db");
    std::fs::write(&bogus, b"garbage".repeat(1000)).unwrap();
    let err = Embedded::restore(&bogus, dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::NotADatastore { .. }), "{err}");
    let store = Embedded::open(dir.path()).unwrap();
    assert_eq!(
        store.get(b"/keep", 0).await.unwrap().0.unwrap().value,
        v("me")
    );
}

#[tokio::test]
async fn restore_is_refused_while_the_datastore_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = Embedded::open(&dir.path().join("live")).unwrap();
    store.create(b"/a", v("1"), 0).await.unwrap();
    let snap = dir.path().join("snap.db");
    store.snapshot(&snap).await.unwrap();
    let err = Embedded::restore(&snap, &dir.path().join("live")).unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
}

#[tokio::test]
async fn leases_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let lease = {
        let store = Embedded::open(dir.path()).unwrap();
        let lease = store.lease_grant(Duration::from_secs(60)).await.unwrap();
        store.create(b"/l/a", v("x"), lease).await.unwrap();
        lease
    };
    let store = Embedded::open(dir.path()).unwrap();
    assert_eq!(store.get(b"/l/a", 0).await.unwrap().0.unwrap().lease, lease);
    assert_eq!(
        store.lease_keep_alive(lease).await.unwrap(),
        Duration::from_secs(60)
    );
    store.lease_revoke(lease).await.unwrap();
    assert!(store.get(b"/l/a", 0).await.unwrap().0.is_none());
}

fn disk_usage(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_compaction_keeps_disk_use_bounded_under_churn() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        compaction_window: Duration::from_millis(0),
        compaction_min_revisions: 1000,
        compaction_check_interval: Duration::from_millis(50),
        ..Options::default()
    };
    let store = Arc::new(Embedded::open_with(dir.path(), options).unwrap());
    let keys = 100;
    let value = Bytes::from(vec![b'c'; 4096]);
    for k in 0..keys {
        store
            .create(format!("/churn/{k}").as_bytes(), value.clone(), 0)
            .await
            .unwrap();
    }
    // 400 KiB of live data rewritten 200 times over: 80 MiB of history if
    // nothing were compacted.
    let mut sizes = Vec::new();
    for phase in 0..4 {
        let mut tasks = Vec::new();
        for w in 0..8 {
            let (store, value) = (store.clone(), value.clone());
            tasks.push(tokio::spawn(async move {
                for _round in 0..50 {
                    for k in (w..keys).step_by(8) {
                        let key = format!("/churn/{k}");
                        let cur = store.get(key.as_bytes(), 0).await.unwrap().0.unwrap();
                        store
                            .update(key.as_bytes(), value.clone(), cur.mod_revision, 0)
                            .await
                            .unwrap();
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // Give the compactor a moment to catch up with the last writes.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let size = disk_usage(dir.path());
        println!(
            "after churn phase {phase}: revision {}, disk {} KiB",
            store.current_revision().await.unwrap(),
            size / 1024
        );
        sizes.push(size);
    }
    let compacted = store.compacted_revision().await.unwrap();
    let current = store.current_revision().await.unwrap();
    assert!(
        compacted > 0 && current - compacted <= 2000,
        "compaction lagging: current {current}, compacted {compacted}"
    );
    // History of 1000 revisions of 4 KiB plus the live data is ~5 MiB; the
    // WAL may hold up to 64 MiB before a checkpoint truncates it. Without
    // compaction the history alone would be 80 MiB.
    let last = *sizes.last().unwrap();
    assert!(
        last < 40 * 1024 * 1024,
        "disk use grew to {} KiB",
        last / 1024
    );
    assert!(last <= sizes[0] * 2, "disk use keeps growing: {sizes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_gives_freed_space_back_to_the_filesystem() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        auto_compaction: false,
        ..Options::default()
    };
    let store = Embedded::open_with(dir.path(), options).unwrap();
    let value = Bytes::from(vec![b'z'; 8192]);
    // 20 MiB of history on one key.
    let mut rev = store
        .create(b"/big", value.clone(), 0)
        .await
        .unwrap()
        .mod_revision;
    for _ in 0..2500 {
        rev = store
            .update(b"/big", value.clone(), rev, 0)
            .await
            .unwrap()
            .mod_revision;
    }
    let db = dir.path().join(DB_FILE);
    store.compact(rev).await.unwrap();
    // Pages go back a chunk at a time between writes, after the compaction.
    let mut after = std::fs::metadata(&db).unwrap().len();
    for _ in 0..100 {
        if after < 6 * 1024 * 1024 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = std::fs::metadata(&db).unwrap().len();
    }
    // One live 8 KiB value remains: the file must shrink far below the
    // 20 MiB history, not stay at its high-water mark.
    assert!(
        after < 6 * 1024 * 1024,
        "the datastore file kept {} KiB after compaction",
        after / 1024
    );
}

#[tokio::test]
async fn a_snapshot_can_be_taken_from_outside_while_the_store_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = Embedded::open(&dir.path().join("db")).unwrap();
    store.create(b"/a", v("1"), 0).await.unwrap();
    let rev = store.create(b"/b", v("2"), 0).await.unwrap().mod_revision;
    let snap = dir.path().join("snap.db");
    let (d, s) = (dir.path().join("db"), snap.clone());
    let info = tokio::task::spawn_blocking(move || Embedded::snapshot_dir(&d, &s))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.revision, rev);
    Embedded::verify(&snap).unwrap();
    let missing =
        Embedded::snapshot_dir(&dir.path().join("nothing"), &dir.path().join("x.db")).unwrap_err();
    assert!(
        missing.to_string().contains("no datastore here"),
        "{missing}"
    );
}
