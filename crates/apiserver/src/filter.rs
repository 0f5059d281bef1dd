//! List and watch filters from `labelSelector` and `fieldSelector`, with
//! the field labels each kind supports upstream (`metadata.name`,
//! `spec.nodeName` for pods, `involvedObject.*` for events, ...).

use std::sync::Arc;

use api::{FieldSelector, LabelSelector};
use serde_json::Value;

use crate::request::Query;
use crate::resources::ResourceInfo;
use crate::status::{ApiError, ApiResult};
use crate::watch::Filter;

/// The field labels a kind can be selected by, besides `metadata.name` and
/// `metadata.namespace`.
fn kind_fields(r: &ResourceInfo) -> &'static [&'static str] {
    match (r.group, r.resource) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ],
        ("", "events") | ("events.k8s.io", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
        ],
        ("", "secrets") => &["type"],
        ("", "nodes") => &["spec.unschedulable"],
        ("", "namespaces") => &["status.phase"],
        ("", "replicationcontrollers") | ("apps", "replicasets") => &["status.replicas"],
        ("batch", "jobs") => &["status.successful"],
        ("", "services") => &["spec.clusterIP", "spec.type"],
        ("certificates.k8s.io", "certificatesigningrequests") => &["spec.signerName"],
        _ => &[],
    }
}

/// The value of a field label on an object, as upstream's field-label
/// conversion renders it.
fn field_value(obj: &Value, field: &str) -> Option<String> {
    if field == "source" {
        return obj
            .pointer("/source/component")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    if field == "status.podIPs" {
        return obj
            .pointer("/status/podIP")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    let pointer = format!("/{}", field.replace('.', "/"));
    match obj.pointer(&pointer) {
        None | Some(Value::Null) => match field {
            "spec.unschedulable" | "spec.hostNetwork" => Some("false".into()),
            "status.replicas" | "status.successful" => Some("0".into()),
            _ => Some(String::new()),
        },
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => None,
    }
}

fn labels_of<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// The filter a list or watch request asks for.
pub fn from_query(r: &'static ResourceInfo, query: &Query) -> ApiResult<Filter> {
    let labels = match query.get("labelSelector") {
        Some(s) if !s.trim().is_empty() => {
            Some(LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?)
        }
        _ => None,
    };
    let fields = match query.get("fieldSelector") {
        Some(s) if !s.trim().is_empty() => {
            let sel = FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?;
            let supported = kind_fields(r);
            for req in sel.requirements() {
                let f = req.field.as_str();
                if f == "metadata.name" || f == "metadata.namespace" || supported.contains(&f) {
                    continue;
                }
                // Kinds with their own field-label conversion word it
                // differently from the default conversion.
                let err = if supported.is_empty() {
                    api::fields::FieldSelectorError::UnknownField(f.to_string())
                } else {
                    api::fields::FieldSelectorError::FieldLabelNotSupported(f.to_string())
                };
                return Err(ApiError::bad_request(err.to_string()));
            }
            Some(sel)
        }
        _ => None,
    };
    Ok(Arc::new(move |obj: &Value| {
        if let Some(l) = &labels {
            if !l.matches_with(|k| labels_of(obj, k)) {
                return false;
            }
        }
        if let Some(f) = &fields {
            let values: Vec<(String, String)> = f
                .requirements()
                .iter()
                .map(|req| req.field.as_str())
                .map(|name| {
                    let v = match name {
                        "metadata.name" => obj
                            .pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        "metadata.namespace" => obj
                            .pointer("/metadata/namespace")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        other => field_value(obj, other).unwrap_or_default(),
                    };
                    (name.to_string(), v)
                })
                .collect();
            if !f.matches_with(|k| values.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())) {
                return false;
            }
        }
        true
    }))
}
