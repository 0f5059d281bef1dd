//! The kubelet's HTTPS API (upstream `pkg/kubelet/server`): the endpoints the
//! API server forwards `pods/log`, `pods/exec`, `pods/attach` and
//! `pods/portforward` to.
//!
//! - `GET /containerLogs/{ns}/{pod}/{container}` reads the CRI log files
//!   ([`logs`]), with `follow`, `previous`, `timestamps`, `tailLines`,
//!   `sinceSeconds`, `sinceTime` and `limitBytes`.
//! - `/exec/{ns}/{pod}/{container}?command=..` and `/attach/...` speak the
//!   WebSocket channel protocols `v5.channel.k8s.io` / `v4.channel.k8s.io`
//!   ([`remotecommand`]), or SPDY/3.1 `v4.channel.k8s.io` for older clients
//!   ([`remotecommand_spdy`]).
//! - `/portForward/{ns}/{pod}` speaks SPDY/3.1 `portforward.k8s.io`, either
//!   over a plain HTTP upgrade or tunneled inside a WebSocket
//!   (`SPDY/3.1+portforward.k8s.io`, kubectl 1.32's default) ([`portforward`],
//!   [`spdy`]), or over WebSocket `v4.channel.k8s.io` with `?ports=` (client
//!   libraries).
//! - `GET /metrics/resource`: node, pod and container CPU and memory in
//!   Prometheus text ([`resource_metrics`]), for the metrics API.
//!
//! Every client presents a certificate signed by the cluster CA; only
//! `system:masters` (the API server's kubelet client certificate is
//! `kube-apiserver-kubelet-client` in that group) may use the API.
//!
//! Containers and sandboxes are found through the runtime alone
//! ([`resolve`]): `RuntimeService::list_containers` /
//! `list_pod_sandbox`, matched by the labels upstream's kubelet puts on
//! every container and sandbox — `io.kubernetes.pod.namespace`,
//! `io.kubernetes.pod.name`, `io.kubernetes.pod.uid` and (containers)
//! `io.kubernetes.container.name` — falling back to the CRI metadata
//! (sandbox `namespace`/`name`/`uid`, container `name`). The agent must set
//! those labels.

pub mod logs;
pub mod portforward;
pub mod remotecommand;
pub mod remotecommand_spdy;
pub mod resolve;
pub mod resource_metrics;
pub mod spdy;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use runtime::cri::RuntimeService;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio::net::TcpListener;

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The default port of the kubelet API (`--kubelet-port`).
pub const DEFAULT_PORT: u16 = 10250;

/// The group whose members may use the kubelet API.
pub const ADMIN_GROUP: &str = "system:masters";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("TLS configuration of the kubelet server: {0}")]
    Tls(String),
    #[error("listening on {addr} for the kubelet API: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The rustls configuration of the kubelet server: its serving certificate,
/// and client certificates required and verified against the cluster CA.
pub fn tls_config(
    cert_pem: &str,
    key_pem: &str,
    client_ca_pem: &str,
) -> Result<Arc<ServerConfig>, Error> {
    let tls = |e: &dyn std::fmt::Display| Error::Tls(e.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(client_ca_pem.as_bytes()) {
        roots.add(ca.map_err(|e| tls(&e))?).map_err(|e| tls(&e))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| tls(&e))?;
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls(&e))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| tls(&e))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| tls(&e))?;
    // HTTP/1.1 only: upgrades (WebSocket, SPDY) need it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Starts the kubelet API on `addr` (port 0: any free port) with the
/// serving certificate `cert_pem`/`key_pem`, accepting clients whose
/// certificates `client_ca_pem` signed. Returns the bound address (the
/// port goes into the Node's `daemonEndpoints.kubeletEndpoint.Port`) and
/// the serving task.
///
/// A server's own agent gets its certificate from the server's PKI
/// (`apiserver::tls::Pki::issue_kubelet_serving_cert`) and `Pki::ca_cert_pem`.
pub async fn start(
    runtime: Arc<dyn RuntimeService>,
    addr: std::net::SocketAddr,
    cert_pem: &str,
    key_pem: &str,
    client_ca_pem: &str,
) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>), Error> {
    let tls = tls_config(cert_pem, key_pem, client_ca_pem)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Listen { addr, source: e })?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Listen { addr, source: e })?;
    let task = tokio::spawn(KubeletServer::new(runtime).serve(listener, tls));
    tracing::info!(%bound, "kubelet API listening");
    Ok((bound, task))
}

/// The kubelet API over `runtime`.
pub struct KubeletServer {
    runtime: Arc<dyn RuntimeService>,
    /// How often a followed log checks for new lines and whether its
    /// container still runs.
    pub follow_interval: Duration,
}

/// Who is calling, from the verified client certificate.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    pub user: String,
    pub groups: Vec<String>,
}

impl KubeletServer {
    pub fn new(runtime: Arc<dyn RuntimeService>) -> Arc<KubeletServer> {
        Arc::new(KubeletServer {
            runtime,
            follow_interval: Duration::from_millis(100),
        })
    }

    pub fn runtime(&self) -> &Arc<dyn RuntimeService> {
        &self.runtime
    }

    /// Serves TLS connections from `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, tls: Arc<ServerConfig>) {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "kubelet server: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let me = self.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let stream = match acceptor.accept(tcp).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "kubelet server: TLS handshake failed");
                        return;
                    }
                };
                let caller = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| caller_from_cert(c))
                    .unwrap_or_default();
                let svc = hyper::service::service_fn(move |req| {
                    let (me, caller) = (me.clone(), caller.clone());
                    async move { Ok::<_, Infallible>(me.handle(req, &caller).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .http1_only()
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await;
            });
        }
    }

    /// Answers one request of an authenticated `caller`.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        caller: &Caller,
    ) -> Response<Body> {
        if !caller.groups.iter().any(|g| g == ADMIN_GROUP) {
            let user = if caller.user.is_empty() {
                "system:anonymous"
            } else {
                caller.user.as_str()
            };
            return text(
                StatusCode::FORBIDDEN,
                format!(
                    "Forbidden (user={user}, verb={}, resource=nodes, subresource=proxy)",
                    verb(req.method())
                ),
            );
        }
        let path = req.uri().path().to_string();
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (req.method(), parts.as_slice()) {
            (&Method::GET, ["healthz"]) => text(StatusCode::OK, "ok".into()),
            (&Method::GET, ["metrics", "resource"]) => resource_metrics::serve(self).await,
            (&Method::GET, ["containerLogs", ns, pod, container]) => {
                let (ns, pod, container) = (ns.to_string(), pod.to_string(), container.to_string());
                logs::serve(self, &ns, &pod, &container, req.uri().query()).await
            }
            (&Method::GET | &Method::POST, [kind @ ("exec" | "attach"), ns, pod, container])
            | (&Method::GET | &Method::POST, [kind @ ("exec" | "attach"), ns, pod, _, container]) =>
            {
                let attach = *kind == "attach";
                let (ns, pod, container) = (ns.to_string(), pod.to_string(), container.to_string());
                remotecommand::serve(self, req, &ns, &pod, &container, attach).await
            }
            (&Method::GET | &Method::POST, ["portForward", ns, pod])
            | (&Method::GET | &Method::POST, ["portForward", ns, pod, _]) => {
                let (ns, pod) = (ns.to_string(), pod.to_string());
                portforward::serve(self, req, &ns, &pod).await
            }
            _ => text(StatusCode::NOT_FOUND, "404 page not found\n".into()),
        }
    }
}

fn verb(m: &Method) -> &'static str {
    match *m {
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "*",
    }
}

/// The user (CommonName) and groups (Organizations) of a verified client
/// certificate.
fn caller_from_cert(der: &CertificateDer<'_>) -> Option<Caller> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let subject = cert.subject();
    let user = subject
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .last()?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_string)
        .collect();
    Some(Caller { user, groups })
}

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

pub(crate) fn text(code: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// An error answer: a `metav1.Status` the API server passes on as it is.
pub(crate) fn status_error(code: StatusCode, reason: &str, message: String) -> Response<Body> {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    let mut resp = Response::new(full(serde_json::to_vec(&body).unwrap_or_default()));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// All values of `key` in a query string (`command` repeats).
pub(crate) fn query_all(query: Option<&str>, key: &str) -> Vec<String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// The first value of `key`.
pub(crate) fn query_get(query: Option<&str>, key: &str) -> Option<String> {
    query_all(query, key).into_iter().next()
}

/// A boolean query parameter as Go's `strconv.ParseBool` reads it.
pub(crate) fn query_flag(query: Option<&str>, key: &str) -> bool {
    matches!(
        query_get(query, key).as_deref(),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True")
    )
}
