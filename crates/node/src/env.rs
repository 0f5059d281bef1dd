//! A container's environment, as the kubelet builds it
//! (`makeEnvironmentVariables` in upstream's kubelet_pods.go): `envFrom`
//! configMaps and secrets, then `env` in order with `$(VAR)` expansion and
//! `valueFrom` (configMapKeyRef, secretKeyRef, fieldRef, resourceFieldRef),
//! then the service links of the pod's namespace.
//!
//! The pure parts (expansion, field paths, resource values, service links)
//! are also used by the downwardAPI and projected volumes.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ObjectFieldSelector, Pod, ResourceFieldSelector, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;

/// What a container's environment needs besides the pod: the pod's IPs
/// (from its sandbox, the pod's status may not have them yet), the node's
/// IPs and allocatable resources (the limits of containers that set none,
/// as upstream's `defaultPodLimitsForDownwardAPI`), and the service links
/// ([`service_env`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct EnvContext<'a> {
    pub pod_ips: &'a [String],
    pub host_ips: &'a [String],
    pub node_allocatable: Option<&'a BTreeMap<String, Quantity>>,
    pub service_env: &'a [(String, String)],
}

/// The environment of one container: variables in the order they were
/// declared (envFrom, env, then service links), and the events the kubelet
/// records on the pod while building it (all of type Warning).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerEnv {
    pub vars: Vec<(String, String)>,
    pub events: Vec<EnvEvent>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvEvent {
    pub reason: &'static str,
    pub message: String,
}

/// Why a container's environment can't be built; the container waits with
/// reason `CreateContainerConfigError` and this message.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKeyNotFound {
        key: String,
        namespace: String,
        name: String,
    },
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKeyNotFound {
        key: String,
        namespace: String,
        name: String,
    },
    /// An unsupported or malformed fieldRef / resourceFieldRef.
    #[error("{0}")]
    Field(String),
    #[error("{}", api_message(.0))]
    Api(#[source] kube::Error),
}

/// An API error as upstream's clients print it (the Status message).
fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => status.message.clone(),
        e => e.to_string(),
    }
}

/// Builds `container`'s environment (upstream's `makeEnvironmentVariables`).
pub async fn resolve(
    client: &kube::Client,
    pod: &Pod,
    container: &Container,
    ctx: &EnvContext<'_>,
) -> Result<ContainerEnv, EnvError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut configmaps = Fetcher::<ConfigMap>::new(client, namespace);
    let mut secrets = Fetcher::<Secret>::new(client, namespace);
    let mut env = Env::default();
    let mut events = Vec::new();

    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or("");
        let (kind, name, entries): (&str, &str, Vec<(String, String)>) =
            if let Some(r) = &from.config_map_ref {
                let optional = r.optional.unwrap_or(false);
                match configmaps.get(&r.name).await? {
                    Some(cm) => (
                        "configMap",
                        r.name.as_str(),
                        cm.data.clone().unwrap_or_default().into_iter().collect(),
                    ),
                    None if optional => continue,
                    None => return Err(EnvError::ConfigMapNotFound(r.name.clone())),
                }
            } else if let Some(r) = &from.secret_ref {
                let optional = r.optional.unwrap_or(false);
                match secrets.get(&r.name).await? {
                    Some(s) => (
                        "secret",
                        r.name.as_str(),
                        s.data
                            .clone()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                            .collect(),
                    ),
                    None if optional => continue,
                    None => return Err(EnvError::SecretNotFound(r.name.clone())),
                }
            } else {
                continue;
            };
        let mut invalid = Vec::new();
        for (key, value) in entries {
            let key = format!("{prefix}{key}");
            if !is_env_var_name(&key) {
                invalid.push(key);
                continue;
            }
            env.set(key, value);
        }
        if !invalid.is_empty() {
            invalid.sort();
            events.push(EnvEvent {
                reason: "InvalidEnvironmentVariableNames",
                message: format!(
                    "Keys [{}] from the EnvFrom {kind} {namespace}/{name} were skipped since they are considered invalid environment variable names.",
                    invalid.join(", ")
                ),
            });
        }
    }

    for var in container.env.iter().flatten() {
        let value = if let Some(value) = var.value.as_deref().filter(|v| !v.is_empty()) {
            let services: HashMap<&str, &str> = ctx
                .service_env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            expand(value, |name| {
                env.get(name)
                    .or_else(|| services.get(name).copied())
                    .map(str::to_string)
            })
        } else if let Some(from) = &var.value_from {
            if let Some(field) = &from.field_ref {
                pod_field_value(pod, field, ctx)?
            } else if let Some(field) = &from.resource_field_ref {
                container_resource_value(pod, container, field, ctx.node_allocatable)?
            } else if let Some(r) = &from.config_map_key_ref {
                let optional = r.optional.unwrap_or(false);
                let Some(cm) = configmaps.get(&r.name).await? else {
                    if optional {
                        continue;
                    }
                    return Err(EnvError::ConfigMapNotFound(r.name.clone()));
                };
                match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                    Some(v) => v.clone(),
                    None if optional => continue,
                    None => {
                        return Err(EnvError::ConfigMapKeyNotFound {
                            key: r.key.clone(),
                            namespace: namespace.to_string(),
                            name: r.name.clone(),
                        })
                    }
                }
            } else if let Some(r) = &from.secret_key_ref {
                let optional = r.optional.unwrap_or(false);
                let Some(s) = secrets.get(&r.name).await? else {
                    if optional {
                        continue;
                    }
                    return Err(EnvError::SecretNotFound(r.name.clone()));
                };
                match s.data.as_ref().and_then(|d| d.get(&r.key)) {
                    Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                    None if optional => continue,
                    None => {
                        return Err(EnvError::SecretKeyNotFound {
                            key: r.key.clone(),
                            namespace: namespace.to_string(),
                            name: r.name.clone(),
                        })
                    }
                }
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        env.set(var.name.clone(), value);
    }

    for (k, v) in ctx.service_env {
        if env.get(k).is_none() {
            env.set(k.clone(), v.clone());
        }
    }
    Ok(ContainerEnv {
        vars: env.vars,
        events,
    })
}

/// Variables in first-declared order; a later declaration replaces the value.
#[derive(Default)]
struct Env {
    vars: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl Env {
    fn set(&mut self, name: String, value: String) {
        match self.index.get(&name) {
            Some(&i) => self.vars[i].1 = value,
            None => {
                self.index.insert(name.clone(), self.vars.len());
                self.vars.push((name, value));
            }
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.index.get(name).map(|&i| self.vars[i].1.as_str())
    }
}

/// Gets each configMap or secret once per container; `None` when it does
/// not exist.
struct Fetcher<K> {
    api: Api<K>,
    cache: HashMap<String, Option<K>>,
}

impl<K> Fetcher<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    fn new(client: &kube::Client, namespace: &str) -> Self {
        Fetcher {
            api: Api::namespaced(client.clone(), namespace),
            cache: HashMap::new(),
        }
    }

    async fn get(&mut self, name: &str) -> Result<Option<&K>, EnvError> {
        if !self.cache.contains_key(name) {
            let object = self.api.get_opt(name).await.map_err(EnvError::Api)?;
            self.cache.insert(name.to_string(), object);
        }
        Ok(self.cache[name].as_ref())
    }
}

/// Upstream's `IsEnvVarName`: `[-._a-zA-Z][-._a-zA-Z0-9]*`.
pub fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || "-._".contains(c) => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

/// Expands `$(VAR)` references (upstream's third_party expansion package):
/// `$$` is an escaped `$`, a reference `mapping` does not know stays as
/// written, and an unterminated `$(` is kept literally.
pub fn expand(input: &str, mut mapping: impl FnMut(&str) -> Option<String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let advance = match rest.as_bytes()[0] {
                b'$' => {
                    out.push('$');
                    1
                }
                b'(' => match rest.find(')') {
                    Some(end) => {
                        let name = &rest[1..end];
                        match mapping(name) {
                            Some(v) => out.push_str(&v),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        end + 1
                    }
                    None => {
                        out.push_str("$(");
                        1
                    }
                },
                // A `$` that starts no reference stays, and so does what
                // follows it (copied from the next checkpoint).
                _ => {
                    out.push('$');
                    0
                }
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    out.push_str(&input[checkpoint.min(input.len())..]);
    out
}

/// The value of a pod fieldRef in an environment variable (upstream's
/// `podFieldSelectorRuntimeValue`).
pub fn pod_field_value(
    pod: &Pod,
    field: &ObjectFieldSelector,
    ctx: &EnvContext<'_>,
) -> Result<String, EnvError> {
    let spec = pod.spec.as_ref();
    Ok(match field.field_path.as_str() {
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" => ctx.host_ips.first().cloned().unwrap_or_default(),
        "status.hostIPs" => ctx.host_ips.join(","),
        "status.podIP" => ctx.pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => ctx.pod_ips.join(","),
        path => metadata_field_value(pod, path)?,
    })
}

/// A metadata field path (upstream's `ExtractFieldPathAsString`):
/// name, namespace, uid, labels and annotations (whole, as `key="value"`
/// lines, or one key with `['key']`).
pub fn metadata_field_value(pod: &Pod, path: &str) -> Result<String, EnvError> {
    let meta = &pod.metadata;
    if let Some((field, key)) = split_subscript(path) {
        let map = match field {
            "metadata.annotations" => &meta.annotations,
            "metadata.labels" => &meta.labels,
            _ => {
                return Err(EnvError::Field(format!(
                    "fieldPath {} does not support subscript",
                    go_quote(path)
                )))
            }
        };
        return Ok(map
            .as_ref()
            .and_then(|m| m.get(key))
            .cloned()
            .unwrap_or_default());
    }
    Ok(match path {
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        _ => return Err(EnvError::Field(format!("unsupported fieldPath: {path}"))),
    })
}

/// `metadata.labels['key']` -> (`metadata.labels`, `key`).
fn split_subscript(path: &str) -> Option<(&str, &str)> {
    let s = path.strip_suffix("']")?;
    let (field, key) = s.split_once("['")?;
    (!field.is_empty()).then_some((field, key))
}

/// `key="value"` lines in key order, values quoted as Go's `%q`, without a
/// trailing newline (upstream's `fieldpath.FormatMap`).
pub fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The value of a resourceFieldRef (upstream's `containerResourceRuntimeValue`
/// over the pod with limits defaulted to the node's allocatable): the
/// container named by `containerName`, else `container`.
pub fn container_resource_value(
    pod: &Pod,
    container: &Container,
    field: &ResourceFieldSelector,
    allocatable: Option<&BTreeMap<String, Quantity>>,
) -> Result<String, EnvError> {
    let target = match field.container_name.as_deref().filter(|n| !n.is_empty()) {
        None => container,
        Some(name) => find_container(pod, name)
            .ok_or_else(|| EnvError::Field(format!("container {name} not found")))?,
    };
    resource_value(target, field, allocatable)
}

pub(crate) fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

/// Upstream's `ExtractContainerResourceValue`, after
/// `MergeContainerResourceLimits` (a missing limit is the node's allocatable).
pub fn resource_value(
    container: &Container,
    field: &ResourceFieldSelector,
    allocatable: Option<&BTreeMap<String, Quantity>>,
) -> Result<String, EnvError> {
    let parse = |q: &Quantity| {
        api::quantity::Quantity::parse(&q.0)
            .map_err(|e| EnvError::Field(format!("invalid quantity {:?}: {e}", q.0)))
    };
    let divisor = match field.divisor.as_ref().map(parse).transpose()? {
        Some(d) if !d.is_zero() => d,
        _ => api::quantity::Quantity::new(1, api::quantity::Format::DecimalSI),
    };
    let resources = container.resources.as_ref();
    let (kind, name) = field
        .resource
        .split_once('.')
        .ok_or_else(|| unsupported_resource(&field.resource))?;
    let supported =
        matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-");
    if !supported {
        return Err(unsupported_resource(&field.resource));
    }
    let value = match kind {
        "limits" => resources
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get(name))
            .or_else(|| {
                // Hugepages have no allocatable default upstream either.
                (!name.starts_with("hugepages-"))
                    .then(|| allocatable.and_then(|a| a.get(name)))
                    .flatten()
            }),
        "requests" => resources
            .and_then(|r| r.requests.as_ref())
            .and_then(|l| l.get(name)),
        _ => return Err(unsupported_resource(&field.resource)),
    };
    let value = value
        .map(parse)
        .transpose()?
        .unwrap_or_else(api::quantity::Quantity::zero);
    let result = if name == "cpu" {
        (value.milli_value() as f64 / divisor.milli_value() as f64).ceil()
    } else {
        (value.value() as f64 / divisor.value() as f64).ceil()
    };
    Ok((result as i64).to_string())
}

fn unsupported_resource(resource: &str) -> EnvError {
    EnvError::Field(format!("unsupported container resource : {resource}"))
}

/// Service links (upstream's `getServiceEnvVarMap` + `envvars.FromServices`):
/// `<NAME>_SERVICE_HOST`, `<NAME>_SERVICE_PORT[_<PORT>]` and the Docker link
/// variables of every service with a cluster IP in `namespace` (when
/// `enable_service_links`), and of the `kubernetes` service in `default`.
pub fn service_env(
    services: &[Service],
    namespace: &str,
    enable_service_links: bool,
) -> Vec<(String, String)> {
    let mut chosen: BTreeMap<&str, &Service> = BTreeMap::new();
    for svc in services {
        let ip = svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref());
        if matches!(ip, None | Some("") | Some("None")) {
            continue;
        }
        let name = svc.metadata.name.as_deref().unwrap_or_default();
        let ns = svc.metadata.namespace.as_deref().unwrap_or_default();
        if ns == "default" && name == "kubernetes" {
            chosen.entry(name).or_insert(svc);
        } else if ns == namespace && enable_service_links {
            chosen.insert(name, svc);
        }
    }
    let mut vars = Vec::new();
    for (name, svc) in chosen {
        let spec = svc.spec.as_ref().expect("checked above");
        let ip = spec.cluster_ip.clone().unwrap_or_default();
        let name = name.to_uppercase().replace('-', "_");
        let ports = spec.ports.as_deref().unwrap_or_default();
        vars.push((format!("{name}_SERVICE_HOST"), ip.clone()));
        if let Some(first) = ports.first() {
            vars.push((format!("{name}_SERVICE_PORT"), first.port.to_string()));
        }
        for p in ports {
            if let Some(port_name) = p.name.as_deref().filter(|n| !n.is_empty()) {
                vars.push((
                    format!(
                        "{name}_SERVICE_PORT_{}",
                        port_name.to_uppercase().replace('-', "_")
                    ),
                    p.port.to_string(),
                ));
            }
        }
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.clone()
        };
        for (i, p) in ports.iter().enumerate() {
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            let lower = proto.to_lowercase();
            let url = format!("{lower}://{host}:{}", p.port);
            let prefix = format!("{name}_PORT_{}_{}", p.port, proto.to_uppercase());
            if i == 0 {
                vars.push((format!("{name}_PORT"), url.clone()));
            }
            vars.push((prefix.clone(), url));
            vars.push((format!("{prefix}_PROTO"), lower));
            vars.push((format!("{prefix}_PORT"), p.port.to_string()));
            vars.push((format!("{prefix}_ADDR"), ip.clone()));
        }
    }
    vars
}

#[cfg(test)]
mod tests;
