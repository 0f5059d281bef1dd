//! The EndpointSlice controller (upstream `endpoint-slice-controller`): for
//! every Service with a selector, EndpointSlices named `<service>-<random>`
//! (generateName), labelled `kubernetes.io/service-name` and
//! `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`,
//! owned by the Service, holding at most 100 endpoints each. Pods whose
//! resolved ports differ go into different slices. Each endpoint carries the
//! conditions ready/serving/terminating, the node, the node's zone and a
//! reference to the pod. A Service without endpoints keeps one empty
//! placeholder slice. Slices of a deleted Service go with it through the
//! garbage collector (they are owned by it).
//!
//! Reconciliation keeps endpoints in the slice that already holds them and
//! fills new ones into slices with room before creating new slices, so that
//! a pod change rewrites one slice, not all of them (upstream's reconciler).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams};
use kube::Client;
use tokio::task::JoinSet;

use crate::endpoints::{
    find_port, format_trigger_time, is_headless, managed_selector, pod_reference, selected_pods,
    services_for_pod_change, should_pod_be_in_endpoints, should_set_hostname, TriggerTimeTracker,
    LAST_CHANGE_TRIGGER_TIME,
};
use crate::events::Recorder;
use crate::informer::{Informer, Key};
use crate::queue::WorkQueue;
use crate::runner::{self, Action, Reconciler, Result};
use crate::Context;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// `--max-endpoints-per-slice`, 100 by default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
const BY_SERVICE: &str = "endpointslice-service";
/// How long a write of ours may stay unseen by the informer before the
/// controller stops waiting for it.
const EXPECTATION_TTL: Duration = Duration::from_secs(5);

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let services = ctx.informers.get::<Service>();
    let pods = ctx.informers.get::<Pod>();
    let nodes = ctx.informers.get::<Node>();
    let slices = ctx.informers.get::<EndpointSlice>();
    index_by_service(&slices, BY_SERVICE, CONTROLLER_NAME);
    let queue = WorkQueue::<Key>::new();
    {
        let queue = queue.clone();
        services.on_change(move |change| queue.add(Key::of(change.object().as_ref())));
    }
    {
        let (queue, services) = (queue.clone(), services.clone());
        pods.on_change(move |change| {
            for key in services_for_pod_change(&services, change) {
                queue.add(key);
            }
        });
    }
    {
        let queue = queue.clone();
        slices.on_change(move |change| {
            if let Some(key) = service_of(change.object()) {
                queue.add(key);
            }
        });
    }
    let controller = Arc::new(EndpointSliceController {
        client: ctx.client.clone(),
        services: services.clone(),
        pods: pods.clone(),
        nodes: nodes.clone(),
        slices: slices.clone(),
        triggers: TriggerTimeTracker::default(),
        tracker: SliceTracker::default(),
        recorder: ctx.recorder("endpoint-slice-controller"),
    });
    let synced = async move {
        services.wait_synced().await;
        pods.wait_synced().await;
        nodes.wait_synced().await;
        slices.wait_synced().await;
    };
    runner::spawn_when_synced(tasks, synced, controller, queue, 5);
}

/// The Service a slice managed by this controller belongs to.
fn service_of(slice: &EndpointSlice) -> Option<Key> {
    managed_service(slice, CONTROLLER_NAME)
}

/// Indexes the slices `manager` manages under `index` by their Service's
/// key (`namespace/name`).
pub(crate) fn index_by_service(
    slices: &Informer<EndpointSlice>,
    index: &'static str,
    manager: &'static str,
) {
    slices.add_index(index, move |s| {
        managed_service(s, manager)
            .map(|k| vec![k.to_string()])
            .unwrap_or_default()
    });
}

/// The Service named by a slice that `manager` manages (its
/// `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by`
/// labels).
pub(crate) fn managed_service(slice: &EndpointSlice, manager: &str) -> Option<Key> {
    let labels = slice.metadata.labels.as_ref()?;
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(manager) {
        return None;
    }
    let service = labels.get(SERVICE_NAME_LABEL)?;
    Some(Key::new(
        slice.metadata.namespace.clone().unwrap_or_default(),
        service.clone(),
    ))
}

/// Writes of ours the informer has not shown yet, per Service: slice name
/// to the resourceVersion written (`None` for a deletion).
type Expected = HashMap<Key, (Instant, HashMap<String, Option<u64>>)>;

/// Writes of a slice controller the informer has not shown yet (upstream
/// `EndpointSliceTracker`): a sync on a cache older than its own writes
/// would undo them or write twice.
#[derive(Default)]
pub(crate) struct SliceTracker {
    expected: Mutex<Expected>,
}

impl SliceTracker {
    /// Whether `slices` still lags behind our last writes for `key`
    /// (upstream `StaleSlices`).
    pub(crate) fn stale(&self, slices: &Informer<EndpointSlice>, key: &Key) -> bool {
        let mut expected = self.expected.lock().unwrap();
        let Some((at, writes)) = expected.get(key) else {
            return false;
        };
        if at.elapsed() > EXPECTATION_TTL {
            expected.remove(key);
            return false;
        }
        let seen = writes.iter().all(|(name, rv)| {
            let current = slices.get(&Key::new(key.namespace.clone(), name.clone()));
            match (rv, current) {
                (None, current) => current.is_none(),
                (Some(_), None) => false,
                (Some(rv), Some(s)) => s
                    .metadata
                    .resource_version
                    .as_deref()
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_none_or(|v| v >= *rv),
            }
        });
        if seen {
            expected.remove(key);
        }
        !seen
    }

    /// Records a write of slice `name` for `key`: its new resourceVersion,
    /// or its deletion.
    pub(crate) fn expect(&self, key: &Key, name: String, rv: Option<&str>, deleted: bool) {
        let rv = if deleted {
            None
        } else {
            Some(rv.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
        };
        let mut expected = self.expected.lock().unwrap();
        let entry = expected
            .entry(key.clone())
            .or_insert_with(|| (Instant::now(), HashMap::new()));
        entry.0 = Instant::now();
        entry.1.insert(name, rv);
    }

    pub(crate) fn forget(&self, key: &Key) {
        self.expected.lock().unwrap().remove(key);
    }

    /// Creates, replaces and deletes slices for `key`, recording each write
    /// (a slice already gone counts as deleted); stops at the first error.
    pub(crate) async fn write(
        &self,
        api: &Api<EndpointSlice>,
        key: &Key,
        create: Vec<EndpointSlice>,
        update: Vec<EndpointSlice>,
        delete: Vec<String>,
    ) -> Result<(), kube::Error> {
        for slice in create {
            let created = api.create(&PostParams::default(), &slice).await?;
            let name = created.metadata.name.clone().unwrap_or_default();
            self.expect(
                key,
                name,
                created.metadata.resource_version.as_deref(),
                false,
            );
        }
        for slice in update {
            let name = slice.metadata.name.clone().unwrap_or_default();
            let updated = api.replace(&name, &PostParams::default(), &slice).await?;
            self.expect(
                key,
                name,
                updated.metadata.resource_version.as_deref(),
                false,
            );
        }
        for name in delete {
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if runner::is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
            self.expect(key, name, None, true);
        }
        Ok(())
    }
}

struct EndpointSliceController {
    client: Client,
    services: Informer<Service>,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    slices: Informer<EndpointSlice>,
    triggers: TriggerTimeTracker,
    tracker: SliceTracker,
    recorder: Recorder,
}

impl EndpointSliceController {
    fn desired_endpoints(
        &self,
        service: &Service,
        pods: &[Arc<Pod>],
    ) -> BTreeMap<String, PortGroup> {
        let ports = service
            .spec
            .as_ref()
            .and_then(|s| s.ports.clone())
            .unwrap_or_default();
        let publish = service
            .spec
            .as_ref()
            .and_then(|s| s.publish_not_ready_addresses)
            .unwrap_or(false);
        let mut groups: BTreeMap<String, PortGroup> = BTreeMap::new();
        for pod in pods {
            if !should_pod_be_in_endpoints(pod, true) {
                continue;
            }
            let endpoint_ports: Vec<EndpointPort> = ports
                .iter()
                .filter_map(|p| {
                    find_port(pod, p).map(|n| EndpointPort {
                        name: Some(p.name.clone().unwrap_or_default()),
                        port: Some(n),
                        protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                        app_protocol: p.app_protocol.clone(),
                    })
                })
                .collect();
            let endpoint = pod_to_endpoint(pod, service, publish, &self.nodes);
            let group = groups
                .entry(ports_key(&endpoint_ports))
                .or_insert_with(|| PortGroup {
                    ports: endpoint_ports,
                    endpoints: Vec::new(),
                });
            group.endpoints.push(endpoint);
        }
        groups
    }
}

struct PortGroup {
    ports: Vec<EndpointPort>,
    endpoints: Vec<Endpoint>,
}

/// Upstream's `podToEndpoint`.
fn pod_to_endpoint(
    pod: &Pod,
    service: &Service,
    publish_not_ready: bool,
    nodes: &Informer<Node>,
) -> Endpoint {
    let serving = crate::pod::is_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    // A terminating pod is never ready, unless not-ready addresses are
    // published.
    let ready = publish_not_ready || (serving && !terminating);
    let status = pod.status.as_ref();
    let addresses = status
        .and_then(|s| s.pod_ips.as_ref())
        .filter(|ips| !ips.is_empty())
        .map(|ips| {
            ips.iter()
                .filter(|ip| !ip.ip.contains(':'))
                .take(1)
                .map(|ip| ip.ip.clone())
                .collect()
        })
        .unwrap_or_else(|| status.and_then(|s| s.pod_ip.clone()).into_iter().collect());
    let node_name = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .filter(|n| !n.is_empty());
    let zone = node_name.as_ref().and_then(|n| {
        nodes
            .get(&Key::cluster(n.clone()))?
            .metadata
            .labels
            .as_ref()?
            .get(ZONE_LABEL)
            .cloned()
    });
    Endpoint {
        addresses,
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname: should_set_hostname(pod, service)
            .then(|| pod.spec.as_ref().and_then(|s| s.hostname.clone()))
            .flatten(),
        node_name,
        zone,
        target_ref: Some(pod_reference(pod)),
        ..Default::default()
    }
}

/// An order-independent key of a port list: slices are grouped by it.
pub(crate) fn ports_key(ports: &[EndpointPort]) -> String {
    let mut parts: Vec<String> = ports
        .iter()
        .map(|p| {
            format!(
                "{}/{}/{}/{}",
                p.name.as_deref().unwrap_or(""),
                p.port.unwrap_or(0),
                p.protocol.as_deref().unwrap_or("TCP"),
                p.app_protocol.as_deref().unwrap_or("")
            )
        })
        .collect();
    parts.sort();
    parts.join(",")
}

/// What identifies an endpoint across syncs: the pod it points at.
fn endpoint_key(e: &Endpoint) -> String {
    e.target_ref
        .as_ref()
        .and_then(|r| r.uid.clone())
        .unwrap_or_else(|| e.addresses.join(","))
}

/// The labels of a Service's slices: the Service's own (but the two the
/// controller sets), the Service name, the manager, and the headless mark.
fn slice_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = service
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k != SERVICE_NAME_LABEL && k != MANAGED_BY_LABEL)
        .collect();
    labels.insert(
        SERVICE_NAME_LABEL.into(),
        service.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    if is_headless(service) {
        labels.insert(crate::endpoints::HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(crate::endpoints::HEADLESS_LABEL);
    }
    labels
}

fn address_type(service: &Service) -> &'static str {
    let families = service.spec.as_ref().and_then(|s| s.ip_families.as_ref());
    match families.and_then(|f| f.first()).map(String::as_str) {
        Some("IPv6") => "IPv6",
        _ => "IPv4",
    }
}

fn new_slice(
    service: &Service,
    ports: Option<Vec<EndpointPort>>,
    endpoints: Vec<Endpoint>,
) -> EndpointSlice {
    let name = service.metadata.name.clone().unwrap_or_default();
    // Upstream falls back to `endpointslice-` when `<service>-` is no valid
    // name prefix; a Service name always is one.
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: service.metadata.namespace.clone(),
            labels: Some(slice_labels(service)),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Service".into(),
                name,
                uid: service.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        address_type: address_type(service).into(),
        endpoints,
        ports,
    }
}

/// The plan for one Service: what to create, update and delete.
#[derive(Default)]
struct Plan {
    create: Vec<EndpointSlice>,
    update: Vec<EndpointSlice>,
    delete: Vec<Arc<EndpointSlice>>,
}

/// Upstream's `reconcileByAddressType`, as a pure function of the desired
/// endpoints and the existing slices.
fn plan(
    service: &Service,
    mut desired: BTreeMap<String, PortGroup>,
    existing: Vec<Arc<EndpointSlice>>,
) -> Plan {
    let mut plan = Plan::default();
    let labels = slice_labels(service);
    let address_type = address_type(service);
    let total_desired: usize = desired.values().map(|g| g.endpoints.len()).sum();

    // Desired endpoints by group, keyed by pod, each placed at most once.
    let mut wanted: BTreeMap<String, HashMap<String, Endpoint>> = desired
        .iter_mut()
        .map(|(k, g)| {
            let by_key = std::mem::take(&mut g.endpoints)
                .into_iter()
                .map(|e| (endpoint_key(&e), e))
                .collect();
            (k.clone(), by_key)
        })
        .collect();
    // Order of first appearance, so that new endpoints fill in a stable order.
    let order: BTreeMap<String, Vec<String>> = wanted
        .iter()
        .map(|(k, m)| {
            let mut keys: Vec<String> = m.keys().cloned().collect();
            keys.sort();
            (k.clone(), keys)
        })
        .collect();

    // Slices kept (updated or unchanged), per port group, with their fill.
    let mut kept: BTreeMap<String, Vec<(EndpointSlice, bool)>> = BTreeMap::new();
    let mut placeholder: Option<Arc<EndpointSlice>> = None;
    for slice in existing {
        let key = ports_key(slice.ports.as_deref().unwrap_or_default());
        let is_placeholder =
            slice.endpoints.is_empty() && slice.ports.as_ref().is_none_or(Vec::is_empty);
        let Some(group) = wanted
            .get_mut(&key)
            .filter(|_| slice.address_type == address_type)
        else {
            if is_placeholder && placeholder.is_none() && slice.address_type == address_type {
                placeholder = Some(slice);
            } else {
                plan.delete.push(slice);
            }
            continue;
        };
        let mut endpoints = Vec::new();
        for e in &slice.endpoints {
            if let Some(want) = group.remove(&endpoint_key(e)) {
                endpoints.push(want);
            }
        }
        if endpoints.is_empty() {
            if is_placeholder && placeholder.is_none() {
                placeholder = Some(slice);
            } else {
                plan.delete.push(slice);
            }
            continue;
        }
        let changed =
            endpoints != slice.endpoints || slice.metadata.labels.as_ref() != Some(&labels);
        let mut new = (*slice).clone();
        new.endpoints = endpoints;
        new.metadata.labels = Some(labels.clone());
        kept.entry(key).or_default().push((new, changed));
    }

    // New endpoints: first into slices being updated anyway, then into
    // new full slices; what is left goes into the fullest unchanged slice
    // that can take all of it, or else into one more new slice.
    for (key, keys) in order {
        let group = wanted.get_mut(&key).unwrap();
        let mut pending: Vec<Endpoint> = keys.iter().filter_map(|k| group.remove(k)).collect();
        let slices = kept.entry(key.clone()).or_default();
        for (slice, changed) in slices.iter_mut().filter(|(_, c)| *c) {
            let room = MAX_ENDPOINTS_PER_SLICE.saturating_sub(slice.endpoints.len());
            let take = room.min(pending.len());
            slice.endpoints.extend(pending.drain(..take));
            debug_assert!(*changed);
        }
        let ports = desired
            .get(&key)
            .map(|g| g.ports.clone())
            .unwrap_or_default();
        while pending.len() >= MAX_ENDPOINTS_PER_SLICE {
            let chunk: Vec<Endpoint> = pending.drain(..MAX_ENDPOINTS_PER_SLICE).collect();
            plan.create
                .push(new_slice(service, Some(ports.clone()), chunk));
        }
        if pending.is_empty() {
            continue;
        }
        let fits = slices
            .iter_mut()
            .filter(|(s, c)| {
                !*c && MAX_ENDPOINTS_PER_SLICE - s.endpoints.len().min(MAX_ENDPOINTS_PER_SLICE)
                    >= pending.len()
            })
            .max_by_key(|(s, _)| s.endpoints.len());
        match fits {
            Some((slice, changed)) => {
                slice.endpoints.append(&mut pending);
                *changed = true;
            }
            None => plan.create.push(new_slice(service, Some(ports), pending)),
        }
    }
    for (_, slices) in kept {
        for (slice, changed) in slices {
            if changed {
                plan.update.push(slice);
            }
        }
    }

    // A Service without endpoints keeps one empty placeholder slice.
    if total_desired == 0 {
        match placeholder {
            Some(p) => {
                if p.metadata.labels.as_ref() != Some(&labels) {
                    let mut new = (*p).clone();
                    new.metadata.labels = Some(labels.clone());
                    plan.update.push(new);
                }
            }
            None => plan.create.push(new_slice(service, None, Vec::new())),
        }
    } else if let Some(p) = placeholder {
        plan.delete.push(p);
    }
    plan
}

#[async_trait::async_trait]
impl Reconciler for EndpointSliceController {
    fn name(&self) -> &'static str {
        "endpoint-slice-controller"
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let result = self.sync_service(key).await;
        if result.is_err() {
            // The write failed: the changes the trigger time covered are
            // still to be written, so the retry reports them again.
            self.triggers.rollback(key);
        }
        result
    }
}

impl EndpointSliceController {
    async fn sync_service(&self, key: &Key) -> Result<Action> {
        let Some(service) = self.services.get(key) else {
            // The slices are owned by the Service: the garbage collector
            // deletes them.
            self.triggers.delete_service(key);
            self.tracker.forget(key);
            return Ok(Action::Done);
        };
        if service.metadata.deletion_timestamp.is_some() {
            return Ok(Action::Done);
        }
        let Some(selector) = managed_selector(&service) else {
            return Ok(Action::Done);
        };
        if self.tracker.stale(&self.slices, key) {
            // Our last writes are not in the cache yet; their watch events
            // requeue the Service.
            return Ok(Action::RequeueAfter(Duration::from_millis(200)));
        }
        let pods = selected_pods(&self.pods, &key.namespace, selector);
        let trigger = self.triggers.compute(key, &service, &pods);
        let desired = self.desired_endpoints(&service, &pods);
        let uid = service.metadata.uid.clone().unwrap_or_default();
        let existing: Vec<Arc<EndpointSlice>> = self
            .slices
            .by_index(BY_SERVICE, &key.to_string())
            .into_iter()
            .filter(|s| {
                // Slices of an earlier Service of the same name are not ours.
                s.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.kind == "Service" && o.uid == uid)
            })
            .collect();
        let plan = plan(&service, desired, existing);

        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &key.namespace);
        let annotate = |slice: &mut EndpointSlice| {
            let annotations = slice.metadata.annotations.get_or_insert_with(BTreeMap::new);
            match trigger {
                Some(t) => {
                    annotations.insert(LAST_CHANGE_TRIGGER_TIME.into(), format_trigger_time(t));
                }
                None => {
                    annotations.remove(LAST_CHANGE_TRIGGER_TIME);
                }
            }
            if annotations.is_empty() {
                slice.metadata.annotations = None;
            }
        };
        let mut create = plan.create;
        let mut update = plan.update;
        create
            .iter_mut()
            .chain(update.iter_mut())
            .for_each(annotate);
        let delete = plan
            .delete
            .into_iter()
            .map(|slice| slice.metadata.name.clone().unwrap_or_default())
            .collect();
        let result = self.tracker.write(&api, key, create, update, delete).await;
        if let Err(e) = result {
            if !runner::is_conflict(&e) && !namespace_terminating(&e) {
                self.recorder.warning(
                    service.as_ref(),
                    "FailedToUpdateEndpointSlices",
                    format!(
                        "Error updating Endpoint Slices for Service {}/{}: {e}",
                        key.namespace, key.name
                    ),
                );
            }
            if namespace_terminating(&e) {
                return Ok(Action::Done);
            }
            return Err(e.into());
        }
        Ok(Action::Done)
    }
}

pub(crate) fn namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403 && s.message.contains("because it is being terminated"))
}

/// How many endpoints the slices hold, each in one slice only.
#[cfg(test)]
fn count_endpoints(slices: &[EndpointSlice]) -> usize {
    let mut seen = std::collections::HashSet::new();
    for s in slices {
        for e in &s.endpoints {
            assert!(seen.insert(endpoint_key(e)), "endpoint in two slices");
        }
    }
    seen.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ObjectReference, ServicePort, ServiceSpec};

    fn service() -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("svc-uid".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some("10.43.0.20".into()),
                selector: Some(BTreeMap::from([("app".into(), "web".into())])),
                ports: Some(vec![ServicePort {
                    port: 80,
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn endpoint(i: usize) -> Endpoint {
        Endpoint {
            addresses: vec![format!("10.42.{}.{}", i / 250, i % 250 + 1)],
            target_ref: Some(ObjectReference {
                uid: Some(format!("pod-{i:04}")),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn port(n: i32) -> EndpointPort {
        EndpointPort {
            name: Some(String::new()),
            port: Some(n),
            protocol: Some("TCP".into()),
            app_protocol: None,
        }
    }

    fn desired(range: std::ops::Range<usize>) -> BTreeMap<String, PortGroup> {
        let ports = vec![port(80)];
        BTreeMap::from([(
            ports_key(&ports),
            PortGroup {
                ports,
                endpoints: range.map(endpoint).collect(),
            },
        )])
    }

    fn existing(plan: Plan, start: usize) -> Vec<Arc<EndpointSlice>> {
        plan.create
            .into_iter()
            .chain(plan.update)
            .enumerate()
            .map(|(i, mut s)| {
                s.metadata.name = Some(format!("web-{}", start + i));
                Arc::new(s)
            })
            .collect()
    }

    #[test]
    fn endpoints_are_split_into_slices_of_at_most_100() {
        let p = plan(&service(), desired(0..250), vec![]);
        assert_eq!(p.create.len(), 3);
        assert!(p
            .create
            .iter()
            .all(|s| s.endpoints.len() <= MAX_ENDPOINTS_PER_SLICE));
        assert_eq!(count_endpoints(&p.create), 250);
        let labels = p.create[0].metadata.labels.as_ref().unwrap();
        assert_eq!(labels[SERVICE_NAME_LABEL], "web");
        assert_eq!(labels[MANAGED_BY_LABEL], CONTROLLER_NAME);
        assert_eq!(p.create[0].metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(p.create[0].address_type, "IPv4");
    }

    #[test]
    fn unchanged_endpoints_rewrite_nothing() {
        let first = plan(&service(), desired(0..150), vec![]);
        let slices = existing(first, 0);
        let again = plan(&service(), desired(0..150), slices);
        assert!(again.create.is_empty() && again.update.is_empty() && again.delete.is_empty());
    }

    #[test]
    fn a_removed_pod_rewrites_only_its_slice() {
        let slices = existing(plan(&service(), desired(0..150), vec![]), 0);
        let p = plan(&service(), desired(1..150), slices);
        assert!(p.create.is_empty() && p.delete.is_empty());
        assert_eq!(p.update.len(), 1);
        assert_eq!(p.update[0].endpoints.len(), 99);
    }

    #[test]
    fn a_new_pod_fills_a_slice_with_room() {
        let slices = existing(plan(&service(), desired(0..150), vec![]), 0);
        let p = plan(&service(), desired(0..151), slices);
        assert!(p.create.is_empty() && p.delete.is_empty());
        assert_eq!(p.update.len(), 1);
        assert_eq!(p.update[0].endpoints.len(), 51);
    }

    #[test]
    fn no_endpoints_leave_one_placeholder_slice() {
        let p = plan(&service(), BTreeMap::new(), vec![]);
        assert_eq!(p.create.len(), 1);
        assert!(p.create[0].endpoints.is_empty() && p.create[0].ports.is_none());
        let slices = existing(p, 0);
        let again = plan(&service(), BTreeMap::new(), slices.clone());
        assert!(again.create.is_empty() && again.update.is_empty() && again.delete.is_empty());
        // Endpoints arrive: a real slice is created, the placeholder goes.
        let p = plan(&service(), desired(0..3), slices);
        assert_eq!(p.create.len(), 1);
        assert_eq!(p.delete.len(), 1);
    }

    #[test]
    fn a_port_change_moves_endpoints_to_new_slices() {
        let slices = existing(plan(&service(), desired(0..3), vec![]), 0);
        let ports = vec![port(8080)];
        let moved = BTreeMap::from([(
            ports_key(&ports),
            PortGroup {
                ports,
                endpoints: (0..3).map(endpoint).collect(),
            },
        )]);
        let p = plan(&service(), moved, slices);
        assert_eq!(p.create.len(), 1);
        assert_eq!(p.delete.len(), 1);
        assert_eq!(p.create[0].ports.as_ref().unwrap()[0].port, Some(8080));
    }
}
