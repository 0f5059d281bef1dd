//! Registry credentials, as imagePullSecrets of type
//! `kubernetes.io/dockerconfigjson` carry them.

use base64::Engine as _;
use serde_json::Value;

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The credentials that a `.dockerconfigjson` (`{"auths": {...}}`, or the
/// older `.dockercfg` map without `auths`) holds for `registry_host`
/// (`docker.io`, `localhost:5000`, ...). Keys may be URLs
/// (`https://index.docker.io/v1/`) or hosts, with a `*.` wildcard for one
/// DNS label as the kubelet allows; an exact host wins over a wildcard.
pub fn from_docker_config_json(bytes: &[u8], registry_host: &str) -> Option<Credentials> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    let auths = value.get("auths").unwrap_or(&value).as_object()?;
    let wanted = canonical_host(registry_host);
    let mut wildcard = None;
    for (key, entry) in auths {
        let host = canonical_host(key_host(key));
        if host == wanted {
            if let Some(c) = credentials_of(entry) {
                return Some(c);
            }
        } else if wildcard.is_none() && wildcard_matches(&host, &wanted) {
            wildcard = credentials_of(entry);
        }
    }
    wildcard
}

fn key_host(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

fn canonical_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".into()
        }
        _ => host,
    }
}

fn wildcard_matches(pattern: &str, host: &str) -> bool {
    let (p_host, p_port) = split_port(pattern);
    let (h_host, h_port) = split_port(host);
    if p_port != h_port {
        return false;
    }
    let p: Vec<&str> = p_host.split('.').collect();
    let h: Vec<&str> = h_host.split('.').collect();
    p.len() == h.len() && p.contains(&"*") && p.iter().zip(&h).all(|(p, h)| *p == "*" || p == h)
}

fn split_port(host: &str) -> (&str, &str) {
    match host.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || host.starts_with('[') => (h, p),
        _ => (host, ""),
    }
}

fn credentials_of(entry: &Value) -> Option<Credentials> {
    let s = |k: &str| entry.get(k).and_then(|v| v.as_str()).unwrap_or("");
    if !s("username").is_empty() || !s("password").is_empty() {
        return Some(Credentials {
            username: s("username").into(),
            password: s("password").into(),
        });
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(s("auth").trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some(Credentials {
        username: username.into(),
        password: password.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_field_is_base64_user_colon_password() {
        let json = br#"{"auths":{"localhost:5000":{"auth":"dXNlcjpwYTpzcw=="}}}"#;
        let c = from_docker_config_json(json, "localhost:5000").unwrap();
        assert_eq!(c.username, "user");
        assert_eq!(c.password, "pa:ss");
        assert_eq!(from_docker_config_json(json, "localhost:5001"), None);
    }

    #[test]
    fn username_and_password_fields_win_and_url_keys_match_their_host() {
        let json = br#"{"auths":{"https://index.docker.io/v1/":{"username":"u","password":"p","auth":"eDp5"}}}"#;
        let c = from_docker_config_json(json, "docker.io").unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
    }

    #[test]
    fn wildcards_match_one_label_and_exact_hosts_win() {
        let json = br#"{"auths":{
            "*.example.com":{"username":"wild","password":"w"},
            "reg.example.com":{"username":"exact","password":"e"}}}"#;
        assert_eq!(
            from_docker_config_json(json, "reg.example.com")
                .unwrap()
                .username,
            "exact"
        );
        assert_eq!(
            from_docker_config_json(json, "other.example.com")
                .unwrap()
                .username,
            "wild"
        );
        assert_eq!(from_docker_config_json(json, "a.b.example.com"), None);
    }

    #[test]
    fn legacy_dockercfg_without_auths_and_garbage() {
        let json = br#"{"myreg:5000":{"auth":"YTpi"}}"#;
        assert_eq!(
            from_docker_config_json(json, "myreg:5000")
                .unwrap()
                .username,
            "a"
        );
        assert_eq!(from_docker_config_json(b"not json", "docker.io"), None);
        assert_eq!(
            from_docker_config_json(br#"{"auths":{"docker.io":{"auth":"!!"}}}"#, "docker.io"),
            None
        );
    }
}
