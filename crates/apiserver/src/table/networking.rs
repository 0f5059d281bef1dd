//! Printers of the `networking.k8s.io` and `discovery.k8s.io` kinds.

use serde_json::{json, Value};

use super::core::load_balancer_ingress;
use super::docs;
use super::format::{
    arr_at, format_label_selector, get, list_with_more, name, opt_int_at, opt_str_at, str_at,
};
use super::{Column, Ctx, Printer, Row, AGE, NAME};

pub(super) fn printer(resource: &str) -> Option<Printer> {
    let p = match resource {
        "ingresses" => Printer {
            columns: INGRESS_COLUMNS,
            row: ingress_row,
        },
        "ingressclasses" => Printer {
            columns: INGRESS_CLASS_COLUMNS,
            row: ingress_class_row,
        },
        "networkpolicies" => Printer {
            columns: NETWORK_POLICY_COLUMNS,
            row: network_policy_row,
        },
        "endpointslices" => Printer {
            columns: ENDPOINT_SLICE_COLUMNS,
            row: endpoint_slice_row,
        },
        _ => return None,
    };
    Some(p)
}

const INGRESS_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    Column::new(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    Column::new(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
    ),
    Column::new("Ports", "string", "Ports of TLS configurations that open"),
    AGE,
];

/// `formatHosts`: the first three rule hosts, `*` when none has one.
fn format_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = str_at(rule, "/host");
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".into();
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", rules.len() - MAX)
    } else {
        ret
    }
}

fn ingress_row(o: &Value, ctx: &Ctx) -> Row {
    let ports = if arr_at(o, "/spec/tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(o),
        json!(opt_str_at(o, "/spec/ingressClassName").unwrap_or("<none>")),
        json!(format_hosts(arr_at(o, "/spec/rules"))),
        json!(load_balancer_ingress(arr_at(
            o,
            "/status/loadBalancer/ingress"
        ))),
        json!(ports),
        ctx.age(o),
    ]
    .into()
}

const INGRESS_CLASS_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Controller",
        "string",
        "Controller that is responsible for handling this class",
    ),
    Column::new(
        "Parameters",
        "string",
        "A reference to a resource with additional parameters",
    ),
    AGE,
];

fn ingress_class_row(o: &Value, ctx: &Ctx) -> Row {
    let parameters = match get(o, "/spec/parameters") {
        Some(p) => {
            let mut s = str_at(p, "/kind").to_string();
            if let Some(group) = opt_str_at(p, "/apiGroup") {
                s = format!("{s}.{group}");
            }
            format!("{s}/{}", str_at(p, "/name"))
        }
        None => "<none>".into(),
    };
    vec![
        name(o),
        json!(str_at(o, "/spec/controller")),
        json!(parameters),
        ctx.age(o),
    ]
    .into()
}

const NETWORK_POLICY_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Pod-Selector",
        "string",
        docs::NETWORK_POLICY_SPEC_POD_SELECTOR,
    ),
    AGE,
];

fn network_policy_row(o: &Value, ctx: &Ctx) -> Row {
    // `podSelector` is a struct, not a pointer: unset means empty.
    let selector = o
        .pointer("/spec/podSelector")
        .filter(|s| !s.is_null())
        .cloned()
        .unwrap_or(json!({}));
    vec![
        name(o),
        json!(format_label_selector(Some(&selector))),
        ctx.age(o),
    ]
    .into()
}

const ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("AddressType", "string", docs::ENDPOINT_SLICE_ADDRESS_TYPE),
    Column::new("Ports", "string", docs::ENDPOINT_SLICE_PORTS),
    Column::new("Endpoints", "string", docs::ENDPOINT_SLICE_ENDPOINTS),
    AGE,
];

fn endpoint_slice_row(o: &Value, ctx: &Ctx) -> Row {
    let ports: Vec<String> = arr_at(o, "/ports")
        .iter()
        .map(|p| match (opt_int_at(p, "/port"), opt_str_at(p, "/name")) {
            (Some(port), _) => port.to_string(),
            (None, Some(name)) => name.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    let addresses: Vec<String> = arr_at(o, "/endpoints")
        .iter()
        .flat_map(|e| {
            arr_at(e, "/addresses")
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    vec![
        name(o),
        json!(str_at(o, "/addressType")),
        json!(list_with_more(&ports, 3)),
        json!(list_with_more(&addresses, 3)),
        ctx.age(o),
    ]
    .into()
}
