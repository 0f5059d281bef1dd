//! Reading a few members of a JSON object without decoding it. The watch
//! cache indexes every stored object and sets its resource version this
//! way: decoding each event into a tree and encoding it again cost more
//! than the rest of the cache. Anything unusual (an escaped key, input that
//! is not a JSON object) gives `None`, and the caller decodes instead.

/// The members of the JSON object `json` as (key, raw value) pairs, in
/// order. `None` unless `json` is one object (surrounding whitespace
/// aside) whose keys have no escapes.
pub fn members(json: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let mut out = Vec::new();
    let mut pos = skip_ws(json, 0);
    if json.get(pos) != Some(&b'{') {
        return None;
    }
    pos = skip_ws(json, pos + 1);
    if json.get(pos) == Some(&b'}') {
        return (skip_ws(json, pos + 1) == json.len()).then_some(out);
    }
    loop {
        if json.get(pos) != Some(&b'"') {
            return None;
        }
        let key_start = pos + 1;
        let key_end = key_start + json[key_start..].iter().position(|&b| b == b'"')?;
        let key = &json[key_start..key_end];
        if key.contains(&b'\\') {
            return None;
        }
        pos = skip_ws(json, key_end + 1);
        if json.get(pos) != Some(&b':') {
            return None;
        }
        let value_start = skip_ws(json, pos + 1);
        let value_end = skip_value(json, value_start)?;
        out.push((key, &json[value_start..value_end]));
        pos = skip_ws(json, value_end);
        match json.get(pos) {
            Some(b',') => pos = skip_ws(json, pos + 1),
            Some(b'}') => {
                return (skip_ws(json, pos + 1) == json.len()).then_some(out);
            }
            _ => return None,
        }
    }
}

/// The raw value of member `key` (the last one, as decoders keep it).
pub fn member<'a>(members: &[(&[u8], &'a [u8])], key: &str) -> Option<&'a [u8]> {
    members
        .iter()
        .rev()
        .find(|(k, _)| *k == key.as_bytes())
        .map(|(_, v)| *v)
}

/// `raw` if it is an object.
pub fn object(raw: Option<&[u8]>) -> Option<&[u8]> {
    raw.filter(|r| r.first() == Some(&b'{'))
}

/// A scalar JSON value: a string decoded, `true`/`false` and numbers as
/// they print, `Null` for `null`; `None` for objects, arrays and garbage.
pub enum Scalar {
    Null,
    Text(String),
}

pub fn scalar(raw: &[u8]) -> Option<Scalar> {
    match raw.first()? {
        b'"' => {
            let inner = &raw[1..raw.len() - 1];
            if inner.contains(&b'\\') {
                serde_json::from_slice::<String>(raw).ok().map(Scalar::Text)
            } else {
                std::str::from_utf8(inner)
                    .ok()
                    .map(|s| Scalar::Text(s.to_string()))
            }
        }
        b'n' if raw == b"null" => Some(Scalar::Null),
        b't' if raw == b"true" => Some(Scalar::Text("true".into())),
        b'f' if raw == b"false" => Some(Scalar::Text("false".into())),
        b'-' | b'0'..=b'9' => match serde_json::from_slice::<serde_json::Value>(raw).ok()? {
            serde_json::Value::Number(n) => Some(Scalar::Text(n.to_string())),
            _ => None,
        },
        _ => None,
    }
}

/// A string value, as `Value::as_str` reads it (`None` for other types).
pub fn string(raw: Option<&[u8]>) -> Option<String> {
    match raw.filter(|r| r.first() == Some(&b'"')).and_then(scalar) {
        Some(Scalar::Text(s)) => Some(s),
        _ => None,
    }
}

/// `json`, whose top-level members are `top`, with
/// `"resourceVersion":"<rev>"` added to its `metadata`. `None` when there
/// is no metadata object or it already has a resource version (stored
/// objects have none).
pub fn with_resource_version(json: &[u8], top: &[(&[u8], &[u8])], rev: i64) -> Option<Vec<u8>> {
    let meta = member(top, "metadata")?;
    let meta_members = members(meta)?;
    if member(&meta_members, "resourceVersion").is_some() {
        return None;
    }
    let open = meta.as_ptr() as usize - json.as_ptr() as usize + skip_ws(meta, 0) + 1;
    let field = format!(
        "\"resourceVersion\":\"{rev}\"{}",
        if meta_members.is_empty() { "" } else { "," }
    );
    let mut out = Vec::with_capacity(json.len() + field.len());
    out.extend_from_slice(&json[..open]);
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(&json[open..]);
    Some(out)
}

fn skip_ws(json: &[u8], mut pos: usize) -> usize {
    while matches!(json.get(pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        pos += 1;
    }
    pos
}

/// The end of the string starting at `pos` (its opening quote).
fn skip_string(json: &[u8], pos: usize) -> Option<usize> {
    let mut i = pos + 1;
    loop {
        match json.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The end of the value starting at `pos`.
fn skip_value(json: &[u8], pos: usize) -> Option<usize> {
    match json.get(pos)? {
        b'"' => skip_string(json, pos),
        b'{' | b'[' => {
            let mut stack = vec![json[pos]];
            let mut i = pos + 1;
            while let Some(&open) = stack.last() {
                match json.get(i)? {
                    b'"' => {
                        i = skip_string(json, i)?;
                        continue;
                    }
                    b @ (b'{' | b'[') => stack.push(*b),
                    b'}' if open == b'{' => {
                        stack.pop();
                    }
                    b']' if open == b'[' => {
                        stack.pop();
                    }
                    b'}' | b']' => return None,
                    _ => {}
                }
                i += 1;
            }
            Some(i)
        }
        _ => {
            let len = json[pos..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(json.len() - pos);
            (len > 0).then_some(pos + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn members_are_read_as_a_decoder_reads_them() {
        let obj = json!({
            "a": "x\"}{,",
            "b": { "c": [1, {"d": "]"}], "e": null },
            "f": -1.5e3,
            "g": true,
            "h": [],
        });
        let text = serde_json::to_vec_pretty(&obj).unwrap();
        let m = members(&text).unwrap();
        let keys: Vec<&[u8]> = m.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, [&b"a"[..], b"b", b"f", b"g", b"h"]);
        for (k, v) in m {
            let decoded: Value = serde_json::from_slice(v).unwrap();
            assert_eq!(decoded, obj[std::str::from_utf8(k).unwrap()]);
        }
        assert!(members(b"{}").unwrap().is_empty());
        for bad in [
            &b"[]"[..],
            b"{\"a\":1",
            b"{\"a\" 1}",
            b"{\"a\":1}x",
            b"{\"a\\u0062\":1}",
            b"{\"a\":[1}",
        ] {
            assert!(members(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
    }

    fn versioned(json: &[u8], rev: i64) -> Option<Vec<u8>> {
        with_resource_version(json, &members(json)?, rev)
    }

    #[test]
    fn the_resource_version_goes_into_the_metadata() {
        let obj = json!({ "kind": "Pod", "metadata": { "name": "p", "labels": { "metadata": "{" } }, "spec": {} });
        let text = serde_json::to_vec(&obj).unwrap();
        let with: Value = serde_json::from_slice(
            &with_resource_version(&text, &members(&text).unwrap(), 42).unwrap(),
        )
        .unwrap();
        let mut want = obj.clone();
        want["metadata"]["resourceVersion"] = json!("42");
        assert_eq!(with, want);
        let empty: Value =
            serde_json::from_slice(&versioned(br#"{"metadata":{}}"#, 7).unwrap()).unwrap();
        assert_eq!(empty, json!({ "metadata": { "resourceVersion": "7" } }));
        // Already versioned, or no metadata: the caller decodes instead.
        assert!(versioned(br#"{"metadata":{"resourceVersion":"1"}}"#, 2).is_none());
        assert!(versioned(br#"{"kind":"X"}"#, 2).is_none());
    }

    #[test]
    fn scalars_read_as_their_decoded_values_print() {
        let text = |raw: &[u8]| match scalar(raw) {
            Some(Scalar::Text(s)) => Some(s),
            Some(Scalar::Null) => Some("null".into()),
            None => None,
        };
        assert_eq!(text(br#""a\nb""#).as_deref(), Some("a\nb"));
        assert_eq!(text(b"true").as_deref(), Some("true"));
        assert_eq!(text(b"12").as_deref(), Some("12"));
        assert_eq!(
            text(b"1.0").as_deref(),
            Some(json!(1.0).to_string().as_str())
        );
        assert_eq!(text(b"null").as_deref(), Some("null"));
        assert_eq!(text(b"{}"), None);
        assert_eq!(string(Some(b"3")), None);
    }
}
