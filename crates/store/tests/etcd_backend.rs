//! The etcd backend against a real etcd (Debian's `etcd-server`), one member
//! per test on loopback.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use store::etcd::Etcd;
use store::testing::etcd_server::EtcdServer;
use store::{
    keys, EventKind, RangeRequest, Store, StoreError, WatchStream, MAX_KEY_BYTES, MAX_VALUE_BYTES,
};

async fn start() -> (EtcdServer, Etcd) {
    let server = EtcdServer::start().await.expect("start etcd");
    let store = Etcd::connect(&[server.endpoint()])
        .await
        .expect("connect to etcd");
    (server, store)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn next(stream: &mut WatchStream) -> store::Result<store::Event> {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("watch delivered nothing within 10s")
        .expect("watch ended")
}

/// Polls `check` every 100 ms for up to `limit`.
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn create_returns_new_key_and_second_create_fails_with_already_exists() {
    let (_server, store) = start().await;
    let kv = store.create(b"/a", b("1"), 0).await.unwrap();
    assert_eq!(kv.key, b("/a"));
    assert_eq!(kv.value, b("1"));
    assert_eq!(kv.create_revision, kv.mod_revision);
    assert_eq!(kv.version, 1);
    assert_eq!(store.current_revision().await.unwrap(), kv.mod_revision);

    let err = store.create(b"/a", b("2"), 0).await.unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists { ref key } if key == "/a"),
        "{err:?}"
    );
    // A failed create changes nothing and consumes no revision.
    let (got, rev) = store.get(b"/a", 0).await.unwrap();
    assert_eq!(got.unwrap(), kv);
    assert_eq!(rev, kv.mod_revision);
}

#[tokio::test]
async fn update_at_current_revision_succeeds_and_stale_revision_conflicts_with_current_value() {
    let (_server, store) = start().await;
    let created = store.create(b"/a", b("1"), 0).await.unwrap();
    let updated = store
        .update(b"/a", b("2"), created.mod_revision, 0)
        .await
        .unwrap();
    assert_eq!(updated.value, b("2"));
    assert_eq!(updated.create_revision, created.create_revision);
    assert_eq!(updated.mod_revision, created.mod_revision + 1);
    assert_eq!(updated.version, 2);
    assert_eq!(store.get(b"/a", 0).await.unwrap().0.unwrap(), updated);

    let err = store
        .update(b"/a", b("3"), created.mod_revision, 0)
        .await
        .unwrap_err();
    assert!(err.is_conflict());
    match err {
        StoreError::Conflict {
            key,
            expected,
            current,
        } => {
            assert_eq!(key, "/a");
            assert_eq!(expected, created.mod_revision);
            assert_eq!(*current.unwrap(), updated);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        store.current_revision().await.unwrap(),
        updated.mod_revision
    );
}

#[tokio::test]
async fn update_of_missing_key_is_not_found_even_at_revision_zero() {
    let (_server, store) = start().await;
    for expected in [0, 1, 5] {
        let err = store
            .update(b"/missing", b("x"), expected, 0)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    }
    assert!(store.get(b"/missing", 0).await.unwrap().0.is_none());
}

#[tokio::test]
async fn delete_with_and_without_expected_revision() {
    let (_server, store) = start().await;
    let a = store.create(b"/a", b("1"), 0).await.unwrap();
    let (rev, deleted) = store.delete(b"/a", None).await.unwrap();
    assert_eq!(rev, a.mod_revision + 1);
    assert_eq!(deleted, a);
    assert!(store.get(b"/a", 0).await.unwrap().0.is_none());
    assert!(matches!(
        store.delete(b"/a", None).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));

    let b1 = store.create(b"/b", b("1"), 0).await.unwrap();
    let b2 = store
        .update(b"/b", b("2"), b1.mod_revision, 0)
        .await
        .unwrap();
    match store
        .delete(b"/b", Some(b1.mod_revision))
        .await
        .unwrap_err()
    {
        StoreError::Conflict {
            expected, current, ..
        } => {
            assert_eq!(expected, b1.mod_revision);
            assert_eq!(*current.unwrap(), b2);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let (rev, deleted) = store.delete(b"/b", Some(b2.mod_revision)).await.unwrap();
    assert_eq!(rev, b2.mod_revision + 1);
    assert_eq!(deleted, b2);
    let err = store.delete(b"/b", Some(0)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn get_at_older_revision_returns_the_value_then() {
    let (_server, store) = start().await;
    let v1 = store.create(b"/a", b("1"), 0).await.unwrap();
    let v2 = store
        .update(b"/a", b("2"), v1.mod_revision, 0)
        .await
        .unwrap();
    store.delete(b"/a", None).await.unwrap();

    let (old, served) = store.get(b"/a", v1.mod_revision).await.unwrap();
    assert_eq!(old.unwrap(), v1);
    assert_eq!(served, v1.mod_revision);
    assert_eq!(
        store.get(b"/a", v2.mod_revision).await.unwrap().0.unwrap(),
        v2
    );
    assert!(store.get(b"/a", 0).await.unwrap().0.is_none());

    let future = store.current_revision().await.unwrap() + 10;
    let err = store.get(b"/a", future).await.unwrap_err();
    assert!(
        matches!(err, StoreError::FutureRevision { requested, .. } if requested == future),
        "{err:?}"
    );
}

#[tokio::test]
async fn range_pages_stay_at_the_first_pages_revision_while_writes_happen() {
    let (_server, store) = start().await;
    for i in 0..5 {
        store
            .create(format!("/p/{i}").as_bytes(), b("old"), 0)
            .await
            .unwrap();
    }
    store.create(b"/q/outside", b("x"), 0).await.unwrap();

    let first = store
        .range(RangeRequest {
            prefix: b"/p/".to_vec(),
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    let at = first.revision;
    assert_eq!(at, store.current_revision().await.unwrap());
    assert!(first.more);
    assert_eq!(
        first
            .kvs
            .iter()
            .map(|kv| kv.key.clone())
            .collect::<Vec<_>>(),
        vec![b("/p/0"), b("/p/1")]
    );

    // Writes between pages must not show in later pages.
    let p3 = store.get(b"/p/3", 0).await.unwrap().0.unwrap();
    store
        .update(b"/p/3", b("new"), p3.mod_revision, 0)
        .await
        .unwrap();
    store.create(b"/p/25", b("new"), 0).await.unwrap();
    store.delete(b"/p/4", None).await.unwrap();

    let mut keys_seen = Vec::new();
    let mut last = first.kvs.last().unwrap().key.to_vec();
    loop {
        let page = store
            .range(RangeRequest {
                prefix: b"/p/".to_vec(),
                start: Some(keys::next_key(&last)),
                revision: at,
                limit: 2,
            })
            .await
            .unwrap();
        assert_eq!(page.revision, at);
        for kv in &page.kvs {
            assert_eq!(kv.value, b("old"), "{kv:?}");
            keys_seen.push(kv.key.clone());
        }
        if !page.more {
            break;
        }
        last = page.kvs.last().unwrap().key.to_vec();
    }
    assert_eq!(keys_seen, vec![b("/p/2"), b("/p/3"), b("/p/4")]);

    let latest = store
        .range(RangeRequest {
            prefix: b"/p/".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!latest.more);
    assert_eq!(latest.kvs.len(), 5);
    let everything = store.range(RangeRequest::default()).await.unwrap();
    assert_eq!(everything.kvs.len(), 6);
}

#[tokio::test]
async fn count_counts_only_keys_under_the_prefix() {
    let (_server, store) = start().await;
    for key in [
        "/r/pods/a",
        "/r/pods/b",
        "/r/pods/c",
        "/r/podsx",
        "/r/services/a",
    ] {
        store.create(key.as_bytes(), b("v"), 0).await.unwrap();
    }
    assert_eq!(store.count(b"/r/pods/").await.unwrap(), 3);
    assert_eq!(store.count(b"/r/").await.unwrap(), 5);
    assert_eq!(store.count(b"").await.unwrap(), 5);
    assert_eq!(store.count(b"/nothing/").await.unwrap(), 0);
}

#[tokio::test]
async fn watch_from_revision_delivers_creates_updates_deletes_in_order_with_previous_values() {
    let (_server, store) = start().await;
    let before = store.create(b"/w/before", b("0"), 0).await.unwrap();
    let mut stream = store.watch(b"/w/", before.mod_revision).await.unwrap();

    let a1 = store.create(b"/w/a", b("1"), 0).await.unwrap();
    store.create(b"/other", b("x"), 0).await.unwrap();
    let a2 = store
        .update(b"/w/a", b("2"), a1.mod_revision, 0)
        .await
        .unwrap();
    let (del_rev, _) = store.delete(b"/w/a", None).await.unwrap();

    let created = next(&mut stream).await.unwrap();
    assert_eq!(created.kind, EventKind::Put);
    assert_eq!(created.kv, a1);
    assert!(created.prev.is_none());

    let updated = next(&mut stream).await.unwrap();
    assert_eq!(updated.kind, EventKind::Put);
    assert_eq!(updated.kv, a2);
    assert_eq!(updated.prev.as_ref().unwrap(), &a1);

    let deleted = next(&mut stream).await.unwrap();
    assert_eq!(deleted.kind, EventKind::Delete);
    assert_eq!(deleted.kv.key, b("/w/a"));
    assert_eq!(deleted.kv.mod_revision, del_rev);
    assert_eq!(deleted.revision(), del_rev);
    assert!(deleted.kv.value.is_empty());
    assert_eq!(deleted.prev.as_ref().unwrap(), &a2);

    // A second watch from an older revision replays the same history.
    let mut replay = store.watch(b"/w/", 0).await.unwrap();
    assert_eq!(next(&mut replay).await.unwrap().kv, before);
    assert_eq!(next(&mut replay).await.unwrap().kv, a1);
}

#[tokio::test]
async fn dropping_a_watch_stream_cancels_the_etcd_watch() {
    let (server, store) = start().await;
    let rev = store.current_revision().await.unwrap();
    let stream = store.watch(b"/w/", rev).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || watchers_are(&server, 1)).await,
        "the watch never registered"
    );
    drop(stream);
    assert!(
        eventually(Duration::from_secs(10), || watchers_are(&server, 0)).await,
        "etcd still holds the watch"
    );
}

/// Reads etcd's own gauge of open watchers from its metrics page.
async fn watchers_are(server: &EtcdServer, expected: i64) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.endpoint().trim_start_matches("http://").to_string();
    let Ok(mut conn) = tokio::net::TcpStream::connect(&addr).await else {
        return false;
    };
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if conn.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut body = String::new();
    if conn.read_to_string(&mut body).await.is_err() {
        return false;
    }
    body.lines()
        .find_map(|line| line.strip_prefix("etcd_debugging_mvcc_watcher_total "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .is_some_and(|value| value as i64 == expected)
}

#[tokio::test]
async fn compaction_fails_old_reads_and_watches_with_compacted() {
    let (_server, store) = start().await;
    assert_eq!(store.compacted_revision().await.unwrap(), 0);
    let v1 = store.create(b"/c", b("1"), 0).await.unwrap();
    let mut last = v1.clone();
    for i in 2..6 {
        last = store
            .update(b"/c", Bytes::from(i.to_string()), last.mod_revision, 0)
            .await
            .unwrap();
    }
    let compact_at = last.mod_revision - 1;
    store.compact(compact_at).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), compact_at);

    let err = store.get(b"/c", v1.mod_revision).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Compacted { requested, compacted } if requested == v1.mod_revision && compacted == compact_at),
        "{err:?}"
    );
    let err = store
        .range(RangeRequest {
            revision: v1.mod_revision,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err:?}");
    // The state at the compaction revision stays readable.
    assert_eq!(
        store
            .get(b"/c", compact_at)
            .await
            .unwrap()
            .0
            .unwrap()
            .mod_revision,
        compact_at
    );

    let err = store
        .watch(b"/c", v1.mod_revision)
        .await
        .err()
        .expect("watch from a compacted revision");
    assert!(
        matches!(err, StoreError::Compacted { requested, compacted } if requested == v1.mod_revision && compacted == compact_at),
        "{err:?}"
    );
    // Watching the changes after the compaction revision still works.
    let mut stream = store.watch(b"/c", compact_at - 1).await.unwrap();
    assert_eq!(next(&mut stream).await.unwrap().revision(), compact_at);
    assert_eq!(next(&mut stream).await.unwrap().kv, last);

    let err = store.compact(compact_at).await.unwrap_err();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err:?}");
    let future = store.current_revision().await.unwrap() + 5;
    let err = store.compact(future).await.unwrap_err();
    assert!(matches!(err, StoreError::FutureRevision { .. }), "{err:?}");
}

#[tokio::test]
async fn compaction_by_another_client_is_seen() {
    let (server, store) = start().await;
    let other = Etcd::connect(&[server.endpoint()]).await.unwrap();
    let mut last = store.create(b"/c", b("0"), 0).await.unwrap();
    for i in 1..40 {
        last = store
            .update(b"/c", Bytes::from(i.to_string()), last.mod_revision, 0)
            .await
            .unwrap();
    }
    other.compact(last.mod_revision - 7).await.unwrap();
    assert_eq!(
        store.compacted_revision().await.unwrap(),
        last.mod_revision - 7
    );
}

#[tokio::test]
async fn lease_expiry_deletes_attached_keys() {
    let (_server, store) = start().await;
    let lease = store.lease_grant(Duration::from_secs(2)).await.unwrap();
    let kv = store.create(b"/leased/a", b("v"), lease).await.unwrap();
    assert_eq!(kv.lease, lease);
    store.create(b"/leased/b", b("v"), lease).await.unwrap();
    let mut stream = store
        .watch(b"/leased/", store.current_revision().await.unwrap())
        .await
        .unwrap();

    let gone = eventually(Duration::from_secs(10), || async {
        store.count(b"/leased/").await.unwrap() == 0
    })
    .await;
    assert!(gone, "leased keys still exist 10s after a 2s lease");
    // The deletions are watched changes (etcd gives them one revision).
    for _ in 0..2 {
        assert_eq!(next(&mut stream).await.unwrap().kind, EventKind::Delete);
    }
    let err = store.lease_keep_alive(lease).await.unwrap_err();
    assert!(
        matches!(err, StoreError::LeaseNotFound { lease: l } if l == lease),
        "{err:?}"
    );
}

#[tokio::test]
async fn lease_keep_alive_prevents_expiry() {
    let (_server, store) = start().await;
    let lease = store
        .lease_grant(Duration::from_millis(1500))
        .await
        .unwrap();
    store.create(b"/kept", b("v"), lease).await.unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        let ttl = store.lease_keep_alive(lease).await.unwrap();
        assert!(ttl >= Duration::from_secs(1), "{ttl:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        store.get(b"/kept", 0).await.unwrap().0.is_some(),
        "a kept-alive lease expired"
    );
    let gone = eventually(Duration::from_secs(10), || async {
        store.get(b"/kept", 0).await.unwrap().0.is_none()
    })
    .await;
    assert!(gone, "the lease did not expire once no longer kept alive");
}

#[tokio::test]
async fn lease_revoke_deletes_keys_and_unknown_leases_are_not_found() {
    let (_server, store) = start().await;
    let lease = store.lease_grant(Duration::from_secs(60)).await.unwrap();
    store.create(b"/l/a", b("v"), lease).await.unwrap();
    let b1 = store.create(b"/l/b", b("v"), 0).await.unwrap();
    // Moving a key onto the lease with an update.
    store
        .update(b"/l/b", b("w"), b1.mod_revision, lease)
        .await
        .unwrap();
    store.create(b"/l/c", b("v"), 0).await.unwrap();

    store.lease_revoke(lease).await.unwrap();
    assert_eq!(store.count(b"/l/").await.unwrap(), 1);
    assert!(store.get(b"/l/c", 0).await.unwrap().0.is_some());

    let err = store.lease_revoke(lease).await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseNotFound { .. }), "{err:?}");
    let err = store.lease_keep_alive(lease).await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseNotFound { .. }), "{err:?}");
    let err = store.create(b"/l/d", b("v"), lease).await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseNotFound { .. }), "{err:?}");
    assert!(store.get(b"/l/d", 0).await.unwrap().0.is_none());

    let err = store.lease_grant(Duration::ZERO).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidTtl { .. }), "{err:?}");
}

#[tokio::test]
async fn snapshot_writes_a_non_empty_etcd_snapshot_file() {
    let (_server, store) = start().await;
    for i in 0..20 {
        store
            .create(
                format!("/s/{i}").as_bytes(),
                Bytes::from(vec![b'x'; 1000]),
                0,
            )
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.db");
    let info = store.snapshot(&path).await.unwrap();
    assert_eq!(info.revision, store.current_revision().await.unwrap());
    assert!(info.size_bytes > 20_000, "{info:?}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), info.size_bytes);
    assert!(!dir.path().join("snapshot.db.part").exists());

    // etcd's own tool must accept the file and see the same revision
    // (`./dev test` installs etcdctl with the etcd-client package).
    let out = std::process::Command::new("etcdctl")
        .args(["snapshot", "status", "-w", "json"])
        .arg(&path)
        .env("ETCDCTL_API", "3")
        .output()
        .expect("running etcdctl (Debian package etcd-client)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "etcdctl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("\"revision\":{}", info.revision)),
        "{text}"
    );
}

#[tokio::test]
async fn oversize_writes_are_rejected_and_store_nothing() {
    let (_server, store) = start().await;
    let before = store.current_revision().await.unwrap();

    let err = store
        .create(b"/big", Bytes::from(vec![0u8; MAX_VALUE_BYTES + 1]), 0)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ValueTooLarge { size, .. } if size == MAX_VALUE_BYTES + 1),
        "{err:?}"
    );
    let long_key = vec![b'k'; MAX_KEY_BYTES + 1];
    let err = store.create(&long_key, b("v"), 0).await.unwrap_err();
    assert!(matches!(err, StoreError::KeyTooLarge { .. }), "{err:?}");
    let err = store.create(b"", b("v"), 0).await.unwrap_err();
    assert!(matches!(err, StoreError::EmptyKey), "{err:?}");
    assert!(store.get(b"/big", 0).await.unwrap().0.is_none());
    assert_eq!(store.current_revision().await.unwrap(), before);

    // The limit itself is allowed, and reads back whole.
    let max = store
        .create(b"/big", Bytes::from(vec![7u8; MAX_VALUE_BYTES]), 0)
        .await
        .unwrap();
    let err = store
        .update(
            b"/big",
            Bytes::from(vec![0u8; MAX_VALUE_BYTES + 1]),
            max.mod_revision,
            0,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ValueTooLarge { .. }), "{err:?}");
    assert_eq!(
        store.get(b"/big", 0).await.unwrap().0.unwrap().value.len(),
        MAX_VALUE_BYTES
    );
}

#[tokio::test]
async fn connecting_to_a_dead_endpoint_fails_clearly_within_seconds() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let err = Etcd::connect(std::slice::from_ref(&endpoint))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    let message = err.to_string();
    assert!(message.contains(&endpoint), "{message}");
}

#[tokio::test]
async fn connecting_to_an_endpoint_that_never_answers_times_out_within_seconds() {
    // Accepts TCP connections (the kernel completes the handshake into the
    // backlog) but never speaks HTTP/2.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let started = Instant::now();
    let err = Etcd::connect(std::slice::from_ref(&endpoint))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(8),
        "took {took:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&endpoint) && message.contains("did not answer"),
        "{message}"
    );
    drop(silent);
}

#[tokio::test]
async fn a_killed_etcd_fails_requests_instead_of_hanging() {
    let (server, store) = start().await;
    store.create(b"/a", b("1"), 0).await.unwrap();
    let mut stream = store
        .watch(b"/", store.current_revision().await.unwrap())
        .await
        .unwrap();
    drop(server);
    let ended = tokio::time::timeout(Duration::from_secs(40), stream.next())
        .await
        .expect("watch hung");
    assert!(matches!(ended, Some(Err(_))), "{ended:?}");
    let result = tokio::time::timeout(Duration::from_secs(40), store.get(b"/a", 0))
        .await
        .expect("get hung");
    assert!(result.is_err());
}

/// The suite every backend passes, against a fresh etcd per case.
mod conformance {
    use std::sync::Arc;

    use store::etcd::Etcd;
    use store::testing::conformance::Fixture;
    use store::testing::etcd_server::EtcdServer;

    async fn etcd_fixture() -> Fixture {
        let server = EtcdServer::start().await.expect("start etcd");
        let store = Etcd::connect(&[server.endpoint()])
            .await
            .expect("connect to etcd");
        Fixture {
            store: Arc::new(store),
            guards: vec![Box::new(server)],
        }
    }

    store::conformance_tests!(etcd_fixture);
}
