//! Shared informers: one watch-backed cache per resource type, shared by
//! every controller in the process (upstream's `SharedInformerFactory`).
//! A cache holds each object once, behind an `Arc`, with `managedFields`
//! stripped as upstream's informers do; controllers read it instead of the
//! API and register handlers that turn changes into work-queue keys.
//!
//! The scheduler and the simulated nodes in the same process share the
//! controllers' caches ([`Informers::with_client`]): a pod is held once, not
//! once per component, while each component writes with its own client.
//! Handlers belong to the handle they were registered through and stop when
//! every clone of it is dropped (a component that loses leadership).

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, RwLock, Weak};

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

/// An object's cache key: namespace (empty for cluster-scoped objects) and
/// name. Displays as client-go's `namespace/name` (or `name`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Key {
        Key {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    pub fn cluster(name: impl Into<String>) -> Key {
        Key::new("", name)
    }

    pub fn of<K: Resource>(obj: &K) -> Key {
        let meta = obj.meta();
        Key::new(
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        )
    }

    /// The namespace, or `None` for a cluster-scoped key.
    pub fn ns(&self) -> Option<&str> {
        (!self.namespace.is_empty()).then_some(self.namespace.as_str())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// What happened to an object, as a handler sees it.
pub enum Change<'a, K> {
    Added(&'a Arc<K>),
    Updated { old: &'a Arc<K>, new: &'a Arc<K> },
    Deleted(&'a Arc<K>),
}

impl<K> Change<'_, K> {
    /// The object as it is now (or was last seen, for a deletion).
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Added(o) | Change::Deleted(o) => o,
            Change::Updated { new, .. } => new,
        }
    }
}

type Handler<K> = Box<dyn Fn(&Change<'_, K>) + Send + Sync>;
type IndexFn<K> = Box<dyn Fn(&K) -> Vec<String> + Send + Sync>;

struct Index<K> {
    func: IndexFn<K>,
    entries: HashMap<String, HashSet<Key>>,
}

struct Cache<K> {
    objects: BTreeMap<Key, Arc<K>>,
    indexes: HashMap<&'static str, Index<K>>,
}

impl<K> Cache<K> {
    fn index_insert(&mut self, key: &Key, obj: &K) {
        for index in self.indexes.values_mut() {
            for value in (index.func)(obj) {
                index.entries.entry(value).or_default().insert(key.clone());
            }
        }
    }

    fn index_remove(&mut self, key: &Key, obj: &K) {
        for index in self.indexes.values_mut() {
            for value in (index.func)(obj) {
                if let Some(set) = index.entries.get_mut(&value) {
                    set.remove(key);
                    if set.is_empty() {
                        index.entries.remove(&value);
                    }
                }
            }
        }
    }

    fn put(&mut self, key: Key, obj: Arc<K>) -> Option<Arc<K>> {
        let old = self.objects.insert(key.clone(), obj.clone());
        if let Some(old) = &old {
            self.index_remove(&key, old);
        }
        self.index_insert(&key, &obj);
        old
    }

    fn remove(&mut self, key: &Key) -> Option<Arc<K>> {
        let old = self.objects.remove(key);
        if let Some(old) = &old {
            self.index_remove(key, old);
        }
        old
    }
}

struct Inner<K> {
    cache: RwLock<Cache<K>>,
    /// Handlers with the token of the [`Informers`] handle that registered
    /// them; a handler whose token is gone is skipped and dropped.
    handlers: RwLock<Vec<(Weak<()>, Handler<K>)>>,
    synced: watch::Sender<bool>,
}

/// The shared cache of one resource type. Cloning gives another handle to
/// the same cache.
pub struct Informer<K> {
    inner: Arc<Inner<K>>,
    owner: Weak<()>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            inner: self.inner.clone(),
            owner: self.owner.clone(),
        }
    }
}

/// What an informer's type must offer: a typed Kubernetes resource.
pub trait Object:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static
{
}
impl<K> Object for K where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static
{
}

impl<K: Object> Informer<K> {
    fn new() -> Informer<K> {
        Informer {
            inner: Arc::new(Inner {
                cache: RwLock::new(Cache {
                    objects: BTreeMap::new(),
                    indexes: HashMap::new(),
                }),
                handlers: RwLock::new(Vec::new()),
                synced: watch::channel(false).0,
            }),
            owner: Weak::new(),
        }
    }

    /// Starts the list+watch that fills the cache, on the current runtime.
    fn start(&self, api: Api<K>) -> tokio::task::AbortHandle {
        let this = self.clone();
        let task = tokio::spawn(async move {
            // A whole list at resourceVersion 0, as client-go's reflector
            // asks first: the API server answers it from its watch cache.
            // Pages (a limit) would be read from the store at the latest
            // revision, and a re-list after a watch fell behind would then
            // read every pod from disk while the cluster is busiest.
            let mut config = watcher::Config::default().any_semantic();
            config.page_size = None;
            let mut stream = watcher(api, config).default_backoff().boxed();
            let mut relist: Option<BTreeMap<Key, Arc<K>>> = None;
            while let Some(event) = stream.next().await {
                match event {
                    Ok(Event::Init) => relist = Some(BTreeMap::new()),
                    Ok(Event::InitApply(obj)) => {
                        let obj = strip(obj);
                        relist
                            .get_or_insert_with(BTreeMap::new)
                            .insert(Key::of(&obj), Arc::new(obj));
                    }
                    Ok(Event::InitDone) => {
                        this.replace(relist.take().unwrap_or_default());
                        this.inner.synced.send_replace(true);
                    }
                    Ok(Event::Apply(obj)) => this.apply(Arc::new(strip(obj))),
                    Ok(Event::Delete(obj)) => this.delete(&Key::of(&obj)),
                    Err(e) => {
                        tracing::debug!(kind = %K::kind(&()), error = %e, "watch interrupted; retrying")
                    }
                }
            }
        });
        task.abort_handle()
    }

    fn apply(&self, obj: Arc<K>) {
        let key = Key::of(obj.as_ref());
        let old = self.inner.cache.write().unwrap().put(key, obj.clone());
        match old {
            Some(old) => self.dispatch(&Change::Updated {
                old: &old,
                new: &obj,
            }),
            None => self.dispatch(&Change::Added(&obj)),
        }
    }

    fn delete(&self, key: &Key) {
        let old = self.inner.cache.write().unwrap().remove(key);
        if let Some(old) = old {
            self.dispatch(&Change::Deleted(&old));
        }
    }

    /// Swaps in a fresh listing, dispatching the differences as changes.
    fn replace(&self, fresh: BTreeMap<Key, Arc<K>>) {
        let gone: Vec<Key> = {
            let cache = self.inner.cache.read().unwrap();
            cache
                .objects
                .keys()
                .filter(|k| !fresh.contains_key(*k))
                .cloned()
                .collect()
        };
        for key in gone {
            self.delete(&key);
        }
        for (_, obj) in fresh {
            let unchanged = self
                .get(&Key::of(obj.as_ref()))
                .is_some_and(|old| old.meta().resource_version == obj.meta().resource_version);
            if !unchanged {
                self.apply(obj);
            }
        }
    }

    fn dispatch(&self, change: &Change<'_, K>) {
        let mut orphans = false;
        for (owner, handler) in self.inner.handlers.read().unwrap().iter() {
            if owner.strong_count() == 0 {
                orphans = true;
                continue;
            }
            handler(change);
        }
        if orphans {
            self.inner
                .handlers
                .write()
                .unwrap()
                .retain(|(owner, _)| owner.strong_count() > 0);
        }
    }

    /// Registers a handler for every later change. It is first called with
    /// `Added` for each object already in the cache, as client-go's
    /// `AddEventHandler` does. Handlers run on the watch task: they must be
    /// quick (enqueue keys) and must not register other handlers.
    pub fn on_change(&self, handler: impl Fn(&Change<'_, K>) + Send + Sync + 'static) {
        let mut handlers = self.inner.handlers.write().unwrap();
        let existing: Vec<Arc<K>> = self
            .inner
            .cache
            .read()
            .unwrap()
            .objects
            .values()
            .cloned()
            .collect();
        for obj in &existing {
            handler(&Change::Added(obj));
        }
        handlers.push((self.owner.clone(), Box::new(handler)));
    }

    /// Adds a named index: `func` gives the values an object is found under.
    pub fn add_index(
        &self,
        name: &'static str,
        func: impl Fn(&K) -> Vec<String> + Send + Sync + 'static,
    ) {
        let mut cache = self.inner.cache.write().unwrap();
        if cache.indexes.contains_key(name) {
            return;
        }
        let mut index = Index {
            func: Box::new(func),
            entries: HashMap::new(),
        };
        for (key, obj) in &cache.objects {
            for value in (index.func)(obj) {
                index.entries.entry(value).or_default().insert(key.clone());
            }
        }
        cache.indexes.insert(name, index);
    }

    /// The objects found under `value` in the index `name`.
    pub fn by_index(&self, name: &str, value: &str) -> Vec<Arc<K>> {
        let cache = self.inner.cache.read().unwrap();
        let Some(keys) = cache.indexes.get(name).and_then(|i| i.entries.get(value)) else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|k| cache.objects.get(k).cloned())
            .collect()
    }

    pub fn get(&self, key: &Key) -> Option<Arc<K>> {
        self.inner.cache.read().unwrap().objects.get(key).cloned()
    }

    /// Every object in the cache.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.inner
            .cache
            .read()
            .unwrap()
            .objects
            .values()
            .cloned()
            .collect()
    }

    /// The objects in one namespace.
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        let cache = self.inner.cache.read().unwrap();
        let from = Key::new(namespace, "");
        cache
            .objects
            .range(from..)
            .take_while(|(k, _)| k.namespace == namespace)
            .map(|(_, o)| o.clone())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.inner.cache.read().unwrap().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the first full listing has arrived.
    pub fn has_synced(&self) -> bool {
        *self.inner.synced.borrow()
    }

    /// Waits for the first full listing.
    pub async fn wait_synced(&self) {
        let mut rx = self.inner.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

fn strip<K: Resource>(mut obj: K) -> K {
    obj.meta_mut().managed_fields = None;
    obj
}

/// The process-wide set of informers, one per resource type, created and
/// started on first use. Their watches stop when the last handle is dropped.
#[derive(Clone)]
pub struct Informers {
    /// This handle's client: the component's identity for its writes.
    client: Client,
    shared: Arc<Shared>,
    /// Handlers registered through this handle (and its clones) live as
    /// long as this token.
    owner: Arc<()>,
}

/// The caches and their watches, shared by every handle.
struct Shared {
    /// The client the watches use.
    client: Client,
    by_type: Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
    watches: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        for task in self.watches.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Informers {
    pub fn new(client: Client) -> Informers {
        Informers {
            shared: Arc::new(Shared {
                client: client.clone(),
                by_type: Mutex::new(HashMap::new()),
                watches: Mutex::new(Vec::new()),
            }),
            client,
            owner: Arc::new(()),
        }
    }

    /// Another handle on the same caches, for a component that writes with
    /// `client`. Handlers registered through it stop when it (and every
    /// clone of it) is dropped; the caches live while any handle does.
    pub fn with_client(&self, client: Client) -> Informers {
        Informers {
            client,
            shared: self.shared.clone(),
            owner: Arc::new(()),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The informer of `K` across all namespaces, started if it was not.
    pub fn get<K>(&self) -> Informer<K>
    where
        K: Object,
    {
        let mut by_type = self.shared.by_type.lock().unwrap();
        let informer = match by_type
            .get(&TypeId::of::<K>())
            .and_then(|existing| existing.downcast_ref::<Informer<K>>())
        {
            Some(informer) => informer.clone(),
            None => {
                let informer = Informer::<K>::new();
                let task = informer.start(Api::<K>::all(self.shared.client.clone()));
                self.shared.watches.lock().unwrap().push(task);
                by_type.insert(TypeId::of::<K>(), Box::new(informer.clone()));
                informer
            }
        };
        Informer {
            inner: informer.inner,
            owner: Arc::downgrade(&self.owner),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn configmap(name: &str) -> Arc<ConfigMap> {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cm.metadata.namespace = Some("default".into());
        Arc::new(cm)
    }

    #[test]
    fn handlers_stop_when_the_handle_that_registered_them_is_dropped() {
        let cache = Informer::<ConfigMap>::new();
        let kept = Arc::new(());
        let dropped = Arc::new(());
        let handle = |owner: &Arc<()>| Informer {
            inner: cache.inner.clone(),
            owner: Arc::downgrade(owner),
        };
        let (seen_kept, seen_dropped) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let s = seen_kept.clone();
        handle(&kept).on_change(move |_| {
            s.fetch_add(1, Ordering::SeqCst);
        });
        let s = seen_dropped.clone();
        handle(&dropped).on_change(move |_| {
            s.fetch_add(1, Ordering::SeqCst);
        });
        cache.apply(configmap("a"));
        assert_eq!(
            (
                seen_kept.load(Ordering::SeqCst),
                seen_dropped.load(Ordering::SeqCst)
            ),
            (1, 1)
        );
        drop(dropped);
        cache.apply(configmap("b"));
        assert_eq!(
            (
                seen_kept.load(Ordering::SeqCst),
                seen_dropped.load(Ordering::SeqCst)
            ),
            (2, 1)
        );
        assert_eq!(cache.inner.handlers.read().unwrap().len(), 1);
        assert_eq!(cache.len(), 2);
    }
}
