//! Helpers the printers share: reading JSON fields the way a Go printer
//! sees them after decoding (unset = zero value), and upstream's formatting
//! of labels, label selectors, container lists, access modes and lists
//! with "+ N more...".

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// `metadata.name`, as a cell.
pub fn name(o: &Value) -> Value {
    json!(str_at(o, "/metadata/name"))
}

/// The value at `pointer`, unless it is missing or `null`.
pub fn get<'a>(o: &'a Value, pointer: &str) -> Option<&'a Value> {
    o.pointer(pointer).filter(|v| !v.is_null())
}

/// A string field; `""` when unset.
pub fn str_at<'a>(o: &'a Value, pointer: &str) -> &'a str {
    o.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// A string field, `None` when unset (a Go `*string`).
pub fn opt_str_at<'a>(o: &'a Value, pointer: &str) -> Option<&'a str> {
    o.pointer(pointer).and_then(Value::as_str)
}

/// An integer field, `None` when unset (a Go `*int32`).
pub fn opt_int_at(o: &Value, pointer: &str) -> Option<i64> {
    let v = o.pointer(pointer)?;
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

/// An integer field; 0 when unset.
pub fn int_at(o: &Value, pointer: &str) -> i64 {
    opt_int_at(o, pointer).unwrap_or(0)
}

/// A boolean field, `None` when unset (a Go `*bool`).
pub fn opt_bool_at(o: &Value, pointer: &str) -> Option<bool> {
    o.pointer(pointer).and_then(Value::as_bool)
}

/// A list field; empty when unset.
pub fn arr_at<'a>(o: &'a Value, pointer: &str) -> &'a [Value] {
    o.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The number of entries of a map or list field; 0 when unset.
pub fn len_at(o: &Value, pointer: &str) -> usize {
    match o.pointer(pointer) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

/// A `metav1.Time` / `metav1.MicroTime`; `None` when unset (Go's zero time)
/// or not RFC 3339.
pub fn timestamp(v: Option<&Value>) -> Option<DateTime<Utc>> {
    let s = v?.as_str()?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `"True"` / `"False"` (upstream's `printBool`).
pub fn bool_word(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// `printBoolPtr`: `True`, `False` or `<unset>`.
pub fn bool_ptr_word(v: Option<bool>) -> &'static str {
    match v {
        Some(b) => bool_word(b),
        None => "<unset>",
    }
}

/// `duration.HumanDuration` of the time from `from` to `to`.
pub fn duration(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    super::human_duration(to.signed_duration_since(from).num_seconds())
}

/// A `resource.Quantity` as its `String()`; `"0"` when unset.
///
/// Stored quantities are printed as stored: the registry keeps what the
/// client sent, and clients (kubectl, client-go) send the canonical form.
pub fn quantity(v: Option<&Value>) -> String {
    match v {
        // Stored as the client wrote it; printed canonical, as upstream
        // (`1024Mi` prints `1Gi`).
        Some(Value::String(s)) => api::Quantity::canonicalize(s).unwrap_or_else(|_| s.clone()),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".into(),
    }
}

/// A `*resource.Quantity` as `String()` prints it, `<nil>` when unset.
pub fn quantity_ptr(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "<nil>".into(),
        v => quantity(v),
    }
}

/// An `intstr.IntOrString` as its `String()`.
pub fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => "0".into(),
    }
}

/// `labels.FormatLabels`: `k=v` pairs sorted by key, `<none>` when empty.
pub fn format_labels(map: Option<&Value>) -> String {
    let s = labels_string(map);
    if s.is_empty() {
        "<none>".into()
    } else {
        s
    }
}

/// `labels.Set(m).String()`.
pub fn labels_string(map: Option<&Value>) -> String {
    let Some(Value::Object(m)) = map else {
        return String::new();
    };
    let mut pairs: Vec<(&String, &str)> = m
        .iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `metav1.LabelSelectorAsSelector(sel).String()`: requirements sorted by
/// key; `""` for a nil or empty selector; `Err` for an invalid one.
pub fn selector_string(sel: Option<&Value>) -> Result<String, ()> {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return Ok(String::new());
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(Value::Object(m)) = sel.get("matchLabels") {
        for (k, v) in m {
            let v = v.as_str().ok_or(())?;
            check_key(k)?;
            check_value(v)?;
            reqs.push((k.clone(), format!("{k}={v}")));
        }
    }
    for expr in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let key = expr.get("key").and_then(Value::as_str).unwrap_or("");
        check_key(key)?;
        let mut values: Vec<&str> = Vec::new();
        for v in expr
            .get("values")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let v = v.as_str().ok_or(())?;
            check_value(v)?;
            values.push(v);
        }
        values.sort_unstable();
        let text = match expr.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" if !values.is_empty() => format!("{key} in ({})", values.join(",")),
            "NotIn" if !values.is_empty() => format!("{key} notin ({})", values.join(",")),
            "Exists" if values.is_empty() => key.to_string(),
            "DoesNotExist" if values.is_empty() => format!("!{key}"),
            _ => return Err(()),
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(","))
}

/// `metav1.FormatLabelSelector`: `<none>` when empty, `<error>` when invalid.
pub fn format_label_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        Ok(s) if s.is_empty() => "<none>".into(),
        Ok(s) => s,
        Err(()) => "<error>".into(),
    }
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of at
/// most 63 alphanumerics, `-`, `_` or `.`, alphanumeric at both ends.
fn check_key(key: &str) -> Result<(), ()> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !ok {
            return Err(());
        }
    }
    if name.is_empty() {
        return Err(());
    }
    check_value(name)
}

/// A label value: empty, or at most 63 alphanumerics, `-`, `_` or `.`,
/// alphanumeric at both ends.
fn check_value(v: &str) -> Result<(), ()> {
    if v.is_empty() {
        return Ok(());
    }
    let b = v.as_bytes();
    let ok = v.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(())
    }
}

/// `layoutContainerCells`: container names and images, comma-joined.
pub fn containers(list: &[Value]) -> (String, String) {
    let names: Vec<&str> = list.iter().map(|c| str_at(c, "/name")).collect();
    let images: Vec<&str> = list.iter().map(|c| str_at(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// `helper.GetAccessModesAsString`: `RWO,ROX,RWX,RWOP`, in that order,
/// each once.
pub fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(m, _)| has(m))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// Up to `max` items of `all`, then `+ N more...`; `<unset>` when empty
/// (upstream's `listWithMoreString`).
pub fn list_with_more(all: &[String], max: usize) -> String {
    let shown = all.iter().take(max).cloned().collect::<Vec<_>>().join(",");
    if all.len() > max {
        format!("{shown} + {} more...", all.len() - max)
    } else if shown.is_empty() {
        "<unset>".into()
    } else {
        shown
    }
}

/// The `controller: true` owner reference, as `metav1.GetControllerOf`.
pub fn controller_of(o: &Value) -> Option<&Value> {
    arr_at(o, "/metadata/ownerReferences")
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
}
