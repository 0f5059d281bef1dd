//! Printers of the remaining groups: autoscaling, policy, certificates,
//! coordination, scheduling, node and apiregistration. (CRDs have none
//! upstream: `NAME  CREATED AT`.)

use serde_json::{json, Value};

use super::docs;
use super::format::{
    arr_at, get, int_at, int_or_string, name, opt_bool_at, opt_int_at, opt_str_at, quantity_ptr,
    str_at,
};
use super::{human_duration, Column, Ctx, Printer, Row, AGE, NAME};

pub(super) fn printer(group: &str, resource: &str) -> Option<Printer> {
    let p = match (group, resource) {
        ("autoscaling", "horizontalpodautoscalers") => Printer {
            columns: HPA_COLUMNS,
            row: hpa_row,
        },
        ("policy", "poddisruptionbudgets") => Printer {
            columns: PDB_COLUMNS,
            row: pdb_row,
        },
        ("certificates.k8s.io", "certificatesigningrequests") => Printer {
            columns: CSR_COLUMNS,
            row: csr_row,
        },
        ("coordination.k8s.io", "leases") => Printer {
            columns: LEASE_COLUMNS,
            row: lease_row,
        },
        ("scheduling.k8s.io", "priorityclasses") => Printer {
            columns: PRIORITY_CLASS_COLUMNS,
            row: priority_class_row,
        },
        ("node.k8s.io", "runtimeclasses") => Printer {
            columns: RUNTIME_CLASS_COLUMNS,
            row: runtime_class_row,
        },
        ("apiregistration.k8s.io", "apiservices") => Printer {
            columns: API_SERVICE_COLUMNS,
            row: api_service_row,
        },
        _ => return None,
    };
    Some(p)
}

// --- HorizontalPodAutoscalers -----------------------------------------------

const HPA_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Reference", "string", docs::HPA_SPEC_SCALE_TARGET_REF),
    Column::new("Targets", "string", docs::HPA_SPEC_METRICS),
    Column::new("MinPods", "string", docs::HPA_SPEC_MIN_REPLICAS),
    Column::new("MaxPods", "string", docs::HPA_SPEC_MAX_REPLICAS),
    Column::new("Replicas", "string", docs::HPA_STATUS_CURRENT_REPLICAS),
    AGE,
];

/// The CPU utilization metric autoscaling/v1 expresses with one field.
fn cpu_utilization_target(percent: i64) -> Value {
    json!({ "type": "Resource", "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": percent } } })
}

/// The metric specs and statuses of an HPA in the internal (v2) shape:
/// autoscaling/v1's CPU fields are converted, and no metrics default to
/// 80% CPU utilization, as upstream's defaulting and conversion do.
fn hpa_metrics(o: &Value) -> (Vec<Value>, Vec<Value>) {
    let mut specs = arr_at(o, "/spec/metrics").to_vec();
    let mut statuses = arr_at(o, "/status/currentMetrics").to_vec();
    if let Some(target) = opt_int_at(o, "/spec/targetCPUUtilizationPercentage") {
        specs = vec![cpu_utilization_target(target)];
    }
    if let Some(current) = opt_int_at(o, "/status/currentCPUUtilizationPercentage") {
        statuses = vec![
            json!({ "type": "Resource", "resource": { "name": "cpu", "current": { "averageUtilization": current } } }),
        ];
    }
    if specs.is_empty() {
        specs = vec![cpu_utilization_target(80)];
    }
    (specs, statuses)
}

/// `formatHPAMetrics`: `current/target` per metric, two at most.
fn format_hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".into();
    }
    let status =
        |i: usize, source: &str| statuses.get(i).and_then(|s| get(s, &format!("/{source}")));
    let percent = |v: Option<i64>| v.map(|p| format!("{p}%"));
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| match str_at(spec, "/type") {
            source @ ("External" | "Object") => {
                let key = source.to_lowercase();
                let target = spec
                    .get(key.as_str())
                    .and_then(|s| get(s, "/target"))
                    .unwrap_or(&Value::Null);
                if let Some(avg) = get(target, "/averageValue") {
                    let current = status(i, &key)
                        .and_then(|s| get(s, "/current/averageValue"))
                        .map(|q| quantity_ptr(Some(q)))
                        .unwrap_or_else(|| "<unknown>".into());
                    format!("{current}/{} (avg)", quantity_ptr(Some(avg)))
                } else {
                    let current = status(i, &key)
                        .map(|s| quantity_ptr(get(s, "/current/value")))
                        .unwrap_or_else(|| "<unknown>".into());
                    format!("{current}/{}", quantity_ptr(get(target, "/value")))
                }
            }
            "Pods" => {
                let current = status(i, "pods")
                    .map(|s| quantity_ptr(get(s, "/current/averageValue")))
                    .unwrap_or_else(|| "<unknown>".into());
                format!(
                    "{current}/{}",
                    quantity_ptr(get(spec, "/pods/target/averageValue"))
                )
            }
            source @ ("Resource" | "ContainerResource") => {
                let key = if source == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let metric = spec.get(key).unwrap_or(&Value::Null);
                let resource = str_at(metric, "/name");
                if let Some(avg) = get(metric, "/target/averageValue") {
                    let current = status(i, key)
                        .map(|s| quantity_ptr(get(s, "/current/averageValue")))
                        .unwrap_or_else(|| "<unknown>".into());
                    format!("{resource}: {current}/{}", quantity_ptr(Some(avg)))
                } else {
                    let current = percent(
                        status(i, key).and_then(|s| opt_int_at(s, "/current/averageUtilization")),
                    )
                    .unwrap_or_else(|| "<unknown>".into());
                    let target = percent(opt_int_at(metric, "/target/averageUtilization"))
                        .unwrap_or_else(|| "<auto>".into());
                    format!("{resource}: {current}/{target}")
                }
            }
            _ => "<unknown type>".into(),
        })
        .collect();
    const MAX: usize = 2;
    if list.len() > MAX {
        format!("{} + {} more...", list[..MAX].join(", "), list.len() - MAX)
    } else {
        list.join(", ")
    }
}

fn hpa_row(o: &Value, ctx: &Ctx) -> Row {
    let (specs, statuses) = hpa_metrics(o);
    // v1 and v2 default `minReplicas` to 1.
    let min_pods = opt_int_at(o, "/spec/minReplicas").unwrap_or(1);
    vec![
        name(o),
        json!(format!(
            "{}/{}",
            str_at(o, "/spec/scaleTargetRef/kind"),
            str_at(o, "/spec/scaleTargetRef/name")
        )),
        json!(format_hpa_metrics(&specs, &statuses)),
        json!(min_pods.to_string()),
        json!(int_at(o, "/spec/maxReplicas")),
        json!(int_at(o, "/status/currentReplicas")),
        ctx.age(o),
    ]
    .into()
}

// --- PodDisruptionBudgets ---------------------------------------------------

const PDB_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Min Available",
        "string",
        "The minimum number of pods that must be available.",
    ),
    Column::new(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable.",
    ),
    Column::new(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE,
];

fn pdb_row(o: &Value, ctx: &Ctx) -> Row {
    let field = |pointer: &str| {
        get(o, pointer)
            .map(int_or_string)
            .unwrap_or_else(|| "N/A".into())
    };
    vec![
        name(o),
        json!(field("/spec/minAvailable")),
        json!(field("/spec/maxUnavailable")),
        json!(int_at(o, "/status/disruptionsAllowed")),
        ctx.age(o),
    ]
    .into()
}

// --- CertificateSigningRequests ---------------------------------------------

const CSR_COLUMNS: &[Column] = &[
    NAME,
    AGE,
    Column::new("SignerName", "string", docs::CSR_SPEC_SIGNER_NAME),
    Column::new("Requestor", "string", docs::CSR_SPEC_REQUEST),
    Column::new(
        "RequestedDuration",
        "string",
        docs::CSR_SPEC_EXPIRATION_SECONDS,
    ),
    Column::new("Condition", "string", docs::CSR_STATUS_CONDITIONS),
];

/// `extractCSRStatus`: `Denied`, `Approved` or `Pending`, then `,Failed`
/// and `,Issued`.
fn csr_status(o: &Value) -> String {
    let has = |kind: &str| {
        arr_at(o, "/status/conditions")
            .iter()
            .any(|c| str_at(c, "/type") == kind)
    };
    let mut status = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !str_at(o, "/status/certificate").is_empty() {
        status.push_str(",Issued");
    }
    status
}

fn csr_row(o: &Value, ctx: &Ctx) -> Row {
    let signer = match str_at(o, "/spec/signerName") {
        "" => "<none>",
        s => s,
    };
    let requested = match opt_int_at(o, "/spec/expirationSeconds") {
        Some(seconds) => human_duration(seconds),
        None => "<none>".into(),
    };
    vec![
        name(o),
        ctx.age(o),
        json!(signer),
        json!(str_at(o, "/spec/username")),
        json!(requested),
        json!(csr_status(o)),
    ]
    .into()
}

// --- Leases, PriorityClasses, RuntimeClasses --------------------------------

const LEASE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Holder", "string", docs::LEASE_SPEC_HOLDER_IDENTITY),
    AGE,
];

fn lease_row(o: &Value, ctx: &Ctx) -> Row {
    vec![
        name(o),
        json!(str_at(o, "/spec/holderIdentity")),
        ctx.age(o),
    ]
    .into()
}

const PRIORITY_CLASS_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Value", "integer", docs::PRIORITY_CLASS_VALUE),
    Column::new(
        "Global-Default",
        "boolean",
        docs::PRIORITY_CLASS_GLOBAL_DEFAULT,
    ),
    AGE,
    Column::new(
        "PreemptionPolicy",
        "string",
        docs::PRIORITY_CLASS_PREEMPTION_POLICY,
    ),
];

fn priority_class_row(o: &Value, ctx: &Ctx) -> Row {
    vec![
        name(o),
        json!(int_at(o, "/value")),
        json!(opt_bool_at(o, "/globalDefault").unwrap_or(false)),
        ctx.age(o),
        // v1 defaults `preemptionPolicy`.
        json!(opt_str_at(o, "/preemptionPolicy").unwrap_or("PreemptLowerPriority")),
    ]
    .into()
}

/// Upstream takes this column's description from `ObjectMeta`'s docs,
/// which have no `handler` entry: it is empty.
const RUNTIME_CLASS_COLUMNS: &[Column] = &[NAME, Column::new("Handler", "string", ""), AGE];

fn runtime_class_row(o: &Value, ctx: &Ctx) -> Row {
    vec![name(o), json!(str_at(o, "/handler")), ctx.age(o)].into()
}

// --- APIServices (kube-aggregator's own convertor) --------------------------

const API_SERVICE_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Service",
        "string",
        "The reference to the service that hosts this API endpoint.",
    ),
    Column::new("Available", "string", "Whether this service is available."),
    AGE,
];

fn api_service_row(o: &Value, ctx: &Ctx) -> Row {
    let service = match get(o, "/spec/service") {
        Some(s) => format!("{}/{}", str_at(s, "/namespace"), str_at(s, "/name")),
        None => "Local".into(),
    };
    let available = match arr_at(o, "/status/conditions")
        .iter()
        .find(|c| str_at(c, "/type") == "Available")
    {
        Some(c) if str_at(c, "/status") == "True" => "True".to_string(),
        Some(c) if !str_at(c, "/reason").is_empty() => {
            format!("{} ({})", str_at(c, "/status"), str_at(c, "/reason"))
        }
        Some(c) => str_at(c, "/status").to_string(),
        None => "Unknown".into(),
    };
    vec![name(o), json!(service), json!(available), ctx.age(o)].into()
}
