//! Watch: store changes turned into Kubernetes watch events
//! (`ADDED`/`MODIFIED`/`DELETED`/`BOOKMARK`/`ERROR`), filtered by namespace
//! and selectors the way upstream filters them (an object that stops
//! matching is reported `DELETED`, one that starts matching `ADDED`).

use std::sync::Arc;

use bytes::Bytes;
use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use serde_json::{json, Value};
use store::{EventKind, Revision, StoreError};

use crate::cache::{CacheEvent, CacheItem};
pub use crate::filter::Filter;
use crate::registry::{set_resource_version, ListItem, ListOptions, Registry};
use crate::resources::ResourceInfo;
use crate::status::{from_store, ApiError, ApiResult};

#[derive(Clone, Debug, Default)]
pub struct WatchOptions {
    pub resource_version: Option<String>,
    pub allow_bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout: Option<Duration>,
}

/// One event of a watch response. Events from the watch cache carry their
/// object already encoded, shared by every watcher that receives it, and
/// are decoded only when a caller asks for the object.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchEvent {
    pub kind: &'static str,
    object: Option<Arc<Value>>,
    encoded: Option<Bytes>,
}

impl WatchEvent {
    pub fn new(kind: &'static str, object: Value) -> WatchEvent {
        WatchEvent {
            kind,
            object: Some(Arc::new(object)),
            encoded: None,
        }
    }

    /// An event whose object is already encoded as JSON.
    pub fn encoded(kind: &'static str, bytes: Bytes) -> WatchEvent {
        WatchEvent {
            kind,
            object: None,
            encoded: Some(bytes),
        }
    }

    /// The event's object.
    pub fn object(&self) -> Value {
        match (&self.object, &self.encoded) {
            (Some(o), _) => (**o).clone(),
            (None, Some(b)) => serde_json::from_slice(b).unwrap_or(Value::Null),
            (None, None) => Value::Null,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({ "type": self.kind, "object": self.object() })
    }

    /// The event as one line of a JSON watch stream.
    pub fn line(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded.as_ref().map_or(256, |b| b.len() + 32));
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(self.kind.as_bytes());
        out.extend_from_slice(b"\",\"object\":");
        match (&self.encoded, &self.object) {
            (Some(bytes), _) => out.extend_from_slice(bytes),
            (None, Some(object)) => {
                if serde_json::to_writer(&mut out, &**object).is_err() {
                    out.extend_from_slice(b"null");
                }
            }
            (None, None) => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"}\n");
        out
    }
}

fn error_event(e: ApiError) -> WatchEvent {
    WatchEvent::new("ERROR", e.to_status())
}

fn bookmark(r: &ResourceInfo, rev: Revision, initial_end: bool) -> WatchEvent {
    let mut meta = json!({ "resourceVersion": rev.to_string() });
    if initial_end {
        meta["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    WatchEvent::new(
        "BOOKMARK",
        json!({ "kind": r.kind, "apiVersion": r.api_version(), "metadata": meta }),
    )
}

/// How often a watch that allows bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(30);

/// Starts a watch. Initial state is sent as `ADDED` events when the
/// resource version is unset or "0", or when `sendInitialEvents` asks.
pub async fn watch(
    registry: &Registry,
    r: &'static ResourceInfo,
    namespace: Option<&str>,
    opts: WatchOptions,
    filter: Filter,
) -> ApiResult<BoxStream<'static, WatchEvent>> {
    let rv = match opts.resource_version.as_deref() {
        None | Some("") | Some("0") => None,
        Some(s) => Some(
            s.parse::<Revision>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {s:?}")))?,
        ),
    };
    let mut initial: Vec<WatchEvent> = Vec::new();
    let from = match rv {
        Some(from) if !opts.send_initial_events => from,
        _ => {
            let list = registry
                .list_shared(r, namespace, &ListOptions::default(), &filter)
                .await?;
            let rev = list.revision;
            initial.extend(list.items.into_iter().map(|item| match item {
                ListItem::Cached(c) => WatchEvent::encoded("ADDED", c.bytes.clone()),
                ListItem::Decoded(o) => WatchEvent::new("ADDED", o),
            }));
            if opts.send_initial_events && opts.allow_bookmarks {
                initial.push(bookmark(r, rev, true));
            }
            rev
        }
    };
    let prefix = Registry::list_prefix(r, namespace);
    let timeout = opts.timeout.unwrap_or(Duration::from_secs(30 * 60));
    if let Some((backlog, rx)) = registry.cache().and_then(|c| c.watch(&prefix, from)) {
        let state = CacheWatchState {
            r,
            backlog: backlog.into(),
            rx,
            filter,
            last_rev: from,
            bookmarks: opts.allow_bookmarks,
            done: false,
        };
        let live = futures::stream::unfold(state, next_cached).flat_map(futures::stream::iter);
        let all = futures::stream::iter(initial).chain(live);
        return Ok(take_for(all, timeout).boxed());
    }
    let stream = match registry.store().watch(prefix.as_bytes(), from).await {
        Ok(s) => s,
        Err(StoreError::Compacted { compacted, .. }) => {
            // Upstream answers an expired watch with a 200 stream holding
            // one ERROR event.
            let e = ApiError::gone(format!("too old resource version: {from} ({compacted})"));
            return Ok(futures::stream::iter(vec![error_event(e)]).boxed());
        }
        Err(e) => return Err(from_store(r, "", e)),
    };
    let state = WatchState {
        r,
        store_events: stream,
        filter,
        last_rev: from,
        bookmarks: opts.allow_bookmarks,
        done: false,
    };
    let live = futures::stream::unfold(state, next_event).flat_map(futures::stream::iter);
    let all = futures::stream::iter(initial).chain(live);
    Ok(take_for(all, timeout).boxed())
}

/// Ends a stream after `d`.
fn take_for(
    s: impl futures::Stream<Item = WatchEvent> + Send + 'static,
    d: Duration,
) -> impl futures::Stream<Item = WatchEvent> + Send {
    let deadline = tokio::time::sleep(d);
    futures::stream::unfold(
        (Box::pin(s), Box::pin(deadline)),
        |(mut s, mut deadline)| async move {
            tokio::select! {
                item = s.next() => item.map(|i| (i, (s, deadline))),
                _ = &mut deadline => None,
            }
        },
    )
}

struct WatchState {
    r: &'static ResourceInfo,
    store_events: store::WatchStream,
    filter: Filter,
    last_rev: Revision,
    bookmarks: bool,
    done: bool,
}

fn decode_object(value: &[u8], rev: Revision) -> Option<Value> {
    let mut obj: Value = serde_json::from_slice(value).ok()?;
    set_resource_version(&mut obj, rev);
    Some(obj)
}

/// The watch events (zero or more) for the next store event.
async fn next_event(mut st: WatchState) -> Option<(Vec<WatchEvent>, WatchState)> {
    if st.done {
        return None;
    }
    loop {
        let next = if st.bookmarks {
            match tokio::time::timeout(BOOKMARK_EVERY, st.store_events.next()).await {
                Ok(n) => n,
                Err(_) => return Some((vec![bookmark(st.r, st.last_rev, false)], st)),
            }
        } else {
            st.store_events.next().await
        };
        let ev = match next {
            None => return None,
            Some(Err(e)) => {
                st.done = true;
                let api = match e {
                    StoreError::Compacted {
                        requested,
                        compacted,
                    } => ApiError::gone(format!(
                        "too old resource version: {requested} ({compacted})"
                    )),
                    StoreError::WatchTooSlow => {
                        ApiError::gone("the watch fell behind; re-list and watch again")
                    }
                    other => from_store(st.r, "", other),
                };
                return Some((vec![error_event(api)], st));
            }
            Some(Ok(ev)) => ev,
        };
        let rev = ev.revision();
        st.last_rev = rev;
        let new = match ev.kind {
            EventKind::Put => decode_object(&ev.kv.value, rev),
            EventKind::Delete => None,
        };
        let old = ev.prev.as_ref().and_then(|p| decode_object(&p.value, rev));
        let new_matches = new.as_ref().is_some_and(|o| st.filter.matches(o));
        let old_matches = old.as_ref().is_some_and(|o| st.filter.matches(o));
        let out = match (ev.kind, old_matches, new_matches) {
            (EventKind::Put, true, true) => Some(("MODIFIED", new)),
            (EventKind::Put, false, true) => Some(("ADDED", new)),
            (EventKind::Put, true, false) => Some(("DELETED", new)),
            (EventKind::Delete, true, _) => Some(("DELETED", old)),
            _ => None,
        };
        if let Some((kind, Some(object))) = out {
            return Some((vec![WatchEvent::new(kind, object)], st));
        }
    }
}

struct CacheWatchState {
    r: &'static ResourceInfo,
    backlog: std::collections::VecDeque<Arc<CacheEvent>>,
    rx: tokio::sync::mpsc::Receiver<CacheItem>,
    filter: Filter,
    last_rev: Revision,
    bookmarks: bool,
    done: bool,
}

/// The watch event a change makes for a filtered watcher, if any. The
/// object is shared, not copied, and encoded once for all watchers.
fn filtered_event(ev: &CacheEvent, filter: &Filter) -> Option<WatchEvent> {
    let new_matches = ev
        .object
        .as_ref()
        .is_some_and(|o| filter.matches_index(&o.index));
    let old_matches = ev
        .prev
        .as_ref()
        .is_some_and(|o| filter.matches_index(&o.index));
    let kind = match (ev.kind, old_matches, new_matches) {
        (EventKind::Put, true, true) => "MODIFIED",
        (EventKind::Put, false, true) => "ADDED",
        (EventKind::Put, true, false) => "DELETED",
        (EventKind::Delete, true, _) => {
            return Some(WatchEvent::encoded("DELETED", ev.deleted_object()?));
        }
        _ => return None,
    };
    Some(WatchEvent::encoded(kind, ev.object_bytes()?))
}

async fn next_cached(mut st: CacheWatchState) -> Option<(Vec<WatchEvent>, CacheWatchState)> {
    if st.done {
        return None;
    }
    loop {
        let ev = match st.backlog.pop_front() {
            Some(ev) => ev,
            None => {
                let item = if st.bookmarks {
                    match tokio::time::timeout(BOOKMARK_EVERY, st.rx.recv()).await {
                        Ok(i) => i,
                        Err(_) => return Some((vec![bookmark(st.r, st.last_rev, false)], st)),
                    }
                } else {
                    st.rx.recv().await
                };
                match item {
                    Some(CacheItem::Event(ev)) => ev,
                    Some(CacheItem::Expired) | None => {
                        st.done = true;
                        let e = ApiError::gone(format!("too old resource version: {} (the watch fell behind; re-list and watch again)", st.last_rev));
                        return Some((vec![error_event(e)], st));
                    }
                }
            }
        };
        st.last_rev = ev.revision;
        if let Some(out) = filtered_event(&ev, &st.filter) {
            return Some((vec![out], st));
        }
    }
}
