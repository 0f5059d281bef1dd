//! The replica arithmetic of the HorizontalPodAutoscaler, without IO
//! (upstream `replica_calculator.go` and the normalization in
//! `horizontal.go`): the replica count a resource-utilization target asks
//! for, with upstream's 10 % tolerance and its treatment of unready and
//! unmeasured pods, then the stabilization window and the scale-up /
//! scale-down rate limits (`spec.behavior` policies, or the limits of an
//! HPA without behavior), clamped to [minReplicas, maxReplicas].

use std::time::{Duration, Instant};

use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior};

/// Changes within this ratio of the target are not acted on
/// (`--horizontal-pod-autoscaler-tolerance`).
pub const TOLERANCE: f64 = 0.1;
/// How long the highest recent recommendation holds a scale-down back
/// (`--horizontal-pod-autoscaler-downscale-stabilization`).
pub const DOWNSCALE_STABILIZATION: Duration = Duration::from_secs(300);
/// CPU samples of pods younger than this are only trusted from ready pods
/// (`--horizontal-pod-autoscaler-cpu-initialization-period`).
pub const CPU_INITIALIZATION_PERIOD: Duration = Duration::from_secs(300);
/// A pod not ready this long after its start is taken as never ready yet
/// (`--horizontal-pod-autoscaler-initial-readiness-delay`).
pub const INITIAL_READINESS_DELAY: Duration = Duration::from_secs(30);

/// One pod as the calculation sees it. Times are seconds on one clock.
#[derive(Clone, Debug, Default)]
pub struct PodSample {
    pub name: String,
    pub phase: String,
    pub deleting: bool,
    /// The Ready condition: whether it is True, and when it last changed.
    pub ready: Option<(bool, f64)>,
    pub start_time: Option<f64>,
    /// The summed request of the resource (milli-units).
    pub request: i64,
    /// Why the request is unknown (a container without one), in upstream's
    /// words.
    pub missing_request: Option<String>,
    /// The measured usage (milli-units) with its timestamp and window.
    pub usage: Option<(i64, f64, f64)>,
}

/// What a resource utilization target proposes.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceProposal {
    pub replicas: i32,
    /// Current average utilization, percent of requests.
    pub utilization: i32,
    /// Current average usage (milli-units).
    pub raw: i64,
}

/// Upstream's `GetResourceReplicas` once metrics are fetched: `now` on the
/// clock of the pod times; `cpu` says whether the resource is cpu (whose
/// samples of starting pods are distrusted).
pub fn resource_replicas(
    current: i32,
    target_utilization: i32,
    pods: &[PodSample],
    cpu: bool,
    now: f64,
) -> Result<ResourceProposal, String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let mut ready_count = 0i64;
    let mut unready = Vec::new();
    let mut missing = Vec::new();
    let mut metrics: Vec<(&str, i64)> = Vec::new();
    for pod in pods {
        if pod.deleting || pod.phase == "Failed" {
            continue;
        }
        if pod.phase == "Pending" {
            unready.push(pod.name.as_str());
            continue;
        }
        let Some((value, timestamp, window)) = pod.usage else {
            missing.push(pod.name.as_str());
            continue;
        };
        if cpu {
            let not_ready = match (pod.ready, pod.start_time) {
                (Some((is_ready, changed)), Some(start)) => {
                    if start + CPU_INITIALIZATION_PERIOD.as_secs_f64() > now {
                        !is_ready || timestamp < changed + window
                    } else {
                        !is_ready && start + INITIAL_READINESS_DELAY.as_secs_f64() > changed
                    }
                }
                _ => true,
            };
            if not_ready {
                unready.push(pod.name.as_str());
                continue;
            }
        }
        ready_count += 1;
        metrics.push((pod.name.as_str(), value));
    }
    if metrics.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let mut requests = std::collections::HashMap::new();
    for pod in pods {
        if let Some(why) = &pod.missing_request {
            return Err(why.clone());
        }
        requests.insert(pod.name.as_str(), pod.request);
    }
    let ratio = |metrics: &[(&str, i64)]| -> Result<(f64, i32, i64), String> {
        let (mut used, mut requested, mut n) = (0i64, 0i64, 0i64);
        for (name, value) in metrics {
            if let Some(r) = requests.get(name) {
                used += value;
                requested += r;
                n += 1;
            }
        }
        if requested == 0 {
            return Err("no metrics returned matched known pods".into());
        }
        let utilization = (used * 100 / requested) as i32;
        Ok((
            utilization as f64 / target_utilization as f64,
            utilization,
            used / n.max(1),
        ))
    };
    let (usage_ratio, utilization, raw) = ratio(&metrics)?;
    let proposal = |replicas| ResourceProposal {
        replicas,
        utilization,
        raw,
    };
    let scale_up_with_unready = !unready.is_empty() && usage_ratio > 1.0;
    if !scale_up_with_unready && missing.is_empty() {
        if (1.0 - usage_ratio).abs() <= TOLERANCE {
            return Ok(proposal(current));
        }
        return Ok(proposal((usage_ratio * ready_count as f64).ceil() as i32));
    }
    // Unmeasured pods count as using all of their request on a scale-down
    // and nothing on a scale-up; unready pods as nothing on a scale-up.
    if usage_ratio < 1.0 {
        let fallback = i64::from(target_utilization.max(100));
        for name in &missing {
            metrics.push((
                name,
                requests.get(name).copied().unwrap_or(0) * fallback / 100,
            ));
        }
    } else if usage_ratio > 1.0 {
        metrics.extend(missing.iter().map(|n| (*n, 0)));
    }
    if scale_up_with_unready {
        metrics.extend(unready.iter().map(|n| (*n, 0)));
    }
    let (new_ratio, ..) = ratio(&metrics)?;
    if (1.0 - new_ratio).abs() <= TOLERANCE
        || (usage_ratio < 1.0 && new_ratio > 1.0)
        || (usage_ratio > 1.0 && new_ratio < 1.0)
    {
        return Ok(proposal(current));
    }
    let replicas = (new_ratio * metrics.len() as f64).ceil() as i32;
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok(proposal(current));
    }
    Ok(proposal(replicas))
}

/// A condition's reason and message.
pub type Reason = (&'static str, &'static str);

/// The outcome of normalization: the replicas to scale to, the AbleToScale
/// reason, and the ScalingLimited status with its reason.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalized {
    pub replicas: i32,
    pub able_to_scale: Reason,
    pub limited: bool,
    pub limited_reason: Reason,
}

#[derive(Clone, Copy, Debug)]
struct Timed {
    value: i32,
    at: Instant,
}

/// What one autoscaler remembers between syncs: recent recommendations
/// (for stabilization) and recent scale events (for rate policies).
#[derive(Clone, Debug, Default)]
pub struct History {
    recommendations: Vec<Timed>,
    scale_up: Vec<Timed>,
    scale_down: Vec<Timed>,
}

impl History {
    /// Records a first recommendation of the current size, as upstream does
    /// when it first sees an autoscaler.
    pub fn init(&mut self, current: i32, now: Instant) {
        if self.recommendations.is_empty() {
            self.recommendations.push(Timed {
                value: current,
                at: now,
            });
        }
    }

    /// Records a rescale, for the rate policies of `behavior`.
    pub fn scaled(
        &mut self,
        behavior: Option<&HorizontalPodAutoscalerBehavior>,
        from: i32,
        to: i32,
        now: Instant,
    ) {
        let Some(behavior) = behavior else {
            return;
        };
        let (events, rules) = if to > from {
            (&mut self.scale_up, behavior.scale_up.as_ref())
        } else {
            (&mut self.scale_down, behavior.scale_down.as_ref())
        };
        let longest = rules
            .and_then(|r| r.policies.as_ref())
            .and_then(|p| p.iter().map(|p| p.period_seconds).max())
            .unwrap_or(0);
        events
            .retain(|e| now.saturating_duration_since(e.at) <= Duration::from_secs(longest as u64));
        events.push(Timed {
            value: (to - from).abs(),
            at: now,
        });
    }
}

const ABLE_READY: Reason = ("ReadyForNewScale", "recommended size matches current size");
const DOWN_STABILIZED: Reason = (
    "ScaleDownStabilized",
    "recent recommendations were higher than current one, applying the highest recent recommendation",
);
const UP_STABILIZED: Reason = (
    "ScaleUpStabilized",
    "recent recommendations were lower than current one, applying the lowest recent recommendation",
);
const WITHIN_RANGE: Reason = (
    "DesiredWithinRange",
    "the desired count is within the acceptable range",
);
const TOO_FEW: Reason = (
    "TooFewReplicas",
    "the desired replica count is less than the minimum replica count",
);
const TOO_MANY: Reason = (
    "TooManyReplicas",
    "the desired replica count is more than the maximum replica count",
);
const UP_LIMIT: Reason = (
    "ScaleUpLimit",
    "the desired replica count is increasing faster than the maximum scale rate",
);
const DOWN_LIMIT: Reason = (
    "ScaleDownLimit",
    "the desired replica count is decreasing faster than the maximum scale rate",
);

/// Upstream's `calculateScaleUpLimit` for autoscalers without behavior.
pub fn scale_up_limit(current: i32) -> i32 {
    (2 * current).max(4)
}

/// Stabilizes and limits a metric's proposal `desired` (upstream's
/// `normalizeDesiredReplicas` and `normalizeDesiredReplicasWithBehaviors`).
pub fn normalize(
    history: &mut History,
    behavior: Option<&HorizontalPodAutoscalerBehavior>,
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
    now: Instant,
) -> Normalized {
    match behavior {
        None => {
            let stabilized = stabilize(history, desired, now);
            let able_to_scale = if stabilized != desired {
                DOWN_STABILIZED
            } else {
                ABLE_READY
            };
            let (replicas, reason) = limit_without_behavior(current, stabilized, min, max);
            Normalized {
                replicas,
                able_to_scale,
                limited: replicas != stabilized,
                limited_reason: reason,
            }
        }
        Some(b) => {
            let up = b.scale_up.clone().unwrap_or_else(default_scale_up);
            let down = b.scale_down.clone().unwrap_or_else(default_scale_down);
            let (stabilized, reason) =
                stabilize_with_behavior(history, &up, &down, current, desired, now);
            let able_to_scale = if stabilized != desired {
                reason
            } else {
                ABLE_READY
            };
            let (replicas, reason) =
                limit_with_behavior(history, &up, &down, current, stabilized, min, max, now);
            Normalized {
                replicas,
                able_to_scale,
                limited: replicas != stabilized,
                limited_reason: reason,
            }
        }
    }
}

/// The defaults the API gives `behavior.scaleUp`.
pub fn default_scale_up() -> HPAScalingRules {
    serde_json::from_value(serde_json::json!({
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [{ "type": "Pods", "value": 4, "periodSeconds": 15 }, { "type": "Percent", "value": 100, "periodSeconds": 15 }],
    }))
    .expect("valid rules")
}

/// The defaults the API gives `behavior.scaleDown` (its window comes from
/// the controller's downscale stabilization).
pub fn default_scale_down() -> HPAScalingRules {
    serde_json::from_value(serde_json::json!({
        "selectPolicy": "Max",
        "policies": [{ "type": "Percent", "value": 100, "periodSeconds": 15 }],
    }))
    .expect("valid rules")
}

fn record(history: &mut History, desired: i32, now: Instant, is_old: impl Fn(Instant) -> bool) {
    let fresh = Timed {
        value: desired,
        at: now,
    };
    match history.recommendations.iter().rposition(|r| is_old(r.at)) {
        Some(i) => history.recommendations[i] = fresh,
        None => history.recommendations.push(fresh),
    }
}

/// The highest recommendation of the downscale window.
fn stabilize(history: &mut History, desired: i32, now: Instant) -> i32 {
    let cutoff = |at: Instant| now.saturating_duration_since(at) > DOWNSCALE_STABILIZATION;
    let highest = history
        .recommendations
        .iter()
        .filter(|r| !cutoff(r.at))
        .map(|r| r.value)
        .fold(desired, i32::max);
    record(history, desired, now, cutoff);
    highest
}

fn window(rules: &HPAScalingRules, default: Duration) -> Duration {
    rules
        .stabilization_window_seconds
        .map(|s| Duration::from_secs(s.max(0) as u64))
        .unwrap_or(default)
}

fn stabilize_with_behavior(
    history: &mut History,
    up: &HPAScalingRules,
    down: &HPAScalingRules,
    current: i32,
    desired: i32,
    now: Instant,
) -> (i32, Reason) {
    let up_window = window(up, Duration::ZERO);
    let down_window = window(down, DOWNSCALE_STABILIZATION);
    let within = |at: Instant, w: Duration| now.saturating_duration_since(at) < w;
    let mut up_rec = desired;
    let mut down_rec = desired;
    for r in &history.recommendations {
        if within(r.at, up_window) {
            up_rec = up_rec.min(r.value);
        }
        if within(r.at, down_window) {
            down_rec = down_rec.max(r.value);
        }
    }
    let recommendation = current.max(up_rec).min(down_rec);
    record(history, desired, now, |at| {
        !within(at, up_window) && !within(at, down_window)
    });
    let reason = if desired >= current {
        UP_STABILIZED
    } else {
        DOWN_STABILIZED
    };
    (recommendation, reason)
}

fn limit_without_behavior(current: i32, desired: i32, min: i32, max: i32) -> (i32, Reason) {
    let up_limit = scale_up_limit(current);
    let (allowed_max, reason) = if max > up_limit {
        (up_limit, UP_LIMIT)
    } else {
        (max, TOO_MANY)
    };
    if desired < min {
        (min, TOO_FEW)
    } else if desired > allowed_max {
        (allowed_max, reason)
    } else {
        (desired, WITHIN_RANGE)
    }
}

fn changed_within(events: &[Timed], period_seconds: i32, now: Instant) -> i32 {
    let period = Duration::from_secs(period_seconds.max(0) as u64);
    events
        .iter()
        .filter(|e| now.saturating_duration_since(e.at) < period)
        .map(|e| e.value)
        .sum()
}

#[allow(clippy::too_many_arguments)]
fn limit_with_behavior(
    history: &History,
    up: &HPAScalingRules,
    down: &HPAScalingRules,
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
    now: Instant,
) -> (i32, Reason) {
    let period_start = |period: i32| {
        current - changed_within(&history.scale_up, period, now)
            + changed_within(&history.scale_down, period, now)
    };
    if desired > current {
        let limit = match up.select_policy.as_deref() {
            Some("Disabled") => current,
            policy => {
                let proposals = up.policies.iter().flatten().map(|p| {
                    let start = period_start(p.period_seconds);
                    if p.type_ == "Pods" {
                        start + p.value
                    } else {
                        (start as f64 * (1.0 + p.value as f64 / 100.0)).ceil() as i32
                    }
                });
                if policy == Some("Min") {
                    proposals.min().unwrap_or(i32::MAX)
                } else {
                    proposals.max().unwrap_or(i32::MIN)
                }
            }
        }
        .max(current);
        let (allowed, reason) = if max > limit {
            (limit, UP_LIMIT)
        } else {
            (max, TOO_MANY)
        };
        if desired > allowed {
            return (allowed, reason);
        }
    } else if desired < current {
        let limit = match down.select_policy.as_deref() {
            Some("Disabled") => current,
            policy => {
                let proposals = down.policies.iter().flatten().map(|p| {
                    let start = period_start(p.period_seconds);
                    if p.type_ == "Pods" {
                        start - p.value
                    } else {
                        (start as f64 * (1.0 - p.value as f64 / 100.0)) as i32
                    }
                });
                if policy == Some("Min") {
                    proposals.max().unwrap_or(i32::MIN)
                } else {
                    proposals.min().unwrap_or(i32::MAX)
                }
            }
        }
        .min(current);
        let (allowed, reason) = if min < limit {
            (limit, DOWN_LIMIT)
        } else {
            (min, TOO_FEW)
        };
        if desired < allowed {
            return (allowed, reason);
        }
    }
    (desired, WITHIN_RANGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn running(name: &str, request: i64, usage: i64) -> PodSample {
        PodSample {
            name: name.into(),
            phase: "Running".into(),
            ready: Some((true, 0.0)),
            start_time: Some(0.0),
            request,
            usage: Some((usage, 1000.0, 60.0)),
            ..Default::default()
        }
    }

    #[test]
    fn utilization_above_target_scales_up_by_the_usage_ratio() {
        // 3 pods at 90% of their request, target 50%: ceil(1.8 * 3) = 6.
        let pods = [
            running("a", 100, 90),
            running("b", 100, 90),
            running("c", 100, 90),
        ];
        let p = resource_replicas(3, 50, &pods, true, 1000.0).unwrap();
        assert_eq!(
            p,
            ResourceProposal {
                replicas: 6,
                utilization: 90,
                raw: 90
            }
        );
    }

    #[test]
    fn a_ratio_within_the_tolerance_keeps_the_current_count() {
        let pods = [running("a", 100, 54), running("b", 100, 54)];
        assert_eq!(
            resource_replicas(2, 50, &pods, true, 1000.0)
                .unwrap()
                .replicas,
            2
        );
        let pods = [running("a", 100, 56), running("b", 100, 56)];
        assert_eq!(
            resource_replicas(2, 50, &pods, true, 1000.0)
                .unwrap()
                .replicas,
            3
        );
    }

    #[test]
    fn unmeasured_pods_count_as_full_on_scale_down_and_pending_pods_as_idle_on_scale_up() {
        // Scale-down with an unmeasured pod: it counts as 100%, which holds
        // the count at 3 where the measured pods alone would ask for 1.
        let mut missing = running("c", 100, 0);
        missing.usage = None;
        let pods = [
            running("a", 100, 10),
            running("b", 100, 10),
            missing.clone(),
        ];
        assert_eq!(
            resource_replicas(3, 50, &pods, true, 1000.0)
                .unwrap()
                .replicas,
            3
        );
        let pods = [running("a", 100, 10), running("b", 100, 10)];
        assert_eq!(
            resource_replicas(2, 50, &pods, true, 1000.0)
                .unwrap()
                .replicas,
            1
        );
        // Scale-up with a pending pod: it counts as 0%.
        let pending = PodSample {
            name: "p".into(),
            phase: "Pending".into(),
            request: 100,
            ..Default::default()
        };
        let pods = [running("a", 100, 100), running("b", 100, 100), pending];
        // Ratio 2.0 over 2 ready pods; with the pending one at 0: 200/300 / 0.5 = 1.33 -> ceil(1.33*3) = 4.
        assert_eq!(
            resource_replicas(3, 50, &pods, true, 1000.0)
                .unwrap()
                .replicas,
            4
        );
    }

    #[test]
    fn no_metrics_and_missing_requests_are_errors_in_upstream_words() {
        let mut p = running("a", 100, 10);
        p.usage = None;
        p.phase = "Pending".into();
        assert_eq!(
            resource_replicas(1, 50, &[p], true, 1000.0).unwrap_err(),
            "did not receive metrics for targeted pods (pods might be unready)"
        );
        assert_eq!(
            resource_replicas(1, 50, &[], true, 1000.0).unwrap_err(),
            "no pods returned by selector while calculating replica count"
        );
    }

    #[test]
    fn without_behavior_scale_up_is_limited_to_double_or_four_and_clamped_to_the_range() {
        let now = Instant::now();
        let mut h = History::default();
        let n = normalize(&mut h, None, 2, 20, 1, 10, now);
        assert_eq!(n.replicas, 4);
        assert!(n.limited);
        assert_eq!(n.limited_reason.0, "ScaleUpLimit");
        let mut h = History::default();
        let n = normalize(&mut h, None, 8, 20, 1, 10, now);
        assert_eq!((n.replicas, n.limited_reason.0), (10, "TooManyReplicas"));
        let mut h = History::default();
        let n = normalize(&mut h, None, 3, 3, 1, 10, now);
        assert_eq!(
            (n.replicas, n.limited, n.limited_reason.0, n.able_to_scale.0),
            (3, false, "DesiredWithinRange", "ReadyForNewScale")
        );
        let mut h = History::default();
        let n = normalize(&mut h, None, 3, 0, 2, 10, now);
        assert_eq!((n.replicas, n.limited_reason.0), (2, "TooFewReplicas"));
    }

    #[test]
    fn scale_down_waits_for_the_five_minute_stabilization_window() {
        let start = Instant::now();
        let mut h = History::default();
        h.init(5, start);
        let n = normalize(&mut h, None, 5, 2, 1, 10, start + Duration::from_secs(60));
        assert_eq!(n.replicas, 5);
        assert_eq!(n.able_to_scale.0, "ScaleDownStabilized");
        // Once the window has passed the higher recommendation is gone.
        let n = normalize(&mut h, None, 5, 2, 1, 10, start + Duration::from_secs(400));
        assert_eq!(n.replicas, 2, "{n:?}");
    }

    fn behavior(v: serde_json::Value) -> HorizontalPodAutoscalerBehavior {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn behavior_policies_limit_the_rate_and_select_the_largest_change() {
        let now = Instant::now();
        // Pods 4 / Percent 100 per 15 s: from 10 the larger change allows 20.
        let b =
            behavior(json!({ "scaleUp": default_scale_up(), "scaleDown": default_scale_down() }));
        let mut h = History::default();
        let n = normalize(&mut h, Some(&b), 10, 50, 1, 100, now);
        assert_eq!((n.replicas, n.limited_reason.0), (20, "ScaleUpLimit"));
        // selectPolicy Min picks the smaller change: 14.
        let b = behavior(
            json!({ "scaleUp": { "stabilizationWindowSeconds": 0, "selectPolicy": "Min", "policies": [
            { "type": "Pods", "value": 4, "periodSeconds": 15 }, { "type": "Percent", "value": 100, "periodSeconds": 15 } ] } }),
        );
        let mut h = History::default();
        assert_eq!(
            normalize(&mut h, Some(&b), 10, 50, 1, 100, now).replicas,
            14
        );
        // Earlier scale-ups within the period use up the allowance.
        let mut h = History::default();
        h.scaled(Some(&b), 6, 10, now);
        assert_eq!(
            normalize(
                &mut h,
                Some(&b),
                10,
                50,
                1,
                100,
                now + Duration::from_secs(5)
            )
            .replicas,
            10
        );
        // Disabled scale-down never goes below the current count.
        let b = behavior(
            json!({ "scaleDown": { "stabilizationWindowSeconds": 0, "selectPolicy": "Disabled" } }),
        );
        let mut h = History::default();
        let n = normalize(&mut h, Some(&b), 10, 2, 1, 100, now);
        assert_eq!((n.replicas, n.limited_reason.0), (10, "ScaleDownLimit"));
    }

    #[test]
    fn behavior_scale_down_stabilization_uses_the_highest_recommendation_of_its_window() {
        let start = Instant::now();
        let b = behavior(
            json!({ "scaleDown": { "stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [
            { "type": "Percent", "value": 100, "periodSeconds": 15 } ] } }),
        );
        let mut h = History::default();
        h.init(8, start);
        let n = normalize(
            &mut h,
            Some(&b),
            8,
            3,
            1,
            10,
            start + Duration::from_secs(30),
        );
        assert_eq!((n.replicas, n.able_to_scale.0), (8, "ScaleDownStabilized"));
        let n = normalize(
            &mut h,
            Some(&b),
            8,
            3,
            1,
            10,
            start + Duration::from_secs(100),
        );
        assert_eq!(n.replicas, 3);
    }
}
