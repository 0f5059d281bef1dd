//! Go's `fmt` renderings that leak into upstream error messages.
//!
//! Upstream builds many user-visible messages with `%q`, `%v` and `%#v` on Go
//! values (strings, `[]string`, decoded JSON as `map[string]interface{}`).
//! Clients and tests compare those texts, so we reproduce the Go renderings
//! instead of Rust's `Debug`.

use serde_json::Value;
use std::fmt::Write as _;

/// `strconv.Quote`: a double-quoted Go string literal.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if is_go_print(c) => out.push(c),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Go's `time.ParseDuration`, in seconds.
pub fn parse_duration(s: &str) -> Result<f64, String> {
    let err = || format!("time: invalid duration {}", quote(s));
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0.0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        if num_len == 0 {
            return Err(err());
        }
        let num: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .bytes()
            .take_while(|b| !b.is_ascii_digit() && *b != b'.')
            .count();
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", quote(s)));
        }
        let unit = &rest[..unit_len];
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    quote(unit),
                    quote(s)
                ))
            }
        };
        total += num * scale;
        rest = &rest[unit_len..];
    }
    Ok(if neg { -total } else { total })
}

/// An approximation of Go's `unicode.IsPrint`: graphic characters and the
/// ASCII space; other spaces and controls are escaped.
fn is_go_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let cp = c as u32;
    // Format characters (zero-width joiners, BOM, bidi controls), private use
    // and surrogate-adjacent noncharacters are not printable in Go.
    !matches!(cp,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF | 0xFFFE | 0xFFFF)
}

/// `fmt.Sprintf("%v", f)` for a float64: the shortest digits, in exponent
/// form when the decimal exponent is below -4 or at least 6.
pub fn float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".to_string()
        } else {
            "0".to_string()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits, as Go's does.
    let e = format!("{:e}", f.abs());
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let nd = digits.len() as i32;
    let neg = if f < 0.0 { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        // %e with nd-1 fraction digits and at least two exponent digits.
        let mut s = String::from(neg);
        s.push_str(&digits[..1]);
        if nd > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        s.push('e');
        s.push(if exp < 0 { '-' } else { '+' });
        let _ = write!(s, "{:02}", exp.abs());
        return s;
    }
    // %f with max(nd - dp, 0) fraction digits, where dp = exp + 1.
    let dp = exp + 1;
    let mut s = String::from(neg);
    if dp <= 0 {
        s.push_str("0.");
        for _ in 0..(-dp) {
            s.push('0');
        }
        s.push_str(&digits);
    } else if dp >= nd {
        s.push_str(&digits);
        for _ in 0..(dp - nd) {
            s.push('0');
        }
    } else {
        s.push_str(&digits[..dp as usize]);
        s.push('.');
        s.push_str(&digits[dp as usize..]);
    }
    s
}

/// `%v` of a JSON value as upstream decodes it (`map[string]interface{}`,
/// `[]interface{}`, `int64` for integral literals, `float64` otherwise).
pub(crate) fn value(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_value(out, &map[k.as_str()]);
            }
            out.push(']');
        }
    }
}

/// `%v` of a JSON number: integral literals that fit an int64 print as
/// integers, everything else as a float64.
pub(crate) fn number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    float(n.as_f64().unwrap_or(0.0))
}

/// `reflect.TypeOf(v).String()` for a decoded JSON value; `%s` of a nil type
/// prints as `%!s(<nil>)`.
pub(crate) fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None | Some(Value::Null) => "%!s(<nil>)",
        Some(Value::Bool(_)) => "bool",
        Some(Value::Number(n)) if n.as_i64().is_some() => "int64",
        Some(Value::Number(_)) => "float64",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "[]interface {}",
        Some(Value::Object(_)) => "map[string]interface {}",
    }
}

/// `%#v` of a `[]string`.
pub(crate) fn string_slice_sharp(values: Option<&[String]>) -> String {
    match values {
        None => "[]string(nil)".to_string(),
        Some(values) => {
            let quoted: Vec<String> = values.iter().map(|v| quote(v)).collect();
            format!("[]string{{{}}}", quoted.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quote_escapes_like_strconv_quote() {
        assert_eq!(quote("Foo"), r#""Foo""#);
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("tab\there\n"), r#""tab\there\n""#);
        assert_eq!(quote("\u{1}"), r#""\x01""#);
        assert_eq!(quote("héllo"), "\"héllo\"");
        assert_eq!(quote("\u{200b}"), r#""\u200b""#);
    }

    #[test]
    fn floats_print_like_go_percent_v() {
        assert_eq!(float(1.5), "1.5");
        assert_eq!(float(1.0), "1");
        assert_eq!(float(100000.0), "100000");
        assert_eq!(float(1_000_000.0), "1e+06");
        assert_eq!(float(1234567.5), "1.2345675e+06");
        assert_eq!(float(0.0001), "0.0001");
        assert_eq!(float(0.00001), "1e-05");
        assert_eq!(float(-2.25), "-2.25");
        assert_eq!(float(1e21), "1e+21");
    }

    #[test]
    fn values_print_like_go_percent_v() {
        assert_eq!(value(&json!({"b": 1, "a": "x"})), "map[a:x b:1]");
        assert_eq!(
            value(&json!([1, "a", null, 1.5, true])),
            "[1 a <nil> 1.5 true]"
        );
        assert_eq!(value(&json!({"m": {"k": [1]}})), "map[m:map[k:[1]]]");
    }

    #[test]
    fn type_names_match_reflect() {
        assert_eq!(type_name(Some(&json!({}))), "map[string]interface {}");
        assert_eq!(type_name(Some(&json!([]))), "[]interface {}");
        assert_eq!(type_name(Some(&json!(1))), "int64");
        assert_eq!(type_name(Some(&json!(1.5))), "float64");
        assert_eq!(type_name(None), "%!s(<nil>)");
    }

    #[test]
    fn string_slices_print_like_sharp_v() {
        assert_eq!(
            string_slice_sharp(Some(&["a".into(), "b".into()])),
            r#"[]string{"a", "b"}"#
        );
        assert_eq!(string_slice_sharp(Some(&[])), "[]string{}");
        assert_eq!(string_slice_sharp(None), "[]string(nil)");
    }
}
