//! `/portForward/{ns}/{pod}`: SPDY/3.1 `portforward.k8s.io`, as upstream's
//! kubelet serves it (`pkg/kubelet/cri/streaming/portforward/httpstream.go`).
//! The client opens a pair of streams per forwarded connection, both with
//! headers `port` and `requestid`: `streamtype: error` (the server writes a
//! failure there, then closes it) and `streamtype: data` (the connection's
//! bytes). The SPDY connection runs either on a plain HTTP upgrade
//! (`Upgrade: SPDY/3.1`, `X-Stream-Protocol-Version: portforward.k8s.io`) or
//! inside a WebSocket whose binary messages carry the SPDY bytes
//! (subprotocol `SPDY/3.1+portforward.k8s.io`, kubectl 1.32's default).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::remotecommand::{accept, channel_message, is_websocket, negotiate, upgraded_websocket};
use super::resolve::{self, ResolveError};
use super::spdy::{self, Frame};
use super::{full, query_all, status_error, Body, KubeletServer};

pub const PROTOCOL: &str = "portforward.k8s.io";
pub const WEBSOCKET_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";
/// The older WebSocket port-forward (kube-rs, client libraries): the ports
/// in the query, channel `2i` carries port `i`'s data and `2i+1` its
/// errors; the server first sends each channel its port (2 bytes, little
/// endian).
pub const CHANNELS_V4: &str = "v4.channel.k8s.io";

/// Opens a connection to a port of the pod.
pub type Connector = Arc<
    dyn Fn(u16) -> Pin<Box<dyn Future<Output = std::io::Result<TcpStream>> + Send>> + Send + Sync,
>;

pub async fn serve(
    server: Arc<KubeletServer>,
    mut req: Request<Incoming>,
    ns: &str,
    pod: &str,
) -> Response<Body> {
    let rt = server.runtime().clone();
    let sandbox = match resolve::ready_sandbox(rt.as_ref(), ns, pod).await {
        Ok(s) => s,
        Err(e @ ResolveError::SandboxNotFound { .. }) => {
            return status_error(StatusCode::NOT_FOUND, "NotFound", e.to_string())
        }
        Err(e) => {
            return status_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                e.to_string(),
            )
        }
    };
    let pod_name = pod.to_string();
    let sandbox_id = sandbox.id.clone();
    let connector: Connector = Arc::new(move |port| {
        let (rt, id) = (rt.clone(), sandbox_id.clone());
        Box::pin(async move {
            rt.port_forward(&id, port)
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
        })
    });
    if is_websocket(&req) {
        let Some(protocol) = negotiate(&req, &[WEBSOCKET_TUNNEL, CHANNELS_V4]) else {
            return status_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("requested protocol(s) are not supported: the server supports [{WEBSOCKET_TUNNEL} {CHANNELS_V4}]"),
            );
        };
        let ports = if protocol == CHANNELS_V4 {
            match channel_ports(req.uri().query()) {
                Ok(p) => p,
                Err(e) => return status_error(StatusCode::BAD_REQUEST, "BadRequest", e),
            }
        } else {
            Vec::new()
        };
        let resp = accept(&req, &protocol);
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Some(ws) = upgraded_websocket(on_upgrade).await {
                if protocol == CHANNELS_V4 {
                    channels(ws, connector, pod_name, ports).await;
                } else {
                    tunnel(ws, connector, pod_name).await;
                }
            }
        });
        return resp;
    }
    let spdy_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("SPDY/3.1"));
    let offers_protocol = req
        .headers()
        .get_all("X-Stream-Protocol-Version")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("").split(','))
        .any(|p| p.trim() == PROTOCOL);
    if !spdy_upgrade || !offers_protocol {
        return status_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("unable to upgrade: the server supports SPDY/3.1 ({PROTOCOL}) and WebSocket ({WEBSOCKET_TUNNEL})"),
        );
    }
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    h.insert(
        "X-Stream-Protocol-Version",
        HeaderValue::from_static(PROTOCOL),
    );
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let (mut rd, mut wr) = tokio::io::split(TokioIo::new(upgraded));
        let (in_tx, in_rx) = mpsc::channel::<Bytes>(32);
        let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(32);
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if in_tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let writer = tokio::spawn(async move {
            while let Some(b) = out_rx.recv().await {
                if wr.write_all(&b).await.is_err() {
                    return;
                }
            }
            let _ = wr.shutdown().await;
        });
        serve_connection(in_rx, out_tx, connector, pod_name).await;
        reader.abort();
        let _ = writer.await;
    });
    resp
}

/// SPDY inside a WebSocket: each binary message carries SPDY bytes.
pub async fn tunnel<S>(ws: tokio_tungstenite::WebSocketStream<S>, connector: Connector, pod: String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut incoming) = ws.split();
    let (in_tx, in_rx) = mpsc::channel::<Bytes>(32);
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(32);
    let reader = tokio::spawn(async move {
        while let Some(Ok(m)) = incoming.next().await {
            let b = match m {
                Message::Binary(b) => b,
                Message::Close(_) => return,
                _ => continue,
            };
            if in_tx.send(b).await.is_err() {
                return;
            }
        }
    });
    let writer = tokio::spawn(async move {
        while let Some(b) = out_rx.recv().await {
            if sink.send(Message::Binary(b)).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    serve_connection(in_rx, out_tx, connector, pod).await;
    reader.abort();
    let _ = writer.await;
}

/// A forwarded connection's pair of streams, as they arrive.
#[derive(Default)]
struct Pair {
    port: Option<u16>,
    error_stream: Option<u32>,
    data_stream: Option<u32>,
    data_rx: Option<mpsc::Receiver<Bytes>>,
}

/// Serves one SPDY connection whose bytes arrive on `input` and leave on
/// `output`, until either side ends.
pub async fn serve_connection(
    mut input: mpsc::Receiver<Bytes>,
    output: mpsc::Sender<Bytes>,
    connector: Connector,
    pod: String,
) {
    let (frames_tx, mut frames_rx) = mpsc::channel::<Frame>(64);
    let encoder = tokio::spawn(async move {
        let mut writer = spdy::Writer::default();
        while let Some(f) = frames_rx.recv().await {
            let mut out = BytesMut::new();
            writer.encode(&f, &mut out);
            if output.send(out.freeze()).await.is_err() {
                return;
            }
        }
    });
    let mut reader = spdy::Reader::default();
    let mut buf = BytesMut::new();
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    // Client data for each data stream, on to its connection task.
    let mut data_streams: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
    let mut last_stream = 0;
    'conn: while let Some(chunk) = input.recv().await {
        buf.extend_from_slice(&chunk);
        loop {
            let frame = match reader.decode(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "port-forward: bad SPDY frame");
                    let _ = frames_tx
                        .send(Frame::GoAway {
                            last_stream_id: last_stream,
                            status: 1,
                        })
                        .await;
                    break 'conn;
                }
            };
            match frame {
                Frame::SynStream {
                    stream_id, headers, ..
                } => {
                    last_stream = stream_id;
                    let kind = Frame::header(&headers, "streamtype")
                        .unwrap_or("")
                        .to_string();
                    let port = Frame::header(&headers, "port").and_then(|p| p.parse::<u16>().ok());
                    let request_id = Frame::header(&headers, "requestid")
                        .map(str::to_string)
                        .unwrap_or_else(|| stream_id.to_string());
                    if !matches!(kind.as_str(), "error" | "data") || port.is_none() {
                        let _ = frames_tx
                            .send(Frame::RstStream {
                                stream_id,
                                status: spdy::PROTOCOL_ERROR,
                            })
                            .await;
                        continue;
                    }
                    let _ = frames_tx
                        .send(Frame::SynReply {
                            stream_id,
                            fin: false,
                            headers: vec![],
                        })
                        .await;
                    let pair = pairs.entry(request_id.clone()).or_default();
                    pair.port = port;
                    if kind == "error" {
                        pair.error_stream = Some(stream_id);
                    } else {
                        let (tx, rx) = mpsc::channel(64);
                        data_streams.insert(stream_id, tx);
                        pair.data_stream = Some(stream_id);
                        pair.data_rx = Some(rx);
                    }
                    if pair.error_stream.is_some() && pair.data_stream.is_some() {
                        let pair = pairs.remove(&request_id).unwrap_or_default();
                        tokio::spawn(forward(
                            pair,
                            connector.clone(),
                            frames_tx.clone(),
                            pod.clone(),
                        ));
                    }
                }
                Frame::Data {
                    stream_id,
                    fin,
                    data,
                } => {
                    if let Some(tx) = data_streams.get(&stream_id) {
                        if !data.is_empty() {
                            let _ = tx.send(data).await;
                        }
                    }
                    if fin {
                        // Dropping the sender ends the client's side.
                        data_streams.remove(&stream_id);
                    }
                }
                Frame::RstStream { stream_id, .. } => {
                    data_streams.remove(&stream_id);
                }
                Frame::Ping(id) => {
                    let _ = frames_tx.send(Frame::Ping(id)).await;
                }
                Frame::GoAway { .. } => break 'conn,
                _ => {}
            }
        }
    }
    drop(data_streams);
    drop(frames_tx);
    let _ = encoder.await;
}

/// Forwards one connection: client data to the pod's port and back; a
/// failure to connect is written to the error stream.
async fn forward(pair: Pair, connector: Connector, frames: mpsc::Sender<Frame>, pod: String) {
    let (Some(port), Some(error_stream), Some(data_stream), Some(mut from_client)) =
        (pair.port, pair.error_stream, pair.data_stream, pair.data_rx)
    else {
        return;
    };
    let finish = |stream_id| Frame::Data {
        stream_id,
        fin: true,
        data: Bytes::new(),
    };
    match connector(port).await {
        Ok(tcp) => {
            let (mut rd, mut wr) = tcp.into_split();
            let upstream = tokio::spawn(async move {
                while let Some(b) = from_client.recv().await {
                    if wr.write_all(&b).await.is_err() {
                        return;
                    }
                }
                let _ = wr.shutdown().await;
            });
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let f = Frame::Data {
                            stream_id: data_stream,
                            fin: false,
                            data: Bytes::copy_from_slice(&buf[..n]),
                        };
                        if frames.send(f).await.is_err() {
                            break;
                        }
                    }
                }
            }
            upstream.abort();
        }
        Err(e) => {
            let message = format!(
                "error forwarding port {port} to pod {pod}: failed to connect to localhost:{port} inside the pod's network namespace: {e}"
            );
            let _ = frames
                .send(Frame::Data {
                    stream_id: error_stream,
                    fin: false,
                    data: Bytes::from(message),
                })
                .await;
        }
    }
    let _ = frames.send(finish(data_stream)).await;
    let _ = frames.send(finish(error_stream)).await;
}

/// The `ports` of a channel port-forward: repeated or comma-separated.
fn channel_ports(query: Option<&str>) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for v in query_all(query, "ports") {
        for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => ports.push(n),
                _ => return Err(format!("invalid port {p:?}")),
            }
        }
    }
    if ports.is_empty() {
        return Err("query parameter \"ports\" is required".into());
    }
    Ok(ports)
}

/// Port-forward over `v4.channel.k8s.io`: one connection per port, for the
/// life of the socket.
pub async fn channels<S>(
    ws: tokio_tungstenite::WebSocketStream<S>,
    connector: Connector,
    pod: String,
    ports: Vec<u16>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut incoming) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(64);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let mut to_pod = Vec::new();
    let mut tasks = Vec::new();
    for (i, port) in ports.iter().copied().enumerate() {
        let (data, error) = ((2 * i) as u8, (2 * i + 1) as u8);
        let _ = tx.send(channel_message(data, &port.to_le_bytes())).await;
        let _ = tx.send(channel_message(error, &port.to_le_bytes())).await;
        let (in_tx, mut in_rx) = mpsc::channel::<Bytes>(64);
        to_pod.push(in_tx);
        let (tx, connector, pod) = (tx.clone(), connector.clone(), pod.clone());
        tasks.push(tokio::spawn(async move {
            match connector(port).await {
                Ok(tcp) => {
                    let (mut rd, mut wr) = tcp.into_split();
                    let upstream = tokio::spawn(async move {
                        while let Some(b) = in_rx.recv().await {
                            if wr.write_all(&b).await.is_err() {
                                return;
                            }
                        }
                        let _ = wr.shutdown().await;
                    });
                    let mut buf = vec![0u8; 32 * 1024];
                    loop {
                        match rd.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if tx.send(channel_message(data, &buf[..n])).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    upstream.abort();
                }
                Err(e) => {
                    let message = format!("error forwarding port {port} to pod {pod}: failed to connect to localhost:{port} inside the pod's network namespace: {e}");
                    let _ = tx.send(channel_message(error, message.as_bytes())).await;
                }
            }
        }));
    }
    drop(tx);
    let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
    let all_done = futures::future::join_all(tasks);
    tokio::pin!(all_done);
    loop {
        tokio::select! {
            _ = &mut all_done => break,
            m = incoming.next() => match m {
                Some(Ok(Message::Binary(b))) if !b.is_empty() => {
                    let ch = b[0] as usize;
                    if ch.is_multiple_of(2) {
                        if let Some(t) = to_pod.get(ch / 2) {
                            let _ = t.send(b.slice(1..)).await;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
    }
    drop(to_pod);
    for a in aborts {
        a.abort();
    }
    let _ = writer.await;
}
