//! `krate server`: for now the datastore alone (embedded, or etcd with
//! `--datastore-endpoint`); the API server, controllers and node agent are
//! wired in here as they land.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use store::Store;

pub const DEFAULT_DATA_DIR: &str = "/var/lib/krate";

#[derive(Args)]
pub struct ServerArgs {
    /// Directory holding krate's state.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Use an etcd cluster instead of the embedded datastore, e.g.
    /// `http://127.0.0.1:2379` (comma-separated for several members).
    #[arg(long)]
    pub datastore_endpoint: Option<String>,
}

/// Where the embedded datastore lives inside the data directory.
pub fn datastore_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("db")
}

pub async fn run(args: ServerArgs) -> Result<()> {
    let store: Arc<dyn Store> = match &args.datastore_endpoint {
        Some(endpoints) => {
            let endpoints: Vec<String> = endpoints.split(',').map(|s| s.trim().to_string()).collect();
            Arc::new(
                store::etcd::Etcd::connect(&endpoints)
                    .await
                    .with_context(|| format!("connecting to the datastore at {}", endpoints.join(",")))?,
            )
        }
        None => {
            let dir = datastore_dir(&args.data_dir);
            Arc::new(
                store::embedded::Embedded::open(&dir)
                    .with_context(|| format!("opening the embedded datastore in {}", dir.display()))?,
            )
        }
    };
    let rev = store.current_revision().await.context("reading the datastore revision")?;
    tracing::info!(revision = rev, "datastore ready");
    println!("krate server: datastore ready at revision {rev}. The API server is not built yet; Ctrl-C stops.");
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    tracing::info!("shutting down");
    Ok(())
}
