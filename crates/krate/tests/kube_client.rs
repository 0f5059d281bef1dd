//! The real `krate server` driven by kube-rs, the Rust client our own
//! components use: typed CRUD and patches, paging, errors as
//! `kube::Error::Api`, raw watches, the runtime watcher and reflector, and
//! discovery.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::ErrorResponse;
use kube::discovery::{verbs, Discovery, Scope};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::{Client, Config, ResourceExt};
use serde_json::json;
use support::Cluster;

/// A server with the API alone: these tests count and watch objects, and no
/// controller may add its own (such as `kube-root-ca.crt` in every namespace).
fn api_server() -> Cluster {
    Cluster::start_with(&["--disable-controllers"])
}

async fn client(c: &Cluster) -> Client {
    let kubeconfig = Kubeconfig::read_from(&c.kubeconfig).expect("reading the admin kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kube config");
    Client::try_from(config).expect("kube client")
}

fn configmap(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

fn labelled(name: &str, app: &str) -> ConfigMap {
    let mut cm = configmap(name, &[("k", "v")]);
    cm.metadata.labels = Some(BTreeMap::from([("app".to_string(), app.to_string())]));
    cm
}

fn data(cm: &ConfigMap) -> BTreeMap<String, String> {
    cm.data.clone().unwrap_or_default()
}

fn rv(o: &impl ResourceExt) -> u64 {
    o.resource_version()
        .expect("resourceVersion")
        .parse()
        .expect("numeric resourceVersion")
}

/// The API error of a failed call.
fn api_error<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> ErrorResponse {
    match r {
        Err(kube::Error::Api(e)) => e,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn create_namespace(client: &Client, name: &str) {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("creating a namespace");
}

/// The next watch event that is not a bookmark, within 10 s.
async fn next_change<K: std::fmt::Debug>(
    stream: &mut (impl Stream<Item = kube::Result<WatchEvent<K>>> + Unpin),
) -> WatchEvent<K> {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("no watch event within 10s")
            .expect("the watch ended")
            .expect("a watch error");
        if !matches!(ev, WatchEvent::Bookmark(_)) {
            return ev;
        }
    }
}

fn describe(ev: &WatchEvent<ConfigMap>) -> (String, String) {
    match ev {
        WatchEvent::Added(o) => ("ADDED".into(), o.name_any()),
        WatchEvent::Modified(o) => ("MODIFIED".into(), o.name_any()),
        WatchEvent::Deleted(o) => ("DELETED".into(), o.name_any()),
        WatchEvent::Bookmark(b) => ("BOOKMARK".into(), b.metadata.resource_version.clone()),
        WatchEvent::Error(e) => ("ERROR".into(), e.message.clone()),
    }
}

/// Polls `check` every 100 ms until it holds, for at most `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match check().await {
            Ok(()) => return,
            Err(why) if tokio::time::Instant::now() >= deadline => {
                panic!("{what} not reached within {within:?}: {why}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Name -> (resourceVersion, data) of the objects a reflector holds.
fn reflected(
    reader: &reflector::Store<ConfigMap>,
) -> BTreeMap<String, (String, BTreeMap<String, String>)> {
    reader
        .state()
        .iter()
        .map(|o| {
            (
                o.name_any(),
                (o.resource_version().unwrap_or_default(), data(o)),
            )
        })
        .collect()
}

/// The same for the server's current list.
async fn listed(
    api: &Api<ConfigMap>,
    labels: &str,
) -> BTreeMap<String, (String, BTreeMap<String, String>)> {
    let list = api
        .list(&ListParams::default().labels(labels))
        .await
        .expect("list");
    list.items
        .iter()
        .map(|o| {
            (
                o.name_any(),
                (o.resource_version().unwrap_or_default(), data(o)),
            )
        })
        .collect()
}

/// Stops the server, compacts its datastore to the current revision (the
/// way automatic compaction does after its window), and starts it again.
async fn restart_with_history_compacted(c: &mut Cluster) -> u64 {
    tokio::task::block_in_place(|| c.kill());
    let dir = c.data_dir().join("db");
    let store =
        store::embedded::Embedded::open(&dir).expect("opening the stopped server's datastore");
    let rev = store::Store::current_revision(&store).await.unwrap();
    store::Store::compact(&store, rev)
        .await
        .expect("compacting");
    store.close();
    drop(store);
    tokio::task::block_in_place(|| c.restart());
    rev as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmaps_create_get_list_replace_patch_and_delete_through_typed_api() {
    let c = api_server();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&c).await);

    let created = api
        .create(
            &PostParams::default(),
            &configmap("app", &[("mode", "fast")]),
        )
        .await
        .unwrap();
    assert_eq!(created.namespace().as_deref(), Some("default"));
    assert!(created.uid().is_some_and(|u| !u.is_empty()), "{created:?}");
    assert!(created.creation_timestamp().is_some(), "{created:?}");
    let got = api.get("app").await.unwrap();
    assert_eq!(got.resource_version(), created.resource_version());
    assert_eq!(data(&got), BTreeMap::from([("mode".into(), "fast".into())]));
    assert!(api.get_opt("missing").await.unwrap().is_none());

    let names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| o.name_any())
        .collect();
    assert!(names.contains(&"app".to_string()), "{names:?}");

    let mut changed = got.clone();
    changed
        .data
        .as_mut()
        .unwrap()
        .insert("level".into(), "3".into());
    let replaced = api
        .replace("app", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert!(
        rv(&replaced) > rv(&got),
        "replace moves the resourceVersion"
    );
    assert_eq!(replaced.uid(), created.uid());
    assert_eq!(data(&replaced).len(), 2);

    let pp = PatchParams::default();
    // A merge patch deletes a key with null and leaves the rest alone.
    let merged = api
        .patch(
            "app",
            &pp,
            &Patch::Merge(json!({ "data": { "mode": null, "extra": "yes" } })),
        )
        .await
        .unwrap();
    assert_eq!(
        data(&merged),
        BTreeMap::from([("level".into(), "3".into()), ("extra".into(), "yes".into())])
    );
    // Strategic merge on a map behaves as a merge.
    let strategic = api
        .patch(
            "app",
            &pp,
            &Patch::Strategic(json!({ "metadata": { "labels": { "tier": "web" } } })),
        )
        .await
        .unwrap();
    assert_eq!(
        strategic.labels().get("tier").map(String::as_str),
        Some("web")
    );
    assert_eq!(data(&strategic).len(), 2);
    let ops: json_patch::Patch = serde_json::from_value(json!([
        { "op": "test", "path": "/data/level", "value": "3" },
        { "op": "replace", "path": "/data/level", "value": "4" },
        { "op": "remove", "path": "/data/extra" },
    ]))
    .unwrap();
    let patched = api
        .patch("app", &pp, &Patch::<()>::Json(ops))
        .await
        .unwrap();
    assert_eq!(
        data(&patched),
        BTreeMap::from([("level".into(), "4".into())])
    );

    api.delete("app", &DeleteParams::default()).await.unwrap();
    assert!(api.get_opt("app").await.unwrap().is_none());
}

/// Upstream's ConfigMap storage does not set `ReturnDeletedObject`: a delete
/// that removes the object at once answers `Status{status: Success}` with
/// the name, the resource as `kind`, and the uid (registry/generic/registry
/// `finalizeDelete`), which kube-rs hands back as `Either::Right`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_configmap_answers_a_success_status() {
    let c = api_server();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&c).await);
    let created = api
        .create(&PostParams::default(), &configmap("gone", &[]))
        .await
        .unwrap();
    let status = api
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap()
        .right()
        .expect("a Status, not the object");
    assert_eq!(
        status.status,
        Some(kube::core::response::StatusSummary::Success)
    );
    let details = status.details.expect("details");
    assert_eq!(details.name, "gone");
    assert_eq!(details.kind, "configmaps");
    assert_eq!(Some(details.uid), created.uid());
}

fn deployment() -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": "web", "labels": { "app": "web" } },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [
                    { "name": "web", "image": "nginx:1.26", "ports": [{ "containerPort": 80 }] },
                    { "name": "sidecar", "image": "busybox:1.36", "command": ["sleep", "infinity"] },
                ] },
            },
        },
    }))
    .unwrap()
}

fn containers(d: &Deployment) -> Vec<(String, String)> {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_round_trip_and_strategic_merge_patch_merges_containers_by_name() {
    let c = api_server();
    let api: Api<Deployment> = Api::default_namespaced(client(&c).await);

    let created = api
        .create(&PostParams::default(), &deployment())
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(created.spec.as_ref().unwrap().replicas, Some(2));

    let got = api.get("web").await.unwrap();
    assert_eq!(containers(&got), containers(&created));

    // The list of containers merges by name: only `web` changes.
    let patch = json!({ "spec": { "template": { "spec": { "containers": [{ "name": "web", "image": "nginx:1.27" }] } } } });
    let patched = api
        .patch("web", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    assert_eq!(
        containers(&patched),
        [
            ("web".to_string(), "nginx:1.27".to_string()),
            ("sidecar".to_string(), "busybox:1.36".to_string())
        ]
    );
    assert_eq!(
        patched.metadata.generation,
        Some(2),
        "a spec change bumps the generation"
    );

    // A merge patch replaces lists whole.
    let patch = json!({ "spec": { "template": { "spec": { "containers": [{ "name": "only", "image": "nginx:1.27" }] } } } });
    let merged = api
        .patch("web", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    assert_eq!(
        containers(&merged),
        [("only".to_string(), "nginx:1.27".to_string())]
    );

    // Metadata-only changes keep the generation.
    let labelled = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "team": "a" } } })),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, merged.metadata.generation);

    let mut scaled = labelled.clone();
    scaled.spec.as_mut().unwrap().replicas = Some(5);
    let replaced = api
        .replace("web", &PostParams::default(), &scaled)
        .await
        .unwrap();
    assert_eq!(replaced.spec.as_ref().unwrap().replicas, Some(5));
    assert_eq!(
        replaced.metadata.generation.unwrap(),
        labelled.metadata.generation.unwrap() + 1
    );

    let ops: json_patch::Patch =
        serde_json::from_value(json!([{ "op": "replace", "path": "/spec/replicas", "value": 1 }]))
            .unwrap();
    let json_patched = api
        .patch("web", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .unwrap();
    assert_eq!(json_patched.spec.as_ref().unwrap().replicas, Some(1));

    api.delete("web", &DeleteParams::default()).await.unwrap();
    let e = api_error(api.get("web").await);
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (404, "NotFound", "deployments.apps \"web\" not found")
    );
}

/// Upstream's `SetDefaults_Deployment` and pod template defaults
/// (pkg/apis/apps/v1/defaults.go, pkg/apis/core/v1/defaults.go).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_deployment_carries_upstream_defaults() {
    let c = api_server();
    let api: Api<Deployment> = Api::default_namespaced(client(&c).await);
    let created = api
        .create(&PostParams::default(), &deployment())
        .await
        .unwrap();
    let spec = created.spec.as_ref().unwrap();
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    let strategy = spec.strategy.as_ref().expect("strategy");
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    let rolling = strategy.rolling_update.as_ref().expect("rollingUpdate");
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    assert_eq!(rolling.max_surge, Some(IntOrString::String("25%".into())));
    assert_eq!(
        rolling.max_unavailable,
        Some(IntOrString::String("25%".into()))
    );
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Always"));
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirst"));
    assert_eq!(pod.scheduler_name.as_deref(), Some("default-scheduler"));
    assert_eq!(pod.termination_grace_period_seconds, Some(30));
    let web = &pod.containers[0];
    assert_eq!(
        web.image_pull_policy.as_deref(),
        Some("IfNotPresent"),
        "a tagged image"
    );
    assert_eq!(
        web.termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );
    assert_eq!(
        web.ports.as_ref().unwrap()[0].protocol.as_deref(),
        Some("TCP")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_get_a_cluster_ip_keep_it_across_replace_and_json_patch() {
    let c = api_server();
    let api: Api<Service> = Api::default_namespaced(client(&c).await);
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": "web" },
        "spec": { "selector": { "app": "web" }, "ports": [{ "name": "http", "port": 80 }] },
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &svc).await.unwrap();
    let spec = created.spec.clone().unwrap();
    let ip = spec.cluster_ip.clone().expect("a ClusterIP");
    assert!(ip.starts_with("10.43."), "{ip}");
    assert_eq!(spec.cluster_ips, Some(vec![ip.clone()]));
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(spec.session_affinity.as_deref(), Some("None"));
    assert_eq!(spec.ip_families, Some(vec!["IPv4".to_string()]));
    let port = &spec.ports.as_ref().unwrap()[0];
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    assert_eq!(
        port.target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(80))
    );

    let mut changed = api.get("web").await.unwrap();
    changed.spec.as_mut().unwrap().selector = Some(BTreeMap::from([("app".into(), "web2".into())]));
    let replaced = api
        .replace("web", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(
        replaced.spec.as_ref().unwrap().cluster_ip.as_deref(),
        Some(ip.as_str())
    );

    let ops: json_patch::Patch = serde_json::from_value(json!([
        { "op": "add", "path": "/metadata/labels", "value": { "tier": "front" } },
        { "op": "replace", "path": "/spec/ports/0/port", "value": 8080 },
    ]))
    .unwrap();
    let patched = api
        .patch("web", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .unwrap();
    assert_eq!(
        patched.labels().get("tier").map(String::as_str),
        Some("front")
    );
    assert_eq!(
        patched.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port,
        8080
    );

    // A patch whose test fails changes nothing.
    let ops: json_patch::Patch = serde_json::from_value(json!([
        { "op": "test", "path": "/spec/ports/0/port", "value": 1 },
        { "op": "replace", "path": "/spec/ports/0/port", "value": 9090 },
    ]))
    .unwrap();
    let e = api_error(
        api.patch("web", &PatchParams::default(), &Patch::<()>::Json(ops))
            .await,
    );
    // Upstream's patch handler answers a failed JSON patch with 422.
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"), "{e:?}");
    assert_eq!(
        api.get("web").await.unwrap().spec.unwrap().ports.unwrap()[0].port,
        8080
    );

    api.delete("web", &DeleteParams::default()).await.unwrap();
    assert!(api.get_opt("web").await.unwrap().is_none());
    // The ClusterIP is free again.
    let again = api
        .create(&PostParams::default(), &{
            let mut s = svc.clone();
            s.spec.as_mut().unwrap().cluster_ip = Some(ip.clone());
            s
        })
        .await
        .unwrap();
    assert_eq!(again.spec.unwrap().cluster_ip, Some(ip));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_with_limit_and_continue_from_one_snapshot() {
    let c = api_server();
    let client = client(&c).await;
    create_namespace(&client, "paging").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "paging");
    let mut expected = Vec::new();
    for i in 0..25 {
        let name = format!("page-{i:02}");
        api.create(&PostParams::default(), &configmap(&name, &[]))
            .await
            .unwrap();
        expected.push(name);
    }

    let mut names = Vec::new();
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    let mut snapshot: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(10);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.unwrap();
        pages.push(page.items.len());
        names.extend(page.items.iter().map(|o| o.name_any()));
        match &snapshot {
            None => {
                snapshot = page.metadata.resource_version.clone();
                // Created after the first page: not part of this list.
                api.create(&PostParams::default(), &configmap("page-zz", &[]))
                    .await
                    .unwrap();
                api.delete("page-24", &DeleteParams::default())
                    .await
                    .unwrap();
            }
            Some(s) => assert_eq!(
                page.metadata.resource_version.as_ref(),
                Some(s),
                "every page is read at the first page's revision"
            ),
        }
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, [10, 10, 5]);
    assert_eq!(names, expected);

    let e = api_error(
        api.list(
            &ListParams::default()
                .limit(10)
                .continue_token("not-a-token"),
        )
        .await,
    );
    assert_eq!(e.code, 400, "{e:?}");
}

/// Upstream's etcd3 `GetList` sets `remainingItemCount` on a page of an
/// unfiltered list (feature RemainingItemCount, on by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replace_with_a_stale_resource_version_is_a_409_conflict() {
    let c = api_server();
    let client = client(&c).await;
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let stale = api
        .create(&PostParams::default(), &configmap("shared", &[("v", "1")]))
        .await
        .unwrap();
    let mut first = stale.clone();
    first.data = Some(BTreeMap::from([("v".into(), "2".into())]));
    api.replace("shared", &PostParams::default(), &first)
        .await
        .unwrap();

    let mut second = stale.clone();
    second.data = Some(BTreeMap::from([("v".into(), "3".into())]));
    let e = api_error(api.replace("shared", &PostParams::default(), &second).await);
    assert_eq!(e.code, 409);
    assert_eq!(e.reason, "Conflict");
    assert_eq!(e.status, "Failure");
    assert_eq!(
        e.message,
        "Operation cannot be fulfilled on configmaps \"shared\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(
        data(&api.get("shared").await.unwrap())["v"],
        "2",
        "the stale write changed nothing"
    );

    // A patch that names a stale resourceVersion fails the same way.
    let patch = json!({ "metadata": { "resourceVersion": stale.resource_version() }, "data": { "v": "4" } });
    let e = api_error(
        api.patch("shared", &PatchParams::default(), &Patch::Merge(patch))
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));

    let deployments: Api<Deployment> = Api::default_namespaced(client);
    let stale = deployments
        .create(&PostParams::default(), &deployment())
        .await
        .unwrap();
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "replicas": 3 } })),
        )
        .await
        .unwrap();
    let e = api_error(
        deployments
            .replace("web", &PostParams::default(), &stale)
            .await,
    );
    assert_eq!(
        e.message,
        "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_and_already_exists_are_api_errors_with_upstream_wording() {
    let c = api_server();
    let client = client(&c).await;
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());

    let e = api_error(api.get("nope").await);
    assert_eq!(
        (e.code, e.reason.as_str(), e.status.as_str()),
        (404, "NotFound", "Failure")
    );
    assert_eq!(e.message, "configmaps \"nope\" not found");
    let e = api_error(api.delete("nope", &DeleteParams::default()).await);
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "configmaps \"nope\" not found")
    );
    let e = api_error(
        api.patch(
            "nope",
            &PatchParams::default(),
            &Patch::Merge(json!({ "data": { "a": "b" } })),
        )
        .await,
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "configmaps \"nope\" not found")
    );

    api.create(&PostParams::default(), &configmap("twice", &[]))
        .await
        .unwrap();
    let e = api_error(
        api.create(&PostParams::default(), &configmap("twice", &[]))
            .await,
    );
    assert_eq!(
        (e.code, e.reason.as_str(), e.status.as_str()),
        (409, "AlreadyExists", "Failure")
    );
    assert_eq!(e.message, "configmaps \"twice\" already exists");

    let services: Api<Service> = Api::default_namespaced(client.clone());
    let e = api_error(services.get("nope").await);
    assert_eq!(e.message, "services \"nope\" not found");

    let elsewhere: Api<ConfigMap> = Api::namespaced(client, "no-such-namespace");
    let e = api_error(
        elsewhere
            .create(&PostParams::default(), &configmap("x", &[]))
            .await,
    );
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (
            404,
            "NotFound",
            "namespaces \"no-such-namespace\" not found"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_zero_replays_existing_objects_then_streams_changes_in_order() {
    let c = api_server();
    let client = client(&c).await;
    create_namespace(&client, "watched").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "watched");
    for name in ["a", "b"] {
        api.create(&PostParams::default(), &configmap(name, &[("v", "1")]))
            .await
            .unwrap();
    }
    let mut stream = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let initial = [
        describe(&next_change(&mut stream).await),
        describe(&next_change(&mut stream).await),
    ];
    assert_eq!(
        initial,
        [("ADDED".into(), "a".into()), ("ADDED".into(), "b".into())]
    );

    let modified = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({ "data": { "v": "2" } })),
        )
        .await
        .unwrap();
    let created = api
        .create(&PostParams::default(), &configmap("c", &[]))
        .await
        .unwrap();
    api.delete("b", &DeleteParams::default()).await.unwrap();

    let mut seen = Vec::new();
    let mut last_rv = 0;
    for _ in 0..3 {
        let ev = next_change(&mut stream).await;
        let obj_rv = match &ev {
            WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => rv(o),
            other => panic!("unexpected {other:?}"),
        };
        assert!(obj_rv > last_rv, "resourceVersions rise along the stream");
        last_rv = obj_rv;
        if let WatchEvent::Modified(o) = &ev {
            assert_eq!(o.resource_version(), modified.resource_version());
            assert_eq!(data(o)["v"], "2");
        }
        if let WatchEvent::Added(o) = &ev {
            assert_eq!(o.resource_version(), created.resource_version());
        }
        seen.push(describe(&ev));
    }
    assert_eq!(
        seen,
        [
            ("MODIFIED".into(), "a".into()),
            ("ADDED".into(), "c".into()),
            ("DELETED".into(), "b".into())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_resource_version_sees_only_later_changes() {
    let c = api_server();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&c).await);
    let first = api
        .create(&PostParams::default(), &configmap("before", &[]))
        .await
        .unwrap();
    api.create(&PostParams::default(), &configmap("after", &[]))
        .await
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), &first.resource_version().unwrap())
        .await
        .unwrap()
        .boxed();
    assert_eq!(
        describe(&next_change(&mut stream).await),
        ("ADDED".into(), "after".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_with_a_label_selector_sees_objects_enter_and_leave_it() {
    let c = api_server();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&c).await);
    let list = api.list(&ListParams::default()).await.unwrap();
    let from = list.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(&WatchParams::default().labels("app=web"), &from)
        .await
        .unwrap()
        .boxed();

    api.create(&PostParams::default(), &labelled("x", "web"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &labelled("y", "db"))
        .await
        .unwrap();
    api.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "labels": { "app": "db" } } })),
    )
    .await
    .unwrap();
    api.patch(
        "y",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "labels": { "app": "web" } } })),
    )
    .await
    .unwrap();
    api.patch(
        "y",
        &PatchParams::default(),
        &Patch::Merge(json!({ "data": { "k": "w" } })),
    )
    .await
    .unwrap();
    api.delete("x", &DeleteParams::default()).await.unwrap();
    api.delete("y", &DeleteParams::default()).await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(describe(&next_change(&mut stream).await));
    }
    let want: Vec<(String, String)> = [
        ("ADDED", "x"),
        ("DELETED", "x"),
        ("ADDED", "y"),
        ("MODIFIED", "y"),
        ("DELETED", "y"),
    ]
    .iter()
    .map(|(k, n)| (k.to_string(), n.to_string()))
    .collect();
    assert_eq!(seen, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_that_allows_bookmarks_gets_one_within_35_seconds() {
    let c = api_server();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&c).await);
    let made = api
        .create(&PostParams::default(), &configmap("mark", &[]))
        .await
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), &made.resource_version().unwrap())
        .await
        .unwrap()
        .boxed();
    let ev = tokio::time::timeout(Duration::from_secs(35), stream.try_next())
        .await
        .expect("no bookmark within 35s")
        .unwrap()
        .expect("the watch ended");
    let WatchEvent::Bookmark(b) = ev else {
        panic!("expected a BOOKMARK, got {ev:?}")
    };
    assert_eq!(b.types.kind, "ConfigMap");
    assert_eq!(b.types.api_version, "v1");
    let at: u64 = b.metadata.resource_version.parse().unwrap();
    assert!(
        at >= rv(&made),
        "bookmark at {at}, watch from {}",
        rv(&made)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_compacted_resource_version_gets_410_gone() {
    let mut c = api_server();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&c).await);
    let old = api
        .create(&PostParams::default(), &configmap("old", &[]))
        .await
        .unwrap();
    for i in 0..5 {
        api.patch(
            "old",
            &PatchParams::default(),
            &Patch::Merge(json!({ "data": { "i": i.to_string() } })),
        )
        .await
        .unwrap();
    }
    let compacted = restart_with_history_compacted(&mut c).await;
    assert!(compacted > rv(&old));

    let api: Api<ConfigMap> = Api::default_namespaced(client(&c).await);
    let mut stream = api
        .watch(&WatchParams::default(), &old.resource_version().unwrap())
        .await
        .unwrap()
        .boxed();
    let ev = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .expect("no event")
        .unwrap()
        .expect("ended");
    let WatchEvent::Error(e) = ev else {
        panic!("expected an ERROR event, got {ev:?}")
    };
    assert_eq!(
        (e.code, e.reason.as_str(), e.status.as_str()),
        (410, "Expired", "Failure")
    );
    assert_eq!(
        e.message,
        format!("too old resource version: {} ({compacted})", rv(&old))
    );
    // A watch from the current revision works.
    let list = api.list(&ListParams::default()).await.unwrap();
    let mut stream = api
        .watch(
            &WatchParams::default(),
            &list.metadata.resource_version.unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    api.create(&PostParams::default(), &configmap("new", &[]))
        .await
        .unwrap();
    assert_eq!(
        describe(&next_change(&mut stream).await),
        ("ADDED".into(), "new".into())
    );
}

async fn reflector_converges_while_objects_change(config: watcher::Config) {
    let c = api_server();
    let client = client(&c).await;
    create_namespace(&client, "reflected").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "reflected");
    for i in 0..5 {
        api.create(&PostParams::default(), &labelled(&format!("cm-{i}"), "r"))
            .await
            .unwrap();
    }
    api.create(&PostParams::default(), &labelled("other", "x"))
        .await
        .unwrap();

    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector(writer, watcher(api.clone(), config.labels("app=r"))).default_backoff();
    let driver = tokio::spawn(stream.for_each(|_| async {}));
    tokio::time::timeout(Duration::from_secs(10), reader.wait_until_ready())
        .await
        .expect("reflector ready")
        .unwrap();
    assert_eq!(reflected(&reader), listed(&api, "app=r").await);

    let writers: Vec<_> = (0..4)
        .map(|w| {
            let api = api.clone();
            tokio::spawn(async move {
                for i in 0..10 {
                    let name = format!("w{w}-{i}");
                    api.create(&PostParams::default(), &labelled(&name, "r"))
                        .await
                        .unwrap();
                    api.patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({ "data": { "k": format!("{i}") } })),
                    )
                    .await
                    .unwrap();
                    if i % 3 == 0 {
                        api.delete(&name, &DeleteParams::default()).await.unwrap();
                    }
                }
            })
        })
        .collect();
    api.delete("cm-0", &DeleteParams::default()).await.unwrap();
    // Leaving the selector is a delete for the reflector.
    api.patch(
        "cm-1",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "labels": { "app": "gone" } } })),
    )
    .await
    .unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let want = listed(&api, "app=r").await;
    assert_eq!(want.len(), 3 + 4 * 6);
    eventually(
        Duration::from_secs(20),
        "the reflector matching the server",
        || {
            let (reader, want) = (reader.clone(), want.clone());
            async move {
                let got = reflected(&reader);
                if got == want {
                    Ok(())
                } else {
                    Err(format!(
                        "{} objects reflected, {} listed",
                        got.len(),
                        want.len()
                    ))
                }
            }
        },
    )
    .await;
    driver.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_watch_reflector_converges_to_the_server_state() {
    reflector_converges_while_objects_change(watcher::Config::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_list_reflector_converges_to_the_server_state() {
    reflector_converges_while_objects_change(watcher::Config::default().streaming_lists()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_relists_after_a_restart_that_compacted_its_history() {
    let mut c = api_server();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&c).await);
    for name in ["a", "b", "c"] {
        api.create(&PostParams::default(), &labelled(name, "r"))
            .await
            .unwrap();
    }
    let (reader, writer) = reflector::store::<ConfigMap>();
    let inits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = inits.clone();
    let stream = watcher(api.clone(), watcher::Config::default().labels("app=r"))
        .default_backoff()
        .inspect_ok(move |ev| {
            if matches!(ev, watcher::Event::Init) {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        })
        .reflect(writer);
    let driver = tokio::spawn(stream.for_each(|_| async {}));
    tokio::time::timeout(Duration::from_secs(10), reader.wait_until_ready())
        .await
        .expect("reflector ready")
        .unwrap();
    assert_eq!(reflected(&reader).len(), 3);

    // Changes the watcher does not see move the revision past the last
    // one it knows; compaction then drops the history it would resume from.
    for i in 0..3 {
        api.create(
            &PostParams::default(),
            &labelled(&format!("noise-{i}"), "other"),
        )
        .await
        .unwrap();
    }
    restart_with_history_compacted(&mut c).await;

    api.delete("a", &DeleteParams::default()).await.unwrap();
    api.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({ "data": { "k": "changed" } })),
    )
    .await
    .unwrap();
    api.create(&PostParams::default(), &labelled("d", "r"))
        .await
        .unwrap();
    let want = listed(&api, "app=r").await;
    eventually(
        Duration::from_secs(60),
        "the reflector matching the restarted server",
        || {
            let (reader, want) = (reader.clone(), want.clone());
            async move {
                let got = reflected(&reader);
                if got == want {
                    Ok(())
                } else {
                    Err(format!("reflected {:?}", got.keys().collect::<Vec<_>>()))
                }
            }
        },
    )
    .await;
    assert!(
        inits.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "the watcher re-listed after 410 Gone"
    );
    driver.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_finds_deployments_with_their_scope_verbs_and_subresources() {
    let c = api_server();
    let discovery = Discovery::new(client(&c).await)
        .run()
        .await
        .expect("discovery");
    assert!(discovery.has_group("apps"));
    let apps = discovery.get("apps").expect("the apps group");
    assert_eq!(apps.preferred_version_or_latest(), "v1");
    let (ar, caps) = apps
        .recommended_kind("Deployment")
        .expect("apps/v1 Deployment");
    assert_eq!(
        (ar.group.as_str(), ar.version.as_str(), ar.plural.as_str()),
        ("apps", "v1", "deployments")
    );
    assert_eq!(caps.scope, Scope::Namespaced);
    for verb in [
        verbs::CREATE,
        verbs::GET,
        verbs::LIST,
        verbs::WATCH,
        verbs::DELETE,
        verbs::DELETE_COLLECTION,
        verbs::UPDATE,
        verbs::PATCH,
    ] {
        assert!(
            caps.supports_operation(verb),
            "deployments: {verb} missing from {:?}",
            caps.operations
        );
    }
    let subresources: Vec<&str> = caps
        .subresources
        .iter()
        .map(|(r, _)| r.plural.as_str())
        .collect();
    assert!(
        subresources.contains(&"scale") && subresources.contains(&"status"),
        "{subresources:?}"
    );

    let core = discovery.get("").expect("the core group");
    let (ns, caps) = core.recommended_kind("Namespace").expect("v1 Namespace");
    assert_eq!(ns.plural, "namespaces");
    assert_eq!(caps.scope, Scope::Cluster);
    let (_, caps) = core.recommended_kind("ConfigMap").expect("v1 ConfigMap");
    assert_eq!(caps.scope, Scope::Namespaced);
}
