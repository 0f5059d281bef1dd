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

/// The fields of a JSON body in document order; `None` when it is not JSON.
pub fn json_fields(body: &[u8]) -> Option<Vec<Field>> {
    let mut fields = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    Walk {
        path: String::new(),
        fields: &mut fields,
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    Some(fields)
}

/// Reads a value, noting each object key.
struct Walk<'a> {
    path: String,
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
                path: format!("{}[{i}]", self.path),
                fields: &mut *self.fields,
            };
            if seq.next_element_seed(item)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            let duplicate = seen.insert(key, Value::Null).is_some();
            self.fields.push(Field {
                path: path.clone(),
                duplicate,
            });
            map.next_value_seed(Walk {
                path,
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

#[cfg(test)]
mod tests {
    use super::*;

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
