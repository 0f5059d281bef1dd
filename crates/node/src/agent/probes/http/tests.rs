use std::sync::{Arc, Mutex};

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A server answering each connection with the next of `answers`;
/// returns its port and the requests it saw.
async fn serve(answers: Vec<String>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        for answer in answers {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                // A TLS ClientHello: answer it at once.
                if request[0] == 0x16 {
                    break;
                }
            }
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&request).into_owned());
            let answer = answer.replace("{port}", &port.to_string());
            let _ = s.write_all(answer.as_bytes()).await;
        }
    });
    (port, seen)
}

fn answer(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn action(port: u16, path: &str) -> HTTPGetAction {
    HTTPGetAction {
        port: IntOrString::Int(port.into()),
        path: Some(path.into()),
        ..Default::default()
    }
}

fn request(a: &HTTPGetAction) -> Request {
    Request::for_action(a, &Container::default(), "127.0.0.1", "probe").unwrap()
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_probe_sends_upstreams_headers_and_reads_the_body() {
    let (port, seen) = serve(vec![answer("200 OK", "", "fine")]).await;
    let mut a = action(port, "/healthz?x=1");
    a.http_headers = Some(vec![
        k8s_openapi::api::core::v1::HTTPHeader {
            name: "Host".into(),
            value: "example.test".into(),
        },
        k8s_openapi::api::core::v1::HTTPHeader {
            name: "X-Custom".into(),
            value: "a".into(),
        },
    ]);
    assert_eq!(
        probe(&request(&a), SECOND).await,
        Outcome::Success("fine".into())
    );
    let req = seen.lock().unwrap()[0].clone();
    assert!(req.starts_with("GET /healthz?x=1 HTTP/1.1\r\n"), "{req}");
    for line in [
        "Host: example.test\r\n",
        "X-Custom: a\r\n",
        "User-Agent: kube-probe/1.32\r\n",
        "Accept: */*\r\n",
    ] {
        assert!(req.contains(line), "{line} in {req}");
    }
}

#[tokio::test]
async fn status_codes_of_400_and_more_fail() {
    let (port, _) = serve(vec![answer("503 Service Unavailable", "", "down")]).await;
    assert_eq!(
        probe(&request(&action(port, "/")), SECOND).await,
        Outcome::Failure("HTTP probe failed with statuscode: 503".into())
    );
}

#[tokio::test]
async fn same_host_redirects_are_followed_and_others_warn() {
    let (port, seen) = serve(vec![
        answer("302 Found", "Location: /next\r\n", ""),
        answer("200 OK", "", "there"),
    ])
    .await;
    assert_eq!(
        probe(&request(&action(port, "/first")), SECOND).await,
        Outcome::Success("there".into())
    );
    assert!(seen.lock().unwrap()[1].starts_with("GET /next "));

    let (port, _) = serve(vec![answer(
        "301 Moved Permanently",
        "Location: http://elsewhere.test/\r\n",
        "moved",
    )])
    .await;
    assert_eq!(
        probe(&request(&action(port, "/")), SECOND).await,
        Outcome::Warning("Probe terminated redirects, Response body: moved".into())
    );
}

#[tokio::test]
async fn redirect_loops_stop_after_ten() {
    let hop = answer("302 Found", "Location: /again\r\n", "");
    let (port, _) = serve(vec![hop; 10]).await;
    assert_eq!(
        probe(&request(&action(port, "/")), SECOND).await,
        Outcome::Failure("Get \"/again\": stopped after 10 redirects".into())
    );
}

#[tokio::test]
async fn the_body_is_read_up_to_ten_kib() {
    let big = "x".repeat(20 * 1024);
    let (port, _) = serve(vec![answer("200 OK", "", &big)]).await;
    let Outcome::Success(body) = probe(&request(&action(port, "/")), SECOND).await else {
        panic!("not a success")
    };
    assert_eq!(body.len(), 10 * 1024);
}

#[tokio::test]
async fn errors_read_as_gos() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    assert_eq!(
        probe(&request(&action(port, "/x")), SECOND).await,
        Outcome::Failure(format!(
            "Get \"http://127.0.0.1:{port}/x\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        ))
    );

    // A server that never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let keep = tokio::spawn(async move {
        let conns: Vec<_> = vec![silent.accept().await];
        std::future::pending::<()>().await;
        drop(conns);
    });
    let out = probe(&request(&action(port, "")), Duration::from_millis(200)).await;
    keep.abort();
    assert_eq!(
        out,
        Outcome::Failure(format!(
            "Get \"http://127.0.0.1:{port}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        ))
    );
}

#[tokio::test]
async fn https_takes_any_certificate_and_names_a_plain_http_answer() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = tls.read(&mut buf).await.unwrap();
        let _ = tls
            .write_all(answer("200 OK", "", "secure").as_bytes())
            .await;
        let _ = tls.shutdown().await;
    });
    let mut a = action(port, "/");
    a.scheme = Some("HTTPS".into());
    assert_eq!(
        probe(&request(&a), SECOND).await,
        Outcome::Success("secure".into())
    );

    let (port, _) = serve(vec![answer("400 Bad Request", "", "")]).await;
    let mut a = action(port, "/");
    a.scheme = Some("HTTPS".into());
    assert_eq!(
        probe(&request(&a), SECOND).await,
        Outcome::Failure(format!(
            "Get \"https://127.0.0.1:{port}/\": http: server gave HTTP response to HTTPS client"
        ))
    );
}

#[test]
fn redirect_locations_resolve_against_the_request() {
    let base = Url {
        https: false,
        host: "10.0.0.1".into(),
        port: 8080,
        path: "/a/b?q".into(),
    };
    assert_eq!(
        base.join("/c").unwrap().to_string(),
        "http://10.0.0.1:8080/c"
    );
    assert_eq!(
        base.join("c").unwrap().to_string(),
        "http://10.0.0.1:8080/a/c"
    );
    assert_eq!(
        base.join("?z").unwrap().to_string(),
        "http://10.0.0.1:8080/a/b?z"
    );
    assert_eq!(
        base.join("https://other:9443/x").unwrap().to_string(),
        "https://other:9443/x"
    );
    assert_eq!(
        base.join("http://[::1]/").unwrap().to_string(),
        "http://[::1]:80/"
    );
}
