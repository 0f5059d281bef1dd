//! The CSR signing controller (upstream `pkg/controller/certificates/signer`
//! and `authority`): an Approved, not Failed, not yet issued request of one
//! of the signers below gets a certificate from the cluster CA; a request a
//! signer refuses gets the `Failed` condition (reason
//! `SignerValidationFailure`, the refusal as message). Requests of other
//! signers are left to whoever signs them.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::ByteString;
use kube::api::{Api, PostParams};
use tokio::task::JoinSet;

use super::{
    has_true_condition, is_approved, is_issued, usages, Authority, Request, KUBELET_SERVING_SIGNER,
    KUBE_APISERVER_CLIENT_KUBELET_SIGNER, KUBE_APISERVER_CLIENT_SIGNER,
};
use crate::informer::{Informer, Key};
use crate::queue::WorkQueue;
use crate::runner::{self, Action, Error, Reconciler, Result};
use crate::Context;

const COMPONENT: &str = "csrsigning";
const WORKERS: usize = 2;

/// kube-controller-manager's `--cluster-signing-duration` default.
pub const DEFAULT_CERT_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// Certificates start this long before they are signed (clock skew).
pub const BACKDATE: Duration = Duration::from_secs(5 * 60);
/// Certificates this short-lived have their end left where it is: 5 minutes
/// of backdating is about 1% of 8 hours.
pub const SHORT: Duration = Duration::from_secs(8 * 3600);
/// The shortest certificate signed, whatever `spec.expirationSeconds` asks
/// (twice the backdate).
pub const MIN_TTL: Duration = Duration::from_secs(600);

/// What the signer does with a CSR.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Not this controller's: unapproved, failed, issued, or another signer.
    Ignore,
    /// The signer refuses the request: the message of the Failed condition.
    Fail(String),
    /// Sign it for this long.
    Sign(Duration),
}

/// Upstream `signer.handle` before signing.
pub fn decide(csr: &CertificateSigningRequest, request: &Request, cert_ttl: Duration) -> Decision {
    if !is_approved(csr) || has_true_condition(csr, "Failed") || is_issued(csr) {
        return Decision::Ignore;
    }
    let checked = match csr.spec.signer_name.as_str() {
        KUBELET_SERVING_SIGNER => validate_kubelet_serving(request, csr),
        KUBE_APISERVER_CLIENT_KUBELET_SIGNER => validate_kubelet_client(request, csr),
        KUBE_APISERVER_CLIENT_SIGNER => validate_apiserver_client_usages(csr),
        _ => return Decision::Ignore,
    };
    match checked {
        Err(message) => Decision::Fail(message),
        Ok(()) => Decision::Sign(duration(csr.spec.expiration_seconds, cert_ttl)),
    }
}

/// How long the certificate is valid: the requested `expirationSeconds`
/// within [[`MIN_TTL`], `cert_ttl`], else `cert_ttl`.
pub fn duration(expiration_seconds: Option<i32>, cert_ttl: Duration) -> Duration {
    match expiration_seconds {
        None => cert_ttl,
        Some(s) => Duration::from_secs(s.max(0) as u64).clamp(MIN_TTL, cert_ttl.max(MIN_TTL)),
    }
}

/// NotBefore and NotAfter of a certificate signed at `now` (upstream
/// `authority.boundaries`): backdated by `backdate`; a certificate of at
/// most `horizon` keeps its full length from now; none outlives the CA.
pub fn boundaries(
    now: SystemTime,
    ttl: Duration,
    backdate: Duration,
    horizon: Duration,
    signer_not_after: SystemTime,
) -> Result<(SystemTime, SystemTime), String> {
    if ttl.is_zero() {
        return Err(format!("can't sign cert with ttl {}s", ttl.as_secs()));
    }
    if signer_not_after <= now {
        return Err(format!(
            "the signer has expired: NotAfter={}",
            chrono::DateTime::<chrono::Utc>::from(signer_not_after).to_rfc3339()
        ));
    }
    let not_before = now - backdate;
    let mut not_after = if ttl <= horizon {
        now + ttl
    } else {
        not_before + ttl
    };
    if not_after > signer_not_after {
        not_after = signer_not_after;
    }
    Ok((not_before, not_after))
}

const ERR_ORGANIZATION: &str = "subject organization is not system:nodes";
const ERR_COMMON_NAME: &str = "subject common name does not begin with system:node:";

/// Upstream `ValidateKubeletServingCSR`.
pub fn validate_kubelet_serving(
    request: &Request,
    csr: &CertificateSigningRequest,
) -> Result<(), String> {
    if request.organizations != ["system:nodes"] {
        return Err(ERR_ORGANIZATION.into());
    }
    if request.dns_names.is_empty() && request.ip_addresses.is_empty() {
        return Err("DNS or IP subjectAltName is required".into());
    }
    if !request.email_addresses.is_empty() {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if !request.uris.is_empty() {
        return Err("URI subjectAltNames are not allowed".into());
    }
    let u = usages(csr);
    let with_rsa = ["digital signature", "key encipherment", "server auth"];
    if !same_set(&u, &with_rsa) && !same_set(&u, &["digital signature", "server auth"]) {
        return Err(format!("usages did not match [{}]", with_rsa.join(" ")));
    }
    if !request.common_name.starts_with("system:node:") {
        return Err(ERR_COMMON_NAME.into());
    }
    Ok(())
}

/// Upstream `ValidateKubeletClientCSR`.
pub fn validate_kubelet_client(
    request: &Request,
    csr: &CertificateSigningRequest,
) -> Result<(), String> {
    if request.organizations != ["system:nodes"] {
        return Err(ERR_ORGANIZATION.into());
    }
    if !request.dns_names.is_empty() {
        return Err("DNS subjectAltNames are not allowed".into());
    }
    if !request.email_addresses.is_empty() {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if !request.ip_addresses.is_empty() {
        return Err("IP subjectAltNames are not allowed".into());
    }
    if !request.uris.is_empty() {
        return Err("URI subjectAltNames are not allowed".into());
    }
    if !request.common_name.starts_with("system:node:") {
        return Err(ERR_COMMON_NAME.into());
    }
    let u = usages(csr);
    let with_rsa = ["client auth", "digital signature", "key encipherment"];
    if !same_set(&u, &with_rsa) && !same_set(&u, &["client auth", "digital signature"]) {
        return Err(format!("usages did not match [{}]", with_rsa.join(" ")));
    }
    Ok(())
}

/// Upstream `validAPIServerClientUsages`: `client auth`, optionally with
/// `digital signature` and `key encipherment`, nothing else.
pub fn validate_apiserver_client_usages(csr: &CertificateSigningRequest) -> Result<(), String> {
    let mut client_auth = false;
    for u in csr.spec.usages.iter().flatten() {
        match u.as_str() {
            "digital signature" | "key encipherment" => {}
            "client auth" => client_auth = true,
            other => return Err(format!("invalid usage for client certificate: {other}")),
        }
    }
    if !client_auth {
        return Err("missing required usage for client certificate: client auth".into());
    }
    Ok(())
}

fn same_set(have: &std::collections::BTreeSet<&str>, want: &[&str]) -> bool {
    have.len() == want.len() && want.iter().all(|w| have.contains(w))
}

/// The Failed condition of a refused request.
pub fn failed_condition(message: String, now: Time) -> CertificateSigningRequestCondition {
    CertificateSigningRequestCondition {
        type_: "Failed".into(),
        status: "True".into(),
        reason: Some("SignerValidationFailure".into()),
        message: Some(message),
        last_update_time: Some(now),
        ..Default::default()
    }
}

pub fn start(ctx: &Context, authority: Arc<dyn Authority>, tasks: &mut JoinSet<()>) {
    let csrs = ctx.informers.get::<CertificateSigningRequest>();
    let queue = WorkQueue::new();
    {
        let queue = queue.clone();
        csrs.on_change(move |change| queue.add(Key::of(change.object().as_ref())));
    }
    let controller = Arc::new(Signer {
        client: ctx.client.clone(),
        csrs: csrs.clone(),
        authority,
        cert_ttl: DEFAULT_CERT_TTL,
    });
    tasks.spawn(async move {
        csrs.wait_synced().await;
        let mut workers = JoinSet::new();
        runner::spawn(controller, queue, WORKERS, &mut workers);
        while workers.join_next().await.is_some() {}
    });
}

struct Signer {
    client: kube::Client,
    csrs: Informer<CertificateSigningRequest>,
    authority: Arc<dyn Authority>,
    cert_ttl: Duration,
}

#[async_trait::async_trait]
impl Reconciler for Signer {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let Some(cached) = self.csrs.get(key) else {
            return Ok(Action::Done);
        };
        if !is_approved(&cached) || is_issued(&cached) {
            return Ok(Action::Done);
        }
        let request = Request::parse(&cached.spec.request.0)
            .map_err(|e| Error::Other(format!("unable to parse csr {:?}: {e}", key.name)))?;
        let mut csr = (*cached).clone();
        let status = csr.status.get_or_insert_with(Default::default);
        match decide(&cached, &request, self.cert_ttl) {
            Decision::Ignore => return Ok(Action::Done),
            Decision::Fail(message) => {
                status
                    .conditions
                    .get_or_insert_with(Vec::new)
                    .push(failed_condition(message, Time(chrono::Utc::now())));
            }
            Decision::Sign(ttl) => {
                let (not_before, not_after) = boundaries(
                    SystemTime::now(),
                    ttl,
                    BACKDATE,
                    SHORT,
                    self.authority.not_after(),
                )
                .map_err(|e| Error::Other(format!("error auto signing csr: {e}")))?;
                let usages: Vec<String> = cached.spec.usages.clone().unwrap_or_default();
                let pem = self
                    .authority
                    .sign(&request.der, &usages, not_before, not_after)
                    .map_err(|e| Error::Other(format!("error auto signing csr: {e}")))?;
                status.certificate = Some(ByteString(pem.into_bytes()));
            }
        }
        let api: Api<CertificateSigningRequest> = Api::all(self.client.clone());
        let body = serde_json::to_vec(&csr).map_err(|e| Error::Other(e.to_string()))?;
        match api
            .replace_status(&key.name, &PostParams::default(), body)
            .await
        {
            Ok(_) => Ok(Action::Done),
            Err(e) if runner::is_not_found(&e) => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }
}
