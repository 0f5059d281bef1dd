//! JSON merge patch (RFC 7386) as upstream applies it through
//! `gopkg.in/evanphx/json-patch.v4`'s `MergePatch`.
//!
//! Differences from the bare RFC that upstream has and we keep: `null`s are
//! pruned from newly added values, including from arrays; a non-object patch
//! on an object member replaces it without pruning; a `null` document or
//! patch is an error.

use serde_json::{Map, Value};

/// Errors of merge patches, worded as upstream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MergePatchError {
    /// The document is not JSON, or is `null`.
    #[error("Invalid JSON Document")]
    BadJsonDoc,
    /// The patch is not JSON, is `null`, or is neither an object nor an
    /// array (the API server answers 400 Bad Request).
    #[error("Invalid JSON Patch")]
    BadJsonPatch,
}

/// Applies `patch` to `doc`.
pub fn merge_patch(doc: Value, patch: Value) -> Result<Value, MergePatchError> {
    if doc.is_null() {
        return Err(MergePatchError::BadJsonDoc);
    }
    match (doc, patch) {
        (_, Value::Null) => Err(MergePatchError::BadJsonPatch),
        (Value::Object(mut d), Value::Object(p)) => {
            merge_docs(&mut d, p);
            Ok(Value::Object(d))
        }
        // The document is not an object: the patch object replaces it.
        (_, Value::Object(mut p)) => {
            prune_doc_nulls(&mut p);
            Ok(Value::Object(p))
        }
        // An array patch replaces any document.
        (_, Value::Array(mut a)) => {
            prune_ary_nulls(&mut a);
            Ok(Value::Array(a))
        }
        _ => Err(MergePatchError::BadJsonPatch),
    }
}

/// Applies a patch given as bytes to a document given as bytes, with
/// upstream's errors for malformed JSON.
pub fn merge_patch_bytes(doc: &[u8], patch: &[u8]) -> Result<Value, MergePatchError> {
    let doc: Value = serde_json::from_slice(doc).map_err(|_| MergePatchError::BadJsonDoc)?;
    let patch: Value = serde_json::from_slice(patch).map_err(|_| MergePatchError::BadJsonPatch)?;
    merge_patch(doc, patch)
}

fn merge_docs(doc: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (k, v) in patch {
        if v.is_null() {
            doc.remove(&k);
            continue;
        }
        match doc.get_mut(&k) {
            None | Some(Value::Null) => {
                let mut v = v;
                prune_nulls(&mut v);
                doc.insert(k, v);
            }
            Some(cur) => {
                let cur_value = std::mem::take(cur);
                *cur = merge(cur_value, v);
            }
        }
    }
}

fn merge(cur: Value, patch: Value) -> Value {
    match (cur, patch) {
        (Value::Object(mut c), Value::Object(p)) => {
            merge_docs(&mut c, p);
            Value::Object(c)
        }
        // An object member replaced by a non-object: taken as is.
        (Value::Object(_), p) => p,
        // A non-object member replaced: nulls pruned from the new value.
        (_, mut p) => {
            prune_nulls(&mut p);
            p
        }
    }
}

fn prune_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => prune_doc_nulls(m),
        Value::Array(a) => prune_ary_nulls(a),
        _ => {}
    }
}

fn prune_doc_nulls(m: &mut Map<String, Value>) {
    m.retain(|_, v| !v.is_null());
    for v in m.values_mut() {
        prune_nulls(v);
    }
}

fn prune_ary_nulls(a: &mut Vec<Value>) {
    a.retain(|v| !v.is_null());
    for v in a.iter_mut() {
        prune_nulls(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mp(doc: Value, patch: Value) -> Value {
        merge_patch(doc, patch).unwrap()
    }

    #[test]
    fn rfc7386_examples() {
        // The test cases of RFC 7386 appendix A that upstream agrees with.
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (doc, patch, want) in cases {
            assert_eq!(mp(doc.clone(), patch.clone()), want, "{doc} + {patch}");
        }
    }

    #[test]
    fn labels_are_merged_and_deleted() {
        let doc = json!({"metadata": {"name": "x", "labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1}});
        let patch = json!({"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"replicas": 3}});
        assert_eq!(
            mp(doc, patch),
            json!({"metadata": {"name": "x", "labels": {"b": "2", "c": "3"}}, "spec": {"replicas": 3}})
        );
    }

    #[test]
    fn nulls_are_pruned_from_new_values_including_arrays() {
        assert_eq!(
            mp(json!({}), json!({"a": [1, null, {"x": null, "y": 2}]})),
            json!({"a": [1, {"y": 2}]})
        );
        assert_eq!(
            mp(json!({"a": [0]}), json!({"a": [null, 1]})),
            json!({"a": [1]})
        );
        // ...but not when an object member is replaced by an array.
        assert_eq!(
            mp(json!({"a": {"x": 1}}), json!({"a": [null, 1]})),
            json!({"a": [null, 1]})
        );
        assert_eq!(
            mp(json!({"a": null}), json!({"a": {"b": null, "c": 1}})),
            json!({"a": {"c": 1}})
        );
    }

    #[test]
    fn null_and_scalar_inputs_are_errors() {
        assert_eq!(
            merge_patch(json!(null), json!({})),
            Err(MergePatchError::BadJsonDoc)
        );
        assert_eq!(
            merge_patch(json!({}), json!(null)),
            Err(MergePatchError::BadJsonPatch)
        );
        assert_eq!(
            merge_patch(json!({}), json!("x")),
            Err(MergePatchError::BadJsonPatch)
        );
        assert_eq!(
            merge_patch(json!(1), json!(2)),
            Err(MergePatchError::BadJsonPatch)
        );
        assert_eq!(
            MergePatchError::BadJsonPatch.to_string(),
            "Invalid JSON Patch"
        );
        assert_eq!(
            MergePatchError::BadJsonDoc.to_string(),
            "Invalid JSON Document"
        );
    }

    #[test]
    fn bytes_entry_point_reports_syntax_errors() {
        assert_eq!(
            merge_patch_bytes(b"{", b"{}"),
            Err(MergePatchError::BadJsonDoc)
        );
        assert_eq!(
            merge_patch_bytes(b"{}", b"{"),
            Err(MergePatchError::BadJsonPatch)
        );
        assert_eq!(
            merge_patch_bytes(br#"{"a":1}"#, br#"{"b":2}"#),
            Ok(json!({"a": 1, "b": 2}))
        );
    }
}
