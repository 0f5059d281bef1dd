//! CertificateSigningRequests with kubectl: `kubectl certificate
//! approve/deny` through the approval subresource, the signer issuing
//! approved `kubernetes.io/kube-apiserver-client` requests with the cluster
//! CA (honouring `expirationSeconds`), a certificate the API server then
//! accepts, and a request its signer refuses marked Failed.

mod support;

use std::time::Duration;

use base64::Engine;
use support::{eventually_blocking, Cluster};

/// A key and a PEM certification request for `cn` in the groups `orgs`.
fn key_and_request(cn: &str, org: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, org);
    let request = params.serialize_request(&key).unwrap().pem().unwrap();
    (key.serialize_pem(), request)
}

fn csr_manifest(name: &str, request_pem: &str, usages: &[&str], expiration: u32) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(request_pem);
    let usages: Vec<String> = usages.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: {name}\nspec:\n  request: {b64}\n  signerName: kubernetes.io/kube-apiserver-client\n  expirationSeconds: {expiration}\n  usages: [{}]\n",
        usages.join(", ")
    )
}

fn condition(c: &Cluster, name: &str) -> String {
    c.ok(&[
        "get",
        "csr",
        name,
        "--no-headers",
        "-o",
        "custom-columns=C:.status.conditions[*].type",
    ])
    .trim()
    .to_string()
}

#[test]
fn an_approved_client_csr_is_signed_and_its_certificate_logs_in() {
    let c = Cluster::start();
    let (key_pem, request) = key_and_request("jane", "devs");
    c.ok_stdin(
        &["apply", "-f", "-"],
        &csr_manifest("jane", &request, &["client auth"], 3600),
    );
    // Pending, requested by the admin who created it.
    let row = c.ok(&["get", "csr", "jane", "--no-headers"]);
    assert!(row.contains("kubernetes.io/kube-apiserver-client"), "{row}");
    assert!(row.contains("system:admin"), "{row}");
    assert!(row.contains("Pending"), "{row}");
    let spec_user = c.ok(&["get", "csr", "jane", "-o", "jsonpath={.spec.username}"]);
    assert_eq!(spec_user, "system:admin");

    let out = c.ok(&["certificate", "approve", "jane"]);
    assert!(
        out.contains("certificatesigningrequest.certificates.k8s.io/jane approved"),
        "{out}"
    );
    let cert_b64 = eventually_blocking(Duration::from_secs(20), "the certificate issued", || {
        let cert = c.ok(&["get", "csr", "jane", "-o", "jsonpath={.status.certificate}"]);
        if cert.is_empty() {
            Err(c.ok(&["get", "csr", "jane", "-o", "yaml"]))
        } else {
            Ok(cert)
        }
    });
    let row = c.ok(&["get", "csr", "jane", "--no-headers"]);
    assert!(row.contains("Approved,Issued"), "{row}");
    let reason = c.ok(&[
        "get",
        "csr",
        "jane",
        "-o",
        "jsonpath={.status.conditions[0].reason}",
    ]);
    assert_eq!(reason, "KubectlApprove");

    let cert_pem = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(cert_b64.trim())
            .unwrap(),
    )
    .unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).unwrap();
    let cert = pem.parse_x509().unwrap();
    assert_eq!(cert.subject().to_string(), "CN=jane, O=devs");
    // expirationSeconds: one hour from now, backdated 5 minutes at the start.
    let life = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert_eq!(life, 3600 + 300);

    // The certificate is a login to this API server.
    let dir = c.dir.path();
    let cert_file = support::write(dir, "jane.crt", &cert_pem);
    let key_file = support::write(dir, "jane.key", &key_pem);
    let ca = c.data_dir().join("tls").join("ca.crt");
    let out = std::process::Command::new("kubectl")
        .args(["--server", &c.server_url(), "--certificate-authority"])
        .arg(&ca)
        .arg("--client-certificate")
        .arg(&cert_file)
        .arg("--client-key")
        .arg(&key_file)
        .args(["auth", "whoami"])
        .env("KUBECONFIG", "/dev/null")
        .output()
        .unwrap();
    let who = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(who.contains("jane") && who.contains("devs"), "{who}");
}

#[test]
fn a_denied_csr_gets_no_certificate_and_a_refused_usage_fails() {
    let c = Cluster::start();
    let (_, request) = key_and_request("mallory", "devs");
    c.ok_stdin(
        &["apply", "-f", "-"],
        &csr_manifest("mallory", &request, &["client auth"], 3600),
    );
    let out = c.ok(&["certificate", "deny", "mallory"]);
    assert!(out.contains("denied"), "{out}");
    assert_eq!(condition(&c, "mallory"), "Denied");
    // A denied request stays denied: the approval cannot be removed.
    let row = c.ok(&["get", "csr", "mallory", "--no-headers"]);
    assert!(row.contains("Denied"), "{row}");
    assert_eq!(
        c.ok(&[
            "get",
            "csr",
            "mallory",
            "-o",
            "jsonpath={.status.certificate}"
        ]),
        ""
    );

    // A client signer does not issue serving certificates.
    let (_, request) = key_and_request("web", "devs");
    c.ok_stdin(
        &["apply", "-f", "-"],
        &csr_manifest("web", &request, &["client auth", "server auth"], 3600),
    );
    c.ok(&["certificate", "approve", "web"]);
    eventually_blocking(
        Duration::from_secs(20),
        "the Failed condition",
        || match condition(&c, "web").as_str() {
            "Approved,Failed" => Ok(()),
            other => Err(other.to_string()),
        },
    );
    let failed = c.ok(&[
        "get",
        "csr",
        "web",
        "-o",
        "jsonpath={.status.conditions[1].reason}: {.status.conditions[1].message}",
    ]);
    assert_eq!(
        failed,
        "SignerValidationFailure: invalid usage for client certificate: server auth"
    );

    // Requests below ten minutes are refused by the API.
    let (_, request) = key_and_request("short", "devs");
    let why = c.fails_stdin(
        &["apply", "-f", "-"],
        &csr_manifest("short", &request, &["client auth"], 60),
    );
    assert!(
        why.contains("spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds (10 minutes)"),
        "{why}"
    );
}
