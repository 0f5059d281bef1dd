//! Shared helpers of the per-kind tests, and the tests of the smaller kinds.

use super::*;
use crate::defaults::apply_defaults;
use serde_json::json;

fn version_of(group: &str) -> &'static str {
    if group == "autoscaling" {
        "v2"
    } else {
        "v1"
    }
}

/// Defaults `obj` and validates it as a new object, as the API server does.
pub(super) fn create(group: &str, kind: &str, mut obj: Value) -> Vec<String> {
    let version = version_of(group);
    apply_defaults(group, version, kind, &mut obj);
    validate_create(group, version, kind, &obj)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Defaults both objects and validates `new` as an update of `old`.
pub(super) fn update(group: &str, kind: &str, mut new: Value, mut old: Value) -> Vec<String> {
    let version = version_of(group);
    apply_defaults(group, version, kind, &mut new);
    apply_defaults(group, version, kind, &mut old);
    validate_update(group, version, kind, &new, &old)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn unknown_kinds_are_not_validated() {
    assert!(create("example.com", "Widget", json!({"spec": {"anything": true}})).is_empty());
    assert!(update("example.com", "Widget", json!({}), json!({"x": 1})).is_empty());
}

#[test]
fn service_account_has_no_rules_beyond_metadata() {
    assert!(create("", "ServiceAccount", json!({"metadata": {"name": "sa"}})).is_empty());
}

// --------------------------------------------------------------- networking

#[test]
fn kubectl_create_ingress_is_valid() {
    let ing = json!({"metadata": {"name": "i"}, "spec": {"rules": [{"host": "foo.com", "http": {"paths": [
        {"path": "/bar", "pathType": "Exact", "backend": {"service": {"name": "svc", "port": {"number": 80}}}}
    ]}}]}});
    assert_eq!(
        create("networking.k8s.io", "Ingress", ing),
        Vec::<String>::new()
    );
}

#[test]
fn ingress_paths_need_a_path_type_and_a_backend() {
    let ing = json!({"spec": {"rules": [{"host": "foo.com", "http": {"paths": [
        {"path": "/bar", "backend": {"service": {"name": "svc", "port": {"number": 80}}}},
        {"path": "bar", "pathType": "Prefix", "backend": {"service": {"name": "svc"}}},
        {"path": "/x", "pathType": "Regex", "backend": {}}
    ]}}]}});
    assert_eq!(create("networking.k8s.io", "Ingress", ing), vec![
        "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
        "spec.rules[0].http.paths[1].path: Invalid value: \"bar\": must be an absolute path",
        "spec.rules[0].http.paths[1].backend: Required value: port name or number is required",
        "spec.rules[0].http.paths[2].pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"",
        "spec.rules[0].http.paths[2].backend: Invalid value: \"\": resource or service backend is required",
    ]);
}

#[test]
fn ingress_needs_rules_or_a_default_backend() {
    assert_eq!(create("networking.k8s.io", "Ingress", json!({"spec": {}})), vec![
        "spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified",
    ]);
    let ip_host = json!({"spec": {"rules": [{"host": "10.0.0.1"}]}});
    assert_eq!(
        create("networking.k8s.io", "Ingress", ip_host)[0],
        "spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address"
    );
}

#[test]
fn network_policy_ports_and_peers() {
    let np = json!({"spec": {"podSelector": {}, "ingress": [{
        "ports": [{"port": 70000}, {"port": "http", "endPort": 90}],
        "from": [{}, {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}, "podSelector": {}}]
    }], "policyTypes": ["Sideways"]}});
    assert_eq!(create("networking.k8s.io", "NetworkPolicy", np), vec![
        "spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
        "spec.ingress[0].ports[1].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
        "spec.ingress[0].from[0]: Required value: must specify a peer",
        "spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: \"192.168.0.0/16\": must be a strict subset of `cidr`",
        "spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer",
        "spec.policyTypes[0]: Unsupported value: \"Sideways\": supported values: \"Ingress\", \"Egress\"",
    ]);
}

// --------------------------------------------------------------------- rbac

#[test]
fn role_rules_need_verbs_groups_and_resources() {
    let role = json!({"rules": [{"apiGroups": [""], "resources": ["pods"]}, {"verbs": ["get"]}, {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]});
    assert_eq!(create("rbac.authorization.k8s.io", "Role", role), vec![
        "rules[0].verbs: Required value: verbs must contain at least one value",
        "rules[1].apiGroups: Required value: resource rules must supply at least one api group",
        "rules[1].resources: Required value: resource rules must supply at least one resource",
        "rules[2].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs",
    ]);
    let cr = json!({"rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]});
    assert!(create("rbac.authorization.k8s.io", "ClusterRole", cr).is_empty());
}

#[test]
fn role_binding_role_ref_is_required_and_immutable() {
    let rb = json!({"roleRef": {"kind": "Secret"}, "subjects": [{"kind": "Robot", "name": "r2"}, {"kind": "ServiceAccount", "name": "default"}]});
    assert_eq!(create("rbac.authorization.k8s.io", "RoleBinding", rb), vec![
        "roleRef.kind: Unsupported value: \"Secret\": supported values: \"Role\", \"ClusterRole\"",
        "roleRef.name: Required value",
        "subjects[0].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
    ]);
    let old = json!({"roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "User", "name": "bob"}]});
    let new = json!({"roleRef": {"kind": "ClusterRole", "name": "edit"}, "subjects": [{"kind": "User", "name": "bob"}]});
    assert_eq!(update("rbac.authorization.k8s.io", "RoleBinding", new, old), vec![
        "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef",
    ]);
}

#[test]
fn cluster_role_binding_service_accounts_need_a_namespace() {
    let crb = json!({"roleRef": {"kind": "Role", "name": "x"}, "subjects": [{"kind": "ServiceAccount", "name": "default"}]});
    assert_eq!(
        create("rbac.authorization.k8s.io", "ClusterRoleBinding", crb),
        vec![
            "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
            "subjects[0].namespace: Required value",
        ]
    );
}

// ------------------------------------------------------ policy, autoscaling

#[test]
fn pdb_min_available_and_max_unavailable_are_exclusive() {
    let pdb = json!({"spec": {"minAvailable": 1, "maxUnavailable": "150%", "selector": {"matchLabels": {"app": "x"}}}});
    let errs = create("policy", "PodDisruptionBudget", pdb);
    assert_eq!(errs.len(), 2);
    assert!(errs[0].starts_with("spec: Invalid value: "), "{}", errs[0]);
    assert!(errs[0].ends_with(": minAvailable and maxUnavailable cannot be both set"));
    assert_eq!(errs[1], "spec.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%");
    let bad = json!({"spec": {"minAvailable": "half"}});
    assert_eq!(create("policy", "PodDisruptionBudget", bad), vec![
        "spec.minAvailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"half\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
    ]);
}

#[test]
fn hpa_replicas_and_target() {
    let hpa = json!({"spec": {"scaleTargetRef": {"kind": "Deployment"}, "minReplicas": 3, "maxReplicas": 2,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}}}]}});
    assert_eq!(create("autoscaling", "HorizontalPodAutoscaler", hpa), vec![
        "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
        "spec.scaleTargetRef.name: Required value",
        "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
    ]);
    let zero = json!({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 0}});
    assert_eq!(
        create("autoscaling", "HorizontalPodAutoscaler", zero),
        vec![
            "spec.maxReplicas: Invalid value: 0: must be greater than 0",
            "spec.maxReplicas: Invalid value: 0: must be greater than or equal to `minReplicas`",
        ]
    );
}

// ------------------------------------------- storage, scheduling, leases, ...

#[test]
fn storage_class_needs_a_provisioner_and_keeps_it() {
    assert_eq!(
        create(
            "storage.k8s.io",
            "StorageClass",
            json!({"reclaimPolicy": "Recycle"})
        ),
        vec![
        "provisioner: Required value",
        "reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\"",
    ]
    );
    let old = json!({"provisioner": "a.io/x"});
    let new = json!({"provisioner": "b.io/x", "parameters": {"k": "v"}});
    assert_eq!(
        update("storage.k8s.io", "StorageClass", new, old),
        vec![
            "parameters: Forbidden: updates to parameters are forbidden.",
            "provisioner: Forbidden: updates to provisioner are forbidden.",
        ]
    );
}

#[test]
fn priority_class_values_are_bounded_and_immutable() {
    assert_eq!(
        create(
            "scheduling.k8s.io",
            "PriorityClass",
            json!({"metadata": {"name": "high"}, "value": 2000000000})
        ),
        vec!["value: Forbidden: maximum allowed value of a user defined priority is 1000000000",]
    );
    assert_eq!(create("scheduling.k8s.io", "PriorityClass", json!({"metadata": {"name": "system-foo"}, "value": 1})), vec![
        "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-foo is not a known system priority class",
    ]);
    assert_eq!(
        update(
            "scheduling.k8s.io",
            "PriorityClass",
            json!({"value": 2}),
            json!({"value": 1})
        ),
        vec!["value: Forbidden: may not be changed in an update.",]
    );
}

#[test]
fn lease_durations_are_positive() {
    assert_eq!(
        create(
            "coordination.k8s.io",
            "Lease",
            json!({"spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}})
        ),
        vec![
            "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
            "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
        ]
    );
}

#[test]
fn endpoint_slices_check_address_types() {
    let es = json!({"addressType": "IPv4", "endpoints": [{"addresses": ["fe80::1"]}, {"addresses": []}], "ports": [{"port": 80, "protocol": "ICMP"}]});
    assert_eq!(create("discovery.k8s.io", "EndpointSlice", es), vec![
        "endpoints[0].addresses[0]: Invalid value: \"fe80::1\": must be a valid IPv4 address",
        "endpoints[1].addresses: Required value: must contain at least 1 address",
        "ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
    ]);
    assert_eq!(
        update(
            "discovery.k8s.io",
            "EndpointSlice",
            json!({"addressType": "IPv6"}),
            json!({"addressType": "IPv4"})
        ),
        vec!["addressType: Invalid value: \"IPv6\": field is immutable",]
    );
}
