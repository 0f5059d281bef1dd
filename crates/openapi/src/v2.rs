//! The Swagger 2.0 document served at `/openapi/v2`: every definition of
//! every served group/version, and the REST paths of every served resource.

use serde_json::{json, Map, Value};

use crate::paths::{self, Format};
use crate::schemas::{self, list_name};
use crate::{registry, served_entries, Kind, Options};

pub(crate) fn document(kinds: &[Kind], options: &Options) -> Value {
    let entries = served_entries(kinds);
    let mut definitions = schemas::definitions(entries.iter().copied());
    for kind in kinds {
        tag_kind(&mut definitions, kind);
    }
    let mut paths = Map::new();
    for kind in kinds {
        paths.extend(paths::resource_paths(kind, options, Format::V2));
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": crate::KUBERNETES_VERSION},
        "paths": paths,
        "definitions": definitions,
    })
}

/// Makes sure a served kind (and its list) carries its GVK, even when
/// upstream's extension table does not name it.
pub(crate) fn tag_kind(definitions: &mut Map<String, Value>, kind: &Kind) {
    let Some(entry) = registry::TYPES
        .iter()
        .find(|t| t.group == kind.group && t.version == kind.version && t.kind == kind.kind)
    else {
        return;
    };
    if let Some(schema) = definitions.get_mut((entry.schema_name)().as_ref()) {
        schemas::ensure_gvk(schema, kind.group, kind.version, kind.kind);
    }
    if let (Some(name), Some(list_kind)) = (list_name(entry), entry.list_kind) {
        if let Some(schema) = definitions.get_mut(&name) {
            schemas::ensure_gvk(schema, kind.group, kind.version, list_kind);
        }
    }
}
