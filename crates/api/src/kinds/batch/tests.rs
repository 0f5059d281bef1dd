use crate::kinds::cron::parse_standard;
use crate::kinds::tests::{create, update};
use serde_json::{json, Value};

/// `kubectl create job j --image=busybox --dry-run=client -o json`, with the
/// selector the API server generates.
fn kubectl_job() -> Value {
    json!({
        "kind": "Job", "apiVersion": "batch/v1",
        "metadata": {"name": "j", "creationTimestamp": null},
        "spec": {"template": {"metadata": {"creationTimestamp": null}, "spec": {
            "containers": [{"name": "j", "image": "busybox", "resources": {}}], "restartPolicy": "Never"
        }}},
        "status": {}
    })
}

/// `kubectl create cronjob c --image=busybox --schedule="*/1 * * * *"`.
fn kubectl_cron_job() -> Value {
    json!({
        "kind": "CronJob", "apiVersion": "batch/v1",
        "metadata": {"name": "c", "creationTimestamp": null},
        "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"metadata": {"name": "c", "creationTimestamp": null}, "spec": {"template": {
            "metadata": {"creationTimestamp": null},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {}}], "restartPolicy": "OnFailure"}
        }}}},
        "status": {}
    })
}

#[test]
fn kubectl_create_job_is_valid() {
    assert_eq!(create("batch", "Job", kubectl_job()), Vec::<String>::new());
}

#[test]
fn job_restart_policy_must_be_on_failure_or_never() {
    let mut j = kubectl_job();
    j["spec"]["template"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("restartPolicy");
    assert_eq!(
        create("batch", "Job", j),
        vec![
        "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
    ]
    );
}

#[test]
fn job_counts_are_non_negative() {
    let mut j = kubectl_job();
    j["spec"]["parallelism"] = json!(-1);
    j["spec"]["backoffLimit"] = json!(-2);
    j["spec"]["completionMode"] = json!("Sometimes");
    assert_eq!(create("batch", "Job", j), vec![
        "spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
        "spec.backoffLimit: Invalid value: -2: must be greater than or equal to 0",
        "spec.completionMode: Unsupported value: \"Sometimes\": supported values: \"NonIndexed\", \"Indexed\"",
    ]);
}

#[test]
fn indexed_job_names_must_fit_pod_hostnames() {
    let mut j = kubectl_job();
    let name = "a".repeat(62);
    j["metadata"]["name"] = json!(name);
    j["spec"]["completionMode"] = json!("Indexed");
    j["spec"]["completions"] = json!(10);
    assert_eq!(create("batch", "Job", j), vec![format!(
        "metadata.name: Invalid value: \"{name}\": will not able to create pod with invalid DNS label: {name}-9"
    )]);
}

#[test]
fn manual_job_selector_must_match_template() {
    let mut j = kubectl_job();
    j["spec"]["manualSelector"] = json!(true);
    assert_eq!(
        create("batch", "Job", j.clone()),
        vec!["spec.selector: Required value"]
    );
    j["spec"]["selector"] = json!({"matchLabels": {"job": "j"}});
    assert_eq!(create("batch", "Job", j), vec![
        "spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`",
    ]);
}

#[test]
fn job_template_and_completions_are_immutable() {
    let with_selector = |mut j: Value| {
        j["spec"]["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}});
        j["spec"]["template"]["metadata"]["labels"] =
            json!({"batch.kubernetes.io/controller-uid": "u"});
        j
    };
    let old = with_selector(kubectl_job());
    let mut new = old.clone();
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("busybox:1.36");
    new["spec"]["completions"] = json!(2);
    let errs = update("batch", "Job", new, old.clone());
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(
        errs[0],
        "spec.completions: Invalid value: 2: field is immutable"
    );
    assert!(
        errs[1].starts_with("spec.template: Invalid value: "),
        "{}",
        errs[1]
    );
    assert!(errs[1].ends_with(": field is immutable"));
    let mut suspended = old.clone();
    suspended["spec"]["suspend"] = json!(true);
    assert_eq!(update("batch", "Job", suspended, old), Vec::<String>::new());
}

#[test]
fn kubectl_create_cronjob_is_valid() {
    assert_eq!(
        create("batch", "CronJob", kubectl_cron_job()),
        Vec::<String>::new()
    );
}

#[test]
fn cronjob_schedule_is_required_and_parsed() {
    let mut c = kubectl_cron_job();
    c["spec"]["schedule"] = json!("");
    assert_eq!(
        create("batch", "CronJob", c.clone()),
        vec!["spec.schedule: Required value"]
    );
    c["spec"]["schedule"] = json!("* * * *");
    assert_eq!(
        create("batch", "CronJob", c.clone()),
        vec![
        "spec.schedule: Invalid value: \"* * * *\": expected exactly 5 fields, found 4: [* * * *]",
    ]
    );
    c["spec"]["schedule"] = json!("TZ=UTC 0 * * * *");
    assert_eq!(create("batch", "CronJob", c), vec![
        "spec.schedule: Invalid value: \"TZ=UTC 0 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
    ]);
}

#[test]
fn cron_syntax_matches_robfig_cron() {
    for ok in [
        "* * * * *",
        "*/15 0-23/2 1,15 jan-dec mon-fri",
        "0 0 * * SUN",
        "5 4 * * ?",
        "@hourly",
        "@every 1h30m",
        "0 9 1-7 * 1",
    ] {
        assert_eq!(parse_standard(ok), Ok(()), "{ok}");
    }
    for (bad, msg) in [
        ("60 * * * *", "end of range (60) above maximum (59): 60"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        (
            "5-1 * * * *",
            "beginning of range (5) beyond end of range (1): 5-1",
        ),
        (
            "*/0 * * * *",
            "step of range should be a positive number: */0",
        ),
        (
            "a * * * *",
            "failed to parse int from a: strconv.Atoi: parsing \"a\": invalid syntax",
        ),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
        ("* * * * 7", "end of range (7) above maximum (6): 7"),
        ("@weird", "unrecognized descriptor: @weird"),
        (
            "@every 5x",
            "failed to parse duration @every 5x: time: unknown unit \"x\" in duration \"5x\"",
        ),
        (
            "* * * * * *",
            "expected exactly 5 fields, found 6: [* * * * * *]",
        ),
    ] {
        assert_eq!(parse_standard(bad), Err(msg.to_string()), "{bad}");
    }
}

#[test]
fn cronjob_policies_and_templates() {
    let mut c = kubectl_cron_job();
    c["spec"]["concurrencyPolicy"] = json!("Sometimes");
    c["spec"]["successfulJobsHistoryLimit"] = json!(-1);
    c["spec"]["jobTemplate"]["spec"]["selector"] = json!({"matchLabels": {"a": "b"}});
    c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
    c["spec"]["timeZone"] = json!("Local");
    assert_eq!(create("batch", "CronJob", c), vec![
        "spec.timeZone: Invalid value: \"Local\": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
        "spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
        "spec.jobTemplate.spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"a\":\"b\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` will be auto-generated",
        "spec.successfulJobsHistoryLimit: Invalid value: -1: must be greater than or equal to 0",
    ]);
}

#[test]
fn cronjob_names_are_limited_to_52_characters() {
    let mut c = kubectl_cron_job();
    let name = "c".repeat(53);
    c["metadata"]["name"] = json!(name);
    assert_eq!(
        create("batch", "CronJob", c.clone()),
        vec![format!(
            "metadata.name: Invalid value: \"{name}\": must be no more than 52 characters"
        )]
    );
    // Existing long names may still be updated.
    assert_eq!(
        update("batch", "CronJob", c.clone(), c),
        Vec::<String>::new()
    );
}
