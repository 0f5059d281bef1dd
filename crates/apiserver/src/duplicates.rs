//! Duplicate fields in request bodies, as upstream's strict decoders report
//! them for `fieldValidation`: in JSON, `duplicate field "spec.paused"`
//! (sigs.k8s.io/json, the field's path); in YAML, `line 14: key "paused"
//! already set in map` (yaml.v2's unmarshal errors). The last value of a
//! duplicated field wins, as it does upstream. No IO.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// One field of a JSON body, in document order.
#[derive(Debug, PartialEq)]
pub struct Field {
    /// `spec.template.spec.containers[0].image`
    pub path: String,
    /// A later occurrence of a field already set in its object.
    pub duplicate: bool,
}

/// The fields of a JSON body in document order, or none when no field is
/// duplicated (the common case, found without building paths); `None` when
/// the body is not JSON.
pub fn json_fields(body: &[u8]) -> Option<Vec<Field>> {
    let duplicates = walk(body, false)?;
    if duplicates.is_empty() {
        return Some(duplicates);
    }
    walk(body, true)
}

fn walk(body: &[u8], paths: bool) -> Option<Vec<Field>> {
    let mut fields = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    Walk {
        path: String::new(),
        paths,
        fields: &mut fields,
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    Some(fields)
}

/// What upstream's strict check of a JSON patch says of its operations:
/// `json patch unknown field "[0].foo"` for a key an operation does not
/// have, `json patch duplicate field "[1].path"` for one given twice.
pub fn json_patch_messages(body: &[u8]) -> Vec<String> {
    let Some(fields) = walk(body, true) else {
        return Vec::new();
    };
    fields
        .iter()
        .filter_map(|f| {
            // Only the operations' own keys: `[i].key`.
            let (index, key) = f.path.split_once("].")?;
            if !index.starts_with('[') || key.contains(['.', '[']) {
                return None;
            }
            if f.duplicate {
                Some(format!("json patch duplicate field \"{}\"", f.path))
            } else if !matches!(key, "op" | "path" | "value" | "from") {
                Some(format!("json patch unknown field \"{}\"", f.path))
            } else {
                None
            }
        })
        .collect()
}

/// Reads a value, noting each object key (with `paths`), or only the
/// duplicated ones, without their paths.
struct Walk<'a> {
    path: String,
    paths: bool,
    fields: &'a mut Vec<Field>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let item = Walk {
                path: if self.paths {
                    format!("{}[{i}]", self.path)
                } else {
                    String::new()
                },
                paths: self.paths,
                fields: &mut *self.fields,
            };
            if seq.next_element_seed(item)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = match (self.paths, self.path.is_empty()) {
                (false, _) => String::new(),
                (true, true) => key.clone(),
                (true, false) => format!("{}.{key}", self.path),
            };
            let duplicate = !seen.insert(key);
            if self.paths || duplicate {
                self.fields.push(Field {
                    path: path.clone(),
                    duplicate,
                });
            }
            map.next_value_seed(Walk {
                path,
                paths: self.paths,
                fields: &mut *self.fields,
            })?;
        }
        Ok(())
    }
}

/// upstream's strict-decoding messages for a JSON body: its duplicate
/// fields and the `unknown` fields its kind does not declare, in document
/// order. A field inside an unknown one is not looked at, so a duplicate
/// there is not reported (nor is an unknown field that is also
/// duplicated, beyond being unknown).
pub fn json_messages(fields: &[Field], unknown: &[String]) -> Vec<String> {
    let within_unknown = |path: &str| {
        unknown.iter().any(|u| {
            path == u
                || path
                    .strip_prefix(u.as_str())
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        })
    };
    let mut out: Vec<(usize, String)> = fields
        .iter()
        .enumerate()
        .filter(|(_, f)| f.duplicate && !within_unknown(&f.path))
        .map(|(i, f)| (i, format!("duplicate field \"{}\"", f.path)))
        .collect();
    for u in unknown {
        let at = fields
            .iter()
            .position(|f| &f.path == u)
            .unwrap_or(usize::MAX);
        out.push((at, format!("unknown field \"{u}\"")));
    }
    out.sort_by_key(|(at, _)| *at);
    out.into_iter().map(|(_, m)| m).collect()
}

/// The duplicated fields of a request body.
#[derive(Debug)]
pub enum Duplicates {
    /// Every field of a JSON body, in document order.
    Json(Vec<Field>),
    /// yaml.v2's message for each duplicated key of a YAML body.
    Yaml(Vec<String>),
    /// The messages about the operations of a JSON patch.
    JsonPatch(Vec<String>),
}

impl Duplicates {
    /// The duplicates of `body` (by its content type), if it has any.
    pub fn of(body: &[u8], content_type: &str) -> Option<Duplicates> {
        match content_type.split(';').next().unwrap_or("").trim() {
            "application/yaml" => Some(yaml(body).ok()?.duplicates)
                .filter(|d| !d.is_empty())
                .map(Duplicates::Yaml),
            ""
            | "application/json"
            | "*/*"
            | "application/merge-patch+json"
            | "application/strategic-merge-patch+json"
            | "application/apply-patch+yaml"
            | "application/apply-patch+json" => json_fields(body)
                .filter(|fields| fields.iter().any(|f| f.duplicate))
                .map(Duplicates::Json),
            "application/json-patch+json" => Some(json_patch_messages(body))
                .filter(|m| !m.is_empty())
                .map(Duplicates::JsonPatch),
            _ => None,
        }
    }

    /// The strict-decoding messages, with the `unknown` fields.
    pub fn messages(&self, unknown: &[String], strict: bool) -> Vec<String> {
        match self {
            Duplicates::Json(fields) => json_messages(fields, unknown),
            Duplicates::Yaml(duplicates) => yaml_messages(duplicates, unknown, strict),
            Duplicates::JsonPatch(messages) => {
                let mut unknown = unknown.to_vec();
                unknown.sort();
                messages
                    .iter()
                    .cloned()
                    .chain(unknown.iter().map(|u| format!("unknown field \"{u}\"")))
                    .collect()
            }
        }
    }
}

/// What a YAML body holds: its first document as JSON (the last value of
/// a duplicated key wins, as upstream's YAML-to-JSON conversion keeps it)
/// and yaml.v2's message for each duplicated key, in document order.
pub struct Yaml {
    pub value: Value,
    pub duplicates: Vec<String>,
}

/// Reads a YAML body; the error is the parser's.
pub fn yaml(body: &[u8]) -> Result<Yaml, String> {
    let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
    let mut builder = YamlBuilder::default();
    yaml_rust2::parser::Parser::new_from_str(text)
        .load(&mut builder, false)
        .map_err(|e| e.to_string())?;
    Ok(Yaml {
        value: builder.document.unwrap_or(Value::Null),
        duplicates: builder.duplicates,
    })
}

enum Frame {
    Map {
        map: Map<String, Value>,
        key: Option<String>,
        anchor: usize,
    },
    Seq {
        items: Vec<Value>,
        anchor: usize,
    },
}

/// Builds JSON from parser events, noting duplicated keys.
#[derive(Default)]
struct YamlBuilder {
    stack: Vec<Frame>,
    anchors: std::collections::HashMap<usize, Value>,
    document: Option<Value>,
    duplicates: Vec<String>,
}

impl YamlBuilder {
    /// A finished node: a key, a map value, an item or the document.
    fn complete(&mut self, value: Value, anchor: usize, line: usize, as_key_text: String) {
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            Some(Frame::Map { map, key, .. }) => match key.take() {
                None => {
                    if map.contains_key(&as_key_text) {
                        let shown = match &value {
                            Value::String(s) => format!("{s:?}"),
                            other => other.to_string(),
                        };
                        self.duplicates
                            .push(format!("line {line}: key {shown} already set in map"));
                    }
                    *key = Some(as_key_text);
                }
                Some(k) => {
                    map.insert(k, value);
                }
            },
            Some(Frame::Seq { items, .. }) => items.push(value),
            None => {
                if self.document.is_none() {
                    self.document = Some(value);
                }
            }
        }
    }
}

/// A plain scalar as yaml.v2 resolves it (YAML 1.1 booleans included).
fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false)
        }
        _ => {}
    }
    let plain = s.replace('_', "");
    let (sign, digits) = match plain.strip_prefix('-') {
        Some(rest) => (-1i64, rest),
        None => (1, plain.strip_prefix('+').unwrap_or(&plain)),
    };
    let int = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()
    } else if let Some(bin) = digits.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(digits.trim_start_matches("0o"), 8).ok()
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    };
    if let Some(i) = int {
        return Value::from(sign * i);
    }
    let float_like = !plain.is_empty()
        && plain
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && plain.bytes().any(|b| b.is_ascii_digit());
    if float_like {
        if let Some(n) = plain
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            return Value::Number(n);
        }
    }
    Value::String(s.to_string())
}

impl yaml_rust2::parser::MarkedEventReceiver for YamlBuilder {
    fn on_event(&mut self, ev: yaml_rust2::Event, mark: yaml_rust2::scanner::Marker) {
        use yaml_rust2::scanner::TScalarStyle;
        use yaml_rust2::Event;
        match ev {
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                map: Map::new(),
                key: None,
                anchor,
            }),
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                items: Vec::new(),
                anchor,
            }),
            Event::MappingEnd | Event::SequenceEnd => {
                let (value, anchor) = match self.stack.pop() {
                    Some(Frame::Map { map, anchor, .. }) => (Value::Object(map), anchor),
                    Some(Frame::Seq { items, anchor }) => (Value::Array(items), anchor),
                    None => return,
                };
                let text = value.to_string();
                self.complete(value, anchor, mark.line(), text);
            }
            Event::Scalar(text, style, anchor, tag) => {
                let is_str = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let value = if style == TScalarStyle::Plain && !is_str {
                    resolve_plain(&text)
                } else {
                    Value::String(text.clone())
                };
                self.complete(value, anchor, mark.line(), text);
            }
            Event::Alias(id) => {
                let value = self.anchors.get(&id).cloned().unwrap_or(Value::Null);
                let text = match &value {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                self.complete(value, 0, mark.line(), text);
            }
            _ => {}
        }
    }
}

/// The messages for a YAML body: its duplicated keys, then its unknown
/// fields in name order (upstream decodes the JSON made from the YAML,
/// whose keys are sorted). Strict joins the duplicates into yaml.v2's
/// single unmarshal error; Warn lists each.
pub fn yaml_messages(duplicates: &[String], unknown: &[String], strict: bool) -> Vec<String> {
    let mut out = Vec::new();
    if !duplicates.is_empty() {
        if strict {
            out.push(format!(
                "yaml: unmarshal errors:\n  {}",
                duplicates.join("\n  ")
            ));
        } else {
            out.extend(duplicates.iter().cloned());
        }
    }
    let mut unknown = unknown.to_vec();
    unknown.sort();
    out.extend(unknown.iter().map(|u| format!("unknown field \"{u}\"")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_bodies_become_json_and_duplicated_keys_are_reported_by_line() {
        let body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n  labels: {x: '1', y: yes}\ndata:\n  c: 007\n  f: 1.5\n  s: \"3\"\n  c: 08\nlist: [1, ~, true]\n";
        let y = yaml(body).unwrap();
        assert_eq!(
            y.value,
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "b", "labels": {"x": "1", "y": true}},
                "data": {"c": 8.0, "f": 1.5, "s": "3"}, "list": [1, null, true]})
        );
        assert_eq!(
            y.duplicates,
            [
                "line 5: key \"name\" already set in map",
                "line 11: key \"c\" already set in map"
            ]
        );
        assert_eq!(
            yaml_messages(&y.duplicates, &["spec.z".into(), "spec.a".into()], true),
            [
                "yaml: unmarshal errors:\n  line 5: key \"name\" already set in map\n  line 11: key \"c\" already set in map",
                "unknown field \"spec.a\"",
                "unknown field \"spec.z\"",
            ]
        );
        assert!(yaml(b"a: [").is_err());
    }

    #[test]
    fn duplicate_json_fields_are_named_by_their_path() {
        let body = br#"{"metadata":{"name":"a","name":"b"},"spec":{"paused":true,"x":1,"paused":false,
            "template":{"spec":{"containers":[{"name":"c","imagePullPolicy":"Always","imagePullPolicy":"Never"}]}}}}"#;
        let fields = json_fields(body).unwrap();
        let dups: Vec<&str> = fields
            .iter()
            .filter(|f| f.duplicate)
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(
            dups,
            [
                "metadata.name",
                "spec.paused",
                "spec.template.spec.containers[0].imagePullPolicy"
            ]
        );
        assert_eq!(
            json_messages(&fields, &["spec.x".to_string()]),
            [
                "duplicate field \"metadata.name\"",
                "unknown field \"spec.x\"",
                "duplicate field \"spec.paused\"",
                "duplicate field \"spec.template.spec.containers[0].imagePullPolicy\"",
            ]
        );
    }

    #[test]
    fn json_patch_operations_with_unknown_or_duplicated_keys_are_named() {
        let body = br#"[{"op": "add", "path": "/spec/a", "value": {"x": 1}, "foo": "bar"},
            {"op": "add", "path": "/spec/b", "path": "/spec/c", "value": 1}]"#;
        assert_eq!(
            json_patch_messages(body),
            [
                "json patch unknown field \"[0].foo\"",
                "json patch duplicate field \"[1].path\""
            ]
        );
    }

    #[test]
    fn an_unknown_duplicated_field_is_reported_as_unknown_only() {
        let body = br#"{"spec":{"u":{"a":1,"a":2},"u":3}}"#;
        let fields = json_fields(body).unwrap();
        assert_eq!(
            json_messages(&fields, &["spec.u".to_string()]),
            ["unknown field \"spec.u\""]
        );
        assert!(json_fields(b"{\"a\":").is_none());
    }
}
