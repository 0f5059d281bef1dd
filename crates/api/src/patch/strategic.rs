//! Strategic merge patch, applied server-side as upstream's
//! `strategicpatch.StrategicMergeMapPatch` does: maps merge key by key, `null`
//! deletes, lists follow their field's `patchStrategy` (replace by default,
//! merged by `patchMergeKey` for lists of objects, union for lists of
//! scalars), and the directives `$patch: replace|delete|merge`,
//! `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>` and
//! `$retainKeys` do what upstream's do, including their error texts.
//!
//! Where upstream iterates a Go map (random order) we go in sorted key order.

pub mod meta;
#[rustfmt::skip]
mod table;

pub use meta::{patch_meta, FieldMeta, Schema, Strategy};

use super::{go_eq, go_eq_opt, go_kind, GoKind};
use crate::gofmt;
use serde_json::{Map, Value};

type JsonMap = Map<String, Value>;

const DIRECTIVE_MARKER: &str = "$patch";
const DELETE_DIRECTIVE: &str = "delete";
const REPLACE_DIRECTIVE: &str = "replace";
const MERGE_DIRECTIVE: &str = "merge";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

const MAP_TYPE: &str = "map[string]interface {}";
const SLICE_TYPE: &str = "[]interface {}";

/// Errors of strategic merge patches, worded as upstream
/// (`k8s.io/apimachinery/pkg/util/mergepatch`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StrategicMergeError {
    #[error("invalid JSON document")]
    BadJsonDoc,
    #[error("lists of lists are not supported")]
    NoListOfLists,
    #[error("invalid patch format of primitive list")]
    BadPatchFormatForPrimitiveList,
    #[error("invalid patch format of retainKeys")]
    BadPatchFormatForRetainKeys,
    #[error("invalid patch format of setElementOrder list")]
    BadPatchFormatForSetElementOrderList,
    #[error("patch content doesn't match retainKeys list")]
    PatchContentNotMatchRetainKeys,
    /// The kind has no strategic merge metadata (custom resources).
    #[error("strategic merge patch format is not supported")]
    Unsupported,
    /// Any other failure (a missing merge key, a wrong type, ...).
    #[error("{0}")]
    Other(String),
}

impl StrategicMergeError {
    /// The HTTP status upstream's patch handler answers with: 400 for
    /// malformed directives, 415 for unsupported kinds, 422 for lists of
    /// lists and retainKeys mismatches, 500 for everything else (upstream
    /// surfaces those as internal errors).
    pub fn status_code(&self) -> u16 {
        match self {
            StrategicMergeError::BadJsonDoc
            | StrategicMergeError::BadPatchFormatForPrimitiveList
            | StrategicMergeError::BadPatchFormatForRetainKeys
            | StrategicMergeError::BadPatchFormatForSetElementOrderList => 400,
            StrategicMergeError::Unsupported => 415,
            StrategicMergeError::NoListOfLists
            | StrategicMergeError::PatchContentNotMatchRetainKeys => 422,
            StrategicMergeError::Other(_) => 500,
        }
    }
}

type Result<T> = std::result::Result<T, StrategicMergeError>;

fn other<T>(msg: String) -> Result<T> {
    Err(StrategicMergeError::Other(msg))
}

/// `mergepatch.ErrNoMergeKey`.
fn err_no_merge_key<T>(m: &JsonMap, key: &str) -> Result<T> {
    other(format!(
        "map: {} does not contain declared merge key: {key}",
        gofmt::value(&Value::Object(m.clone()))
    ))
}

/// `mergepatch.ErrBadArgType`.
fn err_bad_arg_type<T>(expected: &str, actual: Option<&Value>) -> Result<T> {
    other(format!(
        "expected a {expected}, but received a {}",
        gofmt::type_name(actual)
    ))
}

/// `mergepatch.ErrBadPatchType`.
fn err_bad_patch_type<T>(t: &Value, m: &JsonMap) -> Result<T> {
    other(format!(
        "unknown patch type: {} in map: {}",
        go_s(t),
        gofmt::value(&Value::Object(m.clone()))
    ))
}

/// Go's `%s` of a decoded JSON value.
fn go_s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "%!s(<nil>)".to_string(),
        Value::Bool(b) => format!("%!s(bool={b})"),
        Value::Number(n) if n.as_i64().is_some() => format!("%!s(int64={})", gofmt::number(n)),
        Value::Number(n) => format!("%!s(float64={})", gofmt::number(n)),
        Value::Array(a) => format!("[{}]", a.iter().map(go_s).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_s(&m[k.as_str()])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Applies a strategic merge patch to an object (upstream's
/// `StrategicMergeMapPatch`). Both must be JSON objects.
pub fn strategic_merge_patch(original: Value, patch: Value, schema: Schema) -> Result<Value> {
    match (original, patch) {
        (Value::Object(o), Value::Object(p)) => merge_map(o, p, schema).map(Value::Object),
        _ => Err(StrategicMergeError::BadJsonDoc),
    }
}

/// Applies a strategic merge patch to an object of a built-in kind; fails
/// with [`StrategicMergeError::Unsupported`] for kinds without metadata.
pub fn strategic_merge_patch_for_kind(
    original: Value,
    patch: Value,
    group: &str,
    version: &str,
    kind: &str,
) -> Result<Value> {
    let schema = Schema::for_kind(group, version, kind).ok_or(StrategicMergeError::Unsupported)?;
    strategic_merge_patch(original, patch, schema)
}

fn sorted_keys(m: &JsonMap) -> Vec<String> {
    let mut keys: Vec<String> = m.keys().cloned().collect();
    keys.sort();
    keys
}

fn merge_map(mut original: JsonMap, mut patch: JsonMap, schema: Schema) -> Result<JsonMap> {
    if let Some(directive) = patch.get(DIRECTIVE_MARKER) {
        let directive = directive.clone();
        return handle_directive_in_merge_map(&directive, patch);
    }
    apply_retain_keys_directive(&mut original, &mut patch)?;
    merge_patch_into_original(&mut original, &mut patch, schema)?;

    for key in sorted_keys(&patch) {
        let Some(patch_v) = patch.remove(&key) else {
            continue;
        };
        let (key, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            (extract_key(&key, DELETE_FROM_PRIMITIVE_LIST_PREFIX)?, true)
        } else {
            (key, false)
        };
        if patch_v.is_null() {
            original.remove(&key);
            continue;
        }
        let Some(orig_v) = original.get_mut(&key) else {
            original.insert(key, patch_v);
            continue;
        };
        if go_kind(orig_v) != go_kind(&patch_v) {
            *orig_v = patch_v;
            continue;
        }
        let meta = schema.field(&key);
        let strategy = meta.strategy.patch_strategy();
        let current = std::mem::take(orig_v);
        *orig_v = match (current, patch_v) {
            (Value::Object(o), Value::Object(p)) => {
                if strategy == Strategy::Replace {
                    Value::Object(p)
                } else {
                    Value::Object(merge_map(o, p, meta.schema)?)
                }
            }
            (Value::Array(o), Value::Array(p)) => {
                Value::Array(merge_slice_handler(o, p, meta, strategy, is_delete_list)?)
            }
            (_, p) => p,
        };
    }
    Ok(original)
}

fn handle_directive_in_merge_map(directive: &Value, mut patch: JsonMap) -> Result<JsonMap> {
    match directive.as_str() {
        Some(REPLACE_DIRECTIVE) => {
            patch.remove(DIRECTIVE_MARKER);
            Ok(patch)
        }
        Some(DELETE_DIRECTIVE) => Ok(JsonMap::new()),
        _ => err_bad_patch_type(directive, &patch),
    }
}

fn apply_retain_keys_directive(original: &mut JsonMap, patch: &mut JsonMap) -> Result<()> {
    let Some(retain) = patch.remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let Value::Array(list) = retain else {
        return Err(StrategicMergeError::BadPatchFormatForRetainKeys);
    };
    let retained = |k: &str| list.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !retained(k) {
            return Err(StrategicMergeError::BadPatchFormatForRetainKeys);
        }
    }
    original.retain(|k, _| retained(k));
    Ok(())
}

fn extract_key(s: &str, prefix: &str) -> Result<String> {
    match s.split_once('/') {
        Some((p, rest)) if p == prefix => Ok(rest.to_string()),
        _ => match prefix {
            DELETE_FROM_PRIMITIVE_LIST_PREFIX => {
                Err(StrategicMergeError::BadPatchFormatForPrimitiveList)
            }
            SET_ELEMENT_ORDER_PREFIX => {
                Err(StrategicMergeError::BadPatchFormatForSetElementOrderList)
            }
            _ => other(format!(
                "fail to find unknown prefix {} in {s}\n",
                gofmt::quote(prefix)
            )),
        },
    }
}

/// Processes `$setElementOrder/<field>` directives together with their lists.
fn merge_patch_into_original(
    original: &mut JsonMap,
    patch: &mut JsonMap,
    schema: Schema,
) -> Result<()> {
    let directives: Vec<String> = sorted_keys(patch)
        .into_iter()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .collect();
    for key in directives {
        let Some(set_order_v) = patch.remove(&key) else {
            continue;
        };
        let Value::Array(set_order) = set_order_v else {
            return err_bad_arg_type(SLICE_TYPE, Some(&set_order_v));
        };
        let original_key = extract_key(&key, SET_ELEMENT_ORDER_PREFIX)?;
        let original_list = match original.get(&original_key) {
            None => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return err_bad_arg_type(SLICE_TYPE, Some(other)),
        };
        let patch_list = match patch.get(&original_key) {
            None => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return err_bad_arg_type(SLICE_TYPE, Some(other)),
        };
        let meta = schema.field(&original_key);
        let strategy = meta.strategy.patch_strategy();
        let merge_key = meta.merge_key.unwrap_or("");
        validate_patch_with_set_order_list(
            patch_list.as_deref().unwrap_or_default(),
            &set_order,
            merge_key,
        )?;

        let original_values = original_list.clone().unwrap_or_default();
        let patch_values = patch_list.clone().unwrap_or_default();
        let merged = match (original_list, patch_list) {
            (Some(o), None) => o,
            (None, Some(p)) => p,
            (Some(o), Some(p)) => merge_slice_handler(o, p, meta, strategy, false)?,
            (None, None) => continue,
        };
        let (patch_items, server_only) = if merge_key.is_empty() {
            partition_primitives(merged, &set_order)
        } else {
            partition_maps(merged, &set_order, merge_key)?
        };
        let kind = slice_element_type(&[&original_values, &patch_values])?;
        let both = normalize_element_order(
            patch_items,
            server_only,
            &set_order,
            &original_values,
            merge_key,
            kind,
        )?;
        original.insert(original_key.clone(), Value::Array(both));
        patch.remove(&original_key);
    }
    Ok(())
}

fn validate_patch_with_set_order_list(
    patch_list: &[Value],
    set_order: &[Value],
    merge_key: &str,
) -> Result<()> {
    if set_order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete = if merge_key.is_empty() {
        patch_list.to_vec()
    } else {
        extract_to_delete_items(patch_list.to_vec())?.0
    };
    let (mut pi, mut si) = (0, 0);
    while pi < non_delete.len() && si < set_order.len() {
        if contains_directive_marker(&non_delete[pi]) {
            pi += 1;
            continue;
        }
        if merge_key_value_equal(&non_delete[pi], &set_order[si], merge_key)? {
            pi += 1;
        }
        si += 1;
    }
    if pi < non_delete.len() && si >= set_order.len() {
        return other(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER_PREFIX} list:\n{}\n",
            gofmt::value(&Value::Array(patch_list.to_vec())),
            gofmt::value(&Value::Array(set_order.to_vec()))
        ));
    }
    Ok(())
}

fn contains_directive_marker(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.contains_key(DIRECTIVE_MARKER))
}

fn merge_key_value_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool> {
    if merge_key.is_empty() {
        return Ok(go_eq(left, right));
    }
    let Some(l) = left.as_object() else {
        return err_bad_arg_type(MAP_TYPE, Some(left));
    };
    let Some(r) = right.as_object() else {
        return err_bad_arg_type(MAP_TYPE, Some(right));
    };
    let Some(lv) = l.get(merge_key) else {
        return err_no_merge_key(l, merge_key);
    };
    let Some(rv) = r.get(merge_key) else {
        return err_no_merge_key(r, merge_key);
    };
    Ok(go_eq(lv, rv))
}

fn merge_slice_handler(
    original: Vec<Value>,
    patch: Vec<Value>,
    meta: FieldMeta,
    strategy: Strategy,
    is_delete_list: bool,
) -> Result<Vec<Value>> {
    if strategy == Strategy::Merge {
        merge_slice(original, patch, meta, is_delete_list)
    } else {
        Ok(patch)
    }
}

fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    meta: FieldMeta,
    is_delete_list: bool,
) -> Result<Vec<Value>> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = slice_element_type(&[&original, &patch])?;
    let merge_key = meta.merge_key.unwrap_or("");
    let (order_original, order_patch, merged);
    if kind != GoKind::Map {
        if is_delete_list {
            return Ok(delete_from_slice(original, &patch));
        }
        let mut both = original.clone();
        both.extend(patch.iter().cloned());
        merged = deduplicate_scalars(both);
        order_original = original;
        order_patch = patch;
    } else {
        if merge_key.is_empty() {
            let kind = if meta.elem_is_struct {
                "struct"
            } else {
                "string"
            };
            return other(format!(
                "cannot merge lists without merge key for type {kind}"
            ));
        }
        let (original, patch) = merge_slice_with_special_elements(original, patch, merge_key)?;
        merged =
            merge_slice_without_special_elements(original.clone(), &patch, merge_key, meta.schema)?;
        order_original = original;
        order_patch = patch;
    }
    let (patch_items, server_only) = if merge_key.is_empty() {
        partition_primitives(merged, &order_patch)
    } else {
        partition_maps(merged, &order_patch, merge_key)?
    };
    normalize_element_order(
        patch_items,
        server_only,
        &order_patch,
        &order_original,
        merge_key,
        kind,
    )
}

fn merge_slice_with_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut without = Vec::new();
    let mut replace = false;
    for v in patch {
        let Some(m) = v.as_object() else {
            return err_bad_arg_type(MAP_TYPE, Some(&v));
        };
        match m.get(DIRECTIVE_MARKER) {
            None => without.push(v),
            Some(patch_type) => match patch_type.as_str() {
                Some(DELETE_DIRECTIVE) => match m.get(merge_key) {
                    Some(merge_value) => {
                        original = delete_matching_entries(original, merge_key, merge_value)?
                    }
                    None => return err_no_merge_key(m, merge_key),
                },
                Some(REPLACE_DIRECTIVE) => replace = true,
                Some(MERGE_DIRECTIVE) => {
                    return other("merging lists cannot yet be specified in the patch".to_string())
                }
                _ => return err_bad_patch_type(patch_type, m),
            },
        }
    }
    if replace {
        return Ok((without, Vec::new()));
    }
    Ok((original, without))
}

fn find_map_in_slice(list: &[Value], key: &str, value: &Value) -> Result<Option<usize>> {
    for (i, v) in list.iter().enumerate() {
        let Some(m) = v.as_object() else {
            return other(format!("value for key {i} is not a map."));
        };
        if m.get(key).is_some_and(|x| go_eq(x, value)) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

fn delete_matching_entries(
    mut original: Vec<Value>,
    key: &str,
    value: &Value,
) -> Result<Vec<Value>> {
    while let Some(i) = find_map_in_slice(&original, key, value)? {
        original.remove(i);
    }
    Ok(original)
}

fn merge_slice_without_special_elements(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    elem_schema: Schema,
) -> Result<Vec<Value>> {
    for v in patch {
        let Some(m) = v.as_object() else {
            return err_bad_arg_type(MAP_TYPE, Some(v));
        };
        let Some(merge_value) = m.get(merge_key) else {
            return err_no_merge_key(m, merge_key);
        };
        match find_map_in_slice(&original, merge_key, merge_value)? {
            Some(i) => {
                let Value::Object(o) = std::mem::take(&mut original[i]) else {
                    unreachable!("checked by find_map_in_slice")
                };
                original[i] = Value::Object(merge_map(o, m.clone(), elem_schema)?);
            }
            None => original.push(v.clone()),
        }
    }
    Ok(original)
}

fn delete_from_slice(current: Vec<Value>, to_delete: &[Value]) -> Vec<Value> {
    current
        .into_iter()
        .filter(|v| !to_delete.iter().any(|d| go_eq(d, v)))
        .collect()
}

/// Upstream's in-place deduplication, which moves the last element into the
/// hole a duplicate leaves (so the order is upstream's too).
fn deduplicate_scalars(mut s: Vec<Value>) -> Vec<Value> {
    if s.is_empty() {
        return s;
    }
    let mut length = s.len() - 1;
    let mut i = 0;
    while i < length {
        let mut j = i + 1;
        while j <= length {
            if go_eq(&s[i], &s[j]) {
                s[j] = s[length].clone();
                s.truncate(length);
                length -= 1;
                continue;
            }
            j += 1;
        }
        i += 1;
    }
    s
}

fn partition_primitives(original: Vec<Value>, partition_by: &[Value]) -> (Vec<Value>, Vec<Value>) {
    original
        .into_iter()
        .partition(|v| partition_by.iter().any(|p| go_eq(p, v)))
}

fn partition_maps(
    original: Vec<Value>,
    partition_by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut patch = Vec::new();
    let mut server_only = Vec::new();
    for v in original {
        let Some(m) = v.as_object() else {
            return err_bad_arg_type(MAP_TYPE, Some(&v));
        };
        let Some(merge_value) = m.get(merge_key) else {
            return err_no_merge_key(m, merge_key);
        };
        if find_map_in_slice(partition_by, merge_key, merge_value)?.is_some() {
            patch.push(v);
        } else {
            server_only.push(v);
        }
    }
    Ok((patch, server_only))
}

/// The element type shared by all elements of the lists.
fn slice_element_type(slices: &[&[Value]]) -> Result<GoKind> {
    let mut prev: Option<GoKind> = None;
    for s in slices {
        for v in s.iter() {
            let cur = go_kind(v);
            match prev {
                None => {
                    if cur == GoKind::Nil {
                        // Upstream dereferences a nil type here and panics.
                        return other("list elements may not be null".to_string());
                    }
                    if cur == GoKind::Slice {
                        return Err(StrategicMergeError::NoListOfLists);
                    }
                    prev = Some(cur);
                }
                Some(p) if p != cur => {
                    let lists: Vec<String> = slices
                        .iter()
                        .map(|s| gofmt::value(&Value::Array(s.to_vec())))
                        .collect();
                    return other(format!(
                        "list element types are not identical: [{}]",
                        lists.join(" ")
                    ));
                }
                Some(_) => {}
            }
        }
    }
    prev.ok_or_else(|| {
        StrategicMergeError::Other("no elements in any of the given slices".to_string())
    })
}

fn extract_to_delete_items(list: Vec<Value>) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut non_delete = Vec::new();
    let mut to_delete = Vec::new();
    for v in list {
        let Some(m) = v.as_object() else {
            return err_bad_arg_type(MAP_TYPE, Some(&v));
        };
        if m.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some(DELETE_DIRECTIVE) {
            to_delete.push(v);
        } else {
            non_delete.push(v);
        }
    }
    Ok((non_delete, to_delete))
}

fn validate_merge_key_in_lists(merge_key: &str, lists: &[&[Value]]) -> Result<()> {
    for list in lists {
        for item in list.iter() {
            let Some(m) = item.as_object() else {
                return err_bad_arg_type(MAP_TYPE, Some(item));
            };
            if !m.contains_key(merge_key) {
                return err_no_merge_key(m, merge_key);
            }
        }
    }
    Ok(())
}

/// The position of `val` in `list`, comparing merge-key values for maps.
fn index_of(list: &[Value], val: &Value, merge_key: &str, kind: GoKind) -> Option<usize> {
    let get = |item: &'_ Value| -> Option<Value> {
        if kind == GoKind::Map {
            item.as_object().and_then(|m| m.get(merge_key)).cloned()
        } else {
            Some(item.clone())
        }
    };
    let target = get(val);
    list.iter()
        .position(|v| go_eq_opt(target.as_ref(), get(v).as_ref()))
}

fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: GoKind,
) -> Result<Vec<Value>> {
    let (mut to_sort, to_delete) = if kind == GoKind::Map {
        validate_merge_key_in_lists(merge_key, &[&to_sort, order])?;
        extract_to_delete_items(to_sort)?
    } else {
        (to_sort, Vec::new())
    };
    // Upstream's comparator says "less" whenever either item is missing from
    // `order`; Go's stable sort is reproduced so the outcome is the same.
    let positions: Vec<Option<usize>> = to_sort
        .iter()
        .map(|v| index_of(order, v, merge_key, kind))
        .collect();
    let mut idx: Vec<usize> = (0..to_sort.len()).collect();
    go_stable_sort(&mut idx, |a, b| match (positions[*a], positions[*b]) {
        (Some(x), Some(y)) => x < y,
        _ => true,
    });
    let mut slots: Vec<Option<Value>> = to_sort.drain(..).map(Some).collect();
    let mut sorted: Vec<Value> = idx.into_iter().filter_map(|i| slots[i].take()).collect();
    sorted.extend(to_delete);
    Ok(sorted)
}

fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: GoKind,
) -> Result<Vec<Value>> {
    let patch = normalize_slice_order(patch, patch_order, merge_key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted_slice(
        server_only,
        patch,
        server_order,
        merge_key,
        kind,
    ))
}

/// Interleaves server-only items (`left`) into the patch items (`right`),
/// keeping both relative orders and following the live order where both are
/// known.
fn merge_sorted_slice(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: GoKind,
) -> Vec<Value> {
    let size = left.len() + right.len();
    let mut out = Vec::with_capacity(size);
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    for _ in 0..size {
        let take_left = match (left.peek(), right.peek()) {
            (Some(_), None) => true,
            (None, _) => false,
            (Some(l), Some(r)) => {
                let li = index_of(server_order, l, merge_key, kind);
                let ri = index_of(server_order, r, merge_key, kind);
                matches!((li, ri), (Some(a), Some(b)) if a < b)
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

/// Go's `sort.SliceStable` (insertion-sorted blocks of 20, then SymMerge),
/// so that even an inconsistent `less` orders items as upstream does.
fn go_stable_sort<T>(data: &mut [T], less: impl Fn(&T, &T) -> bool) {
    let n = data.len();
    let mut block = 20;
    let (mut a, mut b) = (0, block);
    while b <= n {
        insertion_sort(data, a, b, &less);
        a = b;
        b += block;
    }
    insertion_sort(data, a, n, &less);
    while block < n {
        let (mut a, mut b) = (0, 2 * block);
        while b <= n {
            sym_merge(data, a, a + block, b, &less);
            a = b;
            b += 2 * block;
        }
        let m = a + block;
        if m < n {
            sym_merge(data, a, m, n, &less);
        }
        block *= 2;
    }
}

fn insertion_sort<T>(data: &mut [T], a: usize, b: usize, less: &impl Fn(&T, &T) -> bool) {
    for i in a + 1..b {
        let mut j = i;
        while j > a && less(&data[j], &data[j - 1]) {
            data.swap(j, j - 1);
            j -= 1;
        }
    }
}

fn sym_merge<T>(data: &mut [T], a: usize, m: usize, b: usize, less: &impl Fn(&T, &T) -> bool) {
    if m - a == 1 {
        let (mut i, mut j) = (m, b);
        while i < j {
            let h = (i + j) / 2;
            if less(&data[h], &data[a]) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        for k in a..i.saturating_sub(1) {
            data.swap(k, k + 1);
        }
        return;
    }
    if b - m == 1 {
        let (mut i, mut j) = (a, m);
        while i < j {
            let h = (i + j) / 2;
            if !less(&data[m], &data[h]) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        let mut k = m;
        while k > i {
            data.swap(k, k - 1);
            k -= 1;
        }
        return;
    }
    let mid = (a + b) / 2;
    let n = mid + m;
    let (mut start, mut r) = if m > mid { (n - b, mid) } else { (a, m) };
    let p = n - 1;
    while start < r {
        let c = (start + r) / 2;
        if !less(&data[p - c], &data[c]) {
            start = c + 1;
        } else {
            r = c;
        }
    }
    let end = n - start;
    if start < m && m < end {
        rotate(data, start, m, end);
    }
    if a < start && start < mid {
        sym_merge(data, a, start, mid, less);
    }
    if mid < end && end < b {
        sym_merge(data, mid, end, b, less);
    }
}

fn rotate<T>(data: &mut [T], a: usize, m: usize, b: usize) {
    let (mut i, mut j) = (m - a, b - m);
    while i != j {
        if i > j {
            swap_range(data, m - i, m, j);
            i -= j;
        } else {
            swap_range(data, m - i, m + j - i, i);
            j -= i;
        }
    }
    swap_range(data, m - i, m, i);
}

fn swap_range<T>(data: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        data.swap(a + i, b + i);
    }
}

#[cfg(test)]
mod tests;
