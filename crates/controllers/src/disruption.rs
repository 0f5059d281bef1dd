//! The disruption controller (upstream `pkg/controller/disruption`,
//! component `controllermanager`): keeps each PodDisruptionBudget's status
//! true to its pods. A sync of one budget:
//! 1. finds its pods (the selector over the namespace; a missing selector
//!    selects nothing) and the expected pod count: the pods themselves for an
//!    integer `minAvailable`, else the scale of their controllers
//!    (ReplicaSet, Deployment, StatefulSet, ReplicationController);
//! 2. counts healthy pods (Ready, not being deleted, not recently evicted
//!    through the budget), drops `disruptedPods` entries the deletion of
//!    which has been seen or that are older than two minutes;
//! 3. writes currentHealthy, desiredHealthy, expectedPods,
//!    disruptionsAllowed, observedGeneration and the DisruptionAllowed
//!    condition (SufficientPods / InsufficientPods / SyncFailed).
//!
//! The eviction subresource of the API server reads this status and takes
//! one disruption from it for each pod it deletes.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, PostParams};
use tokio::task::JoinSet;

use crate::events::Recorder;
use crate::informer::{Change, Informer, Key};
use crate::owner;
use crate::queue::WorkQueue;
use crate::runner::{self, is_not_found, Action, Reconciler, Result};
use crate::Context;

/// Upstream names the disruption controller's event source so.
const COMPONENT: &str = "controllermanager";
/// How long an eviction's pod may take to go before the budget counts it
/// healthy again (upstream `DeletionTimeout`).
const DELETION_TIMEOUT: Duration = Duration::from_secs(120);
const CONDITION: &str = "DisruptionAllowed";

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let pdbs = ctx.informers.get::<PodDisruptionBudget>();
    let pods = ctx.informers.get::<Pod>();
    let controller = Arc::new(DisruptionController {
        client: ctx.client.clone(),
        pdbs: pdbs.clone(),
        pods: pods.clone(),
        replica_sets: ctx.informers.get::<ReplicaSet>(),
        deployments: ctx.informers.get::<Deployment>(),
        stateful_sets: ctx.informers.get::<StatefulSet>(),
        controllers: ctx.informers.get::<ReplicationController>(),
        recorder: ctx.recorder(COMPONENT),
    });
    let queue = WorkQueue::new();
    {
        let queue = queue.clone();
        pdbs.on_change(move |change| queue.add(Key::of(change.object().as_ref())));
    }
    {
        let queue = queue.clone();
        let pdbs = pdbs.clone();
        pods.on_change(move |change| {
            let mut keys = HashSet::new();
            let mut look = |pod: &Pod| {
                let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
                let labels = owner::labels(&pod.metadata);
                for pdb in pdbs.list_namespace(ns) {
                    let sel = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
                    if owner::selector(sel).matches(labels) {
                        keys.insert(Key::of(pdb.as_ref()));
                    }
                }
            };
            match change {
                Change::Updated { old, new } => {
                    look(old);
                    look(new);
                }
                other => look(other.object()),
            }
            for key in keys {
                queue.add(key);
            }
        });
    }
    let c = controller.clone();
    let synced = async move {
        c.pdbs.wait_synced().await;
        c.pods.wait_synced().await;
        c.replica_sets.wait_synced().await;
        c.deployments.wait_synced().await;
        c.stateful_sets.wait_synced().await;
        c.controllers.wait_synced().await;
    };
    runner::spawn_when_synced(tasks, synced, controller, queue, 1);
}

struct DisruptionController {
    client: kube::Client,
    pdbs: Informer<PodDisruptionBudget>,
    pods: Informer<Pod>,
    replica_sets: Informer<ReplicaSet>,
    deployments: Informer<Deployment>,
    stateful_sets: Informer<StatefulSet>,
    controllers: Informer<ReplicationController>,
    recorder: Recorder,
}

/// Upstream `GetScaledValueFromIntOrPercent`.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let Some(p) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else {
                return Err(
                    "invalid value for IntOrString: invalid type: string is not a percentage"
                        .to_string(),
                );
            };
            let product = p * i64::from(total);
            Ok(if round_up {
                (product + 99).div_euclid(100) as i32
            } else {
                product.div_euclid(100) as i32
            })
        }
    }
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
}

impl DisruptionController {
    /// The (uid, scale) of the controller of a pod (upstream's finders: a
    /// ReplicaSet's Deployment if it has one, else the ReplicaSet; a
    /// StatefulSet; a ReplicationController).
    fn scale_of(&self, ns: &str, r: &OwnerReference) -> Option<(String, i32)> {
        let key = Key::new(ns, r.name.clone());
        let group = group_of(&r.api_version);
        let uid_ok = |uid: &Option<String>| uid.as_deref() == Some(r.uid.as_str());
        match (r.kind.as_str(), group) {
            ("ReplicaSet", "apps" | "extensions") => {
                let rs = self
                    .replica_sets
                    .get(&key)
                    .filter(|rs| uid_ok(&rs.metadata.uid))?;
                if let Some(d) =
                    owner::controller_of(&rs.metadata).filter(|d| d.kind == "Deployment")
                {
                    let dep = self
                        .deployments
                        .get(&Key::new(ns, d.name.clone()))
                        .filter(|dep| dep.metadata.uid.as_deref() == Some(d.uid.as_str()))?;
                    let replicas = dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    return Some((d.uid.clone(), replicas));
                }
                let replicas = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                Some((r.uid.clone(), replicas))
            }
            ("StatefulSet", "apps") => {
                let ss = self
                    .stateful_sets
                    .get(&key)
                    .filter(|s| uid_ok(&s.metadata.uid))?;
                Some((
                    r.uid.clone(),
                    ss.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                ))
            }
            ("ReplicationController", "") => {
                let rc = self
                    .controllers
                    .get(&key)
                    .filter(|s| uid_ok(&s.metadata.uid))?;
                Some((
                    r.uid.clone(),
                    rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                ))
            }
            _ => None,
        }
    }

    /// Upstream `getExpectedScale`: the sum of the pods' controllers'
    /// scales, and the pods without a controller.
    fn expected_scale(&self, ns: &str, pods: &[Arc<Pod>]) -> Result<(i32, Vec<String>), String> {
        let mut seen = HashSet::new();
        let mut total = 0;
        let mut unmanaged = Vec::new();
        for pod in pods {
            let Some(r) = owner::controller_of(&pod.metadata) else {
                unmanaged.push(pod.metadata.name.clone().unwrap_or_default());
                continue;
            };
            let Some((uid, scale)) = self.scale_of(ns, r) else {
                return Err(format!(
                    "found no controllers for pod {:?}",
                    pod.metadata.name.as_deref().unwrap_or_default()
                ));
            };
            if seen.insert(uid) {
                total += scale;
            }
        }
        Ok((total, unmanaged))
    }

    async fn write(
        &self,
        pdb: &PodDisruptionBudget,
        status: PodDisruptionBudgetStatus,
    ) -> Result<()> {
        let mut updated = pdb.clone();
        updated.status = Some(status);
        let api: Api<PodDisruptionBudget> = Api::namespaced(
            self.client.clone(),
            pdb.metadata.namespace.as_deref().unwrap_or_default(),
        );
        match api
            .replace_status(
                pdb.metadata.name.as_deref().unwrap_or_default(),
                &PostParams::default(),
                serde_json::to_vec(&updated).unwrap_or_default(),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Upstream `failSafe`: no disruptions while the budget cannot be judged.
    async fn fail_safe(&self, pdb: &PodDisruptionBudget, message: String) -> Result<()> {
        let mut status = pdb.status.clone().unwrap_or_default();
        status.disruptions_allowed = 0;
        let observed = status.observed_generation;
        set_condition(
            status.conditions.get_or_insert_with(Vec::new),
            "False",
            "SyncFailed",
            &message,
            observed,
        );
        self.write(pdb, status).await
    }
}

/// Upstream `apimeta.SetStatusCondition` for the DisruptionAllowed condition.
fn set_condition(
    conditions: &mut Vec<Condition>,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    let now = Time(Utc::now());
    match conditions.iter_mut().find(|c| c.type_ == CONDITION) {
        Some(c) => {
            if c.status != status {
                c.status = status.to_string();
                c.last_transition_time = now;
            }
            c.reason = reason.to_string();
            c.message = message.to_string();
            c.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: CONDITION.to_string(),
            status: status.to_string(),
            reason: reason.to_string(),
            message: message.to_string(),
            observed_generation: generation,
            last_transition_time: now,
        }),
    }
}

/// Upstream `countHealthyPods`.
pub fn count_healthy(
    pods: &[Arc<Pod>],
    disrupted: &BTreeMap<String, Time>,
    now: DateTime<Utc>,
) -> i32 {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let name = p.metadata.name.as_deref().unwrap_or_default();
            disrupted
                .get(name)
                .is_none_or(|t| t.0 + DELETION_TIMEOUT <= now)
        })
        .filter(|p| crate::pod::is_ready(p))
        .count() as i32
}

#[async_trait::async_trait]
impl Reconciler for DisruptionController {
    fn name(&self) -> &'static str {
        "disruption-controller"
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let Some(pdb) = self.pdbs.get(key) else {
            return Ok(Action::Done);
        };
        let spec = pdb.spec.clone().unwrap_or_default();
        let selector = owner::selector(spec.selector.as_ref());
        let pods: Vec<Arc<Pod>> = self
            .pods
            .list_namespace(&key.namespace)
            .into_iter()
            .filter(|p| selector.matches(owner::labels(&p.metadata)))
            .collect();
        if pods.is_empty() {
            self.recorder
                .normal(pdb.as_ref(), "NoPods", "No matching pods found");
        }

        let counts = (|| -> Result<(i32, i32, Vec<String>), String> {
            if let Some(max) = &spec.max_unavailable {
                let (expected, unmanaged) = self.expected_scale(&key.namespace, &pods)?;
                let max = scaled_value(max, expected, true)?;
                return Ok((expected, (expected - max).max(0), unmanaged));
            }
            match &spec.min_available {
                Some(IntOrString::Int(min)) => Ok((pods.len() as i32, *min, Vec::new())),
                Some(min) => {
                    let (expected, unmanaged) = self.expected_scale(&key.namespace, &pods)?;
                    Ok((expected, scaled_value(min, expected, true)?, unmanaged))
                }
                None => Ok((0, 0, Vec::new())),
            }
        })();
        let (expected, desired, unmanaged) = match counts {
            Ok(c) => c,
            Err(message) => {
                self.recorder.warning(
                    pdb.as_ref(),
                    "CalculateExpectedPodCountFailed",
                    format!("Failed to calculate the number of expected pods: {message}"),
                );
                self.fail_safe(&pdb, message).await?;
                return Ok(Action::Done);
            }
        };
        if !unmanaged.is_empty() {
            self.recorder.warning(
                pdb.as_ref(),
                "UnmanagedPods",
                format!(
                    "Pods selected by this PodDisruptionBudget (selector: {}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.",
                    api::labels::format_metav1(spec.selector.as_ref())
                ),
            );
        }

        // Evictions whose pod is not gone yet, until they time out.
        let now = Utc::now();
        let old = pdb.status.clone().unwrap_or_default();
        let mut disrupted = BTreeMap::new();
        let mut recheck: Option<DateTime<Utc>> = None;
        for pod in &pods {
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let name = pod.metadata.name.clone().unwrap_or_default();
            let Some(at) = old.disrupted_pods.as_ref().and_then(|d| d.get(&name)) else {
                continue;
            };
            let expected_deletion = at.0 + DELETION_TIMEOUT;
            if expected_deletion < now {
                self.recorder.warning(
                    pod.as_ref(),
                    "NotDeleted",
                    format!(
                        "Pod was expected by PDB {}/{} to be deleted but it wasn't",
                        key.namespace, key.name
                    ),
                );
            } else {
                recheck = Some(recheck.map_or(expected_deletion, |r| r.min(expected_deletion)));
                disrupted.insert(name, at.clone());
            }
        }
        let healthy = count_healthy(&pods, &disrupted, now);
        let allowed = if expected <= 0 {
            0
        } else {
            (healthy - desired).max(0)
        };
        let generation = pdb.metadata.generation;
        let mut status = PodDisruptionBudgetStatus {
            current_healthy: healthy,
            desired_healthy: desired,
            expected_pods: expected,
            disruptions_allowed: allowed,
            disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
            observed_generation: generation,
            conditions: old.conditions.clone(),
        };
        let (cond_status, reason) = if allowed > 0 {
            ("True", "SufficientPods")
        } else {
            ("False", "InsufficientPods")
        };
        let up_to_date = old.conditions.iter().flatten().any(|c| {
            c.type_ == CONDITION
                && c.status == cond_status
                && c.reason == reason
                && c.observed_generation == generation
        });
        let same = old.current_healthy == status.current_healthy
            && old.desired_healthy == status.desired_healthy
            && old.expected_pods == status.expected_pods
            && old.disruptions_allowed == status.disruptions_allowed
            && old.disrupted_pods.clone().unwrap_or_default()
                == status.disrupted_pods.clone().unwrap_or_default()
            && old.observed_generation == generation
            && up_to_date;
        if !same {
            set_condition(
                status.conditions.get_or_insert_with(Vec::new),
                cond_status,
                reason,
                "",
                generation,
            );
            self.write(&pdb, status).await?;
        }
        Ok(match recheck {
            Some(at) => Action::RequeueAfter(
                (at - now).to_std().unwrap_or_default() + Duration::from_millis(100),
            ),
            None => Action::Done,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(name: &str, ready: bool) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn percentages_round_up_as_upstream() {
        assert_eq!(
            scaled_value(&IntOrString::String("50%".into()), 3, true),
            Ok(2)
        );
        assert_eq!(
            scaled_value(&IntOrString::String("10%".into()), 5, true),
            Ok(1)
        );
        assert_eq!(
            scaled_value(&IntOrString::String("100%".into()), 4, true),
            Ok(4)
        );
        assert_eq!(scaled_value(&IntOrString::Int(2), 10, true), Ok(2));
        assert!(scaled_value(&IntOrString::String("two".into()), 3, true).is_err());
    }

    #[test]
    fn recently_evicted_and_unready_pods_are_not_healthy() {
        let pods = vec![pod("a", true), pod("b", true), pod("c", false)];
        let now = Utc::now();
        assert_eq!(count_healthy(&pods, &BTreeMap::new(), now), 2);
        let disrupted = BTreeMap::from([("a".to_string(), Time(now))]);
        assert_eq!(count_healthy(&pods, &disrupted, now), 1);
        let expired =
            BTreeMap::from([("a".to_string(), Time(now - chrono::Duration::seconds(121)))]);
        assert_eq!(count_healthy(&pods, &expired, now), 2);
    }
}
