//! Field selectors: the `?fieldSelector=` syntax (`a=b`, `a==b`, `a!=b`,
//! comma-separated, with `\`, `,` and `=` escaped by a backslash in values),
//! matching against an object's selectable fields, and the errors upstream's
//! `k8s.io/apimachinery/pkg/fields` and the field-label conversions return.
//!
//! ```
//! use api::fields::FieldSelector;
//!
//! let sel: FieldSelector = "status.phase!=Running,metadata.name=web".parse().unwrap();
//! assert!(sel.matches(&[("metadata.name", "web"), ("status.phase", "Pending")]));
//! assert_eq!(sel.to_string(), "metadata.name=web,status.phase!=Running");
//! ```

use crate::gofmt;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Errors of field selectors, worded as upstream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldSelectorError {
    /// A term without `=`, `==` or `!=` (e.g. a label-selector operator).
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    Invalid { selector: String, term: String },
    /// A backslash not followed by `\`, `,` or `=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscapeSequence(String),
    /// An unescaped `,` or `=` inside a value (upstream prints the rune as a
    /// number).
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.0))]
    UnescapedRune(char),
    /// A field a kind's field-label conversion does not know.
    #[error("field label not supported: {0}")]
    FieldLabelNotSupported(String),
    /// A field the default conversion (kinds without their own) does not know.
    #[error("{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"", gofmt::quote(.0))]
    UnknownField(String),
}

/// A term's operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `=` or `==`.
    Equals,
    /// `!=`.
    NotEquals,
}

/// One `field op value` term (upstream's `fields.Requirement`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    pub value: String,
}

impl FieldRequirement {
    /// Whether a field value (missing fields read as `""`, as upstream's
    /// `Fields.Get`) satisfies this term.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        let v = value.unwrap_or("");
        match self.operator {
            FieldOperator::Equals => v == self.value,
            FieldOperator::NotEquals => v != self.value,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{op}{}", self.field, escape_value(&self.value))
    }
}

/// A parsed field selector: terms ANDed together; no terms matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FieldSelector {
    terms: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Matches every object.
    pub fn everything() -> FieldSelector {
        FieldSelector::default()
    }

    /// Upstream's `ParseSelector`. Terms are sorted (as raw text) first.
    pub fn parse(selector: &str) -> Result<FieldSelector, FieldSelectorError> {
        let mut parts = split_terms(selector);
        parts.sort_unstable();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(part) else {
                return Err(FieldSelectorError::Invalid {
                    selector: selector.to_string(),
                    term: part.to_string(),
                });
            };
            terms.push(FieldRequirement {
                field: lhs.to_string(),
                operator: op,
                value: unescape_value(rhs)?,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// Matches objects whose `field` equals `value` (`OneTermEqualSelector`).
    pub fn one_term_equal(field: impl Into<String>, value: impl Into<String>) -> FieldSelector {
        FieldSelector {
            terms: vec![FieldRequirement {
                field: field.into(),
                operator: FieldOperator::Equals,
                value: value.into(),
            }],
        }
    }

    /// Matches exactly the given fields (`SelectorFromSet`).
    pub fn from_set(set: &BTreeMap<String, String>) -> FieldSelector {
        FieldSelector {
            terms: set
                .iter()
                .map(|(k, v)| FieldRequirement {
                    field: k.clone(),
                    operator: FieldOperator::Equals,
                    value: v.clone(),
                })
                .collect(),
        }
    }

    /// The terms, in order.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.terms
    }

    /// True when no term restricts anything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether the fields (looked up through `get`; missing reads as `""`)
    /// satisfy every term.
    pub fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.terms.iter().all(|t| t.matches_value(get(&t.field)))
    }

    /// Whether an object with these (field, value) pairs matches.
    pub fn matches(&self, fields: &[(&str, &str)]) -> bool {
        self.matches_with(|name| fields.iter().find(|(f, _)| *f == name).map(|(_, v)| *v))
    }

    /// Whether an object with these fields matches.
    pub fn matches_map(&self, fields: &BTreeMap<String, String>) -> bool {
        self.matches_with(|name| fields.get(name).map(String::as_str))
    }

    /// If some `=` term pins `field`, its value (upstream's
    /// `RequiresExactMatch`).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.operator == FieldOperator::Equals && t.field == field)
            .map(|t| t.value.as_str())
    }

    /// Rewrites every term's field and value (upstream's `Transform`, used
    /// with a kind's field-label conversion); a term mapped to an empty field
    /// and value is dropped.
    pub fn transform<E>(
        &self,
        mut f: impl FnMut(&str, &str) -> Result<(String, String), E>,
    ) -> Result<FieldSelector, E> {
        let mut terms = Vec::with_capacity(self.terms.len());
        for t in &self.terms {
            let (field, value) = f(&t.field, &t.value)?;
            if field.is_empty() && value.is_empty() {
                continue;
            }
            terms.push(FieldRequirement {
                field,
                operator: t.operator,
                value,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// A copy restricted by `other` too (`AndSelectors`).
    #[must_use]
    pub fn and(&self, other: &FieldSelector) -> FieldSelector {
        let mut terms = self.terms.clone();
        terms.extend(other.terms.iter().cloned());
        FieldSelector { terms }
    }
}

impl FromStr for FieldSelector {
    type Err = FieldSelectorError;
    fn from_str(s: &str) -> Result<FieldSelector, FieldSelectorError> {
        FieldSelector::parse(s)
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{t}")?;
        }
        Ok(())
    }
}

/// The conversion kinds without their own field labels use (upstream's
/// `DefaultMetaV1FieldSelectorConversion`): only `metadata.name` and
/// `metadata.namespace`.
pub fn default_field_label_conversion(
    label: &str,
    value: &str,
) -> Result<(String, String), FieldSelectorError> {
    match label {
        "metadata.name" | "metadata.namespace" => Ok((label.to_string(), value.to_string())),
        _ => Err(FieldSelectorError::UnknownField(label.to_string())),
    }
}

/// Escapes `\`, `,` and `=` for use in a field selector value.
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The literal value of an escaped field selector value.
pub fn unescape_value(s: &str) -> Result<String, FieldSelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => return Err(FieldSelectorError::InvalidEscapeSequence(format!("\\{c}"))),
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(FieldSelectorError::UnescapedRune(c)),
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(FieldSelectorError::InvalidEscapeSequence("\\".to_string()));
    }
    Ok(out)
}

/// Splits on commas not escaped by a backslash (the backslash is kept).
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits a term at the first operator; `!=` and `==` win over `=` at the
/// same position.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, kind) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if rest.starts_with(op) {
                return Some((&term[..i], kind, &term[i + op.len()..]));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> FieldSelector {
        FieldSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn parses_and_prints_canonically() {
        for (input, want) in [
            ("", ""),
            ("a=b", "a=b"),
            ("a==b", "a=b"),
            ("a!=b", "a!=b"),
            ("b=2,a=1", "a=1,b=2"),
            ("a=b,", "a=b"),
            (",a=b,,", "a=b"),
            ("a=", "a="),
            (r"a=b\,c", r"a=b\,c"),
            (r"a=b\=c\\d", r"a=b\=c\\d"),
            (
                "metadata.name=x,spec.nodeName!=",
                "metadata.name=x,spec.nodeName!=",
            ),
        ] {
            assert_eq!(parse(input).to_string(), want, "{input}");
        }
    }

    #[test]
    fn escaped_values_are_unescaped() {
        let sel = parse(r"a=b\,c\=d\\e");
        assert_eq!(sel.requirements()[0].value, r"b,c=d\e");
        assert!(sel.matches(&[("a", r"b,c=d\e")]));
        assert_eq!(escape_value(r"b,c=d\e"), r"b\,c\=d\\e");
    }

    #[test]
    fn errors_are_worded_as_upstream() {
        assert_eq!(
            parse_err("a"),
            "invalid selector: 'a'; can't understand 'a'"
        );
        assert_eq!(
            parse_err("x=y,a in (b)"),
            "invalid selector: 'x=y,a in (b)'; can't understand 'a in (b)'"
        );
        assert_eq!(
            parse_err(r"a=b\c"),
            r"invalid field selector: invalid escape sequence: \c"
        );
        assert_eq!(
            parse_err(r"a=b\"),
            r"invalid field selector: invalid escape sequence: \"
        );
        assert_eq!(
            parse_err("a=b=c"),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            parse_err("a!=b==c"),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            default_field_label_conversion("spec.foo", "x").unwrap_err().to_string(),
            "\"spec.foo\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        assert_eq!(
            FieldSelectorError::FieldLabelNotSupported("spec.x".into()).to_string(),
            "field label not supported: spec.x"
        );
    }

    fn parse_err(s: &str) -> String {
        FieldSelector::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn double_equals_is_not_a_leading_equals_in_the_value() {
        let sel = parse("a==b");
        assert_eq!(sel.requirements()[0].value, "b");
        // `!=` splits first, leaving an unescaped `=` in the value.
        assert!(FieldSelector::parse("a!==b").is_err());
    }

    #[test]
    fn matching_treats_missing_fields_as_empty() {
        let fields = [("metadata.name", "web"), ("status.phase", "Running")];
        for (s, want) in [
            ("", true),
            ("metadata.name=web", true),
            ("metadata.name=db", false),
            ("metadata.name!=db", true),
            ("status.phase!=Running", false),
            ("spec.nodeName=", true),
            ("spec.nodeName!=", false),
            ("spec.nodeName!=node1", true),
            ("metadata.name=web,status.phase=Running", true),
            ("metadata.name=web,status.phase=Pending", false),
        ] {
            assert_eq!(parse(s).matches(&fields), want, "{s}");
        }
        let map: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
        assert!(parse("a=1").matches_map(&map));
    }

    #[test]
    fn requires_exact_match_and_transform() {
        let sel = parse("metadata.name=web,spec.nodeName!=x");
        assert_eq!(sel.requires_exact_match("metadata.name"), Some("web"));
        assert_eq!(sel.requires_exact_match("spec.nodeName"), None);
        let t = sel
            .transform(|f, v| -> Result<_, FieldSelectorError> {
                if f == "spec.nodeName" {
                    Ok((String::new(), String::new()))
                } else {
                    Ok((f.to_string(), v.to_uppercase()))
                }
            })
            .unwrap();
        assert_eq!(t.to_string(), "metadata.name=WEB");
        let e = sel.transform(default_field_label_conversion).unwrap_err();
        assert_eq!(e, FieldSelectorError::UnknownField("spec.nodeName".into()));
    }

    #[test]
    fn one_term_and_sets() {
        assert_eq!(
            FieldSelector::one_term_equal("metadata.name", "a,b").to_string(),
            r"metadata.name=a\,b"
        );
        let set: BTreeMap<String, String> = [
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), "1".to_string()),
        ]
        .into();
        assert_eq!(FieldSelector::from_set(&set).to_string(), "a=1,b=2");
        assert_eq!(parse("a=1").and(&parse("b!=2")).to_string(), "a=1,b!=2");
    }

    #[test]
    fn multibyte_input_does_not_panic() {
        for s in ["é=ü", "é", "a=é\\", "ü!=é,=", "\u{1F600}==x"] {
            let _ = FieldSelector::parse(s);
        }
    }
}
