//! The schema definitions, keyed by their upstream names
//! (`io.k8s.api.core.v1.Pod`), in Swagger 2.0 form (`$ref:
//! "#/definitions/..."`): generated from `k8s-openapi`'s `JsonSchema`
//! implementations, then completed with what those leave out (the
//! `<Kind>List` types, upstream's vendor extensions, the exact shape of
//! `IntOrString` and `Quantity`). `v3` converts them to OpenAPI 3 form.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use crate::registry::TypeEntry;
use crate::upstream::{DEFINITIONS, LIST_DESCRIPTIONS};

/// Where Swagger 2.0 definitions live; `$ref`s point here.
pub(crate) const V2_REF_PREFIX: &str = "#/definitions/";

pub(crate) const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
pub(crate) const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
pub(crate) const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(crate) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
const FREE_FORM: &[&str] = &[
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
];

/// What upstream says of one definition beyond `k8s-openapi`: its vendor
/// extensions (on the definition itself and on its properties, each a JSON
/// object of `x-kubernetes-*` keys, the root one empty when there are none)
/// and its `required` list.
pub(crate) struct UpstreamDefinition {
    pub name: &'static str,
    pub root: &'static str,
    pub required: &'static [&'static str],
    pub properties: &'static [(&'static str, &'static str)],
}

/// Upstream's descriptions of a `<Kind>List` definition and of its `items`
/// and `metadata`.
pub(crate) struct ListDescription {
    pub name: &'static str,
    pub description: &'static str,
    pub items: &'static str,
    pub metadata: &'static str,
}

/// The upstream name of a type's list: `io.k8s.api.core.v1.PodList`.
pub(crate) fn list_name(entry: &TypeEntry) -> Option<String> {
    let list_kind = entry.list_kind?;
    let name = (entry.schema_name)();
    let prefix = name.rsplit_once('.').map_or("", |(prefix, _)| prefix);
    Some(format!("{prefix}.{list_kind}"))
}

/// Every definition reachable from `roots` (and their lists), plus the
/// types that the REST operations reference (`DeleteOptions`, `Status`,
/// `Patch`, `WatchEvent`), complete with upstream's extensions.
pub(crate) fn definitions<'a>(
    roots: impl IntoIterator<Item = &'a TypeEntry>,
) -> Map<String, Value> {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = Cow::Borrowed("/definitions");
            s.meta_schema = None;
            s.transforms.clear();
        })
        .into_generator();
    let roots: Vec<&TypeEntry> = roots.into_iter().collect();
    for entry in &roots {
        (entry.add)(&mut generator);
    }
    generator.subschema_for::<meta::ListMeta>();
    generator.subschema_for::<meta::DeleteOptions>();
    generator.subschema_for::<meta::Status>();
    generator.subschema_for::<meta::Patch>();
    generator.subschema_for::<meta::WatchEvent<k8s_openapi::api::core::v1::Pod>>();
    let mut definitions = generator.take_definitions(false);

    for entry in &roots {
        if let Some(name) = list_name(entry) {
            let list = list_schema(&definitions, &(entry.schema_name)(), &name);
            definitions.insert(name, list);
        }
    }
    upstream_shapes(&mut definitions);
    apply_upstream(&mut definitions);
    definitions
}

/// A `<Kind>List` schema the way upstream publishes it.
fn list_schema(definitions: &Map<String, Value>, item: &str, name: &str) -> Value {
    let described = LIST_DESCRIPTIONS
        .binary_search_by(|d| d.name.cmp(name))
        .ok()
        .map(|i| &LIST_DESCRIPTIONS[i]);
    let kind = item.rsplit('.').next().unwrap_or(item);
    let description = described
        .map(|d| d.description.to_string())
        .unwrap_or_else(|| format!("{kind}List is a list of {kind} objects."));
    let items_description = described
        .map(|d| d.items.to_string())
        .unwrap_or_else(|| format!("List of {kind} objects."));
    let metadata_description = described.map_or(
        "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
        |d| d.metadata,
    );
    let item_properties = definitions.get(item).and_then(|d| d.get("properties"));
    let standard = |field: &str| {
        item_properties
            .and_then(|p| p.get(field))
            .cloned()
            .unwrap_or_else(|| json!({"type": "string"}))
    };
    let mut schema = json!({
        "description": description,
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": standard("apiVersion"),
            "items": {
                "description": items_description,
                "type": "array",
                "items": {"$ref": format!("{V2_REF_PREFIX}{item}")},
            },
            "kind": standard("kind"),
            "metadata": {
                "$ref": format!("{V2_REF_PREFIX}{LIST_META}"),
                "description": metadata_description,
            },
        },
    });
    if metadata_description.is_empty() {
        if let Some(metadata) = schema
            .pointer_mut("/properties/metadata")
            .and_then(Value::as_object_mut)
        {
            metadata.remove("description");
        }
    }
    schema
}

/// `k8s-openapi` describes `IntOrString` and `Quantity` with its own
/// `x-kubernetes-int-or-string` marker; upstream's Swagger 2.0 says
/// `type: string` (with `format: int-or-string` for `IntOrString`), which is
/// what kubectl's validation understands. The free-form apiextensions types
/// are a bare description upstream (any value goes), and `WatchEvent`
/// describes its `object` on the property.
fn upstream_shapes(definitions: &mut Map<String, Value>) {
    // k8s-openapi moves the description of `object` into the type's.
    if let Some(Value::Object(event)) = definitions.get_mut(WATCH_EVENT) {
        if let Some(Value::String(description)) = event.get_mut("description") {
            if let Some((own, object)) = description.split_once("\n\n") {
                let object = object.to_string();
                *description = own.to_string();
                if let Some(Value::Object(property)) = event
                    .get_mut("properties")
                    .and_then(|p| p.get_mut("object"))
                {
                    property.insert("description".into(), object.into());
                }
            }
        }
    }
    for name in FREE_FORM {
        if let Some(schema) = definitions.get_mut(*name) {
            *schema =
                json!({"description": schema.get("description").cloned().unwrap_or(Value::Null)});
        }
    }
    if let Some(schema) = definitions.get_mut(INT_OR_STRING) {
        *schema = json!({
            "description": schema.get("description").cloned().unwrap_or(Value::Null),
            "type": "string",
            "format": "int-or-string",
        });
    }
    if let Some(schema) = definitions.get_mut(QUANTITY) {
        *schema = json!({
            "description": schema.get("description").cloned().unwrap_or(Value::Null),
            "type": "string",
        });
    }
}

fn upstream_of(name: &str) -> Option<&'static UpstreamDefinition> {
    DEFINITIONS
        .binary_search_by(|e| e.name.cmp(name))
        .ok()
        .map(|i| &DEFINITIONS[i])
}

/// Merges a JSON object of extensions (from the generated table) into a
/// schema object.
fn merge_object(target: &mut Value, extensions: &str) {
    let (Some(target), Ok(Value::Object(extensions))) = (
        target.as_object_mut(),
        serde_json::from_str::<Value>(extensions),
    ) else {
        return;
    };
    target.extend(extensions);
}

/// Applies upstream's extensions and `required` lists to the definitions
/// upstream publishes; others (none today) are left as generated.
fn apply_upstream(definitions: &mut Map<String, Value>) {
    for (name, schema) in definitions.iter_mut() {
        let Some(upstream) = upstream_of(name) else {
            continue;
        };
        if !upstream.root.is_empty() {
            merge_object(schema, upstream.root);
        }
        if let Some(object) = schema.as_object_mut() {
            if upstream.required.is_empty() {
                object.remove("required");
            } else {
                object.insert("required".into(), json!(upstream.required));
            }
        }
        let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for (property, extensions) in upstream.properties {
            if let Some(target) = properties.get_mut(*property) {
                merge_object(target, extensions);
            }
        }
    }
}

/// Adds `group/version/kind` to a definition's
/// `x-kubernetes-group-version-kind` list unless it is already there (for
/// kinds that upstream's table does not know).
pub(crate) fn ensure_gvk(schema: &mut Value, group: &str, version: &str, kind: &str) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let gvk = json!({"group": group, "kind": kind, "version": version});
    let list = object
        .entry("x-kubernetes-group-version-kind")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(list) = list.as_array_mut() {
        if !list.contains(&gvk) {
            list.push(gvk);
        }
    }
}
