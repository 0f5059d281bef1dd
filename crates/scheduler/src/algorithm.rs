//! One scheduling decision, without IO: a pod and a [`Snapshot`] in, a node
//! (or why none fits, in upstream's words) out. The shape of upstream's
//! `schedulePod`: PreFilter, Filter over a round-robin sample of nodes
//! (`percentageOfNodesToScore`), Score with the default weights, and a
//! random pick among the best.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::StorageClass;

use crate::filters::{self, Status};
use crate::resources::Resources;
use crate::scores;
use crate::snapshot::{NodeInfo, PodInfo, PodKey, Snapshot};
use crate::{interpod, spread, volumes};

/// Fewest nodes to find feasible before stopping, and the smallest share
/// (upstream's `minFeasibleNodesToFind`, `minFeasibleNodesPercentageToFind`).
const MIN_FEASIBLE_NODES: usize = 100;
const MIN_FEASIBLE_PERCENTAGE: i64 = 5;

/// Cluster objects some plugins read besides nodes and pods. The driver
/// answers from its informers; tests from maps.
pub trait Objects {
    fn pvc(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>>;
    fn pv(&self, name: &str) -> Option<Arc<PersistentVolume>>;
    fn pvs(&self) -> Vec<Arc<PersistentVolume>>;
    fn storage_class(&self, name: &str) -> Option<Arc<StorageClass>>;
    fn namespace_labels(&self, name: &str) -> Option<BTreeMap<String, String>>;
    fn pdbs(&self, namespace: &str) -> Vec<Arc<PodDisruptionBudget>>;
}

/// [`Objects`] held in plain maps.
#[derive(Default, Clone)]
pub struct ObjectMaps {
    pub pvcs: HashMap<(String, String), Arc<PersistentVolumeClaim>>,
    pub pvs: BTreeMap<String, Arc<PersistentVolume>>,
    pub classes: HashMap<String, Arc<StorageClass>>,
    pub namespaces: HashMap<String, BTreeMap<String, String>>,
    pub pdbs: Vec<Arc<PodDisruptionBudget>>,
}

impl Objects for ObjectMaps {
    fn pvc(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        self.pvcs
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
    fn pv(&self, name: &str) -> Option<Arc<PersistentVolume>> {
        self.pvs.get(name).cloned()
    }
    fn pvs(&self) -> Vec<Arc<PersistentVolume>> {
        self.pvs.values().cloned().collect()
    }
    fn storage_class(&self, name: &str) -> Option<Arc<StorageClass>> {
        self.classes.get(name).cloned()
    }
    fn namespace_labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces.get(name).cloned()
    }
    fn pdbs(&self, namespace: &str) -> Vec<Arc<PodDisruptionBudget>> {
        self.pdbs
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
            .cloned()
            .collect()
    }
}

/// Why a pod fits nowhere (upstream's `FitError`), rendered by
/// [`FitError::message`].
#[derive(Clone, Debug, Default)]
pub struct FitError {
    pub num_all_nodes: usize,
    /// A PreFilter rejection, which applies to every node.
    pub prefilter: Option<Status>,
    pub node_status: BTreeMap<String, Status>,
    /// What preemption said, when it failed.
    pub postfilter: Option<String>,
}

impl FitError {
    /// Upstream's `FitError.Error()`: `0/3 nodes are available: 3
    /// Insufficient cpu. preemption: ...`.
    pub fn message(&self) -> String {
        let mut msg = format!("0/{} nodes are available:", self.num_all_nodes);
        match &self.prefilter {
            Some(s) => msg.push_str(&format!(" {}.", s.reasons.join(", "))),
            None => {
                let histogram = histogram(self.node_status.values());
                if !histogram.is_empty() {
                    msg.push_str(&format!(" {}.", histogram));
                }
            }
        }
        if let Some(post) = &self.postfilter {
            msg.push_str(&format!(" {post}."));
        }
        msg
    }

    /// The plugins that rejected the pod (the queue wakes it on events
    /// that concern them).
    pub fn plugins(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = self
            .prefilter
            .iter()
            .chain(self.node_status.values())
            .map(|s| s.plugin)
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// `3 Insufficient cpu, 1 node(s) were unschedulable`: reasons counted over
/// nodes, sorted as strings (upstream sorts the formatted entries).
pub fn histogram<'a>(statuses: impl Iterator<Item = &'a Status>) -> String {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for s in statuses {
        for r in &s.reasons {
            *counts.entry(r.as_str()).or_default() += 1;
        }
    }
    let mut entries: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    entries.sort();
    entries.join(", ")
}

/// Where the pod goes, and what must happen to its volumes first.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    pub node: String,
    pub evaluated: usize,
    pub feasible: usize,
    pub volumes: volumes::Actions,
}

/// Upstream's adaptive `numFeasibleNodesToFind`: every node below 100,
/// else 50% less 1% per 125 nodes, at least 5% and at least 100 nodes.
pub fn num_feasible_nodes_to_find(percentage: i64, num_all: usize) -> usize {
    if num_all < MIN_FEASIBLE_NODES {
        return num_all;
    }
    let mut pct = percentage;
    if pct <= 0 {
        pct = (50 - num_all as i64 / 125).max(MIN_FEASIBLE_PERCENTAGE);
    }
    if pct >= 100 {
        return num_all;
    }
    ((num_all as i64 * pct / 100) as usize).max(MIN_FEASIBLE_NODES)
}

/// Everything computed once per pod before the nodes are walked
/// (upstream's PreFilter results in the CycleState).
pub struct CycleState<'a> {
    pub pod: Arc<PodInfo>,
    pub interpod: Option<interpod::State>,
    pub spread: Option<spread::State>,
    pub volumes: volumes::State,
    /// Requests of higher-or-equal priority pods nominated to a node.
    pub nominated: HashMap<&'a str, Resources>,
}

/// The scheduling algorithm's own state between decisions: where the next
/// round-robin walk starts, and the random tie breaker.
pub struct Algorithm {
    /// 0: upstream's adaptive percentage.
    pub percentage_of_nodes_to_score: i64,
    next_start: usize,
    rng: u64,
}

impl Default for Algorithm {
    fn default() -> Self {
        Algorithm::new(0)
    }
}

impl Algorithm {
    pub fn new(percentage_of_nodes_to_score: i64) -> Algorithm {
        Algorithm {
            percentage_of_nodes_to_score,
            next_start: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: ties need to be broken evenly, not securely.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Runs the PreFilter step: a rejection here applies to every node.
    pub fn prefilter<'a>(
        &self,
        snapshot: &'a Snapshot,
        pod: &Arc<Pod>,
        objects: &dyn Objects,
        nominated: &'a HashMap<String, Vec<Arc<PodInfo>>>,
    ) -> Result<CycleState<'a>, Status> {
        let info = Arc::new(PodInfo::new(pod.clone()));
        let volumes = volumes::prefilter(pod, snapshot, objects)?;
        let interpod = interpod::prefilter(&info, snapshot, objects);
        let spread = spread::prefilter(&info, snapshot, objects);
        let mut nominated_requests: HashMap<&str, Resources> = HashMap::new();
        for (node, pods) in nominated {
            for p in pods {
                if p.key != info.key && p.priority >= info.priority {
                    let r = nominated_requests.entry(node.as_str()).or_default();
                    r.add(&p.requests);
                    r.allowed_pod_number += 1;
                }
            }
        }
        Ok(CycleState {
            pod: info,
            interpod,
            spread,
            volumes,
            nominated: nominated_requests,
        })
    }

    /// Every filter on one node, in upstream's order, stopping at the first
    /// that rejects.
    pub fn filter(
        state: &CycleState<'_>,
        node: &NodeInfo,
        objects: &dyn Objects,
    ) -> Option<Status> {
        let pod = &state.pod.pod;
        filters::node_unschedulable(pod, node)
            .or_else(|| filters::node_name(pod, node))
            .or_else(|| filters::taint_toleration(pod, node))
            .or_else(|| filters::node_affinity(pod, node))
            .or_else(|| filters::node_ports(&state.pod, node))
            .or_else(|| {
                filters::node_resources_fit(
                    &state.pod,
                    node,
                    state.nominated.get(node.name.as_str()),
                )
            })
            .or_else(|| volumes::filter(&state.volumes, node, objects))
            .or_else(|| {
                state
                    .spread
                    .as_ref()
                    .and_then(|s| spread::filter(s, &state.pod, node))
            })
            .or_else(|| {
                state
                    .interpod
                    .as_ref()
                    .and_then(|s| interpod::filter(s, node))
            })
    }

    /// Picks a node for `pod`, or says why there is none.
    pub fn schedule(
        &mut self,
        snapshot: &Snapshot,
        pod: &Arc<Pod>,
        objects: &dyn Objects,
        nominated: &HashMap<String, Vec<Arc<PodInfo>>>,
    ) -> Result<Placement, FitError> {
        let all = snapshot.nodes();
        let mut err = FitError {
            num_all_nodes: all.len(),
            ..Default::default()
        };
        if all.is_empty() {
            return Err(err);
        }
        let state = match self.prefilter(snapshot, pod, objects, nominated) {
            Ok(s) => s,
            Err(status) => {
                err.prefilter = Some(status);
                return Err(err);
            }
        };

        // A nominated node (set by an earlier preemption) is tried first.
        if let Some(nominated_node) = pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .and_then(|n| snapshot.node(n))
        {
            if Self::filter(&state, nominated_node, objects).is_none() {
                return Ok(Placement {
                    node: nominated_node.name.clone(),
                    evaluated: 1,
                    feasible: 1,
                    volumes: volumes::actions(&state.volumes, nominated_node, objects),
                });
            }
        }

        let want = num_feasible_nodes_to_find(self.percentage_of_nodes_to_score, all.len());
        let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(want.min(all.len()));
        let start = self.next_start % all.len();
        let mut evaluated = 0;
        for i in 0..all.len() {
            let node = &all[(start + i) % all.len()];
            evaluated += 1;
            match Self::filter(&state, node, objects) {
                None => {
                    feasible.push(node);
                    if feasible.len() >= want {
                        break;
                    }
                }
                Some(status) => {
                    err.node_status.insert(node.name.clone(), status);
                }
            }
        }
        self.next_start = (start + evaluated) % all.len();
        if feasible.is_empty() {
            return Err(err);
        }
        let chosen = if feasible.len() == 1 {
            feasible[0]
        } else {
            let totals = score(&state, snapshot, &feasible);
            self.select(&feasible, &totals)
        };
        Ok(Placement {
            node: chosen.name.clone(),
            evaluated,
            feasible: feasible.len(),
            volumes: volumes::actions(&state.volumes, chosen, objects),
        })
    }

    /// The highest total, ties broken uniformly at random (reservoir
    /// sampling, as upstream's `selectHost`).
    fn select<'n>(&mut self, nodes: &[&'n NodeInfo], totals: &[i64]) -> &'n NodeInfo {
        let mut best = 0;
        let mut ties = 1u64;
        for i in 1..nodes.len() {
            if totals[i] > totals[best] {
                best = i;
                ties = 1;
            } else if totals[i] == totals[best] {
                ties += 1;
                if self.random() % ties == 0 {
                    best = i;
                }
            }
        }
        nodes[best]
    }
}

/// The weighted sum of every score plugin for each feasible node.
pub fn score(state: &CycleState<'_>, snapshot: &Snapshot, nodes: &[&NodeInfo]) -> Vec<i64> {
    let pod = &state.pod;
    let mut totals: Vec<i64> = nodes
        .iter()
        .map(|n| {
            scores::least_allocated(pod, n) * scores::WEIGHT_NODE_RESOURCES_FIT
                + scores::balanced_allocation(pod, n) * scores::WEIGHT_BALANCED_ALLOCATION
        })
        .collect();
    let mut add = |mut raw: Vec<i64>, reverse: bool, weight: i64| {
        scores::default_normalize(&mut raw, reverse);
        for (t, s) in totals.iter_mut().zip(raw) {
            *t += s * weight;
        }
    };
    // TaintToleration: fewer untolerated PreferNoSchedule taints is better.
    add(
        nodes
            .iter()
            .map(|n| scores::taint_toleration_raw(&pod.pod, n))
            .collect(),
        true,
        scores::WEIGHT_TAINT_TOLERATION,
    );
    if scores::has_preferred_node_affinity(&pod.pod) {
        add(
            nodes
                .iter()
                .map(|n| scores::node_affinity_raw(&pod.pod, n))
                .collect(),
            false,
            scores::WEIGHT_NODE_AFFINITY,
        );
    }
    let images = scores::pod_images(&pod.pod);
    if images.iter().any(|i| snapshot.nodes_with_image(i) > 0) {
        for (t, n) in totals.iter_mut().zip(nodes) {
            *t += scores::image_locality(&images, snapshot, n) * scores::WEIGHT_IMAGE_LOCALITY;
        }
    }
    if let Some(s) = interpod::score(state, snapshot, nodes) {
        for (t, v) in totals.iter_mut().zip(s) {
            *t += v * scores::WEIGHT_INTER_POD_AFFINITY;
        }
    }
    if let Some(s) = spread::score(state, snapshot, nodes) {
        for (t, v) in totals.iter_mut().zip(s) {
            *t += v * scores::WEIGHT_POD_TOPOLOGY_SPREAD;
        }
    }
    totals
}

/// The key of a pod, for the driver.
pub fn key_of(pod: &Pod) -> PodKey {
    PodKey::of(pod)
}

#[cfg(test)]
pub(crate) mod tests;
