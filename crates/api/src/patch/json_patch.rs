//! JSON patch (RFC 6902) as upstream applies it through
//! `gopkg.in/evanphx/json-patch.v4`: the same operations, the same leniency
//! (negative array indices count from the end, `replace` of a missing object
//! key adds it, `test` of a missing key against `null` passes) and the same
//! error texts, which the API server returns as `422` messages.

use crate::gofmt;
use serde_json::{Map, Value};

/// The most operations one patch may carry (the API server answers `413`
/// beyond it).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// The most bytes `copy` operations may add to a document, as the API server
/// configures the library.
pub const DEFAULT_COPY_SIZE_LIMIT: usize = 3 * 1024 * 1024;

/// Errors of JSON patches.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JsonPatchError {
    /// The patch is not a JSON array of objects (`400 Bad Request`).
    #[error("{0}")]
    Decode(String),
    /// Too many operations (`413 Request Entity Too Large`).
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations { max: usize, got: usize },
    /// An operation failed (`422 Unprocessable Entity`); the text names the
    /// operation and path as upstream does.
    #[error("{0}")]
    Apply(String),
}

/// A decoded JSON patch: a list of operations, each a JSON object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JsonPatch {
    ops: Vec<Map<String, Value>>,
}

const ERR_MISSING: &str = "missing value";
const ERR_INVALID_INDEX: &str = "invalid index referenced";
const ERR_TEST_FAILED: &str = "test failed";

fn fail<T>(msg: String) -> Result<T, JsonPatchError> {
    Err(JsonPatchError::Apply(msg))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl JsonPatch {
    /// Decodes a patch (upstream's `DecodePatch`); `null` is an empty patch.
    pub fn from_value(v: &Value) -> Result<JsonPatch, JsonPatchError> {
        let items = match v {
            Value::Null => return Ok(JsonPatch::default()),
            Value::Array(items) => items,
            other => {
                return Err(JsonPatchError::Decode(format!(
                    "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
                    json_type(other)
                )));
            }
        };
        let mut ops = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Value::Object(m) => ops.push(m.clone()),
                Value::Null => ops.push(Map::new()),
                other => {
                    return Err(JsonPatchError::Decode(format!(
                        "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                        json_type(other)
                    )));
                }
            }
        }
        Ok(JsonPatch { ops })
    }

    /// Decodes a patch from bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<JsonPatch, JsonPatchError> {
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| JsonPatchError::Decode(e.to_string()))?;
        JsonPatch::from_value(&v)
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Fails when the patch has more than [`MAX_JSON_PATCH_OPERATIONS`].
    pub fn check_operation_count(&self) -> Result<(), JsonPatchError> {
        if self.ops.len() > MAX_JSON_PATCH_OPERATIONS {
            return Err(JsonPatchError::TooManyOperations {
                max: MAX_JSON_PATCH_OPERATIONS,
                got: self.ops.len(),
            });
        }
        Ok(())
    }

    /// Applies the operations in order, with the API server's copy limit.
    pub fn apply(&self, doc: Value) -> Result<Value, JsonPatchError> {
        self.apply_with_copy_limit(doc, DEFAULT_COPY_SIZE_LIMIT)
    }

    /// Applies the operations; `copy_limit` bounds the bytes `copy` may add
    /// (0 is unlimited).
    pub fn apply_with_copy_limit(
        &self,
        mut doc: Value,
        copy_limit: usize,
    ) -> Result<Value, JsonPatchError> {
        if !doc.is_object() && !doc.is_array() {
            return Err(JsonPatchError::Apply(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.partialDoc",
                json_type(&doc)
            )));
        }
        let mut copied = 0usize;
        for op in &self.ops {
            let kind = match op.get("op") {
                Some(Value::String(s)) => s.as_str(),
                _ => "unknown",
            };
            match kind {
                "add" => add(&mut doc, op)?,
                "remove" => remove(&mut doc, op)?,
                "replace" => replace(&mut doc, op)?,
                "move" => move_op(&mut doc, op)?,
                "test" => test(&doc, op)?,
                "copy" => copy(&mut doc, op, &mut copied, copy_limit)?,
                other => return fail(format!("Unexpected kind: {other}")),
            }
        }
        Ok(doc)
    }
}

/// Reads a string member: `Ok(None)` when missing or null, `Err(text)` when
/// not a string (Go's unmarshal error).
fn string_member(op: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match op.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "json: cannot unmarshal {} into Go value of type string",
            json_type(other)
        )),
    }
}

fn path_of(op: &Map<String, Value>) -> Result<String, String> {
    match string_member(op, "path")? {
        Some(p) => Ok(p),
        None => Err(format!("operation missing path field: {ERR_MISSING}")),
    }
}

fn from_of(op: &Map<String, Value>) -> Result<String, String> {
    match string_member(op, "from")? {
        Some(p) => Ok(p),
        None => Err(format!("operation, missing from field: {ERR_MISSING}")),
    }
}

/// The `value` member; a missing value is added as `null`, as upstream does.
fn value_of(op: &Map<String, Value>) -> Option<Value> {
    op.get("value").cloned()
}

fn decode_key(k: &str) -> String {
    k.replace("~1", "/").replace("~0", "~")
}

/// `strconv.Atoi`, with Go's error text.
fn atoi(s: &str) -> Result<i64, String> {
    s.parse::<i64>().map_err(|_| {
        let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            format!(
                "strconv.Atoi: parsing {}: value out of range",
                gofmt::quote(s)
            )
        } else {
            format!("strconv.Atoi: parsing {}: invalid syntax", gofmt::quote(s))
        }
    })
}

fn invalid_index(idx: i64) -> String {
    format!("Unable to access invalid index: {idx}: {ERR_INVALID_INDEX}")
}

/// Resolves a (possibly negative) index of an existing element.
fn existing_index(len: usize, key: &str) -> Result<usize, String> {
    let mut idx = atoi(key)?;
    let len = len as i64;
    if idx < 0 {
        if idx < -len {
            return Err(invalid_index(idx));
        }
        idx += len;
    }
    if idx >= len {
        return Err(invalid_index(idx));
    }
    Ok(idx as usize)
}

/// Walks to the container holding the last path segment (upstream's
/// `findObject`); `None` when any step is missing or not a container.
fn find_object<'a>(doc: &'a mut Value, path: &str) -> Option<(&'a mut Value, String)> {
    let split: Vec<&str> = path.split('/').collect();
    if split.len() < 2 {
        return None;
    }
    let mut cur = doc;
    for part in &split[1..split.len() - 1] {
        let part = decode_key(part);
        let next = match cur {
            Value::Object(m) => m.get_mut(&part)?,
            Value::Array(a) => {
                let idx = existing_index(a.len(), &part).ok()?;
                &mut a[idx]
            }
            _ => return None,
        };
        if !next.is_object() && !next.is_array() {
            return None;
        }
        cur = next;
    }
    Some((cur, decode_key(split[split.len() - 1])))
}

/// [`find_object`] without mutation, for `test`.
fn find_object_ref<'a>(doc: &'a Value, path: &str) -> Option<(&'a Value, String)> {
    let split: Vec<&str> = path.split('/').collect();
    if split.len() < 2 {
        return None;
    }
    let mut cur = doc;
    for part in &split[1..split.len() - 1] {
        let part = decode_key(part);
        let next = match cur {
            Value::Object(m) => m.get(&part)?,
            Value::Array(a) => &a[existing_index(a.len(), &part).ok()?],
            _ => return None,
        };
        if !next.is_object() && !next.is_array() {
            return None;
        }
        cur = next;
    }
    Some((cur, decode_key(split[split.len() - 1])))
}

/// `container.get`: `Ok(None)` for a missing object key.
fn con_get<'a>(con: &'a Value, key: &str) -> Result<Option<&'a Value>, String> {
    match con {
        Value::Object(m) => Ok(m.get(key)),
        Value::Array(a) => Ok(Some(&a[existing_index(a.len(), key)?])),
        _ => Ok(None),
    }
}

fn con_add(con: &mut Value, key: &str, val: Value) -> Result<(), String> {
    match con {
        Value::Object(m) => {
            m.insert(key.to_string(), val);
            Ok(())
        }
        Value::Array(a) => {
            if key == "-" {
                a.push(val);
                return Ok(());
            }
            let mut idx = atoi(key)
                .map_err(|e| format!("value was not a proper array index: '{key}': {e}"))?;
            let size = a.len() as i64 + 1;
            if idx >= size {
                return Err(invalid_index(idx));
            }
            if idx < 0 {
                if idx < -size {
                    return Err(invalid_index(idx));
                }
                idx += size;
            }
            a.insert(idx as usize, val);
            Ok(())
        }
        _ => Ok(()),
    }
}

fn con_remove(con: &mut Value, key: &str) -> Result<Value, String> {
    match con {
        Value::Object(m) => m
            .remove(key)
            .ok_or_else(|| format!("Unable to remove nonexistent key: {key}: {ERR_MISSING}")),
        Value::Array(a) => {
            let mut idx = atoi(key)?;
            let len = a.len() as i64;
            if idx >= len {
                return Err(invalid_index(idx));
            }
            if idx < 0 {
                if idx < -len {
                    return Err(invalid_index(idx));
                }
                idx += len;
            }
            Ok(a.remove(idx as usize))
        }
        _ => Err(format!(
            "Unable to remove nonexistent key: {key}: {ERR_MISSING}"
        )),
    }
}

fn con_set(con: &mut Value, key: &str, val: Value) -> Result<(), String> {
    match con {
        Value::Object(m) => {
            m.insert(key.to_string(), val);
            Ok(())
        }
        Value::Array(a) => {
            let idx = existing_index(a.len(), key)?;
            a[idx] = val;
            Ok(())
        }
        _ => Ok(()),
    }
}

fn add(doc: &mut Value, op: &Map<String, Value>) -> Result<(), JsonPatchError> {
    let Ok(path) = path_of(op) else {
        return fail(format!(
            "add operation failed to decode path: {ERR_MISSING}"
        ));
    };
    let Some((con, key)) = find_object(doc, &path) else {
        return fail(format!(
            "add operation does not apply: doc is missing path: \"{path}\": {ERR_MISSING}"
        ));
    };
    con_add(con, &key, value_of(op).unwrap_or(Value::Null))
        .or_else(|e| fail(format!("error in add for path: '{path}': {e}")))
}

fn remove(doc: &mut Value, op: &Map<String, Value>) -> Result<(), JsonPatchError> {
    let Ok(path) = path_of(op) else {
        return fail(format!(
            "remove operation failed to decode path: {ERR_MISSING}"
        ));
    };
    let Some((con, key)) = find_object(doc, &path) else {
        return fail(format!(
            "remove operation does not apply: doc is missing path: \"{path}\": {ERR_MISSING}"
        ));
    };
    con_remove(con, &key)
        .map(|_| ())
        .or_else(|e| fail(format!("error in remove for path: '{path}': {e}")))
}

fn replace(doc: &mut Value, op: &Map<String, Value>) -> Result<(), JsonPatchError> {
    let path =
        path_of(op).or_else(|e| fail(format!("replace operation failed to decode path: {e}")))?;
    if path.is_empty() {
        return match value_of(op) {
            Some(v @ (Value::Object(_) | Value::Array(_))) => {
                *doc = v;
                Ok(())
            }
            // Upstream wraps a nil error here.
            _ => fail("replace operation value must be object or array: %!w(<nil>)".to_string()),
        };
    }
    let Some((con, key)) = find_object(doc, &path) else {
        return fail(format!(
            "replace operation does not apply: doc is missing path: {path}: {ERR_MISSING}"
        ));
    };
    if con_get(con, &key).is_err() {
        return fail(format!(
            "replace operation does not apply: doc is missing key: {path}: {ERR_MISSING}"
        ));
    }
    con_set(con, &key, value_of(op).unwrap_or(Value::Null))
        .or_else(|e| fail(format!("error in remove for path: '{path}': {e}")))
}

fn move_op(doc: &mut Value, op: &Map<String, Value>) -> Result<(), JsonPatchError> {
    let from =
        from_of(op).or_else(|e| fail(format!("move operation failed to decode from: {e}")))?;
    let Some((con, key)) = find_object(doc, &from) else {
        return fail(format!(
            "move operation does not apply: doc is missing from path: {from}: {ERR_MISSING}"
        ));
    };
    if let Err(e) = con_get(con, &key) {
        return fail(format!("error in move for path: '{key}': {e}"));
    }
    let val =
        con_remove(con, &key).or_else(|e| fail(format!("error in move for path: '{key}': {e}")))?;
    let path =
        path_of(op).or_else(|e| fail(format!("move operation failed to decode path: {e}")))?;
    let Some((con, key)) = find_object(doc, &path) else {
        return fail(format!(
            "move operation does not apply: doc is missing destination path: {path}: {ERR_MISSING}"
        ));
    };
    con_add(con, &key, val).or_else(|e| fail(format!("error in move for path: '{path}': {e}")))
}

fn test(doc: &Value, op: &Map<String, Value>) -> Result<(), JsonPatchError> {
    let path =
        path_of(op).or_else(|e| fail(format!("test operation failed to decode path: {e}")))?;
    let failed = || fail(format!("testing value {path} failed: {ERR_TEST_FAILED}"));
    let expected = value_of(op);
    if path.is_empty() {
        return if expected.as_ref() == Some(doc) {
            Ok(())
        } else {
            failed()
        };
    }
    let Some((con, key)) = find_object_ref(doc, &path) else {
        return fail(format!(
            "test operation does not apply: is missing path: {path}: {ERR_MISSING}"
        ));
    };
    let val =
        con_get(con, &key).or_else(|e| fail(format!("error in test for path: '{path}': {e}")))?;
    match (val, expected) {
        (None | Some(Value::Null), None | Some(Value::Null)) => Ok(()),
        (Some(v), Some(e)) if *v == e => Ok(()),
        _ => failed(),
    }
}

/// The size `encoding/json` gives a value: compact, with `<`, `>`, `&`,
/// U+2028 and U+2029 escaped as `\uXXXX`.
fn go_marshal_size(v: &Value) -> usize {
    fn extra(v: &Value) -> usize {
        match v {
            Value::String(s) => s
                .chars()
                .map(|c| match c {
                    '<' | '>' | '&' => 5,
                    '\u{2028}' | '\u{2029}' => 3,
                    _ => 0,
                })
                .sum(),
            Value::Array(a) => a.iter().map(extra).sum(),
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| extra(&Value::String(k.clone())) + extra(v))
                .sum(),
            _ => 0,
        }
    }
    serde_json::to_vec(v).map_or(0, |b| b.len()) + extra(v)
}

fn copy(
    doc: &mut Value,
    op: &Map<String, Value>,
    copied: &mut usize,
    limit: usize,
) -> Result<(), JsonPatchError> {
    let from =
        from_of(op).or_else(|e| fail(format!("copy operation failed to decode from: {e}")))?;
    let Some((con, key)) = find_object(doc, &from) else {
        return fail(format!(
            "copy operation does not apply: doc is missing from path: {from}: {ERR_MISSING}"
        ));
    };
    let val = con_get(con, &key)
        .or_else(|e| fail(format!("error in copy for from: '{from}': {e}")))?
        .cloned();
    let Ok(path) = path_of(op) else {
        return fail(format!(
            "copy operation failed to decode path: {ERR_MISSING}"
        ));
    };
    let Some((con, key)) = find_object(doc, &path) else {
        return fail(format!(
            "copy operation does not apply: doc is missing destination path: {path}: {ERR_MISSING}"
        ));
    };
    let size = val.as_ref().map_or(0, go_marshal_size);
    *copied += size;
    if limit > 0 && *copied > limit {
        return fail(format!(
            "Unable to complete the copy, the accumulated size increase of copy is {copied}, exceeding the limit {limit}"
        ));
    }
    con_add(con, &key, val.unwrap_or(Value::Null))
        .or_else(|e| fail(format!("error while adding value during copy: {e}")))
}

#[cfg(test)]
mod tests;
