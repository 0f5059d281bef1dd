//! The generic registry: create, get, list, update, delete and watch,
//! written once over the [`Store`] for every resource, with per-kind
//! behaviour from its [`Strategy`] (upstream's `genericregistry.Store`).
//!
//! Objects are stored as JSON without `metadata.resourceVersion`; the
//! store's revision of the key is the resource version.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use store::{keys, RangeRequest, Revision, Store, StoreError};

use crate::resources::ResourceInfo;
use crate::status::{from_store, ApiError, ApiResult, Cause};
use crate::strategy::{self, NameRule, Strategy};

/// The kinds of PATCH, by their content types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/json-patch+json` (RFC 6902)
    Json,
    /// `application/merge-patch+json` (RFC 7386)
    Merge,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply)
    Apply,
}

impl PatchKind {
    pub fn from_content_type(ct: &str) -> Option<PatchKind> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchKind::Apply)
            }
            _ => None,
        }
    }
}

/// Applies one patch to an object's JSON.
pub fn apply_patch(
    r: &ResourceInfo,
    kind: PatchKind,
    current: Value,
    patch: &Value,
) -> ApiResult<Value> {
    let name = meta_str(&current, "name").unwrap_or("").to_string();
    match kind {
        PatchKind::Json => {
            let p = api::patch::JsonPatch::from_value(patch).map_err(|e| json_patch_error(r, &name, e))?;
            p.apply(current).map_err(|e| json_patch_error(r, &name, e))
        }
        PatchKind::Merge => api::patch::merge_patch(current, patch.clone()).map_err(|e| ApiError::bad_request(e.to_string())),
        PatchKind::Strategic | PatchKind::Apply => {
            api::patch::strategic::strategic_merge_patch_for_kind(current, patch.clone(), r.group, r.version, r.kind)
                .map_err(|e| {
                    let code = e.status_code();
                    match code {
                        415 => ApiError::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")),
                        422 => ApiError::invalid(r, &name, vec![Cause { reason: "FieldValueInvalid".into(), message: e.to_string(), field: String::new() }]),
                        500 => ApiError::internal(e),
                        _ => ApiError::bad_request(e.to_string()),
                    }
                })
        }
    }
}

fn json_patch_error(r: &ResourceInfo, name: &str, e: api::patch::JsonPatchError) -> ApiError {
    use api::patch::JsonPatchError as E;
    match e {
        E::TooManyOperations { .. } => ApiError::new(413, "RequestEntityTooLarge", e.to_string()),
        E::Apply(_) => ApiError::invalid(
            r,
            name,
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: e.to_string(),
                field: String::new(),
            }],
        ),
        _ => ApiError::bad_request(e.to_string()),
    }
}

/// Largest request body accepted (upstream's 3 MiB).
pub const MAX_REQUEST_BYTES: usize = 3 * 1024 * 1024;

pub struct Registry {
    store: Arc<dyn Store>,
    admission: crate::admission::Chain,
    customs: Arc<crate::crd::CustomResources>,
    event_lease: tokio::sync::Mutex<Option<(store::LeaseId, std::time::Instant)>>,
    cache: Option<Arc<crate::cache::WatchCache>>,
    schemas: Option<Arc<openapi::OpenApi>>,
}

/// How long Events live (kube-apiserver's `--event-ttl` default).
pub const EVENT_TTL: std::time::Duration = std::time::Duration::from_secs(3600);
/// Events created within this window share one lease, as upstream's lease
/// manager reuses leases, so a burst of events does not make a lease each.
const EVENT_LEASE_REUSE: std::time::Duration = std::time::Duration::from_secs(60);

/// The pods subresource `kubectl debug` adds ephemeral containers through.
pub const EPHEMERAL_CONTAINERS: &str = "ephemeralcontainers";

fn is_event(r: &ResourceInfo) -> bool {
    r.resource == "events" && (r.group.is_empty() || r.group == "events.k8s.io")
}

/// Options shared by writes.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    /// Who is writing, for `metadata.managedFields` (`fieldManager`, or the
    /// client's program name); `None` leaves managed fields untouched.
    pub field_manager: Option<String>,
    /// Server-side apply takes over fields owned by others.
    pub force: bool,
    /// The object's managed fields were already computed (server-side
    /// apply): write them as they are.
    pub tracked: bool,
    /// What to do with fields a built-in kind does not declare; `None` for
    /// the server's own writes, which are not decoded from a client.
    pub field_validation: Option<FieldValidation>,
    /// Warnings for the client (`Warning` headers), filled while writing.
    pub warnings: Arc<std::sync::Mutex<Vec<String>>>,
    /// The request body's duplicated fields, when it has some (reported
    /// per `fieldValidation`).
    pub duplicates: Option<Arc<crate::duplicates::Duplicates>>,
    /// Set when a server-side apply created the object (answered 201).
    pub created: Arc<std::sync::atomic::AtomicBool>,
}

/// The `fieldValidation` parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop unknown fields silently.
    Ignore,
    /// Drop them and warn (upstream's default).
    #[default]
    Warn,
    /// Refuse the request.
    Strict,
}

impl FieldValidation {
    pub fn parse(v: Option<&str>) -> ApiResult<FieldValidation> {
        match v {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Invalid value: {other:?}: fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\""
            ))),
        }
    }
}

/// upstream's field errors as Status causes.
pub(crate) fn causes_of(errors: &api::ErrorList) -> Vec<Cause> {
    errors
        .iter()
        .map(|e| Cause {
            reason: e.error_type.reason().to_string(),
            message: e.error_body(),
            field: e.field.to_string(),
        })
        .collect()
}

/// Whether the per-kind defaults and validation of the `api` crate apply
/// (built-in kinds; custom resources use their schemas).
fn builtin(r: &ResourceInfo) -> bool {
    crate::resources::lookup(r.group, r.version, r.resource).is_some()
}

fn apply_error(e: api::apply::ApplyError) -> ApiError {
    let status = e.status();
    ApiError {
        code: e.code(),
        reason: match e.code() {
            409 => "Conflict",
            400 => "BadRequest",
            _ => "InternalError",
        },
        message: status["message"].as_str().unwrap_or("").to_string(),
        details: status.get("details").cloned(),
    }
}

/// Records in `new` which fields `manager` now owns (create, update,
/// non-apply patch), as upstream's field manager does on every write.
fn track(
    r: &ResourceInfo,
    old: Option<&Value>,
    new: &mut Value,
    opts: &WriteOptions,
    subresource: Option<&str>,
) {
    let Some(manager) = opts.field_manager.as_deref() else {
        return;
    };
    let now = now_rfc3339();
    let o = api::apply::ApplyOptions {
        manager,
        force: false,
        group: r.group,
        version: r.version,
        kind: r.kind,
        now: &now,
    };
    let status_reset: &[&[&str]] = &[&["status"]];
    let scope = api::apply::Scope {
        subresource: subresource.unwrap_or(""),
        reset_fields: if subresource.is_none() {
            status_reset
        } else {
            &[]
        },
        ..Default::default()
    };
    api::apply::track_update_in(old, new, &o, scope);
}

#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: usize,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

impl ListOptions {
    /// No label or field selector: upstream counts what a page leaves
    /// (`remainingItemCount`) only then, since the store's count includes
    /// objects a selector would drop.
    fn unfiltered(&self) -> bool {
        self.label_selector.as_deref().unwrap_or("").is_empty()
            && self.field_selector.as_deref().unwrap_or("").is_empty()
    }

    /// Whether the watch cache can answer: the latest state, whole.
    fn is_plain(&self) -> bool {
        self.continue_token.as_deref().unwrap_or("").is_empty()
            && self.limit == 0
            && self.resource_version_match.as_deref() != Some("Exact")
    }
}

/// An item of a list: shared with the watch cache, or decoded from the
/// store.
pub enum ListItem {
    Cached(Arc<crate::cache::Cached>),
    Decoded(Value),
}

/// A list whose items are shared with the watch cache where it could
/// answer; encoded without decoding them.
pub struct SharedList {
    pub kind: &'static str,
    pub api_version: String,
    pub revision: Revision,
    pub continue_token: Option<String>,
    /// `metadata.remainingItemCount`: set on a page of an unfiltered list.
    pub remaining_item_count: Option<i64>,
    pub items: Vec<ListItem>,
}

impl SharedList {
    fn metadata(&self) -> Value {
        let mut meta = json!({ "resourceVersion": self.revision.to_string() });
        if let Some(c) = &self.continue_token {
            meta["continue"] = json!(c);
        }
        if let Some(n) = self.remaining_item_count {
            meta["remainingItemCount"] = json!(n);
        }
        meta
    }

    /// The items, decoded.
    pub fn values(&self) -> Vec<Value> {
        self.items
            .iter()
            .map(|i| match i {
                ListItem::Cached(c) => c.value(),
                ListItem::Decoded(v) => v.clone(),
            })
            .collect()
    }

    /// The list as one decoded object.
    pub fn to_value(&self) -> Value {
        json!({
            "kind": self.kind,
            "apiVersion": self.api_version,
            "metadata": self.metadata(),
            "items": self.values(),
        })
    }

    /// The list as JSON, written from the items' encodings.
    pub fn to_json(&self) -> Vec<u8> {
        let cached: usize = self
            .items
            .iter()
            .map(|i| match i {
                ListItem::Cached(c) => c.bytes.len() + 1,
                ListItem::Decoded(_) => 1024,
            })
            .sum();
        let mut out = Vec::with_capacity(cached + 256);
        // Keys in the order serde_json writes a decoded list.
        out.extend_from_slice(b"{\"apiVersion\":");
        let _ = serde_json::to_writer(&mut out, &self.api_version);
        out.extend_from_slice(b",\"items\":[");
        for (n, item) in self.items.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            match item {
                ListItem::Cached(c) => out.extend_from_slice(&c.bytes),
                ListItem::Decoded(v) => {
                    let _ = serde_json::to_writer(&mut out, v);
                }
            }
        }
        out.extend_from_slice(b"],\"kind\":");
        let _ = serde_json::to_writer(&mut out, self.kind);
        out.extend_from_slice(b",\"metadata\":");
        let _ = serde_json::to_writer(&mut out, &self.metadata());
        out.push(b'}');
        out
    }
}

#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body (and the query parameters that may
    /// stand in for it).
    pub fn from_request(
        body: Option<&Value>,
        query: &crate::request::Query,
    ) -> ApiResult<DeleteOptions> {
        let mut o = DeleteOptions::default();
        if let Some(b) = body {
            o.grace_period_seconds = b.get("gracePeriodSeconds").and_then(Value::as_i64);
            o.propagation_policy = b
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_string);
            if o.propagation_policy.is_none() {
                // The deprecated flag, either way, overrides a kind's default.
                o.propagation_policy = match b.get("orphanDependents").and_then(Value::as_bool) {
                    Some(true) => Some("Orphan".into()),
                    Some(false) => Some("Background".into()),
                    None => None,
                };
            }
            if let Some(p) = b.get("preconditions") {
                o.precondition_uid = p.get("uid").and_then(Value::as_str).map(str::to_string);
                o.precondition_resource_version = p
                    .get("resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            o.dry_run = b
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v == "All"));
        }
        if let Some(g) = query.get("gracePeriodSeconds") {
            o.grace_period_seconds = Some(g.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid value for gracePeriodSeconds: {g:?}"))
            })?);
        }
        if let Some(p) = query.get("propagationPolicy") {
            o.propagation_policy = Some(p.to_string());
        }
        if query.get("dryRun") == Some("All") {
            o.dry_run = true;
        }
        if let Some(p) = &o.propagation_policy {
            if !["Orphan", "Background", "Foreground"].contains(&p.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                )));
            }
        }
        Ok(o)
    }
}

/// The continue token of a paged list, in upstream's shape.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: Revision,
    start: String,
}

fn encode_continue(rv: Revision, start: &str) -> String {
    let t = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv,
        start: start.to_string(),
    };
    base64::engine::general_purpose::URL_SAFE.encode(serde_json::to_vec(&t).unwrap_or_default())
}

fn decode_continue(token: &str) -> ApiResult<ContinueToken> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad())?;
    let t: ContinueToken = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if t.v != "meta.k8s.io/v1" {
        return Err(bad());
    }
    Ok(t)
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj).and_then(|m| m.get(field)).and_then(Value::as_str)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

/// Sets the resource version a client sees.
pub fn set_resource_version(obj: &mut Value, rev: Revision) {
    meta_mut(obj).insert("resourceVersion".into(), json!(rev.to_string()));
}

fn decode(value: &[u8], rev: Revision) -> ApiResult<Value> {
    let mut obj: Value = serde_json::from_slice(value)
        .map_err(|e| ApiError::internal(format!("stored object is not JSON: {e}")))?;
    set_resource_version(&mut obj, rev);
    Ok(obj)
}

/// An object as the store keeps it: without `metadata.resourceVersion`
/// (the store's revision is the version) or `selfLink`.
fn encode(obj: &Value) -> ApiResult<Bytes> {
    serde_json::to_vec(&Stored(obj))
        .map(Bytes::from)
        .map_err(ApiError::internal)
}

/// Serializes an object leaving out the metadata fields the store does not
/// keep, without copying the object.
struct Stored<'a>(&'a Value);

/// An object's metadata without `resourceVersion` and `selfLink`.
struct StoredMeta<'a>(&'a serde_json::Map<String, Value>);

impl serde::Serialize for Stored<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Value::Object(fields) = self.0 else {
            return self.0.serialize(s);
        };
        let mut map = s.serialize_map(Some(fields.len()))?;
        for (k, v) in fields {
            match v {
                Value::Object(m) if k == "metadata" => map.serialize_entry(k, &StoredMeta(m))?,
                v => map.serialize_entry(k, v)?,
            }
        }
        map.end()
    }
}

impl serde::Serialize for StoredMeta<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        for (k, v) in self.0 {
            if k != "resourceVersion" && k != "selfLink" {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

const GENERATE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn generate_name(base: &str) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let base = if base.len() > 58 { &base[..58] } else { base };
    let suffix: String = (0..5)
        .map(|_| GENERATE_ALPHABET[rng.gen_range(0..GENERATE_ALPHABET.len())] as char)
        .collect();
    format!("{base}{suffix}")
}

/// The name checks of each rule, with upstream's messages.
pub fn name_errors(rule: NameRule, name: &str) -> Vec<String> {
    match rule {
        NameRule::Subdomain => api::validation::name_is_dns_subdomain(name, false),
        NameRule::Dns1123Label => api::validation::name_is_dns_label(name, false),
        NameRule::Dns1035Label => api::validation::name_is_dns1035_label(name, false),
        NameRule::PathSegment => api::validation::is_valid_path_segment_name(name),
    }
}

fn invalid_value(field: &str, value: &Value, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {}: {detail}", go_value(value)),
        field: field.into(),
    }
}

fn required(field: &str, detail: &str) -> Cause {
    let message = if detail.is_empty() {
        "Required value".to_string()
    } else {
        format!("Required value: {detail}")
    };
    Cause {
        reason: "FieldValueRequired".into(),
        message,
        field: field.into(),
    }
}

/// How upstream's field errors print a bad value: strings quoted, numbers
/// bare.
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

impl Registry {
    pub fn new(store: Arc<dyn Store>) -> Registry {
        Registry {
            store,
            admission: crate::admission::Chain::default(),
            customs: Arc::default(),
            event_lease: Default::default(),
            cache: None,
            schemas: None,
        }
    }

    /// Serves lists and watches from a watch cache over this registry's
    /// store.
    pub fn with_cache(mut self) -> Registry {
        self.cache = Some(crate::cache::WatchCache::start(self.store.clone()));
        self
    }

    /// Built-in kinds are decoded against these schemas: undeclared fields
    /// are dropped, warned about or refused per `fieldValidation`.
    pub fn with_schemas(mut self, schemas: Arc<openapi::OpenApi>) -> Registry {
        self.schemas = Some(schemas);
        self
    }

    /// The OpenAPI documents the server publishes.
    pub fn schemas(&self) -> Option<&Arc<openapi::OpenApi>> {
        self.schemas.as_ref()
    }

    /// Drops the fields of `obj` its kind does not declare, as decoding into
    /// a typed object does, and applies `fieldValidation`.
    fn decode_fields(
        &self,
        r: &ResourceInfo,
        obj: &mut Value,
        opts: &WriteOptions,
    ) -> ApiResult<()> {
        let Some(schemas) = &self.schemas else {
            return Ok(());
        };
        let Some(validation) = opts.field_validation else {
            return Ok(());
        };
        let unknown = if !builtin(r) {
            // Custom resources: what their schema prunes.
            match self.customs.get(r).and_then(|v| v.schema.clone()) {
                Some(schema) if validation != FieldValidation::Ignore => {
                    crate::crd::schema::unknown_fields(&schema, obj)
                }
                _ => Vec::new(),
            }
        } else if validation == FieldValidation::Strict {
            schemas.unknown_fields(r.group, r.version, r.kind, obj)
        } else {
            schemas.prune_unknown_fields(r.group, r.version, r.kind, obj)
        };
        let listed: Vec<String> = match &opts.duplicates {
            Some(d) => d.messages(&unknown, validation == FieldValidation::Strict),
            None => unknown
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect(),
        };
        if listed.is_empty() {
            return Ok(());
        }
        match validation {
            FieldValidation::Strict => Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                r.kind,
                r.version,
                r.kind,
                listed.join(", ")
            ))),
            FieldValidation::Warn => {
                opts.warnings
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(listed);
                Ok(())
            }
            FieldValidation::Ignore => Ok(()),
        }
    }

    pub fn cache(&self) -> Option<&Arc<crate::cache::WatchCache>> {
        self.cache.as_ref()
    }

    /// The lease new Events are attached to: they vanish after
    /// [`EVENT_TTL`]. A failure to get one stores the event without a lease
    /// rather than refusing it.
    async fn event_lease(&self) -> store::LeaseId {
        let mut cur = self.event_lease.lock().await;
        if let Some((id, at)) = *cur {
            if at.elapsed() < EVENT_LEASE_REUSE {
                return id;
            }
        }
        // The lease outlives its last event by the reuse window at most.
        match self.store.lease_grant(EVENT_TTL + EVENT_LEASE_REUSE).await {
            Ok(id) => {
                *cur = Some((id, std::time::Instant::now()));
                id
            }
            Err(e) => {
                tracing::warn!(error = %e, "granting an event lease failed; storing the event without a TTL");
                0
            }
        }
    }

    /// The custom resources this registry stores (kept current by the
    /// definition controller).
    pub fn customs(&self) -> &Arc<crate::crd::CustomResources> {
        &self.customs
    }

    /// The behaviour of a resource: custom, a definition, or built-in.
    pub fn strategy(&self, r: &ResourceInfo) -> Box<dyn Strategy> {
        if r.group == "apiextensions.k8s.io" && r.resource == "customresourcedefinitions" {
            return Box::new(crate::crd::Definitions);
        }
        match self.customs.get(r) {
            Some(v) => Box::new(crate::crd::CustomStrategy(v)),
            None => strategy::for_resource(r),
        }
    }

    /// Adds an admission plugin after the ones already present.
    pub fn with_admission(mut self, plugin: Arc<dyn crate::admission::Admission>) -> Registry {
        self.admission.0.push(plugin);
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The key of one object.
    pub fn key(r: &ResourceInfo, namespace: Option<&str>, name: &str) -> String {
        match (r.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{ns}/{name}", r.storage_prefix()),
            _ => format!("{}{name}", r.storage_prefix()),
        }
    }

    /// The prefix of a list or watch.
    pub fn list_prefix(r: &ResourceInfo, namespace: Option<&str>) -> String {
        match (r.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{ns}/", r.storage_prefix()),
            _ => r.storage_prefix(),
        }
    }

    pub async fn get(
        &self,
        r: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
    ) -> ApiResult<Value> {
        let key = Self::key(r, namespace, name);
        match self.store.get(key.as_bytes(), 0).await {
            Ok((Some(kv), _)) => decode(&kv.value, kv.mod_revision),
            Ok((None, _)) => Err(ApiError::not_found(r, name)),
            Err(e) => Err(from_store(r, name, e)),
        }
    }

    /// Checks type metadata and namespace of a body against the URL, filling
    /// what the client left out (some clients send no apiVersion/kind).
    fn check_body(r: &ResourceInfo, namespace: Option<&str>, obj: &mut Value) -> ApiResult<()> {
        let Some(map) = obj.as_object_mut() else {
            return Err(ApiError::bad_request(format!(
                "the body of the request must be a {} object",
                r.kind
            )));
        };
        let want_api = r.api_version();
        match map.get("apiVersion").and_then(Value::as_str) {
            None | Some("") => {
                map.insert("apiVersion".into(), json!(want_api));
            }
            Some(v) if v != want_api => {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({v}) does not match the expected API version ({want_api})"
                )))
            }
            _ => {}
        }
        match map.get("kind").and_then(Value::as_str) {
            None | Some("") => {
                map.insert("kind".into(), json!(r.kind));
            }
            Some(k) if k != r.kind => {
                return Err(ApiError::bad_request(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    r.kind
                )))
            }
            _ => {}
        }
        if !map.get("metadata").is_none_or(Value::is_object) {
            return Err(ApiError::bad_request("metadata must be an object"));
        }
        let m = meta_mut(obj);
        if r.namespaced {
            let url_ns = namespace.unwrap_or("");
            match m.get("namespace").and_then(Value::as_str) {
                None | Some("") => {
                    m.insert("namespace".into(), json!(url_ns));
                }
                Some(ns) if ns != url_ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
                _ => {}
            }
        } else {
            m.remove("namespace");
        }
        Ok(())
    }

    fn validate_meta(s: &dyn Strategy, obj: &Value) -> Vec<Cause> {
        let mut causes = Vec::new();
        let m = meta(obj);
        let name = m
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if name.is_empty() {
            causes.push(required(
                "metadata.name",
                "name or generateName is required",
            ));
        } else {
            for e in name_errors(s.name_rule(), name) {
                causes.push(invalid_value("metadata.name", &json!(name), &e));
            }
        }
        if let Some(m) = m {
            for field in ["labels", "annotations"] {
                if let Some(map) = m.get(field) {
                    match map.as_object() {
                        None if !map.is_null() => causes.push(invalid_value(
                            &format!("metadata.{field}"),
                            map,
                            "must be a map of strings",
                        )),
                        Some(entries) => {
                            for (k, v) in entries {
                                if !v.is_string() {
                                    causes.push(invalid_value(
                                        &format!("metadata.{field}.{k}"),
                                        v,
                                        "must be a string",
                                    ));
                                }
                            }
                        }
                        None => {}
                    }
                }
            }
        }
        causes
    }

    /// Creates an object. Returns it as stored.
    pub async fn create(
        &self,
        r: &ResourceInfo,
        namespace: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        Self::check_body(r, namespace, &mut obj)?;
        self.decode_fields(r, &mut obj, opts)?;
        let s = self.strategy(r);
        {
            let m = meta_mut(&mut obj);
            let name = m
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if name.is_empty() {
                if let Some(base) = m
                    .get("generateName")
                    .and_then(Value::as_str)
                    .filter(|b| !b.is_empty())
                {
                    let generated = generate_name(base);
                    m.insert("name".into(), json!(generated));
                }
            }
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(now_rfc3339()));
            m.remove("resourceVersion");
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
            m.remove("selfLink");
            if s.has_generation() {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
        }
        if builtin(r) {
            api::defaults::apply_defaults(r.group, r.version, r.kind, &mut obj);
        }
        s.prepare_for_create(&mut obj);
        let name = meta_str(&obj, "name").unwrap_or("").to_string();
        let mut causes = Self::validate_meta(s.as_ref(), &obj);
        causes.extend(s.validate(&obj));
        if !causes.is_empty() {
            return Err(ApiError::invalid(r, &name, causes));
        }
        if r.namespaced {
            self.admit_namespace(namespace.unwrap_or(""), r).await?;
        }
        if !opts.tracked {
            track(r, None, &mut obj, opts, None);
        }
        let key = Self::key(r, namespace, &name);
        if let Err(e) = self.admission.admit_create(r, &mut obj).await {
            return Err(self.unless_exists(r, &name, &key, e).await);
        }
        if builtin(r) {
            let errors = api::kinds::validate_create(r.group, r.version, r.kind, &obj);
            if !errors.is_empty() {
                self.admission.create_failed(r, &obj).await;
                let e = ApiError::invalid(r, &name, causes_of(&errors));
                return Err(self.unless_exists(r, &name, &key, e).await);
            }
        }
        if opts.dry_run {
            // A dry run shows what would be allocated but keeps nothing;
            // it fails as the write would on an existing object.
            self.admission.create_failed(r, &obj).await;
            let exists = self
                .store
                .get(key.as_bytes(), 0)
                .await
                .map_err(|e| from_store(r, &name, e))?
                .0
                .is_some();
            if exists {
                return Err(ApiError::already_exists(r, &name));
            }
            return Ok(obj);
        }
        let value = match encode(&obj) {
            Ok(v) if v.len() <= store::MAX_VALUE_BYTES => v,
            Ok(_) => {
                self.admission.create_failed(r, &obj).await;
                return Err(ApiError::too_large(store::MAX_VALUE_BYTES));
            }
            Err(e) => {
                self.admission.create_failed(r, &obj).await;
                return Err(e);
            }
        };
        let lease = if is_event(r) {
            self.event_lease().await
        } else {
            0
        };
        match self.store.create(key.as_bytes(), value, lease).await {
            Ok(kv) => {
                set_resource_version(&mut obj, kv.mod_revision);
                Ok(obj)
            }
            Err(e) => {
                self.admission.create_failed(r, &obj).await;
                Err(from_store(r, &name, e))
            }
        }
    }

    /// A create that admission refused answers AlreadyExists when the
    /// object exists, not whatever admission said about the resources it
    /// asks for (the store decides every other duplicate when it writes).
    async fn unless_exists(
        &self,
        r: &ResourceInfo,
        name: &str,
        key: &str,
        e: ApiError,
    ) -> ApiError {
        match self.store.get(key.as_bytes(), 0).await {
            Ok((Some(_), _)) => ApiError::already_exists(r, name),
            _ => e,
        }
    }

    /// Namespace lifecycle admission: no creates in a missing or
    /// terminating namespace. The watch cache answers for a namespace it
    /// holds, the store for one it does not (upstream's lister with a live
    /// lookup).
    async fn admit_namespace(&self, namespace: &str, r: &ResourceInfo) -> ApiResult<()> {
        let key = format!("/registry/core/namespaces/{namespace}");
        let cached = self.cache.as_ref().and_then(|c| c.get(key.as_bytes()));
        let ns = match cached {
            Some(c) => Some(c.bytes.clone()),
            None => match self.store.get(key.as_bytes(), 0).await {
                Ok((kv, _)) => kv.map(|kv| kv.value),
                Err(e) => return Err(from_store(r, namespace, e)),
            },
        };
        let Some(value) = ns else {
            return Err(ApiError {
                code: 404,
                reason: "NotFound",
                message: format!("namespaces \"{namespace}\" not found"),
                details: Some(json!({ "name": namespace, "kind": "namespaces" })),
            });
        };
        let obj: Value = serde_json::from_slice(&value).unwrap_or(Value::Null);
        if obj.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating") {
            return Err(ApiError {
                code: 403,
                reason: "Forbidden",
                message: format!(
                    "{} \"{}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                    r.qualified_resource(),
                    ""
                ),
                details: Some(json!({ "kind": r.resource, "causes": [{ "reason": "NamespaceTerminating", "message": format!("namespace {namespace} is being terminated"), "field": "metadata.namespace" }] })),
            });
        }
        Ok(())
    }

    /// Replaces an object (PUT), on the main resource or its status
    /// subresource. Returns the object and whether it was created.
    pub async fn update(
        &self,
        r: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<(Value, bool)> {
        Self::check_body(r, namespace, &mut obj)?;
        match meta_str(&obj, "name") {
            None | Some("") => {
                meta_mut(&mut obj).insert("name".into(), json!(name));
            }
            Some(n) if n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )))
            }
            _ => {}
        }
        let s = self.strategy(r);
        let requested_rv = match meta_str(&obj, "resourceVersion") {
            None | Some("") => None,
            Some(rv) => Some(rv.parse::<Revision>().map_err(|_| {
                ApiError::invalid(
                    r,
                    name,
                    vec![invalid_value(
                        "metadata.resourceVersion",
                        &json!(rv),
                        "must be a valid resource version",
                    )],
                )
            })?),
        };
        let key = Self::key(r, namespace, name);
        // The watch cache's copy is tried first; after a conflict, or an
        // error that stale data may have caused, the store's (upstream's
        // `GuaranteedUpdate` with a cached existing object).
        let mut fresh = false;
        loop {
            let Some((current, cached)) = self.current_for_write(r, name, &key, fresh).await?
            else {
                if s.allow_create_on_update() && subresource.is_none() {
                    return self
                        .create(r, namespace, obj, opts)
                        .await
                        .map(|o| (o, true));
                }
                return Err(ApiError::not_found(r, name));
            };
            let attempt: ApiResult<Option<(Value, bool)>> = async {
                if let Some(rv) = requested_rv {
                    if rv != current.mod_revision {
                        return Err(ApiError::conflict(r, name));
                    }
                } else if !s.allow_unconditional_update() {
                    return Err(ApiError::invalid(
                        r,
                        name,
                        vec![invalid_value(
                            "metadata.resourceVersion",
                            &json!(0),
                            "must be specified for an update",
                        )],
                    ));
                }
                let old = decode(&current.value, current.mod_revision)?;
                let mut incoming = obj.clone();
                self.decode_fields(r, &mut incoming, opts)?;
                if builtin(r) && matches!(subresource, None | Some(EPHEMERAL_CONTAINERS)) {
                    api::defaults::apply_defaults(r.group, r.version, r.kind, &mut incoming);
                }
                let new = Self::merge_update(r, s.as_ref(), &old, incoming, subresource)?;
                let mut causes = Self::validate_meta(s.as_ref(), &new);
                causes.extend(s.validate_update(&new, &old));
                if !causes.is_empty() {
                    return Err(ApiError::invalid(r, name, causes));
                }
                let mut new = new;
                if !opts.tracked {
                    track(r, Some(&old), &mut new, opts, subresource);
                }
                if subresource == Some(EPHEMERAL_CONTAINERS) {
                    let errors = api::kinds::validate_pod_ephemeral_containers_update(&new, &old);
                    if !errors.is_empty() {
                        return Err(ApiError::invalid(r, name, causes_of(&errors)));
                    }
                }
                if subresource.is_none() {
                    self.admission.admit_update(r, &mut new, &old).await?;
                    if builtin(r) {
                        let errors =
                            api::kinds::validate_update(r.group, r.version, r.kind, &new, &old);
                        if !errors.is_empty() {
                            self.admission.update_failed(r, &new, &old).await;
                            return Err(ApiError::invalid(r, name, causes_of(&errors)));
                        }
                    }
                }
                if same_object(&new, &old) {
                    // Nothing to write, unless the cache was behind.
                    return Ok((!cached).then_some((old, false)));
                }
                if opts.dry_run {
                    self.admission.update_failed(r, &new, &old).await;
                    return Ok(Some((new, false)));
                }
                // Finalization done: an object being deleted whose last
                // finalizer was removed goes away.
                if meta(&new).is_some_and(|m| m.contains_key("deletionTimestamp"))
                    && finalizers(&new).is_empty()
                {
                    let result = self
                        .store
                        .delete(key.as_bytes(), Some(current.mod_revision))
                        .await;
                    if result.is_err() {
                        self.admission.update_failed(r, &new, &old).await;
                    }
                    return match result {
                        Ok((rev, _)) => {
                            self.admission.deleted(r, &old).await;
                            self.admission.deleted(r, &new).await;
                            let mut gone = new;
                            set_resource_version(&mut gone, rev);
                            Ok(Some((gone, false)))
                        }
                        Err(StoreError::Conflict { .. }) if requested_rv.is_none() => Ok(None),
                        Err(e) => Err(from_store(r, name, e)),
                    };
                }
                let value = match encode(&new) {
                    Ok(v) if v.len() <= store::MAX_VALUE_BYTES => v,
                    Ok(_) => {
                        self.admission.update_failed(r, &new, &old).await;
                        return Err(ApiError::too_large(store::MAX_VALUE_BYTES));
                    }
                    Err(e) => {
                        self.admission.update_failed(r, &new, &old).await;
                        return Err(e);
                    }
                };
                match self
                    .store
                    .update(key.as_bytes(), value, current.mod_revision, current.lease)
                    .await
                {
                    Ok(kv) => {
                        self.admission.updated(r, &new, &old).await;
                        let mut out = new;
                        set_resource_version(&mut out, kv.mod_revision);
                        return Ok(Some((out, false)));
                    }
                    Err(e) => {
                        self.admission.update_failed(r, &new, &old).await;
                        match e {
                            StoreError::Conflict { .. } if requested_rv.is_none() => Ok(None),
                            e => Err(from_store(r, name, e)),
                        }
                    }
                }
            }
            .await;
            match attempt {
                Ok(Some(done)) => return Ok(done),
                Ok(None) => fresh = true,
                Err(_) if cached => fresh = true,
                Err(e) => return Err(e),
            }
        }
    }

    /// The object an update writes: the client's object with what it may
    /// not change carried over from the stored one.
    fn merge_update(
        r: &ResourceInfo,
        s: &dyn Strategy,
        old: &Value,
        mut new: Value,
        subresource: Option<&str>,
    ) -> ApiResult<Value> {
        if subresource == Some("status") {
            return Ok(strategy::status_update(s, old, &new));
        }
        if subresource == Some("approval") {
            return Ok(crate::csr::approval_update(old, &new));
        }
        if subresource == Some(EPHEMERAL_CONTAINERS) {
            // Upstream `dropNonEphemeralContainerUpdates`: the stored pod
            // with the request's ephemeral containers.
            let mut pod = old.clone();
            match new.pointer("/spec/ephemeralContainers") {
                Some(list) if !list.is_null() => pod["spec"]["ephemeralContainers"] = list.clone(),
                _ => {
                    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
                        spec.remove("ephemeralContainers");
                    }
                }
            }
            return Ok(pod);
        }
        let old_meta = meta(old).cloned().unwrap_or_default();
        {
            let m = meta_mut(&mut new);
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old_meta.get(field) {
                    Some(v) => m.insert(field.into(), v.clone()),
                    None => m.remove(field),
                };
            }
            m.remove("selfLink");
        }
        if s.status_is_subresource() {
            match old.get("status") {
                Some(st) => new["status"] = st.clone(),
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
        }
        s.prepare_for_update(&mut new, old);
        if s.has_generation() && spec_changed(&new, old) {
            let g = old_meta
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut new).insert("generation".into(), json!(g + 1));
        }
        // Removing the last finalizer of an object not being deleted, or
        // adding one, is an ordinary update; adding a finalizer to an
        // object being deleted is refused upstream.
        if old_meta.contains_key("deletionTimestamp") {
            let old_f = finalizers(old);
            let new_f = finalizers(&new);
            if new_f.iter().any(|f| !old_f.contains(f)) {
                return Err(ApiError::invalid(
                    r,
                    meta_str(old, "name").unwrap_or(""),
                    vec![Cause {
                        reason: "FieldValueForbidden".into(),
                        message: "Forbidden: no new finalizers can be added if the object is being deleted".into(),
                        field: "metadata.finalizers".into(),
                    }],
                ));
            }
        }
        Ok(new)
    }

    /// Applies a patch to an object (or to its status) and writes it, with
    /// the same checks as an update. A race with another writer is retried
    /// on fresh data unless the patch itself names a resourceVersion.
    /// Server-side apply of a missing object creates it. `r` is the
    /// version the client addressed; the object returned is at its storage
    /// version, as from every other write.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        r: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        kind: PatchKind,
        patch: &Value,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        let pinned = patch
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        if kind == PatchKind::Apply {
            return self
                .server_side_apply(r, namespace, name, subresource, patch, opts)
                .await;
        }
        // A patch is written against the version the client addressed; the
        // object is read and written at its storage version.
        let stored = crate::convert::storage_info(r);
        for _attempt in 0..16 {
            let current = match self.get(stored, namespace, name).await {
                Ok(c) => c,
                Err(e) if e.code == 404 && kind == PatchKind::Apply && subresource.is_none() => {
                    let mut obj = patch.clone();
                    if obj.pointer("/metadata/name").is_none() {
                        meta_mut(&mut obj).insert("name".into(), json!(name));
                    }
                    let created = self.create(r, namespace, obj, opts).await?;
                    opts.created
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    return Ok(created);
                }
                Err(e) => return Err(e),
            };
            let current = crate::convert::to_served(r, current)?;
            let rv = current.pointer("/metadata/resourceVersion").cloned();
            let mut patched = apply_patch(r, kind, current, patch)?;
            if !pinned {
                meta_mut(&mut patched).insert("resourceVersion".into(), rv.unwrap_or(Value::Null));
            }
            let patched = crate::convert::to_storage(r, patched)?;
            match self
                .update(stored, namespace, name, subresource, patched, opts)
                .await
            {
                Ok((obj, _)) => return Ok(obj),
                Err(e) if e.reason == "Conflict" && !pinned => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ApiError::conflict(r, name))
    }

    /// Server-side apply: the applied configuration merged into the live
    /// object by field ownership, conflicts refused unless forced.
    async fn server_side_apply(
        &self,
        r: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        applied: &Value,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        let Some(manager) = opts.field_manager.clone().filter(|m| !m.is_empty()) else {
            return Err(ApiError::invalid(
                r,
                name,
                vec![Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value: is required for apply patch".into(),
                    field: "fieldManager".into(),
                }],
            ));
        };
        let schema = self.customs.get(r).and_then(|v| v.schema.clone());
        let stored = crate::convert::storage_info(r);
        for _attempt in 0..16 {
            let live = match self.get(stored, namespace, name).await {
                Ok(o) => Some(crate::convert::to_served(r, o)?),
                Err(e) if e.code == 404 && subresource.is_none() => None,
                Err(e) => return Err(e),
            };
            let now = now_rfc3339();
            let o = api::apply::ApplyOptions {
                manager: &manager,
                force: opts.force,
                group: r.group,
                version: r.version,
                kind: r.kind,
                now: &now,
            };
            let status_reset: &[&[&str]] = &[&["status"]];
            let scope = api::apply::Scope {
                subresource: subresource.unwrap_or(""),
                reset_fields: if subresource.is_none() {
                    status_reset
                } else {
                    &[]
                },
                schema: schema.as_ref(),
            };
            let mut merged = crate::convert::to_storage(
                r,
                api::apply::apply_in(live.as_ref(), applied, &o, scope).map_err(apply_error)?,
            )?;
            let mut wopts = opts.clone();
            wopts.tracked = true;
            match live {
                None => {
                    if merged.pointer("/metadata/name").is_none() {
                        meta_mut(&mut merged).insert("name".into(), json!(name));
                    }
                    match self.create(stored, namespace, merged, &wopts).await {
                        Err(e) if e.reason == "AlreadyExists" => continue,
                        Ok(created) => {
                            opts.created
                                .store(true, std::sync::atomic::Ordering::Relaxed);
                            return Ok(created);
                        }
                        other => return other,
                    }
                }
                Some(live) => {
                    meta_mut(&mut merged).insert(
                        "resourceVersion".into(),
                        live["metadata"]["resourceVersion"].clone(),
                    );
                    match self
                        .update(stored, namespace, name, subresource, merged, &wopts)
                        .await
                    {
                        Ok((obj, _)) => return Ok(obj),
                        Err(e)
                            if e.reason == "Conflict"
                                && e.details.as_ref().is_none_or(|d| d.get("causes").is_none()) =>
                        {
                            continue
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Err(ApiError::conflict(r, name))
    }

    /// Writes `obj` over the stored `current` if no one wrote in between:
    /// `Ok(None)` means someone did (read again and retry).
    async fn write_back(
        &self,
        r: &ResourceInfo,
        name: &str,
        key: &str,
        mut obj: Value,
        current: &store::KeyValue,
    ) -> ApiResult<Option<Value>> {
        let value = encode(&obj)?;
        match self
            .store
            .update(key.as_bytes(), value, current.mod_revision, current.lease)
            .await
        {
            Ok(kv) => {
                set_resource_version(&mut obj, kv.mod_revision);
                Ok(Some(obj))
            }
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(e) => Err(from_store(r, name, e)),
        }
    }

    /// Reads an object, lets `change` edit it, and writes it back if no one
    /// wrote in between (retrying on a race), bypassing the kind's strategy:
    /// for server-internal writes such as pod binding (upstream's
    /// `GuaranteedUpdate`).
    pub async fn guaranteed_update(
        &self,
        r: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        mut change: impl FnMut(&mut Value) -> ApiResult<()> + Send,
    ) -> ApiResult<Value> {
        let key = Self::key(r, namespace, name);
        let mut fresh = false;
        loop {
            let Some((current, cached)) = self.current_for_write(r, name, &key, fresh).await?
            else {
                return Err(ApiError::not_found(r, name));
            };
            let mut obj = decode(&current.value, current.mod_revision)?;
            let written = match change(&mut obj) {
                Ok(()) => self.write_back(r, name, &key, obj, &current).await,
                Err(e) => Err(e),
            };
            match written {
                Ok(Some(written)) => return Ok(written),
                Ok(None) => fresh = true,
                // The cached copy may have been behind: decide on the store's.
                Err(_) if cached => fresh = true,
                Err(e) => return Err(e),
            }
        }
    }

    /// The object under `key` as a write starts from, and whether it is the
    /// watch cache's copy (which may be behind the store: the store's
    /// revision check catches that) rather than the store's. `fresh` reads
    /// the store.
    async fn current_for_write(
        &self,
        r: &ResourceInfo,
        name: &str,
        key: &str,
        fresh: bool,
    ) -> ApiResult<Option<(store::KeyValue, bool)>> {
        if !fresh {
            if let Some(c) = self.cache.as_ref().and_then(|c| c.get(key.as_bytes())) {
                let kv = store::KeyValue {
                    key: Bytes::copy_from_slice(key.as_bytes()),
                    value: c.bytes.clone(),
                    create_revision: 0,
                    mod_revision: c.revision,
                    version: 0,
                    lease: c.lease,
                };
                return Ok(Some((kv, true)));
            }
        }
        let (kv, _) = self
            .store
            .get(key.as_bytes(), 0)
            .await
            .map_err(|e| from_store(r, name, e))?;
        Ok(kv.map(|kv| (kv, false)))
    }

    /// Lists objects at the latest revision (or the one a continue token
    /// names), filtered by `filter`, paged by `limit`, decoded.
    pub async fn list(
        &self,
        r: &ResourceInfo,
        namespace: Option<&str>,
        opts: &ListOptions,
        filter: &(dyn Fn(&Value) -> bool + Send + Sync),
    ) -> ApiResult<Value> {
        let prefix = Self::list_prefix(r, namespace);
        if let (true, Some(cache)) = (opts.is_plain(), &self.cache) {
            if let Some((objects, revision)) = cache.list(&prefix).await {
                let items: Vec<Value> = objects
                    .iter()
                    .map(|o| o.value())
                    .filter(|o| filter(o))
                    .collect();
                return Ok(json!({
                    "kind": r.list_kind,
                    "apiVersion": r.api_version(),
                    "metadata": { "resourceVersion": revision.to_string() },
                    "items": items,
                }));
            }
        }
        self.list_store(r, namespace, opts, filter).await
    }

    /// Lists objects as [`Registry::list`] does, with the items the watch
    /// cache holds shared rather than decoded.
    pub async fn list_shared(
        &self,
        r: &ResourceInfo,
        namespace: Option<&str>,
        opts: &ListOptions,
        filter: &crate::filter::Filter,
    ) -> ApiResult<SharedList> {
        let prefix = Self::list_prefix(r, namespace);
        if let (true, Some(cache)) = (opts.is_plain(), &self.cache) {
            if let Some((objects, revision)) = cache.list(&prefix).await {
                let items = objects
                    .into_iter()
                    .filter(|o| filter.matches_index(&o.index))
                    .map(ListItem::Cached)
                    .collect();
                return Ok(SharedList {
                    kind: r.list_kind,
                    api_version: r.api_version(),
                    revision,
                    continue_token: None,
                    remaining_item_count: None,
                    items,
                });
            }
        }
        let list = self
            .list_store(r, namespace, opts, &|o| filter.matches(o))
            .await?;
        let Value::Object(mut list) = list else {
            return Err(ApiError::internal("a list is not an object"));
        };
        let items = match list.remove("items") {
            Some(Value::Array(items)) => items.into_iter().map(ListItem::Decoded).collect(),
            _ => Vec::new(),
        };
        let meta = list.get("metadata");
        let field = |f: &str| {
            meta.and_then(|m| m.get(f))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        Ok(SharedList {
            kind: r.list_kind,
            api_version: r.api_version(),
            revision: field("resourceVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            continue_token: field("continue"),
            remaining_item_count: meta
                .and_then(|m| m.get("remainingItemCount"))
                .and_then(Value::as_i64),
            items,
        })
    }

    /// How many keys under `prefix` from `start` on exist at `revision`
    /// (upstream reads etcd's count of the rest of the range).
    async fn count_from(
        &self,
        prefix: &str,
        start: Vec<u8>,
        revision: Revision,
    ) -> Result<i64, StoreError> {
        self.store
            .count_range(RangeRequest {
                prefix: prefix.as_bytes().to_vec(),
                start: Some(start),
                revision,
                limit: 0,
            })
            .await
    }

    async fn list_store(
        &self,
        r: &ResourceInfo,
        namespace: Option<&str>,
        opts: &ListOptions,
        filter: &(dyn Fn(&Value) -> bool + Send + Sync),
    ) -> ApiResult<Value> {
        let prefix = Self::list_prefix(r, namespace);
        let (mut revision, mut start) = match &opts.continue_token {
            Some(t) if !t.is_empty() => {
                let t = decode_continue(t)?;
                (t.rv, Some(format!("{prefix}{}", t.start).into_bytes()))
            }
            _ => (0, None),
        };
        if start.is_none() && opts.resource_version_match.as_deref() == Some("Exact") {
            if let Some(rv) = &opts.resource_version {
                revision = rv.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version: {rv:?}"))
                })?;
            }
        }
        let mut items = Vec::new();
        let mut next: Option<String> = None;
        let mut remaining: Option<i64> = None;
        let page = if opts.limit == 0 {
            0
        } else {
            opts.limit.max(16)
        };
        loop {
            let resp = self
                .store
                .range(RangeRequest { prefix: prefix.clone().into_bytes(), start: start.clone(), revision, limit: page })
                .await
                .map_err(|e| match e {
                    StoreError::Compacted { .. } if opts.continue_token.is_some() => ApiError::gone(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                    ),
                    e => from_store(r, "", e),
                })?;
            revision = resp.revision;
            let mut last_key: Option<Vec<u8>> = None;
            for kv in &resp.kvs {
                last_key = Some(kv.key.to_vec());
                let obj = decode(&kv.value, kv.mod_revision)?;
                if filter(&obj) {
                    items.push(obj);
                    if opts.limit > 0 && items.len() == opts.limit {
                        break;
                    }
                }
            }
            let stopped_early = opts.limit > 0 && items.len() == opts.limit;
            if stopped_early {
                // More may follow if we stopped inside this page or the
                // store has more.
                let last = last_key.clone().unwrap_or_default();
                let consumed_all = resp.kvs.last().map(|kv| kv.key.to_vec()) == Some(last.clone());
                if !consumed_all || resp.more {
                    let suffix = String::from_utf8_lossy(&keys::next_key(&last)[prefix.len()..])
                        .into_owned();
                    next = Some(encode_continue(revision, &suffix));
                    if opts.unfiltered() {
                        remaining = Some(
                            self.count_from(&prefix, keys::next_key(&last), revision)
                                .await
                                .map_err(|e| from_store(r, "", e))?,
                        );
                    }
                }
                break;
            }
            if !resp.more {
                break;
            }
            start = last_key.map(|k| keys::next_key(&k));
        }
        let mut list_meta = json!({ "resourceVersion": revision.to_string() });
        if let Some(c) = next {
            list_meta["continue"] = json!(c);
        }
        if let Some(n) = remaining {
            list_meta["remainingItemCount"] = json!(n);
        }
        Ok(json!({
            "kind": r.list_kind,
            "apiVersion": r.api_version(),
            "metadata": list_meta,
            "items": items,
        }))
    }

    /// Deletes an object, honouring preconditions, finalizers and the
    /// propagation policy. Returns the object as last seen (with
    /// `deletionTimestamp` when deletion waits on finalizers).
    pub async fn delete(
        &self,
        r: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<Value> {
        let key = Self::key(r, namespace, name);
        loop {
            let Some(current) = self
                .store
                .get(key.as_bytes(), 0)
                .await
                .map_err(|e| from_store(r, name, e))?
                .0
            else {
                return Err(ApiError::not_found(r, name));
            };
            let mut obj = decode(&current.value, current.mod_revision)?;
            if let Some(uid) = &opts.precondition_uid {
                let actual = meta_str(&obj, "uid").unwrap_or("");
                if uid != actual {
                    return Err(ApiError::conflict_because(
                        r,
                        name,
                        &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"),
                    ));
                }
            }
            if let Some(rv) = &opts.precondition_resource_version {
                let actual = current.mod_revision.to_string();
                if *rv != actual {
                    return Err(ApiError::conflict_because(
                        r,
                        name,
                        &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"),
                    ));
                }
            }
            if r.group.is_empty() && r.resource == "namespaces" {
                if crate::namespaces::UNDELETABLE.contains(&name) {
                    return Err(ApiError::forbidden(format!(
                        "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
                    )));
                }
                // A namespace goes Terminating; the namespace controller
                // empties it and finalizes it.
                let spec_fins = obj
                    .pointer("/spec/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| !f.is_empty());
                if spec_fins {
                    if opts.dry_run {
                        return Ok(obj);
                    }
                    if !meta(&obj).is_some_and(|m| m.contains_key("deletionTimestamp")) {
                        meta_mut(&mut obj).insert("deletionTimestamp".into(), json!(now_rfc3339()));
                        meta_mut(&mut obj).insert("deletionGracePeriodSeconds".into(), json!(0));
                    }
                    obj["status"]["phase"] = json!("Terminating");
                    match self.write_back(r, name, &key, obj, &current).await? {
                        Some(written) => return Ok(written),
                        None => continue,
                    }
                }
            }
            let mut fins = finalizers(&obj);
            if r.group == "apiextensions.k8s.io"
                && r.resource == "customresourcedefinitions"
                && !fins.iter().any(|f| f == crate::crd::CLEANUP_FINALIZER)
            {
                fins.push(crate::crd::CLEANUP_FINALIZER.into());
            }
            let default_policy = || self.strategy(r).orphans_by_default().then_some("Orphan");
            match opts.propagation_policy.as_deref().or_else(default_policy) {
                Some("Orphan") if !fins.iter().any(|f| f == "orphan") => fins.push("orphan".into()),
                Some("Foreground") if !fins.iter().any(|f| f == "foregroundDeletion") => {
                    fins.push("foregroundDeletion".into())
                }
                _ => {}
            }
            let graceful = self.grace_period(r, &obj, opts);
            if !fins.is_empty() || graceful.is_some() {
                let m = meta_mut(&mut obj);
                if !m.contains_key("deletionTimestamp") {
                    let grace = graceful.unwrap_or(0);
                    let at = chrono::Utc::now() + chrono::Duration::seconds(grace);
                    m.insert(
                        "deletionTimestamp".into(),
                        json!(at.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
                    );
                    m.insert("deletionGracePeriodSeconds".into(), json!(grace));
                } else if let Some(g) = graceful {
                    // A shorter grace period may replace a longer one.
                    let cur = m
                        .get("deletionGracePeriodSeconds")
                        .and_then(Value::as_i64)
                        .unwrap_or(i64::MAX);
                    if g < cur {
                        m.insert("deletionGracePeriodSeconds".into(), json!(g));
                    }
                }
                if !fins.is_empty() {
                    m.insert("finalizers".into(), json!(fins));
                }
                if opts.dry_run {
                    return Ok(obj);
                }
                let value = encode(&obj)?;
                match self
                    .store
                    .update(key.as_bytes(), value, current.mod_revision, current.lease)
                    .await
                {
                    Ok(kv) => {
                        set_resource_version(&mut obj, kv.mod_revision);
                        return Ok(obj);
                    }
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(from_store(r, name, e)),
                }
            }
            if opts.dry_run {
                return Ok(obj);
            }
            match self
                .store
                .delete(key.as_bytes(), Some(current.mod_revision))
                .await
            {
                Ok((rev, _)) => {
                    self.admission.deleted(r, &obj).await;
                    set_resource_version(&mut obj, rev);
                    return Ok(obj);
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound { .. }) => return Err(ApiError::not_found(r, name)),
                Err(e) => return Err(from_store(r, name, e)),
            }
        }
    }

    /// Pods bound to a node are deleted gracefully: the node agent stops
    /// the containers and then deletes the pod with grace 0.
    fn grace_period(&self, r: &ResourceInfo, obj: &Value, opts: &DeleteOptions) -> Option<i64> {
        if r.group != "" || r.resource != "pods" {
            return None;
        }
        let bound = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let phase = obj
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !bound || phase == "Succeeded" || phase == "Failed" {
            return None;
        }
        let grace = opts
            .grace_period_seconds
            .or_else(|| {
                obj.pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
            })
            .unwrap_or(30);
        (grace > 0).then_some(grace)
    }
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether two objects differ in anything but metadata and status.
fn spec_changed(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("metadata");
            o.remove("status");
        }
        v
    };
    strip(new) != strip(old)
}

/// Equal apart from the resource version.
fn same_object(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        v
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_objects_leave_out_the_resource_version_and_self_link_only() {
        let obj = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": { "name": "web", "resourceVersion": "7", "selfLink": "/x", "labels": { "a": "b" } },
            "spec": { "template": { "metadata": { "resourceVersion": "kept" } } },
        });
        let stored: Value = serde_json::from_slice(&encode(&obj).unwrap()).unwrap();
        let mut want = obj.clone();
        let m = want["metadata"].as_object_mut().unwrap();
        m.remove("resourceVersion");
        m.remove("selfLink");
        assert_eq!(stored, want);
        // The caller's object is untouched.
        assert_eq!(obj["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = encode_continue(42, "ns/name\u{0}");
        let d = decode_continue(&t).unwrap();
        assert_eq!((d.rv, d.start.as_str()), (42, "ns/name\u{0}"));
        assert_eq!(decode_continue("!!!").unwrap_err().code, 400);
    }

    #[test]
    fn names_are_checked_with_upstream_messages() {
        assert!(name_errors(NameRule::Subdomain, "web.example-1").is_empty());
        let e = name_errors(NameRule::Subdomain, "Web");
        assert!(
            e[0].starts_with("a lowercase RFC 1123 subdomain must consist of"),
            "{e:?}"
        );
        assert!(!name_errors(NameRule::Dns1035Label, "1abc").is_empty());
        assert!(name_errors(NameRule::Dns1123Label, "1abc").is_empty());
        assert!(!name_errors(NameRule::Dns1123Label, "a.b").is_empty());
        assert!(name_errors(NameRule::PathSegment, "system:admin").is_empty());
    }

    #[test]
    fn generated_names_keep_the_base_and_add_five_characters() {
        let n = generate_name("web-");
        assert!(n.starts_with("web-"));
        assert_eq!(n.len(), 9);
    }
}
