//! The Node authorizer (upstream `plugin/pkg/auth/authorizer/node`): a
//! kubelet, user `system:node:<name>` in group `system:nodes`, may read a
//! secret, configMap, persistentVolumeClaim or persistentVolume, and ask
//! for a service account token, only when a pod bound to its node refers
//! to it (upstream keeps a graph of those references; here the pods of the
//! object's namespace bound to the node are read from the registry's cache
//! when asked, which answers the same question). Its own Lease and CSINode
//! only; everything else a kubelet does is upstream's `NodeRules`.
//! Which Node a kubelet may change, and how, is the NodeRestriction
//! admission's business ([`crate::node_restriction`]).

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::authz::{rule_allows, Attributes};
use crate::registry::{ListOptions, Registry};
use crate::resources::lookup;
use crate::server::User;

pub const NODES_GROUP: &str = "system:nodes";
pub const NODE_USER_PREFIX: &str = "system:node:";
/// Where node heartbeat Leases live.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Upstream `NodeIdentity`: the node a user is, when it is in group
/// `system:nodes` and named `system:node:<name>` (`Some("")` for a member of
/// the group with another name: a node the server cannot place).
pub fn node_identity(user: &User) -> Option<&str> {
    if !user.groups.iter().any(|g| g == NODES_GROUP) {
        return None;
    }
    Some(user.name.strip_prefix(NODE_USER_PREFIX).unwrap_or(""))
}

/// Upstream `bootstrappolicy.NodeRules()` (v1.32, without the feature-gated
/// DRA and ClusterTrustBundle rules).
pub fn node_rules() -> Vec<Value> {
    let read = json!(["get", "list", "watch"]);
    vec![
        json!({ "apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"] }),
        json!({ "apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews", "localsubjectaccessreviews"], "verbs": ["create"] }),
        json!({ "apiGroups": [""], "resources": ["services"], "verbs": read }),
        json!({ "apiGroups": [""], "resources": ["nodes"], "verbs": ["create", "get", "list", "watch"] }),
        json!({ "apiGroups": [""], "resources": ["nodes/status"], "verbs": ["update", "patch"] }),
        json!({ "apiGroups": [""], "resources": ["nodes"], "verbs": ["update", "patch"] }),
        json!({ "apiGroups": [""], "resources": ["events"], "verbs": ["create", "update", "patch"] }),
        json!({ "apiGroups": [""], "resources": ["pods"], "verbs": read }),
        json!({ "apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete"] }),
        json!({ "apiGroups": [""], "resources": ["pods/status"], "verbs": ["update", "patch"] }),
        json!({ "apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"] }),
        json!({ "apiGroups": [""], "resources": ["secrets", "configmaps"], "verbs": read }),
        json!({ "apiGroups": [""], "resources": ["persistentvolumeclaims", "persistentvolumes"], "verbs": ["get"] }),
        json!({ "apiGroups": [""], "resources": ["endpoints"], "verbs": ["get"] }),
        json!({ "apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"], "verbs": ["create", "get", "list", "watch"] }),
        json!({ "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update", "patch", "delete"] }),
        json!({ "apiGroups": ["storage.k8s.io"], "resources": ["volumeattachments"], "verbs": ["get"] }),
        json!({ "apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"] }),
        json!({ "apiGroups": [""], "resources": ["persistentvolumeclaims/status"], "verbs": ["get", "update", "patch"] }),
        json!({ "apiGroups": ["storage.k8s.io"], "resources": ["csidrivers"], "verbs": read }),
        json!({ "apiGroups": ["storage.k8s.io"], "resources": ["csinodes"], "verbs": ["get", "create", "update", "patch", "delete"] }),
        json!({ "apiGroups": ["node.k8s.io"], "resources": ["runtimeclasses"], "verbs": read }),
    ]
}

/// The Node authorizer's answer: allowed, or no opinion (other authorizers
/// decide) with the reason upstream gives.
#[derive(Debug, PartialEq)]
pub enum Decision {
    Allow,
    NoOpinion(String),
}

fn no(reason: impl Into<String>) -> Decision {
    Decision::NoOpinion(reason.into())
}

/// What a pod refers to, as upstream's graph populator records it
/// (`AddPod`): secrets (volumes, projected sources, env, envFrom,
/// imagePullSecrets), configMaps, claims (including the claim of an
/// ephemeral volume, `<pod>-<volume>`) and its service account.
#[derive(Debug, Default, PartialEq)]
pub struct References {
    pub secrets: BTreeSet<String>,
    pub config_maps: BTreeSet<String>,
    pub claims: BTreeSet<String>,
    pub service_account: String,
}

pub fn references(pod: &Value) -> References {
    let mut r = References::default();
    let spec = &pod["spec"];
    let add = |set: &mut BTreeSet<String>, v: &Value| {
        if let Some(name) = v.as_str().filter(|n| !n.is_empty()) {
            set.insert(name.to_string());
        }
    };
    for s in spec["imagePullSecrets"].as_array().into_iter().flatten() {
        add(&mut r.secrets, &s["name"]);
    }
    let pod_name = pod.pointer("/metadata/name").and_then(Value::as_str);
    for v in spec["volumes"].as_array().into_iter().flatten() {
        add(&mut r.secrets, &v["secret"]["secretName"]);
        add(&mut r.config_maps, &v["configMap"]["name"]);
        add(&mut r.claims, &v["persistentVolumeClaim"]["claimName"]);
        if v.get("ephemeral").is_some_and(|e| !e.is_null()) {
            if let (Some(pod), Some(vol)) = (pod_name, v["name"].as_str()) {
                r.claims.insert(format!("{pod}-{vol}"));
            }
        }
        for source in v["projected"]["sources"].as_array().into_iter().flatten() {
            add(&mut r.secrets, &source["secret"]["name"]);
            add(&mut r.config_maps, &source["configMap"]["name"]);
        }
        // Volume plugins that name a secret for their credentials.
        for plugin in [
            "azureFile",
            "cephfs",
            "cinder",
            "flexVolume",
            "iscsi",
            "rbd",
            "scaleIO",
            "storageos",
            "csi",
        ] {
            let p = &v[plugin];
            add(&mut r.secrets, &p["secretRef"]["name"]);
            add(&mut r.secrets, &p["nodePublishSecretRef"]["name"]);
        }
        add(&mut r.secrets, &v["azureFile"]["secretName"]);
    }
    for kind in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec[kind].as_array().into_iter().flatten() {
            for from in c["envFrom"].as_array().into_iter().flatten() {
                add(&mut r.secrets, &from["secretRef"]["name"]);
                add(&mut r.config_maps, &from["configMapRef"]["name"]);
            }
            for e in c["env"].as_array().into_iter().flatten() {
                add(&mut r.secrets, &e["valueFrom"]["secretKeyRef"]["name"]);
                add(
                    &mut r.config_maps,
                    &e["valueFrom"]["configMapKeyRef"]["name"],
                );
            }
        }
    }
    r.service_account = spec["serviceAccountName"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_string();
    r
}

/// The kinds of object a node reaches through its pods.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// A pod itself: bound to the node.
    Pod,
    Secret,
    ConfigMap,
    Claim,
    ServiceAccount,
}

impl Kind {
    fn referred_by(self, refs: &References, name: &str) -> bool {
        match self {
            Kind::Secret => refs.secrets.contains(name),
            Kind::ConfigMap => refs.config_maps.contains(name),
            Kind::Claim => refs.claims.contains(name),
            Kind::ServiceAccount => refs.service_account == name,
            Kind::Pod => false,
        }
    }
}

/// Whether a pod bound to `node` among `pods` refers to the object.
pub fn reached_from(node: &str, pods: &[Value], kind: Kind, name: &str) -> bool {
    pods.iter()
        .filter(|p| p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node))
        .any(|p| kind.referred_by(&references(p), name))
}

/// The requirements of a field selector: `(field, operator, value)`.
fn requirements(selector: &str) -> impl Iterator<Item = (&str, &str, &str)> {
    selector.split(',').filter_map(|r| {
        let r = r.trim();
        for op in ["!=", "==", "="] {
            if let Some((field, value)) = r.split_once(op) {
                return Some((field.trim(), op, value.trim()));
            }
        }
        None
    })
}

/// The value a field selector requires `field` to equal (`=` or `==`).
pub fn field_equals<'s>(selector: &'s str, field: &str) -> Option<&'s str> {
    requirements(selector)
        .find(|(f, op, _)| *f == field && *op != "!=")
        .map(|(_, _, v)| v)
}

/// Upstream `authorizeNode` (AuthorizeNodeWithSelectors, on in v1.32): a
/// node reads only its own Node; which Node it writes is NodeRestriction's
/// business.
fn authorize_node(node: &str, a: &Attributes) -> Decision {
    match (a.subresource.as_str(), a.verb.as_str()) {
        ("", "create" | "update" | "patch") | ("status", "update" | "patch") => Decision::Allow,
        ("", "get" | "list" | "watch") if a.name == node => Decision::Allow,
        ("", "get" | "list" | "watch") if a.name.is_empty() => no(format!(
            "node '{node}' cannot read all nodes, only its own Node object"
        )),
        ("", "get" | "list" | "watch") => no(format!(
            "node '{node}' cannot read '{}', only its own Node object",
            a.name
        )),
        _ => no(""),
    }
}

/// Upstream `authorizePod`: pods bound to the node, read one by one or
/// listed with the `spec.nodeName` field selector.
fn authorize_pod(node: &str, a: &Attributes) -> Result<Option<Kind>, Decision> {
    match (a.subresource.as_str(), a.verb.as_str()) {
        ("", "get") => Ok(Some(Kind::Pod)),
        ("", "list" | "watch") => {
            let scoped = a.field_selector.as_deref().is_some_and(|s| {
                requirements(s).any(|(f, op, v)| f == "spec.nodeName" && op == "=" && v == node)
            });
            if scoped {
                Err(Decision::Allow)
            } else if !a.name.is_empty() {
                Ok(Some(Kind::Pod))
            } else {
                Err(no(
                    "can only list/watch pods with spec.nodeName field selector",
                ))
            }
        }
        ("", "create" | "delete") | ("status", "update" | "patch") | ("eviction", "create") => {
            Err(Decision::Allow)
        }
        _ => Err(no("")),
    }
}

/// The checks that need no object: which verbs and subresources a node
/// may use on each kind it reaches through its pods, its Lease and its
/// CSINode. `Err` is the decision; `Ok(kind)` asks for the graph.
pub fn precheck(node: &str, a: &Attributes) -> Result<Option<Kind>, Decision> {
    let read_namespaced = |kind| match a.verb.as_str() {
        "get" | "list" | "watch" if !a.subresource.is_empty() => Err(no("cannot read subresource")),
        "get" | "list" | "watch" if a.namespace.is_empty() => {
            Err(no("can only read namespaced object of this type"))
        }
        "get" | "list" | "watch" => Ok(Some(kind)),
        _ => Err(no("can only read resources of this type")),
    };
    let get_only = |kind| {
        if a.verb != "get" {
            Err(no("can only get individual resources of this type"))
        } else if !a.subresource.is_empty() {
            Err(no("cannot get subresource"))
        } else {
            Ok(Some(kind))
        }
    };
    let checked = match (a.api_group.as_str(), a.resource.as_str()) {
        ("", "secrets") => read_namespaced(Kind::Secret),
        ("", "configmaps") => read_namespaced(Kind::ConfigMap),
        ("", "persistentvolumeclaims") if a.subresource == "status" => {
            if matches!(a.verb.as_str(), "update" | "patch") {
                Ok(Some(Kind::Claim))
            } else {
                Err(no("can only get/update/patch this type"))
            }
        }
        ("", "persistentvolumeclaims") => get_only(Kind::Claim),
        // A volume is reached through a claim: the driver follows it.
        ("", "persistentvolumes") => get_only(Kind::Claim),
        ("", "serviceaccounts") => {
            if a.verb != "create" || a.name.is_empty() {
                Err(no("can only create tokens for individual service accounts"))
            } else if a.subresource != "token" {
                Err(no("can only create token subresource of serviceaccount"))
            } else {
                Ok(Some(Kind::ServiceAccount))
            }
        }
        ("coordination.k8s.io", "leases") => {
            if !matches!(
                a.verb.as_str(),
                "get" | "create" | "update" | "patch" | "delete"
            ) {
                Err(no(
                    "can only get, create, update, patch, or delete a node lease",
                ))
            } else if a.namespace != NODE_LEASE_NAMESPACE {
                Err(no(format!(
                    "can only access leases in the \"{NODE_LEASE_NAMESPACE}\" system namespace"
                )))
            } else if a.verb != "create" && a.name != node {
                Err(no(
                    "can only access node lease with the same name as the requesting node",
                ))
            } else {
                Err(Decision::Allow)
            }
        }
        ("", "nodes") => Err(authorize_node(node, a)),
        ("", "pods") => authorize_pod(node, a),
        ("storage.k8s.io", "csinodes") => {
            if !matches!(
                a.verb.as_str(),
                "get" | "create" | "update" | "patch" | "delete"
            ) {
                Err(no(
                    "can only get, create, update, patch, or delete a CSINode",
                ))
            } else if a.verb != "create" && a.name != node {
                Err(no(
                    "can only access CSINode with the same name as the requesting node",
                ))
            } else {
                Err(Decision::Allow)
            }
        }
        _ => Ok(None),
    };
    match checked {
        Ok(Some(_)) if a.name.is_empty() => Err(no("No Object name found")),
        other => other,
    }
}

/// The Node authorizer's decision for a request of `user` (no opinion,
/// without a reason, when the user is not a node).
pub async fn authorize(reg: &Registry, user: &User, a: &Attributes) -> Decision {
    let Some(node) = node_identity(user) else {
        return no("");
    };
    if node.is_empty() {
        return no(format!("unknown node for user {:?}", user.name));
    }
    if a.path.is_some() {
        return static_rules(a);
    }
    let kind = match precheck(node, a) {
        Err(decision) => return decision,
        Ok(None) => return static_rules(a),
        Ok(Some(kind)) => kind,
    };
    let unrelated = || {
        no(format!(
            "no relationship found between node '{node}' and this object"
        ))
    };
    let pods_of = |ns: String| async move {
        let Some(pods) = lookup("", "v1", "pods") else {
            return Vec::new();
        };
        reg.list(pods, Some(&ns), &ListOptions::default(), &|p| {
            p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node)
        })
        .await
        .ok()
        .and_then(|l| l["items"].as_array().cloned())
        .unwrap_or_default()
    };
    let reached = if kind == Kind::Pod {
        let pod = match lookup("", "v1", "pods") {
            Some(pods) => reg.get(pods, Some(&a.namespace), &a.name).await.ok(),
            None => None,
        };
        pod.and_then(|p| {
            p.pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .is_some_and(|n| n == node)
    } else if a.resource == "persistentvolumes" {
        // Claims bound to the volume, used by a pod on the node.
        let Some(claims) = lookup("", "v1", "persistentvolumeclaims") else {
            return unrelated();
        };
        let bound = reg
            .list(claims, None, &ListOptions::default(), &|c| {
                c.pointer("/spec/volumeName").and_then(Value::as_str) == Some(a.name.as_str())
            })
            .await
            .ok()
            .and_then(|l| l["items"].as_array().cloned())
            .unwrap_or_default();
        let mut found = false;
        for claim in bound {
            let ns = claim
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let name = claim
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if reached_from(node, &pods_of(ns).await, Kind::Claim, &name) {
                found = true;
                break;
            }
        }
        found
    } else {
        reached_from(node, &pods_of(a.namespace.clone()).await, kind, &a.name)
    };
    if reached {
        Decision::Allow
    } else {
        unrelated()
    }
}

fn static_rules(a: &Attributes) -> Decision {
    if node_rules().iter().any(|r| rule_allows(r, a)) {
        Decision::Allow
    } else {
        no("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(verb: &str, resource: &str, sub: &str, ns: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            api_group: if resource == "leases" {
                "coordination.k8s.io".into()
            } else {
                String::new()
            },
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
            path: None,
            field_selector: None,
        }
    }

    fn pod(node: &str) -> Value {
        json!({
            "metadata": { "name": "web", "namespace": "default" },
            "spec": {
                "nodeName": node,
                "serviceAccountName": "builder",
                "imagePullSecrets": [{ "name": "registry" }],
                "volumes": [
                    { "name": "s", "secret": { "secretName": "tls" } },
                    { "name": "c", "configMap": { "name": "settings" } },
                    { "name": "d", "persistentVolumeClaim": { "claimName": "data" } },
                    { "name": "scratch", "ephemeral": { "volumeClaimTemplate": {} } },
                    { "name": "p", "projected": { "sources": [
                        { "secret": { "name": "projected-secret" } },
                        { "configMap": { "name": "projected-cm" } },
                    ] } },
                ],
                "initContainers": [{ "name": "i", "envFrom": [{ "secretRef": { "name": "init-env" } }] }],
                "containers": [{
                    "name": "c",
                    "env": [
                        { "name": "A", "valueFrom": { "secretKeyRef": { "name": "password", "key": "k" } } },
                        { "name": "B", "valueFrom": { "configMapKeyRef": { "name": "flags", "key": "k" } } },
                    ],
                    "envFrom": [{ "configMapRef": { "name": "all-flags" } }],
                }],
            },
        })
    }

    #[test]
    fn a_pod_refers_to_its_secrets_configmaps_claims_and_service_account() {
        let r = references(&pod("n1"));
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            r.secrets,
            set(&[
                "init-env",
                "password",
                "projected-secret",
                "registry",
                "tls"
            ])
        );
        assert_eq!(
            r.config_maps,
            set(&["all-flags", "flags", "projected-cm", "settings"])
        );
        assert_eq!(r.claims, set(&["data", "web-scratch"]));
        assert_eq!(r.service_account, "builder");
        assert_eq!(
            references(&json!({ "spec": {} })).service_account,
            "default"
        );
    }

    #[test]
    fn only_pods_bound_to_the_node_reach_an_object() {
        let pods = [pod("n1"), pod("n2")];
        assert!(reached_from("n1", &pods, Kind::Secret, "tls"));
        assert!(reached_from("n2", &pods, Kind::ConfigMap, "flags"));
        assert!(!reached_from("n1", &pods, Kind::Secret, "settings"));
        assert!(!reached_from("n3", &pods, Kind::Secret, "tls"));
        assert!(!reached_from("n1", &[], Kind::Claim, "data"));
        assert!(reached_from("n1", &pods, Kind::ServiceAccount, "builder"));
        assert!(!reached_from("n1", &pods, Kind::ServiceAccount, "default"));
    }

    #[test]
    fn verbs_and_scopes_are_checked_before_the_graph() {
        let deny = |a: &Attributes| match precheck("n1", a) {
            Err(Decision::NoOpinion(r)) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            precheck("n1", &attrs("get", "secrets", "", "default", "tls")),
            Ok(Some(Kind::Secret))
        );
        assert_eq!(
            deny(&attrs("list", "secrets", "", "default", "")),
            "No Object name found"
        );
        assert_eq!(
            deny(&attrs("delete", "secrets", "", "default", "tls")),
            "can only read resources of this type"
        );
        assert_eq!(
            deny(&attrs("list", "configmaps", "", "", "x")),
            "can only read namespaced object of this type"
        );
        assert_eq!(
            deny(&attrs("list", "persistentvolumeclaims", "", "default", "x")),
            "can only get individual resources of this type"
        );
        assert_eq!(
            deny(&attrs("create", "serviceaccounts", "", "default", "x")),
            "can only create token subresource of serviceaccount"
        );
        assert_eq!(
            precheck(
                "n1",
                &attrs("update", "leases", "", NODE_LEASE_NAMESPACE, "n1")
            ),
            Err(Decision::Allow)
        );
        assert_eq!(
            deny(&attrs("update", "leases", "", NODE_LEASE_NAMESPACE, "n2")),
            "can only access node lease with the same name as the requesting node"
        );
        assert_eq!(
            deny(&attrs("get", "leases", "", "default", "n1")),
            "can only access leases in the \"kube-node-lease\" system namespace"
        );
        assert_eq!(
            precheck("n1", &attrs("create", "events", "", "default", "")),
            Ok(None)
        );
    }

    #[test]
    fn a_node_reads_its_own_node_and_lists_only_its_pods() {
        let decide = |a: &Attributes| match precheck("n1", a) {
            Err(d) => d,
            Ok(kind) => panic!("{kind:?}"),
        };
        assert_eq!(
            decide(&attrs("get", "nodes", "", "", "n1")),
            Decision::Allow
        );
        assert_eq!(
            decide(&attrs("get", "nodes", "", "", "n2")),
            no("node 'n1' cannot read 'n2', only its own Node object")
        );
        assert_eq!(
            decide(&attrs("list", "nodes", "", "", "")),
            no("node 'n1' cannot read all nodes, only its own Node object")
        );
        assert_eq!(
            decide(&attrs("patch", "nodes", "status", "", "n2")),
            Decision::Allow
        );
        assert_eq!(decide(&attrs("delete", "nodes", "", "", "n1")), no(""));
        let mut watch = attrs("watch", "pods", "", "", "");
        assert_eq!(
            decide(&watch),
            no("can only list/watch pods with spec.nodeName field selector")
        );
        watch.field_selector = Some("spec.nodeName=n1".into());
        assert_eq!(decide(&watch), Decision::Allow);
        watch.field_selector = Some("spec.nodeName=n2".into());
        assert!(decide(&watch) != Decision::Allow);
        assert_eq!(
            precheck("n1", &attrs("get", "pods", "", "default", "web")),
            Ok(Some(Kind::Pod))
        );
        assert_eq!(
            decide(&attrs("update", "pods", "", "default", "web")),
            no("")
        );
        assert_eq!(
            field_equals("spec.nodeName=n1,metadata.name==web", "metadata.name"),
            Some("web")
        );
        assert_eq!(field_equals("metadata.name!=web", "metadata.name"), None);
    }

    #[test]
    fn node_rules_are_what_a_kubelet_does_and_no_more() {
        let allowed = |verb, resource, sub| {
            static_rules(&attrs(verb, resource, sub, "", "x")) == Decision::Allow
        };
        assert!(allowed("patch", "nodes", "status"));
        assert!(allowed("create", "pods", ""));
        assert!(allowed("update", "pods", "status"));
        assert!(allowed("create", "events", ""));
        assert!(!allowed("update", "pods", ""));
        assert!(!allowed("delete", "nodes", ""));
        assert!(!allowed("create", "deployments", ""));
        assert!(!allowed("get", "pods", "exec"));
    }

    #[test]
    fn nodes_are_members_of_system_nodes_named_system_node() {
        let user = |name: &str, groups: &[&str]| User {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        assert_eq!(
            node_identity(&user("system:node:n1", &[NODES_GROUP])),
            Some("n1")
        );
        assert_eq!(node_identity(&user("bob", &[NODES_GROUP])), Some(""));
        assert_eq!(
            node_identity(&user("system:node:n1", &["system:masters"])),
            None
        );
    }
}
