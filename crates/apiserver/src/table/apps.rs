//! Printers of the `apps` kinds.

use serde_json::{json, Value};

use super::docs;
use super::format::{
    arr_at, containers, controller_of, format_label_selector, format_labels, int_at, name,
    opt_int_at, selector_string, str_at,
};
use super::{Column, Ctx, Printer, Row, AGE, CONTAINERS_DOC, IMAGES_DOC, NAME};

pub(super) fn printer(resource: &str) -> Option<Printer> {
    let p = match resource {
        "deployments" => Printer {
            columns: DEPLOYMENT_COLUMNS,
            row: deployment_row,
        },
        "replicasets" => Printer {
            columns: REPLICA_SET_COLUMNS,
            row: replica_set_row,
        },
        "statefulsets" => Printer {
            columns: STATEFUL_SET_COLUMNS,
            row: stateful_set_row,
        },
        "daemonsets" => Printer {
            columns: DAEMON_SET_COLUMNS,
            row: daemon_set_row,
        },
        "controllerrevisions" => Printer {
            columns: CONTROLLER_REVISION_COLUMNS,
            row: controller_revision_row,
        },
        _ => return None,
    };
    Some(p)
}

/// `spec.replicas`, which v1 defaults to 1.
fn replicas(o: &Value) -> i64 {
    opt_int_at(o, "/spec/replicas").unwrap_or(1)
}

fn template_containers(o: &Value) -> (String, String) {
    containers(arr_at(o, "/spec/template/spec/containers"))
}

const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Ready", "string", "Number of the pod with ready state"),
    Column::new("Up-to-date", "string", docs::DEPLOYMENT_STATUS_UPDATED),
    Column::new("Available", "string", docs::DEPLOYMENT_STATUS_AVAILABLE),
    AGE,
    Column::wide("Containers", "string", CONTAINERS_DOC),
    Column::wide("Images", "string", IMAGES_DOC),
    Column::wide("Selector", "string", docs::DEPLOYMENT_SPEC_SELECTOR),
];

fn deployment_row(o: &Value, ctx: &Ctx) -> Row {
    let (names, images) = template_containers(o);
    let selector =
        selector_string(o.pointer("/spec/selector")).unwrap_or_else(|()| "<invalid>".into());
    vec![
        name(o),
        json!(format!(
            "{}/{}",
            int_at(o, "/status/readyReplicas"),
            replicas(o)
        )),
        json!(int_at(o, "/status/updatedReplicas")),
        json!(int_at(o, "/status/availableReplicas")),
        ctx.age(o),
        json!(names),
        json!(images),
        json!(selector),
    ]
    .into()
}

const REPLICA_SET_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Desired", "integer", docs::RS_SPEC_REPLICAS),
    Column::new("Current", "integer", docs::RS_STATUS_REPLICAS),
    Column::new("Ready", "integer", docs::RS_STATUS_READY_REPLICAS),
    AGE,
    Column::wide("Containers", "string", CONTAINERS_DOC),
    Column::wide("Images", "string", IMAGES_DOC),
    Column::wide("Selector", "string", docs::RS_SPEC_SELECTOR),
];

fn replica_set_row(o: &Value, ctx: &Ctx) -> Row {
    let (names, images) = template_containers(o);
    vec![
        name(o),
        json!(replicas(o)),
        json!(int_at(o, "/status/replicas")),
        json!(int_at(o, "/status/readyReplicas")),
        ctx.age(o),
        json!(names),
        json!(images),
        json!(format_label_selector(o.pointer("/spec/selector"))),
    ]
    .into()
}

const STATEFUL_SET_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Ready", "string", "Number of the pod with ready state"),
    AGE,
    Column::wide("Containers", "string", CONTAINERS_DOC),
    Column::wide("Images", "string", IMAGES_DOC),
];

fn stateful_set_row(o: &Value, ctx: &Ctx) -> Row {
    let (names, images) = template_containers(o);
    vec![
        name(o),
        json!(format!(
            "{}/{}",
            int_at(o, "/status/readyReplicas"),
            replicas(o)
        )),
        ctx.age(o),
        json!(names),
        json!(images),
    ]
    .into()
}

const DAEMON_SET_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Desired", "integer", docs::DS_STATUS_DESIRED),
    Column::new("Current", "integer", docs::DS_STATUS_CURRENT),
    Column::new("Ready", "integer", docs::DS_STATUS_READY),
    Column::new("Up-to-date", "integer", docs::DS_STATUS_UPDATED),
    Column::new("Available", "integer", docs::DS_STATUS_AVAILABLE),
    Column::new("Node Selector", "string", docs::POD_SPEC_NODE_SELECTOR),
    AGE,
    Column::wide("Containers", "string", CONTAINERS_DOC),
    Column::wide("Images", "string", IMAGES_DOC),
    Column::wide("Selector", "string", docs::DS_SPEC_SELECTOR),
];

fn daemon_set_row(o: &Value, ctx: &Ctx) -> Row {
    let (names, images) = template_containers(o);
    vec![
        name(o),
        json!(int_at(o, "/status/desiredNumberScheduled")),
        json!(int_at(o, "/status/currentNumberScheduled")),
        json!(int_at(o, "/status/numberReady")),
        json!(int_at(o, "/status/updatedNumberScheduled")),
        json!(int_at(o, "/status/numberAvailable")),
        json!(format_labels(o.pointer("/spec/template/spec/nodeSelector"))),
        ctx.age(o),
        json!(names),
        json!(images),
        json!(format_label_selector(o.pointer("/spec/selector"))),
    ]
    .into()
}

const CONTROLLER_REVISION_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Controller", "string", "Controller of the object"),
    Column::new("Revision", "string", docs::CONTROLLER_REVISION_REVISION),
    AGE,
];

/// `formatResourceName` of the controller: `daemonset.apps/name`.
fn controller_name(o: &Value) -> String {
    let Some(owner) = controller_of(o) else {
        return "<none>".into();
    };
    let group = match str_at(owner, "/apiVersion").split_once('/') {
        Some((group, _)) => group,
        None => "",
    };
    let kind = str_at(owner, "/kind");
    let owner_name = str_at(owner, "/name");
    match (group, kind) {
        ("", "") => owner_name.to_string(),
        ("", kind) => format!("{}/{owner_name}", kind.to_lowercase()),
        (group, kind) => format!(
            "{}.{}/{owner_name}",
            kind.to_lowercase(),
            group.to_lowercase()
        ),
    }
}

fn controller_revision_row(o: &Value, ctx: &Ctx) -> Row {
    vec![
        name(o),
        json!(controller_name(o)),
        json!(int_at(o, "/revision")),
        ctx.age(o),
    ]
    .into()
}
