//! The schema server-side apply walks objects with: which fields are structs
//! (named fields), maps (granular or atomic) and lists (atomic, sets, or
//! associative by key fields), as upstream's `schemaconv` derives them from
//! the OpenAPI extensions `x-kubernetes-list-type`,
//! `x-kubernetes-list-map-keys`, `x-kubernetes-map-type` and, where no list
//! type is given, `x-kubernetes-patch-strategy: merge` with its
//! `x-kubernetes-patch-merge-key`.
//!
//! Custom resources are walked with their CRD's structural schema when the
//! caller has it ([`custom_resource`]), and otherwise with upstream's
//! "deduced" schema below `metadata`: maps are granular, lists atomic.

#[rustfmt::skip]
mod table;

use serde_json::Value;

/// A struct type: its non-scalar fields, sorted by name.
#[derive(Debug)]
pub(crate) struct Def {
    pub name: &'static str,
    /// `x-kubernetes-map-type: atomic` on the type (`+structType=atomic`).
    pub atomic: bool,
    pub fields: &'static [(&'static str, Ty)],
    /// The schema defaults of its fields (custom resources only), as JSON.
    pub defaults: &'static [(&'static str, &'static str)],
}

impl Def {
    pub(crate) const fn new(
        name: &'static str,
        atomic: bool,
        fields: &'static [(&'static str, Ty)],
    ) -> Def {
        Def {
            name,
            atomic,
            fields,
            defaults: &[],
        }
    }

    fn field(&self, name: &str) -> Option<Ty> {
        self.fields
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| self.fields[i].1)
    }
}

/// The type of a field, a map value or a list item.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ty {
    /// A scalar: a leaf.
    Scalar,
    /// Any value, owned whole (`RawExtension`).
    Untyped,
    /// Any value; objects are granular maps of deduced values, lists atomic.
    Deduced,
    /// A struct type by definition name.
    Ref(&'static str),
    /// A struct type whose field overrides its map type (true: atomic).
    RefAs(&'static str, bool),
    /// A struct type of a custom resource schema.
    Struct(&'static Def),
    /// A map of values of one type (true: atomic).
    Map(&'static Ty, bool),
    /// A non-atomic list.
    List(&'static Ty, ListType),
    /// The root of a custom resource: `metadata` is an `ObjectMeta`, the
    /// rest is deduced.
    CustomResource,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum ListType {
    /// `x-kubernetes-list-type: set`: items are scalars, owned one by one.
    Set,
    /// `x-kubernetes-list-type: map`: items are objects keyed by these fields.
    Map(&'static [&'static str]),
}

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

static CUSTOM_RESOURCE: Def = Def::new("", false, &[("metadata", Ty::Ref(OBJECT_META))]);

fn def(name: &str) -> Option<&'static Def> {
    table::DEFS
        .binary_search_by(|d| d.name.cmp(name))
        .ok()
        .map(|i| &table::DEFS[i])
}

/// The root type of a kind.
pub(crate) fn root(group: &str, version: &str, kind: &str) -> Ty {
    table::KINDS
        .binary_search_by(|(g, v, k, _)| (*g, *v, *k).cmp(&(group, version, kind)))
        .ok()
        .map_or(Ty::CustomResource, |i| Ty::Ref(table::KINDS[i].3))
}

/// Whether the kind has built-in definitions.
pub(crate) fn is_builtin(group: &str, version: &str, kind: &str) -> bool {
    matches!(root(group, version, kind), Ty::Ref(_))
}

/// How a value of some type is walked: upstream's atom once the schema and
/// the value's shape (`deduceAtom`) are known.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Atom {
    /// A scalar, or an atomic list/map/struct: owned and replaced whole.
    Leaf,
    /// A granular map or struct: keys are walked one by one.
    Map(MapType),
    /// A set or an associative list: items are walked one by one.
    List(&'static Ty, ListType),
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum MapType {
    /// Declared fields; undeclared keys are deduced.
    Struct(&'static Def),
    /// Every key holds this type.
    Of(&'static Ty),
    /// Every key holds a deduced value.
    Deduced,
}

static DEDUCED: Ty = Ty::Deduced;

impl MapType {
    /// The type of key `name`, and whether it is a declared struct field
    /// (upstream tracks map keys, not struct fields, as members of the
    /// enclosing node).
    pub(crate) fn field(self, name: &str) -> (Ty, bool) {
        match self {
            MapType::Struct(d) => match d.field(name) {
                Some(ty) => (ty, true),
                // Scalar fields are left out of the table; an unknown field
                // is walked as upstream walks a deduced one.
                None => (Ty::Deduced, false),
            },
            MapType::Of(ty) => (*ty, false),
            MapType::Deduced => (DEDUCED, false),
        }
    }

    /// Whether `name` is a declared field (for `EnsureNamedFieldsAreMembers`).
    pub(crate) fn declares(self, name: &str) -> bool {
        matches!(self, MapType::Struct(d) if d.field(name).is_some())
    }
}

fn struct_atom(name: &str, atomic: Option<bool>) -> Atom {
    match def(name) {
        Some(d) if atomic.unwrap_or(d.atomic) => Atom::Leaf,
        Some(d) => Atom::Map(MapType::Struct(d)),
        None => Atom::Map(MapType::Deduced),
    }
}

/// The atom of a type alone (upstream's `Schema.Resolve`), as
/// `EnsureNamedFieldsAreMembers` sees it.
pub(crate) fn resolve(ty: Ty) -> Atom {
    match ty {
        Ty::Scalar | Ty::Untyped => Atom::Leaf,
        Ty::Deduced => Atom::Map(MapType::Deduced),
        Ty::Ref(name) => struct_atom(name, None),
        Ty::RefAs(name, atomic) => struct_atom(name, Some(atomic)),
        Ty::Struct(d) if d.atomic => Atom::Leaf,
        Ty::Struct(d) => Atom::Map(MapType::Struct(d)),
        Ty::Map(_, true) => Atom::Leaf,
        Ty::Map(elem, false) => Atom::Map(MapType::Of(elem)),
        Ty::List(elem, lt) => Atom::List(elem, lt),
        Ty::CustomResource => Atom::Map(MapType::Struct(&CUSTOM_RESOURCE)),
    }
}

/// The atom of a type for a value (`deduceAtom`): a value whose shape the
/// type does not allow is owned whole, and a deduced value is a map only
/// when it is an object. `None` and `null` take the type's own atom.
pub(crate) fn atom(ty: Ty, v: Option<&Value>) -> Atom {
    let a = resolve(ty);
    let shape_ok = match (a, v) {
        (_, None | Some(Value::Null)) => true,
        (Atom::Map(_), Some(v)) => v.is_object(),
        (Atom::List(..), Some(v)) => v.is_array(),
        (Atom::Leaf, _) => true,
    };
    if shape_ok {
        if let (Ty::Deduced, None | Some(Value::Null)) = (ty, v) {
            return Atom::Leaf;
        }
        a
    } else {
        Atom::Leaf
    }
}

/// The atom for a pair of values (live and new): both must agree on a shape,
/// a missing or null side takes the other's.
pub(crate) fn atom2(ty: Ty, l: Option<&Value>, r: Option<&Value>) -> Atom {
    fn present(v: Option<&Value>) -> Option<&Value> {
        v.filter(|v| !v.is_null())
    }
    match (present(l), present(r)) {
        (None, None) => atom(ty, r.or(l)),
        (Some(l), None) => atom(ty, Some(l)),
        (None, Some(r)) => atom(ty, Some(r)),
        (Some(l), Some(r)) => match (atom(ty, Some(l)), atom(ty, Some(r))) {
            (Atom::Map(_), a @ Atom::Map(_)) | (Atom::List(..), a @ Atom::List(..)) => a,
            _ => Atom::Leaf,
        },
    }
}

/// Upstream's `+default` values of list-map key fields: an item that omits
/// one is keyed by its default.
pub(crate) fn key_default(elem: Ty, field: &str) -> Option<Value> {
    let name = match elem {
        Ty::Ref(name) | Ty::RefAs(name, _) => name,
        Ty::Struct(d) => {
            let (_, json) = d.defaults.iter().find(|(f, _)| *f == field)?;
            return serde_json::from_str(json).ok();
        }
        _ => return None,
    };
    match (name, field) {
        ("io.k8s.api.core.v1.ContainerPort", "protocol")
        | ("io.k8s.api.core.v1.ServicePort", "protocol") => Some(Value::String("TCP".into())),
        ("io.k8s.api.core.v1.LocalObjectReference", "name") => Some(Value::String(String::new())),
        _ => None,
    }
}

/// The Go zero value of a kind as upstream's `New()` serializes it, which an
/// object created by a non-apply request is compared against: the struct
/// fields held by value that matter for ownership of whole nodes.
pub(crate) fn zero_object(ty: Ty) -> Value {
    let mut obj = serde_json::Map::new();
    if let Atom::Map(MapType::Struct(d)) = resolve(ty) {
        zero_fields(d.name, &mut obj);
    }
    Value::Object(obj)
}

fn zero_fields(type_name: &str, obj: &mut serde_json::Map<String, Value>) {
    let Some(d) = def(type_name) else { return };
    for (field, ty) in d.fields {
        let value_struct = matches!(*field, "metadata" | "spec" | "status")
            || VALUE_STRUCTS.contains(&(type_name, *field));
        if !value_struct {
            continue;
        }
        if let Ty::Ref(name) = ty {
            let mut child = serde_json::Map::new();
            zero_fields(name, &mut child);
            obj.insert((*field).to_string(), Value::Object(child));
        }
    }
    if type_name == "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" {
        obj.insert("creationTimestamp".to_string(), Value::Null);
    }
    for (t, field) in NULL_SLICES {
        if *t == type_name {
            obj.insert((*field).to_string(), Value::Null);
        }
    }
}

/// Struct fields held by value (not pointer) below the roots of the common
/// kinds; `metadata`, `spec` and `status` are held by value everywhere.
const VALUE_STRUCTS: &[(&str, &str)] = &[
    ("io.k8s.api.apps.v1.DaemonSetSpec", "template"),
    ("io.k8s.api.apps.v1.DaemonSetSpec", "updateStrategy"),
    ("io.k8s.api.apps.v1.DeploymentSpec", "strategy"),
    ("io.k8s.api.apps.v1.DeploymentSpec", "template"),
    ("io.k8s.api.apps.v1.ReplicaSetSpec", "template"),
    ("io.k8s.api.apps.v1.StatefulSetSpec", "template"),
    ("io.k8s.api.apps.v1.StatefulSetSpec", "updateStrategy"),
    ("io.k8s.api.batch.v1.CronJobSpec", "jobTemplate"),
    ("io.k8s.api.batch.v1.JobSpec", "template"),
    ("io.k8s.api.core.v1.PodTemplate", "template"),
    ("io.k8s.api.core.v1.ServiceStatus", "loadBalancer"),
    ("io.k8s.api.networking.v1.IngressStatus", "loadBalancer"),
];

/// Slices without `omitempty`, serialized as `null` in a zero value.
const NULL_SLICES: &[(&str, &str)] = &[("io.k8s.api.core.v1.PodSpec", "containers")];

/// The schema of a custom resource from its CRD version's
/// `openAPIV3Schema`, as upstream's `schemaconv` reads a structural schema:
/// `metadata` is an `ObjectMeta`, objects with properties are structs,
/// `additionalProperties` make maps, lists are atomic unless
/// `x-kubernetes-list-type` says otherwise, and
/// `x-kubernetes-preserve-unknown-fields` or schemaless values are deduced.
///
/// Converted schemas live for the rest of the process, one per distinct
/// schema (CRDs change rarely).
pub(crate) fn custom_resource(schema: &Value) -> Ty {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Ty>>> = OnceLock::new();
    let key = super::value::go_json(schema);
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(ty) = cache.get(&key) {
        return *ty;
    }
    let ty = match convert(schema, false) {
        Ty::Struct(d) => {
            let mut fields: Vec<(&'static str, Ty)> = d
                .fields
                .iter()
                .filter(|(n, _)| *n != "metadata")
                .copied()
                .collect();
            fields.push(("metadata", Ty::Ref(OBJECT_META)));
            fields.sort_by(|a, b| a.0.cmp(b.0));
            Ty::Struct(leak(Def {
                fields: leak_slice(fields),
                ..Def::new("", false, &[])
            }))
        }
        _ => Ty::CustomResource,
    };
    cache.insert(key, ty);
    ty
}

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

fn leak_slice<T>(v: Vec<T>) -> &'static [T] {
    Box::leak(v.into_boxed_slice())
}

fn leak_str(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn convert(node: &Value, preserve_unknown: bool) -> Ty {
    let flag = |k: &str| node.get(k).and_then(Value::as_bool).unwrap_or(false);
    let preserve = preserve_unknown || flag("x-kubernetes-preserve-unknown-fields");
    if flag("x-kubernetes-int-or-string") {
        return Ty::Scalar;
    }
    let atomic = node.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic");
    let properties = node.get("properties").and_then(Value::as_object);
    let additional = node.get("additionalProperties");
    match node.get("type").and_then(Value::as_str).unwrap_or("") {
        "array" => {
            let elem = node
                .get("items")
                .map_or(Ty::Untyped, |i| convert(i, preserve));
            match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("set") => Ty::List(leak(elem), ListType::Set),
                Some("map") => {
                    let keys: Vec<&'static str> = node
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(leak_str)
                        .collect();
                    Ty::List(leak(elem), ListType::Map(leak_slice(keys)))
                }
                // An atomic list is a leaf.
                _ => Ty::Scalar,
            }
        }
        "object" | "" if properties.is_some_and(|p| !p.is_empty()) => {
            let props = properties.into_iter().flatten();
            let mut fields: Vec<(&'static str, Ty)> = props
                .clone()
                .map(|(k, v)| (leak_str(k), convert(v, preserve)))
                .collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            let defaults: Vec<(&'static str, &'static str)> = props
                .filter_map(|(k, v)| {
                    v.get("default")
                        .map(|d| (leak_str(k), leak_str(&super::value::go_json(d))))
                })
                .collect();
            Ty::Struct(leak(Def {
                name: "",
                atomic,
                fields: leak_slice(fields),
                defaults: leak_slice(defaults),
            }))
        }
        "object" => match additional {
            Some(a @ Value::Object(_)) => Ty::Map(leak(convert(a, preserve)), atomic),
            _ if atomic => Ty::Untyped,
            _ => Ty::Deduced,
        },
        "" => Ty::Deduced,
        _ => Ty::Scalar,
    }
}
