//! The StatefulSet controller, through the API of a real `krate server`
//! with simulated nodes: ordered and parallel pod management, stable names
//! and claims, the claim retention policy, rolling updates with a
//! partition, OnDelete, and kubectl's rollout status/history/undo.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams};
use kube::runtime::watcher::{self, watcher, Event};
use serde_json::{json, Value};
use support::{eventually, Cluster};

const WAIT: Duration = Duration::from_secs(40);

/// A StatefulSet `name` of `replicas` pods labelled `app: name`, with
/// `extra` merged into its spec.
fn statefulset(name: &str, replicas: i32, extra: Value) -> String {
    let mut v = json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "serviceName": "nginx",
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "nginx", "image": "nginx:1.25" }] },
            },
        },
    });
    merge(&mut v["spec"], extra);
    v.to_string()
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn claim_template() -> Value {
    json!({ "volumeClaimTemplates": [{
        "metadata": { "name": "data" },
        "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } } },
    }]})
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// What a pod watch saw, in order: (pod name, ready, being deleted or gone).
type Seen = Arc<Mutex<Vec<(String, bool, bool)>>>;

fn watch_pods(client: kube::Client, app: &str) -> Seen {
    let seen: Seen = Arc::default();
    let api: Api<Pod> = Api::namespaced(client, "default");
    let config = watcher::Config::default().labels(&format!("app={app}"));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut stream = watcher(api, config).boxed();
        while let Some(Ok(event)) = stream.next().await {
            let (pod, gone) = match event {
                Event::Apply(p) | Event::InitApply(p) => (p, false),
                Event::Delete(p) => (p, true),
                _ => continue,
            };
            let name = pod.metadata.name.clone().unwrap_or_default();
            let deleting = gone || pod.metadata.deletion_timestamp.is_some();
            log.lock().unwrap().push((name, is_ready(&pod), deleting));
        }
    });
    seen
}

/// Waits until the watch has listed `names` (so later changes are seen).
async fn wait_listed(seen: &Seen, names: &[&str]) {
    eventually(WAIT, "the pod watch listing", || async {
        let log = seen.lock().unwrap();
        if names.iter().all(|n| log.iter().any(|(m, ..)| m == n)) {
            Ok(())
        } else {
            Err(format!("{log:?}"))
        }
    })
    .await
}

fn first(seen: &Seen, f: impl Fn(&(String, bool, bool)) -> bool) -> Option<usize> {
    seen.lock().unwrap().iter().position(f)
}

async fn get_set(client: &kube::Client, name: &str) -> StatefulSet {
    Api::<StatefulSet>::namespaced(client.clone(), "default")
        .get(name)
        .await
        .unwrap()
}

async fn live_pods(client: &kube::Client, app: &str) -> Vec<Pod> {
    let mut pods: Vec<Pod> = Api::<Pod>::namespaced(client.clone(), "default")
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    pods
}

/// Waits until the set's status shows `ready` ready replicas of
/// `replicas`, all at the update revision, and returns the set.
async fn wait_rolled_out(client: &kube::Client, name: &str, replicas: i32) -> StatefulSet {
    eventually(WAIT, &format!("{name} with {replicas} ready"), || async {
        let set = get_set(client, name).await;
        let s = set.status.clone().unwrap_or_default();
        if s.replicas == replicas
            && s.ready_replicas == Some(replicas)
            && s.updated_replicas == Some(replicas)
            && s.observed_generation == set.metadata.generation
        {
            Ok(set)
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await
}

fn label<'a>(p: &'a Pod, key: &str) -> &'a str {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
        .unwrap_or_default()
}

fn image(p: &Pod) -> String {
    p.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap_or_default()
}

fn events_of(c: &Cluster, name: &str) -> String {
    c.ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={name},involvedObject.kind=StatefulSet"),
        "-o",
        r#"jsonpath={range .items[*]}{.reason}|{.message}|{.source.component}{"\n"}{end}"#,
    ])
}

#[tokio::test]
async fn statefulset_creates_pods_in_order_each_after_the_previous_is_ready() {
    let c = Cluster::start_with(&["--simulated-nodes", "3"]);
    let client = c.client().await;
    let seen = watch_pods(client.clone(), "web");
    c.ok_stdin(&["apply", "-f", "-"], &statefulset("web", 3, json!({})));
    let set = wait_rolled_out(&client, "web", 3).await;

    // web-1 appeared only after web-0 was Ready, web-2 after web-1.
    let ready0 = first(&seen, |(n, r, _)| n == "web-0" && *r).unwrap();
    let seen1 = first(&seen, |(n, ..)| n == "web-1").unwrap();
    let ready1 = first(&seen, |(n, r, _)| n == "web-1" && *r).unwrap();
    let seen2 = first(&seen, |(n, ..)| n == "web-2").unwrap();
    assert!(
        ready0 < seen1,
        "web-1 created before web-0 was ready: {:?}",
        seen.lock().unwrap()
    );
    assert!(
        ready1 < seen2,
        "web-2 created before web-1 was ready: {:?}",
        seen.lock().unwrap()
    );

    let pods = live_pods(&client, "web").await;
    let names: Vec<_> = pods
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["web-0", "web-1", "web-2"]);
    let status = set.status.unwrap();
    let revision = status.update_revision.clone().unwrap();
    assert!(revision.starts_with("web-"), "{revision}");
    assert_eq!(status.current_revision.as_deref(), Some(revision.as_str()));
    assert_eq!(status.available_replicas, Some(3));
    for (i, p) in pods.iter().enumerate() {
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some(format!("web-{i}").as_str()));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        assert_eq!(
            label(p, "statefulset.kubernetes.io/pod-name"),
            format!("web-{i}")
        );
        assert_eq!(label(p, "apps.kubernetes.io/pod-index"), i.to_string());
        assert_eq!(label(p, "controller-revision-hash"), revision);
        let owner = &p.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("StatefulSet", "web")
        );
    }

    // The revision is a ControllerRevision kubectl lists as history.
    let history = c.ok(&["rollout", "history", "statefulset/web"]);
    assert!(history.contains("REVISION"), "{history}");
    assert!(
        history.lines().any(|l| l.trim_start().starts_with('1')),
        "{history}"
    );

    let events = events_of(&c, "web");
    assert!(
        events.contains("SuccessfulCreate|create Pod web-0 in StatefulSet web successful|statefulset-controller"),
        "{events}"
    );
    let describe = c.ok(&["describe", "pod", "web-0"]);
    assert!(
        describe.contains("Controlled By:  StatefulSet/web"),
        "{describe}"
    );
}

#[tokio::test]
async fn ordered_ready_waits_for_a_pod_that_never_becomes_ready() {
    let c = Cluster::start_with(&["--simulated-nodes", "3"]);
    let client = c.client().await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &statefulset(
            "stuck",
            3,
            json!({ "template": { "metadata": { "annotations": { "sim.krate.io/ready": "false" } } } }),
        ),
    );
    eventually(WAIT, "stuck-0 running", || async {
        let pods = live_pods(&client, "stuck").await;
        match pods.first().and_then(|p| p.status.as_ref()?.phase.clone()) {
            Some(phase) if phase == "Running" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pods = live_pods(&client, "stuck").await;
    assert_eq!(
        pods.len(),
        1,
        "only stuck-0 may exist while it is not ready"
    );
    let status = get_set(&client, "stuck").await.status.unwrap();
    assert_eq!((status.replicas, status.ready_replicas), (1, Some(0)));
}

#[tokio::test]
async fn parallel_pod_management_creates_every_pod_at_once() {
    let c = Cluster::start_with(&["--simulated-nodes", "3"]);
    let client = c.client().await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &statefulset(
            "par",
            3,
            json!({
                "podManagementPolicy": "Parallel",
                "template": { "metadata": { "annotations": { "sim.krate.io/ready": "false" } } },
            }),
        ),
    );
    let pods = eventually(WAIT, "3 pods", || async {
        let pods = live_pods(&client, "par").await;
        if pods.len() == 3 {
            Ok(pods)
        } else {
            Err(format!("{} pods", pods.len()))
        }
    })
    .await;
    assert!(pods.iter().all(|p| !is_ready(p)));
    // Scaling down does not wait for readiness either.
    c.ok(&["scale", "statefulset/par", "--replicas=1"]);
    eventually(WAIT, "1 pod", || async {
        let pods = live_pods(&client, "par").await;
        let names: Vec<_> = pods
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        if names == ["par-0"] {
            Ok(())
        } else {
            Err(format!("{names:?}"))
        }
    })
    .await;
}

#[tokio::test]
async fn statefulset_scales_down_from_the_highest_ordinal() {
    let c = Cluster::start_with(&["--simulated-nodes", "3"]);
    let client = c.client().await;
    c.ok_stdin(&["apply", "-f", "-"], &statefulset("web", 3, json!({})));
    wait_rolled_out(&client, "web", 3).await;
    let seen = watch_pods(client.clone(), "web");
    wait_listed(&seen, &["web-0", "web-1", "web-2"]).await;
    c.ok(&["scale", "statefulset/web", "--replicas=1"]);
    wait_rolled_out(&client, "web", 1).await;
    eventually(WAIT, "web-1 gone", || async {
        let names: Vec<_> = live_pods(&client, "web")
            .await
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        if names == ["web-0"] {
            Ok(())
        } else {
            Err(format!("{names:?}"))
        }
    })
    .await;
    let gone2 = first(&seen, |(n, _, d)| n == "web-2" && *d).unwrap();
    let gone1 = first(&seen, |(n, _, d)| n == "web-1" && *d).unwrap();
    assert!(
        gone2 < gone1,
        "web-1 went before web-2: {:?}",
        seen.lock().unwrap()
    );
    let events = events_of(&c, "web");
    assert!(
        events.contains("SuccessfulDelete|delete Pod web-2 in StatefulSet web successful|"),
        "{events}"
    );
}

#[tokio::test]
async fn statefulset_claims_are_created_before_their_pod_and_survive_its_deletion() {
    let c = Cluster::start_with(&["--simulated-nodes", "3"]);
    let client = c.client().await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &statefulset("web", 2, claim_template()),
    );
    wait_rolled_out(&client, "web", 2).await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let claim0 = claims.get("data-web-0").await.unwrap();
    claims.get("data-web-1").await.unwrap();
    assert_eq!(claim0.metadata.labels.as_ref().unwrap()["app"], "web");
    assert!(
        claim0.metadata.owner_references.is_none(),
        "Retain claims have no owner"
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod0 = pods.get("web-0").await.unwrap();
    let volume = &pod0.spec.as_ref().unwrap().volumes.as_ref().unwrap()[0];
    assert_eq!(volume.name, "data");
    assert_eq!(
        volume.persistent_volume_claim.as_ref().unwrap().claim_name,
        "data-web-0"
    );

    c.ok(&["delete", "pod", "web-0", "--wait=false"]);
    eventually(WAIT, "web-0 recreated and ready", || async {
        match pods.get("web-0").await {
            Ok(p) if p.metadata.uid != pod0.metadata.uid && is_ready(&p) => Ok(()),
            other => Err(format!("{:?}", other.map(|p| p.metadata.uid))),
        }
    })
    .await;
    assert_eq!(
        claims.get("data-web-0").await.unwrap().metadata.uid,
        claim0.metadata.uid
    );

    // Scaling down keeps the claims too (whenScaled Retain).
    c.ok(&["scale", "statefulset/web", "--replicas=1"]);
    wait_rolled_out(&client, "web", 1).await;
    claims.get("data-web-1").await.unwrap();

    let events = events_of(&c, "web");
    assert!(
        events.contains(
            "SuccessfulCreate|create Claim data-web-0 Pod web-0 in StatefulSet web success|"
        ),
        "{events}"
    );
}

#[tokio::test]
async fn retention_policy_delete_removes_claims_on_scale_down_and_with_the_set() {
    let c = Cluster::start_with(&["--simulated-nodes", "3"]);
    let client = c.client().await;
    let mut extra = claim_template();
    merge(
        &mut extra,
        json!({ "persistentVolumeClaimRetentionPolicy": { "whenDeleted": "Delete", "whenScaled": "Delete" } }),
    );
    c.ok_stdin(&["apply", "-f", "-"], &statefulset("web", 2, extra));
    let set = wait_rolled_out(&client, "web", 2).await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let claim0 = claims.get("data-web-0").await.unwrap();
    let owner = &claim0.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), &owner.uid),
        ("StatefulSet", set.metadata.uid.as_ref().unwrap())
    );

    c.ok(&["scale", "statefulset/web", "--replicas=1"]);
    eventually(WAIT, "data-web-1 deleted", || async {
        match claims.get_opt("data-web-1").await.unwrap() {
            None => Ok(()),
            Some(c) if c.metadata.deletion_timestamp.is_some() => Ok(()),
            Some(c) => Err(format!("owners {:?}", c.metadata.owner_references)),
        }
    })
    .await;
    claims.get("data-web-0").await.unwrap();

    c.ok(&["delete", "statefulset", "web", "--wait=false"]);
    eventually(WAIT, "data-web-0 deleted", || async {
        match claims.get_opt("data-web-0").await.unwrap() {
            None => Ok(()),
            Some(c) if c.metadata.deletion_timestamp.is_some() => Ok(()),
            Some(_) => Err("still there".to_string()),
        }
    })
    .await;
}

#[tokio::test]
async fn partitioned_rolling_update_replaces_ordinals_from_the_highest_down_to_the_partition() {
    let c = Cluster::start_with(&["--simulated-nodes", "3"]);
    let client = c.client().await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &statefulset(
            "web",
            3,
            json!({ "updateStrategy": { "type": "RollingUpdate", "rollingUpdate": { "partition": 1 } } }),
        ),
    );
    let before = wait_rolled_out(&client, "web", 3).await;
    let first_revision = before.status.unwrap().update_revision.unwrap();
    let seen = watch_pods(client.clone(), "web");
    wait_listed(&seen, &["web-0", "web-1", "web-2"]).await;
    c.ok(&["set", "image", "statefulset/web", "nginx=nginx:1.26"]);
    let set = eventually(WAIT, "2 updated", || async {
        let set = get_set(&client, "web").await;
        let s = set.status.clone().unwrap_or_default();
        if s.updated_replicas == Some(2) && s.ready_replicas == Some(3) {
            Ok(set)
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    let status = set.status.unwrap();
    let second_revision = status.update_revision.clone().unwrap();
    assert_ne!(first_revision, second_revision);
    assert_eq!(
        status.current_revision.as_deref(),
        Some(first_revision.as_str())
    );
    let pods = live_pods(&client, "web").await;
    assert_eq!(image(&pods[0]), "nginx:1.25");
    assert_eq!(label(&pods[0], "controller-revision-hash"), first_revision);
    assert_eq!(image(&pods[1]), "nginx:1.26");
    assert_eq!(image(&pods[2]), "nginx:1.26");
    let gone2 = first(&seen, |(n, _, d)| n == "web-2" && *d).unwrap();
    let gone1 = first(&seen, |(n, _, d)| n == "web-1" && *d).unwrap();
    assert!(
        gone2 < gone1,
        "web-1 replaced before web-2: {:?}",
        seen.lock().unwrap()
    );
    assert!(
        first(&seen, |(n, _, d)| n == "web-0" && *d).is_none(),
        "web-0 is below the partition"
    );
    let out = c.ok(&["rollout", "status", "statefulset/web", "--timeout=5s"]);
    assert!(
        out.contains("partitioned roll out complete: 2 new pods have been updated..."),
        "{out}"
    );

    // Partition 0 finishes the rollout; the update revision becomes
    // current. kubectl reports a set with a partition (the API defaults it
    // to 0) as a partitioned roll out.
    c.ok(&[
        "patch",
        "statefulset/web",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#,
    ]);
    let out = c.ok(&["rollout", "status", "statefulset/web", "--timeout=40s"]);
    assert!(
        out.contains("partitioned roll out complete: 3 new pods have been updated..."),
        "{out}"
    );
    let set = wait_rolled_out(&client, "web", 3).await;
    let status = set.status.unwrap();
    assert_eq!(
        status.current_revision.as_deref(),
        Some(second_revision.as_str())
    );
    assert_eq!(status.current_replicas, Some(3));
    let history = c.ok(&["rollout", "history", "statefulset/web"]);
    assert!(
        history.lines().any(|l| l.trim_start().starts_with('2')),
        "{history}"
    );

    // Undo goes back to the first template through its ControllerRevision.
    c.ok(&["rollout", "undo", "statefulset/web"]);
    eventually(WAIT, "rolled back", || async {
        let pods = live_pods(&client, "web").await;
        let set = get_set(&client, "web").await;
        let s = set.status.unwrap_or_default();
        if pods.len() == 3
            && pods.iter().all(|p| image(p) == "nginx:1.25" && is_ready(p))
            && s.current_revision.as_deref() == Some(first_revision.as_str())
        {
            Ok(())
        } else {
            Err(format!(
                "{:?} {s:?}",
                pods.iter().map(image).collect::<Vec<_>>()
            ))
        }
    })
    .await;
    let history = c.ok(&["rollout", "history", "statefulset/web"]);
    assert!(
        history.lines().any(|l| l.trim_start().starts_with('3')),
        "{history}"
    );
}

#[tokio::test]
async fn on_delete_updates_a_pod_only_when_the_user_deletes_it() {
    let c = Cluster::start_with(&["--simulated-nodes", "3"]);
    let client = c.client().await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &statefulset(
            "web",
            2,
            json!({ "updateStrategy": { "type": "OnDelete" } }),
        ),
    );
    wait_rolled_out(&client, "web", 2).await;
    c.ok(&["set", "image", "statefulset/web", "nginx=nginx:1.26"]);
    eventually(WAIT, "new revision observed", || async {
        let set = get_set(&client, "web").await;
        let s = set.status.clone().unwrap_or_default();
        if s.observed_generation == set.metadata.generation
            && s.update_revision != s.current_revision
        {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pods = live_pods(&client, "web").await;
    assert!(
        pods.iter().all(|p| image(p) == "nginx:1.25"),
        "OnDelete must not replace pods"
    );

    c.ok(&["delete", "pod", "web-1", "--wait=false"]);
    eventually(WAIT, "web-1 at the new image", || async {
        let pods = live_pods(&client, "web").await;
        match pods
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some("web-1"))
        {
            Some(p) if image(p) == "nginx:1.26" && is_ready(p) => Ok(()),
            other => Err(format!("{:?}", other.map(image))),
        }
    })
    .await;
    let pods = live_pods(&client, "web").await;
    assert_eq!(image(&pods[0]), "nginx:1.25");
    eventually(WAIT, "status counts one updated pod", || async {
        let s = get_set(&client, "web").await.status.unwrap_or_default();
        match (s.updated_replicas, s.current_replicas) {
            (Some(1), Some(1)) => Ok(()),
            other => Err(format!("updated, current: {other:?}")),
        }
    })
    .await;
}

#[tokio::test]
async fn statefulset_names_pods_from_spec_ordinals_start() {
    let c = Cluster::start_with(&["--simulated-nodes", "3"]);
    let client = c.client().await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &statefulset("web", 2, json!({ "ordinals": { "start": 5 } })),
    );
    wait_rolled_out(&client, "web", 2).await;
    let names: Vec<_> = live_pods(&client, "web")
        .await
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["web-5", "web-6"]);
}

#[tokio::test]
async fn a_recreated_statefulset_adopts_the_pods_an_orphaning_delete_left() {
    let c = Cluster::start_with(&["--simulated-nodes", "3"]);
    let client = c.client().await;
    let manifest = statefulset("web", 2, json!({}));
    c.ok_stdin(&["apply", "-f", "-"], &manifest);
    let revision = wait_rolled_out(&client, "web", 2)
        .await
        .status
        .and_then(|s| s.update_revision);
    let before = live_pods(&client, "web").await;
    c.ok(&["delete", "statefulset", "web", "--cascade=orphan"]);
    eventually(WAIT, "orphaned pods", || async {
        let pods = live_pods(&client, "web").await;
        if pods.len() == 2 && pods.iter().all(|p| p.metadata.owner_references.is_none()) {
            Ok(())
        } else {
            Err(format!(
                "{:?}",
                pods.iter()
                    .map(|p| &p.metadata.owner_references)
                    .collect::<Vec<_>>()
            ))
        }
    })
    .await;
    c.ok_stdin(&["apply", "-f", "-"], &manifest);
    let set = wait_rolled_out(&client, "web", 2).await;
    let uid = set.metadata.uid.unwrap();
    let status = set.status.unwrap_or_default();
    assert_eq!(
        (status.update_revision, status.collision_count),
        (revision, Some(0)),
        "the recreated set took the orphaned revision as its own, no collision"
    );
    let after = live_pods(&client, "web").await;
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(
            a.metadata.uid, b.metadata.uid,
            "the pods were kept, not replaced"
        );
        let owner = &b.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.uid.as_str(), owner.controller),
            (uid.as_str(), Some(true))
        );
    }
}

#[tokio::test]
async fn statefulset_max_unavailable_is_dropped_as_with_upstreams_gate_off() {
    // MaxUnavailableStatefulSet is an alpha gate, off in v1.32: the API
    // server accepts the field and drops it.
    let c = Cluster::start();
    c.ok_stdin(
        &["apply", "-f", "-"],
        &statefulset(
            "mu",
            2,
            json!({ "updateStrategy": { "type": "RollingUpdate",
                "rollingUpdate": { "partition": 0, "maxUnavailable": 2 } } }),
        ),
    );
    let strategy = c.ok(&[
        "get",
        "statefulset",
        "mu",
        "-o",
        "jsonpath={.spec.updateStrategy}",
    ]);
    let strategy: Value = serde_json::from_str(&strategy).unwrap();
    assert_eq!(
        strategy,
        json!({ "type": "RollingUpdate", "rollingUpdate": { "partition": 0 } })
    );
}
