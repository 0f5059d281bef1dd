//! Pod workers (upstream `pod_workers.go` + `kuberuntime_manager.go`
//! SyncPod/KillPod + the status manager): one task per pod UID, woken by
//! the watch of the node's pods, by the runtime relist (upstream's PLEG,
//! every second) and by its own timers. A worker syncs the pod's runtime
//! state towards its spec ([`super::actions`]), writes the status
//! ([`super::pod_status`]) when it changed, and on deletion stops
//! everything, tears down volumes and deletes the pod (grace period 0,
//! UID precondition). Sandboxes and containers whose pod is gone from the
//! API (force deletion, or a previous run of the agent) are removed.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use controllers::events::{Recorder, NORMAL, WARNING};
use controllers::runner::{is_conflict, is_not_found};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Container, Pod, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::watcher;
use kube::{Client, Resource};
use runtime::{
    ContainerConfig, ContainerMetadata, ContainerState, DnsConfig, ImageSpec, NamespaceMode,
    NamespaceOption, PodSandboxConfig, PodSandboxMetadata, PortMapping, Protocol,
};
use serde_json::json;
use tokio::sync::Notify;

use super::actions::{self, RuntimePod};
use super::backoff::{go_duration, Backoff};
use super::container_config::{self as cc, format_pod};
use super::hooks;
use super::images::{self, ImageInfo};
use super::pod_status::{self, SyncErrors};
use super::probes;
use super::{Options, Services};

const RELIST_PERIOD: Duration = Duration::from_secs(1);
/// A pod is synced at least this often even when nothing woke it.
const RESYNC_PERIOD: Duration = Duration::from_secs(10);
const FIELD_MANAGER: &str = "kubelet";

pub struct Config {
    pub client: Client,
    pub services: Services,
    pub recorder: Recorder,
    pub options: Options,
    pub host_ip: String,
    pub runtime_name: String,
    pub memory_capacity: i64,
}

struct Worker {
    wake: Arc<Notify>,
}

pub struct Pods {
    cfg: Config,
    /// The node's pods as the watch last saw them, by UID.
    pods: Mutex<HashMap<String, Arc<Pod>>>,
    workers: Mutex<HashMap<String, Worker>>,
    backoff: Mutex<Backoff>,
    /// The watch has listed every pod once: runtime objects of unknown
    /// pods are orphans.
    synced: std::sync::atomic::AtomicBool,
    /// Pods the eviction manager failed, by UID, until they are gone.
    evictions: Mutex<HashMap<String, Eviction>>,
    /// The eviction manager's conditions, for admitting new pods.
    pressure: std::sync::OnceLock<super::eviction::manager::PressureState>,
    /// Pods being set up (sandbox, first containers, first status) at
    /// once: a few, taken in order, so that in a burst the first pods come
    /// up first rather than all of them together at the end.
    setup_slots: tokio::sync::Semaphore,
}

/// How many pods are set up at once: two per CPU, or
/// `KRATE_POD_SETUP_SLOTS` (0: no bound), to measure the difference.
fn pod_setup_slots() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    match std::env::var("KRATE_POD_SETUP_SLOTS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(0) => tokio::sync::Semaphore::MAX_PERMITS,
        Some(n) => n,
        None => 2 * cpus,
    }
}

/// An eviction the pod's worker carries out: kill with this grace period,
/// report the pod Failed with this message.
#[derive(Clone)]
struct Eviction {
    message: String,
    grace: i64,
    at: chrono::DateTime<Utc>,
    /// With the DisruptionTarget condition (not for a pod rejected at
    /// admission).
    disruption: bool,
}

/// What one worker remembers between syncs.
#[derive(Default)]
struct WorkerState {
    errors: SyncErrors,
    readiness: HashMap<String, bool>,
    startup: HashMap<String, bool>,
    liveness_failed: HashSet<String>,
    deleting: bool,
    /// The status last written, so that a status the API keeps different
    /// (fields a merge patch cannot remove) is not written again and again.
    last_written: Option<k8s_openapi::api::core::v1::PodStatus>,
    /// Earliest time a back-off ends: the worker wakes then.
    wake_at: Option<chrono::DateTime<Utc>>,
    /// The worker's own wake-up, for its probes.
    wake: Arc<Notify>,
    probe_results: Arc<Mutex<probes::Results>>,
    probe_tasks: HashMap<(String, probes::Kind), tokio::task::JoinHandle<()>>,
}

impl Drop for WorkerState {
    fn drop(&mut self) {
        for (_, task) in self.probe_tasks.drain() {
            task.abort();
        }
    }
}

enum Next {
    Done,
    After(Duration),
}

fn uid_of(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn same_but_status(a: &Pod, b: &Pod) -> bool {
    a.spec == b.spec
        && a.metadata.deletion_timestamp == b.metadata.deletion_timestamp
        && a.metadata.deletion_grace_period_seconds == b.metadata.deletion_grace_period_seconds
        && a.metadata.labels == b.metadata.labels
        && a.metadata.annotations == b.metadata.annotations
}

fn field_path(pod: &Pod, name: &str) -> String {
    let spec = pod.spec.as_ref();
    let init = spec
        .and_then(|s| s.init_containers.as_ref())
        .is_some_and(|i| i.iter().any(|c| c.name == name));
    let ephemeral = spec
        .and_then(|s| s.ephemeral_containers.as_ref())
        .is_some_and(|e| e.iter().any(|c| c.name == name));
    if init {
        format!("spec.initContainers{{{name}}}")
    } else if ephemeral {
        format!("spec.ephemeralContainers{{{name}}}")
    } else {
        format!("spec.containers{{{name}}}")
    }
}

impl Pods {
    pub fn new(cfg: Config) -> Arc<Pods> {
        Arc::new(Pods {
            cfg,
            pods: Mutex::default(),
            workers: Mutex::default(),
            backoff: Mutex::default(),
            synced: Default::default(),
            evictions: Mutex::default(),
            pressure: Default::default(),
            setup_slots: tokio::sync::Semaphore::new(pod_setup_slots()),
        })
    }

    /// The pods that are running or about to: neither terminal, nor being
    /// deleted, nor evicted.
    pub fn active_pods(&self) -> Vec<Arc<Pod>> {
        let evictions = self.evictions.lock().unwrap();
        let pods = self.pods.lock().unwrap();
        pods.values()
            .filter(|p| {
                !is_terminal(p)
                    && p.metadata.deletion_timestamp.is_none()
                    && !evictions.contains_key(&uid_of(p))
            })
            .cloned()
            .collect()
    }

    /// Fails the pod (upstream `killPodNow` from the eviction manager):
    /// the `Evicted` event now; its worker kills its containers within
    /// `grace` seconds and reports phase Failed, reason Evicted.
    pub fn evict(self: &Arc<Self>, pod: &Pod, message: String, grace: i64) {
        self.fail(pod, message, grace, true);
    }

    /// New pods are admitted against these pressure conditions.
    pub fn set_pressure(&self, state: super::eviction::manager::PressureState) {
        let _ = self.pressure.set(state);
    }

    fn fail(self: &Arc<Self>, pod: &Pod, message: String, grace: i64, disruption: bool) {
        let uid = uid_of(pod);
        self.event(pod, None, true, super::eviction::REASON, message.clone());
        let eviction = Eviction {
            message,
            grace,
            at: Utc::now(),
            disruption,
        };
        self.evictions.lock().unwrap().insert(uid.clone(), eviction);
        self.dispatch(&uid);
    }

    pub async fn run(self: Arc<Self>) {
        let relist = tokio::spawn(self.clone().relist_loop());
        self.watch_loop().await;
        relist.abort();
    }

    async fn watch_loop(self: &Arc<Self>) {
        let api: Api<Pod> = Api::all(self.cfg.client.clone());
        let config = watcher::Config::default()
            .fields(&format!("spec.nodeName={}", self.cfg.options.node_name));
        let mut stream = watcher::watcher(api, config).boxed();
        let mut listing: HashSet<String> = HashSet::new();
        loop {
            match stream.try_next().await {
                Ok(Some(event)) => match event {
                    watcher::Event::Init => listing.clear(),
                    watcher::Event::InitApply(pod) => {
                        let uid = uid_of(&pod);
                        listing.insert(uid.clone());
                        self.pods.lock().unwrap().insert(uid.clone(), Arc::new(pod));
                        self.dispatch(&uid);
                    }
                    watcher::Event::InitDone => {
                        let gone: Vec<String> = {
                            let mut pods = self.pods.lock().unwrap();
                            let gone = pods
                                .keys()
                                .filter(|u| !listing.contains(*u))
                                .cloned()
                                .collect::<Vec<_>>();
                            for u in &gone {
                                pods.remove(u);
                            }
                            gone
                        };
                        for u in gone {
                            self.dispatch(&u);
                        }
                        self.synced.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    watcher::Event::Apply(pod) => {
                        let uid = uid_of(&pod);
                        let old = self
                            .pods
                            .lock()
                            .unwrap()
                            .insert(uid.clone(), Arc::new(pod.clone()));
                        // The status is the agent's own writing: a change
                        // of it alone wakes nobody (upstream's config
                        // source passes on spec and deletion changes).
                        if old.is_none_or(|old| !same_but_status(&old, &pod)) {
                            self.dispatch(&uid);
                        }
                    }
                    watcher::Event::Delete(pod) => {
                        let uid = uid_of(&pod);
                        self.pods.lock().unwrap().remove(&uid);
                        self.dispatch(&uid);
                    }
                },
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!(error = %e, "watching the node's pods");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Relists the runtime every second and wakes the workers of pods whose
    /// sandboxes or containers changed; starts workers for orphans.
    async fn relist_loop(self: Arc<Self>) {
        let mut last: HashMap<String, Vec<(String, String)>> = HashMap::new();
        loop {
            tokio::time::sleep(RELIST_PERIOD).await;
            let rt = &self.cfg.services.runtime;
            let (sandboxes, containers) =
                match (rt.list_pod_sandbox().await, rt.list_containers().await) {
                    (Ok(s), Ok(c)) => (s, c),
                    (Err(e), _) | (_, Err(e)) => {
                        tracing::debug!(error = %e, "relisting the runtime");
                        continue;
                    }
                };
            let mut now: HashMap<String, Vec<(String, String)>> = HashMap::new();
            let mut sandbox_uid = HashMap::new();
            for s in &sandboxes {
                sandbox_uid.insert(s.id.clone(), s.metadata.uid.clone());
                now.entry(s.metadata.uid.clone())
                    .or_default()
                    .push((s.id.clone(), format!("{:?}", s.state)));
            }
            for c in &containers {
                let uid = sandbox_uid
                    .get(&c.pod_sandbox_id)
                    .cloned()
                    .or_else(|| c.labels.get(cc::LABEL_POD_UID).cloned())
                    .unwrap_or_default();
                now.entry(uid)
                    .or_default()
                    .push((c.id.clone(), format!("{:?}", c.state)));
            }
            for v in now.values_mut() {
                v.sort();
            }
            let synced = self.synced.load(std::sync::atomic::Ordering::SeqCst);
            for (uid, state) in &now {
                if uid.is_empty() {
                    continue;
                }
                let known = self.pods.lock().unwrap().contains_key(uid);
                let changed = last.get(uid) != Some(state);
                let has_worker = self.workers.lock().unwrap().contains_key(uid);
                if (changed && (known || has_worker)) || (synced && !known && !has_worker) {
                    self.dispatch(uid);
                }
            }
            last = now;
        }
    }

    /// Wakes the worker of `uid`, starting one if there is none.
    fn dispatch(self: &Arc<Self>, uid: &str) {
        let mut workers = self.workers.lock().unwrap();
        if let Some(w) = workers.get(uid) {
            w.wake.notify_one();
            return;
        }
        let wake = Arc::new(Notify::new());
        workers.insert(uid.to_string(), Worker { wake: wake.clone() });
        let me = self.clone();
        let uid = uid.to_string();
        tokio::spawn(async move { me.worker(uid, wake).await });
    }

    async fn worker(self: Arc<Self>, uid: String, wake: Arc<Notify>) {
        let mut state = WorkerState::default();
        state.wake = wake.clone();
        loop {
            let notified = wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let pod = self.pods.lock().unwrap().get(&uid).cloned();
            let next = match self.sync(&uid, pod.as_deref(), &mut state).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(pod_uid = %uid, error = %e, "syncing a pod; retrying");
                    Next::After(Duration::from_secs(2))
                }
            };
            match next {
                Next::Done => {
                    let mut workers = self.workers.lock().unwrap();
                    if self.pods.lock().unwrap().contains_key(&uid) {
                        // The pod came back meanwhile: keep going.
                        drop(workers);
                        continue;
                    }
                    workers.remove(&uid);
                    self.evictions.lock().unwrap().remove(&uid);
                    self.backoff
                        .lock()
                        .unwrap()
                        .forget_prefix(&format!("{uid}/"));
                    return;
                }
                Next::After(mut d) => {
                    if let Some(at) = state.wake_at.take() {
                        let until = (at - Utc::now()).to_std().unwrap_or_default()
                            + Duration::from_millis(50);
                        d = d.min(until);
                    }
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep(d) => {}
                    }
                }
            }
        }
    }

    async fn runtime_pod(&self, uid: &str) -> Result<RuntimePod, runtime::Error> {
        let rt = &self.cfg.services.runtime;
        let sandboxes: Vec<_> = rt
            .list_pod_sandbox()
            .await?
            .into_iter()
            .filter(|s| s.metadata.uid == uid)
            .collect();
        let ids: HashSet<&str> = sandboxes.iter().map(|s| s.id.as_str()).collect();
        let containers: Vec<_> = rt
            .list_containers()
            .await?
            .into_iter()
            .filter(|c| {
                ids.contains(c.pod_sandbox_id.as_str())
                    || c.labels.get(cc::LABEL_POD_UID).map(String::as_str) == Some(uid)
            })
            .map(|mut c| {
                super::termination::enrich(&mut c);
                c
            })
            .collect();
        Ok(RuntimePod::new(sandboxes, containers))
    }

    fn event(
        &self,
        pod: &Pod,
        container: Option<&str>,
        warning: bool,
        reason: &str,
        message: String,
    ) {
        let mut reference = pod.object_ref(&());
        if let Some(c) = container {
            reference.field_path = Some(field_path(pod, c));
        }
        let type_ = if warning { WARNING } else { NORMAL };
        self.cfg.recorder.record(reference, type_, reason, message);
    }

    async fn sync(
        self: &Arc<Self>,
        uid: &str,
        pod: Option<&Pod>,
        state: &mut WorkerState,
    ) -> Result<Next, runtime::Error> {
        let rt = self.runtime_pod(uid).await?;
        let Some(pod) = pod else {
            // Gone from the API (deleted, force-deleted, or an orphan of a
            // previous run): remove everything.
            self.remove_all(uid, &rt, Duration::from_secs(2)).await;
            return Ok(Next::Done);
        };
        if pod.metadata.deletion_timestamp.is_some() {
            return self.terminate(pod, &rt, state).await;
        }
        let eviction = self.evictions.lock().unwrap().get(uid).cloned();
        if let Some(eviction) = eviction {
            // Failed first, then killed, as upstream's status function
            // runs before the containers are stopped.
            self.write_status(pod, &rt, state, false).await;
            self.kill_pod(pod, &rt, eviction.grace).await;
            let rt = self.runtime_pod(uid).await?;
            self.write_status(pod, &rt, state, false).await;
            if !rt
                .containers
                .iter()
                .any(|c| c.state == ContainerState::Running)
            {
                // A terminated pod's volumes go, as upstream's volume
                // manager unmounts them: evicting for disk frees emptyDirs.
                if let Err(e) = self.cfg.services.resources.teardown_volumes(uid).await {
                    tracing::warn!(pod_uid = %uid, error = %e, "tearing down the evicted pod's volumes");
                }
            }
            return Ok(Next::After(RESYNC_PERIOD * 6));
        }
        if is_terminal(pod) {
            self.kill_pod(pod, &rt, grace_period(pod)).await;
            return Ok(Next::After(RESYNC_PERIOD * 6));
        }
        let new = rt.sandboxes.is_empty()
            && rt.containers.is_empty()
            && pod
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .is_none();
        if new {
            let pressure = self.pressure.get().map(|p| p.get()).unwrap_or_default();
            if let Some(message) = super::eviction::admit(pod, &pressure) {
                // Upstream's admission rejection: Failed, reason Evicted.
                self.fail(pod, message, 0, false);
                return Ok(Next::After(RESYNC_PERIOD));
            }
        }
        self.probe_results(pod, &rt, state);
        let acts = actions::compute(pod, &rt, &state.liveness_failed);
        state.liveness_failed.clear();
        // A new sandbox holds a set-up slot until the pod's status is written.
        let mut _slot = None;
        if acts.kill_pod {
            if acts.init_failed {
                tracing::info!(pod = %format_pod(pod), "init container failed; the pod fails");
            }
            self.kill_pod(pod, &rt, grace_period(pod)).await;
        } else {
            if acts.create_sandbox {
                _slot = self.setup_slots.acquire().await.ok();
            }
            self.apply(pod, &rt, &acts, state).await;
        }
        let rt = self.runtime_pod(uid).await?;
        self.ensure_probes(pod, &rt, state);
        self.probe_results(pod, &rt, state);
        self.write_status(pod, &rt, state, false).await;
        self.remove_dead(&rt).await;
        Ok(Next::After(RESYNC_PERIOD))
    }

    /// Runs the actions: sandbox, kills, init container or app containers.
    async fn apply(
        self: &Arc<Self>,
        pod: &Pod,
        rt: &RuntimePod,
        acts: &actions::Actions,
        state: &mut WorkerState,
    ) {
        let runtime = &self.cfg.services.runtime;
        let sandbox_config = self.sandbox_config(pod, acts.attempt);
        let sandbox_id = if acts.create_sandbox {
            if !rt.sandboxes.is_empty() {
                self.event(
                    pod,
                    None,
                    false,
                    "SandboxChanged",
                    "Pod sandbox changed, it will be killed and re-created.".into(),
                );
                self.kill_pod(pod, rt, grace_period(pod)).await;
            }
            let client = &self.cfg.client;
            let run =
                super::runtime_class::run_pod_sandbox(client, &**runtime, pod, &sandbox_config);
            match run.await {
                Ok(id) => id,
                Err(e) => {
                    let msg = format!("Failed to create pod sandbox: {e}");
                    self.event(pod, None, true, "FailedCreatePodSandBox", msg);
                    state.wake_at = Some(Utc::now() + chrono::Duration::seconds(5));
                    return;
                }
            }
        } else {
            match acts.sandbox_id.clone() {
                Some(id) => id,
                None => return,
            }
        };
        let pod_ip = self.pod_ip(pod, rt);
        for (id, name, message) in &acts.containers_to_kill {
            let spec = hooks::container_spec(pod, name);
            let probe_grace = {
                let results = state.probe_results.lock().unwrap();
                spec.and_then(|c| results.kill_grace(c, id))
            };
            let grace = probe_grace.unwrap_or_else(|| grace_period(pod));
            let ip = pod_ip.as_deref();
            self.kill_container(pod, ip, id, name, message.clone(), grace)
                .await;
        }
        let spec = pod.spec.clone().unwrap_or_default();
        // A fresh sandbox starts from scratch: no container has run in it.
        let fresh = RuntimePod::default();
        let history = if acts.create_sandbox { &fresh } else { rt };
        let ephemeral = spec.ephemeral_containers.as_deref().unwrap_or_default();
        for &i in &acts.ephemeral_to_start {
            let c = cc::ephemeral_container(&ephemeral[i]);
            self.start(pod, &c, &sandbox_id, &sandbox_config, rt, history, state)
                .await;
        }
        if let Some(i) = acts.next_init_container {
            let inits = spec.init_containers.clone().unwrap_or_default();
            let c = &inits[i];
            self.start(pod, c, &sandbox_id, &sandbox_config, rt, history, state)
                .await;
            return;
        }
        for &i in &acts.containers_to_start {
            let c = &spec.containers[i];
            self.start(pod, c, &sandbox_id, &sandbox_config, rt, history, state)
                .await;
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn start(
        self: &Arc<Self>,
        pod: &Pod,
        c: &Container,
        sandbox_id: &str,
        sandbox_config: &PodSandboxConfig,
        all: &RuntimePod,
        _in_sandbox: &RuntimePod,
        state: &mut WorkerState,
    ) {
        match self
            .start_container(pod, c, sandbox_id, sandbox_config, all, state)
            .await
        {
            Ok(()) => {
                state.errors.remove(&c.name);
            }
            Err((reason, message)) => {
                state.errors.insert(c.name.clone(), (reason, message));
            }
        }
    }

    /// Upstream `startContainer` with `doBackOff` and `EnsureImageExists`
    /// before it. Errors are (waiting reason, message).
    async fn start_container(
        self: &Arc<Self>,
        pod: &Pod,
        c: &Container,
        sandbox_id: &str,
        sandbox_config: &PodSandboxConfig,
        rt: &RuntimePod,
        state: &mut WorkerState,
    ) -> Result<(), (String, String)> {
        let uid = uid_of(pod);
        let now = Utc::now();
        let previous = rt.latest(&c.name);
        // Crash back-off (upstream doBackOff).
        if let Some(prev) = previous.filter(|p| p.state == ContainerState::Exited) {
            let key = format!("{uid}/{}", c.name);
            let finished = prev.finished_at.unwrap_or(prev.created_at);
            let mut backoff = self.backoff.lock().unwrap();
            if backoff.in_backoff_since(&key, finished, now) {
                let until = backoff.until(&key, finished);
                state.wake_at = Some(state.wake_at.map_or(until, |w| w.min(until)));
                let msg = format!(
                    "back-off {} restarting failed container={} pod={}",
                    go_duration(backoff.get(&key)),
                    c.name,
                    format_pod(pod)
                );
                drop(backoff);
                self.event(
                    pod,
                    Some(&c.name),
                    true,
                    "BackOff",
                    format!(
                        "Back-off restarting failed container {} in pod {}",
                        c.name,
                        format_pod(pod)
                    ),
                );
                return Err(("CrashLoopBackOff".into(), msg));
            }
            backoff.next(&key, now);
        }
        let image = self.ensure_image(pod, c, state).await?;
        let config_error = |msg: String| {
            self.event(pod, Some(&c.name), true, "Failed", format!("Error: {msg}"));
            ("CreateContainerConfigError".to_string(), msg)
        };
        // An ephemeral container joins its target's processes (upstream
        // `getTargetID`).
        let pid_namespace_target = match cc::ephemeral_target(pod, &c.name) {
            Some(target) => {
                let running = rt
                    .latest(target)
                    .filter(|s| s.state == ContainerState::Running);
                match running {
                    Some(s) => Some(s.id.clone()),
                    None => {
                        return Err(config_error(format!(
                            "unable to find target container {target}"
                        )))
                    }
                }
            }
            None => None,
        };
        let pod_ips: Vec<String> = match rt.ready_sandbox().filter(|s| s.id == sandbox_id) {
            Some(s) => s.ips.iter().map(|ip| ip.to_string()).collect(),
            None => match self
                .cfg
                .services
                .runtime
                .pod_sandbox_status(sandbox_id)
                .await
            {
                Ok(s) => s.ips.iter().map(|ip| ip.to_string()).collect(),
                Err(_) => Vec::new(),
            },
        };
        let resources = &self.cfg.services.resources;
        if let Err(e) = resources.setup_volumes(pod).await {
            self.event(pod, None, true, "FailedMount", e);
            let until = Utc::now() + chrono::Duration::seconds(2);
            state.wake_at = Some(state.wake_at.map_or(until, |w| w.min(until)));
            return Err(("ContainerCreating".to_string(), String::new()));
        }
        let env = resources
            .container_env(pod, c, &pod_ips)
            .await
            .map_err(config_error)?;
        let env = cc::merge_env(&image.config, env);
        let security = cc::security_context(pod, c);
        cc::verify_run_as_non_root(pod, c, &security, &image.config).map_err(config_error)?;
        let mut security = security;
        if security.run_as_user.is_none() {
            if let Some(user) = image.config.user.as_deref().filter(|u| !u.is_empty()) {
                let (u, g) = user.split_once(':').unwrap_or((user, ""));
                match u.parse::<u32>() {
                    Ok(uid) => security.run_as_user = Some(uid),
                    Err(_) => security.run_as_username = Some(u.to_string()),
                }
                if security.run_as_group.is_none() {
                    security.run_as_group = g.parse().ok();
                }
            }
        }
        let mounts = resources
            .container_mounts(pod, c, &env, &pod_ips)
            .await
            .map_err(config_error)?;
        let attempt = previous.map(|p| p.metadata.attempt + 1).unwrap_or(0);
        let args = cc::argv(c, &image.config, &env);
        let config = ContainerConfig {
            metadata: ContainerMetadata {
                name: c.name.clone(),
                attempt,
            },
            image: ImageSpec {
                image: c.image.clone().unwrap_or_default(),
                image_ref: image.image_ref.clone(),
                layers: image.layers.clone(),
            },
            args,
            working_dir: c
                .working_dir
                .clone()
                .filter(|w| !w.is_empty())
                .or_else(|| image.config.working_dir.clone().filter(|w| !w.is_empty())),
            envs: env,
            mounts,
            log_path: PathBuf::from(&c.name).join(format!("{attempt}.log")),
            stdin: c.stdin.unwrap_or(false),
            stdin_once: c.stdin_once.unwrap_or(false),
            tty: c.tty.unwrap_or(false),
            labels: cc::container_labels(pod, c),
            annotations: super::termination::annotations(c),
            resources: cc::container_resources(pod, c, self.cfg.memory_capacity),
            security_context: security,
            pid_namespace_target,
        };
        let runtime = &self.cfg.services.runtime;
        let id = match runtime
            .create_container(sandbox_id, &config, sandbox_config)
            .await
        {
            Ok(id) => id,
            Err(e) => {
                let msg = e.to_string();
                self.event(pod, Some(&c.name), true, "Failed", format!("Error: {msg}"));
                return Err(("CreateContainerError".into(), msg));
            }
        };
        self.event(
            pod,
            Some(&c.name),
            false,
            "Created",
            format!("Created container: {}", c.name),
        );
        if let Err(e) = runtime.start_container(&id).await {
            let msg = e.to_string();
            self.event(pod, Some(&c.name), true, "Failed", format!("Error: {msg}"));
            return Err(("RunContainerError".into(), msg));
        }
        self.event(
            pod,
            Some(&c.name),
            false,
            "Started",
            format!("Started container {}", c.name),
        );
        if let Some(handler) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            let pod_ip = pod_ips
                .first()
                .cloned()
                .or_else(|| self.host_network_ip(pod));
            let target = hooks::Target {
                pod,
                container: c,
                container_id: &id,
                pod_ip: pod_ip.as_deref(),
            };
            // The container is not running for the API until its hook
            // returned: the status says so meanwhile (upstream writes it
            // before syncing the pod).
            self.write_status(pod, rt, state, false).await;
            // A pod deleted meanwhile stops waiting for its hook.
            let deleted =
                |p: Option<&Pod>| p.is_none_or(|p| p.metadata.deletion_timestamp.is_some());
            let ran = tokio::select! {
                ran = hooks::run(handler, &target, runtime) => ran,
                _ = self.until_pod(&uid, deleted) => return Ok(()),
            };
            self.hook_fallback_event(pod, &ran);
            if let Some(msg) = ran.error {
                tracing::info!(pod = %format_pod(pod), container = %c.name, error = %msg, "postStart hook failed");
                // The message stays out of the event: it may hold secrets.
                let failed = "PostStartHook failed".to_string();
                self.event(pod, Some(&c.name), true, "FailedPostStartHook", failed);
                let reason = "FailedPostStartHook".to_string();
                let (ip, grace) = (pod_ip.as_deref(), grace_period(pod));
                self.kill_container(pod, ip, &id, &c.name, reason, grace)
                    .await;
                return Err(("PostStartHookError".into(), msg));
            }
        }
        Ok(())
    }

    /// Upstream `EnsureImageExists`.
    async fn ensure_image(
        &self,
        pod: &Pod,
        c: &Container,
        state: &mut WorkerState,
    ) -> Result<ImageInfo, (String, String)> {
        let image = c.image.clone().unwrap_or_default();
        let policy = images::pull_policy(c);
        let store = &self.cfg.services.images;
        let present = store.status(&image).await.ok().flatten();
        if policy != "Always" {
            if let Some(info) = present {
                self.event(
                    pod,
                    Some(&c.name),
                    false,
                    "Pulled",
                    format!("Container image {image:?} already present on machine"),
                );
                return Ok(info);
            }
            if policy == "Never" {
                let msg =
                    format!("Container image {image:?} is not present with pull policy of Never");
                self.event(pod, Some(&c.name), true, "ErrImageNeverPull", msg.clone());
                return Err(("ErrImageNeverPull".into(), msg));
            }
        }
        let key = format!("{}/image/{image}", uid_of(pod));
        let now = Utc::now();
        {
            let backoff = self.backoff.lock().unwrap();
            if backoff.in_backoff(&key, now) {
                let msg = format!("Back-off pulling image {image:?}");
                let until = backoff.last_until(&key).unwrap_or(now);
                state.wake_at = Some(state.wake_at.map_or(until, |w| w.min(until)));
                drop(backoff);
                self.event(pod, Some(&c.name), false, "BackOff", msg.clone());
                self.event(
                    pod,
                    Some(&c.name),
                    true,
                    "Failed",
                    "Error: ImagePullBackOff".into(),
                );
                return Err(("ImagePullBackOff".into(), msg));
            }
        }
        self.event(
            pod,
            Some(&c.name),
            false,
            "Pulling",
            format!("Pulling image {image:?}"),
        );
        let auth = self.pull_secrets(pod).await;
        let started = std::time::Instant::now();
        match store.pull(&image, &auth).await {
            Ok(info) => {
                let took = started.elapsed();
                self.event(
                    pod,
                    Some(&c.name),
                    false,
                    "Pulled",
                    format!(
                        "Successfully pulled image {image:?} in {took:.3?} ({took:.3?} including waiting). Image size: {} bytes.",
                        info.size
                    ),
                );
                Ok(info)
            }
            Err(e) => {
                let mut backoff = self.backoff.lock().unwrap();
                backoff.next(&key, now);
                let until = now + chrono::Duration::from_std(backoff.get(&key)).unwrap_or_default();
                state.wake_at = Some(state.wake_at.map_or(until, |w| w.min(until)));
                drop(backoff);
                let msg = format!("Failed to pull image {image:?}: {e}");
                self.event(pod, Some(&c.name), true, "Failed", msg.clone());
                self.event(
                    pod,
                    Some(&c.name),
                    true,
                    "Failed",
                    "Error: ErrImagePull".into(),
                );
                Err(("ErrImagePull".into(), msg))
            }
        }
    }

    async fn pull_secrets(&self, pod: &Pod) -> Vec<images::RegistryAuth> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Secret> = Api::namespaced(self.cfg.client.clone(), &ns);
        let mut secrets = Vec::new();
        for r in pod
            .spec
            .iter()
            .flat_map(|s| s.image_pull_secrets.iter().flatten())
        {
            match api.get_opt(&r.name).await {
                Ok(Some(s)) => secrets.push(s),
                Ok(None) => {
                    tracing::warn!(pod = %format_pod(pod), secret = %r.name, "image pull secret not found")
                }
                Err(e) => {
                    tracing::warn!(pod = %format_pod(pod), secret = %r.name, error = %e, "reading an image pull secret")
                }
            }
        }
        images::registry_auths(&secrets)
    }

    /// Starts the probes of running app containers that have them and
    /// stops those of containers that are gone.
    fn ensure_probes(&self, pod: &Pod, rt: &RuntimePod, state: &mut WorkerState) {
        let spec = pod.spec.clone().unwrap_or_default();
        let pod_ip = self.pod_ip(pod, rt);
        let mut live: Vec<String> = Vec::new();
        for c in &spec.containers {
            let Some(status) = rt
                .latest(&c.name)
                .filter(|s| s.state == ContainerState::Running)
            else {
                continue;
            };
            live.push(status.id.clone());
            for kind in [
                probes::Kind::Startup,
                probes::Kind::Liveness,
                probes::Kind::Readiness,
            ] {
                if kind.of(c).is_none() {
                    continue;
                }
                let key = (status.id.clone(), kind);
                if state.probe_tasks.contains_key(&key) {
                    continue;
                }
                let target = probes::Target {
                    pod_ip: pod_ip.clone(),
                    container_id: status.id.clone(),
                    container: c.clone(),
                };
                let task = tokio::spawn(probes::run(
                    kind,
                    target,
                    status.started_at.unwrap_or(status.created_at),
                    self.cfg.services.runtime.clone(),
                    state.probe_results.clone(),
                    state.wake.clone(),
                ));
                state.probe_tasks.insert(key, task);
            }
        }
        state.probe_tasks.retain(|(id, _), task| {
            let keep = live.contains(id);
            if !keep {
                task.abort();
            }
            keep
        });
        state.probe_results.lock().unwrap().forget_except(&live);
    }

    /// Reads the probe results into the worker's state and records the
    /// failures as `Unhealthy` events.
    fn probe_results(&self, pod: &Pod, rt: &RuntimePod, state: &mut WorkerState) {
        let spec = pod.spec.clone().unwrap_or_default();
        let events = {
            let mut results = state.probe_results.lock().unwrap();
            state.readiness.clear();
            state.startup.clear();
            state.liveness_failed.clear();
            for c in &spec.containers {
                let Some(status) = rt
                    .latest(&c.name)
                    .filter(|s| s.state == ContainerState::Running)
                else {
                    continue;
                };
                let get = |kind| results.get(&c.name, &status.id, kind);
                if c.readiness_probe.is_some() {
                    state
                        .readiness
                        .insert(c.name.clone(), get(probes::Kind::Readiness) == Some(true));
                }
                if c.startup_probe.is_some() {
                    state
                        .startup
                        .insert(c.name.clone(), get(probes::Kind::Startup) == Some(true));
                }
                if get(probes::Kind::Liveness) == Some(false)
                    || get(probes::Kind::Startup) == Some(false)
                {
                    state.liveness_failed.insert(c.name.clone());
                }
            }
            std::mem::take(&mut results.events)
        };
        for e in events {
            self.event(pod, Some(&e.container), true, e.reason, e.message);
        }
    }

    fn sandbox_config(&self, pod: &Pod, attempt: u32) -> PodSandboxConfig {
        let spec = pod.spec.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let uid = uid_of(pod);
        let host_network = spec.host_network.unwrap_or(false);
        let dns_policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
        let dns_config = match dns_policy {
            "Default" => None,
            "ClusterFirstWithHostNet" | "ClusterFirst"
                if (dns_policy == "ClusterFirstWithHostNet" || !host_network)
                    && !self.cfg.options.cluster_dns.is_empty() =>
            {
                let d = &self.cfg.options.cluster_domain;
                Some(DnsConfig {
                    servers: self.cfg.options.cluster_dns.clone(),
                    searches: vec![
                        format!("{namespace}.svc.{d}"),
                        format!("svc.{d}"),
                        d.clone(),
                    ],
                    options: vec!["ndots:5".into()],
                })
            }
            "None" => spec.dns_config.as_ref().map(|c| DnsConfig {
                servers: c.nameservers.clone().unwrap_or_default(),
                searches: c.searches.clone().unwrap_or_default(),
                options: c
                    .options
                    .iter()
                    .flatten()
                    .map(|o| match &o.value {
                        Some(v) => format!("{}:{v}", o.name.clone().unwrap_or_default()),
                        None => o.name.clone().unwrap_or_default(),
                    })
                    .collect(),
            }),
            _ => None,
        };
        let port_mappings = spec
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .filter_map(|p| {
                let host_port = p.host_port.filter(|h| *h > 0)?;
                Some(PortMapping {
                    protocol: match p.protocol.as_deref() {
                        Some("UDP") => Protocol::Udp,
                        Some("SCTP") => Protocol::Sctp,
                        _ => Protocol::Tcp,
                    },
                    container_port: p.container_port as u16,
                    host_port: host_port as u16,
                    host_ip: p.host_ip.as_deref().and_then(|ip| ip.parse().ok()),
                })
            })
            .collect();
        let mode = |host: Option<bool>| {
            if host.unwrap_or(false) {
                NamespaceMode::Node
            } else {
                NamespaceMode::Pod
            }
        };
        let pid = if spec.host_pid.unwrap_or(false) {
            NamespaceMode::Node
        } else if spec.share_process_namespace.unwrap_or(false) {
            NamespaceMode::Pod
        } else {
            NamespaceMode::Container
        };
        PodSandboxConfig {
            metadata: PodSandboxMetadata {
                name: name.clone(),
                namespace: namespace.clone(),
                uid: uid.clone(),
                attempt,
            },
            hostname: spec.hostname.clone().unwrap_or_else(|| name.clone()),
            log_directory: self
                .cfg
                .options
                .pod_log_dir
                .join(format!("{namespace}_{name}_{uid}")),
            dns_config,
            port_mappings,
            labels: cc::sandbox_labels(pod),
            annotations: pod.metadata.annotations.clone().unwrap_or_default(),
            cgroup_parent: Some(cc::pod_cgroup_parent(pod)),
            namespace_options: NamespaceOption {
                network: mode(spec.host_network),
                pid,
                ipc: mode(spec.host_ipc),
            },
            sysctls: spec
                .security_context
                .as_ref()
                .and_then(|s| s.sysctls.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|s| (s.name, s.value))
                .collect(),
            resources: Some(cc::pod_resources(pod)),
            runtime_handler: String::new(),
        }
    }

    /// Upstream `killPodWithSyncResult`: stop every running container
    /// (preStop, SIGTERM, SIGKILL after the grace period), then the
    /// sandboxes.
    async fn kill_pod(&self, pod: &Pod, rt: &RuntimePod, grace: i64) {
        let runtime = &self.cfg.services.runtime;
        let pod_ip = self.pod_ip(pod, rt);
        let stops = rt
            .containers
            .iter()
            .filter(|c| matches!(c.state, ContainerState::Running | ContainerState::Created))
            .map(|c| {
                let name = &c.metadata.name;
                let pod_ip = pod_ip.as_deref();
                async move {
                    if c.state == ContainerState::Running {
                        let message = format!("Stopping container {name}");
                        self.kill_container(pod, pod_ip, &c.id, name, message, grace)
                            .await;
                    } else if let Err(e) =
                        runtime.stop_container(&c.id, grace_duration(grace)).await
                    {
                        tracing::warn!(container = %c.id, error = %e, "stopping a container");
                    }
                }
            });
        futures::future::join_all(stops).await;
        // Every sandbox, ready or not: one whose pause died (a reboot)
        // still holds its IP until its network is torn down.
        for s in &rt.sandboxes {
            if let Err(e) = runtime.stop_pod_sandbox(&s.id).await {
                tracing::warn!(sandbox = %s.id, error = %e, "stopping a sandbox");
            }
        }
    }

    /// Upstream `killContainer`: the `Killing` event, the preStop hook
    /// within the grace period, then SIGTERM and SIGKILL after what is left
    /// of it.
    async fn kill_container(
        &self,
        pod: &Pod,
        pod_ip: Option<&str>,
        id: &str,
        name: &str,
        message: String,
        grace: i64,
    ) {
        self.event(pod, Some(name), false, "Killing", message);
        let mut took = 0;
        let container = hooks::container_spec(pod, name);
        let pre_stop = container.and_then(|c| c.lifecycle.as_ref()?.pre_stop.as_ref());
        if let (Some(container), Some(handler)) = (container, pre_stop.filter(|_| grace > 0)) {
            let target = hooks::Target {
                pod,
                container,
                container_id: id,
                pod_ip,
            };
            let runtime = &self.cfg.services.runtime;
            // Force deletion does not wait for the hook.
            let uid = uid_of(pod);
            let (seconds, ran) = tokio::select! {
                done = hooks::pre_stop(handler, &target, runtime, grace) => done,
                _ = self.until_pod(&uid, |p| p.is_none()) => (grace, None),
            };
            took = seconds;
            if let Some(ran) = ran {
                self.hook_fallback_event(pod, &ran);
                if let Some(msg) = ran.error {
                    tracing::info!(pod = %format_pod(pod), container = %name, error = %msg, "preStop hook failed");
                    let failed = "PreStopHook failed".to_string();
                    self.event(pod, Some(name), true, "FailedPreStopHook", failed);
                }
            }
        }
        let grace = grace_duration(hooks::remaining_grace(grace, took));
        if let Err(e) = self.cfg.services.runtime.stop_container(id, grace).await {
            tracing::warn!(container = %id, error = %e, "stopping a container");
        }
    }

    fn hook_fallback_event(&self, pod: &Pod, ran: &hooks::Ran) {
        if let Some(msg) = &ran.http_fallback {
            self.event(pod, None, true, "LifecycleHTTPFallback", msg.clone());
        }
    }

    /// Where probes and hooks reach the pod: its IP, the node's for a
    /// hostNetwork pod.
    fn pod_ip(&self, pod: &Pod, rt: &RuntimePod) -> Option<String> {
        rt.sandboxes
            .first()
            .and_then(|s| s.ips.first())
            .map(|ip| ip.to_string())
            .or_else(|| self.host_network_ip(pod))
    }

    /// Returns once `done` holds for the pod `uid` as the watch last saw
    /// it (`None`: gone from the API).
    async fn until_pod(&self, uid: &str, done: impl Fn(Option<&Pod>) -> bool) {
        loop {
            let pod = self.pods.lock().unwrap().get(uid).cloned();
            if done(pod.as_deref()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn host_network_ip(&self, pod: &Pod) -> Option<String> {
        let host_network = pod.spec.as_ref().and_then(|s| s.host_network);
        host_network
            .unwrap_or(false)
            .then(|| self.cfg.host_ip.clone())
    }

    /// Upstream's container GC for one pod: of each container's exited
    /// instances the two newest stay (the status' lastState and `kubectl
    /// logs --previous`), older ones are removed, and so are sandboxes
    /// that are neither the newest nor hold a container any more.
    async fn remove_dead(&self, rt: &RuntimePod) {
        let runtime = &self.cfg.services.runtime;
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut kept_sandboxes: HashSet<&str> = HashSet::new();
        for c in &rt.containers {
            let n = seen.entry(c.metadata.name.as_str()).or_default();
            *n += 1;
            if *n > 2 && c.state == ContainerState::Exited {
                if let Err(e) = runtime.remove_container(&c.id).await {
                    tracing::debug!(container = %c.id, error = %e, "removing a dead container");
                }
            } else {
                kept_sandboxes.insert(c.pod_sandbox_id.as_str());
            }
        }
        for s in rt.sandboxes.iter().skip(1) {
            if s.state != runtime::PodSandboxState::Ready && !kept_sandboxes.contains(s.id.as_str())
            {
                if let Err(e) = runtime.remove_pod_sandbox(&s.id).await {
                    tracing::debug!(sandbox = %s.id, error = %e, "removing a dead sandbox");
                }
            }
        }
    }

    /// Stops and removes every container and sandbox of `uid` and its
    /// volumes.
    async fn remove_all(&self, uid: &str, rt: &RuntimePod, grace: Duration) {
        let runtime = &self.cfg.services.runtime;
        let stops = rt
            .containers
            .iter()
            .filter(|c| c.state != ContainerState::Exited)
            .map(|c| runtime.stop_container(&c.id, grace));
        futures::future::join_all(stops).await;
        for c in &rt.containers {
            if let Err(e) = runtime.remove_container(&c.id).await {
                tracing::warn!(container = %c.id, error = %e, "removing a container");
            }
        }
        for s in &rt.sandboxes {
            let _ = runtime.stop_pod_sandbox(&s.id).await;
            if let Err(e) = runtime.remove_pod_sandbox(&s.id).await {
                tracing::warn!(sandbox = %s.id, error = %e, "removing a sandbox");
            }
        }
        if let Err(e) = self.cfg.services.resources.teardown_volumes(uid).await {
            tracing::warn!(pod_uid = %uid, error = %e, "tearing down the pod's volumes");
        }
        let dir = super::pod_resources::pod_dir(&self.cfg.options.root_dir, uid);
        let _ = std::fs::remove_file(dir.join("etc-hosts"));
        let _ = std::fs::remove_dir(&dir);
        if !rt.sandboxes.is_empty() || !rt.containers.is_empty() {
            tracing::info!(pod_uid = %uid, "removed the containers of a pod that is gone");
        }
    }

    /// A pod being deleted: stop its containers within the grace period,
    /// report the final status, then delete it for good.
    async fn terminate(
        self: &Arc<Self>,
        pod: &Pod,
        rt: &RuntimePod,
        state: &mut WorkerState,
    ) -> Result<Next, runtime::Error> {
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .unwrap_or_else(|| grace_period(pod));
        if !state.deleting {
            state.deleting = true;
            self.kill_pod(pod, rt, grace).await;
        }
        let rt = self.runtime_pod(&uid_of(pod)).await?;
        if rt
            .containers
            .iter()
            .any(|c| c.state == ContainerState::Running)
        {
            self.kill_pod(pod, &rt, grace).await;
            return Ok(Next::After(Duration::from_millis(500)));
        }
        state.errors.clear();
        self.write_status(pod, &rt, state, true).await;
        let name = pod.metadata.name.clone().unwrap_or_default();
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.cfg.client.clone(), &ns);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid_of(pod)),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) || is_conflict(&e) => {}
            Err(e) => tracing::warn!(pod = %format_pod(pod), error = %e, "deleting the pod"),
        }
        // The watch's Delete wakes the worker, which then removes the rest.
        Ok(Next::After(Duration::from_secs(2)))
    }

    async fn write_status(
        &self,
        pod: &Pod,
        rt: &RuntimePod,
        state: &mut WorkerState,
        terminating: bool,
    ) {
        let ctx = pod_status::Context {
            host_ip: &self.cfg.host_ip,
            runtime_name: &self.cfg.runtime_name,
            errors: &state.errors,
            readiness: &state.readiness,
            startup: &state.startup,
            terminating,
            now: Utc::now(),
        };
        let mut status = pod_status::generate(pod, rt, &ctx);
        if let Some(e) = self.evictions.lock().unwrap().get(&uid_of(pod)) {
            super::eviction::set_evicted(&mut status, &e.message, e.at, e.disruption);
        }
        if pod.status.as_ref() == Some(&status) || state.last_written.as_ref() == Some(&status) {
            return;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.cfg.client.clone(), &ns);
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match api
            .patch_status(&name, &params, &Patch::Merge(&json!({ "status": status })))
            .await
        {
            Ok(_) => state.last_written = Some(status),
            Err(e) if is_not_found(&e) => {}
            Err(e) => tracing::warn!(pod = %format_pod(pod), error = %e, "writing the pod status"),
        }
    }
}

fn grace_period(pod: &Pod) -> i64 {
    pod.spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30)
}

fn grace_duration(seconds: i64) -> Duration {
    Duration::from_secs(seconds.max(0) as u64)
}
