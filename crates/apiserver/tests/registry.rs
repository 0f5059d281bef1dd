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

/// Writes start from the watch cache's copy, which may be behind the store.
/// Every write must still land on the store's latest state: here another
/// writer changes the object straight in the store each time, just before
/// the registry's update (often before the cache has seen it).
#[tokio::test]
async fn updates_through_the_watch_cache_land_on_the_latest_stored_object() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Embedded::open(dir.path()).unwrap());
    let reg = Registry::new(store.clone()).with_cache();
    let ns = lookup("", "v1", "namespaces").unwrap();
    let opts = WriteOptions::default();
    reg.create(
        ns,
        None,
        json!({ "metadata": { "name": "default" } }),
        &opts,
    )
    .await
    .unwrap();
    let cms = lookup("", "v1", "configmaps").unwrap();
    let pods = lookup("", "v1", "pods").unwrap();
    reg.create(
        cms,
        Some("default"),
        json!({ "metadata": { "name": "c" }, "data": { "v": "0" } }),
        &opts,
    )
    .await
    .unwrap();
    reg.create(pods, Some("default"), json!({ "metadata": { "name": "p" }, "spec": { "containers": [{ "name": "c", "image": "busybox" }] } }), &opts)
        .await
        .unwrap();
    let cm_key = Registry::key(cms, Some("default"), "c");
    let pod_key = Registry::key(pods, Some("default"), "p");
    let stored = |key: String| {
        let store = store.clone();
        async move {
            let kv = store.get(key.as_bytes(), 0).await.unwrap().0.unwrap();
            (
                serde_json::from_slice::<serde_json::Value>(&kv.value).unwrap(),
                kv.mod_revision,
            )
        }
    };
    for i in 0..100 {
        // Someone else sets v to "other"; the registry then writes v back
        // to "mine", which the stale cached copy may still show.
        let (mut obj, rev) = stored(cm_key.clone()).await;
        obj["data"]["v"] = json!("other");
        let value = serde_json::to_vec(&obj).unwrap().into();
        store
            .update(cm_key.as_bytes(), value, rev, 0)
            .await
            .unwrap();
        let want = json!({ "metadata": { "name": "c" }, "data": { "v": "mine" } });
        reg.update(cms, Some("default"), "c", None, want.clone(), &opts)
            .await
            .unwrap();
        assert_eq!(
            stored(cm_key.clone()).await.0["data"],
            want["data"],
            "round {i}"
        );

        // The same for a server-internal write (as pod binding makes).
        let (mut pod, rev) = stored(pod_key.clone()).await;
        pod["metadata"]["labels"] = json!({ "round": i.to_string() });
        let value = serde_json::to_vec(&pod).unwrap().into();
        store
            .update(pod_key.as_bytes(), value, rev, 0)
            .await
            .unwrap();
        reg.guaranteed_update(pods, Some("default"), "p", |p| {
            p["metadata"]["annotations"] =
                json!({ "seen": p["metadata"]["labels"]["round"].clone() });
            Ok(())
        })
        .await
        .unwrap();
        let pod = stored(pod_key.clone()).await.0;
        assert_eq!(
            pod["metadata"]["annotations"]["seen"],
            i.to_string(),
            "round {i}"
        );
    }
}

/// A dry-run create fails as the create would on an existing object, and
/// writes nothing either way.
#[tokio::test]
async fn a_dry_run_create_of_an_existing_object_is_already_exists() {
    let (_dir, store, reg) = registry().await;
    let cms = lookup("", "v1", "configmaps").unwrap();
    let dry = WriteOptions {
        dry_run: true,
        ..Default::default()
    };
    let cm = json!({ "metadata": { "name": "c" }, "data": { "v": "1" } });
    reg.create(cms, Some("default"), cm.clone(), &dry)
        .await
        .unwrap();
    let key = Registry::key(cms, Some("default"), "c");
    assert!(store.get(key.as_bytes(), 0).await.unwrap().0.is_none());
    reg.create(cms, Some("default"), cm.clone(), &WriteOptions::default())
        .await
        .unwrap();
    let e = reg
        .create(cms, Some("default"), cm, &dry)
        .await
        .unwrap_err();
    assert_eq!(e.code, 409);
    assert_eq!(e.to_status()["reason"], "AlreadyExists");
}
