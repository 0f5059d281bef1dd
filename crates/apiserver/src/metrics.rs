//! The resource metrics API, `metrics.k8s.io/v1beta1` (what metrics-server
//! serves in k3s and upstream clusters), built into the API server:
//! `kubectl top` and the HorizontalPodAutoscaler read it.
//!
//! A collector scrapes every Ready node's kubelet `/metrics/resource`
//! ([`text`]) every resolution (metrics-server's `--metric-resolution`,
//! 15 s) with the API server's kubelet client certificate, and keeps the
//! last two points per node and container ([`storage`]). `NodeMetrics`
//! (`nodes`, cluster-scoped) and `PodMetrics` (`pods`, namespaced) are read
//! from there in metrics-server's shape (usage `cpu` in nanocores, `memory`
//! in bytes as canonical quantities, `timestamp`, `window`), for the Nodes
//! and Pods the API holds that match the label and field selectors;
//! objects without two points yet are left out of lists and not found by
//! name.

pub mod storage;
pub mod text;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::quantity::{Format, Quantity};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http::{HeaderMap, Method};
use http_body_util::BodyExt;
use serde_json::{json, Value};

use crate::kubelet::{KubeletClient, KubeletRequest};
use crate::registry::{ListOptions, Registry};
use crate::request::{Query, ResourceRequest, Verb};
use crate::resources::ResourceInfo;
use crate::status::{ApiError, ApiResult};
use storage::{Storage, Usage};

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";
/// metrics-server's default `--metric-resolution`.
pub const DEFAULT_RESOLUTION: Duration = Duration::from_secs(15);

const GET_LIST: &[&str] = &["get", "list"];

pub static NODE_METRICS: ResourceInfo = ResourceInfo {
    group: GROUP,
    version: VERSION,
    resource: "nodes",
    singular: "",
    kind: "NodeMetrics",
    list_kind: "NodeMetricsList",
    namespaced: false,
    verbs: GET_LIST,
    short_names: &[],
    categories: &[],
    subresources: &[],
};

pub static POD_METRICS: ResourceInfo = ResourceInfo {
    group: GROUP,
    version: VERSION,
    resource: "pods",
    singular: "",
    kind: "PodMetrics",
    list_kind: "PodMetricsList",
    namespaced: true,
    verbs: GET_LIST,
    short_names: &[],
    categories: &[],
    subresources: &[],
};

/// The resources of the metrics API, in discovery order.
pub static RESOURCES: [&ResourceInfo; 2] = [&NODE_METRICS, &POD_METRICS];

/// The collected points, shared by the collector and the API.
#[derive(Default)]
pub struct Metrics {
    storage: Mutex<Storage>,
}

fn rfc3339(nanos: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(nanos).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `{"cpu": "12345678n", "memory": "1024Ki"}`
fn usage_json(u: &Usage) -> Value {
    let cpu = Quantity::new_scaled(u.cpu_nanocores.min(i64::MAX as u64) as i64, -9);
    let memory = Quantity::new(u.memory_bytes.min(i64::MAX as u64) as i64, Format::BinarySI);
    json!({ "cpu": cpu.canonical(), "memory": memory.canonical() })
}

fn window(u: &Usage) -> String {
    wire::time::format_duration(u.window)
}

/// The metadata metrics-server gives a metrics object: its Node's or Pod's
/// name, namespace and labels, created now.
fn metadata(obj: &Value, now: &str) -> Value {
    let mut meta = json!({ "name": obj.pointer("/metadata/name").cloned().unwrap_or(Value::Null) });
    if let Some(ns) = obj.pointer("/metadata/namespace") {
        meta["namespace"] = ns.clone();
    }
    meta["creationTimestamp"] = json!(now);
    if let Some(labels) = obj.pointer("/metadata/labels") {
        meta["labels"] = labels.clone();
    }
    meta
}

fn not_found(kind: &str, name: &str) -> ApiError {
    let mut e = ApiError::new(
        404,
        "NotFound",
        format!("{kind}.{GROUP} \"{name}\" not found"),
    );
    e.details = Some(json!({ "name": name, "group": GROUP, "kind": kind }));
    e
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    fn storage(&self) -> std::sync::MutexGuard<'_, Storage> {
        self.storage.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Scrapes every Ready node each `resolution`, until the task is dropped.
    pub async fn run(
        self: Arc<Self>,
        registry: Arc<Registry>,
        kubelet: Arc<KubeletClient>,
        resolution: Duration,
    ) {
        *self.storage() = Storage::new(resolution);
        let mut tick = tokio::time::interval(resolution);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let nodes = match ready_nodes(&registry).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: listing nodes failed");
                    continue;
                }
            };
            // metrics-server gives each scrape 90% of the resolution.
            let timeout = resolution.mul_f64(0.9);
            let scrapes = nodes.iter().map(|node| {
                let kubelet = kubelet.clone();
                async move {
                    let name = node
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    match tokio::time::timeout(timeout, scrape(&kubelet, node)).await {
                        Ok(Ok(batch)) => Some((name, batch)),
                        Ok(Err(e)) => {
                            tracing::debug!(node = %name, error = %e, "metrics: scraping the kubelet failed");
                            None
                        }
                        Err(_) => {
                            tracing::debug!(node = %name, "metrics: scraping the kubelet timed out");
                            None
                        }
                    }
                }
            });
            let batches: BTreeMap<String, text::Batch> = futures::future::join_all(scrapes)
                .await
                .into_iter()
                .flatten()
                .collect();
            self.storage().store(&batches);
        }
    }

    /// Answers a get or list of the metrics API, as JSON or as a Table.
    pub async fn serve(
        &self,
        registry: &Registry,
        rr: &ResourceRequest,
        query: &Query,
        accept: &str,
    ) -> ApiResult<Value> {
        if rr.subresource.is_some() {
            return Err(ApiError::path_not_found());
        }
        let r = rr.info;
        let core =
            crate::resources::lookup("", "v1", r.resource).expect("nodes and pods are served");
        let ns = rr.namespace.as_deref();
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let items: Vec<Value> = match (rr.verb, rr.name.as_deref()) {
            (Verb::Get, Some(name)) => {
                let obj = registry.get(core, ns, name).await?;
                let item = self.item(r, &obj, &now);
                let Some(item) = item else {
                    let (kind, key) = match ns {
                        Some(ns) => ("podmetrics", format!("{ns}/{name}")),
                        None => ("nodemetrics", name.to_string()),
                    };
                    return Err(not_found(kind, &key));
                };
                if !crate::table::wants_table(accept) {
                    return Ok(item);
                }
                vec![item]
            }
            (Verb::List, _) => {
                let filter = crate::filter::from_query(core, query)?;
                let list = registry
                    .list(core, ns, &ListOptions::default(), &|o| filter.matches(o))
                    .await?;
                list["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|o| self.item(r, o, &now))
                    .collect()
            }
            _ => return Err(ApiError::method_not_allowed()),
        };
        if crate::table::wants_table(accept) {
            return Ok(table(&items, r.namespaced));
        }
        Ok(json!({
            "kind": r.list_kind,
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "metadata": {},
            "items": items,
        }))
    }

    /// The metrics object of a Node or Pod, when its usage is known.
    fn item(&self, r: &ResourceInfo, obj: &Value, now: &str) -> Option<Value> {
        let name = obj.pointer("/metadata/name")?.as_str()?;
        let storage = self.storage();
        let mut item = json!({
            "kind": r.kind,
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "metadata": metadata(obj, now),
        });
        if r.namespaced {
            let ns = obj.pointer("/metadata/namespace")?.as_str()?;
            let (pod, containers) = storage.pod(ns, name)?;
            item["timestamp"] = json!(rfc3339(pod.timestamp));
            item["window"] = json!(window(&pod));
            item["containers"] = containers
                .iter()
                .map(|(c, u)| json!({ "name": c, "usage": usage_json(u) }))
                .collect();
        } else {
            let u = storage.node(name)?;
            item["timestamp"] = json!(rfc3339(u.timestamp));
            item["window"] = json!(window(&u));
            item["usage"] = usage_json(&u);
        }
        Some(item)
    }
}

/// metrics-server's Table: name, each resource summed over containers,
/// window.
fn table(items: &[Value], namespaced: bool) -> Value {
    let column = |name: &str, format: &str, description: &str| json!({ "name": name, "type": "string", "format": format, "description": description, "priority": 0 });
    let columns = vec![
        column("Name", "name", "Name of the resource"),
        column("cpu", "quantity", ""),
        column("memory", "quantity", ""),
        column("Window", "duration", ""),
    ];
    let rows = items
        .iter()
        .map(|item| {
            let mut cpu = Quantity::zero();
            let mut memory = Quantity::new(0, Format::BinarySI);
            let usages: Vec<&Value> = if namespaced {
                item["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| &c["usage"])
                    .collect()
            } else {
                vec![&item["usage"]]
            };
            for u in usages {
                if let Some(q) = u["cpu"].as_str().and_then(|q| Quantity::parse(q).ok()) {
                    cpu.add(&q);
                }
                if let Some(q) = u["memory"].as_str().and_then(|q| Quantity::parse(q).ok()) {
                    memory.add(&q);
                }
            }
            json!({
                "cells": [item["metadata"]["name"], cpu.canonical(), memory.canonical(), item["window"]],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": item["metadata"],
                },
            })
        })
        .collect();
    crate::table::table_json(columns, rows, None, None)
}

/// Nodes whose Ready condition is True.
async fn ready_nodes(registry: &Registry) -> ApiResult<Vec<Value>> {
    let nodes = crate::resources::lookup("", "v1", "nodes").expect("nodes are served");
    let list = registry
        .list(nodes, None, &ListOptions::default(), &|n| {
            n.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
        .await?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

/// One node's batch, from its kubelet's `/metrics/resource`.
async fn scrape(kubelet: &KubeletClient, node: &Value) -> Result<text::Batch, String> {
    // k3s runs metrics-server with --kubelet-use-node-status-port: a node
    // that publishes no kubelet port (a simulated node) cannot be scraped.
    let published = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .is_some_and(|p| p > 0);
    if !published {
        return Err("the node publishes no kubelet port".into());
    }
    let (host, port) = crate::kubelet::node_endpoint(node).map_err(|e| e.message)?;
    let headers = HeaderMap::new();
    let req = KubeletRequest {
        method: Method::GET,
        path_and_query: "/metrics/resource".into(),
        headers: &headers,
        body: Bytes::new(),
        upgrade: None,
    };
    let at = Utc::now().timestamp_millis();
    let resp = crate::kubelet::forward(kubelet, &host, port, req)
        .await
        .map_err(|e| e.message)?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{e:?}"))?
        .to_bytes();
    if !status.is_success() {
        return Err(format!(
            "request failed, status: {:?}",
            status.canonical_reason().unwrap_or(status.as_str())
        ));
    }
    text::decode(&String::from_utf8_lossy(&body), at).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_prints_as_metrics_server_quantities() {
        let u = Usage {
            timestamp: 1_700_000_000_123_000_000,
            window: 15_021_000_000,
            cpu_nanocores: 12_345_678,
            memory_bytes: 12_963_840,
        };
        assert_eq!(
            usage_json(&u),
            json!({ "cpu": "12345678n", "memory": "12660Ki" })
        );
        assert_eq!(window(&u), "15.021s");
        assert_eq!(rfc3339(u.timestamp), "2023-11-14T22:13:20Z");
        let round = Usage {
            cpu_nanocores: 100_000_000,
            memory_bytes: 1000,
            ..u
        };
        assert_eq!(usage_json(&round), json!({ "cpu": "100m", "memory": "1k" }));
    }

    #[test]
    fn a_pod_table_sums_its_containers() {
        let item = json!({
            "metadata": { "name": "web", "namespace": "default" },
            "window": "15s",
            "containers": [
                { "name": "a", "usage": { "cpu": "1m", "memory": "1Mi" } },
                { "name": "b", "usage": { "cpu": "500000n", "memory": "1Mi" } },
            ],
        });
        let t = table(&[item], true);
        assert_eq!(t["rows"][0]["cells"], json!(["web", "1500u", "2Mi", "15s"]));
        assert_eq!(t["columnDefinitions"][1]["name"], "cpu");
    }
}
