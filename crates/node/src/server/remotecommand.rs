//! `/exec` and `/attach` over WebSocket, in the channel protocols kubectl
//! 1.32 speaks (`v5.channel.k8s.io`, and `v4.channel.k8s.io`): each binary
//! message starts with its channel — 0 stdin, 1 stdout, 2 stderr, 3 error
//! (one `metav1.Status` when the command ends: `Success`, or `Failure` with
//! reason `NonZeroExitCode` and the code in `details.causes[ExitCode]`),
//! 4 resize (`{"Width":w,"Height":h}`); v5 adds 255, "close": `[255, n]`
//! says the client has no more data for channel `n` (stdin's end).

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use runtime::cri::{StreamOptions, StreamSession, TerminalSize};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::remotecommand_spdy;
use super::resolve::{self, ResolveError};
use super::{full, query_all, query_flag, status_error, text, Body, KubeletServer};

pub const V5: &str = "v5.channel.k8s.io";
pub const V4: &str = "v4.channel.k8s.io";

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
pub const CLOSE: u8 = 255;

/// Whether `req` asks for a WebSocket (`Upgrade: websocket` and a
/// `Connection` that includes `upgrade`).
pub fn is_websocket<B>(req: &Request<B>) -> bool {
    let has = |name: header::HeaderName, want: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .unwrap_or("")
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(want))
        })
    };
    has(header::UPGRADE, "websocket") && has(header::CONNECTION, "upgrade")
}

/// The first subprotocol the client offers that `supported` has.
pub fn negotiate<B>(req: &Request<B>, supported: &[&str]) -> Option<String> {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("").split(','))
        .map(str::trim)
        .find(|p| supported.contains(p))
        .map(str::to_string)
}

/// The `101 Switching Protocols` answer to a WebSocket request.
pub fn accept<B>(req: &Request<B>, protocol: &str) -> Response<Body> {
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| k.as_bytes())
        .unwrap_or(b"");
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key);
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Ok(v) = HeaderValue::from_str(protocol) {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
    }
    resp
}

/// The WebSocket over an upgraded connection (server side).
pub async fn upgraded_websocket(
    on_upgrade: hyper::upgrade::OnUpgrade,
) -> Option<WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>> {
    let upgraded = on_upgrade.await.ok()?;
    Some(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await)
}

/// The status a finished command reports on the error channel.
pub fn exit_status(command: &[String], code: Option<i32>) -> Value {
    match code {
        Some(0) => json!({ "metadata": {}, "status": "Success" }),
        Some(code) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command {command:?}, exit code {code}"
            ),
            "reason": "NonZeroExitCode",
            "details": { "causes": [{ "reason": "ExitCode", "message": code.to_string() }] },
        }),
        None => json!({
            "metadata": {},
            "status": "Failure",
            "message": "error executing command: the runtime did not report an exit code",
            "reason": "InternalError",
        }),
    }
}

/// Upstream's `apierrors.NewInternalError(err)`, the status a stream
/// that could not start reports (kubectl prints its message and exits 1).
pub fn internal_error_status(err: &str) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("Internal error occurred: {err}"),
        "reason": "InternalError",
        "details": { "causes": [{ "message": err }] },
        "code": 500,
    })
}

pub async fn serve(
    server: Arc<KubeletServer>,
    mut req: Request<Incoming>,
    ns: &str,
    pod: &str,
    container: &str,
    attach: bool,
) -> Response<Body> {
    let query = req.uri().query().map(str::to_string);
    let q = query.as_deref();
    let command = query_all(q, "command");
    let tty = query_flag(q, "tty");
    let opts = StreamOptions {
        stdin: query_flag(q, "stdin"),
        stdout: query_flag(q, "stdout"),
        // A terminal merges stderr into stdout (upstream bypasses stderr).
        stderr: query_flag(q, "stderr") && !tty,
        tty,
    };
    let bad = |m: &str| status_error(StatusCode::BAD_REQUEST, "BadRequest", m.to_string());
    if !attach && command.is_empty() {
        return bad("you must specify at least 1 command");
    }
    if !(opts.stdin || opts.stdout || query_flag(q, "stderr")) {
        return bad("you must specify at least 1 of stdin, stdout, stderr");
    }
    // The container first: a client that fails the WebSocket upgrade
    // retries with SPDY and shows the error of that second attempt.
    let rt = server.runtime().clone();
    let c = match resolve::running(rt.as_ref(), ns, pod, container).await {
        Ok(c) => c,
        // In upstream's words (kubectl: "unable to upgrade connection: ...").
        Err(ResolveError::ContainerNotFound { .. }) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("container not found ({container:?})"),
            )
        }
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let spdy = !is_websocket(&req) && remotecommand_spdy::wants_spdy(&req);
    let protocol = if spdy {
        remotecommand_spdy::PROTOCOL.to_string()
    } else if !is_websocket(&req) {
        return bad("unable to upgrade: the server supports WebSocket (v5.channel.k8s.io, v4.channel.k8s.io) and SPDY/3.1 (v4.channel.k8s.io)");
    } else {
        match negotiate(&req, &[V5, V4]) {
            Some(p) => p,
            None => return bad("requested protocol(s) are not supported: the server supports [v5.channel.k8s.io v4.channel.k8s.io]"),
        }
    };
    let session = if attach {
        rt.attach(&c.id, &opts).await
    } else {
        rt.exec(&c.id, &command, &opts).await
    };
    // A session that could not start is reported on the error channel, in
    // the kubelet's words (kubectl prints "error: Internal error occurred:
    // error executing command in container: ...").
    let (session, start_error) = match session {
        Ok(s) => (Some(s), None),
        Err(e) => {
            tracing::debug!(container = %c.id, error = %e, "exec/attach failed to start");
            let what = if attach {
                "attaching to container"
            } else {
                "executing command in container"
            };
            (None, Some(format!("error {what}: {e}")))
        }
    };
    if spdy {
        let expected = remotecommand_spdy::expected_streams(&opts);
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                remotecommand_spdy::run(
                    TokioIo::new(upgraded),
                    session,
                    start_error,
                    command,
                    expected,
                )
                .await;
            }
        });
        return remotecommand_spdy::accept();
    }
    let resp = accept(&req, &protocol);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let v5 = protocol == V5;
    tokio::spawn(async move {
        let Some(ws) = upgraded_websocket(on_upgrade).await else {
            return;
        };
        match session {
            Some(s) => run(ws, s, v5, &command).await,
            None => {
                let (mut sink, _) = ws.split();
                let status = internal_error_status(&start_error.unwrap_or_default());
                let _ = sink
                    .send(channel_message(ERROR, &status.to_string().into_bytes()))
                    .await;
                let _ = sink.send(close_message()).await;
            }
        }
    });
    resp
}

pub fn channel_message(channel: u8, data: &[u8]) -> Message {
    let mut b = BytesMut::with_capacity(data.len() + 1);
    b.put_u8(channel);
    b.put_slice(data);
    Message::Binary(b.freeze())
}

fn close_message() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

/// Copies one output of the session to the socket's channel.
async fn pump(reader: Option<runtime::cri::BoxedReader>, channel: u8, tx: mpsc::Sender<Message>) {
    let Some(mut reader) = reader else { return };
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(channel_message(channel, &buf[..n])).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Drives one session until the command ends (then reports its status and
/// closes the socket) or the client goes away.
pub async fn run<S>(ws: WebSocketStream<S>, session: StreamSession, v5: bool, command: &[String])
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut incoming) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(32);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let last = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() {
                return;
            }
            if last {
                return;
            }
        }
    });
    let StreamSession {
        stdin,
        stdout,
        stderr,
        resize,
        exit,
    } = session;
    let mut stdin = stdin;
    let outputs = {
        let (o, e) = (tx.clone(), tx.clone());
        async move {
            tokio::join!(pump(stdout, STDOUT, o), pump(stderr, STDERR, e));
            exit.await.ok()
        }
    };
    tokio::pin!(outputs);
    loop {
        tokio::select! {
            code = &mut outputs => {
                let status = exit_status(command, code);
                let _ = tx.send(channel_message(ERROR, status.to_string().as_bytes())).await;
                let _ = tx.send(close_message()).await;
                // Read until the client answers the close (or a short while):
                // closing with its data unread would reset the connection
                // and could cut the status off before the client reads it.
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                    while let Some(Ok(m)) = incoming.next().await {
                        if matches!(m, Message::Close(_)) {
                            break;
                        }
                    }
                })
                .await;
                break;
            }
            msg = incoming.next() => match msg {
                Some(Ok(Message::Binary(data))) if !data.is_empty() => match data[0] {
                    STDIN => {
                        if let Some(w) = stdin.as_mut() {
                            if w.write_all(&data[1..]).await.is_err() || w.flush().await.is_err() {
                                stdin = None;
                            }
                        }
                    }
                    RESIZE => {
                        if let (Some(r), Ok(size)) = (resize.as_ref(), serde_json::from_slice::<Value>(&data[1..])) {
                            let dim = |k: &str| size.get(k).and_then(Value::as_u64).unwrap_or(0) as u16;
                            let _ = r.send(TerminalSize { width: dim("Width"), height: dim("Height") }).await;
                        }
                    }
                    CLOSE if v5 && data.get(1) == Some(&STDIN) => {
                        if let Some(mut w) = stdin.take() {
                            let _ = w.shutdown().await;
                        }
                    }
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    // The client went away: its stdin ends; the command's
                    // output has nowhere to go.
                    if let Some(mut w) = stdin.take() {
                        let _ = w.shutdown().await;
                    }
                    break;
                }
                Some(Ok(_)) => {}
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}
