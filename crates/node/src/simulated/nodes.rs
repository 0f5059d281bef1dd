//! The Node object a simulated node registers and the status it reports,
//! as pure functions of the node's index and the time: names, labels,
//! addresses, pod CIDRs, node info and the kubelet's four conditions.
//!
//! Addresses are data only; nothing connects to them:
//! - node `i`'s InternalIP is `10.41.<i / 254>.<i % 254 + 1>` (10.41.0.0/16,
//!   outside the cluster and service CIDRs);
//! - up to 256 nodes, node `i`'s pod CIDR is `10.42.<i>.0/24`, the cluster
//!   CIDR's usual /24 per node. Above 256 nodes 10.42.0.0/16 has no room for
//!   110 pods per node, so the /24s come from 10.128.0.0/9 instead
//!   (`10.<128 + i / 256>.<i % 256>.0/24`, at most 32,768 nodes).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

/// Names are `sim-node-<i>`.
pub const NAME_PREFIX: &str = "sim-node-";
/// The node annotation that stops a node, as if its machine died.
pub const STOPPED: &str = "sim.krate.io/stopped";
/// The most nodes the address scheme has room for.
pub const MAX_NODES: usize = 32_768;
/// What the nodes report as their kubelet version (the API server's).
pub const KUBELET_VERSION: &str = "v1.32.0+krate";
pub const CONTAINER_RUNTIME_VERSION: &str = "krate-sim://0.1";
/// The kubelet port the nodes report in daemonEndpoints: none, as KWOK's
/// nodes without a node port. No kubelet serves them, so the metrics
/// collector leaves them alone (k3s' `--kubelet-use-node-status-port`).
pub const KUBELET_PORT: i32 = 0;

pub fn name(i: usize) -> String {
    format!("{NAME_PREFIX}{i}")
}

/// The index of a simulated node's name, if it is one of `count`.
pub fn index(name: &str, count: usize) -> Option<usize> {
    let digits = name.strip_prefix(NAME_PREFIX)?;
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    let i: usize = digits.parse().ok()?;
    (i < count).then_some(i)
}

pub fn internal_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 41, (i / 254) as u8, (i % 254 + 1) as u8)
}

/// Node `i`'s pod CIDR: its network address (a /24) when there are `count`
/// nodes.
pub fn pod_cidr(i: usize, count: usize) -> Ipv4Addr {
    if count <= 256 {
        Ipv4Addr::new(10, 42, i as u8, 0)
    } else {
        Ipv4Addr::new(10, (128 + i / 256) as u8, (i % 256) as u8, 0)
    }
}

/// The default capacity: cpu 32, memory 256Gi, pods 110,
/// ephemeral-storage 100Gi (and no huge pages, as a kubelet reports them).
pub fn default_capacity() -> BTreeMap<String, String> {
    [
        ("cpu", "32"),
        ("ephemeral-storage", "100Gi"),
        ("hugepages-1Gi", "0"),
        ("hugepages-2Mi", "0"),
        ("memory", "256Gi"),
        ("pods", "110"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub fn labels(i: usize) -> BTreeMap<String, String> {
    [
        ("beta.kubernetes.io/arch", "amd64".to_string()),
        ("beta.kubernetes.io/os", "linux".to_string()),
        ("kubernetes.io/arch", "amd64".to_string()),
        ("kubernetes.io/hostname", name(i)),
        ("kubernetes.io/os", "linux".to_string()),
        ("type", "simulated".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The annotations a kubelet puts on its node at registration.
pub fn annotations() -> BTreeMap<String, String> {
    [
        ("node.alpha.kubernetes.io/ttl", "0"),
        (
            "volumes.kubernetes.io/controller-managed-attach-detach",
            "true",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The Node as registered: metadata and spec, status included (upstream
/// lets a kubelet create its node with status).
pub fn object(
    i: usize,
    count: usize,
    capacity: &BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> Node {
    let cidr = format!("{}/24", pod_cidr(i, count));
    Node {
        metadata: ObjectMeta {
            name: Some(name(i)),
            labels: Some(labels(i)),
            annotations: Some(annotations()),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: Some(cidr.clone()),
            pod_cidrs: Some(vec![cidr]),
            ..Default::default()
        }),
        status: Some(status(i, capacity, &[], now)),
    }
}

/// The full status: capacity, addresses, node info and conditions (keeping
/// the transition times of `old` conditions whose status is unchanged).
pub fn status(
    i: usize,
    capacity: &BTreeMap<String, String>,
    old: &[NodeCondition],
    now: DateTime<Utc>,
) -> NodeStatus {
    let quantities: BTreeMap<String, Quantity> = capacity
        .iter()
        .map(|(k, v)| (k.clone(), Quantity(v.clone())))
        .collect();
    let id = machine_id(i);
    NodeStatus {
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: internal_ip(i).to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: name(i),
            },
        ]),
        allocatable: Some(quantities.clone()),
        capacity: Some(quantities),
        conditions: Some(conditions(old, now)),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint { port: KUBELET_PORT }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: "amd64".into(),
            boot_id: uuid_like(&id, 1),
            container_runtime_version: CONTAINER_RUNTIME_VERSION.into(),
            kernel_version: "6.1.0-krate-sim".into(),
            kube_proxy_version: String::new(),
            kubelet_version: KUBELET_VERSION.into(),
            machine_id: id.clone(),
            operating_system: "linux".into(),
            os_image: "krate simulated node".into(),
            system_uuid: uuid_like(&id, 0),
        }),
        ..Default::default()
    }
}

/// The kubelet's conditions of a healthy node, in upstream's order and
/// words, heartbeat `now`; a condition whose status has not changed keeps
/// its lastTransitionTime from `old`.
pub fn conditions(old: &[NodeCondition], now: DateTime<Utc>) -> Vec<NodeCondition> {
    [
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        (
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        (
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        (
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ]
    .into_iter()
    .map(|(type_, status, reason, message)| {
        let transition = old
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        NodeCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_heartbeat_time: Some(Time(now)),
            last_transition_time: Some(transition),
        }
    })
    .collect()
}

/// Whether `current` conditions say what this node would report (ignoring
/// times): if not, someone else (the node lifecycle controller) changed
/// them and the node reports again at once, as a kubelet does.
pub fn conditions_current(current: &[NodeCondition]) -> bool {
    conditions(&[], DateTime::<Utc>::UNIX_EPOCH)
        .iter()
        .all(|want| {
            current.iter().any(|c| {
                c.type_ == want.type_
                    && c.status == want.status
                    && c.reason == want.reason
                    && c.message == want.message
            })
        })
}

/// A stable 32-hex-digit machine id derived from the node's index.
fn machine_id(i: usize) -> String {
    crate::simulated::hex_id(&format!("sim-node-machine-{i}"), 2)
}

fn uuid_like(id: &str, salt: u8) -> String {
    let h = crate::simulated::hex_id(&format!("{id}/{salt}"), 2);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_index_accepts_only_our_names() {
        assert_eq!(index("sim-node-0", 3), Some(0));
        assert_eq!(index("sim-node-2", 3), Some(2));
        assert_eq!(index("sim-node-3", 3), None);
        assert_eq!(index("sim-node-01", 3), None);
        assert_eq!(index("sim-node-", 3), None);
        assert_eq!(index("node-1", 3), None);
    }

    #[test]
    fn pod_cidrs_are_slash_24s_of_the_cluster_cidr_up_to_256_nodes() {
        assert_eq!(pod_cidr(0, 3), Ipv4Addr::new(10, 42, 0, 0));
        assert_eq!(pod_cidr(255, 256), Ipv4Addr::new(10, 42, 255, 0));
        assert_eq!(pod_cidr(0, 5000), Ipv4Addr::new(10, 128, 0, 0));
        assert_eq!(pod_cidr(4999, 5000), Ipv4Addr::new(10, 147, 135, 0));
        assert_eq!(
            pod_cidr(MAX_NODES - 1, MAX_NODES),
            Ipv4Addr::new(10, 255, 255, 0)
        );
    }

    #[test]
    fn internal_ips_are_unique_and_never_end_in_0_or_255() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..MAX_NODES {
            let ip = internal_ip(i);
            assert!(ip.octets()[3] != 0 && ip.octets()[3] != 255);
            assert!(seen.insert(ip), "{ip} twice");
        }
    }

    #[test]
    fn a_recovered_condition_gets_a_new_transition_time() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let t1 = t0 + chrono::Duration::seconds(100);
        let mut old = conditions(&[], t0);
        old[3].status = "Unknown".into();
        let new = conditions(&old, t1);
        assert_eq!(new[0].last_transition_time, Some(Time(t0)));
        assert_eq!(new[3].last_transition_time, Some(Time(t1)));
        assert_eq!(new[3].last_heartbeat_time, Some(Time(t1)));
        assert!(!conditions_current(&old));
        assert!(conditions_current(&new));
    }
}
