//! The Swagger 2.0 document as the protobuf message kubectl asks for
//! (`Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`):
//! gnostic's `openapi.v2.Document` (google/gnostic `openapiv2/OpenAPIv2.proto`).
//! client-go's `OpenAPISchema()` only decodes protobuf, so a JSON answer
//! would not do.
//!
//! The encoder walks the JSON document and writes the fields kubectl reads
//! (and their neighbours of the same messages); values of vendor
//! extensions, defaults and enums go into gnostic's `Any.yaml` as JSON text,
//! which is valid YAML.

use serde_json::Value;

/// A protobuf message being written.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire_type));
    }

    fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, 2);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    /// A proto3 string: omitted when empty.
    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn str_of(&mut self, field: u32, value: Option<&Value>) {
        if let Some(Value::String(s)) = value {
            self.string(field, s);
        }
    }

    fn strings_of(&mut self, field: u32, value: Option<&Value>) {
        match value {
            Some(Value::Array(items)) => {
                for item in items {
                    if let Value::String(s) = item {
                        self.bytes(field, s.as_bytes());
                    }
                }
            }
            Some(Value::String(s)) => self.bytes(field, s.as_bytes()),
            _ => {}
        }
    }

    fn bool_of(&mut self, field: u32, value: Option<&Value>) {
        if let Some(Value::Bool(true)) = value {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn int_of(&mut self, field: u32, value: Option<&Value>) {
        if let Some(n) = value.and_then(Value::as_i64).filter(|n| *n != 0) {
            self.key(field, 0);
            self.varint(n as u64);
        }
    }

    fn double_of(&mut self, field: u32, value: Option<&Value>) {
        if let Some(n) = value.and_then(Value::as_f64).filter(|n| *n != 0.0) {
            self.key(field, 1);
            self.0.extend_from_slice(&n.to_le_bytes());
        }
    }

    /// An embedded message, written even when empty: presence matters for
    /// messages (an empty `additionalProperties` schema is not an absent one).
    fn message(&mut self, field: u32, message: Message) {
        self.bytes(field, &message.0);
    }
}

/// gnostic `Any`: the value as YAML text.
fn any(value: &Value) -> Message {
    let mut m = Message::default();
    m.string(2, &value.to_string());
    m
}

/// gnostic `NamedAny` entries for every `x-` key of `object`.
fn vendor_extensions(m: &mut Message, field: u32, object: &serde_json::Map<String, Value>) {
    for (key, value) in object.iter().filter(|(k, _)| k.starts_with("x-")) {
        let mut named = Message::default();
        named.string(1, key);
        named.message(2, any(value));
        m.message(field, named);
    }
}

fn schema(value: &Value) -> Message {
    let mut m = Message::default();
    let Some(o) = value.as_object() else { return m };
    m.str_of(1, o.get("$ref"));
    m.str_of(2, o.get("format"));
    m.str_of(3, o.get("title"));
    m.str_of(4, o.get("description"));
    if let Some(default) = o.get("default") {
        m.message(5, any(default));
    }
    m.double_of(6, o.get("multipleOf"));
    m.double_of(7, o.get("maximum"));
    m.bool_of(8, o.get("exclusiveMaximum"));
    m.double_of(9, o.get("minimum"));
    m.bool_of(10, o.get("exclusiveMinimum"));
    m.int_of(11, o.get("maxLength"));
    m.int_of(12, o.get("minLength"));
    m.str_of(13, o.get("pattern"));
    m.int_of(14, o.get("maxItems"));
    m.int_of(15, o.get("minItems"));
    m.bool_of(16, o.get("uniqueItems"));
    m.int_of(17, o.get("maxProperties"));
    m.int_of(18, o.get("minProperties"));
    m.strings_of(19, o.get("required"));
    if let Some(Value::Array(values)) = o.get("enum") {
        for v in values {
            m.message(20, any(v));
        }
    }
    match o.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Message::default();
            item.key(2, 0);
            item.varint(u64::from(*b));
            m.message(21, item);
        }
        Some(s @ Value::Object(_)) => {
            let mut item = Message::default();
            item.message(1, schema(s));
            m.message(21, item);
        }
        _ => {}
    }
    if let Some(t) = o.get("type") {
        let mut item = Message::default();
        item.strings_of(1, Some(t));
        m.message(22, item);
    }
    match o.get("items") {
        Some(Value::Array(items)) => {
            let mut item = Message::default();
            for s in items {
                item.message(1, schema(s));
            }
            m.message(23, item);
        }
        Some(s @ Value::Object(_)) => {
            let mut item = Message::default();
            item.message(1, schema(s));
            m.message(23, item);
        }
        _ => {}
    }
    if let Some(Value::Array(all_of)) = o.get("allOf") {
        for s in all_of {
            m.message(24, schema(s));
        }
    }
    if let Some(Value::Object(properties)) = o.get("properties") {
        m.message(25, named_schemas(properties));
    }
    m.str_of(26, o.get("discriminator"));
    m.bool_of(27, o.get("readOnly"));
    if let Some(example) = o.get("example") {
        m.message(30, any(example));
    }
    vendor_extensions(&mut m, 31, o);
    m
}

/// A message whose only field (1) is a list of `NamedSchema`
/// (`Properties`, `Definitions`).
fn named_schemas(map: &serde_json::Map<String, Value>) -> Message {
    let mut m = Message::default();
    for (name, value) in map {
        let mut named = Message::default();
        named.string(1, name);
        named.message(2, schema(value));
        m.message(1, named);
    }
    m
}

fn parameter(value: &Value) -> Message {
    let mut item = Message::default(); // ParametersItem
    let Some(o) = value.as_object() else {
        return item;
    };
    if let Some(Value::String(reference)) = o.get("$ref") {
        let mut json_reference = Message::default();
        json_reference.string(1, reference);
        item.message(2, json_reference);
        return item;
    }
    let mut parameter = Message::default();
    let location = o.get("in").and_then(Value::as_str).unwrap_or("");
    if location == "body" {
        let mut body = Message::default();
        body.str_of(1, o.get("description"));
        body.str_of(2, o.get("name"));
        body.str_of(3, o.get("in"));
        body.bool_of(4, o.get("required"));
        if let Some(s) = o.get("schema") {
            body.message(5, schema(s));
        }
        vendor_extensions(&mut body, 6, o);
        parameter.message(1, body);
    } else {
        // Header, query and path sub-schemas share their first fields:
        // required 1, in 2, description 3, name 4. Query has
        // allow_empty_value at 5 and so the rest one further on.
        let (oneof_field, shift) = match location {
            "header" => (1, 0),
            "formData" => (2, 1),
            "query" => (3, 1),
            _ => (4, 0),
        };
        let mut sub = Message::default();
        sub.bool_of(1, o.get("required"));
        sub.str_of(2, o.get("in"));
        sub.str_of(3, o.get("description"));
        sub.str_of(4, o.get("name"));
        if shift == 1 {
            sub.bool_of(5, o.get("allowEmptyValue"));
        }
        sub.str_of(5 + shift, o.get("type"));
        sub.str_of(6 + shift, o.get("format"));
        sub.str_of(8 + shift, o.get("collectionFormat"));
        if let Some(default) = o.get("default") {
            sub.message(9 + shift, any(default));
        }
        sub.bool_of(19 + shift, o.get("uniqueItems"));
        vendor_extensions(&mut sub, 22 + shift, o);
        let mut non_body = Message::default();
        non_body.message(oneof_field, sub);
        parameter.message(2, non_body);
    }
    item.message(1, parameter);
    item
}

fn operation(value: &Value) -> Message {
    let mut m = Message::default();
    let Some(o) = value.as_object() else { return m };
    m.strings_of(1, o.get("tags"));
    m.str_of(2, o.get("summary"));
    m.str_of(3, o.get("description"));
    m.str_of(5, o.get("operationId"));
    m.strings_of(6, o.get("produces"));
    m.strings_of(7, o.get("consumes"));
    if let Some(Value::Array(params)) = o.get("parameters") {
        for p in params {
            m.message(8, parameter(p));
        }
    }
    if let Some(Value::Object(responses)) = o.get("responses") {
        let mut rs = Message::default();
        for (code, response) in responses {
            let mut r = Message::default();
            r.str_of(1, response.get("description"));
            if let Some(s) = response.get("schema") {
                let mut item = Message::default(); // SchemaItem
                item.message(1, schema(s));
                r.message(2, item);
            }
            let mut value = Message::default(); // ResponseValue
            value.message(1, r);
            let mut named = Message::default();
            named.string(1, code);
            named.message(2, value);
            rs.message(1, named);
        }
        m.message(9, rs);
    }
    m.strings_of(10, o.get("schemes"));
    m.bool_of(11, o.get("deprecated"));
    vendor_extensions(&mut m, 13, o);
    m
}

fn path_item(value: &Value) -> Message {
    let mut m = Message::default();
    let Some(o) = value.as_object() else { return m };
    m.str_of(1, o.get("$ref"));
    for (field, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(op) = o.get(method) {
            m.message(field, operation(op));
        }
    }
    if let Some(Value::Array(params)) = o.get("parameters") {
        for p in params {
            m.message(9, parameter(p));
        }
    }
    vendor_extensions(&mut m, 10, o);
    m
}

/// Encodes a Swagger 2.0 JSON document as gnostic `openapi.v2.Document`.
pub(crate) fn encode_v2(document: &Value) -> Vec<u8> {
    let mut m = Message::default();
    let Some(o) = document.as_object() else {
        return m.0;
    };
    m.str_of(1, o.get("swagger"));
    if let Some(Value::Object(info)) = o.get("info") {
        let mut i = Message::default();
        i.str_of(1, info.get("title"));
        i.str_of(2, info.get("version"));
        i.str_of(3, info.get("description"));
        vendor_extensions(&mut i, 7, info);
        m.message(2, i);
    }
    m.str_of(3, o.get("host"));
    m.str_of(4, o.get("basePath"));
    m.strings_of(5, o.get("schemes"));
    m.strings_of(6, o.get("consumes"));
    m.strings_of(7, o.get("produces"));
    if let Some(Value::Object(paths)) = o.get("paths") {
        let mut ps = Message::default();
        for (path, item) in paths {
            if path.starts_with("x-") {
                continue;
            }
            let mut named = Message::default();
            named.string(1, path);
            named.message(2, path_item(item));
            ps.message(2, named);
        }
        m.message(8, ps);
    }
    if let Some(Value::Object(definitions)) = o.get("definitions") {
        m.message(9, named_schemas(definitions));
    }
    vendor_extensions(&mut m, 16, o);
    m.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_are_length_delimited_and_varints_continue_past_seven_bits() {
        let mut m = Message::default();
        m.string(1, "2.0");
        assert_eq!(m.0, [0x0a, 3, b'2', b'.', b'0']);
        let mut m = Message::default();
        m.varint(300);
        assert_eq!(m.0, [0xac, 0x02]);
    }

    #[test]
    fn vendor_extension_values_travel_as_yaml_text() {
        let encoded = schema(&json!({"x-kubernetes-patch-merge-key": "name"})).0;
        // Schema.vendor_extension (31, length-delimited) -> NamedAny{name, Any{yaml}}.
        assert_eq!(&encoded[..2], &[0xfa, 0x01]);
        let text = String::from_utf8_lossy(&encoded);
        assert!(text.contains("x-kubernetes-patch-merge-key"));
        assert!(text.contains("\"name\""));
    }
}
