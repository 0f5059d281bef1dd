use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::*;
use crate::resources::{lookup, BUILTIN};

/// The time every test measures ages to.
const NOW: &str = "2024-05-01T12:00:00Z";

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

/// `NOW` minus `seconds`, as an RFC 3339 timestamp.
fn ago(seconds: i64) -> String {
    (now() - chrono::Duration::seconds(seconds))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn table(group: &str, version: &str, resource: &str, objects: &[Value]) -> Value {
    let r = lookup(group, version, resource)
        .unwrap_or_else(|| panic!("no resource {group}/{version}/{resource}"));
    to_table_at(r, objects, Some("42"), None, IncludeObject::Metadata, now())
}

fn headers(t: &Value) -> Vec<String> {
    t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

/// The names of the columns kubectl shows without `-o wide`.
fn narrow_headers(t: &Value) -> Vec<String> {
    t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["priority"] == 0)
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

/// The one row of a table of one object.
fn row(group: &str, version: &str, resource: &str, object: Value) -> Vec<Value> {
    let t = table(group, version, resource, &[object]);
    let cells = t["rows"][0]["cells"].as_array().unwrap().clone();
    assert_eq!(cells.len(), headers(&t).len(), "one cell per column");
    cells
}

fn meta(name: &str) -> Value {
    json!({ "name": name, "namespace": "default", "uid": "u-1", "creationTimestamp": ago(3600) })
}

// --- The table itself -------------------------------------------------------

#[test]
fn human_duration_matches_upstream() {
    assert_eq!(human_duration(-5), "<invalid>");
    assert_eq!(human_duration(-1), "0s");
    assert_eq!(human_duration(5), "5s");
    assert_eq!(human_duration(119), "119s");
    assert_eq!(human_duration(150), "2m30s");
    assert_eq!(human_duration(300), "5m");
    assert_eq!(human_duration(600), "10m");
    assert_eq!(human_duration(3 * 3600 + 120), "3h2m");
    assert_eq!(human_duration(30 * 3600), "30h");
    assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
    assert_eq!(human_duration(100 * 86400), "100d");
    assert_eq!(human_duration(3 * 365 * 86400 + 86400), "3y1d");
    assert_eq!(human_duration(10 * 365 * 86400), "10y");
}

#[test]
fn kubectl_get_accept_header_wants_a_table() {
    assert!(wants_table(
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    ));
    assert!(!wants_table("application/json"));
}

#[test]
fn rows_carry_partial_object_metadata_and_list_metadata() {
    let cm = json!({ "metadata": meta("x"), "data": { "a": "1", "b": "2" } });
    let r = lookup("", "v1", "configmaps").unwrap();
    let t = to_table_at(
        r,
        std::slice::from_ref(&cm),
        Some("5"),
        Some("tok"),
        IncludeObject::Metadata,
        now(),
    );
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(
        t["metadata"],
        json!({ "resourceVersion": "5", "continue": "tok" })
    );
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(t["rows"][0]["object"]["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["rows"][0]["object"]["metadata"]["uid"], "u-1");
    assert!(t["rows"][0].get("conditions").is_none());
    let t = to_table_with(
        r,
        std::slice::from_ref(&cm),
        None,
        None,
        IncludeObject::Object,
    );
    assert_eq!(t["rows"][0]["object"], cm);
    let t = to_table_with(r, &[cm], None, None, IncludeObject::None);
    assert!(t["rows"][0].get("object").is_none());
    assert_eq!(
        IncludeObject::from_param(Some("Object")),
        Some(IncludeObject::Object)
    );
    assert_eq!(
        IncludeObject::from_param(None),
        Some(IncludeObject::Metadata)
    );
    assert_eq!(IncludeObject::from_param(Some("Bogus")), None);
    let name = &t["columnDefinitions"][0];
    assert_eq!(name["format"], "name");
    assert!(name["description"]
        .as_str()
        .unwrap()
        .starts_with("Name must be unique within a namespace."));
}

/// Every built-in resource prints one cell per column, for an empty object
/// as for a populated one, and starts with a Name column (Events: Last Seen).
#[test]
fn every_builtin_prints_one_cell_per_column() {
    for r in BUILTIN {
        for o in [
            json!({}),
            json!({ "metadata": meta("x"), "spec": {}, "status": {} }),
        ] {
            let t = to_table_at(r, &[o], None, None, IncludeObject::Metadata, now());
            let cols = t["columnDefinitions"].as_array().unwrap();
            let cells = t["rows"][0]["cells"].as_array().unwrap();
            assert_eq!(cols.len(), cells.len(), "{}", r.resource);
            let first = cols[0]["name"].as_str().unwrap();
            assert!(
                first == "Name" || (r.resource == "events" && first == "Last Seen"),
                "{}",
                r.resource
            );
            for c in cols {
                assert!(["string", "integer", "number", "boolean", "date"]
                    .contains(&c["type"].as_str().unwrap()));
            }
        }
    }
}

#[test]
fn kinds_without_printers_use_the_default_convertor() {
    for (g, v, res) in [
        ("rbac.authorization.k8s.io", "v1", "roles"),
        ("rbac.authorization.k8s.io", "v1", "clusterroles"),
        ("", "v1", "limitranges"),
        ("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
        ("storage.k8s.io", "v1", "csistoragecapacities"),
    ] {
        let t = table(
            g,
            v,
            res,
            &[
                json!({ "metadata": { "name": "admin", "creationTimestamp": "2024-01-02T03:04:05Z" } }),
            ],
        );
        assert_eq!(headers(&t), ["Name", "Created At"], "{res}");
        assert_eq!(t["columnDefinitions"][1]["type"], "date");
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["admin", "2024-01-02T03:04:05Z"])
        );
    }
    let t = table(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        &[json!({ "metadata": { "name": "r" } })],
    );
    assert_eq!(t["rows"][0]["cells"][1], "0001-01-01T00:00:00Z");
    let t = table(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        &[json!({ "metadata": { "name": "r", "creationTimestamp": "2024-01-02T05:04:05+02:00" } })],
    );
    assert_eq!(t["rows"][0]["cells"][1], "2024-01-02T03:04:05Z");
}

// --- Pods -------------------------------------------------------------------

fn pod(spec: Value, status: Value) -> Value {
    json!({ "apiVersion": "v1", "kind": "Pod", "metadata": meta("web-0"), "spec": spec, "status": status })
}

fn containers(names: &[&str]) -> Value {
    json!(names
        .iter()
        .map(|n| json!({ "name": n, "image": format!("{n}:1") }))
        .collect::<Vec<_>>())
}

fn running(name: &str, ready: bool, restarts: i64) -> Value {
    json!({
        "name": name, "ready": ready, "restartCount": restarts, "started": true,
        "state": { "running": { "startedAt": ago(600) } },
    })
}

fn pod_cells(spec: Value, status: Value) -> Vec<Value> {
    row("", "v1", "pods", pod(spec, status))
}

#[test]
fn pod_columns_match_upstream() {
    let t = table("", "v1", "pods", &[]);
    assert_eq!(
        headers(&t),
        [
            "Name",
            "Ready",
            "Status",
            "Restarts",
            "Age",
            "IP",
            "Node",
            "Nominated Node",
            "Readiness Gates"
        ]
    );
    assert_eq!(
        narrow_headers(&t),
        ["Name", "Ready", "Status", "Restarts", "Age"]
    );
    assert_eq!(t["columnDefinitions"][3]["type"], "string");
    assert_eq!(
        t["columnDefinitions"][5]["description"],
        docs::POD_STATUS_POD_IP
    );
}

#[test]
fn running_pod_counts_ready_containers_and_restarts_with_last_termination() {
    let mut restarted = running("sidecar", true, 3);
    restarted["lastState"] =
        json!({ "terminated": { "exitCode": 1, "reason": "Error", "finishedAt": ago(300) } });
    let cells = pod_cells(
        json!({ "containers": containers(&["app", "sidecar"]), "nodeName": "node-1" }),
        json!({
            "phase": "Running", "podIP": "10.42.0.5", "podIPs": [{ "ip": "10.42.0.5" }],
            "conditions": [{ "type": "Ready", "status": "True" }],
            "containerStatuses": [running("app", true, 0), restarted],
        }),
    );
    assert_eq!(
        cells,
        json!([
            "web-0",
            "2/2",
            "Running",
            "3 (5m ago)",
            "60m",
            "10.42.0.5",
            "node-1",
            "<none>",
            "<none>"
        ])
        .as_array()
        .unwrap()
        .clone()
    );
}

#[test]
fn pending_pod_without_status_prints_none_for_wide_columns() {
    let cells = pod_cells(
        json!({ "containers": containers(&["app"]) }),
        json!({ "phase": "Pending" }),
    );
    assert_eq!(cells[1], "0/1");
    assert_eq!(cells[2], "Pending");
    assert_eq!(cells[3], "0");
    assert_eq!(
        &cells[5..],
        &[
            json!("<none>"),
            json!("<none>"),
            json!("<none>"),
            json!("<none>")
        ]
    );
}

#[test]
fn pod_waiting_reason_becomes_the_status() {
    let cells = pod_cells(
        json!({ "containers": containers(&["app"]) }),
        json!({
            "phase": "Pending",
            "containerStatuses": [{
                "name": "app", "ready": false, "restartCount": 0,
                "state": { "waiting": { "reason": "ImagePullBackOff", "message": "Back-off pulling image" } },
            }],
        }),
    );
    assert_eq!(
        (cells[1].as_str(), cells[2].as_str(), cells[3].as_str()),
        (Some("0/1"), Some("ImagePullBackOff"), Some("0"))
    );
}

#[test]
fn crash_looping_pod_shows_restarts_ago() {
    let cells = pod_cells(
        json!({ "containers": containers(&["app"]) }),
        json!({
            "phase": "Running",
            "containerStatuses": [{
                "name": "app", "ready": false, "restartCount": 12,
                "state": { "waiting": { "reason": "CrashLoopBackOff" } },
                "lastState": { "terminated": { "exitCode": 2, "reason": "Error", "finishedAt": ago(90) } },
            }],
        }),
    );
    assert_eq!(cells[1], "0/1");
    assert_eq!(cells[2], "CrashLoopBackOff");
    assert_eq!(cells[3], "12 (90s ago)");
}

#[test]
fn pod_terminated_without_reason_shows_exit_code_or_signal() {
    let status = |terminated: Value| json!({ "phase": "Running", "containerStatuses": [{ "name": "app", "restartCount": 0, "state": { "terminated": terminated } }] });
    let spec = json!({ "containers": containers(&["app"]) });
    assert_eq!(
        pod_cells(spec.clone(), status(json!({ "exitCode": 3 })))[2],
        "ExitCode:3"
    );
    assert_eq!(
        pod_cells(
            spec.clone(),
            status(json!({ "exitCode": 137, "signal": 9 }))
        )[2],
        "Signal:9"
    );
    assert_eq!(
        pod_cells(
            spec,
            status(json!({ "exitCode": 137, "reason": "OOMKilled" }))
        )[2],
        "OOMKilled"
    );
}

#[test]
fn completed_pod_has_a_completed_row_condition() {
    let p = pod(
        json!({ "containers": containers(&["job"]) }),
        json!({
            "phase": "Succeeded",
            "containerStatuses": [{ "name": "job", "ready": false, "restartCount": 0,
                "state": { "terminated": { "exitCode": 0, "reason": "Completed", "finishedAt": ago(10) } } }],
        }),
    );
    let t = table("", "v1", "pods", &[p]);
    assert_eq!(t["rows"][0]["cells"][1], "0/1");
    assert_eq!(t["rows"][0]["cells"][2], "Completed");
    assert_eq!(
        t["rows"][0]["conditions"],
        json!([{ "type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully." }])
    );
    let failed = pod(
        json!({ "containers": containers(&["job"]) }),
        json!({ "phase": "Failed" }),
    );
    let t = table("", "v1", "pods", &[failed]);
    assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Failed");
    assert_eq!(t["rows"][0]["conditions"][0]["message"], "The pod failed.");
}

#[test]
fn completed_container_beside_a_running_one_reads_running_or_not_ready() {
    let status = |ready_condition: &str| {
        json!({
            "phase": "Running",
            "conditions": [{ "type": "Ready", "status": ready_condition }],
            "containerStatuses": [
                running("app", true, 0),
                { "name": "init-task", "ready": false, "restartCount": 0, "state": { "terminated": { "exitCode": 0, "reason": "Completed" } } },
            ],
        })
    };
    let spec = json!({ "containers": containers(&["app", "init-task"]) });
    let cells = pod_cells(spec.clone(), status("True"));
    assert_eq!(
        (cells[1].as_str(), cells[2].as_str()),
        (Some("1/2"), Some("Running"))
    );
    assert_eq!(pod_cells(spec, status("False"))[2], "NotReady");
}

#[test]
fn init_containers_show_progress_and_failures() {
    let spec = json!({ "initContainers": containers(&["migrate", "seed"]), "containers": containers(&["app"]) });
    let done = json!({ "name": "migrate", "restartCount": 0, "state": { "terminated": { "exitCode": 0, "reason": "Completed" } } });
    let status = |second: Value| {
        json!({
            "phase": "Pending",
            "conditions": [{ "type": "Initialized", "status": "False" }],
            "initContainerStatuses": [done.clone(), second],
            "containerStatuses": [{ "name": "app", "restartCount": 0, "state": { "waiting": { "reason": "PodInitializing" } } }],
        })
    };
    let seed = |state: Value, restarts: i64| json!({ "name": "seed", "restartCount": restarts, "state": state });
    assert_eq!(
        pod_cells(spec.clone(), status(seed(json!({ "running": {} }), 0)))[2],
        "Init:1/2"
    );
    assert_eq!(
        pod_cells(
            spec.clone(),
            status(seed(
                json!({ "waiting": { "reason": "PodInitializing" } }),
                0
            ))
        )[2],
        "Init:1/2"
    );
    let crash = pod_cells(
        spec.clone(),
        status(seed(
            json!({ "waiting": { "reason": "CrashLoopBackOff" } }),
            4,
        )),
    );
    assert_eq!(
        (crash[1].as_str(), crash[2].as_str(), crash[3].as_str()),
        (Some("0/1"), Some("Init:CrashLoopBackOff"), Some("4"))
    );
    assert_eq!(
        pod_cells(
            spec.clone(),
            status(seed(json!({ "terminated": { "exitCode": 1 } }), 0))
        )[2],
        "Init:ExitCode:1"
    );
    assert_eq!(
        pod_cells(
            spec.clone(),
            status(seed(
                json!({ "terminated": { "exitCode": 1, "signal": 15 } }),
                0
            ))
        )[2],
        "Init:Signal:15"
    );
    assert_eq!(
        pod_cells(
            spec.clone(),
            status(seed(
                json!({ "terminated": { "exitCode": 1, "reason": "Error" } }),
                0
            ))
        )[2],
        "Init:Error"
    );
    // No init container status yet: the main containers decide.
    let cells = pod_cells(spec, json!({ "phase": "Pending" }));
    assert_eq!(cells[2], "Pending");
}

#[test]
fn sidecar_init_containers_count_as_containers() {
    let spec = json!({
        "initContainers": [{ "name": "proxy", "image": "envoy", "restartPolicy": "Always" }],
        "containers": containers(&["app"]),
    });
    let mut sidecar = running("proxy", true, 2);
    sidecar["lastState"] = json!({ "terminated": { "exitCode": 1, "finishedAt": ago(5 * 3600) } });
    let cells = pod_cells(
        spec,
        json!({
            "phase": "Running",
            "conditions": [{ "type": "Initialized", "status": "True" }, { "type": "Ready", "status": "True" }],
            "initContainerStatuses": [sidecar],
            "containerStatuses": [running("app", true, 1)],
        }),
    );
    assert_eq!(cells[1], "2/2");
    assert_eq!(cells[2], "Running");
    assert_eq!(cells[3], "3 (5h ago)");
}

#[test]
fn deleted_pods_are_terminating_or_unknown_when_their_node_is_lost() {
    let mut p = pod(
        json!({ "containers": containers(&["app"]) }),
        json!({ "phase": "Running", "containerStatuses": [running("app", true, 0)] }),
    );
    p["metadata"]["deletionTimestamp"] = json!(ago(5));
    assert_eq!(row("", "v1", "pods", p.clone())[2], "Terminating");
    p["status"]["reason"] = json!("NodeLost");
    assert_eq!(row("", "v1", "pods", p.clone())[2], "Unknown");
    // A finished pod being deleted keeps its final status.
    let mut done = pod(
        json!({ "containers": containers(&["app"]) }),
        json!({ "phase": "Succeeded" }),
    );
    done["metadata"]["deletionTimestamp"] = json!(ago(5));
    assert_eq!(row("", "v1", "pods", done)[2], "Succeeded");
}

#[test]
fn scheduling_gated_and_evicted_pods_show_the_reason() {
    let cells = pod_cells(
        json!({ "containers": containers(&["app"]), "schedulingGates": [{ "name": "example.com/gate" }] }),
        json!({ "phase": "Pending", "conditions": [{ "type": "PodScheduled", "status": "False", "reason": "SchedulingGated" }] }),
    );
    assert_eq!(cells[2], "SchedulingGated");
    let cells = pod_cells(
        json!({ "containers": containers(&["app"]) }),
        json!({ "phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory." }),
    );
    assert_eq!(cells[2], "Evicted");
}

#[test]
fn pod_wide_columns_show_ip_nodes_and_readiness_gates() {
    let cells = pod_cells(
        json!({
            "containers": containers(&["app"]), "nodeName": "node-2",
            "readinessGates": [{ "conditionType": "example.com/lb" }, { "conditionType": "example.com/dns" }],
        }),
        json!({
            "phase": "Running", "podIPs": [{ "ip": "fd00::5" }, { "ip": "10.42.1.5" }], "nominatedNodeName": "node-3",
            "conditions": [{ "type": "example.com/lb", "status": "True" }, { "type": "example.com/dns", "status": "False" }],
            "containerStatuses": [running("app", true, 0)],
        }),
    );
    assert_eq!(
        &cells[5..],
        &[
            json!("fd00::5"),
            json!("node-2"),
            json!("node-3"),
            json!("1/2")
        ]
    );
}

// --- Services, Endpoints, EndpointSlices ------------------------------------

fn service(spec: Value, status: Value) -> Vec<Value> {
    row(
        "",
        "v1",
        "services",
        json!({ "metadata": meta("web"), "spec": spec, "status": status }),
    )
}

#[test]
fn service_columns_match_upstream() {
    let t = table("", "v1", "services", &[]);
    assert_eq!(
        headers(&t),
        [
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age",
            "Selector"
        ]
    );
    assert_eq!(
        narrow_headers(&t),
        [
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age"
        ]
    );
}

#[test]
fn cluster_ip_service_prints_ports_and_selector() {
    let cells = service(
        json!({
            "type": "ClusterIP", "clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"],
            "ports": [{ "name": "dns", "port": 53, "protocol": "UDP" }, { "name": "dns-tcp", "port": 53, "protocol": "TCP" }],
            "selector": { "k8s-app": "kube-dns", "app": "dns" },
        }),
        json!({ "loadBalancer": {} }),
    );
    assert_eq!(
        cells,
        [
            json!("web"),
            json!("ClusterIP"),
            json!("10.43.0.10"),
            json!("<none>"),
            json!("53/UDP,53/TCP"),
            json!("60m"),
            json!("app=dns,k8s-app=kube-dns")
        ]
    );
}

#[test]
fn node_port_service_prints_node_ports_and_external_ips() {
    let cells = service(
        json!({
            "type": "NodePort", "clusterIPs": ["10.43.12.7"], "externalIPs": ["192.0.2.10", "192.0.2.11"],
            "ports": [{ "port": 80, "nodePort": 30080, "protocol": "TCP", "targetPort": 8080 }],
        }),
        json!({}),
    );
    assert_eq!(cells[3], "192.0.2.10,192.0.2.11");
    assert_eq!(cells[4], "80:30080/TCP");
    assert_eq!(cells[6], "<none>");
}

#[test]
fn load_balancer_service_is_pending_until_it_has_an_ingress() {
    let spec = json!({ "type": "LoadBalancer", "clusterIPs": ["10.43.1.1"], "ports": [{ "port": 443, "nodePort": 31443, "protocol": "TCP" }] });
    assert_eq!(
        service(spec.clone(), json!({ "loadBalancer": {} }))[3],
        "<pending>"
    );
    let cells = service(
        spec.clone(),
        json!({ "loadBalancer": { "ingress": [{ "ip": "203.0.113.9" }, { "hostname": "lb.example.com" }, { "ip": "203.0.113.9" }] } }),
    );
    assert_eq!(cells[3], "203.0.113.9,lb.example.com");
    assert_eq!(cells[4], "443:31443/TCP");
    // The server prints wide: long lists are not clipped.
    let mut with_external = spec;
    with_external["externalIPs"] = json!(["198.51.100.1"]);
    let cells = service(
        with_external,
        json!({ "loadBalancer": { "ingress": [{ "ip": "203.0.113.9" }, { "ip": "203.0.113.10" }] } }),
    );
    assert_eq!(cells[3], "203.0.113.10,203.0.113.9,198.51.100.1");
}

#[test]
fn headless_external_name_and_defaulted_services() {
    let headless = service(
        json!({ "clusterIP": "None", "clusterIPs": ["None"], "selector": { "app": "db" } }),
        json!({}),
    );
    assert_eq!(
        &headless[1..5],
        &[
            json!("ClusterIP"),
            json!("None"),
            json!("<none>"),
            json!("<none>")
        ]
    );
    let external = service(
        json!({ "type": "ExternalName", "externalName": "db.example.com" }),
        json!({}),
    );
    assert_eq!(
        &external[1..5],
        &[
            json!("ExternalName"),
            json!("<none>"),
            json!("db.example.com"),
            json!("<none>")
        ]
    );
    // Protocol defaults to TCP; a clusterIP without clusterIPs is used.
    let cells = service(
        json!({ "clusterIP": "10.43.0.1", "ports": [{ "port": 443 }] }),
        json!({}),
    );
    assert_eq!(
        &cells[1..5],
        &[
            json!("ClusterIP"),
            json!("10.43.0.1"),
            json!("<none>"),
            json!("443/TCP")
        ]
    );
}

#[test]
fn endpoints_list_the_first_three_addresses() {
    let ep = json!({
        "metadata": meta("web"),
        "subsets": [
            { "addresses": [{ "ip": "10.42.0.5" }, { "ip": "10.42.0.6" }], "ports": [{ "port": 8080 }, { "name": "m", "port": 9090 }] },
            { "addresses": [{ "ip": "fd00::7" }], "ports": [{ "port": 8080 }] },
        ],
    });
    assert_eq!(
        row("", "v1", "endpoints", ep)[1],
        "10.42.0.5:8080,10.42.0.6:8080,10.42.0.5:9090 + 2 more..."
    );
    let headless =
        json!({ "metadata": meta("db"), "subsets": [{ "addresses": [{ "ip": "fd00::7" }] }] });
    assert_eq!(row("", "v1", "endpoints", headless)[1], "fd00::7");
    let v6 = json!({ "metadata": meta("v6"), "subsets": [{ "addresses": [{ "ip": "fd00::7" }], "ports": [{ "port": 80 }] }] });
    assert_eq!(row("", "v1", "endpoints", v6)[1], "[fd00::7]:80");
    assert_eq!(
        row("", "v1", "endpoints", json!({ "metadata": meta("none") }))[1],
        "<none>"
    );
    assert_eq!(
        headers(&table("", "v1", "endpoints", &[])),
        ["Name", "Endpoints", "Age"]
    );
}

#[test]
fn endpoint_slices_print_ports_and_addresses() {
    let slice = json!({
        "metadata": meta("web-abc12"),
        "addressType": "IPv4",
        "ports": [{ "name": "http", "port": 80, "protocol": "TCP" }, { "name": "named" }, {}, { "port": 9 }],
        "endpoints": [{ "addresses": ["10.42.0.5"] }, { "addresses": ["10.42.0.6", "10.42.0.7"] }, { "addresses": ["10.42.0.8"] }],
    });
    let t = table("discovery.k8s.io", "v1", "endpointslices", &[slice]);
    assert_eq!(
        headers(&t),
        ["Name", "AddressType", "Ports", "Endpoints", "Age"]
    );
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "web-abc12",
            "IPv4",
            "80,named,* + 1 more...",
            "10.42.0.5,10.42.0.6,10.42.0.7 + 1 more...",
            "60m"
        ])
    );
    let empty = row(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        json!({ "metadata": meta("e"), "addressType": "IPv6" }),
    );
    assert_eq!(&empty[2..4], &[json!("<unset>"), json!("<unset>")]);
}

// --- Nodes ------------------------------------------------------------------

fn node(labels: Value, spec: Value, status: Value) -> Vec<Value> {
    let mut m = meta("node-1");
    m["labels"] = labels;
    row(
        "",
        "v1",
        "nodes",
        json!({ "metadata": m, "spec": spec, "status": status }),
    )
}

#[test]
fn node_columns_match_upstream() {
    let t = table("", "v1", "nodes", &[]);
    assert_eq!(
        headers(&t),
        [
            "Name",
            "Status",
            "Roles",
            "Age",
            "Version",
            "Internal-IP",
            "External-IP",
            "OS-Image",
            "Kernel-Version",
            "Container-Runtime"
        ]
    );
    assert_eq!(
        narrow_headers(&t),
        ["Name", "Status", "Roles", "Age", "Version"]
    );
}

#[test]
fn ready_control_plane_node_prints_roles_and_node_info() {
    let cells = node(
        json!({
            "kubernetes.io/hostname": "node-1",
            "node-role.kubernetes.io/control-plane": "",
            "node-role.kubernetes.io/master": "true",
            "node-role.kubernetes.io/": "",
            "kubernetes.io/role": "etcd",
        }),
        json!({}),
        json!({
            "conditions": [
                { "type": "MemoryPressure", "status": "False" },
                { "type": "Ready", "status": "True", "reason": "KubeletReady" },
            ],
            "addresses": [{ "type": "Hostname", "address": "node-1" }, { "type": "InternalIP", "address": "192.168.1.10" }],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0", "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0-18-amd64",
                "containerRuntimeVersion": "krate://0.1.0",
            },
        }),
    );
    assert_eq!(
        cells,
        [
            json!("node-1"),
            json!("Ready"),
            json!("control-plane,etcd,master"),
            json!("60m"),
            json!("v1.32.0"),
            json!("192.168.1.10"),
            json!("<none>"),
            json!("Debian GNU/Linux 12 (bookworm)"),
            json!("6.1.0-18-amd64"),
            json!("krate://0.1.0"),
        ]
    );
}

#[test]
fn cordoned_not_ready_and_unknown_nodes() {
    let cells = node(
        json!({}),
        json!({ "unschedulable": true }),
        json!({ "conditions": [{ "type": "Ready", "status": "Unknown" }] }),
    );
    assert_eq!(cells[1], "NotReady,SchedulingDisabled");
    assert_eq!(cells[2], "<none>");
    let cells = node(json!({}), json!({ "unschedulable": true }), json!({}));
    assert_eq!(cells[1], "Unknown,SchedulingDisabled");
    assert_eq!(
        &cells[4..],
        &[
            json!(""),
            json!("<none>"),
            json!("<none>"),
            json!("<unknown>"),
            json!("<unknown>"),
            json!("<unknown>")
        ]
    );
    let cells = node(
        json!({}),
        json!({}),
        json!({ "addresses": [{ "type": "ExternalIP", "address": "203.0.113.5" }] }),
    );
    assert_eq!(cells[1], "Unknown");
    assert_eq!(cells[6], "203.0.113.5");
}

// --- Events -----------------------------------------------------------------

#[test]
fn event_columns_match_upstream() {
    let t = table("", "v1", "events", &[]);
    assert_eq!(
        headers(&t),
        [
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "Subobject",
            "Source",
            "Message",
            "First Seen",
            "Count",
            "Name"
        ]
    );
    assert_eq!(
        narrow_headers(&t),
        ["Last Seen", "Type", "Reason", "Object", "Message"]
    );
    assert_eq!(t["columnDefinitions"][9]["format"], "name");
    assert_eq!(t["columnDefinitions"][9]["priority"], 1);
}

#[test]
fn core_event_uses_first_and_last_timestamps() {
    let e = json!({
        "metadata": meta("web-0.17c1f2"),
        "involvedObject": { "kind": "Pod", "namespace": "default", "name": "web-0", "fieldPath": "spec.containers{app}" },
        "reason": "BackOff", "message": "Back-off restarting failed container\n", "type": "Warning",
        "source": { "component": "kubelet", "host": "node-1" },
        "firstTimestamp": ago(3600 * 2), "lastTimestamp": ago(45), "count": 27,
    });
    assert_eq!(
        row("", "v1", "events", e),
        [
            json!("45s"),
            json!("Warning"),
            json!("BackOff"),
            json!("pod/web-0"),
            json!("spec.containers{app}"),
            json!("kubelet, node-1"),
            json!("Back-off restarting failed container"),
            json!("120m"),
            json!(27),
            json!("web-0.17c1f2"),
        ]
    );
}

#[test]
fn new_api_events_use_event_time_series_and_reporting_controller() {
    let singleton = json!({
        "metadata": meta("e1"),
        "involvedObject": { "kind": "Node", "name": "node-1" },
        "reason": "RegisteredNode", "type": "Normal", "message": "Node node-1 event: Registered Node node-1 in Controller",
        "eventTime": "2024-05-01T11:59:30.123456Z", "reportingComponent": "node-controller", "reportingInstance": "",
        "source": {},
    });
    let cells = row("", "v1", "events", singleton);
    assert_eq!(
        (cells[0].as_str(), cells[7].as_str()),
        (Some("29s"), Some("29s"))
    );
    assert_eq!(cells[3], "node/node-1");
    assert_eq!(cells[5], "node-controller");
    assert_eq!(cells[8], 1);
    let series = json!({
        "metadata": meta("e2"),
        "involvedObject": { "kind": "Pod", "name": "web-0" },
        "eventTime": ago(600), "series": { "count": 5, "lastObservedTime": ago(20) },
        "reportingComponent": "kubelet", "reportingInstance": "node-1",
    });
    let cells = row("", "v1", "events", series);
    assert_eq!(
        (cells[0].as_str(), cells[7].as_str(), &cells[8]),
        (Some("20s"), Some("10m"), &json!(5))
    );
    assert_eq!(cells[5], "kubelet, node-1");
    // An event without any time.
    let cells = row(
        "",
        "v1",
        "events",
        json!({ "metadata": meta("e3"), "involvedObject": { "kind": "Namespace" } }),
    );
    assert_eq!(
        (cells[0].as_str(), cells[3].as_str()),
        (Some("<unknown>"), Some("namespace"))
    );
}

#[test]
fn events_k8s_io_events_print_as_core_events() {
    let e = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": meta("web.1"),
        "regarding": { "kind": "Deployment", "name": "web", "namespace": "default" },
        "note": "Scaled up replica set web-5d4f to 3", "reason": "ScalingReplicaSet", "type": "Normal",
        "reportingController": "deployment-controller", "reportingInstance": "", "action": "Scale",
        "deprecatedFirstTimestamp": ago(300), "deprecatedLastTimestamp": ago(60), "deprecatedCount": 2,
        "deprecatedSource": { "component": "deployment-controller" },
        "eventTime": null,
    });
    let t = table("events.k8s.io", "v1", "events", &[e]);
    assert_eq!(headers(&t)[0], "Last Seen");
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "60s",
            "Normal",
            "ScalingReplicaSet",
            "deployment/web",
            "",
            "deployment-controller",
            "Scaled up replica set web-5d4f to 3",
            "5m",
            2,
            "web.1"
        ])
    );
}

// --- Namespaces, Secrets, ConfigMaps, ServiceAccounts ----------------------

#[test]
fn namespace_secret_configmap_and_serviceaccount_rows() {
    let ns = row(
        "",
        "v1",
        "namespaces",
        json!({ "metadata": meta("dev"), "status": { "phase": "Terminating" } }),
    );
    assert_eq!(ns, [json!("dev"), json!("Terminating"), json!("60m")]);
    assert_eq!(
        row("", "v1", "namespaces", json!({ "metadata": meta("new") }))[1],
        "Active"
    );
    let secret = row(
        "",
        "v1",
        "secrets",
        json!({ "metadata": meta("tls"), "type": "kubernetes.io/tls", "data": { "tls.crt": "", "tls.key": "" }, "stringData": { "ca.crt": "x", "tls.key": "y" } }),
    );
    assert_eq!(
        secret,
        [
            json!("tls"),
            json!("kubernetes.io/tls"),
            json!(3),
            json!("60m")
        ]
    );
    assert_eq!(
        row("", "v1", "secrets", json!({ "metadata": meta("s") }))[1],
        "Opaque"
    );
    let cm = row(
        "",
        "v1",
        "configmaps",
        json!({ "metadata": meta("c"), "data": { "a": "1" }, "binaryData": { "b": "AA==" } }),
    );
    assert_eq!(cm[1], 2);
    let sa = row(
        "",
        "v1",
        "serviceaccounts",
        json!({ "metadata": meta("default"), "secrets": [{ "name": "t" }] }),
    );
    assert_eq!(sa, [json!("default"), json!(1), json!("60m")]);
    assert_eq!(
        headers(&table("", "v1", "secrets", &[])),
        ["Name", "Type", "Data", "Age"]
    );
}

// --- Volumes ----------------------------------------------------------------

#[test]
fn persistent_volume_claims_show_capacity_once_bound() {
    let t = table("", "v1", "persistentvolumeclaims", &[]);
    assert_eq!(
        headers(&t),
        [
            "Name",
            "Status",
            "Volume",
            "Capacity",
            "Access Modes",
            "StorageClass",
            "VolumeAttributesClass",
            "Age",
            "VolumeMode"
        ]
    );
    let bound = row(
        "",
        "v1",
        "persistentvolumeclaims",
        json!({
            "metadata": meta("data"),
            "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } }, "storageClassName": "local-path", "volumeName": "pvc-123", "volumeMode": "Filesystem" },
            "status": { "phase": "Bound", "accessModes": ["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteOnce"], "capacity": { "storage": "2Gi" } },
        }),
    );
    assert_eq!(
        bound,
        [
            json!("data"),
            json!("Bound"),
            json!("pvc-123"),
            json!("2Gi"),
            json!("RWO,RWOP"),
            json!("local-path"),
            json!("<unset>"),
            json!("60m"),
            json!("Filesystem")
        ]
    );
    let mut pending_meta = meta("pending");
    pending_meta["annotations"] = json!({ "volume.beta.kubernetes.io/storage-class": "beta" });
    let pending = row(
        "",
        "v1",
        "persistentvolumeclaims",
        json!({ "metadata": pending_meta, "spec": { "storageClassName": "ignored", "volumeAttributesClassName": "gold" } }),
    );
    assert_eq!(
        pending,
        [
            json!("pending"),
            json!("Pending"),
            json!(""),
            json!(""),
            json!(""),
            json!("beta"),
            json!("gold"),
            json!("60m"),
            json!("Filesystem")
        ]
    );
}

#[test]
fn persistent_volumes_show_claim_and_terminating() {
    let t = table("", "v1", "persistentvolumes", &[]);
    assert_eq!(
        headers(&t),
        [
            "Name",
            "Capacity",
            "Access Modes",
            "Reclaim Policy",
            "Status",
            "Claim",
            "StorageClass",
            "VolumeAttributesClass",
            "Reason",
            "Age",
            "VolumeMode"
        ]
    );
    let mut m = meta("pvc-123");
    m["deletionTimestamp"] = json!(ago(1));
    let pv = row(
        "",
        "v1",
        "persistentvolumes",
        json!({
            "metadata": m,
            "spec": { "capacity": { "storage": "5Gi" }, "accessModes": ["ReadWriteMany", "ReadOnlyMany"], "persistentVolumeReclaimPolicy": "Delete",
                      "claimRef": { "namespace": "default", "name": "data" }, "storageClassName": "nfs", "volumeMode": "Block" },
            "status": { "phase": "Released", "reason": "" },
        }),
    );
    assert_eq!(
        pv,
        [
            json!("pvc-123"),
            json!("5Gi"),
            json!("ROX,RWX"),
            json!("Delete"),
            json!("Terminating"),
            json!("default/data"),
            json!("nfs"),
            json!("<unset>"),
            json!(""),
            json!("60m"),
            json!("Block")
        ]
    );
    let bare = row(
        "",
        "v1",
        "persistentvolumes",
        json!({ "metadata": meta("bare") }),
    );
    assert_eq!(
        &bare[1..5],
        &[json!("0"), json!(""), json!("Retain"), json!("Pending")]
    );
}

// --- Apps -------------------------------------------------------------------

fn template(containers_json: Value) -> Value {
    json!({ "metadata": { "labels": { "app": "web" } }, "spec": { "containers": containers_json } })
}

#[test]
fn deployment_prints_ready_of_desired_and_wide_columns() {
    let t = table("apps", "v1", "deployments", &[]);
    assert_eq!(
        headers(&t),
        [
            "Name",
            "Ready",
            "Up-to-date",
            "Available",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    assert_eq!(
        narrow_headers(&t),
        ["Name", "Ready", "Up-to-date", "Available", "Age"]
    );
    let d = json!({
        "metadata": meta("web"),
        "spec": {
            "replicas": 3,
            "selector": { "matchLabels": { "app": "web" }, "matchExpressions": [{ "key": "tier", "operator": "In", "values": ["fe", "be"] }, { "key": "canary", "operator": "DoesNotExist" }] },
            "template": template(json!([{ "name": "nginx", "image": "nginx:1.27" }, { "name": "log", "image": "busybox" }])),
        },
        "status": { "replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2 },
    });
    assert_eq!(
        row("apps", "v1", "deployments", d),
        [
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("60m"),
            json!("nginx,log"),
            json!("nginx:1.27,busybox"),
            json!("app=web,!canary,tier in (be,fe)")
        ]
    );
    // Replicas default to 1; no status is zeros.
    let fresh = row(
        "apps",
        "v1",
        "deployments",
        json!({ "metadata": meta("new"), "spec": { "template": template(json!([])) } }),
    );
    assert_eq!(&fresh[1..4], &[json!("0/1"), json!(0), json!(0)]);
    assert_eq!(fresh[7], "");
    let bad = row(
        "apps",
        "v1",
        "deployments",
        json!({ "metadata": meta("bad"), "spec": { "selector": { "matchExpressions": [{ "key": "a", "operator": "Gt", "values": ["1"] }] } } }),
    );
    assert_eq!(bad[7], "<invalid>");
}

#[test]
fn replica_sets_stateful_sets_daemon_sets_and_controllers() {
    let rs = row(
        "apps",
        "v1",
        "replicasets",
        json!({
            "metadata": meta("web-5d4f"),
            "spec": { "replicas": 3, "selector": { "matchLabels": { "app": "web", "pod-template-hash": "5d4f" } }, "template": template(json!([{ "name": "nginx", "image": "nginx" }])) },
            "status": { "replicas": 3, "readyReplicas": 1 },
        }),
    );
    assert_eq!(
        rs,
        [
            json!("web-5d4f"),
            json!(3),
            json!(3),
            json!(1),
            json!("60m"),
            json!("nginx"),
            json!("nginx"),
            json!("app=web,pod-template-hash=5d4f")
        ]
    );
    assert_eq!(
        headers(&table("apps", "v1", "replicasets", &[])),
        [
            "Name",
            "Desired",
            "Current",
            "Ready",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );

    let sts = row(
        "apps",
        "v1",
        "statefulsets",
        json!({ "metadata": meta("db"), "spec": { "replicas": 2, "template": template(json!([{ "name": "pg", "image": "postgres:16" }])) }, "status": { "readyReplicas": 1 } }),
    );
    assert_eq!(
        sts,
        [
            json!("db"),
            json!("1/2"),
            json!("60m"),
            json!("pg"),
            json!("postgres:16")
        ]
    );
    assert_eq!(
        headers(&table("apps", "v1", "statefulsets", &[])),
        ["Name", "Ready", "Age", "Containers", "Images"]
    );

    let mut tpl = template(json!([{ "name": "agent", "image": "agent:2" }]));
    tpl["spec"]["nodeSelector"] = json!({ "kubernetes.io/os": "linux" });
    let ds = row(
        "apps",
        "v1",
        "daemonsets",
        json!({
            "metadata": meta("agent"),
            "spec": { "selector": { "matchLabels": { "app": "agent" } }, "template": tpl },
            "status": { "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2 },
        }),
    );
    assert_eq!(
        ds,
        [
            json!("agent"),
            json!(3),
            json!(3),
            json!(2),
            json!(3),
            json!(2),
            json!("kubernetes.io/os=linux"),
            json!("60m"),
            json!("agent"),
            json!("agent:2"),
            json!("app=agent")
        ]
    );
    assert_eq!(
        headers(&table("apps", "v1", "daemonsets", &[])),
        [
            "Name",
            "Desired",
            "Current",
            "Ready",
            "Up-to-date",
            "Available",
            "Node Selector",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    let no_selector = row(
        "apps",
        "v1",
        "daemonsets",
        json!({ "metadata": meta("x"), "spec": { "template": template(json!([])) } }),
    );
    assert_eq!(
        (no_selector[6].as_str(), no_selector[10].as_str()),
        (Some("<none>"), Some("<none>"))
    );

    let mut m = meta("agent-7b9c");
    m["ownerReferences"] = json!([
        { "apiVersion": "v1", "kind": "Pod", "name": "not-controller", "uid": "1" },
        { "apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "2", "controller": true },
    ]);
    let cr = row(
        "apps",
        "v1",
        "controllerrevisions",
        json!({ "metadata": m, "revision": 4, "data": {} }),
    );
    assert_eq!(
        cr,
        [
            json!("agent-7b9c"),
            json!("daemonset.apps/agent"),
            json!(4),
            json!("60m")
        ]
    );
    let orphan = row(
        "apps",
        "v1",
        "controllerrevisions",
        json!({ "metadata": meta("o"), "revision": 1 }),
    );
    assert_eq!(orphan[1], "<none>");
}

#[test]
fn replication_controllers_and_pod_templates() {
    let rc = row(
        "",
        "v1",
        "replicationcontrollers",
        json!({ "metadata": meta("rc"), "spec": { "template": template(json!([{ "name": "a", "image": "a:1" }])) }, "status": { "replicas": 1 } }),
    );
    // Replicas default to 1 and the selector to the template's labels.
    assert_eq!(
        rc,
        [
            json!("rc"),
            json!(1),
            json!(1),
            json!(0),
            json!("60m"),
            json!("a"),
            json!("a:1"),
            json!("app=web")
        ]
    );
    let pt = row(
        "",
        "v1",
        "podtemplates",
        json!({ "metadata": meta("pt"), "template": template(json!([{ "name": "a", "image": "a:1" }])) }),
    );
    assert_eq!(
        pt,
        [json!("pt"), json!("a"), json!("a:1"), json!("app=web")]
    );
    assert_eq!(
        headers(&table("", "v1", "podtemplates", &[])),
        ["Name", "Containers", "Images", "Pod Labels"]
    );
}

// --- Batch ------------------------------------------------------------------

fn job(spec: Value, status: Value) -> Vec<Value> {
    let mut s = json!({ "template": template(json!([{ "name": "pi", "image": "perl:5.34" }])), "selector": { "matchLabels": { "batch.kubernetes.io/controller-uid": "abc" } } });
    for (k, v) in spec.as_object().unwrap() {
        s[k] = v.clone();
    }
    row(
        "batch",
        "v1",
        "jobs",
        json!({ "metadata": meta("pi"), "spec": s, "status": status }),
    )
}

#[test]
fn job_columns_include_status_in_v1_32() {
    let t = table("batch", "v1", "jobs", &[]);
    assert_eq!(
        headers(&t),
        [
            "Name",
            "Status",
            "Completions",
            "Duration",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    assert_eq!(
        narrow_headers(&t),
        ["Name", "Status", "Completions", "Duration", "Age"]
    );
}

#[test]
fn jobs_print_status_completions_and_duration() {
    let complete = job(
        json!({ "completions": 1, "parallelism": 1 }),
        json!({
            "succeeded": 1, "startTime": ago(600), "completionTime": ago(600 - 75),
            "conditions": [{ "type": "SuccessCriteriaMet", "status": "True" }, { "type": "Complete", "status": "True" }],
        }),
    );
    assert_eq!(
        complete,
        [
            json!("pi"),
            json!("Complete"),
            json!("1/1"),
            json!("75s"),
            json!("60m"),
            json!("pi"),
            json!("perl:5.34"),
            json!("batch.kubernetes.io/controller-uid=abc")
        ]
    );
    let running = job(
        json!({ "parallelism": 3 }),
        json!({ "startTime": ago(200), "active": 3 }),
    );
    assert_eq!(
        &running[1..4],
        &[json!("Running"), json!("0/1 of 3"), json!("3m20s")]
    );
    let defaulted = job(json!({}), json!({}));
    assert_eq!(
        &defaulted[1..4],
        &[json!("Running"), json!("0/1"), json!("")]
    );
    let suspended = job(
        json!({ "completions": 5, "suspend": true }),
        json!({ "succeeded": 2, "conditions": [{ "type": "Suspended", "status": "True" }] }),
    );
    assert_eq!(&suspended[1..3], &[json!("Suspended"), json!("2/5")]);
    let failing = job(
        json!({}),
        json!({ "conditions": [{ "type": "FailureTarget", "status": "True" }] }),
    );
    assert_eq!(failing[1], "FailureTarget");
    let failed = job(
        json!({}),
        json!({ "conditions": [{ "type": "FailureTarget", "status": "True" }, { "type": "Failed", "status": "True" }] }),
    );
    assert_eq!(failed[1], "Failed");
    let not_yet = job(
        json!({}),
        json!({ "conditions": [{ "type": "Complete", "status": "False" }] }),
    );
    assert_eq!(not_yet[1], "Running");
}

#[test]
fn cron_jobs_print_schedule_suspend_and_last_schedule() {
    let t = table("batch", "v1", "cronjobs", &[]);
    assert_eq!(
        headers(&t),
        [
            "Name",
            "Schedule",
            "Timezone",
            "Suspend",
            "Active",
            "Last Schedule",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    let cj = json!({
        "metadata": meta("hello"),
        "spec": { "schedule": "*/5 * * * *", "jobTemplate": { "spec": { "template": template(json!([{ "name": "hello", "image": "busybox:1.28" }])) } } },
        "status": { "active": [{ "name": "hello-1" }], "lastScheduleTime": ago(120) },
    });
    assert_eq!(
        row("batch", "v1", "cronjobs", cj),
        [
            json!("hello"),
            json!("*/5 * * * *"),
            json!("<none>"),
            json!("False"),
            json!(1),
            json!("2m"),
            json!("60m"),
            json!("hello"),
            json!("busybox:1.28"),
            json!("<none>")
        ]
    );
    let tz = row(
        "batch",
        "v1",
        "cronjobs",
        json!({ "metadata": meta("tz"), "spec": { "schedule": "@daily", "timeZone": "Etc/UTC", "suspend": true } }),
    );
    assert_eq!(
        &tz[2..6],
        &[json!("Etc/UTC"), json!("True"), json!(0), json!("<none>")]
    );
}

// --- Networking -------------------------------------------------------------

#[test]
fn ingresses_print_class_hosts_address_and_ports() {
    let t = table("networking.k8s.io", "v1", "ingresses", &[]);
    assert_eq!(
        headers(&t),
        ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
    );
    let ing = json!({
        "metadata": meta("web"),
        "spec": { "ingressClassName": "traefik", "rules": [{ "host": "a.example.com" }, {}, { "host": "b.example.com" }, { "host": "c.example.com" }, { "host": "d.example.com" }], "tls": [{ "hosts": ["a.example.com"] }] },
        "status": { "loadBalancer": { "ingress": [{ "ip": "192.168.1.10" }, { "ip": "192.168.1.11" }] } },
    });
    assert_eq!(
        row("networking.k8s.io", "v1", "ingresses", ing),
        [
            json!("web"),
            json!("traefik"),
            json!("a.example.com,b.example.com,c.example.com + 2 more..."),
            json!("192.168.1.10,192.168.1.11"),
            json!("80, 443"),
            json!("60m")
        ]
    );
    let bare = row(
        "networking.k8s.io",
        "v1",
        "ingresses",
        json!({ "metadata": meta("x"), "spec": { "defaultBackend": {} } }),
    );
    assert_eq!(
        &bare[1..5],
        &[json!("<none>"), json!("*"), json!(""), json!("80")]
    );
}

#[test]
fn ingress_classes_and_network_policies() {
    let ic = row(
        "networking.k8s.io",
        "v1",
        "ingressclasses",
        json!({ "metadata": meta("nginx"), "spec": { "controller": "k8s.io/ingress-nginx", "parameters": { "apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb" } } }),
    );
    assert_eq!(
        ic,
        [
            json!("nginx"),
            json!("k8s.io/ingress-nginx"),
            json!("IngressParameters.k8s.example.com/external-lb"),
            json!("60m")
        ]
    );
    let none = row(
        "networking.k8s.io",
        "v1",
        "ingressclasses",
        json!({ "metadata": meta("t"), "spec": { "controller": "traefik.io/ingress-controller" } }),
    );
    assert_eq!(none[2], "<none>");
    let np = row(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        json!({ "metadata": meta("deny"), "spec": { "podSelector": {} } }),
    );
    assert_eq!(np, [json!("deny"), json!("<none>"), json!("60m")]);
    let np = row(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        json!({ "metadata": meta("db"), "spec": { "podSelector": { "matchLabels": { "role": "db" } } } }),
    );
    assert_eq!(np[1], "role=db");
    assert_eq!(
        headers(&table("networking.k8s.io", "v1", "networkpolicies", &[])),
        ["Name", "Pod-Selector", "Age"]
    );
}

// --- Storage ----------------------------------------------------------------

#[test]
fn storage_classes_mark_the_default() {
    let t = table("storage.k8s.io", "v1", "storageclasses", &[]);
    assert_eq!(
        headers(&t),
        [
            "Name",
            "Provisioner",
            "ReclaimPolicy",
            "VolumeBindingMode",
            "AllowVolumeExpansion",
            "Age"
        ]
    );
    let mut m = meta("local-path");
    m["annotations"] = json!({ "storageclass.kubernetes.io/is-default-class": "true" });
    let sc = row(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        json!({ "metadata": m, "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer" }),
    );
    assert_eq!(
        sc,
        [
            json!("local-path (default)"),
            json!("rancher.io/local-path"),
            json!("Delete"),
            json!("WaitForFirstConsumer"),
            json!(false),
            json!("60m")
        ]
    );
    let plain = row(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        json!({ "metadata": meta("nfs"), "provisioner": "nfs", "allowVolumeExpansion": true }),
    );
    assert_eq!(
        &plain[..5],
        &[
            json!("nfs"),
            json!("nfs"),
            json!("Delete"),
            json!("Immediate"),
            json!(true)
        ]
    );
}

#[test]
fn csi_drivers_nodes_and_volume_attachments() {
    let t = table("storage.k8s.io", "v1", "csidrivers", &[]);
    assert_eq!(
        headers(&t),
        [
            "Name",
            "AttachRequired",
            "PodInfoOnMount",
            "StorageCapacity",
            "TokenRequests",
            "RequiresRepublish",
            "Modes",
            "Age"
        ]
    );
    let d = row(
        "storage.k8s.io",
        "v1",
        "csidrivers",
        json!({ "metadata": meta("secrets-store.csi.k8s.io"), "spec": { "podInfoOnMount": true, "tokenRequests": [{ "audience": "a" }, { "audience": "b" }], "volumeLifecycleModes": ["Ephemeral", "Persistent"] } }),
    );
    assert_eq!(
        d,
        [
            json!("secrets-store.csi.k8s.io"),
            json!(true),
            json!(true),
            json!(false),
            json!("a,b"),
            json!(false),
            json!("Ephemeral,Persistent"),
            json!("60m")
        ]
    );
    let bare = row(
        "storage.k8s.io",
        "v1",
        "csidrivers",
        json!({ "metadata": meta("x"), "spec": {} }),
    );
    assert_eq!(
        (bare[4].as_str(), bare[6].as_str()),
        (Some("<unset>"), Some("Persistent"))
    );
    let n = row(
        "storage.k8s.io",
        "v1",
        "csinodes",
        json!({ "metadata": meta("node-1"), "spec": { "drivers": [{ "name": "a" }, { "name": "b" }] } }),
    );
    assert_eq!(n, [json!("node-1"), json!(2), json!("60m")]);
    let va = row(
        "storage.k8s.io",
        "v1",
        "volumeattachments",
        json!({ "metadata": meta("csi-123"), "spec": { "attacher": "ebs.csi.aws.com", "nodeName": "node-1", "source": { "persistentVolumeName": "pv-1" } }, "status": { "attached": true } }),
    );
    assert_eq!(
        va,
        [
            json!("csi-123"),
            json!("ebs.csi.aws.com"),
            json!("pv-1"),
            json!("node-1"),
            json!(true),
            json!("60m")
        ]
    );
    assert_eq!(
        headers(&table("storage.k8s.io", "v1", "volumeattachments", &[])),
        ["Name", "Attacher", "PV", "Node", "Attached", "Age"]
    );
}

// --- RBAC and admission -----------------------------------------------------

#[test]
fn role_bindings_split_subjects() {
    let t = table("rbac.authorization.k8s.io", "v1", "rolebindings", &[]);
    assert_eq!(
        headers(&t),
        ["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"]
    );
    assert_eq!(narrow_headers(&t), ["Name", "Role", "Age"]);
    let rb = row(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        json!({
            "metadata": meta("admins"),
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
            "subjects": [
                { "kind": "User", "name": "alice" }, { "kind": "User", "name": "bob" }, { "kind": "Group", "name": "system:masters" },
                { "kind": "ServiceAccount", "name": "ci", "namespace": "build" },
            ],
        }),
    );
    assert_eq!(
        rb,
        [
            json!("admins"),
            json!("ClusterRole/cluster-admin"),
            json!("60m"),
            json!("alice, bob"),
            json!("system:masters"),
            json!("build/ci")
        ]
    );
}

#[test]
fn webhooks_and_admission_policies() {
    let w = row(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        json!({ "metadata": meta("check"), "webhooks": [{ "name": "a.example.com" }, { "name": "b.example.com" }] }),
    );
    assert_eq!(w, [json!("check"), json!(2), json!("60m")]);
    assert_eq!(
        headers(&table(
            "admissionregistration.k8s.io",
            "v1",
            "mutatingwebhookconfigurations",
            &[]
        )),
        ["Name", "Webhooks", "Age"]
    );
    let p = row(
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicies",
        json!({ "metadata": meta("replicas"), "spec": { "paramKind": { "apiVersion": "v1", "kind": "ConfigMap" }, "validations": [{ "expression": "true" }] } }),
    );
    assert_eq!(
        p,
        [
            json!("replicas"),
            json!(1),
            json!("v1/ConfigMap"),
            json!("60m")
        ]
    );
    let b = |param: Value| {
        row(
            "admissionregistration.k8s.io",
            "v1",
            "validatingadmissionpolicybindings",
            json!({ "metadata": meta("b"), "spec": { "policyName": "replicas", "paramRef": param } }),
        )
    };
    assert_eq!(
        b(json!({ "name": "limits", "namespace": "default" }))[2],
        "default/limits"
    );
    assert_eq!(b(json!({ "name": "limits" }))[2], "*/limits");
    assert_eq!(
        b(json!({ "selector": { "matchLabels": { "b": "2", "a": "1" }, "matchExpressions": [{ "key": "env", "operator": "In", "values": ["x", "y"] }] } }))[2],
        "&LabelSelector{MatchLabels:map[string]string{a: 1,b: 2,},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:env,Operator:In,Values:[x y],},},}"
    );
    assert_eq!(b(Value::Null)[1..3], [json!("replicas"), json!("<unset>")]);
}

// --- Other groups -----------------------------------------------------------

#[test]
fn horizontal_pod_autoscalers_format_metrics() {
    let t = table("autoscaling", "v2", "horizontalpodautoscalers", &[]);
    assert_eq!(
        headers(&t),
        [
            "Name",
            "Reference",
            "Targets",
            "MinPods",
            "MaxPods",
            "Replicas",
            "Age"
        ]
    );
    let hpa = json!({
        "apiVersion": "autoscaling/v2", "metadata": meta("web"),
        "spec": {
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "web" }, "minReplicas": 2, "maxReplicas": 10,
            "metrics": [
                { "type": "Resource", "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 50 } } },
                { "type": "Resource", "resource": { "name": "memory", "target": { "type": "AverageValue", "averageValue": "500Mi" } } },
                { "type": "Pods", "pods": { "metric": { "name": "rps" }, "target": { "type": "AverageValue", "averageValue": "1k" } } },
            ],
        },
        "status": {
            "currentReplicas": 3,
            "currentMetrics": [{ "type": "Resource", "resource": { "name": "cpu", "current": { "averageUtilization": 22, "averageValue": "110m" } } }],
        },
    });
    assert_eq!(
        row("autoscaling", "v2", "horizontalpodautoscalers", hpa),
        [
            json!("web"),
            json!("Deployment/web"),
            json!("cpu: 22%/50%, memory: <unknown>/500Mi + 1 more..."),
            json!("2"),
            json!(10),
            json!(3),
            json!("60m")
        ]
    );
    let v1 = json!({
        "apiVersion": "autoscaling/v1", "metadata": meta("v1"),
        "spec": { "scaleTargetRef": { "kind": "Deployment", "name": "web" }, "maxReplicas": 5, "targetCPUUtilizationPercentage": 70 },
        "status": { "currentReplicas": 1, "currentCPUUtilizationPercentage": 12 },
    });
    let cells = row("autoscaling", "v1", "horizontalpodautoscalers", v1);
    assert_eq!(
        &cells[2..6],
        &[json!("cpu: 12%/70%"), json!("1"), json!(5), json!(1)]
    );
    let defaulted = json!({ "metadata": meta("d"), "spec": { "scaleTargetRef": { "kind": "StatefulSet", "name": "db" }, "maxReplicas": 3 } });
    assert_eq!(
        row("autoscaling", "v2", "horizontalpodautoscalers", defaulted)[2],
        "cpu: <unknown>/80%"
    );
    let external = json!({
        "metadata": meta("e"),
        "spec": { "scaleTargetRef": { "kind": "Deployment", "name": "q" }, "maxReplicas": 3, "metrics": [
            { "type": "External", "external": { "metric": { "name": "queue" }, "target": { "type": "Value", "value": "30" } } },
            { "type": "Object", "object": { "metric": { "name": "hits" }, "target": { "type": "AverageValue", "averageValue": "10" } } },
        ] },
        "status": { "currentMetrics": [{ "type": "External", "external": { "current": { "value": "12" } } }] },
    });
    assert_eq!(
        row("autoscaling", "v2", "horizontalpodautoscalers", external)[2],
        "12/30, <unknown>/10 (avg)"
    );
}

#[test]
fn pod_disruption_budgets_certificates_and_leases() {
    let pdb = row(
        "policy",
        "v1",
        "poddisruptionbudgets",
        json!({ "metadata": meta("web"), "spec": { "minAvailable": "50%" }, "status": { "disruptionsAllowed": 1 } }),
    );
    assert_eq!(
        pdb,
        [
            json!("web"),
            json!("50%"),
            json!("N/A"),
            json!(1),
            json!("60m")
        ]
    );
    let pdb = row(
        "policy",
        "v1",
        "poddisruptionbudgets",
        json!({ "metadata": meta("db"), "spec": { "maxUnavailable": 1 } }),
    );
    assert_eq!(&pdb[1..4], &[json!("N/A"), json!("1"), json!(0)]);
    assert_eq!(
        headers(&table("policy", "v1", "poddisruptionbudgets", &[])),
        [
            "Name",
            "Min Available",
            "Max Unavailable",
            "Allowed Disruptions",
            "Age"
        ]
    );

    let t = table(
        "certificates.k8s.io",
        "v1",
        "certificatesigningrequests",
        &[],
    );
    assert_eq!(
        headers(&t),
        [
            "Name",
            "Age",
            "SignerName",
            "Requestor",
            "RequestedDuration",
            "Condition"
        ]
    );
    let csr = row(
        "certificates.k8s.io",
        "v1",
        "certificatesigningrequests",
        json!({
            "metadata": meta("node-csr-1"),
            "spec": { "signerName": "kubernetes.io/kube-apiserver-client-kubelet", "username": "system:bootstrap:abcdef", "expirationSeconds": 86400 },
            "status": { "conditions": [{ "type": "Approved", "status": "True" }], "certificate": "LS0t" },
        }),
    );
    assert_eq!(
        csr,
        [
            json!("node-csr-1"),
            json!("60m"),
            json!("kubernetes.io/kube-apiserver-client-kubelet"),
            json!("system:bootstrap:abcdef"),
            json!("24h"),
            json!("Approved,Issued")
        ]
    );
    let denied = row(
        "certificates.k8s.io",
        "v1",
        "certificatesigningrequests",
        json!({ "metadata": meta("x"), "spec": {}, "status": { "conditions": [{ "type": "Approved" }, { "type": "Denied" }, { "type": "Failed" }] } }),
    );
    assert_eq!(
        &denied[2..6],
        &[
            json!("<none>"),
            json!(""),
            json!("<none>"),
            json!("Denied,Failed")
        ]
    );

    let lease = row(
        "coordination.k8s.io",
        "v1",
        "leases",
        json!({ "metadata": meta("node-1"), "spec": { "holderIdentity": "node-1" } }),
    );
    assert_eq!(lease, [json!("node-1"), json!("node-1"), json!("60m")]);
}

#[test]
fn priority_runtime_classes_api_services_quotas_and_component_statuses() {
    let pc = row(
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        json!({ "metadata": meta("system-node-critical"), "value": 2000001000, "globalDefault": false }),
    );
    assert_eq!(
        pc,
        [
            json!("system-node-critical"),
            json!(2000001000),
            json!(false),
            json!("60m"),
            json!("PreemptLowerPriority")
        ]
    );
    let t = table("scheduling.k8s.io", "v1", "priorityclasses", &[]);
    assert_eq!(
        narrow_headers(&t),
        ["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"]
    );

    let rc = row(
        "node.k8s.io",
        "v1",
        "runtimeclasses",
        json!({ "metadata": meta("gvisor"), "handler": "runsc" }),
    );
    assert_eq!(rc, [json!("gvisor"), json!("runsc"), json!("60m")]);

    let local = row(
        "apiregistration.k8s.io",
        "v1",
        "apiservices",
        json!({ "metadata": meta("v1.apps"), "spec": { "group": "apps", "version": "v1" }, "status": { "conditions": [{ "type": "Available", "status": "True", "reason": "Local" }] } }),
    );
    assert_eq!(
        local,
        [
            json!("v1.apps"),
            json!("Local"),
            json!("True"),
            json!("60m")
        ]
    );
    let remote = row(
        "apiregistration.k8s.io",
        "v1",
        "apiservices",
        json!({ "metadata": meta("v1beta1.metrics.k8s.io"), "spec": { "service": { "namespace": "kube-system", "name": "metrics-server" } }, "status": { "conditions": [{ "type": "Available", "status": "False", "reason": "MissingEndpoints" }] } }),
    );
    assert_eq!(
        &remote[1..3],
        &[
            json!("kube-system/metrics-server"),
            json!("False (MissingEndpoints)")
        ]
    );
    let unknown = row(
        "apiregistration.k8s.io",
        "v1",
        "apiservices",
        json!({ "metadata": meta("x"), "spec": {} }),
    );
    assert_eq!(unknown[2], "Unknown");

    let quota = row(
        "",
        "v1",
        "resourcequotas",
        json!({
            "metadata": meta("compute"),
            "status": {
                "hard": { "requests.cpu": "2", "pods": "10", "limits.memory": "4Gi", "limits.cpu": "4", "requests.memory": "2Gi" },
                "used": { "requests.cpu": "500m", "pods": "3", "limits.cpu": "1" },
            },
        }),
    );
    assert_eq!(
        quota,
        [
            json!("compute"),
            json!("pods: 3/10, requests.cpu: 500m/2, requests.memory: 0/2Gi"),
            json!("limits.cpu: 1/4, limits.memory: 0/4Gi"),
            json!("60m")
        ]
    );
    assert_eq!(
        headers(&table("", "v1", "resourcequotas", &[])),
        ["Name", "Request", "Limit", "Age"]
    );

    let cs = row(
        "",
        "v1",
        "componentstatuses",
        json!({ "metadata": { "name": "etcd-0" }, "conditions": [{ "type": "Healthy", "status": "True", "message": "ok" }] }),
    );
    assert_eq!(
        cs,
        [json!("etcd-0"), json!("Healthy"), json!("ok"), json!("")]
    );
    let cs = row(
        "",
        "v1",
        "componentstatuses",
        json!({ "metadata": { "name": "scheduler" }, "conditions": [{ "type": "Healthy", "status": "False", "error": "connection refused" }] }),
    );
    assert_eq!(
        cs[1..4],
        [json!("Unhealthy"), json!(""), json!("connection refused")]
    );
    assert_eq!(
        headers(&table("", "v1", "componentstatuses", &[])),
        ["Name", "Status", "Message", "Error"]
    );
}

// --- Custom resources -------------------------------------------------------

#[test]
fn custom_resources_print_additional_printer_columns() {
    let columns = [
        json!({ "name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas" }),
        json!({ "name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status", "description": "Ready?" }),
        json!({ "name": "Hosts", "type": "string", "jsonPath": ".spec.hosts", "priority": 1 }),
        json!({ "name": "Ratio", "type": "number", "jsonPath": ".spec.ratio" }),
        json!({ "name": "Paused", "type": "boolean", "jsonPath": ".spec.paused" }),
        json!({ "name": "First", "type": "string", "jsonPath": ".spec.hosts[0]" }),
        json!({ "name": "Missing", "type": "string", "jsonPath": ".spec.nothing" }),
        json!({ "name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp" }),
    ];
    let o = json!({
        "metadata": meta("crontab-1"),
        "spec": { "replicas": 3, "hosts": ["a", "b"], "ratio": 0.5, "paused": false },
        "status": { "conditions": [{ "type": "Synced", "status": "True" }, { "type": "Ready", "status": "False" }] },
    });
    let t = custom::to_table_custom_at(
        &columns,
        &[o],
        Some("7"),
        None,
        IncludeObject::Metadata,
        &Ctx { now: now() },
    );
    assert_eq!(t["columnDefinitions"][0]["name"], "Name");
    assert_eq!(
        t["columnDefinitions"][1]["description"],
        "Custom resource definition column (in JSONPath format): .spec.replicas"
    );
    assert_eq!(t["columnDefinitions"][2]["description"], "Ready?");
    assert_eq!(t["columnDefinitions"][3]["priority"], 1);
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "crontab-1",
            3,
            "False",
            "[a b]",
            0.5,
            false,
            "a",
            null,
            "60m"
        ])
    );
    assert_eq!(t["metadata"]["resourceVersion"], "7");

    let t = custom::to_table_custom_at(
        &[],
        &[json!({ "metadata": meta("x") })],
        None,
        None,
        IncludeObject::None,
        &Ctx { now: now() },
    );
    assert_eq!(headers(&t), ["Name", "Age"]);
    assert!(t["rows"][0].get("object").is_none());
    assert_eq!(t["columnDefinitions"][1]["type"], "date");
    assert_eq!(t["rows"][0]["cells"], json!(["x", "60m"]));
}
