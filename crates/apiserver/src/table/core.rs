//! Printers of the core (`v1`) kinds, and of `events.k8s.io` events (which
//! upstream prints through the core Event printer).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::docs;
use super::format::{
    access_modes, arr_at, containers, format_labels, get, int_at, len_at, name, opt_bool_at,
    opt_int_at, opt_str_at, quantity, str_at, timestamp,
};
use super::{Column, Ctx, Printer, Row, AGE, CONTAINERS_DOC, IMAGES_DOC, NAME};

pub(super) fn printer(resource: &str) -> Option<Printer> {
    let p = match resource {
        "pods" => Printer {
            columns: POD_COLUMNS,
            row: pod_row,
        },
        "podtemplates" => Printer {
            columns: POD_TEMPLATE_COLUMNS,
            row: pod_template_row,
        },
        "replicationcontrollers" => Printer {
            columns: RC_COLUMNS,
            row: rc_row,
        },
        "services" => Printer {
            columns: SERVICE_COLUMNS,
            row: service_row,
        },
        "endpoints" => Printer {
            columns: ENDPOINTS_COLUMNS,
            row: endpoints_row,
        },
        "nodes" => Printer {
            columns: NODE_COLUMNS,
            row: node_row,
        },
        "events" => Printer {
            columns: EVENT_COLUMNS,
            row: event_row,
        },
        "namespaces" => Printer {
            columns: NAMESPACE_COLUMNS,
            row: namespace_row,
        },
        "secrets" => Printer {
            columns: SECRET_COLUMNS,
            row: secret_row,
        },
        "configmaps" => Printer {
            columns: CONFIG_MAP_COLUMNS,
            row: config_map_row,
        },
        "serviceaccounts" => Printer {
            columns: SERVICE_ACCOUNT_COLUMNS,
            row: service_account_row,
        },
        "persistentvolumes" => Printer {
            columns: PV_COLUMNS,
            row: pv_row,
        },
        "persistentvolumeclaims" => Printer {
            columns: PVC_COLUMNS,
            row: pvc_row,
        },
        "componentstatuses" => Printer {
            columns: COMPONENT_STATUS_COLUMNS,
            row: component_status_row,
        },
        "resourcequotas" => Printer {
            columns: RESOURCE_QUOTA_COLUMNS,
            row: resource_quota_row,
        },
        // limitranges: upstream's storage uses the default convertor.
        _ => return None,
    };
    Some(p)
}

/// `events.k8s.io` events share the core Event storage and printer
/// upstream: the object is converted to the core shape first.
pub(super) fn events_k8s_io_printer(resource: &str) -> Option<Printer> {
    (resource == "events").then_some(Printer {
        columns: EVENT_COLUMNS,
        row: events_k8s_io_row,
    })
}

// --- Pods -------------------------------------------------------------------

const POD_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    Column::new("Status", "string", "The aggregate status of the containers in this pod."),
    Column::new(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    Column::wide("IP", "string", docs::POD_STATUS_POD_IP),
    Column::wide("Node", "string", docs::POD_SPEC_NODE_NAME),
    Column::wide("Nominated Node", "string", docs::POD_STATUS_NOMINATED_NODE_NAME),
    Column::wide("Readiness Gates", "string", docs::POD_SPEC_READINESS_GATES),
];

/// `podutil.IsRestartableInitContainer`: a sidecar.
fn is_restartable(init: Option<&Value>) -> bool {
    init.is_some_and(|c| str_at(c, "/restartPolicy") == "Always")
}

/// The terminated state's `finishedAt` of `lastState`, if it has one.
fn last_termination(status: &Value) -> Option<Option<DateTime<Utc>>> {
    get(status, "/lastState/terminated").map(|t| timestamp(t.get("finishedAt")))
}

fn later(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn has_condition(o: &Value, pointer: &str, kind: &str) -> bool {
    arr_at(o, pointer)
        .iter()
        .any(|c| str_at(c, "/type") == kind && str_at(c, "/status") == "True")
}

/// upstream's `printPod`.
fn pod_row(pod: &Value, ctx: &Ctx) -> Row {
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    let status = pod.get("status").unwrap_or(&Value::Null);
    let mut restarts = 0i64;
    let mut restartable_init_restarts = 0i64;
    let mut total = arr_at(spec, "/containers").len();
    let mut ready = 0usize;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut last_restartable_init_restart: Option<DateTime<Utc>> = None;

    let phase = str_at(status, "/phase");
    let mut reason = phase.to_string();
    if !str_at(status, "/reason").is_empty() {
        reason = str_at(status, "/reason").to_string();
    }

    // A pod held by scheduling gates says so.
    for c in arr_at(status, "/conditions") {
        if str_at(c, "/type") == "PodScheduled" && str_at(c, "/reason") == "SchedulingGated" {
            reason = "SchedulingGated".into();
        }
    }

    let conditions = match phase {
        "Succeeded" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully.",
        }])),
        "Failed" => Some(
            json!([{ "type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed." }]),
        ),
        _ => None,
    };

    let init_specs = arr_at(spec, "/initContainers");
    let init_spec = |name: &str| init_specs.iter().find(|c| str_at(c, "/name") == name);
    total += init_specs
        .iter()
        .filter(|c| is_restartable(Some(c)))
        .count();

    let mut initializing = false;
    for (i, c) in arr_at(status, "/initContainerStatuses").iter().enumerate() {
        restarts += int_at(c, "/restartCount");
        if let Some(finished) = last_termination(c) {
            last_restart = later(last_restart, finished);
        }
        let restartable = is_restartable(init_spec(str_at(c, "/name")));
        if restartable {
            restartable_init_restarts += int_at(c, "/restartCount");
            if let Some(finished) = last_termination(c) {
                last_restartable_init_restart = later(last_restartable_init_restart, finished);
            }
        }
        let terminated = get(c, "/state/terminated");
        let waiting = get(c, "/state/waiting");
        if terminated.is_some_and(|t| int_at(t, "/exitCode") == 0) {
            continue;
        }
        if restartable && opt_bool_at(c, "/started") == Some(true) {
            if opt_bool_at(c, "/ready") == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            // The init container failed.
            reason = match str_at(t, "/reason") {
                "" if int_at(t, "/signal") != 0 => format!("Init:Signal:{}", int_at(t, "/signal")),
                "" => format!("Init:ExitCode:{}", int_at(t, "/exitCode")),
                r => format!("Init:{r}"),
            };
        } else if let Some(w) =
            waiting.filter(|w| !matches!(str_at(w, "/reason"), "" | "PodInitializing"))
        {
            reason = format!("Init:{}", str_at(w, "/reason"));
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    let initialized = arr_at(status, "/conditions")
        .iter()
        .find(|c| str_at(c, "/type") == "Initialized")
        .is_some_and(|c| str_at(c, "/status") == "True");
    if !initializing || initialized {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for c in arr_at(status, "/containerStatuses").iter().rev() {
            restarts += int_at(c, "/restartCount");
            if let Some(finished) = last_termination(c) {
                last_restart = later(last_restart, finished);
            }
            let waiting = get(c, "/state/waiting");
            let terminated = get(c, "/state/terminated");
            if let Some(w) = waiting.filter(|w| !str_at(w, "/reason").is_empty()) {
                reason = str_at(w, "/reason").to_string();
            } else if let Some(t) = terminated {
                reason = match str_at(t, "/reason") {
                    "" if int_at(t, "/signal") != 0 => format!("Signal:{}", int_at(t, "/signal")),
                    "" => format!("ExitCode:{}", int_at(t, "/exitCode")),
                    r => r.to_string(),
                };
            } else if opt_bool_at(c, "/ready") == Some(true) && get(c, "/state/running").is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last container completed while another still runs is
        // still running.
        if reason == "Completed" && has_running {
            reason = if has_condition(status, "/conditions", "Ready") {
                "Running"
            } else {
                "NotReady"
            }
            .into();
        }
    }

    if get(pod, "/metadata/deletionTimestamp").is_some() {
        if str_at(status, "/reason") == "NodeLost" {
            reason = "Unknown".into();
        } else if !matches!(phase, "Failed" | "Succeeded") {
            reason = "Terminating".into();
        }
    }

    let restarts_text = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", ctx.since_time(t)),
        _ => restarts.to_string(),
    };

    // v1 → internal conversion: `podIP` wins over `podIPs[0]`.
    let pod_ip = match str_at(status, "/podIP") {
        "" => arr_at(status, "/podIPs")
            .first()
            .map(|ip| str_at(ip, "/ip"))
            .unwrap_or(""),
        ip => ip,
    };
    let readiness_gates = arr_at(spec, "/readinessGates");
    let gates = if readiness_gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_conditions = readiness_gates
            .iter()
            .filter(|g| {
                arr_at(status, "/conditions")
                    .iter()
                    .find(|c| str_at(c, "/type") == str_at(g, "/conditionType"))
                    .is_some_and(|c| str_at(c, "/status") == "True")
            })
            .count();
        format!("{true_conditions}/{}", readiness_gates.len())
    };

    Row {
        cells: vec![
            name(pod),
            json!(format!("{ready}/{total}")),
            json!(reason),
            json!(restarts_text),
            ctx.age(pod),
            json!(or_none(pod_ip)),
            json!(or_none(str_at(spec, "/nodeName"))),
            json!(or_none(str_at(status, "/nominatedNodeName"))),
            json!(gates),
        ],
        conditions,
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "<none>"
    } else {
        s
    }
}

// --- PodTemplates -----------------------------------------------------------

const POD_TEMPLATE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Containers", "string", CONTAINERS_DOC),
    Column::new("Images", "string", IMAGES_DOC),
    Column::new("Pod Labels", "string", "The labels for the pod template."),
];

fn pod_template_row(o: &Value, _: &Ctx) -> Row {
    let (names, images) = containers(arr_at(o, "/template/spec/containers"));
    vec![
        name(o),
        json!(names),
        json!(images),
        json!(format_labels(o.pointer("/template/metadata/labels"))),
    ]
    .into()
}

// --- ReplicationControllers -------------------------------------------------

const RC_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Desired", "integer", docs::RC_SPEC_REPLICAS),
    Column::new("Current", "integer", docs::RC_STATUS_REPLICAS),
    Column::new("Ready", "integer", docs::RC_STATUS_READY_REPLICAS),
    AGE,
    Column::wide("Containers", "string", CONTAINERS_DOC),
    Column::wide("Images", "string", IMAGES_DOC),
    Column::wide("Selector", "string", docs::RC_SPEC_SELECTOR),
];

fn rc_row(o: &Value, ctx: &Ctx) -> Row {
    let (names, images) = containers(arr_at(o, "/spec/template/spec/containers"));
    // v1 defaulting: an empty selector is the template's labels.
    let selector = match o.pointer("/spec/selector") {
        Some(Value::Object(m)) if !m.is_empty() => o.pointer("/spec/selector"),
        _ => o.pointer("/spec/template/metadata/labels"),
    };
    vec![
        name(o),
        json!(opt_int_at(o, "/spec/replicas").unwrap_or(1)),
        json!(int_at(o, "/status/replicas")),
        json!(int_at(o, "/status/readyReplicas")),
        ctx.age(o),
        json!(names),
        json!(images),
        json!(format_labels(selector)),
    ]
    .into()
}

// --- Services ---------------------------------------------------------------

const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Type", "string", docs::SERVICE_SPEC_TYPE),
    Column::new("Cluster-IP", "string", docs::SERVICE_SPEC_CLUSTER_IP),
    Column::new("External-IP", "string", docs::SERVICE_SPEC_EXTERNAL_IPS),
    Column::new("Port(s)", "string", docs::SERVICE_SPEC_PORTS),
    AGE,
    Column::wide("Selector", "string", docs::SERVICE_SPEC_SELECTOR),
];

/// `loadBalancerStatusStringer` (wide: the server always prints wide, so
/// the list is never clipped): distinct IPs or hostnames, sorted.
pub(super) fn load_balancer_ingress(ingress: &[Value]) -> String {
    let mut set: Vec<&str> = ingress
        .iter()
        .filter_map(|i| match (str_at(i, "/ip"), str_at(i, "/hostname")) {
            ("", "") => None,
            ("", host) => Some(host),
            (ip, _) => Some(ip),
        })
        .collect();
    set.sort_unstable();
    set.dedup();
    set.join(",")
}

fn service_external_ip(svc: &Value, kind: &str) -> String {
    let external: Vec<&str> = arr_at(svc, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match kind {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".into()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_ingress(arr_at(svc, "/status/loadBalancer/ingress"));
            if !external.is_empty() {
                let mut all: Vec<&str> = if lb.is_empty() {
                    Vec::new()
                } else {
                    lb.split(',').collect()
                };
                all.extend(external);
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".into()
            }
        }
        "ExternalName" => str_at(svc, "/spec/externalName").to_string(),
        _ => "<unknown>".into(),
    }
}

/// `makePortString`: `80/TCP`, or `80:30080/TCP` with a node port.
fn service_ports(ports: &[Value]) -> String {
    ports
        .iter()
        .map(|p| {
            let protocol = opt_str_at(p, "/protocol").unwrap_or("TCP");
            match int_at(p, "/nodePort") {
                n if n > 0 => format!("{}:{n}/{protocol}", int_at(p, "/port")),
                _ => format!("{}/{protocol}", int_at(p, "/port")),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn service_row(svc: &Value, ctx: &Ctx) -> Row {
    let kind = opt_str_at(svc, "/spec/type").unwrap_or("ClusterIP");
    let cluster_ip = match arr_at(svc, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
    {
        Some(ip) => ip,
        None => or_none(str_at(svc, "/spec/clusterIP")),
    };
    let ports = service_ports(arr_at(svc, "/spec/ports"));
    vec![
        name(svc),
        json!(kind),
        json!(cluster_ip),
        json!(service_external_ip(svc, kind)),
        json!(if ports.is_empty() {
            "<none>".into()
        } else {
            ports
        }),
        ctx.age(svc),
        json!(format_labels(svc.pointer("/spec/selector"))),
    ]
    .into()
}

// --- Endpoints --------------------------------------------------------------

const ENDPOINTS_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Endpoints", "string", docs::ENDPOINTS_SUBSETS),
    AGE,
];

/// `net.JoinHostPort`.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `formatEndpoints` with all ports: the first three `ip:port`, then
/// `+ N more...`.
fn format_endpoints(o: &Value) -> String {
    let subsets = arr_at(o, "/subsets");
    if subsets.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = arr_at(ss, "/addresses");
        let ports = arr_at(ss, "/ports");
        if ports.is_empty() {
            // A headless service without ports.
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(a, "/ip").to_string());
            }
            continue;
        }
        for p in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(str_at(a, "/ip"), int_at(p, "/port")));
            }
        }
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - MAX)
    } else {
        ret
    }
}

fn endpoints_row(o: &Value, ctx: &Ctx) -> Row {
    vec![name(o), json!(format_endpoints(o)), ctx.age(o)].into()
}

// --- Nodes ------------------------------------------------------------------

const NODE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", "The status of the node"),
    Column::new("Roles", "string", "The roles of the node"),
    AGE,
    Column::new("Version", "string", docs::NODE_INFO_KUBELET_VERSION),
    Column::wide("Internal-IP", "string", docs::NODE_STATUS_ADDRESSES),
    Column::wide("External-IP", "string", docs::NODE_STATUS_ADDRESSES),
    Column::wide("OS-Image", "string", docs::NODE_INFO_OS_IMAGE),
    Column::wide("Kernel-Version", "string", docs::NODE_INFO_KERNEL_VERSION),
    Column::wide(
        "Container-Runtime",
        "string",
        docs::NODE_INFO_CONTAINER_RUNTIME_VERSION,
    ),
];

/// `findNodeRoles`: `node-role.kubernetes.io/<role>` keys and
/// `kubernetes.io/role=<role>` values, sorted and distinct.
fn node_roles(node: &Value) -> Vec<String> {
    let mut roles: Vec<String> = Vec::new();
    if let Some(Value::Object(labels)) = node.pointer("/metadata/labels") {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.push(role.to_string());
                }
            } else if k == "kubernetes.io/role" && !v.as_str().unwrap_or("").is_empty() {
                roles.push(v.as_str().unwrap_or("").to_string());
            }
        }
    }
    roles.sort();
    roles.dedup();
    roles
}

fn node_address(node: &Value, kind: &str) -> String {
    arr_at(node, "/status/addresses")
        .iter()
        .find(|a| str_at(a, "/type") == kind)
        .map(|a| str_at(a, "/address").to_string())
        .unwrap_or_else(|| "<none>".into())
}

fn node_row(node: &Value, ctx: &Ctx) -> Row {
    // The last Ready condition wins, as in upstream's condition map.
    let mut status: Vec<&str> = Vec::new();
    if let Some(c) = arr_at(node, "/status/conditions")
        .iter()
        .rev()
        .find(|c| str_at(c, "/type") == "Ready")
    {
        status.push(if str_at(c, "/status") == "True" {
            "Ready"
        } else {
            "NotReady"
        });
    }
    if status.is_empty() {
        status.push("Unknown");
    }
    if opt_bool_at(node, "/spec/unschedulable") == Some(true) {
        status.push("SchedulingDisabled");
    }
    let roles = node_roles(node).join(",");
    let info = |field: &str| -> String {
        match str_at(node, &format!("/status/nodeInfo/{field}")) {
            "" => "<unknown>".into(),
            s => s.to_string(),
        }
    };
    vec![
        name(node),
        json!(status.join(",")),
        json!(if roles.is_empty() {
            "<none>".into()
        } else {
            roles
        }),
        ctx.age(node),
        json!(str_at(node, "/status/nodeInfo/kubeletVersion")),
        json!(node_address(node, "InternalIP")),
        json!(node_address(node, "ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
    .into()
}

// --- Events -----------------------------------------------------------------

const EVENT_COLUMNS: &[Column] = &[
    Column::new("Last Seen", "string", docs::EVENT_LAST_TIMESTAMP),
    Column::new("Type", "string", docs::EVENT_TYPE),
    Column::new("Reason", "string", docs::EVENT_REASON),
    Column::new("Object", "string", docs::EVENT_INVOLVED_OBJECT),
    Column::wide("Subobject", "string", docs::OBJECT_REFERENCE_FIELD_PATH),
    Column::wide("Source", "string", docs::EVENT_SOURCE),
    Column::new("Message", "string", docs::EVENT_MESSAGE),
    Column::wide("First Seen", "string", docs::EVENT_FIRST_TIMESTAMP),
    Column::wide("Count", "string", docs::EVENT_COUNT),
    Column {
        priority: 1,
        ..NAME
    },
];

/// upstream's `printEvent` over a core/v1 Event.
fn event_row(e: &Value, ctx: &Ctx) -> Row {
    let first = match get(e, "/firstTimestamp") {
        Some(t) => ctx.since(Some(t)),
        None => ctx.since(get(e, "/eventTime")),
    };
    let mut last = match get(e, "/lastTimestamp") {
        Some(t) => ctx.since(Some(t)),
        None => first.clone(),
    };
    let mut count = int_at(e, "/count");
    if let Some(series) = get(e, "/series") {
        last = ctx.since(get(series, "/lastObservedTime"));
        count = int_at(series, "/count");
    } else if count == 0 {
        // Singleton events don't have a count set in the new API.
        count = 1;
    }
    let kind = str_at(e, "/involvedObject/kind").to_lowercase();
    let target = match str_at(e, "/involvedObject/name") {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let component = first_non_empty(
        str_at(e, "/source/component"),
        str_at(e, "/reportingComponent"),
    );
    let instance = first_non_empty(str_at(e, "/source/host"), str_at(e, "/reportingInstance"));
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last),
        json!(str_at(e, "/type")),
        json!(str_at(e, "/reason")),
        json!(target),
        json!(str_at(e, "/involvedObject/fieldPath")),
        json!(source),
        json!(str_at(e, "/message").trim()),
        json!(first),
        json!(count),
        name(e),
    ]
    .into()
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

/// An `events.k8s.io/v1` Event in the core/v1 shape (upstream's
/// conversion to the internal type): `regarding` → `involvedObject`,
/// `note` → `message`, the `deprecated*` fields → their core names.
pub(super) fn event_to_core(e: &Value) -> Value {
    let Value::Object(m) = e else {
        return e.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        let key = match k.as_str() {
            "regarding" => "involvedObject",
            "note" => "message",
            "deprecatedSource" => "source",
            "deprecatedFirstTimestamp" => "firstTimestamp",
            "deprecatedLastTimestamp" => "lastTimestamp",
            "deprecatedCount" => "count",
            "reportingController" => "reportingComponent",
            k => k,
        };
        out.insert(key.to_string(), v.clone());
    }
    Value::Object(out)
}

fn events_k8s_io_row(e: &Value, ctx: &Ctx) -> Row {
    if str_at(e, "/apiVersion") == "v1" {
        event_row(e, ctx)
    } else {
        event_row(&event_to_core(e), ctx)
    }
}

// --- Namespaces, Secrets, ConfigMaps, ServiceAccounts ----------------------

const NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", "The status of the namespace"),
    AGE,
];

fn namespace_row(o: &Value, ctx: &Ctx) -> Row {
    let phase = opt_str_at(o, "/status/phase")
        .filter(|p| !p.is_empty())
        .unwrap_or("Active");
    vec![name(o), json!(phase), ctx.age(o)].into()
}

const SECRET_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Type", "string", docs::SECRET_TYPE),
    Column::new("Data", "string", docs::SECRET_DATA),
    AGE,
];

fn secret_row(o: &Value, ctx: &Ctx) -> Row {
    // `stringData` is merged into `data` on the way in.
    let mut keys: Vec<&String> = Vec::new();
    for field in ["data", "stringData"] {
        if let Some(Value::Object(m)) = o.get(field) {
            keys.extend(m.keys());
        }
    }
    keys.sort();
    keys.dedup();
    let kind = opt_str_at(o, "/type")
        .filter(|t| !t.is_empty())
        .unwrap_or("Opaque");
    vec![name(o), json!(kind), json!(keys.len()), ctx.age(o)].into()
}

const CONFIG_MAP_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Data", "string", docs::CONFIG_MAP_DATA),
    AGE,
];

fn config_map_row(o: &Value, ctx: &Ctx) -> Row {
    vec![
        name(o),
        json!(len_at(o, "/data") + len_at(o, "/binaryData")),
        ctx.age(o),
    ]
    .into()
}

const SERVICE_ACCOUNT_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Secrets", "string", docs::SERVICE_ACCOUNT_SECRETS),
    AGE,
];

fn service_account_row(o: &Value, ctx: &Ctx) -> Row {
    vec![name(o), json!(len_at(o, "/secrets")), ctx.age(o)].into()
}

// --- PersistentVolumes and claims -------------------------------------------

const PV_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Capacity", "string", docs::PV_SPEC_CAPACITY),
    Column::new("Access Modes", "string", docs::PV_SPEC_ACCESS_MODES),
    Column::new("Reclaim Policy", "string", docs::PV_SPEC_RECLAIM_POLICY),
    Column::new("Status", "string", docs::PV_STATUS_PHASE),
    Column::new("Claim", "string", docs::PV_SPEC_CLAIM_REF),
    Column::new("StorageClass", "string", "StorageClass of the pv"),
    Column::new(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pv",
    ),
    Column::new("Reason", "string", docs::PV_STATUS_REASON),
    AGE,
    Column::wide("VolumeMode", "string", docs::PV_SPEC_VOLUME_MODE),
];

const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

fn beta_storage_class(o: &Value) -> Option<&str> {
    o.pointer("/metadata/annotations")
        .and_then(|a| a.get(BETA_STORAGE_CLASS_ANNOTATION))
        .and_then(Value::as_str)
}

fn pv_row(pv: &Value, ctx: &Ctx) -> Row {
    let claim = match get(pv, "/spec/claimRef") {
        Some(c) => format!("{}/{}", str_at(c, "/namespace"), str_at(c, "/name")),
        None => String::new(),
    };
    let mut phase = opt_str_at(pv, "/status/phase")
        .filter(|p| !p.is_empty())
        .unwrap_or("Pending");
    if get(pv, "/metadata/deletionTimestamp").is_some() {
        phase = "Terminating";
    }
    let class = beta_storage_class(pv).unwrap_or_else(|| str_at(pv, "/spec/storageClassName"));
    vec![
        name(pv),
        json!(quantity(pv.pointer("/spec/capacity/storage"))),
        json!(access_modes(arr_at(pv, "/spec/accessModes"))),
        json!(opt_str_at(pv, "/spec/persistentVolumeReclaimPolicy").unwrap_or("Retain")),
        json!(phase),
        json!(claim),
        json!(class),
        json!(opt_str_at(pv, "/spec/volumeAttributesClassName").unwrap_or("<unset>")),
        json!(str_at(pv, "/status/reason")),
        ctx.age(pv),
        json!(opt_str_at(pv, "/spec/volumeMode").unwrap_or("Filesystem")),
    ]
    .into()
}

const PVC_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", docs::PVC_STATUS_PHASE),
    Column::new("Volume", "string", docs::PVC_SPEC_VOLUME_NAME),
    Column::new("Capacity", "string", docs::PVC_STATUS_CAPACITY),
    Column::new("Access Modes", "string", docs::PVC_STATUS_ACCESS_MODES),
    Column::new("StorageClass", "string", "StorageClass of the pvc"),
    Column::new(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
    ),
    AGE,
    Column::wide("VolumeMode", "string", docs::PVC_SPEC_VOLUME_MODE),
];

fn pvc_row(pvc: &Value, ctx: &Ctx) -> Row {
    let mut phase = opt_str_at(pvc, "/status/phase")
        .filter(|p| !p.is_empty())
        .unwrap_or("Pending");
    if get(pvc, "/metadata/deletionTimestamp").is_some() {
        phase = "Terminating";
    }
    let volume = str_at(pvc, "/spec/volumeName");
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(pvc.pointer("/status/capacity/storage")),
            access_modes(arr_at(pvc, "/status/accessModes")),
        )
    };
    let class = beta_storage_class(pvc).unwrap_or_else(|| str_at(pvc, "/spec/storageClassName"));
    vec![
        name(pvc),
        json!(phase),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(class),
        json!(opt_str_at(pvc, "/spec/volumeAttributesClassName").unwrap_or("<unset>")),
        ctx.age(pvc),
        json!(opt_str_at(pvc, "/spec/volumeMode").unwrap_or("Filesystem")),
    ]
    .into()
}

// --- ComponentStatuses ------------------------------------------------------

const COMPONENT_STATUS_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", "Status of the component conditions"),
    Column::new("Message", "string", "Message of the component conditions"),
    Column::new("Error", "string", "Error of the component conditions"),
];

fn component_status_row(o: &Value, _: &Ctx) -> Row {
    let (status, message, error) = match arr_at(o, "/conditions")
        .iter()
        .find(|c| str_at(c, "/type") == "Healthy")
    {
        Some(c) => (
            if str_at(c, "/status") == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            str_at(c, "/message"),
            str_at(c, "/error"),
        ),
        None => ("Unknown", "", ""),
    };
    vec![name(o), json!(status), json!(message), json!(error)].into()
}

// --- ResourceQuotas ---------------------------------------------------------

const RESOURCE_QUOTA_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
    Column::new(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
    AGE,
];

/// `printResourceQuota`: `resource: used/hard` for each hard limit, sorted
/// by name; `limits.*` resources go to the Limit column.
fn resource_quota_row(o: &Value, ctx: &Ctx) -> Row {
    let hard: BTreeMap<&String, &Value> = match o.pointer("/status/hard") {
        Some(Value::Object(m)) => m.iter().collect(),
        _ => BTreeMap::new(),
    };
    let mut requests: Vec<String> = Vec::new();
    let mut limits: Vec<String> = Vec::new();
    for (resource, hard_quantity) in hard {
        let used = quantity(
            o.pointer("/status/used")
                .and_then(|u| u.get(resource.as_str())),
        );
        let text = format!("{resource}: {used}/{}", quantity(Some(hard_quantity)));
        let pieces: Vec<&str> = resource.split('.').collect();
        if pieces.len() > 1 && pieces[0] == "limits" {
            limits.push(text);
        } else {
            requests.push(text);
        }
    }
    vec![
        name(o),
        json!(requests.join(", ")),
        json!(limits.join(", ")),
        ctx.age(o),
    ]
    .into()
}
