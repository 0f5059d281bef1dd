//! InterPodAffinity: required pod affinity and anti-affinity (the incoming
//! pod's terms, and existing pods' anti-affinity against it) as a filter,
//! preferred terms (both ways, plus existing pods' required affinity at
//! weight 1) as a score. Counts are per topology pair (`key=value` of the
//! term's topologyKey on the node), as upstream's PreFilter computes them.

use std::collections::{BTreeMap, HashMap};

use api::labels::LabelSelector;
use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, WeightedPodAffinityTerm};

use crate::algorithm::{CycleState, Objects};
use crate::filters::Status;
use crate::snapshot::{NodeInfo, PodInfo, Snapshot};

pub const PLUGIN: &str = "InterPodAffinity";
pub const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const ERR_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

/// Existing pods' required affinity counts this much in the score
/// (`hardPodAffinityWeight`).
const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

/// A parsed affinity term (upstream's `framework.AffinityTerm`).
#[derive(Clone, Debug)]
pub struct Term {
    pub selector: LabelSelector,
    pub namespaces: Vec<String>,
    pub namespace_selector: LabelSelector,
    pub topology_key: String,
    pub weight: i64,
}

impl Term {
    fn parse(t: &PodAffinityTerm, owner_namespace: &str, weight: i64) -> Term {
        let namespaces = t.namespaces.clone().unwrap_or_default();
        let namespace_selector = match &t.namespace_selector {
            Some(s) => {
                LabelSelector::from_metav1(Some(s)).unwrap_or_else(|_| LabelSelector::nothing())
            }
            None => LabelSelector::nothing(),
        };
        let namespaces = if namespaces.is_empty() && t.namespace_selector.is_none() {
            vec![owner_namespace.to_string()]
        } else {
            namespaces
        };
        Term {
            selector: LabelSelector::from_metav1(t.label_selector.as_ref())
                .unwrap_or_else(|_| LabelSelector::nothing()),
            namespaces,
            namespace_selector,
            topology_key: t.topology_key.clone(),
            weight,
        }
    }

    /// Whether `pod` (whose namespace has `ns_labels`) is selected.
    pub fn matches(&self, pod: &Pod, ns_labels: &BTreeMap<String, String>) -> bool {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        (self.namespaces.iter().any(|n| n == ns) || self.namespace_selector.matches(ns_labels))
            && self.selector.matches_opt(pod.metadata.labels.as_ref())
    }
}

/// The pod's affinity terms, parsed: required affinity, required
/// anti-affinity, preferred affinity, preferred anti-affinity.
#[derive(Default, Debug, Clone)]
pub struct Terms {
    pub required_affinity: Vec<Term>,
    pub required_anti: Vec<Term>,
    pub preferred_affinity: Vec<Term>,
    pub preferred_anti: Vec<Term>,
}

impl Terms {
    pub fn of(pod: &Pod) -> Terms {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let Some(aff) = pod.spec.as_ref().and_then(|s| s.affinity.as_ref()) else {
            return Terms::default();
        };
        let required = |list: Option<&Vec<PodAffinityTerm>>| -> Vec<Term> {
            list.into_iter()
                .flatten()
                .map(|t| Term::parse(t, ns, 1))
                .collect()
        };
        let preferred = |list: Option<&Vec<WeightedPodAffinityTerm>>| -> Vec<Term> {
            list.into_iter()
                .flatten()
                .map(|w| Term::parse(&w.pod_affinity_term, ns, w.weight as i64))
                .collect()
        };
        let a = aff.pod_affinity.as_ref();
        let anti = aff.pod_anti_affinity.as_ref();
        Terms {
            required_affinity: required(a.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            required_anti: required(anti.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_affinity: preferred(a.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_anti: preferred(anti.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
        }
    }

    fn has_preferred(&self) -> bool {
        !self.preferred_affinity.is_empty() || !self.preferred_anti.is_empty()
    }
}

type Pair = (String, String);

/// Namespace labels, looked up once per namespace per cycle.
struct NamespaceLabels<'a> {
    objects: &'a dyn Objects,
    cache: HashMap<String, BTreeMap<String, String>>,
}

impl NamespaceLabels<'_> {
    fn get(&mut self, ns: &str) -> &BTreeMap<String, String> {
        if !self.cache.contains_key(ns) {
            let labels = self.objects.namespace_labels(ns).unwrap_or_default();
            self.cache.insert(ns.to_string(), labels);
        }
        &self.cache[ns]
    }
}

/// The PreFilter counts.
pub struct State {
    terms: Terms,
    existing_anti: HashMap<Pair, i64>,
    affinity: HashMap<Pair, i64>,
    anti: HashMap<Pair, i64>,
    matches_own_affinity: bool,
}

fn bump(map: &mut HashMap<Pair, i64>, key: &str, node: &NodeInfo, by: i64) {
    if let Some(v) = node.label(key) {
        *map.entry((key.to_string(), v.to_string())).or_default() += by;
    }
}

pub fn prefilter(pod: &PodInfo, snapshot: &Snapshot, objects: &dyn Objects) -> Option<State> {
    let terms = Terms::of(&pod.pod);
    let has_required = !terms.required_affinity.is_empty() || !terms.required_anti.is_empty();
    if !has_required && snapshot.pods_with_required_anti_affinity() == 0 {
        return None;
    }
    let mut ns = NamespaceLabels {
        objects,
        cache: HashMap::new(),
    };
    let own_ns_labels = ns.get(pod.namespace()).clone();
    let mut state = State {
        existing_anti: HashMap::new(),
        affinity: HashMap::new(),
        anti: HashMap::new(),
        matches_own_affinity: terms
            .required_affinity
            .iter()
            .all(|t| t.matches(&pod.pod, &own_ns_labels)),
        terms,
    };
    for node in snapshot.nodes() {
        for existing in &node.pods {
            if existing.key == pod.key {
                continue;
            }
            if node.pods_with_required_anti_affinity > 0 && existing.has_required_anti_affinity {
                for t in Terms::of(&existing.pod).required_anti {
                    if t.matches(&pod.pod, &own_ns_labels) {
                        bump(&mut state.existing_anti, &t.topology_key, node, 1);
                    }
                }
            }
            if !has_required {
                continue;
            }
            let labels = ns.get(existing.namespace()).clone();
            if !state.terms.required_affinity.is_empty()
                && state
                    .terms
                    .required_affinity
                    .iter()
                    .all(|t| t.matches(&existing.pod, &labels))
            {
                for t in &state.terms.required_affinity {
                    bump(&mut state.affinity, &t.topology_key, node, 1);
                }
            }
            for t in &state.terms.required_anti {
                if t.matches(&existing.pod, &labels) {
                    bump(&mut state.anti, &t.topology_key, node, 1);
                }
            }
        }
    }
    Some(state)
}

pub fn filter(state: &State, node: &NodeInfo) -> Option<Status> {
    if !state.terms.required_affinity.is_empty() {
        let mut pods_exist = true;
        for t in &state.terms.required_affinity {
            let Some(v) = node.label(&t.topology_key) else {
                return Some(Status::unresolvable(PLUGIN, ERR_AFFINITY));
            };
            if state
                .affinity
                .get(&(t.topology_key.clone(), v.to_string()))
                .copied()
                .unwrap_or(0)
                <= 0
            {
                pods_exist = false;
            }
        }
        // The first pod of a group with affinity to itself goes anywhere.
        if !pods_exist && !(state.affinity.is_empty() && state.matches_own_affinity) {
            return Some(Status::unresolvable(PLUGIN, ERR_AFFINITY));
        }
    }
    for t in &state.terms.required_anti {
        if let Some(v) = node.label(&t.topology_key) {
            if state
                .anti
                .get(&(t.topology_key.clone(), v.to_string()))
                .copied()
                .unwrap_or(0)
                > 0
            {
                return Some(Status::unschedulable(PLUGIN, ERR_ANTI_AFFINITY));
            }
        }
    }
    if !state.existing_anti.is_empty() {
        for (k, v) in node.labels().into_iter().flatten() {
            if state
                .existing_anti
                .get(&(k.clone(), v.clone()))
                .copied()
                .unwrap_or(0)
                > 0
            {
                return Some(Status::unschedulable(PLUGIN, ERR_EXISTING_ANTI_AFFINITY));
            }
        }
    }
    None
}

/// The score, normalized to 0..=100 between the lowest and highest node;
/// `None` when neither the pod nor any existing pod has affinity terms.
pub fn score(state: &CycleState<'_>, snapshot: &Snapshot, nodes: &[&NodeInfo]) -> Option<Vec<i64>> {
    let pod = &state.pod;
    let terms = Terms::of(&pod.pod);
    if !terms.has_preferred() && snapshot.pods_with_affinity() == 0 {
        return None;
    }
    // Scoring objects are read through the snapshot only; namespace
    // selectors in preferred terms see no labels here.
    let empty = BTreeMap::new();
    let mut topology: HashMap<Pair, i64> = HashMap::new();
    for node in snapshot.nodes() {
        if !terms.has_preferred() && node.pods_with_affinity == 0 {
            continue;
        }
        for existing in &node.pods {
            if existing.key == pod.key {
                continue;
            }
            for t in &terms.preferred_affinity {
                if t.matches(&existing.pod, &empty) {
                    bump(&mut topology, &t.topology_key, node, t.weight);
                }
            }
            for t in &terms.preferred_anti {
                if t.matches(&existing.pod, &empty) {
                    bump(&mut topology, &t.topology_key, node, -t.weight);
                }
            }
            if existing.has_affinity {
                let theirs = Terms::of(&existing.pod);
                for t in &theirs.required_affinity {
                    if t.matches(&pod.pod, &empty) {
                        bump(
                            &mut topology,
                            &t.topology_key,
                            node,
                            HARD_POD_AFFINITY_WEIGHT,
                        );
                    }
                }
                for t in &theirs.preferred_affinity {
                    if t.matches(&pod.pod, &empty) {
                        bump(&mut topology, &t.topology_key, node, t.weight);
                    }
                }
                for t in &theirs.preferred_anti {
                    if t.matches(&pod.pod, &empty) {
                        bump(&mut topology, &t.topology_key, node, -t.weight);
                    }
                }
            }
        }
    }
    if topology.is_empty() {
        return None;
    }
    let raw: Vec<i64> = nodes
        .iter()
        .map(|n| {
            n.labels()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| topology.get(&(k.clone(), v.clone())))
                .sum()
        })
        .collect();
    let max = raw.iter().copied().max().unwrap_or(0);
    let min = raw.iter().copied().min().unwrap_or(0);
    let diff = max - min;
    Some(
        raw.into_iter()
            .map(|s| {
                if diff > 0 {
                    crate::scores::MAX_NODE_SCORE * (s - min) / diff
                } else {
                    0
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests;
