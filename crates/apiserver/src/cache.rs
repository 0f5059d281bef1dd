//! The watch cache: one watch on the whole registry, every object encoded
//! once and shared, lists served from memory and watches fanned out from
//! memory (upstream's cacher). Objects are kept as their JSON encoding and
//! a small filter index, not as decoded trees: a decoded pod takes about
//! ten times the memory of its encoding. A list is served only once the cache has
//! caught up with the store's current revision, so reads stay consistent.
//! Watches that start before the cache's window of recent events fall back
//! to the store.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use store::{EventKind, KeyValue, LeaseId, RangeRequest, Revision, Store, StoreError};
use tokio::sync::{mpsc, Notify};

use crate::filter::Index;
use crate::registry::set_resource_version;

/// Everything the API server stores lives under this prefix.
pub const ROOT: &str = "/registry/";
/// Recent events kept for watches that resume from a past revision.
const WINDOW: usize = 10_000;
/// Undelivered events a watcher may have before it is cut off. A cut
/// watcher lists everything again, which costs a busy server more than the
/// backlog: at 10,000, the in-process pod informer was cut and re-listed
/// 20,000 pods during `krate bench cluster` on 5,000 nodes (binding
/// 1,000-1,200 pods/s; 1,250-1,390 without the re-list). Events are shared
/// between watchers, so the backlogs of many slow watchers cost little more
/// than the longest one's.
const WATCHER_BUFFER: usize = 100_000;
/// How long a list waits for the cache to catch up before going to the store.
const FRESHNESS_WAIT: Duration = Duration::from_secs(3);

/// An object as the cache keeps it: its JSON encoding (with its resource
/// version), which lists and watch events send as they are, and the small
/// index filters read. The decoded form is kept only for the kinds read on
/// every request (RBAC); everything else is decoded when a caller asks.
#[derive(Debug)]
pub struct Cached {
    pub bytes: Bytes,
    pub index: Index,
    /// The revision of the store write that made this object, and the
    /// store lease it is attached to.
    pub revision: Revision,
    pub lease: LeaseId,
    value: Option<Arc<Value>>,
}

/// Kinds whose decoded objects stay in the cache: the authorizer reads
/// every role and binding on each request, and admission the priority
/// classes, limit ranges and quotas on each pod create.
fn keep_decoded(group: &str, resource: &str) -> bool {
    matches!(
        (group, resource),
        ("rbac.authorization.k8s.io", _)
            | ("scheduling.k8s.io", "priorityclasses")
            | ("", "limitranges" | "resourcequotas")
    )
}

/// The JSON encoding of an object, in an allocation of its size (the
/// encoder's buffer grows by doubling).
fn encode(obj: &Value) -> Option<Bytes> {
    let mut bytes = serde_json::to_vec(obj).ok()?;
    bytes.shrink_to_fit();
    Some(Bytes::from(bytes))
}

/// The group and resource of a storage key (`/registry/<group>/<resource>/...`).
fn group_resource(key: &[u8]) -> (&str, &str) {
    let rest = key.strip_prefix(ROOT.as_bytes()).unwrap_or(key);
    let rest = std::str::from_utf8(rest).unwrap_or("");
    let mut parts = rest.splitn(3, '/');
    let group = parts.next().unwrap_or("");
    let resource = parts.next().unwrap_or("");
    (if group == "core" { "" } else { group }, resource)
}

impl Cached {
    /// The cached form of a stored key-value. The encoding gets its
    /// resource version spliced in and the index is read from it, without
    /// decoding the object, unless the kind stays decoded or the encoding
    /// is unusual.
    fn decode(kv: &KeyValue) -> Option<Arc<Cached>> {
        let (group, resource) = group_resource(&kv.key);
        if !keep_decoded(group, resource) {
            let scanned = crate::scan::members(&kv.value).and_then(|top| {
                let bytes = crate::scan::with_resource_version(&kv.value, &top, kv.mod_revision)?;
                Some((bytes, Index::from_members(group, resource, &top)?))
            });
            if let Some((bytes, index)) = scanned {
                return Some(Arc::new(Cached {
                    bytes: Bytes::from(bytes),
                    index,
                    revision: kv.mod_revision,
                    lease: kv.lease,
                    value: None,
                }));
            }
        }
        let mut obj: Value = serde_json::from_slice(&kv.value).ok()?;
        set_resource_version(&mut obj, kv.mod_revision);
        let index = Index::of(group, resource, &obj);
        let bytes = encode(&obj)?;
        let value = keep_decoded(group, resource).then(|| Arc::new(obj));
        Some(Arc::new(Cached {
            bytes,
            index,
            revision: kv.mod_revision,
            lease: kv.lease,
            value,
        }))
    }

    /// The object, decoded.
    pub fn value(&self) -> Value {
        match &self.value {
            Some(v) => (**v).clone(),
            None => serde_json::from_slice(&self.bytes).unwrap_or(Value::Null),
        }
    }
}

/// One change as every watcher sees it: objects encoded once, with their
/// resource versions set.
#[derive(Debug)]
pub struct CacheEvent {
    pub kind: EventKind,
    pub key: Bytes,
    pub revision: Revision,
    /// The object after the change (puts).
    pub object: Option<Arc<Cached>>,
    /// The object before the change (updates and deletes).
    pub prev: Option<Arc<Cached>>,
    deleted: std::sync::OnceLock<Option<Bytes>>,
}

impl CacheEvent {
    fn new(
        kind: EventKind,
        key: Bytes,
        revision: Revision,
        object: Option<Arc<Cached>>,
        prev: Option<Arc<Cached>>,
    ) -> CacheEvent {
        CacheEvent {
            kind,
            key,
            revision,
            object,
            prev,
            deleted: Default::default(),
        }
    }

    /// The object after the change as JSON, encoded once for every watcher.
    pub fn object_bytes(&self) -> Option<Bytes> {
        self.object.as_ref().map(|o| o.bytes.clone())
    }

    /// A deleted object as watchers see it: its last state, at the
    /// revision of the deletion; encoded once.
    pub fn deleted_object(&self) -> Option<Bytes> {
        self.deleted
            .get_or_init(|| {
                let mut obj = self.prev.as_ref()?.value();
                set_resource_version(&mut obj, self.revision);
                encode(&obj)
            })
            .clone()
    }
}

/// What a cache watcher receives.
#[derive(Debug, Clone)]
pub enum CacheItem {
    Event(Arc<CacheEvent>),
    /// The watch cannot go on (fell behind, or the cache restarted):
    /// clients must re-list.
    Expired,
}

struct Watcher {
    prefix: Vec<u8>,
    tx: mpsc::Sender<CacheItem>,
}

#[derive(Default)]
struct State {
    revision: Revision,
    objects: BTreeMap<Bytes, Arc<Cached>>,
    events: VecDeque<Arc<CacheEvent>>,
    watchers: Vec<Watcher>,
}

pub struct WatchCache {
    store: Arc<dyn Store>,
    state: RwLock<State>,
    ready: AtomicBool,
    progressed: Notify,
}

impl WatchCache {
    /// Starts filling the cache from `store` in the background.
    pub fn start(store: Arc<dyn Store>) -> Arc<WatchCache> {
        let cache = Arc::new(WatchCache {
            store,
            state: RwLock::new(State::default()),
            ready: AtomicBool::new(false),
            progressed: Notify::new(),
        });
        let me = cache.clone();
        tokio::spawn(async move { me.run().await });
        cache
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    async fn run(self: Arc<Self>) {
        loop {
            match self.load().await {
                Ok(rev) => {
                    if let Err(e) = self.follow(rev).await {
                        tracing::warn!(error = %e, "watch cache lost its watch; reloading");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "loading the watch cache failed; retrying"),
            }
            self.ready.store(false, Ordering::Release);
            // Every watcher may have missed events: they must re-list.
            let watchers = std::mem::take(&mut self.write().watchers);
            for w in watchers {
                let _ = w.tx.try_send(CacheItem::Expired);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Reads every object at one revision, page by page.
    async fn load(&self) -> Result<Revision, StoreError> {
        let mut objects = BTreeMap::new();
        let mut req = RangeRequest {
            prefix: ROOT.as_bytes().to_vec(),
            limit: 2000,
            ..Default::default()
        };
        loop {
            let resp = self.store.range(req.clone()).await?;
            req.revision = resp.revision;
            for kv in &resp.kvs {
                if let Some(obj) = Cached::decode(kv) {
                    objects.insert(kv.key.clone(), obj);
                }
            }
            match (resp.more, resp.kvs.last()) {
                (true, Some(last)) => req.start = Some(store::keys::next_key(&last.key)),
                _ => break,
            }
        }
        let rev = req.revision;
        {
            let mut st = self.write();
            st.objects = objects;
            st.revision = rev;
            st.events.clear();
        }
        self.ready.store(true, Ordering::Release);
        self.progressed.notify_waiters();
        Ok(rev)
    }

    async fn follow(&self, from: Revision) -> Result<(), StoreError> {
        let mut events = self.store.watch(ROOT.as_bytes(), from).await?;
        while let Some(ev) = events.next().await {
            let ev = ev?;
            let rev = ev.revision();
            let object = match ev.kind {
                EventKind::Put => Cached::decode(&ev.kv),
                EventKind::Delete => None,
            };
            let mut st = self.write();
            let prev_cached = match &object {
                Some(o) => st.objects.insert(ev.kv.key.clone(), o.clone()),
                None => st.objects.remove(&ev.kv.key),
            };
            // The previous object as watchers saw it (at its own revision)
            // is the one the cache held; the store's copy only if the cache
            // had none.
            let prev = prev_cached.or_else(|| Cached::decode(ev.prev.as_ref()?));
            let cached = Arc::new(CacheEvent::new(
                ev.kind,
                ev.kv.key.clone(),
                rev,
                object,
                prev,
            ));
            st.revision = rev;
            st.events.push_back(cached.clone());
            while st.events.len() > WINDOW {
                st.events.pop_front();
            }
            st.watchers.retain(|w| {
                if w.tx.is_closed() {
                    return false;
                }
                if !cached.key.starts_with(&w.prefix) {
                    return true;
                }
                match w.tx.try_send(CacheItem::Event(cached.clone())) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        // Cut off rather than block or drop silently; the
                        // receiver learns it when its channel closes.
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
            drop(st);
            self.progressed.notify_waiters();
        }
        Err(StoreError::Closed)
    }

    /// Waits until the cache has seen the store's current revision.
    async fn wait_fresh(&self) -> bool {
        if !self.is_ready() {
            return false;
        }
        let Ok(target) = self.store.current_revision().await else {
            return false;
        };
        let deadline = tokio::time::Instant::now() + FRESHNESS_WAIT;
        loop {
            let notified = self.progressed.notified();
            if self.read().revision >= target && self.is_ready() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// The objects under `prefix` and the revision they are at, once the
    /// cache is fresh; `None` to read from the store instead.
    pub async fn list(&self, prefix: &str) -> Option<(Vec<Arc<Cached>>, Revision)> {
        if !self.wait_fresh().await {
            return None;
        }
        let st = self.read();
        let items = st
            .objects
            .range(Bytes::copy_from_slice(prefix.as_bytes())..)
            .take_while(|(k, _)| k.starts_with(prefix.as_bytes()))
            .map(|(_, v)| v.clone())
            .collect();
        Some((items, st.revision))
    }

    /// A watch of `prefix` from `from`: the buffered events after it, then
    /// live ones. `None` when `from` is older than the cache's window (the
    /// caller watches the store instead).
    pub fn watch(
        &self,
        prefix: &str,
        from: Revision,
    ) -> Option<(Vec<Arc<CacheEvent>>, mpsc::Receiver<CacheItem>)> {
        if !self.is_ready() {
            return None;
        }
        let mut st = self.write();
        if from > st.revision {
            return None;
        }
        let oldest = st
            .events
            .front()
            .map(|e| e.revision)
            .unwrap_or(st.revision + 1);
        // Events after `from` must all be in the window.
        if from + 1 < oldest && from < st.revision {
            return None;
        }
        let backlog: Vec<Arc<CacheEvent>> = st
            .events
            .iter()
            .filter(|e| e.revision > from && e.key.starts_with(prefix.as_bytes()))
            .cloned()
            .collect();
        let (tx, rx) = mpsc::channel(WATCHER_BUFFER);
        st.watchers.push(Watcher {
            prefix: prefix.as_bytes().to_vec(),
            tx,
        });
        Some((backlog, rx))
    }

    /// The object stored under `key` as the cache last saw it (it may be
    /// behind the store), or `None` when the cache does not hold it or is
    /// not loaded. Writers use it as upstream's `cachedExistingObject`: a
    /// first guess, confirmed by the store's revision check.
    pub fn get(&self, key: &[u8]) -> Option<Arc<Cached>> {
        if !self.is_ready() {
            return None;
        }
        self.read().objects.get(key).cloned()
    }

    pub fn watcher_count(&self) -> usize {
        self.read().watchers.len()
    }
}
