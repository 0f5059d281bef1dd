use super::*;
use serde_json::json;

fn pod() -> Schema {
    Schema::for_kind("", "v1", "Pod").unwrap()
}

fn deployment() -> Schema {
    Schema::for_kind("apps", "v1", "Deployment").unwrap()
}

fn smp(schema: Schema, original: Value, patch: Value) -> Value {
    strategic_merge_patch(original, patch, schema).unwrap_or_else(|e| panic!("{e}"))
}

fn smp_err(schema: Schema, original: Value, patch: Value) -> StrategicMergeError {
    strategic_merge_patch(original, patch, schema).unwrap_err()
}

fn pod_with(containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
}

#[test]
fn metadata_for_built_in_kinds_comes_from_upstream_tags() {
    let meta = |g, v, k, path: &[&str]| patch_meta(g, v, k, path).unwrap();
    let c = meta(
        "apps",
        "v1",
        "Deployment",
        &["spec", "template", "spec", "containers"],
    );
    assert_eq!((c.strategy, c.merge_key), (Strategy::Merge, Some("name")));
    let p = meta(
        "apps",
        "v1",
        "Deployment",
        &["spec", "template", "spec", "containers", "ports"],
    );
    assert_eq!(
        (p.strategy, p.merge_key),
        (Strategy::Merge, Some("containerPort"))
    );
    let e = meta("", "v1", "Pod", &["spec", "initContainers", "env"]);
    assert_eq!((e.strategy, e.merge_key), (Strategy::Merge, Some("name")));
    let vm = meta(
        "batch",
        "v1",
        "CronJob",
        &[
            "spec",
            "jobTemplate",
            "spec",
            "template",
            "spec",
            "containers",
            "volumeMounts",
        ],
    );
    assert_eq!(
        (vm.strategy, vm.merge_key),
        (Strategy::Merge, Some("mountPath"))
    );
    let vol = meta("", "v1", "Pod", &["spec", "volumes"]);
    assert_eq!(
        (vol.strategy, vol.merge_key),
        (Strategy::MergeRetainKeys, Some("name"))
    );
    let tol = meta("", "v1", "Pod", &["spec", "tolerations"]);
    assert_eq!((tol.strategy, tol.merge_key), (Strategy::None, None));
    let own = meta("apps", "v1", "ReplicaSet", &["metadata", "ownerReferences"]);
    assert_eq!(
        (own.strategy, own.merge_key),
        (Strategy::Merge, Some("uid"))
    );
    let fin = meta("", "v1", "ConfigMap", &["metadata", "finalizers"]);
    assert_eq!((fin.strategy, fin.merge_key), (Strategy::Merge, None));
    let cond = meta("", "v1", "Pod", &["status", "conditions"]);
    assert_eq!(
        (cond.strategy, cond.merge_key),
        (Strategy::Merge, Some("type"))
    );
    let dcond = meta("apps", "v1", "Deployment", &["status", "conditions"]);
    assert_eq!(
        (dcond.strategy, dcond.merge_key),
        (Strategy::Merge, Some("type"))
    );
    let strat = meta("apps", "v1", "Deployment", &["spec", "strategy"]);
    assert_eq!(strat.strategy, Strategy::RetainKeys);
    let sel = meta("policy", "v1", "PodDisruptionBudget", &["spec", "selector"]);
    assert_eq!(sel.strategy, Strategy::Replace);
    let ports = meta("", "v1", "Service", &["spec", "ports"]);
    assert_eq!(
        (ports.strategy, ports.merge_key),
        (Strategy::Merge, Some("port"))
    );
    assert!(Schema::for_kind("example.com", "v1", "Widget").is_none());
    assert_eq!(pod().type_name(), Some("io.k8s.api.core.v1.Pod"));
}

#[test]
fn maps_merge_and_null_deletes() {
    let original = json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}, "spec": {"nodeSelector": {"x": "y"}}});
    let patch = json!({"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"nodeSelector": {"z": "w"}, "hostname": "h"}});
    assert_eq!(
        smp(pod(), original, patch),
        json!({"metadata": {"name": "p", "labels": {"b": "2", "c": "3"}}, "spec": {"nodeSelector": {"x": "y", "z": "w"}, "hostname": "h"}})
    );
}

#[test]
fn containers_merge_by_name() {
    let original = pod_with(json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]));
    let patch = json!({"spec": {"containers": [{"name": "b", "image": "z"}]}});
    assert_eq!(
        smp(pod(), original, patch),
        pod_with(json!([{"name": "a", "image": "x"}, {"name": "b", "image": "z"}]))
    );
}

#[test]
fn new_list_items_come_before_server_only_items() {
    let original = pod_with(json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]));
    let patch = json!({"spec": {"containers": [{"name": "c", "image": "sidecar"}]}});
    assert_eq!(
        smp(pod(), original, patch),
        pod_with(
            json!([{"name": "c", "image": "sidecar"}, {"name": "a", "image": "x"}, {"name": "b", "image": "y"}])
        )
    );
}

#[test]
fn nested_lists_merge_with_their_own_keys() {
    let original = pod_with(json!([{
        "name": "a",
        "image": "x",
        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        "ports": [{"containerPort": 80, "name": "http"}],
    }]));
    let patch = json!({"spec": {"containers": [{
        "name": "a",
        "env": [{"name": "B", "value": "3"}, {"name": "A", "$patch": "delete"}],
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
    }]}});
    assert_eq!(
        smp(pod(), original, patch),
        pod_with(json!([{
            "name": "a",
            "image": "x",
            "env": [{"name": "B", "value": "3"}],
            "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
        }]))
    );
}

#[test]
fn patch_delete_directive_removes_list_items() {
    let original = pod_with(json!([{"name": "a"}, {"name": "b"}]));
    let patch = json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}});
    assert_eq!(
        smp(pod(), original, patch),
        pod_with(json!([{"name": "b"}]))
    );
}

#[test]
fn patch_replace_directive_in_a_list_replaces_it() {
    let original = pod_with(json!([{"name": "a"}, {"name": "b"}]));
    let patch = json!({"spec": {"containers": [{"name": "c"}, {"$patch": "replace"}]}});
    assert_eq!(
        smp(pod(), original, patch),
        pod_with(json!([{"name": "c"}]))
    );
}

#[test]
fn patch_directives_on_maps() {
    let original = json!({"metadata": {"labels": {"a": "1"}, "name": "p"}});
    let patch = json!({"metadata": {"labels": {"$patch": "replace", "b": "2"}}});
    assert_eq!(
        smp(pod(), original.clone(), patch),
        json!({"metadata": {"labels": {"b": "2"}, "name": "p"}})
    );
    let patch = json!({"metadata": {"labels": {"$patch": "delete"}}});
    assert_eq!(
        smp(pod(), original.clone(), patch),
        json!({"metadata": {"labels": {}, "name": "p"}})
    );
    assert_eq!(
        smp(
            pod(),
            original.clone(),
            json!({"$patch": "replace", "x": 1})
        ),
        json!({"x": 1})
    );
    assert_eq!(
        smp(pod(), original.clone(), json!({"$patch": "delete"})),
        json!({})
    );
    assert_eq!(
        smp_err(
            pod(),
            original.clone(),
            json!({"metadata": {"$patch": "frob"}})
        )
        .to_string(),
        "unknown patch type: frob in map: map[$patch:frob]"
    );
    assert_eq!(
        smp_err(pod(), original, json!({"metadata": {"$patch": 1}})).to_string(),
        "unknown patch type: %!s(int64=1) in map: map[$patch:1]"
    );
}

#[test]
fn lists_without_strategy_are_replaced() {
    let original = json!({"spec": {"tolerations": [{"key": "a"}, {"key": "b"}], "containers": []}});
    let patch = json!({"spec": {"tolerations": [{"key": "c"}]}});
    assert_eq!(
        smp(pod(), original, patch),
        json!({"spec": {"tolerations": [{"key": "c"}], "containers": []}})
    );
}

#[test]
fn primitive_lists_with_merge_strategy_are_unioned() {
    let original = json!({"metadata": {"finalizers": ["a", "b"]}});
    let patch = json!({"metadata": {"finalizers": ["c", "a"]}});
    assert_eq!(
        smp(pod(), original, patch),
        json!({"metadata": {"finalizers": ["c", "a", "b"]}})
    );
}

#[test]
fn delete_from_primitive_list() {
    let original = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}});
    assert_eq!(
        smp(pod(), original, patch),
        json!({"metadata": {"finalizers": ["a", "c"]}})
    );
    // Upstream quirk: with no list to delete from, the deletion list is stored.
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}});
    assert_eq!(
        smp(pod(), json!({"metadata": {}}), patch),
        json!({"metadata": {"finalizers": ["b"]}})
    );
    let bad = json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["b"]}});
    assert_eq!(
        smp_err(pod(), json!({"metadata": {}}), bad),
        StrategicMergeError::BadPatchFormatForPrimitiveList
    );
}

#[test]
fn set_element_order_reorders_lists() {
    let original = pod_with(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
    let patch = json!({"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "b"}, {"name": "a"}]}});
    assert_eq!(
        smp(pod(), original.clone(), patch),
        pod_with(json!([{"name": "c"}, {"name": "b"}, {"name": "a"}]))
    );

    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "d"}, {"name": "a"}],
        "containers": [{"name": "d", "image": "new"}],
    }});
    assert_eq!(
        smp(pod(), original, patch),
        pod_with(
            json!([{"name": "b"}, {"name": "d", "image": "new"}, {"name": "a"}, {"name": "c"}])
        )
    );

    let original = json!({"metadata": {"finalizers": ["a", "b"]}});
    let patch =
        json!({"metadata": {"$setElementOrder/finalizers": ["b", "c", "a"], "finalizers": ["c"]}});
    assert_eq!(
        smp(pod(), original, patch),
        json!({"metadata": {"finalizers": ["b", "c", "a"]}})
    );
}

#[test]
fn set_element_order_must_agree_with_the_patch() {
    let original = pod_with(json!([{"name": "a"}, {"name": "b"}]));
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "a"}],
        "containers": [{"name": "b", "image": "x"}],
    }});
    assert_eq!(
        smp_err(pod(), original.clone(), patch).to_string(),
        "The order in patch list:\n[map[image:x name:b]]\n doesn't match $setElementOrder list:\n[map[name:a]]\n"
    );
    let bad = json!({"spec": {"$setElementOrderX/containers": []}});
    assert_eq!(
        smp_err(pod(), original.clone(), bad),
        StrategicMergeError::BadPatchFormatForSetElementOrderList
    );
    let bad = json!({"spec": {"$setElementOrder/containers": "x"}});
    assert_eq!(
        smp_err(pod(), original, bad).to_string(),
        "expected a []interface {}, but received a string"
    );
}

#[test]
fn retain_keys_clears_unlisted_fields() {
    let original =
        json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    assert_eq!(
        smp(deployment(), original.clone(), patch),
        json!({"spec": {"strategy": {"type": "Recreate"}}})
    );

    let patch =
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 2}}}});
    assert_eq!(
        smp_err(deployment(), original.clone(), patch),
        StrategicMergeError::BadPatchFormatForRetainKeys
    );
    let patch = json!({"spec": {"strategy": {"$retainKeys": "type"}}});
    assert_eq!(
        smp_err(deployment(), original, patch),
        StrategicMergeError::BadPatchFormatForRetainKeys
    );

    let original = json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}});
    let patch = json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/x"}}]}});
    assert_eq!(
        smp(pod(), original, patch),
        json!({"spec": {"volumes": [{"name": "v", "hostPath": {"path": "/x"}}]}})
    );
}

#[test]
fn replace_strategy_replaces_maps() {
    let pdb = Schema::for_kind("policy", "v1", "PodDisruptionBudget").unwrap();
    let original = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}}});
    let patch = json!({"spec": {"selector": {"matchExpressions": []}}});
    assert_eq!(
        smp(pdb, original, patch),
        json!({"spec": {"selector": {"matchExpressions": []}}})
    );
}

#[test]
fn owner_references_merge_by_uid_and_conditions_by_type() {
    let original = json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]},
        "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Scheduled", "status": "True"}]}});
    let patch = json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    assert_eq!(
        smp(pod(), original, patch),
        json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}, {"uid": "1", "name": "a"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Scheduled", "status": "True"}]}})
    );
}

#[test]
fn type_changes_replace_values() {
    let original = json!({"spec": {"containers": [{"name": "a"}]}, "x": {"y": 1}});
    let patch = json!({"spec": {"containers": "nope"}, "x": [1]});
    assert_eq!(
        smp(pod(), original, patch),
        json!({"spec": {"containers": "nope"}, "x": [1]})
    );
    assert_eq!(
        smp(pod(), json!({"a": 1}), json!({"a": 1.5})),
        json!({"a": 1.5})
    );
}

#[test]
fn missing_merge_keys_are_reported_as_upstream() {
    let original = pod_with(json!([{"name": "a"}]));
    let patch = json!({"spec": {"containers": [{"image": "nginx"}]}});
    let e = smp_err(pod(), original.clone(), patch);
    assert_eq!(
        e.to_string(),
        "map: map[image:nginx] does not contain declared merge key: name"
    );
    assert_eq!(e.status_code(), 500);
    let patch = json!({"spec": {"containers": [{"image": "nginx", "$patch": "delete"}]}});
    assert_eq!(
        smp_err(pod(), original.clone(), patch).to_string(),
        "map: map[$patch:delete image:nginx] does not contain declared merge key: name"
    );
    let patch = json!({"spec": {"containers": [{"name": "a", "$patch": "merge"}]}});
    assert_eq!(
        smp_err(pod(), original.clone(), patch).to_string(),
        "merging lists cannot yet be specified in the patch"
    );
    let patch = json!({"spec": {"containers": ["a"]}});
    assert_eq!(
        smp_err(pod(), original, patch).to_string(),
        "list element types are not identical: [[map[name:a]] [a]]"
    );
}

#[test]
fn lists_of_lists_are_rejected() {
    let original = json!({"metadata": {"finalizers": [["a"]]}});
    let patch = json!({"metadata": {"finalizers": [["b"]]}});
    let e = smp_err(pod(), original, patch);
    assert_eq!(e, StrategicMergeError::NoListOfLists);
    assert_eq!(e.status_code(), 422);
}

#[test]
fn unknown_schema_merges_maps_and_replaces_lists() {
    let original = json!({"spec": {"a": [1, 2], "m": {"x": 1}}});
    let patch = json!({"spec": {"a": [3], "m": {"y": 2}}});
    assert_eq!(
        smp(Schema::Unknown, original, patch),
        json!({"spec": {"a": [3], "m": {"x": 1, "y": 2}}})
    );
}

#[test]
fn non_object_inputs_are_bad_documents() {
    assert_eq!(
        strategic_merge_patch(json!([]), json!({}), pod()),
        Err(StrategicMergeError::BadJsonDoc)
    );
    assert_eq!(
        strategic_merge_patch(json!({}), json!(null), pod()),
        Err(StrategicMergeError::BadJsonDoc)
    );
    assert_eq!(
        strategic_merge_patch_for_kind(json!({}), json!({}), "example.com", "v1", "Widget"),
        Err(StrategicMergeError::Unsupported)
    );
    assert_eq!(StrategicMergeError::Unsupported.status_code(), 415);
}

#[test]
fn deployment_template_patch_like_kubectl_set_image() {
    let original = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
            {"name": "web", "image": "nginx:1.0", "ports": [{"containerPort": 80}]},
            {"name": "log", "image": "busybox"},
        ]}}},
    });
    let patch = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:2.0"}]}}}});
    let got = smp(deployment(), original, patch);
    assert_eq!(got["spec"]["replicas"], json!(3));
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"],
        json!([{"name": "web", "image": "nginx:2.0", "ports": [{"containerPort": 80}]}, {"name": "log", "image": "busybox"}])
    );
}

#[test]
fn duplicate_primitives_are_removed_like_upstream() {
    assert_eq!(
        deduplicate_scalars(vec![json!("a"), json!("b"), json!("a"), json!("c")]),
        vec![json!("a"), json!("b"), json!("c")]
    );
    assert_eq!(
        deduplicate_scalars(vec![json!(1), json!(1.0), json!(1)]),
        vec![json!(1), json!(1.0)]
    );
    assert_eq!(
        deduplicate_scalars(vec![json!("x"), json!("x"), json!("y"), json!("x")]),
        vec![json!("x"), json!("y")]
    );
}

#[test]
fn go_stable_sort_matches_a_stable_sort_for_consistent_orders() {
    let mut v: Vec<u32> = (0..100).map(|i| (i * 37) % 101).collect();
    let mut want = v.clone();
    want.sort();
    go_stable_sort(&mut v, |a, b| a < b);
    assert_eq!(v, want);
    let mut pairs: Vec<(u8, usize)> = (0..60).map(|i| ((i % 3) as u8, i)).collect();
    go_stable_sort(&mut pairs, |a, b| a.0 < b.0);
    assert!(pairs
        .windows(2)
        .all(|w| w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 < w[1].1)));
}

#[test]
fn unmatched_nulls_are_dropped() {
    assert_eq!(
        smp(pod(), json!({"a": 1}), json!({"b": null})),
        json!({"a": 1})
    );
}
