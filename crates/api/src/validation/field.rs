//! Field paths and field-level validation errors, shaped like upstream's
//! `k8s.io/apimachinery/pkg/util/validation/field`.
//!
//! An [`ErrorList`] becomes a `422 Invalid` Status: each [`FieldError`] gives a
//! `StatusCause` (`reason` = [`FieldErrorType::reason`], `message` =
//! [`FieldError::error_body`], `field` = [`FieldError::field`]) and the Status
//! message is [`ErrorList::invalid_message`].

use crate::gofmt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use std::fmt;

/// The path from an object's root to one of its fields, e.g.
/// `spec.template.spec.containers[0].image` or `metadata.labels[app]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Path {
    elems: Vec<PathElem>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum PathElem {
    Field(String),
    Index(String),
}

impl Path {
    /// A root path; several names are joined with dots, as `field.NewPath`.
    pub fn new(name: impl Into<String>) -> Path {
        Path {
            elems: vec![PathElem::Field(name.into())],
        }
    }

    /// Builds a path from dotted names: `Path::from_names(&["spec", "replicas"])`.
    pub fn from_names(names: &[&str]) -> Path {
        Path {
            elems: names
                .iter()
                .map(|n| PathElem::Field((*n).to_string()))
                .collect(),
        }
    }

    /// This path followed by the field `name`.
    #[must_use]
    pub fn child(&self, name: impl Into<String>) -> Path {
        let mut p = self.clone();
        p.elems.push(PathElem::Field(name.into()));
        p
    }

    /// This path subscripted by a list index: `containers[0]`.
    #[must_use]
    pub fn index(&self, index: usize) -> Path {
        let mut p = self.clone();
        p.elems.push(PathElem::Index(index.to_string()));
        p
    }

    /// This path subscripted by a map key: `labels[app]`.
    #[must_use]
    pub fn key(&self, key: impl Into<String>) -> Path {
        let mut p = self.clone();
        p.elems.push(PathElem::Index(key.into()));
        p
    }

    /// True for the empty path (no element yet).
    pub fn is_empty(&self) -> bool {
        self.elems.is_empty()
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.elems.iter().enumerate() {
            match e {
                PathElem::Field(name) if name.is_empty() => f.write_str("[]")?,
                PathElem::Field(name) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(name)?;
                }
                PathElem::Index(idx) => write!(f, "[{idx}]")?,
            }
        }
        Ok(())
    }
}

/// Renders an optional path as upstream renders a possibly-nil `*field.Path`:
/// a nil path prints as `<nil>`.
pub(crate) fn path_or_nil(path: Option<&Path>) -> String {
    match path {
        Some(p) => p.to_string(),
        None => "<nil>".to_string(),
    }
}

/// Why a field is invalid; matches upstream's `field.ErrorType` (and so the
/// `StatusCause.reason` values clients see).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldErrorType {
    NotFound,
    Required,
    Duplicate,
    Invalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Internal,
    TypeInvalid,
}

impl FieldErrorType {
    /// The machine-readable reason, e.g. `FieldValueInvalid`.
    pub fn reason(self) -> &'static str {
        match self {
            FieldErrorType::NotFound => "FieldValueNotFound",
            FieldErrorType::Required => "FieldValueRequired",
            FieldErrorType::Duplicate => "FieldValueDuplicate",
            FieldErrorType::Invalid => "FieldValueInvalid",
            FieldErrorType::NotSupported => "FieldValueNotSupported",
            FieldErrorType::Forbidden => "FieldValueForbidden",
            FieldErrorType::TooLong => "FieldValueTooLong",
            FieldErrorType::TooMany => "FieldValueTooMany",
            FieldErrorType::Internal => "InternalError",
            FieldErrorType::TypeInvalid => "FieldValueTypeInvalid",
        }
    }
}

impl fmt::Display for FieldErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FieldErrorType::NotFound => "Not found",
            FieldErrorType::Required => "Required value",
            FieldErrorType::Duplicate => "Duplicate value",
            FieldErrorType::Invalid | FieldErrorType::TypeInvalid => "Invalid value",
            FieldErrorType::NotSupported => "Unsupported value",
            FieldErrorType::Forbidden => "Forbidden",
            FieldErrorType::TooLong => "Too long",
            FieldErrorType::TooMany => "Too many",
            FieldErrorType::Internal => "Internal error",
        })
    }
}

/// The offending value, kept in the shape upstream prints it: strings quoted
/// (`%q`), numbers and booleans bare, string lists as Go's `%#v`.
#[derive(Clone, Debug, PartialEq)]
pub enum BadValue {
    /// Not printed at all (upstream's `omitValue`).
    Omitted,
    /// A nil value, printed as `null`.
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    /// A `[]string`, printed as `[]string{"a", "b"}`; `None` is a nil slice.
    Strings(Option<Vec<String>>),
    /// Printed verbatim (for values upstream renders through `String()`).
    Raw(String),
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadValue::Omitted => Ok(()),
            BadValue::Null => f.write_str("null"),
            BadValue::Int(i) => write!(f, "{i}"),
            BadValue::Float(x) => f.write_str(&gofmt::float(*x)),
            BadValue::Bool(b) => write!(f, "{b}"),
            BadValue::Str(s) => f.write_str(&gofmt::quote(s)),
            BadValue::Strings(v) => f.write_str(&gofmt::string_slice_sharp(v.as_deref())),
            BadValue::Raw(s) => f.write_str(s),
        }
    }
}

macro_rules! bad_value_from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for BadValue {
            fn from(v: $t) -> BadValue { BadValue::Int(i64::from(v)) }
        }
    )*};
}
bad_value_from_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<usize> for BadValue {
    fn from(v: usize) -> BadValue {
        BadValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<f64> for BadValue {
    fn from(v: f64) -> BadValue {
        BadValue::Float(v)
    }
}
impl From<bool> for BadValue {
    fn from(v: bool) -> BadValue {
        BadValue::Bool(v)
    }
}
impl From<&str> for BadValue {
    fn from(v: &str) -> BadValue {
        BadValue::Str(v.to_string())
    }
}
impl From<String> for BadValue {
    fn from(v: String) -> BadValue {
        BadValue::Str(v)
    }
}
impl From<&String> for BadValue {
    fn from(v: &String) -> BadValue {
        BadValue::Str(v.clone())
    }
}
impl From<Vec<String>> for BadValue {
    fn from(v: Vec<String>) -> BadValue {
        BadValue::Strings(Some(v))
    }
}
impl From<&[String]> for BadValue {
    fn from(v: &[String]) -> BadValue {
        BadValue::Strings(Some(v.to_vec()))
    }
}
impl<T: Into<BadValue>> From<Option<T>> for BadValue {
    fn from(v: Option<T>) -> BadValue {
        v.map_or(BadValue::Null, Into::into)
    }
}

/// One field-level validation error (upstream's `field.Error`).
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub error_type: FieldErrorType,
    /// The rendered path, e.g. `spec.replicas`.
    pub field: String,
    pub bad_value: BadValue,
    pub detail: String,
}

impl FieldError {
    fn new(
        error_type: FieldErrorType,
        path: &Path,
        bad_value: BadValue,
        detail: impl Into<String>,
    ) -> FieldError {
        FieldError {
            error_type,
            field: path.to_string(),
            bad_value,
            detail: detail.into(),
        }
    }

    /// `field.Required`: a value that must be set is missing.
    pub fn required(path: &Path, detail: impl Into<String>) -> FieldError {
        FieldError::new(
            FieldErrorType::Required,
            path,
            BadValue::Str(String::new()),
            detail,
        )
    }

    /// `field.Invalid`: a malformed value.
    pub fn invalid(
        path: &Path,
        value: impl Into<BadValue>,
        detail: impl Into<String>,
    ) -> FieldError {
        FieldError::new(FieldErrorType::Invalid, path, value.into(), detail)
    }

    /// `field.Duplicate`: a value that must be unique is not.
    pub fn duplicate(path: &Path, value: impl Into<BadValue>) -> FieldError {
        FieldError::new(FieldErrorType::Duplicate, path, value.into(), "")
    }

    /// `field.NotFound`.
    pub fn not_found(path: &Path, value: impl Into<BadValue>) -> FieldError {
        FieldError::new(FieldErrorType::NotFound, path, value.into(), "")
    }

    /// `field.NotSupported`: a value outside an enumeration; the detail lists
    /// the supported values, quoted.
    pub fn not_supported<S: AsRef<str>>(
        path: &Path,
        value: impl Into<BadValue>,
        valid: &[S],
    ) -> FieldError {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = valid.iter().map(|v| gofmt::quote(v.as_ref())).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        FieldError::new(FieldErrorType::NotSupported, path, value.into(), detail)
    }

    /// `field.Forbidden`: valid, but not allowed here.
    pub fn forbidden(path: &Path, detail: impl Into<String>) -> FieldError {
        FieldError::new(
            FieldErrorType::Forbidden,
            path,
            BadValue::Str(String::new()),
            detail,
        )
    }

    /// `field.TooLong`: the value is longer than `max_len` bytes (the value
    /// itself is not printed).
    pub fn too_long(path: &Path, value: impl Into<BadValue>, max_len: usize) -> FieldError {
        FieldError::new(
            FieldErrorType::TooLong,
            path,
            value.into(),
            format!("must have at most {max_len} bytes"),
        )
    }

    /// `field.TooLongMaxLength`: "may not be longer than N" (or "value is too
    /// long" without a known maximum).
    pub fn too_long_max_length(
        path: &Path,
        value: impl Into<BadValue>,
        max_len: Option<usize>,
    ) -> FieldError {
        let detail = match max_len {
            Some(max) => format!("may not be longer than {max}"),
            None => "value is too long".to_string(),
        };
        FieldError::new(FieldErrorType::TooLong, path, value.into(), detail)
    }

    /// `field.TooMany`: a list has more than `max` items. `actual` is printed
    /// when known.
    pub fn too_many(path: &Path, actual: Option<usize>, max: Option<usize>) -> FieldError {
        let detail = match max {
            Some(max) => format!("must have at most {max} items"),
            None => "has too many items".to_string(),
        };
        let value = actual.map_or(BadValue::Omitted, BadValue::from);
        FieldError::new(FieldErrorType::TooMany, path, value, detail)
    }

    /// `field.InternalError`: not the user's fault.
    pub fn internal(path: &Path, err: impl fmt::Display) -> FieldError {
        FieldError::new(
            FieldErrorType::Internal,
            path,
            BadValue::Null,
            err.to_string(),
        )
    }

    /// `field.TypeInvalid`: the value does not have the schema's type.
    pub fn type_invalid(
        path: &Path,
        value: impl Into<BadValue>,
        detail: impl Into<String>,
    ) -> FieldError {
        FieldError::new(FieldErrorType::TypeInvalid, path, value.into(), detail)
    }

    /// The message without the field name (upstream's `ErrorBody`), used as
    /// `StatusCause.message`.
    pub fn error_body(&self) -> String {
        let mut s = match self.error_type {
            FieldErrorType::Required
            | FieldErrorType::Forbidden
            | FieldErrorType::TooLong
            | FieldErrorType::Internal => self.error_type.to_string(),
            _ if self.bad_value == BadValue::Omitted => self.error_type.to_string(),
            _ => format!("{}: {}", self.error_type, self.bad_value),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl FieldError {
    /// The `StatusCause` upstream puts in an `Invalid` Status for this error.
    pub fn to_status_cause(&self) -> metav1::StatusCause {
        metav1::StatusCause {
            field: (!self.field.is_empty()).then(|| self.field.clone()),
            message: Some(self.error_body()),
            reason: Some(self.error_type.reason().to_string()),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.error_body())
    }
}

impl std::error::Error for FieldError {}

/// A list of field errors (upstream's `field.ErrorList`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ErrorList(pub Vec<FieldError>);

impl ErrorList {
    pub fn new() -> ErrorList {
        ErrorList(Vec::new())
    }

    pub fn push(&mut self, err: FieldError) {
        self.0.push(err);
    }

    pub fn extend(&mut self, other: ErrorList) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.0.iter()
    }

    /// `ToAggregate`: `None` when empty; otherwise an aggregate with errors of
    /// identical message removed.
    pub fn to_aggregate(&self) -> Option<Aggregate> {
        if self.0.is_empty() {
            return None;
        }
        let mut seen = std::collections::HashSet::new();
        let messages = self
            .0
            .iter()
            .map(ToString::to_string)
            .filter(|m| seen.insert(m.clone()))
            .collect();
        Some(Aggregate(messages))
    }

    /// The message of a `422 Invalid` Status, as `errors.NewInvalid` words it:
    /// `Pod "Foo" is invalid: metadata.name: Invalid value: ...`.
    /// `qualified_kind` is `Kind` for the core group, else `Kind.group`.
    pub fn invalid_message(&self, qualified_kind: &str, name: &str) -> String {
        match self.to_aggregate() {
            None => format!("{qualified_kind} {} is invalid", gofmt::quote(name)),
            Some(agg) => format!("{qualified_kind} {} is invalid: {agg}", gofmt::quote(name)),
        }
    }
}

impl ErrorList {
    /// The `422 Invalid` Status upstream's `errors.NewInvalid` builds for an
    /// object of `group`/`kind` named `name`.
    pub fn to_invalid_status(&self, group: &str, kind: &str, name: &str) -> metav1::Status {
        let qualified_kind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        metav1::Status {
            code: Some(422),
            details: Some(metav1::StatusDetails {
                causes: Some(self.0.iter().map(FieldError::to_status_cause).collect()),
                group: non_empty(group),
                kind: non_empty(kind),
                name: non_empty(name),
                retry_after_seconds: None,
                uid: None,
            }),
            message: Some(self.invalid_message(&qualified_kind, name)),
            metadata: metav1::ListMeta::default(),
            reason: Some("Invalid".to_string()),
            status: Some("Failure".to_string()),
        }
    }
}

impl From<Vec<FieldError>> for ErrorList {
    fn from(v: Vec<FieldError>) -> ErrorList {
        ErrorList(v)
    }
}

impl From<FieldError> for ErrorList {
    fn from(e: FieldError) -> ErrorList {
        ErrorList(vec![e])
    }
}

impl IntoIterator for ErrorList {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ErrorList {
    type Item = &'a FieldError;
    type IntoIter = std::slice::Iter<'a, FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<FieldError> for ErrorList {
    fn from_iter<I: IntoIterator<Item = FieldError>>(iter: I) -> ErrorList {
        ErrorList(iter.into_iter().collect())
    }
}

/// Several error messages reported as one (upstream's `utilerrors.Aggregate`):
/// one message prints alone, several as `[a, b]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aggregate(pub Vec<String>);

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut seen = std::collections::HashSet::new();
        let unique: Vec<&String> = self.0.iter().filter(|m| seen.insert(m.as_str())).collect();
        match unique.as_slice() {
            [] => Ok(()),
            [one] => f.write_str(one),
            many => {
                f.write_str("[")?;
                for (i, m) in many.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(m)?;
                }
                f.write_str("]")
            }
        }
    }
}

impl std::error::Error for Aggregate {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_upstream() {
        let p = Path::from_names(&["spec", "template", "spec"])
            .child("containers")
            .index(0)
            .child("image");
        assert_eq!(p.to_string(), "spec.template.spec.containers[0].image");
        assert_eq!(
            Path::new("metadata").child("labels").key("app").to_string(),
            "metadata.labels[app]"
        );
        assert_eq!(
            Path::new("values").index(0).key("k").to_string(),
            "values[0][k]"
        );
        assert_eq!(path_or_nil(None), "<nil>");
    }

    #[test]
    fn field_errors_render_like_field_error_error() {
        let name = Path::new("metadata").child("name");
        let e = FieldError::invalid(&name, "Foo", "a lowercase RFC 1123 subdomain ...");
        assert_eq!(
            e.to_string(),
            r#"metadata.name: Invalid value: "Foo": a lowercase RFC 1123 subdomain ..."#
        );
        let e = FieldError::invalid(
            &Path::from_names(&["spec", "replicas"]),
            -1i64,
            "must be greater than or equal to 0",
        );
        assert_eq!(
            e.to_string(),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(
            FieldError::required(&Path::from_names(&["spec", "selector"]), "").to_string(),
            "spec.selector: Required value"
        );
        assert_eq!(
            FieldError::forbidden(&Path::new("spec"), "may not be set").to_string(),
            "spec: Forbidden: may not be set"
        );
        assert_eq!(
            FieldError::too_long(&Path::from_names(&["metadata", "annotations"]), "", 262144)
                .to_string(),
            "metadata.annotations: Too long: must have at most 262144 bytes"
        );
        assert_eq!(
            FieldError::not_supported(
                &Path::new("spec").child("restartPolicy"),
                "Sometimes",
                &["Always", "Never", "OnFailure"]
            )
            .to_string(),
            r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure""#
        );
        assert_eq!(
            FieldError::duplicate(&Path::new("spec").child("ports").index(1), "http").to_string(),
            r#"spec.ports[1]: Duplicate value: "http""#
        );
        assert_eq!(
            FieldError::too_many(&Path::new("items"), Some(5), Some(3)).to_string(),
            "items: Too many: 5: must have at most 3 items"
        );
        assert_eq!(
            FieldError::too_many(&Path::new("items"), None, None).to_string(),
            "items: Too many: has too many items"
        );
        assert_eq!(
            FieldError::invalid(
                &Path::new("values"),
                vec!["a".to_string(), "b".to_string()],
                "bad"
            )
            .to_string(),
            r#"values: Invalid value: []string{"a", "b"}: bad"#
        );
        assert_eq!(
            FieldError::invalid(&Path::new("x"), BadValue::Null, "nope").to_string(),
            "x: Invalid value: null: nope"
        );
        assert_eq!(
            FieldError::invalid(&Path::new("x"), 0.5, "nope").to_string(),
            "x: Invalid value: 0.5: nope"
        );
        assert_eq!(
            FieldError::invalid(&Path::new("x"), true, "").to_string(),
            "x: Invalid value: true"
        );
    }

    #[test]
    fn reasons_match_status_cause_types() {
        assert_eq!(FieldErrorType::Invalid.reason(), "FieldValueInvalid");
        assert_eq!(FieldErrorType::Required.reason(), "FieldValueRequired");
        assert_eq!(
            FieldErrorType::NotSupported.reason(),
            "FieldValueNotSupported"
        );
        assert_eq!(FieldErrorType::Internal.reason(), "InternalError");
    }

    #[test]
    fn aggregate_prints_one_alone_and_several_in_brackets() {
        let a = FieldError::required(&Path::new("a"), "");
        let b = FieldError::required(&Path::new("b"), "");
        let one: ErrorList = vec![a.clone()].into();
        assert_eq!(
            one.to_aggregate().map(|x| x.to_string()),
            Some("a: Required value".to_string())
        );
        let two: ErrorList = vec![a.clone(), b, a].into();
        assert_eq!(
            two.to_aggregate().map(|x| x.to_string()),
            Some("[a: Required value, b: Required value]".to_string())
        );
        assert!(ErrorList::new().to_aggregate().is_none());
    }

    #[test]
    fn invalid_status_matches_new_invalid() {
        let errs: ErrorList = vec![
            FieldError::required(&Path::from_names(&["spec", "selector"]), ""),
            FieldError::invalid(
                &Path::from_names(&["spec", "replicas"]),
                -1i64,
                "must be greater than or equal to 0",
            ),
        ]
        .into();
        let status = errs.to_invalid_status("apps", "Deployment", "web");
        assert_eq!(status.code, Some(422));
        assert_eq!(status.reason.as_deref(), Some("Invalid"));
        assert_eq!(
            status.message.as_deref(),
            Some("Deployment.apps \"web\" is invalid: [spec.selector: Required value, spec.replicas: Invalid value: -1: must be greater than or equal to 0]")
        );
        let details = status.details.unwrap();
        assert_eq!(details.group.as_deref(), Some("apps"));
        let causes = details.causes.unwrap();
        assert_eq!(causes[0].reason.as_deref(), Some("FieldValueRequired"));
        assert_eq!(causes[0].message.as_deref(), Some("Required value"));
        assert_eq!(causes[0].field.as_deref(), Some("spec.selector"));
        assert_eq!(
            causes[1].message.as_deref(),
            Some("Invalid value: -1: must be greater than or equal to 0")
        );
        let core = ErrorList::from(FieldError::required(&Path::new("x"), ""))
            .to_invalid_status("", "Pod", "p");
        assert_eq!(core.details.unwrap().group, None);
        assert_eq!(
            core.message.as_deref(),
            Some("Pod \"p\" is invalid: x: Required value")
        );
    }

    #[test]
    fn invalid_message_matches_new_invalid() {
        let errs: ErrorList =
            FieldError::invalid(&Path::from_names(&["metadata", "name"]), "Foo", "bad").into();
        assert_eq!(
            errs.invalid_message("Pod", "Foo"),
            r#"Pod "Foo" is invalid: metadata.name: Invalid value: "Foo": bad"#
        );
        assert_eq!(
            ErrorList::new().invalid_message("Deployment.apps", "x"),
            r#"Deployment.apps "x" is invalid"#
        );
    }
}
