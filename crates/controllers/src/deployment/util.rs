//! The rollout arithmetic and bookkeeping of the Deployment controller,
//! without IO (upstream `pkg/controller/deployment/util`): surge and
//! unavailability fenceposts, the size of the new ReplicaSet, proportional
//! scaling, revision and replica annotations, the pod-template hash, status
//! and conditions.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetCondition,
};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The label that tells a deployment's ReplicaSets (and their pods) apart.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Set by `apps/v1beta1`-era rollbacks; still honoured upstream.
pub const DEPRECATED_ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Revision history kept in the annotation, in characters (upstream
/// `maxRevHistoryLengthInChars`).
pub const MAX_REV_HISTORY_CHARS: usize = 2000;

pub const PROGRESSING: &str = "Progressing";
pub const AVAILABLE: &str = "Available";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

// Reasons of the Progressing condition.
pub const REPLICA_SET_UPDATED: &str = "ReplicaSetUpdated";
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
pub const NEW_REPLICA_SET: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";
// Reasons of the Available condition.
pub const MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MINIMUM_REPLICAS_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
// Rollback event reasons.
pub const ROLLBACK_REVISION_NOT_FOUND: &str = "DeploymentRollbackRevisionNotFound";
pub const ROLLBACK_TEMPLATE_UNCHANGED: &str = "DeploymentRollbackTemplateUnchanged";
pub const ROLLBACK_DONE: &str = "DeploymentRollback";

pub const ROLLING_UPDATE: &str = "RollingUpdate";
pub const RECREATE: &str = "Recreate";

// ---------------------------------------------------------------------
// Accessors with the API's defaults.

pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn set_rs_replicas(rs: &mut ReplicaSet, n: i32) {
    rs.spec.get_or_insert_with(Default::default).replicas = Some(n);
}

pub fn rs_status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map(|s| s.replicas).unwrap_or(0)
}

pub fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

pub fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

pub fn rs_template(rs: &ReplicaSet) -> PodTemplateSpec {
    rs.spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default()
}

pub fn strategy_type(d: &Deployment) -> &str {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .unwrap_or(ROLLING_UPDATE)
}

pub fn is_rolling_update(d: &Deployment) -> bool {
    strategy_type(d) == ROLLING_UPDATE
}

pub fn paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

pub fn min_ready_seconds(d: &Deployment) -> i32 {
    d.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

/// `progressDeadlineSeconds`, unless unset or MaxInt32 (no deadline).
pub fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .filter(|s| *s != i32::MAX)
}

/// `revisionHistoryLimit`, unless unset or MaxInt32 (keep everything).
pub fn revision_history_limit(d: &Deployment) -> Option<i32> {
    d.spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .filter(|s| *s != i32::MAX)
}

pub fn generation(d: &Deployment) -> i64 {
    d.metadata.generation.unwrap_or(0)
}

pub fn annotation<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

// ---------------------------------------------------------------------
// Fenceposts.

/// Go's `intstr.GetScaledValueFromIntOrPercent`: an integer as is, a
/// percentage of `total` rounded up or down.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let Some(pct) = s.strip_suffix('%') else {
                return Err("invalid type: string is not a percentage".to_string());
            };
            let pct: i64 = pct
                .parse()
                .map_err(|_| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            let scaled = pct as f64 * total as f64 / 100.0;
            Ok(if round_up {
                scaled.ceil()
            } else {
                scaled.floor()
            } as i32)
        }
    }
}

/// Resolves maxSurge (rounded up) and maxUnavailable (rounded down)
/// together; if both come to zero, one pod may be unavailable, on the
/// theory that surge might not work because of quota.
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), String> {
    let zero = IntOrString::Int(0);
    let surge = scaled_value(max_surge.unwrap_or(&zero), desired, true)?;
    let mut unavailable = scaled_value(max_unavailable.unwrap_or(&zero), desired, false)?;
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    Ok((surge, unavailable))
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    // Validation refuses what does not resolve.
    resolve_fenceposts(
        ru.and_then(|r| r.max_surge.as_ref()),
        ru.and_then(|r| r.max_unavailable.as_ref()),
        replicas(d),
    )
    .unwrap_or((0, 1))
}

/// The most pods a rolling deployment may run above its replicas.
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling_update(d) {
        return 0;
    }
    fenceposts(d).0
}

/// The most pods a rolling deployment may have unavailable.
pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling_update(d) || replicas(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas(d))
}

// ---------------------------------------------------------------------
// Replica counts over sets of ReplicaSets.

pub fn spec_replicas_sum<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(rs_replicas).sum()
}

pub fn actual_replicas_sum<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(rs_status_replicas).sum()
}

pub fn ready_replicas_sum<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(rs_ready).sum()
}

pub fn available_replicas_sum<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(rs_available).sum()
}

/// How many replicas the new ReplicaSet should have now: up to the
/// surge limit for a rolling update, everything for Recreate.
pub fn new_rs_new_replicas(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: &ReplicaSet,
) -> Result<i32, String> {
    match strategy_type(d) {
        ROLLING_UPDATE => {
            let ru = d
                .spec
                .as_ref()
                .and_then(|s| s.strategy.as_ref())
                .and_then(|s| s.rolling_update.as_ref());
            let zero = IntOrString::Int(0);
            let surge = scaled_value(
                ru.and_then(|r| r.max_surge.as_ref()).unwrap_or(&zero),
                replicas(d),
                true,
            )?;
            let current = spec_replicas_sum(all.iter().copied());
            let max_total = replicas(d) + surge;
            if current >= max_total {
                return Ok(rs_replicas(new_rs));
            }
            let up = (max_total - current).min(replicas(d) - rs_replicas(new_rs));
            Ok(rs_replicas(new_rs) + up)
        }
        RECREATE => Ok(replicas(d)),
        other => Err(format!("deployment type {other} isn't supported")),
    }
}

/// Whether the new ReplicaSet holds every desired replica, available, and
/// both it and the deployment agree on that size.
pub fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else { return false };
    let Some(desired) =
        annotation(&rs.metadata, DESIRED_REPLICAS).and_then(|v| v.parse::<i32>().ok())
    else {
        return false;
    };
    rs_replicas(rs) == replicas(d) && desired == replicas(d) && rs_available(rs) == replicas(d)
}

fn int_annotation(rs: &ReplicaSet, key: &str) -> Option<i32> {
    annotation(&rs.metadata, key)?.parse().ok()
}

pub fn desired_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    int_annotation(rs, DESIRED_REPLICAS)
}

/// Go's `integer.RoundToInt32`: halves away from zero.
fn round_to_i32(a: f64) -> i32 {
    if a < 0.0 {
        (a - 0.5) as i32
    } else {
        (a + 0.5) as i32
    }
}

/// The share of `to_add` replicas a ReplicaSet gets when a deployment is
/// scaled in the middle of a rollout (upstream `GetProportion`).
pub fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = replica_set_fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

fn replica_set_fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    if replicas(d) == 0 {
        return -rs_replicas(rs);
    }
    let deployment_replicas = replicas(d) + max_surge(d);
    let annotated = int_annotation(rs, MAX_REPLICAS)
        .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    if annotated == 0 {
        return 0;
    }
    let size = (rs_replicas(rs) as f64 * deployment_replicas as f64) / annotated as f64;
    round_to_i32(size) - rs_replicas(rs)
}

/// New sizes of the active ReplicaSets when the deployment is scaled
/// during a rollout: the difference to replicas+maxSurge spread in
/// proportion to their sizes, leftovers to the largest (upstream
/// `scale`). `active` must be sorted as upstream sorts it: by size, newer
/// first when scaling up, older first when scaling down.
pub fn proportional_sizes(d: &Deployment, active: &[&ReplicaSet]) -> Vec<i32> {
    let total = spec_replicas_sum(active.iter().copied());
    let allowed = if replicas(d) > 0 {
        replicas(d) + max_surge(d)
    } else {
        0
    };
    let to_add = allowed - total;
    let mut added = 0;
    let mut sizes: Vec<i32> = active
        .iter()
        .map(|rs| {
            if to_add == 0 {
                return rs_replicas(rs);
            }
            let p = proportion(rs, d, to_add, added);
            added += p;
            rs_replicas(rs) + p
        })
        .collect();
    if to_add != 0 {
        if let Some(first) = sizes.first_mut() {
            *first = (*first + to_add - added).max(0);
        }
    }
    sizes
}

/// The only active ReplicaSet, or the newest if none is active; `None`
/// when several are active.
pub fn find_active_or_latest(
    new_rs: Option<&ReplicaSet>,
    old: &[ReplicaSet],
) -> Option<ReplicaSet> {
    if new_rs.is_none() && old.is_empty() {
        return None;
    }
    let mut old_sorted: Vec<&ReplicaSet> = old.iter().collect();
    old_sorted.sort_by(|a, b| by_creation(b, a));
    let actives: Vec<&ReplicaSet> = old_sorted
        .iter()
        .copied()
        .chain(new_rs)
        .filter(|rs| rs_replicas(rs) > 0)
        .collect();
    match actives.len() {
        0 => new_rs.or(old_sorted.first().copied()).cloned(),
        1 => Some(actives[0].clone()),
        _ => None,
    }
}

/// +1 to scale up, -1 down, 0 when the sum already matches (upstream's
/// `deploymentReplicasToAdd` sign).
pub fn proportional_direction(d: &Deployment, active: &[&ReplicaSet]) -> i32 {
    let total = spec_replicas_sum(active.iter().copied());
    let allowed = if replicas(d) > 0 {
        replicas(d) + max_surge(d)
    } else {
        0
    };
    (allowed - total).signum()
}

/// How many replicas old ReplicaSets may lose right now in a rolling
/// update without going below the availability floor, counting the new
/// ReplicaSet's unavailable pods (upstream `reconcileOldReplicaSets`).
pub fn max_scaled_down(d: &Deployment, all: &[&ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    let all_pods = spec_replicas_sum(all.iter().copied());
    let min_available = replicas(d) - max_unavailable(d);
    let new_unavailable = rs_replicas(new_rs) - rs_available(new_rs);
    all_pods - min_available - new_unavailable
}

// ---------------------------------------------------------------------
// Ordering (upstream `controller.ReplicaSetsBy*`).

fn created(rs: &ReplicaSet) -> Option<DateTime<Utc>> {
    rs.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

fn name(rs: &ReplicaSet) -> &str {
    rs.metadata.name.as_deref().unwrap_or_default()
}

/// Oldest first; the name breaks ties.
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    created(a)
        .cmp(&created(b))
        .then_with(|| name(a).cmp(name(b)))
}

/// Largest first; newer first among equals (for scaling up).
pub fn by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b)
        .cmp(&rs_replicas(a))
        .then_with(|| by_creation(b, a))
}

/// Largest first; older first among equals (for scaling down).
pub fn by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b)
        .cmp(&rs_replicas(a))
        .then_with(|| by_creation(a, b))
}

/// Lowest revision first; creation order when revisions tie or do not
/// parse.
pub fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    match (revision(a), revision(b)) {
        (Ok(x), Ok(y)) if x != y => x.cmp(&y),
        _ => by_creation(a, b),
    }
}

// ---------------------------------------------------------------------
// Revisions and annotations.

/// The revision annotation; 0 without one.
pub fn revision(rs: &ReplicaSet) -> Result<i64, std::num::ParseIntError> {
    match annotation(&rs.metadata, REVISION) {
        None => Ok(0),
        Some(v) => v.parse(),
    }
}

pub fn max_revision<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    rss.into_iter()
        .filter_map(|rs| revision(rs).ok())
        .max()
        .unwrap_or(0)
        .max(0)
}

/// The second highest revision (the one before the current).
pub fn last_revision<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    let (mut max, mut sec) = (0, 0);
    for v in rss.into_iter().filter_map(|rs| revision(rs).ok()) {
        if v >= max {
            sec = max;
            max = v;
        } else if v > sec {
            sec = v;
        }
    }
    sec
}

fn skip_copy(key: &str) -> bool {
    matches!(
        key,
        LAST_APPLIED
            | REVISION
            | REVISION_HISTORY
            | DESIRED_REPLICAS
            | MAX_REPLICAS
            | DEPRECATED_ROLLBACK_TO
    )
}

/// Sets the desired- and max-replicas annotations; whether they changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if a.get(k) != Some(&v) {
            a.insert(k.to_string(), v);
            changed = true;
        }
    }
    changed
}

pub fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    annotation(&rs.metadata, DESIRED_REPLICAS) != Some(desired.to_string().as_str())
        || annotation(&rs.metadata, MAX_REPLICAS) != Some(max.to_string().as_str())
}

/// Copies the deployment's annotations (but the revision and apply ones)
/// to the new ReplicaSet, raises its revision to `new_revision` when
/// lower (remembering the old one in the revision history: a rollback),
/// and, for a ReplicaSet not created yet, sets the replica annotations.
/// Whether anything changed.
pub fn set_new_replica_set_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = false;
    {
        let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
        for (k, v) in d.metadata.annotations.iter().flatten() {
            if skip_copy(k) || a.get(k) == Some(v) {
                continue;
            }
            a.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let old = a.get(REVISION).cloned();
    let old_int = match old.as_deref() {
        None | Some("") => 0,
        Some(v) => match v.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return false,
        },
    };
    if old_int < new_revision {
        a.insert(REVISION.to_string(), new_revision.to_string());
        changed = true;
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = a.get(REVISION_HISTORY).cloned().unwrap_or_default();
            if history.is_empty() {
                a.insert(REVISION_HISTORY.to_string(), old);
            } else {
                let mut entries: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old.len() + 1;
                let mut start = 0;
                while total > MAX_REV_HISTORY_CHARS && start < entries.len() {
                    total -= entries[start].len() + 1;
                    start += 1;
                }
                if total <= MAX_REV_HISTORY_CHARS {
                    entries = entries.split_off(start);
                    entries.push(&old);
                    let joined = entries.join(",");
                    a.insert(REVISION_HISTORY.to_string(), joined);
                }
            }
        }
    }
    if !exists && set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)) {
        changed = true;
    }
    changed
}

/// Sets the deployment's revision annotation; whether it changed.
pub fn set_deployment_revision(d: &mut Deployment, revision: &str) -> bool {
    let a = d.metadata.annotations.get_or_insert_with(BTreeMap::new);
    if a.get(REVISION).map(String::as_str) == Some(revision) {
        return false;
    }
    a.insert(REVISION.to_string(), revision.to_string());
    true
}

/// The deployment's annotations become the rollback target's, keeping
/// those that are never copied (upstream `SetDeploymentAnnotationsTo`).
pub fn set_deployment_annotations_to(d: &mut Deployment, rs: &ReplicaSet) {
    let mut kept: BTreeMap<String, String> = d
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| skip_copy(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in rs.metadata.annotations.iter().flatten() {
        if !skip_copy(k) {
            kept.insert(k.clone(), v.clone());
        }
    }
    d.metadata.annotations = Some(kept);
}

// ---------------------------------------------------------------------
// Templates and the hash.

fn without_hash(t: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = t.clone();
    if let Some(meta) = t.metadata.as_mut() {
        if let Some(labels) = meta.labels.as_mut() {
            labels.remove(POD_TEMPLATE_HASH);
        }
        if meta.labels.as_ref().is_some_and(|l| l.is_empty()) {
            meta.labels = None;
        }
        if meta.annotations.as_ref().is_some_and(|a| a.is_empty()) {
            meta.annotations = None;
        }
        // A null creationTimestamp is what templates carry.
        meta.creation_timestamp = None;
    }
    if t.metadata
        .as_ref()
        .is_some_and(|m| *m == Default::default())
    {
        t.metadata = None;
    }
    t
}

/// Whether two pod templates are the same but for the pod-template-hash
/// label (upstream `EqualIgnoreHash`).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

/// The oldest ReplicaSet whose template is the deployment's.
pub fn find_new_replica_set<'a>(d: &Deployment, rss: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let template = &d.spec.as_ref()?.template;
    let mut sorted: Vec<&ReplicaSet> = rss.iter().collect();
    sorted.sort_by(|a, b| by_creation(a, b));
    sorted
        .into_iter()
        .find(|rs| equal_ignore_hash(&rs_template(rs), template))
}

/// The pod-template hash that names a Deployment's ReplicaSets
/// (upstream `controller.ComputeHash`; see [`crate::history::hash_template`]).
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    crate::history::hash_template(template, collision_count)
}

// ---------------------------------------------------------------------
// Conditions and status.

/// Condition times as the API stores them (whole seconds).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: impl Into<String>,
    now: DateTime<Utc>,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.into()),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

pub fn get_condition<'a>(
    status: &'a DeploymentStatus,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

pub fn condition_reason<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a str> {
    get_condition(status, type_)?.reason.as_deref()
}

/// Adds or replaces a condition of its type. One with the same status and
/// reason is left alone; one with the same status keeps its transition
/// time. The new condition goes last, as upstream appends it.
pub fn set_condition(status: &mut DeploymentStatus, mut c: DeploymentCondition) {
    if let Some(cur) = get_condition(status, &c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove_condition(status, &c.type_.clone());
    status.conditions.get_or_insert_with(Vec::new).push(c);
}

pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(cs) = status.conditions.as_mut() {
        cs.retain(|c| c.type_ != type_);
        if cs.is_empty() {
            status.conditions = None;
        }
    }
}

/// A ReplicaSet's failure condition as a deployment condition.
pub fn replica_set_to_deployment_condition(c: &ReplicaSetCondition) -> DeploymentCondition {
    DeploymentCondition {
        type_: c.type_.clone(),
        status: c.status.clone(),
        last_transition_time: c.last_transition_time.clone(),
        last_update_time: c.last_transition_time.clone(),
        reason: c.reason.clone(),
        message: c.message.clone(),
    }
}

fn nz(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

/// The status the ReplicaSets give, with the Available condition
/// (upstream `calculateStatus`). Zero counts are left out, as the Go
/// types' `omitempty` leaves them out.
pub fn calculate_status(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
    now: DateTime<Utc>,
) -> DeploymentStatus {
    let available = available_replicas_sum(all.iter().copied());
    let total = spec_replicas_sum(all.iter().copied());
    let unavailable = (total - available).max(0);
    let old = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation.filter(|g| *g != 0),
        replicas: nz(actual_replicas_sum(all.iter().copied())),
        updated_replicas: nz(actual_replicas_sum(new_rs)),
        ready_replicas: nz(ready_replicas_sum(all.iter().copied())),
        available_replicas: nz(available),
        unavailable_replicas: nz(unavailable),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
    };
    if available >= replicas(d) - max_unavailable(d) {
        set_condition(
            &mut status,
            new_condition(
                AVAILABLE,
                "True",
                MINIMUM_REPLICAS_AVAILABLE,
                "Deployment has minimum availability.",
                now,
            ),
        );
    } else {
        set_condition(
            &mut status,
            new_condition(
                AVAILABLE,
                "False",
                MINIMUM_REPLICAS_UNAVAILABLE,
                "Deployment does not have minimum availability.",
                now,
            ),
        );
    }
    status
}

fn count(n: Option<i32>) -> i32 {
    n.unwrap_or(0)
}

/// All desired replicas updated and available, no old ones left, and the
/// latest generation observed.
pub fn deployment_complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let want = replicas(d);
    count(s.updated_replicas) == want
        && count(s.replicas) == want
        && count(s.available_replicas) == want
        && s.observed_generation.unwrap_or(0) >= generation(d)
}

/// Whether `new` shows progress over the deployment's current status: more
/// updated, ready or available pods, or fewer old ones.
pub fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let old_old = count(old.replicas) - count(old.updated_replicas);
    let new_old = count(new.replicas) - count(new.updated_replicas);
    count(new.updated_replicas) > count(old.updated_replicas)
        || new_old < old_old
        || count(new.ready_replicas) > count(old.ready_replicas)
        || count(new.available_replicas) > count(old.available_replicas)
}

/// Whether the Progressing condition is older than the deadline (or says
/// so already).
pub fn deployment_timed_out(d: &Deployment, new: &DeploymentStatus, now: DateTime<Utc>) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(c) = get_condition(new, PROGRESSING) else {
        return false;
    };
    match c.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => return false,
        Some(TIMED_OUT) => return true,
        _ => {}
    }
    let Some(from) = c.last_update_time.as_ref() else {
        return false;
    };
    from.0 + chrono::Duration::seconds(deadline.into()) < now
}

/// The deployment's Progressing condition after a rollout step (upstream
/// `syncRolloutStatus` without the IO).
pub fn rollout_status(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
    now: DateTime<Utc>,
) -> DeploymentStatus {
    let mut status = calculate_status(all, new_rs, d, now);
    if progress_deadline(d).is_none() {
        remove_condition(&mut status, PROGRESSING);
    }
    let current_status = d.status.clone().unwrap_or_default();
    let current = get_condition(&current_status, PROGRESSING);
    let complete_before = count(status.replicas) == count(status.updated_replicas)
        && current.is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
    let dname = d.metadata.name.as_deref().unwrap_or_default();
    let rs_name = new_rs.and_then(|rs| rs.metadata.name.as_deref());
    if progress_deadline(d).is_some() && !complete_before {
        if deployment_complete(d, &status) {
            let msg = match rs_name {
                Some(n) => format!("ReplicaSet \"{n}\" has successfully progressed."),
                None => format!("Deployment \"{dname}\" has successfully progressed."),
            };
            set_condition(
                &mut status,
                new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, msg, now),
            );
        } else if deployment_progressing(d, &status) {
            let msg = match rs_name {
                Some(n) => format!("ReplicaSet \"{n}\" is progressing."),
                None => format!("Deployment \"{dname}\" is progressing."),
            };
            let mut c = new_condition(PROGRESSING, "True", REPLICA_SET_UPDATED, msg, now);
            if let Some(cur) = current {
                if cur.status == "True" {
                    c.last_transition_time = cur.last_transition_time.clone();
                }
                remove_condition(&mut status, PROGRESSING);
            }
            set_condition(&mut status, c);
        } else if deployment_timed_out(d, &status, now) {
            let msg = match rs_name {
                Some(n) => format!("ReplicaSet \"{n}\" has timed out progressing."),
                None => format!("Deployment \"{dname}\" has timed out progressing."),
            };
            set_condition(
                &mut status,
                new_condition(PROGRESSING, "False", TIMED_OUT, msg, now),
            );
        }
    }
    // Failures of the new ReplicaSet first, else of any.
    let failures = |rs: &ReplicaSet| -> Vec<DeploymentCondition> {
        rs.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .filter(|c| c.type_ == REPLICA_FAILURE)
            .map(replica_set_to_deployment_condition)
            .collect()
    };
    let mut found = new_rs.map(failures).unwrap_or_default();
    if found.is_empty() {
        found = all.iter().flat_map(|rs| failures(rs)).collect();
    }
    match found.into_iter().next() {
        Some(c) => set_condition(&mut status, c),
        None => remove_condition(&mut status, REPLICA_FAILURE),
    }
    status
}

/// When to look again at a deployment whose rollout shows no progress, so
/// the deadline is noticed: `None` if there is nothing to wait for.
pub fn stuck_requeue_after(
    d: &Deployment,
    new: &DeploymentStatus,
    now: DateTime<Utc>,
) -> Option<std::time::Duration> {
    let deadline = progress_deadline(d)?;
    let current_status = d.status.clone().unwrap_or_default();
    let current = get_condition(&current_status, PROGRESSING)?;
    if deployment_complete(d, new) || current.reason.as_deref() == Some(TIMED_OUT) {
        return None;
    }
    let from = current.last_update_time.as_ref()?.0;
    let after = from + chrono::Duration::seconds(deadline.into()) - now;
    // Past (or within a second of) the deadline: look again at once.
    // Otherwise a second later than due, against clock skew.
    let after = after.to_std().unwrap_or_default();
    if after < std::time::Duration::from_secs(1) {
        Some(std::time::Duration::from_millis(100))
    } else {
        Some(after + std::time::Duration::from_secs(1))
    }
}
