//! The HorizontalPodAutoscaler controller (upstream
//! `pkg/controller/podautoscaler`, events from `horizontal-pod-autoscaler`),
//! autoscaling/v2 semantics. Every 15 s per autoscaler it reads the scale
//! subresource of `scaleTargetRef`; a target outside [minReplicas,
//! maxReplicas] is brought inside at once; otherwise the metrics propose a
//! count, which is stabilized and rate-limited ([`replicas`]) before the
//! scale is written. Status carries currentReplicas, desiredReplicas,
//! currentMetrics, lastScaleTime and the AbleToScale / ScalingActive /
//! ScalingLimited conditions in upstream's words.
//!
//! Resource metrics come from the metrics.k8s.io API, which `krate server`
//! serves from its nodes' kubelets; pods without metrics (or a server
//! without that API) make ScalingActive False with reason
//! FailedGetResourceMetric and the message upstream gives. Pods, Object and
//! External metrics need the custom and external metrics APIs, which are
//! not served.

pub mod replicas;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus,
    MetricSpec, MetricStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use serde_json::json;
use tokio::task::JoinSet;

use self::replicas::{normalize, resource_replicas, History, PodSample};
use crate::events::Recorder;
use crate::informer::{Change, Informer, Key};
use crate::queue::WorkQueue;
use crate::runner::{self, Action, Reconciler, Result};
use crate::Context;

const COMPONENT: &str = "horizontal-pod-autoscaler";
/// `--horizontal-pod-autoscaler-sync-period`.
const SYNC_PERIOD: Duration = Duration::from_secs(15);

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let hpas = ctx.informers.get::<HorizontalPodAutoscaler>();
    let pods = ctx.informers.get::<Pod>();
    let queue = WorkQueue::new();
    {
        let queue = queue.clone();
        hpas.on_change(move |change| match change {
            // Status writes (ours) do not wake the controller: it looks
            // again every sync period, as upstream.
            Change::Updated { old, new } if old.metadata.generation == new.metadata.generation => {}
            Change::Deleted(_) => {}
            _ => queue.add(Key::of(change.object().as_ref())),
        });
    }
    let controller = Arc::new(HorizontalController {
        client: ctx.client.clone(),
        hpas: hpas.clone(),
        pods: pods.clone(),
        recorder: ctx.recorder(COMPONENT),
        history: Mutex::default(),
        resources: Mutex::default(),
    });
    let synced = async move {
        hpas.wait_synced().await;
        pods.wait_synced().await;
    };
    runner::spawn_when_synced(tasks, synced, controller, queue, 5);
}

pub struct HorizontalController {
    client: kube::Client,
    hpas: Informer<HorizontalPodAutoscaler>,
    pods: Informer<Pod>,
    recorder: Recorder,
    history: Mutex<HashMap<Key, History>>,
    /// Resolved scaleTargetRef kinds.
    resources: Mutex<HashMap<(String, String), ApiResource>>,
}

/// Sets a condition, keeping its transition time if the status is unchanged
/// (upstream's `setCondition`).
fn set_condition(
    status: &mut HorizontalPodAutoscalerStatus,
    type_: &str,
    value: bool,
    reason: &str,
    message: String,
) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let value = if value { "True" } else { "False" };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != value {
                c.last_transition_time = Some(Time(Utc::now()));
            }
            c.status = value.into();
            c.reason = Some(reason.into());
            c.message = Some(message);
        }
        None => conditions.push(HorizontalPodAutoscalerCondition {
            type_: type_.into(),
            status: value.into(),
            reason: Some(reason.into()),
            message: Some(message),
            last_transition_time: Some(Time(Utc::now())),
        }),
    }
}

/// One metric's failure: the ScalingActive reason and the error.
struct MetricError {
    reason: &'static str,
    /// What the event and the condition say.
    error: String,
    /// What the FailedComputeMetricsReplicas event quotes.
    full: String,
}

/// The default metric of an autoscaler without metrics: 80 % cpu.
fn default_metrics() -> Vec<MetricSpec> {
    vec![serde_json::from_value(json!({
        "type": "Resource",
        "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 80 } },
    }))
    .expect("a valid metric")]
}

#[async_trait::async_trait]
impl Reconciler for HorizontalController {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let Some(hpa) = self.hpas.get(key) else {
            self.history.lock().unwrap().remove(key);
            return Ok(Action::Done);
        };
        self.reconcile(key, &hpa).await?;
        Ok(Action::RequeueAfter(SYNC_PERIOD))
    }
}

impl HorizontalController {
    async fn reconcile(&self, key: &Key, hpa: &HorizontalPodAutoscaler) -> Result<()> {
        let spec = hpa.spec.clone().unwrap_or_default();
        let original = hpa.status.clone().unwrap_or_default();
        let mut status = original.clone();
        let target = &spec.scale_target_ref;
        let reference = format!("{}/{}", target.kind, target.name);

        let scale = match self.get_scale(&key.namespace, target).await {
            Ok(s) => s,
            Err((reason, e)) => {
                set_condition(
                    &mut status,
                    "AbleToScale",
                    false,
                    reason,
                    format!("the HPA controller was unable to get the target's current scale: {e}"),
                );
                self.recorder.warning(hpa, reason, e.clone());
                self.write_status(key, &original, status).await?;
                return Err(runner::Error::Other(format!(
                    "failed to query scale subresource for {reference}: {e}"
                )));
            }
        };
        set_condition(
            &mut status,
            "AbleToScale",
            true,
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale".into(),
        );
        let current = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let now = Instant::now();
        self.history
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_default()
            .init(current, now);

        let min = spec.min_replicas.unwrap_or(1);
        let max = spec.max_replicas;
        let mut metric_statuses = status.current_metrics.clone();
        let (desired, rescale, reason) = if current == 0 && min != 0 {
            set_condition(
                &mut status,
                "ScalingActive",
                false,
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero".into(),
            );
            (0, false, String::new())
        } else if current > max {
            (
                max,
                true,
                "Current number of replicas above Spec.MaxReplicas".to_string(),
            )
        } else if current < min {
            (
                min,
                true,
                "Current number of replicas below Spec.MinReplicas".to_string(),
            )
        } else {
            let metrics = spec
                .metrics
                .clone()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(default_metrics);
            match self
                .replicas_for_metrics(hpa, &scale, current, &metrics, &mut status)
                .await
            {
                Err(e) => {
                    status.current_replicas = Some(current);
                    self.write_status(key, &original, status).await?;
                    self.recorder
                        .warning(hpa, "FailedComputeMetricsReplicas", e.clone());
                    return Err(runner::Error::Other(format!(
                        "failed to compute desired number of replicas based on listed metrics for {reference}: {e}"
                    )));
                }
                Ok((proposed, metric, statuses)) => {
                    metric_statuses = Some(statuses);
                    let normalized = {
                        let mut history = self.history.lock().unwrap();
                        let h = history.entry(key.clone()).or_default();
                        normalize(h, spec.behavior.as_ref(), current, proposed, min, max, now)
                    };
                    set_condition(
                        &mut status,
                        "AbleToScale",
                        true,
                        normalized.able_to_scale.0,
                        normalized.able_to_scale.1.into(),
                    );
                    set_condition(
                        &mut status,
                        "ScalingLimited",
                        normalized.limited,
                        normalized.limited_reason.0,
                        normalized.limited_reason.1.into(),
                    );
                    let desired = normalized.replicas;
                    let reason = if desired > current {
                        format!("{metric} above target")
                    } else {
                        "All metrics below target".to_string()
                    };
                    (desired, desired != current, reason)
                }
            }
        };

        if rescale {
            let mut updated = scale.clone();
            updated.spec.get_or_insert_with(Default::default).replicas = Some(desired);
            if let Err(e) = self.replace_scale(&key.namespace, target, &updated).await {
                self.recorder.warning(
                    hpa,
                    "FailedRescale",
                    format!("New size: {desired}; reason: {reason}; error: {e}"),
                );
                set_condition(
                    &mut status,
                    "AbleToScale",
                    false,
                    "FailedUpdateScale",
                    format!("the HPA controller was unable to update the target scale: {e}"),
                );
                status.current_replicas = Some(current);
                self.write_status(key, &original, status).await?;
                return Err(runner::Error::Other(format!(
                    "failed to rescale {reference}: {e}"
                )));
            }
            set_condition(
                &mut status,
                "AbleToScale",
                true,
                "SucceededRescale",
                format!("the HPA controller was able to update the target scale to {desired}"),
            );
            self.recorder.normal(
                hpa,
                "SuccessfulRescale",
                format!("New size: {desired}; reason: {reason}"),
            );
            let mut history = self.history.lock().unwrap();
            history.entry(key.clone()).or_default().scaled(
                spec.behavior.as_ref(),
                current,
                desired,
                Instant::now(),
            );
            status.last_scale_time = Some(Time(Utc::now()));
        }
        status.current_replicas = Some(current);
        status.desired_replicas = desired;
        status.current_metrics = metric_statuses;
        status.observed_generation = hpa.metadata.generation;
        self.write_status(key, &original, status).await
    }

    /// The ApiResource of a scaleTargetRef, found through discovery once.
    async fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> std::result::Result<ApiResource, String> {
        let cache_key = (api_version.to_string(), kind.to_string());
        if let Some(r) = self.resources.lock().unwrap().get(&cache_key) {
            return Ok(r.clone());
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, _) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|_| format!("no matches for kind {kind:?} in group {group:?}"))?;
        self.resources
            .lock()
            .unwrap()
            .insert(cache_key, resource.clone());
        Ok(resource)
    }

    async fn get_scale(
        &self,
        namespace: &str,
        target: &k8s_openapi::api::autoscaling::v2::CrossVersionObjectReference,
    ) -> std::result::Result<Scale, (&'static str, String)> {
        let api_version = target.api_version.as_deref().unwrap_or("v1");
        let resource = self
            .resource(api_version, &target.kind)
            .await
            .map_err(|e| ("FailedGetScale", e))?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        api.get_scale(&target.name)
            .await
            .map_err(|e| ("FailedGetScale", api_error(&e)))
    }

    async fn replace_scale(
        &self,
        namespace: &str,
        target: &k8s_openapi::api::autoscaling::v2::CrossVersionObjectReference,
        scale: &Scale,
    ) -> std::result::Result<Scale, String> {
        let api_version = target.api_version.as_deref().unwrap_or("v1");
        let resource = self.resource(api_version, &target.kind).await?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        let body = serde_json::to_vec(scale).map_err(|e| e.to_string())?;
        api.replace_scale(&target.name, &PostParams::default(), body)
            .await
            .map_err(|e| api_error(&e))
    }

    /// Upstream's `computeReplicasForMetrics`: the largest proposal of the
    /// metrics, the name of the metric that made it, and their statuses.
    async fn replicas_for_metrics(
        &self,
        hpa: &HorizontalPodAutoscaler,
        scale: &Scale,
        current: i32,
        metrics: &[MetricSpec],
        status: &mut HorizontalPodAutoscalerStatus,
    ) -> std::result::Result<(i32, String, Vec<MetricStatus>), String> {
        let selector = scale
            .status
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default();
        if selector.is_empty() {
            self.recorder
                .warning(hpa, "SelectorRequired", "selector is required");
            set_condition(
                status,
                "ScalingActive",
                false,
                "InvalidSelector",
                "the HPA target's scale is missing a selector".into(),
            );
            return Err("selector is required".into());
        }
        let parsed = match api::LabelSelector::parse(&selector) {
            Ok(s) => s,
            Err(e) => {
                let message = format!(
                    "couldn't convert selector into a corresponding internal selector object: {e}"
                );
                self.recorder
                    .warning(hpa, "InvalidSelector", message.clone());
                set_condition(
                    status,
                    "ScalingActive",
                    false,
                    "InvalidSelector",
                    message.clone(),
                );
                return Err(message);
            }
        };
        let namespace = hpa.metadata.namespace.clone().unwrap_or_default();
        let mut best: Option<(i32, String)> = None;
        let mut statuses = Vec::new();
        let mut invalid: Vec<(MetricError, HorizontalPodAutoscalerCondition)> = Vec::new();
        for spec in metrics {
            match self
                .replicas_for_metric(&namespace, &selector, &parsed, current, spec)
                .await
            {
                Ok((replicas, name, metric_status)) => {
                    statuses.push(metric_status);
                    if best.as_ref().is_none_or(|(r, _)| replicas > *r) {
                        best = Some((replicas, name));
                    }
                }
                Err(e) => {
                    statuses.push(MetricStatus {
                        type_: String::new(),
                        ..Default::default()
                    });
                    let condition = HorizontalPodAutoscalerCondition {
                        type_: "ScalingActive".into(),
                        status: "False".into(),
                        reason: Some(e.reason.into()),
                        message: Some(format!(
                            "the HPA was unable to compute the replica count: {}",
                            e.error
                        )),
                        last_transition_time: None,
                    };
                    self.recorder.warning(hpa, e.reason, e.error.clone());
                    invalid.push((e, condition));
                }
            }
        }
        statuses.retain(|s| !s.type_.is_empty());
        let count = invalid.len();
        let replicas = best.as_ref().map(|b| b.0).unwrap_or(-1);
        if count >= metrics.len() || (count > 0 && replicas < current) {
            let (first, condition) = invalid
                .into_iter()
                .next()
                .expect("at least one invalid metric");
            set_condition(
                status,
                "ScalingActive",
                false,
                condition.reason.as_deref().unwrap_or_default(),
                condition.message.unwrap_or_default(),
            );
            return Err(format!(
                "invalid metrics ({count} invalid out of {}), first error is: {}",
                metrics.len(),
                first.full
            ));
        }
        let (replicas, name) = best.expect("a valid metric");
        set_condition(
            status,
            "ScalingActive",
            true,
            "ValidMetricFound",
            format!("the HPA was able to successfully calculate a replica count from {name}"),
        );
        Ok((replicas, name, statuses))
    }

    async fn replicas_for_metric(
        &self,
        namespace: &str,
        selector_text: &str,
        selector: &api::LabelSelector,
        current: i32,
        spec: &MetricSpec,
    ) -> std::result::Result<(i32, String, MetricStatus), MetricError> {
        match spec.type_.as_str() {
            "Resource" | "ContainerResource" => {
                let (name, target, container) = match (&spec.resource, &spec.container_resource) {
                    (Some(r), _) => (r.name.clone(), r.target.clone(), None),
                    (None, Some(c)) => (c.name.clone(), c.target.clone(), Some(c.container.clone())),
                    _ => {
                        return Err(MetricError::new(
                            "FailedGetResourceMetric",
                            "invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".into(),
                            None,
                        ))
                    }
                };
                let Some(target_utilization) = target.average_utilization else {
                    let e = format!("failed to get {name} usage: only utilization targets are computed");
                    return Err(MetricError::new("FailedGetResourceMetric", e, Some(&name)));
                };
                let pods = self.pod_samples(namespace, selector, &name, container.as_deref(), selector_text).await;
                let pods = match pods {
                    Ok(p) => p,
                    Err(e) => {
                        let e = format!("unable to get metrics for resource {name}: {e}");
                        return Err(MetricError::utilization("FailedGetResourceMetric", e, &name));
                    }
                };
                let proposal = resource_replicas(current, target_utilization, &pods, name == "cpu", now_seconds())
                    .map_err(|e| MetricError::utilization("FailedGetResourceMetric", e, &name))?;
                let metric_name = match &container {
                    None => format!("{name} resource utilization (percentage of request)"),
                    Some(c) => format!("{name} container resource utilization (percentage of request) of container {c}"),
                };
                let current_value = json!({
                    "averageUtilization": proposal.utilization,
                    "averageValue": average_value(proposal.raw),
                });
                let status: MetricStatus = serde_json::from_value(match &container {
                    None => json!({ "type": "Resource", "resource": { "name": name, "current": current_value } }),
                    Some(c) => json!({ "type": "ContainerResource", "containerResource": { "name": name, "container": c, "current": current_value } }),
                })
                .expect("a valid metric status");
                Ok((proposal.replicas, metric_name, status))
            }
            "Pods" => Err(MetricError::new(
                "FailedGetPodsMetric",
                format!(
                    "unable to get metric {}: unable to fetch metrics from custom metrics API: the server could not find the requested resource",
                    spec.pods.as_ref().map(|p| p.metric.name.as_str()).unwrap_or_default()
                ),
                Some("pods"),
            )),
            "Object" => Err(MetricError::new(
                "FailedGetObjectMetric",
                format!(
                    "unable to get metric {}: unable to fetch metrics from custom metrics API: the server could not find the requested resource",
                    spec.object.as_ref().map(|o| o.metric.name.as_str()).unwrap_or_default()
                ),
                Some("object"),
            )),
            "External" => Err(MetricError::new(
                "FailedGetExternalMetric",
                format!(
                    "unable to get external metric {namespace}/{}: unable to fetch metrics from external metrics API: the server could not find the requested resource",
                    spec.external.as_ref().map(|e| e.metric.name.as_str()).unwrap_or_default()
                ),
                Some("external"),
            )),
            other => Err(MetricError::new("InvalidMetricSourceType", format!("unknown metric source type {other:?}"), None)),
        }
    }

    /// The pods of the target with their requests and measured usage from
    /// metrics.k8s.io.
    async fn pod_samples(
        &self,
        namespace: &str,
        selector: &api::LabelSelector,
        resource: &str,
        container: Option<&str>,
        selector_text: &str,
    ) -> std::result::Result<Vec<PodSample>, String> {
        let metrics_resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "PodMetrics"),
            "pods",
        );
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &metrics_resource);
        let list = api
            .list(&ListParams::default().labels(selector_text))
            .await
            .map_err(|e| match &e {
                kube::Error::Api(s) if s.code == 404 => {
                    "unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)".to_string()
                }
                _ => format!("unable to fetch metrics from resource metrics API: {}", api_error(&e)),
            })?;
        if list.items.is_empty() {
            return Err("no metrics returned from resource metrics API".into());
        }
        let mut usage: HashMap<String, (i64, f64, f64)> = HashMap::new();
        for m in &list.items {
            let name = m.metadata.name.clone().unwrap_or_default();
            let timestamp = m.data["timestamp"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp_millis() as f64 / 1000.0)
                .unwrap_or_else(now_seconds);
            let window = m.data["window"]
                .as_str()
                .and_then(|w| w.trim_end_matches('s').parse::<f64>().ok())
                .unwrap_or(60.0);
            let mut total = 0i64;
            let mut found = false;
            for c in m.data["containers"].as_array().into_iter().flatten() {
                if container.is_some_and(|want| c["name"].as_str() != Some(want)) {
                    continue;
                }
                if let Some(q) = c["usage"][resource]
                    .as_str()
                    .and_then(|q| api::Quantity::parse(q).ok())
                {
                    total += q.milli_value();
                    found = true;
                }
            }
            if found {
                usage.insert(name, (total, timestamp, window));
            }
        }
        let pods = self
            .pods
            .list_namespace(namespace)
            .into_iter()
            .filter(|p| selector.matches_opt(p.metadata.labels.as_ref()));
        let mut samples = Vec::new();
        for pod in pods {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let status = pod.status.clone().unwrap_or_default();
            let ready = crate::pod::condition(&pod, "Ready").map(|c| {
                let changed = c
                    .last_transition_time
                    .as_ref()
                    .map(|t| t.0.timestamp() as f64)
                    .unwrap_or(0.0);
                (c.status == "True", changed)
            });
            let mut request = 0i64;
            let mut missing_request = None;
            for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
                if container.is_some_and(|want| c.name != want) {
                    continue;
                }
                match c
                    .resources
                    .as_ref()
                    .and_then(|r| r.requests.as_ref())
                    .and_then(|r| r.get(resource))
                    .and_then(|q| api::Quantity::parse(&q.0).ok())
                {
                    Some(q) => request += q.milli_value(),
                    None => {
                        missing_request.get_or_insert(format!(
                            "missing request for {resource} in container {} of Pod {name}",
                            c.name
                        ));
                    }
                }
            }
            samples.push(PodSample {
                usage: usage.get(&name).copied(),
                name,
                phase: status.phase.unwrap_or_else(|| "Pending".into()),
                deleting: pod.metadata.deletion_timestamp.is_some(),
                ready,
                start_time: status.start_time.map(|t| t.0.timestamp() as f64),
                request,
                missing_request,
            });
        }
        Ok(samples)
    }

    async fn write_status(
        &self,
        key: &Key,
        original: &HorizontalPodAutoscalerStatus,
        status: HorizontalPodAutoscalerStatus,
    ) -> Result<()> {
        if &status == original {
            return Ok(());
        }
        let api: Api<HorizontalPodAutoscaler> =
            Api::namespaced(self.client.clone(), &key.namespace);
        match api
            .patch_status(
                &key.name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "status": status })),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if runner::is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl MetricError {
    fn new(reason: &'static str, error: String, kind: Option<&str>) -> MetricError {
        let full = match kind {
            Some(k) => format!("failed to get {k} metric value: {error}"),
            None => error.clone(),
        };
        MetricError {
            reason,
            error,
            full,
        }
    }

    /// A resource utilization failure, worded as upstream nests it.
    fn utilization(reason: &'static str, error: String, resource: &str) -> MetricError {
        let full = format!("failed to get {resource} resource metric value: failed to get {resource} utilization: {error}");
        MetricError {
            reason,
            error,
            full,
        }
    }
}

fn now_seconds() -> f64 {
    Utc::now().timestamp_millis() as f64 / 1000.0
}

/// A client error as client-go prints an API Status: its message.
fn api_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// A current average as upstream sets it,
/// `resource.NewMilliQuantity(raw, resource.DecimalSI)`, in its canonical
/// text (`335872000000` milli-bytes print `335872k`).
fn average_value(raw_milli: i64) -> String {
    api::Quantity::new_milli(raw_milli, api::quantity::Format::DecimalSI).to_string()
}

#[cfg(test)]
mod average_value_tests {
    use super::average_value;

    #[test]
    fn current_average_values_print_canonically_as_upstream() {
        assert_eq!(average_value(335_872_000_000), "335872k");
        assert_eq!(average_value(335_872_000), "335872");
        assert_eq!(average_value(1_080), "1080m");
        assert_eq!(average_value(250), "250m");
        assert_eq!(average_value(2_000), "2");
        assert_eq!(average_value(0), "0");
        assert_eq!(average_value(1_500_000_000_000), "1500M");
        assert_eq!(average_value(-1_500), "-1500m");
    }
}
