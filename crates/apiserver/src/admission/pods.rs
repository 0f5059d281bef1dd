//! Admission of pods and claims, as upstream's built-in plugins:
//! - ServiceAccount: `spec.serviceAccountName` defaults to `default`, and
//!   unless automounting is off every container gets the projected
//!   `kube-api-access-*` volume (token, cluster CA, namespace);
//! - Priority: `spec.priorityClassName` resolves to `spec.priority` (the
//!   global default class, or 0);
//! - DefaultTolerationSeconds: a pod that does not tolerate the
//!   `node.kubernetes.io/not-ready` and `unreachable` NoExecute taints
//!   tolerates them for 300 s (configurable), after which the taint manager
//!   evicts it from a lost node;
//! - DefaultStorageClass: a claim without a class gets the default one.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::Admission;
use crate::registry::{ListOptions, Registry};
use crate::resources::{lookup, ResourceInfo};
use crate::status::{ApiError, ApiResult};

/// Where the service account token volume is mounted.
pub const SA_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The priority classes every cluster has.
pub const SYSTEM_PRIORITY_CLASSES: &[(&str, i64, &str)] = &[
    ("system-node-critical", 2_000_001_000, "Used for system critical pods that must not be moved from their current node."),
    ("system-cluster-critical", 2_000_000_000, "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."),
];

/// Upstream's `--default-not-ready-toleration-seconds` and
/// `--default-unreachable-toleration-seconds`.
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// The plugin reads PriorityClasses and StorageClasses through the
/// registry it is part of, which it learns once that registry exists
/// ([`PodAdmission::attach`]).
pub struct PodAdmission {
    registry: std::sync::OnceLock<std::sync::Weak<Registry>>,
    not_ready_toleration_seconds: i64,
    unreachable_toleration_seconds: i64,
}

impl Default for PodAdmission {
    fn default() -> Self {
        PodAdmission {
            registry: Default::default(),
            not_ready_toleration_seconds: DEFAULT_TOLERATION_SECONDS,
            unreachable_toleration_seconds: DEFAULT_TOLERATION_SECONDS,
        }
    }
}

impl PodAdmission {
    pub fn new() -> Arc<PodAdmission> {
        Arc::new(PodAdmission::default())
    }

    /// A plugin whose default tolerations last the given seconds.
    pub fn with_default_tolerations(not_ready: i64, unreachable: i64) -> Arc<PodAdmission> {
        Arc::new(PodAdmission {
            not_ready_toleration_seconds: not_ready,
            unreachable_toleration_seconds: unreachable,
            ..Default::default()
        })
    }

    pub fn attach(&self, registry: &Arc<Registry>) {
        let _ = self.registry.set(Arc::downgrade(registry));
    }

    fn registry(&self) -> ApiResult<Arc<Registry>> {
        self.registry
            .get()
            .and_then(std::sync::Weak::upgrade)
            .ok_or_else(|| ApiError::unavailable("the server is not ready to admit pods"))
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::thread_rng();
    (0..5)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Adds the service account name and token volume to a pod.
pub fn mount_service_account(pod: &mut Value) {
    let spec = match pod.get_mut("spec").and_then(Value::as_object_mut) {
        Some(s) => s,
        None => return,
    };
    let sa = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            spec.get("serviceAccount")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .unwrap_or("default")
        .to_string();
    spec.insert("serviceAccountName".into(), json!(sa));
    spec.insert("serviceAccount".into(), json!(sa));
    if spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
        == Some(false)
    {
        return;
    }
    // A pod that already mounts something at the token path keeps it.
    let mounted = ["containers", "initContainers"].iter().any(|list| {
        spec.get(*list).and_then(Value::as_array).is_some_and(|cs| {
            cs.iter().any(|c| {
                c["volumeMounts"]
                    .as_array()
                    .is_some_and(|ms| ms.iter().any(|m| m["mountPath"] == SA_MOUNT_PATH))
            })
        })
    });
    if mounted {
        return;
    }
    let name = format!("kube-api-access-{}", random_suffix());
    let volume = json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                { "serviceAccountToken": { "expirationSeconds": 3607, "path": "token" } },
                { "configMap": { "name": "kube-root-ca.crt", "items": [{ "key": "ca.crt", "path": "ca.crt" }] } },
                { "downwardAPI": { "items": [{ "path": "namespace", "fieldRef": { "apiVersion": "v1", "fieldPath": "metadata.namespace" } }] } },
            ],
        },
    });
    match spec.get_mut("volumes").and_then(Value::as_array_mut) {
        Some(vs) => vs.push(volume),
        None => {
            spec.insert("volumes".into(), json!([volume]));
        }
    }
    let mount = json!({ "name": name, "readOnly": true, "mountPath": SA_MOUNT_PATH });
    for list in ["initContainers", "containers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                match c.get_mut("volumeMounts").and_then(Value::as_array_mut) {
                    Some(ms) => ms.push(mount.clone()),
                    None => {
                        c.insert("volumeMounts".into(), json!([mount.clone()]));
                    }
                }
            }
        }
    }
}

/// Upstream's DefaultTolerationSeconds admission: tolerations of the
/// not-ready and unreachable NoExecute taints for a bounded time, unless the
/// pod already tolerates them.
pub fn add_default_tolerations(pod: &mut Value, not_ready: i64, unreachable: i64) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let existing = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let tolerated = |key: &str| {
        existing.iter().any(|t| {
            let k = t["key"].as_str().unwrap_or("");
            let e = t["effect"].as_str().unwrap_or("");
            (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
        })
    };
    let mut add = Vec::new();
    for (key, seconds) in [
        ("node.kubernetes.io/not-ready", not_ready),
        ("node.kubernetes.io/unreachable", unreachable),
    ] {
        if !tolerated(key) {
            add.push(json!({ "key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds }));
        }
    }
    if add.is_empty() {
        return;
    }
    let mut all = existing;
    all.extend(add);
    spec.insert("tolerations".into(), Value::Array(all));
}

async fn list_items(reg: &Registry, r: &ResourceInfo) -> ApiResult<Vec<Value>> {
    let list = reg
        .list(r, None, &ListOptions::default(), &|_| true)
        .await?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

impl PodAdmission {
    async fn admit_priority(&self, pod: &mut Value) -> ApiResult<()> {
        let reg = self.registry()?;
        let classes_r = lookup("scheduling.k8s.io", "v1", "priorityclasses")
            .expect("priorityclasses are served");
        let requested = pod
            .pointer("/spec/priorityClassName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let classes = list_items(&reg, classes_r).await?;
        let class = if requested.is_empty() {
            classes
                .iter()
                .find(|c| c["globalDefault"].as_bool() == Some(true))
                .cloned()
        } else {
            match classes.iter().find(|c| {
                c.pointer("/metadata/name").and_then(Value::as_str) == Some(requested.as_str())
            }) {
                Some(c) => Some(c.clone()),
                None => {
                    let name = pod
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    return Err(ApiError::forbidden(format!(
                        "pods \"{name}\" is forbidden: no PriorityClass with name {requested} was found"
                    )));
                }
            }
        };
        let (value, policy) = match &class {
            Some(c) => (
                c["value"].as_i64().unwrap_or(0),
                c["preemptionPolicy"]
                    .as_str()
                    .unwrap_or("PreemptLowerPriority")
                    .to_string(),
            ),
            None => (0, "PreemptLowerPriority".to_string()),
        };
        if let Some(given) = pod.pointer("/spec/priority").and_then(Value::as_i64) {
            if given != value {
                return Err(ApiError::forbidden(
                    "the integer value of priority must not be provided in pod spec; priority admission controller computed a different value from the given PriorityClass name".to_string(),
                ));
            }
        }
        pod["spec"]["priority"] = json!(value);
        if let (Some(c), true) = (&class, pod.pointer("/spec/priorityClassName").is_none()) {
            pod["spec"]["priorityClassName"] = c["metadata"]["name"].clone();
        }
        if pod.pointer("/spec/preemptionPolicy").is_none() {
            pod["spec"]["preemptionPolicy"] = json!(policy);
        }
        Ok(())
    }

    async fn admit_claim(&self, pvc: &mut Value) -> ApiResult<()> {
        if pvc.pointer("/spec/storageClassName").is_some() {
            return Ok(());
        }
        let reg = self.registry()?;
        let classes_r =
            lookup("storage.k8s.io", "v1", "storageclasses").expect("storageclasses are served");
        let default = list_items(&reg, classes_r)
            .await?
            .into_iter()
            .filter(|c| {
                c.pointer("/metadata/annotations/storageclass.kubernetes.io~1is-default-class")
                    .and_then(Value::as_str)
                    == Some("true")
            })
            .max_by(|a, b| {
                // Several defaults: the newest wins, as upstream picks; of
                // two created in the same second, the first by name.
                let t = |c: &Value| {
                    c.pointer("/metadata/creationTimestamp")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                let n = |c: &Value| {
                    c.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                t(a).cmp(&t(b)).then_with(|| n(b).cmp(&n(a)))
            });
        if let Some(class) = default {
            pvc["spec"]["storageClassName"] = class["metadata"]["name"].clone();
        }
        Ok(())
    }
}

#[async_trait]
impl Admission for PodAdmission {
    async fn admit_create(&self, r: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
        match (r.group, r.resource) {
            ("", "pods") => {
                mount_service_account(obj);
                add_default_tolerations(
                    obj,
                    self.not_ready_toleration_seconds,
                    self.unreachable_toleration_seconds,
                );
                self.admit_priority(obj).await
            }
            ("", "persistentvolumeclaims") => self.admit_claim(obj).await,
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_get_the_default_service_account_and_its_token_volume() {
        let mut pod = json!({ "spec": { "containers": [{ "name": "a" }, { "name": "b", "volumeMounts": [{ "name": "x", "mountPath": "/x" }] }] } });
        mount_service_account(&mut pod);
        assert_eq!(pod["spec"]["serviceAccountName"], "default");
        let vol = &pod["spec"]["volumes"][0];
        assert!(vol["name"]
            .as_str()
            .unwrap()
            .starts_with("kube-api-access-"));
        assert_eq!(
            vol["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3607
        );
        for c in pod["spec"]["containers"].as_array().unwrap() {
            let m = c["volumeMounts"].as_array().unwrap().last().unwrap();
            assert_eq!(m["mountPath"], SA_MOUNT_PATH);
            assert_eq!(m["name"], vol["name"]);
        }
    }

    #[test]
    fn pods_tolerate_lost_nodes_for_five_minutes_unless_they_say_otherwise() {
        let mut pod = json!({ "spec": { "containers": [{ "name": "a" }] } });
        add_default_tolerations(&mut pod, 300, 300);
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([
                { "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300 },
                { "key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300 },
            ])
        );
        let mut own = json!({ "spec": { "tolerations": [{ "key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5 }] } });
        add_default_tolerations(&mut own, 300, 60);
        let t = own["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["tolerationSeconds"], 5);
        assert_eq!(t[1]["key"], "node.kubernetes.io/not-ready");
        let mut all = json!({ "spec": { "tolerations": [{ "operator": "Exists" }] } });
        add_default_tolerations(&mut all, 300, 300);
        assert_eq!(all["spec"]["tolerations"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn automount_off_keeps_the_pod_free_of_tokens() {
        let mut pod = json!({ "spec": { "serviceAccountName": "bot", "automountServiceAccountToken": false, "containers": [{ "name": "a" }] } });
        mount_service_account(&mut pod);
        assert_eq!(pod["spec"]["serviceAccountName"], "bot");
        assert!(pod["spec"].get("volumes").is_none());
    }
}
