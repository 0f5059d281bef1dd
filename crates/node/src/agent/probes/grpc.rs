//! gRPC probes (upstream `pkg/probe/grpc`): `grpc.health.v1.Health/Check`
//! over HTTP/2 without TLS, the request and response encoded by hand
//! (`HealthCheckRequest{service = 1}`, `HealthCheckResponse{status = 1}`).
//! As grpc-go dialling with `WithBlock`, a connection that cannot be made
//! is retried until the timeout; the messages are upstream's.

use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::time::Instant;

use super::Outcome;
use crate::agent::backoff::go_duration;

const SERVING: u64 = 1;
/// grpc-go's first reconnection back-off.
const RECONNECT: Duration = Duration::from_secs(1);

/// Runs the health check of `service` on `host:port` within `timeout`.
pub async fn probe(host: &str, port: u16, service: &str, timeout: Duration) -> Outcome {
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let deadline = Instant::now() + timeout;
    let Some(mut sender) = connect(host, port, deadline).await else {
        return Outcome::Failure(format!(
            "timeout: failed to connect service {addr:?} within {}: context deadline exceeded",
            go_duration(timeout)
        ));
    };
    let rpc_timeout = format!(
        "{}m",
        deadline
            .saturating_duration_since(Instant::now())
            .as_millis()
    );
    let request = http::Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .header(http::header::USER_AGENT, "kube-probe/1.32")
        .header("grpc-timeout", rpc_timeout)
        .body(Full::new(Bytes::from(frame(&encode_request(service)))))
        .expect("a valid request");
    let call = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| Status::unavailable(format!("connection error: {e}")))?;
        let (parts, body) = response.into_parts();
        if parts.status != http::StatusCode::OK {
            return Err(Status::from_http(parts.status));
        }
        // A trailers-only response carries the status in its headers.
        if let Some(status) = Status::from_headers(&parts.headers) {
            if status.code != 0 {
                return Err(status);
            }
        }
        let collected = body
            .collect()
            .await
            .map_err(|e| Status::unavailable(format!("connection error: {e}")))?;
        let trailers = collected.trailers().cloned();
        let data = collected.to_bytes();
        let status = trailers
            .as_ref()
            .and_then(Status::from_headers)
            .or_else(|| Status::from_headers(&parts.headers))
            .unwrap_or_else(|| Status {
                code: 13,
                message: "server closed the stream without sending trailers".into(),
            });
        if status.code != 0 {
            return Err(status);
        }
        decode_response(&data).ok_or_else(|| Status {
            code: 13,
            message: "grpc: failed to unmarshal the received message".into(),
        })
    };
    let result = match tokio::time::timeout_at(deadline, call).await {
        Ok(r) => r,
        Err(_) => Err(Status {
            code: 4,
            message: "context deadline exceeded".into(),
        }),
    };
    match result {
        Ok(SERVING) => Outcome::Success("service healthy".into()),
        Ok(status) => Outcome::Failure(format!(
            "service unhealthy (responded with {:?})",
            serving_status_name(status)
        )),
        Err(s) if s.code == 12 => Outcome::Failure(format!(
            "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
            s.message
        )),
        Err(s) if s.code == 4 => Outcome::Failure(format!(
            "timeout: health rpc did not complete within {}",
            go_duration(timeout)
        )),
        Err(s) => Outcome::Failure(format!(
            "error: health rpc probe failed: rpc error: code = {} desc = {}",
            code_name(s.code),
            s.message
        )),
    }
}

type Sender = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

/// An HTTP/2 connection, retried as grpc-go does until `deadline`.
async fn connect(host: &str, port: u16, deadline: Instant) -> Option<Sender> {
    loop {
        let attempt = async {
            let tcp = tokio::net::TcpStream::connect((host, port)).await.ok()?;
            let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                .handshake(TokioIo::new(tcp))
                .await
                .ok()?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Some(sender)
        };
        if let Ok(Some(sender)) = tokio::time::timeout_at(deadline, attempt).await {
            return Some(sender);
        }
        let retry = Instant::now() + RECONNECT;
        if retry >= deadline {
            tokio::time::sleep_until(deadline).await;
            return None;
        }
        tokio::time::sleep_until(retry).await;
    }
}

/// A gRPC status: code and message.
#[derive(Debug, PartialEq)]
struct Status {
    code: u32,
    message: String,
}

impl Status {
    fn unavailable(message: String) -> Status {
        Status { code: 14, message }
    }

    fn from_headers(headers: &http::HeaderMap) -> Option<Status> {
        let code = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
        let message = headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .map(percent_decode)
            .unwrap_or_default();
        Some(Status { code, message })
    }

    /// grpc-go's mapping of a non-200 HTTP status.
    fn from_http(status: http::StatusCode) -> Status {
        let code = match status.as_u16() {
            400 => 13,
            401 => 16,
            403 => 7,
            404 => 12,
            429 | 502 | 503 | 504 => 14,
            _ => 2,
        };
        Status {
            code,
            message: format!(
                "unexpected HTTP status code received from server: {} ({})",
                status.as_u16(),
                status.canonical_reason().unwrap_or_default()
            ),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// grpc-go's `codes.Code.String()`.
fn code_name(code: u32) -> String {
    let names = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    match names.get(code as usize) {
        Some(name) => name.to_string(),
        None => format!("Code({code})"),
    }
}

/// `HealthCheckResponse_ServingStatus.String()`.
fn serving_status_name(status: u64) -> String {
    match status {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        n => n.to_string(),
    }
}

/// `HealthCheckRequest{service}`: field 1, length-delimited.
fn encode_request(service: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if !service.is_empty() {
        out.push(0x0a);
        put_varint(&mut out, service.len() as u64);
        out.extend_from_slice(service.as_bytes());
    }
    out
}

/// A gRPC message on the wire: uncompressed flag, length, message.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        if !buf.has_remaining() {
            return None;
        }
        let b = buf.get_u8();
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The status of a framed `HealthCheckResponse` (absent field: UNKNOWN).
fn decode_response(data: &[u8]) -> Option<u64> {
    let mut buf = data;
    if buf.len() < 5 || buf[0] != 0 {
        return None;
    }
    buf.advance(1);
    let len = buf.get_u32() as usize;
    let mut msg = buf.get(..len)?;
    let mut status = 0;
    while msg.has_remaining() {
        let key = get_varint(&mut msg)?;
        match key & 7 {
            0 => {
                let v = get_varint(&mut msg)?;
                if key >> 3 == 1 {
                    status = v;
                }
            }
            1 => msg.advance(8.min(msg.len())),
            2 => {
                let n = get_varint(&mut msg)? as usize;
                msg = msg.get(n..)?;
            }
            5 => msg.advance(4.min(msg.len())),
            _ => return None,
        }
    }
    Some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_names_the_service_in_field_one() {
        assert_eq!(encode_request(""), Vec::<u8>::new());
        assert_eq!(encode_request("db"), vec![0x0a, 2, b'd', b'b']);
        assert_eq!(frame(&[1, 2]), vec![0, 0, 0, 0, 2, 1, 2]);
    }

    #[test]
    fn the_response_status_is_field_one() {
        assert_eq!(decode_response(&frame(&[0x08, 1])), Some(SERVING));
        assert_eq!(decode_response(&frame(&[0x08, 2])), Some(2));
        assert_eq!(decode_response(&frame(&[])), Some(0));
        // Unknown fields are skipped.
        assert_eq!(decode_response(&frame(&[0x12, 1, b'x', 0x08, 3])), Some(3));
        assert_eq!(decode_response(&[0, 0, 0]), None);
        assert_eq!(serving_status_name(2), "NOT_SERVING");
    }

    #[test]
    fn statuses_read_as_grpc_go_prints_them() {
        assert_eq!(code_name(5), "NotFound");
        assert_eq!(code_name(99), "Code(99)");
        assert_eq!(percent_decode("unknown%20service%"), "unknown service%");
        let s = Status::from_http(http::StatusCode::NOT_FOUND);
        assert_eq!(s.code, 12);
        assert_eq!(
            s.message,
            "unexpected HTTP status code received from server: 404 (Not Found)"
        );
    }

    #[tokio::test]
    async fn a_closed_port_times_out_as_a_failed_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let started = std::time::Instant::now();
        let out = probe("127.0.0.1", port, "", Duration::from_secs(1)).await;
        assert!(started.elapsed() >= Duration::from_secs(1));
        let Outcome::Failure(msg) = out else {
            panic!("{out:?}")
        };
        assert_eq!(
            msg,
            format!("timeout: failed to connect service \"127.0.0.1:{port}\" within 1s: context deadline exceeded")
        );
    }
}
