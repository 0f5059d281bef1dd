//! Which fields a built-in kind declares, for the server's field
//! validation: upstream decodes into typed objects, which silently drops
//! undeclared fields (`fieldValidation=Ignore`), warns about them (`Warn`,
//! the default) or refuses them (`Strict`). The index is built once from
//! the same definitions the documents are made of.

use std::collections::HashMap;

use serde_json::{Map, Value};

#[derive(Debug, Clone)]
enum Ty {
    /// A definition with named properties.
    Def(String),
    Array(Box<Ty>),
    /// A map: any key, values of the inner type.
    Map(Box<Ty>),
    /// Anything goes (scalars, IntOrString, RawExtension, free-form).
    Any,
}

#[derive(Debug, Default)]
struct Def {
    props: HashMap<String, Ty>,
}

#[derive(Debug, Default)]
pub(crate) struct FieldIndex {
    defs: HashMap<String, Def>,
    roots: HashMap<(String, String, String), String>,
}

fn ty_of(schema: &Value) -> Ty {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return Ty::Def(r.trim_start_matches("#/definitions/").to_string());
    }
    if schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
    {
        return Ty::Any;
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("array") => Ty::Array(Box::new(schema.get("items").map(ty_of).unwrap_or(Ty::Any))),
        Some("object") => match schema.get("additionalProperties") {
            Some(Value::Object(_)) => Ty::Map(Box::new(ty_of(&schema["additionalProperties"]))),
            _ => Ty::Any,
        },
        _ => Ty::Any,
    }
}

impl FieldIndex {
    pub(crate) fn build(definitions: &Map<String, Value>) -> FieldIndex {
        let mut index = FieldIndex::default();
        for (name, schema) in definitions {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                continue;
            };
            if schema
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                == Some(true)
            {
                continue;
            }
            let def = Def {
                props: props.iter().map(|(k, v)| (k.clone(), ty_of(v))).collect(),
            };
            index.defs.insert(name.clone(), def);
            if let Some(gvks) = schema
                .get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
            {
                for g in gvks {
                    let key = (
                        g["group"].as_str().unwrap_or("").to_string(),
                        g["version"].as_str().unwrap_or("").to_string(),
                        g["kind"].as_str().unwrap_or("").to_string(),
                    );
                    index.roots.entry(key).or_insert_with(|| name.clone());
                }
            }
        }
        index
    }

    fn walk(&self, ty: &Ty, v: &mut Value, path: &str, prune: bool, out: &mut Vec<String>) {
        match (ty, v) {
            (Ty::Def(name), Value::Object(map)) => {
                let Some(def) = self.defs.get(name) else {
                    return;
                };
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    let child = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    match def.props.get(&k) {
                        Some(t) => {
                            if let Some(c) = map.get_mut(&k) {
                                self.walk(t, c, &child, prune, out);
                            }
                        }
                        None => {
                            out.push(child);
                            if prune {
                                map.remove(&k);
                            }
                        }
                    }
                }
            }
            (Ty::Array(inner), Value::Array(items)) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.walk(inner, item, &format!("{path}[{i}]"), prune, out);
                }
            }
            (Ty::Map(inner), Value::Object(map)) => {
                for (k, c) in map.iter_mut() {
                    self.walk(inner, c, &format!("{path}.{k}"), prune, out);
                }
            }
            _ => {}
        }
    }

    /// Undeclared field paths of `obj` (and removes them when `prune`).
    /// Kinds without a schema have none.
    pub(crate) fn unknown(
        &self,
        group: &str,
        version: &str,
        kind: &str,
        obj: &mut Value,
        prune: bool,
    ) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(root) =
            self.roots
                .get(&(group.to_string(), version.to_string(), kind.to_string()))
        {
            self.walk(&Ty::Def(root.clone()), obj, "", prune, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn index() -> FieldIndex {
        let defs = json!({
            "D": { "properties": { "spec": { "$ref": "#/definitions/S" }, "metadata": { "type": "object" } },
                   "x-kubernetes-group-version-kind": [{ "group": "apps", "version": "v1", "kind": "Deployment" }] },
            "S": { "properties": { "replicas": { "type": "integer" }, "containers": { "type": "array", "items": { "$ref": "#/definitions/C" } },
                                   "labels": { "type": "object", "additionalProperties": { "type": "string" } } } },
            "C": { "properties": { "name": { "type": "string" }, "image": { "type": "string" } } },
        });
        FieldIndex::build(defs.as_object().unwrap())
    }

    #[test]
    fn undeclared_fields_are_found_with_their_paths_and_pruned() {
        let idx = index();
        let mut obj = json!({ "spec": { "replicass": 2, "labels": { "any": "x" }, "containers": [{ "name": "a", "imagee": "x" }] }, "metadata": { "free": 1 } });
        let found = idx.unknown("apps", "v1", "Deployment", &mut obj.clone(), false);
        assert_eq!(found, ["spec.containers[0].imagee", "spec.replicass"]);
        idx.unknown("apps", "v1", "Deployment", &mut obj, true);
        assert_eq!(
            obj,
            json!({ "spec": { "labels": { "any": "x" }, "containers": [{ "name": "a" }] }, "metadata": { "free": 1 } })
        );
        assert!(idx
            .unknown("x", "v1", "Other", &mut json!({ "a": 1 }), false)
            .is_empty());
    }
}
