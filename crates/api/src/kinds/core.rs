//! The other core/v1 kinds: Service, ConfigMap, Secret, Namespace,
//! PersistentVolume(Claim), Node, Endpoints, ReplicationController, Event,
//! LimitRange and ResourceQuota (`pkg/apis/core/validation`).

use super::common::*;
use super::json::{self, *};
use super::pod;
use crate::gofmt;
use crate::labels::LabelSelector;
use crate::quantity::Quantity;
use crate::validation::field::{BadValue, ErrorList, FieldError, Path};
use crate::validation::{
    is_qualified_name, is_valid_label_value, is_valid_port_num, name_is_dns_subdomain,
    validate_immutable_field, validate_label_name, validate_labels, validate_namespace_name,
    validate_nonnegative_field, FIELD_IMMUTABLE_ERROR_MSG,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// The largest total size of a Secret's or ConfigMap's data.
const MAX_SECRET_SIZE: usize = 1024 * 1024;

// ---------------------------------------------------------- ConfigMap, Secret

/// `ValidateConfigMap`.
pub(crate) fn validate_config_map(cm: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let data = string_map(cm, "data").unwrap_or_default();
    let binary = cm.get("binaryData").and_then(Value::as_object);
    let mut total = 0;
    for (key, value) in &data {
        let p = Path::new("data").key(key.clone());
        for m in is_config_map_key(key) {
            errs.push(FieldError::invalid(&p, key.as_str(), m));
        }
        if binary.is_some_and(|b| b.contains_key(key)) {
            errs.push(FieldError::invalid(
                &p,
                key.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
        total += value.len();
    }
    let mut bkeys: Vec<(&String, &Value)> = binary.into_iter().flatten().collect();
    bkeys.sort_by(|a, b| a.0.cmp(b.0));
    for (key, value) in bkeys {
        for m in is_config_map_key(key) {
            errs.push(FieldError::invalid(
                &Path::new("binaryData").key(key.clone()),
                key.as_str(),
                m,
            ));
        }
        total += value
            .as_str()
            .and_then(base64_decode)
            .map_or(0, |b| b.len());
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long(&Path::new(""), "", MAX_SECRET_SIZE));
    }
    errs
}

/// `ValidateConfigMapUpdate` (beyond `ValidateConfigMap`).
pub(crate) fn validate_config_map_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    if opt_bool(old, "immutable") == Some(true) {
        if opt_bool(new, "immutable") != Some(true) {
            errs.push(FieldError::forbidden(
                &Path::new("immutable"),
                "field is immutable when `immutable` is set",
            ));
        }
        for key in ["data", "binaryData"] {
            if !json::semantic_eq(new.get(key), old.get(key)) {
                errs.push(FieldError::forbidden(
                    &Path::new(key),
                    "field is immutable when `immutable` is set",
                ));
            }
        }
    }
    errs.extend(validate_config_map(new));
    errs
}

/// Standard base64 (what Go's `[]byte` JSON decoding accepts).
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0;
    let trimmed = s.trim_end_matches('=');
    if !s.len().is_multiple_of(4) || s.len() - trimmed.len() > 2 {
        return None;
    }
    for c in trimmed.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A Secret's data, decoded (values that are not base64 are skipped: the
/// decoder rejects them before validation).
fn secret_data(secret: &Value) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .get("data")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().and_then(base64_decode).map(|b| (k.clone(), b)))
                .collect()
        })
        .unwrap_or_default();
    // stringData is merged into data on write, as upstream's conversion does.
    for (k, v) in string_map(secret, "stringData").unwrap_or_default() {
        data.insert(k, v.into_bytes());
    }
    data
}

/// Go's `encoding/json` error for a malformed document (the common cases).
fn go_json_error(bytes: &[u8]) -> Option<String> {
    match serde_json::from_slice::<serde_json::Map<String, Value>>(bytes) {
        Ok(_) => None,
        Err(e) => {
            let trimmed: Vec<u8> = bytes
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            if trimmed.is_empty() || e.is_eof() {
                return Some("unexpected end of JSON input".to_string());
            }
            if e.is_data() {
                let kind = match trimmed[0] {
                    b'[' => "array",
                    b'"' => "string",
                    b't' | b'f' => "bool",
                    b'n' => return None,
                    _ => "number",
                };
                return Some(format!(
                    "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
                ));
            }
            let col = e.column().saturating_sub(1);
            let line_start: usize = bytes
                .split(|b| *b == b'\n')
                .take(e.line().saturating_sub(1))
                .map(|l| l.len() + 1)
                .sum();
            let c = bytes.get(line_start + col).copied().unwrap_or(b'?');
            Some(format!(
                "invalid character {} looking for beginning of value",
                go_char(c)
            ))
        }
    }
}

fn go_char(c: u8) -> String {
    match c {
        b'\'' => "'\\''".to_string(),
        c if c.is_ascii_graphic() || c == b' ' => format!("'{}'", c as char),
        c => format!("'\\x{c:02x}'"),
    }
}

/// `ValidateSecret`.
pub(crate) fn validate_secret(secret: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let data_path = Path::new("data");
    let data = secret_data(secret);
    let mut total = 0;
    for (key, value) in &data {
        for m in is_config_map_key(key) {
            errs.push(FieldError::invalid(
                &data_path.key(key.clone()),
                key.as_str(),
                m,
            ));
        }
        total += value.len();
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long(&data_path, "", MAX_SECRET_SIZE));
    }
    let annotations = string_map(child(secret, "metadata"), "annotations").unwrap_or_default();
    match str_of(secret, "type") {
        "kubernetes.io/service-account-token"
            if annotations
                .get("kubernetes.io/service-account.name")
                .is_none_or(String::is_empty) =>
        {
            errs.push(FieldError::required(
                &Path::from_names(&["metadata", "annotations"])
                    .key("kubernetes.io/service-account.name"),
                "",
            ));
        }
        "kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson" => {
            let key = if str_of(secret, "type") == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            match data.get(key) {
                None => errs.push(FieldError::required(&data_path.key(key), "")),
                Some(bytes) => {
                    if let Some(e) = go_json_error(bytes) {
                        errs.push(FieldError::invalid(
                            &data_path.key(key),
                            "<secret contents redacted>",
                            e,
                        ));
                    }
                }
            }
        }
        "kubernetes.io/basic-auth"
            if !data.contains_key("username") && !data.contains_key("password") =>
        {
            errs.push(FieldError::required(&data_path.key("username"), ""));
            errs.push(FieldError::required(&data_path.key("password"), ""));
        }
        "kubernetes.io/ssh-auth" if data.get("ssh-privatekey").is_none_or(Vec::is_empty) => {
            errs.push(FieldError::required(&data_path.key("ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !data.contains_key(key) {
                    errs.push(FieldError::required(&data_path.key(key), ""));
                }
            }
        }
        _ => {}
    }
    errs
}

/// `ValidateSecretUpdate` (beyond `ValidateSecret`).
pub(crate) fn validate_secret_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let (nt, ot) = (str_of(new, "type"), str_of(old, "type"));
    errs.extend(validate_immutable_field(&nt, &ot, nt, &Path::new("type")));
    if opt_bool(old, "immutable") == Some(true) {
        if opt_bool(new, "immutable") != Some(true) {
            errs.push(FieldError::forbidden(
                &Path::new("immutable"),
                "field is immutable when `immutable` is set",
            ));
        }
        if secret_data(new) != secret_data(old) {
            errs.push(FieldError::forbidden(
                &Path::new("data"),
                "field is immutable when `immutable` is set",
            ));
        }
    }
    errs.extend(validate_secret(new));
    errs
}

// ---------------------------------------------------------------- Namespace

fn validate_finalizer_name(name: &str, path: &Path) -> ErrorList {
    let mut errs: ErrorList = is_qualified_name(name)
        .into_iter()
        .map(|m| FieldError::invalid(path, name, m))
        .collect();
    if !name.contains('/') && !["kubernetes", "orphan", "foregroundDeletion"].contains(&name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "name is neither a standard finalizer name nor is it fully qualified",
        ));
    }
    errs
}

/// `ValidateNamespace` (spec part).
pub(crate) fn validate_namespace(ns: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    for f in strings(child(ns, "spec"), "finalizers").unwrap_or_default() {
        errs.extend(validate_finalizer_name(
            &f,
            &Path::from_names(&["spec", "finalizers"]),
        ));
    }
    errs
}

// ----------------------------------------------------------------- Service

fn is_headless(svc: &Value) -> bool {
    let spec = child(svc, "spec");
    match arr(spec, "clusterIPs").first().and_then(Value::as_str) {
        Some(ip) => ip == "None",
        None => str_of(spec, "clusterIP") == "None",
    }
}

fn externally_accessible(spec: &Value) -> bool {
    let t = str_of(spec, "type");
    t == "LoadBalancer"
        || t == "NodePort"
        || (t == "ClusterIP" && !arr(spec, "externalIPs").is_empty())
}

/// `%#v` of the `core.ServicePort` key upstream reports duplicates with.
fn service_port_key(protocol: &str, port: i64) -> String {
    format!(
        "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
        gofmt::quote(protocol)
    )
}

/// `ValidateService`. Fields the API server's service allocator defaults
/// (`type`, `sessionAffinity`, traffic policies, port protocols) are not
/// reported as missing.
pub(crate) fn validate_service(svc: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = child(svc, "spec");
    let sp = Path::new("spec");
    let ty = str_of(spec, "type");
    let ty = if ty.is_empty() { "ClusterIP" } else { ty };
    let headless = is_headless(svc);
    let ports = arr(spec, "ports");
    let annotations = string_map(child(svc, "metadata"), "annotations").unwrap_or_default();

    if let (Some(mode), Some(hints)) = (
        annotations.get("service.kubernetes.io/topology-mode"),
        annotations.get("service.kubernetes.io/topology-aware-hints"),
    ) {
        if mode != hints {
            errs.push(FieldError::invalid(
                &Path::from_names(&["metadata", "annotations"]).key("service.kubernetes.io/topology-mode"),
                mode.as_str(),
                "must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified",
            ));
        }
    }
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required(&sp.child("ports"), ""));
    }
    let cluster_ips = strings(spec, "clusterIPs").unwrap_or_default();
    match ty {
        "LoadBalancer" | "NodePort" if headless => {
            let first = cluster_ips
                .first()
                .cloned()
                .unwrap_or_else(|| "None".to_string());
            errs.push(FieldError::invalid(
                &sp.child("clusterIPs").index(0),
                first,
                format!("may not be set to 'None' for {ty} services"),
            ));
        }
        "ExternalName" => {
            if !cluster_ips.is_empty() {
                errs.push(FieldError::forbidden(
                    &sp.child("clusterIPs"),
                    "may not be set for ExternalName services",
                ));
            }
            if !arr(spec, "ipFamilies").is_empty() {
                errs.push(FieldError::forbidden(
                    &sp.child("ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if get(spec, "ipFamilyPolicy").is_some() {
                errs.push(FieldError::forbidden(
                    &sp.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let name = str_of(spec, "externalName");
            let cname = name.strip_suffix('.').unwrap_or(name);
            if cname.is_empty() {
                errs.push(FieldError::required(&sp.child("externalName"), ""));
            } else {
                errs.extend(dns1123_subdomain(cname, &sp.child("externalName")));
            }
        }
        _ => {}
    }

    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = sp.child("ports").index(i);
        let name = str_of(port, "name");
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else if !name.is_empty() {
            errs.extend(dns1123_label(name, &p.child("name")));
            if !names.insert(name) {
                errs.push(FieldError::duplicate(&p.child("name"), name));
            }
        }
        let num = int_of(port, "port");
        for m in is_valid_port_num(num) {
            errs.push(FieldError::invalid(&p.child("port"), num, m));
        }
        let proto = str_of(port, "protocol");
        if !proto.is_empty() && !["SCTP", "TCP", "UDP"].contains(&proto) {
            errs.push(FieldError::not_supported(
                &p.child("protocol"),
                proto,
                &["SCTP", "TCP", "UDP"],
            ));
        }
        if get(port, "targetPort").is_some() {
            errs.extend(port_num_or_name(
                get(port, "targetPort"),
                &p.child("targetPort"),
            ));
        }
        if let Some(ap) = opt_str(port, "appProtocol") {
            errs.extend(qualified_name(ap, &p.child("appProtocol")));
        }
    }

    if let Some(sel) = string_map(spec, "selector") {
        errs.extend(validate_labels(&sel, &sp.child("selector")));
    }

    let affinity = str_of(spec, "sessionAffinity");
    if !affinity.is_empty() && !["ClientIP", "None"].contains(&affinity) {
        errs.push(FieldError::not_supported(
            &sp.child("sessionAffinity"),
            affinity,
            &["ClientIP", "None"],
        ));
    }
    let cfg_path = sp.child("sessionAffinityConfig");
    if affinity == "ClientIP" {
        match obj(spec, "sessionAffinityConfig") {
            None => errs.push(FieldError::required(
                &cfg_path,
                "when session affinity type is ClientIP",
            )),
            Some(cfg) => match obj(cfg, "clientIP") {
                None => errs.push(FieldError::required(
                    &cfg_path.child("clientIP"),
                    "when session affinity type is ClientIP",
                )),
                Some(cip) => {
                    let tp = cfg_path.child("clientIP").child("timeoutSeconds");
                    match opt_int(cip, "timeoutSeconds") {
                        None => errs.push(FieldError::required(
                            &tp,
                            "when session affinity type is ClientIP",
                        )),
                        Some(t) if t <= 0 || t > 86400 => errs.push(FieldError::invalid(
                            &tp,
                            t,
                            "must be greater than 0 and less than 86400",
                        )),
                        _ => {}
                    }
                }
            },
        }
    } else if affinity == "None" && get(spec, "sessionAffinityConfig").is_some() {
        errs.push(FieldError::forbidden(
            &cfg_path,
            "must not be set when session affinity is None",
        ));
    }

    errs.extend(validate_cluster_ips(spec, ty, headless));

    for (i, ip) in strings(spec, "externalIPs")
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let p = sp.child("externalIPs").index(i);
        let e = valid_ip(ip, &p);
        if e.is_empty() {
            errs.extend(non_special_ip(ip, &p));
        } else {
            errs.extend(e);
        }
    }
    if !["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"].contains(&ty) {
        errs.push(FieldError::not_supported(
            &sp.child("type"),
            ty,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
    }
    if ty == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if int_of(port, "nodePort") != 0 {
                errs.push(FieldError::forbidden(
                    &sp.child("ports").index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let np = int_of(port, "nodePort");
        if np == 0 {
            continue;
        }
        if !node_ports.insert((proto_or_tcp(port), np)) {
            errs.push(FieldError::duplicate(
                &sp.child("ports").index(i).child("nodePort"),
                np,
            ));
        }
    }
    let mut seen = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let key = (proto_or_tcp(port), int_of(port, "port"));
        if !seen.insert(key.clone()) {
            errs.push(FieldError::duplicate(
                &sp.child("ports").index(i),
                BadValue::Raw(service_port_key(&key.0, key.1)),
            ));
        }
    }
    let ranges = strings(spec, "loadBalancerSourceRanges").unwrap_or_default();
    if !ranges.is_empty() {
        let p = sp.child("LoadBalancerSourceRanges");
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                &p,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (i, r) in ranges.iter().enumerate() {
            errs.extend(valid_cidr(r.trim(), &p.index(i)));
        }
    } else if let Some(val) =
        annotations.get("service.beta.kubernetes.io/load-balancer-source-ranges")
    {
        let p = Path::from_names(&["metadata", "annotations"])
            .key("service.beta.kubernetes.io/load-balancer-source-ranges");
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                &p,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        let val = val.trim();
        if !val.is_empty() {
            for c in val.split(',') {
                errs.extend(valid_cidr(c.trim(), &p));
            }
        }
    }
    if get(spec, "allocateLoadBalancerNodePorts").is_some() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            &sp.child("allocateLoadBalancerNodePorts"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if let Some(class) = opt_str(spec, "loadBalancerClass") {
        let p = sp.child("loadBalancerClass");
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                &p,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        } else {
            errs.extend(qualified_name(class, &p));
        }
    }
    let etp = str_of(spec, "externalTrafficPolicy");
    if !externally_accessible(spec) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                &sp.child("externalTrafficPolicy"),
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if !etp.is_empty() && !["Cluster", "Local"].contains(&etp) {
        errs.push(FieldError::not_supported(
            &sp.child("externalTrafficPolicy"),
            etp,
            &["Cluster", "Local"],
        ));
    }
    let hc = int_of(spec, "healthCheckNodePort");
    let needs_hc = ty == "LoadBalancer" && etp == "Local";
    if !needs_hc {
        if hc != 0 {
            errs.push(FieldError::invalid(
                &sp.child("healthCheckNodePort"),
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hc != 0 {
        for m in is_valid_port_num(hc) {
            errs.push(FieldError::invalid(&sp.child("healthCheckNodePort"), hc, m));
        }
    }
    if let Some(itp) = opt_str(spec, "internalTrafficPolicy") {
        if !["Cluster", "Local"].contains(&itp) {
            errs.push(FieldError::not_supported(
                &sp.child("internalTrafficPolicy"),
                itp,
                &["Cluster", "Local"],
            ));
        }
    }
    if let Some(td) = opt_str(spec, "trafficDistribution") {
        if td != "PreferClose" {
            errs.push(FieldError::not_supported(
                &sp.child("trafficDistribution"),
                td,
                &["PreferClose"],
            ));
        }
    }
    errs
}

fn proto_or_tcp(port: &Value) -> String {
    let p = str_of(port, "protocol");
    if p.is_empty() { "TCP" } else { p }.to_string()
}

/// `ValidateServiceClusterIPsRelatedFields`.
fn validate_cluster_ips(spec: &Value, ty: &str, headless: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    if ty == "ExternalName" {
        return errs;
    }
    let sp = Path::new("spec");
    let ips_path = sp.child("clusterIPs");
    let cluster_ip = str_of(spec, "clusterIP");
    let ips = strings(spec, "clusterIPs").unwrap_or_default();
    if !cluster_ip.is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required(&ips_path, ""));
        } else if ips[0] != cluster_ip {
            errs.push(FieldError::invalid(
                &ips_path,
                ips.clone(),
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid(
            &ips_path,
            ips.clone(),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let families = strings(spec, "ipFamilies").unwrap_or_default();
    let mut seen = HashSet::new();
    for (i, f) in families.iter().enumerate() {
        if !["IPv4", "IPv6"].contains(&f.as_str()) {
            errs.push(FieldError::not_supported(
                &sp.child("ipFamilies").index(i),
                f.as_str(),
                &["IPv4", "IPv6"],
            ));
        }
        if !seen.insert(f) {
            errs.push(FieldError::duplicate(
                &sp.child("ipFamilies").index(i),
                f.as_str(),
            ));
        }
    }
    if let Some(p) = opt_str(spec, "ipFamilyPolicy") {
        let supported = ["PreferDualStack", "RequireDualStack", "SingleStack"];
        if !supported.contains(&p) {
            errs.push(FieldError::not_supported(
                &sp.child("ipFamilyPolicy"),
                p,
                &supported,
            ));
        }
    }
    let mut invalid = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                invalid = true;
                errs.push(FieldError::invalid(
                    &ips_path,
                    ips.clone(),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        let e = valid_ip(ip, &ips_path.index(i));
        invalid |= !e.is_empty();
        errs.extend(e);
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid(
            &ips_path,
            ips.clone(),
            "may only hold up to 2 values",
        ));
    }
    if invalid {
        return errs;
    }
    if ips.len() > 1 {
        let v6: Vec<bool> = ips.iter().map(|ip| ip.contains(':')).collect();
        let dual = v6.iter().any(|x| *x) && v6.iter().any(|x| !*x);
        if !dual {
            errs.push(FieldError::invalid(
                &ips_path,
                ips.clone(),
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    if !headless && !ips.is_empty() && !families.is_empty() {
        for (i, ip) in ips.iter().enumerate().take(families.len()) {
            let is_v6 = json::parse_ip_sloppy(ip).is_some_and(|a| a.is_ipv6());
            if families[i] == "IPv4" && is_v6 {
                errs.push(FieldError::invalid(
                    &ips_path.index(i),
                    ip.as_str(),
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if families[i] == "IPv6" && !is_v6 {
                errs.push(FieldError::invalid(
                    &ips_path.index(i),
                    ip.as_str(),
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errs
}

/// `ValidateServiceUpdate`'s checks beyond `ValidateService` (cluster IP
/// changes are the allocator's business).
pub(crate) fn validate_service_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let (ns, os) = (child(new, "spec"), child(old, "spec"));
    if str_of(os, "type") == "LoadBalancer" && str_of(ns, "type") == "LoadBalancer" {
        let (nc, oc) = (
            opt_str(ns, "loadBalancerClass"),
            opt_str(os, "loadBalancerClass"),
        );
        if nc != oc {
            errs.push(FieldError::invalid(
                &Path::from_names(&["spec", "loadBalancerClass"]),
                nc.map(str::to_string),
                "may not change once set",
            ));
        }
    }
    let needs = |s: &Value| {
        str_of(s, "type") == "LoadBalancer" && str_of(s, "externalTrafficPolicy") == "Local"
    };
    if needs(os)
        && needs(ns)
        && int_of(ns, "healthCheckNodePort") != int_of(os, "healthCheckNodePort")
    {
        errs.push(FieldError::forbidden(
            &Path::from_names(&["spec", "healthCheckNodePort"]),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    errs.extend(validate_service(new));
    errs
}

// ------------------------------------------------------------- PVCs, PVs

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

fn validate_access_modes(spec: &Value, path: &Path, errs: &mut ErrorList) {
    let (mut rwop, mut other) = (false, false);
    for mode in strings(spec, "accessModes").unwrap_or_default() {
        if !ACCESS_MODES.contains(&mode.as_str()) {
            errs.push(FieldError::not_supported(
                &path.child("accessModes"),
                mode.as_str(),
                ACCESS_MODES,
            ));
        }
        if mode == "ReadWriteOncePod" {
            rwop = true;
        } else if ACCESS_MODES.contains(&mode.as_str()) {
            other = true;
        }
    }
    if rwop && other {
        errs.push(FieldError::forbidden(
            &path.child("accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

fn validate_data_source(ds: &Value, path: &Path, with_namespace: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    if str_of(ds, "name").is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    }
    let kind = str_of(ds, "kind");
    if kind.is_empty() {
        errs.push(FieldError::required(&path.child("kind"), ""));
    }
    let group = str_of(ds, "apiGroup");
    if group.is_empty() && kind != "PersistentVolumeClaim" {
        errs.push(FieldError::invalid(
            path,
            kind,
            "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
        ));
    }
    if !group.is_empty() {
        errs.extend(dns1123_subdomain(group, &path.child("apiGroup")));
    }
    if with_namespace {
        if let Some(ns) = opt_str(ds, "namespace").filter(|n| !n.is_empty()) {
            errs.extend(name_errors(
                validate_namespace_name(ns, false),
                ns,
                &path.child("namespace"),
            ));
        }
    }
    errs
}

/// `ValidatePersistentVolumeClaimSpec`.
pub(crate) fn validate_pvc_spec(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if arr(spec, "accessModes").is_empty() {
        errs.push(FieldError::required(
            &path.child("accessModes"),
            "at least 1 access mode is required",
        ));
    }
    if obj(spec, "selector").is_some() {
        errs.extend(label_selector_errs(
            spec,
            "selector",
            false,
            &path.child("selector"),
        ));
    }
    validate_access_modes(spec, path, &mut errs);
    let storage_path = path.child("resources").key("storage");
    let requests = pod::resource_list(child(spec, "resources"), "requests");
    match requests.get("storage") {
        None => errs.push(FieldError::required(&storage_path, "")),
        Some(q) => {
            let e = positive_quantity(q, &storage_path);
            if e.is_empty() {
                errs.extend(resource_quantity_value("storage", q, &storage_path));
            } else {
                errs.extend(e);
            }
        }
    }
    if let Some(sc) = opt_str(spec, "storageClassName").filter(|s| !s.is_empty()) {
        errs.extend(name_errors(
            name_is_dns_subdomain(sc, false),
            sc,
            &path.child("storageClassName"),
        ));
    }
    if let Some(m) = opt_str(spec, "volumeMode") {
        if !["Block", "Filesystem"].contains(&m) {
            errs.push(FieldError::not_supported(
                &path.child("volumeMode"),
                m,
                &["Block", "Filesystem"],
            ));
        }
    }
    let ds = obj(spec, "dataSource");
    let dsr = obj(spec, "dataSourceRef");
    if let Some(ds) = ds {
        errs.extend(validate_data_source(ds, &path.child("dataSource"), false));
    }
    if let Some(dsr) = dsr {
        errs.extend(validate_data_source(
            dsr,
            &path.child("dataSourceRef"),
            true,
        ));
    }
    if dsr.is_some_and(|d| !str_of(d, "namespace").is_empty()) {
        if ds.is_some() {
            errs.push(FieldError::invalid(
                path,
                BadValue::Raw(path.child("dataSource").to_string()),
                "may not be specified when dataSourceRef.namespace is specified",
            ));
        }
    } else if let (Some(a), Some(b)) = (ds, dsr) {
        let same = opt_str(a, "apiGroup") == opt_str(b, "apiGroup")
            && str_of(a, "kind") == str_of(b, "kind")
            && str_of(a, "name") == str_of(b, "name");
        if !same {
            errs.push(FieldError::invalid(
                path,
                BadValue::Raw(path.child("dataSource").to_string()),
                "must match dataSourceRef",
            ));
        }
    }
    errs
}

/// `ValidatePersistentVolumeClaim` (spec part).
pub(crate) fn validate_pvc(pvc: &Value) -> ErrorList {
    validate_pvc_spec(child(pvc, "spec"), &Path::new("spec"))
}

/// `ValidatePersistentVolumeClaimUpdate` (beyond `ValidatePersistentVolumeClaim`).
pub(crate) fn validate_pvc_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate_pvc(new);
    let (ns, os) = (child(new, "spec"), child(old, "spec"));
    let mut new_clone = ns.clone();
    let mut old_clone = os.clone();
    if str_of(os, "volumeName").is_empty() {
        match get(ns, "volumeName") {
            Some(v) => old_clone["volumeName"] = v.clone(),
            None => {
                if let Some(m) = old_clone.as_object_mut() {
                    m.remove("volumeName");
                }
            }
        }
    }
    let beta = "volume.beta.kubernetes.io/storage-class";
    let old_ann = string_map(child(old, "metadata"), "annotations").unwrap_or_default();
    let new_ann = string_map(child(new, "metadata"), "annotations").unwrap_or_default();
    let (old_sc, new_sc) = (
        opt_str(os, "storageClassName"),
        opt_str(ns, "storageClassName"),
    );
    let upgrade_from_annotation = old_ann.contains_key(beta)
        && old_sc.is_none()
        && new_sc.is_some_and(|s| Some(s) == old_ann.get(beta).map(String::as_str))
        && new_ann
            .get(beta)
            .is_none_or(|v| Some(v) == old_ann.get(beta));
    if upgrade_from_annotation {
        if let Some(m) = new_clone.as_object_mut() {
            m.remove("storageClassName");
        }
    } else {
        let (n, o) = (
            new_ann.get(beta).cloned().unwrap_or_default(),
            old_ann.get(beta).cloned().unwrap_or_default(),
        );
        if n != o {
            errs.push(FieldError::invalid(
                &Path::new("metadata").child("annotations").child(beta),
                n,
                FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
        let upgrade_from_nil = new_sc.is_some()
            && old_sc.is_none()
            && old_ann.get(beta).is_none_or(|a| Some(a.as_str()) == new_sc);
        if upgrade_from_nil {
            if let Some(m) = new_clone.as_object_mut() {
                m.remove("storageClassName");
            }
        }
    }
    let phase = obj(new, "status")
        .map(|s| str_of(s, "phase"))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| str_of(child(old, "status"), "phase"));
    let bound = phase == "Bound";
    if bound {
        if let Some(req) = new_clone
            .pointer_mut("/resources/requests")
            .and_then(Value::as_object_mut)
        {
            match child(child(os, "resources"), "requests").get("storage") {
                Some(s) => req.insert("storage".into(), s.clone()),
                None => req.remove("storage"),
            };
        }
        match get(os, "volumeAttributesClassName") {
            Some(v) if get(ns, "volumeAttributesClassName").is_some() => {
                new_clone["volumeAttributesClassName"] = v.clone();
            }
            _ => {}
        }
    }
    if !json::semantic_eq(Some(&new_clone), Some(&old_clone)) {
        errs.push(FieldError::forbidden(
            &Path::new("spec"),
            format!(
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{}",
                json_diff("core.PersistentVolumeClaimSpec", &old_clone, &new_clone)
            ),
        ));
    }
    let old_size = pod::resource_list(child(os, "resources"), "requests")
        .remove("storage")
        .unwrap_or_default();
    let new_size = pod::resource_list(child(ns, "resources"), "requests")
        .remove("storage")
        .unwrap_or_default();
    let status_size = pod::resource_list(child(old, "status"), "capacity")
        .remove("storage")
        .unwrap_or_default();
    if new_size < old_size && new_size <= status_size {
        errs.push(FieldError::forbidden(
            &Path::from_names(&["spec", "resources", "requests", "storage"]),
            "field can not be less than status.capacity",
        ));
    }
    let (nm, om) = (opt_str(ns, "volumeMode"), opt_str(os, "volumeMode"));
    errs.extend(validate_immutable_field(
        &nm,
        &om,
        nm.map(str::to_string),
        &Path::new("volumeMode"),
    ));
    errs
}

/// A field-by-field diff of two JSON objects, shaped like `cmp.Diff`.
pub(crate) fn json_diff(type_name: &str, old: &Value, new: &Value) -> String {
    let mut out = format!("  {type_name}{{\n");
    let keys: std::collections::BTreeSet<&String> = old
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .chain(new.as_object().into_iter().flat_map(|m| m.keys()))
        .collect();
    for k in keys {
        let (o, n) = (old.get(k), new.get(k));
        if json::semantic_eq(o, n) {
            continue;
        }
        let mut name = k.clone();
        if let Some(f) = name.get_mut(0..1) {
            f.make_ascii_uppercase();
        }
        if let Some(o) = o {
            out.push_str(&format!("- \t{name}: {o},\n"));
        }
        if let Some(n) = n {
            out.push_str(&format!("+ \t{name}: {n},\n"));
        }
    }
    out.push_str("  }\n");
    out
}

type PvSourceValidator = fn(&Value, &Path) -> ErrorList;

fn pv_sources() -> Vec<(&'static str, &'static str, PvSourceValidator)> {
    vec![
        (
            "hostPath",
            "hostPath",
            pod::validate_host_path as PvSourceValidator,
        ),
        ("gcePersistentDisk", "persistentDisk", |v, p| {
            req(v, p, &["pdName"])
        }),
        ("awsElasticBlockStore", "awsElasticBlockStore", |v, p| {
            req(v, p, &["volumeID"])
        }),
        ("glusterfs", "glusterfs", |v, p| {
            req(v, p, &["endpoints", "path"])
        }),
        ("flocker", "flocker", |_, _| ErrorList::new()),
        ("nfs", "nfs", |v, p| {
            let mut e = req(v, p, &["server", "path"]);
            let path = str_of(v, "path");
            if !path.starts_with('/') {
                e.push(FieldError::invalid(
                    &p.child("path"),
                    path,
                    "must be an absolute path",
                ));
            }
            e
        }),
        ("rbd", "rbd", |v, p| {
            let mut e = ErrorList::new();
            if arr(v, "monitors").is_empty() {
                e.push(FieldError::required(&p.child("monitors"), ""));
            }
            e.extend(req(v, p, &["image"]));
            e
        }),
        ("quobyte", "quobyte", |v, p| {
            req(v, p, &["registry", "volume"])
        }),
        ("cephfs", "cephfs", |v, p| {
            if arr(v, "monitors").is_empty() {
                return FieldError::required(&p.child("monitors"), "").into();
            }
            ErrorList::new()
        }),
        ("iscsi", "iscsi", |v, p| req(v, p, &["targetPortal", "iqn"])),
        ("cinder", "cinder", |v, p| req(v, p, &["volumeID"])),
        ("fc", "fc", |_, _| ErrorList::new()),
        ("flexVolume", "flexVolume", |v, p| req(v, p, &["driver"])),
        ("azureFile", "azureFile", |v, p| {
            req(v, p, &["secretName", "shareName"])
        }),
        ("vsphereVolume", "vsphereVolume", |v, p| {
            req(v, p, &["volumePath"])
        }),
        ("photonPersistentDisk", "photonPersistentDisk", |v, p| {
            req(v, p, &["pdID"])
        }),
        ("portworxVolume", "portworxVolume", |v, p| {
            req(v, p, &["volumeID"])
        }),
        ("azureDisk", "azureDisk", |v, p| {
            req(v, p, &["diskName", "diskURI"])
        }),
        ("scaleIO", "scaleIO", |v, p| {
            req(v, p, &["gateway", "system", "volumeName"])
        }),
        ("local", "local", |v, p| {
            let path = str_of(v, "path");
            if path.is_empty() {
                return FieldError::required(&p.child("path"), "").into();
            }
            path_no_backsteps(path, &p.child("path"))
        }),
        ("storageos", "storageos", |v, p| req(v, p, &["volumeName"])),
        ("csi", "csi", |v, p| {
            let mut e = pod::validate_csi_driver_name(str_of(v, "driver"), &p.child("driver"));
            if str_of(v, "volumeHandle").is_empty() {
                e.push(FieldError::required(&p.child("volumeHandle"), ""));
            }
            e
        }),
    ]
}

fn req(v: &Value, p: &Path, keys: &[&str]) -> ErrorList {
    keys.iter()
        .filter(|k| str_of(v, k).is_empty())
        .map(|k| FieldError::required(&p.child(*k), ""))
        .collect()
}

/// `ValidatePersistentVolumeSpec` for a PersistentVolume object.
pub(crate) fn validate_pv(pv: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = child(pv, "spec");
    let sp = Path::new("spec");
    if arr(spec, "accessModes").is_empty() {
        errs.push(FieldError::required(&sp.child("accessModes"), ""));
    }
    validate_access_modes(spec, &sp, &mut errs);
    let capacity = pod::resource_list(spec, "capacity");
    let raw_capacity = spec.get("capacity").and_then(Value::as_object);
    if raw_capacity.is_none_or(|c| c.is_empty()) {
        errs.push(FieldError::required(&sp.child("capacity"), ""));
    }
    if !capacity.contains_key("storage") || raw_capacity.is_some_and(|c| c.len() > 1) {
        let items: Vec<String> = raw_capacity
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{}:{}", gofmt::quote(k), v))
            .collect();
        let value = match raw_capacity {
            None => "core.ResourceList(nil)".to_string(),
            Some(_) => format!("core.ResourceList{{{}}}", items.join(", ")),
        };
        errs.push(FieldError::not_supported(
            &sp.child("capacity"),
            BadValue::Raw(value),
            &["storage"],
        ));
    }
    for (name, q) in &capacity {
        let p = sp.child("capacity").key(name.clone());
        if q.value() < 0 {
            errs.push(FieldError::invalid(
                &p,
                q.value(),
                "must be a valid resource quantity",
            ));
        }
        errs.extend(positive_quantity(q, &p));
    }
    let policy = str_of(spec, "persistentVolumeReclaimPolicy");
    if !policy.is_empty() && !["Delete", "Recycle", "Retain"].contains(&policy) {
        errs.push(FieldError::not_supported(
            &sp.child("persistentVolumeReclaimPolicy"),
            policy,
            &["Delete", "Recycle", "Retain"],
        ));
    }
    let mut node_affinity = false;
    if let Some(na) = obj(spec, "nodeAffinity") {
        node_affinity = true;
        match obj(na, "required") {
            Some(r) => errs.extend(pod::validate_node_selector(
                r,
                false,
                &sp.child("nodeAffinity").child("required"),
            )),
            None => errs.push(FieldError::required(
                &sp.child("nodeAffinity").child("required"),
                "must specify required node constraints",
            )),
        }
    }
    let mut num = 0;
    for (key, child_name, validator) in pv_sources() {
        let Some(src) = get(spec, key) else { continue };
        if num > 0 && key != "flexVolume" {
            errs.push(FieldError::forbidden(
                &sp.child(key),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        num += 1;
        errs.extend(validator(src, &sp.child(child_name)));
        if key == "local" && !node_affinity {
            errs.push(FieldError::required(
                &sp.child("nodeAffinity"),
                "Local volume requires node affinity",
            ));
        }
    }
    if num == 0 {
        errs.push(FieldError::required(&sp, "must specify a volume type"));
    }
    if let Some(hp) = obj(spec, "hostPath") {
        let clean = str_of(hp, "path").trim_end_matches('/');
        if clean.is_empty() && str_of(hp, "path").starts_with('/') && policy == "Recycle" {
            errs.push(FieldError::forbidden(
                &sp.child("persistentVolumeReclaimPolicy"),
                "may not be 'recycle' for a hostPath mount of '/'",
            ));
        }
    }
    let sc = str_of(spec, "storageClassName");
    if !sc.is_empty() {
        errs.extend(name_errors(
            name_is_dns_subdomain(sc, false),
            sc,
            &sp.child("storageClassName"),
        ));
    }
    if let Some(m) = opt_str(spec, "volumeMode") {
        if !["Block", "Filesystem"].contains(&m) {
            errs.push(FieldError::not_supported(
                &sp.child("volumeMode"),
                m,
                &["Block", "Filesystem"],
            ));
        }
    }
    errs
}

const PV_SOURCE_KEYS: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "flocker",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

/// `ValidatePersistentVolumeUpdate` (beyond `ValidatePersistentVolume`).
pub(crate) fn validate_pv_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate_pv(new);
    let (ns, os) = (child(new, "spec"), child(old, "spec"));
    let pick = |s: &Value| -> Value {
        let mut m = serde_json::Map::new();
        for k in PV_SOURCE_KEYS {
            if let Some(v) = get(s, k) {
                m.insert((*k).to_string(), v.clone());
            }
        }
        Value::Object(m)
    };
    let (mut nsrc, osrc) = (pick(ns), pick(os));
    // Adding a controllerExpandSecretRef to a CSI volume is allowed.
    if obj(os, "csi").is_some_and(|c| get(c, "controllerExpandSecretRef").is_none()) {
        if let Some(c) = nsrc.get_mut("csi").and_then(Value::as_object_mut) {
            c.remove("controllerExpandSecretRef");
        }
    }
    if !json::semantic_eq(Some(&nsrc), Some(&osrc)) {
        errs.push(FieldError::forbidden(
            &Path::from_names(&["spec", "persistentvolumesource"]),
            format!(
                "spec.persistentvolumesource is immutable after creation\n{}",
                json_diff("core.PersistentVolumeSource", &osrc, &nsrc)
            ),
        ));
    }
    let (nm, om) = (opt_str(ns, "volumeMode"), opt_str(os, "volumeMode"));
    errs.extend(validate_immutable_field(
        &nm,
        &om,
        nm.map(str::to_string),
        &Path::new("volumeMode"),
    ));
    if get(os, "nodeAffinity").is_some()
        && !json::semantic_eq(ns.get("nodeAffinity"), os.get("nodeAffinity"))
    {
        errs.push(FieldError::invalid(
            &Path::new("nodeAffinity"),
            json_value(ns.get("nodeAffinity")),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    errs
}

// -------------------------------------------------------------------- Node

fn validate_node_taints(taints: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut unique: HashSet<(String, String)> = HashSet::new();
    for (i, t) in taints.iter().enumerate() {
        let idx = path.index(i);
        let key = str_of(t, "key");
        let value = str_of(t, "value");
        let effect = str_of(t, "effect");
        errs.extend(validate_label_name(key, &idx.child("key")));
        let msgs = is_valid_label_value(value);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                &idx.child("value"),
                value,
                msgs.join(";"),
            ));
        }
        if effect.is_empty() {
            errs.push(FieldError::required(&idx.child("effect"), ""));
        } else {
            errs.extend(pod::validate_taint_effect(effect, &idx.child("effect")));
        }
        if !unique.insert((effect.to_string(), key.to_string())) {
            let time_added = match get(t, "timeAdded").and_then(Value::as_str) {
                Some(ts) => format!("(*v1.Time)({})", gofmt::quote(ts)),
                None => "(*v1.Time)(nil)".to_string(),
            };
            let mut e = FieldError::duplicate(
                &idx,
                BadValue::Raw(format!(
                    "core.Taint{{Key:{}, Value:{}, Effect:{}, TimeAdded:{time_added}}}",
                    gofmt::quote(key),
                    gofmt::quote(value),
                    gofmt::quote(effect)
                )),
            );
            e.detail = "taints must be unique by key and effect pair".to_string();
            errs.push(e);
        }
    }
    errs
}

/// `ValidateNode` (beyond metadata).
pub(crate) fn validate_node(node: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = child(node, "spec");
    errs.extend(validate_node_taints(
        arr(spec, "taints"),
        &Path::new("metadata").child("taints"),
    ));
    errs.extend(validate_node_resources(node));
    let cidrs = strings(spec, "podCIDRs").unwrap_or_default();
    if !cidrs.is_empty() {
        let p = Path::from_names(&["spec", "podCIDRs"]);
        for (i, c) in cidrs.iter().enumerate() {
            errs.extend(valid_cidr(c, &p.index(i)));
        }
        if cidrs.len() > 1 {
            let v6: Vec<bool> = cidrs.iter().map(|c| c.contains(':')).collect();
            let dual = v6.iter().any(|x| *x) && v6.iter().any(|x| !*x);
            if !dual || cidrs.len() > 2 {
                errs.push(FieldError::invalid(
                    &p,
                    cidrs.clone(),
                    "may specify no more than one CIDR for each IP family",
                ));
            }
            let mut seen = HashSet::new();
            for (i, c) in cidrs.iter().enumerate() {
                if !seen.insert(c) {
                    errs.push(FieldError::duplicate(&p.index(i), c.as_str()));
                }
            }
        }
    }
    errs
}

fn validate_node_resources(node: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let status = child(node, "status");
    for key in ["capacity", "allocatable"] {
        for (name, q) in pod::resource_list(status, key) {
            let p = Path::from_names(&["status", key, &name]);
            errs.extend(resource_quantity_value(&name, &q, &p));
        }
    }
    errs
}

/// `ValidateNodeUpdate`.
pub(crate) fn validate_node_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate_node_resources(new);
    let (ns, os) = (child(new, "spec"), child(old, "spec"));
    let old_cidrs = strings(os, "podCIDRs").unwrap_or_default();
    let new_cidrs = strings(ns, "podCIDRs").unwrap_or_default();
    let msg = "node updates may not change podCIDR except from \"\" to valid";
    if !old_cidrs.is_empty() {
        if old_cidrs.len() != new_cidrs.len() {
            errs.push(FieldError::forbidden(
                &Path::from_names(&["spec", "podCIDRs"]),
                msg,
            ));
        } else {
            for (o, n) in old_cidrs.iter().zip(&new_cidrs) {
                if o != n {
                    errs.push(FieldError::forbidden(
                        &Path::from_names(&["spec", "podCIDRs"]),
                        msg,
                    ));
                }
            }
        }
    }
    let old_pid = str_of(os, "providerID");
    if !old_pid.is_empty() && old_pid != str_of(ns, "providerID") {
        errs.push(FieldError::forbidden(
            &Path::from_names(&["spec", "providerID"]),
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    errs.extend(validate_node_taints(
        arr(ns, "taints"),
        &Path::new("metadata").child("taints"),
    ));
    if str_of(ns, "externalID") != str_of(os, "externalID") {
        errs.push(FieldError::forbidden(
            &Path::from_names(&["spec", "externalID"]),
            "may not be updated",
        ));
    }
    errs
}

// --------------------------------------------------------------- Endpoints

/// `ValidateEndpoints` (beyond metadata).
pub(crate) fn validate_endpoints(ep: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, ss) in arr(ep, "subsets").iter().enumerate() {
        let idx = Path::new("subsets").index(i);
        if arr(ss, "addresses").is_empty() && arr(ss, "notReadyAddresses").is_empty() {
            errs.push(FieldError::required(
                &idx,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for key in ["addresses", "notReadyAddresses"] {
            for (j, a) in arr(ss, key).iter().enumerate() {
                let p = idx.child(key).index(j);
                let ip = str_of(a, "ip");
                errs.extend(valid_ip(ip, &p.child("ip")));
                let host = str_of(a, "hostname");
                if !host.is_empty() {
                    errs.extend(dns1123_label(host, &p.child("hostname")));
                }
                if let Some(n) = opt_str(a, "nodeName") {
                    errs.extend(name_errors(
                        name_is_dns_subdomain(n, false),
                        n,
                        &p.child("nodeName"),
                    ));
                }
                errs.extend(non_special_ip(ip, &p.child("ip")));
            }
        }
        let ports = arr(ss, "ports");
        for (j, port) in ports.iter().enumerate() {
            let p = idx.child("ports").index(j);
            let name = str_of(port, "name");
            if ports.len() > 1 && name.is_empty() {
                errs.push(FieldError::required(&p.child("name"), ""));
            } else if !name.is_empty() {
                errs.extend(dns1123_label(name, &p.child("name")));
            }
            let num = int_of(port, "port");
            for m in is_valid_port_num(num) {
                errs.push(FieldError::invalid(&p.child("port"), num, m));
            }
            let proto = str_of(port, "protocol");
            if proto.is_empty() {
                errs.push(FieldError::required(&p.child("protocol"), ""));
            } else if !["SCTP", "TCP", "UDP"].contains(&proto) {
                errs.push(FieldError::not_supported(
                    &p.child("protocol"),
                    proto,
                    &["SCTP", "TCP", "UDP"],
                ));
            }
            if let Some(ap) = opt_str(port, "appProtocol") {
                errs.extend(qualified_name(ap, &p.child("appProtocol")));
            }
        }
    }
    errs
}

// -------------------------------------------------- ReplicationController

/// `ValidateReplicationControllerSpec`.
pub(crate) fn validate_replication_controller(rc: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = child(rc, "spec");
    let sp = Path::new("spec");
    errs.extend(validate_nonnegative_field(
        int_of(spec, "minReadySeconds"),
        &sp.child("minReadySeconds"),
    ));
    let selector = string_map(spec, "selector").unwrap_or_default();
    if selector.is_empty() {
        errs.push(FieldError::required(&sp.child("selector"), ""));
    }
    errs.extend(validate_nonnegative_field(
        int_of(spec, "replicas"),
        &sp.child("replicas"),
    ));
    let tp = sp.child("template");
    match obj(spec, "template") {
        None => errs.push(FieldError::required(&tp, "")),
        Some(tmpl) => {
            let labels = string_map(child(tmpl, "metadata"), "labels");
            if !selector.is_empty()
                && !LabelSelector::from_set(&selector).matches_opt(labels.as_ref())
            {
                errs.push(FieldError::invalid(
                    &tp.child("metadata").child("labels"),
                    map_value(labels.as_ref()),
                    "`selector` does not match template `labels`",
                ));
            }
            errs.extend(pod::validate_pod_template_spec(tmpl, &tp));
            let tspec = child(tmpl, "spec");
            let rp = str_of(tspec, "restartPolicy");
            if rp != "Always" {
                errs.push(FieldError::not_supported(
                    &tp.child("spec").child("restartPolicy"),
                    rp,
                    &["Always"],
                ));
            }
            if get(tspec, "activeDeadlineSeconds").is_some() {
                errs.push(FieldError::forbidden(
                    &tp.child("spec").child("activeDeadlineSeconds"),
                    "activeDeadlineSeconds in ReplicationController is not Supported",
                ));
            }
        }
    }
    errs
}

// ------------------------------------------------------------------- Event

/// `legacyValidateEvent` for core/v1 Events.
pub(crate) fn validate_event(ev: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let ns = str_of(child(ev, "metadata"), "namespace");
    let involved_ns = str_of(child(ev, "involvedObject"), "namespace");
    let ns_path = Path::from_names(&["involvedObject", "namespace"]);
    if get(ev, "eventTime").is_none() {
        if involved_ns.is_empty() {
            if !ns.is_empty() && ns != "default" {
                errs.push(FieldError::invalid(
                    &ns_path,
                    involved_ns,
                    "does not match event.namespace",
                ));
            }
        } else if ns != involved_ns {
            errs.push(FieldError::invalid(
                &ns_path,
                involved_ns,
                "does not match event.namespace",
            ));
        }
    } else {
        if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(FieldError::invalid(
                &ns_path,
                involved_ns,
                "does not match event.namespace",
            ));
        }
        let rc = str_of(ev, "reportingComponent");
        if rc.is_empty() {
            errs.push(FieldError::required(&Path::new("reportingComponent"), ""));
        }
        errs.extend(qualified_name(rc, &Path::new("reportingComponent")));
        let limits = [("reportingInstance", 128), ("action", 128), ("reason", 128)];
        for (key, limit) in limits {
            let v = str_of(ev, key);
            if v.is_empty() {
                errs.push(FieldError::required(&Path::new(key), ""));
            }
            if v.len() > limit {
                errs.push(FieldError::invalid(
                    &Path::new(key),
                    "",
                    format!("can have at most {limit} characters"),
                ));
            }
        }
        if str_of(ev, "message").len() > 1024 {
            errs.push(FieldError::invalid(
                &Path::new("message"),
                "",
                "can have at most 1024 characters",
            ));
        }
    }
    for m in crate::validation::is_dns1123_subdomain(ns) {
        errs.push(FieldError::invalid(&Path::new("namespace"), ns, m));
    }
    errs
}

// ------------------------------------------------- LimitRange, ResourceQuota

const STANDARD_QUOTA_RESOURCES: &[&str] = &[
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
];

fn quota_resource_name(name: &str, path: &Path) -> ErrorList {
    let mut errs = resource_name(name, path);
    if !name.contains('/')
        && !STANDARD_QUOTA_RESOURCES.contains(&name)
        && !name.starts_with("hugepages-")
        && !name.starts_with("requests.hugepages-")
    {
        errs.push(FieldError::invalid(
            path,
            name,
            "must be a standard resource for quota",
        ));
    }
    errs
}

/// `ValidateResourceQuota` (spec and status quantities; scope rules are
/// reduced to the conflicting pairs).
pub(crate) fn validate_resource_quota(rq: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = child(rq, "spec");
    for (name, q) in pod::resource_list(spec, "hard") {
        let p = Path::from_names(&["spec", "hard"]).key(name.clone());
        errs.extend(quota_resource_name(&name, &p));
        errs.extend(resource_quantity_value(&name, &q, &p));
    }
    let scopes = strings(spec, "scopes").unwrap_or_default();
    let known = [
        "Terminating",
        "NotTerminating",
        "BestEffort",
        "NotBestEffort",
        "PriorityClass",
        "CrossNamespacePodAffinity",
        "VolumeAttributesClass",
    ];
    let sp = Path::from_names(&["spec", "scopes"]);
    for s in &scopes {
        if !known.contains(&s.as_str()) {
            errs.push(FieldError::invalid(
                &sp,
                scopes.clone(),
                "unsupported scope",
            ));
        }
    }
    let has = |s: &str| scopes.iter().any(|x| x == s);
    if (has("BestEffort") && has("NotBestEffort")) || (has("Terminating") && has("NotTerminating"))
    {
        errs.push(FieldError::invalid(
            &sp,
            scopes.clone(),
            "conflicting scopes",
        ));
    }
    let status = child(rq, "status");
    for key in ["hard", "used"] {
        for (name, q) in pod::resource_list(status, key) {
            let p = Path::from_names(&["status", key]).key(name.clone());
            errs.extend(quota_resource_name(&name, &p));
            errs.extend(resource_quantity_value(&name, &q, &p));
        }
    }
    errs
}

/// `ValidateResourceQuotaUpdate`: scopes are immutable.
pub(crate) fn validate_resource_quota_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate_resource_quota(new);
    let ns: HashSet<String> = strings(child(new, "spec"), "scopes")
        .unwrap_or_default()
        .into_iter()
        .collect();
    let os: HashSet<String> = strings(child(old, "spec"), "scopes")
        .unwrap_or_default()
        .into_iter()
        .collect();
    if ns != os {
        errs.push(FieldError::invalid(
            &Path::from_names(&["spec", "scopes"]),
            BadValue::Raw(format!(
                "[]core.ResourceQuotaScope{{{}}}",
                strings(child(new, "spec"), "scopes")
                    .unwrap_or_default()
                    .iter()
                    .map(|s| gofmt::quote(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    errs
}

/// `ValidateLimitRange`.
pub(crate) fn validate_limit_range(lr: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let lp = Path::from_names(&["spec", "limits"]);
    let mut types = HashSet::new();
    for (i, limit) in arr(child(lr, "spec"), "limits").iter().enumerate() {
        let idx = lp.index(i);
        let ty = str_of(limit, "type");
        let tmsgs = is_qualified_name(ty);
        if !tmsgs.is_empty() {
            errs.extend(name_errors(tmsgs, ty, &idx.child("type")));
        } else if !ty.contains('/') && !["Pod", "Container", "PersistentVolumeClaim"].contains(&ty)
        {
            errs.push(FieldError::invalid(
                &idx.child("type"),
                ty,
                "must be a standard limit type or fully qualified",
            ));
        }
        if !types.insert(ty) {
            errs.push(FieldError::duplicate(&idx.child("type"), ty));
        }
        let name_check = |name: &str, p: &Path| -> ErrorList {
            if ty == "Pod" || ty == "Container" {
                container_resource_name(name, p)
            } else {
                resource_name(name, p)
            }
        };
        let mut lists: BTreeMap<&str, BTreeMap<String, Quantity>> = BTreeMap::new();
        for key in ["max", "min"] {
            let l = pod::resource_list(limit, key);
            for name in l.keys() {
                errs.extend(name_check(name, &idx.child(key).key(name.clone())));
            }
            lists.insert(key, l);
        }
        if ty == "Pod" {
            for key in ["default", "defaultRequest"] {
                if !pod::resource_list(limit, key).is_empty() {
                    errs.push(FieldError::forbidden(
                        &idx.child(key),
                        "may not be specified when `type` is 'Pod'",
                    ));
                }
            }
        } else {
            for key in ["default", "defaultRequest"] {
                let l = pod::resource_list(limit, key);
                for name in l.keys() {
                    errs.extend(name_check(name, &idx.child(key).key(name.clone())));
                }
                lists.insert(key, l);
            }
        }
        if ty == "PersistentVolumeClaim"
            && !lists["min"].contains_key("storage")
            && !lists["max"].contains_key("storage")
        {
            errs.push(FieldError::required(
                &idx.child("limits"),
                "either minimum or maximum storage value is required, but neither was provided",
            ));
        }
        let ratios = pod::resource_list(limit, "maxLimitRequestRatio");
        for name in ratios.keys() {
            errs.extend(name_check(
                name,
                &idx.child("maxLimitRequestRatio").key(name.clone()),
            ));
        }
        let empty = BTreeMap::new();
        let get_q = |k: &str, n: &str| lists.get(k).unwrap_or(&empty).get(n).cloned();
        let mut keys: Vec<String> = lists
            .values()
            .flat_map(|l| l.keys().cloned())
            .chain(ratios.keys().cloned())
            .collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let (min, max, def, defreq) = (
                get_q("min", &k),
                get_q("max", &k),
                get_q("default", &k),
                get_q("defaultRequest", &k),
            );
            let ratio = ratios.get(&k);
            if let (Some(mn), Some(mx)) = (&min, &max) {
                if mn > mx {
                    errs.push(FieldError::invalid(
                        &idx.child("min").key(k.clone()),
                        mn.to_string(),
                        format!("min value {mn} is greater than max value {mx}"),
                    ));
                }
            }
            if let (Some(dr), Some(mn)) = (&defreq, &min) {
                if mn > dr {
                    errs.push(FieldError::invalid(
                        &idx.child("defaultRequest").key(k.clone()),
                        dr.to_string(),
                        format!("min value {mn} is greater than default request value {dr}"),
                    ));
                }
            }
            if let (Some(dr), Some(mx)) = (&defreq, &max) {
                if dr > mx {
                    errs.push(FieldError::invalid(
                        &idx.child("defaultRequest").key(k.clone()),
                        dr.to_string(),
                        format!("default request value {dr} is greater than max value {mx}"),
                    ));
                }
            }
            if let (Some(dr), Some(d)) = (&defreq, &def) {
                if dr > d {
                    errs.push(FieldError::invalid(
                        &idx.child("defaultRequest").key(k.clone()),
                        dr.to_string(),
                        format!(
                            "default request value {dr} is greater than default limit value {d}"
                        ),
                    ));
                }
            }
            if let (Some(d), Some(mn)) = (&def, &min) {
                if mn > d {
                    errs.push(FieldError::invalid(
                        &idx.child("default").key(k.clone()),
                        mn.to_string(),
                        format!("min value {mn} is greater than default value {d}"),
                    ));
                }
            }
            if let (Some(d), Some(mx)) = (&def, &max) {
                if d > mx {
                    errs.push(FieldError::invalid(
                        &idx.child("default").key(k.clone()),
                        mx.to_string(),
                        format!("default value {d} is greater than max value {mx}"),
                    ));
                }
            }
            if let Some(r) = ratio {
                if r.cmp_i64(1) == std::cmp::Ordering::Less {
                    errs.push(FieldError::invalid(
                        &idx.child("maxLimitRequestRatio").key(k.clone()),
                        r.to_string(),
                        format!("ratio {r} is less than 1"),
                    ));
                }
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests;
