//! rbac.authorization.k8s.io/v1: Role, ClusterRole, RoleBinding,
//! ClusterRoleBinding (`pkg/apis/rbac/validation`).

use super::common::*;
use super::json::*;
use crate::gofmt;
use crate::labels::LabelSelector;
use crate::validation::field::{BadValue, ErrorList, FieldError, Path};
use crate::validation::{is_valid_path_segment_name, name_is_dns_subdomain};
use serde_json::Value;

const GROUP: &str = "rbac.authorization.k8s.io";

/// `ValidatePolicyRule`.
fn validate_policy_rule(rule: &Value, namespaced: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if arr(rule, "verbs").is_empty() {
        errs.push(FieldError::required(
            &path.child("verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = strings(rule, "nonResourceURLs").unwrap_or_default();
    if !urls.is_empty() {
        if namespaced {
            errs.push(FieldError::invalid(
                &path.child("nonResourceURLs"),
                urls.clone(),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !arr(rule, "apiGroups").is_empty()
            || !arr(rule, "resources").is_empty()
            || !arr(rule, "resourceNames").is_empty()
        {
            errs.push(FieldError::invalid(
                &path.child("nonResourceURLs"),
                urls,
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errs;
    }
    if arr(rule, "apiGroups").is_empty() {
        errs.push(FieldError::required(
            &path.child("apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if arr(rule, "resources").is_empty() {
        errs.push(FieldError::required(
            &path.child("resources"),
            "resource rules must supply at least one resource",
        ));
    }
    errs
}

/// `ValidateRole` (rules).
pub(crate) fn validate_role(role: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, rule) in arr(role, "rules").iter().enumerate() {
        errs.extend(validate_policy_rule(
            rule,
            true,
            &Path::new("rules").index(i),
        ));
    }
    errs
}

/// `ValidateClusterRole` (rules and aggregation).
pub(crate) fn validate_cluster_role(role: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, rule) in arr(role, "rules").iter().enumerate() {
        errs.extend(validate_policy_rule(
            rule,
            false,
            &Path::new("rules").index(i),
        ));
    }
    if let Some(agg) = obj(role, "aggregationRule") {
        let sp = Path::from_names(&["aggregationRule", "clusterRoleSelectors"]);
        let selectors = arr(agg, "clusterRoleSelectors");
        if selectors.is_empty() {
            errs.push(FieldError::required(
                &sp,
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, sel) in selectors.iter().enumerate() {
            let wrapper = serde_json::json!({ "s": sel });
            errs.extend(label_selector_errs(&wrapper, "s", false, &sp.index(i)));
            let parsed = serde_json::from_value(sel.clone()).ok();
            if LabelSelector::from_metav1(parsed.as_ref()).is_err() {
                errs.push(FieldError::invalid(
                    &sp.index(i),
                    selector_value(Some(sel)),
                    "invalid label selector.",
                ));
            }
        }
    }
    errs
}

fn role_ref_value(rr: &Value) -> BadValue {
    BadValue::Raw(format!(
        "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
        gofmt::quote(str_of(rr, "apiGroup")),
        gofmt::quote(str_of(rr, "kind")),
        gofmt::quote(str_of(rr, "name"))
    ))
}

fn validate_subject(subject: &Value, namespaced: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = str_of(subject, "name");
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    }
    let group = str_of(subject, "apiGroup");
    match str_of(subject, "kind") {
        "ServiceAccount" => {
            if !name.is_empty() {
                errs.extend(name_errors(
                    name_is_dns_subdomain(name, false),
                    name,
                    &path.child("name"),
                ));
            }
            if !group.is_empty() {
                errs.push(FieldError::not_supported(
                    &path.child("apiGroup"),
                    group,
                    &[""],
                ));
            }
            if !namespaced && str_of(subject, "namespace").is_empty() {
                errs.push(FieldError::required(&path.child("namespace"), ""));
            }
        }
        "User" | "Group" => {
            if group != GROUP {
                errs.push(FieldError::not_supported(
                    &path.child("apiGroup"),
                    group,
                    &[GROUP],
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &path.child("kind"),
            other,
            &["ServiceAccount", "User", "Group"],
        )),
    }
    errs
}

/// `ValidateRoleBinding` / `ValidateClusterRoleBinding`.
pub(crate) fn validate_binding(b: &Value, cluster: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    let rr = child(b, "roleRef");
    let group = str_of(rr, "apiGroup");
    if group != GROUP {
        errs.push(FieldError::not_supported(
            &Path::from_names(&["roleRef", "apiGroup"]),
            group,
            &[GROUP],
        ));
    }
    let kind = str_of(rr, "kind");
    if cluster {
        if kind != "ClusterRole" {
            errs.push(FieldError::not_supported(
                &Path::from_names(&["roleRef", "kind"]),
                kind,
                &["ClusterRole"],
            ));
        }
    } else if kind != "Role" && kind != "ClusterRole" {
        errs.push(FieldError::not_supported(
            &Path::from_names(&["roleRef", "kind"]),
            kind,
            &["Role", "ClusterRole"],
        ));
    }
    let name = str_of(rr, "name");
    let np = Path::from_names(&["roleRef", "name"]);
    if name.is_empty() {
        errs.push(FieldError::required(&np, ""));
    } else {
        errs.extend(name_errors(is_valid_path_segment_name(name), name, &np));
    }
    for (i, s) in arr(b, "subjects").iter().enumerate() {
        errs.extend(validate_subject(
            s,
            !cluster,
            &Path::new("subjects").index(i),
        ));
    }
    errs
}

/// Binding updates: `roleRef` cannot change.
pub(crate) fn validate_binding_update(new: &Value, old: &Value, cluster: bool) -> ErrorList {
    let mut errs = validate_binding(new, cluster);
    let (n, o) = (child(new, "roleRef"), child(old, "roleRef"));
    let same = ["apiGroup", "kind", "name"]
        .iter()
        .all(|k| str_of(n, k) == str_of(o, k));
    if !same {
        errs.push(FieldError::invalid(
            &Path::new("roleRef"),
            role_ref_value(n),
            "cannot change roleRef",
        ));
    }
    errs
}
