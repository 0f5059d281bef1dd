//! Metadata-only reads (`as=PartialObjectMetadata`) through kube-rs'
//! `get_metadata`, `list_metadata`, `watch_metadata` and the runtime
//! `metadata_watcher`, and their exact shape on the wire.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{metadata_watcher, watcher, WatchStreamExt};
use kube::ResourceExt;
use serde_json::Value;
use support::Cluster;

const WAIT: Duration = Duration::from_secs(20);

fn configmap(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([("app".to_string(), "meta".to_string())])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("big".to_string(), "x".repeat(1000))])),
        ..Default::default()
    }
}

#[tokio::test]
async fn metadata_reads_carry_only_type_and_metadata() {
    let c = Cluster::start();
    let client = c.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &configmap("one"))
        .await
        .unwrap();

    let one = cms.get_metadata("one").await.unwrap();
    assert_eq!(one.name_any(), "one");
    assert_eq!(one.labels()["app"], "meta");
    assert_eq!(one.types.as_ref().unwrap().kind, "PartialObjectMetadata");
    assert_eq!(one.types.as_ref().unwrap().api_version, "meta.k8s.io/v1");

    let list = cms
        .list_metadata(&ListParams::default().labels("app=meta"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].name_any(), "one");

    // On the wire: nothing but type and metadata.
    let req = kube::core::Request::new("/api/v1/namespaces/default/configmaps")
        .list_metadata(&ListParams::default())
        .unwrap();
    assert_eq!(
        req.headers()["Accept"],
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
    );
    let raw: Value = serde_json::from_str(&client.request_text(req).await.unwrap()).unwrap();
    assert_eq!(raw["kind"], "PartialObjectMetadataList");
    assert_eq!(raw["apiVersion"], "meta.k8s.io/v1");
    let item = raw["items"][0].as_object().unwrap();
    let mut keys: Vec<&str> = item.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["apiVersion", "kind", "metadata"]);
    assert_eq!(item["kind"], "PartialObjectMetadata");

    // Watch events carry PartialObjectMetadata objects.
    let rv = list.metadata.resource_version.clone().unwrap();
    let mut events = cms
        .watch_metadata(&WatchParams::default().labels("app=meta"), &rv)
        .await
        .unwrap()
        .boxed();
    cms.create(&PostParams::default(), &configmap("two"))
        .await
        .unwrap();
    let ev = tokio::time::timeout(WAIT, events.try_next())
        .await
        .expect("a watch event")
        .unwrap()
        .unwrap();
    match ev {
        WatchEvent::Added(o) => {
            assert_eq!(o.name_any(), "two");
            assert_eq!(o.types.unwrap().kind, "PartialObjectMetadata");
        }
        other => panic!("unexpected event {other:?}"),
    }

    // The runtime's metadata watcher (what the garbage collector uses).
    let names: Vec<String> = tokio::time::timeout(
        WAIT,
        metadata_watcher(cms.clone(), watcher::Config::default().labels("app=meta"))
            .default_backoff()
            .applied_objects()
            .take(2)
            .map_ok(|o| o.name_any())
            .try_collect(),
    )
    .await
    .expect("the metadata watcher lists both")
    .unwrap();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["one", "two"]);
}
