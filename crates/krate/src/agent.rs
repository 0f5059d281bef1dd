//! The node agent's wiring: flags shared by `krate server` (which runs an
//! agent for its own machine unless `--disable-agent`) and `krate agent
//! --server URL --token TOKEN` (a node joining a server), and the pieces
//! the agent drives: the image store, the runc runtime with the CNI pod
//! network, and the volume manager.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use async_trait::async_trait;
use clap::Args;
use node::agent::{self, ImageInfo, ImageService, NodeNetwork, PullError, RegistryAuth};

use crate::server::DEFAULT_DATA_DIR;

/// Flags of the node agent (k3s' names where it has them).
#[derive(Args, Clone, Debug)]
pub struct AgentArgs {
    /// The node's name (default: the hostname, lowercased).
    #[arg(long)]
    pub node_name: Option<String>,
    /// The node's InternalIP (default: the address of the interface of the
    /// default route).
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// Directory of static pod manifests (one Pod per `.yaml`, `.yml` or
    /// `.json` file), run as pods named `<name>-<node>`.
    #[arg(long)]
    pub pod_manifest_path: Option<PathBuf>,
    /// Directory of CNI network configs (default:
    /// `<data-dir>/agent/etc/cni/net.d`).
    #[arg(long)]
    pub cni_conf_dir: Option<PathBuf>,
    /// Directory of CNI plugins (default: /opt/cni/bin and /usr/lib/cni).
    #[arg(long)]
    pub cni_bin_dir: Option<PathBuf>,
    /// The bridge of the default pod network (unique per cluster when
    /// several share a machine).
    #[arg(long, default_value = "cni0", hide = true)]
    pub cni_bridge: String,
    /// The cgroup pods go under (unique per cluster when several share a
    /// machine).
    #[arg(long, default_value = "/kubepods", hide = true)]
    pub cgroup_root: String,
    /// Where container logs are written.
    #[arg(long, default_value = "/var/log/pods", hide = true)]
    pub pod_log_dir: PathBuf,
    /// The port of the kubelet API (logs, exec, attach, port-forward);
    /// 0 picks a free one (tests).
    #[arg(long, default_value_t = node::server::DEFAULT_PORT)]
    pub kubelet_port: u16,
    /// Seconds between refreshes of running pods' configMap, secret,
    /// downwardAPI and projected volumes (the kubelet's sync period).
    #[arg(long, default_value_t = 60, hide = true)]
    pub volume_refresh_interval: u64,
    /// Hard eviction thresholds, as the kubelet's flag
    /// (`memory.available<100Mi,nodefs.available<10%`): when one is
    /// crossed the node reports pressure and fails pods. A value given
    /// replaces all the defaults; `<0%` switches a signal off.
    #[arg(long, default_value = agent::eviction::DEFAULT_EVICTION_HARD, overrides_with = "eviction_hard")]
    pub eviction_hard: String,
    /// Soft eviction thresholds (`memory.available<1.5Gi`): the node
    /// reports pressure as soon as one is crossed, and fails pods once it
    /// has stayed crossed for its grace period.
    #[arg(long, default_value = "", overrides_with = "eviction_soft")]
    pub eviction_soft: String,
    /// How long each soft threshold must hold before pods are evicted
    /// (`memory.available=1m30s`); every soft threshold needs one.
    #[arg(
        long,
        default_value = "",
        overrides_with = "eviction_soft_grace_period"
    )]
    pub eviction_soft_grace_period: String,
    /// The longest grace period, in seconds, a pod evicted for a soft
    /// threshold gets (its own terminationGracePeriodSeconds if shorter).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub eviction_max_pod_grace_period: i64,
    /// How far past its threshold a signal must recover before evictions
    /// for it stop (`memory.available=0Mi,nodefs.available=500Mi`).
    #[arg(long, default_value = "", overrides_with = "eviction_minimum_reclaim")]
    pub eviction_minimum_reclaim: String,
    /// How long a pressure condition stays after its threshold was last
    /// crossed.
    #[arg(long, default_value = "5m", value_parser = crate::server::parse_go_duration)]
    pub eviction_pressure_transition_period: std::time::Duration,
    /// How often the eviction signals are measured.
    #[arg(long, default_value = "10s", value_parser = crate::server::parse_go_duration, hide = true)]
    pub eviction_monitoring_interval: std::time::Duration,
    /// An unused image is deleted to relieve disk pressure only once it has
    /// been on the node this long.
    #[arg(long, default_value = "2m", value_parser = crate::server::parse_go_duration)]
    pub image_minimum_gc_age: std::time::Duration,
}

/// The kubelet API's serving certificate and the CA its clients (the API
/// server) present certificates of.
pub struct KubeletTls {
    pub cert_pem: String,
    pub key_pem: String,
    pub client_ca_pem: String,
}

/// `krate agent`: a node that joins a server.
#[derive(Args)]
pub struct AgentCommand {
    /// The server's URL, e.g. `https://10.0.0.1:6443`.
    #[arg(long)]
    pub server: String,
    /// The join token (the server's `<data-dir>/token`,
    /// `K10<CA hash>::server:<secret>`): the server's CA is fetched and
    /// must match the hash.
    #[arg(long)]
    pub token: String,
    /// The server's CA certificate (PEM), for a token that is only the
    /// secret (no CA hash).
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Directory holding the agent's state.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// The range pod CIDRs come from (for the unreachable route).
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// The range Service ClusterIPs come from (for the unreachable route).
    #[arg(long, default_value = "10.43.0.0/16")]
    pub service_cidr: String,
    #[command(flatten)]
    pub agent: AgentArgs,
}

/// Everything [`start`] needs beside the flags.
pub struct Setup<'a> {
    pub data_dir: &'a Path,
    pub cluster_cidr: &'a str,
    pub service_cidr: &'a str,
    pub control_plane: bool,
    /// Serve the kubelet API with this certificate (`None`: one from a
    /// kubelet-serving CertificateSigningRequest when `kubelet_csr_client_ca`
    /// is set, else no kubelet API, so no logs/exec/attach/port-forward for
    /// this node's pods).
    pub kubelet_tls: Option<KubeletTls>,
    /// Ask the API server for the kubelet serving certificate, accepting
    /// clients of this CA.
    pub kubelet_csr_client_ca: Option<String>,
}

/// The agent's task; it stops when the handle is aborted or dropped with
/// its JoinSet.
pub async fn run(client: kube::Client, args: AgentArgs, setup: Setup<'_>) -> Result<()> {
    let data_dir = setup.data_dir;
    let node_name = args
        .node_name
        .clone()
        .map(|n| n.to_lowercase())
        .unwrap_or_else(agent::default_node_name);

    let store = image::Store::open(data_dir.join("images")).context("opening the image store")?;
    import_image_dir(&store, &data_dir.join("agent").join("images")).await;

    let cni_conf_dir = args
        .cni_conf_dir
        .clone()
        .unwrap_or_else(|| data_dir.join("agent/etc/cni/net.d"));
    let mut cni_config = net::CniConfig {
        conf_dir: cni_conf_dir,
        cache_dir: data_dir.join("agent/cni"),
        ..Default::default()
    };
    if let Some(bin) = &args.cni_bin_dir {
        cni_config.bin_dirs = vec![bin.clone()];
    }
    let cni = net::Cni::new(cni_config);
    let mut runc_config = runtime::RuncConfig::new(data_dir.join("runtime"));
    runc_config.cni = Some(cni.clone());
    runc_config.cgroup_root = args.cgroup_root.clone();
    if data_dir != Path::new(DEFAULT_DATA_DIR) {
        runc_config.run_dir = data_dir.join("run");
    }
    let runtime = runtime::Runc::new(runc_config).context("starting the container runtime")?;

    let mut options = agent::Options::new(data_dir.to_path_buf());
    options.node_name = node_name;
    let node_ip = args
        .node_ip
        .unwrap_or_else(agent::node_status::default_node_ip);
    options.node_ip = Some(node_ip);
    options.pod_log_dir = args.pod_log_dir.clone();
    options.control_plane = setup.control_plane;
    options.kubelet_version = apiserver::server::KUBERNETES_VERSION.2.to_string();
    let network = CniNetwork {
        cni,
        bridge: args.cni_bridge.clone(),
        unreachable: [setup.cluster_cidr, setup.service_cidr]
            .iter()
            .map(|c| c.parse().with_context(|| format!("CIDR {c:?}")))
            .collect::<Result<Vec<_>>>()?,
    };
    let runtime: Arc<dyn runtime::RuntimeService> = Arc::new(runtime);
    // The kubelet API; it stops with this task.
    let mut _kubelet_api = None;
    if let Some(tls) = &setup.kubelet_tls {
        let addr = std::net::SocketAddr::from(([0, 0, 0, 0], args.kubelet_port));
        let (bound, task) = node::server::start(
            runtime.clone(),
            addr,
            &tls.cert_pem,
            &tls.key_pem,
            &tls.client_ca_pem,
        )
        .await
        .context("starting the kubelet API")?;
        options.kubelet_port = bound.port() as i32;
        _kubelet_api = Some(AbortOnDrop(task));
    } else if let Some(client_ca) = &setup.kubelet_csr_client_ca {
        let addr = std::net::SocketAddr::from(([0, 0, 0, 0], args.kubelet_port));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr} for the kubelet API"))?;
        options.kubelet_port = listener.local_addr()?.port() as i32;
        // The names the Node reports: its name (the Hostname address) and
        // its InternalIP.
        let names = crate::kubelet_cert::Names {
            node_name: options.node_name.clone(),
            dns: vec![options.node_name.clone()],
            ips: vec![node_ip],
        };
        _kubelet_api = Some(AbortOnDrop(tokio::spawn(crate::kubelet_cert::serve(
            client.clone(),
            runtime.clone(),
            listener,
            names,
            client_ca.clone(),
            data_dir.join("agent/pki/kubelet-server-current.pem"),
        ))));
    } else {
        tracing::warn!("no kubelet serving certificate: logs, exec, attach and port-forward are not served for this node's pods");
    }
    let resources = node::volumes::Resources::new(client.clone(), data_dir, &options.node_name);
    resources
        .manager()
        .set_cluster_domain(options.cluster_domain.clone());
    let _volume_refresh = AbortOnDrop(resources.spawn_refresh(std::time::Duration::from_secs(
        args.volume_refresh_interval.max(1),
    )));
    let services = agent::Services {
        runtime,
        images: Arc::new(Images(store)),
        resources: resources.clone(),
        network: Some(Arc::new(network)),
    };
    options.pod_manifest_path = args.pod_manifest_path.clone();
    options.eviction = agent::eviction::Config {
        thresholds: agent::eviction::threshold_config(
            &args.eviction_hard,
            &args.eviction_soft,
            &args.eviction_soft_grace_period,
            &args.eviction_minimum_reclaim,
        )
        .map_err(anyhow::Error::msg)
        .context("the eviction thresholds")?,
        max_pod_grace_period: args.eviction_max_pod_grace_period,
        pressure_transition_period: args.eviction_pressure_transition_period,
        monitoring_interval: args
            .eviction_monitoring_interval
            .max(std::time::Duration::from_millis(100)),
        image_minimum_gc_age: args.image_minimum_gc_age,
    };
    agent::run(client, options, services).await;
    Ok(())
}

/// Imports every archive in `dir` (k3s' `agent/images`), for air-gapped
/// nodes and tests.
async fn import_image_dir(store: &image::Store, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let s = store.clone();
        let p = path.clone();
        match tokio::task::spawn_blocking(move || s.import(&p)).await {
            Ok(Ok(images)) => {
                for i in images {
                    tracing::info!(image = ?i.repo_tags, id = %i.id, file = %path.display(), "imported an image");
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(file = %path.display(), error = %e, "importing an image archive")
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "importing an image archive")
            }
        }
    }
}

struct Images(image::Store);

fn info(i: image::Image) -> ImageInfo {
    let c = i.config;
    ImageInfo {
        image_ref: i
            .repo_digests
            .first()
            .cloned()
            .unwrap_or_else(|| i.id.clone()),
        id: i.id,
        layers: i.layers,
        size: i.size,
        config: agent::container_config::ImageConfig {
            entrypoint: c.entrypoint,
            cmd: c.cmd,
            env: c.env,
            working_dir: Some(c.working_dir).filter(|w| !w.is_empty()),
            user: Some(c.user).filter(|u| !u.is_empty()),
        },
    }
}

#[async_trait]
impl ImageService for Images {
    async fn status(&self, name: &str) -> Result<Option<ImageInfo>, PullError> {
        let store = self.0.clone();
        let name = name.to_string();
        let found = tokio::task::spawn_blocking(move || store.resolve(&name))
            .await
            .map_err(|e| PullError(e.to_string()))?;
        Ok(found.map(info))
    }

    async fn pull(&self, name: &str, auth: &[RegistryAuth]) -> Result<ImageInfo, PullError> {
        let domain = image::Reference::parse(name)
            .map(|r| r.domain)
            .unwrap_or_default();
        let same = |server: &str| {
            server == domain
                || (domain == "docker.io"
                    && matches!(server, "index.docker.io" | "registry-1.docker.io"))
        };
        let creds = auth
            .iter()
            .find(|a| same(&a.server))
            .map(|a| image::Credentials {
                username: a.username.clone(),
                password: a.password.clone(),
            });
        // The store's pull future is not Send: it runs on a blocking
        // thread of its own.
        let (store, name) = (self.0.clone(), name.to_string());
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || handle.block_on(store.pull(&name, creds.as_ref())))
            .await
            .map_err(|e| PullError(e.to_string()))?
            .map(info)
            .map_err(|e| PullError(e.to_string()))
    }

    async fn remove(&self, id: &str, in_use: &[String]) -> Result<(), PullError> {
        let (store, id) = (self.0.clone(), id.to_string());
        let in_use: std::collections::HashSet<String> = in_use.iter().cloned().collect();
        tokio::task::spawn_blocking(move || store.remove(&id, &in_use))
            .await
            .map_err(|e| PullError(e.to_string()))?
            .map(|_| ())
            .map_err(|e| PullError(e.to_string()))
    }

    async fn list(&self) -> Result<Vec<agent::images::ListedImage>, PullError> {
        let store = self.0.clone();
        let images = tokio::task::spawn_blocking(move || store.list())
            .await
            .map_err(|e| PullError(e.to_string()))?
            .map_err(|e| PullError(e.to_string()))?;
        Ok(images
            .into_iter()
            .map(|i| agent::images::ListedImage {
                id: i.id,
                repo_tags: i.repo_tags,
                repo_digests: i.repo_digests,
                size: i.size,
            })
            .collect())
    }
}

/// The default bridge network (when the CNI config directory has none of
/// the user's) with its masquerade, and the unreachable routes for the
/// cluster and service CIDRs.
struct CniNetwork {
    cni: net::Cni,
    bridge: String,
    unreachable: Vec<net::IpNet>,
}

#[async_trait]
impl NodeNetwork for CniNetwork {
    async fn setup(&self, pod_cidr: &str) -> Result<(), String> {
        let network = net::DefaultNetwork {
            // host-local keeps its state by network name: one per bridge.
            name: if self.bridge == "cni0" {
                "krate".into()
            } else {
                format!("krate-{}", self.bridge)
            },
            bridge: self.bridge.clone(),
            pod_cidr: pod_cidr.to_string(),
            mtu: None,
        };
        let uses_default = self
            .cni
            .ensure_default_config(&network)
            .map_err(|e| e.to_string())?;
        let cidrs = self.unreachable.clone();
        tokio::task::spawn_blocking(move || {
            if uses_default {
                net::default_network::ensure_masquerade(&network)
                    .map_err(|e| format!("masquerading the pod network: {e}"))?;
            }
            net::routes::ensure_unreachable(&cidrs).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// `krate agent`: joins the server with the shared token (kubelet TLS
/// bootstrap: the token only gets the node its client certificate).
pub async fn join(cmd: AgentCommand) -> Result<()> {
    std::fs::create_dir_all(&cmd.data_dir)
        .with_context(|| format!("creating {}", cmd.data_dir.display()))?;
    let node_name = cmd
        .agent
        .node_name
        .clone()
        .map(|n| n.to_lowercase())
        .unwrap_or_else(agent::default_node_name);
    let server: http::Uri = cmd.server.parse().context("--server URL")?;
    let (hash, secret) = crate::server::parse_token(&cmd.token);
    let ca_pem = server_ca(&server, hash, cmd.ca_file.as_deref()).await?;
    let mut config = kube::Config::new(server.clone());
    // The join secret names the node: `<secret>:<node-name>` authenticates
    // as the bootstrapper system:bootstrap:<node-name>, which may only ask
    // for the node's client certificate; the node works with that.
    config.auth_info.token = Some(format!("{secret}:{node_name}").into());
    config.root_cert = Some(pem_certs(&ca_pem)?);
    let bootstrap = kube::Client::try_from(config).context("the bootstrap API client")?;
    let stored = crate::kubelet_client_cert::stored_path(&cmd.data_dir);
    let issued =
        crate::kubelet_client_cert::bootstrap(&bootstrap, &ca_pem, &node_name, &stored).await?;
    let node = crate::kubelet_client_cert::NodeClient::new(
        server,
        pem_certs(&ca_pem)?,
        issued,
        &node_name,
        stored,
    )?;
    let client = node.client.clone();
    let _rotation = AbortOnDrop(tokio::spawn(node.rotate()));
    let mut args = cmd.agent.clone();
    args.node_name = Some(node_name);
    let run = run(
        client,
        args,
        Setup {
            data_dir: &cmd.data_dir,
            cluster_cidr: &cmd.cluster_cidr,
            service_cidr: &cmd.service_cidr,
            control_plane: false,
            kubelet_tls: None,
            kubelet_csr_client_ca: Some(ca_pem),
        },
    );
    tokio::select! {
        r = run => r,
        r = tokio::signal::ctrl_c() => { r.context("waiting for Ctrl-C")?; Ok(()) }
    }
}

/// The cluster CA the agent trusts the server by: from `--ca-file`, or
/// fetched from the server's `/cacerts` and checked against the token's
/// hash. A bare secret without `--ca-file` is refused: nothing would
/// vouch for the server.
async fn server_ca(
    server: &http::Uri,
    hash: Option<&str>,
    ca_file: Option<&Path>,
) -> Result<String> {
    let hash_of = |pem: &str| crate::server::ca_hash(pem);
    if let Some(file) = ca_file {
        let pem = std::fs::read_to_string(file)
            .with_context(|| format!("reading --ca-file {}", file.display()))?;
        if let Some(want) = hash.filter(|h| *h != hash_of(&pem)) {
            bail!(
                "the CA certificate in {} does not match the token: its hash is {}, the token names {want}",
                file.display(),
                hash_of(&pem)
            );
        }
        return Ok(pem);
    }
    let Some(want) = hash else {
        bail!(
            "the token is a bare secret, with no hash of the server's CA to check the server against: \
             pass the whole token from the server's <data-dir>/token (K10<hash>::server:<secret>), \
             or --ca-file with the server's CA certificate"
        );
    };
    // Unverified on purpose: what comes back is checked against the hash.
    let mut config = kube::Config::new(server.clone());
    config.accept_invalid_certs = true;
    let probe = kube::Client::try_from(config).context("the API client")?;
    let request = http::Request::get("/cacerts")
        .body(Vec::new())
        .context("the /cacerts request")?;
    let pem = probe
        .request_text(request)
        .await
        .with_context(|| format!("fetching the CA certificate from {server}/cacerts"))?;
    let got = hash_of(&pem);
    if got != want {
        bail!(
            "the server's CA certificate does not match the token: the CA at {server}/cacerts hashes to {got}, \
             the token names {want}; is --server the cluster the token comes from?"
        );
    }
    Ok(pem)
}

/// The DER certificates of a PEM bundle.
fn pem_certs(pem: &str) -> Result<Vec<Vec<u8>>> {
    let certs: Vec<Vec<u8>> = x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .filter_map(|p| p.ok())
        .filter(|p| p.label == "CERTIFICATE")
        .map(|p| p.contents)
        .collect();
    if certs.is_empty() {
        bail!("the server's CA is not a PEM certificate");
    }
    Ok(certs)
}

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
