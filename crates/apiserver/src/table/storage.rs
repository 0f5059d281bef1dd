//! Printers of the `storage.k8s.io` kinds. (`csistoragecapacities` has a
//! printer upstream, but its storage registers the default convertor.)

use serde_json::{json, Value};

use super::docs;
use super::format::{arr_at, len_at, name, opt_bool_at, opt_str_at, str_at};
use super::{Column, Ctx, Printer, Row, AGE, NAME};

pub(super) fn printer(resource: &str) -> Option<Printer> {
    let p = match resource {
        "storageclasses" => Printer {
            columns: STORAGE_CLASS_COLUMNS,
            row: storage_class_row,
        },
        "csidrivers" => Printer {
            columns: CSI_DRIVER_COLUMNS,
            row: csi_driver_row,
        },
        "csinodes" => Printer {
            columns: CSI_NODE_COLUMNS,
            row: csi_node_row,
        },
        "volumeattachments" => Printer {
            columns: VOLUME_ATTACHMENT_COLUMNS,
            row: volume_attachment_row,
        },
        _ => return None,
    };
    Some(p)
}

const STORAGE_CLASS_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Provisioner", "string", docs::STORAGE_CLASS_PROVISIONER),
    Column::new(
        "ReclaimPolicy",
        "string",
        docs::STORAGE_CLASS_RECLAIM_POLICY,
    ),
    Column::new(
        "VolumeBindingMode",
        "string",
        docs::STORAGE_CLASS_VOLUME_BINDING_MODE,
    ),
    Column::new(
        "AllowVolumeExpansion",
        "string",
        docs::STORAGE_CLASS_ALLOW_VOLUME_EXPANSION,
    ),
    AGE,
];

/// `storageutil.IsDefaultAnnotation`.
fn is_default_class(o: &Value) -> bool {
    let annotation = |key: &str| {
        o.pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
    };
    annotation("storageclass.kubernetes.io/is-default-class") == Some("true")
        || annotation("storageclass.beta.kubernetes.io/is-default-class") == Some("true")
}

fn storage_class_row(o: &Value, ctx: &Ctx) -> Row {
    let mut class_name = str_at(o, "/metadata/name").to_string();
    if is_default_class(o) {
        class_name.push_str(" (default)");
    }
    vec![
        json!(class_name),
        json!(str_at(o, "/provisioner")),
        json!(opt_str_at(o, "/reclaimPolicy").unwrap_or("Delete")),
        json!(opt_str_at(o, "/volumeBindingMode").unwrap_or("Immediate")),
        json!(opt_bool_at(o, "/allowVolumeExpansion").unwrap_or(false)),
        ctx.age(o),
    ]
    .into()
}

const CSI_DRIVER_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "AttachRequired",
        "boolean",
        docs::CSI_DRIVER_ATTACH_REQUIRED,
    ),
    Column::new(
        "PodInfoOnMount",
        "boolean",
        docs::CSI_DRIVER_POD_INFO_ON_MOUNT,
    ),
    Column::new(
        "StorageCapacity",
        "boolean",
        docs::CSI_DRIVER_STORAGE_CAPACITY,
    ),
    Column::new("TokenRequests", "string", docs::CSI_DRIVER_TOKEN_REQUESTS),
    Column::new(
        "RequiresRepublish",
        "boolean",
        docs::CSI_DRIVER_REQUIRES_REPUBLISH,
    ),
    Column::new("Modes", "string", docs::CSI_DRIVER_VOLUME_LIFECYCLE_MODES),
    AGE,
];

fn csi_driver_row(o: &Value, ctx: &Ctx) -> Row {
    // v1 defaults an empty `volumeLifecycleModes` to `Persistent`.
    let modes: Vec<&str> = arr_at(o, "/spec/volumeLifecycleModes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let modes = if modes.is_empty() {
        "Persistent".to_string()
    } else {
        modes.join(",")
    };
    let token_requests = match o.pointer("/spec/tokenRequests").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .map(|t| str_at(t, "/audience"))
            .collect::<Vec<_>>()
            .join(","),
        None => "<unset>".into(),
    };
    vec![
        name(o),
        json!(opt_bool_at(o, "/spec/attachRequired").unwrap_or(true)),
        json!(opt_bool_at(o, "/spec/podInfoOnMount").unwrap_or(false)),
        json!(opt_bool_at(o, "/spec/storageCapacity").unwrap_or(false)),
        json!(token_requests),
        json!(opt_bool_at(o, "/spec/requiresRepublish").unwrap_or(false)),
        json!(modes),
        ctx.age(o),
    ]
    .into()
}

const CSI_NODE_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Drivers",
        "integer",
        "Drivers indicates the number of CSI drivers registered on the node",
    ),
    AGE,
];

fn csi_node_row(o: &Value, ctx: &Ctx) -> Row {
    vec![name(o), json!(len_at(o, "/spec/drivers")), ctx.age(o)].into()
}

const VOLUME_ATTACHMENT_COLUMNS: &[Column] = &[
    NAME,
    Column {
        format: "name",
        ..Column::new("Attacher", "string", docs::VOLUME_ATTACHMENT_SPEC_ATTACHER)
    },
    Column::new("PV", "string", docs::VOLUME_ATTACHMENT_SOURCE_PV_NAME),
    Column::new("Node", "string", docs::VOLUME_ATTACHMENT_SPEC_NODE_NAME),
    Column::new(
        "Attached",
        "boolean",
        docs::VOLUME_ATTACHMENT_STATUS_ATTACHED,
    ),
    AGE,
];

fn volume_attachment_row(o: &Value, ctx: &Ctx) -> Row {
    vec![
        name(o),
        json!(str_at(o, "/spec/attacher")),
        json!(str_at(o, "/spec/source/persistentVolumeName")),
        json!(str_at(o, "/spec/nodeName")),
        json!(opt_bool_at(o, "/status/attached").unwrap_or(false)),
        ctx.age(o),
    ]
    .into()
}
