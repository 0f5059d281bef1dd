use super::*;
use serde_json::json;

fn defaulted(group: &str, version: &str, kind: &str, mut obj: Value) -> Value {
    apply_defaults(group, version, kind, &mut obj);
    obj
}

/// The pod template every workload gets for `--image=nginx`.
fn nginx_template_spec(name: &str) -> Value {
    json!({
        "containers": [{
            "name": name,
            "image": "nginx",
            "resources": {},
            "imagePullPolicy": "Always",
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File"
        }],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "securityContext": {},
        "schedulerName": "default-scheduler"
    })
}

#[test]
fn kubectl_create_deployment_gets_the_defaults_a_cluster_shows() {
    // `kubectl create deployment web --image=nginx --dry-run=client -o json`
    let d = defaulted(
        "apps",
        "v1",
        "Deployment",
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
        }),
    );
    assert_eq!(
        d["spec"],
        json!({
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                "spec": nginx_template_spec("nginx")
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600
        })
    );
}

#[test]
fn deployment_replicas_default_to_one_and_recreate_gets_no_rolling_update() {
    let d = defaulted(
        "apps",
        "v1",
        "Deployment",
        json!({"spec": {"strategy": {"type": "Recreate"}}}),
    );
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn kubectl_run_pod_gets_pod_only_defaults() {
    let p = defaulted(
        "",
        "v1",
        "Pod",
        json!({
            "metadata": {"name": "p", "labels": {"run": "p"}},
            "spec": {
                "containers": [{"name": "p", "image": "nginx:1.27", "resources": {}}],
                "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"
            }
        }),
    );
    assert_eq!(
        p["spec"],
        json!({
            "containers": [{
                "name": "p", "image": "nginx:1.27", "resources": {},
                "imagePullPolicy": "IfNotPresent",
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File"
            }],
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": true,
            "terminationGracePeriodSeconds": 30,
            "securityContext": {},
            "schedulerName": "default-scheduler"
        })
    );
}

#[test]
fn templates_do_not_get_enable_service_links() {
    let d = defaulted(
        "apps",
        "v1",
        "ReplicaSet",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a"}]}}}}),
    );
    assert!(d["spec"]["template"]["spec"]
        .get("enableServiceLinks")
        .is_none());
    assert_eq!(d["spec"]["replicas"], 1);
}

#[test]
fn image_pull_policy_follows_the_tag() {
    for (image, policy) in [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("docker.io/library/nginx", "Always"),
        ("localhost:5000/app", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("registry:5000/team/app:v1", "IfNotPresent"),
        (
            "nginx@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "IfNotPresent",
        ),
        (
            "nginx:latest@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "Always",
        ),
        ("Nginx", "IfNotPresent"),
        ("", "IfNotPresent"),
    ] {
        let p = defaulted(
            "",
            "v1",
            "Pod",
            json!({"spec": {"containers": [{"name": "a", "image": image}]}}),
        );
        assert_eq!(
            p["spec"]["containers"][0]["imagePullPolicy"], policy,
            "{image}"
        );
    }
    let p = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {"containers": [{"name": "a", "image": "nginx", "imagePullPolicy": "Never"}]}}),
    );
    assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Never");
}

#[test]
fn pod_requests_default_to_limits_and_quantities_are_canonical() {
    let p = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {"containers": [{
            "name": "a", "image": "a",
            "resources": {"limits": {"cpu": "1000m", "memory": "1024Mi"}, "requests": {"cpu": "0.1"}}
        }]}}),
    );
    assert_eq!(
        p["spec"]["containers"][0]["resources"],
        json!({
            "limits": {"cpu": "1", "memory": "1Gi"},
            "requests": {"cpu": "100m", "memory": "1Gi"}
        })
    );
    // Templates keep requests as given.
    let d = defaulted(
        "apps",
        "v1",
        "Deployment",
        json!({"spec": {"template": {"spec": {"containers": [{
            "name": "a", "image": "a", "resources": {"limits": {"cpu": "2"}}
        }]}}}}),
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "2"}})
    );
}

#[test]
fn quantities_round_up_to_millis() {
    let p = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {"containers": [{
            "name": "a", "image": "a", "resources": {"requests": {"cpu": "0.0001", "memory": 128}}
        }]}}),
    );
    assert_eq!(
        p["spec"]["containers"][0]["resources"]["requests"],
        json!({"cpu": "1m", "memory": "128"})
    );
}

#[test]
fn probes_ports_env_and_lifecycle_get_defaults() {
    let p = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {"containers": [{
            "name": "a", "image": "a",
            "ports": [{"containerPort": 80}],
            "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "livenessProbe": {"httpGet": {"port": 80}},
            "readinessProbe": {"grpc": {"port": 9000}, "periodSeconds": 5},
            "lifecycle": {"preStop": {"httpGet": {"port": "http"}}}
        }]}}),
    );
    let c = &p["spec"]["containers"][0];
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
    assert_eq!(
        c["livenessProbe"],
        json!({
            "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
            "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3
        })
    );
    assert_eq!(c["readinessProbe"]["periodSeconds"], 5);
    assert_eq!(
        c["readinessProbe"]["grpc"],
        json!({"port": 9000, "service": ""})
    );
    assert_eq!(
        c["lifecycle"]["preStop"]["httpGet"],
        json!({"port": "http", "path": "/", "scheme": "HTTP"})
    );
}

#[test]
fn volumes_get_their_source_defaults() {
    let p = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {"containers": [{"name": "a", "image": "a"}], "volumes": [
            {"name": "scratch"},
            {"name": "cm", "configMap": {"name": "c"}},
            {"name": "s", "secret": {"secretName": "s", "defaultMode": 256}},
            {"name": "h", "hostPath": {"path": "/tmp"}},
            {"name": "d", "downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}},
            {"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
            {"name": "e", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}}
        ]}}),
    );
    let v = &p["spec"]["volumes"];
    assert_eq!(v[0], json!({"name": "scratch", "emptyDir": {}}));
    assert_eq!(v[1]["configMap"], json!({"name": "c", "defaultMode": 420}));
    assert_eq!(
        v[2]["secret"],
        json!({"secretName": "s", "defaultMode": 256})
    );
    assert_eq!(v[3]["hostPath"], json!({"path": "/tmp", "type": ""}));
    assert_eq!(v[4]["downwardAPI"]["defaultMode"], 420);
    assert_eq!(
        v[4]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"],
        "v1"
    );
    assert_eq!(v[5]["projected"]["defaultMode"], 420);
    assert_eq!(
        v[5]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
        3600
    );
    assert_eq!(
        v[6]["ephemeral"]["volumeClaimTemplate"]["spec"]["volumeMode"],
        "Filesystem"
    );
}

#[test]
fn host_network_pods_default_host_ports() {
    let p = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {"hostNetwork": true, "containers": [{"name": "a", "image": "a", "ports": [{"containerPort": 8080}]}]}}),
    );
    assert_eq!(p["spec"]["containers"][0]["ports"][0]["hostPort"], 8080);
}

#[test]
fn stateful_set_defaults() {
    let s = defaulted(
        "apps",
        "v1",
        "StatefulSet",
        json!({"spec": {
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        }}),
    );
    let spec = &s["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        spec["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(
        spec["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(
        spec["volumeClaimTemplates"][0],
        json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "creationTimestamp": null},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"},
            "status": {"phase": "Pending"}
        })
    );
}

#[test]
fn stateful_set_on_delete_gets_no_partition() {
    let s = defaulted(
        "apps",
        "v1",
        "StatefulSet",
        json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}),
    );
    assert_eq!(s["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
}

#[test]
fn daemon_set_defaults() {
    let d = defaulted("apps", "v1", "DaemonSet", json!({"spec": {}}));
    assert_eq!(
        d["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
}

#[test]
fn kubectl_create_job_gets_job_defaults() {
    let j = defaulted(
        "batch",
        "v1",
        "Job",
        json!({
            "kind": "Job", "apiVersion": "batch/v1",
            "metadata": {"name": "j", "creationTimestamp": null},
            "spec": {"template": {"metadata": {"creationTimestamp": null}, "spec": {
                "containers": [{"name": "j", "image": "busybox", "resources": {}}], "restartPolicy": "Never"
            }}},
            "status": {}
        }),
    );
    let spec = &j["spec"];
    assert_eq!(spec["completions"], 1);
    assert_eq!(spec["parallelism"], 1);
    assert_eq!(spec["backoffLimit"], 6);
    assert_eq!(spec["completionMode"], "NonIndexed");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["manualSelector"], false);
    assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
    assert_eq!(
        spec["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "Always"
    );
}

#[test]
fn job_parallelism_alone_leaves_completions_unset() {
    let j = defaulted(
        "batch",
        "v1",
        "Job",
        json!({"spec": {"parallelism": 3, "backoffLimitPerIndex": 1,
        "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
        "template": {"metadata": {"labels": {"a": "b"}}}}}),
    );
    assert!(j["spec"].get("completions").is_none());
    assert_eq!(j["spec"]["backoffLimit"], 2147483647);
    assert_eq!(j["spec"]["podReplacementPolicy"], "Failed");
    assert_eq!(
        j["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"],
        "True"
    );
    assert_eq!(j["metadata"]["labels"], json!({"a": "b"}));
}

#[test]
fn kubectl_create_cronjob_gets_cronjob_defaults() {
    let c = defaulted(
        "batch",
        "v1",
        "CronJob",
        json!({
            "metadata": {"name": "c"},
            "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"metadata": {"name": "c", "creationTimestamp": null}, "spec": {"template": {
                "metadata": {"creationTimestamp": null},
                "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {}}], "restartPolicy": "OnFailure"}
            }}}}
        }),
    );
    let spec = &c["spec"];
    assert_eq!(spec["concurrencyPolicy"], "Allow");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["successfulJobsHistoryLimit"], 3);
    assert_eq!(spec["failedJobsHistoryLimit"], 1);
    // The job template's own spec is not defaulted like a Job's.
    assert!(spec["jobTemplate"]["spec"].get("backoffLimit").is_none());
    assert_eq!(
        spec["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
        "ClusterFirst"
    );
}

#[test]
fn replication_controller_takes_selector_and_labels_from_its_template() {
    let rc = defaulted(
        "",
        "v1",
        "ReplicationController",
        json!({"metadata": {"name": "rc"}, "spec": {
            "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "a", "image": "a"}]}}
        }}),
    );
    assert_eq!(rc["spec"]["selector"], json!({"app": "x"}));
    assert_eq!(rc["metadata"]["labels"], json!({"app": "x"}));
    assert_eq!(rc["spec"]["replicas"], 1);
    let bare = defaulted("", "v1", "ReplicationController", json!({"spec": {}}));
    assert!(bare["spec"].get("template").is_none());
}

#[test]
fn secret_namespace_pv_and_pvc_defaults() {
    assert_eq!(
        defaulted("", "v1", "Secret", json!({"data": {}}))["type"],
        "Opaque"
    );
    let s = defaulted(
        "",
        "v1",
        "Secret",
        json!({"data": {"a": "eA=="}, "stringData": {"b": "hello", "a": "yz"}}),
    );
    assert_eq!(
        s,
        json!({"type": "Opaque", "data": {"a": "eXo=", "b": "aGVsbG8="}})
    );
    let ns = defaulted(
        "",
        "v1",
        "Namespace",
        json!({"metadata": {"name": "team-a"}}),
    );
    assert_eq!(
        ns["metadata"]["labels"],
        json!({"kubernetes.io/metadata.name": "team-a"})
    );
    let pvc = defaulted(
        "",
        "v1",
        "PersistentVolumeClaim",
        json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1024Mi"}}}}),
    );
    assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "1Gi");
    assert_eq!(pvc["status"]["phase"], "Pending");
    let pv = defaulted(
        "",
        "v1",
        "PersistentVolume",
        json!({"spec": {"capacity": {"storage": "1Gi"}, "hostPath": {"path": "/data"}}}),
    );
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(pv["spec"]["volumeMode"], "Filesystem");
    assert_eq!(pv["spec"]["hostPath"]["type"], "");
    assert_eq!(pv["status"]["phase"], "Pending");
}

#[test]
fn hpa_v2_defaults_min_replicas_metrics_and_behavior() {
    let h = defaulted(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        json!({"spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 5,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}
        }}),
    );
    assert_eq!(h["spec"]["minReplicas"], 1);
    assert_eq!(
        h["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
    );
    assert_eq!(
        h["spec"]["behavior"]["scaleDown"],
        json!({
            "stabilizationWindowSeconds": 60, "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]
        })
    );
    assert_eq!(
        h["spec"]["behavior"]["scaleUp"]["policies"][0],
        json!({"type": "Pods", "value": 4, "periodSeconds": 15})
    );
}

#[test]
fn networking_rbac_storage_and_scheduling_defaults() {
    let np = defaulted(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}}),
    );
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
    let rb = defaulted(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        json!({
            "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "bob"}, {"kind": "ServiceAccount", "name": "default", "namespace": "x"}]
        }),
    );
    assert_eq!(rb["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(rb["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
    assert!(rb["subjects"][1].get("apiGroup").is_none());
    let sc = defaulted(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        json!({"provisioner": "rancher.io/local-path"}),
    );
    assert_eq!(sc["reclaimPolicy"], "Delete");
    assert_eq!(sc["volumeBindingMode"], "Immediate");
    let pc = defaulted(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        json!({"value": 10}),
    );
    assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");
    let es = defaulted(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        json!({"ports": [{"port": 80}]}),
    );
    assert_eq!(
        es["ports"][0],
        json!({"port": 80, "name": "", "protocol": "TCP"})
    );
}

#[test]
fn unknown_kinds_and_non_objects_are_left_alone() {
    let before = json!({"spec": {"x": 1}});
    assert_eq!(
        defaulted("example.com", "v1", "Widget", before.clone()),
        before
    );
    assert_eq!(
        defaulted("apps", "v1", "Deployment", json!("nope")),
        json!("nope")
    );
    // A wrongly-typed spec is left for validation to reject.
    assert_eq!(
        defaulted("apps", "v1", "Deployment", json!({"spec": 3})),
        json!({"spec": 3})
    );
}
