//! The Endpoints controller (upstream `endpoint-controller`): for every
//! Service with a selector, an Endpoints object of the same name listing the
//! selected pods' IPs, ready ones under `addresses` and the others under
//! `notReadyAddresses` (all under `addresses` when the Service publishes
//! not-ready addresses), with each pod's resolved target ports. Services
//! without a selector, and ExternalName Services, are left alone; the
//! Endpoints of a deleted Service are deleted.
//!
//! The pod-to-endpoint rules shared with the EndpointSlice controller live
//! here too ([`should_pod_be_in_endpoints`], [`find_port`],
//! [`TriggerTimeTracker`], ...).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, PostParams};
use kube::Client;
use tokio::task::JoinSet;

use crate::events::Recorder;
use crate::informer::{Change, Informer, Key};
use crate::queue::WorkQueue;
use crate::runner::{self, Action, Reconciler, Result};
use crate::Context;

pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Upstream's annotation on Endpoints used as leader-election locks; those
/// are never deleted as leftovers.
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";
/// At most this many addresses in one Endpoints object; the rest is
/// truncated and the object annotated `over-capacity: truncated`.
const MAX_CAPACITY: usize = 1000;

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let services = ctx.informers.get::<Service>();
    let pods = ctx.informers.get::<Pod>();
    let endpoints = ctx.informers.get::<Endpoints>();
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
        endpoints.on_change(move |change| {
            if let Change::Deleted(ep) = change {
                queue.add(Key::of(ep.as_ref()))
            }
        });
    }

    let controller = Arc::new(EndpointsController {
        client: ctx.client.clone(),
        services: services.clone(),
        pods: pods.clone(),
        endpoints: endpoints.clone(),
        triggers: TriggerTimeTracker::default(),
        recorder: ctx.recorder("endpoint-controller"),
    });
    let synced = {
        let queue = queue.clone();
        async move {
            services.wait_synced().await;
            pods.wait_synced().await;
            endpoints.wait_synced().await;
            // Endpoints left behind by Services deleted while no controller
            // ran (upstream's `checkLeftoverEndpoints`, once at start).
            for ep in endpoints.list() {
                let leader = ep
                    .metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(LEADER_ANNOTATION));
                if !leader {
                    queue.add(Key::of(ep.as_ref()));
                }
            }
        }
    };
    runner::spawn_when_synced(tasks, synced, controller, queue, 5);
}

struct EndpointsController {
    client: Client,
    services: Informer<Service>,
    pods: Informer<Pod>,
    endpoints: Informer<Endpoints>,
    triggers: TriggerTimeTracker,
    recorder: Recorder,
}

#[async_trait::async_trait]
impl Reconciler for EndpointsController {
    fn name(&self) -> &'static str {
        "endpoint-controller"
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

impl EndpointsController {
    async fn sync_service(&self, key: &Key) -> Result<Action> {
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), &key.namespace);
        let Some(service) = self.services.get(key) else {
            // The Service is gone: so are its Endpoints.
            self.triggers.delete_service(key);
            if self.endpoints.get(key).is_some() {
                match api.delete(&key.name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(e) if runner::is_not_found(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(Action::Done);
        };
        let Some(selector) = managed_selector(&service) else {
            return Ok(Action::Done);
        };
        let pods = selected_pods(&self.pods, &key.namespace, selector);
        let trigger = self.triggers.compute(key, &service, &pods);
        let subsets = desired_subsets(&service, &pods);

        let current = self.endpoints.get(key);
        let labels = service.metadata.labels.clone().unwrap_or_default();
        if let Some(current) = &current {
            let mut current_labels = current.metadata.labels.clone().unwrap_or_default();
            current_labels.remove(HEADLESS_LABEL);
            let over = current
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(OVER_CAPACITY));
            let count: usize = subsets.iter().map(address_count).sum();
            if subsets_equal_ignoring_versions(
                current.subsets.as_deref().unwrap_or_default(),
                &subsets,
            ) && current_labels == labels
                && !over
                && count <= MAX_CAPACITY
            {
                return Ok(Action::Done);
            }
        }

        let mut new = match &current {
            Some(c) => (**c).clone(),
            None => Endpoints {
                metadata: ObjectMeta {
                    name: Some(key.name.clone()),
                    namespace: Some(key.namespace.clone()),
                    ..Default::default()
                },
                ..Default::default()
            },
        };
        let mut subsets = subsets;
        let mut annotations = new.metadata.annotations.take().unwrap_or_default();
        match trigger {
            Some(t) => {
                annotations.insert(LAST_CHANGE_TRIGGER_TIME.into(), format_trigger_time(t));
            }
            None => {
                annotations.remove(LAST_CHANGE_TRIGGER_TIME);
            }
        }
        if truncate(&mut subsets) {
            annotations.insert(OVER_CAPACITY.into(), "truncated".into());
        } else {
            annotations.remove(OVER_CAPACITY);
        }
        new.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
        let mut labels = labels;
        if is_headless(&service) {
            labels.insert(HEADLESS_LABEL.into(), String::new());
        }
        new.metadata.labels = (!labels.is_empty()).then_some(labels);
        new.subsets = (!subsets.is_empty()).then_some(subsets);

        let result = match &current {
            None => api.create(&PostParams::default(), &new).await,
            Some(_) => api.replace(&key.name, &PostParams::default(), &new).await,
        };
        if let Err(e) = result {
            if current.is_none() && namespace_terminating(&e) {
                return Ok(Action::Done);
            }
            if !runner::is_conflict(&e) {
                let reference = ObjectReference {
                    kind: Some("Endpoints".into()),
                    api_version: Some("v1".into()),
                    namespace: Some(key.namespace.clone()),
                    name: Some(key.name.clone()),
                    uid: new.metadata.uid.clone(),
                    ..Default::default()
                };
                let message = match &current {
                    None => format!(
                        "Failed to create endpoint for service {}/{}: {e}",
                        key.namespace, key.name
                    ),
                    Some(_) => format!(
                        "Failed to update endpoint {}/{}: {e}",
                        key.namespace, key.name
                    ),
                };
                let reason = if current.is_none() {
                    "FailedToCreateEndpoint"
                } else {
                    "FailedToUpdateEndpoint"
                };
                self.recorder
                    .record(reference, crate::events::WARNING, reason, message);
            }
            return Err(e.into());
        }
        Ok(Action::Done)
    }
}

fn namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403 && s.message.contains("because it is being terminated"))
}

/// The selector of a Service whose endpoints the controllers manage: `None`
/// for ExternalName Services and Services without a selector (their
/// endpoints are written by someone else).
pub(crate) fn managed_selector(service: &Service) -> Option<&BTreeMap<String, String>> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    // The API drops an empty selector (`omitempty`), so an empty map is the
    // same as none.
    spec.selector.as_ref().filter(|s| !s.is_empty())
}

pub(crate) fn is_headless(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .is_none_or(|ip| ip.is_empty() || ip == "None")
}

fn publish_not_ready(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The pods of `namespace` that `selector` selects.
pub(crate) fn selected_pods(
    pods: &Informer<Pod>,
    namespace: &str,
    selector: &BTreeMap<String, String>,
) -> Vec<Arc<Pod>> {
    pods.list_namespace(namespace)
        .into_iter()
        .filter(|p| selector_matches(selector, p.metadata.labels.as_ref()))
        .collect()
}

/// The Services whose endpoints a pod change may affect: those selecting
/// the pod before or after the change (upstream's
/// `GetServicesToUpdateOnPodChange`).
pub(crate) fn services_for_pod_change(
    services: &Informer<Service>,
    change: &Change<'_, Pod>,
) -> Vec<Key> {
    let (old, new) = match change {
        Change::Added(p) | Change::Deleted(p) => (None, p),
        Change::Updated { old, new } => (Some(old), new),
    };
    let namespace = new.metadata.namespace.clone().unwrap_or_default();
    services
        .list_namespace(&namespace)
        .into_iter()
        .filter(|svc| {
            let Some(selector) = managed_selector(svc) else {
                return false;
            };
            selector_matches(selector, new.metadata.labels.as_ref())
                || old.is_some_and(|o| selector_matches(selector, o.metadata.labels.as_ref()))
        })
        .map(|svc| Key::of(svc.as_ref()))
        .collect()
}

fn pod_ip(pod: &Pod) -> Option<&str> {
    let status = pod.status.as_ref()?;
    status
        .pod_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
        .or_else(|| status.pod_ips.as_ref()?.first().map(|i| i.ip.as_str()))
}

/// Upstream's `ShouldPodBeInEndpoints`: not terminal, has an IP, and not
/// terminating unless terminating pods are included.
pub(crate) fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded") | Some("Failed")) {
        return false;
    }
    if pod_ip(pod).is_none() {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

/// A pod's hostname is published when its subdomain names the Service.
pub(crate) fn should_set_hostname(pod: &Pod, service: &Service) -> bool {
    let Some(spec) = &pod.spec else { return false };
    spec.hostname.as_deref().is_some_and(|h| !h.is_empty())
        && spec.subdomain.as_deref() == service.metadata.name.as_deref()
        && pod.metadata.namespace == service.metadata.namespace
}

/// The container port a Service port targets on one pod: a number as is, a
/// name looked up among the pod's container ports of the same protocol
/// (sidecar init containers included, as upstream's `FindPort`).
pub(crate) fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(if *n == 0 { port.port } else { *n }),
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name)
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

pub(crate) fn pod_reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

/// The Endpoints subsets for a Service and the pods it selects, packed as
/// upstream's `RepackSubsets` packs them.
pub fn desired_subsets(service: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let publish = publish_not_ready(service);
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let mut entries: Vec<(Option<EndpointPort>, EndpointAddress, bool)> = Vec::new();
    for pod in pods {
        if !should_pod_be_in_endpoints(pod, publish) {
            continue;
        }
        let Some(ip) = pod_ip(pod) else { continue };
        let mut address = EndpointAddress {
            ip: ip.to_string(),
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(pod_reference(pod)),
            ..Default::default()
        };
        if should_set_hostname(pod, service) {
            address.hostname = pod.spec.as_ref().and_then(|s| s.hostname.clone());
        }
        let ready = publish || crate::pod::is_ready(pod);
        if ports.is_empty() {
            // A headless Service may have no ports.
            if is_headless(service) {
                entries.push((None, address, ready));
            }
            continue;
        }
        for port in &ports {
            let Some(number) = find_port(pod, port) else {
                continue;
            };
            let endpoint_port = EndpointPort {
                name: port.name.clone().filter(|n| !n.is_empty()),
                port: number,
                protocol: Some(port.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: port.app_protocol.clone(),
            };
            entries.push((Some(endpoint_port), address.clone(), ready));
        }
    }
    repack(entries)
}

type PortKey = (String, i32, String, String);
type AddressKey = (String, String);
/// Addresses by (ip, pod uid), each with whether it is ready.
type AddressSet = BTreeMap<AddressKey, (EndpointAddress, bool)>;

fn port_key(p: &Option<EndpointPort>) -> PortKey {
    match p {
        None => (String::new(), -1, String::new(), String::new()),
        Some(p) => (
            p.name.clone().unwrap_or_default(),
            p.port,
            p.protocol.clone().unwrap_or_default(),
            p.app_protocol.clone().unwrap_or_default(),
        ),
    }
}

/// Groups (port, address, ready) entries into subsets: each port with the
/// set of addresses offering it, then ports sharing the same address set
/// into one subset. An address both ready and not ready for a port counts
/// as ready.
fn repack(entries: Vec<(Option<EndpointPort>, EndpointAddress, bool)>) -> Vec<EndpointSubset> {
    let mut by_port: BTreeMap<PortKey, (Option<EndpointPort>, AddressSet)> = BTreeMap::new();
    for (port, address, ready) in entries {
        let key = (
            address.ip.clone(),
            address
                .target_ref
                .as_ref()
                .and_then(|r| r.uid.clone())
                .unwrap_or_default(),
        );
        let (_, addresses) = by_port
            .entry(port_key(&port))
            .or_insert_with(|| (port, BTreeMap::new()));
        let slot = addresses.entry(key).or_insert((address, ready));
        slot.1 |= ready;
    }
    // Address sets (as sorted keys with readiness) to the ports offering them.
    type Group = (Vec<EndpointPort>, Vec<(EndpointAddress, bool)>);
    let mut by_addresses: BTreeMap<Vec<(AddressKey, bool)>, Group> = BTreeMap::new();
    for (_, (port, addresses)) in by_port {
        let signature: Vec<(AddressKey, bool)> = addresses
            .iter()
            .map(|(k, (_, r))| (k.clone(), *r))
            .collect();
        let group = by_addresses
            .entry(signature)
            .or_insert_with(|| (Vec::new(), addresses.into_values().collect()));
        if let Some(port) = port {
            group.0.push(port);
        }
    }
    by_addresses
        .into_values()
        .map(|(ports, addresses)| {
            let (ready, not_ready): (Vec<_>, Vec<_>) = addresses.into_iter().partition(|(_, r)| *r);
            let ready: Vec<EndpointAddress> = ready.into_iter().map(|(a, _)| a).collect();
            let not_ready: Vec<EndpointAddress> = not_ready.into_iter().map(|(a, _)| a).collect();
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect()
}

fn address_count(s: &EndpointSubset) -> usize {
    s.addresses.as_ref().map_or(0, Vec::len) + s.not_ready_addresses.as_ref().map_or(0, Vec::len)
}

/// Keeps at most [`MAX_CAPACITY`] addresses, ready ones first; whether
/// anything was cut.
fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let total: usize = subsets.iter().map(address_count).sum();
    if total <= MAX_CAPACITY {
        return false;
    }
    let mut room = MAX_CAPACITY;
    for s in subsets.iter_mut() {
        if let Some(a) = &mut s.addresses {
            a.truncate(room);
            room -= a.len();
        }
    }
    for s in subsets.iter_mut() {
        if let Some(a) = &mut s.not_ready_addresses {
            a.truncate(room);
            room -= a.len();
        }
    }
    true
}

fn strip_versions(subsets: &[EndpointSubset]) -> Vec<EndpointSubset> {
    let mut subsets = subsets.to_vec();
    for s in &mut subsets {
        for a in s
            .addresses
            .iter_mut()
            .flatten()
            .chain(s.not_ready_addresses.iter_mut().flatten())
        {
            if let Some(r) = &mut a.target_ref {
                r.resource_version = None;
            }
        }
    }
    subsets
}

/// Whether two subset lists are the same, ignoring the pods' resource
/// versions in target references.
fn subsets_equal_ignoring_versions(a: &[EndpointSubset], b: &[EndpointSubset]) -> bool {
    strip_versions(a) == strip_versions(b)
}

/// Upstream's `TriggerTimeTracker`: the time of the earliest change (a pod's
/// Ready transition, or the Service's creation) not yet reflected in the
/// Service's endpoints, for the `last-change-trigger-time` annotation.
#[derive(Default)]
pub(crate) struct TriggerTimeTracker {
    states: Mutex<HashMap<Key, TriggerState>>,
}

#[derive(Default)]
struct TriggerState {
    pods: HashMap<String, DateTime<Utc>>,
    service: Option<DateTime<Utc>>,
    /// What `pods` and `service` were before the last `compute`, for
    /// `rollback`.
    previous: Option<(HashMap<String, DateTime<Utc>>, Option<DateTime<Utc>>)>,
}

impl TriggerTimeTracker {
    pub(crate) fn compute(
        &self,
        key: &Key,
        service: &Service,
        pods: &[Arc<Pod>],
    ) -> Option<DateTime<Utc>> {
        let mut states = self.states.lock().unwrap();
        let state = states.entry(key.clone()).or_default();
        let mut earliest: Option<DateTime<Utc>> = None;
        let mut seen = HashMap::new();
        for pod in pods {
            let Some(t) = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                .and_then(|c| c.last_transition_time.as_ref())
                .map(|t| t.0)
            else {
                continue;
            };
            let name = pod.metadata.name.clone().unwrap_or_default();
            if state.pods.get(&name).is_none_or(|last| t > *last) {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
            seen.insert(name, t);
        }
        let created = service.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if let Some(t) = created {
            if state.service.is_none_or(|last| t > last) {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
        }
        let pods = std::mem::replace(&mut state.pods, seen);
        let service = std::mem::replace(&mut state.service, created);
        state.previous = Some((pods, service));
        earliest
    }

    /// Forgets the last `compute` for this Service (its write failed), so
    /// that the next one reports the same changes again.
    pub(crate) fn rollback(&self, key: &Key) {
        let mut states = self.states.lock().unwrap();
        if let Some(state) = states.get_mut(key) {
            if let Some((pods, service)) = state.previous.take() {
                state.pods = pods;
                state.service = service;
            }
        }
    }

    pub(crate) fn delete_service(&self, key: &Key) {
        self.states.lock().unwrap().remove(key);
    }
}

/// Go's RFC3339Nano in UTC.
pub(crate) fn format_trigger_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, PodCondition, PodSpec, PodStatus, ServiceSpec,
    };

    fn pod(name: &str, ip: &str, ready: bool, port_name: &str, port: i32) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("sim-node-0".into()),
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some(port_name.into()),
                        container_port: port,
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: Some(ip.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn a_failed_write_reports_the_same_trigger_time_again() {
        let tracker = TriggerTimeTracker::default();
        let key = Key::new("default", "web");
        let mut svc = service(IntOrString::Int(8080));
        let created = Utc::now();
        svc.metadata.creation_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(created),
        );
        let pods = [pod("a", "10.42.0.5", true, "http", 8080)];
        assert_eq!(tracker.compute(&key, &svc, &pods), Some(created));
        // The write of that sync failed: the retry reports the same time.
        tracker.rollback(&key);
        assert_eq!(tracker.compute(&key, &svc, &pods), Some(created));
        // Written: a later sync without changes has no trigger.
        assert_eq!(tracker.compute(&key, &svc, &pods), None);
    }

    fn service(target: IntOrString) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some("10.43.0.20".into()),
                selector: Some(BTreeMap::from([("app".into(), "web".into())])),
                ports: Some(vec![ServicePort {
                    port: 80,
                    target_port: Some(target),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn named_target_port_resolves_per_pod() {
        let svc = service(IntOrString::String("http".into()));
        let pods = vec![
            pod("a", "10.42.0.2", true, "http", 8080),
            pod("b", "10.42.0.3", true, "http", 9090),
        ];
        let subsets = desired_subsets(&svc, &pods);
        // Different ports: two subsets.
        assert_eq!(subsets.len(), 2);
        let mut pairs: Vec<(String, i32)> = subsets
            .iter()
            .map(|s| {
                (
                    s.addresses.as_ref().unwrap()[0].ip.clone(),
                    s.ports.as_ref().unwrap()[0].port,
                )
            })
            .collect();
        pairs.sort();
        assert_eq!(
            pairs,
            vec![
                ("10.42.0.2".to_string(), 8080),
                ("10.42.0.3".to_string(), 9090)
            ]
        );
    }

    #[test]
    fn ready_and_not_ready_pods_share_a_subset() {
        let svc = service(IntOrString::Int(8080));
        let pods = vec![
            pod("a", "10.42.0.2", true, "x", 1),
            pod("b", "10.42.0.3", false, "x", 1),
        ];
        let subsets = desired_subsets(&svc, &pods);
        assert_eq!(subsets.len(), 1);
        assert_eq!(subsets[0].addresses.as_ref().unwrap()[0].ip, "10.42.0.2");
        assert_eq!(
            subsets[0].not_ready_addresses.as_ref().unwrap()[0].ip,
            "10.42.0.3"
        );
        assert_eq!(subsets[0].ports.as_ref().unwrap()[0].port, 8080);
    }

    #[test]
    fn pod_without_the_named_port_is_left_out() {
        let svc = service(IntOrString::String("http".into()));
        let pods = vec![pod("a", "10.42.0.2", true, "metrics", 9100)];
        assert!(desired_subsets(&svc, &pods).is_empty());
    }

    #[test]
    fn terminating_and_terminal_pods_are_excluded() {
        let svc = service(IntOrString::Int(80));
        let mut terminating = (*pod("a", "10.42.0.2", true, "x", 1)).clone();
        terminating.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Utc::now()),
        );
        let mut done = (*pod("b", "10.42.0.3", false, "x", 1)).clone();
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        let subsets = desired_subsets(&svc, &[Arc::new(terminating), Arc::new(done)]);
        assert!(subsets.is_empty());
    }

    #[test]
    fn truncation_keeps_ready_addresses_first() {
        let addr = |i: usize| EndpointAddress {
            ip: format!("10.42.{}.{}", i / 250, i % 250),
            ..Default::default()
        };
        let mut subsets = vec![EndpointSubset {
            addresses: Some((0..900).map(addr).collect()),
            not_ready_addresses: Some((900..1200).map(addr).collect()),
            ports: None,
        }];
        assert!(truncate(&mut subsets));
        assert_eq!(subsets[0].addresses.as_ref().unwrap().len(), 900);
        assert_eq!(subsets[0].not_ready_addresses.as_ref().unwrap().len(), 100);
    }
}
