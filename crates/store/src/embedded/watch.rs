//! Push-based watch fan-out of the embedded store.
//!
//! The writer publishes each committed batch here after the commit. A
//! watcher owns a bounded channel; publishing never waits on it. A watcher
//! whose channel is full is cut off and told so ([`StoreError::WatchTooSlow`])
//! rather than silently losing events or slowing the writer.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::{Event, Revision};

struct Watcher {
    id: u64,
    prefix: Vec<u8>,
    tx: mpsc::Sender<Event>,
    too_slow: Arc<AtomicBool>,
}

struct HubState {
    /// The revision of the last batch published: every change after it will
    /// reach a watcher registered now.
    published: Revision,
    watchers: Vec<Watcher>,
}

pub(super) struct Hub {
    state: Mutex<HubState>,
    next_id: AtomicU64,
    buffer: usize,
}

/// The live half of a watch: events published after `from`.
pub(super) struct Subscription {
    pub from: Revision,
    pub rx: mpsc::Receiver<Event>,
    pub too_slow: Arc<AtomicBool>,
}

impl Hub {
    pub fn new(published: Revision, buffer: usize) -> Hub {
        Hub {
            state: Mutex::new(HubState {
                published,
                watchers: Vec::new(),
            }),
            next_id: AtomicU64::new(1),
            buffer: buffer.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        // A panic while publishing leaves the list consistent (entries are
        // only pushed or removed), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn subscribe(&self, prefix: &[u8]) -> Subscription {
        let (tx, rx) = mpsc::channel(self.buffer);
        let too_slow = Arc::new(AtomicBool::new(false));
        let mut state = self.lock();
        state.watchers.push(Watcher {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            prefix: prefix.to_vec(),
            tx,
            too_slow: too_slow.clone(),
        });
        Subscription {
            from: state.published,
            rx,
            too_slow,
        }
    }

    /// Delivers a committed batch (events in revision order) ending at
    /// `revision`.
    pub fn publish(&self, events: &[Event], revision: Revision) {
        let mut state = self.lock();
        state.published = revision;
        if events.is_empty() {
            return;
        }
        let mut dead: Vec<u64> = Vec::new();
        for w in &state.watchers {
            if w.tx.is_closed() {
                dead.push(w.id);
                continue;
            }
            for ev in events {
                if !ev.kv.key.starts_with(&w.prefix) {
                    continue;
                }
                match w.tx.try_send(ev.clone()) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        w.too_slow.store(true, Ordering::Release);
                        dead.push(w.id);
                        break;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        dead.push(w.id);
                        break;
                    }
                }
            }
        }
        if !dead.is_empty() {
            state.watchers.retain(|w| !dead.contains(&w.id));
        }
    }

    /// Ends every watch (the store is closing).
    pub fn close(&self) {
        self.lock().watchers.clear();
    }

    pub fn watcher_count(&self) -> usize {
        self.lock().watchers.len()
    }
}
