//! Label selectors: the `?labelSelector=` string syntax, `metav1.LabelSelector`
//! conversion, matching against an object's labels and the canonical string
//! form, as upstream's `k8s.io/apimachinery/pkg/labels` (and `metav1`'s
//! selector helpers) do them.
//!
//! ```
//! use api::labels::LabelSelector;
//! use std::collections::BTreeMap;
//!
//! let sel: LabelSelector = "tier in (web,api), !canary".parse().unwrap();
//! let labels = BTreeMap::from([("tier".to_string(), "web".to_string())]);
//! assert!(sel.matches(&labels));
//! assert_eq!(sel.to_string(), "!canary,tier in (api,web)");
//! ```

use crate::gofmt;
use crate::validation::field::{path_or_nil, Aggregate, BadValue, ErrorList, FieldError, Path};
use crate::validation::{is_qualified_name, is_valid_label_value};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// A label selector operator (upstream's `selection.Operator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

impl Operator {
    /// The operator's name as upstream spells the constant's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The binary operators, in the order upstream lists them in parse errors.
const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

/// Errors from parsing, building or converting label selectors; the texts are
/// upstream's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LabelSelectorError {
    /// The string does not follow the selector grammar, or one of its
    /// requirements is invalid (the message starts with
    /// `unable to parse requirement:` in that case).
    #[error("{0}")]
    Parse(String),
    /// A requirement failed validation (key, values or operator arity).
    #[error("{0}")]
    Invalid(Aggregate),
    /// A `matchExpressions` operator that is not In, NotIn, Exists or
    /// DoesNotExist.
    #[error("{} is not a valid pod selector operator", gofmt::quote(.0))]
    InvalidOperator(String),
}

/// One requirement of a selector: a key, an operator and values.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Upstream's `NewRequirement`: validates the key, the values and the
    /// operator's arity. `path` prefixes the field paths in errors (upstream's
    /// `field.WithPath`); `None` gives paths like `key` and `values[0]`.
    pub fn new(
        key: impl Into<String>,
        operator: Operator,
        values: Vec<String>,
        path: Option<&Path>,
    ) -> Result<Requirement, LabelSelectorError> {
        Requirement::build(key.into(), operator, values, path, false)
    }

    /// `nil_if_empty`: render empty values as Go's nil slice, as upstream
    /// does for selectors converted from `metav1.LabelSelector`.
    fn build(
        key: String,
        operator: Operator,
        values: Vec<String>,
        path: Option<&Path>,
        nil_if_empty: bool,
    ) -> Result<Requirement, LabelSelectorError> {
        let shown = || {
            if nil_if_empty && values.is_empty() {
                BadValue::Strings(None)
            } else {
                BadValue::from(values.clone())
            }
        };
        let child = |name: &str| path.map_or_else(|| Path::new(name), |p| p.child(name));
        let mut errs = ErrorList::new();
        if let Some(e) = validate_label_key(&key, Some(&child("key"))) {
            errs.push(e);
        }
        let value_path = child("values");
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.push(FieldError::invalid(
                        &value_path,
                        shown(),
                        "for 'in', 'notin' operators, values set can't be empty",
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid(
                        &value_path,
                        shown(),
                        "exact-match compatibility requires one single value",
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(FieldError::invalid(
                        &value_path,
                        shown(),
                        "values set must be empty for exists and does not exist",
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid(
                        &value_path,
                        shown(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(FieldError::invalid(
                            &value_path.index(i),
                            v,
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let msgs = is_valid_label_value(v);
            if !msgs.is_empty() {
                errs.push(FieldError::invalid(
                    &value_path.index(i).key(key.clone()),
                    v,
                    msgs.join("; "),
                ));
            }
        }
        match errs.to_aggregate() {
            Some(agg) => Err(LabelSelectorError::Invalid(agg)),
            None => Ok(Requirement {
                key,
                operator,
                values,
            }),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values as given (upstream's `ValuesUnsorted`).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// The values as a sorted set (upstream's `Values`).
    pub fn value_set(&self) -> BTreeSet<String> {
        self.values.iter().cloned().collect()
    }

    fn has_value(&self, value: &str) -> bool {
        self.values.iter().any(|v| v == value)
    }

    /// Whether labels (looked up through `get`) satisfy this requirement.
    pub fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                get(&self.key).is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => {
                get(&self.key).is_none_or(|v| !self.has_value(v))
            }
            Operator::Exists => get(&self.key).is_some(),
            Operator::DoesNotExist => get(&self.key).is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(Ok(label)) = get(&self.key).map(str::parse::<i64>) else {
                    return false;
                };
                let [value] = self.values.as_slice() else {
                    return false;
                };
                let Ok(value) = value.parse::<i64>() else {
                    return false;
                };
                match self.operator {
                    Operator::GreaterThan => label > value,
                    _ => label < value,
                }
            }
        }
    }

    /// Whether `labels` satisfy this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|k| labels.get(k).map(String::as_str))
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let (op, parens) = match self.operator {
            Operator::Equals => ("=", false),
            Operator::DoubleEquals => ("==", false),
            Operator::NotEquals => ("!=", false),
            Operator::In => (" in ", true),
            Operator::NotIn => (" notin ", true),
            Operator::GreaterThan => (">", false),
            Operator::LessThan => ("<", false),
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        if parens {
            f.write_str("(")?;
        }
        if let [one] = self.values.as_slice() {
            f.write_str(one)?;
        } else {
            let mut sorted = self.values.clone();
            sorted.sort();
            f.write_str(&sorted.join(","))?;
        }
        if parens {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A parsed label selector: requirements ANDed together, or the selector that
/// matches nothing (what a nil `metav1.LabelSelector` converts to).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LabelSelector {
    Requirements(Vec<Requirement>),
    Nothing,
}

impl Default for LabelSelector {
    fn default() -> LabelSelector {
        LabelSelector::everything()
    }
}

impl LabelSelector {
    /// Matches every object.
    pub fn everything() -> LabelSelector {
        LabelSelector::Requirements(Vec::new())
    }

    /// Matches no object.
    pub fn nothing() -> LabelSelector {
        LabelSelector::Nothing
    }

    /// Parses the selector string syntax (upstream's `labels.Parse`), e.g.
    /// `x in (foo,,baz),y,z notin ()`. Requirements are sorted by key.
    pub fn parse(selector: &str) -> Result<LabelSelector, LabelSelectorError> {
        Ok(LabelSelector::Requirements(parse_requirements(
            selector, None,
        )?))
    }

    /// Like [`LabelSelector::parse`], with `path` in the errors of invalid
    /// requirements.
    pub fn parse_with_path(
        selector: &str,
        path: &Path,
    ) -> Result<LabelSelector, LabelSelectorError> {
        Ok(LabelSelector::Requirements(parse_requirements(
            selector,
            Some(path),
        )?))
    }

    /// Matches exactly the given labels (upstream's `SelectorFromSet`), without
    /// validating them.
    pub fn from_set(set: &BTreeMap<String, String>) -> LabelSelector {
        LabelSelector::Requirements(
            set.iter()
                .map(|(k, v)| Requirement {
                    key: k.clone(),
                    operator: Operator::Equals,
                    values: vec![v.clone()],
                })
                .collect(),
        )
    }

    /// Like [`LabelSelector::from_set`], validating keys and values
    /// (upstream's `ValidatedSelectorFromSet`).
    pub fn from_set_validated(
        set: &BTreeMap<String, String>,
    ) -> Result<LabelSelector, LabelSelectorError> {
        let reqs = set
            .iter()
            .map(|(k, v)| Requirement::new(k.clone(), Operator::Equals, vec![v.clone()], None))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LabelSelector::Requirements(reqs))
    }

    /// Converts a `metav1.LabelSelector` (upstream's
    /// `LabelSelectorAsSelector`): `None` matches nothing, an empty selector
    /// matches everything.
    pub fn from_metav1(
        selector: Option<&metav1::LabelSelector>,
    ) -> Result<LabelSelector, LabelSelectorError> {
        let Some(ps) = selector else {
            return Ok(LabelSelector::Nothing);
        };
        let match_labels = ps.match_labels.as_ref();
        let match_expressions = ps.match_expressions.as_deref().unwrap_or_default();
        if match_labels.map_or(0, BTreeMap::len) + match_expressions.len() == 0 {
            return Ok(LabelSelector::everything());
        }
        let mut reqs = Vec::new();
        for (k, v) in match_labels.into_iter().flatten() {
            reqs.push(Requirement::new(
                k.clone(),
                Operator::Equals,
                vec![v.clone()],
                None,
            )?);
        }
        for expr in match_expressions {
            let op = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => return Err(LabelSelectorError::InvalidOperator(other.to_string())),
            };
            reqs.push(Requirement::build(
                expr.key.clone(),
                op,
                expr.values.clone().unwrap_or_default(),
                None,
                true,
            )?);
        }
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector::Requirements(reqs))
    }

    /// A copy with `reqs` added, kept sorted by key (upstream's `Add`).
    #[must_use]
    pub fn add(&self, reqs: impl IntoIterator<Item = Requirement>) -> LabelSelector {
        match self {
            LabelSelector::Nothing => LabelSelector::Nothing,
            LabelSelector::Requirements(own) => {
                let mut all = own.clone();
                all.extend(reqs);
                all.sort_by(|a, b| a.key.cmp(&b.key));
                LabelSelector::Requirements(all)
            }
        }
    }

    /// The requirements; `None` for the selector that matches nothing.
    pub fn requirements(&self) -> Option<&[Requirement]> {
        match self {
            LabelSelector::Requirements(r) => Some(r),
            LabelSelector::Nothing => None,
        }
    }

    /// True when the selector does not restrict anything (upstream's `Empty`).
    pub fn is_empty(&self) -> bool {
        matches!(self, LabelSelector::Requirements(r) if r.is_empty())
    }

    /// True only for [`LabelSelector::nothing`].
    pub fn matches_nothing(&self) -> bool {
        matches!(self, LabelSelector::Nothing)
    }

    /// Whether labels (looked up through `get`) satisfy every requirement.
    pub fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str> + Copy) -> bool {
        match self {
            LabelSelector::Nothing => false,
            LabelSelector::Requirements(reqs) => reqs.iter().all(|r| r.matches_with(get)),
        }
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|k| labels.get(k).map(String::as_str))
    }

    /// Whether an object with optional labels (`metadata.labels`) matches.
    pub fn matches_opt(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.matches_with(|k| labels.and_then(|l| l.get(k)).map(String::as_str))
    }

    /// If the selector requires `label` to have exactly one value (through
    /// `=`, `==` or a one-value `in`), that value (upstream's
    /// `RequiresExactMatch`).
    pub fn requires_exact_match(&self, label: &str) -> Option<&str> {
        let reqs = self.requirements()?;
        let r = reqs.iter().find(|r| r.key == label)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [one]) => Some(one),
            _ => None,
        }
    }

    /// Converts back to a `metav1.LabelSelector` the way upstream's
    /// `ParseToLabelSelector` does (`=`/`==` become `matchLabels`).
    pub fn to_metav1(&self) -> Result<metav1::LabelSelector, LabelSelectorError> {
        let mut match_labels = BTreeMap::new();
        let mut match_expressions = Vec::new();
        for r in self.requirements().unwrap_or_default() {
            let op = match r.operator {
                Operator::Equals | Operator::DoubleEquals => {
                    let set = r.value_set();
                    let [value] = set
                        .into_iter()
                        .collect::<Vec<_>>()
                        .try_into()
                        .map_err(|_| {
                            LabelSelectorError::Parse(
                                "equals operator must have exactly one value".to_string(),
                            )
                        })?;
                    match_labels.insert(r.key.clone(), value);
                    continue;
                }
                Operator::In => "In",
                Operator::NotIn => "NotIn",
                Operator::Exists => "Exists",
                Operator::DoesNotExist => "DoesNotExist",
                Operator::GreaterThan | Operator::LessThan => {
                    return Err(LabelSelectorError::Parse(format!(
                        "{} isn't supported in label selectors",
                        gofmt::quote(r.operator.as_str())
                    )));
                }
                Operator::NotEquals => {
                    return Err(LabelSelectorError::Parse(format!(
                        "{} is not a valid label selector operator",
                        gofmt::quote(r.operator.as_str())
                    )));
                }
            };
            match_expressions.push(metav1::LabelSelectorRequirement {
                key: r.key.clone(),
                operator: op.to_string(),
                values: Some(r.value_set().into_iter().collect()),
            });
        }
        Ok(metav1::LabelSelector {
            match_labels: Some(match_labels),
            match_expressions: Some(match_expressions),
        })
    }
}

impl FromStr for LabelSelector {
    type Err = LabelSelectorError;
    fn from_str(s: &str) -> Result<LabelSelector, LabelSelectorError> {
        LabelSelector::parse(s)
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let LabelSelector::Requirements(reqs) = self else {
            return Ok(());
        };
        for (i, r) in reqs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// Upstream's `ParseToLabelSelector`: parses the string syntax straight into a
/// `metav1.LabelSelector`.
pub fn parse_to_metav1(selector: &str) -> Result<metav1::LabelSelector, LabelSelectorError> {
    let reqs = parse_requirements(selector, None).map_err(|e| {
        LabelSelectorError::Parse(format!(
            "couldn't parse the selector string \"{selector}\": {e}"
        ))
    })?;
    LabelSelector::Requirements(reqs).to_metav1()
}

/// Upstream's `FormatLabelSelector`: the canonical string of a
/// `metav1.LabelSelector`, `<none>` when empty and `<error>` when invalid (as
/// `kubectl describe` prints selectors).
pub fn format_metav1(selector: Option<&metav1::LabelSelector>) -> String {
    match LabelSelector::from_metav1(selector) {
        Err(_) => "<error>".to_string(),
        Ok(sel) => {
            let s = sel.to_string();
            if s.is_empty() {
                "<none>".to_string()
            } else {
                s
            }
        }
    }
}

/// Upstream's `LabelSelectorAsMap`: the selector as plain labels, failing for
/// operators that cannot be expressed that way.
pub fn metav1_as_map(
    selector: Option<&metav1::LabelSelector>,
) -> Result<Option<BTreeMap<String, String>>, LabelSelectorError> {
    let Some(ps) = selector else {
        return Ok(None);
    };
    let mut map = ps.match_labels.clone().unwrap_or_default();
    for expr in ps.match_expressions.iter().flatten() {
        match expr.operator.as_str() {
            "In" => match expr.values.as_deref() {
                Some([one]) => {
                    map.insert(expr.key.clone(), one.clone());
                }
                _ => {
                    return Err(LabelSelectorError::Parse(format!(
                        "operator {} without a single value cannot be converted into the old label selector format",
                        gofmt::quote(&expr.operator)
                    )));
                }
            },
            "NotIn" | "Exists" | "DoesNotExist" => {
                return Err(LabelSelectorError::Parse(format!(
                    "operator {} cannot be converted into the old label selector format",
                    gofmt::quote(&expr.operator)
                )));
            }
            other => {
                return Err(LabelSelectorError::Parse(format!(
                    "{} is not a valid selector operator",
                    gofmt::quote(other)
                )));
            }
        }
    }
    Ok(Some(map))
}

/// `validateLabelKey`: one field error with all problems joined by `; `.
fn validate_label_key(key: &str, path: Option<&Path>) -> Option<FieldError> {
    let errs = is_qualified_name(key);
    if errs.is_empty() {
        return None;
    }
    Some(FieldError {
        error_type: crate::validation::field::FieldErrorType::Invalid,
        field: path_or_nil(path),
        bad_value: BadValue::Str(key.to_string()),
        detail: errs.join("; "),
    })
}

// ---- the lexer and parser, after upstream's selector.go ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn literal_token(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(ch: u8) -> bool {
    matches!(ch, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special_symbol(ch: u8) -> bool {
    matches!(ch, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn scan_id_or_keyword(&mut self) -> (Token, String) {
        let start = self.pos;
        while let Some(ch) = self.peek() {
            if is_special_symbol(ch) || is_whitespace(ch) {
                break;
            }
            self.pos += 1;
        }
        let lit = &self.s[start..self.pos];
        let text = String::from_utf8_lossy(lit).into_owned();
        (literal_token(lit).unwrap_or(Token::Identifier), text)
    }

    fn scan_special_symbol(&mut self) -> (Token, String) {
        let start = self.pos;
        let mut last: Option<(Token, usize)> = None;
        while let Some(ch) = self.peek() {
            if !is_special_symbol(ch) {
                break;
            }
            let candidate = &self.s[start..=self.pos];
            if let Some(tok) = literal_token(candidate) {
                last = Some((tok, self.pos + 1));
            } else if last.is_some() {
                break;
            }
            self.pos += 1;
        }
        match last {
            Some((tok, end)) => {
                self.pos = end;
                (
                    tok,
                    String::from_utf8_lossy(&self.s[start..end]).into_owned(),
                )
            }
            None => {
                let buf = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
                (
                    Token::Error,
                    format!("error expected: keyword found '{buf}'"),
                )
            }
        }
    }

    fn lex(&mut self) -> (Token, String) {
        while self.peek().is_some_and(is_whitespace) {
            self.pos += 1;
        }
        match self.peek() {
            None => (Token::EndOfString, String::new()),
            Some(ch) if is_special_symbol(ch) => self.scan_special_symbol(),
            Some(_) => self.scan_id_or_keyword(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser<'p> {
    items: Vec<(Token, String)>,
    position: usize,
    path: Option<&'p Path>,
}

fn err(msg: String) -> LabelSelectorError {
    LabelSelectorError::Parse(msg)
}

impl Parser<'_> {
    fn item(&self, context: Context, pos: usize) -> (Token, String) {
        let (tok, lit) = self
            .items
            .get(pos)
            .cloned()
            .unwrap_or((Token::EndOfString, String::new()));
        let tok = match (context, tok) {
            (Context::Values, Token::In | Token::NotIn) => Token::Identifier,
            _ => tok,
        };
        (tok, lit)
    }

    fn lookahead(&self, context: Context) -> (Token, String) {
        self.item(context, self.position)
    }

    fn consume(&mut self, context: Context) -> (Token, String) {
        let item = self.item(context, self.position);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, LabelSelectorError> {
        let mut reqs = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Context::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| err(format!("unable to parse requirement: {e}")))?;
                    reqs.push(r);
                    let (t, l) = self.consume(Context::Values);
                    match t {
                        Token::EndOfString => return Ok(reqs),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(err(format!(
                                "found '{l}', expected: ',' or 'end of string'"
                            )))
                        }
                    }
                }
                Token::EndOfString => return Ok(reqs),
                _ => {
                    return Err(err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    )))
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, LabelSelectorError> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (Operator::Exists | Operator::DoesNotExist)) = inferred {
            return Requirement::new(key, op, Vec::new(), self.path);
        }
        let op = self.parse_operator()?;
        let values = match op {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(key, op, values.into_iter().collect(), self.path)
    }

    fn parse_key_and_infer_operator(
        &mut self,
    ) -> Result<(String, Option<Operator>), LabelSelectorError> {
        let mut operator = None;
        let (mut tok, mut literal) = self.consume(Context::Values);
        if tok == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (tok, literal) = self.consume(Context::Values);
        }
        if tok != Token::Identifier {
            return Err(err(format!("found '{literal}', expected: identifier")));
        }
        if let Some(e) = validate_label_key(&literal, self.path) {
            return Err(err(e.to_string()));
        }
        let (t, _) = self.lookahead(Context::Values);
        if (t == Token::EndOfString || t == Token::Comma)
            && operator != Some(Operator::DoesNotExist)
        {
            operator = Some(Operator::Exists);
        }
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, LabelSelectorError> {
        let (tok, lit) = self.consume(Context::KeyAndOperator);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => return Err(err(format!("found '{lit}', expected: {BINARY_OPERATORS}"))),
        })
    }

    fn parse_values(&mut self) -> Result<BTreeSet<String>, LabelSelectorError> {
        let (tok, lit) = self.consume(Context::Values);
        if tok != Token::OpenPar {
            return Err(err(format!("found '{lit}' expected: '('")));
        }
        let (tok, lit) = self.lookahead(Context::Values);
        match tok {
            Token::Identifier | Token::Comma => {
                let s = self.parse_identifiers_list()?;
                let (tok, _) = self.consume(Context::Values);
                if tok != Token::ClosedPar {
                    return Err(err(format!("found '{lit}', expected: ')'")));
                }
                Ok(s)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(err(format!(
                "found '{lit}', expected: ',', ')' or identifier"
            ))),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<String>, LabelSelectorError> {
        let mut s = BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(Context::Values);
            match tok {
                Token::Identifier => {
                    s.insert(lit);
                    let (tok2, lit2) = self.lookahead(Context::Values);
                    match tok2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(s),
                        _ => return Err(err(format!("found '{lit2}', expected: ',' or ')'"))),
                    }
                }
                Token::Comma => {
                    if s.is_empty() {
                        s.insert(String::new());
                    }
                    let (tok2, _) = self.lookahead(Context::Values);
                    if tok2 == Token::ClosedPar {
                        s.insert(String::new());
                        return Ok(s);
                    }
                    if tok2 == Token::Comma {
                        s.insert(String::new());
                    }
                }
                _ => return Err(err(format!("found '{lit}', expected: ',', or identifier"))),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<BTreeSet<String>, LabelSelectorError> {
        let (tok, _) = self.lookahead(Context::Values);
        if tok == Token::EndOfString || tok == Token::Comma {
            return Ok(BTreeSet::from([String::new()]));
        }
        let (tok, lit) = self.consume(Context::Values);
        if tok == Token::Identifier {
            return Ok(BTreeSet::from([lit]));
        }
        Err(err(format!("found '{lit}', expected: identifier")))
    }
}

fn parse_requirements(
    selector: &str,
    path: Option<&Path>,
) -> Result<Vec<Requirement>, LabelSelectorError> {
    let mut lexer = Lexer {
        s: selector.as_bytes(),
        pos: 0,
    };
    let mut items = Vec::new();
    loop {
        let item = lexer.lex();
        let end = item.0 == Token::EndOfString;
        items.push(item);
        if end {
            break;
        }
    }
    let mut parser = Parser {
        items,
        position: 0,
        path,
    };
    let mut reqs = parser.parse()?;
    reqs.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(reqs)
}

#[cfg(test)]
mod tests;
