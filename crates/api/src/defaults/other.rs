//! Defaults of the non-workload kinds (core/v1 storage, namespaces, nodes,
//! secrets; autoscaling, networking, RBAC, storage, scheduling, discovery).

use super::pod::{azure_disk, pvc_spec, rbd, scale_io};
use super::{ensure, field, items, resource_list, set_if_absent, set_if_empty, Obj};
use serde_json::{json, Value};

/// `SetDefaults_Secret`, and the v1 conversion's merge of `stringData`
/// into `data` (the stored object has no `stringData`).
pub(super) fn secret(root: &mut Obj) {
    set_if_empty(root, "type", "Opaque");
    let Some(Value::Object(string_data)) = root.remove("stringData") else {
        return;
    };
    if string_data.is_empty() {
        return;
    }
    if let Some(data) = ensure(root, "data") {
        for (k, v) in string_data {
            if let Some(s) = v.as_str() {
                data.insert(k, Value::String(base64_encode(s.as_bytes())));
            }
        }
    }
}

/// Standard base64 with padding (how Go encodes `[]byte` in JSON).
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `SetDefaults_Namespace`: the `kubernetes.io/metadata.name` label.
pub(super) fn namespace(root: &mut Obj) {
    let Some(meta) = ensure(root, "metadata") else {
        return;
    };
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        return;
    }
    if let Some(labels) = ensure(meta, "labels") {
        labels.insert("kubernetes.io/metadata.name".into(), Value::String(name));
    }
}

/// `SetDefaults_PersistentVolume` and its sources.
pub(super) fn persistent_volume(root: &mut Obj) {
    if let Some(status) = ensure(root, "status") {
        set_if_empty(status, "phase", "Pending");
    }
    let Some(spec) = ensure(root, "spec") else {
        return;
    };
    set_if_empty(spec, "persistentVolumeReclaimPolicy", "Retain");
    set_if_absent(spec, "volumeMode", json!("Filesystem"));
    resource_list(spec, "capacity");
    if let Some(hp) = field(spec, "hostPath") {
        set_if_absent(hp, "type", json!(""));
    }
    if let Some(r) = field(spec, "rbd") {
        rbd(r);
    }
    if let Some(i) = field(spec, "iscsi") {
        set_if_empty(i, "iscsiInterface", "default");
    }
    if let Some(a) = field(spec, "azureDisk") {
        azure_disk(a);
    }
    if let Some(s) = field(spec, "scaleIO") {
        scale_io(s);
    }
}

/// `SetDefaults_PersistentVolumeClaim` and its spec.
pub(super) fn persistent_volume_claim(root: &mut Obj) {
    if let Some(status) = ensure(root, "status") {
        set_if_empty(status, "phase", "Pending");
        resource_list(status, "capacity");
        resource_list(status, "allocatedResources");
    }
    if let Some(spec) = ensure(root, "spec") {
        pvc_spec(spec);
    }
}

/// `SetDefaults_Endpoints`: ports are TCP unless said otherwise.
pub(super) fn endpoints(root: &mut Obj) {
    for subset in items(root, "subsets") {
        for port in items(subset, "ports") {
            set_if_empty(port, "protocol", "TCP");
        }
    }
}

/// `SetDefaults_NodeStatus`: allocatable defaults to capacity.
pub(super) fn node(root: &mut Obj) {
    let Some(status) = field(root, "status") else {
        return;
    };
    if status.get("allocatable").is_none_or(Value::is_null) {
        if let Some(cap) = status.get("capacity").filter(|c| c.is_object()).cloned() {
            status.insert("allocatable".into(), cap);
        }
    }
    resource_list(status, "capacity");
    resource_list(status, "allocatable");
}

/// `SetDefaults_LimitRangeItem`.
pub(super) fn limit_range(root: &mut Obj) {
    let Some(spec) = field(root, "spec") else {
        return;
    };
    for item in items(spec, "limits") {
        if item.get("type").and_then(Value::as_str) == Some("Container") {
            let max = item
                .get("max")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if let Some(default) = ensure(item, "default") {
                for (k, v) in max {
                    default.entry(k).or_insert(v);
                }
            }
            let default = item
                .get("default")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let min = item
                .get("min")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if let Some(req) = ensure(item, "defaultRequest") {
                for (k, v) in default {
                    req.entry(k).or_insert(v);
                }
                for (k, v) in min {
                    req.entry(k).or_insert(v);
                }
            }
            // Empty maps are omitted when upstream serializes.
            for key in ["default", "defaultRequest"] {
                if item
                    .get(key)
                    .and_then(Value::as_object)
                    .is_some_and(|m| m.is_empty())
                {
                    item.remove(key);
                }
            }
        }
        for key in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            resource_list(item, key);
        }
    }
}

/// ResourceQuota: quantities are canonicalized.
pub(super) fn resource_quota(root: &mut Obj) {
    if let Some(spec) = field(root, "spec") {
        resource_list(spec, "hard");
    }
    if let Some(status) = field(root, "status") {
        resource_list(status, "hard");
        resource_list(status, "used");
    }
}

/// `SetDefaults_HorizontalPodAutoscaler` (v2: the CPU metric and scaling
/// behavior defaults; v1: one replica minimum).
pub(super) fn hpa(root: &mut Obj, version: &str) {
    let Some(spec) = ensure(root, "spec") else {
        return;
    };
    set_if_absent(spec, "minReplicas", json!(1));
    if version == "v1" {
        return;
    }
    let no_metrics = spec
        .get("metrics")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if no_metrics {
        spec.insert(
            "metrics".into(),
            json!([{
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80}
                }
            }]),
        );
    }
    if let Some(behavior) = field(spec, "behavior") {
        let scale_up = json!({
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15}
            ]
        });
        let scale_down = json!({
            "stabilizationWindowSeconds": 300,
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]
        });
        for (key, defaults) in [("scaleUp", scale_up), ("scaleDown", scale_down)] {
            let mut rules = defaults;
            if let Some(given) = behavior.get(key).and_then(Value::as_object) {
                for k in ["selectPolicy", "stabilizationWindowSeconds", "policies"] {
                    if let Some(v) = given.get(k).filter(|v| !v.is_null()) {
                        rules[k] = v.clone();
                    }
                }
            }
            behavior.insert(key.into(), rules);
        }
    }
}

/// `SetDefaults_NetworkPolicy` and `SetDefaults_NetworkPolicyPort`.
pub(super) fn network_policy(root: &mut Obj) {
    let Some(spec) = ensure(root, "spec") else {
        return;
    };
    for (dir, _) in [("ingress", "from"), ("egress", "to")] {
        for rule in items(spec, dir) {
            for port in items(rule, "ports") {
                set_if_absent(port, "protocol", json!("TCP"));
            }
        }
    }
    let no_types = spec
        .get("policyTypes")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if no_types {
        let egress = spec
            .get("egress")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty());
        let types = if egress {
            json!(["Ingress", "Egress"])
        } else {
            json!(["Ingress"])
        };
        spec.insert("policyTypes".into(), types);
    }
}

/// `SetDefaults_IngressClass`: parameters are cluster-scoped by default.
pub(super) fn ingress_class(root: &mut Obj) {
    if let Some(params) = field(root, "spec").and_then(|s| field(s, "parameters")) {
        set_if_absent(params, "scope", json!("Cluster"));
    }
}

/// `SetDefaults_RoleBinding` / `SetDefaults_ClusterRoleBinding` and
/// `SetDefaults_Subject`.
pub(super) fn binding(root: &mut Obj) {
    if let Some(rr) = ensure(root, "roleRef") {
        set_if_empty(rr, "apiGroup", "rbac.authorization.k8s.io");
    }
    for subject in items(root, "subjects") {
        let kind = subject.get("kind").and_then(Value::as_str).unwrap_or("");
        match kind {
            "User" | "Group" => set_if_empty(subject, "apiGroup", "rbac.authorization.k8s.io"),
            _ => {}
        }
    }
}

/// `SetDefaults_StorageClass`.
pub(super) fn storage_class(root: &mut Obj) {
    set_if_absent(root, "reclaimPolicy", json!("Delete"));
    set_if_absent(root, "volumeBindingMode", json!("Immediate"));
}

/// `SetDefaults_CSIDriver`.
pub(super) fn csi_driver(root: &mut Obj) {
    let Some(spec) = ensure(root, "spec") else {
        return;
    };
    set_if_absent(spec, "attachRequired", json!(true));
    set_if_absent(spec, "podInfoOnMount", json!(false));
    set_if_absent(spec, "storageCapacity", json!(false));
    set_if_absent(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
    let no_modes = spec
        .get("volumeLifecycleModes")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if no_modes {
        spec.insert("volumeLifecycleModes".into(), json!(["Persistent"]));
    }
    set_if_absent(spec, "requiresRepublish", json!(false));
    set_if_absent(spec, "seLinuxMount", json!(false));
}

/// `SetDefaults_PriorityClass`.
pub(super) fn priority_class(root: &mut Obj) {
    set_if_absent(root, "preemptionPolicy", json!("PreemptLowerPriority"));
}

/// `SetDefaults_EndpointPort`: unnamed TCP ports.
pub(super) fn endpoint_slice(root: &mut Obj) {
    for port in items(root, "ports") {
        set_if_absent(port, "name", json!(""));
        set_if_absent(port, "protocol", json!("TCP"));
    }
}
