use super::*;
use serde_json::json;

fn apply(doc: Value, patch: Value) -> Result<Value, String> {
    JsonPatch::from_value(&patch)
        .map_err(|e| e.to_string())?
        .apply(doc)
        .map_err(|e| e.to_string())
}

fn ok(doc: Value, patch: Value) -> Value {
    apply(doc, patch).unwrap()
}

fn err(doc: Value, patch: Value) -> String {
    apply(doc, patch).unwrap_err()
}

#[test]
fn add_inserts_into_objects_and_arrays() {
    assert_eq!(
        ok(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz", "value": "qux"}])
        ),
        json!({"foo": "bar", "baz": "qux"})
    );
    assert_eq!(
        ok(
            json!({"foo": ["bar", "baz"]}),
            json!([{"op": "add", "path": "/foo/1", "value": "qux"}])
        ),
        json!({"foo": ["bar", "qux", "baz"]})
    );
    assert_eq!(
        ok(
            json!({"foo": ["bar"]}),
            json!([{"op": "add", "path": "/foo/-", "value": "x"}])
        ),
        json!({"foo": ["bar", "x"]})
    );
    assert_eq!(
        ok(
            json!({"foo": ["bar"]}),
            json!([{"op": "add", "path": "/foo/1", "value": "x"}])
        ),
        json!({"foo": ["bar", "x"]})
    );
    assert_eq!(
        ok(
            json!({"foo": ["a", "b"]}),
            json!([{"op": "add", "path": "/foo/-1", "value": "x"}])
        ),
        json!({"foo": ["a", "b", "x"]})
    );
    assert_eq!(
        ok(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/foo", "value": 1}])
        ),
        json!({"foo": 1})
    );
    assert_eq!(
        ok(
            json!({}),
            json!([{"op": "add", "path": "/a~1b", "value": 1}])
        ),
        json!({"a/b": 1})
    );
    assert_eq!(
        ok(
            json!({}),
            json!([{"op": "add", "path": "/a~0b", "value": 1}])
        ),
        json!({"a~b": 1})
    );
    assert_eq!(
        ok(json!({}), json!([{"op": "add", "path": "/x"}])),
        json!({"x": null})
    );
    assert_eq!(
        ok(
            json!({"metadata": {"labels": {"a": "1"}}}),
            json!([{"op": "add", "path": "/metadata/labels/b", "value": "2"}])
        ),
        json!({"metadata": {"labels": {"a": "1", "b": "2"}}})
    );
}

#[test]
fn add_errors_match_upstream() {
    assert_eq!(
        err(
            json!({}),
            json!([{"op": "add", "path": "/a/b", "value": 1}])
        ),
        "add operation does not apply: doc is missing path: \"/a/b\": missing value"
    );
    assert_eq!(
        err(json!({}), json!([{"op": "add", "value": 1}])),
        "add operation failed to decode path: missing value"
    );
    assert_eq!(
        err(json!({"foo": ["a"]}), json!([{"op": "add", "path": "/foo/3", "value": 1}])),
        "error in add for path: '/foo/3': Unable to access invalid index: 3: invalid index referenced"
    );
    assert_eq!(
        err(json!({"foo": ["a"]}), json!([{"op": "add", "path": "/foo/x", "value": 1}])),
        "error in add for path: '/foo/x': value was not a proper array index: 'x': strconv.Atoi: parsing \"x\": invalid syntax"
    );
    assert_eq!(
        err(json!({"foo": ["a"]}), json!([{"op": "add", "path": "/foo/-3", "value": 1}])),
        "error in add for path: '/foo/-3': Unable to access invalid index: -3: invalid index referenced"
    );
    assert_eq!(
        err(
            json!({"a": "str"}),
            json!([{"op": "add", "path": "/a/b", "value": 1}])
        ),
        "add operation does not apply: doc is missing path: \"/a/b\": missing value"
    );
    assert_eq!(
        err(json!({}), json!([{"op": "add", "path": "", "value": 1}])),
        "add operation does not apply: doc is missing path: \"\": missing value"
    );
}

#[test]
fn remove_deletes_and_reports_missing_keys() {
    assert_eq!(
        ok(
            json!({"a": 1, "b": 2}),
            json!([{"op": "remove", "path": "/a"}])
        ),
        json!({"b": 2})
    );
    assert_eq!(
        ok(
            json!({"a": [1, 2, 3]}),
            json!([{"op": "remove", "path": "/a/1"}])
        ),
        json!({"a": [1, 3]})
    );
    assert_eq!(
        ok(
            json!({"a": [1, 2, 3]}),
            json!([{"op": "remove", "path": "/a/-1"}])
        ),
        json!({"a": [1, 2]})
    );
    assert_eq!(
        err(json!({"a": 1}), json!([{"op": "remove", "path": "/b"}])),
        "error in remove for path: '/b': Unable to remove nonexistent key: b: missing value"
    );
    assert_eq!(
        err(json!({"a": [1]}), json!([{"op": "remove", "path": "/a/1"}])),
        "error in remove for path: '/a/1': Unable to access invalid index: 1: invalid index referenced"
    );
    assert_eq!(
        err(json!({"a": [1]}), json!([{"op": "remove", "path": "/a/z"}])),
        "error in remove for path: '/a/z': strconv.Atoi: parsing \"z\": invalid syntax"
    );
    assert_eq!(
        err(json!({}), json!([{"op": "remove", "path": "/x/y"}])),
        "remove operation does not apply: doc is missing path: \"/x/y\": missing value"
    );
}

#[test]
fn replace_sets_values_and_whole_documents() {
    assert_eq!(
        ok(
            json!({"a": 1}),
            json!([{"op": "replace", "path": "/a", "value": 2}])
        ),
        json!({"a": 2})
    );
    assert_eq!(
        ok(
            json!({"a": [1, 2]}),
            json!([{"op": "replace", "path": "/a/0", "value": 9}])
        ),
        json!({"a": [9, 2]})
    );
    // Upstream (v4) lets replace add a missing object key.
    assert_eq!(
        ok(
            json!({"a": 1}),
            json!([{"op": "replace", "path": "/b", "value": 2}])
        ),
        json!({"a": 1, "b": 2})
    );
    assert_eq!(
        ok(
            json!({"a": 1}),
            json!([{"op": "replace", "path": "", "value": {"b": 2}}])
        ),
        json!({"b": 2})
    );
    assert_eq!(
        err(
            json!({"a": 1}),
            json!([{"op": "replace", "path": "", "value": 3}])
        ),
        "replace operation value must be object or array: %!w(<nil>)"
    );
    assert_eq!(
        err(
            json!({"a": [1]}),
            json!([{"op": "replace", "path": "/a/5", "value": 3}])
        ),
        "replace operation does not apply: doc is missing key: /a/5: missing value"
    );
    assert_eq!(
        err(
            json!({}),
            json!([{"op": "replace", "path": "/x/y", "value": 3}])
        ),
        "replace operation does not apply: doc is missing path: /x/y: missing value"
    );
    assert_eq!(
        err(json!({}), json!([{"op": "replace", "value": 3}])),
        "replace operation failed to decode path: operation missing path field: missing value"
    );
    assert_eq!(
        err(json!({}), json!([{"op": "replace", "path": 5, "value": 3}])),
        "replace operation failed to decode path: json: cannot unmarshal number into Go value of type string"
    );
}

#[test]
fn move_and_copy() {
    assert_eq!(
        ok(
            json!({"a": 1}),
            json!([{"op": "move", "from": "/a", "path": "/b"}])
        ),
        json!({"b": 1})
    );
    assert_eq!(
        ok(
            json!({"a": [1, 2]}),
            json!([{"op": "move", "from": "/a/0", "path": "/a/-"}])
        ),
        json!({"a": [2, 1]})
    );
    assert_eq!(
        ok(
            json!({"a": {"x": 1}}),
            json!([{"op": "copy", "from": "/a", "path": "/b"}])
        ),
        json!({"a": {"x": 1}, "b": {"x": 1}})
    );
    assert_eq!(
        err(
            json!({"a": 1}),
            json!([{"op": "move", "from": "/b", "path": "/c"}])
        ),
        "error in move for path: 'b': Unable to remove nonexistent key: b: missing value"
    );
    assert_eq!(
        err(json!({"a": 1}), json!([{"op": "move", "path": "/c"}])),
        "move operation failed to decode from: operation, missing from field: missing value"
    );
    assert_eq!(
        err(
            json!({"a": 1}),
            json!([{"op": "move", "from": "/a", "path": "/x/y"}])
        ),
        "move operation does not apply: doc is missing destination path: /x/y: missing value"
    );
    assert_eq!(
        err(
            json!({"a": 1}),
            json!([{"op": "copy", "from": "/x/a", "path": "/b"}])
        ),
        "copy operation does not apply: doc is missing from path: /x/a: missing value"
    );
    assert_eq!(
        ok(
            json!({"a": 1}),
            json!([{"op": "copy", "from": "/missing", "path": "/b"}])
        ),
        json!({"a": 1, "b": null})
    );
}

#[test]
fn copy_is_bounded() {
    let doc = json!({"a": "x".repeat(1000)});
    let patch = JsonPatch::from_value(&json!([
        {"op": "copy", "from": "/a", "path": "/b"},
        {"op": "copy", "from": "/a", "path": "/c"},
    ]))
    .unwrap();
    assert_eq!(
        patch.apply_with_copy_limit(doc.clone(), 1500).unwrap_err().to_string(),
        "Unable to complete the copy, the accumulated size increase of copy is 2004, exceeding the limit 1500"
    );
    assert!(patch.apply_with_copy_limit(doc, 0).is_ok());
}

#[test]
fn test_op_compares_values() {
    let doc = json!({"a": {"b": [1, "x"]}, "n": null});
    assert!(apply(
        doc.clone(),
        json!([{"op": "test", "path": "/a/b", "value": [1, "x"]}])
    )
    .is_ok());
    assert!(apply(
        doc.clone(),
        json!([{"op": "test", "path": "/a/b/1", "value": "x"}])
    )
    .is_ok());
    assert!(apply(
        doc.clone(),
        json!([{"op": "test", "path": "/missing", "value": null}])
    )
    .is_ok());
    assert!(apply(doc.clone(), json!([{"op": "test", "path": "/n"}])).is_ok());
    assert!(apply(
        doc.clone(),
        json!([{"op": "test", "path": "", "value": doc.clone()}])
    )
    .is_ok());
    assert_eq!(
        err(
            doc.clone(),
            json!([{"op": "test", "path": "/a/b/0", "value": 2}])
        ),
        "testing value /a/b/0 failed: test failed"
    );
    assert_eq!(
        err(doc.clone(), json!([{"op": "test", "path": "/a/b/0"}])),
        "testing value /a/b/0 failed: test failed"
    );
    assert_eq!(
        err(
            doc.clone(),
            json!([{"op": "test", "path": "/x/y", "value": 1}])
        ),
        "test operation does not apply: is missing path: /x/y: missing value"
    );
    assert_eq!(
        err(doc, json!([{"op": "test", "path": "/a/b/7", "value": 1}])),
        "error in test for path: '/a/b/7': Unable to access invalid index: 7: invalid index referenced"
    );
}

#[test]
fn a_failed_test_stops_the_patch() {
    let doc = json!({"spec": {"replicas": 1}});
    let patch = json!([
        {"op": "test", "path": "/spec/replicas", "value": 2},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
    ]);
    assert!(apply(doc, patch).is_err());
}

#[test]
fn unknown_operations_and_decoding() {
    assert_eq!(
        err(json!({}), json!([{"op": "frob", "path": "/a"}])),
        "Unexpected kind: frob"
    );
    assert_eq!(
        err(json!({}), json!([{"path": "/a"}])),
        "Unexpected kind: unknown"
    );
    assert_eq!(
        err(json!({}), json!({"op": "add"})),
        "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
    );
    assert_eq!(
        err(json!({}), json!(["add"])),
        "json: cannot unmarshal string into Go value of type jsonpatch.Operation"
    );
    assert!(JsonPatch::from_value(&json!(null)).unwrap().is_empty());
    assert!(JsonPatch::from_slice(b"[").is_err());
}

#[test]
fn operation_count_is_limited() {
    let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
        .map(|_| json!({"op": "test", "path": "/a"}))
        .collect();
    let patch = JsonPatch::from_value(&Value::Array(ops)).unwrap();
    assert_eq!(
        patch.check_operation_count().unwrap_err().to_string(),
        "The allowed maximum operations in a JSON patch is 10000, got 10001"
    );
}

#[test]
fn paths_without_a_leading_slash_address_the_root_like_upstream() {
    assert_eq!(
        ok(json!({}), json!([{"op": "add", "path": "a/b", "value": 1}])),
        json!({"b": 1})
    );
}
