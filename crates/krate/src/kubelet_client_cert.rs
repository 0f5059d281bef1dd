//! The client certificate a joined node talks to the API server with, the
//! way kubelet TLS bootstrap gets one: the join token authenticates only as
//! a bootstrapper (`system:bootstrap:<node>` in `system:bootstrappers`),
//! which may do one thing: ask for a `kubernetes.io/kube-apiserver-client-kubelet`
//! certificate for `CN=system:node:<name>, O=system:nodes` (ECDSA P-256,
//! usages digital signature and client auth). The CSR approver approves it
//! after a SubjectAccessReview (`certificatesigningrequests/nodeclient`,
//! which the bootstrappers' group is bound to), the signer issues it, and
//! from then on every API call of the node is made as `system:node:<name>`,
//! where the Node authorizer and NodeRestriction apply.
//!
//! The certificate and key are kept in
//! `<data-dir>/agent/pki/kubelet-client-current.pem` (the kubelet's name)
//! and reused after a restart while valid. At 80% of its lifetime the node
//! asks for the next one with the current certificate
//! (`certificatesigningrequests/selfnodeclient`) and swaps it in: new
//! connections present the new certificate.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use kube::client::ConfigExt;

use crate::kubelet_cert::{self, Issued};

pub const SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";

/// Where the node's client certificate and key are kept.
pub fn stored_path(data_dir: &Path) -> PathBuf {
    data_dir.join("agent/pki/kubelet-client-current.pem")
}

/// The stored client certificate of `node_name` under the CA, when it
/// still authenticates (not expired).
pub fn load(path: &Path, ca_pem: &str, node_name: &str) -> Option<Issued> {
    let stored = kubelet_cert::load_stored(path, ca_pem, node_name)?;
    let now = SystemTime::now();
    (stored.organizations == ["system:nodes"]
        && stored.issued.not_before <= now
        && now < stored.issued.not_after)
        .then_some(stored.issued)
}

/// Asks for a kubelet client certificate of `node_name` through a CSR made
/// with `client` (the bootstrap identity, or the node's current
/// certificate), and keeps it at `path`.
pub async fn request(client: &kube::Client, node_name: &str, path: &Path) -> Result<Issued> {
    let key = rcgen::KeyPair::generate().context("generating the kubelet client key")?;
    let request_pem =
        kubelet_cert::node_request_pem(rcgen::CertificateParams::default(), &key, node_name)?;
    let cert_pem = kubelet_cert::submit(
        client,
        request_pem,
        SIGNER,
        &["digital signature", "client auth"],
        "kubelet client",
    )
    .await?;
    let (not_before, not_after) = kubelet_cert::validity(&cert_pem)?;
    let issued = Issued {
        cert_pem,
        key_pem: key.serialize_pem(),
        not_before,
        not_after,
    };
    kubelet_cert::store(path, &issued).with_context(|| {
        format!(
            "keeping the kubelet client certificate in {}",
            path.display()
        )
    })?;
    Ok(issued)
}

/// The node's client certificate: the stored one while it is valid, else
/// a new one asked for with the bootstrap credentials `bootstrap`.
pub async fn bootstrap(
    bootstrap: &kube::Client,
    ca_pem: &str,
    node_name: &str,
    path: &Path,
) -> Result<Issued> {
    if let Some(issued) = load(path, ca_pem, node_name) {
        tracing::info!(path = %path.display(), "using the stored kubelet client certificate");
        return Ok(issued);
    }
    request(bootstrap, node_name, path)
        .await
        .context("bootstrapping the kubelet client certificate with the join token")
}

/// The certificate new connections present; swapped on renewal.
#[derive(Debug)]
struct CurrentCertificate(RwLock<Arc<rustls::sign::CertifiedKey>>);

impl rustls::client::ResolvesClientCert for CurrentCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn certified_key(issued: &Issued) -> Result<Arc<rustls::sign::CertifiedKey>> {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("the kubelet client certificate")?;
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())
        .context("the kubelet client key")?;
    let key =
        rustls::crypto::ring::sign::any_supported_type(&key).context("the kubelet client key")?;
    Ok(Arc::new(rustls::sign::CertifiedKey::new(certs, key)))
}

/// An API client of the node that authenticates with its client
/// certificate, and the handle that renews that certificate.
pub struct NodeClient {
    pub client: kube::Client,
    current: Arc<CurrentCertificate>,
    issued: Issued,
    node_name: String,
    path: PathBuf,
}

impl NodeClient {
    /// A client of `server` trusting the CA certificates `root_certs`
    /// (DER), presenting `issued`.
    pub fn new(
        server: http::Uri,
        root_certs: Vec<Vec<u8>>,
        issued: Issued,
        node_name: &str,
        path: PathBuf,
    ) -> Result<NodeClient> {
        let mut config = kube::Config::new(server);
        config.root_cert = Some(root_certs);
        let mut tls = config
            .rustls_client_config()
            .context("the API client's TLS configuration")?;
        let current = Arc::new(CurrentCertificate(RwLock::new(certified_key(&issued)?)));
        tls.client_auth_cert_resolver = current.clone();
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(config.connect_timeout);
        // A server that went away silently ends the node's watches within
        // a minute (kube's own stack has a read timeout for this).
        http.set_keepalive(Some(Duration::from_secs(30)));
        http.set_keepalive_interval(Some(Duration::from_secs(10)));
        http.set_keepalive_retries(Some(3));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let hyper_client: hyper_util::client::legacy::Client<_, kube::client::Body> =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        let service = tower::ServiceBuilder::new()
            .layer(config.base_uri_layer())
            .service(hyper_client);
        Ok(NodeClient {
            client: kube::Client::new(service, config.default_namespace),
            current,
            issued,
            node_name: node_name.to_string(),
            path,
        })
    }

    /// Renews the certificate at 80% of its lifetime, for ever: a new CSR
    /// made with the current certificate, then new connections present
    /// the new one. Failures are retried with back-off.
    pub async fn rotate(mut self) {
        loop {
            let wait = self
                .issued
                .renew_at()
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            tracing::info!(renew_in = ?wait, "kubelet client certificate rotation scheduled");
            tokio::time::sleep(wait).await;
            let mut backoff = Duration::from_secs(2);
            let issued = loop {
                match request(&self.client, &self.node_name, &self.path).await {
                    Ok(i) => break i,
                    Err(e) => {
                        tracing::warn!(error = format!("{e:#}"), retry_in = ?backoff, "renewing the kubelet client certificate");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(60));
                    }
                }
            };
            match certified_key(&issued) {
                Ok(key) => {
                    *self.current.0.write().unwrap_or_else(|p| p.into_inner()) = key;
                    tracing::info!("kubelet client certificate rotated");
                    self.issued = issued;
                }
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "the renewed kubelet client certificate cannot be used"
                    );
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pki(dir: &Path) -> apiserver::tls::Pki {
        apiserver::tls::Pki::ensure(&apiserver::tls::PkiOptions {
            data_dir: dir.to_path_buf(),
            ..Default::default()
        })
        .unwrap()
    }

    fn client_cert(pki: &apiserver::tls::Pki, cn: &str, org: &str, life: Duration) -> Issued {
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, org);
        kubelet_cert::tests::issue(pki, params, &["digital signature", "client auth"], life)
    }

    #[test]
    fn a_stored_client_certificate_is_reused_only_for_the_node_and_ca_while_valid() {
        let dir = tempfile::tempdir().unwrap();
        let (ours, theirs) = (pki(&dir.path().join("a")), pki(&dir.path().join("b")));
        let path = stored_path(dir.path());
        let hour = Duration::from_secs(3600);
        kubelet_cert::store(
            &path,
            &client_cert(&ours, "system:node:w1", "system:nodes", hour),
        )
        .unwrap();
        let loaded = load(&path, &ours.ca_cert_pem, "w1").expect("reused");
        certified_key(&loaded).unwrap();
        assert!(loaded.renew_at() > SystemTime::now());
        assert!(load(&path, &theirs.ca_cert_pem, "w1").is_none());
        assert!(load(&path, &ours.ca_cert_pem, "w2").is_none());
        kubelet_cert::store(
            &path,
            &client_cert(&ours, "system:node:w1", "system:masters", hour),
        )
        .unwrap();
        assert!(load(&path, &ours.ca_cert_pem, "w1").is_none());
    }
}
