use crate::kinds::tests::{create, update};
use serde_json::json;

// ----------------------------------------------------------------- Service

#[test]
fn kubectl_create_service_is_valid() {
    // `kubectl create service clusterip s --tcp=80:8080`
    let svc = json!({"metadata": {"name": "s", "labels": {"app": "s"}}, "spec": {
        "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
        "selector": {"app": "s"}, "type": "ClusterIP"
    }});
    assert_eq!(create("", "Service", svc), Vec::<String>::new());
}

#[test]
fn service_ports_are_checked() {
    let svc = json!({"spec": {"ports": [
        {"port": 80, "targetPort": 0},
        {"name": "http", "port": 70000, "protocol": "ICMP"},
        {"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30000}
    ]}});
    assert_eq!(create("", "Service", svc), vec![
        "spec.ports[0].name: Required value",
        "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
        "spec.ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
        "spec.ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
        "spec.ports[2].name: Duplicate value: \"http\"",
        "spec.ports[2].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
        "spec.ports[2]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}",
    ]);
}

#[test]
fn service_needs_ports_unless_headless_or_external_name() {
    assert_eq!(
        create("", "Service", json!({"spec": {"selector": {"app": "a"}}})),
        vec!["spec.ports: Required value"]
    );
    let headless = json!({"spec": {"clusterIP": "None", "clusterIPs": ["None"]}});
    assert_eq!(create("", "Service", headless), Vec::<String>::new());
    let external = json!({"spec": {"type": "ExternalName", "externalName": "Example.COM"}});
    assert_eq!(create("", "Service", external)[0],
        "spec.externalName: Invalid value: \"Example.COM\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
}

#[test]
fn service_type_and_affinity_are_enumerations() {
    let svc =
        json!({"spec": {"type": "Magic", "sessionAffinity": "Sticky", "ports": [{"port": 80}]}});
    assert_eq!(create("", "Service", svc), vec![
        "spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\"",
        "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
    ]);
}

// ------------------------------------------------------ ConfigMap, Secret

#[test]
fn config_map_keys_are_checked() {
    let cm = json!({"data": {"a b": "x", "..": "y", "ok.key": "z"}});
    assert_eq!(create("", "ConfigMap", cm), vec![
        "data[..]: Invalid value: \"..\": must not be '..'",
        "data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
    ]);
    let dup = json!({"data": {"k": "x"}, "binaryData": {"k": "eA=="}});
    assert_eq!(
        create("", "ConfigMap", dup),
        vec!["data[k]: Invalid value: \"k\": duplicate of key present in binaryData"]
    );
    let big = json!({"data": {"k": "x".repeat(1024 * 1024 + 1)}});
    assert_eq!(
        create("", "ConfigMap", big),
        vec!["[]: Too long: must have at most 1048576 bytes"]
    );
}

#[test]
fn immutable_config_maps_and_secrets_keep_their_data() {
    let old = json!({"immutable": true, "data": {"k": "v"}});
    let changed = json!({"immutable": true, "data": {"k": "w"}});
    assert_eq!(
        update("", "ConfigMap", changed, old.clone()),
        vec!["data: Forbidden: field is immutable when `immutable` is set",]
    );
    let unset = json!({"data": {"k": "v"}});
    assert_eq!(
        update("", "ConfigMap", unset, old),
        vec!["immutable: Forbidden: field is immutable when `immutable` is set",]
    );
    let old = json!({"immutable": true, "data": {"k": "dg=="}});
    let changed = json!({"immutable": true, "data": {"k": "dw=="}});
    assert_eq!(
        update("", "Secret", changed, old),
        vec!["data: Forbidden: field is immutable when `immutable` is set"]
    );
}

#[test]
fn secret_types_require_their_keys() {
    let tls = json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}});
    assert_eq!(
        create("", "Secret", tls),
        vec!["data[tls.key]: Required value"]
    );
    let docker =
        json!({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "eA=="}});
    assert_eq!(create("", "Secret", docker), vec![
        "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": invalid character 'x' looking for beginning of value",
    ]);
    let sa = json!({"type": "kubernetes.io/service-account-token"});
    assert_eq!(
        create("", "Secret", sa),
        vec!["metadata.annotations[kubernetes.io/service-account.name]: Required value"]
    );
    let basic = json!({"type": "kubernetes.io/basic-auth", "stringData": {}});
    assert_eq!(
        create("", "Secret", basic),
        vec![
            "data[username]: Required value",
            "data[password]: Required value"
        ]
    );
    let old = json!({"type": "Opaque"});
    assert_eq!(
        update(
            "",
            "Secret",
            json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}),
            old
        ),
        vec!["type: Invalid value: \"kubernetes.io/tls\": field is immutable",]
    );
}

// ---------------------------------------------------- Namespace, storage

#[test]
fn namespace_finalizers_are_checked() {
    let ns = json!({"metadata": {"name": "a"}, "spec": {"finalizers": ["kubernetes", "custom"]}});
    assert_eq!(create("", "Namespace", ns), vec![
        "spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified",
    ]);
}

#[test]
fn pvc_needs_access_modes_and_storage() {
    assert_eq!(
        create("", "PersistentVolumeClaim", json!({"spec": {}})),
        vec![
            "spec.accessModes: Required value: at least 1 access mode is required",
            "spec.resources[storage]: Required value",
        ]
    );
    let bad = json!({"spec": {"accessModes": ["ReadWriteOncePod", "ReadWriteMany", "WriteOnly"], "resources": {"requests": {"storage": "0"}}}});
    assert_eq!(create("", "PersistentVolumeClaim", bad), vec![
        "spec.accessModes: Unsupported value: \"WriteOnly\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
        "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes",
        "spec.resources[storage]: Invalid value: \"0\": must be greater than zero",
    ]);
}

#[test]
fn pvc_spec_is_immutable_except_storage_of_bound_claims() {
    let old = json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}, "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}});
    let mut grown = old.clone();
    grown["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
    assert_eq!(
        update("", "PersistentVolumeClaim", grown, old.clone()),
        Vec::<String>::new()
    );
    let mut modes = old.clone();
    modes["spec"]["accessModes"] = json!(["ReadWriteMany"]);
    let errs = update("", "PersistentVolumeClaim", modes, old.clone());
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n"), "{}", errs[0]);
    let mut shrunk = old.clone();
    shrunk["spec"]["resources"]["requests"]["storage"] = json!("512Mi");
    assert_eq!(
        update("", "PersistentVolumeClaim", shrunk, old),
        vec![
        "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity",
    ]
    );
}

#[test]
fn pv_needs_capacity_modes_and_a_source() {
    assert_eq!(
        create("", "PersistentVolume", json!({"spec": {}})),
        vec![
        "spec.accessModes: Required value",
        "spec.capacity: Required value",
        "spec.capacity: Unsupported value: core.ResourceList(nil): supported values: \"storage\"",
        "spec: Required value: must specify a volume type",
    ]
    );
    let ok = json!({"spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/data"}}});
    assert_eq!(create("", "PersistentVolume", ok), Vec::<String>::new());
}

// ------------------------------------------------------- Node, Endpoints

#[test]
fn node_pod_cidrs_are_checked_and_fixed_once_set() {
    let node = json!({"spec": {"podCIDRs": ["10.42.0.0/24", "10.43.0.0/24"], "taints": [{"key": "k", "effect": "Sometimes"}]}});
    assert_eq!(create("", "Node", node), vec![
        "metadata.taints[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
        "spec.podCIDRs: Invalid value: []string{\"10.42.0.0/24\", \"10.43.0.0/24\"}: may specify no more than one CIDR for each IP family",
    ]);
    let old = json!({"spec": {"podCIDR": "10.42.0.0/24", "podCIDRs": ["10.42.0.0/24"]}});
    let new = json!({"spec": {"podCIDR": "10.42.1.0/24", "podCIDRs": ["10.42.1.0/24"]}});
    assert_eq!(
        update("", "Node", new, old),
        vec![
        "spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid",
    ]
    );
}

#[test]
fn endpoints_addresses_and_ports_are_checked() {
    let ep = json!({"subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 80}, {"name": "b", "port": 0}]}, {}]});
    assert_eq!(create("", "Endpoints", ep), vec![
        "subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
        "subsets[0].ports[0].name: Required value",
        "subsets[0].ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
        "subsets[1]: Required value: must specify `addresses` or `notReadyAddresses`",
    ]);
}

#[test]
fn limit_range_min_may_not_exceed_max() {
    let lr = json!({"spec": {"limits": [{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}]}});
    let errs = create("", "LimitRange", lr);
    assert_eq!(
        errs[0],
        "spec.limits[0].min[cpu]: Invalid value: \"2\": min value 2 is greater than max value 1"
    );
}

#[test]
fn resource_quota_names_must_be_quota_resources() {
    let rq = json!({"spec": {"hard": {"gpus": "1", "pods": "1.5"}}});
    assert_eq!(create("", "ResourceQuota", rq), vec![
        "spec.hard[gpus]: Invalid value: \"gpus\": must be a standard resource type or fully qualified",
        "spec.hard[gpus]: Invalid value: \"gpus\": must be a standard resource for quota",
        "spec.hard[pods]: Invalid value: \"1500m\": must be an integer",
    ]);
}
