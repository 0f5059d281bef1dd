//! The parts of the distribution protocol a stock `docker-registry` does
//! not show: bearer tokens from a token server, blobs redirected to other
//! storage, and registries that serve broken content. A small scripted
//! registry on a loopback port plays them.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use image::layer::Compression;
use image::testing::{LayerBuilder, TestImage, TestLayer};
use image::{Credentials, ImageConfig, Store};

struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn reply(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    Reply {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.to_vec(),
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;
/// (path, Authorization header) of each request.
type RequestLog = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// Serves `handler` on a loopback port from a thread, one request per
/// connection; requests are logged for the test to inspect.
struct Scripted {
    port: u16,
    log: RequestLog,
}

impl Scripted {
    fn start(handler: impl Fn(&Request, u16) -> Reply + Send + Sync + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(move |r| handler(r, port));
        let l = log.clone();
        // The thread ends with the test process.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (h, l) = (handler.clone(), l.clone());
                std::thread::spawn(move || serve(stream, &*h, &l));
            }
        });
        Scripted { port, log }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<(String, Option<String>)> {
        self.log.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<(String, Option<String>)>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let request = Request {
            method,
            path,
            headers,
        };
        log.lock().unwrap().push((
            request.path.clone(),
            request.headers.get("authorization").cloned(),
        ));
        let r = handler(&request);
        let mut out = format!(
            "HTTP/1.1 {} X\r\nContent-Length: {}\r\n",
            r.status,
            r.body.len()
        );
        for (k, v) in &r.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        if stream.write_all(out.as_bytes()).is_err() || stream.write_all(&r.body).is_err() {
            return;
        }
    }
}

fn small_image() -> TestImage {
    let layer = TestLayer::new(
        LayerBuilder::new().file("hello", b"hello", 0o644).finish(),
        Compression::Gzip,
    );
    TestImage::new(None, vec![layer], &ImageConfig::default())
}

/// A registry that wants a bearer token from its token endpoint (which
/// wants `user:pw`), and redirects blob downloads to `/storage/`.
fn token_registry(image: TestImage) -> Scripted {
    Scripted::start(move |r, port| {
        assert_eq!(r.method, "GET");
        let path = r.path.as_str();
        if let Some(query) = path.strip_prefix("/token?") {
            let auth = r.headers.get("authorization").cloned().unwrap_or_default();
            assert!(query.contains("service=scripted"), "{query}");
            assert!(query.contains("scope=repository%3Aapp%3Apull"), "{query}");
            // `user:pw` in base64.
            if auth == "Basic dXNlcjpwdw==" {
                return reply(200, &[], br#"{"token":"t0ken","expires_in":300}"#);
            }
            return reply(401, &[], b"{}");
        }
        if let Some(digest) = path.strip_prefix("/storage/") {
            let blob = if digest == image.config_digest {
                image.config.clone()
            } else {
                image.layers[0].blob.clone()
            };
            return reply(200, &[], &blob);
        }
        if r.headers.get("authorization").map(String::as_str) != Some("Bearer t0ken") {
            let challenge = format!(
                "Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"scripted\",scope=\"repository:app:pull\""
            );
            return reply(
                401,
                &[
                    ("WWW-Authenticate", &challenge),
                    ("Content-Type", "application/json"),
                ],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            );
        }
        if path == "/v2/app/manifests/v1" {
            return reply(
                200,
                &[("Content-Type", image::spec::OCI_MANIFEST)],
                &image.manifest,
            );
        }
        if let Some(digest) = path.strip_prefix("/v2/app/blobs/") {
            let location = format!("http://127.0.0.1:{port}/storage/{digest}");
            return reply(307, &[("Location", &location)], b"");
        }
        reply(404, &[], b"")
    })
}

#[tokio::test]
async fn bearer_tokens_come_from_the_realm_with_the_credentials_and_stay_off_redirects() {
    let image = small_image();
    let registry = token_registry(image.clone());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("images")).unwrap();
    let name = format!("{}/app:v1", registry.host());

    let credentials = Credentials {
        username: "user".into(),
        password: "pw".into(),
    };
    let pulled = store.pull(&name, Some(&credentials)).await.unwrap();
    assert_eq!(pulled.id, image.id());
    assert_eq!(
        std::fs::read(pulled.layers[0].join("hello")).unwrap(),
        b"hello"
    );
    let requests = registry.requests();
    let storage: Vec<_> = requests
        .iter()
        .filter(|(p, _)| p.starts_with("/storage/"))
        .collect();
    assert_eq!(storage.len(), 2, "{requests:?}");
    // Redirects to another path of the same host keep the token; the
    // blob requests to the registry carry it.
    assert!(requests
        .iter()
        .filter(|(p, _)| p.starts_with("/v2/app/blobs/"))
        .all(|(_, a)| a.as_deref() == Some("Bearer t0ken")));
}

#[tokio::test]
async fn without_credentials_the_token_is_refused_and_the_pull_is_unauthorized() {
    let registry = token_registry(small_image());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("images")).unwrap();
    let name = format!("{}/app:v1", registry.host());
    let err = store.pull(&name, None).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "failed to resolve reference \"{name}\": failed to authorize: failed to fetch anonymous token: unexpected status from GET request to http://{}/token?",
            registry.host()
        )),
        "{message}"
    );
    assert!(message.ends_with(": 401 Unauthorized"), "{message}");
}

/// A registry without auth that serves what `blobs` says, and the
/// manifest as given.
fn open_registry(manifest: Vec<u8>, blobs: HashMap<String, Vec<u8>>) -> Scripted {
    Scripted::start(move |r, _| {
        if r.path == "/v2/app/manifests/v1" {
            return reply(
                200,
                &[("Content-Type", image::spec::OCI_MANIFEST)],
                &manifest,
            );
        }
        match r
            .path
            .strip_prefix("/v2/app/blobs/")
            .and_then(|d| blobs.get(d))
        {
            Some(b) => reply(200, &[], b),
            None => reply(404, &[], b""),
        }
    })
}

#[tokio::test]
async fn a_blob_that_does_not_match_its_digest_is_rejected_and_nothing_is_left_behind() {
    let image = small_image();
    let blobs = HashMap::from([
        (image.config_digest.clone(), image.config.clone()),
        (image.layers[0].digest.clone(), b"tampered".to_vec()),
    ]);
    let registry = open_registry(image.manifest.clone(), blobs);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("images")).unwrap();

    let err = store
        .pull(&format!("{}/app:v1", registry.host()), None)
        .await
        .unwrap_err();
    assert!(err.is_malformed(), "{err}");
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    for sub in ["blobs/sha256", "layers/sha256", "tmp"] {
        let left: Vec<_> = std::fs::read_dir(dir.path().join("images").join(sub))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "{sub}: {left:?}");
    }
    assert!(store.list().unwrap().is_empty());
}

#[tokio::test]
async fn a_manifest_that_is_not_json_is_a_malformed_image() {
    let registry = open_registry(b"{not json".to_vec(), HashMap::new());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("images")).unwrap();
    let err = store
        .pull(&format!("{}/app:v1", registry.host()), None)
        .await
        .unwrap_err();
    assert!(err.is_malformed(), "{err}");
}

#[tokio::test]
async fn a_missing_blob_fails_the_pull_as_containerd_says_it() {
    let image = small_image();
    let registry = open_registry(image.manifest.clone(), HashMap::new());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("images")).unwrap();
    let err = store
        .pull(&format!("{}/app:v1", registry.host()), None)
        .await
        .unwrap_err();
    assert!(!err.is_not_found() && !err.is_malformed(), "{err}");
    assert!(
        err.to_string()
            .starts_with("failed to copy: httpReadSeeker: failed open: content at"),
        "{err}"
    );
}
