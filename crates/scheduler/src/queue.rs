//! The scheduling queue, as upstream's `PriorityQueue`: pods waiting to be
//! tried (highest priority first, then oldest), pods backing off after a
//! failed attempt (1 s doubling to 10 s), and pods found unschedulable,
//! which wait for a cluster change that may help them (or five minutes).
//! No IO and no clock of its own: callers pass `now`.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;

use crate::snapshot::PodKey;

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Unschedulable pods are retried at least this often
/// (`podMaxInUnschedulablePodsDuration`).
pub const MAX_UNSCHEDULABLE_DURATION: Duration = Duration::from_secs(300);

#[derive(Clone, Debug)]
pub struct QueuedPod {
    pub pod: Arc<Pod>,
    pub key: PodKey,
    /// Scheduling attempts so far.
    pub attempts: u32,
    /// When the pod last failed (back-off counts from here).
    pub failed_at: Option<Instant>,
    /// The plugins that last rejected it.
    pub plugins: Vec<&'static str>,
}

impl QueuedPod {
    fn priority(&self) -> i32 {
        self.pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
    }

    fn backoff_expiry(&self) -> Option<Instant> {
        let failed = self.failed_at?;
        let exp = self.attempts.saturating_sub(1).min(10);
        let d = INITIAL_BACKOFF.saturating_mul(1 << exp).min(MAX_BACKOFF);
        Some(failed + d)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Active(u64),
    Backoff(Instant),
    Unschedulable(Instant),
}

struct InFlight {
    /// The move counter when the pod was popped.
    moves_at_pop: u64,
    latest: Option<Arc<Pod>>,
    deleted: bool,
}

#[derive(Default)]
pub struct SchedulingQueue {
    entries: HashMap<PodKey, (QueuedPod, Place)>,
    active: BTreeSet<(Reverse<i32>, u64, PodKey)>,
    backoff: BTreeSet<(Instant, PodKey)>,
    in_flight: HashMap<PodKey, (QueuedPod, InFlight)>,
    /// The keys of the pods waiting as unschedulable, so cluster events
    /// look at those only.
    waiting: std::collections::HashSet<PodKey>,
    seq: u64,
    /// Bumped by every cluster change that may help unschedulable pods; a
    /// pod that fails while one happened goes to back-off, not to wait.
    moves: u64,
}

/// Whether a pod update matters to scheduling: anything but status and
/// bookkeeping metadata (upstream's `isPodUpdated`).
fn pod_changed(old: &Pod, new: &Pod) -> bool {
    old.spec != new.spec
        || old.metadata.labels != new.metadata.labels
        || old.metadata.annotations != new.metadata.annotations
        || old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
}

impl SchedulingQueue {
    pub fn new() -> SchedulingQueue {
        SchedulingQueue::default()
    }

    /// Pods waiting in any sub-queue, and being scheduled.
    pub fn len(&self) -> usize {
        self.entries.len() + self.in_flight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    pub fn contains(&self, key: &PodKey) -> bool {
        self.entries.contains_key(key) || self.in_flight.contains_key(key)
    }

    fn place(&mut self, qp: QueuedPod, place: Place) {
        let key = qp.key.clone();
        match place {
            Place::Active(seq) => {
                self.active
                    .insert((Reverse(qp.priority()), seq, key.clone()));
            }
            Place::Backoff(at) => {
                self.backoff.insert((at, key.clone()));
            }
            Place::Unschedulable(_) => {
                self.waiting.insert(key.clone());
            }
        }
        self.entries.insert(key, (qp, place));
    }

    fn take(&mut self, key: &PodKey) -> Option<QueuedPod> {
        let (qp, place) = self.entries.remove(key)?;
        match place {
            Place::Active(seq) => {
                self.active
                    .remove(&(Reverse(qp.priority()), seq, key.clone()));
            }
            Place::Backoff(at) => {
                self.backoff.remove(&(at, key.clone()));
            }
            Place::Unschedulable(_) => {
                self.waiting.remove(key);
            }
        }
        Some(qp)
    }

    fn activate(&mut self, qp: QueuedPod) {
        self.seq += 1;
        let seq = self.seq;
        self.place(qp, Place::Active(seq));
    }

    /// Active, or back-off if the pod's back-off has not expired.
    fn requeue(&mut self, qp: QueuedPod, now: Instant) {
        match qp.backoff_expiry() {
            Some(at) if at > now => self.place(qp, Place::Backoff(at)),
            _ => self.activate(qp),
        }
    }

    /// A pending pod was added or changed.
    pub fn upsert(&mut self, pod: Arc<Pod>, now: Instant) {
        let key = PodKey::of(&pod);
        if let Some((_, flight)) = self.in_flight.get_mut(&key) {
            flight.latest = Some(pod);
            return;
        }
        let place = self.entries.get(&key).map(|e| e.1);
        match self.take(&key) {
            None => {
                let qp = QueuedPod {
                    pod,
                    key,
                    attempts: 0,
                    failed_at: None,
                    plugins: Vec::new(),
                };
                self.activate(qp);
            }
            Some(mut qp) => {
                let changed = pod_changed(&qp.pod, &pod);
                let priority_changed =
                    qp.priority() != pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
                qp.pod = pod;
                match place {
                    // An unschedulable pod whose spec changed may fit now.
                    Some(Place::Unschedulable(_)) if changed => self.requeue(qp, now),
                    Some(Place::Active(seq)) if !priority_changed => {
                        self.place(qp, Place::Active(seq))
                    }
                    Some(Place::Active(_)) => self.activate(qp),
                    Some(other) => self.place(qp, other),
                    None => self.activate(qp),
                }
            }
        }
    }

    /// A pending pod was deleted or got bound.
    pub fn remove(&mut self, key: &PodKey) {
        if let Some((_, flight)) = self.in_flight.get_mut(key) {
            flight.deleted = true;
        }
        self.take(key);
    }

    /// The next pod to try, if one is ready.
    pub fn pop(&mut self) -> Option<QueuedPod> {
        let first = self.active.iter().next().cloned()?;
        let mut qp = self.take(&first.2)?;
        qp.attempts += 1;
        self.in_flight.insert(
            qp.key.clone(),
            (
                qp.clone(),
                InFlight {
                    moves_at_pop: self.moves,
                    latest: None,
                    deleted: false,
                },
            ),
        );
        Some(qp)
    }

    /// The pod was bound (or handed to the binder).
    pub fn done(&mut self, key: &PodKey) {
        self.in_flight.remove(key);
    }

    /// The pod fits nowhere: it waits for a cluster change, unless one
    /// happened while it was being scheduled (then it backs off).
    pub fn unschedulable(&mut self, key: &PodKey, plugins: Vec<&'static str>, now: Instant) {
        let Some((mut qp, flight)) = self.in_flight.remove(key) else {
            return;
        };
        if flight.deleted {
            return;
        }
        let changed = flight
            .latest
            .as_ref()
            .is_some_and(|l| pod_changed(&qp.pod, l));
        if let Some(latest) = flight.latest {
            qp.pod = latest;
        }
        qp.failed_at = Some(now);
        qp.plugins = plugins;
        if changed || self.moves != flight.moves_at_pop {
            let at = qp.backoff_expiry().unwrap_or(now);
            self.place(qp, Place::Backoff(at));
        } else {
            self.place(qp, Place::Unschedulable(now));
        }
    }

    /// The attempt failed for another reason (an API error): back off.
    pub fn error(&mut self, key: &PodKey, now: Instant) {
        let Some((mut qp, flight)) = self.in_flight.remove(key) else {
            return;
        };
        if flight.deleted {
            return;
        }
        if let Some(latest) = flight.latest {
            qp.pod = latest;
        }
        qp.failed_at = Some(now);
        let at = qp.backoff_expiry().unwrap_or(now);
        self.place(qp, Place::Backoff(at));
    }

    /// Puts back a pod whose binding failed after it left the queue.
    pub fn retry(&mut self, pod: Arc<Pod>, attempts: u32, now: Instant) {
        let key = PodKey::of(&pod);
        if self.contains(&key) {
            return;
        }
        let qp = QueuedPod {
            pod,
            key,
            attempts,
            failed_at: Some(now),
            plugins: Vec::new(),
        };
        let at = qp.backoff_expiry().unwrap_or(now);
        self.place(qp, Place::Backoff(at));
    }

    /// A cluster change happened: unschedulable pods that one of
    /// `plugins` rejected (all of them for `None`) are tried again.
    pub fn move_unschedulable(&mut self, plugins: Option<&[&str]>, now: Instant) {
        self.moves += 1;
        if self.waiting.is_empty() {
            return;
        }
        let keys: Vec<PodKey> = self
            .waiting
            .iter()
            .filter_map(|k| self.entries.get_key_value(k))
            .filter(|(_, (qp, _))| {
                plugins.is_none_or(|ps| {
                    qp.plugins.is_empty() || qp.plugins.iter().any(|p| ps.contains(p))
                })
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            if let Some(qp) = self.take(&key) {
                self.requeue(qp, now);
            }
        }
    }

    /// Moves pods whose back-off expired to active, and pods unschedulable
    /// for too long back to active. Returns whether any became active.
    pub fn flush(&mut self, now: Instant) -> bool {
        let mut moved = false;
        while let Some((at, key)) = self.backoff.iter().next().cloned() {
            if at > now {
                break;
            }
            if let Some(qp) = self.take(&key) {
                self.activate(qp);
                moved = true;
            }
        }
        let stale: Vec<PodKey> = self
            .waiting
            .iter()
            .filter_map(|k| self.entries.get_key_value(k))
            .filter(|(_, (_, place))| {
                matches!(place, Place::Unschedulable(since) if now.duration_since(*since) >= MAX_UNSCHEDULABLE_DURATION)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            if let Some(qp) = self.take(&key) {
                self.activate(qp);
                moved = true;
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests;
