//! Events as upstream's legacy recorder (`record.EventRecorder`) writes
//! them, since `kubectl describe` reads core/v1 Events: named
//! `<object>.<hex unix nanos>`, in the object's namespace (`default` for
//! cluster-scoped objects), with `source.component` and
//! `reportingComponent` set to the controller's name. A repeat of the same
//! event on the same object within ten minutes bumps `count` and
//! `lastTimestamp` instead of writing a new Event. Writes happen in the
//! background: a controller never waits on its events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde_json::json;

const AGGREGATION_WINDOW: Duration = Duration::from_secs(600);

/// Remembered signatures at which expired ones start being swept (then each
/// time the map doubles), so a burst of distinct events costs amortised O(1).
const SWEEP_AT: usize = 1024;

pub const NORMAL: &str = "Normal";
pub const WARNING: &str = "Warning";

#[derive(Clone, Hash, PartialEq, Eq)]
struct Signature {
    uid: String,
    kind: String,
    name: String,
    namespace: String,
    reason: String,
    message: String,
    type_: &'static str,
}

struct Seen {
    event_name: String,
    count: i32,
    first: Time,
    at: Instant,
}

#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: &'static str,
    host: Option<String>,
    seen: Arc<Mutex<HashMap<Signature, Seen>>>,
    /// How many signatures were left after the last sweep.
    swept_len: Arc<AtomicUsize>,
}

impl Recorder {
    /// A recorder for `component` (e.g. `deployment-controller`).
    pub fn new(client: Client, component: &'static str) -> Recorder {
        Recorder {
            client,
            component,
            host: None,
            seen: Arc::default(),
            swept_len: Arc::default(),
        }
    }

    /// Sets `source.host` (the kubelet and simulated nodes name their node).
    pub fn with_host(mut self, host: impl Into<String>) -> Recorder {
        self.host = Some(host.into());
        self
    }

    pub fn normal<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reason: &str,
        message: impl Into<String>,
    ) {
        self.record(obj.object_ref(&()), NORMAL, reason, message.into());
    }

    pub fn warning<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reason: &str,
        message: impl Into<String>,
    ) {
        self.record(obj.object_ref(&()), WARNING, reason, message.into());
    }

    /// Records an event about the object `reference` points at.
    pub fn record(
        &self,
        mut reference: ObjectReference,
        type_: &'static str,
        reason: &str,
        message: String,
    ) {
        // Upstream records the reference without a field path unless one is
        // given, and keeps the resourceVersion it saw.
        reference.field_path = reference.field_path.filter(|p| !p.is_empty());
        let namespace = reference
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_string());
        let signature = Signature {
            uid: reference.uid.clone().unwrap_or_default(),
            kind: reference.kind.clone().unwrap_or_default(),
            name: reference.name.clone().unwrap_or_default(),
            namespace: namespace.clone(),
            reason: reason.to_string(),
            message: message.clone(),
            type_,
        };
        let now = Utc::now();
        let repeat = {
            let mut seen = self.seen.lock().unwrap();
            // Forget expired signatures when the map has doubled since the
            // last sweep, not on every call: a sweep is linear in its size.
            if seen.len() >= SWEEP_AT.max(2 * self.swept_len.load(Ordering::Relaxed)) {
                seen.retain(|_, s| s.at.elapsed() < AGGREGATION_WINDOW);
                self.swept_len.store(seen.len(), Ordering::Relaxed);
            }
            match seen.get_mut(&signature) {
                Some(s) => {
                    s.count += 1;
                    s.at = Instant::now();
                    Some((s.event_name.clone(), s.count, s.first.clone()))
                }
                None => {
                    let name = format!(
                        "{}.{:x}",
                        signature.name,
                        now.timestamp_nanos_opt().unwrap_or_default()
                    );
                    seen.insert(
                        signature.clone(),
                        Seen {
                            event_name: name,
                            count: 1,
                            first: Time(now),
                            at: Instant::now(),
                        },
                    );
                    None
                }
            }
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let component = self.component;
        let host = self.host.clone();
        let event_name = match &repeat {
            Some((name, ..)) => name.clone(),
            None => self.seen.lock().unwrap()[&signature].event_name.clone(),
        };
        let reason = reason.to_string();
        tokio::spawn(async move {
            if let Some((name, count, _)) = &repeat {
                let patch =
                    json!({ "count": count, "lastTimestamp": Time(now), "message": message });
                if api
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .is_ok()
                {
                    return;
                }
            }
            let event = Event {
                metadata: ObjectMeta {
                    name: Some(event_name),
                    namespace: Some(namespace),
                    ..Default::default()
                },
                involved_object: reference,
                reason: Some(reason),
                message: Some(message),
                type_: Some(type_.to_string()),
                source: Some(EventSource {
                    component: Some(component.to_string()),
                    host: host.clone(),
                }),
                first_timestamp: Some(repeat.as_ref().map(|r| r.2.clone()).unwrap_or(Time(now))),
                last_timestamp: Some(Time(now)),
                count: Some(repeat.as_ref().map(|r| r.1).unwrap_or(1)),
                event_time: None::<MicroTime>,
                reporting_component: Some(component.to_string()),
                reporting_instance: Some(host.unwrap_or_default()),
                ..Default::default()
            };
            if let Err(e) = api.create(&PostParams::default(), &event).await {
                tracing::debug!(error = %e, "writing an event");
            }
        });
    }
}
