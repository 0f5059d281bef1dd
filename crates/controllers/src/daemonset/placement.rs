//! Where daemon pods belong and what to do about each node, as values
//! (upstream `pkg/controller/daemon` `NodeShouldRunDaemonPod`,
//! `podsShouldBeOnNode`, `rollingUpdate`, `updateDaemonSetStatus`, and
//! `daemon/util`): the tolerations every daemon pod gets, node selectors and
//! required node affinity, taints, the per-node plan, the rolling-update
//! plan and the status counts. No IO.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::owner;
use crate::pod as podutil;

pub const REVISION_LABEL: &str = "controller-revision-hash";
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// The tolerations the controller adds to every daemon pod (upstream
/// `AddOrUpdateDaemonPodTolerations`), so a daemon keeps running through
/// node trouble and lands on cordoned nodes.
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let mut wanted = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        wanted.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in wanted {
        let t = Toleration {
            key: Some(key.to_string()),
            operator: Some("Exists".to_string()),
            effect: Some(effect.to_string()),
            value: None,
            toleration_seconds: None,
        };
        // Upstream replaces a toleration equal in key, operator, value and
        // effect, and appends otherwise.
        match tolerations.iter().position(|x| same_toleration(x, &t)) {
            Some(i) => tolerations[i] = t,
            None => tolerations.push(t),
        }
    }
}

fn same_toleration(a: &Toleration, b: &Toleration) -> bool {
    a.key == b.key
        && a.effect == b.effect
        && a.operator.as_deref().unwrap_or("Equal") == b.operator.as_deref().unwrap_or("Equal")
        && a.value.as_deref().unwrap_or_default() == b.value.as_deref().unwrap_or_default()
}

/// Upstream `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    if let Some(key) = t.key.as_deref().filter(|k| !k.is_empty()) {
        if key != taint.key {
            return false;
        }
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Equal" | "" => {
            t.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default()
        }
        "Exists" => true,
        _ => false,
    }
}

/// The first taint with one of `effects` that no toleration tolerates.
pub fn untolerated_taint<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    effects: &[&str],
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| effects.contains(&t.effect.as_str()))
        .find(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => !value.is_some_and(|v| values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        op @ ("Gt" | "Lt") => {
            let (Some(v), [bound]) = (value.and_then(|v| v.parse::<i64>().ok()), values) else {
                return false;
            };
            let Ok(bound) = bound.parse::<i64>() else {
                return false;
            };
            if op == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// A node selector term: all its expressions (labels) and fields
/// (`metadata.name`) match; a term with neither matches nothing.
pub fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = owner::labels(&node.metadata);
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            r.key == "metadata.name" && requirement_matches(r, node.metadata.name.as_deref())
        })
}

/// `spec.nodeSelector` and the required node affinity both match (upstream
/// `nodeaffinity.GetRequiredNodeAffinity(pod).Match(node)`).
pub fn node_affinity_matches(spec: &PodSpec, node: &Node) -> bool {
    let labels = owner::labels(&node.metadata);
    if let Some(sel) = &spec.node_selector {
        if !sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        None => true,
        Some(ns) => ns.node_selector_terms.iter().any(|t| term_matches(t, node)),
    }
}

/// Whether a daemon pod should run on `node`, and whether one already
/// there may keep running (upstream `NodeShouldRunDaemonPod`): the node
/// must match the template's nodeName, nodeSelector and required
/// affinity; a NoSchedule or NoExecute taint the pod (with the daemon
/// tolerations) does not tolerate keeps new pods off, and only an
/// untolerated NoExecute taint evicts a running one.
pub fn should_run(ds: &DaemonSet, node: &Node) -> (bool, bool) {
    daemon_spec(ds).map_or((false, false), |spec| spec_should_run(&spec, node))
}

/// The template's pod spec with the daemon tolerations, which placement
/// judges (computed once per sync, not once per node).
pub fn daemon_spec(ds: &DaemonSet) -> Option<PodSpec> {
    let mut spec = ds.spec.as_ref()?.template.spec.clone()?;
    add_daemon_tolerations(&mut spec);
    Some(spec)
}

/// [`should_run`] for a spec from [`daemon_spec`].
pub fn spec_should_run(spec: &PodSpec, node: &Node) -> (bool, bool) {
    let node_name = node.metadata.name.as_deref().unwrap_or_default();
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != node_name)
    {
        return (false, false);
    }
    if !node_affinity_matches(spec, node) {
        return (false, false);
    }
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default();
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    if untolerated_taint(taints, tolerations, &["NoSchedule", "NoExecute"]).is_some() {
        let evicted = untolerated_taint(taints, tolerations, &["NoExecute"]).is_some();
        return (false, !evicted);
    }
    (true, true)
}

/// The affinity of a daemon pod for one node: the required node affinity
/// becomes `metadata.name In [node]` (upstream
/// `ReplaceDaemonSetPodNodeNameNodeAffinity`); the scheduler binds it.
pub fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let term = NodeSelectorTerm {
        match_expressions: None,
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".into(),
            operator: "In".into(),
            values: Some(vec![node.to_string()]),
        }]),
    };
    let mut affinity = affinity.unwrap_or_default();
    let na = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    match &mut na.required_during_scheduling_ignored_during_execution {
        Some(sel) => sel.node_selector_terms = vec![term],
        None => {
            na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
                node_selector_terms: vec![term],
            })
        }
    }
    affinity
}

/// The node a daemon pod is on or pinned to (upstream `GetTargetNodeName`).
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(n.to_string());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields.as_deref()?.iter().find_map(|r| {
            let values = r.values.as_deref()?;
            (r.key == "metadata.name" && r.operator == "In" && values.len() == 1)
                .then(|| values[0].clone())
        })
    })
}

pub fn template_generation(ds: &DaemonSet) -> Option<&str> {
    ds.metadata
        .annotations
        .as_ref()?
        .get(TEMPLATE_GENERATION_ANNOTATION)
        .map(String::as_str)
}

/// The pod runs the current template: its revision hash or, for pods of
/// older controllers, its template generation matches (upstream
/// `IsPodUpdated`).
pub fn is_updated(ds: &DaemonSet, pod: &Pod, hash: &str) -> bool {
    let labels = owner::labels(&pod.metadata);
    let hash_matches =
        !hash.is_empty() && labels.get(REVISION_LABEL).map(String::as_str) == Some(hash);
    let generation_matches = template_generation(ds)
        .is_some_and(|g| labels.get(TEMPLATE_GENERATION_LABEL).map(String::as_str) == Some(g));
    hash_matches || generation_matches
}

/// Oldest first; among equals, a running pod before a pending one
/// (upstream `podByCreationTimestampAndPhase`).
pub fn sort_oldest_first(pods: &mut [Arc<Pod>]) {
    pods.sort_by(|a, b| {
        let ta = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let tb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let pa = podutil::phase(a) == "Running";
        let pb = podutil::phase(b) == "Running";
        ta.cmp(&tb)
            .then_with(|| pb.cmp(&pa))
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

/// A failed daemon pod was found on a node (for the FailedDaemonPod event).
pub struct FailedPod {
    pub name: String,
    pub node: String,
}

/// What the core loop does (upstream `manage` + `podsShouldBeOnNode`).
#[derive(Default)]
pub struct Plan {
    /// Nodes that need a daemon pod.
    pub create_on: Vec<String>,
    /// Daemon pods to delete, by name.
    pub delete: Vec<String>,
    pub failed: Vec<FailedPod>,
}

pub fn allows_surge(ds: &DaemonSet) -> bool {
    rolling(ds)
        .and_then(|r| r.max_surge.as_ref())
        .is_some_and(|s| match s {
            IntOrString::Int(i) => *i > 0,
            IntOrString::String(p) => p.trim_end_matches('%').parse::<i32>().is_ok_and(|v| v > 0),
        })
}

fn rolling(ds: &DaemonSet) -> Option<&k8s_openapi::api::apps::v1::RollingUpdateDaemonSet> {
    let strategy = ds.spec.as_ref()?.update_strategy.as_ref()?;
    if strategy.type_.as_deref().unwrap_or("RollingUpdate") != "RollingUpdate" {
        return None;
    }
    strategy.rolling_update.as_ref()
}

pub fn is_rolling_update(ds: &DaemonSet) -> bool {
    ds.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate"
}

/// Decides, per node, which daemon pods to create and delete.
/// `node_pods` holds the set's pods by target node; pods whose node does
/// not exist are deleted.
pub fn plan(
    ds: &DaemonSet,
    nodes: &[Arc<Node>],
    node_pods: &BTreeMap<String, Vec<Arc<Pod>>>,
    hash: &str,
) -> Plan {
    let mut plan = Plan::default();
    let surge = allows_surge(ds);
    let spec = daemon_spec(ds);
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let (run, keep) = spec
            .as_ref()
            .map_or((false, false), |s| spec_should_run(s, node));
        let pods = node_pods.get(&name).map(Vec::as_slice).unwrap_or_default();
        if run && pods.is_empty() {
            plan.create_on.push(name);
        } else if keep {
            let mut running = Vec::new();
            for p in pods {
                if p.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                match podutil::phase(p) {
                    "Failed" => {
                        plan.failed.push(FailedPod {
                            name: p.metadata.name.clone().unwrap_or_default(),
                            node: name.clone(),
                        });
                        plan.delete
                            .push(p.metadata.name.clone().unwrap_or_default());
                    }
                    "Succeeded" => plan
                        .delete
                        .push(p.metadata.name.clone().unwrap_or_default()),
                    _ => running.push(p.clone()),
                }
            }
            if running.len() <= 1 {
                continue;
            }
            sort_oldest_first(&mut running);
            if !surge {
                // One daemon pod per node: keep the oldest.
                plan.delete.extend(
                    running[1..]
                        .iter()
                        .map(|p| p.metadata.name.clone().unwrap_or_default()),
                );
                continue;
            }
            // Surging: keep the oldest updated and the oldest old pod.
            let (mut have_new, mut have_old) = (false, false);
            for p in running {
                let already = if is_updated(ds, &p, hash) {
                    std::mem::replace(&mut have_new, true)
                } else {
                    std::mem::replace(&mut have_old, true)
                };
                if already {
                    plan.delete
                        .push(p.metadata.name.clone().unwrap_or_default());
                }
            }
        } else if !pods.is_empty() {
            plan.delete.extend(
                pods.iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .map(|p| p.metadata.name.clone().unwrap_or_default()),
            );
        }
    }
    // Pods pinned to nodes that no longer exist.
    for (node, pods) in node_pods {
        if !nodes
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some(node.as_str()))
        {
            plan.delete.extend(
                pods.iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .map(|p| p.metadata.name.clone().unwrap_or_default()),
            );
        }
    }
    plan
}

/// An int-or-percent of `total`, percentages rounded up (upstream
/// `GetScaledValueFromIntOrPercent(..., true)`).
pub fn scaled(value: Option<&IntOrString>, total: i32, default: i32) -> i32 {
    match value {
        None => default,
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => {
            match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
                Some(p) => ((p * i64::from(total) + 99) / 100) as i32,
                None => default,
            }
        }
    }
}

/// The (maxSurge, maxUnavailable) for `desired` scheduled pods; both zero
/// means one unavailable at a time (upstream `updatedDesiredNodeCounts`).
pub fn surge_and_unavailable(ds: &DaemonSet, desired: i32) -> (i32, i32) {
    let r = rolling(ds);
    let surge = scaled(r.and_then(|r| r.max_surge.as_ref()), desired, 0);
    let mut unavailable = scaled(r.and_then(|r| r.max_unavailable.as_ref()), desired, 1);
    if desired > 0 && surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

/// The updated and the old daemon pod on one node, either possibly absent.
pub type NewAndOld = (Option<Arc<Pod>>, Option<Arc<Pod>>);

/// The new (updated) and old daemon pod on a node; `None` when there is
/// more than one of either (upstream `findUpdatedPodsOnNode`).
pub fn updated_and_old(ds: &DaemonSet, pods: &[Arc<Pod>], hash: &str) -> Option<NewAndOld> {
    let (mut new, mut old) = (None, None);
    for p in pods {
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let slot = if is_updated(ds, p, hash) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(p.clone());
    }
    Some((new, old))
}

/// The rolling update's step (upstream `rollingUpdate`): without surge,
/// delete old pods up to maxUnavailable (old pods that are unavailable
/// anyway go first and free) and let the core loop create their
/// replacements; with surge, create new pods beside old ones up to maxSurge
/// and delete an old pod once its replacement is available. Returns (pods
/// to delete, nodes to create on).
pub fn rolling_update(
    ds: &DaemonSet,
    node_pods: &BTreeMap<String, Vec<Arc<Pod>>>,
    desired: i32,
    hash: &str,
    now: DateTime<Utc>,
) -> (Vec<String>, Vec<String>) {
    let (max_surge, max_unavailable) = surge_and_unavailable(ds, desired);
    let min_ready = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let available = |p: &Pod| podutil::is_available(p, min_ready, now);
    let name = |p: &Pod| p.metadata.name.clone().unwrap_or_default();
    if max_surge == 0 {
        let mut unavailable = 0;
        let mut replacements = Vec::new();
        let mut candidates = Vec::new();
        for pods in node_pods.values() {
            let Some((new, old)) = updated_and_old(ds, pods, hash) else {
                unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(new), None) => {
                    if !available(&new) {
                        unavailable += 1;
                    }
                }
                (None, Some(old)) => {
                    if !available(&old) {
                        replacements.push(name(&old));
                        unavailable += 1;
                    } else if unavailable < max_unavailable {
                        candidates.push(name(&old));
                    }
                }
            }
        }
        let room = (max_unavailable - unavailable).max(0) as usize;
        replacements.extend(candidates.into_iter().take(room));
        return (replacements, Vec::new());
    }
    let mut surged = 0;
    let mut create = Vec::new();
    let mut delete = Vec::new();
    for (node, pods) in node_pods {
        let Some((new, old)) = updated_and_old(ds, pods, hash) else {
            continue;
        };
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) => {
                if !available(&old) {
                    create.push(node.clone());
                } else if surged < max_surge {
                    surged += 1;
                    create.push(node.clone());
                }
            }
            (Some(new), Some(old)) => {
                if available(&new) {
                    delete.push(name(&old));
                } else {
                    surged += 1;
                }
            }
        }
    }
    (delete, create)
}

/// The counts of a DaemonSet's status (upstream `updateDaemonSetStatus`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub desired: i32,
    pub current: i32,
    pub misscheduled: i32,
    pub ready: i32,
    pub available: i32,
    pub updated: i32,
}

pub fn count(
    ds: &DaemonSet,
    nodes: &[Arc<Node>],
    node_pods: &BTreeMap<String, Vec<Arc<Pod>>>,
    hash: &str,
    now: DateTime<Utc>,
) -> Counts {
    let min_ready = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let mut c = Counts::default();
    let spec = daemon_spec(ds);
    for node in nodes {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let run = spec.as_ref().is_some_and(|s| spec_should_run(s, node).0);
        let mut pods = node_pods.get(name).cloned().unwrap_or_default();
        let scheduled = !pods.is_empty();
        if run {
            c.desired += 1;
            if !scheduled {
                continue;
            }
            c.current += 1;
            sort_oldest_first(&mut pods);
            let pod = &pods[0];
            if podutil::is_ready(pod) {
                c.ready += 1;
                if podutil::is_available(pod, min_ready, now) {
                    c.available += 1;
                }
            }
            if is_updated(ds, pod, hash) {
                c.updated += 1;
            }
        } else if scheduled {
            c.misscheduled += 1;
        }
    }
    c
}
