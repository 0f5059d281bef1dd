use crate::kinds::tests::{create, update};
use serde_json::{json, Value};

fn pod(spec: Value) -> Value {
    json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec})
}

fn nginx() -> Value {
    json!({"name": "web", "image": "nginx", "imagePullPolicy": "Always"})
}

#[test]
fn defaulted_minimal_pod_is_valid() {
    assert_eq!(
        create("", "Pod", pod(json!({"containers": [nginx()]}))),
        Vec::<String>::new()
    );
}

#[test]
fn pod_needs_containers() {
    assert_eq!(
        create("", "Pod", pod(json!({}))),
        vec!["spec.containers: Required value"]
    );
}

#[test]
fn container_needs_a_valid_unique_name_and_an_image() {
    let errs = create(
        "",
        "Pod",
        pod(json!({"containers": [
            {"name": "Web_1", "image": "nginx"},
            {"name": "a"},
            {"name": "a", "image": "busybox"},
            {"image": "busybox"}
        ]})),
    );
    assert_eq!(errs, vec![
        "spec.containers[0].name: Invalid value: \"Web_1\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        "spec.containers[1].image: Required value",
        "spec.containers[2].name: Duplicate value: \"a\"",
        "spec.containers[3].name: Required value",
    ]);
}

#[test]
fn container_ports_are_checked() {
    let errs = create(
        "",
        "Pod",
        pod(
            json!({"containers": [{"name": "web", "image": "nginx", "ports": [
                {"containerPort": 0},
                {"containerPort": 70000, "hostPort": -1},
                {"containerPort": 80, "name": "HTTP", "protocol": "ICMP"},
                {"containerPort": 81, "name": "metrics"},
                {"containerPort": 82, "name": "metrics"}
            ]}]}),
        ),
    );
    assert_eq!(errs, vec![
        "spec.containers[0].ports[0].containerPort: Required value",
        "spec.containers[0].ports[1].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        "spec.containers[0].ports[1].hostPort: Invalid value: -1: must be between 1 and 65535, inclusive",
        "spec.containers[0].ports[2].name: Invalid value: \"HTTP\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        "spec.containers[0].ports[2].name: Invalid value: \"HTTP\": must contain at least one letter (a-z)",
        "spec.containers[0].ports[2].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
        "spec.containers[0].ports[4].name: Duplicate value: \"metrics\"",
    ]);
}

#[test]
fn host_ports_may_not_collide() {
    let errs = create(
        "",
        "Pod",
        pod(json!({"containers": [
            {"name": "a", "image": "a", "ports": [{"containerPort": 80, "hostPort": 8080}]},
            {"name": "b", "image": "b", "ports": [{"containerPort": 81, "hostPort": 8080}]}
        ]})),
    );
    assert_eq!(
        errs,
        vec!["spec.containers[1].ports[0].hostPort: Duplicate value: \"TCP//8080\""]
    );
}

#[test]
fn env_names_and_sources_are_checked() {
    let errs = create(
        "",
        "Pod",
        pod(
            json!({"containers": [{"name": "web", "image": "nginx", "env": [
                {"name": "A=B"},
                {"value": "x"},
                {"name": "FROM", "valueFrom": {}},
                {"name": "BOTH", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "status.phase"}}},
                {"name": "KEY", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "a b"}}}
            ]}]}),
        ),
    );
    assert_eq!(errs, vec![
        "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
        "spec.containers[0].env[1].name: Required value",
        "spec.containers[0].env[2].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        "spec.containers[0].env[3].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty",
        "spec.containers[0].env[4].valueFrom.fieldRef.fieldPath: Unsupported value: \"status.phase\": supported values: \"metadata.name\", \"metadata.namespace\", \"metadata.uid\", \"spec.nodeName\", \"spec.serviceAccountName\", \"status.hostIP\", \"status.hostIPs\", \"status.podIP\", \"status.podIPs\"",
        "spec.containers[0].env[5].valueFrom.configMapKeyRef.key: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
    ]);
}

#[test]
fn volume_mounts_must_name_existing_volumes() {
    let errs = create(
        "",
        "Pod",
        pod(json!({
            "containers": [{"name": "web", "image": "nginx", "volumeMounts": [
                {"name": "data", "mountPath": "/data"},
                {"name": "cfg", "mountPath": "/data"},
                {"name": "cfg", "mountPath": "/etc", "subPath": "../x"}
            ]}],
            "volumes": [{"name": "cfg", "configMap": {"name": "c"}}]
        })),
    );
    assert_eq!(
        errs,
        vec![
        "spec.containers[0].volumeMounts[0].name: Not found: \"data\"",
        "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/data\": must be unique",
        "spec.containers[0].volumeMounts.subPath: Invalid value: \"../x\": must not contain '..'",
    ]
    );
}

#[test]
fn volumes_need_unique_valid_names_and_one_source() {
    let errs = create(
        "",
        "Pod",
        pod(json!({
            "containers": [nginx()],
            "volumes": [
                {"name": "a", "emptyDir": {}},
                {"name": "a", "emptyDir": {}},
                {"name": "B", "emptyDir": {}},
                {"name": "two", "emptyDir": {}, "hostPath": {"path": "/x"}},
                {"name": "cm", "configMap": {"defaultMode": 1000, "items": [{"key": "k", "path": "/abs"}]}},
                {"name": "hp", "hostPath": {"path": "/x", "type": "Dir"}},
                {"emptyDir": {}}
            ]
        })),
    );
    assert_eq!(errs, vec![
        "spec.volumes[1].name: Duplicate value: \"a\"",
        "spec.volumes[2].name: Invalid value: \"B\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        "spec.volumes[3].hostPath: Forbidden: may not specify more than 1 volume type",
        "spec.volumes[4].configMap.name: Required value",
        "spec.volumes[4].configMap.defaultMode: Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive",
        "spec.volumes[4].configMap.items[0].path: Invalid value: \"/abs\": must be a relative path",
        "spec.volumes[5].hostPath.type: Unsupported value: \"Dir\": supported values: \"\", \"BlockDevice\", \"CharDevice\", \"Directory\", \"DirectoryOrCreate\", \"File\", \"FileOrCreate\", \"Socket\"",
        "spec.volumes[6].name: Required value",
    ]);
}

#[test]
fn requests_may_not_exceed_limits() {
    let errs = create(
        "",
        "Pod",
        pod(
            json!({"containers": [{"name": "web", "image": "nginx", "resources": {
                "limits": {"cpu": "1", "memory": "1Gi"},
                "requests": {"cpu": "2", "memory": "-1"}
            }}]}),
        ),
    );
    assert_eq!(errs, vec![
        "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
        "spec.containers[0].resources.requests[memory]: Invalid value: \"-1\": must be greater than or equal to 0",
    ]);
}

#[test]
fn resource_names_must_be_standard_or_qualified() {
    let errs = create(
        "",
        "Pod",
        pod(
            json!({"containers": [{"name": "web", "image": "nginx", "resources": {
                "limits": {"gpu": "1", "example.com/gpu": "2"},
                "requests": {"example.com/gpu": "1"}
            }}]}),
        ),
    );
    assert_eq!(errs, vec![
        "spec.containers[0].resources.limits[gpu]: Invalid value: \"gpu\": must be a standard resource type or fully qualified",
        "spec.containers[0].resources.limits[gpu]: Invalid value: \"gpu\": must be a standard resource for containers",
        "spec.containers[0].resources.requests: Invalid value: \"1\": must be equal to example.com/gpu limit of 2",
        // A Pod's requests default to its limits, so the bad name shows twice.
        "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource type or fully qualified",
        "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource for containers",
    ]);
}

#[test]
fn restart_and_dns_policies_are_enumerations() {
    let errs = create(
        "",
        "Pod",
        pod(json!({"containers": [nginx()], "restartPolicy": "Sometimes", "dnsPolicy": "Google"})),
    );
    assert_eq!(errs, vec![
        "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
        "spec.dnsPolicy: Unsupported value: \"Google\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
    ]);
}

#[test]
fn probes_are_checked() {
    let errs = create(
        "",
        "Pod",
        pod(json!({"containers": [{"name": "web", "image": "nginx",
            "livenessProbe": {"httpGet": {"port": 0}, "successThreshold": 2},
            "readinessProbe": {"exec": {}, "tcpSocket": {"port": 80}, "initialDelaySeconds": -1},
            "startupProbe": {}
        }]})),
    );
    assert_eq!(errs, vec![
        "spec.containers[0].livenessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive",
        "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
        "spec.containers[0].readinessProbe.exec.command: Required value",
        "spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type",
        "spec.containers[0].readinessProbe.initialDelaySeconds: Invalid value: -1: must be greater than or equal to 0",
        "spec.containers[0].startupProbe: Required value: must specify a handler type",
    ]);
}

#[test]
fn init_containers_may_not_probe_unless_restartable() {
    let errs = create(
        "",
        "Pod",
        pod(json!({"containers": [nginx()], "initContainers": [
            {"name": "init", "image": "busybox", "readinessProbe": {"exec": {"command": ["true"]}}},
            {"name": "web", "image": "busybox"},
            {"name": "sidecar", "image": "busybox", "restartPolicy": "OnFailure"}
        ]})),
    );
    assert_eq!(errs, vec![
        "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
        "spec.initContainers[1].name: Duplicate value: \"web\"",
        "spec.initContainers[2].restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"",
    ]);
}

#[test]
fn security_contexts_are_checked() {
    let errs = create(
        "",
        "Pod",
        pod(json!({
            "containers": [{"name": "web", "image": "nginx", "securityContext": {"runAsUser": -1, "seccompProfile": {"type": "Localhost"}}}],
            "securityContext": {"fsGroup": 4294967296i64, "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]},
            "hostNetwork": true
        })),
    );
    assert_eq!(errs, vec![
        "spec.containers[0].securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive",
        "spec.containers[0].securityContext.seccompProfile.localhostProfile: Required value: must be set when seccomp type is Localhost",
        "spec.securityContext.fsGroup: Invalid value: 4294967296: must be between 0 and 2147483647, inclusive",
        "spec.securityContext.sysctls[0].name: Invalid value: \"net.core.somaxconn\": may not be specified when 'hostNetwork' is true",
    ]);
}

#[test]
fn tolerations_and_affinity_are_checked() {
    let errs = create(
        "",
        "Pod",
        pod(json!({
            "containers": [nginx()],
            "tolerations": [{"operator": "Equal", "value": "x"}, {"key": "k", "operator": "Exists", "value": "v"}, {"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}},
                         "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 0, "podAffinityTerm": {}}]}}
        })),
    );
    assert_eq!(errs, vec![
        "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term",
        "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in the range 1-100",
        "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey: Required value: can not be empty",
        "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey: Invalid value: \"\": name part must be non-empty",
        "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey: Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
        "spec.tolerations[1].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'",
        "spec.tolerations[2].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
    ]);
}

#[test]
fn pod_only_checks() {
    let errs = create(
        "",
        "Pod",
        pod(json!({
            "containers": [{"name": "web", "image": " nginx"}],
            "ephemeralContainers": [{"name": "debug", "image": "busybox"}],
            "activeDeadlineSeconds": 0
        })),
    );
    assert_eq!(errs, vec![
        "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
        "spec.containers[0].image: Invalid value: \" nginx\": must not have leading or trailing whitespace",
        "spec.ephemeralContainers: Forbidden: cannot be set on create",
    ]);
}

#[test]
fn pod_template_labels_are_checked_at_template_labels() {
    let pt = json!({"template": {"metadata": {"labels": {"a": "-bad-"}}, "spec": {"containers": [{"name": "web"}]}}});
    assert_eq!(create("", "PodTemplate", pt), vec![
        "template.labels: Invalid value: \"-bad-\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        "template.spec.containers[0].image: Required value",
    ]);
}

#[test]
fn pod_update_may_change_images_and_deadlines_only() {
    let old = pod(json!({"containers": [nginx()], "activeDeadlineSeconds": 100}));
    let image = pod(
        json!({"containers": [{"name": "web", "image": "nginx:1.27", "imagePullPolicy": "Always"}], "activeDeadlineSeconds": 50}),
    );
    assert_eq!(update("", "Pod", image, old.clone()), Vec::<String>::new());

    let longer = pod(json!({"containers": [nginx()], "activeDeadlineSeconds": 200}));
    assert_eq!(update("", "Pod", longer, old.clone()), vec![
        "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value",
    ]);

    let dns =
        pod(json!({"containers": [nginx()], "activeDeadlineSeconds": 100, "dnsPolicy": "Default"}));
    let errs = update("", "Pod", dns, old.clone());
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"), "{}", errs[0]);
    assert!(errs[0].contains("DnsPolicy"), "{}", errs[0]);

    let more = pod(
        json!({"containers": [nginx(), {"name": "b", "image": "b"}], "activeDeadlineSeconds": 100}),
    );
    assert_eq!(
        update("", "Pod", more, old),
        vec!["spec.containers: Forbidden: pod updates may not add or remove containers"]
    );
}

#[test]
fn pod_update_allows_adding_tolerations_only() {
    let tol =
        json!({"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10});
    let old = pod(json!({"containers": [nginx()], "tolerations": [tol]}));
    let added = pod(json!({"containers": [nginx()], "tolerations": [
        {"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5},
        {"key": "other", "operator": "Exists"}
    ]}));
    assert_eq!(update("", "Pod", added, old.clone()), Vec::<String>::new());
    let removed = pod(json!({"containers": [nginx()]}));
    assert_eq!(update("", "Pod", removed, old), vec![
        "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds",
    ]);
}
