//! Smaller kinds: PodDisruptionBudget (policy), HorizontalPodAutoscaler
//! (autoscaling), StorageClass (storage), PriorityClass (scheduling), Lease
//! (coordination) and EndpointSlice (discovery).

use super::common::*;
use super::json::{self, *};
use crate::validation::field::{ErrorList, FieldError, Path};
use crate::validation::{
    is_dns1123_label, is_valid_label_value, is_valid_path_segment_name, is_valid_port_num,
    name_is_dns_subdomain, validate_immutable_field, validate_label_name,
};
use serde_json::Value;
use std::collections::HashSet;

// --------------------------------------------------- PodDisruptionBudget

/// `ValidatePodDisruptionBudgetSpec`.
pub(crate) fn validate_pdb(pdb: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = child(pdb, "spec");
    let sp = Path::new("spec");
    let min = int_or_string(spec, "minAvailable");
    let max = int_or_string(spec, "maxUnavailable");
    if min.is_some() && max.is_some() {
        errs.push(FieldError::invalid(
            &sp,
            json_value(Some(spec)),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for (key, v) in [("minAvailable", &min), ("maxUnavailable", &max)] {
        if let Some(v) = v {
            errs.extend(positive_int_or_percent(v, &sp.child(key)));
            errs.extend(not_more_than_100_percent(v, &sp.child(key)));
        }
    }
    errs.extend(label_selector_errs(
        spec,
        "selector",
        false,
        &sp.child("selector"),
    ));
    if let Some(p) = opt_str(spec, "unhealthyPodEvictionPolicy") {
        if p != "AlwaysAllow" && p != "IfHealthyBudget" {
            errs.push(FieldError::not_supported(
                &sp.child("unhealthyPodEvictionPolicy"),
                p,
                &["AlwaysAllow", "IfHealthyBudget"],
            ));
        }
    }
    errs
}

// ------------------------------------------------ HorizontalPodAutoscaler

fn validate_cross_version_ref(r: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for key in ["kind", "name"] {
        let v = str_of(r, key);
        if v.is_empty() {
            errs.push(FieldError::required(&path.child(key), ""));
        } else {
            for m in is_valid_path_segment_name(v) {
                errs.push(FieldError::invalid(&path.child(key), v, m));
            }
        }
    }
    errs
}

fn validate_metric_target(t: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let ty = str_of(t, "type");
    if ty.is_empty() {
        errs.push(FieldError::required(
            &path.child("type"),
            "must specify a metric target type",
        ));
    }
    if !["Utilization", "Value", "AverageValue"].contains(&ty) {
        errs.push(FieldError::invalid(
            &path.child("type"),
            ty,
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    for key in ["value", "averageValue"] {
        if let Some(q) = quantity(t, key) {
            if q.sign() != 1 {
                errs.push(FieldError::invalid(
                    &path.child(key),
                    q.to_string(),
                    "must be positive",
                ));
            }
        }
    }
    if let Some(u) = opt_int(t, "averageUtilization") {
        if u < 1 {
            errs.push(FieldError::invalid(
                &path.child("averageUtilization"),
                u,
                "must be greater than 0",
            ));
        }
    }
    errs
}

fn validate_metric_identifier(id: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = str_of(id, "name");
    if name.is_empty() {
        errs.push(FieldError::required(
            &path.child("name"),
            "must specify a metric name",
        ));
    } else {
        for m in is_valid_path_segment_name(name) {
            errs.push(FieldError::invalid(&path.child("name"), name, m));
        }
    }
    errs
}

fn validate_resource_source(src: &Value, path: &Path, container: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    if str_of(src, "name").is_empty() {
        errs.push(FieldError::required(
            &path.child("name"),
            "must specify a resource name",
        ));
    }
    if container {
        let c = str_of(src, "container");
        if c.is_empty() {
            errs.push(FieldError::required(
                &path.child("container"),
                "must specify a container",
            ));
        } else {
            errs.extend(dns1123_label(c, &path.child("container")));
        }
    }
    let target = child(src, "target");
    errs.extend(validate_metric_target(target, &path.child("target")));
    let tp = path.child("target");
    if get(target, "averageUtilization").is_none() && get(target, "averageValue").is_none() {
        errs.push(FieldError::required(
            &tp.child("averageUtilization"),
            "must set either a target raw value or a target utilization",
        ));
    }
    if get(target, "averageUtilization").is_some() && get(target, "averageValue").is_some() {
        errs.push(FieldError::forbidden(
            &tp.child("averageValue"),
            "may not set both a target raw value and a target utilization",
        ));
    }
    errs
}

fn validate_metric_spec(m: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let ty = str_of(m, "type");
    let types = [
        "ContainerResource",
        "External",
        "Object",
        "Pods",
        "Resource",
    ];
    if ty.is_empty() {
        errs.push(FieldError::required(
            &path.child("type"),
            "must specify a metric source type",
        ));
    }
    if !types.contains(&ty) {
        errs.push(FieldError::not_supported(&path.child("type"), ty, &types));
    }
    let mut present = Vec::new();
    for key in [
        "object",
        "external",
        "pods",
        "resource",
        "containerResource",
    ] {
        let Some(src) = obj(m, key) else { continue };
        present.push(key);
        if present.len() > 1 {
            continue;
        }
        let p = path.child(key);
        match key {
            "resource" => errs.extend(validate_resource_source(src, &p, false)),
            "containerResource" => errs.extend(validate_resource_source(src, &p, true)),
            "pods" => {
                errs.extend(validate_metric_identifier(
                    child(src, "metric"),
                    &p.child("metric"),
                ));
                let t = child(src, "target");
                errs.extend(validate_metric_target(t, &p.child("target")));
                if get(t, "averageValue").is_none() {
                    errs.push(FieldError::required(
                        &p.child("target").child("averageValue"),
                        "must specify a positive target averageValue",
                    ));
                }
            }
            "object" => {
                errs.extend(validate_cross_version_ref(
                    child(src, "describedObject"),
                    &p.child("describedObject"),
                ));
                errs.extend(validate_metric_identifier(
                    child(src, "metric"),
                    &p.child("metric"),
                ));
                let t = child(src, "target");
                errs.extend(validate_metric_target(t, &p.child("target")));
                if get(t, "value").is_none() && get(t, "averageValue").is_none() {
                    errs.push(FieldError::required(
                        &p.child("target").child("averageValue"),
                        "must set either a target value or averageValue",
                    ));
                }
            }
            _ => {
                errs.extend(validate_metric_identifier(
                    child(src, "metric"),
                    &p.child("metric"),
                ));
                let t = child(src, "target");
                errs.extend(validate_metric_target(t, &p.child("target")));
                if get(t, "value").is_none() && get(t, "averageValue").is_none() {
                    errs.push(FieldError::required(
                        &p.child("target").child("averageValue"),
                        "must set either a target value for metric or a per-pod target",
                    ));
                }
                if get(t, "value").is_some() && get(t, "averageValue").is_some() {
                    errs.push(FieldError::forbidden(
                        &p.child("target").child("value"),
                        "may not set both a target value for metric and a per-pod target",
                    ));
                }
            }
        }
    }
    let expected = match ty {
        "Object" => "object",
        "Pods" => "pods",
        "Resource" => "resource",
        "External" => "external",
        "ContainerResource" => "containerResource",
        _ => "",
    };
    if !expected.is_empty() && !present.contains(&expected) {
        errs.push(FieldError::required(
            &path.child(expected),
            "must populate information for the given metric source",
        ));
    }
    if expected.is_empty() && types.contains(&ty) {
        errs.push(FieldError::not_supported(&path.child("type"), ty, &types));
    }
    if present.len() != 1 {
        for key in present.iter().filter(|k| **k != expected) {
            errs.push(FieldError::forbidden(
                &path.child(*key),
                "must populate the given metric source only",
            ));
        }
    }
    errs
}

fn validate_scaling_rules(rules: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(w) = opt_int(rules, "stabilizationWindowSeconds") {
        if w < 0 {
            errs.push(FieldError::invalid(
                &path.child("stabilizationWindowSeconds"),
                w,
                "must be greater than or equal to zero",
            ));
        }
        if w > 3600 {
            errs.push(FieldError::invalid(
                &path.child("stabilizationWindowSeconds"),
                w,
                "must be less than or equal to 3600",
            ));
        }
    }
    if let Some(sp) = opt_str(rules, "selectPolicy") {
        if !["Max", "Min", "Disabled"].contains(&sp) {
            errs.push(FieldError::not_supported(
                &path.child("selectPolicy"),
                sp,
                &["Disabled", "Max", "Min"],
            ));
        }
    }
    let policies = arr(rules, "policies");
    if policies.is_empty() {
        errs.push(FieldError::required(
            &path.child("policies"),
            "must specify at least one Policy",
        ));
    }
    for (i, p) in policies.iter().enumerate() {
        let pp = path.child("policies").index(i);
        let ty = str_of(p, "type");
        if ty != "Pods" && ty != "Percent" {
            errs.push(FieldError::invalid(
                &pp.child("type"),
                ty,
                "must be either Pods or Percent",
            ));
        }
        let v = int_of(p, "value");
        if v <= 0 {
            errs.push(FieldError::invalid(
                &pp.child("value"),
                v,
                "must be greater than zero",
            ));
        }
        let period = int_of(p, "periodSeconds");
        if period <= 0 {
            errs.push(FieldError::invalid(
                &pp.child("periodSeconds"),
                period,
                "must be greater than zero",
            ));
        }
        if period > 1800 {
            errs.push(FieldError::invalid(
                &pp.child("periodSeconds"),
                period,
                "must be less than or equal to 1800",
            ));
        }
    }
    errs
}

/// `validateHorizontalPodAutoscalerSpec` (autoscaling/v2; v1's
/// `targetCPUUtilizationPercentage` is checked for v1 objects).
pub(crate) fn validate_hpa(hpa: &Value, version: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = child(hpa, "spec");
    let sp = Path::new("spec");
    let min = opt_int(spec, "minReplicas");
    let max = int_of(spec, "maxReplicas");
    if let Some(m) = min.filter(|m| *m < 1) {
        errs.push(FieldError::invalid(
            &sp.child("minReplicas"),
            m,
            "must be greater than or equal to 1",
        ));
    }
    if max < 1 {
        errs.push(FieldError::invalid(
            &sp.child("maxReplicas"),
            max,
            "must be greater than 0",
        ));
    }
    if min.is_some_and(|m| max < m) {
        errs.push(FieldError::invalid(
            &sp.child("maxReplicas"),
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    errs.extend(validate_cross_version_ref(
        child(spec, "scaleTargetRef"),
        &sp.child("scaleTargetRef"),
    ));
    if version == "v1" {
        if let Some(t) = opt_int(spec, "targetCPUUtilizationPercentage") {
            if t < 1 {
                errs.push(FieldError::invalid(
                    &sp.child("targetCPUUtilizationPercentage"),
                    t,
                    "must be greater than 0",
                ));
            }
        }
        return errs;
    }
    for (i, m) in arr(spec, "metrics").iter().enumerate() {
        errs.extend(validate_metric_spec(m, &sp.child("metrics").index(i)));
    }
    if let Some(b) = obj(spec, "behavior") {
        for key in ["scaleUp", "scaleDown"] {
            if let Some(r) = obj(b, key) {
                errs.extend(validate_scaling_rules(r, &sp.child("behavior").child(key)));
            }
        }
    }
    errs
}

// ------------------------------------------------------------ StorageClass

/// `ValidateStorageClass`.
pub(crate) fn validate_storage_class(sc: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let provisioner = str_of(sc, "provisioner");
    let pp = Path::new("provisioner");
    if provisioner.is_empty() {
        errs.push(FieldError::required(&pp, ""));
    } else {
        errs.extend(qualified_name(&provisioner.to_lowercase(), &pp));
    }
    let params = string_map(sc, "parameters").unwrap_or_default();
    if params.len() > 512 {
        errs.push(FieldError::too_long(
            &Path::new("parameters"),
            "Provisioner Parameters exceeded max allowed",
            512,
        ));
    } else {
        let mut total = 0;
        for (k, v) in &params {
            if k.is_empty() {
                errs.push(FieldError::invalid(
                    &Path::new("parameters"),
                    k.as_str(),
                    "field can not be empty.",
                ));
            }
            total += k.len() + v.len();
        }
        if total > 256 * 1024 {
            errs.push(FieldError::too_long(
                &Path::new("parameters"),
                "",
                256 * 1024,
            ));
        }
    }
    if let Some(p) = opt_str(sc, "reclaimPolicy").filter(|p| !p.is_empty()) {
        if p != "Delete" && p != "Retain" {
            errs.push(FieldError::not_supported(
                &Path::new("reclaimPolicy"),
                p,
                &["Delete", "Retain"],
            ));
        }
    }
    match opt_str(sc, "volumeBindingMode") {
        None => errs.push(FieldError::required(&Path::new("volumeBindingMode"), "")),
        Some(m) if m != "Immediate" && m != "WaitForFirstConsumer" => {
            errs.push(FieldError::not_supported(
                &Path::new("volumeBindingMode"),
                m,
                &["Immediate", "WaitForFirstConsumer"],
            ))
        }
        _ => {}
    }
    let ap = Path::new("allowedTopologies");
    for (i, term) in arr(sc, "allowedTopologies").iter().enumerate() {
        let ep = ap.index(i).child("matchLabelExpressions");
        let exprs = arr(term, "matchLabelExpressions");
        if exprs.is_empty() {
            errs.push(FieldError::required(
                &ap.index(i),
                "must have at least one label expression",
            ));
        }
        let mut keys = HashSet::new();
        for (j, e) in exprs.iter().enumerate() {
            let values = strings(e, "values").unwrap_or_default();
            if values.is_empty() {
                errs.push(FieldError::required(&ep.index(j).child("values"), ""));
            }
            let mut seen = HashSet::new();
            for (k, v) in values.iter().enumerate() {
                if !seen.insert(v) {
                    errs.push(FieldError::duplicate(
                        &ep.index(j).child("values").index(k),
                        v.as_str(),
                    ));
                }
            }
            let key = str_of(e, "key");
            errs.extend(validate_label_name(key, &ep.index(j).child("key")));
            if !keys.insert(key) {
                errs.push(FieldError::duplicate(&ep.index(j).child("key"), key));
            }
        }
    }
    errs
}

/// `ValidateStorageClassUpdate`.
pub(crate) fn validate_storage_class_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate_storage_class(new);
    if !json::semantic_eq(new.get("parameters"), old.get("parameters")) {
        errs.push(FieldError::forbidden(
            &Path::new("parameters"),
            "updates to parameters are forbidden.",
        ));
    }
    if str_of(new, "provisioner") != str_of(old, "provisioner") {
        errs.push(FieldError::forbidden(
            &Path::new("provisioner"),
            "updates to provisioner are forbidden.",
        ));
    }
    if str_of(new, "reclaimPolicy") != str_of(old, "reclaimPolicy") {
        errs.push(FieldError::forbidden(
            &Path::new("reclaimPolicy"),
            "updates to reclaimPolicy are forbidden.",
        ));
    }
    let (n, o) = (
        opt_str(new, "volumeBindingMode"),
        opt_str(old, "volumeBindingMode"),
    );
    errs.extend(validate_immutable_field(
        &n,
        &o,
        n.map(str::to_string),
        &Path::new("volumeBindingMode"),
    ));
    errs
}

// ----------------------------------------------------------- PriorityClass

const HIGHEST_USER_DEFINABLE_PRIORITY: i64 = 1_000_000_000;

/// `ValidatePriorityClass`.
pub(crate) fn validate_priority_class(pc: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = str_of(child(pc, "metadata"), "name");
    let value = int_of(pc, "value");
    let global = bool_of(pc, "globalDefault");
    if name.starts_with("system-") {
        let known = [
            ("system-node-critical", 2_000_001_000i64),
            ("system-cluster-critical", 2_000_000_000),
        ];
        let err = match known.iter().find(|(n, _)| *n == name) {
            None => Some(format!("{name} is not a known system priority class")),
            Some((n, v)) if *v != value => Some(format!("value of {n} PriorityClass must be {v}")),
            Some((n, _)) if global => {
                Some(format!("globalDefault of {n} PriorityClass must be false"))
            }
            Some(_) => None,
        };
        if let Some(e) = err {
            errs.push(FieldError::forbidden(
                &Path::from_names(&["metadata", "name"]),
                format!("priority class names with 'system-' prefix are reserved for system use only. error: {e}"),
            ));
        }
    } else if value > HIGHEST_USER_DEFINABLE_PRIORITY {
        errs.push(FieldError::forbidden(
            &Path::new("value"),
            format!("maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"),
        ));
    }
    if let Some(p) = opt_str(pc, "preemptionPolicy") {
        errs.extend(super::pod::validate_preemption_policy(
            p,
            &Path::new("preemptionPolicy"),
        ));
    }
    errs
}

/// `ValidatePriorityClassUpdate`.
pub(crate) fn validate_priority_class_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    if int_of(new, "value") != int_of(old, "value") {
        errs.push(FieldError::forbidden(
            &Path::new("value"),
            "may not be changed in an update.",
        ));
    }
    let (n, o) = (
        opt_str(new, "preemptionPolicy"),
        opt_str(old, "preemptionPolicy"),
    );
    errs.extend(validate_immutable_field(
        &n,
        &o,
        n.map(str::to_string),
        &Path::new("preemptionPolicy"),
    ));
    errs
}

// ------------------------------------------------------------------- Lease

/// `ValidateLeaseSpec`.
pub(crate) fn validate_lease(lease: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = child(lease, "spec");
    let sp = Path::new("spec");
    if let Some(d) = opt_int(spec, "leaseDurationSeconds").filter(|d| *d <= 0) {
        errs.push(FieldError::invalid(
            &sp.child("leaseDurationSeconds"),
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = opt_int(spec, "leaseTransitions").filter(|t| *t < 0) {
        errs.push(FieldError::invalid(
            &sp.child("leaseTransitions"),
            t,
            "must be greater than or equal to 0",
        ));
    }
    errs
}

// ----------------------------------------------------------- EndpointSlice

/// `ValidateEndpointSlice` (addresses, conditions-independent checks, ports).
pub(crate) fn validate_endpoint_slice(es: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let at = str_of(es, "addressType");
    let types = ["FQDN", "IPv4", "IPv6"];
    if at.is_empty() {
        errs.push(FieldError::required(&Path::new("addressType"), ""));
    } else if !types.contains(&at) {
        errs.push(FieldError::not_supported(
            &Path::new("addressType"),
            at,
            &types,
        ));
    }
    let ep = Path::new("endpoints");
    let endpoints = arr(es, "endpoints");
    if endpoints.len() > 1000 {
        errs.push(FieldError::too_many(&ep, Some(endpoints.len()), Some(1000)));
    }
    for (i, e) in endpoints.iter().enumerate() {
        let idx = ep.index(i);
        let ap = idx.child("addresses");
        let addrs = strings(e, "addresses").unwrap_or_default();
        if addrs.is_empty() {
            errs.push(FieldError::required(&ap, "must contain at least 1 address"));
        } else if addrs.len() > 100 {
            errs.push(FieldError::too_many(&ap, Some(addrs.len()), Some(100)));
        }
        for (j, a) in addrs.iter().enumerate() {
            let p = ap.index(j);
            match at {
                "IPv4" if !matches!(json::parse_ip_sloppy(a), Some(std::net::IpAddr::V4(_))) => {
                    errs.push(FieldError::invalid(
                        &p,
                        a.as_str(),
                        "must be a valid IPv4 address",
                    ));
                }
                "IPv6" if !matches!(json::parse_ip_sloppy(a), Some(std::net::IpAddr::V6(_))) => {
                    errs.push(FieldError::invalid(
                        &p,
                        a.as_str(),
                        "must be a valid IPv6 address",
                    ));
                }
                "FQDN" => {
                    let name = a.strip_suffix('.').unwrap_or(a);
                    let msgs = crate::validation::is_dns1123_subdomain(name);
                    if !msgs.is_empty() {
                        errs.push(FieldError::invalid(&p, name, msgs.join(",")));
                    }
                }
                _ => {}
            }
        }
        if let Some(n) = opt_str(e, "nodeName") {
            errs.extend(name_errors(
                name_is_dns_subdomain(n, false),
                n,
                &idx.child("nodeName"),
            ));
        }
        if let Some(h) = opt_str(e, "hostname") {
            errs.extend(name_errors(is_dns1123_label(h), h, &idx.child("hostname")));
        }
        if let Some(topology) = string_map(e, "deprecatedTopology") {
            errs.extend(crate::validation::validate_labels(
                &topology,
                &idx.child("deprecatedTopology"),
            ));
        }
        if let Some(z) = opt_str(e, "zone") {
            for m in is_valid_label_value(z) {
                errs.push(FieldError::invalid(&idx.child("zone"), z, m));
            }
        }
    }
    let pp = Path::new("ports");
    let ports = arr(es, "ports");
    if ports.len() > 100 {
        errs.push(FieldError::too_many(&pp, Some(ports.len()), Some(100)));
    }
    let mut names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let idx = pp.index(i);
        let name = str_of(p, "name");
        if !name.is_empty() {
            errs.extend(dns1123_label(name, &idx.child("name")));
        }
        if !names.insert(name) {
            errs.push(FieldError::duplicate(&idx.child("name"), name));
        }
        match opt_str(p, "protocol") {
            None => errs.push(FieldError::required(&idx.child("protocol"), "")),
            Some(proto) if !["SCTP", "TCP", "UDP"].contains(&proto) => errs.push(
                FieldError::not_supported(&idx.child("protocol"), proto, &["SCTP", "TCP", "UDP"]),
            ),
            _ => {}
        }
        if let Some(port) = opt_int(p, "port") {
            if !(0..=65535).contains(&port) {
                for m in is_valid_port_num(port) {
                    errs.push(FieldError::invalid(&idx.child("port"), port, m));
                }
            }
        }
        if let Some(ap) = opt_str(p, "appProtocol") {
            errs.extend(qualified_name(ap, &idx.child("appProtocol")));
        }
    }
    errs
}

/// EndpointSlice updates: the address type is immutable.
pub(crate) fn validate_endpoint_slice_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate_endpoint_slice(new);
    let (n, o) = (str_of(new, "addressType"), str_of(old, "addressType"));
    errs.extend(validate_immutable_field(
        &n,
        &o,
        n,
        &Path::new("addressType"),
    ));
    errs
}
