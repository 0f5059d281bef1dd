//! Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get`
//! asks for (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), with
//! the columns upstream's printers produce for each kind.

use serde_json::{json, Value};

use crate::resources::ResourceInfo;

/// One column: its definition and how a cell is computed.
struct Column {
    name: &'static str,
    kind: &'static str,
    format: &'static str,
    description: &'static str,
    /// 0: always shown; 1: only with `-o wide`.
    priority: u8,
    cell: fn(&Value) -> Value,
}

fn name_cell(o: &Value) -> Value {
    o.pointer("/metadata/name").cloned().unwrap_or(json!(""))
}

fn age_cell(o: &Value) -> Value {
    json!(o.pointer("/metadata/creationTimestamp").and_then(Value::as_str).map(age).unwrap_or_else(|| "<unknown>".into()))
}

const NAME: Column = Column {
    name: "Name",
    kind: "string",
    format: "name",
    description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    priority: 0,
    cell: name_cell,
};

const AGE: Column = Column {
    name: "Age",
    kind: "string",
    format: "",
    description: "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    priority: 0,
    cell: age_cell,
};

fn count_of(o: &Value, pointer: &str) -> Value {
    let n = match o.pointer(pointer) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    };
    json!(n)
}

fn columns(r: &ResourceInfo) -> Vec<Column> {
    match (r.group, r.resource) {
        ("", "namespaces") => vec![
            NAME,
            Column { name: "Status", kind: "string", format: "", description: "The status of the namespace", priority: 0, cell: |o| o.pointer("/status/phase").cloned().unwrap_or(json!("")) },
            AGE,
        ],
        ("", "configmaps") => vec![
            NAME,
            Column {
                name: "Data",
                kind: "string",
                format: "",
                description: "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
                priority: 0,
                cell: |o| {
                    let n = count_of(o, "/data").as_u64().unwrap_or(0) + count_of(o, "/binaryData").as_u64().unwrap_or(0);
                    json!(n)
                },
            },
            AGE,
        ],
        ("", "secrets") => vec![
            NAME,
            Column { name: "Type", kind: "string", format: "", description: "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types", priority: 0, cell: |o| o.get("type").cloned().unwrap_or(json!("")) },
            Column { name: "Data", kind: "string", format: "", description: "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4", priority: 0, cell: |o| count_of(o, "/data") },
            AGE,
        ],
        ("", "serviceaccounts") => vec![
            NAME,
            Column { name: "Secrets", kind: "string", format: "", description: "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret", priority: 0, cell: |o| count_of(o, "/secrets") },
            AGE,
        ],
        _ => vec![NAME, AGE],
    }
}

/// A `Table` of `objects` (the items of a list, or the one object of a get
/// or watch event). Rows carry the object's metadata as
/// `PartialObjectMetadata`, as kubectl expects by default.
pub fn to_table(r: &ResourceInfo, objects: &[Value], resource_version: Option<&str>, continue_token: Option<&str>) -> Value {
    let cols = columns(r);
    let defs: Vec<Value> = cols
        .iter()
        .map(|c| json!({ "name": c.name, "type": c.kind, "format": c.format, "description": c.description, "priority": c.priority }))
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let cells: Vec<Value> = cols.iter().map(|c| (c.cell)(o)).collect();
            json!({
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o.get("metadata").cloned().unwrap_or(json!({})),
                },
            })
        })
        .collect();
    let mut meta = json!({});
    if let Some(rv) = resource_version {
        meta["resourceVersion"] = json!(rv);
    }
    if let Some(c) = continue_token {
        meta["continue"] = json!(c);
    }
    json!({ "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": defs, "rows": rows })
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
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{}d", hours / 24) } else { format!("{}d{h}h", hours / 24) };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 { format!("{}y", hours / 24 / 365) } else { format!("{}y{dy}d", hours / 24 / 365) };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_duration_matches_upstream() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 120), "3h2m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
        assert_eq!(human_duration(100 * 86400), "100d");
        assert_eq!(human_duration(3 * 365 * 86400 + 86400), "3y1d");
    }

    #[test]
    fn kubectl_get_accept_header_wants_a_table() {
        assert!(wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"));
        assert!(!wants_table("application/json"));
    }

    #[test]
    fn configmap_rows_count_data_keys() {
        let cm = crate::resources::lookup("", "v1", "configmaps").unwrap();
        let obj = json!({ "metadata": { "name": "x", "creationTimestamp": "2020-01-01T00:00:00Z" }, "data": { "a": "1", "b": "2" } });
        let t = to_table(cm, &[obj], Some("5"), None);
        assert_eq!(t["columnDefinitions"][1]["name"], "Data");
        assert_eq!(t["rows"][0]["cells"][0], "x");
        assert_eq!(t["rows"][0]["cells"][1], 2);
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }
}
