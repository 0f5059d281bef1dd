//! Creations and deletions a controller has asked for and its informer has
//! not yet seen (upstream's `ControllerExpectations`). Until they are seen,
//! or for at most five minutes, the controller does not count pods again:
//! otherwise it would create a second batch before the first is in its cache.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::informer::Key;

const TTL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Pending {
    add: i64,
    del: i64,
    /// Pods asked to be deleted, by uid: seen once their deletion is
    /// (a deletionTimestamp or the delete event, whichever comes first).
    uids: HashSet<String>,
    since: Instant,
}

#[derive(Clone, Default)]
pub struct Expectations {
    pending: Arc<Mutex<HashMap<Key, Pending>>>,
}

impl Expectations {
    pub fn new() -> Expectations {
        Self::default()
    }

    /// Whether the controller of `key` may act on what its cache shows.
    pub fn satisfied(&self, key: &Key) -> bool {
        match self.pending.lock().unwrap().get(key) {
            None => true,
            Some(p) => (p.add <= 0 && p.del <= 0 && p.uids.is_empty()) || p.since.elapsed() > TTL,
        }
    }

    /// Records that `adds` creations and `dels` deletions are on their way.
    pub fn expect(&self, key: &Key, adds: i64, dels: i64) {
        self.pending.lock().unwrap().insert(
            key.clone(),
            Pending {
                add: adds,
                del: dels,
                uids: HashSet::new(),
                since: Instant::now(),
            },
        );
    }

    /// Records that `adds` creations and the deletion of the pods with these
    /// uids are on their way.
    pub fn expect_uids(&self, key: &Key, adds: i64, uids: impl IntoIterator<Item = String>) {
        self.pending.lock().unwrap().insert(
            key.clone(),
            Pending {
                add: adds,
                del: 0,
                uids: uids.into_iter().collect(),
                since: Instant::now(),
            },
        );
    }

    /// The deletion of the object with `uid` was seen (or failed).
    pub fn uid_deleted(&self, key: &Key, uid: &str) {
        if let Some(p) = self.pending.lock().unwrap().get_mut(key) {
            p.uids.remove(uid);
        }
    }

    /// One creation seen, or one that failed and will never be seen.
    pub fn creation_observed(&self, key: &Key) {
        if let Some(p) = self.pending.lock().unwrap().get_mut(key) {
            p.add -= 1;
        }
    }

    /// One deletion seen, or one that failed.
    pub fn deletion_observed(&self, key: &Key) {
        if let Some(p) = self.pending.lock().unwrap().get_mut(key) {
            p.del -= 1;
        }
    }

    /// Forgets `key` (its owner was deleted).
    pub fn forget(&self, key: &Key) {
        self.pending.lock().unwrap().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_are_satisfied_once_every_creation_is_observed() {
        let e = Expectations::new();
        let k = Key::new("ns", "rs");
        assert!(e.satisfied(&k));
        e.expect(&k, 2, 0);
        assert!(!e.satisfied(&k));
        e.creation_observed(&k);
        assert!(!e.satisfied(&k));
        e.creation_observed(&k);
        assert!(e.satisfied(&k));
    }
}
