//! The garbage collector (upstream `garbage-collector-controller`): a graph
//! of `ownerReferences` over every resource that can be listed, watched and
//! deleted, found through discovery (and found again every 30 s, so custom
//! resources join). The monitors watch metadata only.
//!
//! - **Background**: an object whose owners are all gone (checked by a live
//!   GET: not found, or another uid) is deleted; one that still has a live
//!   owner only loses its references to the dead ones.
//! - **Foreground**: an owner being deleted with the `foregroundDeletion`
//!   finalizer has its dependents deleted (those with dependents of their
//!   own in the foreground too); once no dependent with
//!   `blockOwnerDeletion: true` is left, the finalizer is removed.
//! - **Orphan**: an owner being deleted with the `orphan` finalizer has its
//!   references removed from every dependent, then the finalizer removed.
//!
//! The API server sets those finalizers (and `deletionTimestamp`) when a
//! delete asks for `propagationPolicy: Foreground` or `Orphan`.

mod graph;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use kube::core::{ApiResource, PartialObjectMeta};
use kube::discovery::{verbs, Discovery, Scope};
use kube::runtime::watcher::{self, metadata_watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};

use crate::informer::Key;
use crate::queue::WorkQueue;
use crate::runner::{self, Action, Reconciler, Result};
use crate::Context;

use graph::{Graph, Identity, Observed, Owner, Work};
pub use graph::{FOREGROUND_FINALIZER, ORPHAN_FINALIZER};

/// How often discovery is read again (upstream's `--garbage-collector`
/// resync of monitors, 30 s).
const DISCOVERY_PERIOD: Duration = Duration::from_secs(30);
/// Resources never watched (upstream's `DefaultIgnoredResources`).
const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];
/// Owners known absent, remembered to spare GETs (upstream's
/// `absentOwnerCache`); cleared when it grows past this.
const ABSENT_CACHE_LIMIT: usize = 10_000;

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let gc = Arc::new(Collector {
        client: ctx.client.clone(),
        graph: Mutex::default(),
        kinds: RwLock::default(),
        absent: Mutex::default(),
        delete_queue: WorkQueue::new(),
        orphan_queue: WorkQueue::new(),
    });
    tasks.spawn(gc.run());
}

/// A resource the API serves, as the collector needs it.
#[derive(Clone)]
struct Resource {
    ar: ApiResource,
    namespaced: bool,
}

/// What the monitors tell the graph builder.
enum Change {
    Observed(Observed),
    Deleted(String),
    /// A monitor listed its resource afresh: these uids are all there is.
    Relisted {
        resource: String,
        uids: HashSet<String>,
    },
    Synced(String),
}

struct Collector {
    client: Client,
    graph: Mutex<Graph>,
    /// (group, kind) to resource, from the last discovery.
    kinds: RwLock<HashMap<(String, String), Resource>>,
    absent: Mutex<HashSet<String>>,
    delete_queue: WorkQueue<Key>,
    orphan_queue: WorkQueue<Key>,
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

fn resource_name(ar: &ApiResource) -> String {
    if ar.group.is_empty() {
        ar.plural.clone()
    } else {
        format!("{}.{}", ar.plural, ar.group)
    }
}

impl Collector {
    async fn run(self: Arc<Self>) {
        let (changes_tx, mut changes_rx) = mpsc::unbounded_channel::<Change>();
        let (synced_tx, synced_rx) = watch::channel(false);
        let mut monitors: HashMap<String, AbortHandle> = HashMap::new();
        let mut tasks = JoinSet::new();

        let mut wanted = loop {
            match self.watchable().await {
                Ok(w) => break w,
                Err(e) => {
                    tracing::warn!(error = %e, "garbage collector: discovery failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };

        // The graph builder: the single writer of the graph, in event order.
        {
            let this = self.clone();
            let mut pending: HashSet<String> = wanted.keys().cloned().collect();
            tasks.spawn(async move {
                if pending.is_empty() {
                    synced_tx.send_replace(true);
                }
                while let Some(change) = changes_rx.recv().await {
                    let work = {
                        let mut graph = this.graph.lock().unwrap();
                        match change {
                            Change::Observed(o) => graph.observe(o),
                            Change::Deleted(uid) => graph.remove(&uid),
                            Change::Relisted { resource, uids } => {
                                let mut work = Vec::new();
                                for uid in graph.uids_of(&resource) {
                                    if !uids.contains(&uid) {
                                        work.extend(graph.remove(&uid));
                                    }
                                }
                                work
                            }
                            Change::Synced(resource) => {
                                if pending.remove(&resource) && pending.is_empty() {
                                    synced_tx.send_replace(true);
                                }
                                Vec::new()
                            }
                        }
                    };
                    this.apply(work);
                }
            });
        }

        // Workers start once every monitor has listed: with a partial graph
        // an owner could lose its finalizer before all its dependents are
        // known.
        {
            let this = self.clone();
            let mut synced = synced_rx;
            tasks.spawn(async move {
                let _ = synced.wait_for(|s| *s).await;
                tracing::info!(
                    objects = this.graph.lock().unwrap().len(),
                    "garbage collector synced"
                );
                let mut workers = JoinSet::new();
                runner::spawn(
                    Arc::new(AttemptToDelete(this.clone())),
                    this.delete_queue.clone(),
                    10,
                    &mut workers,
                );
                runner::spawn(
                    Arc::new(AttemptToOrphan(this.clone())),
                    this.orphan_queue.clone(),
                    2,
                    &mut workers,
                );
                while workers.join_next().await.is_some() {}
            });
        }

        // Monitors follow discovery: new resources (custom ones) are
        // watched, resources no longer served are dropped.
        loop {
            monitors.retain(|name, handle| {
                if wanted.contains_key(name) {
                    return true;
                }
                handle.abort();
                let _ = changes_tx.send(Change::Relisted {
                    resource: name.clone(),
                    uids: HashSet::new(),
                });
                false
            });
            for (name, resource) in wanted {
                if monitors.contains_key(&name) {
                    continue;
                }
                let handle = tasks.spawn(monitor(
                    self.client.clone(),
                    name.clone(),
                    resource,
                    changes_tx.clone(),
                ));
                monitors.insert(name, handle);
            }
            tokio::time::sleep(DISCOVERY_PERIOD).await;
            wanted = loop {
                match self.watchable().await {
                    Ok(w) => break w,
                    Err(e) => {
                        tracing::warn!(error = %e, "garbage collector: discovery failed");
                        tokio::time::sleep(DISCOVERY_PERIOD).await;
                    }
                }
            };
        }
    }

    /// The resources the collector watches, by name.
    async fn watchable(&self) -> Result<HashMap<String, Resource>, kube::Error> {
        Ok(self
            .discover()
            .await?
            .into_iter()
            .filter(|(_, r, watchable)| {
                *watchable && !IGNORED.contains(&(r.ar.group.as_str(), r.ar.plural.as_str()))
            })
            .map(|(name, r, _)| (name, r))
            .collect())
    }

    /// Reads discovery: every resource with its scope and whether the
    /// collector watches it (list, watch and delete). Updates the kind map.
    async fn discover(&self) -> Result<Vec<(String, Resource, bool)>, kube::Error> {
        let discovery = Discovery::new(self.client.clone()).run().await?;
        let mut out = Vec::new();
        let mut kinds = HashMap::new();
        for group in discovery.groups() {
            for (ar, caps) in group.recommended_resources() {
                let resource = Resource {
                    namespaced: matches!(caps.scope, Scope::Namespaced),
                    ar: ar.clone(),
                };
                kinds.insert((ar.group.clone(), ar.kind.clone()), resource.clone());
                let watchable = caps.supports_operation(verbs::LIST)
                    && caps.supports_operation(verbs::WATCH)
                    && caps.supports_operation(verbs::DELETE);
                out.push((resource_name(&ar), resource, watchable));
            }
        }
        *self.kinds.write().unwrap() = kinds;
        Ok(out)
    }

    fn enqueue(&self, work: Work) {
        match work {
            Work::AttemptToDelete(uid) => self.delete_queue.add(Key::cluster(uid)),
            Work::AttemptToOrphan(uid) => self.orphan_queue.add(Key::cluster(uid)),
        }
    }

    fn resource_for(&self, api_version: &str, kind: &str) -> Option<Resource> {
        self.kinds
            .read()
            .unwrap()
            .get(&(group_of(api_version).to_string(), kind.to_string()))
            .cloned()
    }

    fn api(&self, resource: &Resource, namespace: Option<&str>) -> Api<DynamicObject> {
        match (resource.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &resource.ar),
            _ => Api::all_with(self.client.clone(), &resource.ar),
        }
    }

    /// The live object `identity` names, if it exists with `uid`.
    async fn get_live(&self, identity: &Identity, uid: &str) -> Result<Live> {
        let Some(resource) = self.resource_for(&identity.api_version, &identity.kind) else {
            return Ok(Live::UnknownKind);
        };
        let api = self.api(&resource, identity.namespace.as_deref());
        match api.get_opt(&identity.name).await? {
            Some(obj) if obj.metadata.uid.as_deref() == Some(uid) => {
                Ok(Live::Found(Box::new(obj), resource))
            }
            _ => {
                let mut absent = self.absent.lock().unwrap();
                if absent.len() >= ABSENT_CACHE_LIMIT {
                    absent.clear();
                }
                absent.insert(uid.to_string());
                Ok(Live::Absent)
            }
        }
    }

    fn apply(&self, work: Vec<Work>) {
        for w in work {
            self.enqueue(w);
        }
    }

    /// Upstream's `attemptToDeleteItem`.
    async fn attempt_to_delete(&self, uid: &str) -> Result<Action> {
        let node = {
            let graph = self.graph.lock().unwrap();
            let Some(node) = graph.get(uid) else {
                return Ok(Action::Done);
            };
            // Every owner observed and not deleting in the foreground: there
            // is nothing to do, and no GET is needed (a dependent queued
            // while its owner's monitor had not listed yet, at start). If an
            // owner goes later, its deletion queues this object again.
            let owners_alive = node.owners.iter().all(|o| {
                graph
                    .get(&o.uid)
                    .is_some_and(|n| !n.is_virtual && !n.deleting_dependents)
            });
            if !node.is_virtual && !node.being_deleted && owners_alive {
                return Ok(Action::Done);
            }
            node.clone()
        };
        let live = self.get_live(&node.identity, uid).await?;
        let (latest, resource) = match live {
            Live::UnknownKind => {
                // The kind is not served (yet): look again later.
                return Ok(Action::RequeueAfter(DISCOVERY_PERIOD));
            }
            Live::Absent => {
                // Gone: as if its deletion had been observed.
                let mut graph = self.graph.lock().unwrap();
                let work = if node.is_virtual {
                    graph.remove_virtual(uid)
                } else {
                    graph.remove(uid)
                };
                drop(graph);
                self.apply(work);
                return Ok(Action::Done);
            }
            Live::Found(obj, resource) => (obj, resource),
        };
        if node.is_virtual {
            // It exists: its monitor will observe it.
            return Ok(Action::Done);
        }
        let finalizers = latest.metadata.finalizers.clone().unwrap_or_default();
        let being_deleted = latest.metadata.deletion_timestamp.is_some();
        if being_deleted && finalizers.iter().any(|f| f == FOREGROUND_FINALIZER) {
            return self
                .process_deleting_dependents(uid, &latest, &resource)
                .await;
        }
        if being_deleted {
            return Ok(Action::Done);
        }
        let owners = latest.metadata.owner_references.clone().unwrap_or_default();
        if owners.is_empty() {
            return Ok(Action::Done);
        }
        let namespace = latest.metadata.namespace.clone();
        let mut solid = Vec::new();
        let mut dangling = Vec::new();
        let mut waiting = Vec::new();
        for owner in &owners {
            if self.absent.lock().unwrap().contains(&owner.uid) {
                dangling.push(owner.uid.clone());
                continue;
            }
            let identity = Identity {
                api_version: owner.api_version.clone(),
                kind: owner.kind.clone(),
                namespace: namespace.clone(),
                name: owner.name.clone(),
            };
            match self.get_live(&identity, &owner.uid).await? {
                // An owner of a kind not served is not known to be gone.
                Live::UnknownKind => solid.push(owner.uid.clone()),
                Live::Absent => dangling.push(owner.uid.clone()),
                Live::Found(o, _) => {
                    let foreground = o.metadata.deletion_timestamp.is_some()
                        && o.metadata
                            .finalizers
                            .iter()
                            .flatten()
                            .any(|f| f == FOREGROUND_FINALIZER);
                    if foreground {
                        waiting.push(owner.uid.clone());
                    } else {
                        solid.push(owner.uid.clone());
                    }
                }
            }
        }
        let api = self.api(&resource, namespace.as_deref());
        let name = latest.metadata.name.clone().unwrap_or_default();
        if !solid.is_empty() {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(Action::Done);
            }
            // Live owners remain: only drop the references to the others.
            let remove: HashSet<&String> = dangling.iter().chain(&waiting).collect();
            let kept: Vec<_> = owners.iter().filter(|o| !remove.contains(&o.uid)).collect();
            let patch = json!({
                "metadata": {
                    "ownerReferences": list_or_null(&kept),
                    "resourceVersion": latest.metadata.resource_version,
                }
            });
            tracing::debug!(%name, ?remove, "garbage collector: removing dangling owner references");
            return ignore_gone(
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await,
            );
        }
        let has_dependents = !node.dependents.is_empty();
        let policy = if !waiting.is_empty() && has_dependents {
            // An owner waits for this one in the foreground, and this one
            // has dependents: they go first.
            PropagationPolicy::Foreground
        } else if finalizers.iter().any(|f| f == ORPHAN_FINALIZER) {
            PropagationPolicy::Orphan
        } else if finalizers.iter().any(|f| f == FOREGROUND_FINALIZER) {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        tracing::debug!(%name, ?policy, "garbage collector: deleting object whose owners are gone");
        let params = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        };
        ignore_gone(api.delete(&name, &params).await.map(|_| ()))
    }

    /// Upstream's `processDeletingDependentsItem`: remove the
    /// `foregroundDeletion` finalizer once no dependent blocks it.
    async fn process_deleting_dependents(
        &self,
        uid: &str,
        latest: &DynamicObject,
        resource: &Resource,
    ) -> Result<Action> {
        let (blocking, waiting_themselves): (Vec<String>, HashSet<String>) = {
            let graph = self.graph.lock().unwrap();
            let blocking = graph.blocking_dependents(uid);
            let busy = blocking
                .iter()
                .filter(|d| graph.get(d).is_some_and(|n| n.deleting_dependents))
                .cloned()
                .collect();
            (blocking, busy)
        };
        if blocking.is_empty() {
            return self
                .remove_finalizer(latest, resource, FOREGROUND_FINALIZER)
                .await;
        }
        for dep in blocking {
            if !waiting_themselves.contains(&dep) {
                self.delete_queue.add(Key::cluster(dep));
            }
        }
        Ok(Action::Done)
    }

    async fn remove_finalizer(
        &self,
        latest: &DynamicObject,
        resource: &Resource,
        finalizer: &str,
    ) -> Result<Action> {
        let finalizers: Vec<String> = latest
            .metadata
            .finalizers
            .iter()
            .flatten()
            .filter(|f| *f != finalizer)
            .cloned()
            .collect();
        let patch = json!({
            "metadata": {
                "finalizers": list_or_null(&finalizers),
                "resourceVersion": latest.metadata.resource_version,
            }
        });
        let api = self.api(resource, latest.metadata.namespace.as_deref());
        let name = latest.metadata.name.clone().unwrap_or_default();
        ignore_gone(
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await,
        )
    }

    /// Upstream's `attemptToOrphanWorker`: release every dependent, then
    /// remove the `orphan` finalizer.
    async fn attempt_to_orphan(&self, uid: &str) -> Result<Action> {
        let Some(node) = self.graph.lock().unwrap().get(uid).cloned() else {
            return Ok(Action::Done);
        };
        for dep_uid in &node.dependents {
            let Some(dep) = self.graph.lock().unwrap().get(dep_uid).cloned() else {
                continue;
            };
            let Live::Found(obj, resource) = self.get_live(&dep.identity, dep_uid).await? else {
                continue;
            };
            let owners = obj.metadata.owner_references.clone().unwrap_or_default();
            if !owners.iter().any(|o| o.uid == uid) {
                continue;
            }
            let kept: Vec<_> = owners.iter().filter(|o| o.uid != uid).collect();
            let patch = json!({
                "metadata": {
                    "ownerReferences": list_or_null(&kept),
                    "resourceVersion": obj.metadata.resource_version,
                }
            });
            let api = self.api(&resource, obj.metadata.namespace.as_deref());
            let name = obj.metadata.name.clone().unwrap_or_default();
            ignore_gone(
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await,
            )?;
        }
        match self.get_live(&node.identity, uid).await? {
            Live::Found(owner, resource) => {
                if owner
                    .metadata
                    .finalizers
                    .iter()
                    .flatten()
                    .any(|f| f == ORPHAN_FINALIZER)
                {
                    return self
                        .remove_finalizer(&owner, &resource, ORPHAN_FINALIZER)
                        .await;
                }
                Ok(Action::Done)
            }
            Live::Absent => Ok(Action::Done),
            Live::UnknownKind => Ok(Action::RequeueAfter(DISCOVERY_PERIOD)),
        }
    }
}

/// A list for a merge patch; an empty one removes the field, as upstream
/// never stores empty `ownerReferences` or `finalizers`.
fn list_or_null<T: serde::Serialize>(list: &[T]) -> serde_json::Value {
    if list.is_empty() {
        serde_json::Value::Null
    } else {
        json!(list)
    }
}

enum Live {
    Found(Box<DynamicObject>, Resource),
    Absent,
    UnknownKind,
}

/// A write on an object that is gone (404) or was replaced (409 from the
/// uid precondition or the resourceVersion) is retried only through the
/// events it causes: a 409 is returned so that the item is checked again.
fn ignore_gone<T>(r: Result<T, kube::Error>) -> Result<Action> {
    match r {
        Ok(_) => Ok(Action::Done),
        Err(e) if runner::is_not_found(&e) => Ok(Action::Done),
        Err(e) => Err(e.into()),
    }
}

struct AttemptToDelete(Arc<Collector>);
struct AttemptToOrphan(Arc<Collector>);

#[async_trait::async_trait]
impl Reconciler for AttemptToDelete {
    fn name(&self) -> &'static str {
        "garbage-collector-controller"
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        self.0.attempt_to_delete(&key.name).await
    }
}

#[async_trait::async_trait]
impl Reconciler for AttemptToOrphan {
    fn name(&self) -> &'static str {
        "garbage-collector-controller"
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        self.0.attempt_to_orphan(&key.name).await
    }
}

fn to_observed(
    resource: &str,
    ar: &ApiResource,
    meta: &PartialObjectMeta<DynamicObject>,
) -> Option<Observed> {
    let m = &meta.metadata;
    let uid = m.uid.clone()?;
    Some(Observed {
        uid,
        resource: resource.to_string(),
        identity: Identity {
            api_version: ar.api_version.clone(),
            kind: ar.kind.clone(),
            namespace: m.namespace.clone(),
            name: m.name.clone().unwrap_or_default(),
        },
        owners: m
            .owner_references
            .iter()
            .flatten()
            .map(|o| Owner {
                uid: o.uid.clone(),
                api_version: o.api_version.clone(),
                kind: o.kind.clone(),
                name: o.name.clone(),
                block_owner_deletion: o.block_owner_deletion.unwrap_or(false),
            })
            .collect(),
        being_deleted: m.deletion_timestamp.is_some(),
        finalizers: m.finalizers.clone().unwrap_or_default(),
    })
}

/// One resource's metadata watch, feeding the graph builder.
async fn monitor(
    client: Client,
    name: String,
    resource: Resource,
    changes: mpsc::UnboundedSender<Change>,
) {
    let api: Api<DynamicObject> = Api::all_with(client, &resource.ar);
    let mut stream = metadata_watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .boxed();
    let mut relist: Option<HashSet<String>> = None;
    let mut synced = false;
    while let Some(event) = stream.next().await {
        let sent = match event {
            Ok(Event::Init) => {
                relist = Some(HashSet::new());
                Ok(())
            }
            Ok(Event::InitApply(meta)) => match to_observed(&name, &resource.ar, &meta) {
                Some(o) => {
                    relist
                        .get_or_insert_with(HashSet::new)
                        .insert(o.uid.clone());
                    changes.send(Change::Observed(o))
                }
                None => Ok(()),
            },
            Ok(Event::InitDone) => {
                let uids = relist.take().unwrap_or_default();
                let r = changes.send(Change::Relisted {
                    resource: name.clone(),
                    uids,
                });
                if !synced {
                    synced = true;
                    let _ = changes.send(Change::Synced(name.clone()));
                }
                r
            }
            Ok(Event::Apply(meta)) => match to_observed(&name, &resource.ar, &meta) {
                Some(o) => changes.send(Change::Observed(o)),
                None => Ok(()),
            },
            Ok(Event::Delete(meta)) => match meta.metadata.uid.clone() {
                Some(uid) => changes.send(Change::Deleted(uid)),
                None => Ok(()),
            },
            Err(e) => {
                tracing::debug!(resource = %name, error = %e, "garbage collector: watch interrupted; retrying");
                Ok(())
            }
        };
        if sent.is_err() {
            return;
        }
    }
}
