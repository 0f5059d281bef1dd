//! The pod's `/etc/hosts` (upstream's `managedHostsFileContent` and
//! `nodeHostsFileContent` in kubelet_pods.go), written to
//! `<pod-dir>/etc-hosts` and mounted into every container that does not
//! mount something else there.

use k8s_openapi::api::core::v1::{HostAlias, Pod};

const MANAGED_HOSTS_HEADER: &str = "# Kubernetes-managed hosts file.\n";
const MANAGED_HOSTS_HEADER_WITH_HOST_NETWORK: &str =
    "# Kubernetes-managed hosts file (host network).\n";

/// The hosts file of a pod with its own network: localhost entries, then
/// each pod IP with the pod's hostname (and FQDN when it has a subdomain),
/// then the pod's hostAliases.
pub fn managed_hosts_file_content(
    pod_ips: &[String],
    hostname: &str,
    domain: &str,
    aliases: &[HostAlias],
) -> String {
    let mut b = String::from(MANAGED_HOSTS_HEADER);
    b.push_str("127.0.0.1\tlocalhost\n");
    b.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    b.push_str("fe00::0\tip6-localnet\n");
    b.push_str("fe00::0\tip6-mcastprefix\n");
    b.push_str("fe00::1\tip6-allnodes\n");
    b.push_str("fe00::2\tip6-allrouters\n");
    for ip in pod_ips {
        if domain.is_empty() {
            b.push_str(&format!("{ip}\t{hostname}\n"));
        } else {
            b.push_str(&format!("{ip}\t{hostname}.{domain}\t{hostname}\n"));
        }
    }
    b.push_str(&host_aliases_entries(aliases));
    b
}

/// The hosts file of a host-network pod: the node's, then hostAliases.
pub fn node_hosts_file_content(node_hosts: &str, aliases: &[HostAlias]) -> String {
    let mut b = String::from(MANAGED_HOSTS_HEADER_WITH_HOST_NETWORK);
    b.push_str(node_hosts);
    b.push_str(&host_aliases_entries(aliases));
    b
}

fn host_aliases_entries(aliases: &[HostAlias]) -> String {
    if aliases.is_empty() {
        return String::new();
    }
    let mut b = String::from("\n# Entries added by HostAliases.\n");
    for alias in aliases {
        let names = alias.hostnames.as_deref().unwrap_or_default().join("\t");
        b.push_str(&format!("{}\t{names}\n", alias.ip));
    }
    b
}

/// The pod's hostname and domain (upstream's `GeneratePodHostNameAndDomain`):
/// `spec.hostname` or the pod's name, cut to 63 characters; the domain is
/// `<subdomain>.<namespace>.svc.<cluster domain>` when a subdomain is set.
pub fn pod_hostname_and_domain(pod: &Pod, cluster_domain: &str) -> (String, String) {
    let spec = pod.spec.as_ref();
    let hostname = spec
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| pod.metadata.name.clone().unwrap_or_default());
    let hostname = truncate_hostname(&hostname);
    let domain = match spec
        .and_then(|s| s.subdomain.as_deref())
        .filter(|s| !s.is_empty())
    {
        Some(sub) => format!(
            "{sub}.{}.svc.{cluster_domain}",
            pod.metadata.namespace.as_deref().unwrap_or("default")
        ),
        None => String::new(),
    };
    (hostname, domain)
}

fn truncate_hostname(name: &str) -> String {
    if name.len() <= 63 {
        return name.to_string();
    }
    name[..63].trim_end_matches(['-', '.']).to_string()
}
