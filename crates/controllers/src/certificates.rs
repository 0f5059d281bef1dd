//! CertificateSigningRequests, as kube-controller-manager handles them
//! (upstream `pkg/controller/certificates`): the signing controller
//! ([`signer`], `csrsigning`) issues Approved requests of the
//! `kubernetes.io/kube-apiserver-client`, `kubernetes.io/kube-apiserver-client-kubelet`
//! and `kubernetes.io/kubelet-serving` signers with the cluster CA, and the
//! approver ([`approver`], `csrapproving`) approves kubelet client requests
//! after a SubjectAccessReview and kubelet serving requests whose names are
//! the requesting node's own.
//!
//! What a request asks for is read once ([`Request::parse`]); the decisions
//! are pure functions over the CSR and that request, the controllers only do
//! the API calls.

pub mod approver;
pub mod signer;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use tokio::task::JoinSet;

use crate::Context;

pub const KUBE_APISERVER_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
pub const KUBE_APISERVER_CLIENT_KUBELET_SIGNER: &str =
    "kubernetes.io/kube-apiserver-client-kubelet";
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";

/// Signs certificates with the cluster CA (kube-controller-manager's
/// `--cluster-signing-cert-file`/`--cluster-signing-key-file`).
pub trait Authority: Send + Sync + std::fmt::Debug {
    /// A PEM certificate for the DER certification request `request`
    /// (subject, public key and subject alternative names taken from it),
    /// with the key usages `usages` (as the API spells them), valid from
    /// `not_before` to `not_after`.
    fn sign(
        &self,
        request: &[u8],
        usages: &[String],
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<String, String>;

    /// When the CA's own certificate expires: no certificate it signs
    /// outlives it.
    fn not_after(&self) -> SystemTime;
}

/// The parts of an x509 certification request the controllers judge.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Request {
    /// The request, DER.
    pub der: Vec<u8>,
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub email_addresses: Vec<String>,
    pub uris: Vec<String>,
}

impl Request {
    /// Parses `spec.request`: one PEM `CERTIFICATE REQUEST` block (upstream
    /// `ParseCSR`).
    pub fn parse(pem: &[u8]) -> Result<Request, String> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem)
            .map_err(|_| "PEM block type must be CERTIFICATE REQUEST".to_string())?;
        if block.label != "CERTIFICATE REQUEST" {
            return Err("PEM block type must be CERTIFICATE REQUEST".into());
        }
        use x509_parser::prelude::FromDer;
        let (_, csr) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&block.contents)
                .map_err(|e| format!("x509: {e}"))?;
        let subject = &csr.certification_request_info.subject;
        let mut request = Request {
            der: block.contents.clone(),
            common_name: subject
                .iter_common_name()
                .next()
                .and_then(|a| a.as_str().ok())
                .unwrap_or("")
                .to_string(),
            organizations: subject
                .iter_organization()
                .filter_map(|a| a.as_str().ok())
                .map(str::to_string)
                .collect(),
            ..Default::default()
        };
        use x509_parser::extensions::{GeneralName, ParsedExtension};
        for ext in csr.requested_extensions().into_iter().flatten() {
            let ParsedExtension::SubjectAlternativeName(san) = ext else {
                continue;
            };
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(d) => request.dns_names.push(d.to_string()),
                    GeneralName::RFC822Name(e) => request.email_addresses.push(e.to_string()),
                    GeneralName::URI(u) => request.uris.push(u.to_string()),
                    GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_from_bytes(bytes) {
                            request.ip_addresses.push(ip);
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(request)
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

/// Whether the CSR has a condition of this type with status True (upstream
/// `HasTrueCondition`).
pub fn has_true_condition(csr: &CertificateSigningRequest, type_: &str) -> bool {
    conditions(csr).any(|c| c.type_ == type_ && c.status == "True")
}

/// Upstream `GetCertApprovalCondition`: whether an Approved / a Denied
/// condition is present, whatever its status.
pub fn approval(csr: &CertificateSigningRequest) -> (bool, bool) {
    let approved = conditions(csr).any(|c| c.type_ == "Approved");
    let denied = conditions(csr).any(|c| c.type_ == "Denied");
    (approved, denied)
}

/// Upstream `IsCertificateRequestApproved`: approved and not denied.
pub fn is_approved(csr: &CertificateSigningRequest) -> bool {
    let (approved, denied) = approval(csr);
    approved && !denied
}

/// Whether the CSR already holds a certificate.
pub fn is_issued(csr: &CertificateSigningRequest) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty())
}

fn conditions(
    csr: &CertificateSigningRequest,
) -> impl Iterator<Item = &k8s_openapi::api::certificates::v1::CertificateSigningRequestCondition> {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
}

/// The CSR's usages as a set.
pub fn usages(csr: &CertificateSigningRequest) -> BTreeSet<&str> {
    csr.spec
        .usages
        .iter()
        .flatten()
        .map(String::as_str)
        .collect()
}

/// Starts the approver, and the signer when the CA can sign.
pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    approver::start(ctx, tasks);
    if let Some(authority) = &ctx.options.csr_authority {
        signer::start(ctx, Arc::clone(authority), tasks);
    }
}
