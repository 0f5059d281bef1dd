//! networking.k8s.io/v1: Ingress, IngressClass and NetworkPolicy
//! (`pkg/apis/networking/validation`).

use super::common::*;
use super::json::*;
use crate::validation::field::{BadValue, ErrorList, FieldError, Path};
use crate::validation::{
    is_dns1123_subdomain, is_valid_path_segment_name, is_valid_port_name, is_valid_port_num,
    name_is_dns1035_label, name_is_dns_subdomain, validate_immutable_field,
    validate_namespace_name,
};
use serde_json::Value;

// ----------------------------------------------------------- NetworkPolicy

fn validate_np_port(port: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(proto) = opt_str(port, "protocol") {
        if !["TCP", "UDP", "SCTP"].contains(&proto) {
            errs.push(FieldError::not_supported(
                &path.child("protocol"),
                proto,
                &["TCP", "UDP", "SCTP"],
            ));
        }
    }
    let end = opt_int(port, "endPort");
    match int_or_string(port, "port") {
        Some(IntOrString::Int(p)) => {
            for m in is_valid_port_num(p) {
                errs.push(FieldError::invalid(&path.child("port"), p, m));
            }
            if let Some(e) = end {
                if e < p {
                    errs.push(FieldError::invalid(
                        &path.child("endPort"),
                        p,
                        "must be greater than or equal to `port`",
                    ));
                }
                for m in is_valid_port_num(e) {
                    errs.push(FieldError::invalid(&path.child("endPort"), e, m));
                }
            }
        }
        Some(IntOrString::Str(s)) => {
            if let Some(e) = end {
                errs.push(FieldError::invalid(
                    &path.child("endPort"),
                    e,
                    "may not be specified when `port` is non-numeric",
                ));
            }
            for m in is_valid_port_name(&s) {
                errs.push(FieldError::invalid(&path.child("port"), s.as_str(), m));
            }
        }
        None => {
            if let Some(e) = end {
                errs.push(FieldError::invalid(
                    &path.child("endPort"),
                    e,
                    "may not be specified when `port` is not specified",
                ));
            }
        }
    }
    errs
}

fn validate_np_peer(peer: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut num = 0;
    for key in ["podSelector", "namespaceSelector"] {
        if obj(peer, key).is_some() {
            num += 1;
            errs.extend(label_selector_errs(peer, key, false, &path.child(key)));
        }
    }
    let ipb = obj(peer, "ipBlock");
    if let Some(b) = ipb {
        num += 1;
        errs.extend(validate_ip_block(b, &path.child("ipBlock")));
    }
    if num == 0 {
        errs.push(FieldError::required(path, "must specify a peer"));
    } else if num > 1 && ipb.is_some() {
        errs.push(FieldError::forbidden(
            path,
            "may not specify both ipBlock and another peer",
        ));
    }
    errs
}

fn validate_ip_block(b: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let cidr = str_of(b, "cidr");
    if cidr.is_empty() {
        errs.push(FieldError::required(&path.child("cidr"), ""));
        return errs;
    }
    let Some((net, bits)) = super::json::parse_cidr_sloppy(cidr) else {
        errs.push(FieldError::invalid(
            &path.child("cidr"),
            cidr,
            "not a valid CIDR",
        ));
        return errs;
    };
    for (i, ex) in strings(b, "except").unwrap_or_default().iter().enumerate() {
        let ep = path.child("except").index(i);
        let Some((eip, ebits)) = super::json::parse_cidr_sloppy(ex) else {
            errs.push(FieldError::invalid(&ep, ex.as_str(), "not a valid CIDR"));
            return errs;
        };
        if !cidr_contains(net, bits, eip) || bits >= ebits {
            errs.push(FieldError::invalid(
                &ep,
                ex.as_str(),
                "must be a strict subset of `cidr`",
            ));
        }
    }
    errs
}

fn cidr_contains(net: std::net::IpAddr, bits: u8, ip: std::net::IpAddr) -> bool {
    match (net, ip) {
        (std::net::IpAddr::V4(n), std::net::IpAddr::V4(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            (u32::from(n) & mask) == (u32::from(i) & mask)
        }
        (std::net::IpAddr::V6(n), std::net::IpAddr::V6(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            (u128::from(n) & mask) == (u128::from(i) & mask)
        }
        _ => false,
    }
}

/// `ValidateNetworkPolicySpec`.
pub(crate) fn validate_network_policy(np: &Value) -> ErrorList {
    let spec = child(np, "spec");
    let sp = Path::new("spec");
    let mut errs = label_selector_errs(spec, "podSelector", false, &sp.child("podSelector"));
    for (dir, peers) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in arr(spec, dir).iter().enumerate() {
            let rp = sp.child(dir).index(i);
            for (j, port) in arr(rule, "ports").iter().enumerate() {
                errs.extend(validate_np_port(port, &rp.child("ports").index(j)));
            }
            for (j, peer) in arr(rule, peers).iter().enumerate() {
                errs.extend(validate_np_peer(peer, &rp.child(peers).index(j)));
            }
        }
    }
    let types = strings(spec, "policyTypes").unwrap_or_default();
    if types.len() > 2 {
        errs.push(FieldError::invalid(
            &sp.child("policyTypes"),
            types.clone(),
            "may not specify more than two policyTypes",
        ));
        return errs;
    }
    for (i, t) in types.iter().enumerate() {
        if t != "Ingress" && t != "Egress" {
            errs.push(FieldError::not_supported(
                &sp.child("policyTypes").index(i),
                t.as_str(),
                &["Ingress", "Egress"],
            ));
        }
    }
    errs
}

// ----------------------------------------------------------------- Ingress

fn validate_backend(b: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let resource = obj(b, "resource");
    let service = obj(b, "service");
    match (resource, service) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            path,
            "",
            "cannot set both resource and service backends",
        )),
        (Some(r), None) => errs.extend(validate_typed_local_object_reference(
            r,
            &path.child("resource"),
        )),
        (None, Some(s)) => {
            let name = str_of(s, "name");
            let np = path.child("service").child("name");
            if name.is_empty() {
                errs.push(FieldError::required(&np, ""));
            } else {
                errs.extend(name_errors(name_is_dns1035_label(name, false), name, &np));
            }
            let port = child(s, "port");
            let pname = str_of(port, "name");
            let pnum = int_of(port, "number");
            if !pname.is_empty() && pnum != 0 {
                errs.push(FieldError::invalid(
                    path,
                    "",
                    "cannot set both port name & port number",
                ));
            } else if !pname.is_empty() {
                for m in is_valid_port_name(pname) {
                    errs.push(FieldError::invalid(
                        &path.child("service").child("port").child("name"),
                        pname,
                        m,
                    ));
                }
            } else if pnum != 0 {
                for m in is_valid_port_num(pnum) {
                    errs.push(FieldError::invalid(
                        &path.child("service").child("port").child("number"),
                        pnum,
                        m,
                    ));
                }
            } else {
                errs.push(FieldError::required(
                    path,
                    "port name or number is required",
                ));
            }
        }
        (None, None) => errs.push(FieldError::invalid(
            path,
            "",
            "resource or service backend is required",
        )),
    }
    errs
}

fn validate_typed_local_object_reference(r: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(g) = opt_str(r, "apiGroup") {
        for m in is_dns1123_subdomain(g) {
            errs.push(FieldError::invalid(&path.child("apiGroup"), g, m));
        }
    }
    for key in ["kind", "name"] {
        let v = str_of(r, key);
        if v.is_empty() {
            errs.push(FieldError::required(
                &path.child(key),
                format!("{key} is required"),
            ));
        } else {
            for m in is_valid_path_segment_name(v) {
                errs.push(FieldError::invalid(&path.child(key), v, m));
            }
        }
    }
    errs
}

fn validate_http_path(p: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(pt) = opt_str(p, "pathType") else {
        return FieldError::required(&path.child("pathType"), "pathType must be specified").into();
    };
    let value = str_of(p, "path");
    match pt {
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                errs.push(FieldError::invalid(
                    &path.child("path"),
                    value,
                    "must be an absolute path",
                ));
            }
            if !value.is_empty() {
                for seq in ["//", "/./", "/../", "%2f", "%2F"] {
                    if value.contains(seq) {
                        errs.push(FieldError::invalid(
                            &path.child("path"),
                            value,
                            format!("must not contain '{seq}'"),
                        ));
                    }
                }
                for suffix in ["/..", "/."] {
                    if value.ends_with(suffix) {
                        errs.push(FieldError::invalid(
                            &path.child("path"),
                            value,
                            format!("cannot end with '{suffix}'"),
                        ));
                    }
                }
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                errs.push(FieldError::invalid(
                    &path.child("path"),
                    value,
                    "must be an absolute path",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &path.child("pathType"),
            other,
            &["Exact", "ImplementationSpecific", "Prefix"],
        )),
    }
    errs.extend(validate_backend(
        child(p, "backend"),
        &path.child("backend"),
    ));
    errs
}

/// `ValidateIngressSpec` (create options: invalid TLS secret names and
/// wildcard rules are rejected).
pub(crate) fn validate_ingress(ing: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = child(ing, "spec");
    let sp = Path::new("spec");
    let rules = arr(spec, "rules");
    if rules.is_empty() && obj(spec, "defaultBackend").is_none() {
        let value = match spec.get("rules") {
            Some(Value::Array(_)) => "[]networking.IngressRule{}",
            _ => "[]networking.IngressRule(nil)",
        };
        errs.push(FieldError::invalid(
            &sp,
            BadValue::Raw(value.to_string()),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = obj(spec, "defaultBackend") {
        errs.extend(validate_backend(b, &sp.child("defaultBackend")));
    }
    for (i, rule) in rules.iter().enumerate() {
        let rp = sp.child("rules").index(i);
        let host = str_of(rule, "host");
        if !host.is_empty() {
            if super::json::parse_ip_sloppy(host).is_some() {
                errs.push(FieldError::invalid(
                    &rp.child("host"),
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
            let msgs = if host.contains('*') {
                is_wildcard_dns1123_subdomain(host)
            } else {
                is_dns1123_subdomain(host)
            };
            for m in msgs {
                errs.push(FieldError::invalid(&rp.child("host"), host, m));
            }
        }
        if let Some(http) = obj(rule, "http") {
            let hp = rp.child("http");
            let paths = arr(http, "paths");
            if paths.is_empty() {
                errs.push(FieldError::required(&hp.child("paths"), ""));
            }
            for (j, p) in paths.iter().enumerate() {
                errs.extend(validate_http_path(p, &hp.child("paths").index(j)));
            }
        }
    }
    for (t, tls) in arr(spec, "tls").iter().enumerate() {
        let tp = sp.child("tls").index(t);
        for (i, host) in strings(tls, "hosts").unwrap_or_default().iter().enumerate() {
            let msgs = if host.contains('*') {
                is_wildcard_dns1123_subdomain(host)
            } else {
                is_dns1123_subdomain(host)
            };
            for m in msgs {
                errs.push(FieldError::invalid(
                    &tp.child("hosts").index(i),
                    host.as_str(),
                    m,
                ));
            }
        }
        let secret = str_of(tls, "secretName");
        if !secret.is_empty() {
            errs.extend(name_errors(
                name_is_dns_subdomain(secret, false),
                secret,
                &tp.child("secretName"),
            ));
        }
    }
    if let Some(class) = opt_str(spec, "ingressClassName") {
        errs.extend(name_errors(
            name_is_dns_subdomain(class, false),
            class,
            &sp.child("ingressClassName"),
        ));
    }
    errs
}

/// `ValidateIngressCreate`'s extra check: the class annotation and field
/// are exclusive.
pub(crate) fn validate_ingress_create(ing: &Value) -> ErrorList {
    let mut errs = validate_ingress(ing);
    let annotations = string_map(child(ing, "metadata"), "annotations").unwrap_or_default();
    if let Some(v) = annotations.get("kubernetes.io/ingress.class") {
        if get(child(ing, "spec"), "ingressClassName").is_some() {
            errs.push(FieldError::invalid(
                &Path::new("annotations").child("kubernetes.io/ingress.class"),
                v.as_str(),
                "can not be set when the class field is also set",
            ));
        }
    }
    errs
}

/// `validateIngressClassSpec`.
pub(crate) fn validate_ingress_class(ic: &Value) -> ErrorList {
    let spec = child(ic, "spec");
    let sp = Path::new("spec");
    let mut errs = ErrorList::new();
    let controller = str_of(spec, "controller");
    if controller.len() > 250 {
        errs.push(FieldError::too_long(
            &sp.child("controller"),
            controller,
            250,
        ));
    }
    errs.extend(domain_prefixed_path(controller, &sp.child("controller")));
    if let Some(params) = obj(spec, "parameters") {
        let pp = sp.child("parameters");
        errs.extend(validate_typed_local_object_reference(params, &pp));
        match opt_str(params, "scope") {
            None => errs.push(FieldError::required(&pp.child("scope"), "")),
            Some(scope) if scope != "Namespace" && scope != "Cluster" => errs.push(
                FieldError::not_supported(&pp.child("scope"), scope, &["Cluster", "Namespace"]),
            ),
            Some("Namespace") => match opt_str(params, "namespace") {
                None => errs.push(FieldError::required(
                    &pp.child("namespace"),
                    "`parameters.scope` is set to 'Namespace'",
                )),
                Some(ns) => errs.extend(name_errors(
                    validate_namespace_name(ns, false),
                    ns,
                    &pp.child("namespace"),
                )),
            },
            Some(_) => {
                if get(params, "namespace").is_some() {
                    errs.push(FieldError::forbidden(
                        &pp.child("namespace"),
                        "`parameters.scope` is set to 'Cluster'",
                    ));
                }
            }
        }
    }
    errs
}

/// IngressClass updates: the controller is immutable.
pub(crate) fn validate_ingress_class_update(new: &Value, old: &Value) -> ErrorList {
    let (n, o) = (
        str_of(child(new, "spec"), "controller"),
        str_of(child(old, "spec"), "controller"),
    );
    let mut errs = validate_immutable_field(&n, &o, n, &Path::from_names(&["spec", "controller"]));
    errs.extend(validate_ingress_class(new));
    errs
}
