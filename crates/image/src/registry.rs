//! Pulling from registries that speak the OCI distribution API (v2):
//! manifests by tag or digest with the OCI and docker schema 2 media types,
//! image indexes narrowed to linux/amd64, blobs verified by digest,
//! redirects followed, bearer-token and basic auth, loopback registries
//! over plain HTTP and everything else over HTTPS, mirrors from a k3s-style
//! `registries.yaml`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{header, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::auth::Credentials;
use crate::digest;
use crate::error::{Error, Result};
use crate::reference::{self, Reference};
use crate::spec::{self, ManifestOrIndex};
use crate::store::{Image, LayerRecord, Prepared, Store};

pub(crate) type HttpClient =
    hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, */*";
const MAX_MANIFEST_BYTES: usize = 4 << 20;
const MAX_CONFIG_BYTES: usize = 16 << 20;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const USER_AGENT: &str = concat!("krate/", env!("CARGO_PKG_VERSION"));

fn http_client() -> HttpClient {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = match hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider.clone())
    {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "no system CA certificates: HTTPS registries will not verify");
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        }
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(30)));
    let connector = builder.https_or_http().enable_http1().wrap_connector(http);
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector)
}

fn tls_client(host: &str, tls: &HostTls) -> Result<HttpClient> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |e: &dyn std::fmt::Display| {
        Error::malformed(format!("TLS settings of registry {host}"), e.to_string())
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions");
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if let Some(ca) = &tls.ca_file {
            let pem = std::fs::read(ca).map_err(Error::io(ca))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
        }
        builder.with_root_certificates(roots)
    };
    let config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let pem = std::fs::read(cert).map_err(Error::io(cert))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| bad(&e))?;
            let key_pem = std::fs::read(key).map_err(Error::io(key))?;
            let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| bad(&e))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| bad(&e))?
        }
        _ => builder.with_no_client_auth(),
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(30)));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector),
    )
}

/// `insecure_skip_verify`: any certificate is taken (signatures are still
/// checked, so the session is encrypted to whoever answered).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// k3s's `registries.yaml`: mirrors per registry host (`"*"` for all) and
/// credentials per endpoint host.
#[derive(Debug, Default, Deserialize)]
pub struct RegistriesConfig {
    #[serde(default)]
    pub mirrors: HashMap<String, Mirror>,
    #[serde(default)]
    pub configs: HashMap<String, HostConfig>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Mirror {
    #[serde(default)]
    pub endpoint: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct HostConfig {
    #[serde(default)]
    pub auth: Option<HostAuth>,
    #[serde(default)]
    pub tls: Option<HostTls>,
}

/// TLS toward one registry host: a CA beside the system's, a client
/// certificate, or no verification at all.
#[derive(Debug, Default, Deserialize)]
pub struct HostTls {
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub cert_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub key_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct HostAuth {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub auth: Option<String>,
}

impl RegistriesConfig {
    pub fn load(path: &Path) -> Result<RegistriesConfig> {
        match std::fs::read(path) {
            Ok(bytes) if bytes.iter().all(|b| b.is_ascii_whitespace()) => {
                Ok(RegistriesConfig::default())
            }
            Ok(bytes) => serde_yaml::from_slice(&bytes)
                .map_err(|e| Error::malformed(format!("registries config {}", path.display()), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RegistriesConfig::default()),
            Err(e) => Err(Error::io(path)(e)),
        }
    }

    /// Where to look for images of `domain`: its mirrors in order, then
    /// the registry itself.
    pub fn endpoints(&self, domain: &str) -> Vec<Endpoint> {
        let mirrors = self.mirrors.get(domain).or_else(|| self.mirrors.get("*"));
        let mut out: Vec<Endpoint> = mirrors
            .map(|m| {
                m.endpoint
                    .iter()
                    .filter_map(|e| Endpoint::from_url(e))
                    .collect()
            })
            .unwrap_or_default();
        let default = Endpoint::default_for(domain);
        if !out.contains(&default) {
            out.push(default);
        }
        out
    }

    /// The HTTP client for endpoints on `host`: `default` unless the
    /// config has TLS settings for it.
    pub(crate) fn client_for(&self, host: &str, default: &HttpClient) -> Result<HttpClient> {
        match self.configs.get(host).and_then(|c| c.tls.as_ref()) {
            None => Ok(default.clone()),
            Some(tls) => tls_client(host, tls),
        }
    }

    pub fn credentials(&self, host: &str) -> Option<Credentials> {
        let auth = self.configs.get(host)?.auth.as_ref()?;
        if let Some(user) = &auth.username {
            return Some(Credentials {
                username: user.clone(),
                password: auth.password.clone().unwrap_or_default(),
            });
        }
        let json = serde_json::json!({ "auths": { host: { "auth": auth.auth.clone()? } } });
        crate::auth::from_docker_config_json(json.to_string().as_bytes(), host)
    }
}

/// A registry API base: `http://127.0.0.1:5000`, `https://registry-1.docker.io`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Scheme, authority and any path prefix, without `/v2`.
    pub base: String,
    pub host: String,
}

impl Endpoint {
    fn default_for(domain: &str) -> Endpoint {
        let host = if domain == reference::DEFAULT_DOMAIN {
            "registry-1.docker.io"
        } else {
            domain
        };
        let scheme = if reference::is_local_host(host) {
            "http"
        } else {
            "https"
        };
        Endpoint {
            base: format!("{scheme}://{host}"),
            host: domain.to_string(),
        }
    }

    fn from_url(url: &str) -> Option<Endpoint> {
        let url = if url.contains("://") {
            url.to_string()
        } else {
            let scheme = if reference::is_local_host(url) {
                "http"
            } else {
                "https"
            };
            format!("{scheme}://{url}")
        };
        let uri: Uri = url.parse().ok()?;
        let host = uri.authority()?.to_string();
        let path = uri.path().trim_end_matches('/');
        let path = path.strip_suffix("/v2").unwrap_or(path);
        Some(Endpoint {
            base: format!("{}://{}{}", uri.scheme_str()?, host, path),
            host,
        })
    }
}

pub(crate) async fn pull(store: &Store, name: &str, auth: Option<&Credentials>) -> Result<Image> {
    let reference = Reference::parse(name)?;
    // One pull of a reference at a time in this process: the second finds
    // the blobs and layers the first stored.
    let _pulling = lock(store, format!("pull:{reference}")).await;
    let s = store.clone();
    let _gc = tokio::task::spawn_blocking(move || s.hold_off_gc())
        .await
        .expect("taking the gc lock does not panic")?;
    let config = RegistriesConfig::load(&store.inner.registries_config)?;
    let client = store.inner.http.get_or_init(http_client).clone();
    // As containerd's resolver: the first error that is not a 404 wins;
    // "not found" only when every endpoint says so.
    let mut first_err = None;
    for endpoint in config.endpoints(&reference.domain) {
        let credentials = auth.cloned().or_else(|| config.credentials(&endpoint.host));
        let mut session = Session {
            client: config.client_for(&endpoint.host, &client)?,
            credentials,
            authorization: None,
            reference: reference.clone(),
            endpoint: endpoint.clone(),
            created_blobs: Vec::new(),
            created_layers: Vec::new(),
        };
        match session.resolve().await {
            Ok(resolved) => {
                let result = session.fetch(store, resolved).await;
                if result.is_err() {
                    store.discard(&session.created_blobs, &session.created_layers);
                }
                return result;
            }
            Err(e) => {
                tracing::debug!(endpoint = %endpoint.base, error = %e, "trying next host");
                if !e.is_not_found() && first_err.is_none() {
                    first_err = Some(e);
                }
            }
        }
    }
    Err(first_err.unwrap_or(Error::NotFound {
        reference: reference.to_string(),
    }))
}

async fn lock(store: &Store, key: String) -> tokio::sync::OwnedMutexGuard<()> {
    let m = {
        let mut locks = store.inner.pull_locks.lock().await;
        // Locks nobody holds or waits for (only the map has them) go, so
        // that the map does not grow with every blob ever pulled.
        locks.retain(|_, m| Arc::strong_count(m) > 1);
        locks.entry(key).or_default().clone()
    };
    m.lock_owned().await
}

struct Resolved {
    digest: String,
    media_type: String,
    bytes: Bytes,
}

#[derive(Clone)]
struct Session {
    client: HttpClient,
    credentials: Option<Credentials>,
    /// The `Authorization` value the registry accepted last.
    authorization: Option<String>,
    reference: Reference,
    endpoint: Endpoint,
    /// Blobs and layers this pull added: removed again when it fails.
    created_blobs: Vec<String>,
    created_layers: Vec<String>,
}

impl Session {
    fn url(&self, kind: &str, object: &str) -> String {
        format!(
            "{}/v2/{}/{}/{}",
            self.endpoint.base, self.reference.path, kind, object
        )
    }

    fn resolve_failed(&self, detail: impl std::fmt::Display) -> Error {
        Error::Registry {
            reference: self.reference.to_string(),
            message: format!(
                "failed to resolve reference \"{}\": {detail}",
                self.reference
            ),
        }
    }

    /// The manifest (or index) the reference names.
    async fn resolve(&mut self) -> Result<Resolved> {
        let object = self.reference.object().to_string();
        let resolved = self.manifest(&object).await?;
        Ok(resolved)
    }

    async fn manifest(&mut self, object: &str) -> Result<Resolved> {
        let url = self.url("manifests", object);
        let response = self.get(&url, Some(MANIFEST_ACCEPT)).await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                return Err(Error::NotFound {
                    reference: self.reference.to_string(),
                })
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let detail = server_message(response).await;
                return Err(self.unauthorized(format!(
                    "pull access denied, repository does not exist or may require authorization: {detail}"
                )));
            }
            status => {
                return Err(self.resolve_failed(format!(
                    "unexpected status from GET request to {url}: {}",
                    status_text(status)
                )))
            }
        }
        let media_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
            .unwrap_or_default();
        let bytes = read_limited(response, MAX_MANIFEST_BYTES)
            .await
            .map_err(|e| self.resolve_failed(format!("reading manifest from {url}: {e}")))?;
        let actual = digest::sha256(&bytes);
        if object.starts_with("sha256:") && object != actual {
            return Err(Error::DigestMismatch {
                what: format!("manifest {url}"),
                expected: object.to_string(),
                actual,
            });
        }
        Ok(Resolved {
            digest: actual,
            media_type,
            bytes,
        })
    }

    fn unauthorized(&self, detail: String) -> Error {
        Error::Unauthorized {
            reference: self.reference.to_string(),
            detail,
        }
    }

    /// Fetches what the manifest names into the store and records the image.
    async fn fetch(&mut self, store: &Store, top: Resolved) -> Result<Image> {
        let top_digest = top.digest.clone();
        let top_bytes = top.bytes.clone();
        let mut current = top;
        let mut depth = 0;
        let manifest = loop {
            let parsed = ManifestOrIndex::parse(&current.media_type, &current.bytes)
                .map_err(|e| Error::malformed(format!("manifest {}", current.digest), e))?;
            match parsed {
                ManifestOrIndex::Manifest(m) => break m,
                ManifestOrIndex::Index(index) => {
                    depth += 1;
                    if depth > 4 {
                        return Err(Error::malformed(
                            format!("index {}", current.digest),
                            "indexes nested too deep",
                        ));
                    }
                    let chosen = spec::choose_platform(&index).ok_or_else(|| Error::Registry {
                        reference: self.reference.to_string(),
                        message: format!(
                            "no match for platform in manifest {}: not found",
                            current.digest
                        ),
                    })?;
                    let digest = chosen.digest.clone();
                    current = self.manifest(&digest).await?;
                }
            }
        };
        digest::hex_of(&manifest.config.digest)?;
        let config_path = store.blob_path(&manifest.config.digest)?;
        let config_bytes = if config_path.exists() {
            std::fs::read(&config_path).map_err(Error::io(&config_path))?
        } else {
            let url = self.url("blobs", &manifest.config.digest);
            let response = self.get(&url, None).await?;
            if response.status() != StatusCode::OK {
                return Err(self.blob_failed(&url, response.status()));
            }
            let bytes = read_limited(response, MAX_CONFIG_BYTES)
                .await
                .map_err(|e| self.copy_failed(format!("reading {url}: {e}")))?;
            store.put_blob(&bytes, &manifest.config.digest, &format!("config {url}"))?;
            self.created_blobs.push(manifest.config.digest.clone());
            bytes.to_vec()
        };
        let config: spec::ConfigFile = serde_json::from_slice(&config_bytes)
            .map_err(|e| Error::malformed(format!("image config {}", manifest.config.digest), e))?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(Error::malformed(
                format!("image config {}", manifest.config.digest),
                format!(
                    "{} layers but {} diff IDs",
                    manifest.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            ));
        }
        // Up to three layers download at once (containerd's default), each
        // unpacked as soon as it is here; the order of the layers is kept.
        let jobs = manifest
            .layers
            .iter()
            .zip(&config.rootfs.diff_ids)
            .map(|(desc, diff_id)| {
                let mut sub = Session {
                    created_blobs: Vec::new(),
                    created_layers: Vec::new(),
                    ..self.clone()
                };
                let (desc, diff_id, store) = (desc.clone(), diff_id.clone(), store.clone());
                async move {
                    let result = sub.layer(&store, &desc, &diff_id).await;
                    (result, sub.created_blobs, sub.created_layers)
                }
            });
        // Collected first: a lazy iterator held across the await would make
        // the future not Send.
        let jobs: Vec<_> = jobs.collect();
        let results: Vec<_> = futures::stream::iter(jobs).buffered(3).collect().await;
        let mut layers = Vec::new();
        let mut first_err = None;
        for (result, blobs, unpacked) in results {
            self.created_blobs.extend(blobs);
            self.created_layers.extend(unpacked);
            match result {
                Ok(layer) => layers.push(layer),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        store.put_blob(&top_bytes, &top_digest, "manifest")?;
        let prepared = Prepared {
            id: manifest.config.digest.clone(),
            config,
            config_size: config_bytes.len() as u64,
            layers,
            manifest: Some(top_digest.clone()),
        };
        let tags = self.reference.tagged().into_iter().collect();
        let digests = vec![self.reference.with_digest(&top_digest)];
        let s = store.clone();
        tokio::task::spawn_blocking(move || s.commit(prepared, tags, digests))
            .await
            .expect("recording an image does not panic")
    }

    /// Downloads (when missing) and unpacks (once) one layer.
    async fn layer(
        &mut self,
        store: &Store,
        desc: &spec::Descriptor,
        diff_id: &str,
    ) -> Result<(LayerRecord, u64)> {
        digest::hex_of(diff_id)?;
        let blob = self.blob(store, &desc.digest).await?;
        let (s, d, b) = (store.clone(), diff_id.to_string(), blob.clone());
        let created = tokio::task::spawn_blocking(move || s.ensure_layer(&b, &d))
            .await
            .expect("unpacking a layer does not panic")?;
        if created {
            self.created_layers.push(diff_id.to_string());
        }
        let size = std::fs::metadata(&blob)
            .map(|m| m.len())
            .unwrap_or(desc.size.max(0) as u64);
        Ok((
            LayerRecord {
                digest: desc.digest.clone(),
                diff_id: diff_id.to_string(),
            },
            size,
        ))
    }

    fn blob_failed(&self, url: &str, status: StatusCode) -> Error {
        if status == StatusCode::NOT_FOUND {
            self.copy_failed(format!(
                "httpReadSeeker: failed open: content at {url} not found: not found"
            ))
        } else {
            self.copy_failed(format!(
                "httpReadSeeker: failed open: unexpected status code {url}: {}",
                status_text(status)
            ))
        }
    }

    fn copy_failed(&self, detail: String) -> Error {
        Error::Registry {
            reference: self.reference.to_string(),
            message: format!("failed to copy: {detail}"),
        }
    }

    /// The blob `digest` in the store, downloaded and verified when missing.
    async fn blob(&mut self, store: &Store, digest: &str) -> Result<std::path::PathBuf> {
        let dest = store.blob_path(digest)?;
        if dest.exists() {
            return Ok(dest);
        }
        let _downloading = lock(store, format!("blob:{digest}")).await;
        if dest.exists() {
            return Ok(dest);
        }
        let url = self.url("blobs", digest);
        let response = self.get(&url, None).await?;
        if response.status() != StatusCode::OK {
            return Err(self.blob_failed(&url, response.status()));
        }
        let tmp_dir = store.tmp_dir();
        let tmp = tempfile::NamedTempFile::new_in(&tmp_dir)
            .map_err(Error::io(&tmp_dir))?
            .into_temp_path();
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(Error::io(&*tmp))?;
        let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
        let mut body = response.into_body();
        loop {
            let frame = tokio::time::timeout(REQUEST_TIMEOUT, body.frame())
                .await
                .map_err(|_| self.copy_failed(format!("reading {url}: timed out")))?;
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| self.copy_failed(format!("reading {url}: {e}")))?;
            if let Ok(data) = frame.into_data() {
                sha2::Digest::update(&mut hasher, &data);
                file.write_all(&data).await.map_err(Error::io(&*tmp))?;
            }
        }
        file.sync_all().await.map_err(Error::io(&*tmp))?;
        drop(file);
        let actual = format!("sha256:{}", hex(&sha2::Digest::finalize(hasher)));
        if actual != digest {
            return Err(Error::DigestMismatch {
                what: format!("blob {url}"),
                expected: digest.to_string(),
                actual,
            });
        }
        let kept = store.adopt_blob(&tmp, digest)?;
        self.created_blobs.push(digest.to_string());
        // Renamed into the store: the guard has nothing to delete.
        let _ = tmp.keep();
        Ok(kept)
    }

    /// GET with redirects followed and one round of authentication on 401.
    async fn get(&mut self, url: &str, accept: Option<&str>) -> Result<Response<Incoming>> {
        let mut url = url.to_string();
        let origin = authority_of(&url);
        let mut authenticated = false;
        for _ in 0..10 {
            let mut request = Request::get(&url).header(header::USER_AGENT, USER_AGENT);
            if let Some(accept) = accept {
                request = request.header(header::ACCEPT, accept);
            }
            // Credentials go only to the registry, not to where it
            // redirects blob downloads.
            if authority_of(&url) == origin {
                if let Some(a) = &self.authorization {
                    request = request.header(header::AUTHORIZATION, a);
                }
            }
            let request = request
                .body(Empty::new())
                .map_err(|e| self.resolve_failed(format!("bad request URL {url}: {e}")))?;
            let response = tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(request))
                .await
                .map_err(|_| {
                    self.resolve_failed(format!("failed to do request: Get \"{url}\": timed out"))
                })?
                .map_err(|e| {
                    self.resolve_failed(format!(
                        "failed to do request: Get \"{url}\": {}",
                        error_chain(&e)
                    ))
                })?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !authenticated && authority_of(&url) == origin
            {
                authenticated = true;
                let challenge = response
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                match challenge {
                    Some(c) if self.authenticate(&c).await? => continue,
                    _ => return Ok(response),
                }
            }
            if status.is_redirection() {
                if let Some(location) = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                {
                    url = join_url(&url, location);
                    continue;
                }
            }
            return Ok(response);
        }
        Err(self.resolve_failed(format!("stopped after 10 redirects at {url}")))
    }

    /// Answers a `WWW-Authenticate` challenge: a bearer token from the
    /// realm (with basic auth when credentials are given), or basic auth.
    /// Returns whether there is something new to retry with.
    async fn authenticate(&mut self, challenge: &str) -> Result<bool> {
        let (scheme, params) = parse_challenge(challenge);
        if scheme.eq_ignore_ascii_case("basic") {
            let Some(credentials) = self.credentials.as_ref() else {
                return Ok(false);
            };
            self.authorization = Some(credentials.basic_header());
            return Ok(true);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Ok(false);
        }
        let realm = params
            .get("realm")
            .ok_or_else(|| self.unauthorized("bearer challenge without realm".into()))?;
        let scope = params
            .get("scope")
            .cloned()
            .unwrap_or_else(|| format!("repository:{}:pull", self.reference.path));
        let query = {
            let mut query = form_urlencoded::Serializer::new(String::new());
            if let Some(service) = params.get("service") {
                query.append_pair("service", service);
            }
            query.append_pair("scope", &scope);
            query.finish()
        };
        let sep = if realm.contains('?') { '&' } else { '?' };
        let token_url = format!("{realm}{sep}{query}");
        let mut request = Request::get(&token_url).header(header::USER_AGENT, USER_AGENT);
        if let Some(c) = &self.credentials {
            request = request.header(header::AUTHORIZATION, c.basic_header());
        }
        let request = request
            .body(Empty::new())
            .map_err(|e| self.unauthorized(format!("bad token realm {realm}: {e}")))?;
        let kind = if self.credentials.is_some() {
            "oauth"
        } else {
            "anonymous"
        };
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| {
                self.unauthorized(format!(
                    "failed to authorize: failed to fetch {kind} token: timed out"
                ))
            })?
            .map_err(|e| {
                self.unauthorized(format!(
                    "failed to authorize: failed to fetch {kind} token: {}",
                    error_chain(&e)
                ))
            })?;
        if response.status() != StatusCode::OK {
            return Err(self.unauthorized(format!(
                "failed to authorize: failed to fetch {kind} token: unexpected status from GET request to {token_url}: {}",
                status_text(response.status())
            )));
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            #[serde(default)]
            token: String,
            #[serde(default)]
            access_token: String,
        }
        let body = read_limited(response, 1 << 20).await.map_err(|e| {
            self.unauthorized(format!(
                "failed to authorize: failed to fetch {kind} token: {e}"
            ))
        })?;
        let token: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            self.unauthorized(format!(
                "failed to authorize: failed to fetch {kind} token: {e}"
            ))
        })?;
        let token = if token.token.is_empty() {
            token.access_token
        } else {
            token.token
        };
        if token.is_empty() {
            return Err(self.unauthorized(format!(
                "failed to authorize: failed to fetch {kind} token: empty token"
            )));
        }
        self.authorization = Some(format!("Bearer {token}"));
        Ok(true)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn status_text(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_string()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// The registry's error body as containerd shows it
/// (`server message: <code>: <message>`).
async fn server_message(response: Response<Incoming>) -> String {
    let status = response.status();
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorBody>,
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let body = read_limited(response, 1 << 16).await.unwrap_or_default();
    match serde_json::from_slice::<Errors>(&body) {
        Ok(e) if !e.errors.is_empty() => {
            let parts: Vec<String> = e
                .errors
                .iter()
                .map(|e| format!("{}: {}", e.code.to_ascii_lowercase(), e.message))
                .collect();
            format!("server message: {}", parts.join("; "))
        }
        _ => status_text(status),
    }
}

async fn read_limited(
    response: Response<Incoming>,
    limit: usize,
) -> std::result::Result<Bytes, String> {
    let mut body = response.into_body();
    let mut out = Vec::new();
    loop {
        let frame = tokio::time::timeout(REQUEST_TIMEOUT, body.frame())
            .await
            .map_err(|_| "timed out".to_string())?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| e.to_string())?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(format!("larger than {limit} bytes"));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(out))
}

fn authority_of(url: &str) -> Option<String> {
    url.parse::<Uri>().ok()?.authority().map(|a| a.to_string())
}

/// `location` (absolute, or relative to `base`) as an absolute URL.
fn join_url(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let Ok(uri) = base.parse::<Uri>() else {
        return location.to_string();
    };
    let origin = format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("https"),
        uri.authority().map(|a| a.as_str()).unwrap_or("")
    );
    if location.starts_with('/') {
        format!("{origin}{location}")
    } else {
        let path = uri.path();
        let dir = &path[..path.rfind('/').map(|i| i + 1).unwrap_or(0)];
        format!("{origin}{dir}{location}")
    }
}

/// `Bearer realm="https://auth",service="reg",scope="repository:x:pull"`
fn parse_challenge(challenge: &str) -> (String, HashMap<String, String>) {
    let challenge = challenge.trim();
    let (scheme, rest) = challenge.split_once(' ').unwrap_or((challenge, ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.insert(key, value);
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme.to_string(), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_parse_quoted_params_with_commas() {
        let (scheme, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/busybox:pull,push");
        let (scheme, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(scheme, "Basic");
        assert_eq!(p["realm"], "Registry Realm");
    }

    #[test]
    fn mirrors_come_first_then_the_registry_itself() {
        let config: RegistriesConfig = serde_yaml::from_str(
            "mirrors:\n  docker.io:\n    endpoint:\n      - \"http://127.0.0.1:5000\"\n      - mirror.example.com/v2\nconfigs:\n  \"127.0.0.1:5000\":\n    auth:\n      username: u\n      password: p\n",
        )
        .unwrap();
        let e = config.endpoints("docker.io");
        let bases: Vec<_> = e.iter().map(|e| e.base.as_str()).collect();
        assert_eq!(
            bases,
            [
                "http://127.0.0.1:5000",
                "https://mirror.example.com",
                "https://registry-1.docker.io"
            ]
        );
        assert_eq!(config.credentials("127.0.0.1:5000").unwrap().username, "u");
        assert_eq!(
            config.endpoints("localhost:5000")[0].base,
            "http://localhost:5000"
        );
        assert_eq!(config.endpoints("quay.io")[0].base, "https://quay.io");
    }

    #[test]
    fn redirect_locations_resolve_against_the_request() {
        assert_eq!(
            join_url("http://a:1/v2/x/blobs/s", "/store/b"),
            "http://a:1/store/b"
        );
        assert_eq!(
            join_url("http://a:1/v2/x/blobs/s", "https://cdn/b?sig=1"),
            "https://cdn/b?sig=1"
        );
        assert_eq!(
            join_url("http://a:1/v2/x/blobs/s", "t"),
            "http://a:1/v2/x/blobs/t"
        );
    }
}
