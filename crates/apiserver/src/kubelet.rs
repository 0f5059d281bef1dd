//! `pods/log`, `pods/exec`, `pods/attach`, `pods/portforward` and
//! `nodes/proxy`: the API server finds the pod's node, reads the kubelet's
//! address from the Node (`status.addresses`, `status.daemonEndpoints.
//! kubeletEndpoint.Port`) and forwards the request to the kubelet over TLS
//! with its kubelet client certificate (`kube-apiserver-kubelet-client` in
//! `system:masters`), as upstream's pod `LogLocation` / `streamLocation` /
//! `ExecLocation` and `UpgradeAwareHandler` do. An upgraded answer (101:
//! WebSocket or SPDY) joins the two connections byte for byte.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, BodyStream, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use serde_json::Value;

use crate::server::Body;
use crate::status::{ApiError, ApiResult, Cause};

/// The user of the API server's client certificate for kubelets.
pub const KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";
/// The kubelet port when the Node does not say (`--kubelet-port`).
pub const DEFAULT_KUBELET_PORT: u16 = 10250;

/// How the API server reaches kubelets.
pub struct KubeletClient {
    tls: tokio_rustls::TlsConnector,
}

impl KubeletClient {
    /// `ca_pem` verifies kubelet serving certificates (their chain; a node
    /// reached by an address its certificate does not name is accepted, as
    /// upstream accepts any kubelet certificate without
    /// `--kubelet-certificate-authority`); `cert_pem`/`key_pem` authenticate
    /// the API server.
    pub fn new(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<KubeletClient, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots
                .add(c.map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        }
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| e.to_string())?;
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| e.to_string())?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly { inner }))
            .with_client_auth_cert(chain, key)
            .map_err(|e| e.to_string())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(KubeletClient {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }
}

/// Verifies that a kubelet's certificate chains to the cluster CA, whatever
/// names it carries.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn names(pod: &Value, list: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{list}"))
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|c| str_at(c, "/name").to_string()).collect())
        .unwrap_or_default()
}

/// The container a request means, as upstream's `ValidateContainer`: the
/// only one when the pod has one, else the one named, which must exist.
pub fn validate_container(pod: &Value, requested: Option<&str>) -> ApiResult<String> {
    let name = str_at(pod, "/metadata/name");
    let containers = names(pod, "containers");
    match requested.filter(|c| !c.is_empty()) {
        None => match containers.len() {
            1 => Ok(containers[0].clone()),
            0 => Err(ApiError::bad_request(format!(
                "pod {name} does not have a container"
            ))),
            _ => {
                let mut all = names(pod, "initContainers");
                all.extend(containers);
                all.extend(names(pod, "ephemeralContainers"));
                Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    all.join(" ")
                )))
            }
        },
        Some(c) => {
            let known = ["containers", "initContainers", "ephemeralContainers"]
                .iter()
                .any(|l| names(pod, l).iter().any(|n| n == c));
            if known {
                Ok(c.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
    }
}

/// Whether the container has logs to read, worded as the kubelet's
/// `validateContainerLogStatus` (a 400 to the client).
pub fn check_log_status(pod: &Value, container: &str, previous: bool) -> ApiResult<()> {
    let pod_name = str_at(pod, "/metadata/name");
    let status = [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .filter_map(|l| {
        pod.pointer(&format!("/status/{l}"))
            .and_then(Value::as_array)
    })
    .flatten()
    .find(|s| str_at(s, "/name") == container);
    let err = |m: String| Err(ApiError::bad_request(m));
    let Some(s) = status else {
        return err(format!(
            "container {container:?} in pod {pod_name:?} is not available"
        ));
    };
    let last_terminated_id = str_at(s, "/lastState/terminated/containerID");
    let has_last_terminated = s.pointer("/lastState/terminated").is_some();
    if previous {
        if last_terminated_id.is_empty() {
            return err(format!(
                "previous terminated container {container:?} in pod {pod_name:?} not found"
            ));
        }
        return Ok(());
    }
    if s.pointer("/state/running").is_some() {
        return Ok(());
    }
    if s.pointer("/state/terminated").is_some() {
        if str_at(s, "/state/terminated/containerID").is_empty() && last_terminated_id.is_empty() {
            return err(format!(
                "container {container:?} in pod {pod_name:?} is terminated"
            ));
        }
        return Ok(());
    }
    if has_last_terminated {
        if last_terminated_id.is_empty() {
            return err(format!(
                "container {container:?} in pod {pod_name:?} is terminated"
            ));
        }
        return Ok(());
    }
    if s.pointer("/state/waiting").is_some() {
        let why = match str_at(s, "/state/waiting/reason") {
            "ErrImagePull" => "image can't be pulled".to_string(),
            "ImagePullBackOff" => "trying and failing to pull image".to_string(),
            r => r.to_string(),
        };
        return err(format!(
            "container {container:?} in pod {pod_name:?} is waiting to start: {why}"
        ));
    }
    err(format!(
        "container {container:?} in pod {pod_name:?} is waiting to start - no logs yet"
    ))
}

/// `PodLogOptions` checks, as upstream's `ValidatePodLogOptions` (422).
pub fn validate_log_options(
    pods: &crate::resources::ResourceInfo,
    name: &str,
    query: &crate::request::Query,
) -> ApiResult<()> {
    let mut causes = Vec::new();
    let int = |k: &str| -> ApiResult<Option<i64>> {
        match query.get(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "{k}: strconv.ParseInt: parsing {v:?}: invalid syntax"
                ))
            }),
        }
    };
    let invalid = |field: &str, value: i64, msg: &str| Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {value}: {msg}"),
        field: field.into(),
    };
    if let Some(n) = int("tailLines")? {
        if n < 0 {
            causes.push(invalid(
                "tailLines",
                n,
                "must be greater than or equal to 0",
            ));
        }
    }
    if let Some(n) = int("limitBytes")? {
        if n < 1 {
            causes.push(invalid("limitBytes", n, "must be greater than 0"));
        }
    }
    let since_seconds = int("sinceSeconds")?;
    let since_time = query.get("sinceTime").filter(|t| !t.is_empty());
    if since_seconds.is_some() && since_time.is_some() {
        causes.push(Cause {
            reason: "FieldValueForbidden".into(),
            message: "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"
                .into(),
            field: String::new(),
        });
    }
    if let Some(n) = since_seconds {
        if n < 1 {
            causes.push(invalid("sinceSeconds", n, "must be greater than 0"));
        }
    }
    if let Some(t) = since_time {
        if chrono::DateTime::parse_from_rfc3339(t).is_err() {
            return Err(ApiError::bad_request(format!(
                "sinceTime: parsing time {t:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse"
            )));
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        let mut e = ApiError::invalid(pods, name, causes);
        e.message = e.message.replacen("Pod ", "PodLogOptions ", 1);
        if let Some(d) = e.details.as_mut() {
            d["kind"] = "PodLogOptions".into();
        }
        Err(e)
    }
}

/// Where a node's kubelet listens: the first of its InternalIP, Hostname,
/// ExternalIP addresses (any other after), and its kubelet endpoint port.
pub fn node_endpoint(node: &Value) -> ApiResult<(String, u16)> {
    let name = str_at(node, "/metadata/name");
    let addresses: Vec<(&str, &str)> = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| (str_at(x, "/type"), str_at(x, "/address")))
                .filter(|(_, a)| !a.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let address = [
        "InternalIP",
        "Hostname",
        "ExternalIP",
        "InternalDNS",
        "ExternalDNS",
    ]
    .iter()
    .find_map(|t| addresses.iter().find(|(k, _)| k == t).map(|(_, a)| *a))
    .or_else(|| addresses.first().map(|(_, a)| *a))
    .ok_or_else(|| {
        ApiError::bad_request(format!("node {name} has no addresses to reach its kubelet"))
    })?;
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0 && *p <= u16::MAX as u64)
        .map(|p| p as u16)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Ok((address.to_string(), port))
}

/// Request headers passed on to the kubelet: what an upgrade negotiates and
/// what describes the body.
const FORWARDED_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "x-stream-protocol-version",
    "accept",
    "content-type",
    "user-agent",
];

/// Answer headers passed back to the client.
const RETURNED_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "x-stream-protocol-version",
    "content-type",
];

/// A request for a kubelet: what the client sent, re-addressed.
pub struct KubeletRequest<'a> {
    pub method: Method,
    /// The kubelet's path and query (`/containerLogs/ns/pod/c?follow=true`).
    pub path_and_query: String,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
    /// The client's connection, for an answer that switches protocols.
    pub upgrade: Option<hyper::upgrade::OnUpgrade>,
}

/// Sends `req` to the kubelet at `host:port` and answers with its
/// response: streamed, or, when it switches protocols, the 101 with both
/// connections joined.
pub async fn forward(
    client: &KubeletClient,
    host: &str,
    port: u16,
    req: KubeletRequest<'_>,
) -> ApiResult<Response<Body>> {
    let KubeletRequest {
        method,
        path_and_query,
        headers,
        body,
        upgrade: on_upgrade,
    } = req;
    let dial = |e: String| {
        ApiError::new(
            500,
            "",
            format!("error dialing backend: dial tcp {host}:{port}: {e}"),
        )
    };
    let connect_error = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
        std::io::ErrorKind::HostUnreachable => "connect: no route to host".to_string(),
        std::io::ErrorKind::NetworkUnreachable => "connect: network is unreachable".to_string(),
        _ => e.to_string(),
    };
    let tcp = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    .map_err(|_| dial("i/o timeout".into()))?
    .map_err(|e| dial(connect_error(e)))?;
    let _ = tcp.set_nodelay(true);
    let server_name = ServerName::try_from(host.to_string()).map_err(|e| dial(e.to_string()))?;
    let tls = client
        .tls
        .connect(server_name, tcp)
        .await
        .map_err(|e| dial(format!("tls: {e}")))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| dial(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut req = Request::builder()
        .method(method)
        .uri(path_and_query.as_str())
        .header(header::HOST, format!("{host}:{port}"));
    for name in FORWARDED_HEADERS {
        for v in headers.get_all(*name) {
            req = req.header(*name, v.clone());
        }
    }
    let req = req.body(Full::new(body)).map_err(ApiError::internal)?;
    let mut resp = sender.send_request(req).await.map_err(|e| {
        ApiError::new(
            500,
            "InternalError",
            format!("error trying to reach service: {e}"),
        )
    })?;
    let status = resp.status();
    let mut out_headers = HeaderMap::new();
    for name in RETURNED_HEADERS {
        for v in resp.headers().get_all(*name) {
            out_headers.append(*name, v.clone());
        }
    }
    if status == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = on_upgrade else {
            return Err(ApiError::bad_request("the request cannot be upgraded"));
        };
        let kubelet_upgrade = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            let (Ok(client_io), Ok(kubelet_io)) = (client_upgrade.await, kubelet_upgrade.await)
            else {
                return;
            };
            let mut a = TokioIo::new(client_io);
            let mut b = TokioIo::new(kubelet_io);
            let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
        });
        let mut out = Response::new(Full::new(Bytes::new()).boxed_unsync());
        *out.status_mut() = status;
        *out.headers_mut() = out_headers;
        return Ok(out);
    }
    let stream = BodyStream::new(resp.into_body())
        .take_while(|r| std::future::ready(r.is_ok()))
        .filter_map(|r| {
            std::future::ready(match r {
                Ok(f) => f
                    .into_data()
                    .ok()
                    .map(|d| Ok::<_, Infallible>(Frame::data(d))),
                Err(_) => None,
            })
        });
    let mut out = Response::new(StreamBody::new(stream).boxed_unsync());
    *out.status_mut() = status;
    if !out_headers.contains_key(header::CONTENT_TYPE) {
        out_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    *out.headers_mut() = out_headers;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": { "name": "web" },
            "spec": {
                "initContainers": [{ "name": "init" }],
                "containers": [{ "name": "a" }, { "name": "b" }]
            },
            "status": {
                "containerStatuses": [
                    { "name": "a", "state": { "waiting": { "reason": "ContainerCreating" } } },
                    { "name": "b", "state": { "running": {} },
                      "lastState": { "terminated": { "containerID": "runc://x", "exitCode": 1 } } }
                ]
            }
        })
    }

    #[test]
    fn a_pod_with_several_containers_needs_a_container_name() {
        let e = validate_container(&pod(), None).unwrap_err();
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            "a container name must be specified for pod web, choose one of: [init a b]"
        );
        assert_eq!(validate_container(&pod(), Some("b")).unwrap(), "b");
        assert_eq!(
            validate_container(&pod(), Some("x")).unwrap_err().message,
            "container x is not valid for pod web"
        );
        let single =
            json!({ "metadata": { "name": "p" }, "spec": { "containers": [{ "name": "only" }] } });
        assert_eq!(validate_container(&single, None).unwrap(), "only");
    }

    #[test]
    fn logs_of_a_container_not_started_yet_say_why() {
        let e = check_log_status(&pod(), "a", false).unwrap_err();
        assert_eq!(
            e.message,
            "container \"a\" in pod \"web\" is waiting to start: ContainerCreating"
        );
        assert!(check_log_status(&pod(), "b", false).is_ok());
        assert!(check_log_status(&pod(), "b", true).is_ok());
        assert_eq!(
            check_log_status(&pod(), "a", true).unwrap_err().message,
            "previous terminated container \"a\" in pod \"web\" not found"
        );
        assert_eq!(
            check_log_status(&pod(), "init", false).unwrap_err().message,
            "container \"init\" in pod \"web\" is not available"
        );
    }

    #[test]
    fn log_options_are_validated_as_upstream() {
        let pods = crate::resources::lookup("", "v1", "pods").unwrap();
        let q = crate::request::Query::parse(Some("tailLines=-1"));
        let e = validate_log_options(pods, "web", &q).unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "PodLogOptions \"web\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
        );
        let q = crate::request::Query::parse(Some("tailLines=3&limitBytes=10&sinceSeconds=5"));
        assert!(validate_log_options(pods, "web", &q).is_ok());
    }

    #[test]
    fn the_kubelet_is_reached_at_the_internal_ip_and_the_advertised_port() {
        let node = json!({
            "metadata": { "name": "n1" },
            "status": {
                "addresses": [{ "type": "Hostname", "address": "n1" }, { "type": "InternalIP", "address": "10.1.2.3" }],
                "daemonEndpoints": { "kubeletEndpoint": { "Port": 12345 } }
            }
        });
        assert_eq!(
            node_endpoint(&node).unwrap(),
            ("10.1.2.3".to_string(), 12345)
        );
        let bare = json!({ "metadata": { "name": "n2" }, "status": { "addresses": [{ "type": "Hostname", "address": "n2" }] } });
        assert_eq!(node_endpoint(&bare).unwrap(), ("n2".to_string(), 10250));
    }
}
