//! The resource quota controller (upstream `pkg/controller/resourcequota`
//! with the evaluators of `pkg/quota/v1/evaluator/core`): each quota's
//! `status.hard` is its `spec.hard`, and `status.used` the usage of the
//! resources it limits, counted from the objects in its namespace:
//! - pods: `pods`, `count/pods`, `cpu`/`memory`/`ephemeral-storage` and
//!   their `requests.*`/`limits.*`, hugepages and extended resources; only
//!   pods that are not finished and not past their deletion grace period
//!   count (except in `count/pods`), filtered by the quota's scopes
//!   (Terminating, NotTerminating, BestEffort, NotBestEffort, PriorityClass,
//!   CrossNamespacePodAffinity);
//! - services (`services`, `services.loadbalancers`, `services.nodeports`),
//!   claims (`persistentvolumeclaims`, `requests.storage`, and per storage
//!   class), and object counts (`configmaps`, `secrets`,
//!   `replicationcontrollers`, `resourcequotas`, `count/<resource>.<group>`
//!   for the built-in workload kinds).
//!
//! Quotas are recounted when they or the objects of their namespace change,
//! and every five minutes (upstream's full resync).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use api::Quantity;
use chrono::Utc;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota,
    ResourceQuotaStatus, ResourceRequirements, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as OpenApiQuantity;
use kube::api::{Api, PostParams};
use tokio::task::JoinSet;

use crate::informer::{Informer, Informers, Key, Object};
use crate::pod;
use crate::queue::WorkQueue;
use crate::runner::{self, is_not_found, Action, Reconciler, Result};
use crate::Context;

/// Upstream's `--resource-quota-sync-period`.
const RESYNC: Duration = Duration::from_secs(300);
const WORKERS: usize = 5;

type Usage = BTreeMap<String, Quantity>;

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let quotas = ctx.informers.get::<ResourceQuota>();
    let queue = WorkQueue::new();
    {
        let queue = queue.clone();
        quotas.on_change(move |change| queue.add(Key::of(change.object().as_ref())));
    }
    let counted = Counted::new(&ctx.informers);
    counted.on_change(&quotas, &queue);
    let controller = Arc::new(QuotaController {
        client: ctx.client.clone(),
        quotas: quotas.clone(),
        counted,
    });
    tasks.spawn(async move {
        quotas.wait_synced().await;
        controller.counted.wait_synced().await;
        let mut workers = JoinSet::new();
        runner::spawn(controller, queue.clone(), WORKERS, &mut workers);
        // Upstream's full resync: every quota recounted periodically, which
        // also catches kinds counted through discovery.
        let mut tick = tokio::time::interval(RESYNC);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    for q in quotas.list() {
                        queue.add(Key::of(q.as_ref()));
                    }
                }
                done = workers.join_next() => {
                    if done.is_none() {
                        break;
                    }
                }
            }
        }
    });
}

/// Every kind whose objects the controller counts.
struct Counted {
    pods: Informer<Pod>,
    services: Informer<Service>,
    claims: Informer<PersistentVolumeClaim>,
    config_maps: Informer<ConfigMap>,
    secrets: Informer<Secret>,
    replication_controllers: Informer<ReplicationController>,
    quotas: Informer<ResourceQuota>,
    deployments: Informer<Deployment>,
    replica_sets: Informer<ReplicaSet>,
    stateful_sets: Informer<StatefulSet>,
    daemon_sets: Informer<DaemonSet>,
    jobs: Informer<Job>,
    cron_jobs: Informer<CronJob>,
}

/// Queues the quotas of an object's namespace whenever the object changes.
fn requeue_on_change<K: Object>(
    objects: &Informer<K>,
    quotas: &Informer<ResourceQuota>,
    queue: &WorkQueue<Key>,
) {
    let quotas = quotas.clone();
    let queue = queue.clone();
    objects.on_change(move |change| {
        let ns = change.object().meta().namespace.clone().unwrap_or_default();
        for q in quotas.list_namespace(&ns) {
            queue.add(Key::of(q.as_ref()));
        }
    });
}

impl Counted {
    fn new(informers: &Informers) -> Counted {
        Counted {
            pods: informers.get(),
            services: informers.get(),
            claims: informers.get(),
            config_maps: informers.get(),
            secrets: informers.get(),
            replication_controllers: informers.get(),
            quotas: informers.get(),
            deployments: informers.get(),
            replica_sets: informers.get(),
            stateful_sets: informers.get(),
            daemon_sets: informers.get(),
            jobs: informers.get(),
            cron_jobs: informers.get(),
        }
    }

    fn on_change(&self, quotas: &Informer<ResourceQuota>, queue: &WorkQueue<Key>) {
        requeue_on_change(&self.pods, quotas, queue);
        requeue_on_change(&self.services, quotas, queue);
        requeue_on_change(&self.claims, quotas, queue);
        requeue_on_change(&self.config_maps, quotas, queue);
        requeue_on_change(&self.secrets, quotas, queue);
        requeue_on_change(&self.replication_controllers, quotas, queue);
        requeue_on_change(&self.deployments, quotas, queue);
        requeue_on_change(&self.replica_sets, quotas, queue);
        requeue_on_change(&self.stateful_sets, quotas, queue);
        requeue_on_change(&self.daemon_sets, quotas, queue);
        requeue_on_change(&self.jobs, quotas, queue);
        requeue_on_change(&self.cron_jobs, quotas, queue);
    }

    async fn wait_synced(&self) {
        self.pods.wait_synced().await;
        self.services.wait_synced().await;
        self.claims.wait_synced().await;
        self.config_maps.wait_synced().await;
        self.secrets.wait_synced().await;
        self.replication_controllers.wait_synced().await;
        self.quotas.wait_synced().await;
        self.deployments.wait_synced().await;
        self.replica_sets.wait_synced().await;
        self.stateful_sets.wait_synced().await;
        self.daemon_sets.wait_synced().await;
        self.jobs.wait_synced().await;
        self.cron_jobs.wait_synced().await;
    }

    /// How many objects of a plain counted resource (`count/<r>.<g>` or a
    /// legacy name) the namespace holds, if the resource is one we know.
    fn object_count(&self, resource: &str, ns: &str) -> Option<usize> {
        Some(match resource {
            "configmaps" | "count/configmaps" => self.config_maps.list_namespace(ns).len(),
            "secrets" | "count/secrets" => self.secrets.list_namespace(ns).len(),
            "replicationcontrollers" | "count/replicationcontrollers" => {
                self.replication_controllers.list_namespace(ns).len()
            }
            "resourcequotas" | "count/resourcequotas" => self.quotas.list_namespace(ns).len(),
            "count/deployments.apps" => self.deployments.list_namespace(ns).len(),
            "count/replicasets.apps" => self.replica_sets.list_namespace(ns).len(),
            "count/statefulsets.apps" => self.stateful_sets.list_namespace(ns).len(),
            "count/daemonsets.apps" => self.daemon_sets.list_namespace(ns).len(),
            "count/jobs.batch" => self.jobs.list_namespace(ns).len(),
            "count/cronjobs.batch" => self.cron_jobs.list_namespace(ns).len(),
            _ => return None,
        })
    }
}

fn q(v: &OpenApiQuantity) -> Option<Quantity> {
    Quantity::try_from(v).ok()
}

fn add(usage: &mut Usage, name: &str, v: &Quantity) {
    usage
        .entry(name.to_string())
        .or_insert_with(Quantity::zero)
        .add(v);
}

fn one() -> Quantity {
    Quantity::new(1, api::quantity::Format::DecimalSI)
}

/// Upstream `IsExtendedResourceName`: a resource outside the
/// `kubernetes.io/` domain, e.g. `example.com/gpu`.
fn is_extended(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.")
}

/// The resources the pod evaluator tracks (upstream `podResources` and the
/// hugepages and extended-resource prefixes).
pub fn is_pod_resource(name: &str) -> bool {
    matches!(
        name,
        "pods"
            | "count/pods"
            | "cpu"
            | "memory"
            | "ephemeral-storage"
            | "requests.cpu"
            | "requests.memory"
            | "requests.ephemeral-storage"
            | "limits.cpu"
            | "limits.memory"
            | "limits.ephemeral-storage"
    ) || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-")
        || name
            .strip_prefix("requests.")
            .is_some_and(|r| r.contains('/'))
}

fn is_service_resource(name: &str) -> bool {
    matches!(
        name,
        "services" | "count/services" | "services.loadbalancers" | "services.nodeports"
    )
}

fn is_claim_resource(name: &str) -> bool {
    matches!(
        name,
        "persistentvolumeclaims" | "count/persistentvolumeclaims" | "requests.storage"
    ) || name.contains(".storageclass.storage.k8s.io/")
}

/// A pod's effective requests or limits: the containers' sum, at least each
/// init container's, plus the pod overhead (upstream `PodRequests`).
fn pod_resources(
    p: &Pod,
    pick: impl Fn(&ResourceRequirements) -> Option<&BTreeMap<String, OpenApiQuantity>>,
) -> Usage {
    let Some(spec) = &p.spec else {
        return Usage::new();
    };
    let mut sum = Usage::new();
    for c in &spec.containers {
        for (k, v) in c.resources.as_ref().and_then(&pick).into_iter().flatten() {
            if let Some(v) = q(v) {
                add(&mut sum, k, &v);
            }
        }
    }
    // Restartable (sidecar) init containers run alongside the others.
    let mut sidecars = Usage::new();
    for c in spec.init_containers.iter().flatten() {
        let mut this = Usage::new();
        for (k, v) in c.resources.as_ref().and_then(&pick).into_iter().flatten() {
            if let Some(v) = q(v) {
                this.insert(k.clone(), v);
            }
        }
        if c.restart_policy.as_deref() == Some("Always") {
            for (k, v) in &this {
                add(&mut sum, k, v);
                add(&mut sidecars, k, v);
            }
            continue;
        }
        for (k, v) in this {
            let mut with_sidecars = v.clone();
            if let Some(s) = sidecars.get(&k) {
                with_sidecars.add(s);
            }
            if sum.get(&k).is_none_or(|cur| *cur < with_sidecars) {
                sum.insert(k, with_sidecars);
            }
        }
    }
    for (k, v) in spec.overhead.iter().flatten() {
        if let Some(v) = q(v) {
            add(&mut sum, k, &v);
        }
    }
    sum
}

/// Upstream `QuotaV1Pod`: finished pods, and pods past their deletion grace
/// period (stuck on a lost node), no longer use quota.
pub fn pod_uses_quota(p: &Pod, now: chrono::DateTime<Utc>) -> bool {
    if pod::is_terminal(p) {
        return false;
    }
    if let (Some(at), Some(grace)) = (
        &p.metadata.deletion_timestamp,
        p.metadata.deletion_grace_period_seconds,
    ) {
        if now > at.0 + chrono::Duration::seconds(grace) {
            return false;
        }
    }
    true
}

/// Upstream `PodUsageFunc`.
pub fn pod_usage(p: &Pod, now: chrono::DateTime<Utc>) -> Usage {
    let mut u = Usage::new();
    u.insert("count/pods".into(), one());
    if !pod_uses_quota(p, now) {
        return u;
    }
    u.insert("pods".into(), one());
    let requests = pod_resources(p, |r| r.requests.as_ref());
    let limits = pod_resources(p, |r| r.limits.as_ref());
    for res in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(v) = requests.get(res) {
            u.insert(res.into(), v.clone());
            u.insert(format!("requests.{res}"), v.clone());
        }
        if let Some(v) = limits.get(res) {
            u.insert(format!("limits.{res}"), v.clone());
        }
    }
    for (k, v) in &requests {
        if k.starts_with("hugepages-") {
            u.insert(k.clone(), v.clone());
            u.insert(format!("requests.{k}"), v.clone());
        } else if is_extended(k) {
            u.insert(format!("requests.{k}"), v.clone());
        }
    }
    u
}

fn best_effort(p: &Pod) -> bool {
    let Some(spec) = &p.spec else {
        return true;
    };
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .all(|c| {
            let r = c.resources.as_ref();
            let none = |m: Option<&BTreeMap<String, OpenApiQuantity>>| {
                m.is_none_or(|m| !m.keys().any(|k| k == "cpu" || k == "memory"))
            };
            none(r.and_then(|r| r.requests.as_ref())) && none(r.and_then(|r| r.limits.as_ref()))
        })
}

fn cross_namespace_affinity(p: &Pod) -> bool {
    let Some(a) = p.spec.as_ref().and_then(|s| s.affinity.as_ref()) else {
        return false;
    };
    let terms =
        |req: Option<&Vec<k8s_openapi::api::core::v1::PodAffinityTerm>>,
         pref: Option<&Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
            req.into_iter()
                .flatten()
                .chain(pref.into_iter().flatten().map(|w| &w.pod_affinity_term))
                .any(|t| {
                    t.namespace_selector.is_some()
                        || t.namespaces.as_ref().is_some_and(|n| !n.is_empty())
                })
        };
    a.pod_affinity.as_ref().is_some_and(|pa| {
        terms(
            pa.required_during_scheduling_ignored_during_execution
                .as_ref(),
            pa.preferred_during_scheduling_ignored_during_execution
                .as_ref(),
        )
    }) || a.pod_anti_affinity.as_ref().is_some_and(|pa| {
        terms(
            pa.required_during_scheduling_ignored_during_execution
                .as_ref(),
            pa.preferred_during_scheduling_ignored_during_execution
                .as_ref(),
        )
    })
}

/// Whether a pod falls in one scope (upstream `podMatchesScopeFunc`).
fn pod_matches_scope(p: &Pod, scope: &str, operator: &str, values: &[String]) -> bool {
    match scope {
        "Terminating" => p
            .spec
            .as_ref()
            .and_then(|s| s.active_deadline_seconds)
            .is_some_and(|d| d >= 0),
        "NotTerminating" => p
            .spec
            .as_ref()
            .and_then(|s| s.active_deadline_seconds)
            .is_none_or(|d| d < 0),
        "BestEffort" => best_effort(p),
        "NotBestEffort" => !best_effort(p),
        "PriorityClass" => {
            let class = p
                .spec
                .as_ref()
                .and_then(|s| s.priority_class_name.as_deref())
                .unwrap_or("");
            match operator {
                "Exists" => !class.is_empty(),
                "DoesNotExist" => class.is_empty(),
                "In" => values.iter().any(|v| v == class),
                "NotIn" => !values.iter().any(|v| v == class),
                _ => false,
            }
        }
        "CrossNamespacePodAffinity" => cross_namespace_affinity(p),
        _ => false,
    }
}

/// The scope requirements of a quota: `spec.scopes` (each `Exists`) and
/// `spec.scopeSelector`.
fn scopes(quota: &ResourceQuota) -> Vec<(String, String, Vec<String>)> {
    let Some(spec) = &quota.spec else {
        return Vec::new();
    };
    let mut out: Vec<(String, String, Vec<String>)> = spec
        .scopes
        .iter()
        .flatten()
        .map(|s| (s.clone(), "Exists".to_string(), Vec::new()))
        .collect();
    for r in spec
        .scope_selector
        .iter()
        .flat_map(|s| s.match_expressions.iter().flatten())
    {
        out.push((
            r.scope_name.clone(),
            r.operator.clone(),
            r.values.clone().unwrap_or_default(),
        ));
    }
    out
}

fn service_usage(s: &Service) -> Usage {
    let mut u = Usage::new();
    u.insert("services".into(), one());
    u.insert("count/services".into(), one());
    let spec = s.spec.clone().unwrap_or_default();
    let ports = spec.ports.as_ref().map_or(0, Vec::len) as i64;
    let node_ports = match spec.type_.as_deref() {
        Some("NodePort") => ports,
        Some("LoadBalancer") => {
            u.insert("services.loadbalancers".into(), one());
            if spec.allocate_load_balancer_node_ports == Some(false) {
                spec.ports
                    .iter()
                    .flatten()
                    .filter(|p| p.node_port.is_some_and(|n| n != 0))
                    .count() as i64
            } else {
                ports
            }
        }
        _ => 0,
    };
    u.insert(
        "services.nodeports".into(),
        Quantity::new(node_ports, api::quantity::Format::DecimalSI),
    );
    u
}

fn claim_usage(c: &PersistentVolumeClaim) -> Usage {
    let mut u = Usage::new();
    u.insert("persistentvolumeclaims".into(), one());
    u.insert("count/persistentvolumeclaims".into(), one());
    let class = c
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .or_else(|| {
            c.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class").cloned())
        })
        .unwrap_or_default();
    if !class.is_empty() {
        u.insert(
            format!("{class}.storageclass.storage.k8s.io/persistentvolumeclaims"),
            one(),
        );
    }
    let requested = c
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref()?.requests.as_ref()?.get("storage"))
        .and_then(q);
    let allocated = c
        .status
        .as_ref()
        .and_then(|s| s.allocated_resources.as_ref()?.get("storage"))
        .and_then(q);
    let storage = match (requested, allocated) {
        (Some(r), Some(a)) => Some(if a > r { a } else { r }),
        (r, a) => r.or(a),
    };
    if let Some(s) = storage {
        if !class.is_empty() {
            u.insert(
                format!("{class}.storageclass.storage.k8s.io/requests.storage"),
                s.clone(),
            );
        }
        u.insert("requests.storage".into(), s);
    }
    u
}

struct QuotaController {
    client: kube::Client,
    quotas: Informer<ResourceQuota>,
    counted: Counted,
}

impl QuotaController {
    /// Upstream `CalculateUsage`: the usage of the hard resources some
    /// evaluator tracks, zero where nothing uses them.
    fn usage(&self, quota: &ResourceQuota) -> Usage {
        let ns = quota.metadata.namespace.clone().unwrap_or_default();
        let hard: BTreeSet<String> = quota
            .spec
            .as_ref()
            .and_then(|s| s.hard.as_ref())
            .map(|h| h.keys().cloned().collect())
            .unwrap_or_default();
        let scopes = scopes(quota);
        let mut used = Usage::new();
        let now = Utc::now();

        let pod_res: Vec<&String> = hard.iter().filter(|r| is_pod_resource(r)).collect();
        if !pod_res.is_empty() {
            for r in &pod_res {
                used.insert((*r).clone(), Quantity::zero());
            }
            for p in self.counted.pods.list_namespace(&ns) {
                if !scopes
                    .iter()
                    .all(|(s, op, v)| pod_matches_scope(&p, s, op, v))
                {
                    continue;
                }
                for (k, v) in pod_usage(&p, now) {
                    if let Some(u) = used.get_mut(&k) {
                        u.add(&v);
                    }
                }
            }
        }
        // Other evaluators match no scoped quota.
        if !scopes.is_empty() {
            return used;
        }
        let tracked = |used: &mut Usage, usage: Usage| {
            for (k, v) in usage {
                if let Some(u) = used.get_mut(&k) {
                    u.add(&v);
                }
            }
        };
        if hard.iter().any(|r| is_service_resource(r)) {
            for r in hard.iter().filter(|r| is_service_resource(r)) {
                used.insert(r.clone(), Quantity::zero());
            }
            for s in self.counted.services.list_namespace(&ns) {
                tracked(&mut used, service_usage(&s));
            }
        }
        if hard.iter().any(|r| is_claim_resource(r)) {
            for r in hard.iter().filter(|r| is_claim_resource(r)) {
                used.insert(r.clone(), Quantity::zero());
            }
            for c in self.counted.claims.list_namespace(&ns) {
                tracked(&mut used, claim_usage(&c));
            }
        }
        for r in &hard {
            if used.contains_key(r) {
                continue;
            }
            if let Some(n) = self.counted.object_count(r, &ns) {
                used.insert(
                    r.clone(),
                    Quantity::new(n as i64, api::quantity::Format::DecimalSI),
                );
            }
        }
        used
    }
}

impl QuotaController {
    /// `count/<resource>.<group>` of a kind without an informer here
    /// (custom resources, other built-ins): counted through the API, found
    /// by discovery; recounted on the periodic resync.
    async fn count_other(&self, name: &str, ns: &str) -> Option<usize> {
        let rest = name.strip_prefix("count/")?;
        let (resource, group) = rest.split_once('.').unwrap_or((rest, ""));
        let group = kube::discovery::group(&self.client, group).await.ok()?;
        let (ar, caps) = group
            .recommended_resources()
            .into_iter()
            .find(|(ar, _)| ar.plural == resource)?;
        if caps.scope != kube::discovery::Scope::Namespaced {
            return None;
        }
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
        match api.list_metadata(&Default::default()).await {
            Ok(list) => Some(list.items.len()),
            Err(e) => {
                tracing::debug!(resource = name, error = %e, "counting objects for a quota");
                None
            }
        }
    }
}

fn canonical(list: Option<&BTreeMap<String, OpenApiQuantity>>) -> BTreeMap<String, String> {
    list.into_iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.clone(),
                q(v).map(|q| q.to_string()).unwrap_or_else(|| v.0.clone()),
            )
        })
        .collect()
}

#[async_trait::async_trait]
impl Reconciler for QuotaController {
    fn name(&self) -> &'static str {
        "resourcequota-controller"
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let Some(quota) = self.quotas.get(key) else {
            return Ok(Action::Done);
        };
        let hard = quota
            .spec
            .as_ref()
            .and_then(|s| s.hard.clone())
            .unwrap_or_default();
        let old = quota.status.clone().unwrap_or_default();
        // Keep what was observed before for resources no evaluator tracks,
        // then keep only the resources the quota limits.
        let mut used: BTreeMap<String, OpenApiQuantity> = old.used.clone().unwrap_or_default();
        let counted = self.usage(&quota);
        let scoped = !scopes(&quota).is_empty();
        for r in hard.keys().filter(|r| !counted.contains_key(*r) && !scoped) {
            if let Some(n) = self.count_other(r, &key.namespace).await {
                used.insert(r.clone(), OpenApiQuantity(n.to_string()));
            }
        }
        for (k, v) in counted {
            used.insert(k, (&v).into());
        }
        used.retain(|k, _| hard.contains_key(k));
        let status = ResourceQuotaStatus {
            hard: Some(hard.clone()),
            used: Some(used),
        };
        if canonical(old.hard.as_ref()) == canonical(status.hard.as_ref())
            && canonical(old.used.as_ref()) == canonical(status.used.as_ref())
            && old.hard.is_some()
        {
            return Ok(Action::Done);
        }
        let mut updated = quota.as_ref().clone();
        updated.status = Some(status);
        let api: Api<ResourceQuota> = Api::namespaced(self.client.clone(), &key.namespace);
        match api
            .replace_status(
                &key.name,
                &PostParams::default(),
                serde_json::to_vec(&updated).unwrap_or_default(),
            )
            .await
        {
            Ok(_) => Ok(Action::Done),
            Err(e) if is_not_found(&e) => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodStatus};

    fn container(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
        let list = |l: &[(&str, &str)]| {
            (!l.is_empty()).then(|| {
                l.iter()
                    .map(|(k, v)| (k.to_string(), OpenApiQuantity(v.to_string())))
                    .collect()
            })
        };
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: list(requests),
                limits: list(limits),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod_with(containers: Vec<Container>, init: Vec<Container>, phase: &str) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers,
                init_containers: (!init.is_empty()).then_some(init),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn s(u: &Usage, k: &str) -> Option<String> {
        u.get(k).map(|q| q.to_string())
    }

    #[test]
    fn pod_usage_sums_containers_and_takes_the_largest_init_container() {
        let p = pod_with(
            vec![
                container(
                    &[("cpu", "100m"), ("memory", "64Mi")],
                    &[("memory", "128Mi")],
                ),
                container(
                    &[("cpu", "200m"), ("memory", "64Mi")],
                    &[("memory", "128Mi")],
                ),
            ],
            vec![container(&[("cpu", "500m")], &[])],
            "Running",
        );
        let u = pod_usage(&p, Utc::now());
        assert_eq!(s(&u, "pods").as_deref(), Some("1"));
        assert_eq!(s(&u, "requests.cpu").as_deref(), Some("500m"));
        assert_eq!(s(&u, "cpu").as_deref(), Some("500m"));
        assert_eq!(s(&u, "requests.memory").as_deref(), Some("128Mi"));
        assert_eq!(s(&u, "limits.memory").as_deref(), Some("256Mi"));
        assert_eq!(s(&u, "limits.cpu"), None);
    }

    #[test]
    fn finished_pods_count_only_as_objects() {
        let p = pod_with(vec![container(&[("cpu", "1")], &[])], vec![], "Succeeded");
        let u = pod_usage(&p, Utc::now());
        assert_eq!(s(&u, "count/pods").as_deref(), Some("1"));
        assert_eq!(s(&u, "pods"), None);
        assert_eq!(s(&u, "requests.cpu"), None);
    }

    #[test]
    fn scopes_select_pods_as_upstream() {
        let be = pod_with(vec![container(&[], &[])], vec![], "Running");
        let burstable = pod_with(vec![container(&[("cpu", "1")], &[])], vec![], "Running");
        assert!(pod_matches_scope(&be, "BestEffort", "Exists", &[]));
        assert!(pod_matches_scope(
            &burstable,
            "NotBestEffort",
            "Exists",
            &[]
        ));
        assert!(pod_matches_scope(&be, "NotTerminating", "Exists", &[]));
        assert!(!pod_matches_scope(&be, "Terminating", "Exists", &[]));
    }

    #[test]
    fn node_port_and_load_balancer_services_count_their_ports() {
        let svc = |t: &str| Service {
            spec: Some(k8s_openapi::api::core::v1::ServiceSpec {
                type_: Some(t.into()),
                ports: Some(vec![Default::default(), Default::default()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let u = service_usage(&svc("NodePort"));
        assert_eq!(s(&u, "services.nodeports").as_deref(), Some("2"));
        assert_eq!(s(&u, "services.loadbalancers"), None);
        let u = service_usage(&svc("LoadBalancer"));
        assert_eq!(s(&u, "services.loadbalancers").as_deref(), Some("1"));
        assert_eq!(s(&u, "services.nodeports").as_deref(), Some("2"));
    }
}
