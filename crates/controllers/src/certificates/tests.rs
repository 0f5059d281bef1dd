use std::time::{Duration, SystemTime};

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestSpec,
    CertificateSigningRequestStatus,
};
use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeStatus};
use k8s_openapi::ByteString;

use super::approver::{self, NODE_CLIENT_MESSAGE, SELF_NODE_CLIENT_MESSAGE};
use super::signer::{self, boundaries, duration, Decision, DEFAULT_CERT_TTL};
use super::*;

/// A PEM certification request for `cn` in `org` with these SANs.
fn request_pem(cn: &str, org: Option<&str>, dns: &[&str], ips: &[&str]) -> Vec<u8> {
    let mut params =
        rcgen::CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>())
            .unwrap();
    for ip in ips {
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(ip.parse().unwrap()));
    }
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, cn);
    if let Some(o) = org {
        dn.push(rcgen::DnType::OrganizationName, o);
    }
    params.distinguished_name = dn;
    let key = rcgen::KeyPair::generate().unwrap();
    params
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap()
        .into_bytes()
}

fn csr(signer: &str, pem: Vec<u8>, usages: &[&str], user: &str) -> CertificateSigningRequest {
    CertificateSigningRequest {
        metadata: kube::api::ObjectMeta {
            name: Some("csr-1".into()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            signer_name: signer.into(),
            request: ByteString(pem),
            usages: Some(usages.iter().map(|u| u.to_string()).collect()),
            username: Some(user.into()),
            groups: Some(vec!["system:nodes".into(), "system:authenticated".into()]),
            ..Default::default()
        },
        status: None,
    }
}

fn with_condition(mut c: CertificateSigningRequest, type_: &str) -> CertificateSigningRequest {
    c.status
        .get_or_insert_with(CertificateSigningRequestStatus::default)
        .conditions
        .get_or_insert_with(Vec::new)
        .push(CertificateSigningRequestCondition {
            type_: type_.into(),
            status: "True".into(),
            ..Default::default()
        });
    c
}

const SERVING: &[&str] = &["digital signature", "key encipherment", "server auth"];

fn serving_csr(node: &str, dns: &[&str], ips: &[&str]) -> (CertificateSigningRequest, Request) {
    let pem = request_pem(
        &format!("system:node:{node}"),
        Some("system:nodes"),
        dns,
        ips,
    );
    let request = Request::parse(&pem).unwrap();
    (
        csr(
            KUBELET_SERVING_SIGNER,
            pem,
            SERVING,
            &format!("system:node:{node}"),
        ),
        request,
    )
}

fn node(name: &str, addresses: &[(&str, &str)]) -> Node {
    Node {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        status: Some(NodeStatus {
            addresses: Some(
                addresses
                    .iter()
                    .map(|(t, a)| NodeAddress {
                        type_: t.to_string(),
                        address: a.to_string(),
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn a_request_is_parsed_into_subject_and_names() {
    let pem = request_pem(
        "system:node:w1",
        Some("system:nodes"),
        &["w1"],
        &["10.0.0.5"],
    );
    let r = Request::parse(&pem).unwrap();
    assert_eq!(r.common_name, "system:node:w1");
    assert_eq!(r.organizations, ["system:nodes"]);
    assert_eq!(r.dns_names, ["w1"]);
    assert_eq!(
        r.ip_addresses,
        ["10.0.0.5".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(
        Request::parse(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .unwrap_err(),
        "PEM block type must be CERTIFICATE REQUEST"
    );
}

#[test]
fn the_signer_signs_only_approved_requests_of_its_signers() {
    let pem = request_pem("jane", Some("devs"), &[], &[]);
    let request = Request::parse(&pem).unwrap();
    let pending = csr(
        KUBE_APISERVER_CLIENT_SIGNER,
        pem.clone(),
        &["client auth"],
        "admin",
    );
    assert_eq!(
        signer::decide(&pending, &request, DEFAULT_CERT_TTL),
        Decision::Ignore
    );
    let approved = with_condition(pending.clone(), "Approved");
    assert_eq!(
        signer::decide(&approved, &request, DEFAULT_CERT_TTL),
        Decision::Sign(DEFAULT_CERT_TTL)
    );
    let denied = with_condition(approved.clone(), "Denied");
    assert_eq!(
        signer::decide(&denied, &request, DEFAULT_CERT_TTL),
        Decision::Ignore
    );
    let failed = with_condition(approved.clone(), "Failed");
    assert_eq!(
        signer::decide(&failed, &request, DEFAULT_CERT_TTL),
        Decision::Ignore
    );
    let mut other = approved.clone();
    other.spec.signer_name = "example.com/custom".into();
    assert_eq!(
        signer::decide(&other, &request, DEFAULT_CERT_TTL),
        Decision::Ignore
    );
}

#[test]
fn the_signer_refuses_usages_its_signer_does_not_allow() {
    let pem = request_pem("jane", None, &[], &[]);
    let request = Request::parse(&pem).unwrap();
    let c = with_condition(
        csr(
            KUBE_APISERVER_CLIENT_SIGNER,
            pem.clone(),
            &["client auth", "server auth"],
            "admin",
        ),
        "Approved",
    );
    assert_eq!(
        signer::decide(&c, &request, DEFAULT_CERT_TTL),
        Decision::Fail("invalid usage for client certificate: server auth".into())
    );
    let c = with_condition(
        csr(
            KUBE_APISERVER_CLIENT_SIGNER,
            pem,
            &["digital signature"],
            "admin",
        ),
        "Approved",
    );
    assert_eq!(
        signer::decide(&c, &request, DEFAULT_CERT_TTL),
        Decision::Fail("missing required usage for client certificate: client auth".into())
    );
    let condition = signer::failed_condition(
        "why".into(),
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(chrono::Utc::now()),
    );
    assert_eq!(
        (condition.type_.as_str(), condition.reason.as_deref()),
        ("Failed", Some("SignerValidationFailure"))
    );
}

#[test]
fn kubelet_serving_requests_must_be_system_nodes_with_names_and_serving_usages() {
    let (c, r) = serving_csr("w1", &["w1"], &["10.0.0.5"]);
    let c = with_condition(c, "Approved");
    assert!(matches!(
        signer::decide(&c, &r, DEFAULT_CERT_TTL),
        Decision::Sign(_)
    ));
    let pem = request_pem("system:node:w1", Some("system:nodes"), &[], &[]);
    let no_names = Request::parse(&pem).unwrap();
    assert_eq!(
        signer::decide(&c, &no_names, DEFAULT_CERT_TTL),
        Decision::Fail("DNS or IP subjectAltName is required".into())
    );
    let pem = request_pem("system:node:w1", Some("devs"), &["w1"], &[]);
    assert_eq!(
        signer::decide(&c, &Request::parse(&pem).unwrap(), DEFAULT_CERT_TTL),
        Decision::Fail("subject organization is not system:nodes".into())
    );
    let pem = request_pem("w1", Some("system:nodes"), &["w1"], &[]);
    assert_eq!(
        signer::decide(&c, &Request::parse(&pem).unwrap(), DEFAULT_CERT_TTL),
        Decision::Fail("subject common name does not begin with system:node:".into())
    );
    let mut client_usages = c.clone();
    client_usages.spec.usages = Some(vec!["digital signature".into(), "client auth".into()]);
    assert_eq!(
        signer::decide(&client_usages, &r, DEFAULT_CERT_TTL),
        Decision::Fail(
            "usages did not match [digital signature key encipherment server auth]".into()
        )
    );
}

#[test]
fn kubelet_client_requests_carry_no_names() {
    let pem = request_pem("system:node:w1", Some("system:nodes"), &["w1"], &[]);
    let r = Request::parse(&pem).unwrap();
    let c = with_condition(
        csr(
            KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
            pem,
            &["digital signature", "client auth"],
            "system:node:w1",
        ),
        "Approved",
    );
    assert_eq!(
        signer::decide(&c, &r, DEFAULT_CERT_TTL),
        Decision::Fail("DNS subjectAltNames are not allowed".into())
    );
}

#[test]
fn expiration_seconds_is_honoured_within_ten_minutes_and_the_signing_duration() {
    assert_eq!(duration(None, DEFAULT_CERT_TTL), DEFAULT_CERT_TTL);
    assert_eq!(
        duration(Some(3600), DEFAULT_CERT_TTL),
        Duration::from_secs(3600)
    );
    assert_eq!(
        duration(Some(60), DEFAULT_CERT_TTL),
        Duration::from_secs(600)
    );
    assert_eq!(duration(Some(i32::MAX), DEFAULT_CERT_TTL), DEFAULT_CERT_TTL);
}

#[test]
fn certificates_are_backdated_unless_short_and_never_outlive_the_ca() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let ca_end = now + Duration::from_secs(10 * 365 * 24 * 3600);
    let five = Duration::from_secs(300);
    let eight_hours = Duration::from_secs(8 * 3600);
    // Short: starts 5 minutes back, ends a full TTL from now.
    let (nb, na) = boundaries(now, Duration::from_secs(3600), five, eight_hours, ca_end).unwrap();
    assert_eq!((nb, na), (now - five, now + Duration::from_secs(3600)));
    // Long: the whole window moves back.
    let day = Duration::from_secs(24 * 3600);
    let (nb, na) = boundaries(now, day, five, eight_hours, ca_end).unwrap();
    assert_eq!((nb, na), (now - five, now - five + day));
    // Capped by the CA.
    let (_, na) = boundaries(now, day, five, eight_hours, now + Duration::from_secs(60)).unwrap();
    assert_eq!(na, now + Duration::from_secs(60));
    assert!(boundaries(now, day, five, eight_hours, now).is_err());
}

#[test]
fn kubelet_client_requests_ask_for_selfnodeclient_or_nodeclient_access() {
    let pem = request_pem("system:node:w1", Some("system:nodes"), &[], &[]);
    let r = Request::parse(&pem).unwrap();
    let own = csr(
        KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
        pem.clone(),
        &["digital signature", "client auth"],
        "system:node:w1",
    );
    assert_eq!(
        approver::decide(&own, &r, None),
        approver::Decision::AskAccess {
            subresource: "selfnodeclient",
            message: SELF_NODE_CLIENT_MESSAGE
        }
    );
    let bootstrap = csr(
        KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
        pem,
        &["digital signature", "client auth"],
        "system:bootstrap:abc",
    );
    assert_eq!(
        approver::decide(&bootstrap, &r, None),
        approver::Decision::AskAccess {
            subresource: "nodeclient",
            message: NODE_CLIENT_MESSAGE
        }
    );
    assert_eq!(
        approver::decide(&with_condition(own, "Denied"), &r, None),
        approver::Decision::Leave
    );
    let condition = approver::approved_condition(NODE_CLIENT_MESSAGE);
    assert_eq!(condition.reason.as_deref(), Some("AutoApproved"));
    assert_eq!(
        condition.message.as_deref(),
        Some("Auto approving kubelet client certificate after SubjectAccessReview.")
    );
}

#[test]
fn a_kubelet_serving_request_is_approved_only_for_the_nodes_own_names() {
    let n = node("w1", &[("InternalIP", "10.0.0.5"), ("Hostname", "host-1")]);
    let (c, r) = serving_csr("w1", &["host-1", "w1"], &["10.0.0.5"]);
    assert!(matches!(
        approver::decide(&c, &r, Some(&n)),
        approver::Decision::Approve(_)
    ));
    // No Node (yet): pending.
    assert_eq!(approver::decide(&c, &r, None), approver::Decision::Leave);
    // An address the Node does not have.
    let (c2, r2) = serving_csr("w1", &["host-1"], &["10.0.0.9"]);
    assert_eq!(
        approver::decide(&c2, &r2, Some(&n)),
        approver::Decision::Leave
    );
    // A name that is not the Node's.
    let (c3, r3) = serving_csr("w1", &["kubernetes.default.svc"], &[]);
    assert_eq!(
        approver::decide(&c3, &r3, Some(&n)),
        approver::Decision::Leave
    );
    // Another node's request for w1's names.
    let mut other = c.clone();
    other.spec.username = Some("system:node:w2".into());
    assert_eq!(
        approver::decide(&other, &r, Some(&n)),
        approver::Decision::Leave
    );
    // Not in system:nodes.
    let mut outsider = c.clone();
    outsider.spec.groups = Some(vec!["system:authenticated".into()]);
    assert_eq!(
        approver::decide(&outsider, &r, Some(&n)),
        approver::Decision::Leave
    );
    // A subject for another node, from w1.
    let (c4, r4) = serving_csr("w2", &["host-1"], &[]);
    let mut c4 = c4;
    c4.spec.username = Some("system:node:w1".into());
    assert_eq!(
        approver::decide(&c4, &r4, Some(&n)),
        approver::Decision::Leave
    );
}
