//! Printers of the `batch` kinds.

use serde_json::{json, Value};

use super::docs;
use super::format::{
    arr_at, bool_ptr_word, containers, duration, format_label_selector, get, int_at, len_at, name,
    opt_bool_at, opt_int_at, opt_str_at, str_at, timestamp,
};
use super::{Column, Ctx, Printer, Row, AGE, CONTAINERS_DOC, IMAGES_DOC, NAME};

pub(super) fn printer(resource: &str) -> Option<Printer> {
    match resource {
        "jobs" => Some(Printer {
            columns: JOB_COLUMNS,
            row: job_row,
        }),
        "cronjobs" => Some(Printer {
            columns: CRON_JOB_COLUMNS,
            row: cron_job_row,
        }),
        _ => None,
    }
}

const JOB_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", "Status of the job."),
    Column::new("Completions", "string", docs::JOB_STATUS_SUCCEEDED),
    Column::new("Duration", "string", "Time required to complete the job."),
    AGE,
    Column::wide("Containers", "string", CONTAINERS_DOC),
    Column::wide("Images", "string", IMAGES_DOC),
    Column::wide("Selector", "string", docs::JOB_SPEC_SELECTOR),
];

/// `hasJobCondition`: the first condition of that type is true.
fn has_job_condition(job: &Value, kind: &str) -> bool {
    arr_at(job, "/status/conditions")
        .iter()
        .find(|c| str_at(c, "/type") == kind)
        .is_some_and(|c| str_at(c, "/status") == "True")
}

fn job_row(job: &Value, ctx: &Ctx) -> Row {
    let succeeded = int_at(job, "/status/succeeded");
    // v1 defaulting: with neither set, completions and parallelism are 1.
    let mut completions = opt_int_at(job, "/spec/completions");
    let mut parallelism = opt_int_at(job, "/spec/parallelism");
    if completions.is_none() && parallelism.is_none() {
        completions = Some(1);
        parallelism = Some(1);
    }
    let parallelism = parallelism.unwrap_or(1);
    let completions = match completions {
        Some(c) => format!("{succeeded}/{c}"),
        None if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
        None => format!("{succeeded}/1"),
    };
    let start = get(job, "/status/startTime");
    let job_duration = match (start, get(job, "/status/completionTime")) {
        (None, _) => String::new(),
        (Some(start), None) => ctx.since(Some(start)),
        (Some(start), Some(end)) => match (timestamp(Some(start)), timestamp(Some(end))) {
            (Some(start), Some(end)) => duration(start, end),
            _ => "<unknown>".into(),
        },
    };
    let status = if has_job_condition(job, "Complete") {
        "Complete"
    } else if has_job_condition(job, "Failed") {
        "Failed"
    } else if get(job, "/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else if has_job_condition(job, "Suspended") {
        "Suspended"
    } else if has_job_condition(job, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = containers(arr_at(job, "/spec/template/spec/containers"));
    vec![
        name(job),
        json!(status),
        json!(completions),
        json!(job_duration),
        ctx.age(job),
        json!(names),
        json!(images),
        json!(format_label_selector(job.pointer("/spec/selector"))),
    ]
    .into()
}

const CRON_JOB_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Schedule", "string", docs::CRON_JOB_SPEC_SCHEDULE),
    Column::new("Timezone", "string", docs::CRON_JOB_SPEC_TIME_ZONE),
    Column::new("Suspend", "boolean", docs::CRON_JOB_SPEC_SUSPEND),
    Column::new("Active", "integer", docs::CRON_JOB_STATUS_ACTIVE),
    Column::new(
        "Last Schedule",
        "string",
        docs::CRON_JOB_STATUS_LAST_SCHEDULE_TIME,
    ),
    AGE,
    Column::wide("Containers", "string", CONTAINERS_DOC),
    Column::wide("Images", "string", IMAGES_DOC),
    Column::wide("Selector", "string", docs::JOB_SPEC_SELECTOR),
];

fn cron_job_row(cj: &Value, ctx: &Ctx) -> Row {
    let last_schedule = match get(cj, "/status/lastScheduleTime") {
        Some(t) => ctx.since(Some(t)),
        None => "<none>".into(),
    };
    let (names, images) = containers(arr_at(
        cj,
        "/spec/jobTemplate/spec/template/spec/containers",
    ));
    vec![
        name(cj),
        json!(str_at(cj, "/spec/schedule")),
        json!(opt_str_at(cj, "/spec/timeZone").unwrap_or("<none>")),
        // v1 defaults `suspend` to false.
        json!(bool_ptr_word(Some(
            opt_bool_at(cj, "/spec/suspend").unwrap_or(false)
        ))),
        json!(len_at(cj, "/status/active")),
        json!(last_schedule),
        ctx.age(cj),
        json!(names),
        json!(images),
        json!(format_label_selector(
            cj.pointer("/spec/jobTemplate/spec/selector")
        )),
    ]
    .into()
}
