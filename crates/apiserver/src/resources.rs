//! The built-in resources the server serves: group, version, plural,
//! kind, scope, verbs, short names, categories and subresources, as
//! `kubectl api-resources` lists them for a v1.32 cluster. Discovery,
//! routing and storage keys are all derived from this table.

/// Verbs of a resource that supports the whole REST vocabulary.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Verbs of a resource without deletecollection (e.g. namespaces).
pub const NO_COLLECTION_DELETE: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
/// Verbs of a create-only review resource.
pub const CREATE_ONLY: &[&str] = &["create"];
/// Verbs of a status or scale subresource.
pub const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];

#[derive(Debug)]
pub struct Subresource {
    pub name: &'static str,
    /// Kind of the subresource's body (`Scale`, `Eviction`, ...); `None`
    /// means the parent's kind.
    pub kind: Option<&'static str>,
    /// Group/version of `kind` when it differs from the parent's
    /// (e.g. `autoscaling/v1` for Scale).
    pub kind_group_version: Option<(&'static str, &'static str)>,
    pub verbs: &'static [&'static str],
}

#[derive(Debug)]
pub struct ResourceInfo {
    pub group: &'static str,
    pub version: &'static str,
    /// Plural, lower case: the URL segment.
    pub resource: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub list_kind: &'static str,
    pub namespaced: bool,
    pub verbs: &'static [&'static str],
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Subresource],
}

impl ResourceInfo {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// How upstream names the resource in messages: `configmaps` or
    /// `deployments.apps`.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// How upstream names the kind in messages: `ConfigMap` or
    /// `Deployment.apps`.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// The storage prefix of this resource: every object lives at
    /// `<prefix><namespace>/<name>` (namespaced) or `<prefix><name>`.
    /// How the OpenAPI documents name and reach this resource.
    pub fn openapi_kind(&self) -> openapi::Kind {
        openapi::Kind {
            group: self.group,
            version: self.version,
            kind: self.kind,
            resource: self.resource,
            namespaced: self.namespaced,
            verbs: self.verbs,
        }
    }

    pub fn storage_prefix(&self) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        format!("/registry/{group}/{}/", self.resource)
    }
}

const fn sub(name: &'static str, verbs: &'static [&'static str]) -> Subresource {
    Subresource {
        name,
        kind: None,
        kind_group_version: None,
        verbs,
    }
}

const fn sub_kind(
    name: &'static str,
    kind: &'static str,
    group: &'static str,
    version: &'static str,
    verbs: &'static [&'static str],
) -> Subresource {
    Subresource {
        name,
        kind: Some(kind),
        kind_group_version: Some((group, version)),
        verbs,
    }
}

const STATUS: Subresource = sub("status", GET_PATCH_UPDATE);
const SCALE: Subresource = sub_kind("scale", "Scale", "autoscaling", "v1", GET_PATCH_UPDATE);

macro_rules! res {
    ($group:expr, $version:expr, $resource:expr, $singular:expr, $kind:expr, $namespaced:expr, $verbs:expr,
     [$($short:expr),*], [$($cat:expr),*], [$($sub:expr),*]) => {
        ResourceInfo {
            group: $group,
            version: $version,
            resource: $resource,
            singular: $singular,
            kind: $kind,
            list_kind: concat!($kind, "List"),
            namespaced: $namespaced,
            verbs: $verbs,
            short_names: &[$($short),*],
            categories: &[$($cat),*],
            subresources: &[$($sub),*],
        }
    };
}

const NS: bool = true;
const CLUSTER: bool = false;

/// Every built-in resource, grouped by API group in upstream's discovery
/// order (preferred versions first within a group).
pub static BUILTIN: &[ResourceInfo] = &[
    // core/v1
    res!(
        "",
        "v1",
        "bindings",
        "binding",
        "Binding",
        NS,
        CREATE_ONLY,
        [],
        [],
        []
    ),
    res!(
        "",
        "v1",
        "componentstatuses",
        "componentstatus",
        "ComponentStatus",
        CLUSTER,
        &["get", "list"],
        ["cs"],
        [],
        []
    ),
    res!(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        NS,
        ALL_VERBS,
        ["cm"],
        [],
        []
    ),
    res!(
        "",
        "v1",
        "endpoints",
        "endpoints",
        "Endpoints",
        NS,
        ALL_VERBS,
        ["ep"],
        [],
        []
    ),
    res!(
        "",
        "v1",
        "events",
        "event",
        "Event",
        NS,
        ALL_VERBS,
        ["ev"],
        [],
        []
    ),
    res!(
        "",
        "v1",
        "limitranges",
        "limitrange",
        "LimitRange",
        NS,
        ALL_VERBS,
        ["limits"],
        [],
        []
    ),
    res!(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        CLUSTER,
        NO_COLLECTION_DELETE,
        ["ns"],
        [],
        [sub("finalize", &["update"]), STATUS]
    ),
    res!(
        "",
        "v1",
        "nodes",
        "node",
        "Node",
        CLUSTER,
        ALL_VERBS,
        ["no"],
        [],
        [
            sub_kind(
                "proxy",
                "NodeProxyOptions",
                "",
                "v1",
                &["create", "delete", "get", "patch", "update"]
            ),
            STATUS
        ]
    ),
    res!(
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        NS,
        ALL_VERBS,
        ["pvc"],
        [],
        [STATUS]
    ),
    res!(
        "",
        "v1",
        "persistentvolumes",
        "persistentvolume",
        "PersistentVolume",
        CLUSTER,
        ALL_VERBS,
        ["pv"],
        [],
        [STATUS]
    ),
    res!(
        "",
        "v1",
        "pods",
        "pod",
        "Pod",
        NS,
        ALL_VERBS,
        ["po"],
        ["all"],
        [
            sub_kind("attach", "PodAttachOptions", "", "v1", &["create", "get"]),
            sub_kind("binding", "Binding", "", "v1", CREATE_ONLY),
            sub("ephemeralcontainers", GET_PATCH_UPDATE),
            sub_kind("eviction", "Eviction", "policy", "v1", CREATE_ONLY),
            sub_kind("exec", "PodExecOptions", "", "v1", &["create", "get"]),
            sub_kind("log", "Pod", "", "v1", &["get"]),
            sub_kind(
                "portforward",
                "PodPortForwardOptions",
                "",
                "v1",
                &["create", "get"]
            ),
            sub_kind(
                "proxy",
                "PodProxyOptions",
                "",
                "v1",
                &["create", "delete", "get", "patch", "update"]
            ),
            STATUS
        ]
    ),
    res!(
        "",
        "v1",
        "podtemplates",
        "podtemplate",
        "PodTemplate",
        NS,
        ALL_VERBS,
        [],
        [],
        []
    ),
    res!(
        "",
        "v1",
        "replicationcontrollers",
        "replicationcontroller",
        "ReplicationController",
        NS,
        ALL_VERBS,
        ["rc"],
        ["all"],
        [SCALE, STATUS]
    ),
    res!(
        "",
        "v1",
        "resourcequotas",
        "resourcequota",
        "ResourceQuota",
        NS,
        ALL_VERBS,
        ["quota"],
        [],
        [STATUS]
    ),
    res!(
        "",
        "v1",
        "secrets",
        "secret",
        "Secret",
        NS,
        ALL_VERBS,
        [],
        [],
        []
    ),
    res!(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        NS,
        ALL_VERBS,
        ["sa"],
        [],
        [sub_kind(
            "token",
            "TokenRequest",
            "authentication.k8s.io",
            "v1",
            CREATE_ONLY
        )]
    ),
    res!(
        "",
        "v1",
        "services",
        "service",
        "Service",
        NS,
        ALL_VERBS,
        ["svc"],
        ["all"],
        [
            sub_kind(
                "proxy",
                "ServiceProxyOptions",
                "",
                "v1",
                &["create", "delete", "get", "patch", "update"]
            ),
            STATUS
        ]
    ),
    // apiregistration.k8s.io/v1
    res!(
        "apiregistration.k8s.io",
        "v1",
        "apiservices",
        "apiservice",
        "APIService",
        CLUSTER,
        ALL_VERBS,
        [],
        ["api-extensions"],
        [STATUS]
    ),
    // apps/v1
    res!(
        "apps",
        "v1",
        "controllerrevisions",
        "controllerrevision",
        "ControllerRevision",
        NS,
        ALL_VERBS,
        [],
        [],
        []
    ),
    res!(
        "apps",
        "v1",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        NS,
        ALL_VERBS,
        ["ds"],
        ["all"],
        [STATUS]
    ),
    res!(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        NS,
        ALL_VERBS,
        ["deploy"],
        ["all"],
        [SCALE, STATUS]
    ),
    res!(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        NS,
        ALL_VERBS,
        ["rs"],
        ["all"],
        [SCALE, STATUS]
    ),
    res!(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        NS,
        ALL_VERBS,
        ["sts"],
        ["all"],
        [SCALE, STATUS]
    ),
    // events.k8s.io/v1
    res!(
        "events.k8s.io",
        "v1",
        "events",
        "event",
        "Event",
        NS,
        ALL_VERBS,
        ["ev"],
        [],
        []
    ),
    // authentication.k8s.io/v1
    res!(
        "authentication.k8s.io",
        "v1",
        "selfsubjectreviews",
        "selfsubjectreview",
        "SelfSubjectReview",
        CLUSTER,
        CREATE_ONLY,
        [],
        [],
        []
    ),
    res!(
        "authentication.k8s.io",
        "v1",
        "tokenreviews",
        "tokenreview",
        "TokenReview",
        CLUSTER,
        CREATE_ONLY,
        [],
        [],
        []
    ),
    // authorization.k8s.io/v1
    res!(
        "authorization.k8s.io",
        "v1",
        "localsubjectaccessreviews",
        "localsubjectaccessreview",
        "LocalSubjectAccessReview",
        NS,
        CREATE_ONLY,
        [],
        [],
        []
    ),
    res!(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        "SelfSubjectAccessReview",
        CLUSTER,
        CREATE_ONLY,
        [],
        [],
        []
    ),
    res!(
        "authorization.k8s.io",
        "v1",
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
        "SelfSubjectRulesReview",
        CLUSTER,
        CREATE_ONLY,
        [],
        [],
        []
    ),
    res!(
        "authorization.k8s.io",
        "v1",
        "subjectaccessreviews",
        "subjectaccessreview",
        "SubjectAccessReview",
        CLUSTER,
        CREATE_ONLY,
        [],
        [],
        []
    ),
    // autoscaling/v2 (preferred) and v1
    res!(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        NS,
        ALL_VERBS,
        ["hpa"],
        ["all"],
        [STATUS]
    ),
    res!(
        "autoscaling",
        "v1",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        NS,
        ALL_VERBS,
        ["hpa"],
        ["all"],
        [STATUS]
    ),
    // batch/v1
    res!(
        "batch",
        "v1",
        "cronjobs",
        "cronjob",
        "CronJob",
        NS,
        ALL_VERBS,
        ["cj"],
        ["all"],
        [STATUS]
    ),
    res!(
        "batch",
        "v1",
        "jobs",
        "job",
        "Job",
        NS,
        ALL_VERBS,
        [],
        ["all"],
        [STATUS]
    ),
    // certificates.k8s.io/v1
    res!(
        "certificates.k8s.io",
        "v1",
        "certificatesigningrequests",
        "certificatesigningrequest",
        "CertificateSigningRequest",
        CLUSTER,
        ALL_VERBS,
        ["csr"],
        [],
        [sub("approval", GET_PATCH_UPDATE), STATUS]
    ),
    // networking.k8s.io/v1
    res!(
        "networking.k8s.io",
        "v1",
        "ingressclasses",
        "ingressclass",
        "IngressClass",
        CLUSTER,
        ALL_VERBS,
        [],
        [],
        []
    ),
    res!(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "ingress",
        "Ingress",
        NS,
        ALL_VERBS,
        ["ing"],
        [],
        [STATUS]
    ),
    res!(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        NS,
        ALL_VERBS,
        ["netpol"],
        [],
        []
    ),
    // policy/v1
    res!(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        NS,
        ALL_VERBS,
        ["pdb"],
        [],
        [STATUS]
    ),
    // rbac.authorization.k8s.io/v1
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        CLUSTER,
        ALL_VERBS,
        [],
        [],
        []
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        CLUSTER,
        ALL_VERBS,
        [],
        [],
        []
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        NS,
        ALL_VERBS,
        [],
        [],
        []
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "role",
        "Role",
        NS,
        ALL_VERBS,
        [],
        [],
        []
    ),
    // storage.k8s.io/v1
    res!(
        "storage.k8s.io",
        "v1",
        "csidrivers",
        "csidriver",
        "CSIDriver",
        CLUSTER,
        ALL_VERBS,
        [],
        [],
        []
    ),
    res!(
        "storage.k8s.io",
        "v1",
        "csinodes",
        "csinode",
        "CSINode",
        CLUSTER,
        ALL_VERBS,
        [],
        [],
        []
    ),
    res!(
        "storage.k8s.io",
        "v1",
        "csistoragecapacities",
        "csistoragecapacity",
        "CSIStorageCapacity",
        NS,
        ALL_VERBS,
        [],
        [],
        []
    ),
    res!(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "storageclass",
        "StorageClass",
        CLUSTER,
        ALL_VERBS,
        ["sc"],
        [],
        []
    ),
    res!(
        "storage.k8s.io",
        "v1",
        "volumeattachments",
        "volumeattachment",
        "VolumeAttachment",
        CLUSTER,
        ALL_VERBS,
        [],
        [],
        [STATUS]
    ),
    // admissionregistration.k8s.io/v1
    res!(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "mutatingwebhookconfiguration",
        "MutatingWebhookConfiguration",
        CLUSTER,
        ALL_VERBS,
        [],
        ["api-extensions"],
        []
    ),
    res!(
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicies",
        "validatingadmissionpolicy",
        "ValidatingAdmissionPolicy",
        CLUSTER,
        ALL_VERBS,
        [],
        ["api-extensions"],
        [STATUS]
    ),
    res!(
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicybindings",
        "validatingadmissionpolicybinding",
        "ValidatingAdmissionPolicyBinding",
        CLUSTER,
        ALL_VERBS,
        [],
        ["api-extensions"],
        []
    ),
    res!(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "validatingwebhookconfiguration",
        "ValidatingWebhookConfiguration",
        CLUSTER,
        ALL_VERBS,
        [],
        ["api-extensions"],
        []
    ),
    // apiextensions.k8s.io/v1
    res!(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        CLUSTER,
        ALL_VERBS,
        ["crd", "crds"],
        ["api-extensions"],
        [STATUS]
    ),
    // scheduling.k8s.io/v1
    res!(
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        "priorityclass",
        "PriorityClass",
        CLUSTER,
        ALL_VERBS,
        ["pc"],
        [],
        []
    ),
    // coordination.k8s.io/v1
    res!(
        "coordination.k8s.io",
        "v1",
        "leases",
        "lease",
        "Lease",
        NS,
        ALL_VERBS,
        [],
        [],
        []
    ),
    // node.k8s.io/v1
    res!(
        "node.k8s.io",
        "v1",
        "runtimeclasses",
        "runtimeclass",
        "RuntimeClass",
        CLUSTER,
        ALL_VERBS,
        [],
        [],
        []
    ),
    // discovery.k8s.io/v1
    res!(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "endpointslice",
        "EndpointSlice",
        NS,
        ALL_VERBS,
        [],
        [],
        []
    ),
];

/// The API groups in discovery order, each with its versions (preferred
/// first).
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out = Vec::new();
    for r in BUILTIN {
        add_group_version(&mut out, r);
    }
    out
}

/// Adds `r`'s group and version to a discovery-ordered list, once.
fn add_group_version(out: &mut Vec<(&'static str, Vec<&'static str>)>, r: &'static ResourceInfo) {
    match out.iter_mut().find(|(g, _)| *g == r.group) {
        Some((_, versions)) => {
            if !versions.contains(&r.version) {
                versions.push(r.version);
            }
        }
        None => out.push((r.group, vec![r.version])),
    }
}

/// The resource served at `group/version/resource`.
pub fn lookup(group: &str, version: &str, resource: &str) -> Option<&'static ResourceInfo> {
    // Every request looks its resource up, some more than once: an index,
    // not a walk through the table.
    type Index = std::collections::HashMap<(&'static str, &'static str, &'static str), usize>;
    static INDEX: std::sync::OnceLock<Index> = std::sync::OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut index = Index::with_capacity(BUILTIN.len());
        for (i, r) in BUILTIN.iter().enumerate() {
            index.entry((r.group, r.version, r.resource)).or_insert(i);
        }
        index
    });
    index.get(&(group, version, resource)).map(|&i| &BUILTIN[i])
}

/// The resources of one group/version, in table order.
pub fn in_group_version<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static ResourceInfo> + 'a {
    BUILTIN
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// Resources that are stored (as opposed to virtual review/binding
/// resources, which are answered and never written).
pub fn is_stored(r: &ResourceInfo) -> bool {
    r.verbs.contains(&"get")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_is_unique_per_group_version() {
        let mut seen = std::collections::HashSet::new();
        for r in BUILTIN {
            assert!(
                seen.insert((r.group, r.version, r.resource)),
                "duplicate {}",
                r.resource
            );
            assert_eq!(r.list_kind, format!("{}List", r.kind));
        }
    }

    #[test]
    fn core_group_comes_first_and_autoscaling_prefers_v2() {
        let groups = groups();
        assert_eq!(groups[0].0, "");
        let autoscaling = groups.iter().find(|(g, _)| *g == "autoscaling").unwrap();
        assert_eq!(autoscaling.1, vec!["v2", "v1"]);
    }

    #[test]
    fn messages_name_resources_the_upstream_way() {
        let cm = lookup("", "v1", "configmaps").unwrap();
        assert_eq!(cm.qualified_resource(), "configmaps");
        assert_eq!(cm.qualified_kind(), "ConfigMap");
        let d = lookup("apps", "v1", "deployments").unwrap();
        assert_eq!(d.qualified_resource(), "deployments.apps");
        assert_eq!(d.qualified_kind(), "Deployment.apps");
        assert_eq!(d.storage_prefix(), "/registry/apps/deployments/");
    }
}

/// The resources one server serves: the built-in table plus the custom
/// resources its CustomResourceDefinitions define, swapped as a whole when
/// a definition changes.
pub struct Catalog {
    custom: std::sync::RwLock<Arc<Vec<&'static ResourceInfo>>>,
}

use std::sync::Arc;

impl Default for Catalog {
    fn default() -> Self {
        Catalog {
            custom: std::sync::RwLock::new(Arc::new(Vec::new())),
        }
    }
}

impl Catalog {
    fn customs(&self) -> Arc<Vec<&'static ResourceInfo>> {
        self.custom
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the custom resources.
    pub fn set_custom(&self, list: Vec<&'static ResourceInfo>) {
        *self.custom.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(list);
    }

    pub fn lookup(
        &self,
        group: &str,
        version: &str,
        resource: &str,
    ) -> Option<&'static ResourceInfo> {
        lookup(group, version, resource)
            .or_else(|| {
                crate::metrics::RESOURCES
                    .iter()
                    .copied()
                    .find(|r| r.group == group && r.version == version && r.resource == resource)
            })
            .or_else(|| {
                self.customs()
                    .iter()
                    .copied()
                    .find(|r| r.group == group && r.version == version && r.resource == resource)
            })
    }

    /// Whether `r` is a custom resource of this catalog.
    pub fn is_custom(&self, r: &ResourceInfo) -> bool {
        lookup(r.group, r.version, r.resource).is_none()
    }

    /// Groups and versions (preferred first): built-in groups, then custom
    /// groups with their versions most stable and newest first (upstream's
    /// discovery controller sorts them so: v2, v1, v1beta1, v1alpha1).
    pub fn groups(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        let mut out = groups();
        let builtin = out.len();
        for r in crate::metrics::RESOURCES
            .iter()
            .chain(self.customs().iter())
        {
            add_group_version(&mut out, r);
        }
        for (_, versions) in out.iter_mut().skip(builtin) {
            versions.sort_by(|a, b| crate::crd::compare_kube_versions(b, a));
        }
        out
    }

    /// Every served resource once per storage (a resource served at
    /// several versions appears once, at its preferred version).
    pub fn all_stored(&self) -> Vec<&'static ResourceInfo> {
        let mut seen = std::collections::HashSet::new();
        BUILTIN
            .iter()
            .chain(self.customs().iter().copied())
            .filter(|r| is_stored(r) && seen.insert(r.storage_prefix()))
            .collect()
    }

    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<&'static ResourceInfo> {
        let mut out: Vec<&'static ResourceInfo> = in_group_version(group, version).collect();
        out.extend(
            crate::metrics::RESOURCES
                .iter()
                .chain(self.customs().iter())
                .copied()
                .filter(|r| r.group == group && r.version == version),
        );
        out
    }
}
