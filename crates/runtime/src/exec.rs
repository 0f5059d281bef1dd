//! ExecSync and Exec: `runc exec` of a command in a running container, which
//! inherits the container's process settings (env, user, capabilities) from
//! its bundle. With a tty, runc hands the pty master over a console socket
//! (SCM_RIGHTS) and resizes are TIOCSWINSZ on it.

use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use crate::cri::*;
use crate::runc::{runc_message, Runc};
use crate::state;
use crate::stream::{blocking_reader, blocking_writer};
use crate::sys;

fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// runc's own error when the command could not be started at all (runc
/// exits 255 and logs `exec failed: ...`), as opposed to a command that ran
/// and failed.
fn exec_start_failure(code: i32, stderr: &[u8]) -> Option<String> {
    if code != 255 {
        return None;
    }
    let last = String::from_utf8_lossy(stderr);
    let last = last.lines().rev().find(|l| !l.trim().is_empty())?;
    if !last.contains("level=error") {
        return None;
    }
    let message = runc_message(last.as_bytes());
    message.starts_with("exec failed:").then_some(message)
}

/// An exec runc could not start, as containerd's CRI words it (kubectl
/// shows it after "error executing command in container: ").
fn exec_start_error(exec_id: &str, runc_stderr: &[u8]) -> Error {
    Error::ExecStart(format!(
        "failed to exec in container: failed to start exec {exec_id:?}: OCI runtime exec failed: {}: unknown",
        runc_message(runc_stderr)
    ))
}

/// A `runc exec --detach` under the shim, its subreaper: a socket the
/// caller listens on (a console's, or the shim's word that runc started
/// the process) and the pid file runc writes.
struct Detached {
    exec_id: String,
    sock: PathBuf,
    pid_file: PathBuf,
}

impl Runc {
    fn detached_exec(&self, id: &str) -> Result<(Detached, std::os::unix::net::UnixListener)> {
        let exec_id = state::new_id();
        let sock = self.socket_path(id, &format!("-exec-{}", &exec_id[..8]));
        let listener =
            std::os::unix::net::UnixListener::bind(&sock).map_err(|source| Error::Io {
                op: format!("binding {}", sock.display()),
                source,
            })?;
        let pid_file = self
            .container_dir(id)
            .join(format!("exec-{}.pid", &exec_id[..16]));
        let d = Detached {
            exec_id,
            sock,
            pid_file,
        };
        Ok((d, listener))
    }

    /// The shim (`exec-notify` on the socket, else `exec-wait`) over
    /// `runc exec --detach RUNC_ARGS --pid-file F ID CMD`, with `stdio`
    /// as stdin and stdout and stderr piped.
    fn spawn_detached(
        &self,
        d: &Detached,
        notify: bool,
        runc_args: &[&str],
        id: &str,
        cmd: &[String],
        stdio: (Stdio, Stdio),
    ) -> Result<tokio::process::Child> {
        let mut c = tokio::process::Command::new(&self.cfg.shim);
        c.args(&self.cfg.shim_args);
        if notify {
            c.arg("exec-notify").arg(&d.sock);
        } else {
            c.arg("exec-wait");
        }
        c.arg(&d.pid_file)
            .arg(&self.cfg.runc)
            .arg("--root")
            .arg(self.runc_root())
            .args(["exec", "--detach"])
            .args(runc_args)
            .arg("--pid-file")
            .arg(&d.pid_file)
            .arg(id)
            .args(cmd)
            .stdin(stdio.0)
            .stdout(stdio.1)
            .stderr(Stdio::piped());
        c.spawn().map_err(|source| {
            let _ = std::fs::remove_file(&d.sock);
            Error::Io {
                op: "running runc exec".into(),
                source,
            }
        })
    }

    fn ensure_running(&self, id: &str) -> Result<()> {
        let status = self.status(id)?;
        if status.state != ContainerState::Running {
            return Err(Error::Runtime {
                op: "exec".into(),
                message: format!("container {id} is not running"),
            });
        }
        Ok(())
    }

    fn exec_command(&self, id: &str, extra: &[&str], cmd: &[String]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.cfg.runc);
        c.arg("--root")
            .arg(self.runc_root())
            .arg("exec")
            .args(extra)
            .arg(id)
            .args(cmd);
        c
    }

    pub(crate) async fn exec_collect(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecSyncResponse> {
        self.ensure_running(id)?;
        if cmd.is_empty() {
            return Err(Error::InvalidArgument("no command specified".into()));
        }
        let pid_file = self
            .container_dir(id)
            .join(format!("exec-{}.pid", &state::new_id()[..16]));
        let pid_arg = pid_file.display().to_string();
        let child = self
            .exec_command(id, &["--pid-file", &pid_arg], cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| Error::Io {
                op: "running runc exec".into(),
                source,
            })?;
        let output = child.wait_with_output();
        let result = if timeout.is_zero() {
            Ok(output.await)
        } else {
            tokio::time::timeout(timeout, output).await
        };
        let out = match result {
            Ok(out) => out,
            Err(_) => {
                // runc goes with the future; the process it started must too.
                if let Some(pid) = std::fs::read_to_string(&pid_file)
                    .ok()
                    .and_then(|s| s.trim().parse::<i32>().ok())
                {
                    let _ = self.sys.kill(pid, libc::SIGKILL);
                }
                let _ = std::fs::remove_file(&pid_file);
                return Err(Error::Runtime {
                    op: "exec".into(),
                    message: format!("command {cmd:?} timed out after {timeout:?}"),
                });
            }
        };
        let _ = std::fs::remove_file(&pid_file);
        let out = out.map_err(|source| Error::Io {
            op: "running runc exec".into(),
            source,
        })?;
        let code = exit_code(out.status);
        if let Some(message) = exec_start_failure(code, &out.stderr) {
            return Err(Error::Runtime {
                op: "exec".into(),
                message: format!("failed to exec in container: failed to start exec {id:?}: OCI runtime exec failed: {message}: unknown"),
            });
        }
        Ok(ExecSyncResponse {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_code: code,
        })
    }

    pub(crate) async fn exec_streams(
        &self,
        id: &str,
        cmd: &[String],
        opts: &StreamOptions,
    ) -> Result<StreamSession> {
        self.ensure_running(id)?;
        if cmd.is_empty() {
            return Err(Error::InvalidArgument("no command specified".into()));
        }
        if opts.tty {
            return self.exec_tty(id, cmd, opts).await;
        }
        // `runc exec --detach` under the shim's `exec-notify`: the process
        // gets the pipes, and the shim says when runc has started it; until
        // then stderr holds nothing but runc's own error, if any.
        let (d, listener) = self.detached_exec(id)?;
        let pipe = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
        let mut child = self.spawn_detached(
            &d,
            true,
            &[],
            id,
            cmd,
            (pipe(opts.stdin), pipe(opts.stdout)),
        )?;
        let (exec_id, sock, pid_file) = (d.exec_id, d.sock, d.pid_file);
        // Taken before waiting: tokio's wait closes the child's stdin.
        let stdin = child.stdin.take().map(|s| Box::new(s) as BoxedWriter);
        let mut accept = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let (mut conn, _) = listener.accept()?;
            let mut said = Vec::new();
            conn.read_to_end(&mut said)?;
            Ok::<bool, std::io::Error>(said == b"started")
        });
        let mut exited = None;
        let started = tokio::select! {
            biased;
            got = &mut accept => matches!(got, Ok(Ok(true))),
            status = child.wait() => {
                exited = Some(status);
                // The shim's word, if it said one, is ahead of this wake-up
                // in the socket's queue.
                let _ = std::os::unix::net::UnixStream::connect(&sock);
                matches!(accept.await, Ok(Ok(true)))
            }
        };
        let _ = std::fs::remove_file(&sock);
        if !started {
            let _ = child.start_kill();
            let _ = child.wait().await;
            let _ = std::fs::remove_file(&pid_file);
            let mut stderr = Vec::new();
            if let Some(mut e) = child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = e.read_to_end(&mut stderr).await;
            }
            return Err(exec_start_error(&exec_id, &stderr));
        }
        let stdout = child.stdout.take().map(|s| Box::new(s) as BoxedReader);
        let stderr = child.stderr.take();
        let stderr = match (opts.stderr, stderr) {
            (true, Some(s)) => Some(Box::new(s) as BoxedReader),
            (_, Some(mut s)) => {
                // Not asked for: drained, as /dev/null would.
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut s, &mut tokio::io::sink()).await;
                });
                None
            }
            (_, None) => None,
        };
        let (exit_tx, exit) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let status = match exited {
                Some(status) => status,
                None => child.wait().await,
            };
            let _ = exit_tx.send(status.map(exit_code).unwrap_or(-1));
        });
        Ok(StreamSession {
            stdin,
            stdout,
            stderr,
            resize: None,
            exit,
        })
    }

    async fn exec_tty(
        &self,
        id: &str,
        cmd: &[String],
        opts: &StreamOptions,
    ) -> Result<StreamSession> {
        let (d, listener) = self.detached_exec(id)?;
        let sock_arg = d.sock.display().to_string();
        let mut child = self.spawn_detached(
            &d,
            false,
            &["--tty", "--console-socket", &sock_arg],
            id,
            cmd,
            (Stdio::null(), Stdio::null()),
        )?;
        let (exec_id, sock) = (d.exec_id, d.sock);
        let mut accept = tokio::task::spawn_blocking(move || {
            listener.accept().and_then(|(conn, _)| sys::recv_fd(&conn))
        });
        let master = tokio::select! {
            got = &mut accept => got,
            _ = child.wait() => {
                // runc failed before handing over a console: wake the accept.
                let _ = std::os::unix::net::UnixStream::connect(&sock);
                let _ = accept.await;
                let _ = std::fs::remove_file(&sock);
                let mut stderr = Vec::new();
                if let Some(mut e) = child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = e.read_to_end(&mut stderr).await;
                }
                return Err(exec_start_error(&exec_id, &stderr));
            }
        };
        let _ = std::fs::remove_file(&sock);
        let master = std::fs::File::from(
            master
                .map_err(|e| Error::Runtime {
                    op: "exec".into(),
                    message: format!("receiving the console: {e}"),
                })?
                .map_err(|source| Error::Io {
                    op: "receiving the console".into(),
                    source,
                })?,
        );
        let clone = |f: &std::fs::File| {
            f.try_clone().map_err(|source| Error::Io {
                op: "duplicating the console".into(),
                source,
            })
        };
        let stdout = opts
            .stdout
            .then(|| clone(&master).map(blocking_reader))
            .transpose()?;
        let stdin = opts
            .stdin
            .then(|| clone(&master).map(blocking_writer))
            .transpose()?;
        let (resize_tx, mut resize_rx) = tokio::sync::mpsc::channel::<TerminalSize>(8);
        let resize_fd = clone(&master)?;
        tokio::spawn(async move {
            while let Some(size) = resize_rx.recv().await {
                let _ = sys::set_winsize(resize_fd.as_raw_fd(), size.width, size.height);
            }
        });
        let (exit_tx, exit) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let code = child.wait().await.map(exit_code).unwrap_or(-1);
            drop(master);
            let _ = exit_tx.send(code);
        });
        Ok(StreamSession {
            stdin,
            stdout,
            stderr: None,
            resize: Some(resize_tx),
            exit,
        })
    }
}
