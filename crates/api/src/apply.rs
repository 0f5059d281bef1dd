//! Server-side apply and `metadata.managedFields`, as upstream's field
//! manager (`k8s.io/apimachinery/pkg/util/managedfields`) drives
//! structured-merge-diff (`sigs.k8s.io/structured-merge-diff/v4`), on JSON
//! objects.
//!
//! - [`apply`] merges a user's partial configuration into the live object,
//!   removes what the same manager applied before and no longer applies
//!   (unless someone else owns it), and fails with upstream's conflict
//!   error when it would change fields other managers own.
//! - [`track_update`] records, for a create, update or non-apply patch,
//!   that the writer now owns the fields it changed.
//!
//! Both keep upstream's layers: the version check, the client-side-apply
//! upgrade for `kubectl` (`last-applied-configuration`), the
//! `before-first-apply` manager for objects that predate field tracking, the
//! cap of ten update managers (`ancient-changes`), the stripped metadata
//! fields and the order of the entries.

mod fieldpath;
mod managed;
mod merge;
mod schema;
mod typed;
mod value;

#[cfg(test)]
mod tests;

pub use fieldpath::{Path, PathElement, Set};

use managed::{Managed, ManagedFields, ManagerId, VersionedSet, APPLY, UPDATE};
use merge::{Conflicts, Updater};
use schema::Ty;
use serde_json::{json, Map, Value};

/// Who writes, to what kind, and when.
#[derive(Clone, Copy, Debug)]
pub struct ApplyOptions<'a> {
    /// The field manager (`fieldManager`, or the user agent's program name).
    pub manager: &'a str,
    /// `force=true`: take over conflicting fields instead of failing.
    pub force: bool,
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    /// RFC 3339 timestamp recorded as `managedFields[].time` on change.
    pub now: &'a str,
}

/// Where a write lands, beyond [`ApplyOptions`]: the subresource (upstream
/// records it in the entries and ignores `managedFields` sent to a
/// subresource), the strategy's reset fields (upstream's `GetResetFields`,
/// e.g. `status` for the main resource of a kind with a status
/// subresource), which no manager ever owns through this endpoint, and for
/// a custom resource its CRD version's `openAPIV3Schema` (without it,
/// everything below `metadata` walks as upstream's schemaless "deduced"
/// type).
#[derive(Clone, Copy, Debug, Default)]
pub struct Scope<'a> {
    pub subresource: &'a str,
    pub reset_fields: &'a [&'a [&'a str]],
    pub schema: Option<&'a Value>,
}

/// A field an apply would change that another manager owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldConflict {
    /// The other manager's name.
    pub manager: String,
    /// The `StatusCause` message: `conflict with "mgr" using v1`.
    pub message: String,
    /// The field path: `.data.a`, `.spec.containers[name="web"].image`.
    pub field: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// 409 Conflict, reason `Conflict`, one `FieldManagerConflict` cause per
    /// field (see [`ApplyError::status`]).
    #[error("{message}")]
    Conflict {
        conflicts: Vec<FieldConflict>,
        message: String,
    },
    /// Upstream answers 400 BadRequest (wrong kind, `managedFields` in the
    /// configuration), or 500 for the errors it does not classify, whose
    /// messages start with `failed to` (an invalid list key, duplicates).
    #[error("{0}")]
    Invalid(String),
}

impl ApplyError {
    /// The HTTP status code upstream answers with.
    pub fn code(&self) -> u16 {
        match self {
            ApplyError::Conflict { .. } => 409,
            ApplyError::Invalid(m) if m.starts_with("failed to ") => 500,
            ApplyError::Invalid(_) => 400,
        }
    }

    /// The `Status` object upstream answers with.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "code": self.code(),
        });
        match self {
            ApplyError::Conflict { conflicts, .. } => {
                status["reason"] = json!("Conflict");
                let causes: Vec<Value> = conflicts
                    .iter()
                    .map(|c| {
                        json!({"reason": "FieldManagerConflict", "message": c.message, "field": c.field})
                    })
                    .collect();
                status["details"] = json!({ "causes": causes });
            }
            ApplyError::Invalid(_) if self.code() == 400 => status["reason"] = json!("BadRequest"),
            ApplyError::Invalid(_) => {}
        }
        status
    }
}

/// Server-side apply of `applied` (the user's partial config) onto `live`
/// (None when the object does not exist yet). Returns the new object with
/// `metadata.managedFields` updated, or a conflict error when fields it
/// sets with different values are owned by other managers and `force` is
/// false.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    opts: &ApplyOptions,
) -> Result<Value, ApplyError> {
    apply_in(live, applied, opts, Scope::default())
}

/// [`apply`] to a subresource, or with the strategy's reset fields.
pub fn apply_in(
    live: Option<&Value>,
    applied: &Value,
    opts: &ApplyOptions,
    scope: Scope,
) -> Result<Value, ApplyError> {
    FieldManager::new(opts, scope).apply(live, applied)
}

/// For non-apply writes (create/update/patch): records in `new`'s
/// `metadata.managedFields` that `opts.manager` (operation `Update`) now
/// owns the fields it changed relative to `old` (None on create: it owns
/// every field it set), removing those fields from other managers' sets.
/// `managedFields` sent by the client are respected as upstream does (an
/// empty list resets them); managers left with no fields are dropped.
pub fn track_update(old: Option<&Value>, new: &mut Value, opts: &ApplyOptions) {
    track_update_in(old, new, opts, Scope::default())
}

/// [`track_update`] for a write to a subresource, or with reset fields.
pub fn track_update_in(old: Option<&Value>, new: &mut Value, opts: &ApplyOptions, scope: Scope) {
    FieldManager::new(opts, scope).update(old, new)
}

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const BEFORE_FIRST_APPLY: &str = "before-first-apply";
const CURRENT_OPERATION: &str = "current-operation";
const MAX_UPDATE_MANAGERS: usize = 10;
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Fields no manager owns (upstream's `stripMetaManager`).
fn strip_set() -> Set {
    let mut s = Set::new();
    let f = |n: &str| PathElement::Field(n.to_string());
    for top in ["apiVersion", "kind", "metadata"] {
        s.insert(&[f(top)]);
    }
    for m in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        s.insert(&[f("metadata"), f(m)]);
    }
    s
}

enum Error {
    Conflicts(Conflicts),
    Invalid(String),
}

struct FieldManager<'a> {
    opts: &'a ApplyOptions<'a>,
    scope: Scope<'a>,
    api_version: String,
    updater: Updater,
}

fn metadata(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

fn managed_fields(obj: &Value) -> Option<&Value> {
    metadata(obj).and_then(|m| m.get("managedFields"))
}

/// The object without `metadata.managedFields`.
fn without_managed_fields(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    obj
}

fn set_managed_fields(obj: &mut Value, managed: &Managed) {
    let Some(obj) = obj.as_object_mut() else {
        return;
    };
    match managed.encode() {
        Some(entries) => {
            let meta = obj
                .entry("metadata")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(meta) = meta.as_object_mut() {
                meta.insert("managedFields".into(), entries);
            }
        }
        None => {
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
        }
    }
}

/// `schema.ParseGroupVersion` of an object's `apiVersion` (empty when
/// malformed, as `FromAPIVersionAndKind` leaves it) and its kind.
fn gvk_of(obj: &Value) -> (String, String, String) {
    let text = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let api_version = text("apiVersion");
    let (group, version) = match api_version.split('/').collect::<Vec<_>>()[..] {
        [""] => (String::new(), String::new()),
        [v] => (String::new(), v.to_string()),
        [g, v] => (g.to_string(), v.to_string()),
        _ => (String::new(), String::new()),
    };
    (group, version, text("kind"))
}

fn gvk_string(group: &str, version: &str, kind: &str) -> String {
    format!("{group}/{version}, Kind={kind}")
}

/// `objectGVKNN`: `namespace/name; apps/v1, Kind=Deployment`.
fn object_gvknn(obj: &Value) -> String {
    let meta = |k: &str| {
        metadata(obj)
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (g, v, k) = gvk_of(obj);
    format!(
        "{}/{}; {}",
        meta("namespace"),
        meta("name"),
        gvk_string(&g, &v, &k)
    )
}

/// `isResetManagedFields`: an empty list, or a list of one empty entry.
fn is_reset(entries: Option<&Value>) -> bool {
    match entries {
        Some(Value::Array(a)) if a.is_empty() => true,
        Some(Value::Array(a)) if a.len() == 1 => a[0].as_object().is_some_and(|e| {
            e.values().all(|v| match v {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                _ => false,
            })
        }),
        _ => false,
    }
}

impl<'a> FieldManager<'a> {
    fn new(opts: &'a ApplyOptions<'a>, scope: Scope<'a>) -> FieldManager<'a> {
        let api_version = if opts.group.is_empty() {
            opts.version.to_string()
        } else {
            format!("{}/{}", opts.group, opts.version)
        };
        let ty = match (
            schema::root(opts.group, opts.version, opts.kind),
            scope.schema,
        ) {
            (Ty::CustomResource, Some(s)) => schema::custom_resource(s),
            (ty, _) => ty,
        };
        let mut ignored = Set::new();
        for path in scope.reset_fields {
            let path: Vec<PathElement> = path
                .iter()
                .map(|f| PathElement::Field((*f).to_string()))
                .collect();
            ignored.insert(&path);
        }
        FieldManager {
            opts,
            scope,
            api_version,
            updater: Updater { ty, ignored },
        }
    }

    fn ty(&self) -> Ty {
        self.updater.ty
    }

    fn manager_name(&self) -> &str {
        if self.opts.manager.is_empty() {
            "unknown"
        } else {
            self.opts.manager
        }
    }

    fn id(&self, manager: &str, operation: &str) -> ManagerId {
        ManagerId::new(
            manager,
            operation,
            &self.api_version,
            self.scope.subresource,
        )
    }

    /// Removes the fields no manager owns from `manager`'s set.
    fn strip(&self, fields: &mut ManagedFields, manager: &ManagerId) {
        if let Some(vs) = fields.get_mut(manager) {
            vs.set = vs.set.difference(&strip_set());
            if vs.set.is_empty() {
                fields.remove(manager);
            }
        }
    }

    // ---- Update ----

    fn update(&self, old: Option<&Value>, new: &mut Value) {
        let managed = self.decode_live_or_new(old, new);
        let new_obj = without_managed_fields(new);
        *new = new_obj.clone();
        let result = if managed.fields.is_empty() && old.is_some() {
            // An object that predates field tracking stays untracked until
            // its first apply (`skipNonAppliedManager`).
            Ok(managed)
        } else {
            let live = match old {
                Some(old) => without_managed_fields(old),
                None => schema::zero_object(self.ty()),
            };
            self.update_stack(&live, &new_obj, managed, self.manager_name())
        };
        // On failure upstream (v1.32) drops managedFields rather than keep
        // garbage.
        if let Ok(managed) = result {
            set_managed_fields(new, &managed);
        }
    }

    /// `decodeLiveOrNew`: the client's `managedFields` unless it sent none,
    /// sent undecodable ones, or wrote to a subresource; an empty list (or
    /// one empty entry) resets them.
    fn decode_live_or_new(&self, old: Option<&Value>, new: &Value) -> Managed {
        let live = || {
            old.and_then(|o| Managed::decode(managed_fields(o)).ok())
                .unwrap_or_default()
        };
        if !self.scope.subresource.is_empty() {
            return live();
        }
        if is_reset(managed_fields(new)) {
            return Managed::default();
        }
        match Managed::decode(managed_fields(new)) {
            Ok(m) if !m.fields.is_empty() => m,
            _ => live(),
        }
    }

    /// The update layers: the cap on update managers, the manager identity,
    /// the `current-operation` bookkeeping and the stripped fields around
    /// structured-merge-diff's `Update`.
    fn update_stack(
        &self,
        live: &Value,
        new: &Value,
        mut managed: Managed,
        manager: &str,
    ) -> Result<Managed, Error> {
        let id = self.id(manager, UPDATE);
        let current = ManagerId::internal(CURRENT_OPERATION);
        for (obj, what) in [(new, "new"), (live, "live")] {
            typed::validate(obj, self.ty(), true).map_err(|e| {
                Error::Invalid(format!(
                    "failed to convert {what} object ({}) to smd typed: {e}",
                    object_gvknn(obj)
                ))
            })?;
        }
        self.updater
            .update_op(live, new, &self.api_version, &mut managed.fields, &current);
        self.strip(&mut managed.fields, &current);
        if let Some(vs) = managed.fields.remove(&current) {
            let set = match managed.fields.get(&id) {
                Some(previous) => vs.set.union(&previous.set),
                None => vs.set,
            };
            managed.fields.insert(
                id.clone(),
                VersionedSet {
                    set,
                    api_version: vs.api_version,
                    applied: vs.applied,
                },
            );
            managed.times.insert(id, Some(self.opts.now.to_string()));
        }
        managed.cap_update_managers(MAX_UPDATE_MANAGERS);
        Ok(managed)
    }

    // ---- Apply ----

    fn apply(&self, live: Option<&Value>, applied: &Value) -> Result<Value, ApplyError> {
        let live = live.cloned().unwrap_or_else(|| Value::Object(Map::new()));
        let managed = Managed::decode(managed_fields(&live))
            .map_err(|e| ApplyError::Invalid(format!("failed to decode managed fields: {e}")))?;
        let (g, v, k) = gvk_of(applied);
        if (g.as_str(), v.as_str(), k.as_str())
            != (self.opts.group, self.opts.version, self.opts.kind)
        {
            return Err(ApplyError::Invalid(format!(
                "invalid object type: {}",
                gvk_string(&g, &v, &k)
            )));
        }
        let (mut obj, managed) = match self.apply_last_applied(&live, applied, managed) {
            Ok(r) => r,
            Err(Error::Invalid(m)) => return Err(ApplyError::Invalid(m)),
            Err(Error::Conflicts(c)) => return Err(conflict_error(c)),
        };
        if self.opts.manager == "kubectl" && has_last_applied(&obj) {
            set_last_applied(&mut obj, &build_last_applied(applied));
        }
        set_managed_fields(&mut obj, &managed);
        Ok(obj)
    }

    /// `lastAppliedManager`: when `kubectl` upgrades an object managed by
    /// client-side apply, conflicts on fields whose live values still match
    /// its `last-applied-configuration` are forced.
    fn apply_last_applied(
        &self,
        live: &Value,
        applied: &Value,
        managed: Managed,
    ) -> Result<(Value, Managed), Error> {
        let result = self.apply_skip_non_applied(live, applied, managed.clone(), self.opts.force);
        if self.opts.manager != "kubectl" {
            return result;
        }
        let Err(Error::Conflicts(conflicts)) = result else {
            return result;
        };
        let Some(allowed) = self.allowed_conflicts_from_last_applied(live) else {
            return Err(Error::Conflicts(conflicts));
        };
        if !conflicts.to_set().difference(&allowed).is_empty() {
            let left = conflicts
                .0
                .into_iter()
                .filter(|(_, p)| !allowed.has(&p.0))
                .collect();
            return Err(Error::Conflicts(Conflicts(left)));
        }
        self.apply_skip_non_applied(live, applied, managed, true)
    }

    fn allowed_conflicts_from_last_applied(&self, live: &Value) -> Option<Set> {
        let text = metadata(live)?
            .get("annotations")?
            .get(LAST_APPLIED)?
            .as_str()
            .filter(|s| !s.is_empty())?;
        let last: Value = serde_json::from_str(text).ok()?;
        if last.get("apiVersion").and_then(Value::as_str) != Some(self.api_version.as_str()) {
            return None;
        }
        typed::validate(&last, self.ty(), false).ok()?;
        typed::validate(live, self.ty(), true).ok()?;
        let set = typed::to_field_set(&last, self.ty());
        let c = typed::compare(&last, live, self.ty());
        Some(
            set.difference(&c.modified)
                .difference(&c.added)
                .difference(&c.removed),
        )
    }

    /// `skipNonAppliedManager`: an object without managed fields first gets
    /// a `before-first-apply` manager owning everything it holds.
    fn apply_skip_non_applied(
        &self,
        live: &Value,
        applied: &Value,
        mut managed: Managed,
        force: bool,
    ) -> Result<(Value, Managed), Error> {
        let live = without_managed_fields(live);
        if managed.fields.is_empty() {
            let empty = schema::zero_object(self.ty());
            managed = self
                .update_stack(&empty, &live, managed, BEFORE_FIRST_APPLY)
                .map_err(|e| match e {
                    Error::Invalid(m) => {
                        Error::Invalid(format!("failed to create manager for existing fields: {m}"))
                    }
                    e => e,
                })?;
        }
        self.apply_stack(&live, applied, managed, force)
    }

    /// The apply layers: the manager identity, the time of change and the
    /// stripped fields around structured-merge-diff's `Apply`.
    fn apply_stack(
        &self,
        live: &Value,
        applied: &Value,
        mut managed: Managed,
        force: bool,
    ) -> Result<(Value, Managed), Error> {
        if managed_fields(applied).is_some_and(Value::is_array) {
            return Err(Error::Invalid(
                "metadata.managedFields must be nil".to_string(),
            ));
        }
        typed::validate(applied, self.ty(), false).map_err(|e| {
            Error::Invalid(format!(
                "failed to create typed patch object ({}): {e}",
                object_gvknn(applied)
            ))
        })?;
        typed::validate(live, self.ty(), true).map_err(|e| {
            Error::Invalid(format!(
                "failed to create typed live object ({}): {e}",
                object_gvknn(live)
            ))
        })?;
        let id = self.id(self.manager_name(), APPLY);
        let new = self
            .updater
            .apply(
                live,
                applied,
                &self.api_version,
                &mut managed.fields,
                &id,
                force,
            )
            .map_err(Error::Conflicts)?;
        self.strip(&mut managed.fields, &id);
        let obj = match new {
            Some(new) => {
                managed.times.insert(id, Some(self.opts.now.to_string()));
                if schema::is_builtin(self.opts.group, self.opts.version, self.opts.kind) {
                    drop_applied_nulls(new, applied)
                } else {
                    new
                }
            }
            None => live.clone(),
        };
        Ok((obj, managed))
    }
}

/// Upstream turns the merged object into a typed one, where a field the
/// configuration set to `null` is simply unset; JSON objects of built-in
/// kinds drop those keys instead of storing `null`.
fn drop_applied_nulls(mut obj: Value, applied: &Value) -> Value {
    fn walk(obj: &mut Value, applied: &Value) {
        let (Value::Object(o), Value::Object(a)) = (obj, applied) else {
            return;
        };
        for (k, av) in a {
            if av.is_null() {
                if o.get(k).is_some_and(Value::is_null) {
                    o.remove(k);
                }
            } else if let Some(ov) = o.get_mut(k) {
                walk(ov, av);
            }
        }
    }
    walk(&mut obj, applied);
    obj
}

fn conflict_error(conflicts: Conflicts) -> ApplyError {
    let mut list = conflicts.0;
    list.sort_by(|a, b| a.0.cmp(&b.0));
    let message = if list.len() == 1 {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            list[0].0.display(),
            list[0].1
        )
    } else {
        let mut lines = Vec::new();
        let mut current: Option<&ManagerId> = None;
        for (id, path) in &list {
            if current != Some(id) {
                lines.push(format!("conflicts with {}:", id.display()));
                current = Some(id);
            }
            lines.push(format!("- {path}"));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            list.len(),
            lines.join("\n")
        )
    };
    let conflicts = list
        .iter()
        .map(|(id, path)| FieldConflict {
            manager: id.manager.clone(),
            message: format!("conflict with {}", id.display()),
            field: path.to_string(),
        })
        .collect();
    ApplyError::Conflict { conflicts, message }
}

fn has_last_applied(obj: &Value) -> bool {
    metadata(obj)
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
}

/// The configuration `kubectl` applied, without its own annotation, as
/// `runtime.Encode` writes it.
fn build_last_applied(applied: &Value) -> String {
    let mut obj = applied.clone();
    if let Some(a) = obj
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        a.remove(LAST_APPLIED);
    }
    let mut text = value::go_json(&obj);
    text.push('\n');
    text
}

/// `SetLastApplied`: drops the annotation instead when the annotations
/// would exceed their total size limit.
fn set_last_applied(obj: &mut Value, text: &str) {
    let Some(annotations) = obj
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    annotations.insert(LAST_APPLIED.to_string(), Value::String(text.to_string()));
    let size: usize = annotations
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    if size > TOTAL_ANNOTATION_SIZE_LIMIT {
        annotations.remove(LAST_APPLIED);
    }
}
