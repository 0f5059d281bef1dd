//! Attach: a connection to the container's shim, which owns its stdio. The
//! shim's frames are split into the session's stdout/stderr and its exit
//! code; stdin and resizes go back as frames (see `shim`).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cri::*;
use crate::runc::Runc;
use crate::shim::{frame, AttachHeader};

impl Runc {
    pub(crate) async fn attach_streams(
        &self,
        id: &str,
        opts: &StreamOptions,
    ) -> Result<StreamSession> {
        let status = self.status(id)?;
        if status.state != ContainerState::Running {
            return Err(Error::Runtime {
                op: "attach".into(),
                message: format!("container {id} is not running"),
            });
        }
        let rec = self.load_container(id)?;
        let tty = rec.config.tty;
        let sock = self.socket_path(id, "");
        let mut conn = tokio::net::UnixStream::connect(&sock)
            .await
            .map_err(|source| Error::Io {
                op: format!("connecting to {}", sock.display()),
                source,
            })?;
        let header = AttachHeader {
            stdin: opts.stdin,
            stdout: opts.stdout,
            stderr: opts.stderr && !tty,
            reopen_log: false,
        };
        let mut line = serde_json::to_string(&header).unwrap_or_default();
        line.push('\n');
        conn.write_all(line.as_bytes())
            .await
            .map_err(|source| Error::Io {
                op: "attaching".into(),
                source,
            })?;
        let (mut rd, mut wr) = conn.into_split();

        let (mut out_w, out_r) = tokio::io::duplex(64 * 1024);
        let (mut err_w, err_r) = tokio::io::duplex(64 * 1024);
        let (exit_tx, exit) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut exit_tx = Some(exit_tx);
            loop {
                let mut head = [0u8; 5];
                if rd.read_exact(&mut head).await.is_err() {
                    break;
                }
                let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
                let mut data = vec![0u8; len];
                if rd.read_exact(&mut data).await.is_err() {
                    break;
                }
                match head[0] {
                    frame::STDOUT => {
                        let _ = out_w.write_all(&data).await;
                    }
                    frame::STDERR => {
                        let _ = err_w.write_all(&data).await;
                    }
                    frame::EXIT if data.len() == 4 => {
                        let code = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                        if let Some(tx) = exit_tx.take() {
                            let _ = tx.send(code);
                        }
                        break;
                    }
                    _ => {}
                }
            }
            // The shim ended this attach (its stdin closed) with the
            // container still running: a clean end, as upstream's attach.
            if let Some(tx) = exit_tx.take() {
                let _ = tx.send(0);
            }
        });

        let (stdin_w, mut stdin_r) = tokio::io::duplex(64 * 1024);
        let (resize_tx, mut resize_rx) = tokio::sync::mpsc::channel::<TerminalSize>(8);
        let want_stdin = opts.stdin;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            let mut stdin_open = want_stdin;
            loop {
                tokio::select! {
                    n = stdin_r.read(&mut buf), if stdin_open => {
                        let frame = match n {
                            Ok(0) | Err(_) => {
                                stdin_open = false;
                                frame::encode(frame::STDIN_CLOSE, &[])
                            }
                            Ok(n) => frame::encode(frame::STDIN, &buf[..n]),
                        };
                        if wr.write_all(&frame).await.is_err() {
                            break;
                        }
                    }
                    size = resize_rx.recv() => {
                        let Some(size) = size else {
                            if !stdin_open { break; }
                            continue;
                        };
                        let mut data = size.width.to_be_bytes().to_vec();
                        data.extend_from_slice(&size.height.to_be_bytes());
                        if wr.write_all(&frame::encode(frame::RESIZE, &data)).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });

        Ok(StreamSession {
            stdin: opts.stdin.then(|| Box::new(stdin_w) as BoxedWriter),
            stdout: opts.stdout.then(|| Box::new(out_r) as BoxedReader),
            stderr: (opts.stderr && !tty).then(|| Box::new(err_r) as BoxedReader),
            resize: tty.then_some(resize_tx),
            exit,
        })
    }
}
