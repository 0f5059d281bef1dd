//! The registry over a real embedded store, without HTTP.

use std::sync::Arc;
use std::time::Duration;

use apiserver::registry::{Registry, WriteOptions, EVENT_TTL};
use apiserver::resources::lookup;
use serde_json::json;
use store::embedded::Embedded;
use store::Store;

async fn registry() -> (tempfile::TempDir, Arc<Embedded>, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Embedded::open(dir.path()).unwrap());
    let reg = Registry::new(store.clone());
    let ns = lookup("", "v1", "namespaces").unwrap();
    reg.create(
        ns,
        None,
        json!({ "metadata": { "name": "default" } }),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    (dir, store, reg)
}

#[tokio::test]
async fn events_expire_after_the_event_ttl_and_updates_keep_the_ttl() {
    let (_dir, store, reg) = registry().await;
    let events = lookup("", "v1", "events").unwrap();
    let ev = json!({ "metadata": { "name": "e1" }, "involvedObject": { "kind": "Pod", "name": "p" }, "reason": "Started", "message": "m" });
    reg.create(events, Some("default"), ev, &WriteOptions::default())
        .await
        .unwrap();
    let key = Registry::key(events, Some("default"), "e1");
    let kv = store.get(key.as_bytes(), 0).await.unwrap().0.unwrap();
    assert_ne!(kv.lease, 0, "events are stored with a lease");
    let ttl = store.lease_keep_alive(kv.lease).await.unwrap();
    assert!(
        ttl >= EVENT_TTL && ttl <= EVENT_TTL + Duration::from_secs(120),
        "{ttl:?}"
    );
    // A second event shares the lease; an update keeps it.
    let ev2 = json!({ "metadata": { "name": "e2" }, "involvedObject": { "kind": "Pod", "name": "p" }, "reason": "Pulled", "message": "m" });
    reg.create(events, Some("default"), ev2, &WriteOptions::default())
        .await
        .unwrap();
    let kv2 = store
        .get(Registry::key(events, Some("default"), "e2").as_bytes(), 0)
        .await
        .unwrap()
        .0
        .unwrap();
    assert_eq!(kv2.lease, kv.lease);
    let mut updated = reg.get(events, Some("default"), "e1").await.unwrap();
    updated["count"] = json!(2);
    reg.update(
        events,
        Some("default"),
        "e1",
        None,
        updated,
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        store.get(key.as_bytes(), 0).await.unwrap().0.unwrap().lease,
        kv.lease
    );
    // Revoking the lease (what expiry does) removes the events.
    store.lease_revoke(kv.lease).await.unwrap();
    assert_eq!(
        reg.get(events, Some("default"), "e1")
            .await
            .unwrap_err()
            .code,
        404
    );
}

#[tokio::test]
async fn other_objects_have_no_ttl() {
    let (_dir, store, reg) = registry().await;
    let cms = lookup("", "v1", "configmaps").unwrap();
    reg.create(
        cms,
        Some("default"),
        json!({ "metadata": { "name": "c" } }),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    let kv = store
        .get(Registry::key(cms, Some("default"), "c").as_bytes(), 0)
        .await
        .unwrap()
        .0
        .unwrap();
    assert_eq!(kv.lease, 0);
}
