//! apps/v1: Deployment, ReplicaSet, StatefulSet, DaemonSet
//! (`pkg/apis/apps/validation` and the strategies' update rules).

use super::common::*;
use super::json::*;
use super::pod;
use crate::labels::LabelSelector;
use crate::validation::field::{ErrorList, FieldError, Path};
use crate::validation::{validate_nonnegative_field, FIELD_IMMUTABLE_ERROR_MSG};
use serde_json::Value;

/// The selector of `spec` as upstream's `LabelSelectorAsSelector` sees it
/// (`None` when it cannot be converted).
fn spec_selector(spec: &Value) -> Option<LabelSelector> {
    let sel = label_selector(spec, "selector");
    if obj(spec, "selector").is_some() && sel.is_none() {
        return None;
    }
    LabelSelector::from_metav1(sel.as_ref()).ok()
}

/// `spec.selector`: required, valid and not empty.
fn validate_required_selector(spec: &Value, kind_word: &str, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    match obj(spec, "selector") {
        None => errs.push(FieldError::required(&path.child("selector"), "")),
        Some(sel) => {
            errs.extend(label_selector_errs(
                spec,
                "selector",
                false,
                &path.child("selector"),
            ));
            let n = sel
                .get("matchLabels")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
                + arr(sel, "matchExpressions").len();
            if n == 0 {
                errs.push(FieldError::invalid(
                    &path.child("selector"),
                    selector_value(Some(sel)),
                    format!("empty selector is invalid for {kind_word}"),
                ));
            }
        }
    }
    errs
}

fn selector_mismatch(
    spec: &Value,
    sel: &LabelSelector,
    template_path: &Path,
) -> Option<FieldError> {
    let labels = string_map(child(child(spec, "template"), "metadata"), "labels");
    (!sel.matches_opt(labels.as_ref())).then(|| {
        FieldError::invalid(
            &template_path.child("metadata").child("labels"),
            map_value(labels.as_ref()),
            "`selector` does not match template `labels`",
        )
    })
}

/// `ValidatePodTemplateSpecForReplicaSet`.
fn validate_template_for_replica_set(
    spec: &Value,
    sel: &LabelSelector,
    kind: &str,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let tp = path.child("template");
    if !sel.is_empty() {
        errs.extend(
            selector_mismatch(spec, sel, &tp)
                .into_iter()
                .collect::<ErrorList>(),
        );
    }
    let tmpl = child(spec, "template");
    errs.extend(pod::validate_pod_template_spec(tmpl, &tp));
    let tspec = child(tmpl, "spec");
    let rp = str_of(tspec, "restartPolicy");
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            &tp.child("spec").child("restartPolicy"),
            rp,
            &["Always"],
        ));
    }
    if get(tspec, "activeDeadlineSeconds").is_some() {
        errs.push(FieldError::forbidden(
            &tp.child("spec").child("activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    errs
}

// -------------------------------------------------------------- Deployment

/// `ValidateDeploymentSpec`.
pub(crate) fn validate_deployment(d: &Value) -> ErrorList {
    let spec = child(d, "spec");
    let sp = Path::new("spec");
    let mut errs = validate_nonnegative_field(int_of(spec, "replicas"), &sp.child("replicas"));
    // Deployments and ReplicaSets share the "deployment" wording upstream.
    errs.extend(validate_required_selector(spec, "deployment", &sp));
    match spec_selector(spec) {
        None => errs.push(FieldError::invalid(
            &sp.child("selector"),
            selector_value(obj(spec, "selector")),
            "invalid label selector",
        )),
        Some(sel) => errs.extend(validate_template_for_replica_set(
            spec,
            &sel,
            "ReplicaSet",
            &sp,
        )),
    }
    errs.extend(validate_deployment_strategy(
        child(spec, "strategy"),
        &sp.child("strategy"),
    ));
    let min_ready = int_of(spec, "minReadySeconds");
    errs.extend(validate_nonnegative_field(
        min_ready,
        &sp.child("minReadySeconds"),
    ));
    if let Some(r) = opt_int(spec, "revisionHistoryLimit") {
        errs.extend(validate_nonnegative_field(
            r,
            &sp.child("revisionHistoryLimit"),
        ));
    }
    if let Some(rb) = obj(spec, "rollbackTo") {
        errs.extend(validate_nonnegative_field(
            int_of(rb, "revision"),
            &sp.child("rollback").child("version"),
        ));
    }
    if let Some(p) = opt_int(spec, "progressDeadlineSeconds") {
        errs.extend(validate_nonnegative_field(
            p,
            &sp.child("progressDeadlineSeconds"),
        ));
        if p <= min_ready {
            errs.push(FieldError::invalid(
                &sp.child("progressDeadlineSeconds"),
                p,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

fn validate_deployment_strategy(strategy: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    match str_of(strategy, "type") {
        "Recreate" => {
            if get(strategy, "rollingUpdate").is_some() {
                errs.push(FieldError::forbidden(
                    &path.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match obj(strategy, "rollingUpdate") {
            None => errs.push(FieldError::required(
                &path.child("rollingUpdate"),
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let rp = path.child("rollingUpdate");
                let mu = int_or_string(ru, "maxUnavailable").unwrap_or(IntOrString::Int(0));
                let ms = int_or_string(ru, "maxSurge").unwrap_or(IntOrString::Int(0));
                errs.extend(positive_int_or_percent(&mu, &rp.child("maxUnavailable")));
                errs.extend(positive_int_or_percent(&ms, &rp.child("maxSurge")));
                if int_or_percent_value(&mu) == 0 && int_or_percent_value(&ms) == 0 {
                    errs.push(FieldError::invalid(
                        &rp.child("maxUnavailable"),
                        crate::validation::field::BadValue::Raw(mu.sharp()),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                errs.extend(not_more_than_100_percent(&mu, &rp.child("maxUnavailable")));
            }
        },
        _ => errs.push(FieldError::not_supported(
            path,
            json_value(Some(strategy)),
            &["Recreate", "RollingUpdate"],
        )),
    }
    errs
}

/// Deployment updates: the spec is validated again and, in apps/v1, the
/// selector may not change.
pub(crate) fn validate_deployment_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate_deployment(new);
    errs.extend(selector_immutable(new, old));
    errs
}

fn selector_immutable(new: &Value, old: &Value) -> ErrorList {
    let (ns, os) = (child(new, "spec"), child(old, "spec"));
    let (a, b) = (
        label_selector(ns, "selector"),
        label_selector(os, "selector"),
    );
    if !selectors_equal(a.as_ref(), b.as_ref()) {
        return FieldError::invalid(
            &Path::from_names(&["spec", "selector"]),
            selector_value(obj(ns, "selector")),
            FIELD_IMMUTABLE_ERROR_MSG,
        )
        .into();
    }
    ErrorList::new()
}

/// Semantic equality of two selectors (empty lists and maps equal absent ones).
fn selectors_equal(
    a: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    b: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            let la = a.match_labels.clone().unwrap_or_default();
            let lb = b.match_labels.clone().unwrap_or_default();
            let ea = a.match_expressions.clone().unwrap_or_default();
            let eb = b.match_expressions.clone().unwrap_or_default();
            la == lb
                && ea.len() == eb.len()
                && ea.iter().zip(&eb).all(|(x, y)| {
                    x.key == y.key
                        && x.operator == y.operator
                        && x.values.clone().unwrap_or_default()
                            == y.values.clone().unwrap_or_default()
                })
        }
        _ => false,
    }
}

// -------------------------------------------------------------- ReplicaSet

/// `ValidateReplicaSetSpec`.
pub(crate) fn validate_replica_set(rs: &Value) -> ErrorList {
    let spec = child(rs, "spec");
    let sp = Path::new("spec");
    let mut errs = validate_nonnegative_field(int_of(spec, "replicas"), &sp.child("replicas"));
    errs.extend(validate_nonnegative_field(
        int_of(spec, "minReadySeconds"),
        &sp.child("minReadySeconds"),
    ));
    errs.extend(validate_required_selector(spec, "deployment", &sp));
    match spec_selector(spec) {
        None => errs.push(FieldError::invalid(
            &sp.child("selector"),
            selector_value(obj(spec, "selector")),
            "invalid label selector",
        )),
        Some(sel) => errs.extend(validate_template_for_replica_set(
            spec,
            &sel,
            "ReplicaSet",
            &sp,
        )),
    }
    errs
}

/// ReplicaSet updates (apps/v1 selectors are immutable).
pub(crate) fn validate_replica_set_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate_replica_set(new);
    errs.extend(selector_immutable(new, old));
    errs
}

// ------------------------------------------------------------- StatefulSet

/// `ValidateStatefulSetSpec`. Like upstream, the pod template's spec is not
/// validated for StatefulSets (its volume mounts may name claim templates).
pub(crate) fn validate_stateful_set(sts: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = child(sts, "spec");
    let sp = Path::new("spec");
    match str_of(spec, "podManagementPolicy") {
        "" => errs.push(FieldError::required(&sp.child("podManagementPolicy"), "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            &sp.child("podManagementPolicy"),
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let us = child(spec, "updateStrategy");
    let usp = sp.child("updateStrategy");
    match str_of(us, "type") {
        "" => errs.push(FieldError::required(&usp, "")),
        "OnDelete" => {
            if let Some(ru) = obj(us, "rollingUpdate") {
                // `%#v` of the Go struct, reproducible while no pointer is set.
                let value = if get(ru, "maxUnavailable").is_none() {
                    crate::validation::field::BadValue::Raw(format!(
                        "apps.RollingUpdateStatefulSetStrategy{{Partition:{}, MaxUnavailable:(*intstr.IntOrString)(nil)}}",
                        int_of(ru, "partition")
                    ))
                } else {
                    json_value(Some(ru))
                };
                errs.push(FieldError::invalid(
                    &usp.child("rollingUpdate"),
                    value,
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = obj(us, "rollingUpdate") {
                let rp = usp.child("rollingUpdate");
                errs.extend(validate_nonnegative_field(
                    int_of(ru, "partition"),
                    &rp.child("partition"),
                ));
                if let Some(mu) = int_or_string(ru, "maxUnavailable") {
                    let mp = rp.child("maxUnavailable");
                    errs.extend(positive_int_or_percent(&mu, &mp));
                    if int_or_percent_value(&mu) == 0 {
                        errs.push(FieldError::invalid(
                            &mp,
                            crate::validation::field::BadValue::Raw(mu.sharp()),
                            "cannot be 0",
                        ));
                    }
                    errs.extend(not_more_than_100_percent(&mu, &mp));
                }
            }
        }
        _ => errs.push(FieldError::invalid(
            &usp,
            json_value(Some(us)),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(policy) = obj(spec, "persistentVolumeClaimRetentionPolicy") {
        let pp = sp.child("persistentVolumeClaimRetentionPolicy");
        for key in ["whenDeleted", "whenScaled"] {
            let v = str_of(policy, key);
            if v != "Retain" && v != "Delete" {
                errs.push(FieldError::not_supported(
                    &pp.child(key),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    errs.extend(validate_nonnegative_field(
        int_of(spec, "replicas"),
        &sp.child("replicas"),
    ));
    errs.extend(validate_nonnegative_field(
        int_of(spec, "minReadySeconds"),
        &sp.child("minReadySeconds"),
    ));
    if let Some(ord) = obj(spec, "ordinals") {
        errs.extend(validate_nonnegative_field(
            int_of(ord, "start"),
            &sp.child("ordinals.start"),
        ));
    }
    errs.extend(validate_required_selector(spec, "statefulset", &sp));
    let tp = sp.child("template");
    match spec_selector(spec) {
        None => errs.push(FieldError::invalid(
            &sp.child("selector"),
            selector_value(obj(spec, "selector")),
            "",
        )),
        Some(sel) => {
            if !sel.is_empty() {
                errs.extend(
                    selector_mismatch(spec, &sel, &tp)
                        .into_iter()
                        .collect::<ErrorList>(),
                );
            }
            let meta = child(child(spec, "template"), "metadata");
            errs.extend(crate::validation::validate_labels(
                &string_map(meta, "labels").unwrap_or_default(),
                &tp.child("labels"),
            ));
            errs.extend(crate::validation::validate_annotations(
                &string_map(meta, "annotations").unwrap_or_default(),
                &tp.child("annotations"),
            ));
        }
    }
    let tspec = child(child(spec, "template"), "spec");
    let rp = str_of(tspec, "restartPolicy");
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            &tp.child("spec").child("restartPolicy"),
            rp,
            &["Always"],
        ));
    }
    if get(tspec, "activeDeadlineSeconds").is_some() {
        errs.push(FieldError::forbidden(
            &tp.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
    errs
}

/// `ValidateStatefulSetUpdate`: only replicas, ordinals, template,
/// updateStrategy, persistentVolumeClaimRetentionPolicy and minReadySeconds
/// may change.
pub(crate) fn validate_stateful_set_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate_stateful_set(new);
    let mutable = [
        "replicas",
        "template",
        "updateStrategy",
        "minReadySeconds",
        "ordinals",
        "persistentVolumeClaimRetentionPolicy",
    ];
    let strip = |s: &Value| {
        let mut s = s.clone();
        if let Some(m) = s.as_object_mut() {
            for k in mutable {
                m.remove(k);
            }
        }
        s
    };
    let (ns, os) = (strip(child(new, "spec")), strip(child(old, "spec")));
    if !super::json::semantic_eq(Some(&ns), Some(&os)) {
        errs.push(FieldError::forbidden(
            &Path::new("spec"),
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
    errs
}

// --------------------------------------------------------------- DaemonSet

/// `ValidateDaemonSetSpec`.
pub(crate) fn validate_daemon_set(ds: &Value) -> ErrorList {
    let spec = child(ds, "spec");
    let sp = Path::new("spec");
    let mut errs = label_selector_errs(spec, "selector", false, &sp.child("selector"));
    if let Some(sel) = spec_selector(spec) {
        if let Some(e) = selector_mismatch(spec, &sel, &sp.child("template")) {
            errs.push(e);
        }
    }
    if let Some(sel) = obj(spec, "selector") {
        let n = sel
            .get("matchLabels")
            .and_then(Value::as_object)
            .map_or(0, |m| m.len())
            + arr(sel, "matchExpressions").len();
        if n == 0 {
            errs.push(FieldError::invalid(
                &sp.child("selector"),
                selector_value(Some(sel)),
                "empty selector is invalid for daemonset",
            ));
        }
    }
    let tp = sp.child("template");
    let tmpl = child(spec, "template");
    errs.extend(pod::validate_pod_template_spec(tmpl, &tp));
    let tspec = child(tmpl, "spec");
    let rp = str_of(tspec, "restartPolicy");
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            &tp.child("spec").child("restartPolicy"),
            rp,
            &["Always"],
        ));
    }
    if get(tspec, "activeDeadlineSeconds").is_some() {
        errs.push(FieldError::forbidden(
            &tp.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    errs.extend(validate_nonnegative_field(
        int_of(spec, "minReadySeconds"),
        &sp.child("minReadySeconds"),
    ));
    let us = child(spec, "updateStrategy");
    let usp = sp.child("updateStrategy");
    match str_of(us, "type") {
        "OnDelete" => {}
        "RollingUpdate" => match obj(us, "rollingUpdate") {
            None => errs.push(FieldError::required(&usp.child("rollingUpdate"), "")),
            Some(ru) => {
                let rp = usp.child("rollingUpdate");
                let mu = int_or_string(ru, "maxUnavailable").unwrap_or(IntOrString::Int(0));
                let ms = int_or_string(ru, "maxSurge").unwrap_or(IntOrString::Int(0));
                errs.extend(positive_int_or_percent(&mu, &rp.child("maxUnavailable")));
                errs.extend(positive_int_or_percent(&ms, &rp.child("maxSurge")));
                errs.extend(not_more_than_100_percent(&mu, &rp.child("maxUnavailable")));
                errs.extend(not_more_than_100_percent(&ms, &rp.child("maxSurge")));
                let has_unavailable = int_or_percent_value(&mu) != 0;
                let has_surge = int_or_percent_value(&ms) != 0;
                if has_unavailable && has_surge {
                    errs.push(FieldError::invalid(
                        &rp.child("maxSurge"),
                        crate::validation::field::BadValue::Raw(ms.sharp()),
                        "may not be set when maxUnavailable is non-zero",
                    ));
                } else if !has_unavailable && !has_surge {
                    errs.push(FieldError::required(
                        &rp.child("maxUnavailable"),
                        "cannot be 0 when maxSurge is 0",
                    ));
                }
            }
        },
        _ => errs.push(FieldError::not_supported(
            &usp,
            json_value(Some(us)),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    if let Some(r) = opt_int(spec, "revisionHistoryLimit") {
        errs.extend(validate_nonnegative_field(
            r,
            &sp.child("revisionHistoryLimit"),
        ));
    }
    errs
}

/// DaemonSet updates (selector immutable in apps/v1). The internal
/// `templateGeneration` is not part of apps/v1, so its rules do not apply.
pub(crate) fn validate_daemon_set_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate_daemon_set(new);
    errs.extend(selector_immutable(new, old));
    errs
}

#[cfg(test)]
mod tests;
