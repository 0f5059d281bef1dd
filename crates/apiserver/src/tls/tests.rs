use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Mutex;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::*;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

fn options(data_dir: &Path, ips: &[IpAddr]) -> PkiOptions {
    PkiOptions {
        data_dir: data_dir.into(),
        hostnames: vec!["node-1".into()],
        ips: ips.to_vec(),
    }
}

fn service_ip() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 43, 0, 1))
}

fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

fn mode(path: impl AsRef<Path>) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The DNS names and IPs in a PEM certificate's subjectAltName.
fn sans(cert_pem: &str) -> (BTreeSet<String>, BTreeSet<IpAddr>) {
    let der = first_cert_der(cert_pem).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let mut dns = BTreeSet::new();
    let mut ips = BTreeSet::new();
    for name in &cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
    {
        match name {
            GeneralName::DNSName(n) => {
                dns.insert(n.to_string());
            }
            GeneralName::IPAddress(bytes) => {
                ips.insert(ip_from_bytes(bytes).unwrap());
            }
            other => panic!("unexpected SAN {other:?}"),
        }
    }
    (dns, ips)
}

fn identity_of_pem(cert_pem: &str) -> Option<CertIdentity> {
    identity_from_cert(&first_cert_der(cert_pem).unwrap())
}

fn admin_identity() -> CertIdentity {
    CertIdentity {
        user: "system:admin".into(),
        groups: vec!["system:masters".into()],
    }
}

#[test]
fn second_ensure_reuses_the_ca_and_every_certificate() {
    let data = tempfile::tempdir().unwrap();
    let first = Pki::ensure(&options(data.path(), &[service_ip()])).unwrap();
    let files = [
        "ca.crt",
        "ca.key",
        "apiserver.crt",
        "apiserver.key",
        "admin.crt",
        "admin.key",
    ];
    let before: Vec<String> = files.iter().map(|f| read(first.dir.join(f))).collect();

    let second = Pki::ensure(&options(data.path(), &[service_ip()])).unwrap();
    let after: Vec<String> = files.iter().map(|f| read(second.dir.join(f))).collect();
    assert_eq!(first.ca_cert_pem, second.ca_cert_pem);
    assert_eq!(before, after);
    assert_eq!(second.dir, data.path().join("tls"));
    assert_eq!(read(data.path().join("tls/ca.crt")), second.ca_cert_pem);
}

#[test]
fn serving_cert_names_the_host_the_service_and_loopback() {
    let data = tempfile::tempdir().unwrap();
    let node_ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    let pki = Pki::ensure(&options(data.path(), &[node_ip, service_ip()])).unwrap();
    let (dns, ips) = sans(&pki.serving.cert_pem);
    for name in [
        "node-1",
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ] {
        assert!(dns.contains(name), "{name} missing from {dns:?}");
    }
    let want: BTreeSet<IpAddr> = [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        node_ip,
        service_ip(),
    ]
    .into();
    assert_eq!(ips, want);
}

#[test]
fn keys_and_the_kubeconfig_are_private() {
    let data = tempfile::tempdir().unwrap();
    let pki = Pki::ensure(&options(data.path(), &[])).unwrap();
    let kubeconfig = pki
        .write_admin_kubeconfig("https://127.0.0.1:6443")
        .unwrap();
    assert_eq!(kubeconfig, data.path().join("admin.kubeconfig"));
    assert_eq!(mode(&pki.dir), 0o700);
    for key in ["ca.key", "apiserver.key", "admin.key"] {
        assert_eq!(mode(pki.dir.join(key)), 0o600, "{key}");
    }
    assert_eq!(mode(pki.dir.join("ca.crt")), 0o644);
    assert_eq!(mode(&kubeconfig), 0o600);
    // No temporary file is left behind.
    let mut names: Vec<String> = fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["admin.kubeconfig", "tls"]);
}

#[test]
fn new_node_ip_reissues_the_serving_cert_under_the_same_ca() {
    let data = tempfile::tempdir().unwrap();
    let first = Pki::ensure(&options(data.path(), &[service_ip()])).unwrap();
    let new_ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 20));
    let second = Pki::ensure(&options(data.path(), &[service_ip(), new_ip])).unwrap();

    assert_eq!(first.ca_cert_pem, second.ca_cert_pem);
    assert_ne!(first.serving.cert_pem, second.serving.cert_pem);
    assert_ne!(first.serving.key_pem, second.serving.key_pem);
    assert!(sans(&second.serving.cert_pem).1.contains(&new_ip));
    assert_eq!(
        read(second.dir.join("apiserver.crt")),
        second.serving.cert_pem
    );
    // The admin certificate had nothing to do with it.
    assert_eq!(first.admin.cert_pem, second.admin.cert_pem);
    // The new certificate is issued by the same CA: a third start keeps it.
    let third = Pki::ensure(&options(data.path(), &[service_ip(), new_ip])).unwrap();
    assert_eq!(second.serving.cert_pem, third.serving.cert_pem);
}

#[test]
fn new_host_name_reissues_the_serving_cert() {
    let data = tempfile::tempdir().unwrap();
    let first = Pki::ensure(&options(data.path(), &[])).unwrap();
    let mut renamed = options(data.path(), &[]);
    renamed.hostnames = vec!["Node-2.example.".into()];
    let second = Pki::ensure(&renamed).unwrap();
    assert_ne!(first.serving.cert_pem, second.serving.cert_pem);
    assert!(sans(&second.serving.cert_pem).0.contains("node-2.example"));
}

#[test]
fn corrupt_ca_is_an_error_naming_the_file_and_is_left_alone() {
    let data = tempfile::tempdir().unwrap();
    Pki::ensure(&options(data.path(), &[])).unwrap();
    let ca_path = data.path().join("tls/ca.crt");
    fs::write(
        &ca_path,
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
    )
    .unwrap();

    let err = Pki::ensure(&options(data.path(), &[])).unwrap_err();
    assert!(
        matches!(&err, TlsError::Corrupt { path, .. } if *path == ca_path),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&ca_path.display().to_string()),
        "{err}"
    );
    assert!(
        read(&ca_path).contains("bm90IGEgY2VydA=="),
        "the corrupt CA was overwritten"
    );
}

#[test]
fn corrupt_ca_key_is_an_error_naming_the_file() {
    let data = tempfile::tempdir().unwrap();
    Pki::ensure(&options(data.path(), &[])).unwrap();
    let key_path = data.path().join("tls/ca.key");
    fs::write(&key_path, "garbage").unwrap();
    let err = Pki::ensure(&options(data.path(), &[])).unwrap_err();
    assert!(
        matches!(&err, TlsError::Corrupt { path, .. } if *path == key_path),
        "{err:?}"
    );
}

#[test]
fn ca_key_of_another_ca_is_an_error() {
    let data = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    Pki::ensure(&options(data.path(), &[])).unwrap();
    Pki::ensure(&options(other.path(), &[])).unwrap();
    fs::copy(
        other.path().join("tls/ca.key"),
        data.path().join("tls/ca.key"),
    )
    .unwrap();
    let err = Pki::ensure(&options(data.path(), &[])).unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
}

#[test]
fn half_a_ca_is_an_error_naming_the_missing_file() {
    let data = tempfile::tempdir().unwrap();
    Pki::ensure(&options(data.path(), &[])).unwrap();
    let cert_path = data.path().join("tls/ca.crt");
    fs::remove_file(&cert_path).unwrap();
    let err = Pki::ensure(&options(data.path(), &[])).unwrap_err();
    assert!(
        matches!(&err, TlsError::IncompleteCa { missing, .. } if *missing == cert_path),
        "{err:?}"
    );
    assert!(!cert_path.exists(), "a new CA was made beside the old key");
}

#[test]
fn corrupt_serving_cert_is_reissued() {
    let data = tempfile::tempdir().unwrap();
    let first = Pki::ensure(&options(data.path(), &[])).unwrap();
    fs::write(first.dir.join("apiserver.crt"), "garbage").unwrap();
    let second = Pki::ensure(&options(data.path(), &[])).unwrap();
    assert_eq!(first.ca_cert_pem, second.ca_cert_pem);
    assert!(second
        .serving
        .cert_pem
        .starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(
        read(second.dir.join("apiserver.crt")),
        second.serving.cert_pem
    );
}

#[test]
fn serving_cert_near_expiry_is_reissued() {
    let data = tempfile::tempdir().unwrap();
    let opts = options(data.path(), &[]);
    let pki = Pki::ensure(&opts).unwrap();
    let short = issue_serving_cert(&pki.ca, &ServingNames::new(&opts), 10 * DAY).unwrap();
    fs::write(pki.dir.join("apiserver.crt"), &short.cert_pem).unwrap();
    fs::write(pki.dir.join("apiserver.key"), &short.key_pem).unwrap();

    let renewed = Pki::ensure(&opts).unwrap();
    assert_ne!(renewed.serving.cert_pem, short.cert_pem);
    let der = first_cert_der(&renewed.serving.cert_pem).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert!(cert.validity().not_after.to_datetime() - OffsetDateTime::now_utc() > 300 * DAY);
}

#[test]
fn certificates_of_another_ca_are_reissued() {
    let data = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let pki = Pki::ensure(&options(data.path(), &[])).unwrap();
    Pki::ensure(&options(other.path(), &[])).unwrap();
    for file in ["apiserver.crt", "apiserver.key", "admin.crt", "admin.key"] {
        fs::copy(other.path().join("tls").join(file), pki.dir.join(file)).unwrap();
    }
    let again = Pki::ensure(&options(data.path(), &[])).unwrap();
    assert_eq!(pki.ca_cert_pem, again.ca_cert_pem);
    assert_ne!(
        read(other.path().join("tls/apiserver.crt")),
        again.serving.cert_pem
    );
    assert_ne!(
        read(other.path().join("tls/admin.crt")),
        again.admin.cert_pem
    );
}

#[test]
fn client_cert_carries_every_organization_as_a_group() {
    let data = tempfile::tempdir().unwrap();
    let pki = Pki::ensure(&options(data.path(), &[])).unwrap();
    let (cert, key) = pki
        .issue_client_cert("alice", &["dev", "system:nodes"], DAY)
        .unwrap();
    assert!(key.contains("PRIVATE KEY"));
    assert_eq!(
        identity_of_pem(&cert),
        Some(CertIdentity {
            user: "alice".into(),
            groups: vec!["dev".into(), "system:nodes".into()]
        })
    );
    assert_eq!(identity_of_pem(&pki.admin.cert_pem), Some(admin_identity()));
    let (no_groups, _) = pki.issue_client_cert("bob", &[], DAY).unwrap();
    assert_eq!(
        identity_of_pem(&no_groups),
        Some(CertIdentity {
            user: "bob".into(),
            groups: vec![]
        })
    );
}

#[test]
fn client_cert_needs_a_user() {
    let data = tempfile::tempdir().unwrap();
    let pki = Pki::ensure(&options(data.path(), &[])).unwrap();
    assert!(matches!(
        pki.issue_client_cert("", &["dev"], DAY),
        Err(TlsError::InvalidSubject { .. })
    ));
    assert!(matches!(
        pki.issue_client_cert("alice", &[""], DAY),
        Err(TlsError::InvalidSubject { .. })
    ));
    assert_eq!(identity_from_cert(b"not a certificate"), None);
    // The CA's subject has a CommonName but no Organization.
    assert_eq!(
        identity_of_pem(&pki.ca_cert_pem).map(|id| id.groups),
        Some(vec![])
    );
}

#[test]
fn kubectl_reads_the_admin_kubeconfig() {
    let data = tempfile::tempdir().unwrap();
    let pki = Pki::ensure(&options(data.path(), &[])).unwrap();
    let path = pki
        .write_admin_kubeconfig("https://127.0.0.1:6443")
        .unwrap();
    let kubectl = |jsonpath: &str| {
        let out = std::process::Command::new("kubectl")
            .env("HOME", data.path())
            .env_remove("KUBECONFIG")
            .arg("--kubeconfig")
            .arg(&path)
            .args([
                "config",
                "view",
                "--raw",
                "-o",
                &format!("jsonpath={jsonpath}"),
            ])
            .output()
            .expect("running kubectl (installed at /usr/bin/kubectl)");
        assert!(
            out.status.success(),
            "kubectl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert_eq!(
        kubectl("{.users[0].user.client-certificate-data}"),
        b64(&pki.admin.cert_pem)
    );
    assert_eq!(
        kubectl("{.users[0].user.client-key-data}"),
        b64(&pki.admin.key_pem)
    );
    assert_eq!(
        kubectl("{.clusters[0].cluster.certificate-authority-data}"),
        b64(&pki.ca_cert_pem)
    );
    assert_eq!(
        kubectl("{.clusters[0].cluster.server}"),
        "https://127.0.0.1:6443"
    );
    assert_eq!(kubectl("{.current-context}"), "krate");

    // Writing again replaces the file whole.
    pki.write_admin_kubeconfig("https://[::1]:7443").unwrap();
    assert_eq!(
        kubectl("{.clusters[0].cluster.server}"),
        "https://[::1]:7443"
    );
}

// --- handshakes -------------------------------------------------------------

/// Accepts one connection; on a completed handshake tells the client who it
/// authenticated as. Returns that identity (`Ok(None)`: anonymous), or the
/// handshake's error.
async fn accept_one(
    config: Arc<ServerConfig>,
) -> (
    SocketAddr,
    tokio::task::JoinHandle<io::Result<Option<CertIdentity>>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = TlsAcceptor::from(config).accept(tcp).await?;
        let identity = peer_identity(tls.get_ref().1);
        let reply = match &identity {
            Some(id) => format!("user={} groups={}", id.user, id.groups.join(",")),
            None => "anonymous".to_string(),
        };
        tls.write_all(reply.as_bytes()).await?;
        tls.shutdown().await?;
        Ok(identity)
    });
    (addr, server)
}

/// Connects trusting `ca_pem`, presenting `client_cert` if given, and returns
/// what the server said.
async fn connect(
    addr: SocketAddr,
    ca_pem: &str,
    client_cert: Option<(String, String)>,
) -> io::Result<String> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(first_cert_der(ca_pem).unwrap()))
        .unwrap();
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
    let config = match client_cert {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<_, _>>()
                    .unwrap(),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(addr).await?;
    let server_name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await?;
    let mut reply = String::new();
    tls.read_to_string(&mut reply).await?;
    Ok(reply)
}

#[tokio::test]
async fn admin_client_cert_is_verified_and_names_system_admin() {
    let data = tempfile::tempdir().unwrap();
    let pki = Pki::ensure(&options(data.path(), &[])).unwrap();
    let (addr, server) = accept_one(pki.server_config().unwrap()).await;
    let admin = (pki.admin.cert_pem.clone(), pki.admin.key_pem.clone());
    let reply = connect(addr, &pki.ca_cert_pem, Some(admin)).await.unwrap();
    assert_eq!(reply, "user=system:admin groups=system:masters");
    assert_eq!(server.await.unwrap().unwrap(), Some(admin_identity()));
}

#[tokio::test]
async fn issued_client_cert_is_verified() {
    let data = tempfile::tempdir().unwrap();
    let pki = Pki::ensure(&options(data.path(), &[])).unwrap();
    let (addr, server) = accept_one(pki.server_config().unwrap()).await;
    let node = pki
        .issue_client_cert("system:node:node-1", &["system:nodes", "extra"], DAY)
        .unwrap();
    let reply = connect(addr, &pki.ca_cert_pem, Some(node)).await.unwrap();
    assert_eq!(reply, "user=system:node:node-1 groups=system:nodes,extra");
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn client_without_a_cert_connects_unauthenticated() {
    let data = tempfile::tempdir().unwrap();
    let pki = Pki::ensure(&options(data.path(), &[])).unwrap();
    let (addr, server) = accept_one(pki.server_config().unwrap()).await;
    let reply = connect(addr, &pki.ca_cert_pem, None).await.unwrap();
    assert_eq!(reply, "anonymous");
    assert_eq!(server.await.unwrap().unwrap(), None);
}

#[tokio::test]
async fn client_cert_from_another_ca_is_rejected() {
    let data = tempfile::tempdir().unwrap();
    let other_data = tempfile::tempdir().unwrap();
    let pki = Pki::ensure(&options(data.path(), &[])).unwrap();
    let other = Pki::ensure(&options(other_data.path(), &[])).unwrap();
    let (addr, server) = accept_one(pki.server_config().unwrap()).await;
    let forged = other
        .issue_client_cert("system:admin", &["system:masters"], DAY)
        .unwrap();
    // With TLS 1.3 the client learns of the rejection after its handshake,
    // from the alert in place of the server's reply.
    let reply = connect(addr, &pki.ca_cert_pem, Some(forged)).await;
    assert!(reply.is_err(), "the server answered {reply:?}");
    let accepted = server.await.unwrap();
    let err = accepted.expect_err("the server accepted a certificate of another CA");
    // UnknownIssuer, or BadSignature when both CAs were made in the same
    // second and so share a name.
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
}

#[tokio::test]
async fn server_cert_is_not_trusted_under_another_ca() {
    let data = tempfile::tempdir().unwrap();
    let other_data = tempfile::tempdir().unwrap();
    let pki = Pki::ensure(&options(data.path(), &[])).unwrap();
    let other = Pki::ensure(&options(other_data.path(), &[])).unwrap();
    let (addr, _server) = accept_one(pki.server_config().unwrap()).await;
    assert!(connect(addr, &other.ca_cert_pem, None).await.is_err());
}

#[tokio::test]
async fn server_offers_h2_then_http1() {
    let data = tempfile::tempdir().unwrap();
    let pki = Pki::ensure(&options(data.path(), &[])).unwrap();
    assert_eq!(
        pki.server_config().unwrap().alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
}

/// The real kubectl, given the written kubeconfig, trusts the CA and the
/// serving certificate's address and authenticates as the admin, over the
/// protocol it negotiates (HTTP/2).
#[tokio::test]
async fn kubectl_trusts_the_ca_and_authenticates_as_admin() {
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let data = tempfile::tempdir().unwrap();
    let pki = Pki::ensure(&options(data.path(), &[])).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let kubeconfig = pki
        .write_admin_kubeconfig(&format!("https://{addr}"))
        .unwrap();

    type Seen = Vec<(Option<CertIdentity>, hyper::Version, String)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let acceptor = TlsAcceptor::from(pki.server_config().unwrap());
    let server = tokio::spawn({
        let seen = seen.clone();
        async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let Ok(tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let identity = peer_identity(tls.get_ref().1);
                let seen = seen.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        seen.lock().unwrap().push((
                            identity.clone(),
                            req.version(),
                            req.uri().path().to_string(),
                        ));
                        let response = if req.uri().path() == "/version" {
                            hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(bytes::Bytes::from_static(
                                    br#"{"major":"1","minor":"32","gitVersion":"v1.32.0"}"#,
                                )))
                        } else {
                            hyper::Response::builder()
                                .status(404)
                                .body(Full::new(bytes::Bytes::new()))
                        };
                        async move { response }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        }
    });

    let run = tokio::process::Command::new("kubectl")
        .env("HOME", data.path())
        .env_remove("KUBECONFIG")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["version", "-o", "json", "--request-timeout=20s"])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("kubectl version timed out")
        .expect("running kubectl (installed at /usr/bin/kubectl)");
    server.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubectl failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        version["serverVersion"]["gitVersion"], "v1.32.0",
        "{stdout}"
    );
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty());
    for (identity, version, path) in seen.iter() {
        assert_eq!(
            identity.as_ref(),
            Some(&admin_identity()),
            "request for {path}"
        );
        assert_eq!(*version, hyper::Version::HTTP_2, "request for {path}");
    }
}
