//! The EndpointSlice mirroring controller (upstream
//! `endpointslice-mirroring-controller`): a Service without a selector
//! gets its endpoints from an Endpoints object its user writes; this
//! controller mirrors that object into EndpointSlices, so that everything
//! reading slices sees them too. Slices are named `<service>-<random>`
//! (generateName), labelled `kubernetes.io/service-name` and
//! `endpointslice.kubernetes.io/managed-by:
//! endpointslicemirroring-controller.k8s.io` on top of the Endpoints' own
//! labels, carry its annotations, and are controlled by the Endpoints.
//!
//! Each distinct port list and address type of the Endpoints' subsets
//! becomes one slice of at most 1,000 endpoints (`--mirroring-max-endpoints-
//! per-subset`); addresses beyond that, and addresses that are not IPs, are
//! skipped with a warning event. Nothing is mirrored for Endpoints labelled
//! `endpointslice.kubernetes.io/skip-mirror: "true"`, Endpoints used as a
//! leader-election lock, Endpoints without a Service, or whose Service has
//! a selector: their mirrored slices are deleted, as they are when the
//! Endpoints or the Service go away.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::Client;
use tokio::task::JoinSet;

use crate::endpoints::LAST_CHANGE_TRIGGER_TIME;
use crate::endpointslice::{
    index_by_service, managed_service, namespace_terminating, ports_key, SliceTracker,
    MANAGED_BY_LABEL, SERVICE_NAME_LABEL,
};
use crate::events::Recorder;
use crate::informer::{Change, Informer, Key};
use crate::queue::WorkQueue;
use crate::runner::{self, Action, Reconciler, Result};
use crate::Context;

pub const CONTROLLER_NAME: &str = "endpointslicemirroring-controller.k8s.io";
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
/// Endpoints used as a leader-election lock carry this annotation.
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// `--mirroring-max-endpoints-per-subset`, 1,000 by default.
pub const MAX_ENDPOINTS_PER_SUBSET: usize = 1000;
const COMPONENT: &str = "endpoint-slice-mirroring-controller";
const BY_ENDPOINTS: &str = "mirrored-endpoints";
/// `--mirroring-concurrent-service-endpoint-syncs`.
const WORKERS: usize = 5;

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let endpoints = ctx.informers.get::<Endpoints>();
    let services = ctx.informers.get::<Service>();
    let slices = ctx.informers.get::<EndpointSlice>();
    index_by_service(&slices, BY_ENDPOINTS, CONTROLLER_NAME);
    let queue = WorkQueue::<Key>::new();
    {
        let queue = queue.clone();
        endpoints.on_change(move |change| {
            let mirrored = match change {
                Change::Updated { old, new } => should_mirror(old) || should_mirror(new),
                _ => should_mirror(change.object()),
            };
            if mirrored {
                queue.add(Key::of(change.object().as_ref()));
            }
        });
    }
    {
        let queue = queue.clone();
        services.on_change(move |change| {
            let wanted = match change {
                Change::Updated { old, new } => has_selector(old) != has_selector(new),
                _ => !has_selector(change.object()),
            };
            if wanted {
                queue.add(Key::of(change.object().as_ref()));
            }
        });
    }
    {
        let queue = queue.clone();
        slices.on_change(move |change| {
            if let Change::Updated { old, .. } = change {
                if let Some(key) = mirrored_for(old) {
                    queue.add(key);
                }
            }
            if let Some(key) = mirrored_for(change.object()) {
                queue.add(key);
            }
        });
    }
    let controller = Arc::new(MirroringController {
        client: ctx.client.clone(),
        endpoints: endpoints.clone(),
        services: services.clone(),
        slices: slices.clone(),
        tracker: SliceTracker::default(),
        recorder: ctx.recorder(COMPONENT),
    });
    let synced = async move {
        endpoints.wait_synced().await;
        services.wait_synced().await;
        slices.wait_synced().await;
    };
    runner::spawn_when_synced(tasks, synced, controller, queue, WORKERS);
}

/// The Endpoints a slice mirrors, if this controller manages it.
fn mirrored_for(slice: &EndpointSlice) -> Option<Key> {
    managed_service(slice, CONTROLLER_NAME)
}

/// Upstream `shouldMirror`: not marked to skip and not a leader-election
/// lock. Whether the Service exists without a selector is checked apart.
pub fn should_mirror(endpoints: &Endpoints) -> bool {
    let meta = &endpoints.metadata;
    let skip = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(SKIP_MIRROR_LABEL))
        .is_some_and(|v| v == "true");
    let lock = meta
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(LEADER_ANNOTATION));
    !skip && !lock
}

fn has_selector(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_some_and(|s| !s.is_empty())
}

/// What a sync writes.
#[derive(Debug, Default)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<String>,
    /// Addresses that are not IPs.
    pub invalid: usize,
    /// Addresses left out: invalid ones and those beyond the per-subset
    /// maximum.
    pub skipped: usize,
}

/// The endpoints wanted for one port list and address type.
struct Group {
    address_type: &'static str,
    ports: Vec<EndpointPort>,
    endpoints: Vec<Endpoint>,
    /// Where each endpoint is in `endpoints`: a repeated address replaces
    /// the earlier one (upstream's endpoint set).
    index: HashMap<String, usize>,
}

impl Group {
    fn insert(&mut self, endpoint: Endpoint) {
        let id = format!(
            "{:?}/{:?}/{:?}/{:?}",
            endpoint.addresses, endpoint.hostname, endpoint.node_name, endpoint.target_ref
        );
        match self.index.get(&id) {
            Some(&i) => self.endpoints[i] = endpoint,
            None => {
                self.index.insert(id, self.endpoints.len());
                self.endpoints.push(endpoint);
            }
        }
    }
}

fn group_key(address_type: &str, ports: &[EndpointPort]) -> String {
    format!("{address_type}-{}", ports_key(ports))
}

/// Upstream `epPortsToEpsPorts`.
fn slice_ports(endpoints_ports: &[k8s_openapi::api::core::v1::EndpointPort]) -> Vec<EndpointPort> {
    endpoints_ports
        .iter()
        .map(|p| EndpointPort {
            name: Some(p.name.clone().unwrap_or_default()),
            port: Some(p.port),
            protocol: Some(
                p.protocol
                    .clone()
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "TCP".into()),
            ),
            app_protocol: p.app_protocol.clone(),
        })
        .collect()
}

/// Parses an IP as Go's `ParseIPSloppy` does: IPv4 parts may carry leading
/// zeros; an IPv4-mapped IPv6 address is IPv4.
fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() == 4 && !s.contains(':') {
        let mut octets = [0u8; 4];
        for (o, p) in octets.iter_mut().zip(&parts) {
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *o = p.parse().ok()?;
        }
        return Some(IpAddr::from(octets));
    }
    match s.parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        v4 => Some(v4),
    }
}

/// Upstream `addressToEndpoint`: the endpoint and its address type, or
/// `None` for an address that is not an IP.
fn address_to_endpoint(address: &EndpointAddress, ready: bool) -> Option<(Endpoint, &'static str)> {
    let ip = parse_ip_sloppy(&address.ip)?;
    let address_type = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
    let endpoint = Endpoint {
        addresses: vec![ip.to_string()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            ..Default::default()
        }),
        target_ref: address.target_ref.clone(),
        node_name: address.node_name.clone(),
        hostname: address.hostname.clone().filter(|h| !h.is_empty()),
        ..Default::default()
    };
    Some((endpoint, address_type))
}

/// The metadata of a slice mirroring `endpoints` (upstream
/// `newEndpointSlice`): its labels with the two this controller sets, its
/// annotations but the trigger time and kubectl's last-applied copy, and
/// the Endpoints as controller.
fn slice_meta(endpoints: &Endpoints, name: Option<String>) -> ObjectMeta {
    let meta = &endpoints.metadata;
    let service = meta.name.clone().unwrap_or_default();
    let mut labels = meta.labels.clone().unwrap_or_default();
    labels.insert(SERVICE_NAME_LABEL.into(), service.clone());
    labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    let annotations: BTreeMap<String, String> = meta
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| *k != LAST_CHANGE_TRIGGER_TIME && *k != LAST_APPLIED)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    ObjectMeta {
        generate_name: name.is_none().then(|| format!("{service}-")),
        name,
        namespace: meta.namespace.clone(),
        labels: Some(labels),
        annotations: (!annotations.is_empty()).then_some(annotations),
        owner_references: Some(vec![crate::owner::controller_ref(endpoints)]),
        ..Default::default()
    }
}

fn sorted_endpoints(endpoints: &[Endpoint]) -> Vec<String> {
    let mut v: Vec<String> = endpoints
        .iter()
        .map(|e| serde_json::to_string(e).unwrap_or_default())
        .collect();
    v.sort();
    v
}

/// Upstream `reconciler.reconcile`: the slices to create, update and
/// delete so that `existing` (the slices mirrored for these Endpoints)
/// mirror `endpoints`.
pub fn plan(endpoints: &Endpoints, existing: &[Arc<EndpointSlice>], max_per_subset: usize) -> Plan {
    let mut plan = Plan::default();
    let mut desired: BTreeMap<String, Group> = BTreeMap::new();
    for subset in endpoints.subsets.iter().flatten() {
        let ports = slice_ports(subset.ports.as_deref().unwrap_or_default());
        for address_type in ["IPv4", "IPv6"] {
            desired
                .entry(group_key(address_type, &ports))
                .or_insert_with(|| Group {
                    address_type,
                    ports: ports.clone(),
                    endpoints: Vec::new(),
                    index: HashMap::new(),
                });
        }
        let addresses = subset.addresses.iter().flatten().map(|a| (a, true)).chain(
            subset
                .not_ready_addresses
                .iter()
                .flatten()
                .map(|a| (a, false)),
        );
        let mut total = 0;
        let mut added = 0;
        for (address, ready) in addresses {
            total += 1;
            if added >= max_per_subset {
                continue;
            }
            match address_to_endpoint(address, ready) {
                Some((endpoint, address_type)) => {
                    desired
                        .get_mut(&group_key(address_type, &ports))
                        .expect("both address types are set up")
                        .insert(endpoint);
                    added += 1;
                }
                None => plan.invalid += 1,
            }
        }
        plan.skipped += total - added;
    }

    let mut existing_by_key: BTreeMap<String, Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in existing {
        existing_by_key
            .entry(group_key(
                &slice.address_type,
                slice.ports.as_deref().unwrap_or_default(),
            ))
            .or_default()
            .push(slice);
    }
    for slices in existing_by_key.values_mut() {
        slices.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    }
    let name_of = |s: &EndpointSlice| s.metadata.name.clone().unwrap_or_default();
    for (key, group) in &desired {
        let existing = existing_by_key
            .get(key)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if group.endpoints.is_empty() {
            plan.delete.extend(existing.iter().map(|s| name_of(s)));
            continue;
        }
        let mut wanted: Vec<Endpoint> = group.endpoints.clone();
        wanted.truncate(max_per_subset);
        let first = existing.first();
        plan.delete
            .extend(existing.iter().skip(1).map(|s| name_of(s)));
        let meta = slice_meta(endpoints, first.map(|s| name_of(s)));
        if let Some(first) = first {
            let same = sorted_endpoints(&first.endpoints) == sorted_endpoints(&wanted)
                && first.metadata.labels == meta.labels
                && first.metadata.annotations.clone().unwrap_or_default()
                    == meta.annotations.clone().unwrap_or_default();
            if same {
                continue;
            }
        }
        let slice = EndpointSlice {
            metadata: meta,
            address_type: group.address_type.into(),
            ports: Some(group.ports.clone()),
            endpoints: wanted,
        };
        if first.is_some() {
            plan.update.push(slice);
        } else {
            plan.create.push(slice);
        }
    }
    for (key, slices) in &existing_by_key {
        if !desired.contains_key(key) {
            plan.delete.extend(slices.iter().map(|s| name_of(s)));
        }
    }
    recycle(&mut plan, existing);
    plan
}

/// Upstream `recycleSlices`: a slice to create takes the name of a slice of
/// the same address type that would be deleted, and updates it instead.
fn recycle(plan: &mut Plan, existing: &[Arc<EndpointSlice>]) {
    let address_type_of = |name: &str| {
        existing
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))
            .map(|s| s.address_type.clone())
    };
    let mut create = Vec::new();
    for mut slice in std::mem::take(&mut plan.create) {
        let reuse = plan
            .delete
            .iter()
            .position(|n| address_type_of(n).as_deref() == Some(slice.address_type.as_str()));
        match reuse {
            Some(i) => {
                let name = plan.delete.remove(i);
                slice.metadata.generate_name = None;
                slice.metadata.name = Some(name);
                plan.update.push(slice);
            }
            None => create.push(slice),
        }
    }
    plan.create = create;
}

struct MirroringController {
    client: Client,
    endpoints: Informer<Endpoints>,
    services: Informer<Service>,
    slices: Informer<EndpointSlice>,
    tracker: SliceTracker,
    recorder: Recorder,
}

impl MirroringController {
    fn mirrored(&self, key: &Key) -> Vec<Arc<EndpointSlice>> {
        self.slices.by_index(BY_ENDPOINTS, &key.to_string())
    }

    /// Deletes the slices mirrored for `key` (upstream `deleteMirroredSlices`).
    async fn delete_mirrored(&self, key: &Key) -> Result<Action> {
        self.tracker.forget(key);
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &key.namespace);
        let names = self
            .mirrored(key)
            .into_iter()
            .map(|slice| slice.metadata.name.clone().unwrap_or_default())
            .collect();
        self.tracker.write(&api, key, vec![], vec![], names).await?;
        Ok(Action::Done)
    }

    async fn apply(&self, key: &Key, plan: Plan, deleting: bool) -> Result<(), kube::Error> {
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &key.namespace);
        // No new slices for Endpoints being deleted.
        let create = if deleting { Vec::new() } else { plan.create };
        self.tracker
            .write(&api, key, create, plan.update, plan.delete)
            .await
    }
}

#[async_trait::async_trait]
impl Reconciler for MirroringController {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let Some(endpoints) = self.endpoints.get(key) else {
            return self.delete_mirrored(key).await;
        };
        if !should_mirror(&endpoints) {
            return self.delete_mirrored(key).await;
        }
        match self.services.get(key) {
            Some(service) if !has_selector(&service) => {}
            _ => return self.delete_mirrored(key).await,
        }
        if self.tracker.stale(&self.slices, key) {
            // Our last writes are not in the cache yet; their watch events
            // requeue the Endpoints.
            return Ok(Action::RequeueAfter(std::time::Duration::from_millis(200)));
        }
        let plan = plan(&endpoints, &self.mirrored(key), MAX_ENDPOINTS_PER_SUBSET);
        if plan.invalid > 0 {
            self.recorder.warning(
                endpoints.as_ref(),
                "InvalidIPAddress",
                &format!(
                    "Skipped {} invalid IP addresses when mirroring to EndpointSlices",
                    plan.invalid
                ),
            );
        }
        if plan.skipped > plan.invalid {
            self.recorder.warning(
                endpoints.as_ref(),
                "TooManyAddressesToMirror",
                &format!(
                    "A max of {MAX_ENDPOINTS_PER_SUBSET} addresses can be mirrored to EndpointSlices per Endpoints subset. {} addresses were skipped",
                    plan.skipped
                ),
            );
        }
        let deleting = endpoints.metadata.deletion_timestamp.is_some();
        match self.apply(key, plan, deleting).await {
            Ok(()) => Ok(Action::Done),
            // The namespace is going away: creates keep failing, drop it.
            Err(e) if namespace_terminating(&e) => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests;
