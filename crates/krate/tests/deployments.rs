//! The Deployment controller, through the API of a real `krate server`
//! with simulated nodes, driven by the real `kubectl` (create, scale, set
//! image, rollout status/history/undo/pause/resume, describe).

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::watcher;
use kube::ResourceExt;
use serde_json::json;
use support::{eventually, Cluster};

const WAIT: Duration = Duration::from_secs(60);
const HASH: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";

fn cluster() -> Cluster {
    Cluster::start_with(&["--simulated-nodes", "3"])
}

/// A deployment manifest: `app=<name>` pods of one container.
fn manifest(name: &str, replicas: i32, image: &str, extra_spec: serde_json::Value) -> String {
    let mut d = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "app", "image": image }] },
            },
        },
    });
    merge(&mut d["spec"], extra_spec);
    d.to_string()
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    match (into, from) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

/// The deployment's ReplicaSets (controlled by it), oldest first.
async fn replica_sets(rss: &Api<ReplicaSet>, d: &Deployment) -> Vec<ReplicaSet> {
    let uid = d.uid().unwrap();
    let mut v: Vec<ReplicaSet> = rss
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|rs| {
            rs.owner_references()
                .iter()
                .any(|r| r.uid == uid && r.controller == Some(true))
        })
        .collect();
    v.sort_by_key(|rs| rs.metadata.creation_timestamp.clone().map(|t| t.0));
    v
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn image_of(rs: &ReplicaSet) -> String {
    rs.spec
        .as_ref()
        .unwrap()
        .template
        .as_ref()
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap_or_default()
}

fn condition(d: &Deployment, type_: &str) -> Option<(String, String, String)> {
    d.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| {
            (
                c.status.clone(),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

/// The value of a `kubectl describe` field (`Label:   value`).
fn field(describe: &str, label: &str) -> Option<String> {
    describe
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{label}:")))
        .map(|v| v.trim().to_string())
}

fn rollout_status(c: &Cluster, name: &str) -> String {
    c.ok(&[
        "rollout",
        "status",
        &format!("deployment/{name}"),
        "--timeout=60s",
    ])
}

/// The ReplicaSet holding the deployment's current template, once the
/// rollout to `image` is complete.
async fn current_replica_set(
    rss: &Api<ReplicaSet>,
    ds: &Api<Deployment>,
    name: &str,
    image: &str,
) -> ReplicaSet {
    eventually(WAIT, &format!("{name} rolled out to {image}"), || async {
        let d = ds.get(name).await.map_err(|e| e.to_string())?;
        let sets = replica_sets(rss, &d).await;
        let want = d.spec.as_ref().unwrap().replicas.unwrap();
        let current: Vec<&ReplicaSet> = sets.iter().filter(|rs| image_of(rs) == image).collect();
        let others: i32 = sets
            .iter()
            .filter(|rs| image_of(rs) != image)
            .map(spec_replicas)
            .sum();
        match current.as_slice() {
            [rs] if spec_replicas(rs) == want && others == 0 => Ok((*rs).clone()),
            _ => Err(format!(
                "{:?}",
                sets.iter()
                    .map(|rs| (rs.name_any(), image_of(rs), spec_replicas(rs)))
                    .collect::<Vec<_>>()
            )),
        }
    })
    .await
}

#[tokio::test]
async fn deployment_creates_replicaset_named_with_pod_template_hash_and_rolls_out() {
    let c = cluster();
    let client = c.client().await;
    let ds: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");

    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1",
        "--replicas=3",
    ]);
    let out = rollout_status(&c, "web");
    assert!(
        out.contains("deployment \"web\" successfully rolled out"),
        "{out}"
    );

    let d = ds.get("web").await.unwrap();
    let sets = replica_sets(&rss, &d).await;
    assert_eq!(sets.len(), 1, "{sets:?}");
    let rs = &sets[0];
    let hash = rs
        .labels()
        .get(HASH)
        .cloned()
        .expect("pod-template-hash label");
    assert_eq!(rs.name_any(), format!("web-{hash}"));
    assert!(!hash.is_empty() && hash.len() <= 10, "{hash}");
    assert!(
        hash.chars()
            .all(|ch| "bcdfghjklmnpqrstvwxz2456789".contains(ch)),
        "{hash}"
    );
    let spec = rs.spec.as_ref().unwrap();
    assert_eq!(
        spec.selector.match_labels.as_ref().unwrap().get(HASH),
        Some(&hash),
        "the hash joins the selector"
    );
    assert_eq!(
        spec.template
            .as_ref()
            .unwrap()
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap()
            .get(HASH),
        Some(&hash)
    );
    let owner = &rs.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Deployment", "web")
    );
    assert_eq!(
        (owner.controller, owner.block_owner_deletion),
        (Some(true), Some(true))
    );
    let a = rs.annotations();
    assert_eq!(a.get(REVISION).map(String::as_str), Some("1"));
    assert_eq!(
        a.get("deployment.kubernetes.io/desired-replicas")
            .map(String::as_str),
        Some("3")
    );
    // maxSurge 25% of 3 rounds up to 1.
    assert_eq!(
        a.get("deployment.kubernetes.io/max-replicas")
            .map(String::as_str),
        Some("4")
    );
    assert_eq!(d.annotations().get(REVISION).map(String::as_str), Some("1"));

    let s = d.status.clone().unwrap();
    assert_eq!(
        (
            s.replicas,
            s.updated_replicas,
            s.ready_replicas,
            s.available_replicas,
            s.unavailable_replicas
        ),
        (Some(3), Some(3), Some(3), Some(3), None)
    );
    assert_eq!(s.observed_generation, d.metadata.generation);
    assert_eq!(
        condition(&d, "Available"),
        Some((
            "True".into(),
            "MinimumReplicasAvailable".into(),
            "Deployment has minimum availability.".into()
        ))
    );
    assert_eq!(
        condition(&d, "Progressing"),
        Some((
            "True".into(),
            "NewReplicaSetAvailable".into(),
            format!("ReplicaSet \"web-{hash}\" has successfully progressed.")
        ))
    );

    let table = c.ok(&["get", "deployment", "web"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], ["web", "3/3", "3", "3"], "{table}");

    let describe = c.ok(&["describe", "deployment", "web"]);
    assert_eq!(
        field(&describe, "NewReplicaSet"),
        Some(format!("web-{hash} (3/3 replicas created)")),
        "{describe}"
    );
    assert!(describe.contains("ScalingReplicaSet"), "{describe}");
    assert!(describe.contains("deployment-controller"), "{describe}");
    assert!(
        describe.contains(&format!("Scaled up replica set web-{hash} from 0 to 3")),
        "{describe}"
    );
}

#[tokio::test]
async fn deployment_scale_resizes_its_replicaset_with_scaling_events() {
    let c = cluster();
    let client = c.client().await;
    let ds: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1",
        "--replicas=2",
    ]);
    rollout_status(&c, "web");

    c.ok(&["scale", "deployment/web", "--replicas=5"]);
    rollout_status(&c, "web");
    let rs = current_replica_set(&rss, &ds, "web", "nginx:1").await;
    assert_eq!(
        rs.annotations()
            .get("deployment.kubernetes.io/desired-replicas")
            .map(String::as_str),
        Some("5")
    );

    c.ok(&["scale", "deployment/web", "--replicas=1"]);
    eventually(WAIT, "scaled down to 1", || async {
        let d = ds.get("web").await.unwrap();
        let s = d.status.unwrap_or_default();
        if s.replicas == Some(1) && s.available_replicas == Some(1) {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    let name = rs.name_any();
    let describe = c.ok(&["describe", "deployment", "web"]);
    for line in [
        format!("Scaled up replica set {name} from 0 to 2"),
        format!("Scaled up replica set {name} from 2 to 5"),
        format!("Scaled down replica set {name} from 5 to 1"),
    ] {
        assert!(describe.contains(&line), "missing {line:?} in {describe}");
    }
    // Still one ReplicaSet: scaling is not a rollout.
    let d = ds.get("web").await.unwrap();
    assert_eq!(replica_sets(&rss, &d).await.len(), 1);
    assert_eq!(d.annotations().get(REVISION).map(String::as_str), Some("1"));
}

#[tokio::test]
async fn rolling_update_keeps_within_max_surge_and_max_unavailable() {
    let c = cluster();
    let client = c.client().await;
    let ds: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let strategy = json!({
        "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 1, "maxUnavailable": 0 } }
    });
    c.ok_stdin(
        &["apply", "-f", "-"],
        &manifest("web", 4, "nginx:1", strategy),
    );
    rollout_status(&c, "web");
    let old = current_replica_set(&rss, &ds, "web", "nginx:1").await;

    // Watch every ReplicaSet change; record the total of desired and of
    // available replicas across the deployment's sets at each step.
    let seen: Arc<Mutex<BTreeMap<String, (i32, i32)>>> = Arc::default();
    let totals: Arc<Mutex<Vec<(i32, i32)>>> = Arc::default();
    let watch = {
        let (seen, totals) = (seen.clone(), totals.clone());
        let rss = rss.clone();
        tokio::spawn(async move {
            let mut stream = watcher(rss, watcher::Config::default()).boxed();
            while let Some(Ok(ev)) = stream.next().await {
                let apply = |rs: ReplicaSet| {
                    if rs.labels().get("app").map(String::as_str) != Some("web") {
                        return;
                    }
                    let avail = rs
                        .status
                        .as_ref()
                        .and_then(|s| s.available_replicas)
                        .unwrap_or(0);
                    seen.lock()
                        .unwrap()
                        .insert(rs.name_any(), (spec_replicas(&rs), avail));
                };
                match ev {
                    watcher::Event::Apply(rs) | watcher::Event::InitApply(rs) => apply(rs),
                    _ => {}
                }
                let s = seen.lock().unwrap();
                let sum = s.values().fold((0, 0), |acc, v| (acc.0 + v.0, acc.1 + v.1));
                totals.lock().unwrap().push(sum);
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    c.ok(&["set", "image", "deployment/web", "app=nginx:2"]);
    let out = rollout_status(&c, "web");
    assert!(out.contains("successfully rolled out"), "{out}");
    let new = current_replica_set(&rss, &ds, "web", "nginx:2").await;
    assert_ne!(new.name_any(), old.name_any());
    tokio::time::sleep(Duration::from_millis(500)).await;
    watch.abort();

    let totals = totals.lock().unwrap().clone();
    assert!(totals.len() > 4, "{totals:?}");
    for (desired, _) in &totals {
        assert!(*desired <= 5, "replicas + maxSurge exceeded: {totals:?}");
    }
    // With maxUnavailable 0, the desired total only drops back once the
    // new pods are available, so it is never below the replicas.
    for (desired, _) in &totals[1..] {
        assert!(*desired >= 4, "scaled below replicas: {totals:?}");
    }
    let old = rss.get(&old.name_any()).await.unwrap();
    assert_eq!(
        spec_replicas(&old),
        0,
        "the old ReplicaSet is scaled to zero"
    );
    assert_eq!(
        old.annotations().get(REVISION).map(String::as_str),
        Some("1")
    );
    assert_eq!(
        new.annotations().get(REVISION).map(String::as_str),
        Some("2")
    );
    let describe = c.ok(&["describe", "deployment", "web"]);
    assert!(
        describe.contains(&format!(
            "Scaled up replica set {} from 0 to 1",
            new.name_any()
        )),
        "{describe}"
    );
    assert!(
        describe.contains(&format!(
            "Scaled down replica set {} from 4 to 3",
            old.name_any()
        )),
        "{describe}"
    );
}

#[tokio::test]
async fn deployment_rollback_to_revision_reuses_old_replicaset() {
    let c = cluster();
    let client = c.client().await;
    let ds: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1",
        "--replicas=2",
    ]);
    rollout_status(&c, "web");
    let v1 = current_replica_set(&rss, &ds, "web", "nginx:1").await;
    c.ok(&["set", "image", "deployment/web", "nginx=nginx:2"]);
    rollout_status(&c, "web");
    let v2 = current_replica_set(&rss, &ds, "web", "nginx:2").await;

    let history = c.ok(&["rollout", "history", "deployment/web"]);
    let revisions: Vec<&str> = history
        .lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    let detail = c.ok(&["rollout", "history", "deployment/web", "--revision=1"]);
    assert!(detail.contains("nginx:1"), "{detail}");

    // Undo writes revision 1's template back; the controller takes its
    // ReplicaSet again, as revision 3.
    let out = c.ok(&["rollout", "undo", "deployment/web"]);
    assert!(out.contains("rolled back"), "{out}");
    rollout_status(&c, "web");
    let back = current_replica_set(&rss, &ds, "web", "nginx:1").await;
    assert_eq!(
        back.name_any(),
        v1.name_any(),
        "the old ReplicaSet is reused"
    );
    eventually(
        WAIT,
        "revision 3 on the reused set and the deployment",
        || async {
            let rs = rss.get(&v1.name_any()).await.unwrap();
            let d = ds.get("web").await.unwrap();
            let got = (
                rs.annotations().get(REVISION).cloned(),
                rs.annotations()
                    .get("deployment.kubernetes.io/revision-history")
                    .cloned(),
                d.annotations().get(REVISION).cloned(),
            );
            if got == (Some("3".into()), Some("1".into()), Some("3".into())) {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        },
    )
    .await;
    let d = ds.get("web").await.unwrap();
    assert_eq!(replica_sets(&rss, &d).await.len(), 2, "no third ReplicaSet");
    let history = c.ok(&["rollout", "history", "deployment/web"]);
    let revisions: Vec<&str> = history
        .lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["2", "3"], "{history}");

    c.ok(&["rollout", "undo", "deployment/web", "--to-revision=2"]);
    rollout_status(&c, "web");
    let again = current_replica_set(&rss, &ds, "web", "nginx:2").await;
    assert_eq!(again.name_any(), v2.name_any());
    eventually(WAIT, "revision 4", || async {
        let rs = rss.get(&v2.name_any()).await.unwrap();
        match rs.annotations().get(REVISION).map(String::as_str) {
            Some("4") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test]
async fn paused_deployment_does_not_roll_out_until_resumed() {
    let c = cluster();
    let client = c.client().await;
    let ds: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1",
        "--replicas=2",
    ]);
    rollout_status(&c, "web");

    c.ok(&["rollout", "pause", "deployment/web"]);
    eventually(WAIT, "DeploymentPaused", || async {
        let d = ds.get("web").await.unwrap();
        match condition(&d, "Progressing") {
            Some((s, r, m))
                if s == "Unknown" && r == "DeploymentPaused" && m == "Deployment is paused" =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    c.ok(&["set", "image", "deployment/web", "nginx=nginx:2"]);
    // Scaling still works while paused, a rollout does not start.
    c.ok(&["scale", "deployment/web", "--replicas=3"]);
    eventually(WAIT, "scaled while paused", || async {
        let d = ds.get("web").await.unwrap();
        let sets = replica_sets(&rss, &d).await;
        if sets.len() == 1 && spec_replicas(&sets[0]) == 3 {
            Ok(())
        } else {
            Err(format!("{} sets", sets.len()))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let d = ds.get("web").await.unwrap();
    assert_eq!(
        replica_sets(&rss, &d).await.len(),
        1,
        "no new ReplicaSet while paused"
    );

    c.ok(&["rollout", "resume", "deployment/web"]);
    rollout_status(&c, "web");
    current_replica_set(&rss, &ds, "web", "nginx:2").await;
    let d = ds.get("web").await.unwrap();
    assert_eq!(
        condition(&d, "Progressing").map(|c| c.1),
        Some("NewReplicaSetAvailable".into())
    );
}

#[tokio::test]
async fn recreate_scales_old_pods_away_before_starting_new_ones() {
    let c = cluster();
    let client = c.client().await;
    let ds: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let strategy = json!({ "strategy": { "type": "Recreate" } });
    c.ok_stdin(
        &["apply", "-f", "-"],
        &manifest("web", 3, "nginx:1", strategy),
    );
    rollout_status(&c, "web");
    let old = current_replica_set(&rss, &ds, "web", "nginx:1").await;
    assert_eq!(
        old.annotations()
            .get("deployment.kubernetes.io/max-replicas")
            .map(String::as_str),
        Some("3"),
        "no surge with Recreate"
    );

    c.ok(&["set", "image", "deployment/web", "app=nginx:2"]);
    rollout_status(&c, "web");
    let new = current_replica_set(&rss, &ds, "web", "nginx:2").await;
    let describe = c.ok(&["describe", "deployment", "web"]);
    let down = describe
        .find(&format!(
            "Scaled down replica set {} from 3 to 0",
            old.name_any()
        ))
        .unwrap_or_else(|| panic!("no scale-down event: {describe}"));
    let up = describe
        .find(&format!(
            "Scaled up replica set {} from 0 to 3",
            new.name_any()
        ))
        .unwrap_or_else(|| panic!("no scale-up event: {describe}"));
    assert!(
        down < up,
        "old scaled down before new scaled up: {describe}"
    );
    assert_eq!(
        field(&describe, "StrategyType").as_deref(),
        Some("Recreate"),
        "{describe}"
    );
}

#[tokio::test]
async fn revision_history_limit_prunes_the_oldest_replicasets() {
    let c = cluster();
    let client = c.client().await;
    let ds: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    c.ok_stdin(
        &["apply", "-f", "-"],
        &manifest("web", 1, "nginx:1", json!({ "revisionHistoryLimit": 1 })),
    );
    rollout_status(&c, "web");
    for v in 2..=4 {
        c.ok(&["set", "image", "deployment/web", &format!("app=nginx:{v}")]);
        rollout_status(&c, "web");
    }
    eventually(WAIT, "one old ReplicaSet kept", || async {
        let d = ds.get("web").await.unwrap();
        // Created within the same second: order by image, not by age.
        let mut images: Vec<String> = replica_sets(&rss, &d).await.iter().map(image_of).collect();
        images.sort();
        if images == ["nginx:3", "nginx:4"] {
            Ok(())
        } else {
            Err(format!("{images:?}"))
        }
    })
    .await;
}

#[tokio::test]
async fn deployment_past_progress_deadline_reports_progress_deadline_exceeded() {
    let c = cluster();
    let client = c.client().await;
    let ds: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let mut m: serde_json::Value = serde_json::from_str(&manifest(
        "web",
        2,
        "nginx:1",
        json!({ "progressDeadlineSeconds": 3 }),
    ))
    .unwrap();
    m["spec"]["template"]["metadata"]["annotations"] = json!({ "sim.krate.io/ready": "false" });
    c.ok_stdin(&["apply", "-f", "-"], &m.to_string());

    let d = eventually(WAIT, "ProgressDeadlineExceeded", || async {
        let d = ds.get("web").await.unwrap();
        match condition(&d, "Progressing") {
            Some((s, r, _)) if s == "False" && r == "ProgressDeadlineExceeded" => Ok(d),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let rs_name = d
        .status
        .as_ref()
        .and_then(|_| condition(&d, "Progressing").map(|c| c.2));
    assert!(
        rs_name
            .as_deref()
            .is_some_and(|m| m.starts_with("ReplicaSet \"web-")
                && m.ends_with("\" has timed out progressing.")),
        "{rs_name:?}"
    );
    assert_eq!(
        condition(&d, "Available").map(|c| (c.0, c.1)),
        Some(("False".into(), "MinimumReplicasUnavailable".into()))
    );
    let err = c.fails(&["rollout", "status", "deployment/web", "--timeout=20s"]);
    assert!(err.contains("exceeded its progress deadline"), "{err}");
}

#[tokio::test]
async fn deployment_adopts_orphan_replicaset_with_matching_labels() {
    let c = cluster();
    let client = c.client().await;
    let ds: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    // An orphan set with the deployment's template (as one left behind by
    // `kubectl delete deployment --cascade=orphan`).
    let orphan: ReplicaSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": { "name": "web-orphan", "labels": { "app": "web" } },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "app", "image": "nginx:1" }] },
            },
        },
    }))
    .unwrap();
    rss.create(&PostParams::default(), &orphan).await.unwrap();
    c.ok_stdin(
        &["apply", "-f", "-"],
        &manifest("web", 2, "nginx:1", json!({})),
    );
    rollout_status(&c, "web");

    let d = ds.get("web").await.unwrap();
    let sets = replica_sets(&rss, &d).await;
    let names: Vec<String> = sets.iter().map(|rs| rs.name_any()).collect();
    assert_eq!(
        names,
        ["web-orphan"],
        "adopted as the new ReplicaSet, none created"
    );
    let r = &sets[0].owner_references()[0];
    assert_eq!((r.kind.as_str(), r.name.as_str()), ("Deployment", "web"));
    assert_eq!(
        (r.controller, r.block_owner_deletion),
        (Some(true), Some(true))
    );
    assert_eq!(
        sets[0].annotations().get(REVISION).map(String::as_str),
        Some("1")
    );
    let describe = c.ok(&["describe", "rs", "web-orphan"]);
    assert_eq!(
        field(&describe, "Controlled By").as_deref(),
        Some("Deployment/web"),
        "{describe}"
    );
}

#[tokio::test]
async fn deployment_scaled_mid_rollout_scales_replicasets_in_proportion() {
    let c = cluster();
    let client = c.client().await;
    let ds: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let strategy = json!({
        "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 3, "maxUnavailable": 2 } }
    });
    c.ok_stdin(
        &["apply", "-f", "-"],
        &manifest("web", 10, "nginx:1", strategy),
    );
    rollout_status(&c, "web");

    // A template whose pods never become ready: the rollout stalls with
    // 13 pods (10 + maxSurge), 8 old ones available (10 - maxUnavailable).
    c.ok(&[
        "patch",
        "deployment/web",
        "-p",
        r#"{"spec":{"template":{"metadata":{"annotations":{"sim.krate.io/ready":"false"}},"spec":{"containers":[{"name":"app","image":"nginx:2"}]}}}}"#,
    ]);
    let sizes = |want: (i32, i32)| {
        let (ds, rss) = (ds.clone(), rss.clone());
        async move {
            eventually(WAIT, &format!("old/new at {want:?}"), || async {
                let d = ds.get("web").await.unwrap();
                let sets = replica_sets(&rss, &d).await;
                let old: i32 = sets
                    .iter()
                    .filter(|rs| image_of(rs) == "nginx:1")
                    .map(spec_replicas)
                    .sum();
                let new: i32 = sets
                    .iter()
                    .filter(|rs| image_of(rs) == "nginx:2")
                    .map(spec_replicas)
                    .sum();
                if (old, new) == want {
                    Ok(())
                } else {
                    Err(format!("{:?}", (old, new)))
                }
            })
            .await
        }
    };
    sizes((8, 5)).await;

    // 10 -> 20 mid-rollout: 10 more replicas spread by size over 13:
    // old 8 -> round(8 * 23 / 13) = 14, new 5 -> round(5 * 23 / 13) = 9.
    c.ok(&["scale", "deployment/web", "--replicas=20"]);
    sizes((14, 9)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    sizes((14, 9)).await;
    let describe = c.ok(&["describe", "deployment", "web"]);
    assert!(describe.contains("from 8 to 14"), "{describe}");
    assert!(describe.contains("from 5 to 9"), "{describe}");
}

#[tokio::test]
async fn min_ready_seconds_holds_back_availability_and_follows_the_deployment() {
    let c = cluster();
    let client = c.client().await;
    let ds: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    c.ok_stdin(
        &["apply", "-f", "-"],
        &manifest("web", 2, "nginx:1", json!({ "minReadySeconds": 3 })),
    );
    // Ready at once on simulated nodes, available only 3 s later.
    eventually(WAIT, "ready but not yet available", || async {
        let s = ds.get("web").await.unwrap().status.unwrap_or_default();
        if s.ready_replicas == Some(2)
            && s.available_replicas.is_none()
            && s.unavailable_replicas == Some(2)
        {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    rollout_status(&c, "web");
    let d = ds.get("web").await.unwrap();
    assert_eq!(d.status.as_ref().unwrap().available_replicas, Some(2));
    let sets = replica_sets(&rss, &d).await;
    assert_eq!(sets[0].spec.as_ref().unwrap().min_ready_seconds, Some(3));

    // Changing minReadySeconds is not a new template: the same ReplicaSet
    // takes the new value.
    c.ok(&[
        "patch",
        "deployment/web",
        "-p",
        r#"{"spec":{"minReadySeconds":1}}"#,
    ]);
    eventually(WAIT, "ReplicaSet minReadySeconds follows", || async {
        let rs = rss.get(&sets[0].name_any()).await.unwrap();
        match rs.spec.as_ref().unwrap().min_ready_seconds {
            Some(1) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let d = ds.get("web").await.unwrap();
    assert_eq!(replica_sets(&rss, &d).await.len(), 1);
}

#[tokio::test]
async fn deprecated_rollback_annotation_rolls_back_and_records_an_event() {
    let c = cluster();
    let client = c.client().await;
    let ds: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1",
        "--replicas=1",
    ]);
    rollout_status(&c, "web");
    let v1 = current_replica_set(&rss, &ds, "web", "nginx:1").await;
    c.ok(&["set", "image", "deployment/web", "nginx=nginx:2"]);
    rollout_status(&c, "web");

    // The extensions/v1beta1-era rollback request, still honoured.
    c.ok(&[
        "annotate",
        "deployment/web",
        "deprecated.deployment.rollback.to=1",
    ]);
    let back = current_replica_set(&rss, &ds, "web", "nginx:1").await;
    assert_eq!(back.name_any(), v1.name_any());
    let d = ds.get("web").await.unwrap();
    assert!(!d
        .annotations()
        .contains_key("deprecated.deployment.rollback.to"));
    let describe = c.ok(&["describe", "deployment", "web"]);
    assert!(
        describe.contains("DeploymentRollback")
            && describe.contains("Rolled back deployment \"web\" to revision 1"),
        "{describe}"
    );

    // A revision that does not exist is refused with a warning.
    c.ok(&[
        "annotate",
        "deployment/web",
        "deprecated.deployment.rollback.to=9",
    ]);
    eventually(WAIT, "revision-not-found warning", || async {
        let describe = c.ok(&["describe", "deployment", "web"]);
        if describe.contains("DeploymentRollbackRevisionNotFound")
            && describe.contains("Unable to find the revision to rollback to.")
        {
            Ok(())
        } else {
            Err(describe)
        }
    })
    .await;
}

#[tokio::test]
async fn hash_collision_bumps_collision_count_and_picks_another_name() {
    let c = cluster();
    let client = c.client().await;
    // The hash depends on the template only: learn it in another namespace.
    c.ok(&["create", "namespace", "probe"]);
    c.ok_stdin(
        &["apply", "-n", "probe", "-f", "-"],
        &manifest("web", 1, "nginx:1", json!({})),
    );
    let probe_ds: Api<Deployment> = Api::namespaced(client.clone(), "probe");
    let probe_rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "probe");
    let taken = current_replica_set(&probe_rss, &probe_ds, "web", "nginx:1")
        .await
        .name_any();

    // Someone else's ReplicaSet already has that name in default.
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let other: ReplicaSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": { "name": taken, "labels": { "app": "other" } },
        "spec": {
            "replicas": 0,
            "selector": { "matchLabels": { "app": "other" } },
            "template": {
                "metadata": { "labels": { "app": "other" } },
                "spec": { "containers": [{ "name": "app", "image": "busybox" }] },
            },
        },
    }))
    .unwrap();
    rss.create(&PostParams::default(), &other).await.unwrap();

    let ds: Api<Deployment> = Api::namespaced(client.clone(), "default");
    c.ok_stdin(
        &["apply", "-f", "-"],
        &manifest("web", 1, "nginx:1", json!({})),
    );
    rollout_status(&c, "web");
    let d = ds.get("web").await.unwrap();
    assert_eq!(d.status.as_ref().unwrap().collision_count, Some(1));
    let sets = replica_sets(&rss, &d).await;
    assert_eq!(sets.len(), 1);
    assert_ne!(sets[0].name_any(), taken);
    assert!(sets[0].name_any().starts_with("web-"));
    let untouched = rss.get(&taken).await.unwrap();
    assert!(
        untouched.owner_references().is_empty(),
        "the other set is left alone"
    );
}

#[tokio::test]
async fn deployment_releases_a_replicaset_whose_labels_stop_matching() {
    let c = cluster();
    let client = c.client().await;
    let ds: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1",
        "--replicas=1",
    ]);
    rollout_status(&c, "web");
    let first = current_replica_set(&rss, &ds, "web", "nginx:1")
        .await
        .name_any();

    c.ok(&["label", "rs", &first, "app=gone", "--overwrite"]);
    eventually(WAIT, "released", || async {
        let rs = rss.get(&first).await.unwrap();
        if rs.owner_references().is_empty() {
            Ok(())
        } else {
            Err(format!("{:?}", rs.owner_references()))
        }
    })
    .await;
    // The deployment makes itself a new ReplicaSet; its name is taken by
    // the released one, so the hash moves on.
    let replacement = current_replica_set(&rss, &ds, "web", "nginx:1").await;
    assert_ne!(replacement.name_any(), first);
    rollout_status(&c, "web");
    let d = ds.get("web").await.unwrap();
    assert_eq!(d.status.as_ref().unwrap().collision_count, Some(1));
}
