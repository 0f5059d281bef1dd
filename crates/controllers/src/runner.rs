//! The worker loop: take a key, sync it, then forget it, requeue it later,
//! or back it off after an error (upstream's `processNextWorkItem`).

use std::sync::Arc;
use std::time::Duration;

use crate::informer::Key;
use crate::queue::WorkQueue;

/// What a sync asks for after it succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Done,
    /// Sync again after this long (a deadline or a minReadySeconds to wait out).
    RequeueAfter(Duration),
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// The API answered with this HTTP code.
    pub fn is_code(&self, code: u16) -> bool {
        matches!(self, Error::Kube(kube::Error::Api(s)) if s.code == code)
    }
}

/// Whether a kube call failed because the object was not found (404).
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Whether a kube call failed on a conflict or an existing object (409).
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A controller: a name (its upstream component name, e.g.
/// `replicaset-controller`, used for logs and events) and a sync of one key.
#[async_trait::async_trait]
pub trait Reconciler: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn sync(&self, key: &Key) -> Result<Action>;
}

/// A controller's start: one task in `tasks` that waits for `synced` (its
/// informers' first lists, and whatever must happen before the first sync),
/// then runs `workers` workers as [`spawn`] does until the task is aborted.
pub fn spawn_when_synced<R: Reconciler>(
    tasks: &mut tokio::task::JoinSet<()>,
    synced: impl std::future::Future<Output = ()> + Send + 'static,
    reconciler: Arc<R>,
    queue: WorkQueue<Key>,
    workers: usize,
) {
    tasks.spawn(async move {
        synced.await;
        let mut set = tokio::task::JoinSet::new();
        spawn(reconciler, queue, workers, &mut set);
        while set.join_next().await.is_some() {}
    });
}

/// Runs `workers` workers draining `queue` into `reconciler`, until the
/// returned tasks are aborted.
pub fn spawn<R: Reconciler>(
    reconciler: Arc<R>,
    queue: WorkQueue<Key>,
    workers: usize,
    tasks: &mut tokio::task::JoinSet<()>,
) {
    for _ in 0..workers.max(1) {
        let reconciler = reconciler.clone();
        let queue = queue.clone();
        tasks.spawn(async move {
            loop {
                let key = queue.get().await;
                match reconciler.sync(&key).await {
                    Ok(Action::Done) => queue.forget(&key),
                    Ok(Action::RequeueAfter(after)) => {
                        queue.forget(&key);
                        queue.add_after(key.clone(), after);
                    }
                    Err(e) => {
                        // Conflicts are the normal race with another writer:
                        // retry soon without noise.
                        if e.is_code(409) {
                            tracing::debug!(controller = reconciler.name(), %key, error = %e, "conflict; retrying");
                        } else {
                            tracing::warn!(controller = reconciler.name(), %key, error = %e, "sync failed; retrying");
                        }
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        });
    }
}
