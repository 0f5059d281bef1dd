//! The node IPAM controller's range allocator (upstream
//! `pkg/controller/nodeipam/ipam/range_allocator.go`, component
//! `cidrAllocator`): every node without `spec.podCIDR` gets the next free
//! block of `--node-cidr-mask-size` (24) out of `--cluster-cidr`
//! (10.42.0.0/16, k3s' default). Nodes that already have a pod CIDR keep
//! it (simulated nodes choose their own) and their blocks are marked used;
//! a deleted node's block is released. When the range is full the node
//! gets a `CIDRNotAvailable` event and is retried with back-off.
//!
//! The block arithmetic is [`CidrSet`], a pure value.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio::task::JoinSet;

use crate::events::Recorder;
use crate::informer::{Change, Informer, Key};
use crate::queue::WorkQueue;
use crate::runner::{self, is_not_found, Action, Reconciler, Result};
use crate::Context;

const COMPONENT: &str = "cidrAllocator";
const WORKERS: usize = 2;

/// An IPv4 network: base address and prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Net {
    pub fn parse(s: &str) -> std::result::Result<Ipv4Net, String> {
        let (ip, len) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR (want e.g. 10.42.0.0/16)"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("{s:?}: {ip:?} is not an IPv4 address"))?;
        let prefix: u8 = len
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("{s:?}: prefix must be 0..=32"))?;
        Ok(Ipv4Net {
            base: Ipv4Addr::from(u32::from(ip) & mask(prefix)),
            prefix,
        })
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.base)
    }
}

impl std::fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

/// The blocks of one size inside a cluster CIDR, each free or used
/// (upstream `cidrset.CidrSet`). Allocation takes the lowest free block.
#[derive(Clone, Debug)]
pub struct CidrSet {
    cluster: Ipv4Net,
    block_prefix: u8,
    used: Vec<bool>,
}

impl CidrSet {
    pub fn new(cluster: Ipv4Net, block_prefix: u8) -> std::result::Result<CidrSet, String> {
        if block_prefix < cluster.prefix || block_prefix > 32 {
            return Err(format!(
                "node CIDR mask size {block_prefix} must be at least the cluster CIDR's {} and at most 32",
                cluster.prefix
            ));
        }
        if block_prefix - cluster.prefix > 20 {
            return Err(format!(
                "node CIDR mask size {block_prefix} gives more than 2^20 blocks of {cluster}"
            ));
        }
        Ok(CidrSet {
            cluster,
            block_prefix,
            used: vec![false; 1 << (block_prefix - cluster.prefix)],
        })
    }

    fn block(&self, i: usize) -> Ipv4Net {
        let step = 1u64 << (32 - self.block_prefix);
        Ipv4Net {
            base: Ipv4Addr::from((u32::from(self.cluster.base) as u64 + i as u64 * step) as u32),
            prefix: self.block_prefix,
        }
    }

    /// The index of the block `net` is, if it is one of ours exactly.
    fn index(&self, net: &Ipv4Net) -> Option<usize> {
        if net.prefix != self.block_prefix || !self.cluster.contains(net.base) {
            return None;
        }
        let offset = u32::from(net.base) - u32::from(self.cluster.base);
        Some((offset >> (32 - self.block_prefix)) as usize)
    }

    /// The lowest free block, now used; `None` when the range is full.
    pub fn allocate_next(&mut self) -> Option<Ipv4Net> {
        let i = self.used.iter().position(|u| !u)?;
        self.used[i] = true;
        Some(self.block(i))
    }

    /// Marks `net` used (a node that came with its CIDR). Networks that are
    /// not one of our blocks are none of our business.
    pub fn occupy(&mut self, net: &Ipv4Net) {
        if let Some(i) = self.index(net) {
            self.used[i] = true;
        }
    }

    pub fn release(&mut self, net: &Ipv4Net) {
        if let Some(i) = self.index(net) {
            self.used[i] = false;
        }
    }

    pub fn is_used(&self, net: &Ipv4Net) -> bool {
        self.index(net).is_some_and(|i| self.used[i])
    }
}

fn pod_cidrs(node: &Node) -> Vec<Ipv4Net> {
    let spec = node.spec.as_ref();
    let mut cidrs: Vec<&String> = spec
        .and_then(|s| s.pod_cidrs.as_ref())
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    if cidrs.is_empty() {
        cidrs.extend(spec.and_then(|s| s.pod_cidr.as_ref()));
    }
    cidrs
        .into_iter()
        .filter_map(|c| Ipv4Net::parse(c).ok())
        .collect()
}

fn has_pod_cidr(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.pod_cidr.as_deref())
        .is_some_and(|c| !c.is_empty())
}

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let Some(cluster) = ctx.options.cluster_cidr.as_deref() else {
        return;
    };
    let set = match Ipv4Net::parse(cluster)
        .and_then(|net| CidrSet::new(net, ctx.options.node_cidr_mask_size))
    {
        Ok(set) => set,
        Err(e) => {
            tracing::error!(error = %e, "node IPAM: bad cluster CIDR; not allocating pod CIDRs");
            return;
        }
    };
    let nodes = ctx.informers.get::<Node>();
    let queue = WorkQueue::new();
    let controller = Arc::new(NodeIpam {
        client: ctx.client.clone(),
        nodes: nodes.clone(),
        state: Mutex::new(State {
            set,
            allocated: HashMap::new(),
        }),
        recorder: ctx.recorder(COMPONENT),
    });
    {
        let queue = queue.clone();
        let controller = Arc::downgrade(&controller);
        nodes.on_change(move |change| match change {
            Change::Deleted(node) => {
                if let Some(c) = controller.upgrade() {
                    c.release(node);
                }
            }
            _ => {
                let node = change.object();
                if !has_pod_cidr(node) {
                    queue.add(Key::of(node.as_ref()));
                } else if let Some(c) = controller.upgrade() {
                    c.occupy(node);
                }
            }
        });
    }
    let synced = {
        let (controller, queue) = (controller.clone(), queue.clone());
        async move {
            nodes.wait_synced().await;
            // Every CIDR already given out is marked used before any new one is
            // handed out (upstream's NewCIDRRangeAllocator does the same).
            for node in nodes.list() {
                controller.occupy(&node);
            }
            for node in nodes.list() {
                if !has_pod_cidr(&node) {
                    queue.add(Key::of(node.as_ref()));
                }
            }
        }
    };
    runner::spawn_when_synced(tasks, synced, controller, queue, WORKERS);
}

struct State {
    set: CidrSet,
    /// What this controller handed out, by node name, until the node shows
    /// it (a re-sync before the informer caught up gives the same block).
    allocated: HashMap<String, Ipv4Net>,
}

pub struct NodeIpam {
    client: kube::Client,
    nodes: Informer<Node>,
    state: Mutex<State>,
    recorder: Recorder,
}

impl NodeIpam {
    fn occupy(&self, node: &Node) {
        let mut state = self.state.lock().unwrap();
        for net in pod_cidrs(node) {
            state.set.occupy(&net);
        }
        if let Some(name) = node.metadata.name.as_deref() {
            state.allocated.remove(name);
        }
    }

    fn release(&self, node: &Node) {
        let mut state = self.state.lock().unwrap();
        for net in pod_cidrs(node) {
            state.set.release(&net);
        }
        if let Some(name) = node.metadata.name.as_deref() {
            if let Some(net) = state.allocated.remove(name) {
                state.set.release(&net);
            }
        }
    }
}

#[async_trait::async_trait]
impl Reconciler for NodeIpam {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let Some(node) = self.nodes.get(key) else {
            return Ok(Action::Done);
        };
        if has_pod_cidr(&node) || node.metadata.deletion_timestamp.is_some() {
            return Ok(Action::Done);
        }
        let name = key.name.clone();
        let net = {
            let mut state = self.state.lock().unwrap();
            match state.allocated.get(&name) {
                Some(net) => Some(*net),
                None => {
                    let net = state.set.allocate_next();
                    if let Some(net) = net {
                        state.allocated.insert(name.clone(), net);
                    }
                    net
                }
            }
        };
        let Some(net) = net else {
            // Upstream: nodeutil.RecordNodeStatusChange(recorder, node, "CIDRNotAvailable").
            self.recorder.record(
                node_ref(&name),
                crate::events::NORMAL,
                "CIDRNotAvailable",
                format!("Node {name} status is now: CIDRNotAvailable"),
            );
            return Err(runner::Error::Other(format!(
                "failed to allocate cidr from cluster cidr: no free pod CIDR for node {name}"
            )));
        };
        let cidr = net.to_string();
        let api: Api<Node> = Api::all(self.client.clone());
        let patch = json!({ "spec": { "podCIDR": cidr, "podCIDRs": [cidr] } });
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::info!(node = %name, %cidr, "allocated the node's pod CIDR");
                Ok(Action::Done)
            }
            Err(e) if is_not_found(&e) => {
                let mut state = self.state.lock().unwrap();
                state.allocated.remove(&name);
                state.set.release(&net);
                Ok(Action::Done)
            }
            Err(e) => Err(e.into()),
        }
    }
}

fn node_ref(name: &str) -> k8s_openapi::api::core::v1::ObjectReference {
    k8s_openapi::api::core::v1::ObjectReference {
        kind: Some("Node".into()),
        name: Some(name.into()),
        uid: Some(name.into()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        Ipv4Net::parse(s).unwrap()
    }

    #[test]
    fn blocks_are_handed_out_lowest_first_and_skip_occupied_ones() {
        let mut set = CidrSet::new(net("10.42.0.0/16"), 24).unwrap();
        set.occupy(&net("10.42.0.0/24"));
        set.occupy(&net("192.168.0.0/24"));
        assert_eq!(set.allocate_next(), Some(net("10.42.1.0/24")));
        assert_eq!(set.allocate_next(), Some(net("10.42.2.0/24")));
        set.release(&net("10.42.1.0/24"));
        assert_eq!(set.allocate_next(), Some(net("10.42.1.0/24")));
        assert!(set.is_used(&net("10.42.0.0/24")));
    }

    #[test]
    fn a_full_range_allocates_nothing() {
        let mut set = CidrSet::new(net("10.244.0.0/23"), 24).unwrap();
        assert_eq!(set.allocate_next(), Some(net("10.244.0.0/24")));
        assert_eq!(set.allocate_next(), Some(net("10.244.1.0/24")));
        assert_eq!(set.allocate_next(), None);
    }

    #[test]
    fn a_mask_shorter_than_the_cluster_cidr_is_refused() {
        assert!(CidrSet::new(net("10.42.0.0/16"), 8).is_err());
        assert!(Ipv4Net::parse("10.42.0.0").is_err());
        assert_eq!(net("10.42.7.9/16").to_string(), "10.42.0.0/16");
    }
}
