//! Kubernetes JSON to protobuf messages. Members without a schema field and
//! `null`s are dropped, as a Go decode into the typed struct drops them.

use base64::Engine as _;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage, Value,
};
use serde_json::{Map, Value as Json};

use crate::schema::{self, Schema, Special};
use crate::time;
use crate::to_json::{fail, Path, Result};

/// Base64 as Go's encoding/json reads `[]byte` (standard alphabet), padding optional.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Builds the message `desc` from its JSON form.
pub(crate) fn message(
    desc: &MessageDescriptor,
    json: &Json,
    path: &Path<'_>,
) -> Result<DynamicMessage> {
    if let Some(special) = schema::special(desc) {
        return special_message(special, desc, json, path);
    }
    let Json::Object(members) = json else {
        return fail(path, format!("expected an object, got {}", type_name(json)));
    };
    let mut msg = DynamicMessage::new(desc.clone());
    object_into(&mut msg, members, path)?;
    Ok(msg)
}

fn object_into(
    msg: &mut DynamicMessage,
    members: &Map<String, Json>,
    path: &Path<'_>,
) -> Result<()> {
    let desc = msg.descriptor();
    for (name, value) in members {
        let here = Path::Field(path, name);
        let mut route = Vec::new();
        if !find(&desc, name, &mut route) {
            continue;
        }
        if value.is_null() {
            // Go reads null as the zero value; only a zero metav1.Time held by
            // value is still written (as an empty message), which reads back as null.
            let last = route.last().expect("find fills the route");
            let zero_time = match last.kind() {
                Kind::Message(m) => {
                    matches!(
                        schema::special(&m),
                        Some(Special::Time | Special::MicroTime)
                    ) && !last.is_list()
                        && field_is_value(last)
                }
                _ => false,
            };
            if !zero_time {
                continue;
            }
        }
        // Walk down the inline fields (created on first use), then set the member.
        let mut target = &mut *msg;
        let (last, inline) = route.split_last().expect("find fills the route");
        for field in inline {
            target = match target.get_field_mut(field) {
                Value::Message(m) => m,
                _ => return fail(&here, "inline field is not a message"),
            };
        }
        let converted = if value.is_null() {
            Value::Message(DynamicMessage::new(match last.kind() {
                Kind::Message(m) => m,
                _ => unreachable!("checked above"),
            }))
        } else {
            field_value(last, value, &here)?
        };
        target.set_field(last, converted);
    }
    Ok(())
}

/// The field a JSON member names, through inline fields: `route` ends up as
/// the inline fields to descend, then the field itself.
fn find(desc: &MessageDescriptor, name: &str, route: &mut Vec<FieldDescriptor>) -> bool {
    let info = Schema::get().info(desc);
    if let Some(at) = info.position(name) {
        route.push(desc.fields().nth(at).expect("positions index the fields"));
        return true;
    }
    for (field, field_info) in desc.fields().zip(&info.fields) {
        if let (true, Kind::Message(inner)) = (field_info.inline, field.kind()) {
            route.push(field);
            if find(&inner, name, route) {
                return true;
            }
            route.pop();
        }
    }
    false
}

fn field_value(field: &FieldDescriptor, json: &Json, path: &Path<'_>) -> Result<Value> {
    if field.is_map() {
        let Json::Object(members) = json else {
            return fail(path, format!("expected an object, got {}", type_name(json)));
        };
        let Kind::Message(entry) = field.kind() else {
            return fail(path, "map without entry type");
        };
        let key_kind = entry.map_entry_key_field().kind();
        let value_kind = entry.map_entry_value_field().kind();
        let mut map = std::collections::HashMap::with_capacity(members.len());
        for (key, value) in members {
            let at = Path::Key(path, key);
            if value.is_null() {
                continue;
            }
            let key = match key_kind {
                Kind::String => MapKey::String(key.clone()),
                Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(
                    key.parse()
                        .or_else(|_| fail(&at, "map key is not an int32"))?,
                ),
                Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(
                    key.parse()
                        .or_else(|_| fail(&at, "map key is not an int64"))?,
                ),
                _ => return fail(&at, format!("unsupported map key type {key_kind:?}")),
            };
            map.insert(key, element(&value_kind, value, &at)?);
        }
        return Ok(Value::Map(map));
    }
    if field.is_list() {
        let Json::Array(items) = json else {
            return fail(path, format!("expected an array, got {}", type_name(json)));
        };
        let kind = field.kind();
        let mut list = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            list.push(element(&kind, item, &Path::Index(path, i))?);
        }
        return Ok(Value::List(list));
    }
    element(&field.kind(), json, path)
}

fn element(kind: &Kind, json: &Json, path: &Path<'_>) -> Result<Value> {
    let int = |min: i128, max: i128| -> Result<i128> {
        let n = match json {
            Json::Number(n) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from))
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 1e38)
                        .map(|f| f as i128)
                }),
            _ => {
                return fail(
                    path,
                    format!("expected an integer, got {}", type_name(json)),
                )
            }
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => fail(path, format!("{json} is not an integer in [{min}, {max}]")),
        }
    };
    Ok(match kind {
        Kind::Bool => match json {
            Json::Bool(b) => Value::Bool(*b),
            _ => return fail(path, format!("expected a boolean, got {}", type_name(json))),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(int(i32::MIN.into(), i32::MAX.into())? as i32)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(int(i64::MIN.into(), i64::MAX.into())? as i64)
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(int(0, u32::MAX.into())? as u32),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(int(0, u64::MAX.into())? as u64),
        Kind::Enum(_) => Value::EnumNumber(int(i32::MIN.into(), i32::MAX.into())? as i32),
        Kind::Double | Kind::Float => {
            let Some(n) = json.as_f64() else {
                return fail(path, format!("expected a number, got {}", type_name(json)));
            };
            if matches!(kind, Kind::Float) {
                Value::F32(n as f32)
            } else {
                Value::F64(n)
            }
        }
        Kind::String => match json {
            Json::String(s) => Value::String(s.clone()),
            _ => return fail(path, format!("expected a string, got {}", type_name(json))),
        },
        Kind::Bytes => match json {
            Json::String(s) => Value::Bytes(
                BASE64
                    .decode(s)
                    .or_else(|e| fail(path, format!("not base64: {e}")))?
                    .into(),
            ),
            _ => {
                return fail(
                    path,
                    format!("expected a base64 string, got {}", type_name(json)),
                )
            }
        },
        Kind::Message(desc) => Value::Message(message(desc, json, path)?),
    })
}

fn special_message(
    special: Special,
    desc: &MessageDescriptor,
    json: &Json,
    path: &Path<'_>,
) -> Result<DynamicMessage> {
    let mut msg = DynamicMessage::new(desc.clone());
    let mut set = |name: &str, value: Value| {
        let field = desc
            .get_field_by_name(name)
            .unwrap_or_else(|| panic!("{} has field {name}", desc.full_name()));
        msg.set_field(&field, value);
    };
    let expected = |what: &str| fail(path, format!("expected {what}, got {}", type_name(json)));
    match special {
        Special::Time | Special::MicroTime => {
            let Json::String(s) = json else {
                return expected("an RFC 3339 time string");
            };
            let (seconds, nanos) = time::parse_time(s).or_else(|e| fail(path, e))?;
            set("seconds", Value::I64(seconds));
            set("nanos", Value::I32(nanos));
        }
        Special::Duration => {
            let Json::String(s) = json else {
                return expected("a duration string");
            };
            set(
                "duration",
                Value::I64(time::parse_duration(s).or_else(|e| fail(path, e))?),
            );
        }
        Special::Quantity => match json {
            Json::String(s) => set("string", Value::String(s.clone())),
            Json::Number(n) => set("string", Value::String(n.to_string())),
            _ => return expected("a quantity string"),
        },
        Special::IntOrString => match json {
            Json::Number(_) => {
                let Value::I32(n) = element(&Kind::Int32, json, path)? else {
                    unreachable!("int32 element")
                };
                set("type", Value::I64(0));
                set("intVal", Value::I32(n));
                set("strVal", Value::String(String::new()));
            }
            Json::String(s) => {
                set("type", Value::I64(1));
                set("intVal", Value::I32(0));
                set("strVal", Value::String(s.clone()));
            }
            _ => return expected("an integer or a string"),
        },
        Special::RawExtension => set("raw", Value::Bytes(json_bytes(json).into())),
        Special::RawJson => {
            let field = if desc.get_field_by_name("Raw").is_some() {
                "Raw"
            } else {
                "raw"
            };
            set(field, Value::Bytes(json_bytes(json).into()));
        }
        Special::StringList => {
            let Json::Array(items) = json else {
                return expected("an array of strings");
            };
            set("items", strings(items, path)?);
        }
        Special::SchemaOrArray => match json {
            Json::Array(items) => {
                let props = schema_props(desc, "jSONSchemas");
                let mut list = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    list.push(Value::Message(message(
                        &props,
                        item,
                        &Path::Index(path, i),
                    )?));
                }
                set("jSONSchemas", Value::List(list));
            }
            _ => set(
                "schema",
                Value::Message(message(&schema_props(desc, "schema"), json, path)?),
            ),
        },
        Special::SchemaOrBool => match json {
            Json::Bool(b) => set("allows", Value::Bool(*b)),
            _ => {
                set("allows", Value::Bool(true));
                set(
                    "schema",
                    Value::Message(message(&schema_props(desc, "schema"), json, path)?),
                );
            }
        },
        Special::SchemaOrStringArray => match json {
            Json::Array(items) => set("property", strings(items, path)?),
            _ => set(
                "schema",
                Value::Message(message(&schema_props(desc, "schema"), json, path)?),
            ),
        },
    }
    Ok(msg)
}

/// The JSONSchemaProps message a union field holds.
fn schema_props(desc: &MessageDescriptor, field: &str) -> MessageDescriptor {
    match desc.get_field_by_name(field).map(|f| f.kind()) {
        Some(Kind::Message(m)) => m,
        _ => panic!("{} has message field {field}", desc.full_name()),
    }
}

fn strings(items: &[Json], path: &Path<'_>) -> Result<Value> {
    let mut list = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Json::String(s) => list.push(Value::String(s.clone())),
            _ => {
                return fail(
                    &Path::Index(path, i),
                    format!("expected a string, got {}", type_name(item)),
                )
            }
        }
    }
    Ok(Value::List(list))
}

fn json_bytes(json: &Json) -> Vec<u8> {
    serde_json::to_vec(json).expect("a serde_json::Value always serializes")
}

pub(crate) fn type_name(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn field_is_value(field: &FieldDescriptor) -> bool {
    let parent = field.parent_message();
    let at = parent
        .fields()
        .position(|f| f.number() == field.number())
        .expect("a field of its parent");
    Schema::get().info(parent).fields[at].value
}
