//! A test pod network that cleans up after itself: a unique bridge and
//! network name, a /24 of 10.200.0.0/16 that no other test process holds,
//! namespaces in a run directory of its own, and a Drop that removes the
//! namespaces, the bridge, host-local's state, the iptables rules the
//! plugins made for this network, and any unreachable routes the test added,
//! even when the test fails.

#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use net::{netns, Cni, CniConfig, DefaultNetwork, IpNet, PodRef};

/// Where test processes record which /24 of 10.200.0.0/16 they hold.
const CIDR_LOCKS: &str = "/run/krate-net-tests";
const BUSYBOX: &str = "/usr/bin/busybox";

static SEQ: AtomicU32 = AtomicU32::new(0);

pub struct TestNet {
    pub name: String,
    pub bridge: String,
    /// The /24 this test holds.
    pub block: IpNet,
    /// The pods' addresses: the block, or the part of it the test chose.
    pub pod_cidr: IpNet,
    pub run_dir: tempfile::TempDir,
    pub cni: Cni,
    routes: Vec<IpNet>,
    links: Vec<String>,
    lock: PathBuf,
}

impl TestNet {
    /// A network whose default config gives pods addresses from `pod_cidr`
    /// of the block held (the whole /24 when `None`).
    pub fn new(pod_cidr: impl FnOnce(IpNet) -> IpNet) -> TestNet {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let (block, lock) = hold_block(pid, seq);
        // Interface names have at most 15 bytes.
        let bridge = format!("krt{pid:x}-{seq}");
        let name = format!("krate-test-{pid}-{seq}");
        let pod_cidr = pod_cidr(block);
        let run_dir = tempfile::tempdir().unwrap();
        let cni = Cni::new(CniConfig {
            conf_dir: run_dir.path().join("net.d"),
            bin_dirs: net::cni::DEFAULT_BIN_DIRS
                .iter()
                .map(PathBuf::from)
                .collect(),
            cache_dir: run_dir.path().join("cni-cache"),
        });
        let net = TestNet {
            name,
            bridge,
            block,
            pod_cidr,
            run_dir,
            cni,
            routes: Vec::new(),
            links: Vec::new(),
            lock,
        };
        assert!(net.cni.ensure_default_config(&net.network()).unwrap());
        net
    }

    /// A namespace `name` standing for a host beyond the node: a veth from
    /// the host (`host_ip`) to it (`peer_ip`, with a default route back via
    /// the host), both in `prefix`-long networks.
    pub fn outside(&mut self, name: &str, host_ip: IpAddr, peer_ip: IpAddr, prefix: u8) -> PathBuf {
        let ns = self.netns(name);
        let host_end = format!("kro{:x}-{}", std::process::id(), self.links.len());
        let (tmp_end, peer_end) = (
            format!("krp{:x}-{}", std::process::id(), self.links.len()),
            "eth0",
        );
        self.links.push(host_end.clone());
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().unwrap();
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ip(&[
            "link", "add", &host_end, "type", "veth", "peer", "name", &tmp_end,
        ]);
        ip(&[
            "link",
            "set",
            &tmp_end,
            "netns",
            ns.to_str().unwrap(),
            "name",
            peer_end,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("{host_ip}/{prefix}"),
            "dev",
            &host_end,
        ]);
        ip(&["link", "set", &host_end, "up"]);
        let host = host_ip.to_string();
        let peer = format!("{peer_ip}/{prefix}");
        netns::run_in(&ns, || {
            ip(&["addr", "add", &peer, "dev", peer_end]);
            ip(&["link", "set", peer_end, "up"]);
            ip(&["link", "set", "lo", "up"]);
            ip(&["route", "add", "default", "via", &host]);
        })
        .unwrap();
        ns
    }

    pub fn netns(&self, name: &str) -> PathBuf {
        netns::create(self.run_dir.path(), name).unwrap()
    }

    /// The address `n` of the block (`.1` is the bridge's in a /24 network).
    pub fn addr(&self, n: u8) -> IpAddr {
        let IpAddr::V4(base) = self.block.network() else {
            unreachable!()
        };
        let [a, b, c, _] = base.octets();
        IpAddr::from([a, b, c, n])
    }

    pub fn network(&self) -> DefaultNetwork {
        DefaultNetwork {
            name: self.name.clone(),
            bridge: self.bridge.clone(),
            pod_cidr: self.pod_cidr.to_string(),
            mtu: None,
        }
    }

    /// Records routes to remove on drop.
    pub fn track_routes(&mut self, cidrs: &[IpNet]) {
        self.routes.extend_from_slice(cidrs);
    }

    /// host-local's file for an allocated address.
    pub fn ipam_file(&self, ip: IpAddr) -> PathBuf {
        Path::new("/var/lib/cni/networks")
            .join(&self.name)
            .join(ip.to_string())
    }

    /// The host ends of veths attached to the bridge.
    pub fn bridge_ports(&self) -> Vec<String> {
        let out = Command::new("ip")
            .args(["-o", "link", "show", "master", &self.bridge])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap().to_owned())
            .collect()
    }

    /// `iptables -t nat -S` lines that name this network's container `id`.
    pub fn nat_rules_for(&self, id: &str) -> Vec<String> {
        nat_rules()
            .into_iter()
            .filter(|l| l.contains(&format!("name: \\\"{}\\\" id: \\\"{id}\\\"", self.name)))
            .collect()
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let _ = netns::remove_all(self.run_dir.path());
        let _ = net::default_network::tear_down(&self.network());
        let _ = net::routes::remove_unreachable(&self.routes);
        for link in &self.links {
            let _ = Command::new("ip").args(["link", "del", link]).output();
        }
        let _ = fs::remove_file(&self.lock);
    }
}

pub fn pod(name: &str) -> PodRef {
    PodRef {
        namespace: "default".into(),
        name: name.into(),
        uid: format!("uid-{name}"),
    }
}

/// Takes a /24 of 10.200.0.0/16 that no other live test process holds and
/// that no route or address on this machine uses.
fn hold_block(pid: u32, seq: u32) -> (IpNet, PathBuf) {
    fs::create_dir_all(CIDR_LOCKS).unwrap();
    let start = (pid.wrapping_mul(31).wrapping_add(seq * 7)) % 256;
    for i in 0..256 {
        let third = (start + i) % 256;
        let block: IpNet = format!("10.200.{third}.0/24").parse().unwrap();
        let lock = Path::new(CIDR_LOCKS).join(third.to_string());
        let taken = match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(mut file) => {
                file.write_all(pid.to_string().as_bytes()).unwrap();
                false
            }
            Err(_) => {
                // Held by a process that died: take it over.
                let holder = fs::read_to_string(&lock).unwrap_or_default();
                let alive = holder
                    .trim()
                    .parse::<u32>()
                    .is_ok_and(|p| Path::new(&format!("/proc/{p}")).exists());
                if alive || holder.trim() == pid.to_string() {
                    true
                } else {
                    fs::write(&lock, pid.to_string()).unwrap();
                    false
                }
            }
        };
        if taken {
            continue;
        }
        if block_in_use(&block) {
            let _ = fs::remove_file(&lock);
            continue;
        }
        return (block, lock);
    }
    panic!("every /24 of 10.200.0.0/16 is in use");
}

fn block_in_use(block: &IpNet) -> bool {
    let routes = Command::new("ip")
        .args([
            "-4",
            "route",
            "show",
            "table",
            "all",
            "root",
            &block.to_string(),
        ])
        .output()
        .unwrap();
    let covering = Command::new("ip")
        .args(["-4", "route", "show", "match", &block.to_string()])
        .output()
        .unwrap();
    // Routes of /16 or longer that cover the block (a host's wide routes,
    // like the default one, do not make it taken).
    let uses_block = String::from_utf8_lossy(&covering.stdout).lines().any(|l| {
        let mut words = l.split_whitespace();
        let mut dst = words.next().unwrap_or_default();
        if [
            "unreachable",
            "blackhole",
            "prohibit",
            "throw",
            "local",
            "broadcast",
            "unicast",
        ]
        .contains(&dst)
        {
            dst = words.next().unwrap_or_default();
        }
        if dst == "default" {
            return false;
        }
        match dst.split_once('/') {
            Some((_, len)) => len.parse::<u8>().is_ok_and(|len| len >= 16),
            None => !dst.is_empty(),
        }
    });
    !routes.stdout.is_empty() || uses_block
}

pub fn nat_rules() -> Vec<String> {
    let out = Command::new("iptables")
        .args(["-w", "-t", "nat", "-S"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `busybox ping -c1 -W1 <ip>` from inside `ns`, retried until `deadline`
/// (the first packet may wait for ARP).
pub fn ping_from(ns: &Path, ip: IpAddr, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        let ok = netns::run_in(ns, || {
            Command::new(BUSYBOX)
                .args(["ping", "-c1", "-W1", &ip.to_string()])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        })
        .unwrap();
        if ok || Instant::now() >= deadline {
            return ok;
        }
    }
}

/// A TCP listener bound inside `ns` that answers every connection with
/// `greeting`, on a thread of its own, for `count` connections.
pub fn serve_in(ns: &Path, addr: SocketAddr, greeting: &'static str, count: usize) -> SocketAddr {
    let listener = netns::run_in(ns, || TcpListener::bind(addr))
        .unwrap()
        .unwrap();
    let local = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().take(count).flatten() {
            let _ = stream.write_all(greeting.as_bytes());
        }
    });
    local
}

/// Connects to `addr` (from inside `ns`, or the host when `None`) and reads
/// what the server says.
pub fn fetch(ns: Option<&Path>, addr: SocketAddr) -> std::io::Result<String> {
    let connect = move || -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text)
    };
    match ns {
        Some(ns) => netns::run_in(ns, connect).unwrap(),
        None => connect(),
    }
}

/// A free TCP port on the host.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
