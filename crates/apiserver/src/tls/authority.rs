//! The cluster CA as the signer of CertificateSigningRequests (upstream
//! `pkg/controller/certificates/authority`): the certificate takes the
//! request's subject, public key and subject alternative names, the key
//! usages the CSR lists (upstream's `PermissiveSigningPolicy`), no other
//! extension, and is not a CA.

use std::time::SystemTime;

use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;

use super::*;

const OID_SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];

/// Signs certificates for CSRs with the cluster CA.
pub struct CsrAuthority {
    ca: Ca,
    not_after: SystemTime,
}

impl std::fmt::Debug for CsrAuthority {
    /// Leaves the key out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrAuthority")
            .field("ca", &self.ca.cert_path)
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// The CA as the signer of CertificateSigningRequests.
    pub fn csr_authority(&self) -> Result<CsrAuthority, TlsError> {
        let ca = load_or_create_ca(&self.dir)?;
        let (_, cert) =
            x509_parser::parse_x509_certificate(&ca.cert_der).map_err(|e| TlsError::Corrupt {
                path: ca.cert_path.clone(),
                reason: format!("not an X.509 certificate: {e}"),
            })?;
        let secs = cert.validity().not_after.timestamp().max(0) as u64;
        Ok(CsrAuthority {
            ca,
            not_after: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
        })
    }
}

/// keyUsage bits (RFC 5280 4.2.1.3) and extendedKeyUsage OIDs of the API's
/// usage names (upstream `keyUsageDict` / `extKeyUsageDict`).
fn key_usages(usages: &[String]) -> Result<(u16, Vec<&'static [u64]>), String> {
    let mut bits = 0u16;
    let mut extended: Vec<&'static [u64]> = Vec::new();
    let mut unrecognized = Vec::new();
    for usage in usages {
        let bit = match usage.as_str() {
            "signing" | "digital signature" => Some(0),
            "content commitment" => Some(1),
            "key encipherment" => Some(2),
            "data encipherment" => Some(3),
            "key agreement" => Some(4),
            "cert sign" => Some(5),
            "crl sign" => Some(6),
            "encipher only" => Some(7),
            "decipher only" => Some(8),
            _ => None,
        };
        if let Some(b) = bit {
            bits |= 1 << b;
            continue;
        }
        let eku: &'static [u64] = match usage.as_str() {
            "any" => &[2, 5, 29, 37, 0],
            "server auth" => &[1, 3, 6, 1, 5, 5, 7, 3, 1],
            "client auth" => &[1, 3, 6, 1, 5, 5, 7, 3, 2],
            "code signing" => &[1, 3, 6, 1, 5, 5, 7, 3, 3],
            "email protection" | "s/mime" => &[1, 3, 6, 1, 5, 5, 7, 3, 4],
            "ipsec end system" => &[1, 3, 6, 1, 5, 5, 7, 3, 5],
            "ipsec tunnel" => &[1, 3, 6, 1, 5, 5, 7, 3, 6],
            "ipsec user" => &[1, 3, 6, 1, 5, 5, 7, 3, 7],
            "timestamping" => &[1, 3, 6, 1, 5, 5, 7, 3, 8],
            "ocsp signing" => &[1, 3, 6, 1, 5, 5, 7, 3, 9],
            "microsoft sgc" => &[1, 3, 6, 1, 4, 1, 311, 10, 3, 3],
            "netscape sgc" => &[2, 16, 840, 1, 113730, 4, 1],
            _ => {
                unrecognized.push(format!("{usage:?}"));
                continue;
            }
        };
        if !extended.contains(&eku) {
            extended.push(eku);
        }
    }
    if !unrecognized.is_empty() {
        return Err(format!(
            "unrecognized usage values: [{}]",
            unrecognized.join(" ")
        ));
    }
    Ok((bits, extended))
}

/// A keyUsage BIT STRING: bit 0 first, trailing zero bits dropped.
fn key_usage_bit_string(bits: u16) -> (Vec<u8>, usize) {
    let len = 16 - bits.leading_zeros() as usize;
    let mut bytes = vec![0u8; len.div_ceil(8)];
    for i in 0..len {
        if bits & (1 << i) != 0 {
            bytes[i / 8] |= 0x80 >> (i % 8);
        }
    }
    (bytes, len)
}

fn offset_time(t: SystemTime) -> OffsetDateTime {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl CsrAuthority {
    /// When the CA's certificate expires.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The CA certificate, PEM.
    pub fn ca_cert_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.ca.cert_der)
    }

    /// A PEM certificate for the DER certification request `request`, with
    /// the key usages `usages`, valid from `not_before` to `not_after`.
    pub fn sign(
        &self,
        request: &[u8],
        usages: &[String],
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<String, String> {
        let (_, csr) =
            x509_parser::certification_request::X509CertificationRequest::from_der(request)
                .map_err(|e| format!("unable to parse the certificate request: {e}"))?;
        csr.verify_signature()
            .map_err(|_| "unable to verify certificate request signature".to_string())?;
        let (bits, extended) = key_usages(usages)?;
        let algorithm = signature_algorithm(self.ca.issuer.key())
            .ok_or("the CA key's algorithm cannot sign certificates")?;
        let info = &csr.certification_request_info;
        let subject = info.subject.as_raw();
        let names: Vec<GeneralName<'_>> = csr
            .requested_extensions()
            .into_iter()
            .flatten()
            .filter_map(|e| match e {
                ParsedExtension::SubjectAlternativeName(san) => Some(san.general_names.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        // Empty subject: the names are the identity, so critical (RFC 5280
        // 4.2.1.6), as Go writes it.
        let subject_empty = info.subject.iter().next().is_none();
        let der = sign_leaf(
            &self.ca,
            &algorithm,
            subject,
            info.subject_pki.raw,
            (offset_time(not_before), offset_time(not_after)),
            |w| {
                if bits != 0 {
                    let (bytes, len) = key_usage_bit_string(bits);
                    write_extension(w.next(), OID_KEY_USAGE, true, |w| {
                        w.write_bitvec_bytes(&bytes, len)
                    });
                }
                if !extended.is_empty() {
                    write_extension(w.next(), OID_EXT_KEY_USAGE, false, |w| {
                        w.write_sequence(|w| {
                            for eku in &extended {
                                w.next().write_oid(&oid(eku));
                            }
                        })
                    });
                }
                if !names.is_empty() {
                    write_extension(w.next(), OID_SUBJECT_ALT_NAME, subject_empty, |w| {
                        w.write_sequence(|w| write_general_names(w, &names))
                    });
                }
            },
        )
        .map_err(|e| format!("signing: {e}"))?;
        Ok(pem_encode("CERTIFICATE", &der))
    }
}

/// DNS names, emails, IP addresses and URIs, in Go's order.
fn write_general_names(w: &mut yasna::DERWriterSeq<'_>, names: &[GeneralName<'_>]) {
    use yasna::Tag;
    for n in names {
        if let GeneralName::DNSName(d) = n {
            w.next()
                .write_tagged_implicit(Tag::context(2), |w| w.write_ia5_string(d));
        }
    }
    for n in names {
        if let GeneralName::RFC822Name(e) = n {
            w.next()
                .write_tagged_implicit(Tag::context(1), |w| w.write_ia5_string(e));
        }
    }
    for n in names {
        if let GeneralName::IPAddress(ip) = n {
            w.next()
                .write_tagged_implicit(Tag::context(7), |w| w.write_bytes(ip));
        }
    }
    for n in names {
        if let GeneralName::URI(u) = n {
            w.next()
                .write_tagged_implicit(Tag::context(6), |w| w.write_ia5_string(u));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_usages_map_to_bits_and_extended_usages() {
        let (bits, ext) = key_usages(&[
            "digital signature".into(),
            "key encipherment".into(),
            "server auth".into(),
        ])
        .unwrap();
        assert_eq!(bits, 0b101);
        assert_eq!(ext, vec![&[1u64, 3, 6, 1, 5, 5, 7, 3, 1][..]]);
        assert_eq!(key_usage_bit_string(0b101), (vec![0xa0], 3));
        assert_eq!(
            key_usages(&["flying".into()]).unwrap_err(),
            "unrecognized usage values: [\"flying\"]"
        );
    }

    #[test]
    fn a_signed_request_keeps_its_subject_names_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::ensure(&PkiOptions {
            data_dir: dir.path().into(),
            ..Default::default()
        })
        .unwrap();
        let authority = pki.csr_authority().unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["w1".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("10.0.0.5".parse().unwrap()));
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "system:node:w1");
        dn.push(DnType::OrganizationName, "system:nodes");
        params.distinguished_name = dn;
        let csr = params.serialize_request(&key).unwrap();
        let now = SystemTime::now();
        let pem = authority
            .sign(
                csr.der(),
                &["digital signature".into(), "server auth".into()],
                now - Duration::from_secs(300),
                now + Duration::from_secs(3600),
            )
            .unwrap();
        let der = first_cert_der(&pem).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(
            cert.subject().to_string(),
            "CN=system:node:w1, O=system:nodes"
        );
        assert_eq!(
            cert.public_key().raw,
            key.subject_public_key_info().as_slice()
        );
        let san = cert.subject_alternative_name().unwrap().unwrap().value;
        assert_eq!(san.general_names.len(), 2);
        assert!(!cert.is_ca());
        // Chains to the CA: the kubelet client accepts it.
        let (_, ca) = x509_parser::parse_x509_certificate(&pki.ca.cert_der).unwrap();
        cert.verify_signature(Some(ca.public_key())).unwrap();
        let window = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
        assert_eq!(window, 3900);
    }
}
