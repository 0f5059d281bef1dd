//! Metadata-only answers: a client that asks for
//! `application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1` (or
//! `as=PartialObjectMetadataList` for lists, in JSON or protobuf) gets each
//! object as a meta.k8s.io `PartialObjectMetadata`: type and metadata
//! only. client-go's metadata informers and kube-rs' `list_metadata`,
//! `watch_metadata` and `metadata_watcher` ask for it.

use serde_json::{json, Value};

/// The metadata-only form a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partial {
    /// `v1` or `v1beta1` of meta.k8s.io.
    version: &'static str,
}

/// The form the first media type of `accept` asks for, if it is
/// `PartialObjectMetadata` or `PartialObjectMetadataList` of meta.k8s.io.
pub fn wanted(accept: &str) -> Option<Partial> {
    let first = accept.split(',').next()?;
    let mut as_kind = None;
    let mut group = None;
    let mut version = None;
    for param in first.split(';').skip(1) {
        match param.trim().split_once('=') {
            Some(("as", v)) => as_kind = Some(v.trim()),
            Some(("g", v)) => group = Some(v.trim()),
            Some(("v", v)) => version = Some(v.trim()),
            _ => {}
        }
    }
    if !matches!(
        as_kind,
        Some("PartialObjectMetadata" | "PartialObjectMetadataList")
    ) || group != Some("meta.k8s.io")
    {
        return None;
    }
    let version = match version {
        Some("v1beta1") => "v1beta1",
        _ => "v1",
    };
    Some(Partial { version })
}

impl Partial {
    fn api_version(&self) -> String {
        format!("meta.k8s.io/{}", self.version)
    }

    /// An object as its `PartialObjectMetadata`.
    pub fn object(&self, obj: &Value) -> Value {
        json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": self.api_version(),
            "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
        })
    }

    /// A list as a `PartialObjectMetadataList`.
    pub fn list(&self, list: &Value) -> Value {
        let items: Vec<Value> = list
            .get("items")
            .and_then(Value::as_array)
            .map(|items| items.iter().map(|o| self.object(o)).collect())
            .unwrap_or_default();
        json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": self.api_version(),
            "metadata": list.get("metadata").cloned().unwrap_or(json!({})),
            "items": items,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_requests_are_recognized_in_json_and_protobuf() {
        assert!(wanted("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1").is_some());
        assert!(wanted(
            "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
        )
        .is_some());
        assert!(wanted("application/json;as=Table;g=meta.k8s.io;v=v1").is_none());
        assert!(wanted("application/json").is_none());
        assert!(wanted(
            "application/json,application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
        )
        .is_none());
    }

    #[test]
    fn only_type_and_metadata_remain() {
        let p = wanted("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1").unwrap();
        let list = json!({
            "kind": "PodList", "apiVersion": "v1", "metadata": { "resourceVersion": "5" },
            "items": [{ "kind": "Pod", "apiVersion": "v1", "metadata": { "name": "a" }, "spec": {} }]
        });
        assert_eq!(
            p.list(&list),
            json!({
                "kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                "metadata": { "resourceVersion": "5" },
                "items": [{ "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": { "name": "a" } }]
            })
        );
    }
}
