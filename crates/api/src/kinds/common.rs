//! Validators shared by several kinds (upstream's `k8s.io/apimachinery/pkg/util/validation`
//! helpers and the small functions at the top of `pkg/apis/core/validation`).

use super::json::{self, IntOrString};
use crate::quantity::Quantity;
use crate::validation::field::{BadValue, ErrorList, FieldError, Path};
use crate::validation::{
    inclusive_range_error, is_dns1123_label, is_dns1123_subdomain, is_qualified_name,
    is_valid_port_name, is_valid_port_num, max_len_error, regex_error, validate_label_selector,
    LabelSelectorValidationOptions, DNS1123_SUBDOMAIN_MAX_LENGTH,
};
use regex::Regex;
use serde_json::Value;
use std::sync::LazyLock;

fn anchored(fmt: &str) -> Regex {
    Regex::new(&format!("^(?:{fmt})$")).expect("static regex")
}

/// `hasChDirPrefix`.
fn has_chdir_prefix(value: &str) -> Vec<String> {
    if value == "." {
        vec!["must not be '.'".to_string()]
    } else if value == ".." {
        vec!["must not be '..'".to_string()]
    } else if value.starts_with("..") {
        vec!["must not start with '..'".to_string()]
    } else {
        Vec::new()
    }
}

const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
static CONFIG_MAP_KEY_RE: LazyLock<Regex> = LazyLock::new(|| anchored(CONFIG_MAP_KEY_FMT));

/// `IsConfigMapKey`: keys of ConfigMaps and Secrets.
pub(crate) fn is_config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !CONFIG_MAP_KEY_RE.is_match(value) {
        errs.push(regex_error(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            CONFIG_MAP_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    errs.extend(has_chdir_prefix(value));
    errs
}

/// `IsRelaxedEnvVarName` (the `RelaxedEnvironmentVariableValidation` gate is
/// on by default in v1.32).
pub(crate) fn is_relaxed_env_var_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.is_empty() {
        errs.push("environment variable name must be non-empty".to_string());
    }
    if value.chars().any(|c| !(' '..='~').contains(&c) || c == '=') {
        errs.push(
            "a valid environment variable name must consist only of printable ASCII characters other than '='"
                .to_string(),
        );
    }
    errs
}

const PERCENT_FMT: &str = "[0-9]+%";
static PERCENT_RE: LazyLock<Regex> = LazyLock::new(|| anchored(PERCENT_FMT));

/// `IsValidPercent`.
pub(crate) fn is_valid_percent(value: &str) -> Vec<String> {
    if PERCENT_RE.is_match(value) {
        return Vec::new();
    }
    vec![regex_error(
        "a valid percent string must be a numeric string followed by an ending '%'",
        PERCENT_FMT,
        &["1%", "93%"],
    )]
}

const HTTP_HEADER_NAME_FMT: &str = "[-A-Za-z0-9]+";
static HTTP_HEADER_NAME_RE: LazyLock<Regex> = LazyLock::new(|| anchored(HTTP_HEADER_NAME_FMT));

/// `IsHTTPHeaderName`.
pub(crate) fn is_http_header_name(value: &str) -> Vec<String> {
    if HTTP_HEADER_NAME_RE.is_match(value) {
        return Vec::new();
    }
    vec![regex_error(
        "a valid HTTP header must consist of alphanumeric characters or '-'",
        HTTP_HEADER_NAME_FMT,
        &["X-Header-Name"],
    )]
}

const WILDCARD_SUBDOMAIN_FMT: &str =
    "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
static WILDCARD_SUBDOMAIN_RE: LazyLock<Regex> = LazyLock::new(|| anchored(WILDCARD_SUBDOMAIN_FMT));

/// `IsWildcardDNS1123Subdomain`.
pub(crate) fn is_wildcard_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !WILDCARD_SUBDOMAIN_RE.is_match(value) {
        errs.push(regex_error(
            "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character",
            WILDCARD_SUBDOMAIN_FMT,
            &["*.example.com"],
        ));
    }
    errs
}

/// `IsValidUserID` / `IsValidGroupID`: 0..=MaxInt32.
pub(crate) fn is_valid_id(id: i64) -> Vec<String> {
    if (0..=i64::from(i32::MAX)).contains(&id) {
        Vec::new()
    } else {
        vec![inclusive_range_error(0, i64::from(i32::MAX))]
    }
}

/// `ValidateDNS1123Label` at `path`.
pub(crate) fn dns1123_label(value: &str, path: &Path) -> ErrorList {
    is_dns1123_label(value)
        .into_iter()
        .map(|m| FieldError::invalid(path, value, m))
        .collect()
}

/// `ValidateDNS1123Subdomain` at `path`.
pub(crate) fn dns1123_subdomain(value: &str, path: &Path) -> ErrorList {
    is_dns1123_subdomain(value)
        .into_iter()
        .map(|m| FieldError::invalid(path, value, m))
        .collect()
}

/// `ValidateQualifiedName` at `path`.
pub(crate) fn qualified_name(value: &str, path: &Path) -> ErrorList {
    is_qualified_name(value)
        .into_iter()
        .map(|m| FieldError::invalid(path, value, m))
        .collect()
}

/// A name rule's messages as `Invalid` errors at `path`.
pub(crate) fn name_errors(msgs: Vec<String>, value: &str, path: &Path) -> ErrorList {
    msgs.into_iter()
        .map(|m| FieldError::invalid(path, value, m))
        .collect()
}

/// `validation.IsValidIP` as a field error.
pub(crate) fn valid_ip(value: &str, path: &Path) -> ErrorList {
    if json::parse_ip_sloppy(value).is_some() {
        return ErrorList::new();
    }
    FieldError::invalid(
        path,
        value,
        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
    )
    .into()
}

/// `validation.IsValidCIDR` as a field error.
pub(crate) fn valid_cidr(value: &str, path: &Path) -> ErrorList {
    if json::parse_cidr_sloppy(value).is_some() {
        return ErrorList::new();
    }
    FieldError::invalid(
        path,
        value,
        "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
    )
    .into()
}

/// `ValidateNonSpecialIP`: no unspecified, loopback or link-local addresses.
pub(crate) fn non_special_ip(value: &str, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(ip) = json::parse_ip_sloppy(value) else {
        errs.push(FieldError::invalid(
            path,
            value,
            "must be a valid IP address",
        ));
        return errs;
    };
    if ip.is_unspecified() {
        errs.push(FieldError::invalid(
            path,
            value,
            format!("may not be unspecified ({value})"),
        ));
    }
    if ip.is_loopback() {
        errs.push(FieldError::invalid(
            path,
            value,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    let link_local_unicast = match ip {
        std::net::IpAddr::V4(v4) => v4.is_link_local(),
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local_unicast {
        errs.push(FieldError::invalid(
            path,
            value,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    let link_local_multicast = match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            o[0] == 224 && o[1] == 0 && o[2] == 0
        }
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xff0f) == 0xff02,
    };
    if link_local_multicast {
        errs.push(FieldError::invalid(
            path,
            value,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
    errs
}

/// `ValidatePortNumOrName` of an `intstr.IntOrString`.
pub(crate) fn port_num_or_name(port: Option<&Value>, path: &Path) -> ErrorList {
    match port.and_then(IntOrString::from_json) {
        Some(IntOrString::Str(s)) => is_valid_port_name(&s)
            .into_iter()
            .map(|m| FieldError::invalid(path, s.as_str(), m))
            .collect(),
        Some(IntOrString::Int(i)) => is_valid_port_num(i)
            .into_iter()
            .map(|m| FieldError::invalid(path, i, m))
            .collect(),
        // A missing intstr decodes as the integer 0.
        None => is_valid_port_num(0)
            .into_iter()
            .map(|m| FieldError::invalid(path, 0i64, m))
            .collect(),
    }
}

/// `ValidatePositiveIntOrPercent` (apps).
pub(crate) fn positive_int_or_percent(v: &IntOrString, path: &Path) -> ErrorList {
    match v {
        IntOrString::Str(s) => is_valid_percent(s)
            .into_iter()
            .map(|m| FieldError::invalid(path, BadValue::Raw(v.sharp()), m))
            .collect(),
        IntOrString::Int(i) => crate::validation::validate_nonnegative_field(*i, path),
    }
}

/// The percentage of a valid percent string (`getPercentValue`).
pub(crate) fn percent_value(v: &IntOrString) -> Option<i64> {
    match v {
        IntOrString::Str(s) if is_valid_percent(s).is_empty() => s[..s.len() - 1].parse().ok(),
        _ => None,
    }
}

/// `getIntOrPercentValue`.
pub(crate) fn int_or_percent_value(v: &IntOrString) -> i64 {
    percent_value(v).unwrap_or_else(|| v.int_value())
}

/// `IsNotMoreThan100Percent`.
pub(crate) fn not_more_than_100_percent(v: &IntOrString, path: &Path) -> ErrorList {
    match percent_value(v) {
        Some(p) if p > 100 => FieldError::invalid(
            path,
            BadValue::Raw(v.sharp()),
            "must not be greater than 100%",
        )
        .into(),
        _ => ErrorList::new(),
    }
}

/// `unversionedvalidation.ValidateLabelSelector` of the selector field `key`
/// of `v` (nothing when it is absent).
pub(crate) fn label_selector_errs(
    v: &Value,
    key: &str,
    allow_invalid_values: bool,
    path: &Path,
) -> ErrorList {
    let sel = json::label_selector(v, key);
    validate_label_selector(
        sel.as_ref(),
        LabelSelectorValidationOptions {
            allow_invalid_label_value_in_selector: allow_invalid_values,
        },
        path,
    )
}

/// `validateLocalDescendingPath`: relative and without `..` elements.
pub(crate) fn local_descending_path(target: &str, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if target.starts_with('/') {
        errs.push(FieldError::invalid(path, target, "must be a relative path"));
    }
    errs.extend(path_no_backsteps(target, path));
    errs
}

/// `validatePathNoBacksteps`.
pub(crate) fn path_no_backsteps(target: &str, path: &Path) -> ErrorList {
    if target.split('/').any(|p| p == "..") {
        return FieldError::invalid(path, target, "must not contain '..'").into();
    }
    ErrorList::new()
}

/// `ValidateLocalNonReservedPath`.
pub(crate) fn local_non_reserved_path(target: &str, path: &Path) -> ErrorList {
    let mut errs = local_descending_path(target, path);
    if target.starts_with("..") && !target.starts_with("../") {
        errs.push(FieldError::invalid(
            path,
            target,
            "must not start with '..'",
        ));
    }
    errs
}

/// A quantity field, if it is set and parses.
pub(crate) fn quantity(v: &Value, key: &str) -> Option<Quantity> {
    Quantity::from_json(json::get(v, key)?).ok()
}

/// `ValidateNonnegativeQuantity`.
pub(crate) fn nonnegative_quantity(q: &Quantity, path: &Path) -> ErrorList {
    if q.sign() < 0 {
        return FieldError::invalid(
            path,
            q.to_string(),
            crate::validation::IS_NEGATIVE_ERROR_MSG,
        )
        .into();
    }
    ErrorList::new()
}

/// `ValidatePositiveQuantityValue`.
pub(crate) fn positive_quantity(q: &Quantity, path: &Path) -> ErrorList {
    if q.sign() <= 0 {
        return FieldError::invalid(path, q.to_string(), "must be greater than zero").into();
    }
    ErrorList::new()
}

/// Resource names whose quantities must be whole numbers
/// (`helper.IsIntegerResourceName`).
pub(crate) fn is_integer_resource_name(name: &str) -> bool {
    const INTEGER: &[&str] = &[
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
    ];
    INTEGER.contains(&name) || name.starts_with("count/") || is_extended_resource_name(name)
}

/// `helper.IsNativeResource`: unprefixed or in `kubernetes.io`.
pub(crate) fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// `helper.IsHugePageResourceName`.
pub(crate) fn is_huge_page_resource_name(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// `helper.IsExtendedResourceName`.
pub(crate) fn is_extended_resource_name(name: &str) -> bool {
    if is_native_resource(name) || name.starts_with("requests.") {
        return false;
    }
    is_qualified_name(&format!("requests.{name}")).is_empty()
}

/// `helper.IsOvercommitAllowed`.
pub(crate) fn is_overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !is_huge_page_resource_name(name)
}

/// `ValidateResourceQuantityValue`.
pub(crate) fn resource_quantity_value(name: &str, q: &Quantity, path: &Path) -> ErrorList {
    let mut errs = nonnegative_quantity(q, path);
    if is_integer_resource_name(name) && q.milli_value() % 1000 != 0 {
        errs.push(FieldError::invalid(
            path,
            q.to_string(),
            "must be an integer",
        ));
    }
    errs
}

const STANDARD_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];

/// `validateResourceName`.
pub(crate) fn resource_name(value: &str, path: &Path) -> ErrorList {
    let errs = qualified_name(value, path);
    if !errs.is_empty() {
        return errs;
    }
    if !value.contains('/')
        && !STANDARD_RESOURCES.contains(&value)
        && !value.starts_with("hugepages-")
        && !value.starts_with("requests.hugepages-")
    {
        return FieldError::invalid(
            path,
            value,
            "must be a standard resource type or fully qualified",
        )
        .into();
    }
    ErrorList::new()
}

/// `validateContainerResourceName`.
pub(crate) fn container_resource_name(value: &str, path: &Path) -> ErrorList {
    let mut errs = resource_name(value, path);
    if !value.contains('/') {
        let standard = matches!(value, "cpu" | "memory" | "ephemeral-storage")
            || value.starts_with("hugepages-");
        if !standard {
            errs.push(FieldError::invalid(
                path,
                value,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native_resource(value) && !is_extended_resource_name(value) {
        errs.push(FieldError::invalid(
            path,
            value,
            "doesn't follow extended resource name standard",
        ));
    }
    errs
}

/// `IsDomainPrefixedPath`.
pub(crate) fn domain_prefixed_path(value: &str, path: &Path) -> ErrorList {
    static HTTP_PATH_RE: LazyLock<Regex> =
        LazyLock::new(|| anchored("[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+"));
    let mut errs = ErrorList::new();
    if value.is_empty() {
        errs.push(FieldError::required(path, ""));
        return errs;
    }
    let Some((host, rest)) = value
        .split_once('/')
        .filter(|(h, r)| !h.is_empty() && !r.is_empty())
    else {
        errs.push(FieldError::invalid(
            path,
            value,
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        ));
        return errs;
    };
    for m in is_dns1123_subdomain(host) {
        errs.push(FieldError::invalid(path, host, m));
    }
    if !HTTP_PATH_RE.is_match(rest) {
        errs.push(FieldError::invalid(
            path,
            rest,
            regex_error("Invalid path", "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+", &[]),
        ));
    }
    errs
}
