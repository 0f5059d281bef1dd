//! The garbage collector (background, foreground and orphan propagation),
//! the ServiceAccount controllers (`default` account and `kube-root-ca.crt`
//! in every namespace), and the Endpoints and EndpointSlice controllers,
//! through kubectl and the API of a real `krate server` with simulated
//! nodes.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Pod, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;
use support::{eventually, eventually_blocking, Cluster};

const WAIT: Duration = Duration::from_secs(30);

fn cluster() -> Cluster {
    Cluster::start_with(&["--disable-agent", "--simulated-nodes", "2"])
}

/// A ConfigMap owned by the ConfigMaps `owners` (name, uid, blockOwnerDeletion).
fn dependent(name: &str, owners: &[(&str, &str, bool)], finalizers: &[&str]) -> ConfigMap {
    let refs: Vec<_> = owners
        .iter()
        .map(|(n, uid, block)| {
            json!({ "apiVersion": "v1", "kind": "ConfigMap", "name": n, "uid": uid, "blockOwnerDeletion": block })
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": name, "ownerReferences": refs, "finalizers": finalizers },
        "data": { "k": "v" },
    }))
    .unwrap()
}

async fn owner(cms: &Api<ConfigMap>, name: &str) -> String {
    let cm: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": name }, "data": { "k": "v" },
    }))
    .unwrap();
    cms.create(&PostParams::default(), &cm)
        .await
        .unwrap()
        .uid()
        .unwrap()
}

async fn gone(cms: &Api<ConfigMap>, name: &str) -> Result<(), String> {
    match cms.get_opt(name).await.unwrap() {
        None => Ok(()),
        Some(cm) => Err(format!("{name} still there: {:?}", cm.metadata)),
    }
}

#[tokio::test]
async fn gc_background_deletes_dependents_of_a_deleted_owner() {
    let c = cluster();
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client().await);
    let uid = owner(&cms, "owner").await;
    for d in ["dep-1", "dep-2"] {
        cms.create(
            &PostParams::default(),
            &dependent(d, &[("owner", &uid, false)], &[]),
        )
        .await
        .unwrap();
    }
    c.ok(&["delete", "configmap", "owner", "--cascade=background"]);
    eventually(WAIT, "dependents collected", || async {
        gone(&cms, "dep-1").await?;
        gone(&cms, "dep-2").await
    })
    .await;
}

#[tokio::test]
async fn gc_collects_a_dependent_whose_owner_never_existed() {
    let c = cluster();
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client().await);
    cms.create(
        &PostParams::default(),
        &dependent(
            "stray",
            &[("nobody", "00000000-0000-0000-0000-000000000000", false)],
            &[],
        ),
    )
    .await
    .unwrap();
    eventually(WAIT, "stray dependent collected", || gone(&cms, "stray")).await;
}

#[tokio::test]
async fn gc_dependent_with_a_live_second_owner_only_loses_the_dead_reference() {
    let c = cluster();
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client().await);
    let a = owner(&cms, "owner-a").await;
    let b = owner(&cms, "owner-b").await;
    cms.create(
        &PostParams::default(),
        &dependent(
            "shared",
            &[("owner-a", &a, false), ("owner-b", &b, false)],
            &[],
        ),
    )
    .await
    .unwrap();
    c.ok(&["delete", "configmap", "owner-a"]);
    eventually(WAIT, "reference to owner-a removed", || async {
        let cm = cms.get("shared").await.map_err(|e| e.to_string())?;
        let uids: Vec<String> = cm
            .owner_references()
            .iter()
            .map(|o| o.uid.clone())
            .collect();
        if uids == vec![b.clone()] {
            Ok(())
        } else {
            Err(format!("owners {uids:?}"))
        }
    })
    .await;
    // And it stays.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(cms.get_opt("shared").await.unwrap().is_some());
}

#[tokio::test]
async fn gc_orphan_cascade_keeps_dependents_without_the_owner_reference() {
    let c = cluster();
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client().await);
    let uid = owner(&cms, "owner").await;
    cms.create(
        &PostParams::default(),
        &dependent("dep", &[("owner", &uid, true)], &[]),
    )
    .await
    .unwrap();
    // kubectl waits for the owner to be gone, which needs the collector to
    // release the dependent and remove the `orphan` finalizer.
    c.ok(&[
        "delete",
        "configmap",
        "owner",
        "--cascade=orphan",
        "--timeout=30s",
    ]);
    assert!(cms.get_opt("owner").await.unwrap().is_none());
    let dep = cms.get("dep").await.unwrap();
    // The field goes with its last entry, as upstream.
    assert!(
        dep.metadata.owner_references.is_none(),
        "{:?}",
        dep.metadata
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(cms.get_opt("dep").await.unwrap().is_some());
}

#[tokio::test]
async fn gc_foreground_cascade_waits_for_blocking_dependents() {
    let c = cluster();
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client().await);
    let uid = owner(&cms, "owner").await;
    // The dependent holds a finalizer of its own, so it lingers while
    // being deleted and blocks the owner.
    cms.create(
        &PostParams::default(),
        &dependent("blocker", &[("owner", &uid, true)], &["example.com/hold"]),
    )
    .await
    .unwrap();
    cms.create(
        &PostParams::default(),
        &dependent("plain", &[("owner", &uid, false)], &[]),
    )
    .await
    .unwrap();
    c.ok(&[
        "delete",
        "configmap",
        "owner",
        "--cascade=foreground",
        "--wait=false",
    ]);

    let o = cms.get("owner").await.unwrap();
    assert!(o.metadata.deletion_timestamp.is_some());
    assert!(o.finalizers().contains(&"foregroundDeletion".to_string()));
    eventually(WAIT, "dependents deleted", || async {
        gone(&cms, "plain").await?;
        let b = cms.get("blocker").await.map_err(|e| e.to_string())?;
        b.metadata
            .deletion_timestamp
            .map(|_| ())
            .ok_or_else(|| "blocker not being deleted".to_string())
    })
    .await;
    // The owner waits for the blocking dependent.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        cms.get_opt("owner").await.unwrap().is_some(),
        "owner went before its blocking dependent"
    );

    cms.patch(
        "blocker",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "finalizers": null } })),
    )
    .await
    .unwrap();
    eventually(WAIT, "owner deleted after its dependents", || async {
        gone(&cms, "blocker").await?;
        gone(&cms, "owner").await
    })
    .await;
}

#[tokio::test]
async fn gc_cascades_from_deployment_to_replicasets_and_pods() {
    let c = cluster();
    let client = c.client().await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let count = |app: &'static str| {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default().labels(&format!("app={app}")))
                .await
                .unwrap()
                .items
                .len()
        }
    };

    // Foreground: kubectl returns once the ReplicaSet and its pods are gone.
    c.ok(&[
        "create",
        "deployment",
        "fg",
        "--image=nginx",
        "--replicas=2",
    ]);
    eventually(WAIT, "fg pods", || async {
        match count("fg").await {
            2 => Ok(()),
            n => Err(format!("{n} pods")),
        }
    })
    .await;
    c.ok(&[
        "delete",
        "deployment",
        "fg",
        "--cascade=foreground",
        "--timeout=30s",
    ]);
    assert_eq!(count("fg").await, 0);
    assert!(c
        .ok(&["get", "replicasets", "-l", "app=fg", "-o", "name"])
        .trim()
        .is_empty());

    // Orphan on the ReplicaSet level: the pods stay, released.
    c.ok(&[
        "create",
        "deployment",
        "or",
        "--image=nginx",
        "--replicas=2",
    ]);
    eventually(WAIT, "or pods", || async {
        match count("or").await {
            2 => Ok(()),
            n => Err(format!("{n} pods")),
        }
    })
    .await;
    c.ok(&[
        "delete",
        "deployment",
        "or",
        "--cascade=orphan",
        "--timeout=30s",
    ]);
    c.ok(&[
        "delete",
        "replicasets",
        "-l",
        "app=or",
        "--cascade=orphan",
        "--timeout=30s",
    ]);
    let left = pods
        .list(&ListParams::default().labels("app=or"))
        .await
        .unwrap()
        .items;
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|p| p.metadata.owner_references.is_none()));

    // Background (kubectl's default): everything goes.
    c.ok(&[
        "create",
        "deployment",
        "bg",
        "--image=nginx",
        "--replicas=2",
    ]);
    eventually(WAIT, "bg pods", || async {
        match count("bg").await {
            2 => Ok(()),
            n => Err(format!("{n} pods")),
        }
    })
    .await;
    c.ok(&["delete", "deployment", "bg"]);
    eventually(WAIT, "bg collected", || async {
        let rs = c.ok(&["get", "replicasets", "-l", "app=bg", "-o", "name"]);
        match count("bg").await {
            0 if rs.trim().is_empty() => Ok(()),
            n => Err(format!("{n} pods, replicasets {rs}")),
        }
    })
    .await;
}

#[tokio::test]
async fn every_namespace_gets_default_serviceaccount_and_root_ca_configmap() {
    let c = cluster();
    let client = c.client().await;
    c.ok(&["create", "namespace", "team-a"]);
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "team-a");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team-a");
    eventually(WAIT, "default ServiceAccount", || async {
        sas.get_opt("default")
            .await
            .unwrap()
            .map(|_| ())
            .ok_or("no default SA".to_string())
    })
    .await;
    let ca = find_file(&c.data_dir(), "ca.crt").map(|p| std::fs::read_to_string(p).unwrap());
    let cm = eventually(WAIT, "kube-root-ca.crt", || async {
        cms.get_opt("kube-root-ca.crt")
            .await
            .unwrap()
            .ok_or("no kube-root-ca.crt".to_string())
    })
    .await;
    let data = cm.data.clone().unwrap();
    assert!(
        data["ca.crt"].starts_with("-----BEGIN CERTIFICATE-----"),
        "{data:?}"
    );
    if let Some(ca) = ca {
        assert_eq!(data["ca.crt"], ca);
    }
    assert!(cm.annotations()["kubernetes.io/description"].starts_with("Contains a CA bundle"));
    // The existing namespaces have them too.
    for ns in ["default", "kube-system", "kube-public"] {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
        eventually(WAIT, "furnished system namespace", || async {
            cms.get_opt("kube-root-ca.crt")
                .await
                .unwrap()
                .ok_or(format!("no CA in {ns}"))?;
            sas.get_opt("default")
                .await
                .unwrap()
                .ok_or(format!("no SA in {ns}"))
        })
        .await;
    }

    // Deleted: created again. Changed: put back.
    c.ok(&["delete", "serviceaccount", "default", "-n", "team-a"]);
    c.ok(&["delete", "configmap", "kube-root-ca.crt", "-n", "team-a"]);
    eventually(WAIT, "recreated", || async {
        sas.get_opt("default")
            .await
            .unwrap()
            .ok_or("no SA".to_string())?;
        cms.get_opt("kube-root-ca.crt")
            .await
            .unwrap()
            .ok_or("no CA".to_string())
    })
    .await;
    c.ok(&[
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        "team-a",
        "-p",
        r#"{"data":{"ca.crt":"tampered"}}"#,
    ]);
    eventually(WAIT, "restored", || async {
        let cm = cms
            .get("kube-root-ca.crt")
            .await
            .map_err(|e| e.to_string())?;
        let v = cm
            .data
            .unwrap_or_default()
            .remove("ca.crt")
            .unwrap_or_default();
        if v.starts_with("-----BEGIN CERTIFICATE-----") {
            Ok(())
        } else {
            Err(v)
        }
    })
    .await;
}

fn find_file(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

/// A pod bound to a simulated node directly, with a named container port.
fn pod(name: &str, app: &str, port_name: &str, port: i32, annotations: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "labels": { "app": app }, "annotations": annotations },
        "spec": {
            "nodeName": "sim-node-0",
            "containers": [{
                "name": "app",
                "image": "nginx:1.27",
                "ports": [{ "name": port_name, "containerPort": port }],
            }],
        },
    }))
    .unwrap()
}

fn service(name: &str, app: &str, spec: serde_json::Value) -> Service {
    let mut s = json!({
        "selector": { "app": app },
        "ports": [{ "port": 80, "targetPort": "http" }],
    });
    s.as_object_mut()
        .unwrap()
        .extend(spec.as_object().unwrap().clone());
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": { "name": name }, "spec": s,
    }))
    .unwrap()
}

async fn pod_ip(pods: &Api<Pod>, name: &str) -> String {
    eventually(WAIT, "pod IP", || async {
        let p = pods.get(name).await.map_err(|e| e.to_string())?;
        p.status
            .and_then(|s| s.pod_ip)
            .filter(|ip| !ip.is_empty())
            .ok_or_else(|| format!("{name} has no IP yet"))
    })
    .await
}

async fn slices_of(slices: &Api<EndpointSlice>, service: &str) -> Vec<EndpointSlice> {
    slices
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={service}")))
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn endpoints_and_slices_follow_pod_readiness_with_named_target_ports() {
    let c = cluster();
    let client = c.client().await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let endpoints: Api<Endpoints> = Api::default_namespaced(client.clone());
    let slices: Api<EndpointSlice> = Api::default_namespaced(client.clone());

    pods.create(
        &PostParams::default(),
        &pod("web-1", "web", "http", 8080, json!({})),
    )
    .await
    .unwrap();
    pods.create(
        &PostParams::default(),
        &pod(
            "web-2",
            "web",
            "http",
            9090,
            json!({ "sim.krate.io/ready": "false" }),
        ),
    )
    .await
    .unwrap();
    let svc = services
        .create(&PostParams::default(), &service("web", "web", json!({})))
        .await
        .unwrap();
    let ip1 = pod_ip(&pods, "web-1").await;
    let ip2 = pod_ip(&pods, "web-2").await;

    // kubectl shows the ready pod's IP with its own resolved port.
    let want = format!("{ip1}:8080");
    eventually_blocking(WAIT, "kubectl get endpoints", || {
        let out = c.ok(&["get", "endpoints", "web"]);
        if out.contains(&want) {
            Ok(out)
        } else {
            Err(out)
        }
    });
    let ep = endpoints.get("web").await.unwrap();
    let subsets = ep.subsets.clone().unwrap();
    let ready: Vec<_> = subsets
        .iter()
        .flat_map(|s| s.addresses.iter().flatten())
        .collect();
    let not_ready: Vec<_> = subsets
        .iter()
        .flat_map(|s| s.not_ready_addresses.iter().flatten())
        .collect();
    assert_eq!(ready.len(), 1, "{subsets:?}");
    assert_eq!(ready[0].ip, ip1);
    assert_eq!(ready[0].node_name.as_deref(), Some("sim-node-0"));
    let target = ready[0].target_ref.as_ref().unwrap();
    assert_eq!(
        (target.kind.as_deref(), target.name.as_deref()),
        (Some("Pod"), Some("web-1"))
    );
    assert_eq!(not_ready.len(), 1, "{subsets:?}");
    assert_eq!(not_ready[0].ip, ip2);
    let not_ready_port = subsets
        .iter()
        .find(|s| s.not_ready_addresses.is_some())
        .and_then(|s| s.ports.clone())
        .unwrap();
    assert_eq!(not_ready_port[0].port, 9090);
    assert!(ep
        .annotations()
        .contains_key("endpoints.kubernetes.io/last-change-trigger-time"));

    // The slice: labels, owner, both endpoints with their conditions.
    let slice = eventually(WAIT, "EndpointSlice with both pods", || async {
        let all = slices_of(&slices, "web").await;
        let n: usize = all.iter().map(|s| s.endpoints.len()).sum();
        if n == 2 {
            Ok(all)
        } else {
            Err(format!("{n} endpoints in {} slices", all.len()))
        }
    })
    .await;
    for s in &slice {
        assert!(s.name_any().starts_with("web-"), "{}", s.name_any());
        assert_eq!(
            s.labels()["endpointslice.kubernetes.io/managed-by"],
            "endpointslice-controller.k8s.io"
        );
        assert_eq!(s.address_type, "IPv4");
        let owner = &s.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Service", svc.uid().unwrap().as_str())
        );
        assert_eq!(owner.controller, Some(true));
    }
    let all: Vec<_> = slice
        .iter()
        .flat_map(|s| s.endpoints.iter().map(move |e| (s, e)))
        .collect();
    let (s2, e2) = all
        .iter()
        .find(|(_, e)| e.addresses == vec![ip2.clone()])
        .unwrap();
    let cond = e2.conditions.clone().unwrap();
    assert_eq!(
        (cond.ready, cond.serving, cond.terminating),
        (Some(false), Some(false), Some(false))
    );
    assert_eq!(s2.ports.as_ref().unwrap()[0].port, Some(9090));
    let (_, e1) = all
        .iter()
        .find(|(_, e)| e.addresses == vec![ip1.clone()])
        .unwrap();
    assert_eq!(e1.conditions.as_ref().unwrap().ready, Some(true));
    assert_eq!(e1.node_name.as_deref(), Some("sim-node-0"));

    // kubectl's columns for slices.
    let out = c.ok(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
    ]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        vec!["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    );
    assert!(out.contains("IPv4") && out.contains(&ip1), "{out}");

    // A pod deleted: gone from both.
    pods.delete("web-1", &Default::default()).await.unwrap();
    eventually(WAIT, "deleted pod dropped", || async {
        let ep = endpoints.get("web").await.map_err(|e| e.to_string())?;
        let ips: Vec<String> = ep
            .subsets
            .iter()
            .flatten()
            .flat_map(|s| {
                s.addresses
                    .iter()
                    .flatten()
                    .chain(s.not_ready_addresses.iter().flatten())
            })
            .map(|a| a.ip.clone())
            .collect();
        let in_slices = slices_of(&slices, "web")
            .await
            .iter()
            .flat_map(|s| s.endpoints.iter().flat_map(|e| e.addresses.clone()))
            .any(|a| a == ip1);
        if ips.contains(&ip1) || in_slices {
            Err(format!("{ip1} still listed: {ips:?}"))
        } else {
            Ok(())
        }
    })
    .await;

    // The Service deleted: its Endpoints and slices go.
    services.delete("web", &Default::default()).await.unwrap();
    eventually(
        WAIT,
        "endpoints and slices of a deleted service gone",
        || async {
            if endpoints.get_opt("web").await.unwrap().is_some() {
                return Err("endpoints left".into());
            }
            let left = slices_of(&slices, "web").await.len();
            if left > 0 {
                return Err(format!("{left} slices left"));
            }
            Ok(())
        },
    )
    .await;
}

#[tokio::test]
async fn terminating_pod_leaves_endpoints_and_stays_in_slices_as_terminating() {
    let c = cluster();
    let client = c.client().await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let endpoints: Api<Endpoints> = Api::default_namespaced(client.clone());
    let slices: Api<EndpointSlice> = Api::default_namespaced(client.clone());

    // The pod's node stops (as if the machine died), so a graceful delete
    // leaves the pod terminating, still Running and Ready as last reported.
    let mut p = pod("api-0", "api", "http", 8080, json!({}));
    p.spec.as_mut().unwrap().node_name = Some("sim-node-1".into());
    pods.create(&PostParams::default(), &p).await.unwrap();
    let ip = pod_ip(&pods, "api-0").await;
    services
        .create(&PostParams::default(), &service("api", "api", json!({})))
        .await
        .unwrap();
    eventually(WAIT, "ready endpoint", || async {
        let all = slices_of(&slices, "api").await;
        match all.iter().flat_map(|s| s.endpoints.iter()).next() {
            Some(e) if e.conditions.as_ref().unwrap().ready == Some(true) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    c.ok(&[
        "annotate",
        "node",
        "sim-node-1",
        "sim.krate.io/stopped=true",
    ]);
    c.ok(&["delete", "pod", "api-0", "--wait=false"]);
    eventually(WAIT, "terminating endpoint", || async {
        let all = slices_of(&slices, "api").await;
        let e = all
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .next()
            .ok_or("no endpoint")?;
        let c = e.conditions.clone().unwrap();
        if e.addresses == vec![ip.clone()] && c.terminating == Some(true) && c.ready == Some(false)
        {
            Ok(())
        } else {
            Err(format!("{e:?}"))
        }
    })
    .await;
    eventually(WAIT, "terminating pod out of Endpoints", || async {
        let ep = endpoints.get("api").await.map_err(|e| e.to_string())?;
        match ep.subsets {
            None => Ok(()),
            Some(s) => Err(format!("{s:?}")),
        }
    })
    .await;
    let out = c.ok(&["get", "endpoints", "api"]);
    assert!(out.contains("<none>"), "{out}");

    // Gone for good: one empty placeholder slice is left.
    c.ok(&["delete", "pod", "api-0", "--grace-period=0", "--force"]);
    eventually(WAIT, "placeholder slice", || async {
        let all = slices_of(&slices, "api").await;
        if all.len() == 1 && all[0].endpoints.is_empty() {
            Ok(())
        } else {
            Err(format!("{all:?}"))
        }
    })
    .await;
}

#[tokio::test]
async fn publish_not_ready_headless_and_selectorless_services() {
    let c = cluster();
    let client = c.client().await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let endpoints: Api<Endpoints> = Api::default_namespaced(client.clone());
    let slices: Api<EndpointSlice> = Api::default_namespaced(client.clone());

    pods.create(
        &PostParams::default(),
        &pod(
            "db-0",
            "db",
            "http",
            5432,
            json!({ "sim.krate.io/ready": "false" }),
        ),
    )
    .await
    .unwrap();
    let ip = pod_ip(&pods, "db-0").await;
    services
        .create(
            &PostParams::default(),
            &service("db-all", "db", json!({ "publishNotReadyAddresses": true })),
        )
        .await
        .unwrap();
    services
        .create(
            &PostParams::default(),
            &service("db-headless", "db", json!({ "clusterIP": "None" })),
        )
        .await
        .unwrap();
    let manual: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": { "name": "external" },
        "spec": { "ports": [{ "port": 80 }] },
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &manual)
        .await
        .unwrap();

    // publishNotReadyAddresses: the not-ready pod is listed as ready.
    eventually(WAIT, "not-ready pod published", || async {
        let ep = endpoints
            .get_opt("db-all")
            .await
            .unwrap()
            .ok_or("no endpoints")?;
        let ready: Vec<String> = ep
            .subsets
            .iter()
            .flatten()
            .flat_map(|s| s.addresses.iter().flatten())
            .map(|a| a.ip.clone())
            .collect();
        if ready == vec![ip.clone()] {
            Ok(())
        } else {
            Err(format!("{:?}", ep.subsets))
        }
    })
    .await;
    eventually(
        WAIT,
        "slice endpoint ready with publishNotReadyAddresses",
        || async {
            let all = slices_of(&slices, "db-all").await;
            let e = all
                .iter()
                .flat_map(|s| s.endpoints.iter())
                .next()
                .ok_or("no endpoint")?;
            let c = e.conditions.clone().unwrap();
            if c.ready == Some(true) && c.serving == Some(false) {
                Ok(())
            } else {
                Err(format!("{c:?}"))
            }
        },
    )
    .await;

    // Headless: the Endpoints carry the headless label; the pod is not ready.
    let ep = eventually(WAIT, "headless endpoints", || async {
        let ep = endpoints
            .get_opt("db-headless")
            .await
            .unwrap()
            .ok_or("no endpoints")?;
        if ep
            .subsets
            .iter()
            .flatten()
            .any(|s| s.not_ready_addresses.is_some())
        {
            Ok(ep)
        } else {
            Err(format!("{:?}", ep.subsets))
        }
    })
    .await;
    assert_eq!(
        ep.labels()
            .get("service.kubernetes.io/headless")
            .map(String::as_str),
        Some("")
    );
    let headless_slices = slices_of(&slices, "db-headless").await;
    assert!(headless_slices
        .iter()
        .all(|s| s.labels().contains_key("service.kubernetes.io/headless")));

    // No selector: the controllers leave it alone.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(endpoints.get_opt("external").await.unwrap().is_none());
    assert!(slices_of(&slices, "external").await.is_empty());
}
