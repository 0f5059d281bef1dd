//! The scheduler's picture of the cluster: one [`NodeInfo`] per node with
//! the pods on it and their aggregated requests, kept up to date change by
//! change (upstream's scheduler cache and snapshot). Nothing here does IO:
//! the driver feeds informer changes in, the algorithm reads it.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Taint};

use crate::resources::{node_allocatable, pod_non_zero_requests, pod_requests, Resources};

/// A pod's identity in the snapshot: namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodKey {
    pub namespace: String,
    pub name: String,
}

impl PodKey {
    pub fn of(pod: &Pod) -> PodKey {
        PodKey {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for PodKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A host port a pod uses: protocol, host IP (`0.0.0.0` when unset) and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub protocol: String,
    pub ip: String,
    pub port: i32,
}

impl HostPort {
    /// Whether two host ports collide: same protocol and port, and the same
    /// IP or either one the wildcard (upstream's `HostPortInfo.CheckConflict`).
    pub fn conflicts(&self, o: &HostPort) -> bool {
        self.port == o.port
            && self.protocol == o.protocol
            && (self.ip == o.ip || self.ip == "0.0.0.0" || o.ip == "0.0.0.0")
    }
}

pub fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let mut out = Vec::new();
    let Some(spec) = pod.spec.as_ref() else {
        return out;
    };
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        for p in c.ports.iter().flatten() {
            let Some(port) = p.host_port.filter(|p| *p > 0) else {
                continue;
            };
            out.push(HostPort {
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                ip: p
                    .host_ip
                    .clone()
                    .filter(|i| !i.is_empty())
                    .unwrap_or_else(|| "0.0.0.0".into()),
                port,
            });
        }
    }
    out
}

/// A pod as the snapshot keeps it, with what the filters need precomputed.
#[derive(Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub key: PodKey,
    pub requests: Resources,
    pub non_zero: Resources,
    pub host_ports: Vec<HostPort>,
    pub priority: i32,
    pub has_affinity: bool,
    pub has_required_anti_affinity: bool,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let spec = pod.spec.as_ref();
        let affinity = spec.and_then(|s| s.affinity.as_ref());
        let has_affinity =
            affinity.is_some_and(|a| a.pod_affinity.is_some() || a.pod_anti_affinity.is_some());
        let has_required_anti_affinity = affinity
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .is_some_and(|t| !t.is_empty());
        PodInfo {
            key: PodKey::of(&pod),
            requests: pod_requests(&pod),
            non_zero: pod_non_zero_requests(&pod),
            host_ports: host_ports(&pod),
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
            has_affinity,
            has_required_anti_affinity,
            pod,
        }
    }

    pub fn labels(&self) -> Option<&std::collections::BTreeMap<String, String>> {
        self.pod.metadata.labels.as_ref()
    }

    pub fn namespace(&self) -> &str {
        &self.key.namespace
    }
}

/// One node and the pods bound (or assumed bound) to it.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub name: String,
    pub node: Arc<Node>,
    /// `spec.unschedulable` and `spec.taints`, kept beside the node: the
    /// filters read them for every node they look at, and the node itself
    /// is a pointer away (cache misses on thousands of nodes per pod).
    pub unschedulable: bool,
    pub taints: Vec<Taint>,
    pub allocatable: Resources,
    pub requested: Resources,
    pub non_zero_requested: Resources,
    pub pods: Vec<Arc<PodInfo>>,
    pub used_ports: Vec<HostPort>,
    /// Pods here with (anti-)affinity terms, and with required anti-affinity.
    pub pods_with_affinity: usize,
    pub pods_with_required_anti_affinity: usize,
    /// Images on the node (normalized name → size in bytes).
    pub images: HashMap<String, i64>,
}

/// `nginx` → `nginx:latest`; names with a tag or digest stay as they are
/// (upstream's `normalizedImageName`).
pub fn normalized_image_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || last.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

fn node_images(node: &Node) -> HashMap<String, i64> {
    let mut out = HashMap::new();
    for image in node.status.iter().flat_map(|s| s.images.iter().flatten()) {
        for name in image.names.iter().flatten() {
            out.insert(normalized_image_name(name), image.size_bytes.unwrap_or(0));
        }
    }
    out
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let spec = node.spec.as_ref();
        NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
            taints: spec.and_then(|s| s.taints.clone()).unwrap_or_default(),
            allocatable: node_allocatable(&node),
            images: node_images(&node),
            node,
            requested: Resources::default(),
            non_zero_requested: Resources::default(),
            pods: Vec::new(),
            used_ports: Vec::new(),
            pods_with_affinity: 0,
            pods_with_required_anti_affinity: 0,
        }
    }

    pub fn labels(&self) -> Option<&std::collections::BTreeMap<String, String>> {
        self.node.metadata.labels.as_ref()
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels().and_then(|l| l.get(key)).map(String::as_str)
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.milli_cpu += pod.non_zero.milli_cpu;
        self.non_zero_requested.memory += pod.non_zero.memory;
        self.used_ports.extend(pod.host_ports.iter().cloned());
        self.pods_with_affinity += pod.has_affinity as usize;
        self.pods_with_required_anti_affinity += pod.has_required_anti_affinity as usize;
        self.pods.push(pod);
    }

    pub fn remove_pod(&mut self, key: &PodKey) -> Option<Arc<PodInfo>> {
        let i = self.pods.iter().position(|p| &p.key == key)?;
        let pod = self.pods.swap_remove(i);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.milli_cpu -= pod.non_zero.milli_cpu;
        self.non_zero_requested.memory -= pod.non_zero.memory;
        for port in &pod.host_ports {
            if let Some(j) = self.used_ports.iter().position(|p| p == port) {
                self.used_ports.swap_remove(j);
            }
        }
        self.pods_with_affinity -= pod.has_affinity as usize;
        self.pods_with_required_anti_affinity -= pod.has_required_anti_affinity as usize;
        Some(pod)
    }
}

/// Every node and its pods. Nodes are kept in a list (the order the
/// algorithm walks round-robin) with an index by name; pods bound to a
/// node the snapshot does not know yet wait in `orphans`.
#[derive(Default, Debug)]
pub struct Snapshot {
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    orphans: HashMap<String, Vec<Arc<PodInfo>>>,
    /// Where each pod is, so an update or delete finds it at once.
    pod_node: HashMap<PodKey, String>,
    /// How many nodes hold each image (ImageLocality spreads by it).
    image_nodes: HashMap<String, usize>,
    /// Pods with (anti-)affinity terms, and with required anti-affinity,
    /// on known nodes: InterPodAffinity skips its work when there are none.
    pods_with_affinity: usize,
    pods_with_required_anti_affinity: usize,
}

impl Snapshot {
    pub fn new() -> Snapshot {
        Snapshot::default()
    }

    /// A snapshot of these nodes and pods (tests, benchmarks).
    pub fn from_objects(
        nodes: impl IntoIterator<Item = Node>,
        pods: impl IntoIterator<Item = Pod>,
    ) -> Snapshot {
        let mut s = Snapshot::new();
        for n in nodes {
            s.upsert_node(Arc::new(n));
        }
        for p in pods {
            s.upsert_pod(Arc::new(p));
        }
        s
    }

    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|i| &self.nodes[*i])
    }

    pub fn pod_node(&self, key: &PodKey) -> Option<&str> {
        self.pod_node.get(key).map(String::as_str)
    }

    pub fn pods_with_affinity(&self) -> usize {
        self.pods_with_affinity
    }

    pub fn pods_with_required_anti_affinity(&self) -> usize {
        self.pods_with_required_anti_affinity
    }

    fn count_affinity(&mut self, pod: &PodInfo, sign: isize) {
        self.pods_with_affinity = self
            .pods_with_affinity
            .wrapping_add_signed(sign * pod.has_affinity as isize);
        self.pods_with_required_anti_affinity = self
            .pods_with_required_anti_affinity
            .wrapping_add_signed(sign * pod.has_required_anti_affinity as isize);
    }

    pub fn nodes_with_image(&self, image: &str) -> usize {
        self.image_nodes.get(image).copied().unwrap_or(0)
    }

    /// Adds or replaces a node, keeping its pods.
    pub fn upsert_node(&mut self, node: Arc<Node>) {
        let mut info = NodeInfo::new(node);
        for image in info.images.keys() {
            *self.image_nodes.entry(image.clone()).or_default() += 1;
        }
        match self.index.get(&info.name) {
            Some(&i) => {
                let old_images: Vec<String> = self.nodes[i].images.keys().cloned().collect();
                for image in &old_images {
                    self.drop_image(image);
                }
                let old = &mut self.nodes[i];
                old.allocatable = info.allocatable;
                old.images = info.images;
                old.unschedulable = info.unschedulable;
                old.taints = info.taints;
                old.node = info.node;
            }
            None => {
                for pod in self.orphans.remove(&info.name).unwrap_or_default() {
                    self.count_affinity(&pod, 1);
                    info.add_pod(pod);
                }
                self.index.insert(info.name.clone(), self.nodes.len());
                self.nodes.push(info);
            }
        }
    }

    fn drop_image(&mut self, image: &str) {
        if let Some(n) = self.image_nodes.get_mut(image) {
            *n -= 1;
            if *n == 0 {
                self.image_nodes.remove(image);
            }
        }
    }

    pub fn remove_node(&mut self, name: &str) {
        let Some(i) = self.index.remove(name) else {
            return;
        };
        let info = self.nodes.swap_remove(i);
        if i < self.nodes.len() {
            self.index.insert(self.nodes[i].name.clone(), i);
        }
        for image in info.images.keys() {
            self.drop_image(image);
        }
        // Its pods stay accounted for until they are deleted, as upstream
        // keeps a node's pods after the Node object goes.
        for pod in &info.pods {
            self.count_affinity(pod, -1);
        }
        if !info.pods.is_empty() {
            self.orphans.insert(info.name, info.pods);
        }
    }

    /// Adds or replaces a pod bound (or assumed bound) to `spec.nodeName`.
    /// Pods without a node, and finished pods, are removed instead.
    pub fn upsert_pod(&mut self, pod: Arc<Pod>) {
        let key = PodKey::of(&pod);
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if node.is_empty() || matches!(phase, Some("Succeeded" | "Failed")) {
            self.remove_pod(&key);
            return;
        }
        self.remove_pod(&key);
        let info = Arc::new(PodInfo::new(pod));
        match self.index.get(&node) {
            Some(&i) => {
                self.count_affinity(&info, 1);
                self.nodes[i].add_pod(info)
            }
            None => self.orphans.entry(node.clone()).or_default().push(info),
        }
        self.pod_node.insert(key, node);
    }

    pub fn remove_pod(&mut self, key: &PodKey) -> Option<Arc<PodInfo>> {
        let node = self.pod_node.remove(key)?;
        match self.index.get(&node) {
            Some(&i) => {
                let pod = self.nodes[i].remove_pod(key)?;
                self.count_affinity(&pod, -1);
                Some(pod)
            }
            None => {
                let list = self.orphans.get_mut(&node)?;
                let i = list.iter().position(|p| &p.key == key)?;
                let pod = list.swap_remove(i);
                if list.is_empty() {
                    self.orphans.remove(&node);
                }
                Some(pod)
            }
        }
    }

    /// Every pod on a known node.
    pub fn pods(&self) -> impl Iterator<Item = (&NodeInfo, &Arc<PodInfo>)> {
        self.nodes
            .iter()
            .flat_map(|n| n.pods.iter().map(move |p| (n, p)))
    }
}
