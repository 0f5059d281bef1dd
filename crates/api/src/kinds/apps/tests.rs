use crate::kinds::tests::{create, update};
use serde_json::{json, Value};

/// `kubectl create deployment web --image=nginx --dry-run=client -o json`.
fn kubectl_deployment() -> Value {
    json!({
        "kind": "Deployment", "apiVersion": "apps/v1",
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
fn kubectl_create_deployment_is_valid() {
    assert_eq!(
        create("apps", "Deployment", kubectl_deployment()),
        Vec::<String>::new()
    );
}

#[test]
fn deployment_without_selector() {
    let mut d = kubectl_deployment();
    d["spec"].as_object_mut().unwrap().remove("selector");
    assert_eq!(create("apps", "Deployment", d), vec![
        "spec.selector: Required value",
        "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
    ]);
}

#[test]
fn deployment_selector_must_match_template_labels() {
    let mut d = kubectl_deployment();
    d["spec"]["template"]["metadata"]["labels"] = json!({"app": "x"});
    assert_eq!(create("apps", "Deployment", d), vec![
        "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`",
    ]);
    let mut empty = kubectl_deployment();
    empty["spec"]["selector"] = json!({});
    assert_eq!(create("apps", "Deployment", empty), vec![
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment",
    ]);
}

#[test]
fn deployment_template_is_validated_as_a_pod_template() {
    let mut d = kubectl_deployment();
    d["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("image");
    d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    d["spec"]["replicas"] = json!(-1);
    assert_eq!(create("apps", "Deployment", d), vec![
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        "spec.template.spec.containers[0].image: Required value",
        "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
    ]);
}

#[test]
fn deployment_strategy_is_checked() {
    let mut d = kubectl_deployment();
    d["spec"]["strategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}});
    d["spec"]["minReadySeconds"] = json!(700);
    assert_eq!(create("apps", "Deployment", d), vec![
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0",
        "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds",
    ]);
    let mut recreate = kubectl_deployment();
    recreate["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {}});
    assert_eq!(create("apps", "Deployment", recreate), vec![
        "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
    ]);
    let mut percent = kubectl_deployment();
    percent["spec"]["strategy"] = json!({"rollingUpdate": {"maxUnavailable": "30"}});
    assert_eq!(create("apps", "Deployment", percent), vec![
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"30\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
    ]);
}

#[test]
fn deployment_selector_is_immutable() {
    let old = kubectl_deployment();
    let mut new = kubectl_deployment();
    new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "tier": "front"}});
    new["spec"]["template"]["metadata"]["labels"] = json!({"app": "web", "tier": "front"});
    assert_eq!(update("apps", "Deployment", new, old.clone()), vec![
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"tier\":\"front\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
    ]);
    let mut scaled = kubectl_deployment();
    scaled["spec"]["replicas"] = json!(5);
    scaled["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    assert_eq!(
        update("apps", "Deployment", scaled, old),
        Vec::<String>::new()
    );
}

#[test]
fn replica_set_rules() {
    let rs = json!({"spec": {"selector": {"matchLabels": {"app": "a"}}, "template": {"metadata": {"labels": {"app": "a"}},
        "spec": {"containers": [{"name": "a", "image": "a"}], "activeDeadlineSeconds": 5}}}});
    assert_eq!(create("apps", "ReplicaSet", rs), vec![
        "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported",
    ]);
}

#[test]
fn stateful_set_rules() {
    let sts = json!({"spec": {
        "selector": {"matchLabels": {"app": "db"}},
        "podManagementPolicy": "Random",
        "updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}},
        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db"}], "restartPolicy": "OnFailure"}}
    }});
    assert_eq!(create("apps", "StatefulSet", sts), vec![
        "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
        "spec.updateStrategy.rollingUpdate: Invalid value: apps.RollingUpdateStatefulSetStrategy{Partition:1, MaxUnavailable:(*intstr.IntOrString)(nil)}: only allowed for updateStrategy 'RollingUpdate'",
        "spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"",
    ]);
}

#[test]
fn stateful_set_updates_are_limited() {
    let old = json!({"spec": {"selector": {"matchLabels": {"app": "db"}}, "serviceName": "db",
        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres"}]}}}});
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(3);
    assert_eq!(
        update("apps", "StatefulSet", scaled, old.clone()),
        Vec::<String>::new()
    );
    let mut renamed = old.clone();
    renamed["spec"]["serviceName"] = json!("other");
    assert_eq!(update("apps", "StatefulSet", renamed, old), vec![
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
    ]);
}

#[test]
fn daemon_set_rules() {
    let ds = json!({"spec": {"selector": {"matchLabels": {"app": "agent"}},
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}},
        "template": {"metadata": {"labels": {"app": "other"}}, "spec": {"containers": [{"name": "agent", "image": "agent"}]}}}});
    assert_eq!(create("apps", "DaemonSet", ds), vec![
        "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`",
        "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0",
    ]);
    let old = json!({"spec": {"selector": {"matchLabels": {"app": "a"}},
        "template": {"metadata": {"labels": {"app": "a", "b": "c"}}, "spec": {"containers": [{"name": "a", "image": "a"}]}}}});
    let mut new = old.clone();
    new["spec"]["selector"] = json!({"matchLabels": {"app": "a", "b": "c"}});
    assert_eq!(update("apps", "DaemonSet", new, old), vec![
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"a\", \"b\":\"c\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
    ]);
}

#[test]
fn replication_controller_rules() {
    let rc = json!({"spec": {"selector": {"app": "a"}, "template": {"metadata": {"labels": {"app": "b"}},
        "spec": {"containers": [{"name": "a", "image": "a"}]}}}});
    assert_eq!(create("", "ReplicationController", rc), vec![
        "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"b\"}: `selector` does not match template `labels`",
    ]);
    assert_eq!(
        create("", "ReplicationController", json!({"spec": {}})),
        vec![
            "spec.selector: Required value",
            "spec.template: Required value",
        ]
    );
}
