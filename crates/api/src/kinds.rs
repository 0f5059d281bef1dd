//! Per-kind validation of built-in objects, as upstream's
//! `pkg/apis/*/validation` and the registries' strategies do it, on the JSON
//! objects clients send (after [`crate::defaults::apply_defaults`]).
//!
//! The API server validates `metadata` itself (names, labels, annotations,
//! namespace); these functions check everything else and word their errors
//! exactly as upstream, with the same field paths
//! (`spec.template.spec.containers[0].image: Required value`).
//!
//! Validated kinds:
//! - core/v1: Pod, PodTemplate, ReplicationController, Service, ConfigMap,
//!   Secret, Namespace, PersistentVolumeClaim, PersistentVolume, Node,
//!   Endpoints, Event (legacy rules), LimitRange, ResourceQuota;
//!   ServiceAccount has no rules beyond metadata.
//! - apps/v1: Deployment, ReplicaSet, StatefulSet, DaemonSet.
//! - batch/v1: Job, CronJob (with the cron schedule syntax).
//! - autoscaling/v1, v2: HorizontalPodAutoscaler.
//! - policy/v1: PodDisruptionBudget.
//! - networking.k8s.io/v1: Ingress, IngressClass, NetworkPolicy.
//! - rbac.authorization.k8s.io/v1: Role, ClusterRole, RoleBinding,
//!   ClusterRoleBinding.
//! - storage.k8s.io/v1: StorageClass.
//! - scheduling.k8s.io/v1: PriorityClass.
//! - node.k8s.io/v1: RuntimeClass.
//! - coordination.k8s.io/v1: Lease.
//! - discovery.k8s.io/v1: EndpointSlice.
//!
//! Known differences from upstream:
//! - Values upstream prints with Go's `%#v` of a whole struct (a security
//!   context, a job's pod template, a PDB spec) are printed as compact JSON;
//!   `cmp.Diff` output after "pod updates may not change fields..." and the
//!   PVC/PV immutability messages is a field-by-field JSON diff.
//! - Service: fields the API server's allocator defaults are not reported as
//!   missing; cluster IP changes on update are checked by the allocator.
//! - Job: selector generation (and `validateGeneratedSelector`) belongs to
//!   the API server; a Job without a selector is only an error with
//!   `manualSelector: true`.
//! - CronJob `timeZone` names are checked for shape only (no tz database).
//! - Update semantics compare JSON with Go's zero-value equality (absent,
//!   `null`, `""`, `0`, `false`, `[]` and `{}` are equal).
//!
//! TODO (not yet validated; they return no errors):
//! - events.k8s.io/v1 Event, certificates.k8s.io CertificateSigningRequest,
//!   admissionregistration.k8s.io webhooks and policies,
//!   apiextensions.k8s.io (validated by the API server's CRD code),
//!   flowcontrol.apiserver.k8s.io,
//!   storage.k8s.io CSIDriver/CSINode/VolumeAttachment/CSIStorageCapacity,
//!   resource.k8s.io, apps/v1 ControllerRevision.
//! - Pod: ephemeral container updates (the subresource), resize,
//!   `matchLabelKeys`/`mismatchLabelKeys` of affinity and topology spread,
//!   Windows host-process rules, seccomp/AppArmor annotation-versus-field
//!   consistency.
//! - HPA `behavior` tolerance; ResourceQuota `scopeSelector`.

pub(crate) mod json;

mod apps;
mod batch;
mod common;
mod core;
pub mod cron;
mod misc;
mod networking;
mod node;
mod pod;
mod rbac;

pub use pod::validate_pod_ephemeral_containers_update;

use crate::validation::field::ErrorList;
use serde_json::Value;

/// Validation of a new object (create). Metadata name/labels/annotations are
/// validated by the server already; validate everything else that upstream's
/// Validate<Kind> checks. Returns upstream's errors (field paths like
/// "spec.template.spec.containers[0].image").
pub fn validate_create(group: &str, version: &str, kind: &str, obj: &Value) -> ErrorList {
    match (group, kind) {
        ("", "Pod") => pod::validate_pod_create(obj),
        ("", "PodTemplate") => pod::validate_pod_template(obj),
        ("", "ReplicationController") => core::validate_replication_controller(obj),
        ("", "Service") => core::validate_service(obj),
        ("", "ConfigMap") => core::validate_config_map(obj),
        ("", "Secret") => core::validate_secret(obj),
        ("", "Namespace") => core::validate_namespace(obj),
        ("", "PersistentVolumeClaim") => core::validate_pvc(obj),
        ("", "PersistentVolume") => core::validate_pv(obj),
        ("", "Node") => core::validate_node(obj),
        ("", "Endpoints") => core::validate_endpoints(obj),
        ("", "Event") => core::validate_event(obj),
        ("", "LimitRange") => core::validate_limit_range(obj),
        ("", "ResourceQuota") => core::validate_resource_quota(obj),
        ("apps", "Deployment") => apps::validate_deployment(obj),
        ("apps", "ReplicaSet") => apps::validate_replica_set(obj),
        ("apps", "StatefulSet") => apps::validate_stateful_set(obj),
        ("apps", "DaemonSet") => apps::validate_daemon_set(obj),
        ("batch", "Job") => batch::validate_job(obj),
        ("batch", "CronJob") => batch::validate_cron_job(obj),
        ("autoscaling", "HorizontalPodAutoscaler") => misc::validate_hpa(obj, version),
        ("policy", "PodDisruptionBudget") => misc::validate_pdb(obj),
        ("networking.k8s.io", "Ingress") => networking::validate_ingress_create(obj),
        ("networking.k8s.io", "IngressClass") => networking::validate_ingress_class(obj),
        ("networking.k8s.io", "NetworkPolicy") => networking::validate_network_policy(obj),
        ("rbac.authorization.k8s.io", "Role") => rbac::validate_role(obj),
        ("rbac.authorization.k8s.io", "ClusterRole") => rbac::validate_cluster_role(obj),
        ("rbac.authorization.k8s.io", "RoleBinding") => rbac::validate_binding(obj, false),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => rbac::validate_binding(obj, true),
        ("storage.k8s.io", "StorageClass") => misc::validate_storage_class(obj),
        ("scheduling.k8s.io", "PriorityClass") => misc::validate_priority_class(obj),
        ("node.k8s.io", "RuntimeClass") => node::validate_runtime_class(obj),
        ("coordination.k8s.io", "Lease") => misc::validate_lease(obj),
        ("discovery.k8s.io", "EndpointSlice") => misc::validate_endpoint_slice(obj),
        _ => ErrorList::new(),
    }
}

/// Validation of an update: everything of validate_create plus immutability
/// rules ("field is immutable" on the right paths, e.g. Deployment
/// spec.selector; pod spec changes beyond images, activeDeadlineSeconds and
/// added tolerations; Job selector/template; PVC spec except storage
/// requests of bound claims; Secret/ConfigMap data when `immutable` is set).
pub fn validate_update(
    group: &str,
    version: &str,
    kind: &str,
    new: &Value,
    old: &Value,
) -> ErrorList {
    match (group, kind) {
        ("", "Pod") => pod::validate_pod_update(new, old),
        ("", "Service") => core::validate_service_update(new, old),
        ("", "ConfigMap") => core::validate_config_map_update(new, old),
        ("", "Secret") => core::validate_secret_update(new, old),
        ("", "PersistentVolumeClaim") => core::validate_pvc_update(new, old),
        ("", "PersistentVolume") => core::validate_pv_update(new, old),
        ("", "Node") => core::validate_node_update(new, old),
        ("", "ResourceQuota") => core::validate_resource_quota_update(new, old),
        // Namespace updates only check metadata upstream.
        ("", "Namespace") => ErrorList::new(),
        ("apps", "Deployment") => apps::validate_deployment_update(new, old),
        ("apps", "ReplicaSet") => apps::validate_replica_set_update(new, old),
        ("apps", "StatefulSet") => apps::validate_stateful_set_update(new, old),
        ("apps", "DaemonSet") => apps::validate_daemon_set_update(new, old),
        ("batch", "Job") => batch::validate_job_update(new, old),
        ("batch", "CronJob") => batch::validate_cron_job_update(new, old),
        ("networking.k8s.io", "Ingress") => networking::validate_ingress(new),
        ("networking.k8s.io", "IngressClass") => {
            networking::validate_ingress_class_update(new, old)
        }
        ("rbac.authorization.k8s.io", "RoleBinding") => {
            rbac::validate_binding_update(new, old, false)
        }
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            rbac::validate_binding_update(new, old, true)
        }
        ("storage.k8s.io", "StorageClass") => misc::validate_storage_class_update(new, old),
        ("scheduling.k8s.io", "PriorityClass") => misc::validate_priority_class_update(new, old),
        ("node.k8s.io", "RuntimeClass") => node::validate_runtime_class_update(new, old),
        ("discovery.k8s.io", "EndpointSlice") => misc::validate_endpoint_slice_update(new, old),
        _ => validate_create(group, version, kind, new),
    }
}

#[cfg(test)]
mod tests;
