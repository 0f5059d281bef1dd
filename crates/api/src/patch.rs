//! Patches on JSON values, as the API server applies them for `PATCH`:
//!
//! - [`json_merge`]: JSON merge patch (RFC 7386, `application/merge-patch+json`),
//!   with the quirks of the `evanphx/json-patch` v4 library upstream uses;
//! - [`json_patch`]: JSON patch (RFC 6902, `application/json-patch+json`),
//!   with that library's error texts;
//! - [`strategic`]: strategic merge patch
//!   (`application/strategic-merge-patch+json`), driven by the built-in
//!   kinds' `patchStrategy`/`patchMergeKey` tags.
//!
//! All three are pure functions from (document, patch) to a new document.

pub mod json_merge;
pub mod json_patch;
pub mod strategic;

pub use json_merge::{merge_patch, MergePatchError};
pub use json_patch::{JsonPatch, JsonPatchError};
pub use strategic::{strategic_merge_patch, Schema, StrategicMergeError};

use serde_json::Value;

/// The Go dynamic type of a decoded JSON value, as `reflect.TypeOf` tells
/// them apart (integral literals decode as int64, others as float64).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GoKind {
    Nil,
    Bool,
    Int,
    Float,
    String,
    Slice,
    Map,
}

pub(crate) fn go_kind(v: &Value) -> GoKind {
    match v {
        Value::Null => GoKind::Nil,
        Value::Bool(_) => GoKind::Bool,
        Value::Number(n) if n.as_i64().is_some() => GoKind::Int,
        Value::Number(_) => GoKind::Float,
        Value::String(_) => GoKind::String,
        Value::Array(_) => GoKind::Slice,
        Value::Object(_) => GoKind::Map,
    }
}

/// Go's `==` on two `interface{}` holding decoded JSON scalars: same dynamic
/// type and value. (Go panics on maps and slices; they compare unequal here.)
pub(crate) fn go_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            (None, None) => x.as_f64() == y.as_f64(),
            _ => false,
        },
        _ => false,
    }
}

/// [`go_eq`] on optional values, where a missing value is Go's nil.
pub(crate) fn go_eq_opt(a: Option<&Value>, b: Option<&Value>) -> bool {
    go_eq(a.unwrap_or(&Value::Null), b.unwrap_or(&Value::Null))
}
