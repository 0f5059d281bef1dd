//! The Node this agent registers and the status it reports (upstream
//! `kubelet_node_status.go`): addresses, capacity read from the machine,
//! node info, labels, the four conditions and the images on the node.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use k8s_openapi::api::core::v1::{
    ContainerImage, DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints,
    NodeSpec, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::images::ListedImage;

/// How many images status.images lists (upstream's nodeStatusMaxImages
/// default) and how many names each (MaxNamesPerImageInNodeStatus).
pub const MAX_IMAGES: usize = 50;
pub const MAX_NAMES_PER_IMAGE: usize = 5;

/// What the machine is, read once at start.
#[derive(Clone, Debug, Default)]
pub struct Machine {
    pub cpus: usize,
    pub memory_bytes: u64,
    pub ephemeral_storage_bytes: u64,
    pub kernel_version: String,
    pub os_image: String,
    pub machine_id: String,
    pub boot_id: String,
    pub system_uuid: String,
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `MemTotal` of /proc/meminfo, in bytes.
pub fn parse_meminfo(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `PRETTY_NAME` of an os-release file.
pub fn parse_os_release(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let v = l.strip_prefix("PRETTY_NAME=")?;
        Some(v.trim().trim_matches('"').to_string())
    })
}

impl Machine {
    pub fn read(root_dir: &Path) -> Machine {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| parse_meminfo(&m))
            .unwrap_or(0);
        let ephemeral_storage_bytes = nix::sys::statvfs::statvfs(root_dir)
            .map(|s| s.blocks() * s.fragment_size())
            .unwrap_or(0);
        let os_image = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|t| parse_os_release(&t))
            .unwrap_or_else(|| "Linux".into());
        let machine_id = read_trimmed("/etc/machine-id");
        let mut system_uuid = read_trimmed("/sys/class/dmi/id/product_uuid").to_lowercase();
        if system_uuid.is_empty() && machine_id.len() == 32 {
            let m = &machine_id;
            system_uuid = format!(
                "{}-{}-{}-{}-{}",
                &m[0..8],
                &m[8..12],
                &m[12..16],
                &m[16..20],
                &m[20..32]
            );
        }
        Machine {
            cpus,
            memory_bytes,
            ephemeral_storage_bytes,
            kernel_version: read_trimmed("/proc/sys/kernel/osrelease"),
            os_image,
            machine_id,
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
            system_uuid,
        }
    }

    /// cpu, memory (Ki), pods 110, ephemeral-storage (bytes), no huge pages.
    pub fn capacity(&self) -> BTreeMap<String, Quantity> {
        [
            ("cpu", self.cpus.to_string()),
            (
                "ephemeral-storage",
                format!("{}Ki", self.ephemeral_storage_bytes / 1024),
            ),
            ("hugepages-1Gi", "0".into()),
            ("hugepages-2Mi", "0".into()),
            ("memory", format!("{}Ki", self.memory_bytes / 1024)),
            ("pods", "110".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Quantity(v)))
        .collect()
    }
}

/// The IPv4 address of the interface the default route leaves through
/// (from /proc/net/route), else the first non-loopback address, else
/// 127.0.0.1.
pub fn default_node_ip() -> IpAddr {
    let iface = std::fs::read_to_string("/proc/net/route")
        .ok()
        .and_then(|t| {
            t.lines().skip(1).find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() > 2 && f[1] == "00000000").then(|| f[0].to_string())
            })
        });
    let addrs = if_addrs::get_if_addrs().unwrap_or_default();
    let v4 = |a: &&if_addrs::Interface| a.ip().is_ipv4() && !a.is_loopback();
    if let Some(iface) = iface {
        if let Some(a) = addrs.iter().filter(v4).find(|a| a.name == iface) {
            return a.ip();
        }
    }
    addrs
        .iter()
        .find(v4)
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// Everything the kubelet says about its node besides conditions.
#[derive(Clone, Debug)]
pub struct Identity {
    pub name: String,
    pub ip: IpAddr,
    pub hostname: String,
    pub kubelet_version: String,
    pub runtime_version: String,
    pub control_plane: bool,
    pub kubelet_port: i32,
}

pub fn labels(id: &Identity) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = [
        ("beta.kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("kubernetes.io/hostname", id.hostname.as_str()),
        ("kubernetes.io/os", "linux"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if id.control_plane {
        labels.insert(
            "node-role.kubernetes.io/control-plane".into(),
            "true".into(),
        );
    }
    labels
}

/// The Ready condition's message while the pod network is not set up
/// (upstream, with containerd before a CNI config exists).
pub const NETWORK_NOT_READY: &str = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized";

/// The kubelet's four conditions (keeping the transition times of `old`
/// conditions whose status is unchanged); Ready is False with reason
/// `KubeletNotReady` until the pod network is set up.
pub fn conditions(
    old: &[NodeCondition],
    now: chrono::DateTime<chrono::Utc>,
    network_ready: bool,
) -> Vec<NodeCondition> {
    let mut conditions = crate::simulated::nodes::conditions(old, now);
    if !network_ready {
        for c in conditions.iter_mut().filter(|c| c.type_ == "Ready") {
            c.status = "False".into();
            c.reason = Some("KubeletNotReady".into());
            c.message = Some(NETWORK_NOT_READY.into());
            c.last_transition_time = old
                .iter()
                .find(|o| o.type_ == "Ready" && o.status == "False")
                .and_then(|o| o.last_transition_time.clone())
                .or(Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    now,
                )));
        }
    }
    conditions
}

/// Whether `current` says what this node would report now (times aside).
pub fn conditions_current(current: &[NodeCondition], network_ready: bool) -> bool {
    conditions(
        &[],
        chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        network_ready,
    )
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

pub fn status(
    id: &Identity,
    machine: &Machine,
    old: &[NodeCondition],
    now: chrono::DateTime<chrono::Utc>,
    network_ready: bool,
) -> NodeStatus {
    let capacity = machine.capacity();
    NodeStatus {
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: id.ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: id.hostname.clone(),
            },
        ]),
        allocatable: Some(capacity.clone()),
        capacity: Some(capacity),
        conditions: Some(conditions(old, now, network_ready)),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: id.kubelet_port,
            }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: "amd64".into(),
            boot_id: machine.boot_id.clone(),
            container_runtime_version: id.runtime_version.clone(),
            kernel_version: machine.kernel_version.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: id.kubelet_version.clone(),
            machine_id: machine.machine_id.clone(),
            operating_system: "linux".into(),
            os_image: machine.os_image.clone(),
            system_uuid: machine.system_uuid.clone(),
        }),
        ..Default::default()
    }
}

/// status.images as upstream's `nodestatus.Images` sets it: largest first
/// (ties by ID, descending, as the image manager's `ByImageSize`), at most
/// [`MAX_IMAGES`], each named by its repo digests then its repo tags, at
/// most [`MAX_NAMES_PER_IMAGE`] names; unset when there is no image.
pub fn images(listed: &[ListedImage]) -> Option<Vec<ContainerImage>> {
    let mut sorted: Vec<&ListedImage> = listed.iter().collect();
    sorted.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| b.id.cmp(&a.id)));
    let images: Vec<ContainerImage> = sorted
        .into_iter()
        .take(MAX_IMAGES)
        .map(|i| ContainerImage {
            names: Some(
                i.repo_digests
                    .iter()
                    .chain(&i.repo_tags)
                    .take(MAX_NAMES_PER_IMAGE)
                    .cloned()
                    .collect(),
            ),
            size_bytes: Some(i.size as i64),
        })
        .collect();
    (!images.is_empty()).then_some(images)
}

/// Upstream's `Rebooted` warning when the Node last reported another boot
/// id than the machine's now: "Node <name> has been rebooted, boot id: <id>".
pub fn rebooted_message(name: &str, existing: &Node, machine: &Machine) -> Option<String> {
    let before = existing
        .status
        .as_ref()?
        .node_info
        .as_ref()?
        .boot_id
        .as_str();
    (!before.is_empty() && before != machine.boot_id).then(|| {
        format!(
            "Node {name} has been rebooted, boot id: {}",
            machine.boot_id
        )
    })
}

pub fn object(
    id: &Identity,
    machine: &Machine,
    now: chrono::DateTime<chrono::Utc>,
    network_ready: bool,
) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(id.name.clone()),
            labels: Some(labels(id)),
            annotations: Some(crate::simulated::nodes::annotations()),
            ..Default::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(status(id, machine, &[], now, network_ready)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_listed_largest_first_digests_then_tags_within_the_caps() {
        let image = |id: &str, size: u64, names: usize| ListedImage {
            id: id.into(),
            repo_tags: (0..names).map(|n| format!("tag{n}")).collect(),
            repo_digests: vec![format!("r@sha256:{id}")],
            size,
        };
        let listed = vec![image("a", 3, 1), image("b", 10, 7), image("c", 3, 0)];
        let got = images(&listed).unwrap();
        let sizes: Vec<i64> = got.iter().map(|i| i.size_bytes.unwrap()).collect();
        assert_eq!(sizes, [10, 3, 3]);
        assert_eq!(
            got[0].names.as_deref().unwrap(),
            ["r@sha256:b", "tag0", "tag1", "tag2", "tag3"]
        );
        assert_eq!(got[1].names.as_deref().unwrap(), ["r@sha256:c"]);
        assert_eq!(got[2].names.as_deref().unwrap(), ["r@sha256:a", "tag0"]);

        let many: Vec<ListedImage> = (0..60).map(|n| image(&format!("{n:02}"), n, 1)).collect();
        let got = images(&many).unwrap();
        assert_eq!(got.len(), MAX_IMAGES);
        assert_eq!(got[0].size_bytes, Some(59));
        assert_eq!(images(&[]), None);
    }

    #[test]
    fn a_node_that_reported_another_boot_id_has_been_rebooted() {
        let machine = Machine {
            boot_id: "b2".into(),
            ..Machine::default()
        };
        let node = |boot: &str| Node {
            status: Some(NodeStatus {
                node_info: Some(NodeSystemInfo {
                    boot_id: boot.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            rebooted_message("n1", &node("b1"), &machine).as_deref(),
            Some("Node n1 has been rebooted, boot id: b2")
        );
        assert_eq!(rebooted_message("n1", &node("b2"), &machine), None);
        assert_eq!(rebooted_message("n1", &node(""), &machine), None);
        assert_eq!(rebooted_message("n1", &Node::default(), &machine), None);
    }

    #[test]
    fn machine_files_parse() {
        assert_eq!(
            parse_meminfo("MemTotal:        8024580 kB\nMemFree: 1 kB\n"),
            Some(8024580 * 1024)
        );
        assert_eq!(
            parse_os_release("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n")
                .as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
    }

    #[test]
    fn a_server_node_is_labelled_control_plane() {
        let id = Identity {
            name: "host".into(),
            ip: "192.0.2.1".parse().unwrap(),
            hostname: "host".into(),
            kubelet_version: "v1.32.0".into(),
            runtime_version: "runc://1.1.5".into(),
            control_plane: true,
            kubelet_port: 10250,
        };
        let l = labels(&id);
        assert_eq!(l["node-role.kubernetes.io/control-plane"], "true");
        assert_eq!(l["kubernetes.io/hostname"], "host");
        let m = Machine {
            cpus: 2,
            memory_bytes: 2048 * 1024,
            ..Default::default()
        };
        assert_eq!(m.capacity()["memory"].0, "2048Ki");
        assert_eq!(m.capacity()["pods"].0, "110");
    }

    #[test]
    fn the_node_is_not_ready_until_its_pod_network_is() {
        let t0 = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        let t1 = t0 + chrono::Duration::seconds(5);
        let before = conditions(&[], t0, false);
        let ready = before.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("KubeletNotReady"));
        assert!(conditions_current(&before, false));
        assert!(!conditions_current(&before, true));
        let after = conditions(&before, t1, true);
        let ready = after.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(ready.reason.as_deref(), Some("KubeletReady"));
        assert_eq!(ready.last_transition_time.as_ref().unwrap().0, t1);
    }
}
