//! A real registry for tests: Debian's `docker-registry` (the CNCF
//! distribution registry) on a free loopback port with its storage in a
//! temp dir, killed when dropped, and a minimal client that pushes
//! [`TestImage`]s to it the way `docker push` does.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TestImage;

pub const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";

/// A running registry; the process is killed (by its PID) when dropped.
pub struct TestRegistry {
    child: Child,
    port: u16,
    /// Basic-auth credentials the registry demands, when started with them.
    pub credentials: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

/// A user `user`, password `s3cret` (bcrypt, cost 4).
const HTPASSWD: &str = "user:$2b$04$xxAzV2P2XU/XMHePlJ.5ee5cQ1UyqAB1sgcJKIH4kg3jmlLokhKi6\n";

impl TestRegistry {
    /// Starts an open registry.
    pub fn start() -> io::Result<TestRegistry> {
        Self::start_with(false, None, None)
    }

    /// Starts a registry that wants basic auth: user `user`, password
    /// `s3cret`.
    pub fn start_with_basic_auth() -> io::Result<TestRegistry> {
        Self::start_with(true, None, None)
    }

    /// A second registry over this one's storage that speaks HTTPS with
    /// the given PEM certificate and key (push to `self`, pull from it).
    pub fn serve_tls(&self, cert_pem: &str, key_pem: &str) -> io::Result<TestRegistry> {
        Self::start_with(
            false,
            Some((cert_pem, key_pem)),
            Some(self._dir.path().join("storage")),
        )
    }

    fn start_with(
        auth: bool,
        tls: Option<(&str, &str)>,
        storage: Option<PathBuf>,
    ) -> io::Result<TestRegistry> {
        let dir = tempfile::tempdir()?;
        let port = {
            let l = TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let storage = storage.unwrap_or_else(|| dir.path().join("storage"));
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if let Some((cert, key)) = tls {
            let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&cert_path, cert)?;
            std::fs::write(&key_path, key)?;
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert_path.display(),
                key_path.display()
            ));
        }
        if auth {
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, HTPASSWD)?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path: PathBuf = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new(REGISTRY_BINARY)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut registry = TestRegistry {
            child,
            port,
            credentials: auth.then(|| ("user".to_string(), "s3cret".to_string())),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = registry.request("GET", "/v2/", &[], b"") {
                // Over TLS a plain request gets 400: the server is up.
                if r.status == 200 || r.status == 401 || (tls.is_some() && r.status == 400) {
                    return Ok(registry);
                }
            }
            if let Some(status) = registry.child.try_wait()? {
                let log = std::fs::read_to_string(registry._dir.path().join("registry.log"))
                    .unwrap_or_default();
                return Err(io::Error::other(format!(
                    "docker-registry exited with {status}: {log}"
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(
                    "docker-registry did not answer within 20 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:<port>`: the registry host part of image names.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Pushes `image` as `<repository>:<tag>` (repository without the
    /// host: `test/busybox`). Returns the manifest digest.
    pub fn push(&self, repository: &str, tag: &str, image: &TestImage) -> io::Result<String> {
        self.push_blob(repository, &image.config_digest, &image.config)?;
        for layer in &image.layers {
            self.push_blob(repository, &layer.digest, &layer.blob)?;
        }
        self.push_manifest(repository, tag, crate::spec::OCI_MANIFEST, &image.manifest)?;
        Ok(image.manifest_digest.clone())
    }

    /// Uploads a blob (monolithic: POST for an upload URL, then PUT with
    /// `?digest=`). A blob the registry has is not sent again.
    pub fn push_blob(&self, repository: &str, digest: &str, bytes: &[u8]) -> io::Result<()> {
        let head = self.request(
            "HEAD",
            &format!("/v2/{repository}/blobs/{digest}"),
            &[],
            b"",
        )?;
        if head.status == 200 {
            return Ok(());
        }
        let start = self.request(
            "POST",
            &format!("/v2/{repository}/blobs/uploads/"),
            &[],
            b"",
        )?;
        if start.status != 202 {
            return Err(io::Error::other(format!(
                "starting an upload: {}",
                start.status
            )));
        }
        let location = start
            .header("location")
            .ok_or_else(|| io::Error::other("upload without Location"))?;
        let path = match location.find("://") {
            Some(i) => {
                let rest = &location[i + 3..];
                rest[rest.find('/').unwrap_or(rest.len())..].to_string()
            }
            None => location.to_string(),
        };
        let sep = if path.contains('?') { '&' } else { '?' };
        let put = self.request(
            "PUT",
            &format!("{path}{sep}digest={digest}"),
            &[("Content-Type", "application/octet-stream")],
            bytes,
        )?;
        if put.status != 201 {
            return Err(io::Error::other(format!(
                "uploading {digest}: {} {}",
                put.status,
                String::from_utf8_lossy(&put.body)
            )));
        }
        Ok(())
    }

    /// Puts a manifest or an index under `reference` (a tag or digest).
    pub fn push_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> io::Result<()> {
        let put = self.request(
            "PUT",
            &format!("/v2/{repository}/manifests/{reference}"),
            &[("Content-Type", media_type)],
            bytes,
        )?;
        if put.status != 201 {
            return Err(io::Error::other(format!(
                "putting manifest {repository}:{reference}: {} {}",
                put.status,
                String::from_utf8_lossy(&put.body)
            )));
        }
        Ok(())
    }

    /// One HTTP/1.1 request over a fresh connection (with the registry's
    /// basic-auth credentials when it has them).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<HttpResponse> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.host(),
            body.len()
        );
        if let Some((u, p)) = &self.credentials {
            let c = crate::auth::Credentials {
                username: u.clone(),
                password: p.clone(),
            };
            head.push_str(&format!("Authorization: {}\r\n", c.basic_header()));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        HttpResponse::parse(&raw, method == "HEAD")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn parse(raw: &[u8], head_only: bool) -> io::Result<HttpResponse> {
        let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| bad("no end of headers"))?;
        let text = String::from_utf8_lossy(&raw[..end]);
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no status"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let mut response = HttpResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if head_only {
            return Ok(response);
        }
        let mut body = &raw[end + 4..];
        if response
            .header("transfer-encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
        {
            let mut out = Vec::new();
            loop {
                let line_end = body
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .ok_or_else(|| bad("chunk"))?;
                let size =
                    usize::from_str_radix(String::from_utf8_lossy(&body[..line_end]).trim(), 16)
                        .map_err(|_| bad("chunk size"))?;
                body = &body[line_end + 2..];
                if size == 0 {
                    break;
                }
                out.extend_from_slice(&body[..size.min(body.len())]);
                body = &body[(size + 2).min(body.len())..];
            }
            response.body = out;
        } else {
            response.body = body.to_vec();
        }
        Ok(response)
    }
}
