//! Defaults of the workload kinds: apps/v1 Deployment, ReplicaSet,
//! StatefulSet and DaemonSet, batch/v1 Job and CronJob, and core/v1
//! ReplicationController.

use super::pod::{pvc_spec, template};
use super::{ensure, field, items, set_if_absent, set_if_empty, template_metadata, Obj};
use serde_json::{json, Value};

/// `SetDefaults_Deployment`.
pub(super) fn deployment(root: &mut Obj) {
    let Some(spec) = ensure(root, "spec") else {
        return;
    };
    set_if_absent(spec, "replicas", json!(1));
    if let Some(strategy) = ensure(spec, "strategy") {
        set_if_empty(strategy, "type", "RollingUpdate");
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if let Some(ru) = ensure(strategy, "rollingUpdate") {
                set_if_absent(ru, "maxUnavailable", json!("25%"));
                set_if_absent(ru, "maxSurge", json!("25%"));
            }
        }
    }
    set_if_absent(spec, "revisionHistoryLimit", json!(10));
    set_if_absent(spec, "progressDeadlineSeconds", json!(600));
    spec_template(spec);
}

/// `SetDefaults_ReplicaSet`.
pub(super) fn replica_set(root: &mut Obj) {
    let Some(spec) = ensure(root, "spec") else {
        return;
    };
    set_if_absent(spec, "replicas", json!(1));
    spec_template(spec);
}

/// `SetDefaults_StatefulSet` (with the `StatefulSetAutoDeletePVC` gate on).
pub(super) fn stateful_set(root: &mut Obj) {
    let Some(spec) = ensure(root, "spec") else {
        return;
    };
    set_if_empty(spec, "podManagementPolicy", "OrderedReady");
    if let Some(us) = ensure(spec, "updateStrategy") {
        if us
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            us.insert("type".into(), json!("RollingUpdate"));
            set_if_absent(us, "rollingUpdate", json!({}));
        }
        if us.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if let Some(ru) = field(us, "rollingUpdate") {
                set_if_absent(ru, "partition", json!(0));
            }
        }
    }
    if let Some(policy) = ensure(spec, "persistentVolumeClaimRetentionPolicy") {
        set_if_empty(policy, "whenDeleted", "Retain");
        set_if_empty(policy, "whenScaled", "Retain");
    }
    set_if_absent(spec, "replicas", json!(1));
    set_if_absent(spec, "revisionHistoryLimit", json!(10));
    spec_template(spec);
    for claim in items(spec, "volumeClaimTemplates") {
        // The apps/v1 conversion writes the claims' type meta.
        set_if_empty(claim, "apiVersion", "v1");
        set_if_empty(claim, "kind", "PersistentVolumeClaim");
        template_metadata(claim);
        if let Some(s) = ensure(claim, "spec") {
            pvc_spec(s);
        }
        if let Some(status) = ensure(claim, "status") {
            set_if_empty(status, "phase", "Pending");
        }
    }
}

/// `SetDefaults_DaemonSet`.
pub(super) fn daemon_set(root: &mut Obj) {
    let Some(spec) = ensure(root, "spec") else {
        return;
    };
    if let Some(us) = ensure(spec, "updateStrategy") {
        set_if_empty(us, "type", "RollingUpdate");
        if us.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if let Some(ru) = ensure(us, "rollingUpdate") {
                set_if_absent(ru, "maxUnavailable", json!(1));
                set_if_absent(ru, "maxSurge", json!(0));
            }
        }
    }
    set_if_absent(spec, "revisionHistoryLimit", json!(10));
    spec_template(spec);
}

/// `SetDefaults_ReplicationController`: selector and labels from the
/// template, one replica. The template is a pointer here: absent stays absent.
pub(super) fn replication_controller(root: &mut Obj) {
    let labels = root
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = labels {
        if let Some(spec) = ensure(root, "spec") {
            let empty = spec
                .get("selector")
                .and_then(Value::as_object)
                .is_none_or(|s| s.is_empty());
            if empty {
                spec.insert("selector".into(), labels.clone());
            }
        }
        if let Some(meta) = ensure(root, "metadata") {
            let empty = meta
                .get("labels")
                .and_then(Value::as_object)
                .is_none_or(|l| l.is_empty());
            if empty {
                meta.insert("labels".into(), labels);
            }
        }
    }
    let Some(spec) = ensure(root, "spec") else {
        return;
    };
    set_if_absent(spec, "replicas", json!(1));
    if let Some(t) = field(spec, "template") {
        template(t);
    }
}

/// `SetDefaults_Job` (v1.32 gates: pod replacement policy on).
pub(super) fn job(root: &mut Obj) {
    let template_labels = root
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    let Some(spec) = ensure(root, "spec") else {
        return;
    };
    job_spec(spec);
    set_if_absent(spec, "manualSelector", json!(false));
    if let Some(labels) = template_labels {
        if let Some(meta) = ensure(root, "metadata") {
            let empty = meta
                .get("labels")
                .and_then(Value::as_object)
                .is_none_or(|l| l.is_empty());
            if empty {
                meta.insert("labels".into(), labels);
            }
        }
    }
}

fn job_spec(spec: &mut Obj) {
    let unset = |s: &Obj, k: &str| s.get(k).is_none_or(Value::is_null);
    if unset(spec, "completions") && unset(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    set_if_absent(spec, "parallelism", json!(1));
    if unset(spec, "backoffLimit") {
        let limit = if unset(spec, "backoffLimitPerIndex") {
            6
        } else {
            i64::from(i32::MAX)
        };
        spec.insert("backoffLimit".into(), json!(limit));
    }
    set_if_absent(spec, "completionMode", json!("NonIndexed"));
    set_if_absent(spec, "suspend", json!(false));
    let has_failure_policy = field(spec, "podFailurePolicy").is_some();
    if let Some(pfp) = field(spec, "podFailurePolicy") {
        for rule in items(pfp, "rules") {
            for pattern in items(rule, "onPodConditions") {
                set_if_empty(pattern, "status", "True");
            }
        }
    }
    let policy = if has_failure_policy {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    set_if_absent(spec, "podReplacementPolicy", json!(policy));
    spec_template(spec);
}

/// `SetDefaults_CronJob`; the job template only gets its pod template's
/// defaults (upstream's `SetDefaults_Job` takes a Job, not a JobSpec).
pub(super) fn cron_job(root: &mut Obj) {
    let Some(spec) = ensure(root, "spec") else {
        return;
    };
    set_if_empty(spec, "concurrencyPolicy", "Allow");
    set_if_absent(spec, "suspend", json!(false));
    set_if_absent(spec, "successfulJobsHistoryLimit", json!(3));
    set_if_absent(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(jt) = ensure(spec, "jobTemplate") {
        template_metadata(jt);
        if let Some(js) = ensure(jt, "spec") {
            spec_template(js);
        }
    }
}

fn spec_template(spec: &mut Obj) {
    if let Some(t) = ensure(spec, "template") {
        template(t);
    }
}
