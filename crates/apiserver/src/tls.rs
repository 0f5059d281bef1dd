//! The cluster's PKI: the CA, the API server's serving certificate, the admin
//! client certificate and kubeconfig, all kept in `<data-dir>/tls`, and the
//! rustls configuration that serves with them.
//!
//! [`Pki::ensure`] makes a first start generate everything and every later
//! start reuse it. Leaves are re-issued when they no longer fit (missing,
//! unreadable as a certificate, about to expire, not signed by the CA, or a
//! serving certificate lacking a wanted name); the CA never is, since every
//! kubeconfig and node trusts it: a CA that cannot be read is an error.
//!
//! Client certificates authenticate as Kubernetes' x509 authenticator does:
//! the subject's CommonName is the user, each Organization a group
//! ([`identity_from_cert`]).

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber, SigningKey,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

/// The user an admin kubeconfig authenticates as.
pub const ADMIN_USER: &str = "system:admin";
/// The group RBAC binds to `cluster-admin` (upstream's `system:masters`).
pub const MASTERS_GROUP: &str = "system:masters";

const CA_FILE: &str = "ca";
const SERVING_FILE: &str = "apiserver";
const ADMIN_FILE: &str = "admin";
const ADMIN_KUBECONFIG: &str = "admin.kubeconfig";

const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// A leaf closer than this to its expiry is re-issued at start.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Certificates start being valid a little in the past, so that a node whose
/// clock is slightly behind ours accepts a certificate issued a moment ago.
const BACKDATE: Duration = Duration::from_secs(60 * 60);

/// DNS names every serving certificate carries, besides the host's names:
/// how clients inside the cluster reach the API server.
const SERVICE_DNS_NAMES: [&str; 5] = [
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("{} does not hold the private key of the certificate in {}", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error(
        "{} exists but {} is missing; restore it, or remove {} to create a new CA \
         (every kubeconfig and node must then be issued again)",
        present.display(), missing.display(), dir.display()
    )]
    IncompleteCa {
        present: PathBuf,
        missing: PathBuf,
        dir: PathBuf,
    },
    #[error(
        "the CA certificate {} expired at {not_after}; remove {} to create a new CA \
         (every kubeconfig and node must then be issued again)",
        path.display(), dir.display()
    )]
    CaExpired {
        path: PathBuf,
        dir: PathBuf,
        not_after: OffsetDateTime,
    },
    #[error("issuing {what} with the CA in {}: {source}", path.display())]
    Issue {
        what: String,
        path: PathBuf,
        source: rcgen::Error,
    },
    #[error("invalid certificate subject for {what}: {reason}")]
    InvalidSubject { what: String, reason: String },
    #[error("TLS server configuration from {}: {source}", path.display())]
    ServerConfig {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("client certificate verifier for the CA in {}: {source}", path.display())]
    ClientVerifier {
        path: PathBuf,
        source: rustls::server::VerifierBuilderError,
    },
}

/// What [`Pki::ensure`] needs to know about this server.
#[derive(Debug, Clone, Default)]
pub struct PkiOptions {
    pub data_dir: PathBuf,
    /// Names the serving certificate must carry besides the fixed ones
    /// (`localhost`, `kubernetes.default.svc`, ...): the host name, usually.
    pub hostnames: Vec<String>,
    /// Addresses the serving certificate must carry besides 127.0.0.1 and ::1:
    /// the node addresses and the first service IP.
    pub ips: Vec<IpAddr>,
}

/// The CA and the certificates issued at start, loaded from `<data-dir>/tls`.
pub struct Pki {
    /// `<data-dir>/tls`.
    pub dir: PathBuf,
    pub ca_cert_pem: String,
    data_dir: PathBuf,
    ca: Ca,
    serving: Leaf,
    admin: Leaf,
}

impl std::fmt::Debug for Pki {
    /// Leaves the keys out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The authenticated identity from a verified client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity {
    pub user: String,
    pub groups: Vec<String>,
}

struct Ca {
    cert_path: PathBuf,
    cert_der: Vec<u8>,
    /// The CA's subject as encoded in its certificate: the issuer of every
    /// certificate it signs, compared byte for byte by verifiers.
    subject_der: Vec<u8>,
    subject_key_id: Option<Vec<u8>>,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, as written to disk.
struct Leaf {
    cert_pem: String,
    key_pem: String,
}

impl Pki {
    /// Loads the CA, serving cert and admin client cert from `<data_dir>/tls`,
    /// generating what is missing. Re-issues the serving certificate (never
    /// the CA) when it lacks one of the wanted names or addresses.
    pub fn ensure(opts: &PkiOptions) -> Result<Pki, TlsError> {
        let dir = opts.data_dir.join("tls");
        create_private_dir(&dir)?;
        let ca = load_or_create_ca(&dir)?;
        let names = ServingNames::new(opts);
        let serving = ensure_leaf(
            &dir,
            SERVING_FILE,
            &ca,
            &|cert| names.missing_from(cert),
            &|| issue_serving_cert(&ca, &names, LEAF_VALIDITY),
        )?;
        let admin_identity = CertIdentity {
            user: ADMIN_USER.to_string(),
            groups: vec![MASTERS_GROUP.to_string()],
        };
        let admin = ensure_leaf(
            &dir,
            ADMIN_FILE,
            &ca,
            &|cert| match identity_from_cert(cert.as_raw()) {
                Some(id) if id == admin_identity => None,
                other => Some(format!("its subject is {other:?}, not {admin_identity:?}")),
            },
            &|| issue_client(&ca, ADMIN_USER, &[MASTERS_GROUP], LEAF_VALIDITY),
        )?;
        Ok(Pki {
            dir,
            ca_cert_pem: pem_encode("CERTIFICATE", &ca.cert_der),
            data_dir: opts.data_dir.clone(),
            ca,
            serving,
            admin,
        })
    }

    /// The rustls configuration for the API server: the serving certificate,
    /// ALPN `h2` then `http/1.1`, and client certificates optional but, when
    /// presented, verified against the CA (a certificate from elsewhere fails
    /// the handshake, as upstream's `VerifyClientCertIfGiven` does).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let serving_path = self.dir.join(format!("{SERVING_FILE}.crt"));
        let server_error = |source| TlsError::ServerConfig {
            path: serving_path.clone(),
            source,
        };

        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca.cert_der.clone()))
            .map_err(server_error)?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|source| TlsError::ClientVerifier {
                    path: self.ca.cert_path.clone(),
                    source,
                })?;

        let chain = CertificateDer::pem_slice_iter(self.serving.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Corrupt {
                path: serving_path.clone(),
                reason: e.to_string(),
            })?;
        let key = PrivateKeyDer::from_pem_slice(self.serving.key_pem.as_bytes()).map_err(|e| {
            TlsError::Corrupt {
                path: self.dir.join(format!("{SERVING_FILE}.key")),
                reason: e.to_string(),
            }
        })?;

        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(server_error)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(server_error)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Writes `<data_dir>/admin.kubeconfig` (mode 0600, atomically): cluster
    /// and context `krate`, user `admin` with the admin client certificate,
    /// everything embedded. Returns its path.
    pub fn write_admin_kubeconfig(&self, server_url: &str) -> Result<PathBuf, TlsError> {
        let path = self.data_dir.join(ADMIN_KUBECONFIG);
        let kubeconfig = kubeconfig_yaml(
            server_url,
            &self.ca_cert_pem,
            &self.admin.cert_pem,
            &self.admin.key_pem,
        );
        write_atomic(&path, kubeconfig.as_bytes(), 0o600)?;
        Ok(path)
    }

    /// Issues a client certificate signed by the CA for `common_name` (the
    /// user) in `organizations` (the groups). Returns `(cert_pem, key_pem)`.
    pub fn issue_client_cert(
        &self,
        common_name: &str,
        organizations: &[&str],
        validity: Duration,
    ) -> Result<(String, String), TlsError> {
        let leaf = issue_client(&self.ca, common_name, organizations, validity)?;
        Ok((leaf.cert_pem, leaf.key_pem))
    }

    /// Issues a kubelet serving certificate signed by the CA for node
    /// `node_name`, naming `hostnames` and `ips` (besides loopback).
    /// Returns `(cert_pem, key_pem)`.
    pub fn issue_kubelet_serving_cert(
        &self,
        node_name: &str,
        hostnames: &[String],
        ips: &[IpAddr],
        validity: Duration,
    ) -> Result<(String, String), TlsError> {
        let mut names = ServingNames {
            dns: BTreeSet::new(),
            ips: [
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]
            .into_iter()
            .chain(ips.iter().copied())
            .collect(),
        };
        for h in std::iter::once(node_name).chain(hostnames.iter().map(String::as_str)) {
            let h = h.trim().trim_end_matches('.').to_ascii_lowercase();
            if !h.is_empty() {
                names.dns.insert(h);
            }
        }
        let leaf = issue_serving_cert_for(&self.ca, node_name, &names, validity)?;
        Ok((leaf.cert_pem, leaf.key_pem))
    }

    /// The API server's client certificate for kubelets
    /// (`kube-apiserver-kubelet-client` in `system:masters`).
    pub fn kubelet_client(&self) -> Result<crate::kubelet::KubeletClient, TlsError> {
        let (cert, key) = self.issue_client_cert(
            crate::kubelet::KUBELET_CLIENT_USER,
            &[MASTERS_GROUP],
            LEAF_VALIDITY,
        )?;
        crate::kubelet::KubeletClient::new(&self.ca_cert_pem, &cert, &key).map_err(|reason| {
            TlsError::InvalidSubject {
                what: "the kubelet client certificate".into(),
                reason,
            }
        })
    }
}

/// The user (CommonName) and groups (each Organization) a client certificate
/// stands for, as upstream's `CommonNameUserConversion`: `None` when the
/// certificate cannot be parsed or has no CommonName. The caller has verified
/// the certificate (rustls did, during the handshake).
pub fn identity_from_cert(der: &[u8]) -> Option<CertIdentity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    // Go's pkix.Name keeps the last CommonName it meets.
    let user = subject
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .last()?;
    if user.is_empty() {
        return None;
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_string)
        .collect();
    Some(CertIdentity {
        user: user.to_string(),
        groups,
    })
}

/// The identity of the client at the other end of a handshake that
/// [`Pki::server_config`] accepted, if it presented a certificate.
pub fn peer_identity(conn: &rustls::ServerConnection) -> Option<CertIdentity> {
    identity_from_cert(conn.peer_certificates()?.first()?)
}

// --- the CA -----------------------------------------------------------------

fn load_or_create_ca(dir: &Path) -> Result<Ca, TlsError> {
    let cert_path = dir.join(format!("{CA_FILE}.crt"));
    let key_path = dir.join(format!("{CA_FILE}.key"));
    match (read_optional(&cert_path)?, read_optional(&key_path)?) {
        (Some(cert_pem), Some(key_pem)) => load_ca(dir, cert_path, &cert_pem, &key_path, &key_pem),
        (None, None) => create_ca(cert_path, &key_path),
        (Some(_), None) => Err(TlsError::IncompleteCa {
            present: cert_path,
            missing: key_path,
            dir: dir.into(),
        }),
        (None, Some(_)) => Err(TlsError::IncompleteCa {
            present: key_path,
            missing: cert_path,
            dir: dir.into(),
        }),
    }
}

fn load_ca(
    dir: &Path,
    cert_path: PathBuf,
    cert_pem: &str,
    key_path: &Path,
    key_pem: &str,
) -> Result<Ca, TlsError> {
    let corrupt = |path: &Path, reason: String| TlsError::Corrupt {
        path: path.into(),
        reason,
    };
    let cert_der = first_cert_der(cert_pem).map_err(|reason| corrupt(&cert_path, reason))?;
    let key = KeyPair::from_pem(key_pem)
        .map_err(|e| corrupt(key_path, format!("not a private key: {e}")))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&cert_der)
        .map_err(|e| corrupt(&cert_path, format!("not an X.509 certificate: {e}")))?;
    if !cert.is_ca() {
        return Err(corrupt(
            &cert_path,
            "not a CA certificate (basicConstraints cA is not set)".into(),
        ));
    }
    if cert.public_key().raw != key.subject_public_key_info().as_slice() {
        return Err(TlsError::KeyMismatch {
            cert: cert_path,
            key: key_path.into(),
        });
    }
    let not_after = cert.validity().not_after.to_datetime();
    if not_after <= OffsetDateTime::now_utc() {
        return Err(TlsError::CaExpired {
            path: cert_path,
            dir: dir.into(),
            not_after,
        });
    }
    let subject_der = cert.subject().as_raw().to_vec();
    let subject_key_id = subject_key_id(&cert);
    let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(cert_der.as_slice()), key)
        .map_err(|e| corrupt(&cert_path, format!("cannot sign with this CA: {e}")))?;
    Ok(Ca {
        cert_path,
        cert_der,
        subject_der,
        subject_key_id,
        issuer,
    })
}

fn create_ca(cert_path: PathBuf, key_path: &Path) -> Result<Ca, TlsError> {
    let issue_error = |source| TlsError::Issue {
        what: "the CA".into(),
        path: cert_path.clone(),
        source,
    };
    let key = KeyPair::generate().map_err(issue_error)?;
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    // A name of its own per CA (as k3s' `k3s-server-ca@<time>`), so that
    // a client never confuses a re-created CA with the one it trusted.
    params.distinguished_name = common_name_dn(&format!("krate-ca@{}", now.unix_timestamp()));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    params.serial_number = Some(random_serial());
    (params.not_before, params.not_after) = validity_from(now, CA_VALIDITY);
    let cert = params.self_signed(&key).map_err(issue_error)?;

    // The key first: a certificate without its key is useless, and the
    // error for a half-written CA names the missing file.
    write_atomic(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(&cert_path, cert.pem().as_bytes(), 0o644)?;
    tracing::info!(cert = %cert_path.display(), "created the cluster CA");

    let cert_der = cert.der().to_vec();
    let (_, parsed) =
        x509_parser::parse_x509_certificate(&cert_der).map_err(|e| TlsError::Corrupt {
            path: cert_path.clone(),
            reason: format!("the generated CA does not parse: {e}"),
        })?;
    let subject_der = parsed.subject().as_raw().to_vec();
    let subject_key_id = subject_key_id(&parsed);
    let issuer = Issuer::new(params, key);
    Ok(Ca {
        cert_path,
        cert_der,
        subject_der,
        subject_key_id,
        issuer,
    })
}

// --- leaves -----------------------------------------------------------------

/// Loads `<name>.crt`/`<name>.key` when they are still good (signed by `ca`,
/// matching, far from expiry, and `unfit` has nothing against them), issues
/// and writes new ones otherwise.
fn ensure_leaf(
    dir: &Path,
    name: &str,
    ca: &Ca,
    unfit: &dyn Fn(&X509Certificate<'_>) -> Option<String>,
    issue: &dyn Fn() -> Result<Leaf, TlsError>,
) -> Result<Leaf, TlsError> {
    let cert_path = dir.join(format!("{name}.crt"));
    let key_path = dir.join(format!("{name}.key"));
    let existing = match (read_optional(&cert_path)?, read_optional(&key_path)?) {
        (Some(cert_pem), Some(key_pem)) => Some(Leaf { cert_pem, key_pem }),
        _ => None,
    };
    if let Some(leaf) = existing {
        match leaf_problem(&leaf, ca, unfit) {
            None => return Ok(leaf),
            Some(reason) => {
                tracing::info!(cert = %cert_path.display(), %reason, "issuing a new certificate")
            }
        }
    }
    let leaf = issue()?;
    write_atomic(&key_path, leaf.key_pem.as_bytes(), 0o600)?;
    write_atomic(&cert_path, leaf.cert_pem.as_bytes(), 0o644)?;
    Ok(leaf)
}

/// Why `leaf` must be issued again, if it must.
fn leaf_problem(
    leaf: &Leaf,
    ca: &Ca,
    unfit: &dyn Fn(&X509Certificate<'_>) -> Option<String>,
) -> Option<String> {
    let der = match first_cert_der(&leaf.cert_pem) {
        Ok(der) => der,
        Err(reason) => return Some(reason),
    };
    let cert = match x509_parser::parse_x509_certificate(&der) {
        Ok((_, cert)) => cert,
        Err(e) => return Some(format!("not an X.509 certificate: {e}")),
    };
    let key = match KeyPair::from_pem(&leaf.key_pem) {
        Ok(key) => key,
        Err(e) => return Some(format!("its key does not parse: {e}")),
    };
    if cert.public_key().raw != key.subject_public_key_info().as_slice() {
        return Some("the key file does not match the certificate".into());
    }
    let ca_cert = x509_parser::parse_x509_certificate(&ca.cert_der).ok()?.1;
    if cert.issuer().as_raw() != ca.subject_der.as_slice()
        || cert.verify_signature(Some(ca_cert.public_key())).is_err()
    {
        return Some("it was not issued by the current CA".into());
    }
    let not_after = cert.validity().not_after.to_datetime();
    if not_after - OffsetDateTime::now_utc() < RENEW_BEFORE {
        return Some(format!("it expires at {not_after}"));
    }
    unfit(&cert)
}

/// The names and addresses a serving certificate must carry.
struct ServingNames {
    dns: BTreeSet<String>,
    ips: BTreeSet<IpAddr>,
}

impl ServingNames {
    fn new(opts: &PkiOptions) -> Self {
        let dns = opts
            .hostnames
            .iter()
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .chain(SERVICE_DNS_NAMES.iter().map(|n| n.to_string()))
            .collect();
        let ips = [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]
        .into_iter()
        .chain(opts.ips.iter().copied())
        .collect();
        ServingNames { dns, ips }
    }

    /// What `cert` lacks of these names, if anything.
    fn missing_from(&self, cert: &X509Certificate<'_>) -> Option<String> {
        let mut dns = BTreeSet::new();
        let mut ips = BTreeSet::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(n) => {
                        dns.insert(n.to_ascii_lowercase());
                    }
                    GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_from_bytes(bytes) {
                            ips.insert(ip);
                        }
                    }
                    _ => {}
                }
            }
        }
        let missing: Vec<String> = (self.dns.difference(&dns).cloned())
            .chain(self.ips.difference(&ips).map(IpAddr::to_string))
            .collect();
        (!missing.is_empty()).then(|| format!("it lacks {}", missing.join(", ")))
    }
}

fn issue_serving_cert(ca: &Ca, names: &ServingNames, validity: Duration) -> Result<Leaf, TlsError> {
    issue_serving_cert_for(ca, "kube-apiserver", names, validity)
}

fn issue_serving_cert_for(
    ca: &Ca,
    common_name: &str,
    names: &ServingNames,
    validity: Duration,
) -> Result<Leaf, TlsError> {
    let issue_error = |source| TlsError::Issue {
        what: "the serving certificate".into(),
        path: ca.cert_path.clone(),
        source,
    };
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_dn(common_name);
    for name in &names.dns {
        let name = name
            .clone()
            .try_into()
            .map_err(|e: rcgen::Error| TlsError::InvalidSubject {
                what: "the serving certificate".into(),
                reason: format!("host name {name:?}: {e}"),
            })?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    params
        .subject_alt_names
        .extend(names.ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    (params.not_before, params.not_after) = validity_from(OffsetDateTime::now_utc(), validity);
    let key = KeyPair::generate().map_err(issue_error)?;
    let cert = params.signed_by(&key, &ca.issuer).map_err(issue_error)?;
    Ok(Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Issues a client certificate. Written out by hand rather than by rcgen,
/// whose subject holds each attribute type once: Kubernetes reads one group
/// per Organization, so a user in two groups needs two of them.
fn issue_client(
    ca: &Ca,
    common_name: &str,
    organizations: &[&str],
    validity: Duration,
) -> Result<Leaf, TlsError> {
    let what = || format!("a client certificate for {common_name:?}");
    if common_name.is_empty() {
        return Err(TlsError::InvalidSubject {
            what: what(),
            reason: "the common name (user) is empty".into(),
        });
    }
    if organizations.iter().any(|o| o.is_empty()) {
        return Err(TlsError::InvalidSubject {
            what: what(),
            reason: "an organization (group) is empty".into(),
        });
    }
    let issue_error = |source| TlsError::Issue {
        what: what(),
        path: ca.cert_path.clone(),
        source,
    };
    let signature_algorithm = signature_algorithm(ca.issuer.key()).ok_or_else(|| TlsError::Corrupt {
        path: ca.cert_path.clone(),
        reason: "the CA key's algorithm cannot sign client certificates (want ECDSA, Ed25519 or RSA)".into(),
    })?;
    let key = KeyPair::generate().map_err(issue_error)?;
    let (not_before, not_after) = validity_from(OffsetDateTime::now_utc(), validity);
    let subject = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            write_name_attribute(w.next(), OID_COMMON_NAME, common_name);
            for organization in organizations {
                write_name_attribute(w.next(), OID_ORGANIZATION, organization);
            }
        })
    });
    let cert = sign_leaf(
        ca,
        &signature_algorithm,
        &subject,
        &key.subject_public_key_info(),
        (not_before, not_after),
        |w| {
            // keyUsage: digitalSignature.
            write_extension(w.next(), OID_KEY_USAGE, true, |w| {
                w.write_bitvec_bytes(&[0x80], 1)
            });
            write_extension(w.next(), OID_EXT_KEY_USAGE, false, |w| {
                w.write_sequence(|w| w.next().write_oid(&oid(OID_CLIENT_AUTH)))
            });
        },
    )
    .map_err(issue_error)?;
    Ok(Leaf {
        cert_pem: pem_encode("CERTIFICATE", &cert),
        key_pem: key.serialize_pem(),
    })
}

/// Signs a leaf certificate for `subject` (a DER Name) and `spki` (a DER
/// SubjectPublicKeyInfo) with the CA: the `extensions` written, then
/// basicConstraints (not a CA) and the CA's key id. Returns DER.
fn sign_leaf(
    ca: &Ca,
    signature_algorithm: &SignatureAlgorithm,
    subject: &[u8],
    spki: &[u8],
    (not_before, not_after): (OffsetDateTime, OffsetDateTime),
    extensions: impl FnOnce(&mut yasna::DERWriterSeq<'_>),
) -> Result<Vec<u8>, rcgen::Error> {
    let serial = random_serial();
    let tbs = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next()
                .write_tagged(yasna::Tag::context(0), |w| w.write_u8(2)); // v3
            w.next().write_bigint_bytes(serial.as_ref(), true);
            signature_algorithm.write(w.next());
            w.next().write_der(&ca.subject_der);
            w.next().write_sequence(|w| {
                write_time(w.next(), not_before);
                write_time(w.next(), not_after);
            });
            w.next().write_der(subject);
            w.next().write_der(spki);
            w.next().write_tagged(yasna::Tag::context(3), |w| {
                w.write_sequence(|w| {
                    extensions(w);
                    // basicConstraints: not a CA.
                    write_extension(w.next(), OID_BASIC_CONSTRAINTS, true, |w| {
                        w.write_sequence(|_| {})
                    });
                    if let Some(key_id) = &ca.subject_key_id {
                        write_extension(w.next(), OID_AUTHORITY_KEY_ID, false, |w| {
                            w.write_sequence(|w| {
                                w.next().write_tagged_implicit(yasna::Tag::context(0), |w| {
                                    w.write_bytes(key_id)
                                })
                            })
                        });
                    }
                })
            });
        })
    });
    let signature = ca.issuer.key().sign(&tbs)?;
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&tbs);
            signature_algorithm.write(w.next());
            w.next().write_bitvec_bytes(&signature, signature.len() * 8);
        })
    }))
}

const OID_COMMON_NAME: &[u64] = &[2, 5, 4, 3];
const OID_ORGANIZATION: &[u64] = &[2, 5, 4, 10];
const OID_KEY_USAGE: &[u64] = &[2, 5, 29, 15];
const OID_EXT_KEY_USAGE: &[u64] = &[2, 5, 29, 37];
const OID_BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];
const OID_AUTHORITY_KEY_ID: &[u64] = &[2, 5, 29, 35];
const OID_CLIENT_AUTH: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 2];

/// A certificate's signature AlgorithmIdentifier.
struct SignatureAlgorithm {
    oid: &'static [u64],
    /// RSA's parameters are an explicit NULL; ECDSA's and Ed25519's absent.
    null_parameters: bool,
}

impl SignatureAlgorithm {
    fn write(&self, w: yasna::DERWriter<'_>) {
        w.write_sequence(|w| {
            w.next().write_oid(&oid(self.oid));
            if self.null_parameters {
                w.next().write_null();
            }
        })
    }
}

fn signature_algorithm(key: &KeyPair) -> Option<SignatureAlgorithm> {
    let alg = key.algorithm();
    let (oid, null_parameters): (&'static [u64], bool) = if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        (&[1, 2, 840, 10045, 4, 3, 2], false)
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        (&[1, 2, 840, 10045, 4, 3, 3], false)
    } else if alg == &rcgen::PKCS_ED25519 {
        (&[1, 3, 101, 112], false)
    } else if alg == &rcgen::PKCS_RSA_SHA256 {
        (&[1, 2, 840, 113549, 1, 1, 11], true)
    } else {
        return None;
    };
    Some(SignatureAlgorithm {
        oid,
        null_parameters,
    })
}

fn oid(components: &[u64]) -> yasna::models::ObjectIdentifier {
    yasna::models::ObjectIdentifier::from_slice(components)
}

fn write_name_attribute(w: yasna::DERWriter<'_>, attribute: &[u64], value: &str) {
    w.write_set(|w| {
        w.next().write_sequence(|w| {
            w.next().write_oid(&oid(attribute));
            w.next().write_utf8_string(value);
        })
    })
}

fn write_extension(
    w: yasna::DERWriter<'_>,
    id: &[u64],
    critical: bool,
    value: impl FnOnce(yasna::DERWriter<'_>),
) {
    w.write_sequence(|w| {
        w.next().write_oid(&oid(id));
        if critical {
            w.next().write_bool(true);
        }
        w.next().write_bytes(&yasna::construct_der(value));
    })
}

/// UTCTime through 2049, GeneralizedTime from 2050 on (RFC 5280 4.1.2.5).
fn write_time(w: yasna::DERWriter<'_>, at: OffsetDateTime) {
    match yasna::models::UTCTime::from_datetime_opt(at) {
        Some(utc) => w.write_utctime(&utc),
        None => w.write_generalized_time(&yasna::models::GeneralizedTime::from_datetime(at)),
    }
}

// --- helpers ----------------------------------------------------------------

fn common_name_dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    // Positive and of full length: DER integers carry no leading zero byte.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

/// Backdated by [`BACKDATE`], to whole seconds (certificate times have no
/// fractions).
fn validity_from(now: OffsetDateTime, validity: Duration) -> (OffsetDateTime, OffsetDateTime) {
    let now = now.replace_nanosecond(0).unwrap_or(now);
    (now - BACKDATE, now + validity)
}

fn subject_key_id(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                Some(id.0.to_vec())
            }
            _ => None,
        })
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

fn first_cert_der(pem: &str) -> Result<Vec<u8>, String> {
    match CertificateDer::pem_slice_iter(pem.as_bytes()).next() {
        Some(Ok(der)) => Ok(der.to_vec()),
        Some(Err(e)) => Err(format!("not a PEM certificate: {e}")),
        None => Err("holds no PEM CERTIFICATE block".into()),
    }
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

fn kubeconfig_yaml(server_url: &str, ca_pem: &str, cert_pem: &str, key_pem: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    // A JSON string is a valid YAML double-quoted scalar: quoting the URL
    // this way keeps any character in it from changing the document.
    let server = serde_json::Value::from(server_url).to_string();
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: krate
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: admin
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: krate
  context:
    cluster: krate
    user: admin
current-context: krate
preferences: {{}}
",
        ca = b64(ca_pem),
        cert = b64(cert_pem),
        key = b64(key_pem),
    )
}

/// The file's text, or `None` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, TlsError> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| TlsError::Corrupt {
                path: path.into(),
                reason: "not a PEM text file".into(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Io {
            path: path.into(),
            source,
        }),
    }
}

fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    let io_error = |source| TlsError::Io {
        path: dir.into(),
        source,
    };
    fs::create_dir_all(dir).map_err(io_error)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_error)
}

/// Writes through a temporary file and a rename, so that a crash leaves the
/// old file or the new one, never half of one.
fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let io_error = |p: &Path| {
        let p = p.to_path_buf();
        move |source| TlsError::Io { path: p, source }
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed `mode`; never widened it.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()
    })();
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_error(&tmp)(source));
    }
    fs::rename(&tmp, path).map_err(|source| {
        let _ = fs::remove_file(&tmp);
        io_error(path)(source)
    })?;
    let parent = path.parent().unwrap_or(Path::new("."));
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(io_error(parent))
}

mod authority;
pub use authority::CsrAuthority;

#[cfg(test)]
mod tests;
