//! The HTTP front of the API server: TLS, HTTP/1.1 and HTTP/2, the request
//! chain (authentication → routing → authorization → handler) and the
//! encoding of answers (JSON objects, Tables, watch streams, Status errors).

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::discovery;
use crate::registry::{
    DeleteOptions, ListOptions, PatchKind, Registry, WriteOptions, MAX_REQUEST_BYTES,
};
use crate::request::{self, Query, ResourceRequest, Target, Verb};
use crate::status::{ApiError, ApiResult};
use crate::subresources;
use crate::table;
use crate::tls::CertIdentity;
use crate::watch::{self, WatchOptions};

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The Kubernetes version krate serves.
pub const KUBERNETES_VERSION: (&str, &str, &str) = ("1", "32", "v1.32.0");

/// Who is asking.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    pub fn anonymous() -> User {
        User {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        }
    }

    fn is_authenticated(&self) -> bool {
        self.name != "system:anonymous"
    }
}

impl From<CertIdentity> for User {
    fn from(c: CertIdentity) -> User {
        let mut groups = c.groups;
        groups.push("system:authenticated".into());
        User {
            name: c.user,
            groups,
        }
    }
}

/// The group joining nodes authenticate in with the join token (upstream
/// bootstrap tokens' group).
pub const BOOTSTRAPPERS_GROUP: &str = "system:bootstrappers";

pub struct ApiServer {
    registry: Arc<Registry>,
    tokens: std::sync::OnceLock<Arc<crate::tokens::TokenIssuer>>,
    /// The shared node join token: a bearer `<token>:<node-name>` is the
    /// user `system:bootstrap:<node-name>` in group `system:bootstrappers`.
    node_token: std::sync::OnceLock<String>,
    /// The cluster CA, served unauthenticated at `/cacerts` (as k3s does)
    /// for joining nodes to check against the hash in their join token.
    ca_certs: std::sync::OnceLock<String>,
    openapi: Arc<openapi::OpenApi>,
    catalog: Arc<crate::resources::Catalog>,
    /// `host:port` clients reach this server at (for `/api`).
    pub server_address: String,
    ready: AtomicBool,
    kubelet: std::sync::OnceLock<Arc<crate::kubelet::KubeletClient>>,
    /// Tells the nodes this process simulates: no kubelet serves them, so
    /// their addresses are never dialled.
    simulated_nodes: std::sync::OnceLock<Box<dyn Fn(&str) -> bool + Send + Sync>>,
    metrics: Arc<crate::metrics::Metrics>,
    /// This server's own request metrics, served at `/metrics`.
    requests: crate::self_metrics::Requests,
    started: std::time::SystemTime,
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

fn json_response(code: StatusCode, body: &Value) -> Response<Body> {
    json_response_typed(code, body, "application/json")
}

fn json_response_typed(code: StatusCode, body: &Value, content_type: &str) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(full(bytes));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")),
    );
    resp
}

fn text_response(code: StatusCode, text: String) -> Response<Body> {
    let mut resp = Response::new(full(text));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Whether the client lists protobuf before JSON in `Accept`.
fn prefers_protobuf(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .map(|m| m.split(';').next().unwrap_or("").trim())
        == Some(wire::PROTOBUF)
}

/// An object in the encoding the client prefers: protobuf when it asks for
/// it first and the kind has a protobuf schema, JSON otherwise.
fn negotiated_response(code: StatusCode, body: &Value, accept: &str) -> Response<Body> {
    if prefers_protobuf(accept) {
        let api_version = body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = body.get("kind").and_then(Value::as_str).unwrap_or("");
        if wire::supports(api_version, kind) {
            if let Ok(bytes) = wire::encode(body) {
                let mut resp = Response::new(full(bytes));
                *resp.status_mut() = code;
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(wire::PROTOBUF),
                );
                return resp;
            }
        }
    }
    json_response(code, body)
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    json_response(
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.to_status(),
    )
}

/// Everything the handlers need from the request besides the target.
struct Ctx {
    method: Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    query: Query,
    accept: String,
    content_type: String,
    body: Bytes,
    /// The client's connection once a 101 answer switches its protocol.
    upgrade: Option<hyper::upgrade::OnUpgrade>,
}

impl ApiServer {
    pub fn new(registry: Registry, server_address: String) -> Arc<ApiServer> {
        let kinds = crate::resources::BUILTIN
            .iter()
            .map(|r| r.openapi_kind())
            .collect();
        // The server validates fields itself, so it says so in its OpenAPI
        // and kubectl leaves validation to it.
        let openapi = Arc::new(openapi::OpenApi::new(
            kinds,
            openapi::Options {
                field_validation: true,
            },
        ));
        let registry = registry.with_schemas(openapi.clone());
        Arc::new(ApiServer {
            registry: Arc::new(registry),
            tokens: Default::default(),
            node_token: Default::default(),
            ca_certs: Default::default(),
            openapi,
            catalog: Arc::default(),
            server_address,
            ready: AtomicBool::new(false),
            kubelet: Default::default(),
            simulated_nodes: Default::default(),
            metrics: crate::metrics::Metrics::new(),
            requests: Default::default(),
            started: std::time::SystemTime::now(),
        })
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The resources this server serves (built-in and custom).
    pub fn catalog(&self) -> &Arc<crate::resources::Catalog> {
        &self.catalog
    }

    /// Enables service account tokens (TokenRequest, TokenReview, Bearer
    /// authentication).
    pub fn set_token_issuer(&self, issuer: Arc<crate::tokens::TokenIssuer>) {
        let _ = self.tokens.set(issuer);
    }

    /// Accepts `token` (with the node's name appended, `<token>:<name>`)
    /// as the bootstrap credentials of node agents joining the cluster.
    pub fn set_node_token(&self, token: String) {
        let _ = self.node_token.set(token);
    }

    /// Serves `pem` (the cluster CA) at `/cacerts`.
    pub fn set_ca_certs(&self, pem: String) {
        let _ = self.ca_certs.set(pem);
    }

    /// The bootstrap identity of a bearer token, when it is the join token
    /// (the bare secret, or the whole `K10<ca-hash>::server:<secret>`
    /// token) followed by `:<node-name>`: the user
    /// `system:bootstrap:<node-name>` in group `system:bootstrappers`, as
    /// upstream's bootstrap tokens authenticate. That group may only ask
    /// for a kubelet client certificate; the node then works as
    /// `system:node:<name>` with it (kubelet TLS bootstrap).
    fn node_user(&self, bearer: &str) -> Option<User> {
        let token = self.node_token.get().filter(|t| !t.is_empty())?;
        let (secret, node) = bearer.rsplit_once(':')?;
        let secret = match secret.strip_prefix("K10") {
            Some(rest) => rest.split_once("::server:").map_or(secret, |(_, s)| s),
            None => secret,
        };
        let same = secret.len() == token.len()
            && secret
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        (same && !node.is_empty()).then(|| User {
            name: format!("system:bootstrap:{node}"),
            groups: vec![BOOTSTRAPPERS_GROUP.into(), "system:authenticated".into()],
        })
    }

    /// Starts the server's own controllers (custom resource definitions).
    pub fn start_controllers(&self) {
        tokio::spawn(crate::crd::run_controller(
            self.registry.clone(),
            self.catalog.clone(),
            self.registry.customs().clone(),
        ));
        tokio::spawn(crate::namespaces::run_controller(
            self.registry.clone(),
            self.catalog.clone(),
        ));
    }

    /// Enables the subresources served by kubelets (pods/log, exec, attach,
    /// portforward, nodes/proxy).
    pub fn set_kubelet_client(&self, client: crate::kubelet::KubeletClient) {
        let _ = self.kubelet.set(Arc::new(client));
    }

    /// Names the nodes this process simulates (`is_simulated(name)`).
    /// Requests for their kubelets are answered with an error at once:
    /// their addresses are made up and must not be dialled.
    pub fn set_simulated_nodes(&self, is_simulated: impl Fn(&str) -> bool + Send + Sync + 'static) {
        let _ = self.simulated_nodes.set(Box::new(is_simulated));
    }

    /// Where `node`'s kubelet listens, unless the node is simulated.
    fn kubelet_endpoint(&self, node: &Value) -> ApiResult<(String, u16)> {
        let name = node
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if self.simulated_nodes.get().is_some_and(|f| f(name)) {
            return Err(ApiError::new(
                500,
                "",
                format!("node {name:?} is simulated: no kubelet serves its logs, exec, attach, port-forward or proxy"),
            ));
        }
        crate::kubelet::node_endpoint(node)
    }

    /// Starts collecting node and pod metrics from kubelets every
    /// `resolution` for the metrics API (needs the kubelet client).
    pub fn start_metrics(&self, resolution: Duration) {
        if let Some(kubelet) = self.kubelet.get() {
            tokio::spawn(self.metrics.clone().run(
                self.registry.clone(),
                kubelet.clone(),
                resolution,
            ));
        }
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Serves connections from `listener` until the task is dropped. With
    /// `tls`, every connection is TLS and client certificates (verified
    /// against the cluster CA) authenticate the user.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) {
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let me = self.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    Some(acceptor) => {
                        let stream = match acceptor.accept(tcp).await {
                            Ok(s) => s,
                            Err(e) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                        };
                        let user = crate::tls::peer_identity(stream.get_ref().1)
                            .map(User::from)
                            .unwrap_or_else(User::anonymous);
                        me.serve_connection(stream, user).await;
                    }
                    None => me.serve_connection(tcp, User::anonymous()).await,
                }
            });
        }
    }

    /// Serves HTTP/1.1 or HTTP/2 on one connection whose peer is `user`
    /// until the peer closes it. [`serve`](Self::serve) calls it for every
    /// connection it accepts; components in this process call it with an
    /// in-memory stream and the identity they would have presented.
    pub async fn serve_connection<S>(self: Arc<Self>, io: S, user: User)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let svc = hyper::service::service_fn(move |req| {
            let (me, user) = (self.clone(), user.clone());
            async move { Ok::<_, Infallible>(me.handle(req, user).await) }
        });
        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
            .serve_connection_with_upgrades(TokioIo::new(io), svc)
            .await;
    }

    pub async fn handle(self: Arc<Self>, req: Request<Incoming>, user: User) -> Response<Body> {
        let started = std::time::Instant::now();
        let (mut parts, body) = req.into_parts();
        if parts.uri.path() == "/cacerts" && parts.method == Method::GET {
            if let Some(pem) = self.ca_certs.get() {
                return text_response(StatusCode::OK, pem.clone());
            }
        }
        let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
        // A client certificate authenticates first; otherwise a bearer
        // token may. An invalid token is refused, not treated as anonymous.
        let mut user = user;
        if !user.is_authenticated() {
            if let Some(token) = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
            {
                match self.tokens.get().and_then(|t| t.verify(token.trim(), &[])) {
                    Some(claims) => user = claims.user(),
                    None if self.node_user(token.trim()).is_some() => {
                        user = self.node_user(token.trim()).unwrap_or_else(User::anonymous)
                    }
                    None => {
                        return error_response(&ApiError::new(401, "Unauthorized", "Unauthorized"))
                    }
                }
            }
        }
        // `kubectl --as`: the request continues as the impersonated user
        // once the requester may impersonate every part of it.
        match self.impersonation(&user, &parts.headers).await {
            Ok(Some(acting_as)) => user = acting_as,
            Ok(None) => {}
            Err(e) => return error_response(&e),
        }
        let header = |name: header::HeaderName| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return error_response(&ApiError::too_large(MAX_REQUEST_BYTES)),
        };
        let ctx = Ctx {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
            query: Query::parse(parts.uri.query()),
            accept: header(header::ACCEPT),
            content_type: header(header::CONTENT_TYPE),
            body,
            upgrade,
        };
        let target = match request::route(&self.catalog, &ctx.method, parts.uri.path(), &ctx.query)
        {
            Ok(t) => t,
            Err(e) => return error_response(&e),
        };
        let labels = match &target {
            Target::Resource(rr) => Some(crate::self_metrics::Labels::of(
                rr,
                &ctx.method,
                ctx.content_type.starts_with("application/apply-patch"),
                ctx.query.get("dryRun").is_some_and(|v| v == "All"),
            )),
            _ => None,
        };
        let path = parts.uri.path().to_string();
        let resp = self.authorize_and_dispatch(target, ctx, user, &path).await;
        if let Some(labels) = labels {
            let code = resp.status().as_u16();
            self.requests.record(labels, code, started.elapsed());
        }
        resp
    }

    /// Authorization, NodeRestriction, then the request itself.
    async fn authorize_and_dispatch(
        &self,
        target: Target,
        ctx: Ctx,
        user: User,
        path: &str,
    ) -> Response<Body> {
        let public = matches!(target, Target::Version | Target::Health { .. });
        if !public {
            let mut attrs = attributes(&target, &ctx.method, path);
            // A list or watch of one object by name is authorized as that
            // object (upstream's RequestInfo takes the name from the
            // `metadata.name` field selector).
            if matches!(attrs.verb.as_str(), "list" | "watch") {
                if let Some(selector) = ctx.query.get("fieldSelector") {
                    if attrs.name.is_empty() {
                        if let Some(name) =
                            crate::node_authz::field_equals(selector, "metadata.name")
                        {
                            attrs.name = name.to_string();
                        }
                    }
                    attrs.field_selector = Some(selector.to_string());
                }
            }
            let (allowed, reason) = if user.is_authenticated() {
                crate::authz::authorize(&self.registry, &user, &attrs).await
            } else {
                (false, String::new())
            };
            if !allowed {
                let mut e = forbidden(&user, &target, path);
                if !reason.is_empty() {
                    e.message = format!("{}: {reason}", e.message);
                }
                return error_response(&e);
            }
            // A WebSocket exec, attach or port-forward arrives as a GET but
            // starts a process or a connection: it also needs `create`
            // (upstream's AuthorizePodWebsocketUpgradeCreatePermission).
            if let Target::Resource(rr) = &target {
                if rr.verb == Verb::Get
                    && rr.info.resource == "pods"
                    && matches!(
                        rr.subresource.as_deref(),
                        Some("exec" | "attach" | "portforward")
                    )
                {
                    let mut create = attrs.clone();
                    create.verb = "create".into();
                    let (allowed, _) =
                        crate::authz::authorize(&self.registry, &user, &create).await;
                    if !allowed {
                        let mut as_create = rr.clone();
                        as_create.verb = Verb::Create;
                        return error_response(&forbidden(
                            &user,
                            &Target::Resource(as_create),
                            path,
                        ));
                    }
                }
            }
        }
        if let Target::Resource(rr) = &target {
            if crate::node_authz::node_identity(&user).is_some()
                && crate::node_restriction::applies(rr)
            {
                use crate::node_restriction::Body;
                let body = match rr.verb {
                    Verb::Create | Verb::Update => {
                        self.body_json(&ctx).map_or(Body::None, Body::Object)
                    }
                    Verb::Patch => self
                        .patch_body(&ctx)
                        .map_or(Body::None, |(kind, patch)| Body::Patch(kind, patch)),
                    _ => Body::None,
                };
                if let Err(e) =
                    crate::node_restriction::check(&self.registry, &user, rr, body).await
                {
                    return error_response(&e);
                }
            }
        }
        match self.dispatch(target, ctx, &user).await {
            Ok(resp) => resp,
            Err(e) => error_response(&e),
        }
    }

    async fn dispatch(&self, target: Target, ctx: Ctx, user: &User) -> ApiResult<Response<Body>> {
        let get_only = |ctx: &Ctx| {
            if ctx.method == Method::GET || ctx.method == Method::HEAD {
                Ok(())
            } else {
                Err(ApiError::method_not_allowed())
            }
        };
        match target {
            Target::Version => {
                get_only(&ctx)?;
                Ok(json_response(StatusCode::OK, &version_info()))
            }
            Target::Health { endpoint, check } => {
                get_only(&ctx)?;
                Ok(self.health(&endpoint, check.as_deref(), &ctx.query).await)
            }
            Target::Metrics => {
                get_only(&ctx)?;
                let mut text = String::new();
                self.requests.render(&mut text);
                crate::self_metrics::render_process(&mut text, self.started);
                let mut resp = text_response(StatusCode::OK, text);
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                Ok(resp)
            }
            Target::LegacyVersions => {
                get_only(&ctx)?;
                match discovery::wants_aggregated(&ctx.accept) {
                    Some(v) => Ok(aggregated_response(&self.catalog, true, v)),
                    None => Ok(json_response(
                        StatusCode::OK,
                        &discovery::legacy_versions(&self.server_address),
                    )),
                }
            }
            Target::Groups => {
                get_only(&ctx)?;
                match discovery::wants_aggregated(&ctx.accept) {
                    Some(v) => Ok(aggregated_response(&self.catalog, false, v)),
                    None => Ok(json_response(
                        StatusCode::OK,
                        &discovery::group_list(&self.catalog),
                    )),
                }
            }
            Target::Group(g) => {
                get_only(&ctx)?;
                discovery::group(&self.catalog, &g)
                    .map(|d| json_response(StatusCode::OK, &d))
                    .ok_or_else(ApiError::path_not_found)
            }
            Target::GroupVersion(g, v) => {
                get_only(&ctx)?;
                discovery::resource_list(&self.catalog, &g, &v)
                    .map(|d| json_response(StatusCode::OK, &d))
                    .ok_or_else(ApiError::path_not_found)
            }
            Target::OpenApiV2 | Target::OpenApiV3(_) => {
                let openapi = self.openapi.clone();
                let (method, uri, headers) =
                    (ctx.method.clone(), ctx.uri.clone(), ctx.headers.clone());
                // The first request builds the documents: keep it off the
                // async workers.
                let resp =
                    tokio::task::spawn_blocking(move || openapi.respond(&method, &uri, &headers))
                        .await
                        .map_err(ApiError::internal)?;
                match resp {
                    Some(r) => {
                        let (parts, bytes) = r.into_parts();
                        Ok(Response::from_parts(parts, full(bytes)))
                    }
                    None => Err(ApiError::path_not_found()),
                }
            }
            Target::Resource(rr) if rr.info.group == crate::metrics::GROUP => {
                get_only(&ctx)?;
                let body = self
                    .metrics
                    .serve(&self.registry, &rr, &ctx.query, &ctx.accept)
                    .await?;
                Ok(json_response(StatusCode::OK, &body))
            }
            Target::Resource(rr) => self.resource(rr, ctx, user).await,
        }
    }

    fn kubelet_client(&self) -> ApiResult<&crate::kubelet::KubeletClient> {
        self.kubelet
            .get()
            .map(|k| k.as_ref())
            .ok_or_else(|| ApiError::unavailable("this server does not reach kubelets"))
    }

    async fn pod_and_node(&self, ns: &str, name: &str) -> ApiResult<(Value, Option<Value>)> {
        let pods = crate::resources::lookup("", "v1", "pods").expect("pods are served");
        let pod = self.registry.get(pods, Some(ns), name).await?;
        let node_name = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if node_name.is_empty() {
            return Ok((pod, None));
        }
        let nodes = crate::resources::lookup("", "v1", "nodes").expect("nodes are served");
        let node = self.registry.get(nodes, None, &node_name).await?;
        Ok((pod, Some(node)))
    }

    /// `GET pods/<name>/log`: the container's log from its kubelet.
    async fn pod_log(&self, ns: &str, name: &str, ctx: Ctx) -> ApiResult<Response<Body>> {
        let pods = crate::resources::lookup("", "v1", "pods").expect("pods are served");
        crate::kubelet::validate_log_options(pods, name, &ctx.query)?;
        let (pod, node) = self.pod_and_node(ns, name).await?;
        let container = crate::kubelet::validate_container(&pod, ctx.query.get("container"))?;
        let Some(node) = node else {
            // Not scheduled yet: nothing to read, as upstream answers.
            return Ok(text_response(StatusCode::OK, String::new()));
        };
        crate::kubelet::check_log_status(&pod, &container, ctx.query.flag("previous"))?;
        let (host, port) = self.kubelet_endpoint(&node)?;
        let path = format!(
            "/containerLogs/{ns}/{name}/{container}{}",
            ctx.uri.query().map(|q| format!("?{q}")).unwrap_or_default()
        );
        let client = self.kubelet_client()?;
        let req = crate::kubelet::KubeletRequest {
            method: Method::GET,
            path_and_query: path,
            headers: &ctx.headers,
            body: Bytes::new(),
            upgrade: None,
        };
        crate::kubelet::forward(client, &host, port, req).await
    }

    /// `pods/<name>/exec|attach|portforward`: the stream, upgraded, from the
    /// pod's kubelet.
    async fn pod_stream(
        &self,
        sub: &str,
        ns: &str,
        name: &str,
        ctx: Ctx,
    ) -> ApiResult<Response<Body>> {
        let (pod, node) = self.pod_and_node(ns, name).await?;
        let path = match sub {
            "portforward" => format!("/portForward/{ns}/{name}"),
            _ => {
                if sub == "exec" && ctx.query.get("command").is_none() {
                    return Err(ApiError::bad_request("you must specify at least 1 command"));
                }
                let container =
                    crate::kubelet::validate_container(&pod, ctx.query.get("container"))?;
                format!("/{sub}/{ns}/{name}/{container}")
            }
        };
        let Some(node) = node else {
            return Err(ApiError::bad_request(format!(
                "pod {name} does not have a host assigned"
            )));
        };
        let (host, port) = self.kubelet_endpoint(&node)?;
        let path = format!(
            "{path}{}",
            ctx.uri.query().map(|q| format!("?{q}")).unwrap_or_default()
        );
        let client = self.kubelet_client()?;
        let req = crate::kubelet::KubeletRequest {
            method: ctx.method.clone(),
            path_and_query: path,
            headers: &ctx.headers,
            body: ctx.body.clone(),
            upgrade: ctx.upgrade,
        };
        crate::kubelet::forward(client, &host, port, req).await
    }

    /// `nodes/<name>/proxy/<path>`: any request, forwarded to the kubelet.
    async fn node_proxy(&self, name: &str, ctx: Ctx) -> ApiResult<Response<Body>> {
        let nodes = crate::resources::lookup("", "v1", "nodes").expect("nodes are served");
        let node = self.registry.get(nodes, None, name).await?;
        let (host, port) = self.kubelet_endpoint(&node)?;
        let full_path = ctx.uri.path();
        let marker = format!("/nodes/{name}/proxy");
        let rest = full_path
            .find(&marker)
            .map(|i| &full_path[i + marker.len()..])
            .unwrap_or("");
        let rest = if rest.is_empty() { "/" } else { rest };
        let path = format!(
            "{rest}{}",
            ctx.uri.query().map(|q| format!("?{q}")).unwrap_or_default()
        );
        let client = self.kubelet_client()?;
        let req = crate::kubelet::KubeletRequest {
            method: ctx.method.clone(),
            path_and_query: path,
            headers: &ctx.headers,
            body: ctx.body.clone(),
            upgrade: ctx.upgrade,
        };
        crate::kubelet::forward(client, &host, port, req).await
    }

    async fn health(&self, endpoint: &str, check: Option<&str>, query: &Query) -> Response<Body> {
        let store_ok = self.registry.store().current_revision().await.is_ok();
        let mut checks: Vec<(&str, bool)> = vec![("ping", true), ("log", true), ("etcd", store_ok)];
        if endpoint == "readyz" {
            let cache_ready = self.registry.cache().is_none_or(|c| c.is_ready());
            checks.push((
                "informer-sync",
                self.ready.load(Ordering::Acquire) && cache_ready,
            ));
        }
        if let Some(c) = check {
            return match checks.iter().find(|(n, _)| *n == c) {
                Some((_, true)) => text_response(StatusCode::OK, "ok".into()),
                Some((_, false)) => text_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("internal server error: {c} failed"),
                ),
                None => text_response(StatusCode::NOT_FOUND, "404 page not found\n".into()),
            };
        }
        let healthy = checks.iter().all(|(_, ok)| *ok);
        let verbose = query.0.contains_key("verbose");
        if verbose || !healthy {
            let mut text = String::new();
            for (name, ok) in &checks {
                if *ok {
                    text.push_str(&format!("[+]{name} ok\n"));
                } else {
                    text.push_str(&format!("[-]{name} failed: reason withheld\n"));
                }
            }
            if healthy {
                text.push_str(&format!("{endpoint} check passed\n"));
                return text_response(StatusCode::OK, text);
            }
            text.push_str(&format!("{endpoint} check failed\n"));
            return text_response(StatusCode::INTERNAL_SERVER_ERROR, text);
        }
        text_response(StatusCode::OK, "ok".into())
    }

    /// `POST serviceaccounts/<name>/token`: a bound token for an existing
    /// service account.
    async fn token_request(&self, ns: &str, name: &str, mut body: Value) -> ApiResult<Value> {
        let issuer = self
            .tokens
            .get()
            .ok_or_else(|| ApiError::unavailable("service account tokens are not enabled"))?;
        let sas = crate::resources::lookup("", "v1", "serviceaccounts")
            .expect("serviceaccounts are served");
        let sa = self.registry.get(sas, Some(ns), name).await?;
        let expiration = body
            .pointer("/spec/expirationSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(crate::tokens::DEFAULT_EXPIRATION_SECONDS);
        if expiration < crate::tokens::MIN_EXPIRATION_SECONDS {
            return Err(ApiError {
                code: 422,
                reason: "Invalid",
                message: format!("TokenRequest.authentication.k8s.io \"{name}\" is invalid: spec.expirationSeconds: Invalid value: {expiration}: may not specify a duration less than 10 minutes"),
                details: Some(json!({ "name": name, "group": "authentication.k8s.io", "kind": "TokenRequest", "causes": [{ "reason": "FieldValueInvalid", "message": format!("Invalid value: {expiration}: may not specify a duration less than 10 minutes"), "field": "spec.expirationSeconds" }] })),
            });
        }
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
        let uid = sa
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let (token, exp) = issuer.issue(
            ns,
            crate::tokens::ServiceAccountRef {
                name: name.to_string(),
                uid,
            },
            audiences.clone(),
            expiration,
            None,
        );
        let expires = chrono::DateTime::from_timestamp(exp, 0)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        body["apiVersion"] = json!("authentication.k8s.io/v1");
        body["kind"] = json!("TokenRequest");
        body["metadata"] = json!({ "name": name, "namespace": ns, "creationTimestamp": null });
        body["spec"]["audiences"] = json!(if audiences.is_empty() {
            vec![crate::tokens::ISSUER.to_string()]
        } else {
            audiences
        });
        body["spec"]["expirationSeconds"] = json!(expiration);
        body["status"] = json!({ "token": token, "expirationTimestamp": expires });
        Ok(body)
    }

    /// The kind and decoded body of a PATCH.
    fn patch_body(&self, ctx: &Ctx) -> ApiResult<(PatchKind, Value)> {
        let kind = PatchKind::from_content_type(&ctx.content_type).ok_or_else(|| {
            ApiError::new(
                415,
                "UnsupportedMediaType",
                format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {:?})", ctx.content_type),
            )
        })?;
        // An apply patch may be YAML (kubectl sends JSON, a part of YAML).
        let patch: Value = match serde_json::from_slice(&ctx.body) {
            Ok(patch) => Ok(patch),
            Err(_) if kind == PatchKind::Apply => {
                crate::duplicates::yaml(&ctx.body).map(|y| y.value)
            }
            Err(e) => Err(e.to_string()),
        }
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
        Ok((kind, patch))
    }

    fn body_json(&self, ctx: &Ctx) -> ApiResult<Value> {
        let ct = ctx.content_type.split(';').next().unwrap_or("").trim();
        match ct {
            "" | "application/json" | "*/*" => {}
            wire::PROTOBUF => {
                return wire::decode(&ctx.body).map_err(|e| {
                    ApiError::bad_request(format!(
                        "the body of the request could not be decoded as protobuf: {e}"
                    ))
                });
            }
            other if other.ends_with("+json") || other == "application/yaml" => {}
            other => return Err(ApiError::unsupported_media_type(other)),
        }
        if ctx.body.is_empty() {
            return Err(ApiError::bad_request("the body of the request was empty"));
        }
        if ct == "application/yaml" {
            return crate::duplicates::yaml(&ctx.body).map(|y| y.value).map_err(|e| {
                ApiError::bad_request(format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml: {e}"))
            });
        }
        serde_json::from_slice(&ctx.body).map_err(|e| {
            ApiError::bad_request(format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml: {e}"))
        })
    }

    async fn resource(
        &self,
        rr: ResourceRequest,
        ctx: Ctx,
        user: &User,
    ) -> ApiResult<Response<Body>> {
        let r = rr.info;
        if rr.subresource.is_none() && !r.has_verb(rr.verb.as_str()) {
            return Err(ApiError::method_not_allowed());
        }
        let dry_run = ctx.query.get("dryRun") == Some("All");
        let field_manager = ctx
            .query
            .get("fieldManager")
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .or_else(|| {
                // upstream names an unnamed writer after its program.
                let ua = ctx
                    .headers
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let program = ua.split('/').next().unwrap_or("").trim();
                (!program.is_empty()).then(|| program.to_string())
            });
        let mut wopts = WriteOptions {
            dry_run,
            field_manager,
            force: ctx.query.flag("force"),
            tracked: false,
            field_validation: Some(crate::registry::FieldValidation::parse(
                ctx.query.get("fieldValidation"),
            )?),
            warnings: Default::default(),
            duplicates: None,
            created: Default::default(),
        };
        if matches!(rr.verb, Verb::Create | Verb::Update | Verb::Patch)
            && wopts.field_validation != Some(crate::registry::FieldValidation::Ignore)
            && !ctx.body.is_empty()
        {
            wopts.duplicates =
                crate::duplicates::Duplicates::of(&ctx.body, &ctx.content_type).map(Arc::new);
        }
        let warnings = wopts.warnings.clone();
        if let Some(w) = self
            .registry
            .customs()
            .get(r)
            .and_then(|v| v.deprecation_warning.clone())
        {
            warnings.lock().unwrap_or_else(|p| p.into_inner()).push(w);
        }
        let mut resp = self.resource_inner(rr, ctx, user, wopts).await?;
        for w in warnings.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            if let Ok(v) = HeaderValue::from_str(&format!("299 - {w:?}")) {
                resp.headers_mut().append(header::WARNING, v);
            }
        }
        Ok(resp)
    }

    async fn resource_inner(
        &self,
        rr: ResourceRequest,
        ctx: Ctx,
        user: &User,
        wopts: WriteOptions,
    ) -> ApiResult<Response<Body>> {
        let r = rr.info;
        // The registry reads and writes objects at their storage version;
        // bodies and answers are converted from and to the version asked.
        let sr = crate::convert::storage_info(r);
        let ns = rr.namespace.as_deref();
        if let Some(sub) = rr.subresource.as_deref() {
            let sub_verbs = r.subresource(sub).map(|s| s.verbs).unwrap_or(&[]);
            if !sub_verbs.contains(&rr.verb.as_str()) {
                return Err(ApiError::method_not_allowed());
            }
            let name = rr.name.as_deref().unwrap_or("");
            match (sub, rr.verb) {
                ("status", Verb::Get) => {
                    let obj = self.registry.get(sr, ns, name).await?;
                    return Ok(self.object_response(StatusCode::OK, r, obj, &ctx));
                }
                ("status", Verb::Update)
                | ("approval", Verb::Update)
                | ("ephemeralcontainers", Verb::Update) => {}
                ("approval" | "ephemeralcontainers", Verb::Get) => {
                    let obj = self.registry.get(sr, ns, name).await?;
                    return Ok(self.object_response(StatusCode::OK, r, obj, &ctx));
                }
                ("approval" | "ephemeralcontainers", Verb::Patch) => {
                    let (kind, patch) = self.patch_body(&ctx)?;
                    let obj = self
                        .registry
                        .patch(r, ns, name, Some(sub), kind, &patch, &wopts)
                        .await?;
                    return Ok(self.object_response(StatusCode::OK, r, obj, &ctx));
                }
                ("status", Verb::Patch) => {
                    let (kind, patch) = self.patch_body(&ctx)?;
                    let obj = self
                        .registry
                        .patch(r, ns, name, Some("status"), kind, &patch, &wopts)
                        .await?;
                    return Ok(self.object_response(StatusCode::OK, r, obj, &ctx));
                }
                ("scale", Verb::Patch) => {
                    let (kind, patch) = self.patch_body(&ctx)?;
                    let scale_info = crate::subresources::scale_info();
                    let current = subresources::get_scale(&self.registry, r, ns, name).await?;
                    let patched = crate::registry::apply_patch(scale_info, kind, current, &patch)?;
                    let scale =
                        subresources::update_scale(&self.registry, r, ns, name, &patched, &wopts)
                            .await?;
                    return Ok(json_response(StatusCode::OK, &scale));
                }
                ("scale", Verb::Get) => {
                    let scale = subresources::get_scale(&self.registry, r, ns, name).await?;
                    return Ok(json_response(StatusCode::OK, &scale));
                }
                ("scale", Verb::Update) => {
                    let body = self.body_json(&ctx)?;
                    let scale =
                        subresources::update_scale(&self.registry, r, ns, name, &body, &wopts)
                            .await?;
                    return Ok(json_response(StatusCode::OK, &scale));
                }
                ("eviction", Verb::Create) => {
                    let body = self.body_json(&ctx)?;
                    let status =
                        subresources::evict(&self.registry, ns.unwrap_or(""), name, &body).await?;
                    return Ok(json_response(StatusCode::CREATED, &status));
                }
                ("finalize", Verb::Update) => {
                    let body = self.body_json(&ctx)?;
                    let ns = crate::namespaces::finalize(&self.registry, name, &body).await?;
                    return Ok(negotiated_response(StatusCode::OK, &ns, &ctx.accept));
                }
                ("token", Verb::Create) => {
                    let body = self.body_json(&ctx)?;
                    let answer = self.token_request(ns.unwrap_or(""), name, body).await?;
                    return Ok(negotiated_response(
                        StatusCode::CREATED,
                        &answer,
                        &ctx.accept,
                    ));
                }
                ("binding", Verb::Create) => {
                    let body = self.body_json(&ctx)?;
                    let status =
                        subresources::bind(&self.registry, ns.unwrap_or(""), name, &body).await?;
                    return Ok(json_response(StatusCode::CREATED, &status));
                }
                ("log", Verb::Get) if r.resource == "pods" => {
                    return self.pod_log(ns.unwrap_or(""), name, ctx).await;
                }
                ("exec" | "attach" | "portforward", Verb::Get | Verb::Create)
                    if r.resource == "pods" =>
                {
                    return self.pod_stream(sub, ns.unwrap_or(""), name, ctx).await;
                }
                ("proxy", _) if r.resource == "nodes" => {
                    return self.node_proxy(name, ctx).await;
                }
                (sub, _) => {
                    return Err(ApiError::new(
                        501,
                        "NotImplemented",
                        format!(
                            "{} {}/{sub} is not served yet",
                            rr.verb.as_str(),
                            r.resource
                        ),
                    ))
                }
            }
        }
        if r.group == "authentication.k8s.io"
            && r.resource == "tokenreviews"
            && rr.verb == Verb::Create
        {
            let issuer = self
                .tokens
                .get()
                .ok_or_else(|| ApiError::unavailable("service account tokens are not enabled"))?;
            let mut body = self.body_json(&ctx)?;
            body["apiVersion"] = json!(r.api_version());
            body["kind"] = json!(r.kind);
            return Ok(negotiated_response(
                StatusCode::CREATED,
                &crate::tokens::review(issuer, body),
                &ctx.accept,
            ));
        }
        if matches!(r.group, "authorization.k8s.io" | "authentication.k8s.io")
            && rr.verb == Verb::Create
            && r.resource != "tokenreviews"
        {
            let mut body = self.body_json(&ctx)?;
            body["apiVersion"] = json!(r.api_version());
            body["kind"] = json!(r.kind);
            let answered = crate::authz::review(&self.registry, user, r.kind, ns, body).await;
            return Ok(negotiated_response(
                StatusCode::CREATED,
                &answered,
                &ctx.accept,
            ));
        }
        if r.group.is_empty() && r.resource == "bindings" && rr.verb == Verb::Create {
            let body = self.body_json(&ctx)?;
            let name = body
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let status = subresources::bind(&self.registry, ns.unwrap_or(""), &name, &body).await?;
            return Ok(json_response(StatusCode::CREATED, &status));
        }
        let filter = crate::filter::from_query(r, &ctx.query)?;
        match rr.verb {
            Verb::Get => {
                let name = rr.name.as_deref().unwrap_or("");
                let obj = self.registry.get(sr, ns, name).await?;
                Ok(self.object_response(StatusCode::OK, r, obj, &ctx))
            }
            Verb::List => {
                let opts = ListOptions {
                    label_selector: ctx.query.get("labelSelector").map(str::to_string),
                    field_selector: ctx.query.get("fieldSelector").map(str::to_string),
                    limit: match ctx.query.get("limit") {
                        Some(l) => l
                            .parse()
                            .map_err(|_| ApiError::bad_request(format!("invalid limit: {l:?}")))?,
                        None => 0,
                    },
                    continue_token: ctx.query.get("continue").map(str::to_string),
                    resource_version: ctx.query.get("resourceVersion").map(str::to_string),
                    resource_version_match: ctx
                        .query
                        .get("resourceVersionMatch")
                        .map(str::to_string),
                };
                let list = self.registry.list_shared(r, ns, &opts, &filter).await?;
                if table::wants_table(&ctx.accept) {
                    let items = list.values();
                    for item in &items {
                        crate::convert::check_served(r, item)?;
                    }
                    let include = table::IncludeObject::from_param(ctx.query.get("includeObject"))
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "includeObject: unsupported value {:?}",
                                ctx.query.get("includeObject").unwrap_or("")
                            ))
                        })?;
                    let mut t = self.table(
                        r,
                        &items,
                        Some(&list.revision.to_string()),
                        list.continue_token.as_deref(),
                        include,
                    );
                    if let Some(n) = list.remaining_item_count {
                        t["metadata"]["remainingItemCount"] = json!(n);
                    }
                    return Ok(json_response(StatusCode::OK, &t));
                }
                if let Some(partial) = crate::partial::wanted(&ctx.accept) {
                    return Ok(negotiated_response(
                        StatusCode::OK,
                        &partial.list(&list.to_value()),
                        &ctx.accept,
                    ));
                }
                if crate::convert::converts(r) {
                    let list = crate::convert::list_to_served(r, list.to_value())?;
                    return Ok(negotiated_response(StatusCode::OK, &list, &ctx.accept));
                }
                if prefers_protobuf(&ctx.accept) {
                    return Ok(negotiated_response(
                        StatusCode::OK,
                        &list.to_value(),
                        &ctx.accept,
                    ));
                }
                let mut resp = Response::new(full(list.to_json()));
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                Ok(resp)
            }
            Verb::Watch => {
                let opts = WatchOptions {
                    resource_version: ctx.query.get("resourceVersion").map(str::to_string),
                    allow_bookmarks: ctx.query.flag("allowWatchBookmarks"),
                    send_initial_events: ctx.query.flag("sendInitialEvents"),
                    timeout: ctx
                        .query
                        .get("timeoutSeconds")
                        .and_then(|t| t.parse().ok())
                        .map(Duration::from_secs),
                };
                let filter = match &rr.name {
                    // A watch of one object (`fieldSelector=metadata.name=x`
                    // or the name in the path).
                    Some(name) => filter.named(name),
                    None => filter,
                };
                let events = watch::watch(&self.registry, r, ns, opts, filter).await?;
                let as_table = table::wants_table(&ctx.accept);
                let include = table::IncludeObject::from_param(ctx.query.get("includeObject"))
                    .unwrap_or_default();
                let custom = self.registry.customs().get(r);
                let converted = crate::convert::converts(r);
                let partial = crate::partial::wanted(&ctx.accept);
                let body = events.map(move |ev| {
                    let line = if as_table && ev.kind != "ERROR" && ev.kind != "BOOKMARK" {
                        let objects = [ev.object()];
                        let t = match &custom {
                            Some(v) => table::to_table_custom_with(
                                &v.columns, &objects, None, None, include,
                            ),
                            None => table::to_table_with(r, &objects, None, None, include),
                        };
                        watch::WatchEvent::new(ev.kind, t).line()
                    } else if let Some(p) = partial.filter(|_| ev.kind != "ERROR") {
                        watch::WatchEvent::new(ev.kind, p.object(&ev.object())).line()
                    } else if converted {
                        served_event(r, &ev).line()
                    } else {
                        ev.line()
                    };
                    Ok::<_, Infallible>(Frame::data(Bytes::from(line)))
                });
                let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(body)));
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                resp.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("no-cache, private"),
                );
                Ok(resp)
            }
            Verb::Create => {
                let mut body = crate::convert::to_storage(r, self.body_json(&ctx)?)?;
                if r.resource == "certificatesigningrequests" {
                    crate::csr::set_requester(&mut body, user);
                }
                if rr.name.is_some() {
                    return Err(ApiError::method_not_allowed());
                }
                let obj = self.registry.create(sr, ns, body, &wopts).await?;
                Ok(self.object_response(StatusCode::CREATED, r, obj, &ctx))
            }
            Verb::Update => {
                let body = crate::convert::to_storage(r, self.body_json(&ctx)?)?;
                let name = rr.name.as_deref().unwrap_or("");
                let (obj, created) = self
                    .registry
                    .update(sr, ns, name, rr.subresource.as_deref(), body, &wopts)
                    .await?;
                let code = if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                Ok(self.object_response(code, r, obj, &ctx))
            }
            Verb::Patch => {
                let (kind, patch) = self.patch_body(&ctx)?;
                let name = rr.name.as_deref().unwrap_or("");
                let obj = self
                    .registry
                    .patch(r, ns, name, None, kind, &patch, &wopts)
                    .await?;
                let code = if wopts.created.load(std::sync::atomic::Ordering::Relaxed) {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                Ok(self.object_response(code, r, obj, &ctx))
            }
            Verb::Delete => {
                let body = if ctx.body.is_empty() {
                    None
                } else {
                    Some(self.body_json(&ctx)?)
                };
                let opts = DeleteOptions::from_request(body.as_ref(), &ctx.query)?;
                let name = rr.name.as_deref().unwrap_or("");
                let obj = self.registry.delete(sr, ns, name, &opts).await?;
                // An object still being deleted (finalizers, grace) comes
                // back as itself; one that is gone is answered with a
                // Success Status, except for the kinds whose upstream store
                // returns the deleted object.
                let pending = obj.pointer("/metadata/deletionTimestamp").is_some();
                let returns_object = matches!(
                    (r.group, r.resource),
                    ("", "pods") | ("", "serviceaccounts") | ("storage.k8s.io", "storageclasses")
                );
                if pending || returns_object {
                    return Ok(self.object_response(StatusCode::OK, r, obj, &ctx));
                }
                let mut details = json!({ "name": name, "kind": r.resource });
                if !r.group.is_empty() {
                    details["group"] = json!(r.group);
                }
                if let Some(uid) = obj.pointer("/metadata/uid") {
                    details["uid"] = uid.clone();
                }
                Ok(negotiated_response(
                    StatusCode::OK,
                    &crate::status::success_status(Some(details)),
                    &ctx.accept,
                ))
            }
            Verb::DeleteCollection => {
                let body = if ctx.body.is_empty() {
                    None
                } else {
                    Some(self.body_json(&ctx)?)
                };
                let opts = DeleteOptions::from_request(body.as_ref(), &ctx.query)?;
                let list = self
                    .registry
                    .list(r, ns, &ListOptions::default(), &|o| filter.matches(o))
                    .await?;
                let mut deleted = Vec::new();
                for item in list["items"].as_array().cloned().unwrap_or_default() {
                    let name = item
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let item_ns = item
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    match self
                        .registry
                        .delete(sr, item_ns.as_deref(), &name, &opts)
                        .await
                    {
                        Ok(o) => deleted.push(crate::convert::to_served(r, o)?),
                        Err(e) if e.code == 404 => {}
                        Err(e) => return Err(e),
                    }
                }
                let out = json!({
                    "kind": r.list_kind,
                    "apiVersion": r.api_version(),
                    "metadata": { "resourceVersion": list["metadata"]["resourceVersion"] },
                    "items": deleted,
                });
                Ok(json_response(StatusCode::OK, &out))
            }
        }
    }

    /// The Table of stored objects of `r` (the version the client asked
    /// for): custom resources print the columns their definition gives
    /// that version, built-in kinds are printed from their storage version.
    fn table(
        &self,
        r: &crate::resources::ResourceInfo,
        objects: &[Value],
        rv: Option<&str>,
        continue_token: Option<&str>,
        include: table::IncludeObject,
    ) -> Value {
        match self.registry.customs().get(r) {
            Some(v) => {
                table::to_table_custom_with(&v.columns, objects, rv, continue_token, include)
            }
            None => table::to_table_with(
                crate::convert::storage_info(r),
                objects,
                rv,
                continue_token,
                include,
            ),
        }
    }

    /// An object read or written at its storage version, answered as `r`
    /// (the version the client asked for) or as a Table.
    fn object_response(
        &self,
        code: StatusCode,
        r: &crate::resources::ResourceInfo,
        obj: Value,
        ctx: &Ctx,
    ) -> Response<Body> {
        if let Err(e) = crate::convert::check_served(r, &obj) {
            return error_response(&e);
        }
        if table::wants_table(&ctx.accept) {
            let rv = obj
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            let include = table::IncludeObject::from_param(ctx.query.get("includeObject"))
                .unwrap_or_default();
            return json_response(code, &self.table(r, &[obj], rv.as_deref(), None, include));
        }
        if let Some(partial) = crate::partial::wanted(&ctx.accept) {
            return negotiated_response(code, &partial.object(&obj), &ctx.accept);
        }
        match crate::convert::to_served(r, obj) {
            Ok(obj) => negotiated_response(code, &obj, &ctx.accept),
            Err(e) => error_response(&e),
        }
    }
}

/// A watch event read at the storage version, as a client of `r` sees it.
fn served_event(r: &crate::resources::ResourceInfo, ev: &watch::WatchEvent) -> watch::WatchEvent {
    let mut object = ev.to_json()["object"].take();
    match ev.kind {
        "ERROR" => watch::WatchEvent::new(ev.kind, object),
        "BOOKMARK" => {
            object["apiVersion"] = json!(r.api_version());
            watch::WatchEvent::new(ev.kind, object)
        }
        kind => match crate::convert::to_served(r, object) {
            Ok(o) => watch::WatchEvent::new(kind, o),
            Err(e) => watch::WatchEvent::new("ERROR", e.to_status()),
        },
    }
}

fn aggregated_response(
    catalog: &crate::resources::Catalog,
    legacy: bool,
    version: &str,
) -> Response<Body> {
    let ct = if version == "v2" {
        discovery::AGGREGATED_V2
    } else {
        discovery::AGGREGATED_V2BETA1
    };
    json_response_typed(
        StatusCode::OK,
        &discovery::aggregated(catalog, legacy, version),
        ct,
    )
}

pub fn version_info() -> Value {
    json!({
        "major": KUBERNETES_VERSION.0,
        "minor": KUBERNETES_VERSION.1,
        "gitVersion": format!("{}+krate", KUBERNETES_VERSION.2),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH }),
    })
}

/// The authorization attributes of a request.
fn attributes(target: &Target, method: &Method, path: &str) -> crate::authz::Attributes {
    match target {
        Target::Resource(rr) => crate::authz::Attributes {
            verb: rr.verb.as_str().to_string(),
            api_group: rr.info.group.to_string(),
            resource: rr.info.resource.to_string(),
            subresource: rr.subresource.clone().unwrap_or_default(),
            namespace: rr.namespace.clone().unwrap_or_default(),
            name: rr.name.clone().unwrap_or_default(),
            path: None,
            field_selector: None,
        },
        _ => crate::authz::Attributes {
            verb: method.as_str().to_lowercase(),
            path: Some(path.to_string()),
            ..Default::default()
        },
    }
}

impl ApiServer {
    /// The user a request acts as (upstream `WithImpersonation`): `None`
    /// without `Impersonate-*` headers; otherwise the impersonated user,
    /// after the requester is authorized to `impersonate` the user (or
    /// service account), each group, each extra and the uid. A
    /// non-anonymous user without `system:authenticated` or
    /// `system:unauthenticated` among its groups gets
    /// `system:authenticated`; a service account without groups gets its
    /// fixed ones. (Users here carry no uid or extras: those are checked,
    /// not kept.)
    async fn impersonation(
        &self,
        requester: &User,
        headers: &hyper::HeaderMap,
    ) -> ApiResult<Option<User>> {
        let values = |name: &str| -> Vec<String> {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::to_string)
                .collect()
        };
        let name = values("impersonate-user").into_iter().next();
        let groups = values("impersonate-group");
        let uid = values("impersonate-uid").into_iter().next();
        let extras: Vec<(String, String)> = headers
            .iter()
            .filter_map(|(k, v)| {
                let key = k.as_str().strip_prefix("impersonate-extra-")?;
                Some((key.to_string(), v.to_str().ok()?.to_string()))
            })
            .collect();
        let Some(name) = name else {
            if groups.is_empty() && uid.is_none() && extras.is_empty() {
                return Ok(None);
            }
            return Err(ApiError::internal(
                "requested impersonation of groups, extras or a uid without impersonating a user",
            ));
        };
        let mut checks: Vec<crate::authz::Attributes> = Vec::new();
        let attrs = |group: &str, resource: &str, sub: &str, ns: &str, name: &str| {
            crate::authz::Attributes {
                verb: "impersonate".into(),
                api_group: group.into(),
                resource: resource.into(),
                subresource: sub.into(),
                namespace: ns.into(),
                name: name.into(),
                ..Default::default()
            }
        };
        let service_account = name
            .strip_prefix("system:serviceaccount:")
            .and_then(|rest| rest.split_once(':'))
            .filter(|(ns, sa)| !ns.is_empty() && !sa.is_empty() && !sa.contains(':'));
        match service_account {
            Some((ns, sa)) => checks.push(attrs("", "serviceaccounts", "", ns, sa)),
            None => checks.push(attrs("", "users", "", "", &name)),
        }
        for g in &groups {
            checks.push(attrs("", "groups", "", "", g));
        }
        for (key, value) in &extras {
            checks.push(attrs("authentication.k8s.io", "userextras", key, "", value));
        }
        if let Some(uid) = &uid {
            checks.push(attrs("authentication.k8s.io", "uids", "", "", uid));
        }
        for a in &checks {
            let (allowed, _) = crate::authz::authorize(&self.registry, requester, a).await;
            if !allowed {
                let resource = if a.subresource.is_empty() {
                    a.resource.clone()
                } else {
                    format!("{}/{}", a.resource, a.subresource)
                };
                let scope = if a.namespace.is_empty() {
                    "at the cluster scope".to_string()
                } else {
                    format!("in the namespace {:?}", a.namespace)
                };
                let qualified = if a.api_group.is_empty() {
                    a.resource.clone()
                } else {
                    format!("{}.{}", a.resource, a.api_group)
                };
                let mut e = ApiError::forbidden(format!(
                    "{qualified} {:?} is forbidden: User {:?} cannot impersonate resource {resource:?} in API group {:?} {scope}",
                    a.name, requester.name, a.api_group
                ));
                let mut details = json!({ "name": a.name, "kind": a.resource });
                if !a.api_group.is_empty() {
                    details["group"] = json!(a.api_group);
                }
                e.details = Some(details);
                return Err(e);
            }
        }
        let mut groups = groups;
        if let Some((ns, _)) = service_account.filter(|_| groups.is_empty()) {
            groups = vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{ns}"),
            ];
        }
        let (authenticated, unauthenticated) = ("system:authenticated", "system:unauthenticated");
        if name == User::anonymous().name {
            if !groups.iter().any(|g| g == unauthenticated) {
                groups.push(unauthenticated.to_string());
            }
        } else if !groups
            .iter()
            .any(|g| g == authenticated || g == unauthenticated)
        {
            groups.push(authenticated.to_string());
        }
        Ok(Some(User { name, groups }))
    }
}

/// The 403 a denied request gets, worded as upstream's RBAC denial.
fn forbidden(user: &User, target: &Target, path: &str) -> ApiError {
    match target {
        Target::Resource(rr) => {
            let scope = match &rr.namespace {
                Some(ns) => format!("in the namespace \"{ns}\""),
                None => "at the cluster scope".to_string(),
            };
            let resource = match &rr.subresource {
                Some(s) => format!("{}/{s}", rr.info.resource),
                None => rr.info.resource.to_string(),
            };
            let what = match &rr.name {
                Some(n) => format!("{} \"{}\" is forbidden", rr.info.qualified_resource(), n),
                None => format!("{} is forbidden", rr.info.qualified_resource()),
            };
            let mut e = ApiError::forbidden(format!(
                "{what}: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
                user.name,
                rr.verb.as_str(),
                rr.info.group
            ));
            let mut details = json!({ "kind": rr.info.resource });
            if let Some(n) = &rr.name {
                details["name"] = json!(n);
            }
            if !rr.info.group.is_empty() {
                details["group"] = json!(rr.info.group);
            }
            e.details = Some(details);
            e
        }
        _ => ApiError::forbidden(format!(
            "forbidden: User \"{}\" cannot get path \"{path}\"",
            user.name
        )),
    }
}
