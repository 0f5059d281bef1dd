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

impl Runc {
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
        let pipe = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
        let mut child = self
            .exec_command(id, &[], cmd)
            .stdin(pipe(opts.stdin))
            .stdout(pipe(opts.stdout))
            .stderr(pipe(opts.stderr))
            .spawn()
            .map_err(|source| Error::Io {
                op: "running runc exec".into(),
                source,
            })?;
        let stdin = child.stdin.take().map(|s| Box::new(s) as BoxedWriter);
        let stdout = child.stdout.take().map(|s| Box::new(s) as BoxedReader);
        let stderr = child.stderr.take().map(|s| Box::new(s) as BoxedReader);
        let (exit_tx, exit) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let code = child.wait().await.map(exit_code).unwrap_or(-1);
            let _ = exit_tx.send(code);
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
        let sock: PathBuf = self.socket_path(id, &format!("-exec-{}", &state::new_id()[..8]));
        let listener =
            std::os::unix::net::UnixListener::bind(&sock).map_err(|source| Error::Io {
                op: format!("binding {}", sock.display()),
                source,
            })?;
        let sock_arg = sock.display().to_string();
        let pid_file = self
            .container_dir(id)
            .join(format!("exec-{}.pid", &state::new_id()[..16]));
        let pid_arg = pid_file.display().to_string();
        let spawned = tokio::process::Command::new(&self.cfg.shim)
            .args(&self.cfg.shim_args)
            .arg("exec-wait")
            .arg(&pid_file)
            .arg(&self.cfg.runc)
            .arg("--root")
            .arg(self.runc_root())
            .args(["exec", "--detach", "--tty", "--console-socket", &sock_arg])
            .args(["--pid-file", &pid_arg])
            .arg(id)
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(source) => {
                let _ = std::fs::remove_file(&sock);
                return Err(Error::Io {
                    op: "running runc exec".into(),
                    source,
                });
            }
        };
        let mut accept = tokio::task::spawn_blocking(move || {
            listener.accept().and_then(|(conn, _)| sys::recv_fd(&conn))
        });
        let master = tokio::select! {
            got = &mut accept => got,
            status = child.wait() => {
                // runc failed before handing over a console: wake the accept.
                let _ = std::os::unix::net::UnixStream::connect(&sock);
                let _ = accept.await;
                let _ = std::fs::remove_file(&sock);
                let mut stderr = Vec::new();
                if let Some(mut e) = child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = e.read_to_end(&mut stderr).await;
                }
                return Err(Error::Runtime {
                    op: "exec".into(),
                    message: format!("{} ({})", runc_message(&stderr),
                        status.map(|s| s.to_string()).unwrap_or_default()),
                });
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
