use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ObjectFieldSelector, Pod, ResourceFieldSelector, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::json;

use super::*;

fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn expansion_follows_upstream_cases() {
    let m = vars(&[
        ("VAR_A", "A"),
        ("VAR_B", "B"),
        ("VAR_C", "C"),
        ("VAR_EMPTY", ""),
    ]);
    let cases = [
        ("$(VAR_A)", "A"),
        ("___$(VAR_B)___", "___B___"),
        ("$(VAR_A)-$(VAR_B)-$(VAR_C)", "A-B-C"),
        ("$(VAR_A)$(VAR_B)", "AB"),
        ("$(VAR_EMPTY)", ""),
        ("$(VAR_DNE)", "$(VAR_DNE)"),
        ("$$(VAR_A)", "$(VAR_A)"),
        ("$$$(VAR_A)", "$A"),
        ("$$$$(VAR_A)", "$$(VAR_A)"),
        ("foo$$", "foo$"),
        ("$(VAR_A", "$(VAR_A"),
        ("$(", "$("),
        ("$", "$"),
        ("$VAR_A", "$VAR_A"),
        ("$)", "$)"),
        ("$()", "$()"),
        ("f000-$$VAR_A", "f000-$VAR_A"),
        ("$(VAR_A)$", "A$"),
        ("héllo $(VAR_A) wörld $ö", "héllo A wörld $ö"),
    ];
    for (input, want) in cases {
        assert_eq!(expand(input, &m), want, "input {input:?}");
    }
}

fn pod() -> Pod {
    serde_json::from_value(json!({
        "metadata": {
            "name": "web", "namespace": "shop", "uid": "u-1",
            "labels": { "app": "web", "tier": "front\"end" },
            "annotations": { "note": "a\nb" }
        },
        "spec": {
            "nodeName": "n1", "serviceAccountName": "sa",
            "containers": [
                { "name": "app", "resources": { "limits": { "cpu": "500m", "memory": "64Mi" }, "requests": { "cpu": "250m" } } },
                { "name": "side" }
            ]
        }
    }))
    .unwrap()
}

fn field(path: &str) -> ObjectFieldSelector {
    ObjectFieldSelector {
        field_path: path.into(),
        api_version: None,
    }
}

#[test]
fn field_refs_read_the_pod_and_the_context() {
    let pod = pod();
    let pod_ips = vec!["10.42.0.5".to_string(), "fd00::5".to_string()];
    let host_ips = vec!["192.0.2.1".to_string()];
    let ctx = EnvContext {
        pod_ips: &pod_ips,
        host_ips: &host_ips,
        ..Default::default()
    };
    let get = |p: &str| pod_field_value(&pod, &field(p), &ctx).unwrap();
    assert_eq!(get("metadata.name"), "web");
    assert_eq!(get("metadata.namespace"), "shop");
    assert_eq!(get("metadata.uid"), "u-1");
    assert_eq!(get("metadata.labels['app']"), "web");
    assert_eq!(get("metadata.labels['missing']"), "");
    assert_eq!(get("metadata.annotations['note']"), "a\nb");
    assert_eq!(get("spec.nodeName"), "n1");
    assert_eq!(get("spec.serviceAccountName"), "sa");
    assert_eq!(get("status.hostIP"), "192.0.2.1");
    assert_eq!(get("status.podIP"), "10.42.0.5");
    assert_eq!(get("status.podIPs"), "10.42.0.5,fd00::5");
    assert_eq!(get("metadata.labels"), "app=\"web\"\ntier=\"front\\\"end\"");
    assert_eq!(get("metadata.annotations"), "note=\"a\\nb\"");
    let err = pod_field_value(&pod, &field("spec.hostname"), &ctx).unwrap_err();
    assert_eq!(err.to_string(), "unsupported fieldPath: spec.hostname");
}

fn resource(name: &str, container: Option<&str>, divisor: Option<&str>) -> ResourceFieldSelector {
    ResourceFieldSelector {
        resource: name.into(),
        container_name: container.map(Into::into),
        divisor: divisor.map(|d| Quantity(d.into())),
    }
}

#[test]
fn resource_field_refs_divide_and_default_to_allocatable() {
    let pod = pod();
    let app = &pod.spec.as_ref().unwrap().containers[0];
    let allocatable: BTreeMap<String, Quantity> = [
        ("cpu".to_string(), Quantity("4".into())),
        ("memory".to_string(), Quantity("8Gi".into())),
    ]
    .into();
    let get = |r: ResourceFieldSelector| {
        container_resource_value(&pod, app, &r, Some(&allocatable)).unwrap()
    };
    assert_eq!(get(resource("limits.cpu", None, None)), "1");
    assert_eq!(get(resource("limits.cpu", None, Some("1m"))), "500");
    assert_eq!(get(resource("requests.cpu", None, Some("1m"))), "250");
    assert_eq!(get(resource("limits.memory", None, None)), "67108864");
    assert_eq!(get(resource("limits.memory", None, Some("1Mi"))), "64");
    assert_eq!(get(resource("limits.cpu", Some("side"), None)), "4");
    assert_eq!(
        get(resource("limits.memory", Some("side"), Some("1Gi"))),
        "8"
    );
    assert_eq!(get(resource("requests.memory", Some("side"), None)), "0");
    let err =
        container_resource_value(&pod, app, &resource("limits.gpu", None, None), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported container resource : limits.gpu"
    );
}

#[test]
fn env_var_names_are_c_identifiers_with_dots_and_dashes() {
    assert!(is_env_var_name("FOO_bar.baz-1"));
    assert!(is_env_var_name("_x"));
    assert!(!is_env_var_name("1abc"));
    assert!(!is_env_var_name("a b"));
    assert!(!is_env_var_name(""));
}

#[test]
fn service_links_cover_the_namespace_and_the_kubernetes_service() {
    let svc = |ns: &str, name: &str, ip: &str| -> Service {
        serde_json::from_value(json!({
            "metadata": { "name": name, "namespace": ns },
            "spec": { "clusterIP": ip, "ports": [
                { "name": "http", "port": 80, "protocol": "TCP" },
                { "name": "dns-udp", "port": 53, "protocol": "UDP" }
            ] }
        }))
        .unwrap()
    };
    let services = vec![
        svc("shop", "web-api", "10.43.0.20"),
        svc("shop", "headless", "None"),
        svc("other", "x", "10.43.0.30"),
        svc("default", "kubernetes", "10.43.0.1"),
    ];
    let env: BTreeMap<String, String> = service_env(&services, "shop", true).into_iter().collect();
    assert_eq!(env["WEB_API_SERVICE_HOST"], "10.43.0.20");
    assert_eq!(env["WEB_API_SERVICE_PORT"], "80");
    assert_eq!(env["WEB_API_SERVICE_PORT_DNS_UDP"], "53");
    assert_eq!(env["WEB_API_PORT"], "tcp://10.43.0.20:80");
    assert_eq!(env["WEB_API_PORT_53_UDP"], "udp://10.43.0.20:53");
    assert_eq!(env["WEB_API_PORT_53_UDP_PROTO"], "udp");
    assert_eq!(env["WEB_API_PORT_53_UDP_ADDR"], "10.43.0.20");
    assert_eq!(env["KUBERNETES_SERVICE_HOST"], "10.43.0.1");
    assert!(!env.contains_key("X_SERVICE_HOST"));
    assert!(!env.contains_key("HEADLESS_SERVICE_HOST"));
    let env: BTreeMap<String, String> = service_env(&services, "shop", false).into_iter().collect();
    assert!(env.contains_key("KUBERNETES_SERVICE_HOST"));
    assert!(!env.contains_key("WEB_API_SERVICE_HOST"));
}
