//! `krate bench ...`: benchmarks that print figures measured on this
//! machine, against a baseline measured in the same run where there is one.

mod api;
mod churn;
mod cluster;
mod pods;
mod store;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// A real krate server driven by kube clients: create/get/list
    /// latency, watch fan-out delay, server CPU per request and memory.
    Api(api::ApiArgs),
    /// The embedded datastore against a real etcd on this machine, side by
    /// side: writes, reads, ranges and watch fan-out.
    Store(store::StoreArgs),
    /// Disk growth under continuous updates of a fixed set of keys, with
    /// automatic compaction on (the embedded datastore's defaults).
    Churn(churn::ChurnArgs),
    /// Scheduler and controllers at scale on simulated nodes: scheduling
    /// throughput against pods created already bound, server memory, and a
    /// Deployment to all Ready.
    Cluster(cluster::ClusterArgs),
    /// Real containers on a server's node agent: pod start latency (one
    /// after another, and many at once) against a bare `runc run` measured
    /// in the same run, and a joined `krate agent`'s memory idle and with pods.
    Pods(pods::PodsArgs),
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
        BenchCommand::Api(args) => api::run(args).await,
        BenchCommand::Store(args) => store::run(args).await,
        BenchCommand::Churn(args) => churn::run(args).await,
        BenchCommand::Cluster(args) => cluster::run(args).await,
        BenchCommand::Pods(args) => pods::run(args).await,
        BenchCommand::Crash { kills, writers } => crash(kills, writers).await,
    }
}

async fn crash(kills: usize, writers: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let exe = std::env::current_exe()?;
    let path = dir.path().to_path_buf();
    let report = tokio::task::spawn_blocking(move || {
        ::store::testing::crash::run(&path, kills, |round| {
            let mut cmd = std::process::Command::new(&exe);
            cmd.arg("__crash-writer")
                .arg(&path)
                .arg(round.to_string())
                .arg(writers.to_string());
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

/// `12345` as `12,345`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    // The first group holds 1 to 3 digits, every later one exactly 3.
    let head = match digits.len() % 3 {
        0 => 3.min(digits.len()),
        h => h,
    };
    let (mut out, mut rest) = (digits[..head].to_string(), &digits[head..]);
    while !rest.is_empty() {
        out.push(',');
        out.push_str(&rest[..3]);
        rest = &rest[3..];
    }
    out
}

/// A size in MiB with one decimal.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The filesystem type `path` lives on, from the longest matching mount
/// point in `/proc/self/mountinfo` ("?" when it cannot be told).
fn filesystem_kind(path: &std::path::Path) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return "?".into();
    };
    info.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let mount_point = fields.get(4)?.replace("\\040", " ");
            let after_dash = fields.iter().position(|f| *f == "-")?;
            let kind = fields.get(after_dash + 1)?;
            path.starts_with(&mount_point)
                .then(|| (mount_point.len(), kind.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, kind)| kind)
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits_by_three() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
