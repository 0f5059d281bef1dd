//! DefaultPreemption (upstream's PostFilter): when a pod fits nowhere, find
//! nodes where evicting lower-priority pods makes room, keep as many of
//! them as still leaves room (PodDisruptionBudget-protected ones first),
//! pick the node that disrupts least, nominate the pod there and evict the
//! victims. The choice is pure; [`evict`] does the IO.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use api::labels::LabelSelector;
use chrono::Utc;
use controllers::events::Recorder;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::Client;
use serde_json::json;

use crate::algorithm::{Algorithm, FitError, Objects};
use crate::filters::Status;
use crate::snapshot::{NodeInfo, PodInfo, Snapshot};

pub const PLUGIN: &str = "DefaultPreemption";
pub const ERR_NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const ERR_NO_VICTIMS: &str = "No preemption victims found for incoming pod";
pub const ERR_POLICY_NEVER: &str = "not eligible due to preemptionPolicy=Never.";
pub const ERR_TERMINATING: &str = "not eligible due to a terminating pod on the nominated node.";

/// Nodes to dry-run at least, and the share of nodes
/// (`minCandidateNodesAbsolute`, `minCandidateNodesPercentage`).
const MIN_CANDIDATES: usize = 100;
const MIN_CANDIDATES_PERCENTAGE: usize = 10;

#[derive(Debug)]
pub enum Outcome {
    /// Evict `victims` from `node` and nominate the pod there.
    Nominate {
        node: String,
        victims: Vec<Arc<PodInfo>>,
    },
    /// Preemption cannot help; `message` goes after the filters' reasons.
    Fail { message: String },
}

fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

fn start_time(p: &PodInfo) -> Option<chrono::DateTime<Utc>> {
    p.pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0)
}

/// Higher priority first, then the one running longer (upstream's
/// `MoreImportantPod`).
fn more_important(a: &PodInfo, b: &PodInfo) -> std::cmp::Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| match (start_time(a), start_time(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        })
}

struct Candidate {
    node: String,
    victims: Vec<Arc<PodInfo>>,
    pdb_violations: usize,
}

fn fail(message: String) -> Outcome {
    Outcome::Fail {
        message: format!("preemption: {}", message.trim_end_matches('.')),
    }
}

/// Decides what preemption does for `pod`, which failed with `fit`.
pub fn preempt(
    snapshot: &Snapshot,
    pod: &Arc<Pod>,
    objects: &dyn Objects,
    fit: &FitError,
    nominated: &HashMap<String, Vec<Arc<PodInfo>>>,
) -> Outcome {
    let spec = pod.spec.as_ref();
    if spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
        return fail(ERR_POLICY_NEVER.into());
    }
    let own_priority = priority(pod);
    if let Some(node) = pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .and_then(|n| snapshot.node(n))
    {
        let terminating = node
            .pods
            .iter()
            .any(|p| p.pod.metadata.deletion_timestamp.is_some() && p.priority < own_priority);
        if terminating {
            return fail(ERR_TERMINATING.into());
        }
    }
    let all = snapshot.nodes();
    let mut statuses: BTreeMap<String, Status> = BTreeMap::new();
    let mut potential: Vec<&NodeInfo> = Vec::new();
    for node in all {
        let helpful = fit.prefilter.is_none()
            && fit
                .node_status
                .get(&node.name)
                .is_some_and(|s| !s.unresolvable);
        if helpful {
            potential.push(node);
        } else {
            statuses.insert(
                node.name.clone(),
                Status::unresolvable(PLUGIN, ERR_NOT_HELPFUL),
            );
        }
    }
    if !potential.is_empty() {
        let algorithm = Algorithm::default();
        if let Ok(state) = algorithm.prefilter(snapshot, pod, objects, nominated) {
            let wanted = (all.len() * MIN_CANDIDATES_PERCENTAGE / 100)
                .max(MIN_CANDIDATES)
                .min(all.len());
            let mut candidates = Vec::new();
            for node in potential {
                if candidates.len() >= wanted {
                    break;
                }
                match select_victims(&state, node, objects) {
                    Ok((victims, pdb_violations)) => candidates.push(Candidate {
                        node: node.name.clone(),
                        victims,
                        pdb_violations,
                    }),
                    Err(status) => {
                        statuses.insert(node.name.clone(), status);
                    }
                }
            }
            if let Some(best) = pick(candidates) {
                return Outcome::Nominate {
                    node: best.node,
                    victims: best.victims,
                };
            }
        }
    }
    let inner = FitError {
        num_all_nodes: all.len(),
        node_status: statuses,
        ..Default::default()
    };
    fail(inner.message())
}

/// Upstream's `SelectVictimsOnNode`: remove every lower-priority pod; if
/// the pod then fits, add back as many as possible, most important first,
/// PDB-protected ones before the others.
fn select_victims(
    state: &crate::algorithm::CycleState<'_>,
    node: &NodeInfo,
    objects: &dyn Objects,
) -> Result<(Vec<Arc<PodInfo>>, usize), Status> {
    let own = state.pod.priority;
    let mut trial = node.clone();
    let mut potential: Vec<Arc<PodInfo>> = node
        .pods
        .iter()
        .filter(|p| p.priority < own)
        .cloned()
        .collect();
    if potential.is_empty() {
        return Err(Status::unresolvable(PLUGIN, ERR_NO_VICTIMS));
    }
    for p in &potential {
        trial.remove_pod(&p.key);
    }
    if let Some(status) = Algorithm::filter(state, &trial, objects) {
        return Err(status);
    }
    potential.sort_by(|a, b| more_important(a, b));
    let (violating, fine) = split_by_pdb(&potential, objects);
    let mut victims = Vec::new();
    let mut violations = 0;
    for (list, counts) in [(violating, true), (fine, false)] {
        for p in list {
            trial.add_pod(p.clone());
            if Algorithm::filter(state, &trial, objects).is_some() {
                trial.remove_pod(&p.key);
                if counts {
                    violations += 1;
                }
                victims.push(p);
            }
        }
    }
    victims.sort_by(|a, b| more_important(a, b));
    Ok((victims, violations))
}

/// Splits pods into those whose eviction would break a
/// PodDisruptionBudget and the rest (upstream's `filterPodsWithPDBViolation`).
fn split_by_pdb(
    pods: &[Arc<PodInfo>],
    objects: &dyn Objects,
) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: HashMap<String, i32> = HashMap::new();
    let mut violating = Vec::new();
    let mut fine = Vec::new();
    for p in pods {
        let mut breaks = false;
        for pdb in objects.pdbs(p.namespace()) {
            let Some(spec) = pdb.spec.as_ref() else {
                continue;
            };
            let selector = LabelSelector::from_metav1(spec.selector.as_ref())
                .unwrap_or_else(|_| LabelSelector::nothing());
            if selector.is_empty() || !selector.matches_opt(p.labels()) {
                continue;
            }
            let key = format!(
                "{}/{}",
                p.namespace(),
                pdb.metadata.name.as_deref().unwrap_or_default()
            );
            let left = allowed.entry(key).or_insert_with(|| {
                pdb.status
                    .as_ref()
                    .map(|s| s.disruptions_allowed)
                    .unwrap_or(0)
            });
            *left -= 1;
            if *left < 0 {
                breaks = true;
            }
        }
        if breaks {
            violating.push(p.clone());
        } else {
            fine.push(p.clone());
        }
    }
    (violating, fine)
}

/// Upstream's `pickOneNodeForPreemption`: fewest PDB violations, then the
/// lowest highest-priority victim, the lowest priority sum, the fewest
/// victims; the first such node.
fn pick(candidates: Vec<Candidate>) -> Option<Candidate> {
    candidates.into_iter().min_by_key(|c| {
        let highest = c
            .victims
            .first()
            .map(|v| v.priority as i64)
            .unwrap_or(i64::MIN);
        let sum: i64 = c
            .victims
            .iter()
            .map(|v| v.priority as i64 + i32::MAX as i64 + 1)
            .sum();
        (c.pdb_violations, highest, sum, c.victims.len())
    })
}

/// Evicts one victim as upstream does: the `DisruptionTarget` condition,
/// the deletion, and a `Preempted` event on the victim.
pub async fn evict(
    client: Client,
    recorder: Recorder,
    victim: Arc<Pod>,
    preemptor: Arc<Pod>,
    node: String,
) {
    let ns = victim.metadata.namespace.clone().unwrap_or_default();
    let name = victim.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client, &ns);
    let scheduler = preemptor
        .spec
        .as_ref()
        .and_then(|s| s.scheduler_name.clone())
        .unwrap_or_else(|| crate::SCHEDULER_NAME.into());
    let condition = json!({"status": {"conditions": [{
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "PreemptionByScheduler",
        "message": format!("{scheduler}: preempting to accommodate a higher priority pod"),
        "lastTransitionTime": Time(Utc::now()),
    }]}});
    if let Err(e) = api
        .patch_status(&name, &PatchParams::default(), &Patch::Strategic(condition))
        .await
    {
        tracing::debug!(pod = %name, error = %e, "marking a preemption victim");
    }
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => recorder.normal(
            victim.as_ref(),
            "Preempted",
            format!(
                "Preempted by pod {} on node {node}",
                preemptor.metadata.uid.as_deref().unwrap_or_default()
            ),
        ),
        Err(e) => tracing::warn!(pod = %name, error = %e, "deleting a preemption victim"),
    }
}

#[cfg(test)]
mod tests;
