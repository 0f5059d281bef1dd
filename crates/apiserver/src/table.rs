//! Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get`
//! asks for (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), with
//! the columns and cells upstream's printers produce for each kind
//! (`pkg/printers/internalversion/printers.go`, Kubernetes v1.32).
//!
//! As upstream's `TableConvertor`, the server always prints the wide
//! columns (priority 1); kubectl hides them unless `-o wide`. Kinds whose
//! upstream storage has no printer get the default convertor's
//! `Name`/`Created At` columns.

mod admission;
mod apps;
mod batch;
mod cluster;
mod core;
mod custom;
mod docs;
mod format;
mod networking;
mod rbac;
mod storage;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::resources::ResourceInfo;

pub use custom::{to_table_custom, to_table_custom_with};

/// One column definition (`metav1.TableColumnDefinition`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Column {
    pub name: &'static str,
    /// The OpenAPI type: `string`, `integer`, `number`, `boolean`, `date`.
    pub kind: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    /// 0: always shown; 1: only with `-o wide`.
    pub priority: u8,
}

impl Column {
    pub const fn new(name: &'static str, kind: &'static str, description: &'static str) -> Column {
        Column {
            name,
            kind,
            format: "",
            description,
            priority: 0,
        }
    }

    /// A column kubectl only shows with `-o wide`.
    pub const fn wide(name: &'static str, kind: &'static str, description: &'static str) -> Column {
        Column {
            name,
            kind,
            format: "",
            description,
            priority: 1,
        }
    }

    fn definition(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// The `Name` column every printer starts with.
pub(crate) const NAME: Column = Column {
    name: "Name",
    kind: "string",
    format: "name",
    description: docs::OBJECT_META_NAME,
    priority: 0,
};

/// The `Age` column (`translateTimestampSince(creationTimestamp)`).
pub(crate) const AGE: Column = Column::new("Age", "string", docs::OBJECT_META_CREATION_TIMESTAMP);

/// Shared by the printers of kinds with a pod template.
pub(crate) const CONTAINERS_DOC: &str = "Names of each container in the template.";
pub(crate) const IMAGES_DOC: &str = "Images referenced by each container in the template.";

/// The cells of one row, and the row's conditions (pods only).
#[derive(Debug, Default)]
pub(crate) struct Row {
    pub cells: Vec<Value>,
    pub conditions: Option<Value>,
}

impl From<Vec<Value>> for Row {
    fn from(cells: Vec<Value>) -> Row {
        Row {
            cells,
            conditions: None,
        }
    }
}

/// What a printer needs besides the object: the time ages are measured to.
pub(crate) struct Ctx {
    pub now: DateTime<Utc>,
}

impl Ctx {
    /// upstream's `translateTimestampSince`: the age of a timestamp, or
    /// `<unknown>` when it is unset.
    pub fn since(&self, timestamp: Option<&Value>) -> String {
        match format::timestamp(timestamp) {
            Some(t) => self.since_time(t),
            None => "<unknown>".into(),
        }
    }

    /// `translateTimestampSince` of a set timestamp.
    pub fn since_time(&self, t: DateTime<Utc>) -> String {
        human_duration(self.now.signed_duration_since(t).num_seconds())
    }

    /// The object's age, from `metadata.creationTimestamp`.
    pub fn age(&self, o: &Value) -> Value {
        json!(self.since(o.pointer("/metadata/creationTimestamp")))
    }
}

/// A kind's printer: its column definitions and the function that prints
/// one object into a row with one cell per column.
pub(crate) struct Printer {
    pub columns: &'static [Column],
    pub row: fn(&Value, &Ctx) -> Row,
}

/// upstream's `rest.NewDefaultTableConvertor`, for kinds without a printer.
const DEFAULT_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Created At", "date", docs::OBJECT_META_CREATION_TIMESTAMP),
];

fn default_row(o: &Value, _: &Ctx) -> Row {
    // `creationTimestamp.Time.UTC().Format(time.RFC3339)`; Go's zero time
    // when unset.
    let created = match format::timestamp(o.pointer("/metadata/creationTimestamp")) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => "0001-01-01T00:00:00Z".to_string(),
    };
    vec![format::name(o), json!(created)].into()
}

const DEFAULT: Printer = Printer {
    columns: DEFAULT_COLUMNS,
    row: default_row,
};

/// The printer of a built-in resource.
pub(crate) fn printer(r: &ResourceInfo) -> Printer {
    let found = match r.group {
        "" => core::printer(r.resource),
        "apps" => apps::printer(r.resource),
        "batch" => batch::printer(r.resource),
        "networking.k8s.io" | "discovery.k8s.io" => networking::printer(r.resource),
        "storage.k8s.io" => storage::printer(r.resource),
        "rbac.authorization.k8s.io" => rbac::printer(r.resource),
        "admissionregistration.k8s.io" => admission::printer(r.resource),
        "events.k8s.io" => core::events_k8s_io_printer(r.resource),
        _ => cluster::printer(r.group, r.resource),
    };
    found.unwrap_or(DEFAULT)
}

/// What each row's `object` holds: the `includeObject` query parameter of
/// a Table request (`TableOptions`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// The object's metadata as `PartialObjectMetadata` (the default).
    #[default]
    Metadata,
    /// The whole object (kubectl asks for it with `--sort-by`).
    Object,
}

impl IncludeObject {
    /// Reads the `includeObject` parameter; `None` for a value upstream
    /// rejects.
    pub fn from_param(value: Option<&str>) -> Option<IncludeObject> {
        match value {
            None | Some("") | Some("Metadata") => Some(IncludeObject::Metadata),
            Some("None") => Some(IncludeObject::None),
            Some("Object") => Some(IncludeObject::Object),
            Some(_) => None,
        }
    }
}

/// A `Table` of `objects` (the items of a list, or the one object of a get
/// or watch event). Rows carry the object's metadata as
/// `PartialObjectMetadata`, as kubectl expects by default.
pub fn to_table(
    r: &ResourceInfo,
    objects: &[Value],
    resource_version: Option<&str>,
    continue_token: Option<&str>,
) -> Value {
    to_table_with(
        r,
        objects,
        resource_version,
        continue_token,
        IncludeObject::Metadata,
    )
}

/// [`to_table`] with rows carrying `include` of each object.
pub fn to_table_with(
    r: &ResourceInfo,
    objects: &[Value],
    resource_version: Option<&str>,
    continue_token: Option<&str>,
    include: IncludeObject,
) -> Value {
    to_table_at(
        r,
        objects,
        resource_version,
        continue_token,
        include,
        Utc::now(),
    )
}

/// [`to_table_with`] with ages measured to `now`.
pub(crate) fn to_table_at(
    r: &ResourceInfo,
    objects: &[Value],
    resource_version: Option<&str>,
    continue_token: Option<&str>,
    include: IncludeObject,
    now: DateTime<Utc>,
) -> Value {
    let p = printer(r);
    let ctx = Ctx { now };
    let rows = objects
        .iter()
        .map(|o| row_json((p.row)(o, &ctx), o, include))
        .collect();
    table_json(
        p.columns.iter().map(Column::definition).collect(),
        rows,
        resource_version,
        continue_token,
    )
}

pub(crate) fn row_json(row: Row, o: &Value, include: IncludeObject) -> Value {
    let mut out = json!({ "cells": row.cells });
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            out["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": o.get("metadata").cloned().unwrap_or(json!({})),
            })
        }
        IncludeObject::Object => out["object"] = o.clone(),
    }
    if let Some(c) = row.conditions {
        out["conditions"] = c;
    }
    out
}

pub(crate) fn table_json(
    columns: Vec<Value>,
    rows: Vec<Value>,
    resource_version: Option<&str>,
    continue_token: Option<&str>,
) -> Value {
    let mut meta = json!({});
    if let Some(rv) = resource_version {
        meta["resourceVersion"] = json!(rv);
    }
    if let Some(c) = continue_token {
        meta["continue"] = json!(c);
    }
    json!({ "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": columns, "rows": rows })
}

/// Whether `Accept` asks for a Table first.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table") && first.contains("g=meta.k8s.io"))
}

/// Time since an RFC 3339 timestamp, in upstream's `HumanDuration` form.
pub fn age(timestamp: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(timestamp) {
        Ok(t) => human_duration(chrono::Utc::now().signed_duration_since(t).num_seconds()),
        Err(_) => "<unknown>".into(),
    }
}

/// upstream's `duration.HumanDuration`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}
