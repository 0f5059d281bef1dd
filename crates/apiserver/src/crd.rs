//! CustomResourceDefinitions: each served version of a definition becomes
//! a resource of the server's [`Catalog`], with its OpenAPI v3 schema
//! (validation, pruning of unknown fields, defaults), its status and scale
//! subresources and its printer columns. A controller inside the server
//! keeps the catalog in step with the stored definitions, marks them
//! Established, and deletes a definition's objects when it is deleted.
//!
//! Resource descriptions are `&'static` like the built-in table; a
//! definition's strings are interned once per distinct definition, so the
//! memory kept is bounded by the definitions ever served, not by updates.

pub mod schema;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::registry::{finalizers, ListOptions, Registry};
use crate::resources::{Catalog, ResourceInfo, Subresource, ALL_VERBS, GET_PATCH_UPDATE};
use crate::status::{ApiResult, Cause};
use crate::strategy::{NameRule, Strategy};

/// The finalizer that makes deleting a definition delete its objects first.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// The scale subresource's paths.
#[derive(Clone, Debug)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// One served version of a definition.
#[derive(Debug)]
pub struct CustomVersion {
    pub info: &'static ResourceInfo,
    pub schema: Option<Value>,
    pub status: bool,
    pub scale: Option<ScalePaths>,
    /// `additionalPrinterColumns` as the definition gives them.
    pub columns: Vec<Value>,
    /// The `Warning` a deprecated version answers every request with.
    pub deprecation_warning: Option<String>,
}

impl CustomVersion {
    /// How the OpenAPI documents publish this version.
    pub fn openapi_kind(&self) -> openapi::CustomKind {
        let r = self.info;
        openapi::CustomKind {
            kind: r.openapi_kind(),
            list_kind: r.list_kind,
            schema: self.schema.clone(),
            preserve_unknown_fields: false,
            scale: self.scale.is_some(),
        }
    }
}

/// The custom resources a server serves, by (group, version, plural).
#[derive(Default)]
pub struct CustomResources {
    versions: RwLock<HashMap<(String, String, String), Arc<CustomVersion>>>,
}

impl CustomResources {
    pub fn get(&self, r: &ResourceInfo) -> Option<Arc<CustomVersion>> {
        self.versions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(
                r.group.to_string(),
                r.version.to_string(),
                r.resource.to_string(),
            ))
            .cloned()
    }

    fn set(&self, all: Vec<Arc<CustomVersion>>) {
        let map = all
            .into_iter()
            .map(|v| {
                (
                    (
                        v.info.group.to_string(),
                        v.info.version.to_string(),
                        v.info.resource.to_string(),
                    ),
                    v,
                )
            })
            .collect();
        *self.versions.write().unwrap_or_else(|p| p.into_inner()) = map;
    }
}

fn interned() -> &'static Mutex<HashMap<String, &'static ResourceInfo>> {
    static CACHE: std::sync::OnceLock<Mutex<HashMap<String, &'static ResourceInfo>>> =
        std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn leak_list(items: &[String]) -> &'static [&'static str] {
    Box::leak(
        items
            .iter()
            .map(|s| leak(s))
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    )
}

#[allow(clippy::too_many_arguments)]
fn resource_info(
    group: &str,
    version: &str,
    plural: &str,
    singular: &str,
    kind: &str,
    list_kind: &str,
    namespaced: bool,
    short_names: &[String],
    categories: &[String],
    status: bool,
    scale: bool,
) -> &'static ResourceInfo {
    let key = format!(
        "{group}|{version}|{plural}|{singular}|{kind}|{list_kind}|{namespaced}|{}|{}|{status}|{scale}",
        short_names.join(","),
        categories.join(",")
    );
    let mut cache = interned().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = cache.get(&key) {
        return r;
    }
    let mut subs = Vec::new();
    if scale {
        subs.push(Subresource {
            name: "scale",
            kind: Some("Scale"),
            kind_group_version: Some(("autoscaling", "v1")),
            verbs: GET_PATCH_UPDATE,
        });
    }
    if status {
        subs.push(Subresource {
            name: "status",
            kind: None,
            kind_group_version: None,
            verbs: GET_PATCH_UPDATE,
        });
    }
    let info: &'static ResourceInfo = Box::leak(Box::new(ResourceInfo {
        group: leak(group),
        version: leak(version),
        resource: leak(plural),
        singular: leak(singular),
        kind: leak(kind),
        list_kind: leak(list_kind),
        namespaced,
        verbs: ALL_VERBS,
        short_names: leak_list(short_names),
        categories: leak_list(categories),
        subresources: Box::leak(subs.into_boxed_slice()),
    }));
    cache.insert(key, info);
    info
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The served versions of one definition.
pub fn served_versions(crd: &Value) -> Vec<Arc<CustomVersion>> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or("");
    let names = &spec["names"];
    let plural = names["plural"].as_str().unwrap_or("");
    let kind = names["kind"].as_str().unwrap_or("");
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return Vec::new();
    }
    let singular = names["singular"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let list_kind = names["listKind"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{kind}List"));
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let short_names = strings(names.get("shortNames"));
    let categories = strings(names.get("categories"));
    let mut out = Vec::new();
    for v in spec["versions"].as_array().cloned().unwrap_or_default() {
        if v["served"].as_bool() == Some(false) {
            continue;
        }
        let Some(version) = v["name"].as_str() else {
            continue;
        };
        let status = v.pointer("/subresources/status").is_some();
        let scale = v.pointer("/subresources/scale").map(|s| ScalePaths {
            spec_replicas: s["specReplicasPath"]
                .as_str()
                .unwrap_or(".spec.replicas")
                .to_string(),
            status_replicas: s["statusReplicasPath"]
                .as_str()
                .unwrap_or(".status.replicas")
                .to_string(),
            label_selector: s["labelSelectorPath"].as_str().map(str::to_string),
        });
        let columns = v["additionalPrinterColumns"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let info = resource_info(
            group,
            version,
            plural,
            &singular,
            kind,
            &list_kind,
            namespaced,
            &short_names,
            &categories,
            status,
            scale.is_some(),
        );
        let deprecation_warning = (v["deprecated"].as_bool() == Some(true)).then(|| {
            v["deprecationWarning"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| default_deprecation_warning(version, spec))
        });
        out.push(Arc::new(CustomVersion {
            info,
            schema: v.pointer("/schema/openAPIV3Schema").cloned(),
            status,
            scale,
            columns,
            deprecation_warning,
        }));
    }
    out
}

/// Kubernetes' version order: GA before beta before alpha before anything
/// else, then by major and minor number (upstream's
/// `CompareKubeAwareVersionStrings`; greater is more stable or newer).
pub fn compare_kube_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn parse(v: &str) -> Option<(u32, u64, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: u64 = rest[..digits].parse().ok().filter(|m| *m > 0)?;
        let rest = &rest[digits..];
        if rest.is_empty() {
            return Some((2, major, 0));
        }
        let (rank, minor) = if let Some(m) = rest.strip_prefix("beta") {
            (1, m)
        } else {
            (0, rest.strip_prefix("alpha")?)
        };
        let minor: u64 = minor.parse().ok().filter(|m| *m > 0)?;
        Some((rank, major, minor))
    }
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (None, None) => b.cmp(a),
    }
}

/// upstream's `defaultDeprecationWarning`: names the newest served version
/// that is not deprecated, when there is one newer than this.
fn default_deprecation_warning(version: &str, spec: &Value) -> String {
    let group = spec["group"].as_str().unwrap_or("");
    let kind = spec
        .pointer("/names/kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut msg = format!("{group}/{version} {kind} is deprecated");
    let newest = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"].as_bool() == Some(true) && v["deprecated"].as_bool() != Some(true))
        .filter_map(|v| v["name"].as_str())
        .filter(|n| compare_kube_versions(version, n) == std::cmp::Ordering::Less)
        .max_by(|a, b| compare_kube_versions(a, b));
    if let Some(newest) = newest {
        msg.push_str(&format!("; use {group}/{newest} {kind}"));
    }
    msg
}

/// How the definition's resource converts between its versions, keyed by
/// (group, plural); `None` for a definition with one version.
fn conversion_of(
    crd: &Value,
    versions: &[Arc<CustomVersion>],
    services: &[(String, String, String)],
) -> Option<((String, String), crate::convert::CustomConversion)> {
    let spec = &crd["spec"];
    let all = spec["versions"].as_array()?;
    if all.len() < 2 {
        return None;
    }
    let group = spec["group"].as_str()?.to_string();
    let plural = spec.pointer("/names/plural")?.as_str()?.to_string();
    let storage = all.iter().find(|v| v["storage"].as_bool() == Some(true))?["name"].as_str()?;
    let storage_info = versions
        .iter()
        .find(|v| v.info.version == storage)
        .map(|v| v.info);
    let webhook_error = (spec.pointer("/conversion/strategy").and_then(Value::as_str)
        == Some("Webhook"))
    .then(|| webhook_error(spec.pointer("/conversion/webhook/clientConfig"), services));
    Some((
        (group, plural),
        crate::convert::CustomConversion {
            kind: spec.pointer("/names/kind")?.as_str()?.to_string(),
            storage: leak(storage),
            storage_info,
            webhook_error,
        },
    ))
}

/// Why a conversion webhook cannot be called, in the words of upstream's
/// webhook client. This server does not call conversion webhooks: a
/// missing service is named as such, one that exists (or a URL) refuses the
/// connection. `services` are (namespace, name, clusterIP); the controller
/// reconciles again when they change.
fn webhook_error(config: Option<&Value>, services: &[(String, String, String)]) -> String {
    let config = config.cloned().unwrap_or(Value::Null);
    if let Some(url) = config["url"].as_str() {
        let host = url
            .split("://")
            .nth(1)
            .unwrap_or(url)
            .split('/')
            .next()
            .unwrap_or("");
        let host = if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:443")
        };
        return format!("Post \"{url}?timeout=30s\": dial tcp {host}: connect: connection refused");
    }
    let svc = &config["service"];
    let name = svc["name"].as_str().unwrap_or("");
    let namespace = svc["namespace"].as_str().unwrap_or("");
    let port = svc["port"].as_i64().unwrap_or(443);
    let path = svc["path"].as_str().unwrap_or("");
    let url = format!("https://{name}.{namespace}.svc:{port}{path}?timeout=30s");
    match services
        .iter()
        .find(|(ns, n, _)| ns == namespace && n == name)
    {
        // A service without endpoints refuses connections to its address.
        Some((_, _, ip)) if !ip.is_empty() && ip != "None" => {
            format!("Post \"{url}\": dial tcp {ip}:{port}: connect: connection refused")
        }
        Some(_) => format!(
            "Post \"{url}\": dial tcp {name}.{namespace}.svc:{port}: connect: connection refused"
        ),
        None => format!("Post \"{url}\": service \"{name}\" not found"),
    }
}

/// `spec.conversion` as upstream's validation wants it: a webhook exactly
/// when the strategy is `Webhook`, and the review versions it speaks.
fn validate_conversion(conversion: &Value) -> Vec<Cause> {
    let mut c = Vec::new();
    let strategy = conversion["strategy"].as_str();
    let webhook = conversion.get("webhook").filter(|w| !w.is_null());
    match strategy {
        None | Some("None") => {
            if webhook.is_some() {
                c.push(Cause {
                    reason: "FieldValueForbidden".into(),
                    message: "Forbidden: should not be set when strategy is not set to Webhook"
                        .into(),
                    field: "spec.conversion.webhook".into(),
                });
            }
        }
        Some("Webhook") => match webhook {
            None => c.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: required when strategy is set to Webhook".into(),
                field: "spec.conversion.webhook".into(),
            }),
            Some(w) => {
                if w["conversionReviewVersions"]
                    .as_array()
                    .is_none_or(|v| v.is_empty())
                {
                    c.push(required("spec.conversion.webhook.conversionReviewVersions"));
                }
                let config = &w["clientConfig"];
                if config["url"].is_null() == config["service"].is_null() {
                    c.push(required("spec.conversion.webhook.clientConfig"));
                }
            }
        },
        Some(other) => c.push(Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!(
                "Unsupported value: {other:?}: supported values: \"None\", \"Webhook\""
            ),
            field: "spec.conversion.strategy".into(),
        }),
    }
    c
}

/// Validation and defaults of the definitions themselves.
pub struct Definitions;

fn required(field: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired".into(),
        message: "Required value".into(),
        field: field.into(),
    }
}

fn invalid(field: &str, value: &Value, detail: &str) -> Cause {
    let shown = match value {
        Value::String(s) => format!("{s:?}"),
        v => v.to_string(),
    };
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {shown}: {detail}"),
        field: field.into(),
    }
}

impl Strategy for Definitions {
    fn has_generation(&self) -> bool {
        true
    }

    fn status_is_subresource(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        let stored: Vec<String> = storage_version(obj).into_iter().collect();
        obj["status"] = json!({ "acceptedNames": { "kind": "", "plural": "" }, "conditions": [], "storedVersions": stored });
        if let Some(names) = obj
            .pointer_mut("/spec/names")
            .and_then(Value::as_object_mut)
        {
            let kind = names
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if !kind.is_empty() {
                names
                    .entry("singular")
                    .or_insert_with(|| json!(kind.to_lowercase()));
                names
                    .entry("listKind")
                    .or_insert_with(|| json!(format!("{kind}List")));
            }
        }
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            spec.entry("conversion")
                .or_insert_with(|| json!({ "strategy": "None" }));
        }
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut c = Vec::new();
        let spec = &obj["spec"];
        let group = spec["group"].as_str().unwrap_or("");
        let plural = spec
            .pointer("/names/plural")
            .and_then(Value::as_str)
            .unwrap_or("");
        if group.is_empty() {
            c.push(required("spec.group"));
        } else if !group.contains('.') {
            c.push(invalid(
                "spec.group",
                &json!(group),
                "should be a domain with at least one dot",
            ));
        }
        if plural.is_empty() {
            c.push(required("spec.names.plural"));
        }
        if spec
            .pointer("/names/kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            c.push(required("spec.names.kind"));
        }
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
            c.push(invalid(
                "metadata.name",
                &json!(name),
                "must be spec.names.plural+\".\"+spec.group",
            ));
        }
        match spec["scope"].as_str() {
            Some("Namespaced") | Some("Cluster") => {}
            None => c.push(required("spec.scope")),
            Some(s) => c.push(Cause {
                reason: "FieldValueNotSupported".into(),
                message: format!(
                    "Unsupported value: {s:?}: supported values: \"Cluster\", \"Namespaced\""
                ),
                field: "spec.scope".into(),
            }),
        }
        c.extend(validate_conversion(&spec["conversion"]));
        let versions = spec["versions"].as_array().cloned().unwrap_or_default();
        if versions.is_empty() {
            c.push(invalid(
                "spec.versions",
                &json!(null),
                "must have exactly one version marked as storage version",
            ));
        } else {
            let storage = versions
                .iter()
                .filter(|v| v["storage"].as_bool() == Some(true))
                .count();
            if storage != 1 {
                c.push(invalid(
                    "spec.versions",
                    &json!(versions.len()),
                    "must have exactly one version marked as storage version",
                ));
            }
            for (i, v) in versions.iter().enumerate() {
                if v["name"].as_str().unwrap_or("").is_empty() {
                    c.push(required(&format!("spec.versions[{i}].name")));
                }
                if v.pointer("/schema/openAPIV3Schema").is_none() {
                    c.push(Cause {
                        reason: "FieldValueRequired".into(),
                        message: "Required value: schemas are required".into(),
                        field: format!("spec.versions[{i}].schema.openAPIV3Schema"),
                    });
                }
            }
        }
        c
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        // A new storage version joins status.storedVersions (upstream's
        // PrepareForUpdate).
        if let Some(storage) = storage_version(new).filter(|s| !is_stored(new, s)) {
            if let Some(stored) = new
                .pointer_mut("/status/storedVersions")
                .and_then(Value::as_array_mut)
            {
                stored.push(json!(storage));
            }
        }
        if let (Some(n), Some(o)) = (new.pointer_mut("/spec/names"), old.pointer("/spec/names")) {
            if let (Some(n), Some(o)) = (n.as_object_mut(), o.as_object()) {
                for f in ["singular", "listKind"] {
                    if !n.contains_key(f) {
                        if let Some(v) = o.get(f) {
                            n.insert(f.into(), v.clone());
                        }
                    }
                }
            }
        }
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut c = self.validate(new);
        if new["spec"]["group"] != old["spec"]["group"] {
            c.push(invalid(
                "spec.group",
                &new["spec"]["group"],
                "field is immutable",
            ));
        }
        // Objects may be stored in any version ever marked storage: none
        // of those may go (upstream's ValidateCustomResourceDefinitionStoredVersions).
        let versions: Vec<&str> = new
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .map(|vs| vs.iter().filter_map(|v| v["name"].as_str()).collect())
            .unwrap_or_default();
        for (i, stored) in new
            .pointer("/status/storedVersions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if !stored.as_str().is_some_and(|s| versions.contains(&s)) {
                c.push(invalid(
                    &format!("status.storedVersions[{i}]"),
                    stored,
                    "must appear in spec.versions",
                ));
            }
        }
        if new.pointer("/spec/names/plural") != old.pointer("/spec/names/plural") {
            c.push(invalid(
                "spec.names.plural",
                new.pointer("/spec/names/plural").unwrap_or(&Value::Null),
                "field is immutable",
            ));
        }
        c
    }
}

/// Behaviour of the objects of one custom resource version.
pub struct CustomStrategy(pub Arc<CustomVersion>);

impl Strategy for CustomStrategy {
    fn has_generation(&self) -> bool {
        true
    }

    fn status_is_subresource(&self) -> bool {
        self.0.status
    }

    /// A status update of a custom resource writes its status alone.
    fn status_kept_metadata(&self) -> Option<&'static [&'static str]> {
        None
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if self.0.status {
            if let Some(o) = obj.as_object_mut() {
                o.remove("status");
            }
        }
        if let Some(s) = &self.0.schema {
            schema::prune_and_default(s, obj);
        }
    }

    fn prepare_for_update(&self, new: &mut Value, _old: &Value) {
        if let Some(s) = &self.0.schema {
            schema::prune_and_default(s, new);
        }
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        match &self.0.schema {
            Some(s) => schema::validate(s, obj),
            None => Vec::new(),
        }
    }

    fn name_rule(&self) -> NameRule {
        NameRule::Subdomain
    }
}

fn definitions() -> &'static ResourceInfo {
    crate::resources::lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .expect("CRDs are served")
}

/// Marks a definition Established with its names accepted (once).
fn established_status(crd: &mut Value) {
    let now = crate::registry::now_rfc3339();
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let storage: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter(|v| v["storage"].as_bool() == Some(true))
                .map(|v| v["name"].clone())
                .collect()
        })
        .unwrap_or_default();
    let mut stored: Vec<Value> = crd
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for s in storage {
        if !stored.contains(&s) {
            stored.push(s);
        }
    }
    crd["status"] = json!({
        "acceptedNames": names,
        "conditions": [
            { "type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found" },
            { "type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted" },
        ],
        "storedVersions": stored,
    });
}

fn storage_version(crd: &Value) -> Option<String> {
    crd.pointer("/spec/versions")?
        .as_array()?
        .iter()
        .find(|v| v["storage"].as_bool() == Some(true))?["name"]
        .as_str()
        .map(str::to_string)
}

fn is_stored(crd: &Value, version: &str) -> bool {
    crd.pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|v| v == version))
}

fn is_established(crd: &Value) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        })
        && crd.pointer("/status/acceptedNames") == crd.pointer("/spec/names")
}

/// Brings the catalog and the definitions' status in line with what is
/// stored, and finishes deletions.
async fn reconcile(
    reg: &Registry,
    catalog: &Catalog,
    customs: &CustomResources,
) -> ApiResult<(store::Revision, bool)> {
    let list = reg
        .list(definitions(), None, &ListOptions::default(), &|_| true)
        .await?;
    let rv: i64 = list["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut served = Vec::new();
    let mut conversions = Vec::new();
    // The services conversion webhooks may name.
    let services: Vec<(String, String, String)> =
        match crate::resources::lookup("", "v1", "services") {
            Some(svc) => reg
                .list(svc, None, &ListOptions::default(), &|_| true)
                .await?["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    let meta = &s["metadata"];
                    (
                        meta["namespace"].as_str().unwrap_or("").to_string(),
                        meta["name"].as_str().unwrap_or("").to_string(),
                        s.pointer("/spec/clusterIP")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                    )
                })
                .collect(),
            None => Vec::new(),
        };
    for crd in list["items"].as_array().cloned().unwrap_or_default() {
        let name = crd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let versions = served_versions(&crd);
        if crd.pointer("/metadata/deletionTimestamp").is_some() {
            if finalizers(&crd).iter().any(|f| f == CLEANUP_FINALIZER) {
                // Delete every object of the definition, then let it go.
                if let Some(v) = versions.first() {
                    let prefix = v.info.storage_prefix();
                    let objs = reg
                        .store()
                        .range(store::RangeRequest {
                            prefix: prefix.into_bytes(),
                            ..Default::default()
                        })
                        .await
                        .map_err(crate::status::ApiError::internal)?;
                    for kv in objs.kvs {
                        let _ = reg.store().delete(&kv.key, None).await;
                    }
                }
                let updated = reg
                    .guaranteed_update(definitions(), None, &name, |o| {
                        let rest: Vec<String> = finalizers(o)
                            .into_iter()
                            .filter(|f| f != CLEANUP_FINALIZER)
                            .collect();
                        o["metadata"]["finalizers"] = json!(rest);
                        Ok(())
                    })
                    .await?;
                if finalizers(&updated).is_empty() {
                    let key = Registry::key(definitions(), None, &name);
                    let _ = reg.store().delete(key.as_bytes(), None).await;
                }
            }
            continue;
        }
        if !is_established(&crd) && !versions.is_empty() {
            reg.guaranteed_update(definitions(), None, &name, |o| {
                established_status(o);
                Ok(())
            })
            .await?;
        }
        conversions.extend(conversion_of(&crd, &versions, &services));
        served.extend(versions);
    }
    crate::convert::set_custom(conversions);
    catalog.set_custom(served.iter().map(|v| v.info).collect());
    if let Some(openapi) = reg.schemas() {
        openapi.set_custom(served.iter().map(|v| v.openapi_kind()).collect());
    }
    customs.set(served);
    let webhook_services = list["items"].as_array().into_iter().flatten().any(|crd| {
        crd.pointer("/spec/conversion/webhook/clientConfig/service")
            .is_some_and(|s| !s.is_null())
    });
    Ok((rv, webhook_services))
}

/// Runs until the server stops: lists definitions, watches for changes,
/// reconciles after each.
pub async fn run_controller(
    reg: Arc<Registry>,
    catalog: Arc<Catalog>,
    customs: Arc<CustomResources>,
) {
    loop {
        let (rv, webhook_services) = match reconcile(&reg, &catalog, &customs).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "reconciling custom resource definitions failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let prefix = definitions().storage_prefix();
        let mut watch = match reg.store().watch(prefix.as_bytes(), rv).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "watching custom resource definitions failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Conversion webhooks name services: their coming and going
        // changes how conversions fail.
        let services = crate::resources::lookup("", "v1", "services")
            .map(|s| s.storage_prefix())
            .filter(|_| webhook_services);
        let mut service_watch = match services {
            Some(prefix) => reg.store().watch(prefix.as_bytes(), rv).await.ok(),
            None => None,
        };
        let service_change = async {
            match service_watch.as_mut() {
                Some(w) => {
                    w.next().await;
                }
                None => futures::future::pending::<()>().await,
            }
        };
        // Any change (or the end of the watch) means: reconcile again.
        tokio::select! {
            next = watch.next() => match next {
                Some(Ok(_)) => {}
                Some(Err(e)) => tracing::debug!(error = %e, "definition watch ended"),
                None => tokio::time::sleep(Duration::from_millis(200)).await,
            },
            _ = service_change => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "metadata": { "name": "widgets.example.com" },
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": { "plural": "widgets", "kind": "Widget", "shortNames": ["wd"] },
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": { "openAPIV3Schema": { "type": "object" } },
                    "subresources": { "status": {}, "scale": { "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas" } },
                    "additionalPrinterColumns": [{ "name": "Size", "type": "integer", "jsonPath": ".spec.size" }],
                }],
            },
        })
    }

    #[test]
    fn a_definition_serves_its_versions_with_names_and_subresources() {
        let vs = served_versions(&crd());
        assert_eq!(vs.len(), 1);
        let r = vs[0].info;
        assert_eq!(
            (
                r.group,
                r.version,
                r.resource,
                r.kind,
                r.singular,
                r.list_kind
            ),
            (
                "example.com",
                "v1",
                "widgets",
                "Widget",
                "widget",
                "WidgetList"
            )
        );
        assert_eq!(r.short_names, ["wd"]);
        assert!(r.subresource("status").is_some() && r.subresource("scale").is_some());
        // The same definition twice reuses the interned description.
        assert!(std::ptr::eq(served_versions(&crd())[0].info, r));
    }

    #[test]
    fn deprecated_versions_point_at_the_newest_stable_one() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_kube_versions("v1", "v1beta1"), Greater);
        assert_eq!(compare_kube_versions("v1beta2", "v1beta1"), Greater);
        assert_eq!(compare_kube_versions("v1alpha1", "v1beta1"), Less);
        assert_eq!(compare_kube_versions("foo", "v1alpha1"), Less);
        let spec = json!({"group": "example.com", "names": {"kind": "Gizmo"}, "versions": [
            {"name": "v1beta1", "served": true, "deprecated": true},
            {"name": "v1", "served": true},
            {"name": "v2", "served": false},
        ]});
        assert_eq!(
            default_deprecation_warning("v1beta1", &spec),
            "example.com/v1beta1 Gizmo is deprecated; use example.com/v1 Gizmo"
        );
        assert_eq!(
            default_deprecation_warning("v1", &spec),
            "example.com/v1 Gizmo is deprecated"
        );
    }

    #[test]
    fn definitions_are_validated_like_upstream() {
        let mut bad = crd();
        bad["metadata"]["name"] = json!("wrong");
        bad["spec"]["versions"][0]["storage"] = json!(false);
        let causes = Definitions.validate(&bad);
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert!(fields.contains(&"metadata.name"), "{causes:?}");
        assert!(fields.contains(&"spec.versions"), "{causes:?}");
        assert!(Definitions.validate(&crd()).is_empty());
    }

    #[test]
    fn a_webhook_conversion_needs_its_webhook() {
        let mut webhook = crd();
        webhook["spec"]["conversion"] = json!({"strategy": "Webhook"});
        let causes = Definitions.validate(&webhook);
        assert_eq!(causes[0].field, "spec.conversion.webhook");
        assert_eq!(
            causes[0].message,
            "Required value: required when strategy is set to Webhook"
        );
        webhook["spec"]["conversion"]["webhook"] = json!({"conversionReviewVersions": ["v1"],
            "clientConfig": {"service": {"namespace": "default", "name": "conv"}}});
        assert!(Definitions.validate(&webhook).is_empty());
        webhook["spec"]["conversion"]["strategy"] = json!("None");
        assert_eq!(
            Definitions.validate(&webhook)[0].message,
            "Forbidden: should not be set when strategy is not set to Webhook"
        );
    }
}
