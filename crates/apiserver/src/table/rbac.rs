//! Printers of the `rbac.authorization.k8s.io` bindings. (Roles and
//! ClusterRoles have none upstream: their storage registers the default
//! convertor, `NAME  CREATED AT`.)

use serde_json::{json, Value};

use super::docs;
use super::format::{arr_at, name, str_at};
use super::{Column, Ctx, Printer, Row, AGE, NAME};

pub(super) fn printer(resource: &str) -> Option<Printer> {
    match resource {
        "rolebindings" => Some(Printer {
            columns: ROLE_BINDING_COLUMNS,
            row: binding_row,
        }),
        "clusterrolebindings" => Some(Printer {
            columns: CLUSTER_ROLE_BINDING_COLUMNS,
            row: binding_row,
        }),
        _ => None,
    }
}

const ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Role", "string", docs::ROLE_BINDING_ROLE_REF),
    AGE,
    Column::wide("Users", "string", "Users in the roleBinding"),
    Column::wide("Groups", "string", "Groups in the roleBinding"),
    Column::wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the roleBinding",
    ),
];

const CLUSTER_ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Role", "string", docs::CLUSTER_ROLE_BINDING_ROLE_REF),
    AGE,
    Column::wide("Users", "string", "Users in the clusterRoleBinding"),
    Column::wide("Groups", "string", "Groups in the clusterRoleBinding"),
    Column::wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the clusterRoleBinding",
    ),
];

/// `printRoleBinding` / `printClusterRoleBinding`, with subjects split as
/// `rbac.SubjectsStrings` does.
fn binding_row(o: &Value, ctx: &Ctx) -> Row {
    let mut users: Vec<String> = Vec::new();
    let mut groups: Vec<String> = Vec::new();
    let mut service_accounts: Vec<String> = Vec::new();
    for s in arr_at(o, "/subjects") {
        match str_at(s, "/kind") {
            "ServiceAccount" => service_accounts.push(format!(
                "{}/{}",
                str_at(s, "/namespace"),
                str_at(s, "/name")
            )),
            "User" => users.push(str_at(s, "/name").to_string()),
            "Group" => groups.push(str_at(s, "/name").to_string()),
            _ => {}
        }
    }
    vec![
        name(o),
        json!(format!(
            "{}/{}",
            str_at(o, "/roleRef/kind"),
            str_at(o, "/roleRef/name")
        )),
        ctx.age(o),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(service_accounts.join(", ")),
    ]
    .into()
}
