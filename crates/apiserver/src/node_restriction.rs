//! The NodeRestriction admission (upstream
//! `plugin/pkg/admission/noderestriction`): what the Node authorizer lets a
//! kubelet write, narrowed to what is its own. A node creates and updates
//! only its own Node, without touching its taints or the labels kubelets
//! may not set; creates only mirror pods bound to itself; updates the
//! status of, evicts and deletes only pods bound to it; writes only its own
//! Lease in `kube-node-lease`; asks tokens only for pods bound to it.
//!
//! The rules ([`admit`]) are pure over the request and the objects it
//! touches; [`check`] reads those objects. It runs after authorization and
//! before the registry, for writes of users the Node authorizer knows as
//! nodes, with upstream's messages.

use serde_json::Value;

use crate::registry::{apply_patch, PatchKind, Registry};
use crate::request::{ResourceRequest, Verb};
use crate::resources::lookup;
use crate::server::User;
use crate::status::{ApiError, ApiResult};

/// The mirror pod annotation (upstream `MirrorPodAnnotationKey`).
pub const CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";
const NODE_RESTRICTION_LABELS: &str = "node-restriction.kubernetes.io";

/// Labels a kubelet sets on its Node (upstream `kubeletapis.IsKubeletLabel`).
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];
const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];

/// One write of a node, with the objects it touches.
#[derive(Debug, Default)]
pub struct Write<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    /// The object as it will be written (create, update, patch).
    pub new: Option<&'a Value>,
    /// The object as it is (update, patch, delete; the pod of an
    /// eviction or of a token request).
    pub old: Option<&'a Value>,
    /// The requesting Node's uid, for a mirror pod's owner reference.
    pub node_uid: Option<&'a str>,
}

fn label_namespace(key: &str) -> &str {
    key.split_once('/').map_or("", |(ns, _)| ns)
}

fn in_namespace(ns: &str, domain: &str) -> bool {
    ns == domain || ns.strip_suffix(domain).is_some_and(|p| p.ends_with('.'))
}

/// Upstream `IsKubeletLabel`.
pub fn is_kubelet_label(key: &str) -> bool {
    KUBELET_LABELS.contains(&key)
        || KUBELET_LABEL_NAMESPACES
            .iter()
            .any(|d| in_namespace(label_namespace(key), d))
}

/// Upstream `getForbiddenLabels`: the changed labels a node may not set,
/// sorted.
pub fn forbidden_labels(new: &Value, old: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let labels = |v: &Value| {
        v.pointer("/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(|| empty.clone())
    };
    let (a, b) = (labels(new), labels(old));
    let mut changed: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(v))
        .chain(b.iter().filter(|(k, v)| a.get(*k) != Some(v)))
        .map(|(k, _)| k.clone())
        .collect();
    changed.sort();
    changed.dedup();
    changed
        .into_iter()
        .filter(|k| {
            let ns = label_namespace(k);
            let kubernetes = in_namespace(ns, "kubernetes.io") || in_namespace(ns, "k8s.io");
            in_namespace(ns, NODE_RESTRICTION_LABELS) || (kubernetes && !is_kubelet_label(k))
        })
        .collect()
}

fn str_at<'v>(v: Option<&'v Value>, pointer: &str) -> &'v str {
    v.and_then(|v| v.pointer(pointer))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The NodeRestriction decision for a write of node `node`: `Err` holds
/// upstream's reason (the caller words it as a Forbidden of the object).
pub fn admit(node: &str, w: &Write) -> Result<(), String> {
    match (w.group, w.resource) {
        ("", "pods") => admit_pod(node, w),
        ("", "nodes") => admit_node(node, w),
        ("", "persistentvolumeclaims") if w.subresource == "status" => {
            let strip = |v: Option<&Value>| {
                let mut v = v.cloned().unwrap_or(Value::Null);
                if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                    m.remove("managedFields");
                }
                if let Some(s) = v.get_mut("status").and_then(Value::as_object_mut) {
                    s.remove("capacity");
                    s.remove("conditions");
                }
                v
            };
            if strip(w.new) != strip(w.old) {
                return Err(format!("node {node:?} is not allowed to update fields other than status.capacity and status.conditions"));
            }
            Ok(())
        }
        ("", "persistentvolumeclaims") => Err("may only update PVC status".into()),
        ("", "serviceaccounts") if w.verb == "create" && w.subresource == "token" => {
            admit_token_request(node, w)
        }
        ("coordination.k8s.io", "leases") => {
            if w.namespace != crate::node_authz::NODE_LEASE_NAMESPACE {
                return Err(format!(
                    "can only access leases in the {:?} system namespace",
                    crate::node_authz::NODE_LEASE_NAMESPACE
                ));
            }
            let name = if w.verb == "create" {
                str_at(w.new, "/metadata/name")
            } else {
                w.name
            };
            if name != node {
                return Err(
                    "can only access node lease with the same name as the requesting node".into(),
                );
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn operation(verb: &str) -> &'static str {
    match verb {
        "create" => "CREATE",
        "delete" | "deletecollection" => "DELETE",
        _ => "UPDATE",
    }
}

fn admit_pod(node: &str, w: &Write) -> Result<(), String> {
    let bound_here = str_at(w.old, "/spec/nodeName") == node;
    match (w.subresource, w.verb) {
        ("", "create") => admit_mirror_pod(node, w.new.unwrap_or(&Value::Null), w.node_uid),
        ("", "delete") if bound_here => Ok(()),
        ("", "delete") => Err(format!(
            "node {node:?} can only delete pods with spec.nodeName set to itself"
        )),
        ("", verb) => Err(format!(
            "unexpected operation {:?}, node {node:?} can only create and delete mirror pods",
            operation(verb)
        )),
        ("status", "update" | "patch") => {
            if !bound_here {
                return Err(format!("node {node:?} can only update pod status for pods with spec.nodeName set to itself"));
            }
            let labels = |v: Option<&Value>| {
                v.and_then(|v| v.pointer("/metadata/labels"))
                    .filter(|l| !l.as_object().is_some_and(|m| m.is_empty()))
                    .cloned()
            };
            if w.new.is_some() && labels(w.new) != labels(w.old) {
                return Err(format!(
                    "node {node:?} cannot update labels through pod status"
                ));
            }
            Ok(())
        }
        ("status", verb) => Err(format!("unexpected operation {:?}", operation(verb))),
        ("eviction", "create") if bound_here => Ok(()),
        ("eviction", "create") => Err(format!(
            "node {node} can only evict pods with spec.nodeName set to itself"
        )),
        ("eviction", verb) => Err(format!("unexpected operation {}", operation(verb))),
        (sub, _) => Err(format!(
            "unexpected pod subresource {sub:?}, only 'status' and 'eviction' are allowed"
        )),
    }
}

/// Upstream `admitPodCreate`: a mirror pod of this node, controlled by it,
/// that refers to no other object.
fn admit_mirror_pod(node: &str, pod: &Value, node_uid: Option<&str>) -> Result<(), String> {
    if pod
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(CONFIG_MIRROR))
        .is_none()
    {
        return Err(format!(
            "pod does not have {CONFIG_MIRROR:?} annotation, node {node:?} can only create mirror pods"
        ));
    }
    if str_at(Some(pod), "/spec/nodeName") != node {
        return Err(format!(
            "node {node:?} can only create pods with spec.nodeName set to itself"
        ));
    }
    let owners = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match owners.as_slice() {
        [] => {
            return Err(format!(
                "node {node:?} can only create pods with an owner reference set to itself"
            ))
        }
        [owner] => {
            if owner["apiVersion"] != "v1" || owner["kind"] != "Node" || owner["name"] != node {
                return Err(format!(
                    "node {node:?} can only create pods with an owner reference set to itself"
                ));
            }
            if owner["controller"] != true {
                return Err(format!("node {node:?} can only create pods with a controller owner reference set to itself"));
            }
            if owner["blockOwnerDeletion"] == true {
                return Err(format!(
                    "node {node:?} must not set blockOwnerDeletion on an owner reference"
                ));
            }
            let uid = owner["uid"].as_str().unwrap_or("");
            if let Some(actual) = node_uid.filter(|u| *u != uid) {
                return Err(format!(
                    "node {node} UID mismatch: expected {uid} got {actual}"
                ));
            }
        }
        _ => {
            return Err(format!(
                "node {node:?} can only create pods with a single owner reference set to itself"
            ))
        }
    }
    let refs = crate::node_authz::references(pod);
    if pod["spec"]["serviceAccountName"]
        .as_str()
        .is_some_and(|s| !s.is_empty())
    {
        return Err(format!(
            "node {node:?} can not create pods that reference a service account"
        ));
    }
    if !refs.secrets.is_empty() {
        return Err(format!(
            "node {node:?} can not create pods that reference secrets"
        ));
    }
    if !refs.config_maps.is_empty() {
        return Err(format!(
            "node {node:?} can not create pods that reference configmaps"
        ));
    }
    let volumes = pod["spec"]["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if volumes.iter().any(|v| {
        v["projected"]["sources"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s.get("clusterTrustBundle").is_some()))
    }) {
        return Err(format!(
            "node {node:?} can not create pods that reference clustertrustbundles"
        ));
    }
    if volumes
        .iter()
        .any(|v| v.get("persistentVolumeClaim").is_some())
    {
        return Err(format!(
            "node {node:?} can not create pods that reference persistentvolumeclaims"
        ));
    }
    Ok(())
}

/// Upstream `admitNode`: its own Node only; at registration no labels
/// kubelets may not set; afterwards neither its taints nor such labels.
fn admit_node(node: &str, w: &Write) -> Result<(), String> {
    let requested = if w.verb == "create" {
        str_at(w.new, "/metadata/name")
    } else {
        w.name
    };
    if requested != node {
        return Err(format!(
            "node {node:?} is not allowed to modify node {requested:?}"
        ));
    }
    let Some(new) = w.new else {
        return Ok(());
    };
    if w.verb == "create" {
        if new
            .pointer("/spec/configSource")
            .is_some_and(|c| !c.is_null())
        {
            return Err(format!(
                "node {node:?} is not allowed to create pods with a non-nil configSource"
            ));
        }
        let forbidden = forbidden_labels(new, &Value::Null);
        if !forbidden.is_empty() {
            return Err(format!(
                "node {node:?} is not allowed to set the following labels: {}",
                forbidden.join(", ")
            ));
        }
        return Ok(());
    }
    let old = w.old.unwrap_or(&Value::Null);
    // A status write keeps the spec and labels (the registry takes only the
    // status from it).
    if w.subresource == "status" {
        return Ok(());
    }
    let config = |v: &Value| {
        v.pointer("/spec/configSource")
            .filter(|c| !c.is_null())
            .cloned()
    };
    if config(new).is_some() && config(new) != config(old) {
        return Err(format!(
            "node {node:?} is not allowed to update configSource to a new non-nil configSource"
        ));
    }
    let taints = |v: &Value| {
        v.pointer("/spec/taints")
            .filter(|t| !t.is_null() && !t.as_array().is_some_and(|a| a.is_empty()))
            .cloned()
    };
    if taints(new) != taints(old) {
        return Err(format!("node {node:?} is not allowed to modify taints"));
    }
    let forbidden = forbidden_labels(new, old);
    if !forbidden.is_empty() {
        return Err(format!(
            "is not allowed to modify labels: {}",
            forbidden.join(", ")
        ));
    }
    Ok(())
}

/// Upstream `admitServiceAccount`: a token bound to a pod on this node
/// (`w.old` is that pod, when it exists).
fn admit_token_request(node: &str, w: &Write) -> Result<(), String> {
    let r = w
        .new
        .and_then(|tr| tr.pointer("/spec/boundObjectRef"))
        .filter(|r| !r.is_null());
    let Some(r) = r.filter(|r| {
        r["apiVersion"] == "v1"
            && r["kind"] == "Pod"
            && r["name"].as_str().is_some_and(|n| !n.is_empty())
    }) else {
        return Err("node requested token not bound to a pod".into());
    };
    let uid = r["uid"].as_str().unwrap_or("");
    if uid.is_empty() {
        return Err("node requested token with a pod binding without a uid".into());
    }
    if str_at(w.old, "/metadata/uid") != uid {
        return Err(format!("the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"));
    }
    if str_at(w.old, "/spec/nodeName") != node {
        return Err("node requested token bound to a pod scheduled on a different node".into());
    }
    Ok(())
}

/// The body of a write, as the server decoded it.
pub enum Body {
    None,
    Object(Value),
    Patch(PatchKind, Value),
}

/// Whether the request is a write NodeRestriction judges.
pub fn applies(rr: &ResourceRequest) -> bool {
    matches!(
        rr.verb,
        Verb::Create | Verb::Update | Verb::Patch | Verb::Delete | Verb::DeleteCollection
    ) && matches!(
        (rr.info.group, rr.info.resource),
        (
            "",
            "pods" | "nodes" | "persistentvolumeclaims" | "serviceaccounts"
        ) | ("coordination.k8s.io", "leases")
    )
}

/// Runs [`admit`] for a write of `user` when it is a node, reading the
/// objects it touches. A missing object is left to the registry's own
/// NotFound.
pub async fn check(reg: &Registry, user: &User, rr: &ResourceRequest, body: Body) -> ApiResult<()> {
    let Some(node) = crate::node_authz::node_identity(user) else {
        return Ok(());
    };
    if !applies(rr) {
        return Ok(());
    }
    if node.is_empty() {
        return Err(ApiError::forbidden(format!(
            "{} is forbidden: could not determine node from user {:?}",
            rr.info.qualified_resource(),
            user.name
        )));
    }
    let (group, resource) = (rr.info.group, rr.info.resource);
    let subresource = rr.subresource.as_deref().unwrap_or("");
    let namespace = rr.namespace.as_deref().unwrap_or("");
    let name = rr.name.as_deref().unwrap_or("");
    let get = |r: &'static str, ns: Option<String>, name: String| async move {
        let info = lookup("", "v1", r)?;
        reg.get(info, ns.as_deref(), &name).await.ok()
    };
    // The object the write starts from: the pod of a token request, else
    // the target itself.
    let old = match (resource, rr.verb) {
        (_, Verb::Create) if resource == "serviceaccounts" => {
            let pod = match &body {
                Body::Object(tr) => str_at(Some(tr), "/spec/boundObjectRef/name").to_string(),
                _ => String::new(),
            };
            if pod.is_empty() {
                None
            } else {
                get("pods", Some(namespace.to_string()), pod).await
            }
        }
        ("pods", Verb::Create) if subresource == "eviction" => {
            get("pods", Some(namespace.to_string()), name.to_string()).await
        }
        (_, Verb::Create) => None,
        _ if name.is_empty() => None,
        _ => reg.get(rr.info, rr.namespace.as_deref(), name).await.ok(),
    };
    if old.is_none()
        && matches!(rr.verb, Verb::Update | Verb::Patch | Verb::Delete)
        && resource != "leases"
    {
        // Nothing to restrict: the registry answers NotFound.
        return Ok(());
    }
    let new = match body {
        Body::None => None,
        Body::Object(v) => Some(v),
        Body::Patch(kind, patch) => match &old {
            Some(old) => apply_patch(rr.info, kind, old.clone(), &patch).ok(),
            None => None,
        },
    };
    let node_uid = if resource == "pods" && rr.verb == Verb::Create && subresource.is_empty() {
        get("nodes", None, node.to_string()).await.and_then(|n| {
            n.pointer("/metadata/uid")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
    } else {
        None
    };
    let write = Write {
        verb: rr.verb.as_str(),
        group,
        resource,
        subresource,
        namespace,
        name,
        new: new.as_ref(),
        old: old.as_ref(),
        node_uid: node_uid.as_deref(),
    };
    admit(node, &write).map_err(|reason| {
        let name = if name.is_empty() {
            str_at(new.as_ref(), "/metadata/name")
        } else {
            name
        };
        let what = if name.is_empty() {
            format!("{} is forbidden", rr.info.qualified_resource())
        } else {
            format!("{} {name:?} is forbidden", rr.info.qualified_resource())
        };
        let mut e = ApiError::forbidden(format!("{what}: {reason}"));
        let mut details = serde_json::json!({ "kind": resource });
        if !name.is_empty() {
            details["name"] = name.into();
        }
        if !group.is_empty() {
            details["group"] = group.into();
        }
        e.details = Some(details);
        e
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write<'a>(verb: &'a str, resource: &'a str, sub: &'a str, name: &'a str) -> Write<'a> {
        Write {
            verb,
            group: if resource == "leases" {
                "coordination.k8s.io"
            } else {
                ""
            },
            resource,
            subresource: sub,
            name,
            ..Default::default()
        }
    }

    fn node(name: &str, labels: Value, taints: Value) -> Value {
        json!({ "metadata": { "name": name, "labels": labels }, "spec": { "taints": taints } })
    }

    #[test]
    fn a_node_modifies_only_its_own_node() {
        let old = node("n1", json!({}), json!(null));
        let other = write("patch", "nodes", "", "n2");
        assert_eq!(
            admit(
                "n1",
                &Write {
                    old: Some(&old),
                    new: Some(&old),
                    ..other
                }
            ),
            Err("node \"n1\" is not allowed to modify node \"n2\"".into())
        );
        let delete = write("delete", "nodes", "", "n2");
        assert!(admit("n1", &delete).is_err());
        let created = node("n2", json!({}), json!(null));
        assert_eq!(
            admit(
                "n1",
                &Write {
                    new: Some(&created),
                    ..write("create", "nodes", "", "")
                }
            ),
            Err("node \"n1\" is not allowed to modify node \"n2\"".into())
        );
        let status = write("patch", "nodes", "status", "n1");
        assert_eq!(
            admit(
                "n1",
                &Write {
                    old: Some(&old),
                    new: Some(&old),
                    ..status
                }
            ),
            Ok(())
        );
    }

    #[test]
    fn a_node_keeps_its_taints_and_restricted_labels() {
        let old = node("n1", json!({ "kubernetes.io/hostname": "n1" }), json!(null));
        let w = |new: &Value| -> Result<(), String> {
            admit(
                "n1",
                &Write {
                    old: Some(&old),
                    new: Some(new),
                    ..write("update", "nodes", "", "n1")
                },
            )
        };
        let tainted = node(
            "n1",
            json!({ "kubernetes.io/hostname": "n1" }),
            json!([{ "key": "k", "effect": "NoSchedule" }]),
        );
        assert_eq!(
            w(&tainted),
            Err("node \"n1\" is not allowed to modify taints".into())
        );
        let labelled = node(
            "n1",
            json!({ "kubernetes.io/hostname": "n1", "node-restriction.kubernetes.io/tier": "a", "node-role.kubernetes.io/control-plane": "true", "example.com/x": "y", "node.kubernetes.io/pool": "p" }),
            json!([]),
        );
        assert_eq!(
            w(&labelled),
            Err("is not allowed to modify labels: node-restriction.kubernetes.io/tier, node-role.kubernetes.io/control-plane".into())
        );
        let fine = node(
            "n1",
            json!({ "kubernetes.io/hostname": "n1", "example.com/x": "y", "topology.kubernetes.io/zone": "z" }),
            json!([]),
        );
        assert_eq!(w(&fine), Ok(()));
        let registering = node(
            "n1",
            json!({ "a.node-restriction.kubernetes.io/x": "1", "kubernetes.io/os": "linux" }),
            json!(null),
        );
        assert_eq!(
            admit("n1", &Write { new: Some(&registering), ..write("create", "nodes", "", "") }),
            Err("node \"n1\" is not allowed to set the following labels: a.node-restriction.kubernetes.io/x".into())
        );
    }

    #[test]
    fn a_node_creates_only_its_own_mirror_pods() {
        let mirror = |node: &str, extra: Value| {
            let mut pod = json!({
                "metadata": {
                    "name": "static-n1",
                    "annotations": { CONFIG_MIRROR: "hash" },
                    "ownerReferences": [{ "apiVersion": "v1", "kind": "Node", "name": node, "uid": "u1", "controller": true }],
                },
                "spec": { "nodeName": node, "containers": [{ "name": "c" }] },
            });
            api::patch::merge_patch(pod.take(), extra).unwrap()
        };
        let create = |pod: &Value| {
            admit(
                "n1",
                &Write {
                    new: Some(pod),
                    node_uid: Some("u1"),
                    ..write("create", "pods", "", "")
                },
            )
        };
        assert_eq!(create(&mirror("n1", json!({}))), Ok(()));
        assert_eq!(
            create(&mirror("n1", json!({ "metadata": { "annotations": { CONFIG_MIRROR: null } } }))),
            Err("pod does not have \"kubernetes.io/config.mirror\" annotation, node \"n1\" can only create mirror pods".into())
        );
        assert_eq!(
            create(&mirror("n1", json!({ "spec": { "nodeName": "n2" } }))),
            Err("node \"n1\" can only create pods with spec.nodeName set to itself".into())
        );
        assert_eq!(
            create(&mirror(
                "n1",
                json!({ "spec": { "volumes": [{ "name": "s", "secret": { "secretName": "x" } }] } })
            )),
            Err("node \"n1\" can not create pods that reference secrets".into())
        );
        assert_eq!(
            create(&mirror(
                "n1",
                json!({ "spec": { "serviceAccountName": "default" } })
            )),
            Err("node \"n1\" can not create pods that reference a service account".into())
        );
    }

    #[test]
    fn a_node_writes_status_of_evicts_and_deletes_only_its_pods() {
        let ours = json!({ "metadata": { "labels": { "a": "1" } }, "spec": { "nodeName": "n1" } });
        let theirs = json!({ "spec": { "nodeName": "n2" } });
        let on = |verb, sub, old: &Value, new: Option<&Value>| {
            admit(
                "n1",
                &Write {
                    old: Some(old),
                    new,
                    ..write(verb, "pods", sub, "p")
                },
            )
        };
        assert_eq!(on("patch", "status", &ours, Some(&ours)), Ok(()));
        assert_eq!(
            on("patch", "status", &theirs, Some(&theirs)),
            Err(
                "node \"n1\" can only update pod status for pods with spec.nodeName set to itself"
                    .into()
            )
        );
        let relabelled =
            json!({ "metadata": { "labels": { "a": "2" } }, "spec": { "nodeName": "n1" } });
        assert_eq!(
            on("update", "status", &ours, Some(&relabelled)),
            Err("node \"n1\" cannot update labels through pod status".into())
        );
        assert_eq!(on("create", "eviction", &ours, None), Ok(()));
        assert_eq!(
            on("create", "eviction", &theirs, None),
            Err("node n1 can only evict pods with spec.nodeName set to itself".into())
        );
        assert_eq!(on("delete", "", &ours, None), Ok(()));
        assert_eq!(
            on("delete", "", &theirs, None),
            Err("node \"n1\" can only delete pods with spec.nodeName set to itself".into())
        );
        assert_eq!(
            on("update", "", &ours, Some(&ours)),
            Err("unexpected operation \"UPDATE\", node \"n1\" can only create and delete mirror pods".into())
        );
    }

    #[test]
    fn a_node_writes_only_its_lease_and_tokens_of_its_pods() {
        let lease = json!({ "metadata": { "name": "n2" } });
        let mut w = write("create", "leases", "", "");
        w.namespace = "kube-node-lease";
        w.new = Some(&lease);
        assert_eq!(
            admit("n1", &w),
            Err("can only access node lease with the same name as the requesting node".into())
        );
        let mut w = write("update", "leases", "", "n1");
        w.namespace = "default";
        assert_eq!(
            admit("n1", &w),
            Err("can only access leases in the \"kube-node-lease\" system namespace".into())
        );
        let pod = json!({ "metadata": { "uid": "p1" }, "spec": { "nodeName": "n2" } });
        let tr = json!({ "spec": { "boundObjectRef": { "apiVersion": "v1", "kind": "Pod", "name": "web", "uid": "p1" } } });
        let token = |tr: &Value, pod: &Value| {
            admit(
                "n1",
                &Write {
                    new: Some(tr),
                    old: Some(pod),
                    ..write("create", "serviceaccounts", "token", "default")
                },
            )
        };
        assert_eq!(
            token(&tr, &pod),
            Err("node requested token bound to a pod scheduled on a different node".into())
        );
        assert_eq!(
            token(&json!({ "spec": {} }), &pod),
            Err("node requested token not bound to a pod".into())
        );
        let ours = json!({ "metadata": { "uid": "p1" }, "spec": { "nodeName": "n1" } });
        assert_eq!(token(&tr, &ours), Ok(()));
    }
}
