//! The ReplicaSet and ReplicationController controllers, through the API of
//! a real `krate server` with simulated nodes.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;
use support::{eventually, Cluster};

const WAIT: Duration = Duration::from_secs(30);

fn replicaset(name: &str, replicas: i32, app: &str) -> ReplicaSet {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": app } },
            "template": {
                "metadata": { "labels": { "app": app } },
                "spec": { "containers": [{ "name": "c", "image": "busybox" }] },
            },
        },
    }))
    .unwrap()
}

fn bare_pod(name: &str, labels: &[(&str, &str)]) -> Pod {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "labels": labels },
        "spec": { "containers": [{ "name": "c", "image": "busybox" }] },
    }))
    .unwrap()
}

/// Pods controlled by the object with `uid`.
async fn owned_pods(pods: &Api<Pod>, uid: &str) -> Vec<Pod> {
    pods.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| {
            p.owner_references()
                .iter()
                .any(|r| r.uid == uid && r.controller == Some(true))
        })
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

async fn wait_owned(pods: &Api<Pod>, uid: &str, n: usize) -> Vec<Pod> {
    eventually(WAIT, &format!("{n} owned pods"), || async {
        let owned = owned_pods(pods, uid).await;
        if owned.len() == n {
            Ok(owned)
        } else {
            Err(format!("{} pods", owned.len()))
        }
    })
    .await
}

#[tokio::test]
async fn replicaset_creates_pods_to_match_replicas_and_reports_ready_status() {
    let c = Cluster::start_with(&["--simulated-nodes", "2"]);
    let client = c.client().await;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let rs = sets
        .create(&PostParams::default(), &replicaset("web", 3, "web"))
        .await
        .unwrap();
    let uid = rs.uid().unwrap();
    let created = wait_owned(&pods, &uid, 3).await;
    for p in &created {
        assert!(
            p.name_any().starts_with("web-"),
            "pod named after its set: {}",
            p.name_any()
        );
        assert_eq!(p.labels().get("app").map(String::as_str), Some("web"));
        let r = &p.owner_references()[0];
        assert_eq!((r.kind.as_str(), r.name.as_str()), ("ReplicaSet", "web"));
        assert_eq!(r.block_owner_deletion, Some(true));
    }
    eventually(WAIT, "status shows 3 ready replicas", || async {
        let s = sets.get("web").await.unwrap().status.unwrap_or_default();
        let got = (
            s.replicas,
            s.fully_labeled_replicas,
            s.ready_replicas,
            s.available_replicas,
            s.observed_generation,
        );
        if got == (3, Some(3), Some(3), Some(3), Some(1)) {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
    let table = c.ok(&["get", "rs", "web"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], ["web", "3", "3", "3"], "{table}");

    // Scale down: the set deletes pods until 1 is left.
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "replicas": 1 } })),
    )
    .await
    .unwrap();
    wait_owned(&pods, &uid, 1).await;
    let describe = c.ok(&["describe", "rs", "web"]);
    assert!(
        describe.contains("SuccessfulCreate") && describe.contains("Created pod: web-"),
        "{describe}"
    );
    assert!(
        describe.contains("SuccessfulDelete") && describe.contains("Deleted pod: web-"),
        "{describe}"
    );
    assert!(describe.contains("replicaset-controller"), "{describe}");

    // A pod deleted by hand is replaced.
    let survivor = owned_pods(&pods, &uid).await.remove(0);
    pods.delete(&survivor.name_any(), &Default::default())
        .await
        .unwrap();
    let replaced = eventually(WAIT, "a replacement pod", || async {
        let owned = owned_pods(&pods, &uid).await;
        match owned.as_slice() {
            [p] if p.name_any() != survivor.name_any() => Ok(p.name_any()),
            other => Err(format!("{} pods", other.len())),
        }
    })
    .await;
    let describe = c.ok(&["describe", "pod", &replaced]);
    assert!(
        describe.contains("Controlled By:  ReplicaSet/web"),
        "{describe}"
    );
}

#[tokio::test]
async fn replicaset_adopts_orphan_pod_without_changing_it() {
    let c = Cluster::start();
    let client = c.client().await;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let orphan = pods
        .create(
            &PostParams::default(),
            &bare_pod("orphan", &[("app", "adopt")]),
        )
        .await
        .unwrap();
    let rs = sets
        .create(&PostParams::default(), &replicaset("adopter", 2, "adopt"))
        .await
        .unwrap();
    let owned = wait_owned(&pods, &rs.uid().unwrap(), 2).await;
    let adopted = owned
        .iter()
        .find(|p| p.name_any() == "orphan")
        .expect("the orphan was adopted, counting towards replicas");
    assert_eq!(
        adopted.spec, orphan.spec,
        "adoption changes nothing but the owner"
    );
    assert_eq!(adopted.labels(), orphan.labels());
    assert_eq!(adopted.uid(), orphan.uid());
    // Exactly one pod was created: the orphan counted as the other.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(owned_pods(&pods, &rs.uid().unwrap()).await.len(), 2);
}

#[tokio::test]
async fn replicaset_never_touches_pods_another_controller_owns() {
    let c = Cluster::start();
    let client = c.client().await;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let first = sets
        .create(&PostParams::default(), &replicaset("first", 2, "shared"))
        .await
        .unwrap();
    let first_pods = wait_owned(&pods, &first.uid().unwrap(), 2).await;
    // A second set with the same selector makes pods of its own.
    let second = sets
        .create(&PostParams::default(), &replicaset("second", 1, "shared"))
        .await
        .unwrap();
    wait_owned(&pods, &second.uid().unwrap(), 1).await;
    let still = owned_pods(&pods, &first.uid().unwrap()).await;
    let mut before: Vec<String> = first_pods.iter().map(|p| p.name_any()).collect();
    let mut after: Vec<String> = still.iter().map(|p| p.name_any()).collect();
    before.sort();
    after.sort();
    assert_eq!(before, after, "the first set keeps its pods");
}

#[tokio::test]
async fn replicaset_releases_a_pod_whose_labels_stop_matching_and_replaces_it() {
    let c = Cluster::start();
    let client = c.client().await;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let rs = sets
        .create(&PostParams::default(), &replicaset("rel", 1, "rel"))
        .await
        .unwrap();
    let uid = rs.uid().unwrap();
    let pod = wait_owned(&pods, &uid, 1).await.remove(0);
    pods.patch(
        &pod.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "labels": { "app": "debug" } } })),
    )
    .await
    .unwrap();
    eventually(WAIT, "the relabelled pod released", || async {
        let p = pods.get(&pod.name_any()).await.unwrap();
        if p.owner_references().is_empty() {
            Ok(())
        } else {
            Err(format!("{:?}", p.owner_references()))
        }
    })
    .await;
    let replacement = wait_owned(&pods, &uid, 1).await.remove(0);
    assert_ne!(replacement.name_any(), pod.name_any());
}

#[tokio::test]
async fn replicaset_reports_replica_failure_when_quota_refuses_pods() {
    let c = Cluster::start();
    c.ok(&["create", "quota", "q", "--hard=pods=1"]);
    let client = c.client().await;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    sets.create(&PostParams::default(), &replicaset("big", 3, "big"))
        .await
        .unwrap();
    eventually(WAIT, "a ReplicaFailure condition", || async {
        let s = sets.get("big").await.unwrap().status.unwrap_or_default();
        let failure = s
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "ReplicaFailure");
        match failure {
            Some(f)
                if f.reason.as_deref() == Some("FailedCreate")
                    && f.message
                        .as_deref()
                        .is_some_and(|m| m.contains("exceeded quota")) =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let describe = c.ok(&["describe", "rs", "big"]);
    assert!(describe.contains("FailedCreate"), "{describe}");
    assert!(describe.contains("Error creating: pods \""), "{describe}");
}

#[tokio::test]
async fn replicationcontroller_keeps_its_replicas_like_a_replicaset() {
    let c = Cluster::start();
    let client = c.client().await;
    let rcs: Api<ReplicationController> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let rc: ReplicationController = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": { "name": "legacy" },
        "spec": {
            "replicas": 2,
            "selector": { "app": "legacy" },
            "template": {
                "metadata": { "labels": { "app": "legacy" } },
                "spec": { "containers": [{ "name": "c", "image": "busybox" }] },
            },
        },
    }))
    .unwrap();
    let rc = rcs.create(&PostParams::default(), &rc).await.unwrap();
    let owned = wait_owned(&pods, &rc.uid().unwrap(), 2).await;
    assert_eq!(owned[0].owner_references()[0].kind, "ReplicationController");
    eventually(WAIT, "status replicas 2", || async {
        let s = rcs.get("legacy").await.unwrap().status.unwrap_or_default();
        if s.replicas == 2 {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    let describe = c.ok(&["describe", "rc", "legacy"]);
    assert!(describe.contains("replication-controller"), "{describe}");
}
