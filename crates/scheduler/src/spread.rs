//! PodTopologySpread: `DoNotSchedule` constraints filter nodes whose domain
//! would exceed `maxSkew` over the least loaded domain (with `minDomains`
//! and the node inclusion policies); `ScheduleAnyway` constraints score
//! nodes by how many matching pods their domains hold, as upstream.

use std::collections::{BTreeSet, HashMap};

use api::labels::LabelSelector;
use k8s_openapi::api::core::v1::{Pod, TopologySpreadConstraint};

use crate::algorithm::{CycleState, Objects};
use crate::filters::{matches_required_node_affinity, taint_toleration, Status};
use crate::snapshot::{NodeInfo, PodInfo, Snapshot};

pub const PLUGIN: &str = "PodTopologySpread";
pub const ERR_CONSTRAINTS: &str = "node(s) didn't match pod topology spread constraints";
pub const ERR_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
const HOSTNAME: &str = "kubernetes.io/hostname";

#[derive(Clone, Debug)]
pub struct Constraint {
    pub max_skew: i64,
    pub topology_key: String,
    pub selector: LabelSelector,
    pub min_domains: i64,
    pub honor_node_affinity: bool,
    pub honor_node_taints: bool,
}

impl Constraint {
    fn parse(c: &TopologySpreadConstraint, pod: &Pod) -> Constraint {
        let mut selector = LabelSelector::from_metav1(c.label_selector.as_ref())
            .unwrap_or_else(|_| LabelSelector::nothing());
        // matchLabelKeys: the pod's own values of those keys join the selector.
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        for key in c.match_label_keys.iter().flatten() {
            if let Some(v) = labels.get(key) {
                if let Ok(r) = api::labels::Requirement::new(
                    key.clone(),
                    api::labels::Operator::In,
                    vec![v.clone()],
                    None,
                ) {
                    selector = selector.add([r]);
                }
            }
        }
        Constraint {
            max_skew: c.max_skew as i64,
            topology_key: c.topology_key.clone(),
            selector,
            min_domains: c.min_domains.unwrap_or(1) as i64,
            honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
            honor_node_taints: c.node_taints_policy.as_deref() == Some("Honor"),
        }
    }

    fn counts_pod(&self, namespace: &str, existing: &PodInfo) -> bool {
        existing.namespace() == namespace
            && existing.pod.metadata.deletion_timestamp.is_none()
            && self.selector.matches_opt(existing.labels())
    }
}

fn constraints(pod: &Pod, when: &str) -> Vec<Constraint> {
    pod.spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.when_unsatisfiable == when)
        .map(|c| Constraint::parse(c, pod))
        .collect()
}

/// Whether a node takes part in the counting for the pod.
fn eligible(pod: &Pod, node: &NodeInfo, cs: &[Constraint]) -> bool {
    cs.iter().all(|c| node.label(&c.topology_key).is_some())
        && cs
            .iter()
            .all(|c| !c.honor_node_affinity || matches_required_node_affinity(pod, node))
        && cs
            .iter()
            .all(|c| !c.honor_node_taints || taint_toleration(pod, node).is_none())
}

fn count_on(node: &NodeInfo, c: &Constraint, namespace: &str) -> i64 {
    node.pods
        .iter()
        .filter(|p| c.counts_pod(namespace, p))
        .count() as i64
}

pub struct State {
    constraints: Vec<Constraint>,
    /// Matching pods per (key, value), every eligible domain present.
    counts: HashMap<(String, String), i64>,
    /// Per constraint: the smallest count over its domains, and how many
    /// domains there are.
    min: Vec<(i64, usize)>,
}

pub fn prefilter(pod: &PodInfo, snapshot: &Snapshot, _objects: &dyn Objects) -> Option<State> {
    let cs = constraints(&pod.pod, "DoNotSchedule");
    if cs.is_empty() {
        return None;
    }
    let mut counts: HashMap<(String, String), i64> = HashMap::new();
    for node in snapshot.nodes() {
        if !eligible(&pod.pod, node, &cs) {
            continue;
        }
        for c in &cs {
            let v = node.label(&c.topology_key).unwrap_or_default();
            *counts
                .entry((c.topology_key.clone(), v.to_string()))
                .or_default() += count_on(node, c, pod.namespace());
        }
    }
    let min = cs
        .iter()
        .map(|c| {
            let domains: Vec<i64> = counts
                .iter()
                .filter(|((k, _), _)| k == &c.topology_key)
                .map(|(_, n)| *n)
                .collect();
            (domains.iter().copied().min().unwrap_or(0), domains.len())
        })
        .collect();
    Some(State {
        constraints: cs,
        counts,
        min,
    })
}

pub fn filter(state: &State, pod: &PodInfo, node: &NodeInfo) -> Option<Status> {
    for (c, (min, domains)) in state.constraints.iter().zip(&state.min) {
        let Some(v) = node.label(&c.topology_key) else {
            return Some(Status::unresolvable(PLUGIN, ERR_MISSING_LABEL));
        };
        let self_match = c.selector.matches_opt(pod.labels()) as i64;
        let min = if (*domains as i64) < c.min_domains {
            0
        } else {
            *min
        };
        let matched = state
            .counts
            .get(&(c.topology_key.clone(), v.to_string()))
            .copied()
            .unwrap_or(0);
        if matched + self_match - min > c.max_skew {
            return Some(Status::unschedulable(PLUGIN, ERR_CONSTRAINTS));
        }
    }
    None
}

/// ScheduleAnyway constraints: fewer matching pods in a node's domains
/// scores higher; `None` when the pod has none.
pub fn score(state: &CycleState<'_>, snapshot: &Snapshot, nodes: &[&NodeInfo]) -> Option<Vec<i64>> {
    let pod = &state.pod;
    let cs = constraints(&pod.pod, "ScheduleAnyway");
    if cs.is_empty() {
        return None;
    }
    let ns = pod.namespace();
    let ignored: Vec<bool> = nodes
        .iter()
        .map(|n| cs.iter().any(|c| n.label(&c.topology_key).is_none()))
        .collect();
    let considered = ignored.iter().filter(|i| !**i).count();
    // Domains among the feasible nodes, per constraint.
    let domains: Vec<BTreeSet<&str>> = cs
        .iter()
        .map(|c| {
            nodes
                .iter()
                .zip(&ignored)
                .filter(|(_, i)| !**i)
                .filter_map(|(n, _)| n.label(&c.topology_key))
                .collect()
        })
        .collect();
    let weights: Vec<f64> = cs
        .iter()
        .zip(&domains)
        .map(|(c, d)| {
            let size = if c.topology_key == HOSTNAME {
                considered
            } else {
                d.len()
            };
            ((size + 2) as f64).ln()
        })
        .collect();
    let mut counts: HashMap<(String, String), i64> = HashMap::new();
    for node in snapshot.nodes() {
        if !eligible(&pod.pod, node, &cs) {
            continue;
        }
        for (c, d) in cs.iter().zip(&domains) {
            if c.topology_key == HOSTNAME {
                continue;
            }
            let v = node.label(&c.topology_key).unwrap_or_default();
            if d.contains(v) {
                *counts
                    .entry((c.topology_key.clone(), v.to_string()))
                    .or_default() += count_on(node, c, ns);
            }
        }
    }
    let raw: Vec<i64> = nodes
        .iter()
        .map(|n| {
            let mut s = 0.0;
            for (i, c) in cs.iter().enumerate() {
                let Some(v) = n.label(&c.topology_key) else {
                    continue;
                };
                let cnt = if c.topology_key == HOSTNAME {
                    count_on(n, c, ns)
                } else {
                    counts
                        .get(&(c.topology_key.clone(), v.to_string()))
                        .copied()
                        .unwrap_or(0)
                };
                s += cnt as f64 * weights[i] + (c.max_skew - 1) as f64;
            }
            s.round() as i64
        })
        .collect();
    let mut min = i64::MAX;
    let mut max = 0;
    for (s, ig) in raw.iter().zip(&ignored) {
        if !ig {
            min = min.min(*s);
            max = max.max(*s);
        }
    }
    Some(
        raw.iter()
            .zip(&ignored)
            .map(|(s, ig)| {
                if *ig {
                    0
                } else if max == 0 {
                    crate::scores::MAX_NODE_SCORE
                } else {
                    crate::scores::MAX_NODE_SCORE * (max + min - s) / max
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests;
