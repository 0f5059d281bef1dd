//! The node agent's volumes and container environment against a real
//! `krate server` (no agent: the tests drive `node::volumes::Manager` and
//! `node::env::resolve` themselves, as the agent does). Mounting needs root;
//! every test unmounts and removes what it made, even when it fails.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Secret, ServiceAccount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, Patch, PatchParams, PostParams};
use node::env::{self, EnvContext};
use node::volumes::{Manager, MountContext, VolumeError};
use serde_json::json;
use support::{eventually, Cluster};

const WAIT: Duration = Duration::from_secs(30);

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// The pods root of one test; unmounted and removed on drop.
struct PodsRoot(PathBuf);

impl Drop for PodsRoot {
    fn drop(&mut self) {
        if let Err(e) = node::volumes::clean_root(&self.0) {
            eprintln!("cleaning {}: {e}", self.0.display());
        }
    }
}

fn mount_type(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        (Path::new(fields[4]) == path).then(|| {
            let dash = fields.iter().position(|f| *f == "-").unwrap();
            fields[dash + 1].to_string()
        })
    })
}

fn mounts_under(root: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines()
        .map(|l| l.split(' ').nth(4).unwrap().to_string())
        .filter(|p| Path::new(p).starts_with(root))
        .collect()
}

async fn create<K>(client: &kube::Client, object: serde_json::Value) -> K
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + k8s_openapi::serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), "default");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(object).unwrap(),
    )
    .await
    .unwrap()
}

/// The namespace's default service account and root CA exist (made by the
/// controllers), so pods get their `kube-api-access-*` volume.
async fn wait_for_service_account(client: &kube::Client) -> String {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    eventually(WAIT, "default service account", || async {
        sas.get_opt("default")
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no service account")?;
        Ok(())
    })
    .await;
    eventually(WAIT, "kube-root-ca.crt", || async {
        let cm = cms
            .get_opt("kube-root-ca.crt")
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no configmap")?;
        Ok(cm.data.unwrap_or_default()["ca.crt"].clone())
    })
    .await
}

#[tokio::test]
async fn pod_volumes_are_set_up_refreshed_and_torn_down() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let cluster = Cluster::start_with(&["--disable-agent"]);
    let client = cluster.client().await;
    let ca = wait_for_service_account(&client).await;
    let work = cluster.dir.path().join("work");
    let pods_root = PodsRoot(work.join("pods"));
    let pv_dir = work.join("pv");
    std::fs::create_dir_all(&pv_dir).unwrap();
    std::fs::write(pv_dir.join("kept"), "data").unwrap();

    let _: ConfigMap = create(
        &client,
        json!({ "metadata": { "name": "cfg" }, "data": { "a": "1", "gone": "x" } }),
    )
    .await;
    let _: Secret = create(
        &client,
        json!({ "metadata": { "name": "sec" }, "stringData": { "token": "s3cret" } }),
    )
    .await;
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    pvs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": { "name": "pv-host" },
            "spec": {
                "capacity": { "storage": "1Gi" }, "accessModes": ["ReadWriteOnce"],
                "storageClassName": "", "hostPath": { "path": pv_dir, "type": "Directory" }
            }
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    let _: PersistentVolumeClaim = create(
        &client,
        json!({
            "metadata": { "name": "claim" },
            "spec": {
                "accessModes": ["ReadWriteOnce"], "storageClassName": "", "volumeName": "pv-host",
                "resources": { "requests": { "storage": "1Gi" } }
            }
        }),
    )
    .await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    eventually(WAIT, "claim bound", || async {
        let c = claims.get("claim").await.map_err(|e| e.to_string())?;
        match c.status.and_then(|s| s.phase).as_deref() {
            Some("Bound") => Ok(()),
            other => Err(format!("phase {other:?}")),
        }
    })
    .await;

    let host_dir = work.join("host/made");
    let pod: Pod = create(
        &client,
        json!({
            "metadata": { "name": "web", "labels": { "app": "web" } },
            "spec": {
                "securityContext": { "fsGroup": 2000 },
                "containers": [{
                    "name": "app", "image": "busybox",
                    "volumeMounts": [
                        { "name": "cfg", "mountPath": "/cfg" },
                        { "name": "sec", "mountPath": "/sec" },
                        { "name": "labels", "mountPath": "/labels" },
                        { "name": "scratch", "mountPath": "/scratch" },
                        { "name": "host", "mountPath": "/host" },
                        { "name": "data", "mountPath": "/data", "subPath": "sub" }
                    ]
                }],
                "volumes": [
                    { "name": "cfg", "configMap": { "name": "cfg" } },
                    { "name": "sec", "secret": { "secretName": "sec", "defaultMode": 0o400 } },
                    { "name": "labels", "downwardAPI": { "items": [
                        { "path": "labels", "fieldRef": { "fieldPath": "metadata.labels" } }
                    ] } },
                    { "name": "scratch", "emptyDir": { "medium": "Memory", "sizeLimit": "16Mi" } },
                    { "name": "host", "hostPath": { "path": host_dir, "type": "DirectoryOrCreate" } },
                    { "name": "data", "persistentVolumeClaim": { "claimName": "claim" } }
                ]
            }
        }),
    )
    .await;
    let uid = pod.metadata.uid.clone().unwrap();
    let access = pod
        .spec
        .as_ref()
        .unwrap()
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name.starts_with("kube-api-access-"))
        .expect("the API server adds kube-api-access")
        .name
        .clone();

    let manager = Manager::new(&pods_root.0, client.clone(), "node-1");
    manager.set_node_allocatable(BTreeMap::from([(
        "memory".to_string(),
        Quantity("1Gi".into()),
    )]));
    let volumes = manager.setup(&pod).await.unwrap();
    let vol = |plugin: &str, name: &str| {
        pods_root
            .0
            .join(&uid)
            .join("volumes")
            .join(plugin)
            .join(name)
    };

    let cfg = vol("kubernetes.io~configmap", "cfg");
    assert_eq!(volumes.volumes["cfg"].host_path, cfg);
    assert_eq!(std::fs::read_to_string(cfg.join("a")).unwrap(), "1");
    assert_eq!(
        std::fs::read_link(cfg.join("a")).unwrap(),
        Path::new("..data/a")
    );
    assert_eq!(
        std::fs::metadata(cfg.join("a")).unwrap().gid(),
        2000,
        "fsGroup"
    );

    let sec = vol("kubernetes.io~secret", "sec");
    assert_eq!(
        std::fs::read_to_string(sec.join("token")).unwrap(),
        "s3cret"
    );
    // 0400 from defaultMode, group read from fsGroup.
    assert_eq!(
        std::fs::metadata(sec.join("token")).unwrap().mode() & 0o777,
        0o440
    );
    assert_eq!(
        mount_type(&sec).as_deref(),
        Some("tmpfs"),
        "secrets live in memory"
    );

    let labels = vol("kubernetes.io~downward-api", "labels");
    assert_eq!(
        std::fs::read_to_string(labels.join("labels")).unwrap(),
        "app=\"web\""
    );

    let scratch = vol("kubernetes.io~empty-dir", "scratch");
    assert_eq!(mount_type(&scratch).as_deref(), Some("tmpfs"));
    assert_eq!(std::fs::metadata(&scratch).unwrap().gid(), 2000);

    assert!(host_dir.is_dir(), "DirectoryOrCreate made the host path");
    assert_eq!(volumes.volumes["host"].host_path, host_dir);
    assert_eq!(volumes.volumes["data"].host_path, pv_dir);

    let projected = vol("kubernetes.io~projected", &access);
    let token = std::fs::read_to_string(projected.join("token")).unwrap();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    assert_eq!(
        std::fs::read_to_string(projected.join("ca.crt")).unwrap(),
        ca
    );
    assert_eq!(
        std::fs::read_to_string(projected.join("namespace")).unwrap(),
        "default"
    );
    assert_eq!(mount_type(&projected).as_deref(), Some("tmpfs"));
    // The token authenticates as the pod's service account.
    let admin: serde_json::Value =
        serde_json::from_str(&cluster.ok(&["config", "view", "--raw", "-o", "json"])).unwrap();
    let token_config = work.join("token.kubeconfig");
    std::fs::write(
        &token_config,
        json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "sa",
            "clusters": [{ "name": "c", "cluster": admin["clusters"][0]["cluster"] }],
            "users": [{ "name": "sa", "user": { "token": token } }],
            "contexts": [{ "name": "sa", "context": { "cluster": "c", "user": "sa" } }]
        })
        .to_string(),
    )
    .unwrap();
    let out = cluster.kubectl(&[
        "--kubeconfig",
        token_config.to_str().unwrap(),
        "get",
        "secrets",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "User \"system:serviceaccount:default:default\" cannot list resource \"secrets\""
        ),
        "{stderr}"
    );

    let container = &pod.spec.as_ref().unwrap().containers[0];
    let ips = vec!["10.42.0.9".to_string()];
    let mounts = volumes
        .container_mounts(
            &pod,
            container,
            &MountContext {
                pod_ips: &ips,
                env: &[],
            },
        )
        .unwrap();
    let by_path: BTreeMap<&str, &runtime::cri::Mount> = mounts
        .iter()
        .map(|m| (m.container_path.as_str(), m))
        .collect();
    assert!(by_path["/cfg"].readonly && by_path["/sec"].readonly);
    assert!(!by_path["/scratch"].readonly);
    assert_eq!(by_path["/data"].host_path, pv_dir.join("sub"));
    assert!(pv_dir.join("sub").is_dir());
    assert!(by_path.contains_key("/etc/hosts"));
    assert!(by_path.contains_key("/var/run/secrets/kubernetes.io/serviceaccount"));

    // An edited configMap reaches the volume on refresh; a removed key goes.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.patch(
        "cfg",
        &PatchParams::default(),
        &Patch::Merge(json!({ "data": { "a": "2", "gone": null, "b": "3" } })),
    )
    .await
    .unwrap();
    manager.refresh(&pod).await.unwrap();
    assert_eq!(std::fs::read_to_string(cfg.join("a")).unwrap(), "2");
    assert_eq!(std::fs::read_to_string(cfg.join("b")).unwrap(), "3");
    assert!(std::fs::symlink_metadata(cfg.join("gone")).is_err());
    // The token is reused until 80 % of its lifetime.
    assert_eq!(
        std::fs::read_to_string(projected.join("token")).unwrap(),
        token
    );

    manager.teardown(&uid).await.unwrap();
    assert!(!pods_root.0.join(&uid).exists());
    assert!(
        mounts_under(&pods_root.0).is_empty(),
        "{:?}",
        mounts_under(&pods_root.0)
    );
    assert_eq!(
        std::fs::read_to_string(pv_dir.join("kept")).unwrap(),
        "data"
    );
    assert!(host_dir.is_dir());
    // Tearing down again (or a pod never set up) is fine.
    manager.teardown(&uid).await.unwrap();
}

#[tokio::test]
async fn missing_objects_fail_with_upstreams_messages() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let cluster = Cluster::start_with(&["--disable-agent"]);
    let client = cluster.client().await;
    wait_for_service_account(&client).await;
    let pods_root = PodsRoot(cluster.dir.path().join("work/pods"));
    let manager = Manager::new(&pods_root.0, client.clone(), "node-1");

    let _: ConfigMap = create(
        &client,
        json!({ "metadata": { "name": "cfg" }, "data": { "a": "1" } }),
    )
    .await;
    let pod = |name: &str, volume: serde_json::Value| {
        json!({
            "metadata": { "name": name },
            "spec": { "containers": [{ "name": "app", "image": "busybox" }], "volumes": [volume] }
        })
    };
    let cases = [
        (
            pod("p1", json!({ "name": "cfg", "configMap": { "name": "missing" } })),
            "MountVolume.SetUp failed for volume \"cfg\" : configmap \"missing\" not found",
        ),
        (
            pod("p2", json!({ "name": "s", "secret": { "secretName": "missing" } })),
            "MountVolume.SetUp failed for volume \"s\" : secret \"missing\" not found",
        ),
        (
            pod("p3", json!({ "name": "cfg", "configMap": { "name": "cfg", "items": [{ "key": "nope", "path": "x" }] } })),
            "MountVolume.SetUp failed for volume \"cfg\" : configmap references non-existent config key: nope",
        ),
        (
            pod("p4", json!({ "name": "h", "hostPath": { "path": "/proc/krate-nope", "type": "Directory" } })),
            "MountVolume.SetUp failed for volume \"h\" : hostPath type check failed: /proc/krate-nope is not a directory",
        ),
        (
            pod("p5", json!({ "name": "h", "hostPath": { "path": "/proc/krate-nope/file", "type": "FileOrCreate" } })),
            "MountVolume.SetUp failed for volume \"h\" : hostPath type check failed: could not create file /proc/krate-nope/file",
        ),
        (
            pod("p6", json!({ "name": "d", "persistentVolumeClaim": { "claimName": "nope" } })),
            "error processing PVC default/nope: failed to fetch PVC from API server: persistentvolumeclaims \"nope\" not found",
        ),
    ];
    for (spec, want) in cases {
        let pod: Pod = create(&client, spec).await;
        let err: VolumeError = manager.setup(&pod).await.unwrap_err();
        assert!(err.to_string().starts_with(want), "{err}\nwanted {want}");
        manager
            .teardown(pod.metadata.uid.as_deref().unwrap())
            .await
            .unwrap();
    }
    // An optional configMap that is missing gives an empty volume.
    let pod: Pod = create(
        &client,
        pod(
            "p7",
            json!({ "name": "cfg", "configMap": { "name": "missing", "optional": true } }),
        ),
    )
    .await;
    let volumes = manager.setup(&pod).await.unwrap();
    assert!(volumes.volumes["cfg"].host_path.join("..data").exists());
}

#[tokio::test]
async fn container_env_comes_from_configmaps_secrets_and_the_pod() {
    let cluster = Cluster::start_with(&["--disable-agent"]);
    let client = cluster.client().await;
    let _: ConfigMap = create(
        &client,
        json!({ "metadata": { "name": "cfg" }, "data": { "mode": "fast", "ok_key": "1", "1st": "3" } }),
    )
    .await;
    let _: Secret = create(
        &client,
        json!({ "metadata": { "name": "sec" }, "stringData": { "password": "hunter2" } }),
    )
    .await;
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "web", "namespace": "default", "uid": "u1", "labels": { "app": "web" } },
        "spec": {
            "nodeName": "node-1",
            "containers": [{
                "name": "app", "image": "busybox",
                "resources": { "limits": { "memory": "64Mi" } },
                "envFrom": [{ "configMapRef": { "name": "cfg" }, "prefix": "CFG_" }, { "configMapRef": { "name": "cfg" } }],
                "env": [
                    { "name": "MODE", "valueFrom": { "configMapKeyRef": { "name": "cfg", "key": "mode" } } },
                    { "name": "PASSWORD", "valueFrom": { "secretKeyRef": { "name": "sec", "key": "password" } } },
                    { "name": "POD", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } },
                    { "name": "IP", "valueFrom": { "fieldRef": { "fieldPath": "status.podIP" } } },
                    { "name": "APP", "valueFrom": { "fieldRef": { "fieldPath": "metadata.labels['app']" } } },
                    { "name": "MEM", "valueFrom": { "resourceFieldRef": { "resource": "limits.memory", "divisor": "1Mi" } } },
                    { "name": "CPU", "valueFrom": { "resourceFieldRef": { "resource": "limits.cpu" } } },
                    { "name": "GREETING", "value": "$(POD) in $(MODE) $$(POD) $(LATER)" },
                    { "name": "OPT", "valueFrom": { "configMapKeyRef": { "name": "missing", "key": "x", "optional": true } } },
                    { "name": "LATER", "value": "late" }
                ]
            }]
        }
    }))
    .unwrap();
    let container = &pod.spec.as_ref().unwrap().containers[0];
    let allocatable = BTreeMap::from([("cpu".to_string(), Quantity("2".into()))]);
    let pod_ips = vec!["10.42.0.3".to_string()];
    let ctx = EnvContext {
        pod_ips: &pod_ips,
        node_allocatable: Some(&allocatable),
        ..Default::default()
    };
    let resolved = env::resolve(&client, &pod, container, &ctx).await.unwrap();
    let vars: BTreeMap<&str, &str> = resolved
        .vars
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(vars["CFG_mode"], "fast");
    assert_eq!(vars["CFG_ok_key"], "1");
    assert_eq!(vars["CFG_1st"], "3", "the prefix makes it a valid name");
    assert!(!vars.contains_key("1st"));
    assert_eq!(vars["ok_key"], "1");
    assert_eq!(vars["MODE"], "fast");
    assert_eq!(vars["PASSWORD"], "hunter2");
    assert_eq!(vars["POD"], "web");
    assert_eq!(vars["IP"], "10.42.0.3");
    assert_eq!(vars["APP"], "web");
    assert_eq!(vars["MEM"], "64");
    assert_eq!(vars["CPU"], "2");
    assert_eq!(vars["GREETING"], "web in fast $(POD) $(LATER)");
    assert!(!vars.contains_key("OPT"));
    assert_eq!(resolved.events.len(), 1);
    assert_eq!(resolved.events[0].reason, "InvalidEnvironmentVariableNames");
    assert_eq!(
        resolved.events[0].message,
        "Keys [1st] from the EnvFrom configMap default/cfg were skipped since they are considered invalid environment variable names."
    );

    let with_env = |env: serde_json::Value| -> k8s_openapi::api::core::v1::Container {
        serde_json::from_value(json!({ "name": "app", "env": env })).unwrap()
    };
    let err = |c: k8s_openapi::api::core::v1::Container| {
        let client = client.clone();
        let pod = pod.clone();
        async move {
            env::resolve(&client, &pod, &c, &EnvContext::default())
                .await
                .unwrap_err()
                .to_string()
        }
    };
    assert_eq!(
        err(with_env(json!([{ "name": "X", "valueFrom": { "configMapKeyRef": { "name": "missing", "key": "x" } } }]))).await,
        "configmap \"missing\" not found"
    );
    assert_eq!(
        err(with_env(json!([{ "name": "X", "valueFrom": { "configMapKeyRef": { "name": "cfg", "key": "nope" } } }]))).await,
        "couldn't find key nope in ConfigMap default/cfg"
    );
    assert_eq!(
        err(with_env(json!([{ "name": "X", "valueFrom": { "secretKeyRef": { "name": "missing", "key": "x" } } }]))).await,
        "secret \"missing\" not found"
    );
    assert_eq!(
        err(with_env(json!([{ "name": "X", "valueFrom": { "secretKeyRef": { "name": "sec", "key": "nope" } } }]))).await,
        "couldn't find key nope in Secret default/sec"
    );
}

#[tokio::test]
async fn directories_of_pods_that_are_gone_are_torn_down() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let cluster = Cluster::start_with(&["--disable-agent"]);
    let client = cluster.client().await;
    let data_dir = cluster.dir.path().join("work");
    let pods_root = PodsRoot(data_dir.join("pods"));
    let resources = node::volumes::Resources::new(client.clone(), &data_dir, "node-1");

    // A pod of this node whose volumes were set up before an agent restart.
    let _: ConfigMap = create(
        &client,
        json!({ "metadata": { "name": "cfg" }, "data": { "a": "1" } }),
    )
    .await;
    let kept: Pod = create(
        &client,
        json!({
            "metadata": { "name": "kept" },
            "spec": {
                "nodeName": "node-1", "automountServiceAccountToken": false,
                "containers": [{ "name": "app", "image": "busybox" }],
                "volumes": [
                    { "name": "cfg", "configMap": { "name": "cfg" } },
                    { "name": "mem", "emptyDir": { "medium": "Memory" } }
                ]
            }
        }),
    )
    .await;
    let kept_uid = kept.metadata.uid.clone().unwrap();
    resources.manager().setup(&kept).await.unwrap();
    // A pod deleted while the agent was down: only its directory is left.
    let mut gone = kept.clone();
    gone.metadata.uid = Some("00000000-0000-0000-0000-00000000dead".into());
    resources.manager().setup(&gone).await.unwrap();
    let gone_mem = pods_root
        .0
        .join("00000000-0000-0000-0000-00000000dead/volumes/kubernetes.io~empty-dir/mem");
    assert_eq!(mount_type(&gone_mem).as_deref(), Some("tmpfs"));

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.patch(
        "cfg",
        &PatchParams::default(),
        &Patch::Merge(json!({ "data": { "a": "2" } })),
    )
    .await
    .unwrap();
    resources.sync_once().await;

    assert!(!pods_root
        .0
        .join("00000000-0000-0000-0000-00000000dead")
        .exists());
    assert_eq!(mount_type(&gone_mem), None);
    let cfg = pods_root
        .0
        .join(&kept_uid)
        .join("volumes/kubernetes.io~configmap/cfg");
    assert_eq!(
        std::fs::read_to_string(cfg.join("a")).unwrap(),
        "2",
        "the adopted pod's configMap volume is refreshed"
    );
    resources.manager().teardown(&kept_uid).await.unwrap();
}
