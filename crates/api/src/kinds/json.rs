//! Reading Kubernetes JSON the way Go decodes it into typed structs, and
//! printing values the way upstream's error messages print them.
//!
//! Upstream validates typed structs: a missing or `null` field is the zero
//! value (`""`, `0`, `false`, nil). These accessors give the same view of a
//! `serde_json::Value`, so the validators read like their Go originals. A
//! field of the wrong JSON type is treated as absent (the wire layer rejects
//! such bodies before validation).

use crate::gofmt;
use crate::validation::field::BadValue;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

static NULL: Value = Value::Null;

/// The field `key` of `v`, unless missing or `null`.
pub(crate) fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// The object field `key` of `v` (`None` when missing, null or not an object).
pub(crate) fn obj<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| x.is_object())
}

/// The field `key`, or `null` (whose own fields all read as zero values).
pub(crate) fn child<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or(&NULL)
}

/// A string field; `""` when missing.
pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A string field that is a pointer in Go (`*string`): `None` when missing.
pub(crate) fn opt_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// An integer field; `0` when missing.
pub(crate) fn int_of(v: &Value, key: &str) -> i64 {
    opt_int(v, key).unwrap_or(0)
}

/// An integer field that is a pointer in Go (`*int32`).
pub(crate) fn opt_int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

/// A boolean field; `false` when missing.
pub(crate) fn bool_of(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// A boolean pointer field.
pub(crate) fn opt_bool(v: &Value, key: &str) -> Option<bool> {
    v.get(key).and_then(Value::as_bool)
}

/// A list field; empty when missing.
pub(crate) fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A `map[string]string` field; `None` (Go's nil map) when missing.
pub(crate) fn string_map(v: &Value, key: &str) -> Option<BTreeMap<String, String>> {
    let m = v.get(key)?.as_object()?;
    Some(
        m.iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect(),
    )
}

/// A `[]string` field; `None` (Go's nil slice) when missing.
pub(crate) fn strings(v: &Value, key: &str) -> Option<Vec<String>> {
    let a = v.get(key)?.as_array()?;
    Some(
        a.iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
    )
}

/// A `*metav1.LabelSelector` field.
pub(crate) fn label_selector(v: &Value, key: &str) -> Option<metav1::LabelSelector> {
    let sel = obj(v, key)?;
    serde_json::from_value(sel.clone()).ok()
}

/// An `intstr.IntOrString`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum IntOrString {
    Int(i64),
    Str(String),
}

impl IntOrString {
    pub(crate) fn from_json(v: &Value) -> Option<IntOrString> {
        match v {
            Value::Number(n) => n.as_i64().map(IntOrString::Int),
            Value::String(s) => Some(IntOrString::Str(s.clone())),
            _ => None,
        }
    }

    /// `%#v` of an `intstr.IntOrString`.
    pub(crate) fn sharp(&self) -> String {
        match self {
            IntOrString::Int(i) => format!("intstr.IntOrString{{Type:0, IntVal:{i}, StrVal:\"\"}}"),
            IntOrString::Str(s) => format!(
                "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
                gofmt::quote(s)
            ),
        }
    }

    /// Upstream's `IntValue`: a string is parsed with `strconv.Atoi` (0 when
    /// it is not a number).
    pub(crate) fn int_value(&self) -> i64 {
        match self {
            IntOrString::Int(i) => *i,
            IntOrString::Str(s) => s.parse().unwrap_or(0),
        }
    }
}

/// The `intstr.IntOrString` field `key`, if set.
pub(crate) fn int_or_string(v: &Value, key: &str) -> Option<IntOrString> {
    IntOrString::from_json(v.get(key)?)
}

/// `%#v` of a `map[string]string` (nil prints as `map[string]string(nil)`).
pub(crate) fn sharp_string_map(m: Option<&BTreeMap<String, String>>) -> String {
    match m {
        None => "map[string]string(nil)".to_string(),
        Some(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}:{}", gofmt::quote(k), gofmt::quote(v)))
                .collect();
            format!("map[string]string{{{}}}", items.join(", "))
        }
    }
}

/// A `map[string]string` as an error value (upstream prints it with `%#v`).
pub(crate) fn map_value(m: Option<&BTreeMap<String, String>>) -> BadValue {
    BadValue::Raw(sharp_string_map(m))
}

/// `%#v` of a `metav1.LabelSelector` (as upstream prints a non-nil
/// `*metav1.LabelSelector` in field errors); `null` for nil.
pub(crate) fn selector_value(sel: Option<&Value>) -> BadValue {
    let Some(sel) = sel.filter(|s| s.is_object()) else {
        return BadValue::Null;
    };
    let labels = string_map(sel, "matchLabels");
    let exprs = match sel.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|e| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        gofmt::quote(str_of(e, "key")),
                        gofmt::quote(str_of(e, "operator")),
                        gofmt::string_slice_sharp(strings(e, "values").as_deref())
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    BadValue::Raw(format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{}}}",
        sharp_string_map(labels.as_ref()),
        exprs
    ))
}

/// A value upstream prints with `%#v` of a Go struct we do not model field
/// by field: its JSON, compact.
pub(crate) fn json_value(v: Option<&Value>) -> BadValue {
    match v {
        None | Some(Value::Null) => BadValue::Null,
        Some(v) => BadValue::Raw(v.to_string()),
    }
}

/// Go's `reflect.DeepEqual`-after-decoding view of two JSON values, as
/// `apiequality.Semantic.DeepEqual` compares them: missing, `null` and zero
/// values (`""`, `0`, `false`, `[]`, `{}`) are all the zero value.
pub(crate) fn semantic_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    let za = a.is_none_or(is_zero);
    let zb = b.is_none_or(is_zero);
    if za || zb {
        return za && zb;
    }
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => objects_eq(x, y),
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| semantic_eq(Some(p), Some(q)))
        }
        (Some(Value::Number(x)), Some(Value::Number(y))) => match (x.as_i64(), y.as_i64()) {
            (Some(p), Some(q)) => p == q,
            _ => x.as_f64() == y.as_f64(),
        },
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn objects_eq(x: &Map<String, Value>, y: &Map<String, Value>) -> bool {
    x.iter().all(|(k, v)| semantic_eq(Some(v), y.get(k)))
        && y.iter()
            .all(|(k, v)| x.contains_key(k) || semantic_eq(Some(v), None))
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.values().all(is_zero),
    }
}

/// Go's `net.ParseIP` as `netutils.ParseIPSloppy` applies it: IPv4 octets
/// may carry leading zeros.
pub(crate) fn parse_ip_sloppy(s: &str) -> Option<std::net::IpAddr> {
    if s.contains(':') {
        return s
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(std::net::IpAddr::V6);
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        octets[i] = p.parse().ok()?;
    }
    Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(octets)))
}

/// `netutils.ParseCIDRSloppy`: the address and prefix length.
pub(crate) fn parse_cidr_sloppy(s: &str) -> Option<(std::net::IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip = parse_ip_sloppy(ip)?;
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) || bits.len() > 3 {
        return None;
    }
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}
