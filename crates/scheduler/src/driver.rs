//! The thin IO around the algorithm: informers feed the cache and the
//! queue; one loop takes the next pod, decides with [`Algorithm`] over the
//! cache's snapshot, assumes the pod on its node and hands the binding to a
//! background task, so many bindings are in flight while the next pod is
//! decided. Failures are reported as upstream does: a `FailedScheduling`
//! event and the `PodScheduled=False` condition.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use controllers::events::Recorder;
use controllers::informer::{Change, Informer, Informers};
use controllers::runner::{is_conflict, is_not_found};
use k8s_openapi::api::core::v1::{
    Event, EventSource, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde_json::json;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use crate::algorithm::{Algorithm, FitError, Objects, Placement};
use crate::cache::Cache;
use crate::queue::SchedulingQueue;
use crate::snapshot::PodKey;
use crate::{preemption, volumes};

/// The scheduler's name in events and `spec.schedulerName`.
pub const SCHEDULER_NAME: &str = "default-scheduler";

/// Bindings in flight at once; the loop waits when they are all busy.
/// More only queues inside the API server and opens more connections.
const MAX_BINDINGS_IN_FLIGHT: usize = 128;

/// `Scheduled` events waiting to be written, and the writers. As upstream's
/// event broadcaster, events beyond the queue are dropped rather than slow
/// scheduling down.
const MAX_QUEUED_EVENTS: usize = 1000;
const EVENT_WRITERS: usize = 4;

pub(crate) struct Shared {
    pub cache: Mutex<Cache>,
    pub queue: Mutex<SchedulingQueue>,
    pub wake: Notify,
}

impl Shared {
    fn new() -> Arc<Shared> {
        Arc::new(Shared {
            cache: Mutex::new(Cache::new()),
            queue: Mutex::new(SchedulingQueue::new()),
            wake: Notify::new(),
        })
    }

    fn move_unschedulable(&self, plugins: Option<&[&str]>) {
        self.queue
            .lock()
            .unwrap()
            .move_unschedulable(plugins, Instant::now());
        self.wake.notify_one();
    }
}

fn assigned(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

fn terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Whether this scheduler should place the pod now: unbound, ours, not
/// finished, not being deleted, not gated.
fn wants_scheduling(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    let ours = spec
        .scheduler_name
        .as_deref()
        .is_none_or(|n| n.is_empty() || n == SCHEDULER_NAME);
    ours && !assigned(pod)
        && !terminal(pod)
        && pod.metadata.deletion_timestamp.is_none()
        && spec.scheduling_gates.as_ref().is_none_or(|g| g.is_empty())
}

fn node_changed_for_scheduling(old: &Node, new: &Node) -> bool {
    old.metadata.labels != new.metadata.labels
        || old.spec.as_ref().map(|s| (&s.taints, s.unschedulable))
            != new.spec.as_ref().map(|s| (&s.taints, s.unschedulable))
        || old.status.as_ref().map(|s| &s.allocatable)
            != new.status.as_ref().map(|s| &s.allocatable)
}

/// [`Objects`] read from the shared informers.
#[derive(Clone)]
pub(crate) struct InformerObjects {
    pvcs: Informer<PersistentVolumeClaim>,
    pvs: Informer<PersistentVolume>,
    classes: Informer<StorageClass>,
    namespaces: Informer<Namespace>,
    pdbs: Informer<PodDisruptionBudget>,
}

impl InformerObjects {
    fn new(informers: &Informers) -> InformerObjects {
        InformerObjects {
            pvcs: informers.get(),
            pvs: informers.get(),
            classes: informers.get(),
            namespaces: informers.get(),
            pdbs: informers.get(),
        }
    }

    async fn wait_synced(&self) {
        self.pvcs.wait_synced().await;
        self.pvs.wait_synced().await;
        self.classes.wait_synced().await;
        self.namespaces.wait_synced().await;
        self.pdbs.wait_synced().await;
    }
}

impl Objects for InformerObjects {
    fn pvc(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        self.pvcs
            .get(&controllers::informer::Key::new(namespace, name))
    }
    fn pv(&self, name: &str) -> Option<Arc<PersistentVolume>> {
        self.pvs.get(&controllers::informer::Key::cluster(name))
    }
    fn pvs(&self) -> Vec<Arc<PersistentVolume>> {
        self.pvs.list()
    }
    fn storage_class(&self, name: &str) -> Option<Arc<StorageClass>> {
        self.classes.get(&controllers::informer::Key::cluster(name))
    }
    fn namespace_labels(&self, name: &str) -> Option<std::collections::BTreeMap<String, String>> {
        self.namespaces
            .get(&controllers::informer::Key::cluster(name))
            .map(|n| n.metadata.labels.clone().unwrap_or_default())
    }
    fn pdbs(&self, namespace: &str) -> Vec<Arc<PodDisruptionBudget>> {
        self.pdbs.list_namespace(namespace)
    }
}

fn watch_pods(pods: &Informer<Pod>, shared: &Arc<Shared>) {
    let shared = shared.clone();
    pods.on_change(move |change| {
        let pod = change.object();
        let key = PodKey::of(pod);
        match change {
            Change::Added(_) | Change::Updated { .. } => {
                if assigned(pod) {
                    let was_assigned = matches!(change, Change::Updated { old, .. } if assigned(old) && !terminal(old));
                    shared.cache.lock().unwrap().upsert_pod(pod);
                    shared.queue.lock().unwrap().remove(&key);
                    if terminal(pod) {
                        // A finished pod frees its node's resources.
                        shared.move_unschedulable(None);
                    } else if !was_assigned {
                        shared.move_unschedulable(Some(&[crate::interpod::PLUGIN, crate::spread::PLUGIN]));
                    }
                } else {
                    shared.cache.lock().unwrap().upsert_pod(pod);
                    let mut queue = shared.queue.lock().unwrap();
                    if wants_scheduling(pod) {
                        queue.upsert(pod.clone(), Instant::now());
                        drop(queue);
                        shared.wake.notify_one();
                    } else {
                        queue.remove(&key);
                    }
                }
            }
            Change::Deleted(_) => {
                shared.cache.lock().unwrap().remove_pod(&key);
                shared.queue.lock().unwrap().remove(&key);
                if assigned(pod) {
                    shared.move_unschedulable(None);
                }
            }
        }
    });
}

fn watch_nodes(nodes: &Informer<Node>, shared: &Arc<Shared>) {
    let shared = shared.clone();
    nodes.on_change(move |change| match change {
        Change::Added(node) => {
            shared.cache.lock().unwrap().upsert_node((*node).clone());
            shared.move_unschedulable(None);
        }
        Change::Updated { old, new } => {
            shared.cache.lock().unwrap().upsert_node((*new).clone());
            if node_changed_for_scheduling(old, new) {
                shared.move_unschedulable(None);
            }
        }
        Change::Deleted(node) => {
            shared
                .cache
                .lock()
                .unwrap()
                .remove_node(node.metadata.name.as_deref().unwrap_or_default());
        }
    });
}

fn watch_volumes(objects: &InformerObjects, shared: &Arc<Shared>) {
    let plugins: &'static [&'static str] = &[volumes::BINDING, volumes::RESTRICTIONS];
    let s = shared.clone();
    objects
        .pvcs
        .on_change(move |_| s.move_unschedulable(Some(plugins)));
    let s = shared.clone();
    objects
        .pvs
        .on_change(move |_| s.move_unschedulable(Some(plugins)));
    let s = shared.clone();
    objects
        .classes
        .on_change(move |_| s.move_unschedulable(Some(plugins)));
}

/// Schedules pending pods while this process holds the `kube-scheduler`
/// Lease, forever.
pub async fn run(client: Client, identity: String) {
    run_with(Informers::new(client), identity).await
}

/// [`run`] reading from `informers` (shared with other components of the
/// process) and writing with their client.
pub async fn run_with(informers: Informers, identity: String) {
    let client = informers.client().clone();
    let election = controllers::leader::LeaderElection::new("kube-scheduler", &identity);
    election
        .run(client.clone(), || {
            lead_with(informers.with_client(client.clone()))
        })
        .await
}

/// Runs the scheduler until dropped (leadership lost).
pub async fn lead(client: Client) {
    lead_with(Informers::new(client)).await
}

/// [`lead`] reading from `informers` and writing with their client; the
/// handlers it registers stop with `informers`.
pub async fn lead_with(informers: Informers) {
    let client = informers.client().clone();
    let shared = Shared::new();
    let pods = informers.get::<Pod>();
    let nodes = informers.get::<Node>();
    let objects = InformerObjects::new(&informers);
    watch_nodes(&nodes, &shared);
    watch_pods(&pods, &shared);
    watch_volumes(&objects, &shared);
    nodes.wait_synced().await;
    pods.wait_synced().await;
    objects.wait_synced().await;
    tracing::info!(
        nodes = nodes.len(),
        pods = pods.len(),
        "scheduler caches synced"
    );

    let mut tasks = JoinSet::new();
    let flusher = shared.clone();
    tasks.spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if flusher.queue.lock().unwrap().flush(Instant::now()) {
                flusher.wake.notify_one();
            }
        }
    });
    let (events, queued) = tokio::sync::mpsc::channel::<(Arc<Pod>, String)>(MAX_QUEUED_EVENTS);
    let queued = Arc::new(tokio::sync::Mutex::new(queued));
    for _ in 0..EVENT_WRITERS {
        let queued = queued.clone();
        let client = client.clone();
        tasks.spawn(async move {
            loop {
                let next = queued.lock().await.recv().await;
                let Some((pod, node)) = next else { return };
                let message = format!(
                    "Successfully assigned {}/{} to {}",
                    pod.metadata.namespace.as_deref().unwrap_or_default(),
                    pod.metadata.name.as_deref().unwrap_or_default(),
                    node
                );
                write_event(client.clone(), &pod, "Normal", "Scheduled", message).await;
            }
        });
    }
    let scheduler = Scheduler {
        events,
        client: client.clone(),
        shared,
        objects,
        pods,
        recorder: Recorder::new(client, SCHEDULER_NAME),
        bindings: Arc::new(Semaphore::new(MAX_BINDINGS_IN_FLIGHT)),
    };
    scheduler.run(&mut tasks).await;
}

struct Scheduler {
    events: tokio::sync::mpsc::Sender<(Arc<Pod>, String)>,
    client: Client,
    shared: Arc<Shared>,
    objects: InformerObjects,
    pods: Informer<Pod>,
    recorder: Recorder,
    bindings: Arc<Semaphore>,
}

impl Scheduler {
    async fn run(&self, tasks: &mut JoinSet<()>) {
        let mut algorithm = Algorithm::default();
        let mut scheduled: u64 = 0;
        let mut last_report = Instant::now();
        loop {
            let next = self.shared.queue.lock().unwrap().pop();
            let Some(qp) = next else {
                self.shared.wake.notified().await;
                continue;
            };
            // Wait for a free binding slot before deciding, so the decision
            // sees every earlier one.
            let permit = self
                .bindings
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore never closes");
            while tasks.try_join_next().is_some() {}
            let key = qp.key.clone();
            let pod = self
                .pods
                .get(&controllers::informer::Key::new(&key.namespace, &key.name))
                .unwrap_or(qp.pod.clone());
            if !wants_scheduling(&pod) {
                self.shared.queue.lock().unwrap().done(&key);
                continue;
            }
            let decision = {
                let mut cache = self.shared.cache.lock().unwrap();
                let d = algorithm.schedule(&cache.snapshot, &pod, &self.objects, &cache.nominated);
                if let Ok(p) = &d {
                    cache.assume(&pod, &p.node);
                }
                d
            };
            match decision {
                Ok(placement) => {
                    self.shared.queue.lock().unwrap().done(&key);
                    scheduled += 1;
                    tokio::spawn(bind(
                        self.client.clone(),
                        self.shared.clone(),
                        self.recorder.clone(),
                        self.events.clone(),
                        pod,
                        placement,
                        qp.attempts,
                        permit,
                    ));
                }
                Err(fit) => {
                    drop(permit);
                    self.unschedulable(&pod, fit).await;
                }
            }
            if scheduled % 64 == 0 {
                tokio::task::yield_now().await;
            }
            if last_report.elapsed() > Duration::from_secs(10) {
                let (pending, active) = {
                    let q = self.shared.queue.lock().unwrap();
                    (q.len(), q.active_len())
                };
                let binding = MAX_BINDINGS_IN_FLIGHT - self.bindings.available_permits();
                tracing::debug!(scheduled, pending, active, binding, "scheduler progress");
                last_report = Instant::now();
            }
        }
    }

    /// Tries preemption, then records the failure on the pod.
    async fn unschedulable(&self, pod: &Arc<Pod>, mut fit: FitError) {
        let key = PodKey::of(pod);
        let plugins = fit.plugins();
        let outcome = {
            let cache = self.shared.cache.lock().unwrap();
            preemption::preempt(&cache.snapshot, pod, &self.objects, &fit, &cache.nominated)
        };
        let mut nominate: Option<String> = None;
        match outcome {
            preemption::Outcome::Nominate { node, victims } => {
                tracing::info!(pod = %key, node = %node, victims = victims.len(), "preempting");
                for victim in victims {
                    tokio::spawn(preemption::evict(
                        self.client.clone(),
                        self.recorder.clone(),
                        victim.pod.clone(),
                        pod.clone(),
                        node.clone(),
                    ));
                }
                nominate = Some(node);
            }
            preemption::Outcome::Fail { message } => {
                fit.postfilter = Some(message);
            }
        }
        let message = fit.message();
        tracing::debug!(pod = %key, %message, "unschedulable");
        self.shared
            .queue
            .lock()
            .unwrap()
            .unschedulable(&key, plugins, Instant::now());
        self.recorder
            .warning(pod.as_ref(), "FailedScheduling", message.clone());
        tokio::spawn(update_pod_status(
            self.client.clone(),
            pod.clone(),
            message,
            nominate,
        ));
    }
}

/// Writes the `PodScheduled=False` condition (when it changes) and the
/// nominated node, as upstream's `updatePod`.
async fn update_pod_status(
    client: Client,
    pod: Arc<Pod>,
    message: String,
    nominate: Option<String>,
) {
    let current = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
    let same = current.is_some_and(|c| {
        c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
            && c.message.as_deref() == Some(&message)
    });
    let current_nominated = pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.clone());
    if same && (nominate.is_none() || nominate == current_nominated) {
        return;
    }
    let mut status = json!({
        "conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": Time(Utc::now()),
        }]
    });
    if let Some(node) = nominate {
        status["nominatedNodeName"] = json!(node);
    }
    let api: Api<Pod> = Api::namespaced(
        client,
        pod.metadata.namespace.as_deref().unwrap_or("default"),
    );
    let name = pod.metadata.name.clone().unwrap_or_default();
    if let Err(e) = api
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Strategic(json!({ "status": status })),
        )
        .await
    {
        tracing::debug!(pod = %name, error = %e, "updating PodScheduled");
    }
}

/// Binds the pod (after its volumes), then records `Scheduled`. On
/// failure the assumed pod is forgotten and the pod backs off.
async fn bind(
    client: Client,
    shared: Arc<Shared>,
    recorder: Recorder,
    events: tokio::sync::mpsc::Sender<(Arc<Pod>, String)>,
    pod: Arc<Pod>,
    placement: Placement,
    attempts: u32,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let key = PodKey::of(&pod);
    let result = async {
        volumes::apply(&client, &pod, &placement.node, &placement.volumes).await?;
        let api: Api<Pod> = Api::namespaced(client.clone(), &key.namespace);
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": key.name, "namespace": key.namespace, "uid": pod.metadata.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": placement.node},
        });
        let body = serde_json::to_vec(&binding).unwrap_or_default();
        api.create_subresource::<serde_json::Value>(
            "binding",
            &key.name,
            &PostParams::default(),
            body,
        )
        .await
        .map(|_| ())
    }
    .await;
    match result {
        Ok(()) => {
            // Written by the event writers, so it does not hold the slot.
            if events.try_send((pod, placement.node)).is_err() {
                tracing::debug!(pod = %key, "event queue full; Scheduled event dropped");
            }
        }
        Err(e) => {
            shared.cache.lock().unwrap().forget(&key);
            if is_not_found(&e) || is_conflict(&e) {
                // Deleted, or bound by someone else: the informer tells.
                tracing::debug!(pod = %key, error = %e, "binding not done");
                return;
            }
            tracing::warn!(pod = %key, node = %placement.node, error = %e, "binding failed");
            recorder.warning(
                pod.as_ref(),
                "FailedScheduling",
                format!("Binding rejected: {e}"),
            );
            shared
                .queue
                .lock()
                .unwrap()
                .retry(pod, attempts, Instant::now());
            shared.wake.notify_one();
        }
    }
}

/// One core/v1 Event as upstream's recorder writes it, without the
/// aggregation bookkeeping (a `Scheduled` event never repeats).
pub(crate) async fn write_event(
    client: Client,
    pod: &Pod,
    type_: &str,
    reason: &str,
    message: String,
) {
    let namespace = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let now = Utc::now();
    let event = Event {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}.{:x}",
                pod.metadata.name.as_deref().unwrap_or_default(),
                now.timestamp_nanos_opt().unwrap_or_default()
            )),
            namespace: Some(namespace.clone()),
            ..Default::default()
        },
        involved_object: pod.object_ref(&()),
        reason: Some(reason.into()),
        message: Some(message),
        type_: Some(type_.into()),
        source: Some(EventSource {
            component: Some(SCHEDULER_NAME.into()),
            host: None,
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        reporting_component: Some(SCHEDULER_NAME.into()),
        reporting_instance: Some(String::new()),
        ..Default::default()
    };
    let api: Api<Event> = Api::namespaced(client, &namespace);
    if let Err(e) = api.create(&PostParams::default(), &event).await {
        tracing::debug!(error = %e, "writing an event");
    }
}
