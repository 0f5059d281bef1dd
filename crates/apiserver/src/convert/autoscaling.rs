//! HorizontalPodAutoscaler: autoscaling/v1 <-> autoscaling/v2, as
//! upstream's `pkg/apis/autoscaling/v1/conversion.go` converts through the
//! internal type (which has v2's shape).
//!
//! v1 has one CPU field each in spec and status; whatever else v2 holds
//! travels in v1 annotations (metrics and current metrics in v1's
//! `MetricSpec`/`MetricStatus` shape, conditions, behavior) and is moved
//! back into the fields when the object returns to v2. v2 never carries
//! these annotations. The behavior annotation holds upstream's internal
//! type marshalled without json tags, so its keys are the Go field names
//! (`ScaleUp`, `StabilizationWindowSeconds`, ...) and are read back
//! case-insensitively, as `encoding/json` does.

use serde_json::{json, Map, Value};

/// `autoscaling.MetricSpecsAnnotation`.
pub const METRIC_SPECS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// `autoscaling.MetricStatusesAnnotation`.
pub const METRIC_STATUSES_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
/// `autoscaling.HorizontalPodAutoscalerConditionsAnnotation`.
pub const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// `autoscaling.BehaviorSpecsAnnotation`.
pub const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";

const ROUND_TRIP_ANNOTATIONS: [&str; 4] = [
    METRIC_SPECS_ANNOTATION,
    BEHAVIOR_ANNOTATION,
    METRIC_STATUSES_ANNOTATION,
    CONDITIONS_ANNOTATION,
];

/// `autoscaling.DefaultCPUUtilization`.
const DEFAULT_CPU_UTILIZATION: i64 = 80;

pub(super) fn convert_hpa(obj: Value, from: &str, to: &str) -> Result<Value, String> {
    match (from, to) {
        ("v1", "v2") => v1_to_v2(obj),
        ("v2", "v1") => Ok(v2_to_v1(obj)),
        ("v2", "v2") => {
            let mut obj = obj;
            drop_round_trip_annotations(&mut obj);
            Ok(obj)
        }
        ("v1", "v1") => Ok(obj),
        _ => Err(format!("no conversion from {from} to {to}")),
    }
}

fn annotations_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    obj.get_mut("metadata")?
        .get_mut("annotations")?
        .as_object_mut()
}

/// `DropRoundTripHorizontalPodAutoscalerAnnotations`.
fn drop_round_trip_annotations(obj: &mut Value) {
    if let Some(a) = annotations_mut(obj) {
        for k in ROUND_TRIP_ANNOTATIONS {
            a.remove(k);
        }
        if a.is_empty() {
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("annotations");
            }
        }
    }
}

fn set_annotation(obj: &mut Value, key: &str, value: &Value) {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    if !obj["metadata"]
        .get("annotations")
        .is_some_and(Value::is_object)
    {
        obj["metadata"]["annotations"] = json!({});
    }
    obj["metadata"]["annotations"][key] = json!(value.to_string());
}

/// Copies the members of `from` named in `keys` that are present.
fn pick(from: &Value, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .filter_map(|k| {
            from.get(*k)
                .filter(|v| !v.is_null())
                .map(|v| (k.to_string(), v.clone()))
        })
        .collect()
}

fn set_some(m: &mut Map<String, Value>, key: &str, v: Option<&Value>) {
    if let Some(v) = v.filter(|v| !v.is_null()) {
        m.insert(key.into(), v.clone());
    }
}

/// A Go `resource.Quantity` held by value: "0" when unset.
fn quantity_or_zero(v: Option<&Value>) -> Value {
    v.filter(|v| !v.is_null()).cloned().unwrap_or(json!("0"))
}

fn arr(v: &Value, key: &str) -> Vec<Value> {
    v.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn is_cpu_resource(m: &Value) -> bool {
    m.get("type").and_then(Value::as_str) == Some("Resource")
        && m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
}

// ------------------------------------------------------------- v2 -> v1

fn v2_to_v1(mut obj: Value) -> Value {
    drop_round_trip_annotations(&mut obj);
    let spec = obj.get("spec").cloned().unwrap_or(json!({}));
    let status = obj.get("status").cloned().unwrap_or(json!({}));
    let metrics = arr(&spec, "metrics");

    let mut v1_spec = pick(&spec, &["scaleTargetRef", "minReplicas", "maxReplicas"]);
    if let Some(cpu) = metrics.iter().find(|m| is_cpu_resource(m)) {
        set_some(
            &mut v1_spec,
            "targetCPUUtilizationPercentage",
            cpu.pointer("/resource/target/averageUtilization"),
        );
    }
    let other_metrics: Vec<Value> = metrics
        .iter()
        .filter(|m| {
            !(is_cpu_resource(m)
                && m.pointer("/resource/target/averageUtilization")
                    .is_some_and(|u| !u.is_null()))
        })
        .map(metric_spec_to_v1)
        .collect();

    let mut v1_status = pick(&status, &["observedGeneration", "lastScaleTime"]);
    v1_status.insert(
        "currentReplicas".into(),
        status.get("currentReplicas").cloned().unwrap_or(json!(0)),
    );
    v1_status.insert(
        "desiredReplicas".into(),
        status.get("desiredReplicas").cloned().unwrap_or(json!(0)),
    );
    let current = arr(&status, "currentMetrics");
    for m in current.iter().filter(|m| is_cpu_resource(m)) {
        set_some(
            &mut v1_status,
            "currentCPUUtilizationPercentage",
            m.pointer("/resource/current/averageUtilization"),
        );
    }
    let conditions = arr(&status, "conditions");

    if !other_metrics.is_empty() {
        set_annotation(&mut obj, METRIC_SPECS_ANNOTATION, &json!(other_metrics));
    }
    if !current.is_empty() {
        let v1: Vec<Value> = current.iter().map(metric_status_to_v1).collect();
        set_annotation(&mut obj, METRIC_STATUSES_ANNOTATION, &json!(v1));
    }
    if let Some(b) = spec.get("behavior").filter(|b| b.is_object()) {
        set_annotation(&mut obj, BEHAVIOR_ANNOTATION, &behavior_to_go(b));
    }
    if !conditions.is_empty() {
        set_annotation(&mut obj, CONDITIONS_ANNOTATION, &json!(conditions));
    }
    obj["spec"] = Value::Object(v1_spec);
    obj["status"] = Value::Object(v1_status);
    obj
}

/// `Convert_autoscaling_MetricSpec_To_v1_MetricSpec`.
fn metric_spec_to_v1(m: &Value) -> Value {
    let mut out = pick(m, &["type"]);
    let target = |s: &Value| s.get("target").cloned().unwrap_or(json!({}));
    if let Some(s) = m.get("object").filter(|s| s.is_object()) {
        let t = target(s);
        let mut o = Map::new();
        o.insert(
            "target".into(),
            s.get("describedObject").cloned().unwrap_or(json!({})),
        );
        set_some(&mut o, "metricName", s.pointer("/metric/name"));
        o.insert("targetValue".into(), quantity_or_zero(t.get("value")));
        set_some(&mut o, "selector", s.pointer("/metric/selector"));
        set_some(&mut o, "averageValue", t.get("averageValue"));
        out.insert("object".into(), Value::Object(o));
    }
    if let Some(s) = m.get("pods").filter(|s| s.is_object()) {
        let t = target(s);
        let mut o = Map::new();
        set_some(&mut o, "metricName", s.pointer("/metric/name"));
        o.insert(
            "targetAverageValue".into(),
            quantity_or_zero(t.get("averageValue")),
        );
        set_some(&mut o, "selector", s.pointer("/metric/selector"));
        out.insert("pods".into(), Value::Object(o));
    }
    for key in ["resource", "containerResource"] {
        if let Some(s) = m.get(key).filter(|s| s.is_object()) {
            let t = target(s);
            let mut o = pick(s, &["name", "container"]);
            set_some(
                &mut o,
                "targetAverageUtilization",
                t.get("averageUtilization"),
            );
            set_some(&mut o, "targetAverageValue", t.get("averageValue"));
            out.insert(key.into(), Value::Object(o));
        }
    }
    if let Some(s) = m.get("external").filter(|s| s.is_object()) {
        let t = target(s);
        let mut o = Map::new();
        set_some(&mut o, "metricName", s.pointer("/metric/name"));
        set_some(&mut o, "metricSelector", s.pointer("/metric/selector"));
        set_some(&mut o, "targetValue", t.get("value"));
        set_some(&mut o, "targetAverageValue", t.get("averageValue"));
        out.insert("external".into(), Value::Object(o));
    }
    Value::Object(out)
}

/// `Convert_autoscaling_MetricStatus_To_v1_MetricStatus`.
fn metric_status_to_v1(m: &Value) -> Value {
    let mut out = pick(m, &["type"]);
    let current = |s: &Value| s.get("current").cloned().unwrap_or(json!({}));
    if let Some(s) = m.get("object").filter(|s| s.is_object()) {
        let c = current(s);
        let mut o = Map::new();
        o.insert(
            "target".into(),
            s.get("describedObject").cloned().unwrap_or(json!({})),
        );
        set_some(&mut o, "metricName", s.pointer("/metric/name"));
        o.insert("currentValue".into(), quantity_or_zero(c.get("value")));
        set_some(&mut o, "selector", s.pointer("/metric/selector"));
        set_some(&mut o, "averageValue", c.get("averageValue"));
        out.insert("object".into(), Value::Object(o));
    }
    if let Some(s) = m.get("pods").filter(|s| s.is_object()) {
        let c = current(s);
        let mut o = Map::new();
        set_some(&mut o, "metricName", s.pointer("/metric/name"));
        o.insert(
            "currentAverageValue".into(),
            quantity_or_zero(c.get("averageValue")),
        );
        set_some(&mut o, "selector", s.pointer("/metric/selector"));
        out.insert("pods".into(), Value::Object(o));
    }
    for key in ["resource", "containerResource"] {
        if let Some(s) = m.get(key).filter(|s| s.is_object()) {
            let c = current(s);
            let mut o = pick(s, &["name", "container"]);
            set_some(
                &mut o,
                "currentAverageUtilization",
                c.get("averageUtilization"),
            );
            o.insert(
                "currentAverageValue".into(),
                quantity_or_zero(c.get("averageValue")),
            );
            out.insert(key.into(), Value::Object(o));
        }
    }
    if let Some(s) = m.get("external").filter(|s| s.is_object()) {
        let c = current(s);
        let mut o = Map::new();
        set_some(&mut o, "metricName", s.pointer("/metric/name"));
        set_some(&mut o, "metricSelector", s.pointer("/metric/selector"));
        o.insert("currentValue".into(), quantity_or_zero(c.get("value")));
        set_some(&mut o, "currentAverageValue", c.get("averageValue"));
        out.insert("external".into(), Value::Object(o));
    }
    Value::Object(out)
}

/// The internal `HorizontalPodAutoscalerBehavior` as `encoding/json`
/// writes it: Go field names, nil pointers as `null`.
fn behavior_to_go(b: &Value) -> Value {
    let rules = |r: Option<&Value>| match r.filter(|r| r.is_object()) {
        None => Value::Null,
        Some(r) => {
            let policies = match r.get("policies").and_then(Value::as_array) {
                None => Value::Null,
                Some(ps) => Value::Array(
                    ps.iter()
                        .map(|p| {
                            json!({
                                "Type": p.get("type").cloned().unwrap_or(json!("")),
                                "Value": p.get("value").cloned().unwrap_or(json!(0)),
                                "PeriodSeconds": p.get("periodSeconds").cloned().unwrap_or(json!(0)),
                            })
                        })
                        .collect(),
                ),
            };
            json!({
                "StabilizationWindowSeconds": r.get("stabilizationWindowSeconds").cloned().unwrap_or(Value::Null),
                "SelectPolicy": r.get("selectPolicy").cloned().unwrap_or(Value::Null),
                "Policies": policies,
            })
        }
    };
    json!({
        "ScaleUp": rules(b.get("scaleUp")),
        "ScaleDown": rules(b.get("scaleDown")),
    })
}

// ------------------------------------------------------------- v1 -> v2

/// A member of a Go-marshalled object, its name matched case-insensitively.
fn go_field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

/// The behavior annotation back in v2's shape; `None` when it is malformed
/// or empty (upstream only moves well-formed data into the field).
fn behavior_from_go(text: &str) -> Option<Value> {
    let b: Value = serde_json::from_str(text).ok()?;
    if !b.is_object() {
        return None;
    }
    let rules = |r: &Value| -> Option<Value> {
        if !r.is_object() {
            return None;
        }
        let mut out = Map::new();
        set_some(
            &mut out,
            "stabilizationWindowSeconds",
            go_field(r, "StabilizationWindowSeconds"),
        );
        set_some(&mut out, "selectPolicy", go_field(r, "SelectPolicy"));
        if let Some(ps) = go_field(r, "Policies").and_then(Value::as_array) {
            let ps: Vec<Value> = ps
                .iter()
                .map(|p| {
                    json!({
                        "type": go_field(p, "Type").cloned().unwrap_or(json!("")),
                        "value": go_field(p, "Value").cloned().unwrap_or(json!(0)),
                        "periodSeconds": go_field(p, "PeriodSeconds").cloned().unwrap_or(json!(0)),
                    })
                })
                .collect();
            out.insert("policies".into(), json!(ps));
        }
        Some(Value::Object(out))
    };
    let mut out = Map::new();
    if let Some(r) = go_field(&b, "ScaleUp").and_then(rules) {
        out.insert("scaleUp".into(), r);
    }
    if let Some(r) = go_field(&b, "ScaleDown").and_then(rules) {
        out.insert("scaleDown".into(), r);
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn annotation_json(obj: &Value, key: &str) -> Result<Option<Value>, String> {
    match obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
    {
        None => Ok(None),
        Some(v) => {
            let text = v.as_str().unwrap_or("");
            serde_json::from_str(text)
                .map(Some)
                .map_err(|e| format!("annotation {key}: {e}"))
        }
    }
}

fn v1_to_v2(mut obj: Value) -> Result<Value, String> {
    let spec = obj.get("spec").cloned().unwrap_or(json!({}));
    let status = obj.get("status").cloned().unwrap_or(json!({}));

    let mut v2_spec = pick(&spec, &["scaleTargetRef", "minReplicas", "maxReplicas"]);
    let mut metrics: Vec<Value> = Vec::new();
    if let Some(other) = annotation_json(&obj, METRIC_SPECS_ANNOTATION)? {
        let other = other.as_array().cloned().unwrap_or_default();
        metrics.extend(other.iter().map(metric_spec_from_v1));
    }
    if let Some(t) = spec
        .get("targetCPUUtilizationPercentage")
        .filter(|t| !t.is_null())
    {
        metrics.push(cpu_utilization(t.clone()));
    }
    if metrics.is_empty() {
        // v1 formerly had an implicit default in the controller; the
        // conversion makes it explicit.
        metrics.push(cpu_utilization(json!(DEFAULT_CPU_UTILIZATION)));
    }
    v2_spec.insert("metrics".into(), json!(metrics));
    if let Some(b) = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(BEHAVIOR_ANNOTATION))
        .and_then(Value::as_str)
        .and_then(behavior_from_go)
    {
        v2_spec.insert("behavior".into(), b);
    }

    let mut v2_status = pick(
        &status,
        &[
            "observedGeneration",
            "lastScaleTime",
            "currentReplicas",
            "desiredReplicas",
        ],
    );
    if let Some(current) = annotation_json(&obj, METRIC_STATUSES_ANNOTATION)? {
        let current = current.as_array().cloned().unwrap_or_default();
        let v2: Vec<Value> = current.iter().map(metric_status_from_v1).collect();
        v2_status.insert("currentMetrics".into(), json!(v2));
    } else if let Some(c) = status
        .get("currentCPUUtilizationPercentage")
        .filter(|c| !c.is_null())
    {
        v2_status.insert(
            "currentMetrics".into(),
            json!([{
                "type": "Resource",
                "resource": { "name": "cpu", "current": { "averageUtilization": c } }
            }]),
        );
    }
    if let Some(conditions) = annotation_json(&obj, CONDITIONS_ANNOTATION)? {
        v2_status.insert("conditions".into(), conditions);
    }

    drop_round_trip_annotations(&mut obj);
    obj["spec"] = Value::Object(v2_spec);
    if obj.get("status").is_some() || !v2_status.is_empty() {
        obj["status"] = Value::Object(v2_status);
    }
    Ok(obj)
}

fn cpu_utilization(percent: Value) -> Value {
    json!({
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": { "type": "Utilization", "averageUtilization": percent }
        }
    })
}

fn metric_identifier(name: Option<&Value>, selector: Option<&Value>) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), name.cloned().unwrap_or(json!("")));
    set_some(&mut m, "selector", selector);
    Value::Object(m)
}

/// `Convert_v1_MetricSpec_To_autoscaling_MetricSpec`.
fn metric_spec_from_v1(m: &Value) -> Value {
    let mut out = pick(m, &["type"]);
    if let Some(s) = m.get("object").filter(|s| s.is_object()) {
        let average = s.get("averageValue").filter(|v| !v.is_null());
        let mut t = Map::new();
        t.insert(
            "type".into(),
            json!(if average.is_some() {
                "AverageValue"
            } else {
                "Value"
            }),
        );
        t.insert("value".into(), quantity_or_zero(s.get("targetValue")));
        set_some(&mut t, "averageValue", average);
        out.insert(
            "object".into(),
            json!({
                "describedObject": s.get("target").cloned().unwrap_or(json!({})),
                "target": t,
                "metric": metric_identifier(s.get("metricName"), s.get("selector")),
            }),
        );
    }
    if let Some(s) = m.get("pods").filter(|s| s.is_object()) {
        out.insert(
            "pods".into(),
            json!({
                "metric": metric_identifier(s.get("metricName"), s.get("selector")),
                "target": {
                    "type": "AverageValue",
                    "averageValue": quantity_or_zero(s.get("targetAverageValue")),
                },
            }),
        );
    }
    for key in ["resource", "containerResource"] {
        if let Some(s) = m.get(key).filter(|s| s.is_object()) {
            let utilization = s.get("targetAverageUtilization").filter(|v| !v.is_null());
            let mut t = Map::new();
            t.insert(
                "type".into(),
                json!(if utilization.is_some() {
                    "Utilization"
                } else {
                    "AverageValue"
                }),
            );
            set_some(&mut t, "averageUtilization", utilization);
            set_some(&mut t, "averageValue", s.get("targetAverageValue"));
            let mut o = pick(s, &["name", "container"]);
            o.insert("target".into(), Value::Object(t));
            out.insert(key.into(), Value::Object(o));
        }
    }
    if let Some(s) = m.get("external").filter(|s| s.is_object()) {
        let value = s.get("targetValue").filter(|v| !v.is_null());
        let mut t = Map::new();
        t.insert(
            "type".into(),
            json!(if value.is_some() {
                "Value"
            } else {
                "AverageValue"
            }),
        );
        set_some(&mut t, "value", value);
        set_some(&mut t, "averageValue", s.get("targetAverageValue"));
        out.insert(
            "external".into(),
            json!({
                "metric": metric_identifier(s.get("metricName"), s.get("metricSelector")),
                "target": t,
            }),
        );
    }
    Value::Object(out)
}

/// `Convert_v1_MetricStatus_To_autoscaling_MetricStatus`.
fn metric_status_from_v1(m: &Value) -> Value {
    let mut out = pick(m, &["type"]);
    if let Some(s) = m.get("object").filter(|s| s.is_object()) {
        let mut c = Map::new();
        c.insert("value".into(), quantity_or_zero(s.get("currentValue")));
        set_some(&mut c, "averageValue", s.get("averageValue"));
        out.insert(
            "object".into(),
            json!({
                "describedObject": s.get("target").cloned().unwrap_or(json!({})),
                "current": c,
                "metric": metric_identifier(s.get("metricName"), s.get("selector")),
            }),
        );
    }
    if let Some(s) = m.get("pods").filter(|s| s.is_object()) {
        out.insert(
            "pods".into(),
            json!({
                "metric": metric_identifier(s.get("metricName"), s.get("selector")),
                "current": { "averageValue": quantity_or_zero(s.get("currentAverageValue")) },
            }),
        );
    }
    for key in ["resource", "containerResource"] {
        if let Some(s) = m.get(key).filter(|s| s.is_object()) {
            let mut c = Map::new();
            c.insert(
                "averageValue".into(),
                quantity_or_zero(s.get("currentAverageValue")),
            );
            set_some(
                &mut c,
                "averageUtilization",
                s.get("currentAverageUtilization"),
            );
            let mut o = pick(s, &["name", "container"]);
            o.insert("current".into(), Value::Object(c));
            out.insert(key.into(), Value::Object(o));
        }
    }
    if let Some(s) = m.get("external").filter(|s| s.is_object()) {
        let mut c = Map::new();
        c.insert("value".into(), quantity_or_zero(s.get("currentValue")));
        set_some(&mut c, "averageValue", s.get("currentAverageValue"));
        out.insert(
            "external".into(),
            json!({
                "metric": metric_identifier(s.get("metricName"), s.get("metricSelector")),
                "current": c,
            }),
        );
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1_hpa() -> Value {
        json!({
            "apiVersion": "autoscaling/v1",
            "kind": "HorizontalPodAutoscaler",
            "metadata": { "name": "web", "namespace": "default" },
            "spec": {
                "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "web" },
                "minReplicas": 2,
                "maxReplicas": 5,
                "targetCPUUtilizationPercentage": 80
            }
        })
    }

    #[test]
    fn v1_cpu_target_becomes_a_v2_resource_metric() {
        let v2 = convert_hpa(v1_hpa(), "v1", "v2").unwrap();
        assert_eq!(v2["spec"]["metrics"], json!([cpu_utilization(json!(80))]));
        assert_eq!(v2["spec"]["minReplicas"], 2);
        assert!(v2["spec"].get("targetCPUUtilizationPercentage").is_none());
        assert!(v2["metadata"].get("annotations").is_none());
    }

    #[test]
    fn v1_without_a_target_gets_the_default_cpu_metric() {
        let mut v1 = v1_hpa();
        v1["spec"]
            .as_object_mut()
            .unwrap()
            .remove("targetCPUUtilizationPercentage");
        let v2 = convert_hpa(v1, "v1", "v2").unwrap();
        assert_eq!(v2["spec"]["metrics"], json!([cpu_utilization(json!(80))]));
    }

    #[test]
    fn v2_metrics_status_conditions_and_behavior_round_trip_through_v1() {
        let v2 = json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": { "name": "web", "annotations": { "keep": "me" } },
            "spec": {
                "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "web" },
                "minReplicas": 1,
                "maxReplicas": 4,
                "metrics": [
                    { "type": "Resource", "resource": { "name": "memory", "target": { "type": "AverageValue", "averageValue": "100Mi" } } },
                    cpu_utilization(json!(60)),
                ],
                "behavior": { "scaleDown": { "stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [{ "type": "Pods", "value": 1, "periodSeconds": 30 }] } }
            },
            "status": {
                "currentReplicas": 2,
                "desiredReplicas": 3,
                "currentMetrics": [
                    { "type": "Resource", "resource": { "name": "cpu", "current": { "averageUtilization": 70, "averageValue": "140m" } } }
                ],
                "conditions": [{ "type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale", "message": "ok", "lastTransitionTime": "2024-01-01T00:00:00Z" }]
            }
        });
        let v1 = convert_hpa(v2.clone(), "v2", "v1").unwrap();
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 70);
        let a = &v1["metadata"]["annotations"];
        assert_eq!(a["keep"], "me");
        let specs: Value =
            serde_json::from_str(a[METRIC_SPECS_ANNOTATION].as_str().unwrap()).unwrap();
        assert_eq!(
            specs,
            json!([{ "type": "Resource", "resource": { "name": "memory", "targetAverageValue": "100Mi" } }])
        );
        let behavior: Value =
            serde_json::from_str(a[BEHAVIOR_ANNOTATION].as_str().unwrap()).unwrap();
        assert_eq!(behavior["ScaleUp"], Value::Null);
        assert_eq!(behavior["ScaleDown"]["StabilizationWindowSeconds"], 60);
        assert!(a.get(CONDITIONS_ANNOTATION).is_some());

        let back = convert_hpa(v1, "v1", "v2").unwrap();
        // upstream puts the annotation's metrics first, then the CPU one.
        assert_eq!(back["spec"]["metrics"], v2["spec"]["metrics"]);
        assert_eq!(back["spec"]["behavior"], v2["spec"]["behavior"]);
        assert_eq!(back["status"], v2["status"]);
        assert_eq!(back["metadata"], v2["metadata"]);
    }

    #[test]
    fn a_fresh_v2_object_shows_zero_replicas_in_v1_status() {
        let v2 = convert_hpa(v1_hpa(), "v1", "v2").unwrap();
        let v1 = convert_hpa(v2, "v2", "v1").unwrap();
        assert_eq!(
            v1["status"],
            json!({ "currentReplicas": 0, "desiredReplicas": 0 })
        );
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 80);
        assert!(v1["metadata"].get("annotations").is_none());
    }

    #[test]
    fn round_trip_annotations_sent_to_v2_are_dropped() {
        let mut v2 = convert_hpa(v1_hpa(), "v1", "v2").unwrap();
        v2["metadata"]["annotations"] = json!({ CONDITIONS_ANNOTATION: "[]" });
        let v2 = convert_hpa(v2, "v2", "v2").unwrap();
        assert!(v2["metadata"].get("annotations").is_none());
    }
}
