//! The definitions and paths of custom resources, as upstream's
//! apiextensions OpenAPI builder publishes them: per served version of a
//! definition, the kind (`com.example.v1.Widget`, the group reversed) with
//! the definition's structural schema completed by `apiVersion`, `kind` and
//! `metadata`, its list kind, and the REST paths of the resource. The v2
//! document carries them next to the built-in ones; each custom
//! group/version gets its own v3 document with the meta types it reaches.

use serde_json::{json, Map, Value};

use crate::paths::{self, Format};
use crate::schemas::{self, DELETE_OPTIONS, LIST_META, PATCH, STATUS, V2_REF_PREFIX};
use crate::{registry, Kind, Options};

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";
const METADATA_DESCRIPTION: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_METADATA_DESCRIPTION: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const EMBEDDED_API_VERSION_DESCRIPTION: &str = "apiVersion defines the versioned schema of this representation of an object. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const EMBEDDED_KIND_DESCRIPTION: &str = "kind is a string value representing the type of this object. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// One served version of a custom resource.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomKind {
    pub kind: Kind,
    pub list_kind: &'static str,
    /// The version's `schema.openAPIV3Schema`.
    pub schema: Option<Value>,
    /// `spec.preserveUnknownFields` of the definition.
    pub preserve_unknown_fields: bool,
    pub scale: bool,
}

/// `com.example.v1.Widget`: upstream's `ToRESTFriendlyName` of
/// `example.com/v1.Widget`.
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

fn is_true(s: &Map<String, Value>, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool) == Some(true)
}

/// Upstream's `Structural.Unfold`: an int-or-string says so with `anyOf`.
fn unfold(schema: &mut Value) {
    let Some(s) = schema.as_object_mut() else {
        return;
    };
    if is_true(s, "x-kubernetes-int-or-string") {
        let alternatives = json!([{"type": "integer"}, {"type": "string"}]);
        match s.remove("anyOf") {
            None => {
                s.insert("anyOf".into(), alternatives);
            }
            Some(any_of) => {
                let mut all_of = vec![json!({"anyOf": alternatives}), json!({"anyOf": any_of})];
                if let Some(Value::Array(rest)) = s.remove("allOf") {
                    all_of.extend(rest);
                }
                s.insert("allOf".into(), Value::Array(all_of));
            }
        }
    }
    for_each_child(s, unfold);
}

fn for_each_child(s: &mut Map<String, Value>, f: fn(&mut Value)) {
    if let Some(Value::Object(properties)) = s.get_mut("properties") {
        properties.values_mut().for_each(f);
    }
    if let Some(items @ Value::Object(_)) = s.get_mut("items") {
        f(items);
    }
    if let Some(additional @ Value::Object(_)) = s.get_mut("additionalProperties") {
        f(additional);
    }
}

/// Upstream's `ToStructuralOpenAPIV2`: what kubectl's v2 validation cannot
/// cope with goes (composition, `nullable`, the shape of free-form values).
fn to_v2(schema: &mut Value) {
    let Some(s) = schema.as_object_mut() else {
        return;
    };
    for key in ["allOf", "oneOf", "anyOf", "not"] {
        s.remove(key);
    }
    if is_true(s, "nullable") {
        s.remove("type");
        s.remove("nullable");
        s.remove("items");
        s.remove("properties");
    }
    if is_true(s, "x-kubernetes-preserve-unknown-fields") {
        s.remove("items");
        s.remove("properties");
    }
    if s.get("type").and_then(Value::as_str) == Some("array") && !s.contains_key("items") {
        s.remove("type");
    }
    let nullable: Vec<String> = s
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .filter(|(_, v)| v.get("nullable").and_then(Value::as_bool) == Some(true))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    if let Some(Value::Array(required)) = s.get_mut("required") {
        required.retain(|r| !r.as_str().is_some_and(|r| nullable.iter().any(|n| n == r)));
    }
    if s.get("additionalProperties")
        .and_then(|a| a.get("nullable"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        s.remove("type");
        s.remove("additionalProperties");
    }
    for_each_child(s, to_v2);
}

fn reference(name: &str, description: &str) -> Value {
    json!({"$ref": format!("{V2_REF_PREFIX}{name}"), "description": description})
}

fn add_type_meta(s: &mut Map<String, Value>) {
    let properties = s
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(p) = properties {
        p.insert(
            "apiVersion".into(),
            json!({"type": "string", "description": API_VERSION_DESCRIPTION}),
        );
        p.insert(
            "kind".into(),
            json!({"type": "string", "description": KIND_DESCRIPTION}),
        );
    }
}

/// Embedded resources get `apiVersion`, `kind` and `metadata`, required.
fn add_embedded(schema: &mut Value, v2: bool) {
    let Some(s) = schema.as_object_mut() else {
        return;
    };
    for_each_child(s, if v2 { add_embedded_v2 } else { add_embedded_v3 });
    if v2 && is_true(s, "x-kubernetes-preserve-unknown-fields") {
        return;
    }
    if !is_true(s, "x-kubernetes-embedded-resource") {
        return;
    }
    if let Some(p) = s
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
    {
        p.insert(
            "apiVersion".into(),
            json!({"type": "string", "description": EMBEDDED_API_VERSION_DESCRIPTION}),
        );
        p.insert(
            "kind".into(),
            json!({"type": "string", "description": EMBEDDED_KIND_DESCRIPTION}),
        );
        p.insert(
            "metadata".into(),
            reference(OBJECT_META, METADATA_DESCRIPTION),
        );
    }
    let required = s.entry("required").or_insert_with(|| json!([]));
    if let Some(required) = required.as_array_mut() {
        for field in ["kind", "apiVersion"] {
            if !required.iter().any(|r| r == field) {
                required.push(field.into());
            }
        }
    }
}

fn add_embedded_v2(schema: &mut Value) {
    add_embedded(schema, true)
}

fn add_embedded_v3(schema: &mut Value) {
    add_embedded(schema, false)
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!([{"group": group, "kind": kind, "version": version}])
}

/// The kind's definition (upstream's `buildKubeNative`).
fn kind_schema(custom: &CustomKind, v2: bool) -> Value {
    let k = &custom.kind;
    let preserve = custom.schema.as_ref().is_some_and(|s| {
        s.get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            == Some(true)
    }) || custom.preserve_unknown_fields;
    let mut schema = match &custom.schema {
        Some(schema) if !(v2 && preserve) => {
            let mut schema = schema.clone();
            unfold(&mut schema);
            if v2 {
                to_v2(&mut schema);
            }
            if let Some(s) = schema.as_object_mut() {
                if let Some(p) = s
                    .entry("properties")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                {
                    p.insert(
                        "metadata".into(),
                        reference(OBJECT_META, METADATA_DESCRIPTION),
                    );
                }
                add_type_meta(s);
            }
            add_embedded(&mut schema, v2);
            schema
        }
        _ => json!({"type": "object"}),
    };
    if let Some(s) = schema.as_object_mut() {
        s.insert(
            "x-kubernetes-group-version-kind".into(),
            gvk(k.group, k.version, k.kind),
        );
    }
    schema
}

/// The list kind's definition (upstream's `buildListSchema`).
fn list_schema(custom: &CustomKind) -> Value {
    let k = &custom.kind;
    let mut s = json!({
        "description": format!("{} is a list of {}", custom.list_kind, k.kind),
        "required": ["items"],
        "properties": {
            "items": {
                "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", k.resource),
                "type": "array",
                "items": {"$ref": format!("{V2_REF_PREFIX}{}", definition_name(k.group, k.version, k.kind))},
            },
            "metadata": reference(LIST_META, LIST_METADATA_DESCRIPTION),
        },
        "x-kubernetes-group-version-kind": gvk(k.group, k.version, custom.list_kind),
    });
    if let Some(s) = s.as_object_mut() {
        add_type_meta(s);
    }
    s
}

/// The definitions and paths of custom kinds, in Swagger 2.0 form.
fn parts(
    customs: &[&CustomKind],
    options: &Options,
    v2: bool,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut definitions = Map::new();
    let mut paths = Map::new();
    let format = if v2 { Format::V2 } else { Format::V3 };
    for custom in customs {
        let k = &custom.kind;
        let name = definition_name(k.group, k.version, k.kind);
        let list = definition_name(k.group, k.version, custom.list_kind);
        definitions.insert(name.clone(), kind_schema(custom, v2));
        definitions.insert(list.clone(), list_schema(custom));
        paths.extend(paths::resource_paths_named(
            k,
            name,
            Some(list),
            paths::CUSTOM_PATCH_TYPES,
            options,
            format,
        ));
    }
    (definitions, paths)
}

/// Adds the custom kinds to a built Swagger 2.0 document.
pub(crate) fn extend_v2(document: &mut Value, customs: &[CustomKind], options: &Options) {
    let all: Vec<&CustomKind> = customs.iter().collect();
    let (definitions, paths) = parts(&all, options, true);
    if let Some(d) = document
        .get_mut("definitions")
        .and_then(Value::as_object_mut)
    {
        d.extend(definitions);
    }
    if let Some(p) = document.get_mut("paths").and_then(Value::as_object_mut) {
        p.extend(paths);
    }
}

/// Every `$ref` target reachable from `roots`.
fn reachable(all: &Map<String, Value>, roots: Vec<String>) -> Map<String, Value> {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    if let Some(name) = r.strip_prefix(V2_REF_PREFIX) {
                        out.push(name.to_string());
                    }
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut out = Map::new();
    let mut todo = roots;
    while let Some(name) = todo.pop() {
        if out.contains_key(&name) {
            continue;
        }
        if let Some(schema) = all.get(&name) {
            refs(schema, &mut todo);
            out.insert(name, schema.clone());
        }
    }
    out
}

/// The OpenAPI 3 document of one custom group/version.
pub(crate) fn v3_document(
    customs: &[CustomKind],
    options: &Options,
    group: &str,
    version: &str,
) -> Option<Value> {
    let served: Vec<&CustomKind> = customs
        .iter()
        .filter(|c| c.kind.group == group && c.kind.version == version)
        .collect();
    if served.is_empty() {
        return None;
    }
    let (mut definitions, paths) = parts(&served, options, false);
    // The meta types (and Scale) come from the built-in definitions.
    let builtin = schemas::definitions(registry::in_group_version("autoscaling", "v1"));
    let mut roots: Vec<String> = [OBJECT_META, LIST_META, STATUS, DELETE_OPTIONS, PATCH]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if served.iter().any(|c| c.scale) {
        roots.push(SCALE.to_string());
    }
    definitions.extend(reachable(&builtin, roots));
    let schemas: Map<String, Value> = definitions
        .into_iter()
        .map(|(name, schema)| {
            let schema = crate::v3::to_v3(&name, schema);
            (name, schema)
        })
        .collect();
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget(schema: Value) -> CustomKind {
        CustomKind {
            kind: Kind {
                group: "example.com",
                version: "v1",
                kind: "Widget",
                resource: "widgets",
                namespaced: true,
                verbs: &["create", "get", "list", "patch", "update", "delete"],
            },
            list_kind: "WidgetList",
            schema: Some(schema),
            preserve_unknown_fields: false,
            scale: false,
        }
    }

    #[test]
    fn definitions_are_named_with_the_group_reversed() {
        assert_eq!(
            definition_name("stable.example.com", "v1", "CronTab"),
            "com.example.stable.v1.CronTab"
        );
    }

    #[test]
    fn a_custom_group_version_document_carries_the_schema_and_meta_types() {
        let w = widget(json!({"type": "object", "description": "A widget.",
            "properties": {"spec": {"type": "object", "properties": {"port": {"x-kubernetes-int-or-string": true}}}}}));
        let doc = v3_document(&[w], &Options::default(), "example.com", "v1").unwrap();
        let schemas = &doc["components"]["schemas"];
        let kind = &schemas["com.example.v1.Widget"];
        assert_eq!(kind["description"], "A widget.");
        assert_eq!(
            kind["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert_eq!(kind["properties"]["kind"]["type"], "string");
        assert_eq!(
            kind["properties"]["spec"]["properties"]["port"]["anyOf"],
            json!([{"type": "integer"}, {"type": "string"}])
        );
        assert_eq!(
            kind["x-kubernetes-group-version-kind"],
            json!([{"group": "example.com", "kind": "Widget", "version": "v1"}])
        );
        assert_eq!(
            schemas["com.example.v1.WidgetList"]["x-kubernetes-group-version-kind"][0]["kind"],
            "WidgetList"
        );
        assert!(schemas[OBJECT_META].is_object());
        assert!(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry"].is_object());
        let patch =
            &doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"];
        // kubectl apply sends a strategic merge patch only where one is taken.
        assert!(patch["requestBody"]["content"]["application/merge-patch+json"].is_object());
        assert!(patch["requestBody"]["content"]
            .get("application/strategic-merge-patch+json")
            .is_none());
    }

    #[test]
    fn the_v2_form_drops_what_kubectl_cannot_validate() {
        let w = widget(
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-preserve-unknown-fields": true, "properties": {"a": {"type": "string"}}}}}),
        );
        let mut doc = json!({"definitions": {}, "paths": {}});
        extend_v2(&mut doc, &[w], &Options::default());
        let spec = &doc["definitions"]["com.example.v1.Widget"]["properties"]["spec"];
        assert!(spec.get("properties").is_none(), "{spec}");
        let w = widget(json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
        let mut doc = json!({"definitions": {}, "paths": {}});
        extend_v2(&mut doc, &[w], &Options::default());
        assert!(doc["definitions"]["com.example.v1.Widget"]
            .get("properties")
            .is_none());
    }
}
