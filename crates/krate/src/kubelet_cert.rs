//! The serving certificate of a joined node's kubelet API, the way the
//! kubelet's certificate manager gets one (`--rotate-server-certificates`):
//! a fresh key, a `kubernetes.io/kubelet-serving` CertificateSigningRequest
//! for `CN=system:node:<name>, O=system:nodes` naming the node's host name
//! and addresses, and the certificate once the request is approved and
//! signed. The kubelet API is served with it, and the certificate is
//! renewed when 80% of its lifetime has passed. The current certificate and
//! key are kept in `<data-dir>/agent/pki/kubelet-server-current.pem` (the
//! kubelet's name) and reused after a restart while they are not due for
//! renewal, name the same node, names and addresses, and chain to the CA.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
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

/// A PEM certificate request for `params` as node `node_name`
/// (CN=system:node:<name>, O=system:nodes), signed by `key`.
pub(crate) fn node_request_pem(
    mut params: rcgen::CertificateParams,
    key: &rcgen::KeyPair,
    node_name: &str,
) -> Result<String> {
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(
        rcgen::DnType::CommonName,
        format!("system:node:{node_name}"),
    );
    dn.push(rcgen::DnType::OrganizationName, "system:nodes");
    params.distinguished_name = dn;
    params
        .serialize_request(key)
        .and_then(|r| r.pem())
        .context("writing the certificate signing request")
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
    let request_pem = node_request_pem(params, &key, &names.node_name)?;
    let cert_pem = submit(
        client,
        request_pem,
        "kubernetes.io/kubelet-serving",
        // An ECDSA key: no key encipherment.
        &["digital signature", "server auth"],
        "kubelet serving",
    )
    .await?;
    let (not_before, not_after) = validity(&cert_pem)?;
    Ok(Issued {
        cert_pem,
        key_pem: key.serialize_pem(),
        not_before,
        not_after,
    })
}

/// Creates a CertificateSigningRequest for the PEM `request_pem` with
/// `signer` and `usages`, and waits until it is issued (the kubelet's
/// `csr.RequestCertificate` and `WaitForCertificate`): the certificate,
/// PEM. A denied or failed request is an error. `what` names the
/// certificate in logs.
pub(crate) async fn submit(
    client: &kube::Client,
    request_pem: String,
    signer: &str,
    usages: &[&str],
    what: &str,
) -> Result<String> {
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta {
            generate_name: Some("csr-".into()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(request_pem.into_bytes()),
            signer_name: signer.into(),
            usages: Some(usages.iter().map(|u| u.to_string()).collect()),
            ..Default::default()
        },
        status: None,
    };
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let created = api
        .create(&PostParams::default(), &csr)
        .await
        .with_context(|| format!("creating the {what} certificate signing request"))?;
    let name = created.metadata.name.unwrap_or_default();
    tracing::info!(csr = %name, "waiting for the {what} certificate to be approved and issued");
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
            tracing::info!(csr = %name, "{what} certificate issued");
            return String::from_utf8(cert.0).context("the issued certificate");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The stored certificate, if it can still serve for `names` under the CA
/// `ca_pem`.
pub fn load(path: &Path, names: &Names, ca_pem: &str) -> Option<Issued> {
    let stored = load_stored(path, ca_pem, &names.node_name)?;
    if stored.dns != names.dns || stored.ips != names.ips {
        return None;
    }
    (SystemTime::now() < stored.issued.renew_at()).then_some(stored.issued)
}

/// A certificate and key kept on disk, signed by the CA and issued to
/// `system:node:<name>`.
pub(crate) struct Stored {
    pub issued: Issued,
    pub organizations: Vec<String>,
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
}

/// Reads the certificate and key at `path` when the certificate chains to
/// `ca_pem` and names node `node_name` (whatever its validity).
pub(crate) fn load_stored(path: &Path, ca_pem: &str, node_name: &str) -> Option<Stored> {
    let pem = std::fs::read_to_string(path).ok()?;
    let blocks: Vec<x509_parser::pem::Pem> =
        x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
            .collect::<Result<_, _>>()
            .ok()?;
    let cert_block = blocks.iter().find(|b| b.label == "CERTIFICATE")?;
    let key_block = blocks.iter().find(|b| b.label.ends_with("PRIVATE KEY"))?;
    let cert = cert_block.parse_x509().ok()?;
    let (_, ca) = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes()).ok()?;
    let ca = ca.parse_x509().ok()?;
    cert.verify_signature(Some(ca.public_key())).ok()?;
    if cert.subject().iter_common_name().next()?.as_str().ok()?
        != format!("system:node:{node_name}")
    {
        return None;
    }
    let organizations = cert
        .subject()
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => dns.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
                    4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).ok()?)),
                    16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).ok()?)),
                    _ => return None,
                },
                _ => return None,
            }
        }
    }
    let cert_pem = x509_pem("CERTIFICATE", &cert_block.contents);
    let key_pem = x509_pem(&key_block.label, &key_block.contents);
    let (not_before, not_after) = validity(&cert_pem).ok()?;
    Some(Stored {
        issued: Issued {
            cert_pem,
            key_pem,
            not_before,
            not_after,
        },
        organizations,
        dns,
        ips,
    })
}

pub(crate) fn x509_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Keeps `issued` (certificate and key, mode 0600) for the next start.
pub(crate) fn store(path: &Path, issued: &Issued) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(issued.cert_pem.as_bytes())?;
    f.write_all(issued.key_pem.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(tmp, path)
}

pub(crate) fn validity(cert_pem: &str) -> Result<(SystemTime, SystemTime)> {
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
    stored: PathBuf,
) {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    let mut listener = Some(listener);
    let mut serving: Option<crate::agent::AbortOnDrop> = None;
    let mut backoff = Duration::from_secs(2);
    let mut reuse = load(&stored, &names, &client_ca_pem);
    loop {
        let requested = match reuse.take() {
            Some(i) => Ok(i),
            None => request(&client, &names).await.inspect(|i| {
                if let Err(e) = store(&stored, i) {
                    tracing::warn!(path = %stored.display(), error = %e, "keeping the kubelet serving certificate");
                }
            }),
        };
        let issued = match requested {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A certificate for `params` signed by the CA of `pki` with `usages`,
    /// valid from a minute ago for `life`.
    pub(crate) fn issue(
        pki: &apiserver::tls::Pki,
        params: rcgen::CertificateParams,
        usages: &[&str],
        life: Duration,
    ) -> Issued {
        let key = rcgen::KeyPair::generate().unwrap();
        let csr = params.serialize_request(&key).unwrap();
        let now = SystemTime::now();
        let usages: Vec<String> = usages.iter().map(|u| u.to_string()).collect();
        let cert_pem = pki
            .csr_authority()
            .unwrap()
            .sign(
                csr.der(),
                &usages,
                now - Duration::from_secs(60),
                now + life,
            )
            .unwrap();
        let (not_before, not_after) = validity(&cert_pem).unwrap();
        Issued {
            cert_pem,
            key_pem: key.serialize_pem(),
            not_before,
            not_after,
        }
    }

    fn signed(pki: &apiserver::tls::Pki, names: &Names) -> Issued {
        let mut params = rcgen::CertificateParams::new(names.dns.clone()).unwrap();
        params
            .subject_alt_names
            .extend(names.ips.iter().map(|ip| rcgen::SanType::IpAddress(*ip)));
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("system:node:{}", names.node_name),
        );
        issue(
            pki,
            params,
            &["digital signature", "server auth"],
            Duration::from_secs(3600),
        )
    }

    #[test]
    fn a_stored_certificate_is_reused_only_for_the_same_names_and_ca() {
        let dir = tempfile::tempdir().unwrap();
        let pki = |name: &str| {
            apiserver::tls::Pki::ensure(&apiserver::tls::PkiOptions {
                data_dir: dir.path().join(name),
                ..Default::default()
            })
            .unwrap()
        };
        let (ours, theirs) = (pki("a"), pki("b"));
        let names = Names {
            node_name: "w1".into(),
            dns: vec!["w1".into()],
            ips: vec!["10.0.0.5".parse().unwrap()],
        };
        let path = dir.path().join("pki/kubelet-server-current.pem");
        store(&path, &signed(&ours, &names)).unwrap();
        let loaded = load(&path, &names, &ours.ca_cert_pem).expect("reused");
        node::server::tls_config(&loaded.cert_pem, &loaded.key_pem, &ours.ca_cert_pem).unwrap();
        assert!(load(&path, &names, &theirs.ca_cert_pem).is_none());
        let moved = Names {
            ips: vec!["10.0.0.6".parse().unwrap()],
            ..names.clone()
        };
        assert!(load(&path, &moved, &ours.ca_cert_pem).is_none());
    }
}
