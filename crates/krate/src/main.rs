//! `krate`: Kubernetes in Rust, in one binary. This crate is only the CLI
//! and the wiring; every component lives in its own crate.

mod agent;
mod bench;
mod image;
mod in_process;
mod kubelet_cert;
mod kubelet_client_cert;
mod memory;
mod server;

use std::path::PathBuf;

/// mimalloc rather than glibc's malloc: with many threads, glibc keeps freed
/// memory in per-thread arenas, and a server of 150,000 pods held about
/// twice its live data after a burst of scheduling.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "krate", version, about = "Kubernetes in Rust, in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a krate server (control plane).
    Server(server::ServerArgs),
    /// Run a node agent that joins a krate server.
    Agent(agent::AgentCommand),
    /// The node's images: import archives, list, remove, pull.
    Image(image::ImageArgs),
    /// Save or restore a snapshot of the datastore.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Benchmarks that print figures measured on this machine.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Internal: the child process of `krate bench crash`.
    #[command(name = "__crash-writer", hide = true)]
    CrashWriter {
        dir: PathBuf,
        round: u32,
        writers: usize,
    },
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Write a consistent snapshot of a running or stopped server's
    /// embedded datastore to FILE.
    Save {
        #[arg(long, default_value = server::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        file: PathBuf,
    },
    /// Replace the embedded datastore of a stopped server with FILE.
    Restore {
        #[arg(long, default_value = server::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        file: PathBuf,
    },
}

fn main() -> Result<()> {
    // `krate __shim launch|run DIR`: a container's shim (runtime::shim),
    // started by the node agent; no logging setup, no async runtime.
    let args: Vec<String> = std::env::args().collect();
    // Without transparent huge pages a krate process's heap is the pages it
    // uses: mimalloc asks for huge pages for its arena, which made a quarter
    // of an idle agent's memory and a third of an idle server's, for no
    // throughput the API benchmark could measure. Before the first
    // allocation of any size.
    let _ = nix::sys::prctl::set_thp_disable(true);
    if args.get(1).map(String::as_str) == Some("__shim") {
        std::process::exit(runtime::shim::main(&args[2..]));
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // Freed heap pages go back to the kernel at once (see memory.rs).
    memory::purge_freed_pages_at_once();
    let cli = Cli::parse();
    // A server's text faults in 16 KB at a time, not 64 KB (memory.rs).
    if let Command::Server(_) = &cli.command {
        memory::split_binary_mappings();
    }
    if let Command::CrashWriter {
        dir,
        round,
        writers,
    } = &cli.command
    {
        store::testing::crash::run_writer(dir, *round, *writers);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        match cli.command {
            Command::Server(args) => server::run(args).await,
            Command::Agent(cmd) => agent::join(cmd).await,
            Command::Snapshot(SnapshotCommand::Save { data_dir, file }) => {
                snapshot_save(&data_dir, &file).await
            }
            Command::Snapshot(SnapshotCommand::Restore { data_dir, file }) => {
                let dir = server::datastore_dir(&data_dir);
                let rev = store::embedded::Embedded::restore(&file, &dir).with_context(|| {
                    format!("restoring {} into {}", file.display(), dir.display())
                })?;
                println!(
                    "restored {} into {} (revision {rev})",
                    file.display(),
                    dir.display()
                );
                Ok(())
            }
            Command::Bench(cmd) => bench::run(cmd).await,
            Command::Image(args) => image::run(args).await,
            Command::CrashWriter { .. } => unreachable!("handled before the runtime starts"),
        }
    })
}

async fn snapshot_save(data_dir: &std::path::Path, file: &std::path::Path) -> Result<()> {
    let dir = server::datastore_dir(data_dir);
    let (dir2, file2) = (dir.clone(), file.to_path_buf());
    let info =
        tokio::task::spawn_blocking(move || store::embedded::Embedded::snapshot_dir(&dir2, &file2))
            .await?
            .with_context(|| {
                format!(
                    "snapshotting the datastore in {} to {}",
                    dir.display(),
                    file.display()
                )
            })?;
    println!(
        "saved {} ({} bytes, revision {})",
        file.display(),
        info.size_bytes,
        info.revision
    );
    Ok(())
}
