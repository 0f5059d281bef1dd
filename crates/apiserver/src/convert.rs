//! Version conversion of built-in kinds served at more than one version.
//!
//! Upstream stores every object of a resource in one storage version and
//! converts on the way in and out, so a client of any served version reads
//! and writes the same objects. The registry works in the storage version
//! only; the HTTP layer converts request bodies with [`to_storage`] and
//! answers with [`to_served`]. A kind whose versions differ only in their
//! `apiVersion` needs no entry here.

mod autoscaling;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::{json, Value};

use crate::resources::{lookup, ResourceInfo};
use crate::status::{ApiError, ApiResult};

/// How one resource converts between its versions.
struct Conversion {
    group: &'static str,
    resource: &'static str,
    /// The version objects are stored in (upstream's storage version).
    storage: &'static str,
    /// Converts an object from one version to another (either may be the
    /// storage version; `from == to` normalizes an object of that version).
    convert: fn(Value, from: &str, to: &str) -> Result<Value, String>,
}

const CONVERSIONS: &[Conversion] = &[Conversion {
    group: "autoscaling",
    resource: "horizontalpodautoscalers",
    storage: "v2",
    convert: autoscaling::convert_hpa,
}];

/// How a custom resource served at more than one version converts, as
/// its definition's `spec.conversion` says.
#[derive(Debug)]
pub struct CustomConversion {
    pub kind: String,
    pub storage: &'static str,
    /// The storage version, when it is served.
    pub storage_info: Option<&'static ResourceInfo>,
    /// Strategy `Webhook`: why the webhook cannot be called (upstream's
    /// client error, after `failed: `). `None` is strategy `None`: only
    /// `apiVersion` changes.
    pub webhook_error: Option<String>,
}

type CustomConversions = HashMap<(String, String), Arc<CustomConversion>>;

/// The custom resources' conversions by (group, resource), kept by the
/// definitions controller. Resource descriptions are process-wide
/// (interned), and so are these.
fn custom_conversions() -> &'static RwLock<CustomConversions> {
    static CUSTOM: std::sync::OnceLock<RwLock<CustomConversions>> = std::sync::OnceLock::new();
    CUSTOM.get_or_init(Default::default)
}

/// Replaces the conversions of the custom resources of `definitions`
/// (group, resource pairs).
pub fn set_custom(conversions: Vec<((String, String), CustomConversion)>) {
    let mut all = custom_conversions()
        .write()
        .unwrap_or_else(|p| p.into_inner());
    *all = conversions
        .into_iter()
        .map(|(k, v)| (k, Arc::new(v)))
        .collect();
}

fn custom(r: &ResourceInfo) -> Option<Arc<CustomConversion>> {
    if crate::resources::lookup(r.group, r.version, r.resource).is_some() {
        return None;
    }
    custom_conversions()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&(r.group.to_string(), r.resource.to_string()))
        .cloned()
}

fn conversion(r: &ResourceInfo) -> Option<&'static Conversion> {
    CONVERSIONS
        .iter()
        .find(|c| c.group == r.group && c.resource == r.resource)
}

/// Whether objects of `r` are converted between versions.
pub fn converts(r: &ResourceInfo) -> bool {
    conversion(r).is_some() || custom(r).is_some()
}

/// The resource at its storage version: what the registry is called with.
pub fn storage_info(r: &ResourceInfo) -> &ResourceInfo {
    if let Some(c) = custom(r) {
        return c.storage_info.unwrap_or(r);
    }
    conversion(r)
        .filter(|c| c.storage != r.version)
        .and_then(|c| lookup(r.group, c.storage, r.resource))
        .unwrap_or(r)
}

/// Converts a custom resource between versions: strategy `None` changes
/// its `apiVersion` alone; a webhook that cannot be called fails as
/// upstream's webhook converter does.
fn convert_custom(
    c: &CustomConversion,
    r: &ResourceInfo,
    mut obj: Value,
    from: &str,
    to: &str,
) -> Result<Value, String> {
    if let Some(e) = webhook_failure(c, r, from, to) {
        return Err(e);
    }
    obj["apiVersion"] = json!(format!("{}/{to}", r.group));
    Ok(obj)
}

fn webhook_failure(c: &CustomConversion, r: &ResourceInfo, from: &str, to: &str) -> Option<String> {
    let e = c.webhook_error.as_ref().filter(|_| from != to)?;
    Some(format!(
        "conversion webhook for {}/{from}, Kind={} failed: {e}",
        r.group, c.kind
    ))
}

/// The error of answering a stored custom resource as `served`, checked
/// where the answer is built from the stored object (Tables, metadata-only
/// answers), which upstream converts first too.
pub fn check_served(served: &ResourceInfo, obj: &Value) -> ApiResult<()> {
    let Some(c) = custom(served) else {
        return Ok(());
    };
    match webhook_failure(&c, served, version_of(obj, c.storage), served.version) {
        Some(e) => Err(read_error(e)),
        None => Ok(()),
    }
}

/// upstream answers a failed read conversion with a bare 500.
fn read_error(message: String) -> ApiError {
    ApiError::new(500, "", message)
}

/// The version an object says it is in (`fallback` when it does not).
fn version_of<'a>(obj: &'a Value, fallback: &'a str) -> &'a str {
    match obj.get("apiVersion").and_then(Value::as_str) {
        Some(v) if !v.is_empty() => v.rsplit('/').next().unwrap_or(v),
        _ => fallback,
    }
}

fn convert(r: &ResourceInfo, obj: Value, from: &str, to: &str) -> ApiResult<Value> {
    let Some(c) = conversion(r) else {
        return Ok(obj);
    };
    (c.convert)(obj, from, to).map_err(|e| {
        ApiError::bad_request(format!(
            "converting {} from {}/{from} to {}/{to}: {e}",
            r.kind, r.group, r.group
        ))
    })
}

/// A request body sent to `served` (its version's shape) in the storage
/// version. The body's own `apiVersion` must be `served`'s (the registry
/// checks it on the converted object, so a mismatch is refused here).
pub fn to_storage(served: &ResourceInfo, obj: Value) -> ApiResult<Value> {
    if let Some(c) = custom(served) {
        if !obj.is_object() {
            return Ok(obj);
        }
        if let Some(v) = obj.get("apiVersion").and_then(Value::as_str) {
            if !v.is_empty() && v != served.api_version() {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({v}) does not match the expected API version ({})",
                    served.api_version()
                )));
            }
        }
        return convert_custom(&c, served, obj, served.version, c.storage)
            .map_err(ApiError::internal);
    }
    let Some(c) = conversion(served) else {
        return Ok(obj);
    };
    if !obj.is_object() {
        return Ok(obj);
    }
    let from = match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => served.version,
        Some(v) if v == served.api_version() => served.version,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({})",
                served.api_version()
            )))
        }
    };
    let mut out = convert(served, obj, from, c.storage)?;
    out["apiVersion"] = json!(format!("{}/{}", served.group, c.storage));
    Ok(out)
}

/// A stored object as a client of `served` sees it.
pub fn to_served(served: &ResourceInfo, obj: Value) -> ApiResult<Value> {
    if let Some(c) = custom(served) {
        let from = version_of(&obj, c.storage).to_string();
        return convert_custom(&c, served, obj, &from, served.version).map_err(read_error);
    }
    let Some(c) = conversion(served) else {
        return Ok(obj);
    };
    let from = version_of(&obj, c.storage).to_string();
    if from == served.version {
        return Ok(obj);
    }
    let mut out = convert(served, obj, &from, served.version)?;
    out["apiVersion"] = json!(served.api_version());
    Ok(out)
}

/// A list read from storage as a client of `served` sees it.
pub fn list_to_served(served: &ResourceInfo, mut list: Value) -> ApiResult<Value> {
    if !converts(served) {
        return Ok(list);
    }
    if let Some(items) = list.get_mut("items").and_then(Value::as_array_mut) {
        for item in items.iter_mut() {
            *item = to_served(served, std::mem::take(item))?;
        }
    }
    list["apiVersion"] = json!(served.api_version());
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpa_is_stored_at_v2_and_other_kinds_as_served() {
        let v1 = lookup("autoscaling", "v1", "horizontalpodautoscalers").unwrap();
        assert_eq!(storage_info(v1).version, "v2");
        let cm = lookup("", "v1", "configmaps").unwrap();
        assert!(std::ptr::eq(storage_info(cm), cm));
        assert!(!converts(cm));
    }

    #[test]
    fn a_body_of_another_version_is_refused() {
        let v1 = lookup("autoscaling", "v1", "horizontalpodautoscalers").unwrap();
        let e = to_storage(
            v1,
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler"}),
        )
        .unwrap_err();
        assert_eq!(e.code, 400);
    }
}
