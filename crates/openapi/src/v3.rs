//! The OpenAPI 3.0 documents served at `/openapi/v3/<group-version path>`:
//! per group/version, the paths of its resources and every schema they
//! reach, in upstream's OpenAPI 3 form (`#/components/schemas/...`, a `$ref`
//! with siblings wrapped in `allOf`, `IntOrString` and `Quantity` as
//! `oneOf`).

use serde_json::{json, Map, Value};

use crate::paths::{self, Format};
use crate::schemas::{self, INT_OR_STRING, QUANTITY, V2_REF_PREFIX};
use crate::{registry, Kind, Options};

pub(crate) const V3_REF_PREFIX: &str = "#/components/schemas/";

/// The document of one group/version, `None` when no served kind is in it.
pub(crate) fn document(
    kinds: &[Kind],
    options: &Options,
    group: &str,
    version: &str,
) -> Option<Value> {
    let served: Vec<&Kind> = kinds
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .collect();
    if served.is_empty() {
        return None;
    }
    let mut definitions = schemas::definitions(registry::in_group_version(group, version));
    for kind in &served {
        crate::v2::tag_kind(&mut definitions, kind);
    }
    let mut paths = Map::new();
    for kind in &served {
        paths.extend(paths::resource_paths(kind, options, Format::V3));
    }
    let schemas: Map<String, Value> = definitions
        .into_iter()
        .map(|(name, schema)| {
            let schema = to_v3(&name, schema);
            (name, schema)
        })
        .collect();
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": crate::KUBERNETES_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// Converts one Swagger 2.0 definition to its OpenAPI 3 form.
pub(crate) fn to_v3(name: &str, mut schema: Value) -> Value {
    let one_of = match name {
        INT_OR_STRING => Some(
            json!({"format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}]}),
        ),
        QUANTITY => Some(json!({"oneOf": [{"type": "string"}, {"type": "number"}]})),
        _ => None,
    };
    if let Some(mut out) = one_of {
        if let Some(description) = schema.get("description") {
            out["description"] = description.clone();
        }
        return out;
    }
    convert_refs(&mut schema);
    schema
}

fn convert_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get_mut("$ref") {
                if let Some(name) = target.strip_prefix(V2_REF_PREFIX) {
                    *target = format!("{V3_REF_PREFIX}{name}");
                }
                if map.len() > 1 {
                    let reference = map.remove("$ref").unwrap_or(Value::Null);
                    map.insert("allOf".into(), json!([{"$ref": reference}]));
                }
                return;
            }
            for v in map.values_mut() {
                convert_refs(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(convert_refs),
        _ => {}
    }
}
