//! Tables of custom resources: the CRD version's
//! `additionalPrinterColumns` (apiextensions' `tableconvertor`), or `Age`
//! when it has none.
//!
//! Column paths are the simple JSONPath upstream allows there: `.a.b`,
//! `['a.b']`, `[0]`, `[*]` and `[?(@.type=="Ready")]` filters; as upstream,
//! the first match is the cell.

use chrono::Utc;
use serde_json::{json, Map, Value};

use super::format::{name, timestamp};
use super::{docs, row_json, table_json, Ctx, IncludeObject, Row};

/// A `Table` of custom resources printed with `columns`, the
/// `additionalPrinterColumns` of the CRD version served (`name`, `type`,
/// `format`, `description`, `priority`, `jsonPath`).
pub fn to_table_custom(
    columns: &[Value],
    objects: &[Value],
    resource_version: Option<&str>,
    continue_token: Option<&str>,
) -> Value {
    to_table_custom_with(
        columns,
        objects,
        resource_version,
        continue_token,
        IncludeObject::Metadata,
    )
}

/// [`to_table_custom`] with rows carrying `include` of each object.
pub fn to_table_custom_with(
    columns: &[Value],
    objects: &[Value],
    resource_version: Option<&str>,
    continue_token: Option<&str>,
    include: IncludeObject,
) -> Value {
    to_table_custom_at(
        columns,
        objects,
        resource_version,
        continue_token,
        include,
        &Ctx { now: Utc::now() },
    )
}

pub(super) fn to_table_custom_at(
    columns: &[Value],
    objects: &[Value],
    resource_version: Option<&str>,
    continue_token: Option<&str>,
    include: IncludeObject,
    ctx: &Ctx,
) -> Value {
    let default_columns = [json!({
        "name": "Age", "type": "date", "description": docs::OBJECT_META_CREATION_TIMESTAMP,
        "jsonPath": ".metadata.creationTimestamp",
    })];
    let columns = if columns.is_empty() {
        &default_columns[..]
    } else {
        columns
    };
    let text = |c: &Value, k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut defs = vec![json!({
        "name": "Name", "type": "string", "format": "name", "description": docs::OBJECT_META_NAME, "priority": 0,
    })];
    for c in columns {
        let description = match text(c, "description") {
            d if d.is_empty() => {
                format!(
                    "Custom resource definition column (in JSONPath format): {}",
                    text(c, "jsonPath")
                )
            }
            d => d,
        };
        defs.push(json!({
            "name": text(c, "name"),
            "type": text(c, "type"),
            "format": text(c, "format"),
            "description": description,
            "priority": c.get("priority").and_then(Value::as_i64).unwrap_or(0),
        }));
    }
    let rows = objects
        .iter()
        .map(|o| {
            let mut cells = vec![name(o)];
            for c in columns {
                let found = parse_path(&text(c, "jsonPath")).and_then(|path| first_match(o, &path));
                cells.push(match found {
                    None | Some(Value::Null) => Value::Null,
                    Some(v) => cell(&text(c, "type"), v, ctx),
                });
            }
            row_json(Row::from(cells), o, include)
        })
        .collect();
    table_json(defs, rows, resource_version, continue_token)
}

/// `cellForJSONValue`, and Go's printing for `string` columns.
fn cell(kind: &str, v: &Value, ctx: &Ctx) -> Value {
    match kind {
        "string" => json!(go_print(v)),
        "integer" => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map(|i| json!(i))
            .unwrap_or(Value::Null),
        "number" => v.as_f64().map(|f| json!(f)).unwrap_or(Value::Null),
        "boolean" => v.as_bool().map(|b| json!(b)).unwrap_or(Value::Null),
        "date" => match v.as_str() {
            Some(s) => match timestamp(Some(v)) {
                Some(t) => json!(ctx.since_time(t)),
                None if s.is_empty() => json!("<unknown>"),
                None => json!("<invalid>"),
            },
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

/// How Go's `fmt.Print` shows a decoded JSON value.
fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => go_float(n.as_f64().unwrap_or(0.0)),
        },
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter()
                    .map(|k| format!("{k}:{}", go_print(&m[*k])))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

/// `strconv.FormatFloat(f, 'g', -1, 64)`: shortest digits, in exponent
/// form below 1e-4 and from 1e21.
fn go_float(f: f64) -> String {
    if f == 0.0 || f.is_nan() || f.is_infinite() {
        return format!("{f}");
    }
    let exp = f.abs().log10().floor() as i32;
    if !(-4..21).contains(&exp) {
        let s = format!("{f:e}");
        let (mantissa, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        format!("{mantissa}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    } else {
        format!("{f}")
    }
}

#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    /// `[?(@.path == literal)]` (or `!=`).
    Filter(Vec<Step>, bool, Value),
}

/// Parses the JSONPath of a printer column; `None` when it is not one of
/// the simple forms.
fn parse_path(path: &str) -> Option<Vec<Step>> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let path = path.strip_prefix('$').unwrap_or(path);
    let b = path.as_bytes();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' => {
                let start = i + 1;
                let mut end = start;
                while end < b.len() && b[end] != b'.' && b[end] != b'[' {
                    end += 1;
                }
                match &path[start..end] {
                    "" => return None,
                    "*" => steps.push(Step::All),
                    field => steps.push(Step::Field(field.to_string())),
                }
                i = end;
            }
            b'[' => {
                let close = find_bracket_end(path, i)?;
                let inner = path[i + 1..close].trim();
                steps.push(parse_bracket(inner)?);
                i = close + 1;
            }
            _ => return None,
        }
    }
    Some(steps)
}

fn find_bracket_end(path: &str, open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (j, ch) in path[open..].char_indices() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(ch),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + j);
                }
            }
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    s.strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
}

fn parse_bracket(inner: &str) -> Option<Step> {
    if inner == "*" {
        return Some(Step::All);
    }
    if let Some(field) = unquote(inner) {
        return Some(Step::Field(field.to_string()));
    }
    if let Ok(n) = inner.parse::<i64>() {
        return Some(Step::Index(n));
    }
    let expr = inner.strip_prefix("?(")?.strip_suffix(')')?.trim();
    let (lhs, equal, rhs) = if let Some((l, r)) = expr.split_once("==") {
        (l, true, r)
    } else {
        let (l, r) = expr.split_once("!=")?;
        (l, false, r)
    };
    let lhs = parse_path(lhs.trim().strip_prefix('@')?)?;
    let rhs = match unquote(rhs) {
        Some(s) => json!(s),
        None => serde_json::from_str(rhs.trim()).ok()?,
    };
    Some(Step::Filter(lhs, equal, rhs))
}

/// The first value `path` finds in `v`, as `results[0][0]` upstream.
fn first_match<'a>(v: &'a Value, path: &[Step]) -> Option<&'a Value> {
    let Some((step, rest)) = path.split_first() else {
        return Some(v);
    };
    match step {
        Step::Field(f) => first_match(v.as_object()?.get(f)?, rest),
        Step::Index(n) => {
            let a = v.as_array()?;
            let i = if *n < 0 {
                a.len().checked_sub(n.unsigned_abs() as usize)?
            } else {
                *n as usize
            };
            first_match(a.get(i)?, rest)
        }
        Step::All => children(v).find_map(|c| first_match(c, rest)),
        Step::Filter(lhs, equal, rhs) => children(v)
            .filter(|c| first_match(c, lhs).is_some_and(|x| (x == rhs) == *equal))
            .find_map(|c| first_match(c, rest)),
    }
}

fn children(v: &Value) -> Box<dyn Iterator<Item = &Value> + '_> {
    match v {
        Value::Array(a) => Box::new(a.iter()),
        Value::Object(m) => Box::new(sorted_values(m)),
        _ => Box::new(std::iter::empty()),
    }
}

fn sorted_values(m: &Map<String, Value>) -> impl Iterator<Item = &Value> {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    keys.into_iter().map(move |k| &m[k])
}
