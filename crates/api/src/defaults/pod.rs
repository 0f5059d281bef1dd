//! Defaults of pods and everything in a `PodSpec` (`SetDefaults_Pod`,
//! `SetDefaults_PodSpec`, `SetDefaults_Container`, `SetDefaults_Volume`,
//! `SetDefaults_Probe`, ...).

use super::{
    ensure, field, items, resource_list, set_if_absent, set_if_empty, set_if_zero,
    template_metadata, Obj,
};
use serde_json::{json, Value};

/// A Pod: `SetDefaults_Pod` and then the `PodSpec` defaults.
pub(super) fn pod(root: &mut Obj) {
    let Some(spec) = ensure(root, "spec") else {
        return;
    };
    pod_only(spec);
    pod_spec(spec);
}

/// A `PodTemplateSpec` embedded in another object.
pub(super) fn template(tmpl: &mut Obj) {
    template_metadata(tmpl);
    if let Some(spec) = ensure(tmpl, "spec") {
        pod_spec(spec);
    }
}

/// `SetDefaults_Pod`: what a Pod gets but a template does not.
fn pod_only(spec: &mut Obj) {
    for key in ["containers", "initContainers"] {
        for c in items(spec, key) {
            let Some(res) = field(c, "resources") else {
                continue;
            };
            let limits = match res.get("limits").and_then(Value::as_object) {
                Some(l) if !l.is_empty() => l.clone(),
                _ => continue,
            };
            if let Some(requests) = ensure(res, "requests") {
                for (k, v) in limits {
                    requests.entry(k).or_insert(v);
                }
            }
        }
    }
    set_if_absent(spec, "enableServiceLinks", json!(true));
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for key in ["containers", "initContainers"] {
            for c in items(spec, key) {
                for p in items(c, "ports") {
                    let cp = p.get("containerPort").cloned();
                    let zero = p
                        .get("hostPort")
                        .is_none_or(|h| h.as_i64().unwrap_or(0) == 0);
                    if let (true, Some(cp)) = (zero, cp) {
                        p.insert("hostPort".into(), cp);
                    }
                }
            }
        }
    }
}

/// `SetDefaults_PodSpec` and the defaults of everything nested in the spec.
pub(super) fn pod_spec(spec: &mut Obj) {
    set_if_empty(spec, "dnsPolicy", "ClusterFirst");
    set_if_empty(spec, "restartPolicy", "Always");
    set_if_absent(spec, "securityContext", json!({}));
    set_if_absent(spec, "terminationGracePeriodSeconds", json!(30));
    set_if_empty(spec, "schedulerName", "default-scheduler");
    for v in items(spec, "volumes") {
        volume(v);
    }
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        for c in items(spec, key) {
            container(c);
        }
    }
    resource_list(spec, "overhead");
}

fn field_ref_api_version(item: &mut Obj) {
    if let Some(fr) = field(item, "fieldRef") {
        set_if_empty(fr, "apiVersion", "v1");
    }
}

/// `SetDefaults_Volume` and the volume sources' defaults.
fn volume(v: &mut Obj) {
    let has_source = v.iter().any(|(k, val)| k != "name" && !val.is_null());
    if !has_source {
        v.insert("emptyDir".into(), json!({}));
    }
    if let Some(hp) = field(v, "hostPath") {
        set_if_absent(hp, "type", json!(""));
    }
    for key in ["secret", "configMap"] {
        if let Some(s) = field(v, key) {
            set_if_absent(s, "defaultMode", json!(420));
        }
    }
    if let Some(d) = field(v, "downwardAPI") {
        set_if_absent(d, "defaultMode", json!(420));
        for item in items(d, "items") {
            field_ref_api_version(item);
        }
    }
    if let Some(p) = field(v, "projected") {
        set_if_absent(p, "defaultMode", json!(420));
        for source in items(p, "sources") {
            if let Some(d) = field(source, "downwardAPI") {
                for item in items(d, "items") {
                    field_ref_api_version(item);
                }
            }
            if let Some(t) = field(source, "serviceAccountToken") {
                set_if_absent(t, "expirationSeconds", json!(3600));
            }
        }
    }
    if let Some(i) = field(v, "iscsi") {
        set_if_empty(i, "iscsiInterface", "default");
    }
    if let Some(r) = field(v, "rbd") {
        rbd(r);
    }
    if let Some(a) = field(v, "azureDisk") {
        azure_disk(a);
    }
    if let Some(s) = field(v, "scaleIO") {
        scale_io(s);
    }
    if let Some(e) = field(v, "ephemeral") {
        if let Some(t) = field(e, "volumeClaimTemplate") {
            template_metadata(t);
            if let Some(spec) = ensure(t, "spec") {
                pvc_spec(spec);
            }
        }
    }
}

pub(super) fn rbd(r: &mut Obj) {
    set_if_empty(r, "pool", "rbd");
    set_if_empty(r, "user", "admin");
    set_if_empty(r, "keyring", "/etc/ceph/keyring");
}

pub(super) fn azure_disk(a: &mut Obj) {
    set_if_absent(a, "cachingMode", json!("ReadWrite"));
    set_if_absent(a, "kind", json!("Shared"));
    set_if_absent(a, "fsType", json!("ext4"));
    set_if_absent(a, "readOnly", json!(false));
}

pub(super) fn scale_io(s: &mut Obj) {
    set_if_empty(s, "storageMode", "ThinProvisioned");
    set_if_empty(s, "fsType", "xfs");
}

/// `SetDefaults_PersistentVolumeClaimSpec` and its resource lists.
pub(super) fn pvc_spec(spec: &mut Obj) {
    set_if_absent(spec, "volumeMode", json!("Filesystem"));
    if let Some(res) = field(spec, "resources") {
        resource_list(res, "limits");
        resource_list(res, "requests");
    }
}

/// `SetDefaults_Container` and the container's nested defaults.
fn container(c: &mut Obj) {
    let policy = {
        let image = c.get("image").and_then(Value::as_str).unwrap_or("");
        if image_tag_is_latest(image) {
            "Always"
        } else {
            "IfNotPresent"
        }
    };
    set_if_empty(c, "imagePullPolicy", policy);
    set_if_empty(c, "terminationMessagePath", "/dev/termination-log");
    set_if_empty(c, "terminationMessagePolicy", "File");
    for p in items(c, "ports") {
        set_if_empty(p, "protocol", "TCP");
    }
    for e in items(c, "env") {
        if let Some(vf) = field(e, "valueFrom") {
            field_ref_api_version(vf);
        }
    }
    if let Some(res) = ensure(c, "resources") {
        resource_list(res, "limits");
        resource_list(res, "requests");
    }
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = field(c, key) {
            set_if_zero(p, "timeoutSeconds", 1);
            set_if_zero(p, "periodSeconds", 10);
            set_if_zero(p, "successThreshold", 1);
            set_if_zero(p, "failureThreshold", 3);
            if let Some(h) = field(p, "httpGet") {
                http_get(h);
            }
            if let Some(g) = field(p, "grpc") {
                set_if_absent(g, "service", json!(""));
            }
        }
    }
    if let Some(lc) = field(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = field(lc, hook).and_then(|h| field(h, "httpGet")) {
                http_get(h);
            }
        }
    }
}

/// `SetDefaults_HTTPGetAction`.
fn http_get(h: &mut Obj) {
    set_if_empty(h, "path", "/");
    set_if_empty(h, "scheme", "HTTP");
}

/// Whether an image reference names the `latest` tag, explicitly or by
/// carrying neither tag nor digest (upstream's `parsers.ParseImageName`);
/// references that do not parse are not `latest`.
pub(crate) fn image_tag_is_latest(image: &str) -> bool {
    match parse_image_reference(image) {
        Some((tag, digest)) => tag == Some("latest") || (tag.is_none() && !digest),
        None => false,
    }
}

/// Splits a docker reference into (tag, has digest), checking its grammar
/// (`github.com/distribution/reference`).
fn parse_image_reference(image: &str) -> Option<(Option<&str>, bool)> {
    use regex::Regex;
    use std::sync::LazyLock;
    static NAME: LazyLock<Regex> = LazyLock::new(|| {
        let domain_component = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
        let domain = format!(
            r"(?:{domain_component}(?:\.{domain_component})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
        );
        let path_component = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*";
        Regex::new(&format!(
            r"^(?:{domain}/)?{path_component}(?:/{path_component})*$"
        ))
        .expect("static regex")
    });
    static TAG: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").expect("static regex"));
    static DIGEST: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
            .expect("static regex")
    });
    static HEX64: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[a-f0-9]{64}$").expect("static regex"));
    if image.is_empty() || HEX64.is_match(image) {
        return None;
    }
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => {
            if !DIGEST.is_match(d) {
                return None;
            }
            (r, true)
        }
        None => (image, false),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => {
            let tag = &rest[last_slash + i + 1..];
            if !TAG.is_match(tag) {
                return None;
            }
            (&rest[..last_slash + i], Some(tag))
        }
        None => (rest, None),
    };
    if name.len() > 255 || !NAME.is_match(name) {
        return None;
    }
    Some((tag, digest))
}
