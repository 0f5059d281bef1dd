//! The network a node gets when its CNI config directory is empty: the
//! reference plugins' `bridge` (pods on a Linux bridge, the bridge as their
//! gateway, traffic leaving the pod CIDR masqueraded) with `host-local`
//! addresses from the node's pod CIDR, and `portmap` for hostPorts. The
//! pod's `lo` is the loopback plugin's, run by [`crate::Cni`] for every pod.

use serde_json::json;

/// What the default network is made of. The bridge name and the network name
/// (which names host-local's state directory and the iptables chains'
/// comments) are host-global: clusters sharing a machine each need their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultNetwork {
    pub name: String,
    pub bridge: String,
    /// The node's pod CIDR (its `spec.podCIDR`), e.g. "10.42.0.0/24".
    pub pod_cidr: String,
    /// The bridge's and veths' MTU; the kernel's default when `None`.
    pub mtu: Option<u32>,
}

impl Default for DefaultNetwork {
    fn default() -> Self {
        DefaultNetwork {
            name: "krate".into(),
            bridge: "cni0".into(),
            pod_cidr: "10.42.0.0/24".into(),
            mtu: None,
        }
    }
}

/// The default network as a `.conflist` document (CNI spec 1.0.0).
pub fn default_config(network: &DefaultNetwork) -> String {
    let default_route = if network.pod_cidr.contains(':') {
        "::/0"
    } else {
        "0.0.0.0/0"
    };
    let mut bridge = json!({
        "type": "bridge",
        "bridge": network.bridge,
        "isGateway": true,
        "ipMasq": true,
        "hairpinMode": true,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": network.pod_cidr}]],
            "routes": [{"dst": default_route}],
        },
    });
    if let Some(mtu) = network.mtu {
        bridge["mtu"] = json!(mtu);
    }
    let list = json!({
        "cniVersion": "1.0.0",
        "name": network.name,
        "plugins": [
            bridge,
            {"type": "portmap", "snat": true, "capabilities": {"portMappings": true}},
        ],
    });
    let mut text = serde_json::to_string_pretty(&list).expect("JSON values serialize");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::NetworkList;

    #[test]
    fn the_default_config_is_a_bridge_and_portmap_list() {
        let text = default_config(&DefaultNetwork {
            name: "krate".into(),
            bridge: "krt0".into(),
            pod_cidr: "10.42.3.0/24".into(),
            mtu: Some(1450),
        });
        let list = NetworkList::from_list_bytes(text.as_bytes()).unwrap();
        assert_eq!(list.name, "krate");
        assert_eq!(list.cni_version, "1.0.0");
        let bridge = &list.plugins[0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["bridge"], "krt0");
        assert_eq!(bridge["isGateway"], true);
        assert_eq!(bridge["ipMasq"], true);
        assert_eq!(bridge["hairpinMode"], true);
        assert_eq!(bridge["mtu"], 1450);
        assert_eq!(bridge["ipam"]["type"], "host-local");
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.42.3.0/24");
        assert_eq!(bridge["ipam"]["routes"][0]["dst"], "0.0.0.0/0");
        let portmap = &list.plugins[1];
        assert_eq!(portmap["type"], "portmap");
        assert_eq!(portmap["snat"], true);
        assert_eq!(portmap["capabilities"]["portMappings"], true);
    }

    #[test]
    fn an_ipv6_pod_cidr_gets_an_ipv6_default_route() {
        let text = default_config(&DefaultNetwork {
            pod_cidr: "fd42::/64".into(),
            ..DefaultNetwork::default()
        });
        let list = NetworkList::from_list_bytes(text.as_bytes()).unwrap();
        assert_eq!(list.plugins[0]["ipam"]["routes"][0]["dst"], "::/0");
        assert!(list.plugins[0].get("mtu").is_none());
    }
}
