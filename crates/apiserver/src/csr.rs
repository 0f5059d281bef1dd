//! CertificateSigningRequests (upstream `pkg/registry/certificates` and
//! `pkg/apis/certificates/validation`): the requester's identity is written
//! into the spec on create; the spec never changes afterwards; `status`
//! sets the certificate and conditions other than Approved/Denied, and
//! `approval` (what `kubectl certificate approve/deny` writes) sets only the
//! conditions. Approved, Denied and Failed conditions are never removed and
//! a certificate, once issued, never changes.

use api::validation::field::{BadValue, ErrorList, FieldError, Path};
use serde_json::{json, Value};

use crate::server::User;
use crate::status::Cause;
use crate::strategy::Strategy;

/// The usages the API knows (upstream `allValidUsages`).
const VALID_USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

/// Condition types whose status may only be True.
const TRUE_ONLY: &[&str] = &["Approved", "Denied", "Failed"];

/// Writes who asks into `spec` (upstream's `PrepareForCreate`: username,
/// uid, groups and extra come from the request's user, whatever the body
/// says).
pub fn set_requester(obj: &mut Value, user: &User) {
    if !obj.get("spec").is_some_and(Value::is_object) {
        obj["spec"] = json!({});
    }
    let spec = &mut obj["spec"];
    spec["username"] = json!(user.name);
    spec["groups"] = json!(user.groups);
    if let Some(s) = spec.as_object_mut() {
        s.remove("uid");
        s.remove("extra");
    }
}

pub struct Csrs;

impl Strategy for Csrs {
    fn status_is_subresource(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(o) = obj.as_object_mut() {
            o.remove("status");
        }
        populate_condition_timestamps(obj, None);
    }

    /// The spec is immutable; the status comes from the subresources.
    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        new["spec"] = old.get("spec").cloned().unwrap_or(json!({}));
    }

    /// A status update keeps the Approved and Denied conditions as stored.
    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        let approval = |c: &Value| matches!(c["type"].as_str(), Some("Approved" | "Denied"));
        // The approval came first; what the signer adds follows it.
        let mut kept: Vec<Value> = conditions(old)
            .iter()
            .filter(|c| approval(c))
            .cloned()
            .collect();
        kept.extend(conditions(new).iter().filter(|c| !approval(c)).cloned());
        set_conditions(new, kept);
        populate_condition_timestamps(new, Some(old));
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        crate::registry::causes_of(&validate(obj, None))
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        crate::registry::causes_of(&validate_update(new, old))
    }
}

/// The object an `approval` update writes: the stored object with the
/// client's conditions and metadata (upstream `csrApprovalStrategy`).
pub fn approval_update(old: &Value, new: &Value) -> Value {
    let mut out = crate::strategy::status_update(&Csrs, old, new);
    // status_update kept the stored approval; the approval subresource is
    // where it changes, and the certificate is the signer's.
    set_conditions(&mut out, conditions(new).to_vec());
    match old.pointer("/status/certificate") {
        Some(c) => out["status"]["certificate"] = c.clone(),
        None => {
            if let Some(s) = out.get_mut("status").and_then(Value::as_object_mut) {
                s.remove("certificate");
            }
        }
    }
    populate_condition_timestamps(&mut out, Some(old));
    out
}

fn conditions(obj: &Value) -> &[Value] {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn set_conditions(obj: &mut Value, conditions: Vec<Value>) {
    if !obj.get("status").is_some_and(Value::is_object) {
        obj["status"] = json!({});
    }
    if conditions.is_empty() {
        if let Some(s) = obj["status"].as_object_mut() {
            s.remove("conditions");
        }
    } else {
        obj["status"]["conditions"] = Value::Array(conditions);
    }
}

/// Upstream `populateConditionTimestamps`: lastUpdateTime defaults to now;
/// lastTransitionTime to the stored one of the same type and status, else
/// now.
fn populate_condition_timestamps(obj: &mut Value, old: Option<&Value>) {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let stored: Vec<Value> = old.map(|o| conditions(o).to_vec()).unwrap_or_default();
    let Some(list) = obj
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for c in list.iter_mut() {
        if !c.is_object() {
            continue;
        }
        if c.get("lastUpdateTime").is_none_or(Value::is_null) {
            c["lastUpdateTime"] = json!(now);
        }
        if c.get("lastTransitionTime").is_none_or(Value::is_null) {
            let same = stored
                .iter()
                .find(|s| s["type"] == c["type"] && s["status"] == c["status"])
                .and_then(|s| s.get("lastTransitionTime"))
                .filter(|t| !t.is_null())
                .cloned();
            c["lastTransitionTime"] = same.unwrap_or_else(|| json!(now));
        }
    }
}

fn str_list(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Upstream `validateCertificateSigningRequest`; `old` relaxes what stored
/// data may already break (upstream `getValidationOptions`).
fn validate(obj: &Value, old: Option<&Value>) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = Path::new("spec");
    let request = obj
        .pointer("/spec/request")
        .and_then(Value::as_str)
        .unwrap_or("");
    if let Err(e) = check_request(request) {
        errs.push(FieldError::invalid(
            &spec.child("request"),
            BadValue::Omitted,
            e,
        ));
    }
    let usages = str_list(obj.pointer("/spec/usages"));
    if usages.is_empty() {
        errs.push(FieldError::required(&spec.child("usages"), ""));
    }
    let old_usages = str_list(old.and_then(|o| o.pointer("/spec/usages")));
    let allow_unknown = old_usages.iter().any(|u| !VALID_USAGES.contains(u));
    let mut seen = std::collections::BTreeSet::new();
    let allow_duplicates = !old_usages.iter().all(|u| seen.insert(*u));
    let mut seen = std::collections::BTreeSet::new();
    for (i, u) in usages.iter().enumerate() {
        if !allow_unknown && !VALID_USAGES.contains(u) {
            errs.push(FieldError::not_supported(
                &spec.child("usages").index(i),
                *u,
                VALID_USAGES,
            ));
        }
        if !allow_duplicates && !seen.insert(*u) {
            errs.push(FieldError::duplicate(&spec.child("usages").index(i), *u));
        }
    }
    let signer = obj
        .pointer("/spec/signerName")
        .and_then(Value::as_str)
        .unwrap_or("");
    errs.extend(validate_signer_name(&spec.child("signerName"), signer));
    if let Some(s) = obj
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
    {
        if s < 600 {
            errs.push(FieldError::invalid(
                &spec.child("expirationSeconds"),
                s,
                "may not specify a duration less than 600 seconds (10 minutes)",
            ));
        }
    }
    errs.extend(validate_conditions(obj, old));
    let certificate = obj.pointer("/status/certificate").and_then(Value::as_str);
    let unchanged = old
        .is_some_and(|o| o.pointer("/status/certificate").and_then(Value::as_str) == certificate);
    if !unchanged {
        if let Some(Err(e)) = certificate.filter(|c| !c.is_empty()).map(check_certificate) {
            errs.push(FieldError::invalid(
                &Path::new("status").child("certificate"),
                "<certificate data>",
                e,
            ));
        }
    }
    errs
}

/// Upstream `ValidateSignerName`: `<fully qualified domain>/<path>`.
fn validate_signer_name(path: &Path, signer: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    if signer.is_empty() {
        errs.push(FieldError::required(path, ""));
        return errs;
    }
    let shape = "must be a fully qualified domain and path of the form 'example.com/signer-name'";
    match signer.split_once('/') {
        Some((domain, rest)) if !domain.is_empty() && !rest.is_empty() => {
            let labels_ok = domain.split('.').count() >= 2
                && domain.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                });
            if !labels_ok {
                errs.push(FieldError::invalid(path, signer, shape));
            }
        }
        _ => errs.push(FieldError::invalid(path, signer, shape)),
    }
    errs
}

fn validate_conditions(obj: &Value, old: Option<&Value>) -> ErrorList {
    let mut errs = ErrorList::new();
    let path = Path::new("status").child("conditions");
    let old_conditions = old.map(conditions).unwrap_or(&[]);
    let old_type = |t: &str| old_conditions.iter().any(|c| c["type"] == t);
    let allow_both = old_type("Approved") && old_type("Denied");
    let mut seen = std::collections::BTreeSet::new();
    let allow_duplicate_types = !old_conditions
        .iter()
        .all(|c| seen.insert(c["type"].as_str().unwrap_or("")));
    let (mut approved, mut denied) = (false, false);
    let mut seen = std::collections::BTreeSet::new();
    for (i, c) in conditions(obj).iter().enumerate() {
        let t = c["type"].as_str().unwrap_or("");
        if t.is_empty() {
            errs.push(FieldError::required(&path.index(i).child("type"), ""));
        }
        let status = c["status"].as_str().unwrap_or("");
        let allowed: &[&str] = if TRUE_ONLY.contains(&t) {
            &["True"]
        } else {
            &["False", "True", "Unknown"]
        };
        if status.is_empty() {
            errs.push(FieldError::required(&path.index(i).child("status"), ""));
        } else if !allowed.contains(&status) {
            errs.push(FieldError::not_supported(
                &path.index(i).child("status"),
                status,
                allowed,
            ));
        }
        if !allow_both {
            let clash = match t {
                "Approved" => {
                    approved = true;
                    denied
                }
                "Denied" => {
                    denied = true;
                    approved
                }
                _ => false,
            };
            if clash {
                errs.push(FieldError::invalid(
                    &path.index(i).child("type"),
                    t,
                    "Approved and Denied conditions are mutually exclusive",
                ));
            }
        }
        if !allow_duplicate_types && !seen.insert(t) {
            errs.push(FieldError::duplicate(&path.index(i).child("type"), t));
        }
    }
    errs
}

/// Upstream `validateCertificateSigningRequestUpdate`, once the merge of
/// the resource or subresource has kept what that path may not change.
fn validate_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate(new, Some(old));
    let count = |obj: &Value, t: &str| conditions(obj).iter().filter(|c| c["type"] == t).count();
    for t in ["Approved", "Denied", "Failed"] {
        if count(new, t) < count(old, t) {
            errs.push(FieldError::forbidden(
                &Path::new("status").child("conditions"),
                format!("updates may not remove a condition of type {t:?}"),
            ));
        }
    }
    let certificate = |obj: &Value| {
        obj.pointer("/status/certificate")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if certificate(new) != certificate(old) && !certificate(old).is_empty() {
        errs.push(FieldError::forbidden(
            &Path::new("status").child("certificate"),
            "updates may not modify existing certificate content",
        ));
    }
    errs
}

fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| e.to_string())
}

/// `spec.request` (base64 in JSON): one PEM CERTIFICATE REQUEST whose
/// signature verifies (upstream `validateCSR`).
fn check_request(b64: &str) -> Result<(), String> {
    let pem = base64_decode(b64)?;
    let not_csr = || "PEM block type must be CERTIFICATE REQUEST".to_string();
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem).map_err(|_| not_csr())?;
    if block.label != "CERTIFICATE REQUEST" {
        return Err(not_csr());
    }
    use x509_parser::prelude::FromDer;
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&block.contents)
            .map_err(|e| format!("x509: {e}"))?;
    csr.verify_signature().map_err(|e| format!("x509: {e}"))
}

/// `status.certificate`: PEM CERTIFICATE blocks only, at least one
/// (upstream `validateCertificate`).
fn check_certificate(b64: &str) -> Result<(), String> {
    let pem = base64_decode(b64)?;
    let mut blocks = 0;
    for block in x509_parser::pem::Pem::iter_from_buffer(&pem) {
        let block = block.map_err(|e| e.to_string())?;
        if block.label != "CERTIFICATE" {
            return Err(format!(
                "only CERTIFICATE PEM blocks are allowed, found {:?}",
                block.label
            ));
        }
        x509_parser::parse_x509_certificate(&block.contents).map_err(|e| format!("x509: {e}"))?;
        blocks += 1;
    }
    if blocks == 0 {
        return Err("must contain at least one CERTIFICATE PEM block".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_b64() -> String {
        use base64::Engine;
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "jane");
        let pem = params.serialize_request(&key).unwrap().pem().unwrap();
        base64::engine::general_purpose::STANDARD.encode(pem)
    }

    fn csr(conditions: Value) -> Value {
        json!({
            "metadata": { "name": "jane" },
            "spec": {
                "request": request_b64(),
                "signerName": "kubernetes.io/kube-apiserver-client",
                "usages": ["client auth"],
            },
            "status": { "conditions": conditions },
        })
    }

    fn messages(causes: Vec<Cause>) -> Vec<String> {
        causes
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn a_valid_request_passes_and_a_short_expiration_is_refused() {
        let mut c = csr(json!([]));
        assert_eq!(messages(Csrs.validate(&c)), Vec::<String>::new());
        c["spec"]["expirationSeconds"] = json!(60);
        c["spec"]["signerName"] = json!("signer");
        c["spec"]["usages"] = json!(["client auth", "flying"]);
        c["spec"]["request"] = json!("bm90IGEgcmVxdWVzdA==");
        let got = messages(Csrs.validate(&c));
        assert!(
            got.iter().any(|m| m.starts_with("spec.request:")
                && m.contains("PEM block type must be CERTIFICATE REQUEST")),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|m| m.starts_with("spec.usages[1]: Unsupported value: \"flying\"")),
            "{got:?}"
        );
        assert!(got.iter().any(|m| m.starts_with("spec.signerName:") && m.contains("example.com/signer-name")), "{got:?}");
        assert!(got.iter().any(|m| m == "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds (10 minutes)"), "{got:?}");
    }

    #[test]
    fn the_requester_is_written_into_the_spec() {
        let mut c = csr(json!([]));
        c["spec"]["username"] = json!("someone-else");
        c["spec"]["uid"] = json!("x");
        let user = User {
            name: "system:node:w1".into(),
            groups: vec!["system:nodes".into(), "system:authenticated".into()],
        };
        set_requester(&mut c, &user);
        assert_eq!(c["spec"]["username"], "system:node:w1");
        assert_eq!(
            c["spec"]["groups"],
            json!(["system:nodes", "system:authenticated"])
        );
        assert!(c["spec"].get("uid").is_none());
    }

    #[test]
    fn approval_sets_conditions_only_and_status_keeps_the_approval() {
        let old = csr(json!([]));
        let mut asked = old.clone();
        asked["spec"]["usages"] = json!(["server auth"]);
        asked["status"] = json!({
            "certificate": "Zm9v",
            "conditions": [{ "type": "Approved", "status": "True", "reason": "KubectlApprove", "message": "This CSR was approved by kubectl certificate approve." }],
        });
        let approved = approval_update(&old, &asked);
        assert_eq!(approved["spec"], old["spec"]);
        assert!(approved.pointer("/status/certificate").is_none());
        assert_eq!(approved["status"]["conditions"][0]["type"], "Approved");
        assert!(approved["status"]["conditions"][0]["lastUpdateTime"].is_string());
        assert!(Csrs.validate_update(&approved, &old).is_empty());

        // A status update cannot approve or remove the approval.
        let mut status = approved.clone();
        status["status"]["conditions"] = json!([{ "type": "Denied", "status": "True" }]);
        let written = crate::strategy::status_update(&Csrs, &approved, &status);
        assert_eq!(written["status"]["conditions"][0]["type"], "Approved");
        assert_eq!(conditions(&written).len(), 1);

        // Approved and Denied together, and removing the approval.
        let mut both = approved.clone();
        both["status"]["conditions"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "type": "Denied", "status": "True" }));
        let got = messages(Csrs.validate_update(&both, &approved));
        assert!(
            got.iter()
                .any(|m| m.contains("Approved and Denied conditions are mutually exclusive")),
            "{got:?}"
        );
        let got = messages(Csrs.validate_update(&old, &approved));
        assert!(
            got.iter()
                .any(|m| m.contains("updates may not remove a condition of type \"Approved\"")),
            "{got:?}"
        );
    }
}
