//! batch/v1: Job and CronJob (`pkg/apis/batch/validation`).

use super::common::*;
use super::cron;
use super::json::{self, *};
use super::pod;
use crate::labels::LabelSelector;
use crate::validation::field::{BadValue, ErrorList, FieldError, Path};
use crate::validation::{
    is_dns1123_label, validate_immutable_field, validate_nonnegative_field,
    FIELD_IMMUTABLE_ERROR_MSG,
};
use serde_json::Value;
use std::collections::HashSet;

const MAX_PARALLELISM_FOR_INDEXED_JOB: i64 = 100_000;
const MAX_FAILED_INDEXES_FOR_INDEXED_JOB: i64 = 100_000;
const COMPLETIONS_SOFT_LIMIT: i64 = 100_000;
const PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS: i64 = 10_000;
const MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS: i64 = 10_000;

/// `validateJobSpec` (shared by Jobs and CronJob job templates).
fn validate_job_spec_common(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for key in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
    ] {
        if let Some(v) = opt_int(spec, key) {
            errs.extend(validate_nonnegative_field(v, &path.child(key)));
        }
    }
    let max_failed = opt_int(spec, "maxFailedIndexes");
    let per_index = opt_int(spec, "backoffLimitPerIndex");
    if let Some(m) = max_failed {
        errs.extend(validate_nonnegative_field(
            m,
            &path.child("maxFailedIndexes"),
        ));
        if per_index.is_none() {
            errs.push(FieldError::required(
                &path.child("backoffLimitPerIndex"),
                "when maxFailedIndexes is specified",
            ));
        }
    }
    if let Some(mb) = opt_str(spec, "managedBy") {
        errs.extend(domain_prefixed_path(mb, &path.child("managedBy")));
        if mb.len() > 63 {
            errs.push(FieldError::too_long_max_length(
                &path.child("managedBy"),
                mb,
                Some(63),
            ));
        }
    }
    let completions = opt_int(spec, "completions");
    let parallelism = opt_int(spec, "parallelism");
    let mode = opt_str(spec, "completionMode");
    if let Some(mode) = mode {
        if mode != "NonIndexed" && mode != "Indexed" {
            errs.push(FieldError::not_supported(
                &path.child("completionMode"),
                mode,
                &["NonIndexed", "Indexed"],
            ));
        }
        if mode == "Indexed" {
            if completions.is_none() {
                errs.push(FieldError::required(
                    &path.child("completions"),
                    "when completion mode is Indexed",
                ));
            }
            if let Some(p) = parallelism.filter(|p| *p > MAX_PARALLELISM_FOR_INDEXED_JOB) {
                errs.push(FieldError::invalid(
                    &path.child("parallelism"),
                    p,
                    format!("must be less than or equal to {MAX_PARALLELISM_FOR_INDEXED_JOB} when completion mode is Indexed"),
                ));
            }
            if let (Some(c), Some(m)) = (completions, max_failed) {
                if m > c {
                    errs.push(FieldError::invalid(
                        &path.child("maxFailedIndexes"),
                        m,
                        "must be less than or equal to completions",
                    ));
                }
            }
            if let Some(m) = max_failed.filter(|m| *m > MAX_FAILED_INDEXES_FOR_INDEXED_JOB) {
                errs.push(FieldError::invalid(
                    &path.child("maxFailedIndexes"),
                    m,
                    format!("must be less than or equal to {MAX_FAILED_INDEXES_FOR_INDEXED_JOB}"),
                ));
            }
            if completions.is_some_and(|c| c > COMPLETIONS_SOFT_LIMIT) && per_index.is_some() {
                if max_failed.is_none() {
                    errs.push(FieldError::required(
                        &path.child("maxFailedIndexes"),
                        format!(
                            "must be specified when completions is above {COMPLETIONS_SOFT_LIMIT}"
                        ),
                    ));
                }
                if let Some(p) = parallelism.filter(|p| *p > PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS)
                {
                    errs.push(FieldError::invalid(
                        &path.child("parallelism"),
                        p,
                        format!("must be less than or equal to {PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS} when completions are above {COMPLETIONS_SOFT_LIMIT} and used with backoff limit per index"),
                    ));
                }
                if let Some(m) =
                    max_failed.filter(|m| *m > MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS)
                {
                    errs.push(FieldError::invalid(
                        &path.child("maxFailedIndexes"),
                        m,
                        format!("must be less than or equal to {MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS} when completions are above {COMPLETIONS_SOFT_LIMIT} and used with backoff limit per index"),
                    ));
                }
            }
        }
    }
    let indexed = mode == Some("Indexed");
    if !indexed {
        if let Some(b) = per_index {
            errs.push(FieldError::invalid(
                &path.child("backoffLimitPerIndex"),
                b,
                "requires indexed completion mode",
            ));
        }
        if let Some(m) = max_failed {
            errs.push(FieldError::invalid(
                &path.child("maxFailedIndexes"),
                m,
                "requires indexed completion mode",
            ));
        }
    }
    let pfp = obj(spec, "podFailurePolicy");
    if let Some(p) = pfp {
        errs.extend(validate_pod_failure_policy(
            spec,
            p,
            &path.child("podFailurePolicy"),
        ));
    }
    if let Some(sp) = obj(spec, "successPolicy") {
        if !indexed {
            errs.push(FieldError::invalid(
                &path.child("successPolicy"),
                json_value(Some(sp)),
                "requires indexed completion mode",
            ));
        } else {
            errs.extend(validate_success_policy(
                spec,
                sp,
                &path.child("successPolicy"),
            ));
        }
    }
    if let Some(prp) = opt_str(spec, "podReplacementPolicy") {
        let p = path.child("podReplacementPolicy");
        if pfp.is_some() {
            if prp != "Failed" {
                errs.push(FieldError::not_supported(&p, prp, &["Failed"]));
            }
        } else if prp != "Failed" && prp != "TerminatingOrFailed" {
            errs.push(FieldError::not_supported(
                &p,
                prp,
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    let tp = path.child("template");
    errs.extend(pod::validate_pod_template_spec(
        child(spec, "template"),
        &tp,
    ));
    let rp = str_of(child(child(spec, "template"), "spec"), "restartPolicy");
    let rpp = tp.child("spec").child("restartPolicy");
    if rp == "Always" || rp.is_empty() {
        errs.push(FieldError::required(
            &rpp,
            "valid values: \"OnFailure\", \"Never\"",
        ));
    } else if rp != "OnFailure" && rp != "Never" {
        errs.push(FieldError::not_supported(&rpp, rp, &["OnFailure", "Never"]));
    } else if pfp.is_some() && rp != "Never" {
        errs.push(FieldError::invalid(
            &rpp,
            rp,
            "only \"Never\" is supported when podFailurePolicy is specified",
        ));
    }
    errs
}

fn validate_pod_failure_policy(spec: &Value, pfp: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let rules = arr(pfp, "rules");
    let rules_path = path.child("rules");
    if rules.len() > 20 {
        errs.push(FieldError::too_many(
            &rules_path,
            Some(rules.len()),
            Some(20),
        ));
    }
    let tspec = child(child(spec, "template"), "spec");
    let names: HashSet<&str> = arr(tspec, "containers")
        .iter()
        .chain(arr(tspec, "initContainers"))
        .map(|c| str_of(c, "name"))
        .collect();
    let actions = ["Count", "FailIndex", "FailJob", "Ignore"];
    for (i, rule) in rules.iter().enumerate() {
        let rp = rules_path.index(i);
        let action = str_of(rule, "action");
        if action.is_empty() {
            errs.push(FieldError::required(
                &rp.child("action"),
                "valid values: [\"Count\" \"FailIndex\" \"FailJob\" \"Ignore\"]",
            ));
        } else if action == "FailIndex" {
            if get(spec, "backoffLimitPerIndex").is_none() {
                errs.push(FieldError::invalid(
                    &rp.child("action"),
                    action,
                    "requires the backoffLimitPerIndex to be set",
                ));
            }
        } else if !actions.contains(&action) {
            errs.push(FieldError::not_supported(
                &rp.child("action"),
                action,
                &actions,
            ));
        }
        let on_exit = obj(rule, "onExitCodes");
        let on_conds = arr(rule, "onPodConditions");
        if let Some(oe) = on_exit {
            let op = rp.child("onExitCodes");
            let operator = str_of(oe, "operator");
            if operator.is_empty() {
                errs.push(FieldError::required(
                    &op.child("operator"),
                    "valid values: [\"In\" \"NotIn\"]",
                ));
            } else if operator != "In" && operator != "NotIn" {
                errs.push(FieldError::not_supported(
                    &op.child("operator"),
                    operator,
                    &["In", "NotIn"],
                ));
            }
            if let Some(c) = opt_str(oe, "containerName") {
                if !names.contains(c) {
                    errs.push(FieldError::invalid(
                        &op.child("containerName"),
                        c,
                        "must be one of the container or initContainer names in the pod template",
                    ));
                }
            }
            let values: Vec<i64> = arr(oe, "values").iter().filter_map(Value::as_i64).collect();
            let vp = op.child("values");
            let raw = || {
                BadValue::Raw(format!(
                    "[]int32{{{}}}",
                    values
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            };
            if values.is_empty() {
                errs.push(FieldError::invalid(
                    &vp,
                    BadValue::Raw("[]int32(nil)".to_string()),
                    "at least one value is required",
                ));
            } else if values.len() > 255 {
                errs.push(FieldError::too_many(&vp, Some(values.len()), Some(255)));
            }
            let mut seen = HashSet::new();
            let mut ordered = true;
            for (j, v) in values.iter().enumerate() {
                if operator == "In" && *v == 0 {
                    errs.push(FieldError::invalid(
                        &vp.index(j),
                        *v,
                        "must not be 0 for the In operator",
                    ));
                }
                if !seen.insert(*v) {
                    errs.push(FieldError::duplicate(&vp.index(j), *v));
                }
                if j > 0 && values[j - 1] > *v {
                    ordered = false;
                }
            }
            if !ordered {
                errs.push(FieldError::invalid(&vp, raw(), "must be ordered"));
            }
        }
        if !on_conds.is_empty() {
            let cp = rp.child("onPodConditions");
            if on_conds.len() > 20 {
                errs.push(FieldError::too_many(&cp, Some(on_conds.len()), Some(20)));
            }
            for (j, pat) in on_conds.iter().enumerate() {
                let pp = cp.index(j);
                errs.extend(qualified_name(str_of(pat, "type"), &pp.child("type")));
                let status = str_of(pat, "status");
                if status.is_empty() {
                    errs.push(FieldError::required(
                        &pp.child("status"),
                        "valid values: [\"False\" \"True\" \"Unknown\"]",
                    ));
                } else if !["False", "True", "Unknown"].contains(&status) {
                    errs.push(FieldError::not_supported(
                        &pp.child("status"),
                        status,
                        &["False", "True", "Unknown"],
                    ));
                }
            }
        }
        if on_exit.is_some() && !on_conds.is_empty() {
            errs.push(FieldError::invalid(
                &rp,
                BadValue::Omitted,
                "specifying both OnExitCodes and OnPodConditions is not supported",
            ));
        }
        if on_exit.is_none() && on_conds.is_empty() {
            errs.push(FieldError::invalid(
                &rp,
                BadValue::Omitted,
                "specifying one of OnExitCodes and OnPodConditions is required",
            ));
        }
    }
    errs
}

fn validate_success_policy(spec: &Value, sp: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let rules = arr(sp, "rules");
    let rp = path.child("rules");
    if rules.is_empty() {
        errs.push(FieldError::required(
            &rp,
            "at least one rules must be specified when the successPolicy is specified",
        ));
    }
    if rules.len() > 20 {
        errs.push(FieldError::too_many(&rp, Some(rules.len()), Some(20)));
    }
    let completions = int_of(spec, "completions");
    for (i, rule) in rules.iter().enumerate() {
        let p = rp.index(i);
        let count = opt_int(rule, "succeededCount");
        if count.is_none() && get(rule, "succeededIndexes").is_none() {
            errs.push(FieldError::required(
                &p,
                "at least one of succeededCount or succeededIndexes must be specified",
            ));
        }
        if let Some(c) = count {
            let cp = p.child("succeededCount");
            errs.extend(validate_nonnegative_field(c, &cp));
            if c > completions {
                errs.push(FieldError::invalid(
                    &cp,
                    c,
                    format!("must be less than or equal to {completions} (the number of specified completions)"),
                ));
            }
        }
    }
    errs
}

/// `ValidateJob` (selector generation is the API server's).
pub(crate) fn validate_job(job: &Value) -> ErrorList {
    let spec = child(job, "spec");
    let sp = Path::new("spec");
    let mut errs = ErrorList::new();
    let name = str_of(child(job, "metadata"), "name");
    let mut spec_errs = validate_job_spec_common(spec, &sp);
    let manual = opt_bool(spec, "manualSelector") == Some(true);
    if obj(spec, "selector").is_none() {
        // Without a manual selector the server generates one before validation.
        if manual {
            spec_errs.push(FieldError::required(&sp.child("selector"), ""));
        }
    } else {
        spec_errs.extend(label_selector_errs(
            spec,
            "selector",
            false,
            &sp.child("selector"),
        ));
        let sel = label_selector(spec, "selector");
        if let Ok(sel) = LabelSelector::from_metav1(sel.as_ref()) {
            let labels = string_map(child(child(spec, "template"), "metadata"), "labels");
            if !sel.matches_opt(labels.as_ref()) {
                spec_errs.push(FieldError::invalid(
                    &sp.child("template").child("metadata").child("labels"),
                    map_value(labels.as_ref()),
                    "`selector` does not match template `labels`",
                ));
            }
        }
    }
    errs.extend(spec_errs);
    if opt_str(spec, "completionMode") == Some("Indexed") {
        if let Some(c) = opt_int(spec, "completions").filter(|c| *c > 0) {
            let host = format!("{name}-{}", c - 1);
            if !is_dns1123_label(&host).is_empty() {
                errs.push(FieldError::invalid(
                    &Path::new("metadata").child("name"),
                    name,
                    format!("will not able to create pod with invalid DNS label: {host}"),
                ));
            }
        }
    }
    errs
}

/// `ValidateJobUpdate` (beyond `ValidateJob`).
pub(crate) fn validate_job_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate_job(new);
    let (ns, os) = (child(new, "spec"), child(old, "spec"));
    let sp = Path::new("spec");
    // Completions: immutable, except for Indexed jobs scaled in tandem with parallelism.
    let (nc, oc) = (opt_int(ns, "completions"), opt_int(os, "completions"));
    let indexed = opt_str(ns, "completionMode") == Some("Indexed");
    if nc != oc {
        if !indexed {
            errs.push(FieldError::invalid(
                &sp.child("completions"),
                nc,
                FIELD_IMMUTABLE_ERROR_MSG,
            ));
        } else if let Some(c) = nc {
            if Some(c) != opt_int(ns, "parallelism") {
                errs.push(FieldError::invalid(
                    &sp.child("completions"),
                    c,
                    "can only be modified in tandem with spec.parallelism",
                ));
            }
        }
    }
    if !json::semantic_eq(ns.get("selector"), os.get("selector")) {
        errs.push(FieldError::invalid(
            &sp.child("selector"),
            selector_value(obj(ns, "selector")),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    // Suspended jobs that never started may change scheduling directives.
    let mutable_scheduling =
        opt_bool(os, "suspend") == Some(true) && get(child(old, "status"), "startTime").is_none();
    let mut new_t = child(ns, "template").clone();
    let mut old_t = child(os, "template").clone();
    if mutable_scheduling {
        for t in [&mut new_t, &mut old_t] {
            if let Some(m) = t.pointer_mut("/spec").and_then(Value::as_object_mut) {
                m.remove("nodeSelector");
                m.remove("tolerations");
                m.remove("schedulingGates");
                if let Some(a) = m.get_mut("affinity").and_then(Value::as_object_mut) {
                    a.remove("nodeAffinity");
                }
            }
            if let Some(m) = t.pointer_mut("/metadata").and_then(Value::as_object_mut) {
                m.remove("labels");
                m.remove("annotations");
            }
        }
    }
    if !json::semantic_eq(Some(&new_t), Some(&old_t)) {
        errs.push(FieldError::invalid(
            &sp.child("template"),
            json_value(ns.get("template")),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    for key in ["completionMode", "managedBy"] {
        let (n, o) = (opt_str(ns, key), opt_str(os, key));
        errs.extend(validate_immutable_field(
            &n,
            &o,
            n.map(str::to_string),
            &sp.child(key),
        ));
    }
    let (n, o) = (
        opt_int(ns, "backoffLimitPerIndex"),
        opt_int(os, "backoffLimitPerIndex"),
    );
    errs.extend(validate_immutable_field(
        &n,
        &o,
        n,
        &sp.child("backoffLimitPerIndex"),
    ));
    for key in ["podFailurePolicy", "successPolicy"] {
        if !json::semantic_eq(ns.get(key), os.get(key)) {
            errs.push(FieldError::invalid(
                &sp.child(key),
                json_value(ns.get(key)),
                FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
    }
    errs
}

/// `ValidateCronJobCreate`.
pub(crate) fn validate_cron_job(cj: &Value) -> ErrorList {
    let mut errs = validate_cron_job_spec(cj, None);
    let name = str_of(child(cj, "metadata"), "name");
    if name.len() > 52 {
        errs.push(FieldError::invalid(
            &Path::new("metadata").child("name"),
            name,
            "must be no more than 52 characters",
        ));
    }
    errs
}

/// `ValidateCronJobUpdate`.
pub(crate) fn validate_cron_job_update(new: &Value, old: &Value) -> ErrorList {
    validate_cron_job_spec(new, Some(old))
}

fn validate_cron_job_spec(cj: &Value, old: Option<&Value>) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = child(cj, "spec");
    let old_spec = old.map(|o| child(o, "spec"));
    let sp = Path::new("spec");
    let schedule = str_of(spec, "schedule");
    let time_zone = opt_str(spec, "timeZone");
    let schp = sp.child("schedule");
    if schedule.is_empty() {
        errs.push(FieldError::required(&schp, ""));
    } else {
        if let Err(e) = cron::parse_standard(schedule) {
            errs.push(FieldError::invalid(&schp, schedule, e));
        }
        let allow_tz = old_spec.is_some_and(|o| str_of(o, "schedule").contains("TZ"));
        if allow_tz && schedule.contains("TZ") && time_zone.is_some() {
            errs.push(FieldError::invalid(
                &schp,
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                &schp,
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    if let Some(s) = opt_int(spec, "startingDeadlineSeconds") {
        errs.extend(validate_nonnegative_field(
            s,
            &sp.child("startingDeadlineSeconds"),
        ));
    }
    if old_spec.is_none_or(|o| opt_str(o, "timeZone") != time_zone) {
        if let Some(tz) = time_zone {
            errs.extend(validate_time_zone(tz, &sp.child("timeZone")));
        }
    }
    let cp = sp.child("concurrencyPolicy");
    match str_of(spec, "concurrencyPolicy") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required(&cp, "")),
        other => errs.push(FieldError::not_supported(
            &cp,
            other,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    let jt = child(spec, "jobTemplate");
    let jtp = sp.child("jobTemplate");
    let jspec = child(jt, "spec");
    errs.extend(validate_job_spec_common(jspec, &jtp.child("spec")));
    if let Some(sel) = obj(jspec, "selector") {
        errs.push(FieldError::invalid(
            &jtp.child("spec").child("selector"),
            selector_value(Some(sel)),
            "`selector` will be auto-generated",
        ));
    }
    if opt_bool(jspec, "manualSelector") == Some(true) {
        errs.push(FieldError::not_supported(
            &jtp.child("spec").child("manualSelector"),
            true,
            &["nil", "false"],
        ));
    }
    for key in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        if let Some(v) = opt_int(spec, key) {
            errs.extend(validate_nonnegative_field(v, &sp.child(key)));
        }
    }
    errs
}

/// `validateTimeZone` (names are checked for shape only: there is no time
/// zone database here).
fn validate_time_zone(tz: &str, path: &Path) -> ErrorList {
    use regex::Regex;
    use std::sync::LazyLock;
    static PART: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[A-Za-z\.\-_0-9+]{1,14}$").expect("static regex"));
    if tz.is_empty() {
        return FieldError::invalid(path, tz, "timeZone must be nil or non-empty string").into();
    }
    for part in tz.split('/') {
        if part == "." || part == ".." || part.starts_with('-') || !PART.is_match(part) {
            return FieldError::invalid(path, tz, format!("unknown time zone {tz}")).into();
        }
    }
    if tz.eq_ignore_ascii_case("Local") {
        return FieldError::invalid(
            path,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        )
        .into();
    }
    ErrorList::new()
}

#[cfg(test)]
mod tests;
