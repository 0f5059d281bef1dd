//! RuntimeClass admission, as upstream's `RuntimeClass` plugin: a pod that
//! names a `spec.runtimeClassName` must name an existing RuntimeClass; the
//! class's `overhead.podFixed` becomes the pod's `spec.overhead` (a pod may
//! not bring an overhead of its own that differs, nor one without a class
//! that defines it), and the class's `scheduling` node selector and
//! tolerations are merged into the pod's, so that the scheduler places it
//! only on nodes whose runtime has the handler.

use std::collections::BTreeMap;
use std::sync::Arc;

use api::Quantity;
use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{Admission, RegistryRef};
use crate::registry::Registry;
use crate::resources::{lookup, ResourceInfo};
use crate::status::{ApiError, ApiResult};

/// The plugin reads RuntimeClasses through the registry it is part of.
#[derive(Default)]
pub struct RuntimeClassAdmission {
    registry: RegistryRef,
}

impl RuntimeClassAdmission {
    pub fn new() -> Arc<RuntimeClassAdmission> {
        Arc::new(RuntimeClassAdmission::default())
    }

    pub fn attach(&self, registry: &Arc<Registry>) {
        self.registry.attach(registry);
    }

    /// The pod's RuntimeClass, `None` when it names none.
    async fn class_of(&self, pod: &Value) -> ApiResult<Option<Value>> {
        let Some(name) = pod
            .pointer("/spec/runtimeClassName")
            .and_then(Value::as_str)
        else {
            return Ok(None);
        };
        let r = lookup("node.k8s.io", "v1", "runtimeclasses").expect("runtimeclasses are served");
        match self.registry.get()?.get(r, None, name).await {
            Ok(class) => Ok(Some(class)),
            Err(e) if e.code == 404 => Err(rejected(
                pod,
                &format!("pod rejected: RuntimeClass {name:?} not found"),
            )),
            Err(e) => Err(e),
        }
    }
}

fn rejected(pod: &Value, why: &str) -> ApiError {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    ApiError::forbidden(format!("pods \"{name}\" is forbidden: {why}"))
}

/// A resource list (`{cpu: 250m}`) absent when empty, as upstream's
/// semantic equality treats a nil and an empty map alike.
fn resource_list(v: Option<&Value>) -> Option<&Map<String, Value>> {
    v.and_then(Value::as_object).filter(|m| !m.is_empty())
}

/// Upstream's semantic equality of two resource lists: the same names,
/// quantities equal by value (`1Gi` equals `1024Mi`).
fn same_resources(a: Option<&Map<String, Value>>, b: Option<&Map<String, Value>>) -> bool {
    let parse = |v: &Value| match v {
        Value::String(s) => Quantity::parse(s).ok(),
        Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
        _ => None,
    };
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.len() == b.len()
                && a.iter().all(|(k, va)| {
                    b.get(k).is_some_and(|vb| match (parse(va), parse(vb)) {
                        (Some(qa), Some(qb)) => qa == qb,
                        _ => va == vb,
                    })
                })
        }
        _ => false,
    }
}

/// Upstream `setOverhead` and `validateOverhead`: the class's fixed
/// overhead becomes the pod's; a pod's own overhead must equal it, and a
/// pod without such a class may not carry one.
pub fn set_overhead(pod: &mut Value, class: Option<&Value>) -> Result<(), String> {
    let own = resource_list(pod.pointer("/spec/overhead")).cloned();
    let fixed = class
        .and_then(|c| c.get("overhead"))
        .filter(|o| !o.is_null());
    match fixed {
        Some(overhead) => {
            let fixed = resource_list(overhead.get("podFixed"));
            if own.is_some() && !same_resources(fixed, own.as_ref()) {
                return Err(
                    "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"
                        .into(),
                );
            }
            match (fixed, pod.get_mut("spec").and_then(Value::as_object_mut)) {
                (Some(fixed), Some(spec)) => {
                    spec.insert("overhead".into(), Value::Object(fixed.clone()));
                }
                (None, Some(spec)) => {
                    spec.remove("overhead");
                }
                _ => {}
            }
            Ok(())
        }
        None if own.is_some() => Err(
            "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"
                .into(),
        ),
        None => Ok(()),
    }
}

/// Upstream `setScheduling`: the class's node selector is added to the
/// pod's (a key both set to different values is a conflict) and its
/// tolerations merged with the pod's.
pub fn set_scheduling(pod: &mut Value, class: &Value) -> Result<(), String> {
    let Some(scheduling) = class.get("scheduling").filter(|s| s.is_object()) else {
        return Ok(());
    };
    let class_selector: BTreeMap<String, Value> = scheduling
        .get("nodeSelector")
        .and_then(Value::as_object)
        .map(|m| m.clone().into_iter().collect())
        .unwrap_or_default();
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let selector = match spec.get("nodeSelector").and_then(Value::as_object) {
        None => class_selector.into_iter().collect::<Map<_, _>>(),
        Some(own) => {
            let mut merged = own.clone();
            for (key, value) in class_selector {
                match own.get(&key) {
                    Some(theirs) if *theirs != value => {
                        return Err(format!(
                            "conflict: runtimeClass.scheduling.nodeSelector[{key}] = {}; pod.spec.nodeSelector[{key}] = {}",
                            value.as_str().unwrap_or_default(),
                            theirs.as_str().unwrap_or_default()
                        ));
                    }
                    _ => {
                        merged.insert(key, value);
                    }
                }
            }
            merged
        }
    };
    if !selector.is_empty() {
        spec.insert("nodeSelector".into(), Value::Object(selector));
    }
    let own = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let theirs = scheduling
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let merged = merge_tolerations(own, theirs);
    if !merged.is_empty() {
        spec.insert("tolerations".into(), Value::Array(merged));
    }
    Ok(())
}

fn field<'a>(t: &'a Value, name: &str) -> &'a str {
    t.get(name).and_then(Value::as_str).unwrap_or("")
}

/// Upstream `tolerations.MergeTolerations`: both lists, the pod's first,
/// keeping only the tolerations no other one already covers.
pub fn merge_tolerations(first: Vec<Value>, second: Vec<Value>) -> Vec<Value> {
    let all: Vec<Value> = first.into_iter().chain(second).collect();
    let mut merged: Vec<Value> = Vec::new();
    for (i, t) in all.iter().enumerate() {
        if merged.iter().any(|m| is_superset(m, t)) {
            continue;
        }
        // Of two equal tolerations the first stays.
        if all[i + 1..]
            .iter()
            .any(|later| later != t && is_superset(later, t))
        {
            continue;
        }
        merged.push(t.clone());
    }
    merged
}

/// Upstream `isSuperset`: whether `ss` tolerates everything `t` does.
fn is_superset(ss: &Value, t: &Value) -> bool {
    if ss == t {
        return true;
    }
    let (ss_key, ss_op) = (field(ss, "key"), field(ss, "operator"));
    // An empty key with Exists matches every key.
    if field(t, "key") != ss_key && (!ss_key.is_empty() || ss_op != "Exists") {
        return false;
    }
    // An empty effect matches every effect.
    let ss_effect = field(ss, "effect");
    if field(t, "effect") != ss_effect && !ss_effect.is_empty() {
        return false;
    }
    if ss_effect == "NoExecute" {
        if let Some(limit) = ss.get("tolerationSeconds").and_then(Value::as_i64) {
            match t.get("tolerationSeconds").and_then(Value::as_i64) {
                Some(s) if s <= limit => {}
                _ => return false,
            }
        }
    }
    match ss_op {
        "Equal" | "" => field(t, "operator") == "Equal" && field(t, "value") == field(ss, "value"),
        "Exists" => true,
        _ => false,
    }
}

#[async_trait]
impl Admission for RuntimeClassAdmission {
    async fn admit_create(&self, r: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
        if (r.group, r.resource) != ("", "pods") {
            return Ok(());
        }
        let class = self.class_of(obj).await?;
        set_overhead(obj, class.as_ref()).map_err(|why| rejected(obj, &why))?;
        if let Some(class) = &class {
            set_scheduling(obj, class).map_err(|why| rejected(obj, &why))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn class(extra: Value) -> Value {
        let mut c = json!({ "metadata": { "name": "kata" }, "handler": "kata" });
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    }

    #[test]
    fn the_class_overhead_becomes_the_pod_overhead() {
        let mut pod = json!({ "spec": { "runtimeClassName": "kata" } });
        let c = class(json!({ "overhead": { "podFixed": { "cpu": "250m", "memory": "120Mi" } } }));
        set_overhead(&mut pod, Some(&c)).unwrap();
        assert_eq!(
            pod["spec"]["overhead"],
            json!({ "cpu": "250m", "memory": "120Mi" })
        );
    }

    #[test]
    fn a_pod_overhead_equal_by_value_is_accepted_and_a_different_one_rejected() {
        let c = class(json!({ "overhead": { "podFixed": { "memory": "1Gi" } } }));
        let mut same = json!({ "spec": { "overhead": { "memory": "1024Mi" } } });
        set_overhead(&mut same, Some(&c)).unwrap();
        assert_eq!(same["spec"]["overhead"], json!({ "memory": "1Gi" }));
        let mut other = json!({ "spec": { "overhead": { "memory": "2Gi" } } });
        assert_eq!(
            set_overhead(&mut other, Some(&c)).unwrap_err(),
            "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"
        );
        let mut extra = json!({ "spec": { "overhead": { "memory": "1Gi", "cpu": "1" } } });
        assert!(set_overhead(&mut extra, Some(&c)).is_err());
    }

    #[test]
    fn an_overhead_without_a_class_that_defines_one_is_rejected() {
        let mut pod = json!({ "spec": { "overhead": { "cpu": "1" } } });
        assert_eq!(
            set_overhead(&mut pod, None).unwrap_err(),
            "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"
        );
        assert!(set_overhead(&mut pod, Some(&class(json!({})))).is_err());
        let mut plain = json!({ "spec": {} });
        set_overhead(&mut plain, Some(&class(json!({})))).unwrap();
        assert_eq!(plain, json!({ "spec": {} }));
    }

    #[test]
    fn the_class_node_selector_is_added_and_a_conflict_rejected() {
        let c =
            class(json!({ "scheduling": { "nodeSelector": { "sandbox": "kata", "zone": "a" } } }));
        let mut none = json!({ "spec": {} });
        set_scheduling(&mut none, &c).unwrap();
        assert_eq!(
            none["spec"]["nodeSelector"],
            json!({ "sandbox": "kata", "zone": "a" })
        );
        let mut own = json!({ "spec": { "nodeSelector": { "disk": "ssd", "zone": "a" } } });
        set_scheduling(&mut own, &c).unwrap();
        assert_eq!(
            own["spec"]["nodeSelector"],
            json!({ "disk": "ssd", "sandbox": "kata", "zone": "a" })
        );
        let mut clash = json!({ "spec": { "nodeSelector": { "zone": "b" } } });
        assert_eq!(
            set_scheduling(&mut clash, &c).unwrap_err(),
            "conflict: runtimeClass.scheduling.nodeSelector[zone] = a; pod.spec.nodeSelector[zone] = b"
        );
    }

    #[test]
    fn class_tolerations_merge_keeping_only_the_broadest() {
        let c = class(json!({ "scheduling": { "tolerations": [
            { "key": "sandbox", "operator": "Exists", "effect": "NoSchedule" },
            { "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300 },
        ] } }));
        let mut pod = json!({ "spec": { "tolerations": [
            { "key": "sandbox", "operator": "Equal", "value": "kata", "effect": "NoSchedule" },
            { "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300 },
            { "key": "gpu", "operator": "Exists" },
        ] } });
        set_scheduling(&mut pod, &c).unwrap();
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([
                { "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300 },
                { "key": "gpu", "operator": "Exists" },
                { "key": "sandbox", "operator": "Exists", "effect": "NoSchedule" },
            ])
        );
    }

    #[test]
    fn a_wildcard_toleration_covers_every_other() {
        let all = json!({ "operator": "Exists" });
        let merged = merge_tolerations(
            vec![json!({ "key": "a", "operator": "Equal", "value": "x" })],
            vec![all.clone()],
        );
        assert_eq!(merged, vec![all]);
        // A shorter NoExecute toleration does not cover a longer one.
        let short = json!({ "key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10 });
        let long = json!({ "key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60 });
        assert_eq!(
            merge_tolerations(vec![long.clone()], vec![short.clone()]),
            vec![long]
        );
    }
}
