//! The node-local scores of upstream's default profile, each 0..=100 before
//! its weight: NodeResourcesFit (LeastAllocated over cpu and memory),
//! NodeResourcesBalancedAllocation, TaintToleration (PreferNoSchedule),
//! NodeAffinity (preferred terms) and ImageLocality.

use k8s_openapi::api::core::v1::Pod;

use crate::filters::{taints, term_matches, tolerates, tolerations};
use crate::snapshot::{normalized_image_name, NodeInfo, PodInfo, Snapshot};

pub const MAX_NODE_SCORE: i64 = 100;

/// Upstream's default plugin weights (v1.32 `getDefaultPlugins`).
pub const WEIGHT_TAINT_TOLERATION: i64 = 3;
pub const WEIGHT_NODE_AFFINITY: i64 = 2;
pub const WEIGHT_NODE_RESOURCES_FIT: i64 = 1;
pub const WEIGHT_BALANCED_ALLOCATION: i64 = 1;
pub const WEIGHT_IMAGE_LOCALITY: i64 = 1;
pub const WEIGHT_INTER_POD_AFFINITY: i64 = 2;
pub const WEIGHT_POD_TOPOLOGY_SPREAD: i64 = 2;

fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// LeastAllocated: the free share of cpu and memory after placing the pod,
/// equal weights, using the non-zero requests.
pub fn least_allocated(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let cpu = least_requested(
        node.non_zero_requested.milli_cpu + pod.non_zero.milli_cpu,
        node.allocatable.milli_cpu,
    );
    let mem = least_requested(
        node.non_zero_requested.memory + pod.non_zero.memory,
        node.allocatable.memory,
    );
    (cpu + mem) / 2
}

/// BalancedAllocation: 100 when cpu and memory are used in the same
/// proportion after placing the pod, less as they diverge.
pub fn balanced_allocation(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let fraction = |requested: i64, capacity: i64| {
        if capacity == 0 {
            return 1.0;
        }
        (requested as f64 / capacity as f64).min(1.0)
    };
    let cpu = fraction(
        node.requested.milli_cpu + pod.requests.milli_cpu,
        node.allocatable.milli_cpu,
    );
    let mem = fraction(
        node.requested.memory + pod.requests.memory,
        node.allocatable.memory,
    );
    let std = (cpu - mem).abs() / 2.0;
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

/// Untolerated PreferNoSchedule taints (raw; normalized reversed).
pub fn taint_toleration_raw(pod: &Pod, node: &NodeInfo) -> i64 {
    let tols: Vec<_> = tolerations(pod)
        .iter()
        .filter(|t| {
            t.effect
                .as_deref()
                .is_none_or(|e| e.is_empty() || e == "PreferNoSchedule")
        })
        .collect();
    taints(node)
        .iter()
        .filter(|taint| {
            taint.effect == "PreferNoSchedule" && !tols.iter().any(|t| tolerates(t, taint))
        })
        .count() as i64
}

/// The sum of the weights of matching preferred node affinity terms (raw).
pub fn node_affinity_raw(pod: &Pod, node: &NodeInfo) -> i64 {
    let preferred = pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        });
    preferred
        .into_iter()
        .flatten()
        .filter(|p| p.weight != 0 && term_matches(&p.preference, node))
        .map(|p| p.weight as i64)
        .sum()
}

pub fn has_preferred_node_affinity(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_some_and(|p| !p.is_empty())
}

/// Upstream's `DefaultNormalizeScore`: scale to 0..=100 by the maximum,
/// reversed for scores where less is better.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        *s = MAX_NODE_SCORE * *s / max;
        if reverse {
            *s = MAX_NODE_SCORE - *s;
        }
    }
}

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

/// The pod's images, normalized, one entry per container.
pub fn pod_images(pod: &Pod) -> Vec<String> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .filter_map(|c| c.image.as_deref())
        .map(normalized_image_name)
        .collect()
}

/// ImageLocality: the sizes of the pod's images already on the node, each
/// scaled by the share of nodes that have it, between 23 MB and 1000 MB
/// per container.
pub fn image_locality(images: &[String], snapshot: &Snapshot, node: &NodeInfo) -> i64 {
    if images.is_empty() {
        return 0;
    }
    let total = snapshot.len().max(1) as f64;
    let mut sum = 0i64;
    for image in images {
        if let Some(size) = node.images.get(image) {
            let spread = snapshot.nodes_with_image(image) as f64 / total;
            sum += (*size as f64 * spread) as i64;
        }
    }
    let max = MAX_CONTAINER_THRESHOLD * images.len() as i64;
    let sum = sum.clamp(MIN_THRESHOLD, max);
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
}

#[cfg(test)]
mod tests;
