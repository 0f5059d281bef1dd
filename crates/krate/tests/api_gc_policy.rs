//! Default garbage collection policies per kind: deleting a
//! ReplicationController without a propagation policy orphans its pods, as
//! upstream's `DefaultGarbageCollectionPolicy` for it says.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use support::{eventually, Cluster};

const WAIT: Duration = Duration::from_secs(30);

fn rc(name: &str) -> ReplicationController {
    serde_json::from_value(serde_json::json!({
        "metadata": { "name": name },
        "spec": {
            "replicas": 2,
            "selector": { "app": name },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "c", "image": "busybox" }] }
            }
        }
    }))
    .unwrap()
}

async fn owned_pods(pods: &Api<Pod>, app: &str) -> (usize, usize) {
    let list = pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap();
    let live: Vec<&Pod> = list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let owned = live
        .iter()
        .filter(|p| {
            p.metadata
                .owner_references
                .as_ref()
                .is_some_and(|o| !o.is_empty())
        })
        .count();
    (live.len(), owned)
}

#[tokio::test]
async fn replication_controller_deleted_without_a_policy_orphans_its_pods() {
    let c = Cluster::start_with(&["--simulated-nodes", "1"]);
    let client = c.client().await;
    let rcs: Api<ReplicationController> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client, "default");
    for name in ["orphaned", "cascaded"] {
        rcs.create(&PostParams::default(), &rc(name)).await.unwrap();
    }
    for name in ["orphaned", "cascaded"] {
        eventually(WAIT, "two owned pods", || async {
            match owned_pods(&pods, name).await {
                (2, 2) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }

    rcs.delete("orphaned", &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "pods released, not deleted", || async {
        let gone = rcs.get_opt("orphaned").await.unwrap().is_none();
        match owned_pods(&pods, "orphaned").await {
            (2, 0) if gone => Ok(()),
            other => Err(format!("{other:?}, controller gone: {gone}")),
        }
    })
    .await;

    // An explicit policy still cascades.
    rcs.delete("cascaded", &DeleteParams::background())
        .await
        .unwrap();
    eventually(WAIT, "pods deleted with their controller", || async {
        match owned_pods(&pods, "cascaded").await {
            (0, 0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}
