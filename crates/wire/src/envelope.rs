//! The `k8s\0` + `runtime.Unknown` envelope around objects, and the
//! length-prefixed frames of protobuf watch streams.

use prost::Message as _;
use prost_reflect::{DynamicMessage, Value};
use serde_json::Value as Json;

use crate::schema::Schema;
use crate::to_json::{FieldError, Path};
use crate::{from_json, to_json, WireError, PROTOBUF};

pub(crate) const MAGIC: &[u8] = b"k8s\0";
const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const WATCH_EVENT: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent";
/// How deep enveloped objects may nest inside RawExtensions (a List of
/// Lists...): deep enough for anything real, shallow enough for the stack.
const MAX_DEPTH: usize = 8;
/// Largest watch frame read back (upstream's default is 16 MiB).
const MAX_FRAME: usize = 16 << 20;

/// Decodes an enveloped object to JSON with `apiVersion` and `kind`.
pub(crate) fn decode(body: &[u8], depth: usize) -> Result<Json, WireError> {
    if depth > MAX_DEPTH {
        return Err(WireError::TooDeep(MAX_DEPTH));
    }
    let payload = body.strip_prefix(MAGIC).ok_or(WireError::MissingMagic)?;
    let schema = Schema::get();
    let unknown = DynamicMessage::decode(schema.message(UNKNOWN), payload).map_err(|source| {
        WireError::Malformed {
            what: "envelope (runtime.Unknown)".into(),
            source,
        }
    })?;
    let text = |msg: &DynamicMessage, name: &str| {
        msg.get_field_by_name(name)
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let (api_version, kind) = match unknown.get_field_by_name("typeMeta").as_deref() {
        Some(Value::Message(type_meta)) => (text(type_meta, "apiVersion"), text(type_meta, "kind")),
        _ => (String::new(), String::new()),
    };
    if api_version.is_empty() {
        return Err(WireError::EmptyTypeMeta("apiVersion"));
    }
    if kind.is_empty() {
        return Err(WireError::EmptyTypeMeta("kind"));
    }
    let encoding = text(&unknown, "contentEncoding");
    if !encoding.is_empty() {
        return Err(WireError::UnsupportedEnvelope {
            what: "contentEncoding",
            value: encoding,
        });
    }
    let raw = unknown
        .get_field_by_name("raw")
        .and_then(|v| v.as_bytes().cloned())
        .unwrap_or_default();

    let mut object = match text(&unknown, "contentType").as_str() {
        "" | PROTOBUF => {
            let desc = schema.message_for(&api_version, &kind).ok_or_else(|| {
                WireError::UnsupportedKind {
                    api_version: api_version.clone(),
                    kind: kind.clone(),
                }
            })?;
            let msg = DynamicMessage::decode(desc, raw.as_ref()).map_err(|source| {
                WireError::Malformed {
                    what: format!("{api_version} {kind}"),
                    source,
                }
            })?;
            to_json::message(&msg, &Path::Root, depth).map_err(|e| field_error(&kind, e))?
        }
        "application/json" => serde_json::from_slice(&raw).map_err(|e| WireError::Field {
            kind: kind.clone(),
            path: "(object)".into(),
            reason: format!("embedded JSON is invalid: {e}"),
        })?,
        other => {
            return Err(WireError::UnsupportedEnvelope {
                what: "contentType",
                value: other.to_owned(),
            })
        }
    };
    let Json::Object(members) = &mut object else {
        return Err(WireError::Field {
            kind,
            path: "(object)".into(),
            reason: "not an object".into(),
        });
    };
    members.insert("apiVersion".into(), Json::String(api_version));
    members.insert("kind".into(), Json::String(kind));
    Ok(object)
}

/// Encodes a JSON object into the envelope.
pub(crate) fn encode(obj: &Json) -> Result<Vec<u8>, WireError> {
    let field = |name: &'static str| {
        obj.get(name)
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(WireError::MissingTypeMeta(name))
    };
    let (api_version, kind) = (field("apiVersion")?, field("kind")?);
    let schema = Schema::get();
    let desc = schema
        .message_for(api_version, kind)
        .ok_or_else(|| WireError::UnsupportedKind {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        })?;
    let msg = from_json::message(&desc, obj, &Path::Root).map_err(|e| field_error(kind, e))?;

    let unknown_desc = schema.message(UNKNOWN);
    let mut unknown = DynamicMessage::new(unknown_desc.clone());
    let mut type_meta =
        DynamicMessage::new(schema.message("k8s.io.apimachinery.pkg.runtime.TypeMeta"));
    type_meta.set_field_by_name("apiVersion", Value::String(api_version.to_owned()));
    type_meta.set_field_by_name("kind", Value::String(kind.to_owned()));
    unknown.set_field_by_name("typeMeta", Value::Message(type_meta));
    unknown.set_field_by_name("raw", Value::Bytes(msg.encode_to_vec().into()));
    unknown.set_field_by_name("contentEncoding", Value::String(String::new()));
    unknown.set_field_by_name("contentType", Value::String(String::new()));

    let mut out = Vec::with_capacity(MAGIC.len() + unknown.encoded_len());
    out.extend_from_slice(MAGIC);
    unknown.encode(&mut out).expect("a Vec grows as needed");
    Ok(out)
}

/// A watch frame: big-endian u32 length, then a bare WatchEvent whose object
/// is enveloped (upstream: LengthDelimitedFramer + the raw protobuf serializer).
pub(crate) fn encode_watch_event(event_type: &str, obj: &Json) -> Result<Vec<u8>, WireError> {
    let object = encode(obj)?;
    let schema = Schema::get();
    let mut raw_extension =
        DynamicMessage::new(schema.message("k8s.io.apimachinery.pkg.runtime.RawExtension"));
    raw_extension.set_field_by_name("raw", Value::Bytes(object.into()));
    let mut event = DynamicMessage::new(schema.message(WATCH_EVENT));
    event.set_field_by_name("type", Value::String(event_type.to_owned()));
    event.set_field_by_name("object", Value::Message(raw_extension));
    let len = event.encoded_len();
    let len32 = u32::try_from(len)
        .map_err(|_| WireError::Frame(format!("event of {len} bytes is too large")))?;
    let mut out = Vec::with_capacity(4 + len);
    out.extend_from_slice(&len32.to_be_bytes());
    event.encode(&mut out).expect("a Vec grows as needed");
    Ok(out)
}

pub(crate) fn decode_watch_event(frame: &[u8]) -> Result<(String, Json), WireError> {
    let (header, body) = frame.split_first_chunk::<4>().ok_or_else(|| {
        WireError::Frame(format!(
            "{} bytes is shorter than the 4-byte length",
            frame.len()
        ))
    })?;
    let len = u32::from_be_bytes(*header) as usize;
    if len > MAX_FRAME {
        return Err(WireError::Frame(format!(
            "length {len} exceeds the {MAX_FRAME}-byte limit"
        )));
    }
    if body.len() != len {
        return Err(WireError::Frame(format!(
            "length says {len} bytes, {} follow",
            body.len()
        )));
    }
    let event =
        DynamicMessage::decode(Schema::get().message(WATCH_EVENT), body).map_err(|source| {
            WireError::Malformed {
                what: "watch event".into(),
                source,
            }
        })?;
    let event_type = event
        .get_field_by_name("type")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let raw = match event.get_field_by_name("object").as_deref() {
        Some(Value::Message(ext)) => ext
            .get_field_by_name("raw")
            .and_then(|v| v.as_bytes().cloned())
            .unwrap_or_default(),
        _ => Default::default(),
    };
    if event_type.is_empty() {
        return Err(WireError::Frame("watch event has no type".into()));
    }
    Ok((event_type, decode(&raw, 0)?))
}

fn field_error(kind: &str, e: FieldError) -> WireError {
    WireError::Field {
        kind: kind.to_owned(),
        path: e.path,
        reason: e.reason,
    }
}
