//! Upstream's defaulting of built-in kinds (`pkg/apis/*/v1/defaults.go` and
//! the generated `zz_generated.defaults.go`), applied to the JSON objects
//! clients send, as the API server does when it decodes a request body and
//! before it validates it ([`crate::kinds`]).
//!
//! Defaulted kinds:
//! - core/v1: Pod, PodTemplate, ReplicationController, Secret (including the
//!   conversion's merge of `stringData` into `data`), Namespace,
//!   PersistentVolume, PersistentVolumeClaim, Endpoints, Node, LimitRange,
//!   ResourceQuota. Service defaults belong to the API server's service
//!   allocator and are not applied here.
//! - apps/v1: Deployment, ReplicaSet, StatefulSet, DaemonSet.
//! - batch/v1: Job, CronJob.
//! - autoscaling/v1 and v2: HorizontalPodAutoscaler.
//! - networking.k8s.io/v1: NetworkPolicy, IngressClass.
//! - rbac.authorization.k8s.io/v1: RoleBinding, ClusterRoleBinding (roleRef
//!   and subject API groups).
//! - storage.k8s.io/v1: StorageClass, CSIDriver.
//! - scheduling.k8s.io/v1: PriorityClass.
//! - discovery.k8s.io/v1: EndpointSlice.
//!
//! Besides the defaulting functions, the zero values Go always serializes
//! are filled in where users see them (`resources: {}` of containers,
//! `creationTimestamp: null` of embedded templates), so objects read back
//! like a real cluster's. Quantities in resource lists are rounded up to
//! milli precision and printed canonically (`SetDefaults_ResourceList`).
//!
//! Feature-gated defaults follow the v1.32 default gates (pod-level
//! resources and image volumes off; StatefulSet PVC retention and Job pod
//! replacement policy on).
//!
//! TODO: admissionregistration.k8s.io, flowcontrol.apiserver.k8s.io,
//! apiextensions.k8s.io (the API server defaults CRDs itself), and the
//! `extensions`/beta versions that v1.32 no longer serves.

mod other;
mod pod;
mod workloads;

use crate::quantity::{scale, Quantity};
use serde_json::{Map, Value};

type Obj = Map<String, Value>;

/// Fills upstream's defaults into an object of the given kind (as the API server does on decode, before validation). Unknown kinds: no-op.
pub fn apply_defaults(group: &str, version: &str, kind: &str, obj: &mut Value) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    match (group, kind) {
        ("", "Pod") => pod::pod(root),
        ("", "PodTemplate") => {
            if let Some(t) = ensure(root, "template") {
                pod::template(t);
            }
        }
        ("", "ReplicationController") => workloads::replication_controller(root),
        ("", "Secret") => other::secret(root),
        ("", "Namespace") => other::namespace(root),
        ("", "PersistentVolume") => other::persistent_volume(root),
        ("", "PersistentVolumeClaim") => other::persistent_volume_claim(root),
        ("", "Endpoints") => other::endpoints(root),
        ("", "Node") => other::node(root),
        ("", "LimitRange") => other::limit_range(root),
        ("", "ResourceQuota") => other::resource_quota(root),
        ("apps", "Deployment") => workloads::deployment(root),
        ("apps", "ReplicaSet") => workloads::replica_set(root),
        ("apps", "StatefulSet") => workloads::stateful_set(root),
        ("apps", "DaemonSet") => workloads::daemon_set(root),
        ("batch", "Job") => workloads::job(root),
        ("batch", "CronJob") => workloads::cron_job(root),
        ("autoscaling", "HorizontalPodAutoscaler") => other::hpa(root, version),
        ("networking.k8s.io", "NetworkPolicy") => other::network_policy(root),
        ("networking.k8s.io", "IngressClass") => other::ingress_class(root),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => other::binding(root),
        ("storage.k8s.io", "StorageClass") => other::storage_class(root),
        ("storage.k8s.io", "CSIDriver") => other::csi_driver(root),
        ("scheduling.k8s.io", "PriorityClass") => other::priority_class(root),
        ("discovery.k8s.io", "EndpointSlice") => other::endpoint_slice(root),
        _ => {}
    }
}

/// The object field `key`, created empty when missing or `null`; `None` when
/// it holds something else (left for validation to reject).
fn ensure<'a>(m: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    let slot = m.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// The object field `key`, if present.
fn field<'a>(m: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// The objects of the list field `key`.
fn items<'a>(m: &'a mut Obj, key: &str) -> impl Iterator<Item = &'a mut Obj> {
    m.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// Sets a pointer field (`*T` in Go) when it is unset (missing or `null`).
fn set_if_absent(m: &mut Obj, key: &str, v: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), v);
    }
}

/// Sets a string field when it is empty (Go's `if x == ""`).
fn set_if_empty(m: &mut Obj, key: &str, v: &str) {
    let empty = match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    };
    if empty {
        m.insert(key.to_string(), Value::String(v.to_string()));
    }
}

/// Sets an integer field when it is zero (Go's `if x == 0`).
fn set_if_zero(m: &mut Obj, key: &str, v: i64) {
    let zero = match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    };
    if zero {
        m.insert(key.to_string(), Value::from(v));
    }
}

/// `SetDefaults_ResourceList`: every quantity rounded up to milli precision
/// and printed the way upstream serializes it.
fn resource_list(m: &mut Obj, key: &str) {
    let Some(list) = field(m, key) else { return };
    for v in list.values_mut() {
        if let Ok(mut q) = Quantity::from_json(v) {
            q.round_up(scale::MILLI);
            *v = Value::String(q.to_string());
        }
    }
}

/// `metadata.creationTimestamp: null`, as Go serializes the zero time of an
/// embedded object's metadata.
fn template_metadata(m: &mut Obj) {
    if let Some(meta) = ensure(m, "metadata") {
        meta.entry("creationTimestamp").or_insert(Value::Null);
    }
}

#[cfg(test)]
mod tests;
