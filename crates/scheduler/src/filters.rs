//! The node-local filters of upstream's default profile, in its order:
//! NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts,
//! NodeResourcesFit. Each looks at one pod and one node and says why the
//! pod cannot go there, in upstream's words.

use k8s_openapi::api::core::v1::{
    NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration,
};

use crate::resources::Resources;
use crate::snapshot::{NodeInfo, PodInfo};

/// Why one node does not fit: the reasons (several for resources) and
/// whether preemption could change that (upstream's `Unschedulable` vs
/// `UnschedulableAndUnresolvable`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub plugin: &'static str,
    pub reasons: Vec<String>,
    pub unresolvable: bool,
}

impl Status {
    pub fn unschedulable(plugin: &'static str, reason: impl Into<String>) -> Status {
        Status {
            plugin,
            reasons: vec![reason.into()],
            unresolvable: false,
        }
    }

    pub fn unresolvable(plugin: &'static str, reason: impl Into<String>) -> Status {
        Status {
            plugin,
            reasons: vec![reason.into()],
            unresolvable: true,
        }
    }
}

pub const NODE_UNSCHEDULABLE: &str = "NodeUnschedulable";
pub const NODE_NAME: &str = "NodeName";
pub const TAINT_TOLERATION: &str = "TaintToleration";
pub const NODE_AFFINITY: &str = "NodeAffinity";
pub const NODE_PORTS: &str = "NodePorts";
pub const NODE_RESOURCES_FIT: &str = "NodeResourcesFit";

pub const ERR_NODE_UNSCHEDULABLE: &str = "node(s) were unschedulable";
pub const ERR_NODE_NAME: &str = "node(s) didn't match the requested node name";
pub const ERR_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
pub const ERR_NODE_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
pub const ERR_TOO_MANY_PODS: &str = "Too many pods";

const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Whether `toleration` tolerates `taint` (upstream's `ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

pub fn tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

pub fn taints(node: &NodeInfo) -> &[Taint] {
    &node.taints
}

pub fn node_unschedulable(pod: &Pod, node: &NodeInfo) -> Option<Status> {
    if !node.unschedulable {
        return None;
    }
    let taint = Taint {
        key: TAINT_UNSCHEDULABLE.into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    };
    if tolerations(pod).iter().any(|t| tolerates(t, &taint)) {
        return None;
    }
    Some(Status::unresolvable(
        NODE_UNSCHEDULABLE,
        ERR_NODE_UNSCHEDULABLE,
    ))
}

pub fn node_name(pod: &Pod, node: &NodeInfo) -> Option<Status> {
    let wanted = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("");
    (!wanted.is_empty() && wanted != node.name)
        .then(|| Status::unresolvable(NODE_NAME, ERR_NODE_NAME))
}

pub fn taint_toleration(pod: &Pod, node: &NodeInfo) -> Option<Status> {
    let tols = tolerations(pod);
    let taint = taints(node).iter().find(|taint| {
        matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
            && !tols.iter().any(|t| tolerates(t, taint))
    })?;
    Some(Status::unresolvable(
        TAINT_TOLERATION,
        format!(
            "node(s) had untolerated taint {{{}: {}}}",
            taint.key,
            taint.value.as_deref().unwrap_or("")
        ),
    ))
}

/// Whether one requirement holds for the value `value` of its key.
fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => !value.is_some_and(|v| values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), [bound]) = (value, values) else {
                return false;
            };
            let (Ok(v), Ok(bound)) = (v.parse::<i64>(), bound.parse::<i64>()) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// A node selector term: every expression on labels and every field
/// expression (only `metadata.name`) must hold; an empty term matches
/// nothing (upstream's `nodeaffinity.nodeSelectorTerm`).
pub fn term_matches(term: &NodeSelectorTerm, node: &NodeInfo) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, node.label(&r.key)))
        && fields.iter().all(|r| {
            r.key == "metadata.name"
                && matches!(r.operator.as_str(), "In" | "NotIn")
                && r.values.as_ref().is_some_and(|v| v.len() == 1)
                && requirement_matches(r, Some(&node.name))
        })
}

/// Any term matches (the terms are ORed).
pub fn node_selector_matches(selector: &NodeSelector, node: &NodeInfo) -> bool {
    selector
        .node_selector_terms
        .iter()
        .any(|t| term_matches(t, node))
}

/// `spec.nodeSelector` and the required node affinity both hold.
pub fn matches_required_node_affinity(pod: &Pod, node: &NodeInfo) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return true;
    };
    if let Some(sel) = spec.node_selector.as_ref() {
        if !sel.iter().all(|(k, v)| node.label(k) == Some(v.as_str())) {
            return false;
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    required.is_none_or(|r| node_selector_matches(r, node))
}

pub fn node_affinity(pod: &Pod, node: &NodeInfo) -> Option<Status> {
    (!matches_required_node_affinity(pod, node))
        .then(|| Status::unresolvable(NODE_AFFINITY, ERR_NODE_AFFINITY))
}

pub fn node_ports(pod: &PodInfo, node: &NodeInfo) -> Option<Status> {
    let conflict = pod
        .host_ports
        .iter()
        .any(|want| node.used_ports.iter().any(|used| used.conflicts(want)));
    conflict.then(|| Status::unschedulable(NODE_PORTS, ERR_NODE_PORTS))
}

/// Resources the pod asks for that the node lacks, in upstream's order and
/// words (`fitsRequest`). `extra` is what nominated pods hold on the node.
pub fn node_resources_fit(
    pod: &PodInfo,
    node: &NodeInfo,
    extra: Option<&Resources>,
) -> Option<Status> {
    let mut reasons = Vec::new();
    let req = &pod.requests;
    let alloc = &node.allocatable;
    let mut used = std::borrow::Cow::Borrowed(&node.requested);
    let mut pods = node.pods.len() as i64;
    if let Some(extra) = extra {
        used.to_mut().add(extra);
        pods += extra.allowed_pod_number;
    }
    if pods + 1 > alloc.allowed_pod_number {
        reasons.push(ERR_TOO_MANY_PODS.to_string());
    }
    let nothing = req.milli_cpu == 0
        && req.memory == 0
        && req.ephemeral_storage == 0
        && req.scalar.is_empty();
    if !nothing {
        if req.milli_cpu > 0 && req.milli_cpu > alloc.milli_cpu - used.milli_cpu {
            reasons.push("Insufficient cpu".to_string());
        }
        if req.memory > 0 && req.memory > alloc.memory - used.memory {
            reasons.push("Insufficient memory".to_string());
        }
        if req.ephemeral_storage > 0
            && req.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage
        {
            reasons.push("Insufficient ephemeral-storage".to_string());
        }
        for (name, want) in &req.scalar {
            if *want > 0 && *want > alloc.scalar(name) - used.scalar(name) {
                reasons.push(format!("Insufficient {name}"));
            }
        }
    }
    (!reasons.is_empty()).then_some(Status {
        plugin: NODE_RESOURCES_FIT,
        reasons,
        unresolvable: false,
    })
}

#[cfg(test)]
pub(crate) mod tests;
