//! The structural OpenAPI v3 schemas of custom resources: pruning of
//! unknown fields, defaulting, and validation with the messages upstream's
//! validator gives (`spec.size in body must be of type integer: "big"`).

use serde_json::{Map, Value};

use crate::status::Cause;

fn preserves_unknown(s: &Value) -> bool {
    s.get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

/// Removes fields the schema does not declare and fills declared defaults.
/// `apiVersion`, `kind` and `metadata` of the object (and of embedded
/// resources) are always kept.
pub fn prune_and_default(schema: &Value, obj: &mut Value) {
    walk(schema, obj, true, "", &mut Vec::new());
}

/// The paths of the fields of `obj` the schema does not declare
/// (`spec.ports[0].unknownNested`), as upstream's pruning reports them for
/// `fieldValidation`.
pub fn unknown_fields(schema: &Value, obj: &Value) -> Vec<String> {
    let mut pruned = Vec::new();
    walk(schema, &mut obj.clone(), true, "", &mut pruned);
    pruned
}

fn walk(schema: &Value, v: &mut Value, is_resource: bool, path: &str, pruned: &mut Vec<String>) {
    let child_path = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let embedded = is_resource
                || schema
                    .get("x-kubernetes-embedded-resource")
                    .and_then(Value::as_bool)
                    == Some(true);
            if let Some(props) = props {
                for (k, ps) in props {
                    if !map.contains_key(k) {
                        if let Some(d) = ps.get("default") {
                            map.insert(k.clone(), d.clone());
                        }
                    }
                }
            }
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if embedded && (k == "apiVersion" || k == "kind" || k == "metadata") {
                    continue;
                }
                let sub = props.and_then(|p| p.get(&k));
                match (sub, additional) {
                    (Some(ps), _) => {
                        if let Some(child) = map.get_mut(&k) {
                            walk(ps, child, false, &child_path(&k), pruned);
                        }
                    }
                    (None, Some(Value::Object(_))) => {
                        if let (Some(ad), Some(child)) = (additional, map.get_mut(&k)) {
                            walk(ad, child, false, &child_path(&k), pruned);
                        }
                    }
                    (None, Some(Value::Bool(true))) => {}
                    (None, _) if preserves_unknown(schema) => {}
                    (None, _)
                        if props.is_none()
                            && additional.is_none()
                            && schema.get("type").is_none() => {}
                    (None, _) => {
                        map.remove(&k);
                        pruned.push(child_path(&k));
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(is, item, false, &format!("{path}[{i}]"), pruned);
                }
            }
        }
        _ => {}
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn invalid(path: &str, v: &Value, detail: String) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {}: {detail}", shown(v)),
        field: path.into(),
    }
}

/// Validates an object against its version's schema.
pub fn validate(schema: &Value, obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    if let (Some(props), Some(map)) = (
        schema.get("properties").and_then(Value::as_object),
        obj.as_object(),
    ) {
        check_required(schema, map, "", &mut out);
        for (k, ps) in props {
            if k == "metadata" || k == "apiVersion" || k == "kind" {
                continue;
            }
            if let Some(child) = map.get(k) {
                check(ps, child, k, &mut out);
            }
        }
    }
    out
}

fn join(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

fn check_required(schema: &Value, map: &Map<String, Value>, path: &str, out: &mut Vec<Cause>) {
    if let Some(req) = schema.get("required").and_then(Value::as_array) {
        for r in req.iter().filter_map(Value::as_str) {
            if !map.contains_key(r) {
                out.push(Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value".into(),
                    field: join(path, r),
                });
            }
        }
    }
}

fn check(s: &Value, v: &Value, path: &str, out: &mut Vec<Cause>) {
    if v.is_null() {
        if s.get("nullable").and_then(Value::as_bool) == Some(true) {
            return;
        }
    }
    let int_or_string = s.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true);
    if int_or_string {
        if !matches!(type_of(v), "integer" | "string") {
            out.push(invalid(
                path,
                v,
                format!(
                    "{path} in body must be of type int-or-string: {:?}",
                    type_of(v)
                ),
            ));
        }
    } else if let Some(want) = s.get("type").and_then(Value::as_str) {
        let have = type_of(v);
        let ok = have == want || (want == "number" && have == "integer");
        if !ok {
            out.push(invalid(
                path,
                v,
                format!("{path} in body must be of type {want}: {:?}", have),
            ));
            return;
        }
    }
    if let Some(options) = s.get("enum").and_then(Value::as_array) {
        if !options.contains(v) {
            let list: Vec<String> = options.iter().map(shown).collect();
            out.push(Cause {
                reason: "FieldValueNotSupported".into(),
                message: format!(
                    "Unsupported value: {}: supported values: {}",
                    shown(v),
                    list.join(", ")
                ),
                field: path.into(),
            });
        }
    }
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
                let exclusive = s.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true);
                if x < min || (exclusive && x == min) {
                    let op = if exclusive {
                        "greater than"
                    } else {
                        "greater than or equal to"
                    };
                    out.push(invalid(
                        path,
                        v,
                        format!("{path} in body should be {op} {}", s["minimum"]),
                    ));
                }
            }
            if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
                let exclusive = s.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true);
                if x > max || (exclusive && x == max) {
                    let op = if exclusive {
                        "less than"
                    } else {
                        "less than or equal to"
                    };
                    out.push(invalid(
                        path,
                        v,
                        format!("{path} in body should be {op} {}", s["maximum"]),
                    ));
                }
            }
        }
        Value::String(text) => {
            let len = text.chars().count() as u64;
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64) {
                if len > max {
                    out.push(Cause {
                        reason: "FieldValueTooLong".into(),
                        message: format!("Too long: may not be more than {max} bytes"),
                        field: path.into(),
                    });
                }
            }
            if let Some(min) = s.get("minLength").and_then(Value::as_u64) {
                if len < min {
                    out.push(invalid(
                        path,
                        v,
                        format!("{path} in body should be at least {min} chars long"),
                    ));
                }
            }
            if let Some(p) = s.get("pattern").and_then(Value::as_str) {
                if let Ok(re) = regex::Regex::new(p) {
                    if !re.is_match(text) {
                        out.push(invalid(
                            path,
                            v,
                            format!("{path} in body should match '{p}'"),
                        ));
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64) {
                if items.len() as u64 > max {
                    out.push(Cause {
                        reason: "FieldValueTooMany".into(),
                        message: format!(
                            "Too many: {}: must have at most {max} items",
                            items.len()
                        ),
                        field: path.into(),
                    });
                }
            }
            if let Some(min) = s.get("minItems").and_then(Value::as_u64) {
                if (items.len() as u64) < min {
                    out.push(invalid(
                        path,
                        v,
                        format!("{path} in body should have at least {min} items"),
                    ));
                }
            }
            if let Some(is) = s.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(is, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        Value::Object(map) => {
            check_required(s, map, path, out);
            let props = s.get("properties").and_then(Value::as_object);
            for (k, child) in map {
                match (props.and_then(|p| p.get(k)), s.get("additionalProperties")) {
                    (Some(ps), _) => check(ps, child, &join(path, k), out),
                    (None, Some(ad)) if ad.is_object() => check(ad, child, &join(path, k), out),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {
                        "size": { "type": "integer", "minimum": 0, "maximum": 10 },
                        "color": { "type": "string", "enum": ["red", "blue"], "default": "red" },
                        "tags": { "type": "array", "maxItems": 2, "items": { "type": "string" } },
                        "labels": { "type": "object", "additionalProperties": { "type": "string" } },
                        "free": { "type": "object", "x-kubernetes-preserve-unknown-fields": true },
                        "port": { "x-kubernetes-int-or-string": true },
                    },
                },
                "status": { "type": "object", "properties": { "ready": { "type": "boolean" } } },
            },
        })
    }

    #[test]
    fn unknown_fields_are_pruned_and_defaults_filled() {
        let mut o = json!({
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": { "name": "w" },
            "spec": { "size": 3, "bogus": 1, "labels": { "a": "b" }, "free": { "x": { "y": 1 } } },
            "extra": true,
        });
        prune_and_default(&schema(), &mut o);
        assert_eq!(
            o["spec"],
            json!({ "size": 3, "color": "red", "labels": { "a": "b" }, "free": { "x": { "y": 1 } } })
        );
        assert!(o.get("extra").is_none());
        assert_eq!(o["metadata"]["name"], "w");
    }

    #[test]
    fn violations_are_reported_with_upstream_wording() {
        let o = json!({ "spec": { "size": "big", "color": "pink", "tags": ["a", "b", "c"], "port": true } });
        let causes = validate(&schema(), &o);
        let msgs: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert!(msgs.contains(&"spec.size: Invalid value: \"big\": spec.size in body must be of type integer: \"string\"".to_string()), "{msgs:?}");
        assert!(
            msgs.contains(
                &"spec.color: Unsupported value: \"pink\": supported values: \"red\", \"blue\""
                    .to_string()
            ),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(&"spec.tags: Too many: 3: must have at most 2 items".to_string()),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("spec.port: Invalid value: true")),
            "{msgs:?}"
        );
        let missing = validate(&schema(), &json!({ "spec": {} }));
        assert_eq!(missing[0].field, "spec.size");
        assert_eq!(missing[0].message, "Required value");
        let range = validate(&schema(), &json!({ "spec": { "size": 11 } }));
        assert_eq!(
            range[0].message,
            "Invalid value: 11: spec.size in body should be less than or equal to 10"
        );
    }
}
