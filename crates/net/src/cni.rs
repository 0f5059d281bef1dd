//! Running CNI plugins (spec v1.0.0) the way libcni and containerd's CRI
//! plugin do, so that any CNI plugin and config in the standard places works:
//!
//! - the network is the first `.conf`/`.conflist`/`.json` file of the config
//!   directory in lexical order (see [`conf`]); before it, every pod gets the
//!   `loopback` plugin as a network of its own on `lo` (containerd's
//!   `WithLoNetwork`), which brings the namespace's loopback device up;
//! - each plugin is executed from the first bin directory that has it, with
//!   the `CNI_*` environment, the plugin's config on stdin with `name` and
//!   `cniVersion` of the list injected, `prevResult` chained from the plugin
//!   before it, and `runtimeConfig` holding the capability arguments the
//!   plugin declares in `capabilities` (here `portMappings`);
//! - an ADD result is cached in `<cache dir>/results/<network>-<container
//!   id>-<ifname>` in libcni's `cniCacheV1` format (so the CNI tools can read
//!   it); DEL and CHECK run with the cached config, arguments and result
//!   (`prevResult`), so they work after the config changed, and DEL works
//!   without a namespace (an empty `CNI_NETNS`, as the spec allows);
//! - an error result (`{"code":..,"msg":..,"details":..}`) becomes
//!   [`Error::Plugin`] with the plugin's words.

pub mod conf;
pub mod result;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use base64::Engine as _;
use serde_json::{json, Map, Value};
use tokio::io::AsyncWriteExt;

pub use conf::NetworkList;

use crate::default_network::{default_config, DefaultNetwork};

/// Where libcni's users look for plugins: the upstream install location
/// first, then Debian's (containernetworking-plugins).
pub const DEFAULT_BIN_DIRS: &[&str] = &["/opt/cni/bin", "/usr/lib/cni"];
/// The interface name pods get for their network.
pub const DEFAULT_IFNAME: &str = "eth0";
/// The file [`Cni::write_default_config_if_missing`] writes.
pub const DEFAULT_CONFIG_FILE: &str = "10-krate.conflist";

const LOOPBACK_NETWORK: &str = "cni-loopback";
const LOOPBACK_IFNAME: &str = "lo";
const CACHE_KIND: &str = "cniCacheV1";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid characters in containerID: {0:?}")]
    InvalidContainerId(String),
    #[error("no network config found in {0}")]
    NoConfig(PathBuf),
    #[error("failed to load CNI config {path}: {message}")]
    InvalidConfig { path: PathBuf, message: String },
    #[error("failed to find plugin {plugin:?} in path {paths}")]
    PluginNotFound { plugin: String, paths: String },
    /// The plugin failed: `code` and `message` are those of its error result.
    #[error("plugin type={plugin:?} name={network:?} failed ({command}): {message}")]
    Plugin {
        plugin: String,
        network: String,
        command: &'static str,
        code: Option<u64>,
        message: String,
    },
    #[error("network {network:?} has no cached result for container {container_id}")]
    NotAttached {
        network: String,
        container_id: String,
    },
    #[error("configuration version {0:?} does not support the CHECK command")]
    CheckNotSupported(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where configs, plugins and cached results are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniConfig {
    pub conf_dir: PathBuf,
    pub bin_dirs: Vec<PathBuf>,
    pub cache_dir: PathBuf,
}

impl Default for CniConfig {
    /// The CNI conventions: /etc/cni/net.d, the default bin dirs, /var/lib/cni.
    fn default() -> Self {
        CniConfig {
            conf_dir: PathBuf::from("/etc/cni/net.d"),
            bin_dirs: DEFAULT_BIN_DIRS.iter().map(PathBuf::from).collect(),
            cache_dir: PathBuf::from("/var/lib/cni"),
        }
    }
}

/// The pod a sandbox belongs to, passed to plugins in `CNI_ARGS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// A hostPort, as the `portMappings` capability takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// "tcp", "udp" or "sctp".
    pub protocol: String,
    pub container_port: u16,
    pub host_port: u16,
    /// Empty for every host address.
    pub host_ip: String,
}

/// Runs a node's CNI plugins.
#[derive(Debug, Clone)]
pub struct Cni {
    config: CniConfig,
}

/// The arguments of one invocation besides the network config (libcni's
/// RuntimeConf).
#[derive(Debug, Clone)]
struct RuntimeConf {
    container_id: String,
    netns: String,
    ifname: String,
    args: Vec<(String, String)>,
    capability_args: Map<String, Value>,
}

/// What an ADD left in the cache.
#[derive(Debug, Clone)]
struct Cached {
    list: NetworkList,
    rt: RuntimeConf,
    result: Option<Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    Add,
    Del,
    Check,
}

impl Command {
    fn env(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
        }
    }

    /// The word libcni's errors use.
    fn word(self) -> &'static str {
        match self {
            Command::Add => "add",
            Command::Del => "delete",
            Command::Check => "check",
        }
    }
}

impl Cni {
    pub fn new(config: CniConfig) -> Cni {
        Cni { config }
    }

    pub fn config(&self) -> &CniConfig {
        &self.config
    }

    /// The network config pods get now: the first of the config directory.
    pub fn network(&self) -> Result<NetworkList> {
        match conf::load_first(&self.config.conf_dir)? {
            Some((_, list)) => Ok(list),
            None => Err(Error::NoConfig(self.config.conf_dir.clone())),
        }
    }

    /// Whether pods can be networked now: a config is there and every plugin
    /// it names is installed. The error says what is missing (the node's
    /// NetworkReady condition carries it, as "cni plugin not initialized"
    /// does upstream).
    pub fn status(&self) -> Result<()> {
        let list = self.network()?;
        self.find_plugin("loopback")?;
        for plugin in &list.plugins {
            self.find_plugin(
                plugin
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            )?;
        }
        Ok(())
    }

    /// Makes the default network's config, [`DEFAULT_CONFIG_FILE`], the one
    /// in use unless the config directory holds a config of the user's (which
    /// wins): written when the directory has none, rewritten when the file
    /// there is a default of other settings (another pod CIDR, an older
    /// default). Returns whether the default network is in use.
    pub fn ensure_default_config(&self, network: &DefaultNetwork) -> Result<bool> {
        let dir = &self.config.conf_dir;
        let io = |op, path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { op, path, source }
        };
        let path = dir.join(DEFAULT_CONFIG_FILE);
        let files = conf::conf_files(dir).map_err(io("read CNI config directory", dir))?;
        let text = default_config(network);
        match files.first() {
            Some(first) if *first != path => return Ok(false),
            Some(_) if std::fs::read_to_string(&path).ok().as_deref() == Some(&text) => {
                return Ok(true)
            }
            _ => {}
        }
        std::fs::create_dir_all(dir).map_err(io("create CNI config directory", dir))?;
        // Written aside and renamed, so no reader sees half a file.
        let tmp = dir.join(format!(".{DEFAULT_CONFIG_FILE}.tmp"));
        std::fs::write(&tmp, text).map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("rename", &path))?;
        Ok(true)
    }

    /// Attaches the sandbox `container_id`, whose network namespace is
    /// `netns`, to the loopback network and the configured network, and
    /// returns the pod's addresses on `eth0`. If the configured network fails,
    /// both networks are deleted again and the plugin's error returned.
    pub async fn add(
        &self,
        container_id: &str,
        netns: &Path,
        pod: &PodRef,
        port_mappings: &[PortMapping],
    ) -> Result<Vec<IpAddr>> {
        validate_container_id(container_id)?;
        let list = self.network()?;
        let netns_str = netns.to_string_lossy().into_owned();

        let lo_rt = RuntimeConf {
            container_id: container_id.to_owned(),
            netns: netns_str.clone(),
            ifname: LOOPBACK_IFNAME.to_owned(),
            args: cni_args(container_id, pod),
            capability_args: Map::new(),
        };
        self.add_list(&loopback_network(), &lo_rt).await?;

        let mut capability_args = Map::new();
        let mappings: Vec<Value> = port_mappings
            .iter()
            .filter(|m| m.host_port > 0)
            .map(|m| {
                let mut v = json!({
                    "hostPort": m.host_port,
                    "containerPort": m.container_port,
                    "protocol": m.protocol.to_ascii_lowercase(),
                });
                if !m.host_ip.is_empty() {
                    v["hostIP"] = Value::String(m.host_ip.clone());
                }
                v
            })
            .collect();
        if !mappings.is_empty() {
            capability_args.insert("portMappings".into(), Value::Array(mappings));
        }
        let rt = RuntimeConf {
            ifname: DEFAULT_IFNAME.to_owned(),
            capability_args,
            ..lo_rt
        };
        match self.add_list(&list, &rt).await {
            Ok(result) => Ok(result::container_ips(&result, DEFAULT_IFNAME)),
            Err(err) => {
                // Undo what the first plugins did (containerd tears the
                // network down after a failed setup as well).
                if let Err(del_err) = self.del(container_id, Some(netns), pod).await {
                    tracing::warn!(container_id, error = %del_err, "cleaning up after a failed CNI ADD");
                }
                Err(err)
            }
        }
    }

    /// Detaches the sandbox `container_id` from its networks. Deleting what
    /// is not attached is not an error, and a gone namespace (`None`, or a
    /// path that no longer exists) is passed to the plugins as an empty
    /// `CNI_NETNS`: they release what lives outside it (addresses, rules).
    /// Plugins that find resources only through the namespace (the bridge
    /// plugin's ipMasq rules) clean up fully only while it exists, so delete
    /// before removing the namespace.
    pub async fn del(&self, container_id: &str, netns: Option<&Path>, pod: &PodRef) -> Result<()> {
        validate_container_id(container_id)?;
        let netns_str = match netns {
            Some(path) if crate::netns::exists(path) => path.to_string_lossy().into_owned(),
            _ => String::new(),
        };
        let rt = RuntimeConf {
            container_id: container_id.to_owned(),
            netns: netns_str,
            ifname: DEFAULT_IFNAME.to_owned(),
            args: cni_args(container_id, pod),
            capability_args: Map::new(),
        };
        let (list, rt_main, result) = match self.cached(container_id, DEFAULT_IFNAME)? {
            Some(cached) => {
                let rt = RuntimeConf {
                    netns: rt.netns.clone(),
                    ..cached.rt
                };
                (Some(cached.list), rt, cached.result)
            }
            // Nothing cached: an ADD that failed or never finished. The
            // current config's plugins find their state by container id.
            None => (
                conf::load_first(&self.config.conf_dir)?.map(|(_, list)| list),
                rt.clone(),
                None,
            ),
        };
        if let Some(list) = list {
            self.del_forgiving(&list, &rt_main, result).await?;
        }
        let lo_rt = RuntimeConf {
            ifname: LOOPBACK_IFNAME.to_owned(),
            ..rt
        };
        let result = self
            .cached(container_id, LOOPBACK_IFNAME)?
            .and_then(|c| c.result);
        self.del_forgiving(&loopback_network(), &lo_rt, result)
            .await
    }

    /// DEL that, like containerd's go-cni, takes "not found" (and, without a
    /// namespace, "no such file or directory") from a plugin as already
    /// deleted: not every plugin cleans up quietly when its resources or the
    /// namespace are gone.
    async fn del_forgiving(
        &self,
        list: &NetworkList,
        rt: &RuntimeConf,
        result: Option<Value>,
    ) -> Result<()> {
        match self.del_list(list, rt, result).await {
            Err(Error::Plugin { message, .. })
                if message.contains("not found")
                    || (rt.netns.is_empty() && message.contains("no such file or directory")) =>
            {
                tracing::debug!(network = %list.name, container_id = %rt.container_id, %message, "CNI DEL: already gone");
                self.cache_del(&list.name, &rt.container_id, &rt.ifname)
            }
            other => other,
        }
    }

    /// Asks the plugins whether the sandbox's network is still as they set
    /// it up (CHECK with the cached result).
    pub async fn check(&self, container_id: &str, netns: &Path, pod: &PodRef) -> Result<()> {
        validate_container_id(container_id)?;
        let netns_str = netns.to_string_lossy().into_owned();
        for ifname in [LOOPBACK_IFNAME, DEFAULT_IFNAME] {
            let Some(cached) = self.cached(container_id, ifname)? else {
                let network = match ifname {
                    LOOPBACK_IFNAME => LOOPBACK_NETWORK.to_owned(),
                    _ => self.network().map(|l| l.name).unwrap_or_default(),
                };
                return Err(Error::NotAttached {
                    network,
                    container_id: container_id.to_owned(),
                });
            };
            let list = cached.list;
            if !conf::version_at_least(&list.cni_version, "0.4.0") {
                return Err(Error::CheckNotSupported(list.cni_version));
            }
            if list.disable_check {
                continue;
            }
            let mut rt = cached.rt;
            rt.netns = netns_str.clone();
            if rt.args.is_empty() {
                rt.args = cni_args(container_id, pod);
            }
            for plugin in &list.plugins {
                self.exec_plugin(Command::Check, &list, plugin, cached.result.as_ref(), &rt)
                    .await?;
            }
        }
        Ok(())
    }

    /// The container ids that have a cached attachment (an ADD without its
    /// DEL), sorted: after a restart, the ones no sandbox owns any more are
    /// to be deleted (what libcni's GetCachedAttachments is for).
    pub fn attached(&self) -> Result<Vec<String>> {
        let dir = self.config.cache_dir.join("results");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Io {
                    op: "read CNI cache directory",
                    path: dir,
                    source,
                })
            }
        };
        let mut ids = Vec::new();
        for entry in entries.filter_map(|e| e.ok()) {
            let Ok(bytes) = std::fs::read(entry.path()) else {
                continue;
            };
            let Ok(info) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            if info.get("kind").and_then(Value::as_str) != Some(CACHE_KIND) {
                continue;
            }
            if let Some(id) = info.get("containerId").and_then(Value::as_str) {
                ids.push(id.to_owned());
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    async fn add_list(&self, list: &NetworkList, rt: &RuntimeConf) -> Result<Value> {
        let mut result: Option<Value> = None;
        for plugin in &list.plugins {
            result = self
                .exec_plugin(Command::Add, list, plugin, result.as_ref(), rt)
                .await?;
        }
        let result = result.unwrap_or_else(|| json!({"cniVersion": list.cni_version}));
        self.cache_add(list, rt, &result)?;
        Ok(result)
    }

    async fn del_list(
        &self,
        list: &NetworkList,
        rt: &RuntimeConf,
        cached_result: Option<Value>,
    ) -> Result<()> {
        // A cached result is passed on DEL from spec 0.4.0 on.
        let prev = cached_result.filter(|_| conf::version_at_least(&list.cni_version, "0.4.0"));
        for plugin in list.plugins.iter().rev() {
            self.exec_plugin(Command::Del, list, plugin, prev.as_ref(), rt)
                .await?;
        }
        self.cache_del(&list.name, &rt.container_id, &rt.ifname)
    }

    /// Runs one plugin; returns its result for ADD.
    async fn exec_plugin(
        &self,
        command: Command,
        list: &NetworkList,
        plugin: &Map<String, Value>,
        prev_result: Option<&Value>,
        rt: &RuntimeConf,
    ) -> Result<Option<Value>> {
        let plugin_type = plugin
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let path = self.find_plugin(plugin_type)?;
        let stdin = plugin_stdin(list, plugin, prev_result, rt);
        let paths = std::env::join_paths(&self.config.bin_dirs)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let args = rt
            .args
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";");
        let io = |op| {
            let path = path.clone();
            move |source| Error::Io { op, path, source }
        };
        let mut child = tokio::process::Command::new(&path)
            .env("CNI_COMMAND", command.env())
            .env("CNI_CONTAINERID", &rt.container_id)
            .env("CNI_NETNS", &rt.netns)
            .env("CNI_IFNAME", &rt.ifname)
            .env("CNI_ARGS", args)
            .env("CNI_PATH", paths)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(io("execute CNI plugin"))?;
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let write = async move {
            // A plugin may exit without reading all of its input.
            let _ = pipe.write_all(&stdin).await;
        };
        let (_, output) = tokio::join!(write, child.wait_with_output());
        let output = output.map_err(io("wait for CNI plugin"))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !stderr.trim().is_empty() {
            tracing::debug!(plugin = plugin_type, command = command.env(), stderr = %stderr.trim(), "CNI plugin stderr");
        }
        let plugin_error = |code, message| Error::Plugin {
            plugin: plugin_type.to_owned(),
            network: list.name.clone(),
            command: command.word(),
            code,
            message,
        };
        if !output.status.success() {
            let (code, message) = plugin_failure(&output.status, &output.stdout, &output.stderr);
            return Err(plugin_error(code, message));
        }
        if command != Command::Add {
            return Ok(None);
        }
        match serde_json::from_slice::<Value>(&output.stdout) {
            Ok(result @ Value::Object(_)) => Ok(Some(result)),
            Ok(_) | Err(_) => Err(plugin_error(
                None,
                format!(
                    "failed to parse the plugin's result {:?}",
                    String::from_utf8_lossy(&output.stdout)
                ),
            )),
        }
    }

    fn find_plugin(&self, plugin: &str) -> Result<PathBuf> {
        if !plugin.is_empty() && !plugin.contains('/') {
            for dir in &self.config.bin_dirs {
                let path = dir.join(plugin);
                if path.is_file() {
                    return Ok(path);
                }
            }
        }
        let dirs: Vec<String> = self
            .config
            .bin_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        Err(Error::PluginNotFound {
            plugin: plugin.to_owned(),
            paths: format!("[{}]", dirs.join(" ")),
        })
    }

    fn cache_path(&self, network: &str, container_id: &str, ifname: &str) -> PathBuf {
        self.config
            .cache_dir
            .join("results")
            .join(format!("{network}-{container_id}-{ifname}"))
    }

    fn cache_add(&self, list: &NetworkList, rt: &RuntimeConf, result: &Value) -> Result<()> {
        let mut cached = json!({
            "kind": CACHE_KIND,
            "containerId": rt.container_id,
            "config": base64::engine::general_purpose::STANDARD.encode(&list.bytes),
            "ifName": rt.ifname,
            "networkName": list.name,
            "result": result,
        });
        if !rt.netns.is_empty() {
            cached["netns"] = Value::String(rt.netns.clone());
        }
        if !rt.args.is_empty() {
            cached["cniArgs"] = Value::Array(rt.args.iter().map(|(k, v)| json!([k, v])).collect());
        }
        if !rt.capability_args.is_empty() {
            cached["capabilityArgs"] = Value::Object(rt.capability_args.clone());
        }
        let path = self.cache_path(&list.name, &rt.container_id, &rt.ifname);
        let dir = path.parent().expect("cache files are in results/");
        let io = |op, path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { op, path, source }
        };
        std::fs::create_dir_all(dir).map_err(io("create CNI cache directory", dir))?;
        let tmp = dir.join(format!(
            ".{}.tmp",
            path.file_name().unwrap().to_string_lossy()
        ));
        std::fs::write(
            &tmp,
            serde_json::to_vec(&cached).expect("JSON values serialize"),
        )
        .map_err(io("write CNI cache", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("write CNI cache", &path))
    }

    fn cache_del(&self, network: &str, container_id: &str, ifname: &str) -> Result<()> {
        let path = self.cache_path(network, container_id, ifname);
        match std::fs::remove_file(&path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
                op: "remove CNI cache",
                path,
                source: err,
            }),
            _ => Ok(()),
        }
    }

    /// The cached ADD of `container_id` on `ifname`, whatever network it was
    /// (the config may have changed since): found by the file name's suffix
    /// and confirmed by the content.
    fn cached(&self, container_id: &str, ifname: &str) -> Result<Option<Cached>> {
        let dir = self.config.cache_dir.join("results");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::Io {
                    op: "read CNI cache directory",
                    path: dir,
                    source,
                })
            }
        };
        let suffix = format!("-{container_id}-{ifname}");
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| name.ends_with(&suffix) && !name.starts_with('.'))
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let Ok(Value::Object(info)) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            let field = |key: &str| info.get(key).and_then(Value::as_str).unwrap_or_default();
            if field("kind") != CACHE_KIND
                || field("containerId") != container_id
                || field("ifName") != ifname
            {
                continue;
            }
            let Some(list) = base64::engine::general_purpose::STANDARD
                .decode(field("config"))
                .ok()
                .and_then(|bytes| NetworkList::from_list_bytes(&bytes).ok())
            else {
                continue;
            };
            if list.name != field("networkName") {
                continue;
            }
            let args = info
                .get("cniArgs")
                .and_then(Value::as_array)
                .map(|args| {
                    args.iter()
                        .filter_map(|kv| {
                            let kv = kv.as_array()?;
                            Some((
                                kv.first()?.as_str()?.to_owned(),
                                kv.get(1)?.as_str()?.to_owned(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let capability_args = match info.get("capabilityArgs") {
                Some(Value::Object(map)) => map.clone(),
                _ => Map::new(),
            };
            return Ok(Some(Cached {
                rt: RuntimeConf {
                    container_id: container_id.to_owned(),
                    netns: field("netns").to_owned(),
                    ifname: ifname.to_owned(),
                    args,
                    capability_args,
                },
                result: info.get("result").cloned().filter(Value::is_object),
                list,
            }));
        }
        Ok(None)
    }
}

/// libcni's rule for container ids (they name cache files): a letter or
/// digit, then letters, digits, `_`, `.` and `-`.
fn validate_container_id(id: &str) -> Result<()> {
    let valid = id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidContainerId(id.to_owned()))
    }
}

/// `CNI_ARGS` as containerd's CRI plugin passes them.
fn cni_args(container_id: &str, pod: &PodRef) -> Vec<(String, String)> {
    [
        ("IgnoreUnknown", "1"),
        ("K8S_POD_NAMESPACE", pod.namespace.as_str()),
        ("K8S_POD_NAME", pod.name.as_str()),
        ("K8S_POD_INFRA_CONTAINER_ID", container_id),
        ("K8S_POD_UID", pod.uid.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The loopback network every pod gets first (containerd's default).
fn loopback_network() -> NetworkList {
    let bytes = serde_json::to_vec(&json!({
        "cniVersion": "1.0.0",
        "name": LOOPBACK_NETWORK,
        "plugins": [{"type": "loopback"}],
    }))
    .expect("JSON values serialize");
    NetworkList::from_list_bytes(&bytes).expect("the loopback network is valid")
}

/// A plugin's stdin: its config with the list's name and version, the
/// previous result, and the runtime config for the capabilities it declares
/// (libcni's buildOneConfig and injectRuntimeConfig).
fn plugin_stdin(
    list: &NetworkList,
    plugin: &Map<String, Value>,
    prev_result: Option<&Value>,
    rt: &RuntimeConf,
) -> Vec<u8> {
    let mut conf = plugin.clone();
    conf.insert("name".into(), Value::String(list.name.clone()));
    conf.insert("cniVersion".into(), Value::String(list.cni_version.clone()));
    if let Some(prev) = prev_result {
        conf.insert("prevResult".into(), prev.clone());
    }
    let mut runtime_config = Map::new();
    if let Some(Value::Object(capabilities)) = plugin.get("capabilities") {
        for (capability, enabled) in capabilities {
            if enabled.as_bool() == Some(true) {
                if let Some(arg) = rt.capability_args.get(capability) {
                    runtime_config.insert(capability.clone(), arg.clone());
                }
            }
        }
    }
    if !runtime_config.is_empty() {
        conf.insert("runtimeConfig".into(), Value::Object(runtime_config));
    }
    serde_json::to_vec(&Value::Object(conf)).expect("JSON values serialize")
}

/// The code and message of a failed plugin, as libcni's pluginErr words them.
fn plugin_failure(
    status: &std::process::ExitStatus,
    stdout: &[u8],
    stderr: &[u8],
) -> (Option<u64>, String) {
    if stdout.iter().all(u8::is_ascii_whitespace) {
        if stderr.iter().all(u8::is_ascii_whitespace) {
            return (
                None,
                format!("netplugin failed with no error message: {status}"),
            );
        }
        return (
            None,
            format!(
                "netplugin failed: {:?}",
                String::from_utf8_lossy(stderr).trim_end()
            ),
        );
    }
    match serde_json::from_slice::<Value>(stdout) {
        Ok(value) => result::error_message(&value).unwrap_or_else(|| {
            (
                None,
                format!(
                    "netplugin failed: {:?}",
                    String::from_utf8_lossy(stdout).trim_end()
                ),
            )
        }),
        Err(err) => (
            None,
            format!(
                "netplugin failed but error parsing its diagnostic message {:?}: {err}",
                String::from_utf8_lossy(stdout)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> NetworkList {
        NetworkList::from_list_bytes(
            br#"{"cniVersion":"1.0.0","name":"krate","plugins":[
                {"type":"bridge","bridge":"cni0"},
                {"type":"portmap","capabilities":{"portMappings":true,"bandwidth":false}}
            ]}"#,
        )
        .unwrap()
    }

    fn rt() -> RuntimeConf {
        let mut capability_args = Map::new();
        capability_args.insert(
            "portMappings".into(),
            json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
        );
        capability_args.insert("bandwidth".into(), json!({"ingressRate": 1}));
        RuntimeConf {
            container_id: "abc".into(),
            netns: "/run/krate/netns/abc".into(),
            ifname: "eth0".into(),
            args: vec![],
            capability_args,
        }
    }

    #[test]
    fn stdin_injects_name_version_and_previous_result() {
        let list = list();
        let prev = json!({"cniVersion": "1.0.0", "ips": [{"address": "10.42.0.2/24"}]});
        let stdin: Value =
            serde_json::from_slice(&plugin_stdin(&list, &list.plugins[0], Some(&prev), &rt()))
                .unwrap();
        assert_eq!(stdin["name"], "krate");
        assert_eq!(stdin["cniVersion"], "1.0.0");
        assert_eq!(stdin["bridge"], "cni0");
        assert_eq!(stdin["prevResult"], prev);
        assert!(
            stdin.get("runtimeConfig").is_none(),
            "bridge declares no capabilities"
        );
    }

    #[test]
    fn runtime_config_holds_only_the_declared_capabilities() {
        let list = list();
        let stdin: Value =
            serde_json::from_slice(&plugin_stdin(&list, &list.plugins[1], None, &rt())).unwrap();
        assert_eq!(
            stdin["runtimeConfig"],
            json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]})
        );
        assert!(stdin.get("prevResult").is_none());
    }

    #[test]
    fn cni_args_name_the_pod() {
        let pod = PodRef {
            namespace: "default".into(),
            name: "web".into(),
            uid: "u-1".into(),
        };
        let args: Vec<String> = cni_args("sb1", &pod)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            args.join(";"),
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=sb1;K8S_POD_UID=u-1"
        );
    }
}
