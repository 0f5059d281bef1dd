//! `krate server`: the datastore (embedded, or etcd with
//! `--datastore-endpoint`) and the API server over TLS. Controllers,
//! scheduler and node agent are wired in here as they land.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use apiserver::registry::{Registry, WriteOptions};
use apiserver::server::ApiServer;
use apiserver::tls::{Pki, PkiOptions};
use clap::Args;
use serde_json::json;
use store::Store;

pub const DEFAULT_DATA_DIR: &str = "/var/lib/krate";

/// The first address of the default service CIDR (10.43.0.0/16): the
/// `kubernetes` service's ClusterIP, which the serving certificate names.
const FIRST_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 1);

/// Namespaces every cluster has from the start.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

#[derive(Args)]
pub struct ServerArgs {
    /// Directory holding krate's state.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// HTTPS port of the API server.
    #[arg(long, default_value_t = 6443)]
    pub https_listen_port: u16,
    /// Address the API server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// Use an etcd cluster instead of the embedded datastore, e.g.
    /// `http://127.0.0.1:2379` (comma-separated for several members).
    #[arg(long)]
    pub datastore_endpoint: Option<String>,
}

/// Where the embedded datastore lives inside the data directory.
pub fn datastore_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("db")
}

fn check_data_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating the data directory {}", dir.display()))?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"ok").with_context(|| format!("the data directory {} is not writable", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Addresses of this machine for the serving certificate.
fn node_ips() -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|list| list.into_iter().map(|i| i.ip()).filter(|ip| !ip.is_loopback()).collect())
        .unwrap_or_default();
    ips.push(IpAddr::V4(FIRST_SERVICE_IP));
    ips.sort();
    ips.dedup();
    ips
}

async fn open_store(args: &ServerArgs) -> Result<Arc<dyn Store>> {
    Ok(match &args.datastore_endpoint {
        Some(endpoints) => {
            let endpoints: Vec<String> = endpoints.split(',').map(|s| s.trim().to_string()).collect();
            Arc::new(
                store::etcd::Etcd::connect(&endpoints)
                    .await
                    .with_context(|| format!("the datastore at {} cannot be reached", endpoints.join(",")))?,
            )
        }
        None => {
            let dir = datastore_dir(&args.data_dir);
            Arc::new(
                store::embedded::Embedded::open(&dir)
                    .with_context(|| format!("opening the embedded datastore in {}", dir.display()))?,
            )
        }
    })
}

async fn bootstrap(registry: &Registry) -> Result<()> {
    let namespaces = apiserver::resources::lookup("", "v1", "namespaces").context("namespaces resource")?;
    for ns in SYSTEM_NAMESPACES {
        let obj = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
        match registry.create(namespaces, None, obj, &WriteOptions::default()).await {
            Ok(_) => tracing::info!(namespace = ns, "created namespace"),
            Err(e) if e.code == 409 => {}
            Err(e) => bail!("creating namespace {ns}: {e}"),
        }
    }
    Ok(())
}

pub async fn run(args: ServerArgs) -> Result<()> {
    check_data_dir(&args.data_dir)?;
    let addr = SocketAddr::new(args.bind_address, args.https_listen_port);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!("port {} is already in use (is another krate server or kube-apiserver running?)", args.https_listen_port)
        } else {
            anyhow::Error::new(e).context(format!("listening on {addr}"))
        }
    })?;
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    let pki = Pki::ensure(&PkiOptions {
        data_dir: args.data_dir.clone(),
        hostnames: if hostname.is_empty() { vec![] } else { vec![hostname] },
        ips: node_ips(),
    })
    .context("preparing TLS certificates")?;
    let tls = pki.server_config().context("configuring TLS")?;

    let store = open_store(&args).await?;
    let rev = store.current_revision().await.context("reading the datastore revision")?;
    tracing::info!(revision = rev, "datastore ready");

    let registry = Registry::new(store);
    let api = ApiServer::new(registry, format!("{}:{}", "127.0.0.1", args.https_listen_port));
    bootstrap(api.registry()).await?;
    let url = format!("https://127.0.0.1:{}", args.https_listen_port);
    let kubeconfig = pki.write_admin_kubeconfig(&url).context("writing the admin kubeconfig")?;
    let serving = tokio::spawn(api.clone().serve(listener, Some(tls)));
    api.set_ready();
    tracing::info!(%addr, "API server listening");
    println!("krate server is ready on {url}");
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  kubectl get namespaces");

    tokio::select! {
        r = tokio::signal::ctrl_c() => { r.context("waiting for Ctrl-C")?; }
        r = wait_sigterm() => { r?; }
    }
    tracing::info!("shutting down");
    serving.abort();
    Ok(())
}

async fn wait_sigterm() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("installing SIGTERM handler")?;
    term.recv().await;
    Ok(())
}
