//! The serving certificate of a joined node's kubelet API, the way the
//! kubelet's certificate manager gets one (`--rotate-server-certificates`):
//! a fresh key, a `kubernetes.io/kubelet-serving` CertificateSigningRequest
//! for `CN=system:node:<name>, O=system:nodes` naming the node's host name
//! and addresses, and the certificate once the request is approved and
//! signed. The kubelet API is served with it, and the certificate is
//! renewed when 80% of its lifetime has passed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use k8s_openapi::ByteString;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::net::TcpListener;

/// A signed serving certificate and its key.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl Issued {
    /// When to ask for the next certificate: 80% into this one's life.
    pub fn renew_at(&self) -> SystemTime {
        let life = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        self.not_before + life.mul_f64(0.8)
    }
}

/// What the node asks its serving certificate for.
#[derive(Clone, Debug)]
pub struct Names {
    pub node_name: String,
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
}

/// Creates a kubelet-serving CSR for `names` and waits until it is signed.
/// A denied or failed request is an error.
pub async fn request(client: &kube::Client, names: &Names) -> Result<Issued> {
    let key = rcgen::KeyPair::generate().context("generating the kubelet serving key")?;
    let mut params = rcgen::CertificateParams::new(names.dns.clone())
        .context("the kubelet serving certificate's names")?;
    params
        .subject_alt_names
        .extend(names.ips.iter().map(|ip| rcgen::SanType::IpAddress(*ip)));
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(
        rcgen::DnType::CommonName,
        format!("system:node:{}", names.node_name),
    );
    dn.push(rcgen::DnType::OrganizationName, "system:nodes");
    params.distinguished_name = dn;
    let request_pem = params
        .serialize_request(&key)
        .and_then(|r| r.pem())
        .context("writing the certificate signing request")?;
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta {
            generate_name: Some("csr-".into()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(request_pem.into_bytes()),
            signer_name: "kubernetes.io/kubelet-serving".into(),
            // An ECDSA key: no key encipherment.
            usages: Some(vec!["digital signature".into(), "server auth".into()]),
            ..Default::default()
        },
        status: None,
    };
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let created = api
        .create(&PostParams::default(), &csr)
        .await
        .context("creating the kubelet serving certificate signing request")?;
    let name = created.metadata.name.unwrap_or_default();
    tracing::info!(csr = %name, "waiting for the kubelet serving certificate to be approved and issued");
    loop {
        let csr = api
            .get(&name)
            .await
            .with_context(|| format!("reading certificate signing request {name}"))?;
        let status = csr.status.unwrap_or_default();
        for c in status.conditions.iter().flatten() {
            if (c.type_ == "Denied" || c.type_ == "Failed") && c.status == "True" {
                bail!(
                    "certificate signing request {name} is {}: {}",
                    c.type_,
                    c.message.as_deref().unwrap_or("")
                );
            }
        }
        if let Some(cert) = status.certificate.filter(|c| !c.0.is_empty()) {
            let cert_pem = String::from_utf8(cert.0).context("the issued certificate")?;
            let (not_before, not_after) = validity(&cert_pem)?;
            tracing::info!(csr = %name, "kubelet serving certificate issued");
            return Ok(Issued {
                cert_pem,
                key_pem: key.serialize_pem(),
                not_before,
                not_after,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn validity(cert_pem: &str) -> Result<(SystemTime, SystemTime)> {
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).context("the issued certificate")?;
    let cert = pem.parse_x509().context("the issued certificate")?;
    let at = |t: x509_parser::time::ASN1Time| {
        SystemTime::UNIX_EPOCH + Duration::from_secs(t.timestamp().max(0) as u64)
    };
    Ok((
        at(cert.validity().not_before),
        at(cert.validity().not_after),
    ))
}

/// Serves the kubelet API on `listener` with certificates from
/// [`request`], asking again (with back-off) while none is issued, and
/// replacing the certificate when it is due for renewal. Runs until aborted.
pub async fn serve(
    client: kube::Client,
    runtime: Arc<dyn runtime::RuntimeService>,
    listener: TcpListener,
    names: Names,
    client_ca_pem: String,
) {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    let mut listener = Some(listener);
    let mut serving: Option<crate::agent::AbortOnDrop> = None;
    let mut backoff = Duration::from_secs(2);
    loop {
        let issued = match request(&client, &names).await {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), retry_in = ?backoff, "no kubelet serving certificate");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
        };
        backoff = Duration::from_secs(2);
        let tls = match node::server::tls_config(&issued.cert_pem, &issued.key_pem, &client_ca_pem)
        {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "the issued kubelet serving certificate cannot be used");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        // Connections already open keep their certificate; new ones get
        // the new one.
        drop(serving.take());
        let l = match listener.take() {
            Some(l) => l,
            None => match rebind(addr).await {
                Some(l) => l,
                None => continue,
            },
        };
        serving = Some(crate::agent::AbortOnDrop(tokio::spawn(
            node::server::KubeletServer::new(runtime.clone()).serve(l, tls),
        )));
        let wait = issued
            .renew_at()
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        tracing::info!(renew_in = ?wait, "kubelet API serving with its issued certificate");
        tokio::time::sleep(wait).await;
    }
}

async fn rebind(addr: Option<SocketAddr>) -> Option<TcpListener> {
    let addr = addr?;
    for _ in 0..50 {
        match TcpListener::bind(addr).await {
            Ok(l) => return Some(l),
            Err(e) => {
                tracing::debug!(%addr, error = %e, "binding the kubelet API again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    tracing::warn!(%addr, "the kubelet API port cannot be bound again");
    None
}
