//! `/exec` and `/attach` over SPDY/3.1 (`X-Stream-Protocol-Version:
//! v4.channel.k8s.io`), as kubectl up to 1.29 and client-go's SPDY
//! executor (k9s, Lens, ...) speak it: the client opens one SPDY stream per
//! `streamType` (error, stdin, stdout, stderr, resize); stdout and stderr
//! end with FIN; the error stream carries the same `metav1.Status` as the
//! WebSocket protocols, then FIN (upstream's
//! `pkg/kubelet/cri/streaming/remotecommand/httpstream.go`).

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use http::{header, HeaderValue, Request, Response, StatusCode};
use runtime::cri::{StreamSession, TerminalSize};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::remotecommand::exit_status;
use super::spdy::{self, Frame};
use super::{full, Body};

pub const PROTOCOL: &str = "v4.channel.k8s.io";

/// Whether `req` asks for a SPDY upgrade offering `v4.channel.k8s.io`.
pub fn wants_spdy<B>(req: &Request<B>) -> bool {
    let spdy = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("SPDY/3.1"));
    spdy && offers_v4(req)
}

fn offers_v4<B>(req: &Request<B>) -> bool {
    req.headers()
        .get_all("X-Stream-Protocol-Version")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("").split(','))
        .any(|p| p.trim() == PROTOCOL)
}

/// The `101 Switching Protocols` answer.
pub fn accept() -> Response<Body> {
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    h.insert(
        "X-Stream-Protocol-Version",
        HeaderValue::from_static(PROTOCOL),
    );
    resp
}

/// The streams a client of `opts` opens: error, then stdin, stdout,
/// stderr (not with a terminal) and resize (only with one).
pub fn expected_streams(opts: &runtime::cri::StreamOptions) -> usize {
    1 + opts.stdin as usize
        + opts.stdout as usize
        + (opts.stderr && !opts.tty) as usize
        + opts.tty as usize
}

/// Drives one session over a SPDY connection `io` until the command ends
/// (its status goes on the error stream, once the client has opened the
/// `expected` streams) or the client goes away. With no session (it could
/// not start), `start_error` goes on the error stream.
pub async fn run<S>(
    io: S,
    session: Option<StreamSession>,
    start_error: Option<String>,
    command: Vec<String>,
    expected: usize,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let (frames_tx, mut frames_rx) = mpsc::channel::<Frame>(64);
    let writer = tokio::spawn(async move {
        let mut w = spdy::Writer::default();
        while let Some(f) = frames_rx.recv().await {
            let mut out = BytesMut::new();
            w.encode(&f, &mut out);
            if wr.write_all(&out).await.is_err() {
                return;
            }
        }
        let _ = wr.shutdown().await;
    });
    let (mut stdin, mut stdout, mut stderr, resize, exit) = match session {
        Some(s) => (s.stdin, s.stdout, s.stderr, s.resize, Some(s.exit)),
        None => (None, None, None, None, None),
    };
    let (done_tx, mut done_rx) = mpsc::channel::<()>(2);
    let mut pumps = 0usize;
    let mut streams: HashMap<String, u32> = HashMap::new();
    let mut resize_buf = Vec::new();
    let mut reader = spdy::Reader::default();
    let mut buf = BytesMut::new();
    let mut chunk = vec![0u8; 32 * 1024];
    let mut exit = exit;
    let mut exit_code: Option<Option<i32>> = None;
    let mut finished_pumps = 0usize;
    let mut reading = true;
    loop {
        // Done: outputs drained, the command ended (or never started).
        let ended = exit_code.is_some() || (exit.is_none() && start_error.is_some());
        if ended
            && streams.len() >= expected
            && finished_pumps == pumps
            && streams.contains_key("error")
        {
            let status = match &start_error {
                Some(err) => super::remotecommand::internal_error_status(err),
                None => exit_status(&command, exit_code.flatten()),
            };
            let id = streams["error"];
            let _ = frames_tx
                .send(Frame::Data {
                    stream_id: id,
                    fin: true,
                    data: Bytes::from(status.to_string()),
                })
                .await;
            let _ = frames_tx
                .send(Frame::GoAway {
                    last_stream_id: streams.values().copied().max().unwrap_or(0),
                    status: 0,
                })
                .await;
            break;
        }
        tokio::select! {
            n = rd.read(&mut chunk), if reading => {
                let n: usize = n.unwrap_or_default();
                if n == 0 {
                    // The client went away: its stdin ends; the output has
                    // nowhere to go.
                    if let Some(mut w) = stdin.take() {
                        let _ = w.shutdown().await;
                    }
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                loop {
                    let frame = match reader.decode(&mut buf) {
                        Ok(Some(f)) => f,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::debug!(error = %e, "exec over SPDY: bad frame");
                            reading = false;
                            break;
                        }
                    };
                    match frame {
                        Frame::SynStream { stream_id, headers, .. } => {
                            let kind = Frame::header(&headers, "streamtype").unwrap_or("").to_ascii_lowercase();
                            let _ = frames_tx.send(Frame::SynReply { stream_id, fin: false, headers: vec![] }).await;
                            streams.insert(kind.clone(), stream_id);
                            let output = match kind.as_str() {
                                "stdout" => stdout.take(),
                                "stderr" => stderr.take(),
                                _ => None,
                            };
                            if let Some(r) = output {
                                pumps += 1;
                                tokio::spawn(pump(r, stream_id, frames_tx.clone(), done_tx.clone()));
                            } else if matches!(kind.as_str(), "stdout" | "stderr") {
                                // Nothing to send there: end it at once.
                                let _ = frames_tx.send(Frame::Data { stream_id, fin: true, data: Bytes::new() }).await;
                            }
                        }
                        Frame::Data { stream_id, fin, data } => {
                            if Some(&stream_id) == streams.get("stdin") {
                                if let Some(w) = stdin.as_mut() {
                                    if !data.is_empty() && (w.write_all(&data).await.is_err() || w.flush().await.is_err()) {
                                        stdin = None;
                                    }
                                }
                                if fin {
                                    if let Some(mut w) = stdin.take() {
                                        let _ = w.shutdown().await;
                                    }
                                }
                            } else if Some(&stream_id) == streams.get("resize") {
                                resize_buf.extend_from_slice(&data);
                                while let Some(end) = resize_buf.iter().position(|b| *b == b'\n') {
                                    let line: Vec<u8> = resize_buf.drain(..=end).collect();
                                    if let (Some(r), Ok(size)) = (resize.as_ref(), serde_json::from_slice::<Value>(&line)) {
                                        let dim = |k: &str| size.get(k).and_then(Value::as_u64).unwrap_or(0) as u16;
                                        let _ = r.send(TerminalSize { width: dim("Width"), height: dim("Height") }).await;
                                    }
                                }
                            }
                        }
                        Frame::Ping(id) => {
                            let _ = frames_tx.send(Frame::Ping(id)).await;
                        }
                        Frame::GoAway { .. } => reading = false,
                        _ => {}
                    }
                }
            }
            Some(()) = done_rx.recv() => finished_pumps += 1,
            code = async { exit.as_mut().expect("guarded").await }, if exit.is_some() && exit_code.is_none() => {
                exit_code = Some(code.ok());
            }
            else => break,
        }
    }
    drop(frames_tx);
    let _ = writer.await;
}

/// Copies one output to its stream, then ends the stream.
async fn pump(
    mut reader: runtime::cri::BoxedReader,
    stream_id: u32,
    frames: mpsc::Sender<Frame>,
    done: mpsc::Sender<()>,
) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let f = Frame::Data {
                    stream_id,
                    fin: false,
                    data: Bytes::copy_from_slice(&buf[..n]),
                };
                if frames.send(f).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = frames
        .send(Frame::Data {
            stream_id,
            fin: true,
            data: Bytes::new(),
        })
        .await;
    let _ = done.send(()).await;
}
