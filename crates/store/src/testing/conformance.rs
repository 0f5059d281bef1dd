//! The conformance suite: what every [`Store`] backend must do, written once
//! and run against each backend by [`conformance_tests!`](crate::conformance_tests).
//!
//! Each case gets a fresh store and asserts only what the trait promises
//! (relative revisions, not absolute ones: etcd starts at revision 1, the
//! embedded store at 0).

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::{
    keys, EventKind, RangeRequest, Revision, Store, StoreError, WatchStream, MAX_VALUE_BYTES,
};

/// A store under test, with whatever must live as long as it (temp dirs,
/// an etcd process).
pub struct Fixture {
    pub store: Arc<dyn Store>,
    pub guards: Vec<Box<dyn Any + Send>>,
}

/// Expands to one `#[tokio::test]` per conformance case, each calling
/// `$factory().await` for a fresh [`Fixture`].
#[macro_export]
macro_rules! conformance_tests {
    ($factory:path) => {
        $crate::conformance_tests!(@cases $factory;
            create_then_get_returns_the_value_and_revisions,
            create_of_existing_key_fails_and_consumes_no_revision,
            every_change_advances_the_revision_by_one,
            update_with_current_revision_bumps_version,
            update_with_stale_revision_conflicts_and_reports_current_value,
            update_or_delete_of_missing_key_is_not_found,
            delete_returns_previous_value_and_honours_expected_revision,
            recreated_key_starts_a_new_life,
            get_at_past_revision_sees_the_old_value,
            get_at_future_revision_fails,
            range_lists_only_the_prefix_in_key_order,
            range_pages_stay_at_the_first_revision_while_writes_go_on,
            range_at_past_revision_shows_deleted_keys_and_old_values,
            count_counts_live_keys_under_prefix,
            watch_delivers_live_changes_in_order_with_previous_values,
            watch_from_past_revision_replays_history_then_goes_live,
            watch_sees_only_its_prefix,
            compaction_fails_old_reads_and_watches_and_keeps_newer_state,
            lease_expiry_deletes_attached_keys_and_is_watched,
            lease_keep_alive_prevents_expiry,
            lease_revoke_deletes_keys_and_unknown_leases_are_refused,
            oversize_and_empty_keys_and_values_are_refused_and_store_nothing,
            snapshot_writes_a_file_holding_the_current_revision,
            concurrent_writers_get_distinct_revisions
        );
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture: $crate::testing::conformance::Fixture = $factory().await;
                $crate::testing::conformance::$case(fixture.store.clone()).await;
                drop(fixture);
            }
        )*
    };
}

const WAIT: Duration = Duration::from_secs(15);

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// The next watch item, failing the test if none arrives in time.
pub async fn next_event(stream: &mut WatchStream) -> crate::Result<crate::Event> {
    match tokio::time::timeout(WAIT, stream.next()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("watch ended without an error"),
        Err(_) => panic!("no watch event within {WAIT:?}"),
    }
}

/// Asserts that a watch from `from` fails with `Compacted`, either when it
/// is opened or as its first item.
pub async fn assert_watch_compacted(store: &dyn Store, prefix: &[u8], from: Revision) {
    match store.watch(prefix, from).await {
        Err(StoreError::Compacted { .. }) => {}
        Err(e) => panic!("watch from {from}: expected Compacted, got {e}"),
        Ok(mut s) => match next_event(&mut s).await {
            Err(StoreError::Compacted { .. }) => {}
            other => panic!("watch from {from}: expected Compacted, got {other:?}"),
        },
    }
}

pub async fn create_then_get_returns_the_value_and_revisions(store: Arc<dyn Store>) {
    let kv = store.create(b"/t/a", b("one"), 0).await.unwrap();
    assert_eq!(kv.value, b("one"));
    assert_eq!(kv.create_revision, kv.mod_revision);
    assert_eq!(kv.version, 1);
    assert_eq!(store.current_revision().await.unwrap(), kv.mod_revision);
    let (got, rev) = store.get(b"/t/a", 0).await.unwrap();
    assert_eq!(got.as_ref(), Some(&kv));
    assert_eq!(rev, kv.mod_revision);
    let (missing, _) = store.get(b"/t/b", 0).await.unwrap();
    assert!(missing.is_none());
}

pub async fn create_of_existing_key_fails_and_consumes_no_revision(store: Arc<dyn Store>) {
    let kv = store.create(b"/t/a", b("one"), 0).await.unwrap();
    let err = store.create(b"/t/a", b("two"), 0).await.unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists { ref key } if key == "/t/a"),
        "{err}"
    );
    assert_eq!(store.current_revision().await.unwrap(), kv.mod_revision);
    assert_eq!(
        store.get(b"/t/a", 0).await.unwrap().0.unwrap().value,
        b("one")
    );
}

pub async fn every_change_advances_the_revision_by_one(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    let a = store.create(b"/t/a", b("1"), 0).await.unwrap();
    assert_eq!(a.mod_revision, start + 1);
    let a2 = store
        .update(b"/t/a", b("2"), a.mod_revision, 0)
        .await
        .unwrap();
    assert_eq!(a2.mod_revision, start + 2);
    let (del_rev, _) = store.delete(b"/t/a", None).await.unwrap();
    assert_eq!(del_rev, start + 3);
    // A failed request consumes nothing.
    let _ = store.delete(b"/t/a", None).await.unwrap_err();
    let b2 = store.create(b"/t/b", b("1"), 0).await.unwrap();
    assert_eq!(b2.mod_revision, start + 4);
}

pub async fn update_with_current_revision_bumps_version(store: Arc<dyn Store>) {
    let kv = store.create(b"/t/a", b("1"), 0).await.unwrap();
    let kv2 = store
        .update(b"/t/a", b("2"), kv.mod_revision, 0)
        .await
        .unwrap();
    assert_eq!(kv2.version, 2);
    assert_eq!(kv2.create_revision, kv.create_revision);
    assert!(kv2.mod_revision > kv.mod_revision);
    let kv3 = store
        .update(b"/t/a", b("3"), kv2.mod_revision, 0)
        .await
        .unwrap();
    assert_eq!(kv3.version, 3);
    assert_eq!(store.get(b"/t/a", 0).await.unwrap().0.unwrap(), kv3);
}

pub async fn update_with_stale_revision_conflicts_and_reports_current_value(store: Arc<dyn Store>) {
    let kv = store.create(b"/t/a", b("1"), 0).await.unwrap();
    let kv2 = store
        .update(b"/t/a", b("2"), kv.mod_revision, 0)
        .await
        .unwrap();
    let err = store
        .update(b"/t/a", b("3"), kv.mod_revision, 0)
        .await
        .unwrap_err();
    match err {
        StoreError::Conflict {
            key,
            expected,
            current,
        } => {
            assert_eq!(key, "/t/a");
            assert_eq!(expected, kv.mod_revision);
            assert_eq!(current.as_deref(), Some(&kv2));
        }
        e => panic!("expected Conflict, got {e}"),
    }
    assert_eq!(
        store.get(b"/t/a", 0).await.unwrap().0.unwrap().value,
        b("2")
    );
    assert_eq!(store.current_revision().await.unwrap(), kv2.mod_revision);
}

pub async fn update_or_delete_of_missing_key_is_not_found(store: Arc<dyn Store>) {
    let err = store.update(b"/t/none", b("x"), 5, 0).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    let err = store.delete(b"/t/none", None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(store.get(b"/t/none", 0).await.unwrap().0.is_none());
}

pub async fn delete_returns_previous_value_and_honours_expected_revision(store: Arc<dyn Store>) {
    let kv = store.create(b"/t/a", b("1"), 0).await.unwrap();
    let kv2 = store
        .update(b"/t/a", b("2"), kv.mod_revision, 0)
        .await
        .unwrap();
    let err = store
        .delete(b"/t/a", Some(kv.mod_revision))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert!(store.get(b"/t/a", 0).await.unwrap().0.is_some());
    let (rev, prev) = store.delete(b"/t/a", Some(kv2.mod_revision)).await.unwrap();
    assert_eq!(prev, kv2);
    assert_eq!(rev, store.current_revision().await.unwrap());
    assert!(store.get(b"/t/a", 0).await.unwrap().0.is_none());
}

pub async fn recreated_key_starts_a_new_life(store: Arc<dyn Store>) {
    let kv = store.create(b"/t/a", b("1"), 0).await.unwrap();
    store
        .update(b"/t/a", b("2"), kv.mod_revision, 0)
        .await
        .unwrap();
    store.delete(b"/t/a", None).await.unwrap();
    let again = store.create(b"/t/a", b("new"), 0).await.unwrap();
    assert_eq!(again.version, 1);
    assert_eq!(again.create_revision, again.mod_revision);
    assert!(again.create_revision > kv.create_revision);
}

pub async fn get_at_past_revision_sees_the_old_value(store: Arc<dyn Store>) {
    let v1 = store.create(b"/t/a", b("1"), 0).await.unwrap();
    let v2 = store
        .update(b"/t/a", b("2"), v1.mod_revision, 0)
        .await
        .unwrap();
    let (del, _) = store.delete(b"/t/a", None).await.unwrap();
    let (at1, r1) = store.get(b"/t/a", v1.mod_revision).await.unwrap();
    assert_eq!(r1, v1.mod_revision);
    assert_eq!(at1.unwrap(), v1);
    assert_eq!(
        store
            .get(b"/t/a", v2.mod_revision)
            .await
            .unwrap()
            .0
            .unwrap(),
        v2
    );
    assert!(store.get(b"/t/a", del).await.unwrap().0.is_none());
    // Before its creation the key did not exist.
    if v1.mod_revision > 1 {
        assert!(store
            .get(b"/t/a", v1.mod_revision - 1)
            .await
            .unwrap()
            .0
            .is_none());
    }
}

pub async fn get_at_future_revision_fails(store: Arc<dyn Store>) {
    let kv = store.create(b"/t/a", b("1"), 0).await.unwrap();
    let err = store.get(b"/t/a", kv.mod_revision + 10).await.unwrap_err();
    assert!(matches!(err, StoreError::FutureRevision { .. }), "{err}");
}

pub async fn range_lists_only_the_prefix_in_key_order(store: Arc<dyn Store>) {
    for k in [
        "/r/pods/b",
        "/r/pods/a",
        "/r/pods/c",
        "/r/podsx",
        "/r/services/a",
        "/q",
    ] {
        store.create(k.as_bytes(), b(k), 0).await.unwrap();
    }
    let resp = store
        .range(RangeRequest {
            prefix: b"/r/pods/".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    let got: Vec<_> = resp.kvs.iter().map(|kv| kv.key.clone()).collect();
    assert_eq!(got, vec![b("/r/pods/a"), b("/r/pods/b"), b("/r/pods/c")]);
    assert!(!resp.more);
    assert_eq!(resp.revision, store.current_revision().await.unwrap());
    for kv in &resp.kvs {
        assert_eq!(kv.value, kv.key);
    }
}

pub async fn range_pages_stay_at_the_first_revision_while_writes_go_on(store: Arc<dyn Store>) {
    for i in 0..25 {
        store
            .create(format!("/p/{i:03}").as_bytes(), b("v1"), 0)
            .await
            .unwrap();
    }
    let mut req = RangeRequest {
        prefix: b"/p/".to_vec(),
        limit: 10,
        ..Default::default()
    };
    let first = store.range(req.clone()).await.unwrap();
    assert_eq!(first.kvs.len(), 10);
    assert!(first.more);
    // Writes between pages must not show up in later pages.
    store.create(b"/p/005a", b("late"), 0).await.unwrap();
    store.create(b"/p/999", b("late"), 0).await.unwrap();
    let kv = store.get(b"/p/020", 0).await.unwrap().0.unwrap();
    store
        .update(b"/p/020", b("v2"), kv.mod_revision, 0)
        .await
        .unwrap();
    store.delete(b"/p/015", None).await.unwrap();

    let mut all = first.kvs.clone();
    let mut last = first;
    while last.more {
        req.revision = last.revision;
        req.start = Some(keys::next_key(&last.kvs.last().unwrap().key));
        last = store.range(req.clone()).await.unwrap();
        assert_eq!(last.revision, req.revision);
        all.extend(last.kvs.iter().cloned());
    }
    let names: Vec<String> = all
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect();
    let expected: Vec<String> = (0..25).map(|i| format!("/p/{i:03}")).collect();
    assert_eq!(names, expected);
    assert!(all.iter().all(|kv| kv.value == b("v1")));
}

pub async fn range_at_past_revision_shows_deleted_keys_and_old_values(store: Arc<dyn Store>) {
    let a = store.create(b"/h/a", b("a1"), 0).await.unwrap();
    store.create(b"/h/b", b("b1"), 0).await.unwrap();
    let before = store.current_revision().await.unwrap();
    store
        .update(b"/h/a", b("a2"), a.mod_revision, 0)
        .await
        .unwrap();
    store.delete(b"/h/b", None).await.unwrap();
    store.create(b"/h/c", b("c1"), 0).await.unwrap();
    let old = store
        .range(RangeRequest {
            prefix: b"/h/".to_vec(),
            revision: before,
            ..Default::default()
        })
        .await
        .unwrap();
    let got: Vec<_> = old
        .kvs
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    assert_eq!(got, vec![(b("/h/a"), b("a1")), (b("/h/b"), b("b1"))]);
    let paged = store
        .range(RangeRequest {
            prefix: b"/h/".to_vec(),
            revision: before,
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(paged.kvs.len(), 1);
    assert!(paged.more);
    let now = store
        .range(RangeRequest {
            prefix: b"/h/".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    let got: Vec<_> = now
        .kvs
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    assert_eq!(got, vec![(b("/h/a"), b("a2")), (b("/h/c"), b("c1"))]);
    // Counting sees the same keys as ranging, at either revision.
    let count = |revision, start: Option<&[u8]>| {
        store.count_range(RangeRequest {
            prefix: b"/h/".to_vec(),
            start: start.map(<[u8]>::to_vec),
            revision,
            ..Default::default()
        })
    };
    assert_eq!(count(before, None).await.unwrap(), 2);
    assert_eq!(count(before, Some(b"/h/b")).await.unwrap(), 1);
    assert_eq!(count(0, None).await.unwrap(), 2);
    assert_eq!(count(0, Some(b"/h/b")).await.unwrap(), 1);
}

pub async fn count_counts_live_keys_under_prefix(store: Arc<dyn Store>) {
    for i in 0..7 {
        store
            .create(format!("/c/x/{i}").as_bytes(), b("v"), 0)
            .await
            .unwrap();
    }
    store.create(b"/c/y/0", b("v"), 0).await.unwrap();
    store.delete(b"/c/x/3", None).await.unwrap();
    assert_eq!(store.count(b"/c/x/").await.unwrap(), 6);
    assert_eq!(store.count(b"/c/").await.unwrap(), 7);
    assert_eq!(store.count(b"/none/").await.unwrap(), 0);
    let from_4 = store
        .count_range(RangeRequest {
            prefix: b"/c/x/".to_vec(),
            start: Some(b"/c/x/4".to_vec()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(from_4, 3);
}

pub async fn watch_delivers_live_changes_in_order_with_previous_values(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    let mut w = store.watch(b"/w/", start).await.unwrap();
    let a = store.create(b"/w/a", b("1"), 0).await.unwrap();
    let a2 = store
        .update(b"/w/a", b("2"), a.mod_revision, 0)
        .await
        .unwrap();
    let (del, _) = store.delete(b"/w/a", None).await.unwrap();

    let e1 = next_event(&mut w).await.unwrap();
    assert_eq!((e1.kind, e1.revision()), (EventKind::Put, a.mod_revision));
    assert_eq!(e1.kv, a);
    assert!(e1.prev.is_none());
    let e2 = next_event(&mut w).await.unwrap();
    assert_eq!((e2.kind, e2.revision()), (EventKind::Put, a2.mod_revision));
    assert_eq!(e2.kv.value, b("2"));
    assert_eq!(e2.prev.as_ref().map(|p| p.value.clone()), Some(b("1")));
    let e3 = next_event(&mut w).await.unwrap();
    assert_eq!((e3.kind, e3.revision()), (EventKind::Delete, del));
    assert_eq!(e3.kv.key, b("/w/a"));
    assert_eq!(e3.prev.as_ref().map(|p| p.value.clone()), Some(b("2")));
}

pub async fn watch_from_past_revision_replays_history_then_goes_live(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    let mut expected = Vec::new();
    for i in 0..30 {
        let kv = store
            .create(format!("/w/{i:02}").as_bytes(), b("v"), 0)
            .await
            .unwrap();
        expected.push(kv.mod_revision);
    }
    let mut w = store.watch(b"/w/", start).await.unwrap();
    for i in 30..40 {
        let kv = store
            .create(format!("/w/{i:02}").as_bytes(), b("v"), 0)
            .await
            .unwrap();
        expected.push(kv.mod_revision);
    }
    let mut got = Vec::new();
    while got.len() < expected.len() {
        got.push(next_event(&mut w).await.unwrap().revision());
    }
    assert_eq!(
        got, expected,
        "every change once, in order, no gap between history and live"
    );
    // Watching from the middle starts right after that revision.
    let mid = expected[9];
    let mut w2 = store.watch(b"/w/", mid).await.unwrap();
    assert_eq!(next_event(&mut w2).await.unwrap().revision(), expected[10]);
}

pub async fn watch_sees_only_its_prefix(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    let mut w = store.watch(b"/a/", start).await.unwrap();
    store.create(b"/b/x", b("v"), 0).await.unwrap();
    store.create(b"/a", b("v"), 0).await.unwrap();
    let mine = store.create(b"/a/x", b("v"), 0).await.unwrap();
    let e = next_event(&mut w).await.unwrap();
    assert_eq!(e.kv.key, b("/a/x"));
    assert_eq!(e.revision(), mine.mod_revision);
}

pub async fn compaction_fails_old_reads_and_watches_and_keeps_newer_state(store: Arc<dyn Store>) {
    let a1 = store.create(b"/k/a", b("1"), 0).await.unwrap();
    let a2 = store
        .update(b"/k/a", b("2"), a1.mod_revision, 0)
        .await
        .unwrap();
    store.create(b"/k/b", b("1"), 0).await.unwrap();
    store.delete(b"/k/b", None).await.unwrap();
    let a3 = store
        .update(b"/k/a", b("3"), a2.mod_revision, 0)
        .await
        .unwrap();
    let c = store.create(b"/k/c", b("1"), 0).await.unwrap();
    let target = a3.mod_revision;
    store.compact(target).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), target);

    let err = store.get(b"/k/a", a2.mod_revision).await.unwrap_err();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err}");
    let err = store
        .range(RangeRequest {
            prefix: b"/k/".to_vec(),
            revision: a1.mod_revision,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err}");
    // The state at the compacted revision is intact.
    let at = store
        .range(RangeRequest {
            prefix: b"/k/".to_vec(),
            revision: target,
            ..Default::default()
        })
        .await
        .unwrap();
    let got: Vec<_> = at
        .kvs
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    assert_eq!(got, vec![(b("/k/a"), b("3"))]);
    assert_eq!(store.get(b"/k/a", 0).await.unwrap().0.unwrap(), a3);
    // A watch that needs only changes >= the compacted revision works.
    let mut w = store.watch(b"/k/", target - 1).await.unwrap();
    assert_eq!(
        next_event(&mut w).await.unwrap().revision(),
        a3.mod_revision
    );
    assert_eq!(next_event(&mut w).await.unwrap().revision(), c.mod_revision);
    assert_watch_compacted(store.as_ref(), b"/k/", a1.mod_revision).await;
    // Compacting again to an older revision is refused.
    let err = store.compact(a1.mod_revision).await.unwrap_err();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err}");
}

/// Waits until `key` is gone, polling with a bound; returns false on time-out.
async fn wait_gone(store: &dyn Store, key: &[u8], within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if store.get(key, 0).await.unwrap().0.is_none() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

pub async fn lease_expiry_deletes_attached_keys_and_is_watched(store: Arc<dyn Store>) {
    let lease = store.lease_grant(Duration::from_secs(2)).await.unwrap();
    let start = store.current_revision().await.unwrap();
    let mut w = store.watch(b"/l/", start).await.unwrap();
    store.create(b"/l/a", b("v"), lease).await.unwrap();
    store.create(b"/l/keep", b("v"), 0).await.unwrap();
    let kv = store.get(b"/l/a", 0).await.unwrap().0.unwrap();
    assert_eq!(kv.lease, lease);
    assert!(
        wait_gone(store.as_ref(), b"/l/a", WAIT).await,
        "leased key outlived its TTL"
    );
    assert!(store.get(b"/l/keep", 0).await.unwrap().0.is_some());
    let mut saw_delete = false;
    for _ in 0..3 {
        let e = next_event(&mut w).await.unwrap();
        if e.kind == EventKind::Delete && e.kv.key == b("/l/a") {
            saw_delete = true;
            break;
        }
    }
    assert!(
        saw_delete,
        "lease expiry was not delivered as a delete event"
    );
    let err = store.lease_keep_alive(lease).await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseNotFound { .. }), "{err}");
}

pub async fn lease_keep_alive_prevents_expiry(store: Arc<dyn Store>) {
    let lease = store.lease_grant(Duration::from_secs(2)).await.unwrap();
    store.create(b"/l/a", b("v"), lease).await.unwrap();
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < until {
        let ttl = store.lease_keep_alive(lease).await.unwrap();
        assert!(ttl >= Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        store.get(b"/l/a", 0).await.unwrap().0.is_some(),
        "kept-alive lease expired"
    );
    assert!(
        wait_gone(store.as_ref(), b"/l/a", WAIT).await,
        "lease did not expire once keep-alives stopped"
    );
}

pub async fn lease_revoke_deletes_keys_and_unknown_leases_are_refused(store: Arc<dyn Store>) {
    let lease = store.lease_grant(Duration::from_secs(60)).await.unwrap();
    store.create(b"/l/a", b("v"), lease).await.unwrap();
    store.create(b"/l/b", b("v"), lease).await.unwrap();
    store.lease_revoke(lease).await.unwrap();
    assert!(store.get(b"/l/a", 0).await.unwrap().0.is_none());
    assert!(store.get(b"/l/b", 0).await.unwrap().0.is_none());
    let err = store.lease_revoke(lease).await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseNotFound { .. }), "{err}");
    let before = store.current_revision().await.unwrap();
    let err = store.create(b"/l/c", b("v"), lease).await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseNotFound { .. }), "{err}");
    assert_eq!(store.current_revision().await.unwrap(), before);
}

pub async fn oversize_and_empty_keys_and_values_are_refused_and_store_nothing(
    store: Arc<dyn Store>,
) {
    let before = store.current_revision().await.unwrap();
    let big = Bytes::from(vec![b'x'; MAX_VALUE_BYTES + 1]);
    let err = store.create(b"/big", big.clone(), 0).await.unwrap_err();
    assert!(matches!(err, StoreError::ValueTooLarge { .. }), "{err}");
    assert!(
        err.to_string().contains("/big"),
        "error names the key: {err}"
    );
    let err = store.create(b"", b("v"), 0).await.unwrap_err();
    assert!(matches!(err, StoreError::EmptyKey), "{err}");
    let long_key = vec![b'k'; crate::MAX_KEY_BYTES + 1];
    let err = store.create(&long_key, b("v"), 0).await.unwrap_err();
    assert!(matches!(err, StoreError::KeyTooLarge { .. }), "{err}");
    assert_eq!(store.current_revision().await.unwrap(), before);
    assert!(store.get(b"/big", 0).await.unwrap().0.is_none());
    // Exactly at the limit is fine.
    let max = Bytes::from(vec![b'y'; MAX_VALUE_BYTES]);
    let kv = store.create(b"/max", max.clone(), 0).await.unwrap();
    let err = store
        .update(b"/max", big, kv.mod_revision, 0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ValueTooLarge { .. }), "{err}");
    assert_eq!(store.get(b"/max", 0).await.unwrap().0.unwrap().value, max);
}

pub async fn snapshot_writes_a_file_holding_the_current_revision(store: Arc<dyn Store>) {
    for i in 0..50 {
        store
            .create(format!("/s/{i}").as_bytes(), b("value"), 0)
            .await
            .unwrap();
    }
    let rev = store.current_revision().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snap.db");
    let info = store.snapshot(&path).await.unwrap();
    assert!(
        info.revision >= rev,
        "snapshot at {} older than {rev}",
        info.revision
    );
    assert!(info.size_bytes > 0);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), info.size_bytes);
    // The store keeps serving.
    store.create(b"/s/after", b("v"), 0).await.unwrap();
}

pub async fn concurrent_writers_get_distinct_revisions(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for i in 0..20 {
                let kv = store
                    .create(
                        format!("/cw/{w}/{i}").as_bytes(),
                        Bytes::from(vec![b'v'; 1024]),
                        0,
                    )
                    .await
                    .unwrap();
                revs.push(kv.mod_revision);
            }
            revs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let revs = t.await.unwrap();
        assert!(
            revs.windows(2).all(|w| w[0] < w[1]),
            "one writer's revisions increase"
        );
        all.extend(revs);
    }
    all.sort_unstable();
    let expected: Vec<Revision> = (start + 1..=start + 320).collect();
    assert_eq!(
        all, expected,
        "320 writes take exactly the next 320 revisions"
    );
    assert_eq!(store.count(b"/cw/").await.unwrap(), 320);
}
