//! `krate bench churn`: whether the embedded datastore's disk use levels off
//! under endless updates. A fixed set of keys is rewritten continuously by a
//! few writers, with automatic compaction at its defaults (or a shorter
//! window), and the size of the datastore's files is printed as it goes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use store::embedded::{Embedded, Options, DB_FILE};
use store::{Revision, Store};
use tokio::task::JoinSet;

use super::{filesystem_kind, mib, thousands};

#[derive(clap::Args, Debug)]
pub struct ChurnArgs {
    /// How long to run.
    #[arg(long, default_value_t = 30)]
    minutes: u64,
    /// Automatic compaction's window in seconds [default: the datastore's
    /// default, 5 minutes].
    #[arg(long)]
    window_secs: Option<u64>,
    /// Keys rewritten over and over.
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    /// Size of every value written.
    #[arg(long, default_value_t = 4096)]
    value_bytes: usize,
    /// Concurrent writers, each owning a share of the keys.
    #[arg(long, default_value_t = 8)]
    writers: usize,
    /// Seconds between two printed samples.
    #[arg(long, default_value_t = 30)]
    every_secs: u64,
    /// Parent of the temporary datastore directory.
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    dir: PathBuf,
}

/// One printed line.
struct Sample {
    elapsed: Duration,
    revision: Revision,
    compacted: Revision,
    bytes: u64,
}

pub async fn run(args: ChurnArgs) -> Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let dir = tempfile::Builder::new()
        .prefix("krate-bench-churn-")
        .tempdir_in(&args.dir)?;
    let mut options = Options::default();
    if let Some(secs) = args.window_secs {
        options.compaction_window = Duration::from_secs(secs);
    }
    let writers = args.writers.clamp(1, args.keys.max(1));
    let keys = args.keys.max(1);
    println!(
        "krate bench churn: {} keys x {} bytes rewritten by {writers} writers for {} min",
        thousands(keys as u64),
        args.value_bytes,
        args.minutes
    );
    println!(
        "  datastore: {} ({}); auto-compaction window {:?}, at least {} revisions kept, checked every {:?}",
        dir.path().display(),
        filesystem_kind(dir.path()),
        options.compaction_window,
        options.compaction_min_revisions,
        options.compaction_check_interval
    );
    println!("  size: {DB_FILE} + -wal + -shm, apparent bytes");
    println!();

    let store =
        Arc::new(Embedded::open_with(dir.path(), options).context("opening the datastore")?);
    let value = Bytes::from(vec![b'x'; args.value_bytes]);

    // Every key exists before the clock starts; each writer then updates
    // its own keys round-robin with compare-and-swap on their revisions.
    let mut revisions: Vec<Vec<(String, Revision)>> = vec![Vec::new(); writers];
    for i in 0..keys {
        let key = format!("/churn/{i:06}");
        let kv = store
            .create(key.as_bytes(), value.clone(), 0)
            .await
            .with_context(|| format!("creating {key}"))?;
        revisions[i % writers].push((key, kv.mod_revision));
    }

    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.minutes * 60);
    let written = Arc::new(AtomicU64::new(0));
    // Latencies of the updates since the last sample.
    let latencies = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let failed = Arc::new(AtomicBool::new(false));
    let mut tasks = JoinSet::new();
    for mut mine in revisions {
        let (store, value, written, failed) = (
            store.clone(),
            value.clone(),
            written.clone(),
            failed.clone(),
        );
        let latencies = latencies.clone();
        tasks.spawn(async move {
            'outer: loop {
                for (key, revision) in mine.iter_mut() {
                    if Instant::now() >= deadline || failed.load(Ordering::Relaxed) {
                        break 'outer;
                    }
                    let t = Instant::now();
                    match store
                        .update(key.as_bytes(), value.clone(), *revision, 0)
                        .await
                    {
                        Ok(kv) => {
                            *revision = kv.mod_revision;
                            latencies
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(t.elapsed());
                        }
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            return Err(anyhow::Error::new(e).context(format!("updating {key}")));
                        }
                    }
                    written.fetch_add(1, Ordering::Relaxed);
                }
            }
            anyhow::Ok(())
        });
    }

    println!(
        "{:>8} | {:>12} | {:>12} | {:>9} | {:>9} | {:>9} | {:>12} | {:>12}",
        "elapsed", "revision", "compacted", "writes/s", "p99", "max", "wal", "total"
    );
    let mut samples = Vec::new();
    let every = Duration::from_secs(args.every_secs.max(1));
    let mut next = start + every;
    let mut last_written = 0;
    let mut slowest = Duration::ZERO;
    while !tasks.is_empty() {
        let now = Instant::now();
        if now >= next || now >= deadline {
            let done = written.load(Ordering::Relaxed);
            let (wal, total) = datastore_bytes(dir.path());
            let sample = Sample {
                elapsed: now - start,
                revision: store.current_revision().await?,
                compacted: store.compacted_revision().await?,
                bytes: total,
            };
            let interval = (now - (next - every)).as_secs_f64();
            let mut lat = std::mem::take(&mut *latencies.lock().unwrap_or_else(|p| p.into_inner()));
            lat.sort_unstable();
            let p99 = lat
                .get((lat.len() * 99 / 100).min(lat.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default();
            let max = lat.last().copied().unwrap_or_default();
            slowest = slowest.max(max);
            println!(
                "{:>8} | {:>12} | {:>12} | {:>9} | {:>9} | {:>9} | {:>12} | {:>12}",
                clock(sample.elapsed),
                thousands(sample.revision as u64),
                thousands(sample.compacted as u64),
                thousands(((done - last_written) as f64 / interval) as u64),
                ms(p99),
                ms(max),
                mib(wal),
                mib(total)
            );
            samples.push(sample);
            last_written = done;
            if now >= deadline {
                break;
            }
            next += every;
        }
        let wait = next.min(deadline).saturating_duration_since(Instant::now());
        tokio::select! {
            done = tasks.join_next() => {
                if let Some(done) = done {
                    done??;
                }
            }
            () = tokio::time::sleep(wait) => {}
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let total_writes = written.load(Ordering::Relaxed);
    let store_for_close = store.clone();
    tokio::task::spawn_blocking(move || store_for_close.close()).await?;
    let (_, closed) = datastore_bytes(dir.path());

    println!();
    print_summary(&samples, total_writes, closed);
    println!("slowest update: {}", ms(slowest));
    Ok(())
}

fn print_summary(samples: &[Sample], writes: u64, after_close: u64) {
    let Some(last) = samples.last() else { return };
    let max = samples.iter().map(|s| s.bytes).max().unwrap_or(0);
    println!(
        "{} updates in {}: {:.0}/s; final revision {}, compacted to {}",
        thousands(writes),
        clock(last.elapsed),
        writes as f64 / last.elapsed.as_secs_f64(),
        thousands(last.revision as u64),
        thousands(last.compacted as u64)
    );
    println!(
        "size: max {}, final {}, after close {}",
        mib(max),
        mib(last.bytes),
        mib(after_close)
    );
    // Steady state: from the first sample after a compaction happened.
    let steady: Vec<&Sample> = samples.iter().skip_while(|s| s.compacted == 0).collect();
    match (
        steady.first(),
        steady.iter().map(|s| s.bytes).min(),
        steady.iter().map(|s| s.bytes).max(),
    ) {
        (Some(first), Some(min), Some(max)) => {
            println!(
                "since the first compaction (seen at {}): min {}, max {}, final {} ({:+.0}% from the first sample then)",
                clock(first.elapsed),
                mib(min),
                mib(max),
                mib(last.bytes),
                (last.bytes as f64 / first.bytes as f64 - 1.0) * 100.0
            );
        }
        _ => {
            println!("no compaction happened during the run: run longer than the compaction window")
        }
    }
}

/// The WAL's size and the total of the datastore's files (database, WAL,
/// shared-memory index).
fn datastore_bytes(dir: &Path) -> (u64, u64) {
    let size = |suffix: &str| {
        std::fs::metadata(dir.join(format!("{DB_FILE}{suffix}")))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let wal = size("-wal");
    (wal, size("") + wal + size("-shm"))
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}
