//! The HTTP GET of httpGet probes and httpGet lifecycle hooks (upstream
//! `pkg/probe/http`): HTTP/1.1 or HTTPS without certificate checks, no
//! keep-alive, `User-Agent: kube-probe/1.32` (`kube-lifecycle/1.32` for
//! hooks), `Accept: */*`, the action's httpHeaders (a `Host` header sets
//! the request's host), redirects followed while they stay on the same
//! host (at most 10), and at most 10 KiB of the body read. Errors are
//! worded as Go's `net/http` client words them, since users compare them
//! with a real cluster's events.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Container, HTTPGetAction};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::{dial_error, port_number, Outcome};

/// Upstream `maxRespBodyLength`.
const MAX_BODY: usize = 10 * 1024;
const MAX_REDIRECTS: usize = 10;

/// Where a GET goes: `scheme://host:port/path?query`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, as the action gives them; empty means `/`.
    pub path: String,
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.host_port(), self.path)
    }
}

impl Url {
    /// Go's `net.JoinHostPort`.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// A redirect's `Location`, resolved against this URL.
    fn join(&self, location: &str) -> Option<Url> {
        let lower = location.to_ascii_lowercase();
        let (https, rest) = if lower.starts_with("http://") {
            (false, &location[7..])
        } else if lower.starts_with("https://") {
            (true, &location[8..])
        } else if let Some(rest) = location.strip_prefix("//") {
            (self.https, rest)
        } else {
            let path = if location.starts_with('/') {
                location.to_string()
            } else if location.starts_with('?') {
                let base = self.path.split('?').next().unwrap_or_default();
                format!("{base}{location}")
            } else {
                let base = self.path.split('?').next().unwrap_or_default();
                let dir = base.rsplit_once('/').map_or("", |(d, _)| d);
                format!("{dir}/{location}")
            };
            return Some(Url {
                path,
                ..self.clone()
            });
        };
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let default_port = if https { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']')?;
            let port = after.strip_prefix(':').map(str::parse).transpose().ok()?;
            (host.to_string(), port.unwrap_or(default_port))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().ok()?),
                None => (authority.to_string(), default_port),
            }
        };
        Some(Url {
            https,
            host,
            port,
            path: path.to_string(),
        })
    }
}

/// One GET as upstream `NewRequestForHTTPGetAction` builds it.
#[derive(Clone, Debug)]
pub struct Request {
    pub url: Url,
    /// Header lines in order; `Host` is taken out into [`Request::host`].
    pub headers: Vec<(String, String)>,
    pub host: Option<String>,
}

impl Request {
    /// `purpose` is `probe` or `lifecycle` (the User-Agent's
    /// `kube-<purpose>/1.32`); an empty host is the pod's IP.
    pub fn for_action(
        action: &HTTPGetAction,
        container: &Container,
        pod_ip: &str,
        purpose: &str,
    ) -> Result<Request, String> {
        let host = action
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| pod_ip.to_string());
        let port = port_number(&action.port, container).ok_or_else(|| {
            format!(
                "couldn't find port: {:?} in {}",
                action.port, container.name
            )
        })?;
        let mut path = action.path.clone().unwrap_or_default();
        if !path.is_empty() && !path.starts_with('/') {
            path.insert(0, '/');
        }
        let https = action
            .scheme
            .as_deref()
            .unwrap_or("HTTP")
            .eq_ignore_ascii_case("https");
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut host_header = None;
        for h in action.http_headers.iter().flatten() {
            if h.name.eq_ignore_ascii_case("host") {
                host_header.get_or_insert_with(|| h.value.clone());
            } else {
                headers.push((h.name.clone(), h.value.clone()));
            }
        }
        let has = |headers: &[(String, String)], name: &str| {
            headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        if !has(&headers, "User-Agent") {
            headers.push(("User-Agent".into(), format!("kube-{purpose}/1.32")));
        }
        if !has(&headers, "Accept") {
            headers.push(("Accept".into(), "*/*".into()));
        } else {
            // An Accept header given empty is left out.
            headers.retain(|(n, v)| !(n.eq_ignore_ascii_case("accept") && v.is_empty()));
        }
        Ok(Request {
            url: Url {
                https,
                host,
                port,
                path,
            },
            headers,
            host: host_header.filter(|h| !h.is_empty()),
        })
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// At most 10 KiB of it.
    pub body: String,
}

/// Upstream `DoHTTPProbe`: 200-299 succeed, 300-399 (a redirect not
/// followed) succeed with a warning, anything else fails.
pub async fn probe(req: &Request, timeout: Duration) -> Outcome {
    match get(req, Some(timeout)).await {
        Err(e) => Outcome::Failure(e),
        Ok(r) if (200..300).contains(&r.status) => Outcome::Success(r.body),
        Ok(r) if (300..400).contains(&r.status) => Outcome::Warning(format!(
            "Probe terminated redirects, Response body: {}",
            r.body
        )),
        Ok(r) => Outcome::Failure(format!("HTTP probe failed with statuscode: {}", r.status)),
    }
}

/// The GET with its redirects, within `timeout` altogether (Go's
/// `Client.Timeout`). Errors read as Go's `*url.Error`.
pub async fn get(req: &Request, timeout: Option<Duration>) -> Result<Response, String> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut url = req.url.clone();
    let mut host = req.host.clone();
    let mut hops = 0;
    loop {
        let at = |e: String| format!("Get {:?}: {e}", url.to_string());
        let sent = within(deadline, send(&url, host.as_deref(), &req.headers)).await;
        let (status, location, body) =
            match sent {
                None => return Err(at(
                    "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
                        .into(),
                )),
                Some(r) => r.map_err(at)?,
            };
        let next = location
            .filter(|_| matches!(status, 301 | 302 | 303 | 307 | 308))
            .and_then(|loc| Some((url.join(&loc)?, loc)));
        match next {
            // Another host: the redirect response is the answer.
            Some((to, loc)) if to.host.eq_ignore_ascii_case(&req.url.host) => {
                hops += 1;
                if hops >= MAX_REDIRECTS {
                    return Err(format!("Get {loc:?}: stopped after 10 redirects"));
                }
                // A Host override survives a relative redirect only.
                let absolute = loc.contains("://");
                if absolute {
                    host = None;
                }
                url = to;
                continue;
            }
            _ => {}
        }
        let body = match within(deadline, read_body(body)).await {
            Some(Ok(b)) => b,
            Some(Err(e)) => return Err(at(e)),
            None => {
                return Err(at(
                    "context deadline exceeded (Client.Timeout or context cancellation while reading body)"
                        .into(),
                ))
            }
        };
        return Ok(Response {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
}

async fn within<T>(
    deadline: Option<Instant>,
    f: impl std::future::Future<Output = T>,
) -> Option<T> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, f).await.ok(),
        None => Some(f.await),
    }
}

/// A response up to its headers; the body is read by [`read_body`], and
/// the connection task ends with it.
struct Body {
    incoming: hyper::body::Incoming,
    _conn: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn send(
    url: &Url,
    host: Option<&str>,
    headers: &[(String, String)],
) -> Result<(u16, Option<String>, Body), String> {
    let target = url.host_port();
    let tcp = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("dial tcp {target}: {}", dial_error(&e)))?;
    if !url.https {
        return exchange(tcp, url, host, headers).await;
    }
    let name = match url.host.parse::<std::net::IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(url.host.clone()).map_err(|e| e.to_string())?,
    };
    let tls = tokio_rustls::TlsConnector::from(tls_config())
        .connect(name, tcp)
        .await
        .map_err(tls_error)?;
    exchange(tls, url, host, headers).await
}

async fn exchange<I>(
    io: I,
    url: &Url,
    host: Option<&str>,
    headers: &[(String, String)],
) -> Result<(u16, Option<String>, Body), String>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| hyper_error(&e))?;
    let conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let path = if url.path.is_empty() { "/" } else { &url.path };
    let mut builder = http::Request::get(path).header(
        http::header::HOST,
        host.map_or_else(|| url.host_port(), str::to_string),
    );
    for (name, value) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder = builder.header(http::header::CONNECTION, "close");
    let request = builder.body(Empty::new()).map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| hyper_error(&e))?;
    let location = response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_string);
    let status = response.status().as_u16();
    Ok((
        status,
        location,
        Body {
            incoming: response.into_body(),
            _conn: conn,
        },
    ))
}

async fn read_body(mut body: Body) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while out.len() < MAX_BODY {
        match body.incoming.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let room = MAX_BODY - out.len();
                    out.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Some(Err(e)) => return Err(hyper_error(&e)),
        }
    }
    Ok(out)
}

/// hyper's errors in Go's words where they differ.
fn hyper_error(e: &hyper::Error) -> String {
    if e.is_incomplete_message() {
        return "EOF".into();
    }
    match std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>()) {
        Some(io) => io.to_string(),
        None => e.to_string(),
    }
}

fn tls_error(e: std::io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        // A plain HTTP answer to the ClientHello.
        Some(rustls::Error::InvalidMessage(_)) => {
            "http: server gave HTTP response to HTTPS client".into()
        }
        Some(rustls::Error::AlertReceived(alert)) => {
            format!("remote error: tls: {}", format!("{alert:?}").to_lowercase())
        }
        Some(other) => format!("tls: {other}"),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => "EOF".into(),
        None => e.to_string(),
    }
}

/// Probes and hooks do not verify the server's certificate (upstream
/// `InsecureSkipVerify: true`); the handshake's signatures still are.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

type Dss = rustls::DigitallySignedStruct;
type Signed = Result<HandshakeSignatureValid, rustls::Error>;

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &Dss) -> Signed {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &Dss) -> Signed {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
