//! The per-container shim (as containerd-shim / conmon): a process of its own
//! session that outlives the node agent, starts the container with
//! `runc run --detach`, is the subreaper its init is re-parented to,
//! owns its stdio (stdout/stderr into the CRI log, stdin kept open for
//! attach), serves attach on a unix socket, and records the exit code, finish
//! time and OOM kill in `status.json` when the container exits.
//!
//! Invoked as `<binary> __shim launch <dir>` by the runtime; `launch` starts
//! `run` detached and exits at once, so the runtime never has a shim child to
//! reap. `run` prints one line on the stdout it inherited (`ok <pid>` or
//! `error <message>`) and then lets go of it: the runtime reads to EOF.
//!
//! Attach protocol on `<dir>/attach.sock`: the client sends one JSON line
//! ([`AttachHeader`]), then frames `[kind u8][len u32 BE][data]` both ways
//! (client: [`frame::STDIN`], [`frame::STDIN_CLOSE`], [`frame::RESIZE`];
//! shim: [`frame::STDOUT`], [`frame::STDERR`], [`frame::EXIT`]).

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::cri_log::{self, LineSplitter};
use crate::state::{self, ShimConfig, ShimStatus};
use crate::sys;

/// Exit code and reason containerd reports for a container that failed to start.
pub const START_ERROR_EXIT_CODE: i32 = 128;
pub const START_ERROR_REASON: &str = "StartError";

pub mod frame {
    pub const STDIN: u8 = 0;
    pub const STDIN_CLOSE: u8 = 1;
    pub const RESIZE: u8 = 2;
    pub const STDOUT: u8 = 1;
    pub const STDERR: u8 = 2;
    pub const EXIT: u8 = 3;

    pub fn encode(kind: u8, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + data.len());
        out.push(kind);
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(data);
        out
    }
}

/// The first line an attach client sends.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AttachHeader {
    #[serde(default)]
    pub stdin: bool,
    #[serde(default)]
    pub stdout: bool,
    #[serde(default)]
    pub stderr: bool,
    /// Not an attach: re-open the log file (after the kubelet rotated it).
    #[serde(default)]
    pub reopen_log: bool,
}

/// The shim's entry point; `args` are what follows `__shim`.
pub fn main(args: &[String]) -> i32 {
    match args {
        [cmd, _dir] if cmd == "launch" => launch(),
        [cmd, dir] if cmd == "run" => run(Path::new(dir)),
        [cmd, pid_file, runc, rest @ ..] if cmd == "exec-wait" => {
            exec_wait(Path::new(pid_file), None, runc, rest)
        }
        [cmd, notify, pid_file, runc, rest @ ..] if cmd == "exec-notify" => {
            exec_wait(Path::new(pid_file), Some(Path::new(notify)), runc, rest)
        }
        _ => {
            eprintln!(
                "usage: __shim launch|run DIR | exec-wait PID_FILE RUNC ARGS... | exec-notify SOCKET PID_FILE RUNC ARGS..."
            );
            2
        }
    }
}

/// `runc exec --detach` (the only way runc hands a tty's master to a console
/// socket) leaves the exec'd process to the nearest subreaper: this is that
/// subreaper, for one exec. It exits with the process's exit code (255 and
/// runc's error on stderr when runc failed). runc gets the shim's stdio,
/// which a detached exec without a tty hands on to the process; with
/// `notify`, the shim says `started` on that socket once runc has started
/// the process, so that the caller can tell runc's own failure (on the same
/// stderr) from the command's output.
fn exec_wait(pid_file: &Path, notify: Option<&Path>, runc: &str, args: &[String]) -> i32 {
    let _ = sys::set_child_subreaper();
    match Command::new(runc).args(args).status() {
        Ok(s) if s.success() => {}
        Ok(_) => return 255,
        Err(e) => {
            eprintln!("running {runc}: {e}");
            return 255;
        }
    }
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        eprintln!("runc left no pid in {}", pid_file.display());
        return 255;
    };
    let _ = std::fs::remove_file(pid_file);
    if let Some(notify) = notify {
        if let Ok(mut s) = UnixStream::connect(notify) {
            let _ = s.write_all(b"started");
        }
    }
    loop {
        match sys::wait_any() {
            Ok(Some(r)) if r.pid == pid => return r.code,
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return 255,
        }
    }
}

/// Starts this same command with `run` instead of `launch`, not waiting for it.
fn launch() -> i32 {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    let n = argv.len();
    argv[n - 2] = "run".into();
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            println!("error finding the shim binary: {e}");
            return 1;
        }
    };
    match Command::new(exe)
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(_) => 0,
        Err(e) => {
            println!("error starting the shim: {e}");
            1
        }
    }
}

struct Client {
    /// Tells this attach from the others (its fd may be reused).
    id: u64,
    stream: UnixStream,
    stdout: bool,
    stderr: bool,
}

struct Shared {
    log_path: Option<PathBuf>,
    log: Mutex<Option<File>>,
    clients: Mutex<Vec<Client>>,
    exit: Mutex<Option<i32>>,
    stdin: Mutex<Option<File>>,
    stdin_once: bool,
    /// The pty master of a tty container, for resizes.
    master: Option<File>,
}

impl Shared {
    fn output(&self, stream: &str, kind: u8, splitter: &mut LineSplitter, data: Option<&[u8]>) {
        {
            let mut log = self.log.lock().unwrap();
            if let Some(file) = log.as_mut() {
                let now = Utc::now();
                let mut write = |line: &[u8], tag| {
                    let _ = cri_log::write_record(file, now, stream, tag, line);
                };
                match data {
                    Some(d) => splitter.push(d, &mut write),
                    None => splitter.finish(&mut write),
                }
            }
        }
        if let Some(d) = data {
            let frame = frame::encode(kind, d);
            let mut clients = self.clients.lock().unwrap();
            clients.retain_mut(|c| {
                let wants = if kind == frame::STDOUT {
                    c.stdout
                } else {
                    c.stderr
                };
                !wants || c.stream.write_all(&frame).is_ok()
            });
        }
    }

    fn reopen_log(&self) -> io::Result<()> {
        let file = open_log(self.log_path.as_deref())?;
        *self.log.lock().unwrap() = file;
        Ok(())
    }
}

fn open_log(path: Option<&Path>) -> io::Result<Option<File>> {
    let Some(path) = path else { return Ok(None) };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(Some)
}

struct Started {
    pid: i32,
    stdout: Option<File>,
    stderr: Option<File>,
    stdin: Option<File>,
    master: Option<File>,
}

fn run(dir: &Path) -> i32 {
    let _ = sys::setsid();
    let _ = sys::set_child_subreaper();
    let me = std::process::id() as i32;
    let mut status = ShimStatus {
        shim_pid: me,
        shim_start_time: state::process_start_time(me).unwrap_or_default(),
        boot_id: state::boot_id(),
        ..ShimStatus::default()
    };
    let status_path = dir.join(state::STATUS);
    let cfg: ShimConfig = match state::read_json(&dir.join(state::SHIM_CONFIG)) {
        Ok(cfg) => cfg,
        Err(e) => {
            report(&format!("error reading the shim config: {e}"));
            return 1;
        }
    };
    let log = match open_log(cfg.log_path.as_deref()) {
        Ok(log) => log,
        Err(e) => {
            report(&format!("error opening the log file: {e}"));
            return 1;
        }
    };
    let started = match start(dir, &cfg) {
        Ok(started) => started,
        Err(message) => {
            status.finished_at = Some(Utc::now());
            status.exit_code = Some(START_ERROR_EXIT_CODE);
            status.reason = Some(START_ERROR_REASON.into());
            status.message = Some(message.clone());
            let _ = state::write_json(&status_path, &status);
            runc_delete(&cfg);
            report(&format!("error {message}"));
            return 1;
        }
    };
    status.pid = Some(started.pid);
    status.started_at = Some(Utc::now());
    if let Err(e) = state::write_json(&status_path, &status) {
        let _ = sys::kill(started.pid, libc::SIGKILL);
        report(&format!("error writing the status file: {e}"));
        return 1;
    }
    let shared = Arc::new(Shared {
        log_path: cfg.log_path.clone(),
        log: Mutex::new(log),
        clients: Mutex::new(Vec::new()),
        exit: Mutex::new(None),
        stdin: Mutex::new(started.stdin.or_else(|| {
            started
                .master
                .as_ref()
                .filter(|_| cfg.stdin)
                .and_then(|m| m.try_clone().ok())
        })),
        // With a terminal containerd leaves the container's stdin open
        // after an attach (kubectl attach -t again must reach the shell).
        stdin_once: cfg.stdin_once && !cfg.tty,
        master: started.master.as_ref().and_then(|m| m.try_clone().ok()),
    });

    let (done_tx, done_rx) = mpsc::channel::<()>();
    let mut outputs = 0;
    for (name, kind, reader) in [
        ("stdout", frame::STDOUT, started.stdout.or(started.master)),
        ("stderr", frame::STDERR, started.stderr),
    ] {
        let Some(mut reader) = reader else { continue };
        outputs += 1;
        let shared = shared.clone();
        let done = done_tx.clone();
        std::thread::spawn(move || {
            let mut splitter = LineSplitter::default();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => shared.output(name, kind, &mut splitter, Some(&buf[..n])),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // EIO: the pty's last holder closed it.
                    Err(_) => break,
                }
            }
            shared.output(name, kind, &mut splitter, None);
            let _ = done.send(());
        });
    }
    drop(done_tx);

    let socket = cfg.attach_socket.clone();
    let _ = std::fs::remove_file(&socket);
    match UnixListener::bind(&socket) {
        Ok(listener) => {
            let shared = shared.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming().flatten() {
                    let shared = shared.clone();
                    std::thread::spawn(move || serve_client(conn, &shared));
                }
            });
        }
        Err(e) => eprintln!("binding {}: {e}", socket.display()),
    }

    report(&format!("ok {}", started.pid));

    let code = loop {
        match sys::wait_any() {
            Ok(Some(r)) if r.pid == started.pid => break r.code,
            Ok(Some(_)) => continue,
            // No children: the init is gone without us seeing it.
            Ok(None) | Err(_) => break 255,
        }
    };
    let finished_at = Utc::now();
    // Drain what the container wrote before it exited; processes it left
    // behind in a shared PID namespace may hold the pipes, so not forever.
    let deadline = Instant::now() + Duration::from_secs(2);
    for _ in 0..outputs {
        let left = deadline.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
    }
    let oom = cfg.oom_file.as_deref().is_some_and(oom_killed);
    status.exit_code = Some(code);
    status.finished_at = Some(finished_at);
    if oom {
        status.reason = Some("OOMKilled".into());
    }
    let _ = state::write_json(&status_path, &status);
    {
        let mut clients = shared.clients.lock().unwrap();
        *shared.exit.lock().unwrap() = Some(code);
        let frame = frame::encode(frame::EXIT, &code.to_be_bytes());
        for c in clients.iter_mut() {
            let _ = c.stream.write_all(&frame);
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
        clients.clear();
    }
    runc_delete(&cfg);
    let _ = std::fs::remove_file(&socket);
    0
}

/// Prints the one line the runtime waits for, then lets go of that stdout.
fn report(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    drop(out);
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            let _ = sys::dup_onto(null.as_raw_fd(), fd);
        }
    }
}

fn runc(cfg: &ShimConfig) -> Command {
    let mut cmd = Command::new(&cfg.runc);
    cmd.arg("--root").arg(&cfg.runc_root);
    cmd
}

fn runc_delete(cfg: &ShimConfig) {
    let _ = runc(cfg)
        .args(["delete", "--force", &cfg.id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn pipe() -> Result<(File, File), String> {
    let (r, w) = io::pipe().map_err(|e| format!("creating a pipe: {e}"))?;
    Ok((File::from(OwnedFd::from(r)), File::from(OwnedFd::from(w))))
}

fn start(dir: &Path, cfg: &ShimConfig) -> Result<Started, String> {
    let runc_log = dir.join("runc.log");
    let pid_file = dir.join("init.pid");
    let _ = std::fs::remove_file(&pid_file);
    let mut cmd = runc(cfg);
    cmd.arg("--log")
        .arg(&runc_log)
        .args(["--log-format", "json", "run", "--detach", "--bundle"])
        .arg(&cfg.bundle)
        .arg("--pid-file")
        .arg(&pid_file);
    let mut started = Started {
        pid: 0,
        stdout: None,
        stderr: None,
        stdin: None,
        master: None,
    };
    let console = if cfg.tty {
        let path = cfg.attach_socket.with_extension("console");
        let _ = std::fs::remove_file(&path);
        let listener =
            UnixListener::bind(&path).map_err(|e| format!("binding the console socket: {e}"))?;
        cmd.arg("--console-socket").arg(&path);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let got = listener
                .accept()
                .and_then(|(conn, _)| sys::recv_fd(&conn))
                .map(File::from);
            let _ = tx.send(got);
        });
        Some((path, rx))
    } else {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        started.stdout = Some(out_r);
        started.stderr = Some(err_r);
        cmd.stdout(out_w).stderr(err_w);
        if cfg.stdin {
            let (in_r, in_w) = pipe()?;
            started.stdin = Some(in_w);
            cmd.stdin(in_r);
        } else {
            cmd.stdin(Stdio::null());
        }
        None
    };
    cmd.arg(&cfg.id);
    let result = cmd.status();
    // The container's ends of the pipes are the container's alone now.
    drop(cmd);
    let ok = result.map_err(|e| format!("running {}: {e}", cfg.runc.display()))?;
    if !ok.success() {
        return Err(runc_error(&runc_log).unwrap_or_else(|| format!("runc run exited with {ok}")));
    }
    if let Some((path, rx)) = console {
        let master = rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "runc sent no console".to_string())?
            .map_err(|e| format!("receiving the console: {e}"))?;
        let _ = std::fs::remove_file(path);
        started.master = Some(master);
    }
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| format!("runc left no pid in {}", pid_file.display()))?;
    started.pid = pid;
    Ok(started)
}

/// The last error runc logged, worded as containerd reports it (containerd
/// runs `runc create` then `runc start`; one `runc run --detach` is a runc
/// call less per container, and fails the same way).
fn runc_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let msg = text.lines().rev().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        (v["level"] == "error" || v["level"] == "fatal")
            .then(|| v["msg"].as_str().map(str::to_string))
            .flatten()
    })?;
    let msg = msg.replacen("runc run failed:", "runc create failed:", 1);
    Some(format!(
        "failed to create containerd task: failed to create shim task: OCI runtime create failed: {msg}: unknown"
    ))
}

/// Whether the container's memory cgroup counted an OOM kill.
fn oom_killed(file: &Path) -> bool {
    std::fs::read_to_string(file).is_ok_and(|text| {
        text.lines().any(|l| {
            l.strip_prefix("oom_kill ")
                .and_then(|n| n.trim().parse::<u64>().ok())
                .is_some_and(|n| n > 0)
        })
    })
}

fn serve_client(conn: UnixStream, shared: &Shared) {
    let Ok(write_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let Ok(header) = serde_json::from_str::<AttachHeader>(line.trim()) else {
        return;
    };
    if header.reopen_log {
        let reply = match shared.reopen_log() {
            Ok(()) => "ok\n".to_string(),
            Err(e) => format!("error {e}\n"),
        };
        let mut w = write_half;
        let _ = w.write_all(reply.as_bytes());
        return;
    }
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    {
        let mut clients = shared.clients.lock().unwrap();
        if let Some(code) = *shared.exit.lock().unwrap() {
            let mut w = write_half;
            let _ = w.write_all(&frame::encode(frame::EXIT, &code.to_be_bytes()));
            return;
        }
        // A client that stops reading must not stall the container's output
        // (and with it the log): after this long it is dropped.
        let _ = write_half.set_write_timeout(Some(Duration::from_secs(10)));
        clients.push(Client {
            id,
            stream: write_half,
            stdout: header.stdout,
            stderr: header.stderr,
        });
    }
    loop {
        let mut head = [0u8; 5];
        if reader.read_exact(&mut head).is_err() {
            break;
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut data = vec![0u8; len.min(1 << 20)];
        if reader.read_exact(&mut data).is_err() {
            break;
        }
        match head[0] {
            frame::STDIN if header.stdin => {
                let mut stdin = shared.stdin.lock().unwrap();
                if let Some(f) = stdin.as_mut() {
                    if f.write_all(&data).is_err() {
                        *stdin = None;
                    }
                }
            }
            frame::STDIN_CLOSE => break,
            frame::RESIZE if data.len() == 4 => {
                if let Some(m) = &shared.master {
                    let w = u16::from_be_bytes([data[0], data[1]]);
                    let h = u16::from_be_bytes([data[2], data[3]]);
                    let _ = sys::set_winsize(m.as_raw_fd(), w, h);
                }
            }
            _ => {}
        }
    }
    if header.stdin && shared.stdin_once {
        // The first attach's stdin ends the container's (stdinOnce).
        shared.stdin.lock().unwrap().take();
    } else if header.stdin {
        // Otherwise the attach ends with its stdin, the container's stays
        // open (containerd's ContainerIO.Attach).
        let mut clients = shared.clients.lock().unwrap();
        if let Some(i) = clients.iter().position(|c| c.id == id) {
            let _ = clients.remove(i).stream.shutdown(std::net::Shutdown::Both);
        }
    }
}
