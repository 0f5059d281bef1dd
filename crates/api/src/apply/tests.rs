//! Server-side apply and field tracking, checked against upstream's
//! behaviour and texts.

use super::*;
use serde_json::json;

const T1: &str = "2024-05-01T10:00:00Z";
const T2: &str = "2024-05-01T11:00:00Z";
const T3: &str = "2024-05-01T12:00:00Z";

fn cm(manager: &str, now: &'static str) -> ApplyOptions<'static> {
    let manager: &'static str = Box::leak(manager.to_string().into_boxed_str());
    ApplyOptions {
        manager,
        force: false,
        group: "",
        version: "v1",
        kind: "ConfigMap",
        now,
    }
}

fn deploy(manager: &str, now: &'static str) -> ApplyOptions<'static> {
    ApplyOptions {
        group: "apps",
        kind: "Deployment",
        ..cm(manager, now)
    }
}

fn forced(o: ApplyOptions<'static>) -> ApplyOptions<'static> {
    ApplyOptions { force: true, ..o }
}

fn configmap(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "test-cm", "namespace": "default"}, "data": data})
}

fn entries(obj: &Value) -> Vec<Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The entry of `manager` with `operation`.
fn entry(obj: &Value, manager: &str, operation: &str) -> Option<Value> {
    entries(obj)
        .into_iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

fn fields_string(obj: &Value, manager: &str, operation: &str) -> String {
    let e = entry(obj, manager, operation).expect("entry");
    Set::from_fields_v1(&e["fieldsV1"])
        .expect("fieldsV1")
        .to_fields_v1_string()
}

fn conflict(err: ApplyError) -> (String, Vec<FieldConflict>) {
    match err {
        ApplyError::Conflict { message, conflicts } => (message, conflicts),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn apply_creates_object_owning_every_field_it_sets() {
    let mut config = configmap(json!({"key": "some value"}));
    config["metadata"]["labels"] = json!({"test-label": "test"});
    let obj = apply(None, &config, &cm("kubectl", T1)).unwrap();

    assert_eq!(obj["data"], json!({"key": "some value"}));
    assert_eq!(obj["metadata"]["labels"], json!({"test-label": "test"}));
    assert_eq!(
        entries(&obj),
        vec![json!({
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:key": {}}, "f:metadata": {"f:labels": {"f:test-label": {}}}},
        })]
    );
}

/// `kubectl create deployment web --image=nginx --dry-run=client -o json`,
/// as `kubectl apply --server-side` sends it.
fn kubectl_create_deployment() -> Value {
    json!({
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": "web", "creationTimestamp": null, "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}
            },
            "strategy": {}
        },
        "status": {}
    })
}

#[test]
fn deployment_applied_server_side_records_upstream_fields_v1() {
    let obj = apply(None, &kubectl_create_deployment(), &deploy("kubectl", T1)).unwrap();
    // Struct fields are owned through their leaves; containers by name; an
    // explicit null timestamp is a leaf; empty structs own nothing.
    assert_eq!(
        fields_string(&obj, "kubectl", "Apply"),
        r#"{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:metadata":{"f:creationTimestamp":{},"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:name":{}}}}}}}"#
    );
    let e = entry(&obj, "kubectl", "Apply").unwrap();
    assert_eq!(e["apiVersion"], "apps/v1");
    // The stored JSON drops the nulls the configuration set.
    assert!(obj["metadata"].get("creationTimestamp").is_none());
    assert!(obj["spec"]["template"]["metadata"]
        .get("creationTimestamp")
        .is_none());
}

/// The same Deployment as the API server stores it after `kubectl create`
/// (defaults applied).
fn created_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": null,
                     "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "nginx", "image": "nginx", "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File", "imagePullPolicy": "Always"
                    }],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst", "securityContext": {},
                    "schedulerName": "default-scheduler"
                }
            },
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600
        },
        "status": {}
    })
}

#[test]
fn create_by_update_owns_what_differs_from_the_zero_object() {
    let mut obj = created_deployment();
    track_update(None, &mut obj, &deploy("kubectl-create", T1));
    // Upstream's entry for `kubectl create deployment`: structs held by value
    // (spec, strategy, template) are not members, pointers and maps are.
    assert_eq!(
        fields_string(&obj, "kubectl-create", "Update"),
        concat!(
            r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:progressDeadlineSeconds":{},"#,
            r#""f:replicas":{},"f:revisionHistoryLimit":{},"f:selector":{},"f:strategy":{"f:rollingUpdate":"#,
            r#"{".":{},"f:maxSurge":{},"f:maxUnavailable":{}},"f:type":{}},"f:template":{"f:metadata":"#,
            r#"{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":"#,
            r#"{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{},"#,
            r#""f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"#,
            r#""f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"#,
            r#""f:terminationGracePeriodSeconds":{}}}}}"#
        )
    );
    let e = entry(&obj, "kubectl-create", "Update").unwrap();
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["time"], T1);
}

#[test]
fn reapply_without_a_field_removes_it() {
    let opts = cm("mgr", T1);
    let obj = apply(None, &configmap(json!({"a": "1", "b": "2"})), &opts).unwrap();
    let obj = apply(Some(&obj), &configmap(json!({"a": "1"})), &cm("mgr", T2)).unwrap();
    assert_eq!(obj["data"], json!({"a": "1"}));
    assert_eq!(
        fields_string(&obj, "mgr", "Apply"),
        r#"{"f:data":{"f:a":{}}}"#
    );
    assert_eq!(entry(&obj, "mgr", "Apply").unwrap()["time"], T2);
}

#[test]
fn reapply_without_a_struct_removes_it_whole() {
    let mut config = kubectl_create_deployment();
    config["spec"]["strategy"] = json!({"type": "Recreate"});
    let obj = apply(None, &config, &deploy("mgr", T1)).unwrap();
    assert_eq!(obj["spec"]["strategy"], json!({"type": "Recreate"}));
    let obj = apply(Some(&obj), &kubectl_create_deployment(), &deploy("mgr", T2)).unwrap();
    assert!(obj["spec"].get("strategy").is_none(), "{}", obj["spec"]);
}

#[test]
fn field_shared_by_two_appliers_survives_one_dropping_it() {
    let obj = apply(
        None,
        &configmap(json!({"a": "x", "b": "y"})),
        &cm("one", T1),
    )
    .unwrap();
    let obj = apply(Some(&obj), &configmap(json!({"a": "x"})), &cm("two", T2)).unwrap();
    assert_eq!(
        fields_string(&obj, "one", "Apply"),
        r#"{"f:data":{"f:a":{},"f:b":{}}}"#
    );
    assert_eq!(
        fields_string(&obj, "two", "Apply"),
        r#"{"f:data":{"f:a":{}}}"#
    );

    // `one` drops `a`: `two` still owns it, so it stays.
    let obj = apply(Some(&obj), &configmap(json!({"b": "y"})), &cm("one", T3)).unwrap();
    assert_eq!(obj["data"], json!({"a": "x", "b": "y"}));
    assert_eq!(
        fields_string(&obj, "one", "Apply"),
        r#"{"f:data":{"f:b":{}}}"#
    );

    // A manager whose configuration sets nothing has no entry left.
    let empty = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "test-cm"}});
    let obj = apply(Some(&obj), &empty, &cm("two", T3)).unwrap();
    assert!(entry(&obj, "two", "Apply").is_none());
    assert_eq!(obj["data"], json!({"b": "y"}));
}

#[test]
fn changing_a_field_another_applier_owns_conflicts() {
    let obj = apply(None, &configmap(json!({"a": "x"})), &cm("mgr", T1)).unwrap();
    let err = apply(Some(&obj), &configmap(json!({"a": "y"})), &cm("other", T2)).unwrap_err();
    assert_eq!(err.code(), 409);
    let status = err.status();
    let (message, conflicts) = conflict(err);
    assert_eq!(
        message,
        r#"Apply failed with 1 conflict: conflict with "mgr": .data.a"#
    );
    assert_eq!(
        conflicts,
        vec![FieldConflict {
            manager: "mgr".into(),
            message: r#"conflict with "mgr""#.into(),
            field: ".data.a".into()
        }]
    );
    assert_eq!(
        status,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": r#"Apply failed with 1 conflict: conflict with "mgr": .data.a"#,
            "reason": "Conflict",
            "details": {"causes": [{"reason": "FieldManagerConflict",
                                    "message": r#"conflict with "mgr""#, "field": ".data.a"}]},
            "code": 409
        })
    );
}

#[test]
fn changing_a_field_an_update_manager_owns_conflicts_naming_its_version() {
    let mut obj = created_deployment();
    track_update(None, &mut obj, &deploy("kubectl-client-side-apply", T1));
    let mut config = kubectl_create_deployment();
    config["spec"]["replicas"] = json!(3);
    let err = apply(Some(&obj), &config, &deploy("mgr", T2)).unwrap_err();
    let (message, _) = conflict(err);
    assert_eq!(
        message,
        r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas"#
    );
}

#[test]
fn several_conflicts_are_listed_by_manager() {
    let mut obj = configmap(json!({"a": "1", "b": "2"}));
    track_update(None, &mut obj, &cm("mgr", T1));
    let err = apply(
        Some(&obj),
        &configmap(json!({"a": "9", "b": "9"})),
        &cm("other", T2),
    )
    .unwrap_err();
    let (message, conflicts) = conflict(err);
    assert_eq!(
        message,
        "Apply failed with 2 conflicts: conflicts with \"mgr\" using v1:\n- .data.a\n- .data.b"
    );
    assert_eq!(conflicts.len(), 2);
    assert_eq!(conflicts[1].message, r#"conflict with "mgr" using v1"#);
    assert_eq!(conflicts[1].field, ".data.b");
}

#[test]
fn setting_the_same_value_shares_instead_of_conflicting() {
    let mut obj = configmap(json!({"a": "1"}));
    track_update(None, &mut obj, &cm("mgr", T1));
    let obj = apply(Some(&obj), &configmap(json!({"a": "1"})), &cm("other", T2)).unwrap();
    assert_eq!(
        fields_string(&obj, "mgr", "Update"),
        r#"{"f:data":{".":{},"f:a":{}}}"#
    );
    assert_eq!(
        fields_string(&obj, "other", "Apply"),
        r#"{"f:data":{"f:a":{}}}"#
    );
}

#[test]
fn force_takes_ownership_of_conflicting_fields() {
    let obj = apply(
        None,
        &configmap(json!({"a": "x", "b": "x"})),
        &cm("mgr", T1),
    )
    .unwrap();
    let obj = apply(
        Some(&obj),
        &configmap(json!({"a": "y"})),
        &forced(cm("other", T2)),
    )
    .unwrap();
    assert_eq!(obj["data"], json!({"a": "y", "b": "x"}));
    assert_eq!(
        fields_string(&obj, "mgr", "Apply"),
        r#"{"f:data":{"f:b":{}}}"#
    );
    assert_eq!(
        fields_string(&obj, "other", "Apply"),
        r#"{"f:data":{"f:a":{}}}"#
    );
    // The former owner lost `a`: dropping it from its configuration keeps it.
    let obj = apply(Some(&obj), &configmap(json!({})), &cm("mgr", T3)).unwrap();
    assert_eq!(obj["data"], json!({"a": "y"}));
}

#[test]
fn update_after_apply_transfers_ownership() {
    let obj = apply(
        None,
        &configmap(json!({"a": "x", "b": "x"})),
        &cm("mgr", T1),
    )
    .unwrap();
    let mut edited = obj.clone();
    edited["data"]["a"] = json!("edited");
    track_update(Some(&obj), &mut edited, &cm("kubectl-edit", T2));
    assert_eq!(
        fields_string(&edited, "mgr", "Apply"),
        r#"{"f:data":{"f:b":{}}}"#
    );
    assert_eq!(
        fields_string(&edited, "kubectl-edit", "Update"),
        r#"{"f:data":{"f:a":{}}}"#
    );
    assert_eq!(
        entry(&edited, "kubectl-edit", "Update").unwrap()["time"],
        T2
    );
    // Entries: Apply before Update.
    let ops: Vec<Value> = entries(&edited)
        .iter()
        .map(|e| e["operation"].clone())
        .collect();
    assert_eq!(ops, vec![json!("Apply"), json!("Update")]);

    // The applier can take it back only by force.
    let err = apply(
        Some(&edited),
        &configmap(json!({"a": "x", "b": "x"})),
        &cm("mgr", T3),
    )
    .unwrap_err();
    assert_eq!(
        conflict(err).0,
        r#"Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .data.a"#
    );
}

#[test]
fn update_that_changes_nothing_keeps_entries_and_times() {
    let mut obj = configmap(json!({"a": "1"}));
    track_update(None, &mut obj, &cm("mgr", T1));
    let mut same = obj.clone();
    track_update(Some(&obj), &mut same, &cm("other", T2));
    assert_eq!(entries(&same), entries(&obj));
}

#[test]
fn removing_a_field_by_update_drops_it_from_every_manager() {
    let obj = apply(
        None,
        &configmap(json!({"a": "1", "b": "2"})),
        &cm("mgr", T1),
    )
    .unwrap();
    let mut edited = obj.clone();
    edited["data"].as_object_mut().unwrap().remove("a");
    track_update(Some(&obj), &mut edited, &cm("kubectl-edit", T2));
    assert_eq!(
        fields_string(&edited, "mgr", "Apply"),
        r#"{"f:data":{"f:b":{}}}"#
    );
    // Removing gives no ownership.
    assert!(entry(&edited, "kubectl-edit", "Update").is_none());
}

fn pod_template_deployment(containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": containers}}}
    })
}

#[test]
fn containers_merge_by_name_and_ports_by_port_and_protocol() {
    let web = json!([{"name": "web", "image": "nginx",
                      "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]}]);
    let obj = apply(None, &pod_template_deployment(web), &deploy("one", T1)).unwrap();
    assert_eq!(
        fields_string(&obj, "one", "Apply"),
        concat!(
            r#"{"f:spec":{"f:selector":{},"f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"#,
            r#""f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:image":{},"f:name":{},"#,
            r#""f:ports":{"k:{\"containerPort\":53,\"protocol\":\"UDP\"}":{".":{},"f:containerPort":{},"#,
            r#""f:protocol":{}},"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"#,
            r#""f:containerPort":{}}}}}}}}}"#
        )
    );

    // A second applier adds a container and a port: lists merge item by item.
    let sidecar = json!([{"name": "sidecar", "image": "busybox"},
                         {"name": "web", "ports": [{"containerPort": 8080}]}]);
    let mut config = pod_template_deployment(sidecar);
    config["spec"].as_object_mut().unwrap().remove("selector");
    config["spec"]["template"]
        .as_object_mut()
        .unwrap()
        .remove("metadata");
    let obj = apply(Some(&obj), &config, &deploy("two", T2)).unwrap();
    let containers = &obj["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        containers,
        &json!([
            {"name": "sidecar", "image": "busybox"},
            {"name": "web", "image": "nginx",
             "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"},
                       {"containerPort": 8080}]}
        ])
    );
    assert!(fields_string(&obj, "two", "Apply")
        .contains(r#""k:{\"containerPort\":8080,\"protocol\":\"TCP\"}""#));

    // The first applier drops its UDP port: only that item goes.
    let web = json!([{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]);
    let obj = apply(
        Some(&obj),
        &pod_template_deployment(web),
        &deploy("one", T3),
    )
    .unwrap();
    let ports = &obj["spec"]["template"]["spec"]["containers"][1]["ports"];
    assert_eq!(
        ports,
        &json!([{"containerPort": 80}, {"containerPort": 8080}])
    );
}

#[test]
fn applier_dropping_a_container_removes_only_that_container() {
    let two = json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]);
    let obj = apply(None, &pod_template_deployment(two), &deploy("mgr", T1)).unwrap();
    let one = json!([{"name": "a", "image": "x"}]);
    let obj = apply(
        Some(&obj),
        &pod_template_deployment(one),
        &deploy("mgr", T2),
    )
    .unwrap();
    assert_eq!(
        obj["spec"]["template"]["spec"]["containers"],
        json!([{"name": "a", "image": "x"}])
    );
}

#[test]
fn atomic_fields_are_owned_and_replaced_whole() {
    let mut config = pod_template_deployment(json!([{"name": "a", "image": "x",
                                                     "command": ["sh", "-c"]}]));
    config["spec"]["selector"] = json!({"matchLabels": {"app": "web", "tier": "fe"}});
    let obj = apply(None, &config, &deploy("mgr", T1)).unwrap();
    let f = fields_string(&obj, "mgr", "Apply");
    assert!(f.contains(r#""f:selector":{}"#), "{f}");
    assert!(f.contains(r#""f:command":{}"#), "{f}");
    config["spec"]["selector"] = json!({"matchLabels": {"app": "web"}});
    let obj = apply(Some(&obj), &config, &deploy("mgr", T2)).unwrap();
    assert_eq!(
        obj["spec"]["selector"],
        json!({"matchLabels": {"app": "web"}})
    );
}

#[test]
fn set_lists_own_their_items_by_value() {
    let mut config = configmap(json!({}));
    config["metadata"]["finalizers"] = json!(["example.com/a", "example.com/b"]);
    let obj = apply(None, &config, &cm("mgr", T1)).unwrap();
    assert_eq!(
        fields_string(&obj, "mgr", "Apply"),
        r#"{"f:metadata":{"f:finalizers":{"v:\"example.com/a\"":{},"v:\"example.com/b\"":{}}}}"#
    );
    let mut other = configmap(json!({}));
    other["metadata"]["finalizers"] = json!(["example.com/c"]);
    let obj = apply(Some(&obj), &other, &cm("other", T2)).unwrap();
    assert_eq!(
        obj["metadata"]["finalizers"],
        json!(["example.com/a", "example.com/b", "example.com/c"])
    );
}

#[test]
fn apply_rejects_managed_fields_wrong_kinds_and_bad_keys() {
    let mut config = configmap(json!({}));
    config["metadata"]["managedFields"] = json!([]);
    let err = apply(None, &config, &cm("mgr", T1)).unwrap_err();
    assert_eq!(err.to_string(), "metadata.managedFields must be nil");
    assert_eq!(err.code(), 400);
    assert_eq!(err.status()["reason"], "BadRequest");

    let err = apply(None, &configmap(json!({})), &deploy("mgr", T1)).unwrap_err();
    assert_eq!(err.to_string(), "invalid object type: /v1, Kind=ConfigMap");

    let dup =
        pod_template_deployment(json!([{"name": "a", "env": [{"name": "X"}, {"name": "X"}]}]));
    let err = apply(None, &dup, &deploy("mgr", T1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"failed to create typed patch object (/web; apps/v1, Kind=Deployment): .spec.template.spec.containers[name="a"].env: duplicate entries for key [name="X"]"#
    );
    assert_eq!(err.code(), 500);
    assert!(err.status().get("reason").is_none());

    let nameless = pod_template_deployment(json!([{"image": "x"}]));
    let err = apply(None, &nameless, &deploy("mgr", T1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"failed to create typed patch object (/web; apps/v1, Kind=Deployment): .spec.template.spec.containers: element 0: associative list with keys has an element that omits key field "name" (and doesn't have default value)"#
    );
}

#[test]
fn applying_an_unchanged_configuration_keeps_the_time() {
    let config = configmap(json!({"a": "1"}));
    let obj = apply(None, &config, &cm("mgr", T1)).unwrap();
    let again = apply(Some(&obj), &config, &cm("mgr", T2)).unwrap();
    assert_eq!(again, obj);
    // A new manager sharing fields without changing anything gets no time.
    let third = apply(Some(&obj), &config, &cm("third", T3)).unwrap();
    let e = entry(&third, "third", "Apply").unwrap();
    assert!(e.get("time").is_none(), "{e}");
}

#[test]
fn client_managed_fields_are_respected_and_an_empty_list_resets_them() {
    let obj = apply(None, &configmap(json!({"a": "1"})), &cm("mgr", T1)).unwrap();

    let mut reset = obj.clone();
    reset["metadata"]["managedFields"] = json!([]);
    reset["data"]["a"] = json!("2");
    track_update(Some(&obj), &mut reset, &cm("kubectl-edit", T2));
    assert!(
        reset["metadata"].get("managedFields").is_none(),
        "{}",
        reset["metadata"]
    );

    let mut custom = obj.clone();
    custom["metadata"]["managedFields"] = json!([{
        "manager": "someone", "operation": "Update", "apiVersion": "v1", "time": T1,
        "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}
    }]);
    track_update(Some(&obj), &mut custom, &cm("kubectl-edit", T2));
    let managers: Vec<Value> = entries(&custom)
        .iter()
        .map(|e| e["manager"].clone())
        .collect();
    assert_eq!(managers, vec![json!("someone")]);

    // Clients that drop managedFields do not erase them.
    let mut dropped = obj.clone();
    dropped["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    track_update(Some(&obj), &mut dropped, &cm("kubectl-edit", T2));
    assert_eq!(entries(&dropped), entries(&obj));
}

#[test]
fn entries_sort_by_operation_time_and_manager() {
    let mut obj = configmap(json!({"a": "1"}));
    track_update(None, &mut obj, &cm("zeta", T2));
    let mut next = obj.clone();
    next["data"]["b"] = json!("2");
    track_update(Some(&obj), &mut next, &cm("alpha", T3));
    let mut last = next.clone();
    last["data"]["c"] = json!("3");
    track_update(Some(&next), &mut last, &cm("beta", T2));
    let obj = apply(
        Some(&last),
        &configmap(json!({"d": "4"})),
        &cm("applier", T3),
    )
    .unwrap();
    let order: Vec<(Value, Value)> = entries(&obj)
        .iter()
        .map(|e| (e["operation"].clone(), e["manager"].clone()))
        .collect();
    assert_eq!(
        order,
        vec![
            (json!("Apply"), json!("applier")),
            (json!("Update"), json!("beta")),
            (json!("Update"), json!("zeta")),
            (json!("Update"), json!("alpha")),
        ]
    );
}

#[test]
fn objects_without_managed_fields_get_a_before_first_apply_manager() {
    let live = configmap(json!({"a": "1"}));
    let err = apply(Some(&live), &configmap(json!({"a": "2"})), &cm("mgr", T1)).unwrap_err();
    assert_eq!(
        conflict(err).0,
        r#"Apply failed with 1 conflict: conflict with "before-first-apply" using v1: .data.a"#
    );
    let obj = apply(Some(&live), &configmap(json!({"b": "2"})), &cm("mgr", T1)).unwrap();
    assert_eq!(
        fields_string(&obj, "before-first-apply", "Update"),
        r#"{"f:data":{".":{},"f:a":{}}}"#
    );

    // Updates of such an object leave it untracked.
    let mut updated = live.clone();
    updated["data"]["a"] = json!("3");
    track_update(Some(&live), &mut updated, &cm("kubectl-edit", T1));
    assert!(updated["metadata"].get("managedFields").is_none());
}

#[test]
fn kubectl_upgrading_from_client_side_apply_takes_over_matching_fields() {
    let last = json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"annotations": {}, "name": "test-cm", "namespace": "default"},
                      "data": {"a": "1"}});
    let mut live = configmap(json!({"a": "1"}));
    live["metadata"]["annotations"] = json!({LAST_APPLIED: format!("{}\n", value::go_json(&last))});
    track_update(None, &mut live, &cm("kubectl-client-side-apply", T1));

    // Changing a field last-applied still matches: forced, no conflict.
    let mut config = configmap(json!({"a": "2"}));
    config["metadata"]["annotations"] = json!({});
    let obj = apply(Some(&live), &config, &cm("kubectl", T2)).unwrap();
    assert_eq!(obj["data"]["a"], "2");
    assert_eq!(
        fields_string(&obj, "kubectl", "Apply"),
        r#"{"f:data":{"f:a":{}}}"#
    );
    // The annotation now holds what kubectl applied.
    assert_eq!(
        obj["metadata"]["annotations"][LAST_APPLIED],
        "{\"apiVersion\":\"v1\",\"data\":{\"a\":\"2\"},\"kind\":\"ConfigMap\",\"metadata\":{\"annotations\":{},\"name\":\"test-cm\",\"namespace\":\"default\"}}\n"
    );

    // Another manager gets no such pass.
    let err = apply(Some(&live), &config, &cm("helm", T2)).unwrap_err();
    assert_eq!(
        conflict(err).0,
        r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .data.a"#
    );
}

#[test]
fn update_managers_beyond_ten_fold_into_ancient_changes() {
    let mut obj = configmap(json!({}));
    track_update(None, &mut obj, &cm("creator", T1));
    for i in 0..11 {
        let mut next = obj.clone();
        next["data"][format!("k{i}")] = json!("v");
        let now: &'static str =
            Box::leak(format!("2024-05-01T10:{:02}:00Z", i + 1).into_boxed_str());
        track_update(Some(&obj), &mut next, &cm(&format!("m{i:02}"), now));
        obj = next;
    }
    let managers: Vec<Value> = entries(&obj).iter().map(|e| e["manager"].clone()).collect();
    assert_eq!(managers.len(), 10);
    assert_eq!(managers[0], "ancient-changes");
    assert_eq!(managers[9], "m10");
    let f = fields_string(&obj, "ancient-changes", "Update");
    // The creator's `.data` and the first two editors' keys.
    assert_eq!(f, r#"{"f:data":{".":{},"f:k0":{},"f:k1":{}}}"#);
}

#[test]
fn status_subresource_writes_record_the_subresource() {
    let live = apply(None, &kubectl_create_deployment(), &deploy("kubectl", T1)).unwrap();
    let mut new = live.clone();
    new["status"] = json!({"replicas": 1, "observedGeneration": 1});
    let scope = Scope {
        subresource: "status",
        reset_fields: &[&["spec"], &["metadata", "labels"]],
        ..Scope::default()
    };
    track_update_in(
        Some(&live),
        &mut new,
        &deploy("kube-controller-manager", T2),
        scope,
    );
    let e = entry(&new, "kube-controller-manager", "Update").unwrap();
    assert_eq!(e["subresource"], "status");
    assert_eq!(
        fields_string(&new, "kube-controller-manager", "Update"),
        r#"{"f:status":{"f:observedGeneration":{},"f:replicas":{}}}"#
    );
}

#[test]
fn fields_v1_round_trips_every_path_element_kind() {
    let text = r#"{"f:metadata":{"f:finalizers":{"v:\"a\"":{}}},"f:spec":{".":{},"f:ports":{"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:port":{}}},"f:x":{"i:0":{}}}}"#;
    let v: Value = serde_json::from_str(text).unwrap();
    let set = Set::from_fields_v1(&v).unwrap();
    assert_eq!(set.to_fields_v1_string(), text);
    assert_eq!(Set::from_fields_v1(&set.to_fields_v1()).unwrap(), set);
    let paths: Vec<String> = set.paths().iter().map(|p| p.to_string()).collect();
    assert_eq!(
        paths,
        vec![
            ".spec",
            r#".metadata.finalizers[="a"]"#,
            r#".spec.ports[port=80,protocol="TCP"]"#,
            r#".spec.ports[port=80,protocol="TCP"].port"#,
            ".spec.x[0]",
        ]
    );
}

fn widget_opts(manager: &str, now: &'static str) -> ApplyOptions<'static> {
    ApplyOptions {
        group: "example.com",
        version: "v1",
        kind: "Widget",
        ..cm(manager, now)
    }
}

fn widget(spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget",
           "metadata": {"name": "w", "labels": {"a": "b"}}, "spec": spec})
}

#[test]
fn custom_resources_walk_their_crd_schema() {
    let schema = json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "properties": {
                    "replicas": {"type": "integer"},
                    "ports": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["port", "protocol"],
                        "items": {"type": "object", "properties": {
                            "port": {"type": "integer"},
                            "protocol": {"type": "string", "default": "TCP"}}}
                    },
                    "tags": {"type": "array", "x-kubernetes-list-type": "set",
                             "items": {"type": "string"}},
                    "args": {"type": "array", "items": {"type": "string"}}
                }
            }
        }
    });
    let config = widget(
        json!({"replicas": 2, "ports": [{"port": 80}], "tags": ["x"],
                               "args": ["a"]}),
    );
    let scope = Scope {
        schema: Some(&schema),
        ..Scope::default()
    };
    let obj = apply_in(None, &config, &widget_opts("mgr", T1), scope).unwrap();
    assert_eq!(
        fields_string(&obj, "mgr", "Apply"),
        concat!(
            r#"{"f:metadata":{"f:labels":{"f:a":{}}},"f:spec":{"f:args":{},"f:ports":"#,
            r#"{"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:port":{}}},"f:replicas":{},"#,
            r#""f:tags":{"v:\"x\"":{}}}}"#
        )
    );

    // Without the schema, upstream's deduced type: maps granular, lists atomic.
    let obj = apply(None, &config, &widget_opts("mgr", T1)).unwrap();
    assert_eq!(
        fields_string(&obj, "mgr", "Apply"),
        r#"{"f:metadata":{"f:labels":{"f:a":{}}},"f:spec":{".":{},"f:args":{},"f:ports":{},"f:replicas":{},"f:tags":{}}}"#
    );
}

#[test]
fn server_side_apply_over_kubectl_create_conflicts_only_on_changed_values() {
    let mut live = created_deployment();
    track_update(None, &mut live, &deploy("kubectl-create", T1));
    // The same configuration: shared ownership, nothing changes.
    let obj = apply(
        Some(&live),
        &kubectl_create_deployment(),
        &deploy("kubectl", T2),
    )
    .unwrap();
    assert_eq!(obj["spec"], live["spec"]);
    assert!(entry(&obj, "kubectl", "Apply").is_some());

    let mut config = kubectl_create_deployment();
    config["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    let err = apply(Some(&obj), &config, &deploy("kubectl", T3)).unwrap_err();
    assert_eq!(
        conflict(err).0,
        r#"Apply failed with 1 conflict: conflict with "kubectl-create" using apps/v1: .spec.template.spec.containers[name="nginx"].image"#
    );
    let obj = apply(Some(&obj), &config, &forced(deploy("kubectl", T3))).unwrap();
    assert_eq!(
        obj["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    let f = fields_string(&obj, "kubectl-create", "Update");
    assert!(
        !f.contains(r#""f:image":{}"#) && f.contains("f:imagePullPolicy"),
        "{f}"
    );
}
