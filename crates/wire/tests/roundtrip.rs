//! JSON -> protobuf -> JSON gives the same object, for objects in the form Go
//! prints them (what upstream's API server serves: omitempty zeros left out,
//! value structs and zero counters without omitempty printed).

use serde_json::{json, Value};

#[track_caller]
fn round_trip(obj: Value) {
    let bytes = wire::encode(&obj).unwrap_or_else(|e| panic!("encode {}: {e}", obj["kind"]));
    assert!(bytes.starts_with(b"k8s\0"));
    let back = wire::decode(&bytes).unwrap_or_else(|e| panic!("decode {}: {e}", obj["kind"]));
    if let Some(diff) = first_difference(&obj, &back, String::new()) {
        panic!("{} changed in a round trip: {diff}", obj["kind"]);
    }
    // Encoding is stable: the decoded object encodes to a message that decodes the same.
    let again = wire::decode(&wire::encode(&back).unwrap()).unwrap();
    assert_eq!(again, back);
}

fn first_difference(a: &Value, b: &Value, path: String) -> Option<String> {
    let mut all = Vec::new();
    differences(a, b, path, &mut all);
    (!all.is_empty()).then(|| all.join("; "))
}

fn differences(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    None => out.push(format!("{path}.{k} lost (was {v})")),
                    Some(w) => differences(v, w, format!("{path}.{k}"), out),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{path}.{k} appeared ({})", y[k]));
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                differences(v, w, format!("{path}[{i}]"), out);
            }
        }
        _ if a == b => {}
        _ => out.push(format!("{path}: {a} became {b}")),
    }
}

fn metadata(name: &str) -> Value {
    json!({
        "name": name,
        "namespace": "default",
        "uid": "7f0c3a52-6c1e-4c55-9a43-1f2d3c4b5a69",
        "resourceVersion": "4711",
        "generation": 2,
        "creationTimestamp": "2024-01-02T03:04:05Z",
        "labels": {"app": "web", "tier": "frontend"},
        "annotations": {"example.com/note": "hello"},
    })
}

fn pod_template() -> Value {
    json!({
        "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
        "spec": {
            "containers": [{
                "name": "web",
                "image": "nginx:1.27",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent"
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "securityContext": {},
            "schedulerName": "default-scheduler"
        }
    })
}

#[test]
fn pod_with_probes_resources_env_volumes_and_status() {
    let mut meta = metadata("web-7d4b9c-x2x9z");
    meta["ownerReferences"] = json!([{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c",
        "uid": "0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6", "controller": true, "blockOwnerDeletion": true
    }]);
    meta["finalizers"] = json!(["example.com/keep"]);
    meta["managedFields"] = json!([{
        "manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
        "time": "2024-01-02T03:04:05Z", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {}}}}
    }]);
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "containers": [{
                "name": "web",
                "image": "nginx:1.27",
                "command": ["nginx"],
                "args": ["-g", "daemon off;"],
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                "env": [
                    {"name": "PLAIN", "value": "1"},
                    {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "b", "optional": true}}},
                    {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "c"}}},
                    {"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                    {"name": "LIMIT", "valueFrom": {"resourceFieldRef": {"containerName": "web", "resource": "limits.memory", "divisor": "1Mi"}}}
                ],
                "envFrom": [{"configMapRef": {"name": "cfg"}}, {"prefix": "S_", "secretRef": {"name": "s", "optional": false}}],
                "resources": {
                    "limits": {"cpu": "500m", "memory": "128Mi", "nvidia.com/gpu": "1"},
                    "requests": {"cpu": "250m", "memory": "64Mi"}
                },
                "livenessProbe": {
                    "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP", "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
                    "initialDelaySeconds": 3, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3
                },
                "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 5},
                "startupProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "terminationGracePeriodSeconds": 0},
                "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
                "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true, "subPath": "x"}],
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
                "securityContext": {
                    "runAsUser": 0, "runAsNonRoot": false, "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                    "seccompProfile": {"type": "RuntimeDefault"}
                }
            }],
            "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "true"], "resources": {}, "restartPolicy": "Always"}],
            "volumes": [
                {"name": "data", "configMap": {"name": "cfg", "defaultMode": 420, "items": [{"key": "a", "path": "a.txt"}]}},
                {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
                {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
                {"name": "claim", "persistentVolumeClaim": {"claimName": "data-0"}},
                {"name": "proj", "projected": {"sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                ], "defaultMode": 420}}
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "activeDeadlineSeconds": 600,
            "dnsPolicy": "ClusterFirst",
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "automountServiceAccountToken": false,
            "nodeName": "node-1",
            "hostNetwork": true,
            "securityContext": {"fsGroup": 2000, "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]},
            "affinity": {
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]}]}
                ]}},
                "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                    "weight": 100,
                    "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}
                }]}
            },
            "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"operator": "Exists"}
            ],
            "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["web.local"]}],
            "priorityClassName": "high",
            "priority": 0,
            "dnsConfig": {"nameservers": ["10.43.0.10"], "options": [{"name": "ndots", "value": "5"}]},
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority",
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]}}]
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2024-01-02T03:04:10Z"},
                {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2024-01-02T03:04:05Z"}
            ],
            "hostIP": "192.168.1.10",
            "hostIPs": [{"ip": "192.168.1.10"}],
            "podIP": "10.42.0.5",
            "podIPs": [{"ip": "10.42.0.5"}, {"ip": "fd00::5"}],
            "startTime": "2024-01-02T03:04:05Z",
            "containerStatuses": [{
                "name": "web",
                "state": {"running": {"startedAt": "2024-01-02T03:04:07Z"}},
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": "2024-01-02T03:00:00Z", "finishedAt": "2024-01-02T03:04:06Z", "containerID": "containerd://old"}},
                "ready": true,
                "restartCount": 2,
                "image": "docker.io/library/nginx:1.27",
                "imageID": "docker.io/library/nginx@sha256:0123abcd",
                "containerID": "containerd://abc",
                "started": true
            }],
            "qosClass": "Burstable"
        }
    }));
}

#[test]
fn deployment_with_int_or_string_rollout_and_status() {
    round_trip(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata("web"),
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": pod_template(),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600
        },
        "status": {
            "observedGeneration": 2,
            "replicas": 3,
            "updatedReplicas": 3,
            "readyReplicas": 3,
            "availableReplicas": 3,
            "conditions": [{
                "type": "Available", "status": "True",
                "lastUpdateTime": "2024-01-02T03:05:00Z", "lastTransitionTime": "2024-01-02T03:05:00Z",
                "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."
            }]
        }
    }));
}

#[test]
fn deployment_scaled_to_zero_keeps_the_explicit_zero() {
    round_trip(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "idle", "namespace": "default", "creationTimestamp": null},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "idle"}}, "template": pod_template(), "strategy": {}},
        "status": {}
    }));
}

#[test]
fn service_with_string_and_numeric_target_ports() {
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata("web"),
        "spec": {
            "ports": [
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http", "nodePort": 30080},
                {"name": "metrics", "protocol": "TCP", "appProtocol": "http", "port": 9090, "targetPort": 9091, "nodePort": 30091}
            ],
            "selector": {"app": "web"},
            "clusterIP": "10.43.12.34",
            "clusterIPs": ["10.43.12.34"],
            "type": "NodePort",
            "sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
            "externalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster"
        },
        "status": {"loadBalancer": {}}
    }));
}

#[test]
fn secret_with_binary_data() {
    let all_bytes: Vec<u8> = (0..=255).collect();
    use base64::Engine as _;
    let binary = base64::engine::general_purpose::STANDARD.encode(&all_bytes);
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata("creds"),
        "immutable": true,
        "data": {"binary": binary, "password": "aHVudGVyMg==", "tls.crt": "LS0tLS1CRUdJTg=="},
        "type": "kubernetes.io/tls"
    }));
}

#[test]
fn configmap_with_data_and_binary_data() {
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata("cfg"),
        "data": {"a": "b", "config.yaml": "key: value\nlist:\n- 1\n", "unicode": "grüße ✓"},
        "binaryData": {"blob": "AAECAwQ="}
    }));
}

#[test]
fn namespace() {
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "demo", "uid": "a-b-c", "resourceVersion": "1", "creationTimestamp": "2024-01-02T03:04:05Z", "labels": {"kubernetes.io/metadata.name": "demo"}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"}
    }));
}

#[test]
fn role_and_role_binding() {
    round_trip(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata("reader"),
        "rules": [
            {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods", "pods/log"]},
            {"verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["web"]}
        ]
    }));
    round_trip(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata("read-pods"),
        "subjects": [
            {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "jane"},
            {"kind": "ServiceAccount", "name": "default", "namespace": "default"}
        ],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}
    }));
    round_trip(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "aggregate", "creationTimestamp": null},
        "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/version"]}],
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"rbac.example.com/aggregate": "true"}}]}
    }));
}

#[test]
fn job_and_cron_job() {
    let mut template = pod_template();
    template["spec"]["restartPolicy"] = json!("Never");
    round_trip(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata("pi"),
        "spec": {
            "parallelism": 1, "completions": 1, "backoffLimit": 6, "activeDeadlineSeconds": 100,
            "ttlSecondsAfterFinished": 0,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}},
            "manualSelector": false,
            "template": template,
            "completionMode": "NonIndexed",
            "suspend": false,
            "podReplacementPolicy": "TerminatedOrFailed",
            "podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"containerName": "web", "operator": "In", "values": [42]}}]}
        },
        "status": {
            "conditions": [{"type": "Complete", "status": "True", "lastProbeTime": "2024-01-02T03:06:00Z", "lastTransitionTime": "2024-01-02T03:06:00Z"}],
            "startTime": "2024-01-02T03:04:05Z",
            "completionTime": "2024-01-02T03:06:00Z",
            "succeeded": 1,
            "ready": 0,
            "terminating": 0,
            "uncountedTerminatedPods": {}
        }
    }));
    round_trip(json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata("tick"),
        "spec": {
            "schedule": "*/5 * * * *",
            "timeZone": "Etc/UTC",
            "startingDeadlineSeconds": 30,
            "concurrencyPolicy": "Forbid",
            "suspend": false,
            "jobTemplate": {"metadata": {"creationTimestamp": null}, "spec": {"template": template}},
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 1
        },
        "status": {"active": [{"kind": "Job", "namespace": "default", "name": "tick-123", "uid": "u", "apiVersion": "batch/v1", "resourceVersion": "9"}], "lastScheduleTime": "2024-01-02T03:05:00Z"}
    }));
}

#[test]
fn horizontal_pod_autoscaler_v2() {
    round_trip(json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata("web"),
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                {"type": "Pods", "pods": {"metric": {"name": "rps", "selector": {"matchLabels": {"a": "b"}}}, "target": {"type": "AverageValue", "averageValue": "1k"}}},
                {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": "500m"}}}
            ],
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]},
                "scaleDown": {"stabilizationWindowSeconds": 300, "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
            }
        },
        "status": {
            "observedGeneration": 1,
            "lastScaleTime": "2024-01-02T03:04:05Z",
            "currentReplicas": 2,
            "desiredReplicas": 3,
            "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageValue": "120m", "averageUtilization": 48}}}],
            "conditions": [{"type": "AbleToScale", "status": "True", "lastTransitionTime": "2024-01-02T03:04:05Z", "reason": "ReadyForNewScale", "message": "ok"}]
        }
    }));
}

#[test]
fn ingress_with_inline_rule_values() {
    round_trip(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata("web"),
        "spec": {
            "ingressClassName": "traefik",
            "defaultBackend": {"resource": {"apiGroup": "example.com", "kind": "Bucket", "name": "static"}},
            "tls": [{"hosts": ["web.example.com"], "secretName": "web-tls"}],
            "rules": [
                {"host": "web.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                    {"path": "/api", "pathType": "Exact", "backend": {"service": {"name": "api", "port": {"name": "http"}}}}
                ]}},
                {"host": "*.example.com"}
            ]
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.10", "ports": [{"port": 443, "protocol": "TCP"}]}]}}
    }));
}

#[test]
fn pod_disruption_budget() {
    round_trip(json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata("web"),
        "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}, "unhealthyPodEvictionPolicy": "AlwaysAllow"},
        "status": {
            "observedGeneration": 2,
            "disruptedPods": {"web-1": "2024-01-02T03:04:05Z"},
            "disruptionsAllowed": 1,
            "currentHealthy": 3,
            "desiredHealthy": 2,
            "expectedPods": 3,
            "conditions": [{"type": "DisruptionAllowed", "status": "True", "observedGeneration": 2, "lastTransitionTime": "2024-01-02T03:04:05Z", "reason": "SufficientPods", "message": "ok"}]
        }
    }));
    round_trip(json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "n", "namespace": "default", "creationTimestamp": null},
        "spec": {"maxUnavailable": 1},
        // Status counters have no omitempty: Go prints their zeros.
        "status": {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}
    }));
}

#[test]
fn lease_with_micro_times() {
    round_trip(json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "node-1", "namespace": "kube-node-lease", "resourceVersion": "77", "creationTimestamp": null},
        "spec": {
            "holderIdentity": "node-1",
            "leaseDurationSeconds": 40,
            "acquireTime": "2024-01-02T03:04:05.123456Z",
            "renewTime": "2024-01-02T03:05:45.000001Z",
            "leaseTransitions": 0
        }
    }));
}

#[test]
fn events_core_and_events_k8s_io() {
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "web.17a", "namespace": "default", "creationTimestamp": "2024-01-02T03:04:05Z"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "u", "apiVersion": "v1", "resourceVersion": "1", "fieldPath": "spec.containers{web}"},
        "reason": "Pulled",
        "message": "Successfully pulled image",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2024-01-02T03:04:05Z",
        "lastTimestamp": "2024-01-02T03:04:06Z",
        "count": 2,
        "type": "Normal",
        "eventTime": null,
        "reportingComponent": "kubelet",
        "reportingInstance": "node-1"
    }));
    round_trip(json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "web.17b", "namespace": "default", "creationTimestamp": null},
        "eventTime": "2024-01-02T03:04:05.654321Z",
        "series": {"count": 3, "lastObservedTime": "2024-01-02T03:09:05.000000Z"},
        "reportingController": "example.com/controller",
        "reportingInstance": "controller-0",
        "action": "Scale",
        "reason": "Scaled",
        "regarding": {"kind": "Deployment", "namespace": "default", "name": "web", "apiVersion": "apps/v1"},
        "note": "scaled to 3",
        "type": "Normal",
        // Go prints these value fields of events.k8s.io/v1 Event even when unset.
        "deprecatedSource": {},
        "deprecatedFirstTimestamp": null,
        "deprecatedLastTimestamp": null
    }));
}

#[test]
fn status_and_lists() {
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "message": "configmaps \"missing\" not found",
        "reason": "NotFound",
        "details": {"name": "missing", "kind": "configmaps", "causes": [{"reason": "FieldValueRequired", "message": "Required value", "field": "metadata.name"}], "retryAfterSeconds": 1},
        "code": 404
    }));
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "ConfigMapList",
        "metadata": {"resourceVersion": "100", "continue": "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ", "remainingItemCount": 7},
        "items": [
            {"metadata": metadata("a"), "data": {"k": "v"}},
            {"metadata": {"name": "b", "namespace": "default", "creationTimestamp": null}, "binaryData": {"x": "AA=="}}
        ]
    }));
    // An empty typed list: Go prints its nil items as null.
    round_trip(
        json!({"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {"resourceVersion": "5"}, "items": null}),
    );
    round_trip(json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "metadata": {"creationTimestamp": null},
        "spec": {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}, "user": "jane", "groups": ["dev"], "extra": {"scopes": ["a", "b"]}, "uid": "1"},
        "status": {"allowed": true}
    }));
    round_trip(json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "metadata": {"name": "default", "namespace": "default", "creationTimestamp": null},
        "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600, "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "u-1"}},
        "status": {"token": "eyJhbGciOi", "expirationTimestamp": "2024-01-02T04:04:05Z"}
    }));
}

#[test]
fn certificate_signing_request_with_bytes_and_extra() {
    round_trip(json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": "node-csr-1", "creationTimestamp": null},
        "spec": {
            "request": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K",
            "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
            "expirationSeconds": 86400,
            "usages": ["digital signature", "client auth"],
            "username": "system:bootstrap:abcdef",
            "groups": ["system:bootstrappers"],
            "extra": {"example.com/team": ["a"]}
        },
        "status": {"conditions": [{"type": "Approved", "status": "True", "reason": "AutoApproved", "lastUpdateTime": "2024-01-02T03:04:05Z", "lastTransitionTime": "2024-01-02T03:04:05Z"}], "certificate": "Y2VydA=="}
    }));
}

#[test]
fn storage_and_persistent_volumes_with_inline_sources() {
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "pv-1", "creationTimestamp": null},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "hostPath": {"path": "/var/lib/krate/pv-1", "type": "DirectoryOrCreate"},
            "accessModes": ["ReadWriteOnce"],
            "claimRef": {"kind": "PersistentVolumeClaim", "namespace": "default", "name": "data-0"},
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": "local-path",
            "volumeMode": "Filesystem",
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-1"]}]}]}}
        },
        "status": {"phase": "Bound", "lastPhaseTransitionTime": "2024-01-02T03:04:05Z"}
    }));
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata("data-0"),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}, "storageClassName": "local-path", "volumeMode": "Filesystem", "volumeName": "pv-1"},
        "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"}}
    }));
    round_trip(json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "local-path", "creationTimestamp": null, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path",
        "parameters": {"a": "b"},
        "reclaimPolicy": "Delete",
        "allowVolumeExpansion": true,
        "volumeBindingMode": "WaitForFirstConsumer"
    }));
}

#[test]
fn stateful_set_daemon_set_and_controller_revision() {
    round_trip(json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata("db"),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": pod_template(),
            // Nested objects carry no apiVersion/kind in protobuf.
            "volumeClaimTemplates": [{
                "metadata": {"name": "data", "creationTimestamp": null},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"},
                "status": {"phase": "Pending"}
            }],
            "serviceName": "db",
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "revisionHistoryLimit": 10,
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}
        },
        "status": {"replicas": 1, "readyReplicas": 1, "currentReplicas": 1, "updatedReplicas": 1, "currentRevision": "db-7", "updateRevision": "db-7", "collisionCount": 0, "availableReplicas": 1}
    }));
    round_trip(json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": metadata("agent"),
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": pod_template(), "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}, "revisionHistoryLimit": 10},
        "status": {"currentNumberScheduled": 1, "numberMisscheduled": 1, "desiredNumberScheduled": 2, "numberReady": 1, "observedGeneration": 1}
    }));
    round_trip(json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": metadata("db-7"),
        "data": {"spec": {"template": {"$patch": "replace", "spec": {"containers": [{"name": "db"}]}}}},
        "revision": 7
    }));
}

#[test]
fn network_policy_endpoint_slice_and_webhook_configuration() {
    round_trip(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata("deny"),
        "spec": {
            "podSelector": {},
            "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}, {"namespaceSelector": {"matchLabels": {"team": "a"}}}], "ports": [{"protocol": "TCP", "port": 8080, "endPort": 8090}, {"port": "http"}]}],
            "policyTypes": ["Ingress", "Egress"]
        }
    }));
    round_trip(json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": metadata("web-abc"),
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.42.0.5"], "conditions": {"ready": true, "serving": true, "terminating": false}, "targetRef": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "u"}, "nodeName": "node-1"}],
        "ports": [{"name": "http", "protocol": "TCP", "port": 80}]
    }));
    round_trip(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "policy", "creationTimestamp": null},
        "webhooks": [{
            "name": "check.example.com",
            "clientConfig": {"service": {"namespace": "policy", "name": "webhook", "path": "/validate", "port": 443}, "caBundle": "Y2E="},
            "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments"], "scope": "Namespaced"}],
            "failurePolicy": "Fail",
            "matchPolicy": "Equivalent",
            "namespaceSelector": {},
            "objectSelector": {},
            "sideEffects": "None",
            "timeoutSeconds": 10,
            "admissionReviewVersions": ["v1"],
            "matchConditions": [{"name": "not-system", "expression": "!request.userInfo.username.startsWith('system:')"}]
        }]
    }));
}

#[test]
fn custom_resource_definition_with_schema_unions() {
    round_trip(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com", "generation": 1, "creationTimestamp": "2024-01-02T03:04:05Z"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "widgets", "singular": "widget", "shortNames": ["wd"], "kind": "Widget", "listKind": "WidgetList", "categories": ["all"]},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["size"],
                            "properties": {
                                "size": {"type": "integer", "minimum": 1, "maximum": 10.5, "default": 3},
                                "mode": {"type": "string", "enum": ["fast", "slow", null], "nullable": true},
                                "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                "free": {"type": "object", "additionalProperties": false},
                                "tuple": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
                                "embedded": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true},
                                "ref": {"$ref": "#/definitions/x", "description": "d", "example": {"a": [1, 2]}}
                            },
                            "x-kubernetes-validations": [{"rule": "self.size <= 10", "message": "too big", "fieldPath": ".size", "reason": "FieldValueInvalid"}]
                        }
                    },
                    "dependencies": {"a": ["b", "c"], "d": {"required": ["e"]}}
                }},
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}},
                "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                "selectableFields": [{"jsonPath": ".spec.mode"}]
            }],
            "conversion": {"strategy": "None"}
        },
        "status": {
            "conditions": [{"type": "Established", "status": "True", "lastTransitionTime": "2024-01-02T03:04:05Z", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}],
            "acceptedNames": {"plural": "widgets", "kind": "Widget"},
            "storedVersions": ["v1"]
        }
    }));
}

#[test]
fn api_service_and_discovery_lists() {
    round_trip(json!({
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": "v1beta1.metrics.k8s.io", "creationTimestamp": "2024-01-02T03:04:05Z"},
        "spec": {"service": {"namespace": "kube-system", "name": "metrics-server", "port": 443}, "group": "metrics.k8s.io", "version": "v1beta1", "insecureSkipTLSVerify": true, "groupPriorityMinimum": 100, "versionPriority": 100},
        "status": {"conditions": [{"type": "Available", "status": "True", "lastTransitionTime": "2024-01-02T03:04:05Z", "reason": "Passed", "message": "all checks passed"}]}
    }));
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "configmaps", "singularName": "configmap", "namespaced": true, "kind": "ConfigMap", "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"], "shortNames": ["cm"], "storageVersionHash": "qFsyl6wFWjQ="},
            {"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]}
        ]
    }));
    round_trip(json!({
        "apiVersion": "apps/v1",
        "kind": "DeleteOptions",
        "gracePeriodSeconds": 0,
        "propagationPolicy": "Foreground",
        "preconditions": {"uid": "u", "resourceVersion": "5"},
        "dryRun": ["All"]
    }));
}

#[test]
fn durations_in_meta_and_flow_control() {
    round_trip(json!({
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": "exempt", "creationTimestamp": null},
        "spec": {
            "priorityLevelConfiguration": {"name": "exempt"},
            "matchingPrecedence": 1,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [{"subjects": [{"kind": "Group", "group": {"name": "system:masters"}}], "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": true, "namespaces": ["*"]}]}]
        },
        "status": {}
    }));
}
