//! Subresources that are views of their parent: `scale` (an
//! `autoscaling/v1` Scale over `spec.replicas`) and `pods/binding` (how the
//! scheduler assigns a pod to a node).

use serde_json::{json, Value};

use crate::registry::{meta_str, Registry, WriteOptions};
use crate::resources::{self, ResourceInfo};
use crate::status::{ApiError, ApiResult, Cause};

/// The selector of a workload as the string form `kubectl` shows
/// (`app=web,tier in (a,b)`), for Scale's `status.selector`.
fn selector_string(obj: &Value) -> String {
    let sel = obj.pointer("/spec/selector");
    let Some(sel) = sel else { return String::new() };
    // ReplicationControllers have a plain map selector.
    let (labels, exprs) =
        if sel.get("matchLabels").is_some() || sel.get("matchExpressions").is_some() {
            (sel.get("matchLabels"), sel.get("matchExpressions"))
        } else {
            (Some(sel), None)
        };
    let mut parts: Vec<String> = Vec::new();
    if let Some(Value::Object(m)) = labels {
        let mut kv: Vec<(&String, &Value)> = m.iter().collect();
        kv.sort_by(|a, b| a.0.cmp(b.0));
        parts.extend(
            kv.into_iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))),
        );
    }
    if let Some(Value::Array(list)) = exprs {
        for e in list {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

/// The Scale view of a workload object.
pub fn scale_of(obj: &Value) -> Value {
    let m = obj.get("metadata").cloned().unwrap_or(json!({}));
    let mut meta = json!({});
    for f in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(f) {
            meta[f] = v.clone();
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": { "replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1) },
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector_string(obj),
        },
    })
}

pub async fn get_scale(
    reg: &Registry,
    r: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<Value> {
    reg.get(r, ns, name).await.map(|o| scale_of(&o))
}

/// Applies a Scale to its workload: only `spec.replicas` changes. A
/// resourceVersion in the Scale is a precondition on the workload.
pub async fn update_scale(
    reg: &Registry,
    r: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    scale: &Value,
    opts: &WriteOptions,
) -> ApiResult<Value> {
    let replicas = match scale.pointer("/spec/replicas") {
        Some(Value::Number(n)) if n.as_i64().is_some_and(|v| v >= 0) => n.as_i64().unwrap_or(0),
        Some(v) => {
            return Err(ApiError::invalid(
                scale_resource(),
                name,
                vec![Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!("Invalid value: {v}: must be greater than or equal to 0"),
                    field: "spec.replicas".into(),
                }],
            ))
        }
        None => 0,
    };
    let mut obj = reg.get(r, ns, name).await?;
    if let Some(rv) = meta_str(scale, "resourceVersion").filter(|s| !s.is_empty()) {
        obj["metadata"]["resourceVersion"] = json!(rv);
    }
    obj["spec"]["replicas"] = json!(replicas);
    let (updated, _) = reg.update(r, ns, name, None, obj, opts).await?;
    Ok(scale_of(&updated))
}

/// The description of `autoscaling/v1` Scale, for errors and patches.
pub fn scale_info() -> &'static ResourceInfo {
    scale_resource()
}

fn scale_resource() -> &'static ResourceInfo {
    // Scale errors name the kind "Scale.autoscaling" as upstream does.
    static SCALE: ResourceInfo = ResourceInfo {
        group: "autoscaling",
        version: "v1",
        resource: "scale",
        singular: "scale",
        kind: "Scale",
        list_kind: "ScaleList",
        namespaced: true,
        verbs: &[],
        short_names: &[],
        categories: &[],
        subresources: &[],
    };
    &SCALE
}

/// Binds a pod to a node (`POST pods/<name>/binding` or `POST bindings`):
/// sets `spec.nodeName` and the PodScheduled condition, once.
pub async fn bind(reg: &Registry, ns: &str, pod_name: &str, binding: &Value) -> ApiResult<Value> {
    let pods = resources::lookup("", "v1", "pods").expect("pods are served");
    let target = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let bindings = resources::lookup("", "v1", "bindings").expect("bindings are served");
    if target.is_empty() {
        return Err(ApiError::invalid(
            bindings,
            pod_name,
            vec![Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: "target.name".into(),
            }],
        ));
    }
    if let Some(kind) = binding.pointer("/target/kind").and_then(Value::as_str) {
        if !kind.is_empty() && kind != "Node" {
            return Err(ApiError::invalid(
                bindings,
                pod_name,
                vec![Cause {
                    reason: "FieldValueNotSupported".into(),
                    message: format!("Unsupported value: {kind:?}: supported values: \"Node\""),
                    field: "target.kind".into(),
                }],
            ));
        }
    }
    let uid = binding
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .map(str::to_string);
    let annotations = binding
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned();
    reg.guaranteed_update(pods, Some(ns), pod_name, |pod| {
        if meta_str(pod, "deletionTimestamp").is_some() {
            return Err(ApiError::conflict_because(pods, pod_name, &format!("pod {pod_name} is being deleted, cannot be assigned to a host")));
        }
        if let Some(current) = pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            return Err(ApiError {
                code: 409,
                reason: "Conflict",
                message: format!("Operation cannot be fulfilled on pods/binding \"{pod_name}\": pod {pod_name} is already assigned to node \"{current}\""),
                details: Some(json!({ "name": pod_name, "kind": "pods/binding" })),
            });
        }
        if let Some(uid) = &uid {
            if meta_str(pod, "uid") != Some(uid.as_str()) {
                return Err(ApiError::conflict_because(pods, pod_name, "the UID in the binding does not match the pod"));
            }
        }
        pod["spec"]["nodeName"] = json!(target);
        if let Some(ann) = &annotations {
            if !pod["metadata"]["annotations"].is_object() {
                pod["metadata"]["annotations"] = json!({});
            }
            for (k, v) in ann {
                pod["metadata"]["annotations"][k] = v.clone();
            }
        }
        if !pod["status"].is_object() {
            pod["status"] = json!({});
        }
        let mut conditions: Vec<Value> = pod["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.get("type") != Some(&json!("PodScheduled")))
            .collect();
        conditions.push(json!({ "type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": crate::registry::now_rfc3339() }));
        pod["status"]["conditions"] = json!(conditions);
        Ok(())
    })
    .await?;
    Ok(
        json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_reads_replicas_and_renders_the_selector() {
        let d = json!({
            "metadata": { "name": "web", "namespace": "default", "resourceVersion": "7" },
            "spec": { "replicas": 3, "selector": { "matchLabels": { "tier": "fe", "app": "web" }, "matchExpressions": [{ "key": "env", "operator": "In", "values": ["a", "b"] }] } },
            "status": { "replicas": 2 },
        });
        let s = scale_of(&d);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "app=web,tier=fe,env in (a,b)");
        assert_eq!(s["metadata"]["resourceVersion"], "7");
        let rc = json!({ "metadata": { "name": "r" }, "spec": { "selector": { "app": "x" } } });
        assert_eq!(scale_of(&rc)["status"]["selector"], "app=x");
        assert_eq!(scale_of(&rc)["spec"]["replicas"], 1);
    }
}

fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn too_many_requests(message: &str, cause: Option<String>) -> ApiError {
    let mut details = json!({ "causes": [] });
    if let Some(c) = cause {
        details["causes"] = json!([{ "reason": "DisruptionBudget", "message": c }]);
    }
    ApiError {
        code: 429,
        reason: "TooManyRequests",
        message: message.to_string(),
        details: Some(details),
    }
}

/// Evicts a pod (`POST pods/<name>/eviction`), honouring the
/// PodDisruptionBudget that covers it, as upstream's eviction REST does:
/// pods that are finished, Pending or already terminating go at once; a
/// budget with no disruptions allowed refuses
/// with 429; otherwise the budget's allowance is taken (compare-and-swap on
/// its status) and the pod is deleted with the eviction's delete options.
pub async fn evict(reg: &Registry, ns: &str, name: &str, eviction: &Value) -> ApiResult<Value> {
    let pods = resources::lookup("", "v1", "pods").expect("pods are served");
    let pdbs = resources::lookup("policy", "v1", "poddisruptionbudgets").expect("PDBs are served");
    let pod = reg.get(pods, Some(ns), name).await?;
    let delete_opts = crate::registry::DeleteOptions::from_request(
        eviction.get("deleteOptions"),
        &crate::request::Query::default(),
    )?;
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    let success = json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 });
    if phase == "Succeeded"
        || phase == "Failed"
        || phase == "Pending"
        || pod.pointer("/metadata/deletionTimestamp").is_some()
    {
        mark_disruption_target(reg, ns, name).await?;
        reg.delete(pods, Some(ns), name, &delete_opts).await?;
        return Ok(success);
    }
    let labels: std::collections::BTreeMap<String, String> = pod
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let list = reg
        .list(
            pdbs,
            Some(ns),
            &crate::registry::ListOptions::default(),
            &|_| true,
        )
        .await?;
    let matching: Vec<Value> = list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|pdb| {
            let sel: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector> = pdb
                .pointer("/spec/selector")
                .and_then(|s| serde_json::from_value(s.clone()).ok());
            match api::LabelSelector::from_metav1(sel.as_ref()) {
                // An empty selector matches nothing for PDBs in policy/v1
                // only when absent; a present empty one matches all.
                Ok(s) => sel.is_some() && s.matches(&labels),
                Err(_) => false,
            }
        })
        .collect();
    match matching.len() {
        0 => {
            mark_disruption_target(reg, ns, name).await?;
            reg.delete(pods, Some(ns), name, &delete_opts).await?;
            return Ok(success);
        }
        1 => {}
        _ => return Err(ApiError::internal("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")),
    }
    let pdb_name = matching[0]
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let always = matching[0]
        .pointer("/spec/unhealthyPodEvictionPolicy")
        .and_then(Value::as_str)
        == Some("AlwaysAllow");
    let ready = pod_ready(&pod);
    let pod_name = name.to_string();
    reg.guaranteed_update(pdbs, Some(ns), &pdb_name, |pdb| {
        let status = pdb.get("status").cloned().unwrap_or(json!({}));
        let generation = pdb.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
        let observed = status.get("observedGeneration").and_then(Value::as_i64).unwrap_or(0);
        let healthy = status.get("currentHealthy").and_then(Value::as_i64).unwrap_or(0);
        let desired = status.get("desiredHealthy").and_then(Value::as_i64).unwrap_or(0);
        // An unready pod does not count against the budget when the
        // budget is met (IfHealthyBudget) or by policy (AlwaysAllow).
        if !ready && (always || (healthy >= desired && desired > 0)) {
            return Ok(());
        }
        if observed < generation {
            return Err(too_many_requests(
                "Cannot evict pod as it would violate the pod's disruption budget.",
                Some(format!("The disruption budget {pdb_name} is still being processed by the server.")),
            ));
        }
        let allowed = status.get("disruptionsAllowed").and_then(Value::as_i64).unwrap_or(0);
        if allowed <= 0 {
            return Err(too_many_requests(
                "Cannot evict pod as it would violate the pod's disruption budget.",
                Some(format!("The disruption budget {pdb_name} needs {desired} healthy pods and has {healthy} currently")),
            ));
        }
        if !pdb["status"].is_object() {
            pdb["status"] = json!({});
        }
        pdb["status"]["disruptionsAllowed"] = json!(allowed - 1);
        if allowed == 1 {
            set_disruption_allowed_false(&mut pdb["status"], generation);
        }
        if !pdb["status"]["disruptedPods"].is_object() {
            pdb["status"]["disruptedPods"] = json!({});
        }
        pdb["status"]["disruptedPods"][pod_name.as_str()] = json!(crate::registry::now_rfc3339());
        Ok(())
    })
    .await?;
    mark_disruption_target(reg, ns, name).await?;
    reg.delete(pods, Some(ns), name, &delete_opts).await?;
    Ok(success)
}

/// The DisruptionAllowed condition turned False (InsufficientPods) when an
/// eviction takes the last allowed disruption (upstream
/// `UpdateDisruptionAllowedCondition`).
fn set_disruption_allowed_false(status: &mut Value, generation: i64) {
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    let conditions = status["conditions"].as_array_mut().expect("an array");
    let now = crate::registry::now_rfc3339();
    match conditions
        .iter_mut()
        .find(|c| c["type"] == "DisruptionAllowed")
    {
        Some(c) => {
            if c["status"] != "False" {
                c["status"] = json!("False");
                c["lastTransitionTime"] = json!(now);
            }
            c["reason"] = json!("InsufficientPods");
            c["message"] = json!("");
            c["observedGeneration"] = json!(generation);
        }
        None => conditions.push(json!({
            "type": "DisruptionAllowed",
            "status": "False",
            "reason": "InsufficientPods",
            "message": "",
            "observedGeneration": generation,
            "lastTransitionTime": now,
        })),
    }
}

/// Upstream's eviction marks the pod before deleting it: condition
/// DisruptionTarget, reason EvictionByEvictionAPI.
async fn mark_disruption_target(reg: &Registry, ns: &str, name: &str) -> ApiResult<()> {
    let pods = resources::lookup("", "v1", "pods").expect("pods are served");
    reg.guaranteed_update(pods, Some(ns), name, |pod| {
        if !pod["status"].is_object() {
            pod["status"] = json!({});
        }
        if !pod["status"]["conditions"].is_array() {
            pod["status"]["conditions"] = json!([]);
        }
        let conditions = pod["status"]["conditions"]
            .as_array_mut()
            .expect("an array");
        let wanted = json!({
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "EvictionByEvictionAPI",
            "message": "Eviction API: evicting",
            "lastTransitionTime": crate::registry::now_rfc3339(),
        });
        match conditions
            .iter_mut()
            .find(|c| c["type"] == "DisruptionTarget")
        {
            Some(c) if c["status"] == "True" && c["reason"] == "EvictionByEvictionAPI" => {}
            Some(c) => *c = wanted,
            None => conditions.push(wanted),
        }
        Ok(())
    })
    .await
    .map(|_| ())
}
