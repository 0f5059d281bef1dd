//! List and watch filters from `labelSelector` and `fieldSelector`, with
//! the field labels each kind supports upstream (`metadata.name`,
//! `spec.nodeName` for pods, `involvedObject.*` for events, ...).
//!
//! A filter matches either a decoded object or the [`Index`] the watch
//! cache keeps beside each object's encoding (name, namespace, labels and
//! the kind's field labels), so that cached objects are filtered without
//! being decoded.

use std::sync::Arc;

use api::{FieldSelector, LabelSelector};
use serde_json::Value;

use crate::request::Query;
use crate::resources::ResourceInfo;
use crate::status::{ApiError, ApiResult};

/// The field labels a kind can be selected by, besides `metadata.name` and
/// `metadata.namespace`.
fn kind_fields(group: &str, resource: &str) -> &'static [&'static str] {
    match (group, resource) {
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

/// Where a field label's value is read from: `source` is the event's
/// component and `status.podIPs` the pod's first IP.
fn field_path(field: &str) -> &str {
    match field {
        "source" => "source.component",
        "status.podIPs" => "status.podIP",
        other => other,
    }
}

/// What a field label reads as when the object leaves the field out.
fn field_default(field: &str) -> &'static str {
    match field {
        "spec.unschedulable" | "spec.hostNetwork" => "false",
        "status.replicas" | "status.successful" => "0",
        _ => "",
    }
}

/// Field labels that only a string value sets.
fn string_only(field: &str) -> bool {
    matches!(field, "source" | "status.podIPs")
}

/// The value of a field label on an object, as upstream's field-label
/// conversion renders it.
fn field_value(obj: &Value, field: &str) -> Option<String> {
    let pointer = format!("/{}", field_path(field).replace('.', "/"));
    match obj.pointer(&pointer) {
        Some(Value::String(s)) => Some(s.clone()),
        None | Some(Value::Null) => Some(field_default(field).into()),
        Some(_) if string_only(field) => None,
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => None,
    }
}

/// [`field_value`] of the raw JSON value `raw` (`None`: the field is absent).
fn field_text(field: &str, raw: Option<&[u8]>) -> Option<String> {
    use crate::scan::{scalar, Scalar};
    match raw.map(|r| (r.first() == Some(&b'"'), scalar(r))) {
        Some((true, Some(Scalar::Text(t)))) => Some(t),
        None | Some((_, Some(Scalar::Null))) => Some(field_default(field).into()),
        Some(_) if string_only(field) => None,
        Some((_, Some(Scalar::Text(t)))) => Some(t),
        Some((_, None)) => None,
    }
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn labels_of<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// What filters read of an object, kept small: its name, namespace, labels
/// and the non-empty values of its kind's field labels.
#[derive(Debug, Default)]
pub struct Index {
    name: Box<str>,
    namespace: Box<str>,
    labels: Box<[(Box<str>, Box<str>)]>,
    fields: Box<[(&'static str, Box<str>)]>,
}

impl Index {
    /// The index of `obj`, an object of `resource` in `group`.
    pub fn of(group: &str, resource: &str, obj: &Value) -> Index {
        let labels = obj
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str().into(), v.as_str()?.into())))
                    .collect()
            })
            .unwrap_or_default();
        let fields = kind_fields(group, resource)
            .iter()
            .filter_map(|f| {
                let v = field_value(obj, f).unwrap_or_default();
                (!v.is_empty()).then(|| (*f, v.into_boxed_str()))
            })
            .collect();
        Index {
            name: meta_str(obj, "name").into(),
            namespace: meta_str(obj, "namespace").into(),
            labels,
            fields,
        }
    }

    /// The index of an encoded object from its top-level members
    /// ([`crate::scan::members`]), read without decoding it: the same as
    /// [`Index::of`] gives for the decoded object. `None` when it cannot be
    /// read that way.
    pub fn from_members(group: &str, resource: &str, top: &[(&[u8], &[u8])]) -> Option<Index> {
        use crate::scan::{member, members, object, string};
        let meta = match object(member(top, "metadata")) {
            Some(m) => members(m)?,
            None => Vec::new(),
        };
        let labels = match object(member(&meta, "labels")) {
            Some(l) => members(l)?
                .into_iter()
                .filter_map(|(k, v)| {
                    let key = std::str::from_utf8(k).ok()?;
                    Some((key.into(), string(Some(v))?.into_boxed_str()))
                })
                .collect(),
            None => Box::default(),
        };
        let mut fields = Vec::new();
        for f in kind_fields(group, resource) {
            let mut parts = field_path(f).split('.');
            let last = parts.next_back().unwrap_or("");
            let mut nested = None;
            let mut absent = false;
            for part in parts {
                let level: &[(&[u8], &[u8])] = nested.as_deref().unwrap_or(top);
                match object(member(level, part)) {
                    Some(v) => nested = Some(members(v)?),
                    None => {
                        absent = true;
                        break;
                    }
                }
            }
            let raw = if absent {
                None
            } else {
                member(nested.as_deref().unwrap_or(top), last)
            };
            match field_text(f, raw) {
                Some(v) if !v.is_empty() => fields.push((*f, v.into_boxed_str())),
                _ => {}
            }
        }
        Some(Index {
            name: string(member(&meta, "name")).unwrap_or_default().into(),
            namespace: string(member(&meta, "namespace"))
                .unwrap_or_default()
                .into(),
            labels,
            fields: fields.into(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| &**v)
    }

    fn field(&self, name: &str) -> &str {
        match name {
            "metadata.name" => &self.name,
            "metadata.namespace" => &self.namespace,
            _ => self
                .fields
                .iter()
                .find(|(f, _)| *f == name)
                .map(|(_, v)| &**v)
                .unwrap_or(""),
        }
    }
}

/// A list or watch filter: label and field selectors, and for watches of
/// one object its name. Cheap to clone.
#[derive(Clone, Default)]
pub struct Filter(Arc<Selectors>);

#[derive(Default)]
struct Selectors {
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
    name: Option<String>,
}

impl Filter {
    /// Matches every object.
    pub fn everything() -> Filter {
        Filter::default()
    }

    pub fn is_everything(&self) -> bool {
        self.0.labels.is_none() && self.0.fields.is_none() && self.0.name.is_none()
    }

    /// This filter, and only the object named `name`.
    pub fn named(&self, name: &str) -> Filter {
        Filter(Arc::new(Selectors {
            labels: self.0.labels.clone(),
            fields: self.0.fields.clone(),
            name: Some(name.to_string()),
        }))
    }

    /// Whether a decoded object matches.
    pub fn matches(&self, obj: &Value) -> bool {
        let s = &self.0;
        if let Some(n) = &s.name {
            if meta_str(obj, "name") != n {
                return false;
            }
        }
        if let Some(l) = &s.labels {
            if !l.matches_with(|k| labels_of(obj, k)) {
                return false;
            }
        }
        if let Some(f) = &s.fields {
            let values: Vec<(String, String)> = f
                .requirements()
                .iter()
                .map(|req| req.field.as_str())
                .map(|name| {
                    let v = match name {
                        "metadata.name" => meta_str(obj, "name").to_string(),
                        "metadata.namespace" => meta_str(obj, "namespace").to_string(),
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
    }

    /// Whether the object an index was made of matches.
    pub fn matches_index(&self, index: &Index) -> bool {
        let s = &self.0;
        if let Some(n) = &s.name {
            if index.name() != n {
                return false;
            }
        }
        if let Some(l) = &s.labels {
            if !l.matches_with(|k| index.label(k)) {
                return false;
            }
        }
        if let Some(f) = &s.fields {
            if !f.matches_with(|k| Some(index.field(k))) {
                return false;
            }
        }
        true
    }
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
            let supported = kind_fields(r.group, r.resource);
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
    Ok(Filter(Arc::new(Selectors {
        labels,
        fields,
        name: None,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(group: &str, resource: &str, labels: &str, fields: &str) -> Filter {
        let _ = (group, resource);
        Filter(Arc::new(Selectors {
            labels: (!labels.is_empty()).then(|| LabelSelector::parse(labels).unwrap()),
            fields: (!fields.is_empty()).then(|| FieldSelector::parse(fields).unwrap()),
            name: None,
        }))
    }

    #[test]
    fn an_index_read_from_the_encoding_is_the_decoded_objects_index() {
        for (group, resource, obj) in [
            (
                "",
                "pods",
                json!({
                    "metadata": { "name": "p", "namespace": "ns", "labels": { "app": "web", "n": 1, "e": "a\"b" } },
                    "spec": { "nodeName": "n1", "hostNetwork": true, "containers": [{ "name": "c" }] },
                    "status": { "phase": "Running", "podIP": "10.42.0.5", "podIPs": [{ "ip": "10.42.0.5" }], "nominatedNodeName": null },
                }),
            ),
            ("", "pods", json!({ "metadata": { "name": "bare" } })),
            (
                "",
                "pods",
                json!({ "metadata": { "name": "odd", "labels": null }, "spec": "none", "status": { "phase": {} } }),
            ),
            (
                "",
                "events",
                json!({
                    "metadata": { "name": "e", "namespace": "ns" },
                    "involvedObject": { "kind": "Pod", "name": "p", "resourceVersion": "12" },
                    "source": { "component": "kubelet" }, "reason": "Started", "type": "Normal",
                }),
            ),
            (
                "",
                "nodes",
                json!({ "metadata": { "name": "n" }, "spec": { "unschedulable": true } }),
            ),
            ("", "nodes", json!({ "metadata": { "name": "n" } })),
            (
                "",
                "events",
                json!({ "metadata": { "name": "odd" }, "source": { "component": 5 }, "reason": true, "type": null }),
            ),
            (
                "apps",
                "replicasets",
                json!({ "metadata": { "name": "r" }, "status": { "replicas": 3 } }),
            ),
            (
                "batch",
                "jobs",
                json!({ "metadata": { "name": "j" }, "status": {} }),
            ),
            (
                "",
                "configmaps",
                json!({ "metadata": { "name": "c" }, "data": { "metadata": "{" } }),
            ),
        ] {
            let json = serde_json::to_vec(&obj).unwrap();
            let top = crate::scan::members(&json).unwrap();
            let read = Index::from_members(group, resource, &top).unwrap();
            assert_eq!(
                format!("{read:?}"),
                format!("{:?}", Index::of(group, resource, &obj)),
                "{obj}"
            );
        }
    }

    #[test]
    fn index_matches_as_the_decoded_object_does() {
        let pod = json!({
            "metadata": { "name": "p", "namespace": "ns", "labels": { "app": "web", "tier": "" } },
            "spec": { "nodeName": "n1", "restartPolicy": "Always" },
            "status": { "phase": "Running", "podIP": "10.42.0.5" },
        });
        let index = Index::of("", "pods", &pod);
        for (labels, fields) in [
            ("", ""),
            ("app=web", ""),
            ("app!=web", ""),
            ("tier", ""),
            ("!tier", ""),
            ("app in (a,web)", "spec.nodeName=n1"),
            ("", "spec.nodeName=n2"),
            ("", "spec.nodeName!=n2,status.phase=Running"),
            ("", "spec.hostNetwork=false"),
            ("", "spec.hostNetwork!=false"),
            ("", "status.podIPs=10.42.0.5"),
            ("", "status.nominatedNodeName="),
            ("", "metadata.name=p,metadata.namespace=ns"),
            ("", "metadata.namespace!=ns"),
            ("app=web", "spec.schedulerName=default-scheduler"),
        ] {
            let f = filter("", "pods", labels, fields);
            assert_eq!(
                f.matches(&pod),
                f.matches_index(&index),
                "labels {labels:?} fields {fields:?}"
            );
        }
        let named = Filter::everything().named("p");
        assert!(named.matches(&pod) && named.matches_index(&index));
        let other = Filter::everything().named("q");
        assert!(!other.matches(&pod) && !other.matches_index(&index));
    }
}
