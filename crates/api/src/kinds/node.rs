//! node.k8s.io RuntimeClass validation (upstream
//! `pkg/apis/node/validation`): the handler is a DNS label and immutable,
//! the overhead follows container resource rules, and scheduling holds
//! valid labels and unique tolerations.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;

use super::common::*;
use super::json::*;
use super::pod::{validate_resource_requirements, validate_tolerations};
use crate::validation::field::{BadValue, ErrorList, FieldError, Path};
use crate::validation::{validate_immutable_field, validate_labels};

pub(crate) fn validate_runtime_class(rc: &Value) -> ErrorList {
    let mut errs = dns1123_label(str_of(rc, "handler"), &Path::new("handler"));
    if let Some(overhead) = obj(rc, "overhead") {
        let res = serde_json::json!({ "limits": child(overhead, "podFixed") });
        errs.extend(validate_resource_requirements(
            &res,
            &BTreeSet::new(),
            &Path::new("overhead"),
        ));
    }
    if let Some(scheduling) = obj(rc, "scheduling") {
        let path = Path::new("scheduling");
        if let Some(selector) = scheduling.get("nodeSelector").and_then(Value::as_object) {
            let labels: BTreeMap<String, String> = selector
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            errs.extend(validate_labels(&labels, &path.child("nodeSelector")));
        }
        let tolerations = scheduling
            .get("tolerations")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        errs.extend(unique_tolerations(tolerations, &path.child("tolerations")));
    }
    errs
}

/// Upstream's `validateTolerations` of a RuntimeClass: the pod rules, and
/// no two tolerations with the same key, operator, value and effect.
fn unique_tolerations(tolerations: &[Value], path: &Path) -> ErrorList {
    let mut errs = validate_tolerations(tolerations, path);
    let mut seen = HashSet::new();
    for (i, t) in tolerations.iter().enumerate() {
        let key = ["key", "operator", "value", "effect"].map(|f| str_of(t, f));
        if !seen.insert(key) {
            let seconds = match t.get("tolerationSeconds").and_then(Value::as_i64) {
                Some(_) => "(*int64)(0xc000000000)",
                None => "(*int64)(nil)",
            };
            let [k, op, v, effect] = key;
            errs.push(FieldError::duplicate(
                &path.index(i),
                BadValue::Raw(format!(
                    "core.Toleration{{Key:{k:?}, Operator:{op:?}, Value:{v:?}, Effect:{effect:?}, TolerationSeconds:{seconds}}}"
                )),
            ));
        }
    }
    errs
}

/// The strategy validates the new object, then what may not change.
pub(crate) fn validate_runtime_class_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate_runtime_class(new);
    let (n, o) = (str_of(new, "handler"), str_of(old, "handler"));
    errs.extend(validate_immutable_field(&n, &o, n, &Path::new("handler")));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(errs: &ErrorList) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn the_handler_is_a_dns_label() {
        let ok = json!({ "metadata": { "name": "kata" }, "handler": "kata-qemu" });
        assert!(validate_runtime_class(&ok).is_empty());
        let bad = json!({ "metadata": { "name": "kata" }, "handler": "Kata_Qemu" });
        assert_eq!(
            messages(&validate_runtime_class(&bad)),
            [
                r#"handler: Invalid value: "Kata_Qemu": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#
            ]
        );
    }

    #[test]
    fn the_handler_is_immutable() {
        let old = json!({ "handler": "runc" });
        let new = json!({ "handler": "kata" });
        assert_eq!(
            messages(&validate_runtime_class_update(&new, &old)),
            [r#"handler: Invalid value: "kata": field is immutable"#]
        );
        assert!(validate_runtime_class_update(&old, &old).is_empty());
    }

    #[test]
    fn overhead_and_scheduling_follow_the_pod_rules() {
        let rc = json!({
            "handler": "kata",
            "overhead": { "podFixed": { "cpu": "-1" } },
            "scheduling": {
                "nodeSelector": { "bad key!": "x" },
                "tolerations": [
                    { "key": "a", "operator": "Exists", "effect": "NoSchedule" },
                    { "key": "a", "operator": "Exists", "effect": "NoSchedule" },
                ],
            },
        });
        let errs = messages(&validate_runtime_class(&rc));
        assert!(
            errs.iter()
                .any(|e| e.starts_with("overhead.limits[cpu]: Invalid value: \"-1\"")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("scheduling.nodeSelector: Invalid value: \"bad key!\"")),
            "{errs:?}"
        );
        assert!(
            errs.contains(&r#"scheduling.tolerations[1]: Duplicate value: core.Toleration{Key:"a", Operator:"Exists", Value:"", Effect:"NoSchedule", TolerationSeconds:(*int64)(nil)}"#.to_string()),
            "{errs:?}"
        );
    }
}
