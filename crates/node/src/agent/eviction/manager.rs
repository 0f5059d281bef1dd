//! The eviction manager's loop (upstream `managerImpl.synchronize`): every
//! monitoring interval it measures the signals, updates the node's
//! pressure conditions, then fails pods that break their local storage
//! limits, else, when a hard threshold is crossed or a soft one has been
//! for its grace period, records `EvictionThresholdMet` on the node and
//! fails the one pod ranked first for the starved resource: at once for a
//! hard threshold, within `--eviction-max-pod-grace-period` for a soft one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Pod;
use runtime::{ContainerState, RuntimeService};
use tokio::sync::Notify;

use super::super::container_config as cc;
use super::super::images::ImageService;
use super::super::workers::Pods;
use super::{
    eviction_grace_period, is_critical, local_storage_violation, rank, signals, thresholds_met,
    Config, ContainerUsage, PodUsage, Pressure, PressureTracker, Stats, ThresholdTracker,
};

/// The pressure the manager last decided, read by the node status loop.
#[derive(Clone, Default)]
pub struct PressureState {
    pressure: Arc<Mutex<Pressure>>,
    /// Wakes the node status loop when the pressure changed.
    pub changed: Arc<Notify>,
}

impl PressureState {
    pub fn get(&self) -> Pressure {
        *self.pressure.lock().unwrap()
    }

    fn set(&self, p: Pressure) {
        let before = std::mem::replace(&mut *self.pressure.lock().unwrap(), p);
        if before != p {
            tracing::info!(
                memory = p.memory,
                disk = p.disk,
                pid = p.pid,
                "node pressure changed"
            );
            self.changed.notify_one();
        }
    }
}

pub struct Manager {
    pub config: Config,
    pub runtime: Arc<dyn RuntimeService>,
    pub pods: Arc<Pods>,
    pub state: PressureState,
    /// The agent's root directory (nodefs; pods' emptyDirs under `pods/`).
    pub root_dir: PathBuf,
    /// The image store's directory (imagefs).
    pub image_dir: PathBuf,
    pub pod_log_dir: PathBuf,
    pub memory_capacity: i64,
    /// Unused images are deleted before pods are evicted for disk.
    pub images: Arc<dyn ImageService>,
    /// Records `EvictionThresholdMet` on the node.
    pub recorder: controllers::events::Recorder,
    pub node_name: String,
}

impl Manager {
    pub async fn run(self) {
        self.pods.set_pressure(self.state.clone());
        let mut state = SyncState::default();
        loop {
            tokio::time::sleep(self.config.monitoring_interval).await;
            self.synchronize(&mut state).await;
        }
    }

    async fn observe(&self) -> Option<super::Observations> {
        let (root, images, capacity) = (
            self.root_dir.clone(),
            self.image_dir.clone(),
            self.memory_capacity,
        );
        tokio::task::spawn_blocking(move || signals::observe(&root, &images, capacity))
            .await
            .ok()
    }

    /// Upstream `reclaimNodeLevelResources` for disk: deletes the images no
    /// container uses (on one filesystem for pods and images, for any disk
    /// signal; on a dedicated image filesystem, for its signals only);
    /// true if no threshold is crossed afterwards.
    async fn reclaim_disk(
        &self,
        signal: super::Signal,
        first_seen: &mut HashMap<String, std::time::Instant>,
    ) -> bool {
        use std::os::unix::fs::MetadataExt;
        let dev = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.dev()).ok();
        let dedicated = dev(&self.image_dir) != dev(&self.root_dir);
        let imagefs = matches!(
            signal,
            super::Signal::ImageFsAvailable | super::Signal::ImageFsInodesFree
        );
        if dedicated && !imagefs {
            return false;
        }
        let (Ok(images), Ok(containers)) = (
            self.images.list().await,
            self.runtime.list_containers().await,
        ) else {
            return false;
        };
        let names: Vec<&str> = containers
            .iter()
            .flat_map(|c| [c.image.as_str(), c.image_ref.as_str()])
            .collect();
        let now = std::time::Instant::now();
        first_seen.retain(|id, _| images.iter().any(|i| i.id == *id));
        for i in &images {
            first_seen.entry(i.id.clone()).or_insert(now);
        }
        let unused = super::unused_images(&images, &names);
        let old_enough = |id: &str| {
            first_seen
                .get(id)
                .is_some_and(|t| now.duration_since(*t) >= self.config.image_minimum_gc_age)
        };
        let unused_ids: Vec<&str> = unused
            .iter()
            .map(|i| i.id.as_str())
            .filter(|id| old_enough(id))
            .collect();
        let in_use: Vec<String> = images
            .iter()
            .filter(|i| !unused_ids.contains(&i.id.as_str()))
            .map(|i| i.id.clone())
            .collect();
        for id in unused_ids {
            match self.images.remove(id, &in_use).await {
                Ok(()) => tracing::info!(image = %id, "eviction manager: removed an unused image"),
                Err(e) => {
                    tracing::warn!(image = %id, error = %e, "eviction manager: removing an unused image")
                }
            }
        }
        match self.observe().await {
            Some(o) => thresholds_met(&self.config.thresholds, &o, true).is_empty(),
            None => false,
        }
    }

    async fn synchronize(&self, state: &mut SyncState) {
        let Some(observations) = self.observe().await else {
            return;
        };
        let now = std::time::Instant::now();
        let crossed = state
            .thresholds
            .update(&self.config.thresholds, &observations, now);
        let pressure = state.pressure.update(
            Pressure::of(&crossed.observed),
            now,
            self.config.pressure_transition_period,
        );
        self.state.set(pressure);

        let active = self.pods.active_pods();
        let stats = self.stats(&active).await;
        let mut evicted = false;
        for pod in &active {
            let Some(usage) = stats.get(uid(pod)) else {
                continue;
            };
            if let Some(message) = local_storage_violation(pod, usage) {
                evicted |= self.evict(pod, message, 0).await;
            }
        }
        if evicted {
            return;
        }
        let Some(threshold) = crossed.evicting.first() else {
            return;
        };
        let Some(observation) = observations.get(&threshold.signal) else {
            return;
        };
        self.recorder.record(
            super::super::node_ref(&self.node_name),
            controllers::events::WARNING,
            "EvictionThresholdMet",
            format!("Attempting to reclaim {}", threshold.signal.resource()),
        );
        if threshold.signal.condition() == super::Condition::Disk
            && self
                .reclaim_disk(threshold.signal, &mut state.images_first_seen)
                .await
        {
            tracing::info!(
                signal = threshold.signal.name(),
                "eviction manager: node-level resources reclaimed; no pod evicted"
            );
            return;
        }
        if active.is_empty() {
            return;
        }
        let mut ranked: Vec<&Pod> = active.iter().map(|p| &**p).collect();
        rank(&mut ranked, threshold.signal, &stats);
        for pod in ranked {
            let message = super::eviction_message(pod, threshold, observation, &stats);
            let grace = eviction_grace_period(threshold, pod, self.config.max_pod_grace_period);
            if self.evict(pod, message, grace).await {
                // One pod per interval: the next measure says whether
                // more must go.
                return;
            }
        }
        tracing::info!(
            signal = threshold.signal.name(),
            "eviction manager: unable to evict any pods from the node"
        );
    }

    /// Upstream `evictPod`: never a critical pod; the `Evicted` event, then
    /// the pod's worker kills it within `grace` seconds and reports it
    /// Failed.
    async fn evict(&self, pod: &Pod, message: String, grace: i64) -> bool {
        if is_critical(pod) {
            tracing::error!(pod = %pod.metadata.name.as_deref().unwrap_or_default(), "eviction manager: cannot evict a critical pod");
            return false;
        }
        tracing::info!(pod = %pod.metadata.name.as_deref().unwrap_or_default(), %message, "evicting pod");
        self.pods.evict(pod, message, grace);
        true
    }

    /// Memory and disk use of the active pods' containers and emptyDirs.
    async fn stats(&self, active: &[Arc<Pod>]) -> Stats {
        let mut out: Stats = HashMap::new();
        let containers = match self.runtime.list_containers().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "eviction manager: listing containers");
                return out;
            }
        };
        for pod in active {
            let uid = uid(pod).to_string();
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let log_dir = self.pod_log_dir.join(format!("{ns}_{name}_{uid}"));
            let mut usage = PodUsage::default();
            let mut mine: Vec<_> = containers
                .iter()
                .filter(|c| c.labels.get(cc::LABEL_POD_UID) == Some(&uid))
                .collect();
            // The running instance of each container, else its newest.
            mine.sort_by_key(|c| {
                (
                    c.state != ContainerState::Running,
                    std::cmp::Reverse(c.created_at),
                )
            });
            for c in mine {
                let cname = c.metadata.name.clone();
                if usage.containers.iter().any(|u| u.name == cname) {
                    continue;
                }
                let s = self.runtime.container_stats(&c.id).await.ok();
                let dir = log_dir.join(&cname);
                let logs =
                    tokio::task::spawn_blocking(move || runtime::disk_usage::disk_usage(&dir).0)
                        .await
                        .ok();
                usage.containers.push(ContainerUsage {
                    name: cname,
                    memory_working_set: s
                        .as_ref()
                        .filter(|_| c.state == ContainerState::Running)
                        .and_then(|s| s.memory_working_set_bytes),
                    rootfs: s.as_ref().and_then(|s| s.writable_layer_used_bytes),
                    logs,
                });
            }
            let volumes = pod.spec.as_ref().and_then(|s| s.volumes.clone());
            for v in volumes.iter().flatten() {
                let Some(e) = &v.empty_dir else {
                    continue;
                };
                if e.medium.as_deref() == Some("Memory") {
                    continue;
                }
                let dir = crate::volumes::volume_dir(
                    &self.root_dir.join("pods"),
                    &uid,
                    crate::volumes::EMPTY_DIR_PLUGIN,
                    &v.name,
                );
                let used =
                    tokio::task::spawn_blocking(move || runtime::disk_usage::disk_usage(&dir).0)
                        .await
                        .unwrap_or(0);
                usage.volumes.insert(v.name.clone(), used);
            }
            out.insert(uid, usage);
        }
        out
    }
}

/// What the manager keeps from one sync to the next.
#[derive(Default)]
struct SyncState {
    thresholds: ThresholdTracker,
    pressure: PressureTracker,
    /// When each image was first seen, for `--image-minimum-gc-age`.
    images_first_seen: HashMap<String, std::time::Instant>,
}

fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}
