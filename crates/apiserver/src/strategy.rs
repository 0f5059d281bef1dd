//! Per-kind behaviour of the generic registry, as upstream's
//! `rest.RESTCreateStrategy`/`RESTUpdateStrategy`: what a create resets,
//! what an update keeps, how a kind is validated. The registry code is
//! written once; a kind overrides only what differs.

use serde_json::{json, Value};

use crate::resources::ResourceInfo;
use crate::status::Cause;

pub trait Strategy: Send + Sync {
    /// Whether `metadata.generation` is kept (1 on create, +1 on every spec
    /// change).
    fn has_generation(&self) -> bool {
        false
    }

    /// Whether the main resource ignores `status` (it has a status
    /// subresource that owns it).
    fn status_is_subresource(&self) -> bool {
        false
    }

    /// Resets what a client may not set on create (usually status).
    fn prepare_for_create(&self, _obj: &mut Value) {}

    /// Carries over what an update of the main resource may not change.
    fn prepare_for_update(&self, _new: &mut Value, _old: &Value) {}

    /// The metadata a status update may not change, besides what no
    /// update changes (uid, generation, deletion): upstream's status
    /// strategies reset the spec and, per kind, some of the metadata.
    /// `None` keeps all of it (custom resources).
    fn status_kept_metadata(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }

    /// Carries over what a status update may not change beyond
    /// [`Strategy::status_kept_metadata`].
    fn prepare_for_status_update(&self, _new: &mut Value, _old: &Value) {}

    fn validate(&self, _obj: &Value) -> Vec<Cause> {
        Vec::new()
    }

    fn validate_update(&self, new: &Value, _old: &Value) -> Vec<Cause> {
        self.validate(new)
    }

    /// Whether a delete that names no propagation policy orphans the
    /// object's dependents (upstream's `DefaultGarbageCollectionPolicy`
    /// returning `OrphanDependents`) rather than deleting them in the
    /// background.
    fn orphans_by_default(&self) -> bool {
        false
    }

    /// Whether a PUT of a missing object creates it.
    fn allow_create_on_update(&self) -> bool {
        false
    }

    /// Whether a PUT without `metadata.resourceVersion` is accepted.
    fn allow_unconditional_update(&self) -> bool {
        true
    }

    /// The name validation of this kind: upstream uses DNS-1123 subdomains
    /// for most kinds, labels for a few.
    fn name_rule(&self) -> NameRule {
        NameRule::Subdomain
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    Subdomain,
    Dns1123Label,
    Dns1035Label,
    /// RBAC and a few others accept any path segment name.
    PathSegment,
}

/// Empties a status the client sent on create: the status subresource
/// owns it.
fn reset_status(obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        if map.contains_key("status") {
            map.insert("status".into(), json!({}));
        }
    }
}

/// The behaviour of kinds without special needs: status (if any) is owned
/// by the status subresource and reset on create; workloads keep a
/// generation.
pub struct Generic {
    pub generation: bool,
    pub status_subresource: bool,
    pub name_rule: NameRule,
    /// [`Strategy::status_kept_metadata`].
    pub status_kept_metadata: &'static [&'static str],
    /// [`Strategy::orphans_by_default`].
    pub orphans_by_default: bool,
}

/// What `metav1.ResetObjectMetaForStatus` takes from the stored object.
pub const RESET_OBJECT_META_FOR_STATUS: &[&str] =
    &["labels", "annotations", "finalizers", "ownerReferences"];

/// The object a status update writes: the client's status and metadata,
/// everything else (the spec) from the stored object, and of the metadata
/// what the kind's status strategy keeps.
pub fn status_update(s: &dyn Strategy, old: &Value, new: &Value) -> Value {
    let mut out = old.clone();
    out["status"] = new.get("status").cloned().unwrap_or(json!({}));
    let Some(kept) = s.status_kept_metadata() else {
        return out;
    };
    let (Some(old_meta), Some(new_meta)) = (
        old.get("metadata").and_then(Value::as_object),
        new.get("metadata").and_then(Value::as_object),
    ) else {
        return out;
    };
    const IMMUTABLE: &[&str] = &[
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "selfLink",
        // Field tracking starts from the stored entries on a subresource
        // (upstream's decodeLiveOrNew), whatever the client sent.
        "managedFields",
    ];
    let mut meta = new_meta.clone();
    for field in IMMUTABLE.iter().chain(kept.iter()) {
        match old_meta.get(*field) {
            Some(v) => meta.insert(field.to_string(), v.clone()),
            None => meta.remove(*field),
        };
    }
    out["metadata"] = Value::Object(meta);
    s.prepare_for_status_update(&mut out, old);
    out
}

impl Strategy for Generic {
    fn has_generation(&self) -> bool {
        self.generation
    }

    fn status_is_subresource(&self) -> bool {
        self.status_subresource
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if self.status_subresource {
            reset_status(obj);
        }
    }

    fn name_rule(&self) -> NameRule {
        self.name_rule
    }

    fn status_kept_metadata(&self) -> Option<&'static [&'static str]> {
        Some(self.status_kept_metadata)
    }

    fn orphans_by_default(&self) -> bool {
        self.orphans_by_default
    }
}

/// Namespaces: phase Active on create, the `kubernetes` finalizer.
pub struct Namespaces;

impl Strategy for Namespaces {
    fn status_is_subresource(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        obj["status"] = json!({ "phase": "Active" });
        let spec = obj
            .as_object_mut()
            .map(|o| o.entry("spec").or_insert_with(|| json!({})));
        if let Some(spec) = spec {
            let finalizers = spec
                .as_object_mut()
                .map(|s| s.entry("finalizers").or_insert_with(|| json!([])));
            if let Some(Value::Array(list)) = finalizers {
                if !list.iter().any(|f| f == "kubernetes") {
                    list.push(json!("kubernetes"));
                }
            }
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        // spec.finalizers change only through the finalize subresource.
        new["spec"] = old.get("spec").cloned().unwrap_or(json!({}));
    }

    fn name_rule(&self) -> NameRule {
        NameRule::Dns1123Label
    }
}

/// Nodes keep the status their agent reports at registration.
pub struct Nodes;

impl Strategy for Nodes {
    fn status_is_subresource(&self) -> bool {
        true
    }
}

/// Pods start Pending with their QoS class; their status belongs to the
/// node agent.
pub struct Pods;

fn resource_map(c: &Value, which: &str) -> serde_json::Map<String, Value> {
    c.pointer(&format!("/resources/{which}"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn same_quantity(a: &Value, b: &Value) -> bool {
    match (
        a.as_str().and_then(|s| api::Quantity::parse(s).ok()),
        b.as_str().and_then(|s| api::Quantity::parse(s).ok()),
    ) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// upstream's `GetPodQOS`: Guaranteed when every container limits cpu and
/// memory and requests equal limits; BestEffort when nothing is requested
/// or limited; Burstable otherwise.
pub fn pod_qos(pod: &Value) -> &'static str {
    let mut containers: Vec<&Value> = Vec::new();
    for list in ["containers", "initContainers"] {
        if let Some(cs) = pod
            .pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
        {
            containers.extend(cs.iter());
        }
    }
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let limits = resource_map(c, "limits");
        let mut requests = resource_map(c, "requests");
        // Requests default to limits.
        for (k, v) in &limits {
            requests.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let relevant =
            |m: &serde_json::Map<String, Value>| m.keys().any(|k| k == "cpu" || k == "memory");
        if relevant(&limits) || relevant(&requests) {
            any = true;
        }
        for r in ["cpu", "memory"] {
            match (limits.get(r), requests.get(r)) {
                (Some(l), Some(q)) if same_quantity(l, q) => {}
                _ => guaranteed = false,
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

impl Strategy for Pods {
    fn status_is_subresource(&self) -> bool {
        true
    }

    /// Old node agents corrupted owner references; the pod status
    /// strategy keeps them for the garbage collector's sake.
    fn status_kept_metadata(&self) -> Option<&'static [&'static str]> {
        Some(&["ownerReferences"])
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        let qos = pod_qos(obj);
        obj["status"] = json!({ "phase": "Pending", "qosClass": qos });
    }
}

/// Jobs: a new Job without `manualSelector: true` gets upstream's generated
/// selector (`batch.kubernetes.io/controller-uid`) and the job-name and
/// controller-uid labels on its pod template (`generateSelector`).
pub struct Jobs;

impl Strategy for Jobs {
    fn has_generation(&self) -> bool {
        true
    }

    fn status_is_subresource(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(map) = obj.as_object_mut() {
            map.insert("status".into(), json!({}));
        }
        if obj.pointer("/spec/manualSelector") == Some(&json!(true)) {
            return;
        }
        let name = obj.pointer("/metadata/name").cloned().unwrap_or(json!(""));
        let uid = obj.pointer("/metadata/uid").cloned().unwrap_or(json!(""));
        // Upstream's defaulting makes the Job's labels the very map of its
        // template's labels when the Job has none, so the generated labels
        // show on the Job too.
        let template_labels = obj.pointer("/spec/template/metadata/labels").cloned();
        let aliased = template_labels.as_ref().is_some_and(Value::is_object)
            && obj.pointer("/metadata/labels") == template_labels.as_ref();
        let generated = [
            ("job-name", &name),
            ("batch.kubernetes.io/job-name", &name),
            ("controller-uid", &uid),
            ("batch.kubernetes.io/controller-uid", &uid),
        ];
        let add_labels = |labels: &mut Value| {
            if !labels.is_object() {
                *labels = json!({});
            }
            for (k, v) in generated {
                if labels.get(k).is_none() {
                    labels[k] = v.clone();
                }
            }
        };
        if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
            let template = spec
                .as_object_mut()
                .map(|s| s.entry("template").or_insert_with(|| json!({})));
            if let Some(t) = template.filter(|t| t.is_object()) {
                let meta = t
                    .as_object_mut()
                    .map(|t| t.entry("metadata").or_insert_with(|| json!({})));
                if let Some(m) = meta.filter(|m| m.is_object()) {
                    let labels = m
                        .as_object_mut()
                        .map(|m| m.entry("labels").or_insert(Value::Null));
                    if let Some(l) = labels {
                        add_labels(l);
                    }
                }
            }
            let selector = spec
                .as_object_mut()
                .map(|s| s.entry("selector").or_insert(Value::Null));
            if let Some(sel) = selector {
                if !sel.is_object() {
                    *sel = json!({});
                }
                if !sel.get("matchLabels").is_some_and(Value::is_object) {
                    sel["matchLabels"] = json!({});
                }
                if sel["matchLabels"]
                    .get("batch.kubernetes.io/controller-uid")
                    .is_none()
                {
                    sel["matchLabels"]["batch.kubernetes.io/controller-uid"] = uid.clone();
                }
            }
        }
        if aliased {
            if let Some(labels) = obj.pointer_mut("/metadata/labels") {
                add_labels(labels);
            }
        }
    }
}

/// DaemonSets: upstream's internal `spec.templateGeneration`, which
/// apps/v1 shows as the `deprecated.daemonset.template.generation`
/// annotation: 1 on create, +1 (with the generation) whenever the pod
/// template changes, never set by clients. The DaemonSet controller labels
/// its pods with it (`pod-template-generation`).
pub struct DaemonSets;

/// `appsv1.DeprecatedTemplateGeneration`.
pub const DEPRECATED_TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

fn template_generation(ds: &Value) -> Option<i64> {
    ds.pointer("/metadata/annotations")
        .and_then(|a| a.get(DEPRECATED_TEMPLATE_GENERATION))
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok())
}

fn set_template_generation(ds: &mut Value, generation: i64) {
    if !ds.get("metadata").is_some_and(Value::is_object) {
        ds["metadata"] = json!({});
    }
    if !ds["metadata"]
        .get("annotations")
        .is_some_and(Value::is_object)
    {
        ds["metadata"]["annotations"] = json!({});
    }
    ds["metadata"]["annotations"][DEPRECATED_TEMPLATE_GENERATION] = json!(generation.to_string());
}

impl Strategy for DaemonSets {
    fn has_generation(&self) -> bool {
        true
    }

    fn status_is_subresource(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        reset_status(obj);
        let generation = template_generation(obj).filter(|g| *g >= 1).unwrap_or(1);
        set_template_generation(obj, generation);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        let current = template_generation(old).unwrap_or(0);
        let changed = new.pointer("/spec/template") != old.pointer("/spec/template");
        set_template_generation(new, if changed { current + 1 } else { current });
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        match template_generation(old) {
            Some(g) => set_template_generation(new, g),
            None => {
                if let Some(a) = new
                    .pointer_mut("/metadata/annotations")
                    .and_then(Value::as_object_mut)
                {
                    a.remove(DEPRECATED_TEMPLATE_GENERATION);
                }
            }
        }
    }
}

/// StatefulSets: `spec.updateStrategy.rollingUpdate.maxUnavailable` is
/// behind the alpha feature gate MaxUnavailableStatefulSet, off in v1.32,
/// so it is dropped on create and on updates of sets that did not already
/// use it (upstream `dropStatefulSetDisabledFields`); the controller never
/// reads it.
pub struct StatefulSets;

fn drop_max_unavailable(sts: &mut Value) {
    if let Some(ru) = sts
        .pointer_mut("/spec/updateStrategy/rollingUpdate")
        .and_then(Value::as_object_mut)
    {
        ru.remove("maxUnavailable");
    }
}

impl Strategy for StatefulSets {
    fn has_generation(&self) -> bool {
        true
    }

    fn status_is_subresource(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        reset_status(obj);
        drop_max_unavailable(obj);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        let in_use = old
            .pointer("/spec/updateStrategy/rollingUpdate/maxUnavailable")
            .is_some_and(|v| !v.is_null());
        if !in_use {
            drop_max_unavailable(new);
        }
    }
}

/// The strategy of a built-in resource.
pub fn for_resource(r: &ResourceInfo) -> Box<dyn Strategy> {
    let status_subresource = r.subresource("status").is_some();
    let generation = matches!(
        (r.group, r.resource),
        (
            "apps",
            "deployments" | "replicasets" | "statefulsets" | "daemonsets"
        ) | ("", "replicationcontrollers")
            | ("batch", "jobs" | "cronjobs")
            | ("autoscaling", "horizontalpodautoscalers")
            | ("policy", "poddisruptionbudgets")
            | ("networking.k8s.io", "ingresses" | "networkpolicies")
            | ("apiextensions.k8s.io", "customresourcedefinitions")
            | ("admissionregistration.k8s.io", _)
    );
    let name_rule = match (r.group, r.resource) {
        ("", "services") => NameRule::Dns1035Label,
        ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    };
    match (r.group, r.resource) {
        ("", "namespaces") => Box::new(Namespaces),
        ("", "nodes") => Box::new(Nodes),
        ("", "pods") => Box::new(Pods),
        ("batch", "jobs") => Box::new(Jobs),
        ("apps", "daemonsets") => Box::new(DaemonSets),
        ("apps", "statefulsets") => Box::new(StatefulSets),
        ("certificates.k8s.io", "certificatesigningrequests") => Box::new(crate::csr::Csrs),
        _ => Box::new(Generic {
            generation,
            status_subresource,
            name_rule,
            status_kept_metadata: match (r.group, r.resource) {
                ("apps", "deployments") => &["labels"],
                ("storage.k8s.io", "volumeattachments")
                | ("admissionregistration.k8s.io", "validatingadmissionpolicies") => {
                    RESET_OBJECT_META_FOR_STATUS
                }
                _ => &[],
            },
            // ReplicationControllers orphaned their pods before the
            // server-side garbage collector existed and still do.
            orphans_by_default: (r.group, r.resource) == ("", "replicationcontrollers"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statefulset_max_unavailable_is_dropped_unless_already_in_use() {
        let s = strategy_of("apps", "statefulsets");
        let with = json!({
            "spec": { "updateStrategy": { "type": "RollingUpdate",
                "rollingUpdate": { "partition": 1, "maxUnavailable": 2 } } },
            "status": { "replicas": 3 }
        });
        let mut created = with.clone();
        s.prepare_for_create(&mut created);
        assert_eq!(
            created["spec"]["updateStrategy"]["rollingUpdate"],
            json!({ "partition": 1 })
        );
        assert_eq!(created["status"], json!({}));
        let mut updated = with.clone();
        s.prepare_for_update(&mut updated, &created);
        assert_eq!(
            updated["spec"]["updateStrategy"]["rollingUpdate"],
            json!({ "partition": 1 })
        );
        let mut kept = with.clone();
        s.prepare_for_update(&mut kept, &with);
        assert_eq!(
            kept["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
            2
        );
    }

    fn strategy_of(group: &str, resource: &str) -> Box<dyn Strategy> {
        let r = crate::resources::BUILTIN
            .iter()
            .find(|r| r.group == group && r.resource == resource)
            .unwrap();
        for_resource(r)
    }

    fn written(group: &str, resource: &str) -> Value {
        let old = json!({
            "metadata": { "name": "a", "uid": "1", "generation": 2, "labels": { "l": "old" }, "annotations": { "a": "old" } },
            "spec": { "replicas": 1 },
            "status": { "replicas": 0 }
        });
        let new = json!({
            "metadata": { "name": "a", "uid": "2", "generation": 9, "labels": { "l": "new" }, "annotations": { "a": "new" }, "finalizers": ["f"] },
            "spec": { "replicas": 5 },
            "status": { "replicas": 1 }
        });
        status_update(strategy_of(group, resource).as_ref(), &old, &new)
    }

    #[test]
    fn deployment_status_updates_write_annotations_but_not_labels_or_spec() {
        let out = written("apps", "deployments");
        assert_eq!(out["status"]["replicas"], 1);
        assert_eq!(out["spec"]["replicas"], 1);
        assert_eq!(out["metadata"]["annotations"]["a"], "new");
        assert_eq!(out["metadata"]["labels"]["l"], "old");
        assert_eq!(out["metadata"]["finalizers"], json!(["f"]));
        assert_eq!(out["metadata"]["uid"], "1");
        assert_eq!(out["metadata"]["generation"], 2);
    }

    #[test]
    fn daemonset_template_generation_starts_at_one_and_follows_template_changes() {
        let s = strategy_of("apps", "daemonsets");
        let mut ds = json!({ "metadata": { "name": "d" }, "spec": { "template": { "spec": { "containers": [] } } } });
        s.prepare_for_create(&mut ds);
        assert_eq!(template_generation(&ds), Some(1));
        // A client may not set it; a template change bumps it.
        let mut same = ds.clone();
        set_template_generation(&mut same, 7);
        s.prepare_for_update(&mut same, &ds);
        assert_eq!(template_generation(&same), Some(1));
        let mut changed = ds.clone();
        changed["spec"]["template"]["metadata"] = json!({ "labels": { "a": "b" } });
        s.prepare_for_update(&mut changed, &ds);
        assert_eq!(template_generation(&changed), Some(2));
        let mut status = ds.clone();
        status["metadata"]["annotations"] = json!({});
        let out = status_update(s.as_ref(), &ds, &status);
        assert_eq!(template_generation(&out), Some(1));
    }

    #[test]
    fn replicaset_status_updates_write_labels_and_annotations() {
        let out = written("apps", "replicasets");
        assert_eq!(out["metadata"]["labels"]["l"], "new");
        assert_eq!(out["metadata"]["annotations"]["a"], "new");
        assert_eq!(out["spec"]["replicas"], 1);
    }

    #[test]
    fn reset_object_meta_for_status_kinds_keep_the_stored_metadata() {
        let out = written("storage.k8s.io", "volumeattachments");
        assert_eq!(out["metadata"]["labels"]["l"], "old");
        assert_eq!(out["metadata"]["annotations"]["a"], "old");
        assert!(out["metadata"].get("finalizers").is_none());
        assert_eq!(out["status"]["replicas"], 1);
    }

    #[test]
    fn qos_classes_follow_upstream() {
        let best = json!({ "spec": { "containers": [{ "name": "a" }] } });
        assert_eq!(pod_qos(&best), "BestEffort");
        let guaranteed = json!({ "spec": { "containers": [{ "name": "a", "resources": { "limits": { "cpu": "1", "memory": "1Gi" } } }] } });
        assert_eq!(pod_qos(&guaranteed), "Guaranteed");
        let equal_forms = json!({ "spec": { "containers": [{ "name": "a", "resources": { "limits": { "cpu": "1", "memory": "1Gi" }, "requests": { "cpu": "1000m", "memory": "1024Mi" } } }] } });
        assert_eq!(pod_qos(&equal_forms), "Guaranteed");
        let burstable = json!({ "spec": { "containers": [{ "name": "a", "resources": { "requests": { "cpu": "100m" } } }] } });
        assert_eq!(pod_qos(&burstable), "Burstable");
    }
}
