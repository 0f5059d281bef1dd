//! Structured-merge-diff's view of JSON values (its `value` package): the
//! total order and the equality it uses (integers and floats compare
//! numerically), the `ToString` that renders list keys in field paths, and the
//! Go `encoding/json` rendering it serializes keys with.

use crate::gofmt;
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::fmt::Write as _;

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn as_float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) if n.as_i64().is_none() => n.as_f64(),
        _ => None,
    }
}

fn float_cmp(l: f64, r: f64) -> Ordering {
    l.partial_cmp(&r).unwrap_or(Ordering::Equal)
}

/// `value.Compare`: a total order over values of any types (floats, then
/// integers, strings, booleans, lists, maps, null; floats and integers
/// compare numerically with each other).
pub(crate) fn compare(l: &Value, r: &Value) -> Ordering {
    if let Some(lf) = as_float(l) {
        return match (as_float(r), as_int(r)) {
            (Some(rf), _) => float_cmp(lf, rf),
            (None, Some(ri)) => float_cmp(lf, ri as f64),
            _ => Ordering::Less,
        };
    }
    if let Some(rf) = as_float(r) {
        return match as_int(l) {
            Some(li) => float_cmp(li as f64, rf),
            None => Ordering::Greater,
        };
    }
    match (as_int(l), as_int(r)) {
        (Some(li), Some(ri)) => return li.cmp(&ri),
        (Some(_), None) => return Ordering::Less,
        (None, Some(_)) => return Ordering::Greater,
        _ => {}
    }
    match (l, r) {
        (Value::String(a), Value::String(b)) => a.cmp(b),
        (Value::String(_), _) => Ordering::Less,
        (_, Value::String(_)) => Ordering::Greater,
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        (Value::Bool(_), _) => Ordering::Less,
        (_, Value::Bool(_)) => Ordering::Greater,
        (Value::Array(a), Value::Array(b)) => {
            for (x, y) in a.iter().zip(b) {
                let c = compare(x, y);
                if c != Ordering::Equal {
                    return c;
                }
            }
            a.len().cmp(&b.len())
        }
        (Value::Array(_), _) => Ordering::Less,
        (_, Value::Array(_)) => Ordering::Greater,
        (Value::Object(a), Value::Object(b)) => map_compare(a, b),
        (Value::Object(_), _) => Ordering::Less,
        (_, Value::Object(_)) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// `value.MapCompare`: keys zipped in order; a map that runs out of keys
/// first, or lacks the next key, sorts first.
fn map_compare(l: &Map<String, Value>, r: &Map<String, Value>) -> Ordering {
    let mut keys: Vec<&String> = l.keys().chain(r.keys()).collect();
    keys.sort();
    keys.dedup();
    for (i, k) in keys.into_iter().enumerate() {
        let c = if i == l.len() {
            Ordering::Less
        } else if i == r.len() {
            Ordering::Greater
        } else {
            match (l.get(k), r.get(k)) {
                (None, _) => Ordering::Greater,
                (_, None) => Ordering::Less,
                (Some(a), Some(b)) => compare(a, b),
            }
        };
        if c != Ordering::Equal {
            return c;
        }
    }
    Ordering::Equal
}

/// `value.Equals`: deep equality, integers equal to floats of the same value.
pub(crate) fn equals(l: &Value, r: &Value) -> bool {
    match (l, r) {
        (Value::Number(_), Value::Number(_)) => compare(l, r) == Ordering::Equal,
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equals(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|w| equals(v, w)))
        }
        _ => l == r,
    }
}

/// `value.ToString`, as list keys appear in field paths: `"web"`, `80`.
pub(crate) fn to_string(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => gofmt::number(n),
        Value::String(s) => gofmt::quote(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(to_string).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", to_string(v)))
            .collect::<Vec<_>>()
            .join(""),
    }
}

/// Go's `encoding/json` rendering (keys sorted, HTML-safe escapes, Go's float
/// format), which upstream uses for `k:`/`v:` path elements, manager
/// identifiers and the last-applied annotation.
pub(crate) fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_go_json(&mut out, v);
    out
}

fn write_go_json(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => out.push_str(&i.to_string()),
            (None, Some(u)) => out.push_str(&u.to_string()),
            _ => out.push_str(&go_float(n.as_f64().unwrap_or(0.0))),
        },
        Value::String(s) => write_go_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(out, item);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(out, k);
                out.push(':');
                write_go_json(out, &m[k.as_str()]);
            }
            out.push('}');
        }
    }
}

/// A Go `encoding/json` string literal (HTML-escaped).
pub(crate) fn go_json_string(s: &str) -> String {
    let mut out = String::new();
    write_go_string(&mut out, s);
    out
}

fn write_go_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `encoding/json`'s float64: shortest digits, exponent form below 1e-6 and
/// from 1e21 on, with a sign and no zero padding in the exponent.
fn go_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let e = format!("{f:e}");
        match e.split_once('e') {
            Some((m, exp)) if !exp.starts_with('-') => format!("{m}e+{exp}"),
            _ => e,
        }
    } else {
        format!("{f}")
    }
}
