//! Decoded protobuf messages to Kubernetes JSON, the way Go's encoding/json
//! prints the decoded struct (see the crate docs for the one simplification).

use base64::Engine as _;
use prost_reflect::{DynamicMessage, Kind, MapKey, ReflectMessage, Value};
use serde_json::{Map, Number, Value as Json};

use crate::envelope;
use crate::schema::{self, Schema, Special};
use crate::time;

/// Where in the object a field sits, for error messages (`spec.ports[0].port`).
#[derive(Clone, Copy)]
pub(crate) enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
    Key(&'a Path<'a>, &'a str),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root => f.write_str("(object)"),
            Path::Field(Path::Root, name) => f.write_str(name),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
            Path::Key(parent, k) => write!(f, "{parent}[{k:?}]"),
        }
    }
}

/// A conversion failure at a path; the caller adds the kind.
pub(crate) struct FieldError {
    pub(crate) path: String,
    pub(crate) reason: String,
}

pub(crate) type Result<T> = std::result::Result<T, FieldError>;

pub(crate) fn fail<T>(path: &Path<'_>, reason: impl Into<String>) -> Result<T> {
    Err(FieldError {
        path: path.to_string(),
        reason: reason.into(),
    })
}

/// Converts a decoded message to its JSON form. `depth` counts enveloped
/// objects nested in RawExtensions.
pub(crate) fn message(msg: &DynamicMessage, path: &Path<'_>, depth: usize) -> Result<Json> {
    let desc = msg.descriptor();
    match schema::special(&desc) {
        Some(special) => special_message(special, msg, path, depth),
        None => {
            let mut out = Map::new();
            object_into(msg, &mut out, path, depth)?;
            Ok(Json::Object(out))
        }
    }
}

/// Writes the members of `msg` into `out` as Go prints the decoded struct:
/// unset pointers and `omitempty` zeros are left out; value fields without
/// `omitempty` print their zero; value structs always print (inline ones
/// into the same object).
fn object_into(
    msg: &DynamicMessage,
    out: &mut Map<String, Json>,
    path: &Path<'_>,
    depth: usize,
) -> Result<()> {
    let desc = msg.descriptor();
    let infos = Schema::get().info(&desc);
    for (field, info) in desc.fields().zip(&infos.fields) {
        if info.skip {
            continue;
        }
        let present = msg.has_field(&field);
        if info.inline {
            // An unset inline struct is Go's zero struct: print that.
            if let Value::Message(inner) = msg.get_field(&field).as_ref() {
                object_into(inner, out, path, depth)?;
            }
            continue;
        }
        let here = Path::Field(path, &info.json);
        let keep_zero = info.value && info.tagged && !info.omitempty;
        let json = if field.is_map() || field.is_list() {
            if !present {
                // A nil slice or map: `null` unless omitempty.
                if info.tagged && !info.omitempty {
                    out.insert(info.json.clone(), Json::Null);
                }
                continue;
            }
            let value = msg.get_field(&field);
            if field.is_map() {
                let Value::Map(entries) = value.as_ref() else {
                    return fail(&here, "map field holds no map");
                };
                let Kind::Message(entry) = field.kind() else {
                    return fail(&here, "map without entry type");
                };
                let value_kind = entry.map_entry_value_field().kind();
                let mut map = Map::new();
                let mut entries: Vec<_> = entries.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                for (key, item) in entries {
                    let key_text = map_key_text(key);
                    let item = element(&value_kind, item, &Path::Key(&here, &key_text), depth)?;
                    map.insert(key_text, item);
                }
                Json::Object(map)
            } else {
                let Value::List(items) = value.as_ref() else {
                    return fail(&here, "repeated field holds no list");
                };
                let kind = field.kind();
                let mut list = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    list.push(element(&kind, item, &Path::Index(&here, i), depth)?);
                }
                Json::Array(list)
            }
        } else if let Kind::Message(desc) = field.kind() {
            match (present, msg.get_field(&field).as_ref()) {
                (true, Value::Message(m)) => message(m, &here, depth)?,
                // Go prints an unset value struct as its zero (`"status": {}`, `null` times).
                (false, _) if info.value && info.tagged => zero_message(&desc, &here, depth)?,
                _ => continue,
            }
        } else {
            let value = msg.get_field(&field);
            if !present || schema::is_zero(&value) {
                let explicit_pointer_zero = present && !info.value;
                if !(keep_zero || explicit_pointer_zero) {
                    continue;
                }
                if !present && matches!(field.kind(), Kind::Bytes) {
                    // A nil []byte without omitempty.
                    out.insert(info.json.clone(), Json::Null);
                    continue;
                }
            }
            element(&field.kind(), &value, &here, depth)?
        };
        out.insert(info.json.clone(), json);
    }
    Ok(())
}

/// The JSON of an unset value struct: Go's zero value of the type.
fn zero_message(
    desc: &prost_reflect::MessageDescriptor,
    path: &Path<'_>,
    depth: usize,
) -> Result<Json> {
    Ok(match schema::special(desc) {
        None => message(&DynamicMessage::new(desc.clone()), path, depth)?,
        Some(Special::Duration) => Json::String("0s".into()),
        Some(Special::Quantity) => Json::String("0".into()),
        Some(Special::IntOrString) => Json::from(0),
        Some(_) => Json::Null,
    })
}

fn map_key_text(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

/// One value (a singular field, a list item or a map value).
fn element(kind: &Kind, value: &Value, path: &Path<'_>, depth: usize) -> Result<Json> {
    Ok(match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::I32(n) => Json::from(*n),
        Value::I64(n) => Json::from(*n),
        Value::U32(n) => Json::from(*n),
        Value::U64(n) => Json::from(*n),
        Value::F32(n) => float(f64::from(*n), path)?,
        Value::F64(n) => float(*n, path)?,
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::EnumNumber(n) => Json::from(*n),
        Value::Message(m) => message(m, path, depth)?,
        Value::List(_) | Value::Map(_) => {
            return fail(path, format!("unexpected nested collection for {kind:?}"))
        }
    })
}

/// Go prints integral float64s without a fraction (`3`, not `3.0`).
fn float(n: f64, path: &Path<'_>) -> Result<Json> {
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        return Ok(Json::from(n as i64));
    }
    match Number::from_f64(n) {
        Some(n) => Ok(Json::Number(n)),
        None => fail(path, format!("{n} has no JSON form")),
    }
}

fn special_message(
    special: Special,
    msg: &DynamicMessage,
    path: &Path<'_>,
    depth: usize,
) -> Result<Json> {
    let get = |name: &str| msg.get_field_by_name(name);
    let has = |name: &str| msg.has_field_by_name(name);
    let i64_of = |name: &str| get(name).and_then(|v| v.as_i64()).unwrap_or(0);
    let i32_of = |name: &str| get(name).and_then(|v| v.as_i32()).unwrap_or(0);
    let string_of = |name: &str| {
        get(name)
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let bytes_of = |name: &str| {
        get(name)
            .and_then(|v| v.as_bytes().cloned())
            .unwrap_or_default()
    };
    let schema_json = |name: &str| -> Result<Option<Json>> {
        match get(name).as_deref() {
            Some(Value::Message(m)) if has(name) => {
                Ok(Some(message(m, &Path::Field(path, name), depth)?))
            }
            _ => Ok(None),
        }
    };
    Ok(match special {
        Special::Time | Special::MicroTime => {
            if !has("seconds") && !has("nanos") {
                // Go's zero time: `"creationTimestamp": null`.
                return Ok(Json::Null);
            }
            let text = if special == Special::Time {
                time::format_time(i64_of("seconds"))
            } else {
                time::format_micro_time(i64_of("seconds"), i32_of("nanos"))
            };
            Json::String(text.or_else(|e| fail(path, e))?)
        }
        Special::Duration => Json::String(time::format_duration(i64_of("duration"))),
        Special::Quantity => {
            let s = string_of("string");
            Json::String(if s.is_empty() { "0".to_owned() } else { s })
        }
        Special::IntOrString => match i64_of("type") {
            0 => Json::from(i32_of("intVal")),
            1 => Json::String(string_of("strVal")),
            other => {
                return fail(
                    path,
                    format!("IntOrString type {other} is neither 0 (int) nor 1 (string)"),
                )
            }
        },
        Special::RawExtension => raw_json(&bytes_of("raw"), path, depth)?,
        Special::RawJson => {
            let field = if msg.descriptor().get_field_by_name("Raw").is_some() {
                "Raw"
            } else {
                "raw"
            };
            raw_json(&bytes_of(field), path, depth)?
        }
        Special::StringList => strings(get("items").as_deref()),
        Special::SchemaOrArray => {
            let list = match get("jSONSchemas").as_deref() {
                Some(Value::List(items)) if !items.is_empty() => Some(items.clone()),
                _ => None,
            };
            match list {
                Some(items) => {
                    let here = Path::Field(path, "items");
                    let mut out = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        let Value::Message(m) = item else {
                            return fail(path, "schema list item is not a message");
                        };
                        out.push(message(m, &Path::Index(&here, i), depth)?);
                    }
                    Json::Array(out)
                }
                None => schema_json("schema")?.unwrap_or(Json::Null),
            }
        }
        Special::SchemaOrBool => match schema_json("schema")? {
            Some(s) => s,
            None => Json::Bool(get("allows").and_then(|v| v.as_bool()).unwrap_or(false)),
        },
        Special::SchemaOrStringArray => match get("property").as_deref() {
            Some(Value::List(items)) if !items.is_empty() => {
                strings(Some(&Value::List(items.clone())))
            }
            _ => schema_json("schema")?.unwrap_or(Json::Null),
        },
    })
}

fn strings(list: Option<&Value>) -> Json {
    let items = match list {
        Some(Value::List(items)) => items
            .iter()
            .filter_map(|v| v.as_str())
            .map(|s| Json::String(s.to_owned()))
            .collect(),
        _ => Vec::new(),
    };
    Json::Array(items)
}

/// The object embedded in a RawExtension: an enveloped protobuf object (lists
/// and watch events encoded by a protobuf serializer) or JSON.
fn raw_json(raw: &[u8], path: &Path<'_>, depth: usize) -> Result<Json> {
    if raw.is_empty() {
        return Ok(Json::Null);
    }
    if raw.starts_with(envelope::MAGIC) {
        return envelope::decode(raw, depth + 1)
            .or_else(|e| fail(path, format!("embedded object: {e}")));
    }
    serde_json::from_slice(raw).or_else(|e| {
        fail(
            path,
            format!("embedded object is neither protobuf nor JSON: {e}"),
        )
    })
}
