//! The REST operations of each served resource, as upstream names and tags
//! them (`patchAppsV1NamespacedDeployment`, `x-kubernetes-action: patch`,
//! `x-kubernetes-group-version-kind`), rendered as Swagger 2.0 or OpenAPI 3
//! path items.
//!
//! kubectl reads these to decide who validates a manifest: when the PATCH
//! operation of a kind lists the `fieldValidation` query parameter, kubectl
//! leaves validation to the server; otherwise it validates client side
//! against the Swagger 2.0 definitions. Only the main resource paths are
//! published (no subresources, no deprecated `watch/` paths).

use serde_json::{json, Map, Value};

use crate::schemas::{list_name, DELETE_OPTIONS, PATCH, STATUS};
use crate::{registry, Kind, Options};

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Format {
    V2,
    V3,
}

impl Format {
    fn reference(self, name: &str) -> Value {
        match self {
            Format::V2 => json!({"$ref": format!("#/definitions/{name}")}),
            Format::V3 => json!({"$ref": format!("#/components/schemas/{name}")}),
        }
    }
}

struct Param {
    name: &'static str,
    location: &'static str,
    kind: &'static str,
    description: &'static str,
}

const PRETTY: Param = Param {
    name: "pretty",
    location: "query",
    kind: "string",
    description: "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
};
const NAMESPACE: Param = Param {
    name: "namespace",
    location: "path",
    kind: "string",
    description: "object name and auth scope, such as for teams and projects",
};
const NAME: Param = Param {
    name: "name",
    location: "path",
    kind: "string",
    description: "name of the resource",
};
const DRY_RUN: Param = Param {
    name: "dryRun",
    location: "query",
    kind: "string",
    description: "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
};
const FIELD_MANAGER: Param = Param {
    name: "fieldManager",
    location: "query",
    kind: "string",
    description: "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
};
const FIELD_VALIDATION: Param = Param {
    name: "fieldValidation",
    location: "query",
    kind: "string",
    description: "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
};
const FORCE: Param = Param {
    name: "force",
    location: "query",
    kind: "boolean",
    description: "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
};
const GRACE_PERIOD: Param = Param {
    name: "gracePeriodSeconds",
    location: "query",
    kind: "integer",
    description: "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.",
};
const PROPAGATION_POLICY: Param = Param {
    name: "propagationPolicy",
    location: "query",
    kind: "string",
    description: "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.",
};
const LIST_PARAMS: &[Param] = &[
    Param { name: "allowWatchBookmarks", location: "query", kind: "boolean", description: "allowWatchBookmarks requests watch events with type \"BOOKMARK\"." },
    Param { name: "continue", location: "query", kind: "string", description: "The continue option should be set when retrieving more results from the server." },
    Param { name: "fieldSelector", location: "query", kind: "string", description: "A selector to restrict the list of returned objects by their fields. Defaults to everything." },
    Param { name: "labelSelector", location: "query", kind: "string", description: "A selector to restrict the list of returned objects by their labels. Defaults to everything." },
    Param { name: "limit", location: "query", kind: "integer", description: "limit is a maximum number of responses to return for a list call." },
    Param { name: "resourceVersion", location: "query", kind: "string", description: "resourceVersion sets a constraint on what resource versions a request may be served from." },
    Param { name: "resourceVersionMatch", location: "query", kind: "string", description: "resourceVersionMatch determines how resourceVersion is applied to list calls." },
    Param { name: "sendInitialEvents", location: "query", kind: "boolean", description: "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection." },
    Param { name: "timeoutSeconds", location: "query", kind: "integer", description: "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity." },
    Param { name: "watch", location: "query", kind: "boolean", description: "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion." },
];

/// The patch types custom resources take: no strategic merge patch, so
/// kubectl's client-side apply sends them merge patches.
pub(crate) const CUSTOM_PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];
const PRODUCES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

struct Operation {
    method: &'static str,
    id: String,
    description: String,
    action: &'static str,
    params: Vec<&'static Param>,
    body: Option<String>,
    consumes: &'static [&'static str],
    responses: &'static [(&'static str, &'static str)],
    response: String,
}

const OK: &[(&str, &str)] = &[("200", "OK")];
const CREATED: &[(&str, &str)] = &[("200", "OK"), ("201", "Created"), ("202", "Accepted")];
const REPLACED: &[(&str, &str)] = &[("200", "OK"), ("201", "Created")];
const DELETED: &[(&str, &str)] = &[("200", "OK"), ("202", "Accepted")];

/// `Apps`, `Core`, `RbacAuthorization`: how upstream's operation ids name a group.
fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".to_string();
    }
    group
        .trim_end_matches(".k8s.io")
        .split('.')
        .map(capitalize)
        .collect()
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `api/v1` or `apis/apps/v1`: a group/version's path under `/openapi/v3`.
pub fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The path items of one resource, keyed by URL path.
pub(crate) fn resource_paths(
    kind: &Kind,
    options: &Options,
    format: Format,
) -> Vec<(String, Value)> {
    let Some(entry) = registry::TYPES
        .iter()
        .find(|t| t.group == kind.group && t.version == kind.version && t.kind == kind.kind)
    else {
        return Vec::new();
    };
    let name = (entry.schema_name)().into_owned();
    resource_paths_named(kind, name, list_name(entry), PATCH_TYPES, options, format)
}

/// The path items of one resource whose kind and list are the definitions
/// `name` and `list` (custom resources name theirs themselves).
pub(crate) fn resource_paths_named(
    kind: &Kind,
    name: String,
    list: Option<String>,
    patch_types: &'static [&'static str],
    options: &Options,
    format: Format,
) -> Vec<(String, Value)> {
    let verb = |v: &str| kind.verbs.contains(&v);
    let id = |prefix: &str, namespaced: bool, suffix: &str| {
        format!(
            "{prefix}{}{}{}{}{suffix}",
            group_camel(kind.group),
            capitalize(kind.version),
            if namespaced { "Namespaced" } else { "" },
            kind.kind
        )
    };
    let root = format!("/{}", group_version_path(kind.group, kind.version));
    let collection = if kind.namespaced {
        format!("{root}/namespaces/{{namespace}}/{}", kind.resource)
    } else {
        format!("{root}/{}", kind.resource)
    };
    let scope: Vec<&'static Param> = if kind.namespaced {
        vec![&NAMESPACE, &PRETTY]
    } else {
        vec![&PRETTY]
    };
    let mut write_params: Vec<&'static Param> = vec![&DRY_RUN, &FIELD_MANAGER];
    if options.field_validation {
        write_params.push(&FIELD_VALIDATION);
    }

    let mut out = Vec::new();
    let mut collection_ops = Vec::new();
    if let Some(list) = list.as_ref().filter(|_| verb("list")) {
        collection_ops.push(Operation {
            method: "get",
            id: id("list", kind.namespaced, ""),
            description: format!("list or watch objects of kind {}", kind.kind),
            action: "list",
            params: LIST_PARAMS.iter().collect(),
            body: None,
            consumes: &["*/*"],
            responses: OK,
            response: list.clone(),
        });
    }
    if verb("create") {
        collection_ops.push(Operation {
            method: "post",
            id: id("create", kind.namespaced, ""),
            description: format!("create a {}", kind.kind),
            action: "post",
            params: write_params.clone(),
            body: Some(name.clone()),
            consumes: &["*/*"],
            responses: CREATED,
            response: name.clone(),
        });
    }
    if verb("deletecollection") {
        let mut params: Vec<&'static Param> = LIST_PARAMS.iter().collect();
        params.extend([&DRY_RUN, &GRACE_PERIOD, &PROPAGATION_POLICY]);
        collection_ops.push(Operation {
            method: "delete",
            id: id("deleteCollection", kind.namespaced, ""),
            description: format!("delete collection of {}", kind.kind),
            action: "deletecollection",
            params,
            body: Some(DELETE_OPTIONS.to_string()),
            consumes: &["*/*"],
            responses: OK,
            response: STATUS.to_string(),
        });
    }
    if !collection_ops.is_empty() {
        out.push((
            collection.clone(),
            path_item(kind, &scope, collection_ops, format),
        ));
    }

    let mut item_ops = Vec::new();
    if verb("get") {
        item_ops.push(Operation {
            method: "get",
            id: id("read", kind.namespaced, ""),
            description: format!("read the specified {}", kind.kind),
            action: "get",
            params: Vec::new(),
            body: None,
            consumes: &["*/*"],
            responses: OK,
            response: name.clone(),
        });
    }
    if verb("update") {
        item_ops.push(Operation {
            method: "put",
            id: id("replace", kind.namespaced, ""),
            description: format!("replace the specified {}", kind.kind),
            action: "put",
            params: write_params.clone(),
            body: Some(name.clone()),
            consumes: &["*/*"],
            responses: REPLACED,
            response: name.clone(),
        });
    }
    if verb("patch") {
        let mut params = write_params.clone();
        params.push(&FORCE);
        item_ops.push(Operation {
            method: "patch",
            id: id("patch", kind.namespaced, ""),
            description: format!("partially update the specified {}", kind.kind),
            action: "patch",
            params,
            body: Some(PATCH.to_string()),
            consumes: patch_types,
            responses: REPLACED,
            response: name.clone(),
        });
    }
    if verb("delete") {
        item_ops.push(Operation {
            method: "delete",
            id: id("delete", kind.namespaced, ""),
            description: format!("delete a {}", kind.kind),
            action: "delete",
            params: vec![&DRY_RUN, &GRACE_PERIOD, &PROPAGATION_POLICY],
            body: Some(DELETE_OPTIONS.to_string()),
            consumes: &["*/*"],
            responses: DELETED,
            response: STATUS.to_string(),
        });
    }
    if !item_ops.is_empty() {
        let mut item_scope = vec![&NAME];
        item_scope.extend(scope.iter().copied());
        out.push((
            format!("{collection}/{{name}}"),
            path_item(kind, &item_scope, item_ops, format),
        ));
    }

    if let Some(list) = list.as_ref().filter(|_| kind.namespaced && verb("list")) {
        let all = Operation {
            method: "get",
            id: id("list", false, "ForAllNamespaces"),
            description: format!("list or watch objects of kind {}", kind.kind),
            action: "list",
            params: Vec::new(),
            body: None,
            consumes: &["*/*"],
            responses: OK,
            response: list.clone(),
        };
        let mut params: Vec<&'static Param> = LIST_PARAMS.iter().collect();
        params.push(&PRETTY);
        out.push((
            format!("{root}/{}", kind.resource),
            path_item(kind, &params, vec![all], format),
        ));
    }
    out
}

fn tag(kind: &Kind) -> String {
    let group = if kind.group.is_empty() {
        "core".to_string()
    } else {
        kind.group.trim_end_matches(".k8s.io").replace('.', "")
    };
    format!("{group}_{}", kind.version)
}

fn parameter(param: &Param, format: Format) -> Value {
    let mut p = Map::new();
    p.insert("description".into(), param.description.into());
    p.insert("in".into(), param.location.into());
    p.insert("name".into(), param.name.into());
    if param.location == "path" {
        p.insert("required".into(), true.into());
    }
    match format {
        Format::V2 => {
            p.insert("type".into(), param.kind.into());
            p.insert("uniqueItems".into(), true.into());
        }
        Format::V3 => {
            p.insert(
                "schema".into(),
                json!({"type": param.kind, "uniqueItems": true}),
            );
        }
    }
    Value::Object(p)
}

fn path_item(
    kind: &Kind,
    scope: &[&'static Param],
    operations: Vec<Operation>,
    format: Format,
) -> Value {
    let mut item = Map::new();
    let gvk = json!({"group": kind.group, "kind": kind.kind, "version": kind.version});
    for op in operations {
        let mut o = Map::new();
        o.insert("description".into(), op.description.into());
        o.insert("operationId".into(), op.id.into());
        let mut params: Vec<Value> = op.params.iter().map(|p| parameter(p, format)).collect();
        let mut responses = Map::new();
        for (code, text) in op.responses {
            let response = match format {
                Format::V2 => {
                    json!({"description": text, "schema": format.reference(&op.response)})
                }
                Format::V3 => json!({
                    "description": text,
                    "content": {"application/json": {"schema": format.reference(&op.response)}},
                }),
            };
            responses.insert((*code).into(), response);
        }
        responses.insert("401".into(), json!({"description": "Unauthorized"}));
        match format {
            Format::V2 => {
                if let Some(body) = &op.body {
                    params.insert(
                        0,
                        json!({"in": "body", "name": "body", "required": op.method != "delete", "schema": format.reference(body)}),
                    );
                }
                o.insert("consumes".into(), json!(op.consumes));
                o.insert("produces".into(), json!(PRODUCES));
                o.insert("schemes".into(), json!(["https"]));
            }
            Format::V3 => {
                if let Some(body) = &op.body {
                    let content: Map<String, Value> = op
                        .consumes
                        .iter()
                        .map(|mime| {
                            (
                                (*mime).to_string(),
                                json!({"schema": format.reference(body)}),
                            )
                        })
                        .collect();
                    let mut request = json!({"content": content});
                    if op.method != "delete" {
                        request["required"] = true.into();
                    }
                    o.insert("requestBody".into(), request);
                }
            }
        }
        if !params.is_empty() {
            o.insert("parameters".into(), Value::Array(params));
        }
        o.insert("responses".into(), Value::Object(responses));
        o.insert("tags".into(), json!([tag(kind)]));
        o.insert("x-kubernetes-action".into(), op.action.into());
        o.insert("x-kubernetes-group-version-kind".into(), gvk.clone());
        item.insert(op.method.into(), Value::Object(o));
    }
    item.insert(
        "parameters".into(),
        Value::Array(scope.iter().map(|p| parameter(p, format)).collect()),
    );
    Value::Object(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_name_groups_the_upstream_way() {
        assert_eq!(group_camel(""), "Core");
        assert_eq!(group_camel("apps"), "Apps");
        assert_eq!(
            group_camel("rbac.authorization.k8s.io"),
            "RbacAuthorization"
        );
        assert_eq!(
            group_camel("flowcontrol.apiserver.k8s.io"),
            "FlowcontrolApiserver"
        );
    }
}
