//! What a request asks for: the path and method turned into a target and
//! verb, the way upstream's `RequestInfoFactory` reads them.

use std::collections::HashMap;

use crate::resources::{Catalog, ResourceInfo};
use crate::status::{ApiError, ApiResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// A request for a resource (as opposed to discovery or health).
#[derive(Clone, Debug)]
pub struct ResourceRequest {
    pub info: &'static ResourceInfo,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    pub verb: Verb,
}

#[derive(Clone, Debug)]
pub enum Target {
    Version,
    /// `/metrics`: the server's own Prometheus metrics.
    Metrics,
    /// `/healthz`, `/livez`, `/readyz` and their per-check paths.
    Health {
        endpoint: String,
        check: Option<String>,
    },
    /// `/api`
    LegacyVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`
    GroupVersion(String, String),
    OpenApiV2,
    /// `/openapi/v3` (empty) or `/openapi/v3/<path>`
    OpenApiV3(String),
    Resource(ResourceRequest),
}

/// The decoded query string (last value wins, as Go's `Get` returns the
/// first; clients send each key once).
#[derive(Clone, Debug, Default)]
pub struct Query(pub HashMap<String, String>);

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        let mut map = HashMap::new();
        if let Some(q) = query {
            for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
            }
        }
        Query(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true") | Some("1"))
    }
}

/// Subresources of a namespace reached at `/api/v1/namespaces/<name>/<sub>`.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

pub fn route(
    catalog: &Catalog,
    method: &http::Method,
    path: &str,
    query: &Query,
) -> ApiResult<Target> {
    let trimmed = path.trim_matches('/');
    let parts: Vec<&str> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    };
    match parts.as_slice() {
        ["version"] => return Ok(Target::Version),
        ["metrics"] => return Ok(Target::Metrics),
        [e @ ("healthz" | "livez" | "readyz")] => {
            return Ok(Target::Health {
                endpoint: e.to_string(),
                check: None,
            })
        }
        [e @ ("healthz" | "livez" | "readyz"), check] => {
            return Ok(Target::Health {
                endpoint: e.to_string(),
                check: Some(check.to_string()),
            })
        }
        ["api"] => return Ok(Target::LegacyVersions),
        ["apis"] => return Ok(Target::Groups),
        ["openapi", "v2"] => return Ok(Target::OpenApiV2),
        ["openapi", "v3"] => return Ok(Target::OpenApiV3(String::new())),
        ["openapi", "v3", rest @ ..] => return Ok(Target::OpenApiV3(rest.join("/"))),
        ["apis", group] => return Ok(Target::Group(group.to_string())),
        ["api", version] => return Ok(Target::GroupVersion(String::new(), version.to_string())),
        ["apis", group, version] => {
            return Ok(Target::GroupVersion(group.to_string(), version.to_string()))
        }
        _ => {}
    }
    let (group, version, rest): (&str, &str, &[&str]) = match parts.as_slice() {
        ["api", version, rest @ ..] => ("", version, rest),
        ["apis", group, version, rest @ ..] => (group, version, rest),
        _ => return Err(ApiError::path_not_found()),
    };
    let mut rest: Vec<&str> = rest.to_vec();
    // The deprecated `/watch/` path prefix.
    let mut watch_path = false;
    if rest.first() == Some(&"watch") {
        watch_path = true;
        rest.remove(0);
    }
    let mut namespace = None;
    if rest.first() == Some(&"namespaces") && rest.len() > 1 {
        namespace = Some(rest[1].to_string());
        if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
            rest.drain(..2);
        }
    }
    let (resource, name, subresource) = match rest.as_slice() {
        [r] => (*r, None, None),
        [r, n] => (*r, Some(n.to_string()), None),
        [r, n, s] => (*r, Some(n.to_string()), Some(s.to_string())),
        // Proxy subresources carry a path after the subresource.
        [r, n, s, ..] if *s == "proxy" => (*r, Some(n.to_string()), Some(s.to_string())),
        _ => return Err(ApiError::path_not_found()),
    };
    let info = catalog
        .lookup(group, version, resource)
        .ok_or_else(ApiError::path_not_found)?;
    // A namespaced resource listed across namespaces has no namespace; a
    // cluster-scoped one has none at all (`/api/v1/namespaces/x` is the
    // namespace object named x).
    if !info.namespaced {
        if info.resource == "namespaces" {
            namespace = None;
        } else if namespace.is_some() {
            return Err(ApiError::path_not_found());
        }
    }
    if let Some(s) = &subresource {
        if info.subresource(s).is_none() {
            return Err(ApiError::path_not_found());
        }
    }
    let watch = watch_path || query.flag("watch");
    let verb = match (method.as_str(), name.is_some()) {
        ("GET" | "HEAD", true) if watch => Verb::Watch,
        ("GET" | "HEAD", true) => Verb::Get,
        ("GET" | "HEAD", false) if watch => Verb::Watch,
        ("GET" | "HEAD", false) => Verb::List,
        ("POST", _) => Verb::Create,
        ("PUT", _) => Verb::Update,
        ("PATCH", _) => Verb::Patch,
        ("DELETE", true) => Verb::Delete,
        ("DELETE", false) => Verb::DeleteCollection,
        _ => return Err(ApiError::method_not_allowed()),
    };
    Ok(Target::Resource(ResourceRequest {
        info,
        namespace,
        name,
        subresource,
        verb,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn res(method: Method, path: &str, query: &str) -> ResourceRequest {
        match route(
            &Catalog::default(),
            &method,
            path,
            &Query::parse(Some(query)),
        )
        .unwrap()
        {
            Target::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn namespaced_get_list_watch_and_create() {
        let r = res(Method::GET, "/api/v1/namespaces/default/configmaps/x", "");
        assert_eq!(
            (
                r.info.resource,
                r.namespace.as_deref(),
                r.name.as_deref(),
                r.verb
            ),
            ("configmaps", Some("default"), Some("x"), Verb::Get)
        );
        let r = res(Method::GET, "/api/v1/namespaces/default/configmaps", "");
        assert_eq!(r.verb, Verb::List);
        let r = res(Method::GET, "/api/v1/configmaps", "watch=true");
        assert_eq!((r.verb, r.namespace), (Verb::Watch, None));
        let r = res(Method::POST, "/apis/apps/v1/namespaces/ns1/deployments", "");
        assert_eq!((r.info.kind, r.verb), ("Deployment", Verb::Create));
        let r = res(Method::DELETE, "/api/v1/namespaces/a/pods", "");
        assert_eq!(r.verb, Verb::DeleteCollection);
    }

    #[test]
    fn namespace_objects_and_their_subresources() {
        let r = res(Method::GET, "/api/v1/namespaces/kube-system", "");
        assert_eq!(
            (r.info.resource, r.name.as_deref(), r.namespace),
            ("namespaces", Some("kube-system"), None)
        );
        let r = res(Method::PUT, "/api/v1/namespaces/x/finalize", "");
        assert_eq!(
            (r.info.resource, r.name.as_deref(), r.subresource.as_deref()),
            ("namespaces", Some("x"), Some("finalize"))
        );
        let r = res(Method::GET, "/api/v1/namespaces", "");
        assert_eq!(r.verb, Verb::List);
    }

    #[test]
    fn subresources_and_the_watch_prefix() {
        let r = res(
            Method::PUT,
            "/apis/apps/v1/namespaces/d/deployments/web/scale",
            "",
        );
        assert_eq!(
            (r.subresource.as_deref(), r.verb),
            (Some("scale"), Verb::Update)
        );
        let r = res(Method::GET, "/api/v1/watch/namespaces/d/pods", "");
        assert_eq!(r.verb, Verb::Watch);
        let err = route(
            &Catalog::default(),
            &Method::GET,
            "/api/v1/namespaces/d/configmaps/x/scale",
            &Query::default(),
        )
        .unwrap_err();
        assert_eq!(err.code, 404);
    }

    #[test]
    fn unknown_paths_are_not_found() {
        for p in [
            "/api/v1/nothings",
            "/apis/nope/v1/things",
            "/foo",
            "/api/v1/namespaces/x/nodes",
        ] {
            let err = route(&Catalog::default(), &Method::GET, p, &Query::default()).unwrap_err();
            assert_eq!(err.code, 404, "{p}");
        }
    }
}
