//! The strategic merge patch metadata model: which lists merge by which key,
//! which maps are replaced whole, where `$retainKeys` applies. Upstream reads
//! these from Go struct tags by reflection; we read them from a table
//! generated from the v1.32 OpenAPI definitions ([`super::table`]).

use super::table::KINDS;

/// A field's `patchStrategy` tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// No tag: maps merge key by key, lists are replaced.
    None,
    /// `merge`: lists merge (by the merge key for lists of objects).
    Merge,
    /// `replace`: the value is replaced whole.
    Replace,
    /// `retainKeys`: a `$retainKeys` directive clears unlisted fields.
    RetainKeys,
    /// `merge,retainKeys`.
    MergeRetainKeys,
}

impl Strategy {
    /// The strategy other than `retainKeys` (upstream's
    /// `extractRetainKeysPatchStrategy`).
    pub fn patch_strategy(self) -> Strategy {
        match self {
            Strategy::MergeRetainKeys => Strategy::Merge,
            Strategy::RetainKeys => Strategy::None,
            s => s,
        }
    }

    /// Whether `retainKeys` is part of the strategy.
    pub fn retain_keys(self) -> bool {
        matches!(self, Strategy::RetainKeys | Strategy::MergeRetainKeys)
    }
}

/// What a field holds, as far as patching cares.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// A scalar, or an object without tagged fields.
    Leaf,
    /// A list of scalars, or of objects without tagged fields.
    ListOfLeaf,
    Struct(&'static Struct),
    ListOf(&'static Struct),
    MapOf(&'static Struct),
}

/// One tagged (or tag-reaching) field of a type.
#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub strategy: Strategy,
    pub merge_key: Option<&'static str>,
    pub shape: Shape,
}

/// A type with tagged fields, listed sorted by JSON name.
#[derive(Debug)]
pub struct Struct {
    /// The OpenAPI definition name, e.g. `io.k8s.api.core.v1.PodSpec`.
    pub name: &'static str,
    pub fields: &'static [Field],
}

impl Struct {
    fn field(&self, name: &str) -> Option<&'static Field> {
        let fields: &'static [Field] = self.fields;
        fields
            .binary_search_by(|f| f.name.cmp(name))
            .ok()
            .map(|i| &fields[i])
    }
}

/// The type a patch is applied against (upstream passes a Go struct).
#[derive(Clone, Copy, Debug)]
pub enum Schema {
    /// No metadata: maps merge, lists are replaced.
    Unknown,
    Struct(&'static Struct),
    /// A map whose values are of a tagged type.
    MapOf(&'static Struct),
}

/// The metadata of one field (upstream's `LookupPatchMetadata` result).
#[derive(Clone, Copy, Debug)]
pub struct FieldMeta {
    pub strategy: Strategy,
    pub merge_key: Option<&'static str>,
    /// The schema of the field's value, or of its elements for a list.
    pub schema: Schema,
    /// Whether list elements are objects of a known type (for error texts).
    pub(crate) elem_is_struct: bool,
}

impl FieldMeta {
    const NONE: FieldMeta = FieldMeta {
        strategy: Strategy::None,
        merge_key: None,
        schema: Schema::Unknown,
        elem_is_struct: false,
    };
}

impl Schema {
    /// The root type of a built-in kind, e.g. `("apps", "v1", "Deployment")`.
    /// `None` for kinds without strategic merge metadata (custom resources:
    /// upstream refuses strategic merge patches for them).
    pub fn for_kind(group: &str, version: &str, kind: &str) -> Option<Schema> {
        KINDS
            .binary_search_by(|(g, v, k, _)| (*g, *v, *k).cmp(&(group, version, kind)))
            .ok()
            .map(|i| Schema::Struct(KINDS[i].3))
    }

    /// The metadata of field `name` of this type.
    pub fn field(self, name: &str) -> FieldMeta {
        match self {
            Schema::Unknown => FieldMeta::NONE,
            Schema::MapOf(s) => FieldMeta {
                schema: Schema::Struct(s),
                ..FieldMeta::NONE
            },
            Schema::Struct(s) => match s.field(name) {
                None => FieldMeta::NONE,
                Some(f) => {
                    let (schema, elem_is_struct) = match f.shape {
                        Shape::Leaf | Shape::ListOfLeaf => (Schema::Unknown, false),
                        Shape::Struct(t) => (Schema::Struct(t), false),
                        Shape::ListOf(t) => (Schema::Struct(t), true),
                        Shape::MapOf(t) => (Schema::MapOf(t), false),
                    };
                    FieldMeta {
                        strategy: f.strategy,
                        merge_key: f.merge_key,
                        schema,
                        elem_is_struct,
                    }
                }
            },
        }
    }

    /// The metadata at a field path below this type, list elements being
    /// transparent: `["spec", "template", "spec", "containers", "ports"]`.
    pub fn lookup_path(self, path: &[&str]) -> FieldMeta {
        let mut schema = self;
        let mut meta = FieldMeta::NONE;
        for name in path {
            meta = schema.field(name);
            schema = meta.schema;
        }
        meta
    }

    /// The OpenAPI definition name of the type, when known.
    pub fn type_name(self) -> Option<&'static str> {
        match self {
            Schema::Struct(s) | Schema::MapOf(s) => Some(s.name),
            Schema::Unknown => None,
        }
    }
}

/// The patch metadata of a built-in kind's field, e.g.
/// `patch_meta("apps", "v1", "Deployment", &["spec", "template", "spec", "containers"])`
/// gives strategy `Merge` and merge key `name`.
pub fn patch_meta(group: &str, version: &str, kind: &str, path: &[&str]) -> Option<FieldMeta> {
    Schema::for_kind(group, version, kind).map(|s| s.lookup_path(path))
}
