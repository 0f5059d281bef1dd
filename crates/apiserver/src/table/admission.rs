//! Printers of the `admissionregistration.k8s.io` kinds.

use serde_json::{json, Value};

use super::format::{arr_at, get, len_at, name, str_at};
use super::{Column, Ctx, Printer, Row, AGE, NAME};

pub(super) fn printer(resource: &str) -> Option<Printer> {
    let p = match resource {
        "mutatingwebhookconfigurations" | "validatingwebhookconfigurations" => Printer {
            columns: WEBHOOK_COLUMNS,
            row: webhook_row,
        },
        "validatingadmissionpolicies" => Printer {
            columns: POLICY_COLUMNS,
            row: policy_row,
        },
        "validatingadmissionpolicybindings" => Printer {
            columns: POLICY_BINDING_COLUMNS,
            row: policy_binding_row,
        },
        _ => return None,
    };
    Some(p)
}

const WEBHOOK_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Webhooks",
        "integer",
        "Webhooks indicates the number of webhooks registered in this configuration",
    ),
    AGE,
];

fn webhook_row(o: &Value, ctx: &Ctx) -> Row {
    vec![name(o), json!(len_at(o, "/webhooks")), ctx.age(o)].into()
}

const POLICY_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Validations",
        "integer",
        "Validations indicates the number of validation rules defined in this configuration",
    ),
    Column::new(
        "ParamKind",
        "string",
        "ParamKind specifies the kind of resources used to parameterize this policy",
    ),
    AGE,
];

fn policy_row(o: &Value, ctx: &Ctx) -> Row {
    let param_kind = match get(o, "/spec/paramKind") {
        Some(k) => format!("{}/{}", str_at(k, "/apiVersion"), str_at(k, "/kind")),
        None => "<unset>".into(),
    };
    vec![
        name(o),
        json!(len_at(o, "/spec/validations")),
        json!(param_kind),
        ctx.age(o),
    ]
    .into()
}

const POLICY_BINDING_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "PolicyName",
        "string",
        "PolicyName indicates the policy definition which the policy binding binded to",
    ),
    Column::new(
        "ParamRef",
        "string",
        "ParamRef indicates the param resource which sets the configration param",
    ),
    AGE,
];

fn policy_binding_row(o: &Value, ctx: &Ctx) -> Row {
    let param = match get(o, "/spec/paramRef") {
        Some(r) if !str_at(r, "/name").is_empty() => match str_at(r, "/namespace") {
            "" => format!("*/{}", str_at(r, "/name")),
            ns => format!("{ns}/{}", str_at(r, "/name")),
        },
        Some(r) => match get(r, "/selector") {
            Some(sel) => go_label_selector_string(sel),
            None => "<unset>".into(),
        },
        None => "<unset>".into(),
    };
    vec![
        name(o),
        json!(str_at(o, "/spec/policyName")),
        json!(param),
        ctx.age(o),
    ]
    .into()
}

/// The generated `(*metav1.LabelSelector).String()`, which the binding
/// printer uses for a selector `paramRef`.
fn go_label_selector_string(sel: &Value) -> String {
    let mut labels: Vec<(&String, &str)> = match sel.get("matchLabels") {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or("")))
            .collect(),
        _ => Vec::new(),
    };
    labels.sort();
    let labels: String = labels.iter().map(|(k, v)| format!("{k}: {v},")).collect();
    let expressions: String = arr_at(sel, "/matchExpressions")
        .iter()
        .map(|e| {
            let values: Vec<&str> = arr_at(e, "/values")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                str_at(e, "/key"),
                str_at(e, "/operator"),
                values.join(" ")
            )
        })
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{expressions}}},}}"
    )
}
