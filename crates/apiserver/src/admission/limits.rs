//! LimitRanger and ResourceQuota admission.
//!
//! LimitRanger fills container requests and limits from the namespace's
//! LimitRanges and refuses values outside their min/max. ResourceQuota
//! refuses a create that would take a namespace over a quota's hard limits;
//! usage is computed from the objects themselves at admission time, so the
//! decision does not depend on the quota controller having written
//! `status.used` yet (concurrent creates may still race past a limit by
//! one; the quota controller's recount then shows it).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, Weak};

use api::Quantity;
use async_trait::async_trait;
use serde_json::{json, Value};

use super::Admission;
use crate::registry::{ListOptions, Registry};
use crate::resources::{lookup, ResourceInfo};
use crate::status::{ApiError, ApiResult};

#[derive(Default)]
pub struct LimitsAdmission {
    registry: OnceLock<Weak<Registry>>,
}

impl LimitsAdmission {
    pub fn new() -> Arc<LimitsAdmission> {
        Arc::new(LimitsAdmission::default())
    }

    pub fn attach(&self, registry: &Arc<Registry>) {
        let _ = self.registry.set(Arc::downgrade(registry));
    }

    fn registry(&self) -> ApiResult<Arc<Registry>> {
        self.registry
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| ApiError::unavailable("the server is not ready to admit objects"))
    }
}

async fn items(reg: &Registry, group: &str, resource: &str, ns: &str) -> ApiResult<Vec<Value>> {
    let Some(r) = lookup(group, "v1", resource) else {
        return Ok(Vec::new());
    };
    let list = reg
        .list(r, Some(ns), &ListOptions::default(), &|_| true)
        .await?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

fn q(v: Option<&Value>) -> Option<Quantity> {
    v.and_then(|v| match v {
        Value::String(s) => Quantity::parse(s).ok(),
        Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
        _ => None,
    })
}

/// `a + b` (the quantity type adds in place).
fn plus(mut a: Quantity, b: &Quantity) -> Quantity {
    a.add(b);
    a
}

fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn forbidden(r: &ResourceInfo, obj: &Value, why: String) -> ApiError {
    ApiError::forbidden(format!(
        "{} \"{}\" is forbidden: {why}",
        r.qualified_resource(),
        name_of(obj)
    ))
}

/// Applies the Container limit ranges to one container, returning the
/// first violation.
fn limit_container(c: &mut Value, item: &Value) -> Result<(), String> {
    if !c["resources"].is_object() {
        c["resources"] = json!({});
    }
    for (from, to) in [("default", "limits"), ("defaultRequest", "requests")] {
        if let Some(defaults) = item.get(from).and_then(Value::as_object) {
            for (res, v) in defaults {
                if c["resources"][to].get(res).is_none() {
                    if !c["resources"][to].is_object() {
                        c["resources"][to] = json!({});
                    }
                    c["resources"][to][res] = v.clone();
                }
            }
        }
    }
    // A request defaults to the limit when only the limit is known.
    if let Some(limits) = c["resources"]["limits"].as_object().cloned() {
        for (res, v) in limits {
            if c["resources"]["requests"].get(&res).is_none() {
                if !c["resources"]["requests"].is_object() {
                    c["resources"]["requests"] = json!({});
                }
                c["resources"]["requests"][&res] = v;
            }
        }
    }
    if let Some(mins) = item.get("min").and_then(Value::as_object) {
        for (res, min) in mins {
            let (Some(minq), req) = (q(Some(min)), q(c["resources"]["requests"].get(res))) else {
                continue;
            };
            match req {
                Some(r) if r >= minq => {}
                Some(_) => {
                    return Err(format!(
                        "minimum {res} usage per Container is {}, but request is {}",
                        min.as_str().map(str::to_string).unwrap_or(min.to_string()),
                        c["resources"]["requests"][res].as_str().unwrap_or("")
                    ))
                }
                None => {
                    return Err(format!(
                        "minimum {res} usage per Container is {}.  No request is specified",
                        min.as_str().unwrap_or("")
                    ))
                }
            }
        }
    }
    if let Some(maxs) = item.get("max").and_then(Value::as_object) {
        for (res, max) in maxs {
            let (Some(maxq), lim) = (q(Some(max)), q(c["resources"]["limits"].get(res))) else {
                continue;
            };
            match lim {
                Some(l) if l <= maxq => {}
                Some(_) => {
                    return Err(format!(
                        "maximum {res} usage per Container is {}, but limit is {}",
                        max.as_str().map(str::to_string).unwrap_or(max.to_string()),
                        c["resources"]["limits"][res].as_str().unwrap_or("")
                    ))
                }
                None => {
                    return Err(format!(
                        "maximum {res} usage per Container is {}.  No limit is specified",
                        max.as_str().unwrap_or("")
                    ))
                }
            }
        }
    }
    Ok(())
}

/// What a pod adds to each compute quota resource.
fn pod_usage(pod: &Value) -> BTreeMap<String, Quantity> {
    let mut out: BTreeMap<String, Quantity> = BTreeMap::new();
    let mut add = |k: &str, v: Quantity| {
        let cur = out.remove(k).unwrap_or_else(Quantity::zero);
        out.insert(k.to_string(), plus(cur, &v));
    };
    for c in pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        for res in ["cpu", "memory", "ephemeral-storage"] {
            if let Some(v) = q(c.pointer(&format!("/resources/requests/{res}"))) {
                add(&format!("requests.{res}"), v.clone());
                if res != "ephemeral-storage" {
                    add(res, v);
                }
            }
            if let Some(v) = q(c.pointer(&format!("/resources/limits/{res}"))) {
                add(&format!("limits.{res}"), v);
            }
        }
    }
    // The RuntimeClass overhead, as upstream's PodRequests (always) and
    // PodLimits (where the containers set a limit) add it.
    let overhead = pod.pointer("/spec/overhead").and_then(Value::as_object);
    for (res, v) in overhead.into_iter().flatten() {
        let Some(v) = q(Some(v)).filter(|_| res != "pods") else {
            continue;
        };
        add(&format!("requests.{res}"), v.clone());
        if res == "cpu" || res == "memory" {
            add(res, v.clone());
        }
        let limited = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["resources"]["limits"].get(res).is_some())
            });
        if limited {
            add(&format!("limits.{res}"), v);
        }
    }
    add("pods", Quantity::parse("1").expect("1 is a quantity"));
    add("count/pods", Quantity::parse("1").expect("1 is a quantity"));
    out
}

fn terminal(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded") | Some("Failed")
    )
}

/// The quota resource names that count objects of `r`.
fn count_names(r: &ResourceInfo) -> Vec<String> {
    let mut names = vec![if r.group.is_empty() {
        format!("count/{}", r.resource)
    } else {
        format!("count/{}.{}", r.resource, r.group)
    }];
    if r.group.is_empty() {
        match r.resource {
            "services"
            | "configmaps"
            | "secrets"
            | "persistentvolumeclaims"
            | "replicationcontrollers"
            | "resourcequotas" => names.push(r.resource.to_string()),
            _ => {}
        }
    }
    names
}

impl LimitsAdmission {
    async fn limit_ranges(&self, r: &ResourceInfo, obj: &mut Value, ns: &str) -> ApiResult<()> {
        if !(r.group.is_empty() && r.resource == "pods") {
            return Ok(());
        }
        let reg = self.registry()?;
        let named = json!({ "metadata": { "name": name_of(obj) } });
        for lr in items(&reg, "", "limitranges", ns).await? {
            for item in lr
                .pointer("/spec/limits")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                if item["type"].as_str() != Some("Container") {
                    continue;
                }
                for list in ["initContainers", "containers"] {
                    if let Some(cs) = obj
                        .pointer_mut(&format!("/spec/{list}"))
                        .and_then(Value::as_array_mut)
                    {
                        for c in cs.iter_mut() {
                            limit_container(c, &item).map_err(|why| forbidden(r, &named, why))?;
                        }
                    }
                }
            }
        }
        // The QoS class reflects the filled-in resources.
        obj["status"]["qosClass"] = json!(crate::strategy::pod_qos(obj));
        Ok(())
    }

    async fn quotas(&self, r: &ResourceInfo, obj: &Value, ns: &str) -> ApiResult<()> {
        let reg = self.registry()?;
        let quotas = items(&reg, "", "resourcequotas", ns).await?;
        if quotas.is_empty() {
            return Ok(());
        }
        let is_pod = r.group.is_empty() && r.resource == "pods";
        let mut delta: BTreeMap<String, Quantity> = BTreeMap::new();
        for name in count_names(r) {
            delta.insert(name, Quantity::parse("1").expect("1 is a quantity"));
        }
        if is_pod {
            delta.extend(pod_usage(obj));
        }
        if r.group.is_empty() && r.resource == "persistentvolumeclaims" {
            if let Some(s) = q(obj.pointer("/spec/resources/requests/storage")) {
                delta.insert("requests.storage".into(), s);
            }
        }
        for quota in quotas {
            let hard = quota
                .pointer("/spec/hard")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let relevant: Vec<&String> = hard
                .keys()
                .filter(|k| {
                    delta.contains_key(*k)
                        || (is_pod
                            && (k.starts_with("requests.")
                                || k.starts_with("limits.")
                                || *k == "cpu"
                                || *k == "memory"))
                })
                .collect();
            if relevant.is_empty() {
                continue;
            }
            let qname = name_of(&quota).to_string();
            // A pod under a compute quota must say what it uses.
            if is_pod {
                let missing: Vec<&String> = relevant
                    .iter()
                    .copied()
                    .filter(|k| {
                        !delta.contains_key(*k)
                            && (k.starts_with("requests.") || k.starts_with("limits."))
                    })
                    .collect();
                if let Some(k) = missing.first() {
                    let containers: Vec<&str> = obj
                        .pointer("/spec/containers")
                        .and_then(Value::as_array)
                        .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
                        .unwrap_or_default();
                    return Err(forbidden(
                        r,
                        obj,
                        format!(
                            "failed quota: {qname}: must specify {k} for: {}",
                            containers.join(",")
                        ),
                    ));
                }
            }
            // Usage now, counted from the objects.
            let mut used: BTreeMap<String, Quantity> = BTreeMap::new();
            let existing = items(&reg, r.group, r.resource, ns).await?;
            for o in existing.iter().filter(|o| !(is_pod && terminal(o))) {
                let contribution = if is_pod {
                    pod_usage(o)
                } else {
                    let mut m: BTreeMap<String, Quantity> = count_names(r)
                        .into_iter()
                        .map(|n| (n, Quantity::parse("1").expect("1 is a quantity")))
                        .collect();
                    if let Some(s) = q(o.pointer("/spec/resources/requests/storage")) {
                        m.insert("requests.storage".into(), s);
                    }
                    m
                };
                for (k, v) in contribution {
                    let cur = used.remove(&k).unwrap_or_else(Quantity::zero);
                    used.insert(k, plus(cur, &v));
                }
            }
            let mut over = Vec::new();
            for k in &relevant {
                let (Some(limit), Some(want)) = (q(hard.get(*k)), delta.get(*k)) else {
                    continue;
                };
                let have = used.get(*k).cloned().unwrap_or_else(Quantity::zero);
                if plus(have.clone(), want) > limit {
                    over.push((k.to_string(), want.clone(), have, limit));
                }
            }
            if !over.is_empty() {
                let join = |f: &dyn Fn(&(String, Quantity, Quantity, Quantity)) -> String| {
                    over.iter().map(f).collect::<Vec<_>>().join(",")
                };
                return Err(forbidden(
                    r,
                    obj,
                    format!(
                        "exceeded quota: {qname}, requested: {}, used: {}, limited: {}",
                        join(&|o| format!("{}={}", o.0, o.1)),
                        join(&|o| format!("{}={}", o.0, o.2)),
                        join(&|o| format!("{}={}", o.0, o.3)),
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Admission for LimitsAdmission {
    async fn admit_create(&self, r: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
        if !r.namespaced {
            return Ok(());
        }
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        self.limit_ranges(r, obj, &ns).await?;
        self.quotas(r, obj, &ns).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_defaults_and_bounds_follow_the_limit_range() {
        let item = json!({ "type": "Container", "default": { "cpu": "500m" }, "defaultRequest": { "cpu": "100m" }, "max": { "cpu": "1" }, "min": { "memory": "64Mi" } });
        let mut c = json!({ "name": "c", "resources": { "requests": { "memory": "128Mi" } } });
        limit_container(&mut c, &item).unwrap();
        assert_eq!(c["resources"]["limits"]["cpu"], "500m");
        assert_eq!(c["resources"]["requests"]["cpu"], "100m");
        let mut big = json!({ "name": "c", "resources": { "limits": { "cpu": "2" }, "requests": { "memory": "128Mi" } } });
        assert_eq!(
            limit_container(&mut big, &item).unwrap_err(),
            "maximum cpu usage per Container is 1, but limit is 2"
        );
        let mut small = json!({ "name": "c", "resources": { "requests": { "memory": "32Mi" } } });
        assert_eq!(
            limit_container(&mut small, &item).unwrap_err(),
            "minimum memory usage per Container is 64Mi, but request is 32Mi"
        );
    }

    #[test]
    fn pod_usage_sums_requests_and_limits() {
        let pod = json!({ "spec": { "containers": [
            { "resources": { "requests": { "cpu": "100m" }, "limits": { "cpu": "200m" } } },
            { "resources": { "requests": { "cpu": "300m", "memory": "1Gi" } } },
        ] } });
        let u = pod_usage(&pod);
        assert_eq!(u["requests.cpu"].to_string(), "400m");
        assert_eq!(u["limits.cpu"].to_string(), "200m");
        assert_eq!(u["memory"].to_string(), "1Gi");
        assert_eq!(u["pods"].to_string(), "1");
    }

    #[test]
    fn pod_usage_counts_the_overhead_in_requests_and_in_set_limits() {
        let pod = json!({ "spec": {
            "containers": [{ "resources": { "requests": { "cpu": "100m" }, "limits": { "cpu": "200m" } } }],
            "overhead": { "cpu": "250m", "memory": "120Mi" },
        } });
        let u = pod_usage(&pod);
        assert_eq!(u["requests.cpu"].to_string(), "350m");
        assert_eq!(u["cpu"].to_string(), "350m");
        assert_eq!(u["limits.cpu"].to_string(), "450m");
        assert_eq!(u["requests.memory"].to_string(), "120Mi");
        assert!(!u.contains_key("limits.memory"));
    }
}
