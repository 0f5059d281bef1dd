//! The kubelet's crash and image-pull back-off (upstream
//! `k8s.io/client-go/util/flowcontrol.Backoff` as the kubelet uses it):
//! per key, 10 s doubling to 5 min; an entry untouched for twice the
//! maximum (10 min) starts again from 10 s.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug)]
struct Entry {
    backoff: Duration,
    last_update: DateTime<Utc>,
}

#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(INITIAL, MAX)
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            entries: HashMap::new(),
        }
    }

    fn expired(&self, now: DateTime<Utc>, last_update: DateTime<Utc>) -> bool {
        (now - last_update).to_std().unwrap_or_default() > self.max * 2
    }

    /// The current back-off of `key` (zero when there is none).
    pub fn get(&self, key: &str) -> Duration {
        self.entries.get(key).map(|e| e.backoff).unwrap_or_default()
    }

    /// Moves `key` one step on at `now` (upstream `Next`).
    pub fn next(&mut self, key: &str, now: DateTime<Utc>) {
        let expired = self
            .entries
            .get(key)
            .is_none_or(|e| self.expired(now, e.last_update));
        let backoff = if expired {
            self.initial
        } else {
            (self.entries[key].backoff * 2).min(self.max)
        };
        self.entries.insert(
            key.to_string(),
            Entry {
                backoff,
                last_update: now,
            },
        );
    }

    /// Whether `key` is still backing off from an event at `event_time`
    /// (upstream `IsInBackOffSince`).
    pub fn in_backoff_since(
        &self,
        key: &str,
        event_time: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> bool {
        let Some(e) = self.entries.get(key) else {
            return false;
        };
        if self.expired(now, e.last_update) {
            return false;
        }
        (now - event_time).to_std().unwrap_or_default() < e.backoff
    }

    /// Whether `key` is backing off from its last step (an image pull that
    /// failed then).
    pub fn in_backoff(&self, key: &str, now: DateTime<Utc>) -> bool {
        self.entries
            .get(key)
            .is_some_and(|e| (now - e.last_update).to_std().unwrap_or_default() < e.backoff)
    }

    /// When the back-off of `key` from its last step ends.
    pub fn last_until(&self, key: &str) -> Option<DateTime<Utc>> {
        self.entries
            .get(key)
            .map(|e| e.last_update + chrono::Duration::from_std(e.backoff).unwrap_or_default())
    }

    /// When the back-off of `key` from `event_time` ends.
    pub fn until(&self, key: &str, event_time: DateTime<Utc>) -> DateTime<Utc> {
        event_time + chrono::Duration::from_std(self.get(key)).unwrap_or_default()
    }

    pub fn forget_prefix(&mut self, prefix: &str) {
        self.entries.retain(|k, _| !k.starts_with(prefix));
    }
}

/// A duration as Go's `time.Duration.String()` prints whole seconds
/// (`10s`, `1m20s`, `5m0s`).
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec}s"),
        (h, m, sec) => format!("{h}h{m}m{sec}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_to_five_minutes_and_resets_after_ten_idle_minutes() {
        let mut b = Backoff::default();
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut t = t0;
        let mut seen = Vec::new();
        for _ in 0..7 {
            b.next("k", t);
            seen.push(go_duration(b.get("k")));
            t += chrono::Duration::seconds(1);
        }
        assert_eq!(
            seen,
            ["10s", "20s", "40s", "1m20s", "2m40s", "5m0s", "5m0s"]
        );
        assert!(b.in_backoff_since("k", t, t + chrono::Duration::seconds(299)));
        assert!(!b.in_backoff_since("k", t, t + chrono::Duration::seconds(300)));
        let later = t + chrono::Duration::seconds(601);
        assert!(!b.in_backoff_since("k", later, later));
        b.next("k", later);
        assert_eq!(b.get("k"), INITIAL);
    }
}
