//! The node lifecycle controller (upstream `pkg/controller/nodelifecycle`,
//! component `node-controller`) and, in [`taint_eviction`], the NoExecute
//! taint manager (`taint-eviction-controller`).
//!
//! - Health: a node whose Lease in `kube-node-lease` and Ready heartbeat
//!   have not moved for `--node-monitor-grace-period` gets its Ready,
//!   MemoryPressure, DiskPressure and PIDPressure conditions set to Unknown
//!   (`NodeStatusUnknown`, "Kubelet stopped posting node status."); when Ready
//!   leaves True because of that, the node gets a `NodeNotReady` event and its
//!   pods' Ready condition is set to False.
//! - NoExecute taints: `node.kubernetes.io/unreachable` (Ready Unknown) or
//!   `node.kubernetes.io/not-ready` (Ready False), added at a rate limited per
//!   zone and withheld when every zone is fully disrupted, as upstream does;
//!   removed when the node is Ready again.
//! - NoSchedule taints mirror conditions and `spec.unschedulable` (cordon):
//!   not-ready, unreachable, memory/disk/pid-pressure, network-unavailable,
//!   unschedulable.

pub mod taint_eviction;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, ObjectReference, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::task::JoinSet;

use crate::events::{Recorder, NORMAL};
use crate::informer::{Change, Informer, Key};
use crate::queue::WorkQueue;
use crate::runner::{self, is_conflict, is_not_found, Action, Reconciler, Result};
use crate::Context;

pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const TAINT_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const TAINT_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const TAINT_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const TAINT_NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";
pub const NO_SCHEDULE: &str = "NoSchedule";
pub const NO_EXECUTE: &str = "NoExecute";

const COMPONENT: &str = "node-controller";
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// Upstream's `--node-monitor-period`.
const NODE_MONITOR_PERIOD: Duration = Duration::from_secs(5);
/// Upstream's `--node-startup-grace-period`: a node that never posted a Ready
/// condition gets this long.
const NODE_STARTUP_GRACE_PERIOD: Duration = Duration::from_secs(60);
/// Upstream's `--node-eviction-rate` (nodes tainted NoExecute per second and
/// zone) and `--secondary-node-eviction-rate`, `--large-cluster-size-threshold`,
/// `--unhealthy-zone-threshold`.
const EVICTION_RATE: f64 = 0.1;
const SECONDARY_EVICTION_RATE: f64 = 0.01;
const LARGE_CLUSTER_THRESHOLD: usize = 50;
const UNHEALTHY_ZONE_THRESHOLD: f64 = 0.55;
/// Nodes with this label do not count when judging a zone's health.
const LABEL_EXCLUDE_DISRUPTION: &str = "node.kubernetes.io/exclude-disruption";
/// The index of pods by `spec.nodeName`.
pub const NODE_NAME_INDEX: &str = "spec.nodeName";
/// The conditions a lost node's are set Unknown (NetworkUnavailable is the
/// network's to manage).
const CONDITIONS_SET_UNKNOWN: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

pub fn index_by_node_name(pod: &Pod) -> Vec<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .filter(|n| !n.is_empty())
        .into_iter()
        .collect()
}

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let nodes = ctx.informers.get::<Node>();
    let pods = ctx.informers.get::<Pod>();
    let leases = ctx.informers.get::<Lease>();
    pods.add_index(NODE_NAME_INDEX, index_by_node_name);

    // NoSchedule taints follow every node change.
    let queue = WorkQueue::new();
    {
        let queue = queue.clone();
        nodes.on_change(move |change| {
            if !matches!(change, Change::Deleted(_)) {
                queue.add(Key::of(change.object().as_ref()));
            }
        });
    }
    let tainter = Arc::new(NoScheduleTainter {
        api: Api::all(ctx.client.clone()),
        nodes: nodes.clone(),
    });
    let monitor = Monitor {
        nodes_api: Api::all(ctx.client.clone()),
        client: ctx.client.clone(),
        nodes: nodes.clone(),
        pods: pods.clone(),
        leases: leases.clone(),
        recorder: ctx.recorder(COMPONENT),
        grace_period: ctx.options.node_monitor_grace_period,
        health: HashMap::new(),
        known: HashSet::new(),
        zone_states: HashMap::new(),
        zone_tainters: HashMap::new(),
    };
    let period = monitor_period(ctx.options.node_monitor_grace_period);
    tasks.spawn(async move {
        nodes.wait_synced().await;
        pods.wait_synced().await;
        leases.wait_synced().await;
        let mut workers = JoinSet::new();
        runner::spawn(tainter, queue, 1, &mut workers);
        let mut monitor = monitor;
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            monitor.pass().await;
        }
    });
    taint_eviction::start(ctx, tasks);
}

/// How often node health is checked: upstream's 5 s, or a quarter of a
/// grace period shortened below 20 s, so that a short grace period is
/// honoured closely.
fn monitor_period(grace: Duration) -> Duration {
    NODE_MONITOR_PERIOD
        .min(grace / 4)
        .max(Duration::from_millis(200))
}

pub fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn taints(node: &Node) -> &[Taint] {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default()
}

fn has_taint(node: &Node, key: &str, effect: &str) -> bool {
    taints(node)
        .iter()
        .any(|t| t.key == key && t.effect == effect)
}

pub fn taint(key: &str, effect: &str) -> Taint {
    Taint {
        key: key.to_string(),
        effect: effect.to_string(),
        ..Default::default()
    }
}

/// Whether `toleration` tolerates `taint` (upstream `ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// The NoSchedule taints a node's conditions and `spec.unschedulable` call
/// for (upstream `doNoScheduleTaintingPass`).
pub fn no_schedule_taints(node: &Node) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let status = |t: &str| condition(node, t).map(|c| c.status.as_str());
    match status("Ready") {
        Some("False") => keys.push(TAINT_NOT_READY),
        Some("Unknown") => keys.push(TAINT_UNREACHABLE),
        _ => {}
    }
    for (cond, key) in [
        ("MemoryPressure", TAINT_MEMORY_PRESSURE),
        ("DiskPressure", TAINT_DISK_PRESSURE),
        ("NetworkUnavailable", TAINT_NETWORK_UNAVAILABLE),
        ("PIDPressure", TAINT_PID_PRESSURE),
    ] {
        if status(cond) == Some("True") {
            keys.push(key);
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        keys.push(TAINT_UNSCHEDULABLE);
    }
    keys
}

const NO_SCHEDULE_KEYS: &[&str] = &[
    TAINT_NOT_READY,
    TAINT_UNREACHABLE,
    TAINT_MEMORY_PRESSURE,
    TAINT_DISK_PRESSURE,
    TAINT_NETWORK_UNAVAILABLE,
    TAINT_PID_PRESSURE,
    TAINT_UNSCHEDULABLE,
];

/// The node's taints after removing `remove` and adding `add` (each added
/// taint stamped `timeAdded` now), or `None` if nothing changes (upstream
/// `SwapNodeControllerTaint`).
pub fn swapped_taints(node: &Node, add: &[Taint], remove: &[Taint]) -> Option<Vec<Taint>> {
    let mut out: Vec<Taint> = taints(node)
        .iter()
        .filter(|t| {
            !remove
                .iter()
                .any(|r| r.key == t.key && r.effect == t.effect)
        })
        .cloned()
        .collect();
    let mut changed = out.len() != taints(node).len();
    for a in add {
        match out
            .iter_mut()
            .find(|t| t.key == a.key && t.effect == a.effect)
        {
            Some(t) if t.value == a.value => {}
            Some(t) => {
                *t = a.clone();
                t.time_added = Some(Time(Utc::now()));
                changed = true;
            }
            None => {
                let mut t = a.clone();
                t.time_added = Some(Time(Utc::now()));
                out.push(t);
                changed = true;
            }
        }
    }
    changed.then_some(out)
}

/// Swaps taints on the node, re-reading it after a conflict.
async fn swap_taints(
    api: &Api<Node>,
    node: &Node,
    add: &[Taint],
    remove: &[Taint],
) -> Result<bool> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let mut current = node.clone();
    for attempt in 0..5 {
        let Some(new) = swapped_taints(&current, add, remove) else {
            return Ok(false);
        };
        let patch = json!({
            "metadata": { "resourceVersion": current.metadata.resource_version },
            "spec": { "taints": new },
        });
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(true),
            Err(e) if is_conflict(&e) && attempt < 4 => current = api.get(&name).await?,
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

/// Keeps the NoSchedule taints of one node in line with its conditions.
struct NoScheduleTainter {
    api: Api<Node>,
    nodes: Informer<Node>,
}

#[async_trait::async_trait]
impl Reconciler for NoScheduleTainter {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let Some(node) = self.nodes.get(key) else {
            return Ok(Action::Done);
        };
        let want = no_schedule_taints(&node);
        let add: Vec<Taint> = want.iter().map(|k| taint(k, NO_SCHEDULE)).collect();
        let remove: Vec<Taint> = NO_SCHEDULE_KEYS
            .iter()
            .filter(|k| !want.contains(k))
            .map(|k| taint(k, NO_SCHEDULE))
            .collect();
        swap_taints(&self.api, &node, &add, &remove).await?;
        Ok(Action::Done)
    }
}

/// What the monitor remembers of a node between passes (upstream
/// `nodeHealthData`): when it last saw the node alive, by its own clock.
struct Health {
    probe: Instant,
    ready_heartbeat: Option<Time>,
    ready_transition: Option<Time>,
    lease_renew: Option<MicroTime>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneState {
    Initial,
    Normal,
    FullDisruption,
    PartialDisruption,
}

/// Upstream `ComputeZoneState`: a zone with no Ready node is fully
/// disrupted; one with more than two and at least 55 % not Ready is
/// partially disrupted.
pub fn zone_state(ready: usize, not_ready: usize) -> ZoneState {
    if ready == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2
        && not_ready as f64 / (ready + not_ready) as f64 >= UNHEALTHY_ZONE_THRESHOLD
    {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// Upstream `GetZoneKey`: region and zone from the topology labels.
pub fn zone_key(node: &Node) -> String {
    let labels = node.metadata.labels.as_ref();
    let get = |a: &str, b: &str| {
        labels
            .and_then(|l| l.get(a).or_else(|| l.get(b)))
            .cloned()
            .unwrap_or_default()
    };
    let region = get(
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/region",
    );
    let zone = get(
        "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/zone",
    );
    if region.is_empty() && zone.is_empty() {
        return String::new();
    }
    format!("{region}:\x00:{zone}")
}

/// A token bucket of burst 1: the rate at which one zone's nodes get
/// NoExecute taints, and the nodes waiting for one.
struct ZoneTainter {
    rate: f64,
    tokens: f64,
    last: Instant,
    waiting: VecDeque<String>,
}

impl ZoneTainter {
    fn new(rate: f64) -> ZoneTainter {
        ZoneTainter {
            rate,
            tokens: 1.0,
            last: Instant::now(),
            waiting: VecDeque::new(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(1.0);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn set_rate(&mut self, rate: f64) {
        if rate != self.rate {
            self.rate = rate;
            self.tokens = if rate > 0.0 { 1.0 } else { 0.0 };
            self.last = Instant::now();
        }
    }

    fn enqueue(&mut self, node: &str) {
        if !self.waiting.iter().any(|n| n == node) {
            self.waiting.push_back(node.to_string());
        }
    }

    fn remove(&mut self, node: &str) {
        self.waiting.retain(|n| n != node);
    }
}

struct Monitor {
    nodes_api: Api<Node>,
    client: kube::Client,
    nodes: Informer<Node>,
    pods: Informer<Pod>,
    leases: Informer<Lease>,
    recorder: Recorder,
    grace_period: Duration,
    health: HashMap<String, Health>,
    known: HashSet<String>,
    zone_states: HashMap<String, ZoneState>,
    zone_tainters: HashMap<String, ZoneTainter>,
}

fn node_ref(node: &Node) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Node".into()),
        name: node.metadata.name.clone(),
        uid: node.metadata.uid.clone(),
        ..Default::default()
    }
}

impl Monitor {
    /// One pass of upstream `monitorNodeHealth` plus the NoExecute tainting
    /// pass.
    async fn pass(&mut self) {
        let nodes = self.nodes.list();
        let names: HashSet<String> = nodes
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        for node in &nodes {
            let name = node.metadata.name.clone().unwrap_or_default();
            if self.known.insert(name.clone()) {
                self.recorder.record(
                    node_ref(node),
                    NORMAL,
                    "RegisteredNode",
                    format!("Node {name} event: Registered Node {name} in Controller"),
                );
            }
        }
        let gone: Vec<String> = self.known.difference(&names).cloned().collect();
        for name in gone {
            self.known.remove(&name);
            self.health.remove(&name);
            for t in self.zone_tainters.values_mut() {
                t.remove(&name);
            }
            let reference = ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(name.clone()),
                ..Default::default()
            };
            self.recorder.record(
                reference,
                NORMAL,
                "RemovingNode",
                format!("Node {name} event: Removing Node {name} from Controller"),
            );
        }

        let mut zones: HashMap<String, (usize, usize)> = HashMap::new();
        let mut current_nodes = Vec::new();
        for node in nodes {
            let node = match self.update_health(&node).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(node = ?node.metadata.name, error = %e, "updating node health");
                    continue;
                }
            };
            let ready = condition(&node, "Ready").map(|c| c.status.clone());
            if !node
                .metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key(LABEL_EXCLUDE_DISRUPTION))
            {
                let z = zones.entry(zone_key(&node)).or_default();
                if ready.as_deref() == Some("True") {
                    z.0 += 1;
                } else {
                    z.1 += 1;
                }
            }
            // Pods bound to a lost node after it was lost (upstream
            // `processPod`) are not Ready either; no kubelet will say so.
            if ready.as_deref() == Some("Unknown") {
                self.mark_pods_not_ready(node.metadata.name.as_deref().unwrap_or_default())
                    .await;
            }
            self.process_taint_based_eviction(&node, ready.as_deref().unwrap_or("Unknown"))
                .await;
            current_nodes.push(node);
        }
        self.handle_disruption(&zones, &current_nodes).await;
        self.no_execute_tainting_pass().await;
    }

    /// Upstream `tryUpdateNodeHealth` and the pod marking that follows it.
    /// Returns the node as it is after any write.
    async fn update_health(&mut self, node: &Arc<Node>) -> Result<Node> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let now = Instant::now();
        let current_ready = condition(node, "Ready").cloned();
        let grace = if current_ready.is_some() {
            self.grace_period
        } else {
            NODE_STARTUP_GRACE_PERIOD
        };
        let observed_status = current_ready
            .as_ref()
            .map(|c| c.status.clone())
            .unwrap_or_else(|| "Unknown".into());
        let health = self.health.entry(name.clone()).or_insert_with(|| Health {
            probe: now,
            ready_heartbeat: current_ready
                .as_ref()
                .and_then(|c| c.last_heartbeat_time.clone()),
            ready_transition: current_ready
                .as_ref()
                .and_then(|c| c.last_transition_time.clone()),
            lease_renew: None,
        });
        if let Some(c) = &current_ready {
            if c.last_heartbeat_time != health.ready_heartbeat {
                health.probe = now;
                health.ready_heartbeat = c.last_heartbeat_time.clone();
                health.ready_transition = c.last_transition_time.clone();
            }
        }
        let lease = self
            .leases
            .get(&Key::new(NODE_LEASE_NAMESPACE, name.clone()));
        if let Some(renew) = lease
            .as_ref()
            .and_then(|l| l.spec.as_ref()?.renew_time.clone())
        {
            if health
                .lease_renew
                .as_ref()
                .is_none_or(|saved| saved.0 < renew.0)
            {
                health.lease_renew = Some(renew);
                health.probe = now;
            }
        }
        if now.duration_since(health.probe) <= grace {
            return Ok(node.as_ref().clone());
        }

        // Lost: every tracked condition goes Unknown.
        let mut updated = node.as_ref().clone();
        let stamp = Time(Utc::now());
        let status = updated.status.get_or_insert_with(Default::default);
        let conditions = status.conditions.get_or_insert_with(Vec::new);
        for type_ in CONDITIONS_SET_UNKNOWN {
            match conditions.iter_mut().find(|c| c.type_ == *type_) {
                Some(c) => {
                    if c.status != "Unknown" {
                        c.status = "Unknown".into();
                        c.reason = Some("NodeStatusUnknown".into());
                        c.message = Some("Kubelet stopped posting node status.".into());
                        c.last_transition_time = Some(stamp.clone());
                    }
                }
                None => conditions.push(NodeCondition {
                    type_: type_.to_string(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: Some(stamp.clone()),
                }),
            }
        }
        if condition(&updated, "Ready") == current_ready.as_ref() {
            return Ok(node.as_ref().clone());
        }
        let written = match self
            .nodes_api
            .replace_status(
                &name,
                &PostParams::default(),
                serde_json::to_vec(&updated).unwrap_or_default(),
            )
            .await
        {
            Ok(n) => n,
            // The kubelet wrote meanwhile: judge again on the next pass.
            Err(e) if is_conflict(&e) => return Ok(node.as_ref().clone()),
            Err(e) => return Err(e.into()),
        };
        let new_ready = condition(&written, "Ready").cloned();
        if let Some(h) = self.health.get_mut(&name) {
            h.ready_heartbeat = new_ready
                .as_ref()
                .and_then(|c| c.last_heartbeat_time.clone());
            h.ready_transition = new_ready
                .as_ref()
                .and_then(|c| c.last_transition_time.clone());
        }
        if observed_status == "True"
            && new_ready.as_ref().map(|c| c.status.as_str()) != Some("True")
        {
            self.recorder.record(
                node_ref(&written),
                NORMAL,
                "NodeNotReady",
                format!("Node {name} status is now: NodeNotReady"),
            );
            self.mark_pods_not_ready(&name).await;
        }
        Ok(written)
    }

    /// Upstream `MarkPodsNotReady`: the Ready condition of each pod on the
    /// node goes False, with a `NodeNotReady` event on the pod.
    async fn mark_pods_not_ready(&self, node_name: &str) {
        for pod in self.pods.by_index(NODE_NAME_INDEX, node_name) {
            let Some(ready) = crate::pod::condition(&pod, "Ready") else {
                continue;
            };
            if ready.status == "False" {
                continue;
            }
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            let patch = json!({
                "metadata": { "uid": pod.metadata.uid },
                "status": { "conditions": [{
                    "type": "Ready",
                    "status": "False",
                    "lastTransitionTime": Time(Utc::now()),
                }] },
            });
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
            {
                Ok(_) => self
                    .recorder
                    .warning(pod.as_ref(), "NodeNotReady", "Node is not ready"),
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    tracing::warn!(pod = %format!("{ns}/{name}"), error = %e, "marking pod not ready")
                }
            }
        }
    }

    /// Upstream `processTaintBaseEviction`.
    async fn process_taint_based_eviction(&mut self, node: &Node, ready: &str) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let zone = zone_key(node);
        let not_ready = taint(TAINT_NOT_READY, NO_EXECUTE);
        let unreachable = taint(TAINT_UNREACHABLE, NO_EXECUTE);
        let swap = |add: Taint, remove: Taint| {
            let api = self.nodes_api.clone();
            let node = node.clone();
            async move { swap_taints(&api, &node, &[add], &[remove]).await }
        };
        let result = match ready {
            "False" if has_taint(node, TAINT_UNREACHABLE, NO_EXECUTE) => {
                swap(not_ready, unreachable).await
            }
            "Unknown" if has_taint(node, TAINT_NOT_READY, NO_EXECUTE) => {
                swap(unreachable, not_ready).await
            }
            "False" | "Unknown" => {
                self.tainter(&zone).enqueue(&name);
                Ok(true)
            }
            _ => {
                self.tainter(&zone).remove(&name);
                swap_taints(&self.nodes_api, node, &[], &[not_ready, unreachable]).await
            }
        };
        if let Err(e) = result {
            tracing::warn!(node = %name, error = %e, "updating NoExecute taints; retrying on the next pass");
        }
    }

    fn tainter(&mut self, zone: &str) -> &mut ZoneTainter {
        self.zone_tainters
            .entry(zone.to_string())
            .or_insert_with(|| ZoneTainter::new(EVICTION_RATE))
    }

    /// Upstream `handleDisruption`: eviction rates follow each zone's
    /// health, and when every zone is fully disrupted (the control plane more
    /// likely lost its network than every node died) NoExecute taints are
    /// removed and no more are added.
    async fn handle_disruption(&mut self, zones: &HashMap<String, (usize, usize)>, nodes: &[Node]) {
        let new_states: HashMap<String, ZoneState> = zones
            .iter()
            .map(|(z, (ready, not_ready))| (z.clone(), zone_state(*ready, *not_ready)))
            .collect();
        let all_are_full =
            !new_states.is_empty() && new_states.values().all(|s| *s == ZoneState::FullDisruption);
        self.zone_states.retain(|z, _| zones.contains_key(z));
        for z in zones.keys() {
            self.zone_states
                .entry(z.clone())
                .or_insert(ZoneState::Initial);
        }
        let all_were_full = !self.zone_states.is_empty()
            && self
                .zone_states
                .values()
                .all(|s| *s == ZoneState::FullDisruption);
        if all_are_full && all_were_full {
            return;
        }
        if all_are_full {
            tracing::info!("every node is not Ready: entering master disruption mode");
            for node in nodes {
                let remove = [
                    taint(TAINT_NOT_READY, NO_EXECUTE),
                    taint(TAINT_UNREACHABLE, NO_EXECUTE),
                ];
                if let Err(e) = swap_taints(&self.nodes_api, node, &[], &remove).await {
                    tracing::warn!(error = %e, "removing NoExecute taints");
                }
            }
            for z in self.zone_states.keys().cloned().collect::<Vec<_>>() {
                self.tainter(&z).set_rate(0.0);
                self.zone_states.insert(z, ZoneState::FullDisruption);
            }
            return;
        }
        if all_were_full {
            tracing::info!("some nodes are Ready: leaving master disruption mode");
            let now = Instant::now();
            for h in self.health.values_mut() {
                h.probe = now;
            }
        }
        for (z, state) in new_states {
            let size = zones.get(&z).map(|(r, n)| r + n).unwrap_or(0);
            let rate = match state {
                ZoneState::PartialDisruption if size > LARGE_CLUSTER_THRESHOLD => {
                    SECONDARY_EVICTION_RATE
                }
                ZoneState::PartialDisruption => 0.0,
                _ => EVICTION_RATE,
            };
            if self.zone_states.get(&z) != Some(&state) {
                self.tainter(&z).set_rate(rate);
                self.zone_states.insert(z, state);
            }
        }
    }

    /// Upstream `doNoExecuteTaintingPass`: taints waiting nodes as each
    /// zone's rate allows.
    async fn no_execute_tainting_pass(&mut self) {
        let zones: Vec<String> = self.zone_tainters.keys().cloned().collect();
        for z in zones {
            loop {
                let tainter = self.tainter(&z);
                if tainter.waiting.is_empty() || !tainter.take() {
                    break;
                }
                let Some(name) = tainter.waiting.pop_front() else {
                    break;
                };
                let Some(node) = self.nodes.get(&Key::cluster(name.clone())) else {
                    continue;
                };
                let (add, remove) = match condition(&node, "Ready").map(|c| c.status.as_str()) {
                    Some("False") => (TAINT_NOT_READY, TAINT_UNREACHABLE),
                    Some("True") => continue,
                    _ => (TAINT_UNREACHABLE, TAINT_NOT_READY),
                };
                if let Err(e) = swap_taints(
                    &self.nodes_api,
                    &node,
                    &[taint(add, NO_EXECUTE)],
                    &[taint(remove, NO_EXECUTE)],
                )
                .await
                {
                    tracing::warn!(node = %name, error = %e, "adding NoExecute taint; retrying");
                    self.tainter(&z).enqueue(&name);
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus};

    fn node(ready: Option<&str>, unschedulable: bool) -> Node {
        Node {
            spec: Some(NodeSpec {
                unschedulable: unschedulable.then_some(true),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                conditions: ready.map(|s| {
                    vec![NodeCondition {
                        type_: "Ready".into(),
                        status: s.into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn no_schedule_taints_follow_ready_and_cordon() {
        assert_eq!(
            no_schedule_taints(&node(Some("True"), false)),
            Vec::<&str>::new()
        );
        assert_eq!(
            no_schedule_taints(&node(Some("False"), false)),
            vec![TAINT_NOT_READY]
        );
        assert_eq!(
            no_schedule_taints(&node(Some("Unknown"), true)),
            vec![TAINT_UNREACHABLE, TAINT_UNSCHEDULABLE]
        );
    }

    #[test]
    fn swapping_taints_keeps_others_and_stamps_new_ones() {
        let mut n = node(Some("Unknown"), false);
        n.spec.as_mut().unwrap().taints = Some(vec![
            taint("dedicated", NO_SCHEDULE),
            taint(TAINT_NOT_READY, NO_EXECUTE),
        ]);
        let out = swapped_taints(
            &n,
            &[taint(TAINT_UNREACHABLE, NO_EXECUTE)],
            &[taint(TAINT_NOT_READY, NO_EXECUTE)],
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].key, "dedicated");
        assert_eq!(out[1].key, TAINT_UNREACHABLE);
        assert!(out[1].time_added.is_some());
        n.spec.as_mut().unwrap().taints = Some(out);
        assert!(swapped_taints(&n, &[taint(TAINT_UNREACHABLE, NO_EXECUTE)], &[]).is_none());
    }

    #[test]
    fn tolerations_match_as_upstream() {
        let t = taint(TAINT_UNREACHABLE, NO_EXECUTE);
        let exists = Toleration {
            key: Some(TAINT_UNREACHABLE.into()),
            operator: Some("Exists".into()),
            effect: Some(NO_EXECUTE.into()),
            ..Default::default()
        };
        assert!(tolerates(&exists, &t));
        let all = Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        };
        assert!(tolerates(&all, &t));
        let other_effect = Toleration {
            effect: Some(NO_SCHEDULE.into()),
            ..exists.clone()
        };
        assert!(!tolerates(&other_effect, &t));
        let equal_value = Toleration {
            key: Some(TAINT_UNREACHABLE.into()),
            value: Some("x".into()),
            ..Default::default()
        };
        assert!(!tolerates(&equal_value, &t));
    }

    #[test]
    fn zones_are_disrupted_as_upstream_judges() {
        assert_eq!(zone_state(3, 0), ZoneState::Normal);
        assert_eq!(zone_state(2, 1), ZoneState::Normal);
        assert_eq!(zone_state(0, 1), ZoneState::FullDisruption);
        assert_eq!(zone_state(2, 3), ZoneState::PartialDisruption);
        assert_eq!(zone_state(3, 3), ZoneState::Normal);
    }
}
