//! `krate bench ...`: benchmarks that print figures (placeholder; being written).

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Crash soak: SIGKILL a writer KILLS times and check every acknowledged write.
    Crash {
        #[arg(long, default_value_t = 100)]
        kills: usize,
        #[arg(long, default_value_t = 8)]
        writers: usize,
    },
}

pub async fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Crash { kills, writers } => crash(kills, writers).await,
    }
}

async fn crash(kills: usize, writers: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let exe = std::env::current_exe()?;
    let path = dir.path().to_path_buf();
    let report = tokio::task::spawn_blocking(move || {
        store::testing::crash::run(&path, kills, |round| {
            let mut cmd = std::process::Command::new(&exe);
            cmd.arg("__crash-writer").arg(&path).arg(round.to_string()).arg(writers.to_string());
            cmd
        })
    })
    .await?
    .map_err(anyhow::Error::msg)?;
    println!(
        "crash soak: {} kills, {} acknowledged writes all present, revisions 1..={} gap-free",
        report.kills, report.acknowledged, report.final_revision
    );
    Ok(())
}
