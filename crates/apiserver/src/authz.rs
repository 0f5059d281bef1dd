//! Authorization: the Node authorizer ([`crate::node_authz`]) for
//! kubelets, then RBAC evaluation over the Roles, ClusterRoles and their
//! bindings in the store (upstream's `rbac` authorizer), with members of
//! `system:masters` allowed everything. The same decision answers requests
//! and the access reviews (`kubectl auth can-i`), so what can-i says is
//! what the server does.

use serde_json::{json, Value};

use crate::registry::{ListOptions, Registry};
use crate::resources::lookup;
use crate::server::User;

/// What a request wants to do.
#[derive(Clone, Debug, Default)]
pub struct Attributes {
    pub verb: String,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// For non-resource requests (`/healthz`, `/api`, ...).
    pub path: Option<String>,
    /// The `fieldSelector` of a list or watch (upstream's
    /// `GetFieldSelector`, which the Node authorizer reads).
    pub field_selector: Option<String>,
}

pub const MASTERS: &str = "system:masters";

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn has(list: &[&str], want: &str) -> bool {
    list.iter().any(|x| *x == "*" || *x == want)
}

/// Whether one policy rule allows the request (upstream `RuleAllows`).
pub fn rule_allows(rule: &Value, a: &Attributes) -> bool {
    let verbs = strs(&rule["verbs"]);
    if !has(&verbs, &a.verb) {
        return false;
    }
    if let Some(path) = &a.path {
        return strs(&rule["nonResourceURLs"]).iter().any(|u| {
            *u == "*" || *u == path || (u.ends_with('*') && path.starts_with(&u[..u.len() - 1]))
        });
    }
    if !has(&strs(&rule["apiGroups"]), &a.api_group) {
        return false;
    }
    let combined = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let resources = strs(&rule["resources"]);
    let resource_ok = resources.iter().any(|r| {
        *r == "*"
            || *r == combined
            || (a.subresource.is_empty() && *r == a.resource)
            || (!a.subresource.is_empty() && *r == format!("*/{}", a.subresource))
    });
    if !resource_ok {
        return false;
    }
    let names = strs(&rule["resourceNames"]);
    names.is_empty() || names.contains(&a.name.as_str())
}

fn subject_matches(subject: &Value, user: &User, binding_ns: &str) -> bool {
    let name = subject["name"].as_str().unwrap_or("");
    match subject["kind"].as_str().unwrap_or("") {
        "User" => user.name == name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = subject["namespace"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or(binding_ns);
            user.name == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

/// The rules that apply to `user` in `namespace` ("" = cluster scope only).
pub async fn rules_for(reg: &Registry, user: &User, namespace: &str) -> Vec<Value> {
    let (Some(crbs), Some(crs), Some(rbs), Some(roles)) = (
        lookup("rbac.authorization.k8s.io", "v1", "clusterrolebindings"),
        lookup("rbac.authorization.k8s.io", "v1", "clusterroles"),
        lookup("rbac.authorization.k8s.io", "v1", "rolebindings"),
        lookup("rbac.authorization.k8s.io", "v1", "roles"),
    ) else {
        return Vec::new();
    };
    let mut rules = Vec::new();
    let list = |r, ns: Option<String>| async move {
        reg.list(r, ns.as_deref(), &ListOptions::default(), &|_| true)
            .await
            .ok()
            .and_then(|l| l["items"].as_array().cloned())
            .unwrap_or_default()
    };
    let cluster_roles = list(crs, None).await;
    let role_rules = |name: &str, roles: &[Value]| -> Vec<Value> {
        roles
            .iter()
            .filter(|r| r.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
            .flat_map(|r| r["rules"].as_array().cloned().unwrap_or_default())
            .collect()
    };
    for b in list(crbs, None).await {
        if b["subjects"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| subject_matches(s, user, "")))
        {
            let name = b
                .pointer("/roleRef/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            rules.extend(role_rules(name, &cluster_roles));
        }
    }
    if !namespace.is_empty() {
        let ns_roles = list(roles, Some(namespace.to_string())).await;
        for b in list(rbs, Some(namespace.to_string())).await {
            if b["subjects"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| subject_matches(s, user, namespace)))
            {
                let name = b
                    .pointer("/roleRef/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                match b.pointer("/roleRef/kind").and_then(Value::as_str) {
                    Some("ClusterRole") => rules.extend(role_rules(name, &cluster_roles)),
                    _ => rules.extend(role_rules(name, &ns_roles)),
                }
            }
        }
    }
    rules
}

/// The decision for a request: allowed, and the reason text upstream gives
/// (for a denial, what the authorizers that declined said). The Node
/// authorizer answers first, then RBAC (upstream's `Node,RBAC`).
pub async fn authorize(reg: &Registry, user: &User, a: &Attributes) -> (bool, String) {
    if user.groups.iter().any(|g| g == MASTERS) {
        return (true, String::new());
    }
    let reason = match crate::node_authz::authorize(reg, user, a).await {
        crate::node_authz::Decision::Allow => return (true, String::new()),
        crate::node_authz::Decision::NoOpinion(reason) => reason,
    };
    let rules = rules_for(reg, user, &a.namespace).await;
    if rules.iter().any(|r| rule_allows(r, a)) {
        return (true, "RBAC: allowed".into());
    }
    (false, reason)
}

fn user_of(spec: &Value) -> User {
    User {
        name: spec["user"].as_str().unwrap_or("").to_string(),
        groups: strs(&spec["groups"])
            .into_iter()
            .map(str::to_string)
            .collect(),
    }
}

fn attributes_of(spec: &Value, namespace_override: Option<&str>) -> Attributes {
    if let Some(nr) = spec.get("nonResourceAttributes") {
        return Attributes {
            verb: nr["verb"].as_str().unwrap_or("").to_string(),
            path: Some(nr["path"].as_str().unwrap_or("").to_string()),
            ..Default::default()
        };
    }
    let ra = &spec["resourceAttributes"];
    Attributes {
        verb: ra["verb"].as_str().unwrap_or("").to_string(),
        api_group: ra["group"].as_str().unwrap_or("").to_string(),
        resource: ra["resource"].as_str().unwrap_or("").to_string(),
        subresource: ra["subresource"].as_str().unwrap_or("").to_string(),
        namespace: namespace_override
            .unwrap_or(ra["namespace"].as_str().unwrap_or(""))
            .to_string(),
        name: ra["name"].as_str().unwrap_or("").to_string(),
        path: None,
        field_selector: ra
            .pointer("/fieldSelector/rawSelector")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

/// Answers a review (`SelfSubjectAccessReview`, `SubjectAccessReview`,
/// `LocalSubjectAccessReview`, `SelfSubjectRulesReview`,
/// `SelfSubjectReview`): the body comes back with its status filled.
pub async fn review(
    reg: &Registry,
    caller: &User,
    kind: &str,
    namespace: Option<&str>,
    mut body: Value,
) -> Value {
    let spec = body.get("spec").cloned().unwrap_or(json!({}));
    match kind {
        "SelfSubjectReview" => {
            body["status"] =
                json!({ "userInfo": { "username": caller.name, "groups": caller.groups } });
        }
        "SelfSubjectAccessReview" => {
            let (allowed, reason) = authorize(reg, caller, &attributes_of(&spec, None)).await;
            body["status"] = json!({ "allowed": allowed, "reason": reason });
        }
        "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            let user = user_of(&spec);
            let (allowed, reason) = authorize(reg, &user, &attributes_of(&spec, namespace)).await;
            body["status"] = json!({ "allowed": allowed, "reason": reason });
        }
        "SelfSubjectRulesReview" => {
            let ns = spec["namespace"].as_str().unwrap_or("");
            if caller.groups.iter().any(|g| g == MASTERS) {
                body["status"] = json!({
                    "resourceRules": [{ "verbs": ["*"], "apiGroups": ["*"], "resources": ["*"] }],
                    "nonResourceRules": [{ "verbs": ["*"], "nonResourceURLs": ["*"] }],
                    "incomplete": false,
                });
            } else {
                let rules = rules_for(reg, caller, ns).await;
                let (resource, non_resource): (Vec<Value>, Vec<Value>) = rules
                    .into_iter()
                    .partition(|r| r.get("nonResourceURLs").is_none());
                body["status"] = json!({ "resourceRules": resource, "nonResourceRules": non_resource, "incomplete": false });
                // What a node may do depends on its pods: the Node
                // authorizer cannot list it (as upstream answers).
                if crate::node_authz::node_identity(caller).is_some() {
                    body["status"]["incomplete"] = json!(true);
                    body["status"]["evaluationError"] =
                        json!("node authorizer does not support user rule resolution");
                }
            }
        }
        _ => {}
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn rules_match_verbs_groups_resources_and_names() {
        let rule = json!({ "apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"] });
        assert!(rule_allows(&rule, &attrs("get", "", "pods", "", "x")));
        assert!(rule_allows(&rule, &attrs("get", "", "pods", "log", "x")));
        assert!(!rule_allows(&rule, &attrs("get", "", "pods", "exec", "x")));
        assert!(!rule_allows(&rule, &attrs("delete", "", "pods", "", "x")));
        assert!(!rule_allows(&rule, &attrs("get", "apps", "pods", "", "x")));
        let named = json!({ "apiGroups": ["*"], "resources": ["*"], "resourceNames": ["a"], "verbs": ["*"] });
        assert!(rule_allows(
            &named,
            &attrs("update", "apps", "deployments", "", "a")
        ));
        assert!(!rule_allows(
            &named,
            &attrs("update", "apps", "deployments", "", "b")
        ));
        let nr = json!({ "nonResourceURLs": ["/healthz", "/api/*"], "verbs": ["get"] });
        let mut a = attrs("get", "", "", "", "");
        a.path = Some("/api/v1".into());
        assert!(rule_allows(&nr, &a));
        a.path = Some("/metrics".into());
        assert!(!rule_allows(&nr, &a));
    }

    #[test]
    fn service_account_subjects_use_the_binding_namespace() {
        let user = User {
            name: "system:serviceaccount:ns1:builder".into(),
            groups: vec![],
        };
        assert!(subject_matches(
            &json!({ "kind": "ServiceAccount", "name": "builder" }),
            &user,
            "ns1"
        ));
        assert!(!subject_matches(
            &json!({ "kind": "ServiceAccount", "name": "builder" }),
            &user,
            "ns2"
        ));
        assert!(subject_matches(
            &json!({ "kind": "ServiceAccount", "name": "builder", "namespace": "ns1" }),
            &user,
            "ns2"
        ));
    }
}
