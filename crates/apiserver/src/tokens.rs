//! Service account tokens: bound JWTs issued through the TokenRequest API
//! (`kubectl create token`), checked by TokenReview and accepted as Bearer
//! credentials, with the claims upstream puts in them.

use std::path::{Path, PathBuf};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::server::User;

/// Issuer and default audience of service account tokens.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// Upstream's minimum and default token lifetimes.
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a usable signing key: {reason}")]
    Key { path: PathBuf, reason: String },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServiceAccountRef {
    pub name: String,
    pub uid: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KubernetesClaims {
    pub namespace: String,
    pub serviceaccount: ServiceAccountRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<ServiceAccountRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<ServiceAccountRef>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub iss: String,
    pub jti: String,
    pub sub: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
}

impl Claims {
    /// The user a token authenticates as.
    pub fn user(&self) -> User {
        let ns = &self.kubernetes.namespace;
        User {
            name: self.sub.clone(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".into(),
            ],
        }
    }
}

pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

fn read(path: &Path) -> Result<Vec<u8>, TokenError> {
    std::fs::read(path).map_err(|source| TokenError::Io {
        path: path.to_path_buf(),
        source,
    })
}

impl TokenIssuer {
    /// Loads the signing key from `dir` (`sa.key`, `sa.pub`), creating an
    /// ECDSA P-256 pair on first start.
    pub fn load_or_create(dir: &Path) -> Result<TokenIssuer, TokenError> {
        let key_path = dir.join("sa.key");
        let pub_path = dir.join("sa.pub");
        if !key_path.exists() {
            std::fs::create_dir_all(dir).map_err(|source| TokenError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
            let pair = rcgen::KeyPair::generate().map_err(|e| TokenError::Key {
                path: key_path.clone(),
                reason: e.to_string(),
            })?;
            let write = |path: &Path, data: String, mode: u32| -> Result<(), TokenError> {
                use std::os::unix::fs::OpenOptionsExt;
                let tmp = path.with_extension("tmp");
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(mode)
                    .open(&tmp)
                    .map_err(|source| TokenError::Io {
                        path: tmp.clone(),
                        source,
                    })?;
                std::io::Write::write_all(&mut f, data.as_bytes()).map_err(|source| {
                    TokenError::Io {
                        path: tmp.clone(),
                        source,
                    }
                })?;
                f.sync_all().map_err(|source| TokenError::Io {
                    path: tmp.clone(),
                    source,
                })?;
                std::fs::rename(&tmp, path).map_err(|source| TokenError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            };
            write(&pub_path, pair.public_key_pem(), 0o644)?;
            write(&key_path, pair.serialize_pem(), 0o600)?;
        }
        let key = read(&key_path)?;
        let public = read(&pub_path)?;
        let encoding = EncodingKey::from_ec_pem(&key).map_err(|e| TokenError::Key {
            path: key_path.clone(),
            reason: e.to_string(),
        })?;
        let decoding = DecodingKey::from_ec_pem(&public).map_err(|e| TokenError::Key {
            path: pub_path.clone(),
            reason: e.to_string(),
        })?;
        Ok(TokenIssuer { encoding, decoding })
    }

    /// Issues a token for a service account.
    pub fn issue(
        &self,
        namespace: &str,
        sa: ServiceAccountRef,
        audiences: Vec<String>,
        expiration_seconds: i64,
        pod: Option<ServiceAccountRef>,
    ) -> (String, i64) {
        let now = chrono::Utc::now().timestamp();
        let exp = now + expiration_seconds;
        let claims = Claims {
            aud: if audiences.is_empty() {
                vec![ISSUER.to_string()]
            } else {
                audiences
            },
            exp,
            iat: now,
            nbf: now,
            iss: ISSUER.to_string(),
            jti: uuid::Uuid::new_v4().to_string(),
            sub: format!("system:serviceaccount:{namespace}:{}", sa.name),
            kubernetes: KubernetesClaims {
                namespace: namespace.to_string(),
                serviceaccount: sa,
                pod,
                secret: None,
            },
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = None;
        // Signing with a key we generated cannot fail short of a broken
        // key file, which load_or_create already refused.
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap_or_default();
        (token, exp)
    }

    /// Checks a token's signature, expiry and (when given) audiences.
    pub fn verify(&self, token: &str, audiences: &[String]) -> Option<Claims> {
        let mut v = Validation::new(Algorithm::ES256);
        v.set_issuer(&[ISSUER]);
        if audiences.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(audiences);
        }
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .ok()
            .map(|d| d.claims)
    }
}

/// The TokenReview answer for a token.
pub fn review(issuer: &TokenIssuer, mut body: Value) -> Value {
    let token = body
        .pointer("/spec/token")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let audiences: Vec<String> = body
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    body["status"] = match issuer.verify(&token, &audiences) {
        Some(claims) => {
            let user = claims.user();
            json!({
                "authenticated": true,
                "user": {
                    "username": user.name,
                    "uid": claims.kubernetes.serviceaccount.uid,
                    "groups": user.groups,
                    "extra": { "authentication.kubernetes.io/credential-id": [format!("JTI={}", claims.jti)] },
                },
                "audiences": claims.aud,
            })
        }
        None => json!({ "user": {}, "error": "invalid bearer token, token lookup failed" }),
    };
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_name_the_service_account() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = TokenIssuer::load_or_create(dir.path()).unwrap();
        let (token, exp) = issuer.issue(
            "team",
            ServiceAccountRef {
                name: "bot".into(),
                uid: "u1".into(),
            },
            vec![],
            3600,
            None,
        );
        assert!(exp > chrono::Utc::now().timestamp());
        let claims = issuer.verify(&token, &[]).unwrap();
        assert_eq!(claims.sub, "system:serviceaccount:team:bot");
        assert_eq!(
            claims.user().groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:team",
                "system:authenticated"
            ]
        );
        // Wrong audience, tampered token, another key: refused.
        assert!(issuer.verify(&token, &["vault".into()]).is_none());
        assert!(issuer.verify(&format!("{token}x"), &[]).is_none());
        let other = TokenIssuer::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        assert!(other.verify(&token, &[]).is_none());
        // A restart reuses the key.
        let again = TokenIssuer::load_or_create(dir.path()).unwrap();
        assert!(again.verify(&token, &[]).is_some());
    }
}
