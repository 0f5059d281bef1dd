//! The default bridge network with the real plugins (Debian's
//! containernetworking-plugins): pods in network namespaces get addresses
//! from the node's pod CIDR, reach each other and the host, hostPorts reach
//! them, DEL releases what ADD took, and unreachable routes refuse what no
//! pod holds. Root only; each test has its own bridge, network name and /24
//! of 10.200.0.0/16, and removes them (support::TestNet) even on failure.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use net::{netns, routes, IpNet, PortMapping};
use support::{fetch, free_port, ping_from, pod, serve_in, TestNet};

#[tokio::test(flavor = "multi_thread")]
async fn two_pods_on_the_bridge_reach_each_other_and_the_host_and_del_releases_them() {
    let net = TestNet::new(|block| block);
    let ns_a = net.netns("pod-a");
    let ns_b = net.netns("pod-b");
    assert!(netns::exists(&ns_a));
    // Creating an existing namespace keeps it.
    assert_eq!(net.netns("pod-a"), ns_a);

    // Both at once, as pod workers do.
    let (pod_a, pod_b) = (pod("a"), pod("b"));
    let (ips_a, ips_b) = tokio::join!(
        net.cni.add("sandbox-a", &ns_a, &pod_a, &[]),
        net.cni.add("sandbox-b", &ns_b, &pod_b, &[]),
    );
    let (ips_a, ips_b) = (ips_a.unwrap(), ips_b.unwrap());
    assert_eq!(ips_a.len(), 1, "{ips_a:?}");
    assert_eq!(ips_b.len(), 1, "{ips_b:?}");
    let (ip_a, ip_b) = (ips_a[0], ips_b[0]);
    for ip in [ip_a, ip_b] {
        assert!(net.block.contains(&ip), "{ip} is not in {}", net.block);
        assert!(net.ipam_file(ip).exists(), "host-local recorded {ip}");
    }
    assert_ne!(ip_a, ip_b);
    assert_eq!(net.bridge_ports().len(), 2, "{:?}", net.bridge_ports());

    let gateway = net.addr(1);
    let wait = Duration::from_secs(10);
    assert!(ping_from(&ns_a, ip_b, wait), "pod a pings pod b");
    assert!(ping_from(&ns_b, ip_a, wait), "pod b pings pod a");
    assert!(
        ping_from(&ns_a, gateway, wait),
        "pod a pings the host (its gateway)"
    );
    // The loopback plugin brought lo up.
    assert!(
        ping_from(&ns_a, "127.0.0.1".parse().unwrap(), wait),
        "pod a pings its own loopback"
    );

    // TCP between the pods, and from the host into a pod.
    let server = serve_in(&ns_b, SocketAddr::new(ip_b, 0), "hello from b", 2);
    assert_eq!(fetch(Some(&ns_a), server).unwrap(), "hello from b");
    assert_eq!(fetch(None, server).unwrap(), "hello from b");

    // Port-forward's way in: a connection made from inside the pod to its
    // own loopback.
    let local = serve_in(&ns_b, "127.0.0.1:0".parse().unwrap(), "hello on lo", 1);
    let mut stream = netns::connect_tcp(&ns_b, local).await.unwrap();
    let mut text = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut text)
        .await
        .unwrap();
    assert_eq!(text, "hello on lo");
    assert!(
        netns::connect_tcp(&ns_a, local).await.is_err(),
        "pod a has no such listener"
    );

    // CHECK agrees with what ADD did.
    net.cni.check("sandbox-a", &ns_a, &pod("a")).await.unwrap();

    // DEL removes the pod's veth and releases its address; twice is fine.
    net.cni
        .del("sandbox-a", Some(&ns_a), &pod("a"))
        .await
        .unwrap();
    assert!(!net.ipam_file(ip_a).exists(), "host-local released {ip_a}");
    assert_eq!(net.bridge_ports().len(), 1, "{:?}", net.bridge_ports());
    assert!(
        net.nat_rules_for("sandbox-a").is_empty(),
        "{:?}",
        net.nat_rules_for("sandbox-a")
    );
    let eth0 = netns::run_in(&ns_a, || {
        std::process::Command::new("ip")
            .args(["link", "show", "eth0"])
            .output()
    })
    .unwrap()
    .unwrap();
    assert!(!eth0.status.success(), "eth0 is gone from pod a");
    net.cni
        .del("sandbox-a", Some(&ns_a), &pod("a"))
        .await
        .unwrap();

    // DEL after the namespace is gone still releases the address.
    netns::remove(&ns_b).unwrap();
    netns::remove(&ns_b).unwrap();
    assert!(!ns_b.exists());
    net.cni
        .del("sandbox-b", Some(&ns_b), &pod("b"))
        .await
        .unwrap();
    net.cni.del("sandbox-b", None, &pod("b")).await.unwrap();
    assert!(!net.ipam_file(ip_b).exists(), "host-local released {ip_b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_port_reaches_a_listener_in_the_pod() {
    let net = TestNet::new(|block| block);
    let ns = net.netns("web");
    let host_port = free_port();
    let mappings = [PortMapping {
        protocol: "tcp".into(),
        container_port: 8080,
        host_port,
        host_ip: String::new(),
    }];
    let ips = net
        .cni
        .add("sandbox-web", &ns, &pod("web"), &mappings)
        .await
        .unwrap();
    let ip = ips[0];
    assert!(
        !net.nat_rules_for("sandbox-web").is_empty(),
        "portmap's rules exist"
    );

    serve_in(
        &ns,
        SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 8080),
        "hello from the pod",
        3,
    );
    // From the host's loopback and from a host address (the bridge's).
    let loopback = SocketAddr::new(IpAddr::from([127, 0, 0, 1]), host_port);
    assert_eq!(fetch(None, loopback).unwrap(), "hello from the pod");
    let host_ip = SocketAddr::new(net.addr(1), host_port);
    assert_eq!(fetch(None, host_ip).unwrap(), "hello from the pod");
    // And directly.
    assert_eq!(
        fetch(None, SocketAddr::new(ip, 8080)).unwrap(),
        "hello from the pod"
    );

    net.cni
        .del("sandbox-web", Some(&ns), &pod("web"))
        .await
        .unwrap();
    assert!(
        net.nat_rules_for("sandbox-web").is_empty(),
        "{:?}",
        net.nat_rules_for("sandbox-web")
    );
    assert!(!net.ipam_file(ip).exists());
    let err = fetch(None, loopback).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_reach_beyond_the_pod_cidr_with_the_nodes_address_and_each_other_with_their_own() {
    // Pods get the lower half of the block; the upper half plays a network
    // beyond the node.
    let mut net = TestNet::new(|block| IpNet::new(block.network(), 25).unwrap());
    // Other tests change the nat table meanwhile: only this network's rules
    // and its own chain count.
    net::default_network::ensure_masquerade(&net.network()).unwrap();
    let rules = net.nat_rules_for("masquerade");
    assert_eq!(rules.len(), 3, "{rules:?}");
    let chain = rules
        .iter()
        .find(|r| r.starts_with("-A POSTROUTING "))
        .and_then(|r| r.split_whitespace().last())
        .unwrap_or_else(|| panic!("POSTROUTING jumps to the network's chain: {rules:?}"))
        .to_owned();
    assert!(support::nat_rules().contains(&format!("-N {chain}")));
    // Twice is fine: nothing is added again.
    net::default_network::ensure_masquerade(&net.network()).unwrap();
    assert_eq!(net.nat_rules_for("masquerade"), rules);
    let (host_ip, outside_ip) = (net.addr(201), net.addr(202));
    let outside = net.outside("outside", host_ip, outside_ip, 30);

    let (ns_a, ns_b) = (net.netns("pod-a"), net.netns("pod-b"));
    let ip_a = net
        .cni
        .add("sandbox-a", &ns_a, &pod("a"), &[])
        .await
        .unwrap()[0];
    let ip_b = net
        .cni
        .add("sandbox-b", &ns_b, &pod("b"), &[])
        .await
        .unwrap()[0];
    assert!(net.pod_cidr.contains(&ip_a), "{ip_a} in {}", net.pod_cidr);

    // Beyond the pod CIDR a pod's packets carry the node's address...
    let server = serve_peer_address(&outside, SocketAddr::new(outside_ip, 0));
    assert_eq!(fetch(Some(&ns_a), server).unwrap(), host_ip.to_string());
    // ...and to another pod its own.
    let server = serve_peer_address(&ns_b, SocketAddr::new(ip_b, 0));
    assert_eq!(fetch(Some(&ns_a), server).unwrap(), ip_a.to_string());

    net.cni
        .del("sandbox-a", Some(&ns_a), &pod("a"))
        .await
        .unwrap();
    net.cni
        .del("sandbox-b", Some(&ns_b), &pod("b"))
        .await
        .unwrap();
    net::default_network::tear_down(&net.network()).unwrap();
    let left: Vec<String> = support::nat_rules()
        .into_iter()
        .filter(|r| r.contains(&chain) || r.contains(&format!("name: \\\"{}\\\"", net.name)))
        .collect();
    assert!(
        left.is_empty(),
        "the rules and the chain are gone: {left:?}"
    );
}

/// Serves one connection on `addr` inside `ns`: it answers with the
/// address the connection came from.
fn serve_peer_address(ns: &std::path::Path, addr: SocketAddr) -> SocketAddr {
    let listener = netns::run_in(ns, || std::net::TcpListener::bind(addr))
        .unwrap()
        .unwrap();
    let local = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut stream, peer)) = listener.accept() {
            let _ = std::io::Write::write_all(&mut stream, peer.ip().to_string().as_bytes());
        }
    });
    local
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_routes_refuse_addresses_no_pod_holds_and_the_pod_cidr_still_wins() {
    // The held /24 plays the cluster CIDR; the node's pods use its lower half.
    let mut net = TestNet::new(|block| format!("{}/25", block.network()).parse().unwrap());
    let cluster: IpNet = net.block;
    net.track_routes(&[cluster]);
    routes::ensure_unreachable(&[cluster]).unwrap();
    routes::ensure_unreachable(&[cluster]).unwrap();
    assert!(routes::has_unreachable(&cluster).unwrap());

    let ns = net.netns("p");
    let ip = net.cni.add("sandbox-p", &ns, &pod("p"), &[]).await.unwrap()[0];
    let server = serve_in(&ns, SocketAddr::new(ip, 0), "still here", 1);
    assert_eq!(
        fetch(None, server).unwrap(),
        "still here",
        "the bridge's /25 is more specific"
    );

    // No pod holds .200: refused at once, from the host and from a pod.
    let nobody = SocketAddr::new(net.addr(200), 80);
    for from in [None, Some(ns.as_path())] {
        let started = Instant::now();
        let err = fetch(from, nobody).unwrap_err();
        let errno = err.raw_os_error();
        assert!(
            errno == Some(nix::libc::EHOSTUNREACH) || errno == Some(nix::libc::ENETUNREACH),
            "from {from:?}: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "refused, not timed out"
        );
    }

    net.cni
        .del("sandbox-p", Some(&ns), &pod("p"))
        .await
        .unwrap();
    routes::remove_unreachable(&[cluster]).unwrap();
    routes::remove_unreachable(&[cluster]).unwrap();
    assert!(!routes::has_unreachable(&cluster).unwrap());
}

#[test]
fn run_in_runs_in_the_namespace_and_leaves_the_caller_where_it_was() {
    let run_dir = tempfile::tempdir().unwrap();
    let ns = netns::create(run_dir.path(), "only-lo").unwrap();
    let links = |out: std::process::Output| String::from_utf8_lossy(&out.stdout).lines().count();
    let inside = netns::run_in(&ns, || {
        std::process::Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap()
    })
    .unwrap();
    assert_eq!(links(inside), 1, "a new namespace has only lo");
    let outside = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .unwrap();
    assert!(
        links(outside) > 1,
        "the caller stays in the host's namespace"
    );
    netns::remove_all(run_dir.path()).unwrap();
    assert!(!ns.exists());
    let err = netns::run_in(&ns, || ()).unwrap_err();
    assert!(err.to_string().contains("only-lo"), "{err}");
    assert!(netns::create(run_dir.path(), "a/b").is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn tear_down_removes_what_pods_without_a_del_left_behind() {
    let net = TestNet::new(|block| block);
    let ns = net.netns("orphan");
    let mappings = [PortMapping {
        protocol: "tcp".into(),
        container_port: 80,
        host_port: free_port(),
        host_ip: String::new(),
    }];
    let ip = net
        .cni
        .add("sandbox-orphan", &ns, &pod("orphan"), &mappings)
        .await
        .unwrap()[0];
    // The node dies: the namespace goes, no DEL runs.
    netns::remove(&ns).unwrap();
    assert!(!net.nat_rules_for("sandbox-orphan").is_empty());

    net::default_network::tear_down(&net.network()).unwrap();
    assert!(
        net.nat_rules_for("sandbox-orphan").is_empty(),
        "{:?}",
        net.nat_rules_for("sandbox-orphan")
    );
    assert!(!net.ipam_file(ip).exists());
    let bridge = std::process::Command::new("ip")
        .args(["link", "show", &net.bridge])
        .output()
        .unwrap();
    assert!(!bridge.status.success(), "the bridge is gone");
    // Twice is fine.
    net::default_network::tear_down(&net.network()).unwrap();
}
