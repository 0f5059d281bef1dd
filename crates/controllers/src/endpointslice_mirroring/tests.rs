use super::*;
use serde_json::json;

fn endpoints(value: serde_json::Value) -> Endpoints {
    let mut v = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": { "name": "ext", "namespace": "default", "uid": "ep-uid" },
    });
    for (k, val) in value.as_object().unwrap() {
        v[k] = val.clone();
    }
    serde_json::from_value(v).unwrap()
}

fn addresses(n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| json!({ "ip": format!("10.1.{}.{}", i / 250, i % 250 + 1) }))
        .collect()
}

fn existing(slices: &[EndpointSlice], names: &[&str]) -> Vec<Arc<EndpointSlice>> {
    slices
        .iter()
        .zip(names)
        .map(|(s, n)| {
            let mut s = s.clone();
            s.metadata.name = Some(n.to_string());
            s.metadata.generate_name = None;
            Arc::new(s)
        })
        .collect()
}

#[test]
fn a_subset_becomes_one_slice_with_the_endpoints_labels_ports_and_readiness() {
    let ep = endpoints(json!({
        "metadata": {
            "name": "ext", "namespace": "default", "uid": "ep-uid",
            "labels": { "team": "a" },
            "annotations": {
                "note": "x",
                "endpoints.kubernetes.io/last-change-trigger-time": "t",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
            },
        },
        "subsets": [{
            "addresses": [{ "ip": "10.0.0.1", "hostname": "a", "nodeName": "n1" }],
            "notReadyAddresses": [{ "ip": "10.0.0.2" }],
            "ports": [{ "name": "http", "port": 80, "protocol": "TCP" }],
        }],
    }));
    let plan = plan(&ep, &[], MAX_ENDPOINTS_PER_SUBSET);
    assert_eq!(plan.create.len(), 1);
    assert!(plan.update.is_empty() && plan.delete.is_empty());
    let s = &plan.create[0];
    assert_eq!(s.metadata.generate_name.as_deref(), Some("ext-"));
    let labels = s.metadata.labels.clone().unwrap();
    assert_eq!(labels[SERVICE_NAME_LABEL], "ext");
    assert_eq!(labels[MANAGED_BY_LABEL], CONTROLLER_NAME);
    assert_eq!(labels["team"], "a");
    assert_eq!(
        s.metadata.annotations,
        Some(BTreeMap::from([("note".to_string(), "x".to_string())]))
    );
    let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Endpoints", "ep-uid")
    );
    assert_eq!(owner.controller, Some(true));
    assert_eq!(s.address_type, "IPv4");
    let port = &s.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.port, port.protocol.as_deref()),
        (Some("http"), Some(80), Some("TCP"))
    );
    let ready: Vec<(String, Option<bool>)> = s
        .endpoints
        .iter()
        .map(|e| (e.addresses[0].clone(), e.conditions.as_ref().unwrap().ready))
        .collect();
    assert_eq!(
        ready,
        [
            ("10.0.0.1".to_string(), Some(true)),
            ("10.0.0.2".to_string(), Some(false))
        ]
    );
    assert_eq!(s.endpoints[0].hostname.as_deref(), Some("a"));
    assert_eq!(s.endpoints[0].node_name.as_deref(), Some("n1"));
}

#[test]
fn a_slice_that_already_mirrors_the_endpoints_is_left_alone() {
    let ep = endpoints(json!({
        "subsets": [{ "addresses": addresses(3), "ports": [{ "port": 53, "protocol": "UDP" }] }],
    }));
    let first = plan(&ep, &[], MAX_ENDPOINTS_PER_SUBSET);
    let current = existing(&first.create, &["ext-abcde"]);
    let again = plan(&ep, &current, MAX_ENDPOINTS_PER_SUBSET);
    assert!(again.create.is_empty() && again.update.is_empty() && again.delete.is_empty());

    let changed = endpoints(json!({
        "subsets": [{ "addresses": addresses(4), "ports": [{ "port": 53, "protocol": "UDP" }] }],
    }));
    let next = plan(&changed, &current, MAX_ENDPOINTS_PER_SUBSET);
    assert_eq!(
        next.update.len(),
        1,
        "the existing slice is updated in place"
    );
    assert_eq!(next.update[0].metadata.name.as_deref(), Some("ext-abcde"));
    assert_eq!(next.update[0].endpoints.len(), 4);
}

#[test]
fn at_most_a_thousand_addresses_of_a_subset_are_mirrored() {
    let ep = endpoints(json!({
        "subsets": [{ "addresses": addresses(1005), "ports": [{ "port": 80 }] }],
    }));
    let plan = plan(&ep, &[], MAX_ENDPOINTS_PER_SUBSET);
    assert_eq!(plan.create.len(), 1);
    assert_eq!(plan.create[0].endpoints.len(), 1000);
    assert_eq!((plan.skipped, plan.invalid), (5, 0));
}

#[test]
fn invalid_addresses_are_skipped_and_counted() {
    let ep = endpoints(json!({
        "subsets": [{
            "addresses": [{ "ip": "not-an-ip" }, { "ip": "010.000.000.001" }, { "ip": "::ffff:10.0.0.9" }],
            "ports": [{ "port": 80 }],
        }],
    }));
    let plan = plan(&ep, &[], MAX_ENDPOINTS_PER_SUBSET);
    assert_eq!((plan.skipped, plan.invalid), (1, 1));
    let addrs: Vec<&str> = plan.create[0]
        .endpoints
        .iter()
        .map(|e| e.addresses[0].as_str())
        .collect();
    assert_eq!(addrs, ["10.0.0.1", "10.0.0.9"]);
}

#[test]
fn each_address_type_and_port_list_gets_its_own_slice() {
    let ep = endpoints(json!({
        "subsets": [
            { "addresses": [{ "ip": "10.0.0.1" }, { "ip": "fd00::1" }], "ports": [{ "port": 80 }] },
            { "addresses": [{ "ip": "10.0.0.2" }], "ports": [{ "port": 443 }] },
        ],
    }));
    let plan = plan(&ep, &[], MAX_ENDPOINTS_PER_SUBSET);
    let mut kinds: Vec<(String, i32, usize)> = plan
        .create
        .iter()
        .map(|s| {
            (
                s.address_type.clone(),
                s.ports.as_ref().unwrap()[0].port.unwrap(),
                s.endpoints.len(),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("IPv4".to_string(), 80, 1),
            ("IPv4".to_string(), 443, 1),
            ("IPv6".to_string(), 80, 1)
        ]
    );
}

#[test]
fn a_slice_whose_ports_are_gone_is_recycled_for_the_new_ports() {
    let old = endpoints(json!({
        "subsets": [{ "addresses": addresses(2), "ports": [{ "port": 80 }] }],
    }));
    let current = existing(&plan(&old, &[], 1000).create, &["ext-old"]);
    let new = endpoints(json!({
        "subsets": [{ "addresses": addresses(2), "ports": [{ "port": 8080 }] }],
    }));
    let plan = plan(&new, &current, 1000);
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    assert_eq!(plan.update.len(), 1);
    assert_eq!(plan.update[0].metadata.name.as_deref(), Some("ext-old"));
    assert_eq!(plan.update[0].ports.as_ref().unwrap()[0].port, Some(8080));
}

#[test]
fn endpoints_without_addresses_delete_their_slices() {
    let old = endpoints(json!({
        "subsets": [{ "addresses": addresses(2), "ports": [{ "port": 80 }] }],
    }));
    let current = existing(&plan(&old, &[], 1000).create, &["ext-old"]);
    let plan = plan(&endpoints(json!({})), &current, 1000);
    assert_eq!(plan.delete, ["ext-old"]);
    assert!(plan.create.is_empty() && plan.update.is_empty());
}

#[test]
fn skip_mirror_label_and_leader_election_locks_are_not_mirrored() {
    assert!(should_mirror(&endpoints(json!({}))));
    let skipped = endpoints(json!({
        "metadata": { "name": "ext", "labels": { SKIP_MIRROR_LABEL: "true" } },
    }));
    assert!(!should_mirror(&skipped));
    let lock = endpoints(json!({
        "metadata": { "name": "ext", "annotations": { LEADER_ANNOTATION: "{}" } },
    }));
    assert!(!should_mirror(&lock));
}
