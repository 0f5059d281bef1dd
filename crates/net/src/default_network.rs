//! The network a node gets when its CNI config directory is empty: the
//! reference plugins' `bridge` (pods on a Linux bridge, the bridge as their
//! gateway) with `host-local` addresses from the node's pod CIDR, and
//! `portmap` for hostPorts. The pod's `lo` is the loopback plugin's, run by
//! [`crate::Cni`] for every pod.
//!
//! Traffic from pods to anywhere outside the pod CIDR leaves with the
//! node's address: [`ensure_masquerade`] installs that once for the node
//! (as flannel does for k3s), rather than the bridge plugin's `ipMasq`,
//! which makes a chain of its own per pod and so runs `iptables` nine
//! times for every pod start and again at every stop.
//!
//! The portmap plugin and [`ensure_masquerade`] run the `iptables` command; on
//! Debian 12 that is iptables-nft (the alternatives' default), which is what
//! the tests run with. The legacy backend works as well, as long as one node
//! does not mix them with its service proxy's rules.
//!
//! [`tear_down`] removes what the network leaves on the host after its last
//! pod is gone (the bridge, host-local's state) and anything a pod's DEL
//! could not (rules of pods whose DEL never ran): for `krate uninstall` and
//! for test harnesses that run whole clusters.

use std::path::Path;
use std::process::Command;

use serde_json::json;

/// Where the host-local plugin keeps its allocations unless told otherwise:
/// one directory per network name.
pub const HOST_LOCAL_DATA_DIR: &str = "/var/lib/cni/networks";

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
        "ipMasq": false,
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

/// Installs, unless there, the node-wide masquerade of `network`'s pods:
/// in the nat table, POSTROUTING sends what comes from the pod CIDR to a
/// chain of the network's own, which accepts traffic to the pod CIDR as it
/// is and masquerades everything else but multicast (the bridge plugin's
/// ipMasq rules, once for the whole CIDR). Each rule's comment names the
/// network as the plugins' do, so [`tear_down`] removes them too.
pub fn ensure_masquerade(network: &DefaultNetwork) -> std::io::Result<()> {
    let v6 = network.pod_cidr.contains(':');
    let iptables = if v6 { "ip6tables" } else { "iptables" };
    let multicast = if v6 { "ff00::/8" } else { "224.0.0.0/4" };
    let chain = masquerade_chain(&network.name);
    let comment = format!("name: \"{}\" id: \"masquerade\"", network.name);
    let run = |args: &[&str]| {
        Command::new(iptables)
            .args(["-w", "-t", "nat"])
            .args(args)
            .output()
    };
    // Exists already on a restart: that is fine.
    run(&["-N", &chain])?;
    let rules: [(&str, Vec<&str>); 3] = [
        (&chain, vec!["-d", &network.pod_cidr, "-j", "ACCEPT"]),
        (&chain, vec!["!", "-d", multicast, "-j", "MASQUERADE"]),
        ("POSTROUTING", vec!["-s", &network.pod_cidr, "-j", &chain]),
    ];
    for (table_chain, rule) in rules {
        let mut spec = rule.clone();
        let at = spec.len() - 2;
        spec.splice(at..at, ["-m", "comment", "--comment", comment.as_str()]);
        let mut check = vec!["-C", table_chain];
        check.extend(&spec);
        if run(&check)?.status.success() {
            continue;
        }
        let mut append = vec!["-A", table_chain];
        append.extend(&spec);
        let out = run(&append)?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "{iptables} {}: {}",
                append.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    Ok(())
}

/// The masquerade chain of network `name`: `CNI-MASQ-` and a stable hash
/// of the name (FNV-1a), within iptables' 28 characters.
fn masquerade_chain(name: &str) -> String {
    let hash = name.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    format!("CNI-MASQ-{hash:016x}")
}

/// Removes the default network `network` from the host: its bridge (and so
/// the veths still on it), host-local's allocations for its name, and every
/// nat rule whose comment names it (the masquerade of [`ensure_masquerade`],
/// portmap's DNAT chains, and ipMasq chains of configs from before). Pods' namespaces and cached results are the
/// caller's. Whatever is already gone is skipped; the error is a command
/// that could not run.
pub fn tear_down(network: &DefaultNetwork) -> std::io::Result<()> {
    // The bridge may be gone: `ip` says so, which is fine.
    Command::new("ip")
        .args(["link", "del", &network.bridge])
        .output()?;
    for iptables in ["iptables", "ip6tables"] {
        remove_nat_rules(iptables, &network.name)?;
    }
    match std::fs::remove_dir_all(Path::new(HOST_LOCAL_DATA_DIR).join(&network.name)) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// Deletes the nat rules whose comment names `network` (the reference
/// plugins write `name: "<network>" id: "<container id>"`) and the CNI-
/// chains they jump to. `-S` prints rules shell-quoted, so each is replayed
/// with `-D` through sh.
fn remove_nat_rules(iptables: &str, network: &str) -> std::io::Result<()> {
    let listed = match Command::new(iptables)
        .args(["-w", "-t", "nat", "-S"])
        .output()
    {
        Ok(out) => out,
        // No ip6tables here: nothing of ours can be in it.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    let marker = format!("name: \\\"{network}\\\" id: ");
    let mut chains = Vec::new();
    for rule in String::from_utf8_lossy(&listed.stdout).lines() {
        let Some(spec) = rule.strip_prefix("-A ") else {
            continue;
        };
        if !rule.contains(&marker) {
            continue;
        }
        if let Some(target) = spec
            .split(" -j ")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
        {
            // The shared CNI-HOSTPORT-* chains serve every portmap network.
            if target.starts_with("CNI-") && !target.starts_with("CNI-HOSTPORT-") {
                chains.push(target.to_owned());
            }
        }
        Command::new("sh")
            .arg("-c")
            .arg(format!("{iptables} -w -t nat -D {spec}"))
            .output()?;
    }
    chains.sort();
    chains.dedup();
    for chain in chains {
        Command::new(iptables)
            .args(["-w", "-t", "nat", "-F", &chain])
            .output()?;
        Command::new(iptables)
            .args(["-w", "-t", "nat", "-X", &chain])
            .output()?;
    }
    Ok(())
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
        assert_eq!(
            bridge["ipMasq"], false,
            "the node masquerades once for all pods"
        );
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
