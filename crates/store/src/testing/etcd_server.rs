//! A real, single-member etcd on loopback for tests and benchmarks: the
//! `etcd` binary (Debian's `etcd-server`) on two free ports, its data and
//! log in a temporary directory, killed by its pid and removed on drop.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a fresh member gets to elect itself and answer.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts are retried with new ports when another process took a port
/// between our probe and etcd's bind.
const START_ATTEMPTS: usize = 3;

/// Room above the store's 1.5 MiB value limit for the key and the request's
/// framing: etcd's default `--max-request-bytes` (exactly 1.5 MiB) would
/// refuse a value at the limit.
const MAX_REQUEST_BYTES: usize = 2 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum EtcdServerError {
    #[error("etcd test server: {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "etcd at {endpoint} exited before it answered ({status}); its log ends with:\n{log_tail}"
    )]
    Exited {
        endpoint: String,
        status: String,
        log_tail: String,
    },

    #[error("etcd at {endpoint} did not answer within {timeout:?} (last error: {last_error}); its log ends with:\n{log_tail}")]
    NotReady {
        endpoint: String,
        timeout: Duration,
        last_error: String,
        log_tail: String,
    },
}

/// A running etcd member. Dropping it kills the process and deletes its
/// data.
pub struct EtcdServer {
    child: Child,
    endpoint: String,
    log: PathBuf,
    // Dropped after the process is dead, so etcd never writes into a
    // removed directory.
    dir: TempDir,
}

impl std::fmt::Debug for EtcdServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdServer")
            .field("endpoint", &self.endpoint)
            .field("pid", &self.child.id())
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl EtcdServer {
    /// Starts etcd and waits until it serves requests.
    pub async fn start() -> Result<EtcdServer, EtcdServerError> {
        Self::start_with(&[]).await
    }

    /// Like [`EtcdServer::start`], with extra flags for etcd (for example
    /// `--quota-backend-bytes=...`).
    pub async fn start_with(extra_args: &[&str]) -> Result<EtcdServer, EtcdServerError> {
        let mut attempt = 1;
        loop {
            let mut server = Self::spawn(extra_args)?;
            match server.wait_ready().await {
                Ok(()) => return Ok(server),
                Err(e) if attempt < START_ATTEMPTS && server.lost_port_race() => {
                    tracing::warn!(error = %e, "etcd could not bind its ports; retrying on others");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The client URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The process id of the etcd member (to stop or signal it in a test).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The temporary directory holding the member's data and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines etcd logged, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    fn spawn(extra_args: &[&str]) -> Result<EtcdServer, EtcdServerError> {
        let dir = tempfile::Builder::new()
            .prefix("krate-etcd-")
            .tempdir()
            .map_err(|source| EtcdServerError::Io {
                context: "creating a temporary directory".into(),
                source,
            })?;
        let client_port = free_port()?;
        let peer_port = free_port()?;
        let endpoint = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        // Unique per process and port, so that two members never mistake
        // each other for one cluster.
        let name = format!("krate-test-{}-{client_port}", std::process::id());
        let log = dir.path().join("etcd.log");
        let output = fs::File::create(dir.path().join("etcd.out")).map_err(|source| {
            EtcdServerError::Io {
                context: "creating etcd's output file".into(),
                source,
            }
        })?;
        let output_err = output.try_clone().map_err(|source| EtcdServerError::Io {
            context: "duplicating etcd's output file".into(),
            source,
        })?;

        let mut command = Command::new(etcd_binary());
        command
            .arg(format!("--name={name}"))
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={endpoint}"))
            .arg(format!("--advertise-client-urls={endpoint}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster={name}={peer}"))
            .arg(format!("--initial-cluster-token={name}"))
            .arg("--initial-cluster-state=new")
            .arg(format!("--max-request-bytes={MAX_REQUEST_BYTES}"))
            .arg("--logger=zap")
            .arg("--log-level=warn")
            .arg(format!("--log-outputs={}", log.display()))
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(output_err);
        // No ETCD_* variable from the caller's environment may change the
        // member.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ETCD_") {
                command.env_remove(name);
            }
        }
        // etcd refuses to start on architectures it does not support unless
        // told this one.
        if let Some(arch) = unsupported_arch() {
            command.env("ETCD_UNSUPPORTED_ARCH", arch);
        }
        let child = command.spawn().map_err(|source| EtcdServerError::Io {
            context: format!("starting {} (Debian package etcd-server)", etcd_binary()),
            source,
        })?;
        Ok(EtcdServer {
            child,
            endpoint,
            log,
            dir,
        })
    }

    async fn wait_ready(&mut self) -> Result<(), EtcdServerError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last_error = String::from("none yet");
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(EtcdServerError::Exited {
                    endpoint: self.endpoint.clone(),
                    status: status.to_string(),
                    log_tail: self.full_log_tail(),
                });
            }
            if Instant::now() >= deadline {
                return Err(EtcdServerError::NotReady {
                    endpoint: self.endpoint.clone(),
                    timeout: READY_TIMEOUT,
                    last_error,
                    log_tail: self.full_log_tail(),
                });
            }
            match probe(&self.endpoint).await {
                Ok(()) => return Ok(()),
                Err(e) => last_error = e,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the member died because a port was taken.
    fn lost_port_race(&self) -> bool {
        self.full_log_tail().contains("address already in use")
    }

    /// Both of etcd's outputs: a crash before its logger starts goes to
    /// stderr.
    fn full_log_tail(&self) -> String {
        let out = log_tail(&self.dir.path().join("etcd.out"));
        let log = log_tail(&self.log);
        match (out.is_empty(), log.is_empty()) {
            (true, _) => log,
            (_, true) => out,
            _ => format!("{out}\n{log}"),
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        // By pid, through the handle that started it: never by name, which
        // could hit a member someone else runs.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request through the real client proves the member elected itself
/// and serves.
async fn probe(endpoint: &str) -> Result<(), String> {
    let options = etcd_client::ConnectOptions::new().with_connect_timeout(Duration::from_secs(1));
    let mut client = etcd_client::Client::connect([endpoint], Some(options))
        .await
        .map_err(|e| e.to_string())?;
    let get = client.get("\0", Some(etcd_client::GetOptions::new().with_count_only()));
    match tokio::time::timeout(Duration::from_secs(2), get).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 2s".into()),
    }
}

fn etcd_binary() -> String {
    std::env::var("KRATE_TEST_ETCD").unwrap_or_else(|_| "etcd".into())
}

/// etcd 3.4 runs only on amd64 and arm64 (and ppc64le) unless told
/// otherwise.
fn unsupported_arch() -> Option<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" | "aarch64" | "powerpc64" => None,
        "arm" => Some("arm"),
        "x86" => Some("386"),
        "s390x" => Some("s390x"),
        "riscv64" => Some("riscv64"),
        other => Some(other),
    }
}

/// A port that was free a moment ago: the kernel picks it, we release it
/// for etcd to bind.
fn free_port() -> Result<u16, EtcdServerError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|source| EtcdServerError::Io {
        context: "picking a free loopback port".into(),
        source,
    })?;
    let port = listener
        .local_addr()
        .map_err(|source| EtcdServerError::Io {
            context: "picking a free loopback port".into(),
            source,
        })?
        .port();
    Ok(port)
}

fn log_tail(path: &Path) -> String {
    const LINES: usize = 20;
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LINES)..].join("\n")
}
