//! `krate bench store`: the same workload against the embedded datastore
//! and against a real etcd started for the run, on the same filesystem,
//! printed side by side with the ratio embedded/etcd for each figure.
//!
//! Each backend starts empty. The workload, in order: creates by one writer;
//! creates by many concurrent writers; point reads of those keys by a few
//! concurrent readers; listings of a prefix holding many keys, whole and
//! paged; and one prefix watched by many watchers while a writer writes,
//! timing each delivery from the start of the write that caused it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use futures::StreamExt;
use store::embedded::{Embedded, Options};
use store::etcd::Etcd;
use store::testing::etcd_server::EtcdServer;
use store::{keys, RangeRequest, Revision, Store};
use tokio::task::JoinSet;

use super::{filesystem_kind, thousands};

/// What the issue asks of the embedded store, printed as information.
const TARGET_WRITE_RATIO: f64 = 1.5;

/// How long the watchers get to receive every event after the last write.
const WATCH_DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(clap::Args, Debug)]
pub struct StoreArgs {
    /// Parent of both backends' temporary data directories, so that both
    /// run on the same filesystem.
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    dir: PathBuf,
    /// Smaller counts, for a smoke test of about 20 seconds.
    #[arg(long)]
    quick: bool,
    /// Creates by the single writer [default: 2000, --quick: 500].
    #[arg(long)]
    single_writes: Option<usize>,
    /// Creates shared by the concurrent writers [default: 20000, --quick: 5000].
    #[arg(long)]
    concurrent_writes: Option<usize>,
    /// Concurrent writers.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// Point reads shared by the readers [default: 50000, --quick: 10000].
    #[arg(long)]
    reads: Option<usize>,
    /// Concurrent readers.
    #[arg(long, default_value_t = 8)]
    readers: usize,
    /// Keys under the listed prefix [default: 10000, --quick: 2000].
    #[arg(long)]
    range_keys: Option<usize>,
    /// Page size of the paged listing.
    #[arg(long, default_value_t = 500)]
    page: usize,
    /// Timed listings of each kind; the median is reported [default: 7, --quick: 3].
    #[arg(long)]
    range_runs: Option<usize>,
    /// Watchers on one prefix [default: 1000, --quick: 200].
    #[arg(long)]
    watchers: Option<usize>,
    /// Writes under the watched prefix [default: 200, --quick: 30].
    #[arg(long)]
    watch_writes: Option<usize>,
    /// Pause between two watched writes, in milliseconds.
    #[arg(long, default_value_t = 10)]
    watch_gap_ms: u64,
    /// Size of every value written.
    #[arg(long, default_value_t = 1024)]
    value_bytes: usize,
}

/// The counts of one run, `--quick` and explicit flags resolved.
#[derive(Clone, Debug)]
struct Counts {
    single_writes: usize,
    concurrent_writes: usize,
    writers: usize,
    reads: usize,
    readers: usize,
    range_keys: usize,
    page: usize,
    range_runs: usize,
    watchers: usize,
    watch_writes: usize,
    watch_gap: Duration,
    value_bytes: usize,
}

impl Counts {
    fn from_args(a: &StoreArgs) -> Counts {
        let pick = |flag: Option<usize>, full: usize, quick: usize| {
            flag.unwrap_or(if a.quick { quick } else { full })
        };
        Counts {
            single_writes: pick(a.single_writes, 2_000, 500).max(1),
            concurrent_writes: pick(a.concurrent_writes, 20_000, 5_000).max(1),
            writers: a.writers.max(1),
            reads: pick(a.reads, 50_000, 10_000).max(1),
            readers: a.readers.max(1),
            range_keys: pick(a.range_keys, 10_000, 2_000).max(1),
            page: a.page.max(1),
            range_runs: pick(a.range_runs, 7, 3).max(1),
            watchers: pick(a.watchers, 1_000, 200).max(1),
            watch_writes: pick(a.watch_writes, 200, 30).max(1),
            watch_gap: Duration::from_millis(a.watch_gap_ms),
            value_bytes: a.value_bytes,
        }
    }
}

/// Throughput and latency of one kind of request.
#[derive(Clone, Copy, Debug)]
struct Rate {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
}

impl Rate {
    fn new(mut latencies: Vec<Duration>, elapsed: Duration) -> Rate {
        latencies.sort_unstable();
        Rate {
            per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct WatchFigures {
    open: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
    delivered: u64,
    expected: u64,
}

/// Everything measured on one backend.
#[derive(Clone, Copy, Debug)]
struct Figures {
    single: Rate,
    concurrent: Rate,
    read: Rate,
    range_full: Duration,
    range_paged: Duration,
    watch: WatchFigures,
}

pub async fn run(args: StoreArgs) -> Result<()> {
    let counts = Counts::from_args(&args);
    let cpu_before = CpuTimes::now();
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let value = Bytes::from(
        (0..counts.value_bytes)
            .map(|i| b'a' + (i % 26) as u8)
            .collect::<Vec<u8>>(),
    );

    eprintln!(
        "embedded: opening a fresh datastore under {}",
        args.dir.display()
    );
    let embedded = run_embedded(&args.dir, &counts, &value)
        .await
        .context("benchmarking the embedded store")?;
    eprintln!(
        "etcd: starting a fresh member with its data under {}",
        args.dir.display()
    );
    let etcd = run_etcd(&args.dir, &counts, &value)
        .await
        .context("benchmarking etcd")?;

    let others = cpu_before.and_then(|before| Some(CpuTimes::now()?.others_since(&before)));
    print_report(&args.dir, &counts, &embedded, &etcd, others);
    for (name, f) in [("embedded", &embedded), ("etcd", &etcd)] {
        if f.watch.delivered != f.watch.expected {
            bail!(
                "{name}: watchers received {} of {} events",
                thousands(f.watch.delivered),
                thousands(f.watch.expected)
            );
        }
    }
    Ok(())
}

async fn run_embedded(parent: &Path, counts: &Counts, value: &Bytes) -> Result<Figures> {
    let dir = tempfile::Builder::new()
        .prefix("krate-bench-embedded-")
        .tempdir_in(parent)?;
    // History stays in full during the run, as it does in etcd, which
    // compacts nothing unless asked.
    let options = Options {
        auto_compaction: false,
        ..Options::default()
    };
    let embedded = Arc::new(
        Embedded::open_with(dir.path(), options)
            .with_context(|| format!("opening {}", dir.path().display()))?,
    );
    let store: Arc<dyn Store> = embedded.clone();
    let figures = workload("embedded", store, counts, value).await;
    // Closing waits for the writer's final checkpoint: off the async threads.
    tokio::task::spawn_blocking(move || embedded.close()).await?;
    figures
}

async fn run_etcd(parent: &Path, counts: &Counts, value: &Bytes) -> Result<Figures> {
    let dir = tempfile::Builder::new()
        .prefix("krate-bench-etcd-")
        .tempdir_in(parent)?;
    // The harness puts etcd's data in the system temp dir; a later
    // `--data-dir` wins over its own (etcd keeps the last of a repeated
    // flag), which puts it beside the embedded store's.
    let data_dir = format!("--data-dir={}", dir.path().join("data").display());
    let server = EtcdServer::start_with(&[&data_dir]).await?;
    eprintln!("etcd: pid {} serving {}", server.pid(), server.endpoint());
    ensure!(
        dir.path().join("data").join("member").is_dir(),
        "etcd did not put its data in {}: the harness's flags changed",
        dir.path().display()
    );
    let figures = async {
        let etcd = Etcd::connect(&[server.endpoint()]).await?;
        workload("etcd", Arc::new(etcd), counts, value).await
    }
    .await;
    // Killed (by its pid) before its data directory is removed.
    drop(server);
    drop(dir);
    figures
}

async fn workload(name: &str, store: Arc<dyn Store>, c: &Counts, value: &Bytes) -> Result<Figures> {
    eprintln!(
        "{name}: {} creates by 1 writer",
        thousands(c.single_writes as u64)
    );
    let single = create_keys(&store, "/bench/single/", c.single_writes, 1, value).await?;
    eprintln!(
        "{name}: {} creates by {} writers",
        thousands(c.concurrent_writes as u64),
        c.writers
    );
    let concurrent = create_keys(
        &store,
        "/bench/concurrent/",
        c.concurrent_writes,
        c.writers,
        value,
    )
    .await?;
    eprintln!(
        "{name}: {} reads by {} readers",
        thousands(c.reads as u64),
        c.readers
    );
    let read = read_keys(
        &store,
        "/bench/concurrent/",
        c.concurrent_writes,
        c.reads,
        c.readers,
    )
    .await?;
    eprintln!(
        "{name}: listing {} keys, {} times whole and paged by {}",
        thousands(c.range_keys as u64),
        c.range_runs,
        c.page
    );
    create_keys(&store, "/bench/range/", c.range_keys, c.writers, value).await?;
    let (range_full, range_paged) =
        list_keys(&store, "/bench/range/", c.range_keys, c.page, c.range_runs).await?;
    eprintln!(
        "{name}: {} watchers, {} writes",
        thousands(c.watchers as u64),
        c.watch_writes
    );
    let watch = watch_fan_out(
        &store,
        "/bench/watch/",
        c.watchers,
        c.watch_writes,
        c.watch_gap,
        value,
    )
    .await?;
    Ok(Figures {
        single,
        concurrent,
        read,
        range_full,
        range_paged,
        watch,
    })
}

fn key(prefix: &str, i: usize) -> String {
    format!("{prefix}{i:08}")
}

/// Creates `prefix00000000..count` with `writers` concurrent writers, each
/// writing its share one request at a time.
async fn create_keys(
    store: &Arc<dyn Store>,
    prefix: &str,
    count: usize,
    writers: usize,
    value: &Bytes,
) -> Result<Rate> {
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for w in 0..writers.min(count) {
        let (store, value, prefix) = (store.clone(), value.clone(), prefix.to_string());
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(count / writers + 1);
            for i in (w..count).step_by(writers) {
                let key = key(&prefix, i);
                let t = Instant::now();
                store
                    .create(key.as_bytes(), value.clone(), 0)
                    .await
                    .with_context(|| format!("creating {key}"))?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(done) = tasks.join_next().await {
        all.extend(done??);
    }
    Ok(Rate::new(all, start.elapsed()))
}

/// `reads` gets at the latest revision of keys spread over
/// `prefix00000000..keys`, by `readers` concurrent readers.
async fn read_keys(
    store: &Arc<dyn Store>,
    prefix: &str,
    keys: usize,
    reads: usize,
    readers: usize,
) -> Result<Rate> {
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for r in 0..readers.min(reads) {
        let (store, prefix) = (store.clone(), prefix.to_string());
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(reads / readers + 1);
            for n in (r..reads).step_by(readers) {
                let key = key(&prefix, spread(n as u64) as usize % keys);
                let t = Instant::now();
                let (kv, _) = store
                    .get(key.as_bytes(), 0)
                    .await
                    .with_context(|| format!("getting {key}"))?;
                latencies.push(t.elapsed());
                ensure!(kv.is_some(), "{key} is missing");
            }
            anyhow::Ok(latencies)
        });
    }
    let mut all = Vec::with_capacity(reads);
    while let Some(done) = tasks.join_next().await {
        all.extend(done??);
    }
    Ok(Rate::new(all, start.elapsed()))
}

/// A well-mixed function of `n` (splitmix64), so that reads hit keys in no
/// particular order without a random number generator.
fn spread(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Median time of one whole listing of `prefix` (one request, no limit) and
/// of one paged listing (`page` keys per request, all at one revision).
async fn list_keys(
    store: &Arc<dyn Store>,
    prefix: &str,
    expected: usize,
    page: usize,
    runs: usize,
) -> Result<(Duration, Duration)> {
    let whole = || async {
        let t = Instant::now();
        let resp = store
            .range(RangeRequest {
                prefix: prefix.as_bytes().to_vec(),
                ..Default::default()
            })
            .await?;
        let elapsed = t.elapsed();
        ensure!(
            resp.kvs.len() == expected && !resp.more,
            "listing {prefix} returned {} keys, expected {expected}",
            resp.kvs.len()
        );
        Ok(elapsed)
    };
    let paged = || async {
        let t = Instant::now();
        let (mut seen, mut start, mut revision) = (0, None, 0);
        loop {
            let request = RangeRequest {
                prefix: prefix.as_bytes().to_vec(),
                start: start.take(),
                revision,
                limit: page,
            };
            let resp = store.range(request).await?;
            seen += resp.kvs.len();
            revision = resp.revision;
            match resp.kvs.last() {
                Some(last) if resp.more => start = Some(keys::next_key(&last.key)),
                _ => break,
            }
        }
        let elapsed = t.elapsed();
        ensure!(
            seen == expected,
            "paged listing of {prefix} returned {seen} keys, expected {expected}"
        );
        Ok(elapsed)
    };
    // One untimed listing of each kind warms caches on both backends alike.
    whole().await?;
    paged().await?;
    let (mut full_times, mut paged_times) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        full_times.push(whole().await?);
        paged_times.push(paged().await?);
    }
    full_times.sort_unstable();
    paged_times.sort_unstable();
    Ok((percentile(&full_times, 0.5), percentile(&paged_times, 0.5)))
}

/// What one watcher saw: the revision and arrival time of each event, and
/// the error that ended its watch early, if one did.
struct Seen {
    arrivals: Vec<(Revision, Instant)>,
    error: Option<String>,
}

/// Opens `watchers` watches on `prefix`, then creates `writes` keys under
/// it, `gap` apart. Each delivery is timed from the start of the write that
/// caused it (so the write's own commit is included, as a client of the
/// API server would see it).
async fn watch_fan_out(
    store: &Arc<dyn Store>,
    prefix: &str,
    watchers: usize,
    writes: usize,
    gap: Duration,
    value: &Bytes,
) -> Result<WatchFigures> {
    let from = store.current_revision().await?;
    let open_start = Instant::now();
    let mut streams = Vec::with_capacity(watchers);
    for _ in 0..watchers {
        streams.push(
            store
                .watch(prefix.as_bytes(), from)
                .await
                .with_context(|| format!("watching {prefix}"))?,
        );
    }
    let open = open_start.elapsed();

    let mut tasks = JoinSet::new();
    for mut stream in streams {
        tasks.spawn(async move {
            let mut seen = Seen {
                arrivals: Vec::with_capacity(writes),
                error: None,
            };
            while seen.arrivals.len() < writes {
                match stream.next().await {
                    Some(Ok(event)) => seen.arrivals.push((event.revision(), Instant::now())),
                    Some(Err(e)) => {
                        seen.error = Some(e.to_string());
                        break;
                    }
                    None => {
                        seen.error = Some("the watch ended".into());
                        break;
                    }
                }
            }
            seen
        });
    }

    let mut started: HashMap<Revision, Instant> = HashMap::with_capacity(writes);
    for i in 0..writes {
        let key = key(prefix, i);
        let t = Instant::now();
        let kv = store
            .create(key.as_bytes(), value.clone(), 0)
            .await
            .with_context(|| format!("creating {key}"))?;
        started.insert(kv.mod_revision, t);
        tokio::time::sleep(gap).await;
    }

    let deadline = tokio::time::Instant::now() + WATCH_DRAIN_TIMEOUT;
    let mut delays = Vec::with_capacity(watchers * writes);
    let mut delivered = 0u64;
    let mut errors: Vec<String> = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(seen)) => {
                let seen = seen?;
                let mut last = from;
                for (revision, arrived) in &seen.arrivals {
                    match started.get(revision) {
                        Some(t) if *revision > last => {
                            delays.push(arrived.saturating_duration_since(*t));
                            delivered += 1;
                        }
                        _ => errors.push(format!(
                            "unexpected event at revision {revision} after {last}"
                        )),
                    }
                    last = *revision;
                }
                errors.extend(seen.error);
            }
            Ok(None) => break,
            Err(_) => {
                errors.push(format!(
                    "{} watchers still waiting after {WATCH_DRAIN_TIMEOUT:?}",
                    tasks.len()
                ));
                tasks.abort_all();
                break;
            }
        }
    }
    if let Some(first) = errors.first() {
        eprintln!("watch: {} problems, the first: {first}", errors.len());
    }
    delays.sort_unstable();
    Ok(WatchFigures {
        open,
        p50: percentile(&delays, 0.50),
        p99: percentile(&delays, 0.99),
        max: delays.last().copied().unwrap_or_default(),
        delivered,
        expected: (watchers * writes) as u64,
    })
}

/// The `q`-quantile of sorted `values` (nearest rank).
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// One row of the table: which way is better decides how the ratio reads.
enum Figure {
    Rate(f64),
    Time(Duration),
    Count(u64),
}

impl Figure {
    fn show(&self) -> String {
        match self {
            Figure::Rate(r) => thousands(r.round() as u64),
            Figure::Time(d) => ms(*d),
            Figure::Count(n) => thousands(*n),
        }
    }

    fn value(&self) -> f64 {
        match self {
            Figure::Rate(r) => *r,
            Figure::Time(d) => d.as_secs_f64(),
            Figure::Count(n) => *n as f64,
        }
    }
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{} ms", thousands(ms.round() as u64))
    }
}

fn ratio(embedded: f64, etcd: f64) -> String {
    if etcd == 0.0 {
        return "-".into();
    }
    let r = embedded / etcd;
    if r >= 0.1 {
        format!("{r:.2}x")
    } else {
        format!("{r:.4}x")
    }
}

fn rows(c: &Counts, e: &Figures, d: &Figures) -> Vec<(String, Figure, Figure)> {
    let n = |x: usize| thousands(x as u64);
    let w1 = format!("1 writer, {} creates", n(c.single_writes));
    let wn = format!("{} writers, {} creates", c.writers, n(c.concurrent_writes));
    let rd = format!("{} readers, {} gets", c.readers, n(c.reads));
    let wa = format!("{} watchers x {} writes", n(c.watchers), c.watch_writes);
    let pages = c.range_keys.div_ceil(c.page);
    vec![
        (
            format!("writes/s, {w1}"),
            Figure::Rate(e.single.per_sec),
            Figure::Rate(d.single.per_sec),
        ),
        (
            "  create p50".into(),
            Figure::Time(e.single.p50),
            Figure::Time(d.single.p50),
        ),
        (
            "  create p99".into(),
            Figure::Time(e.single.p99),
            Figure::Time(d.single.p99),
        ),
        (
            format!("writes/s, {wn}"),
            Figure::Rate(e.concurrent.per_sec),
            Figure::Rate(d.concurrent.per_sec),
        ),
        (
            "  create p50".into(),
            Figure::Time(e.concurrent.p50),
            Figure::Time(d.concurrent.p50),
        ),
        (
            "  create p99".into(),
            Figure::Time(e.concurrent.p99),
            Figure::Time(d.concurrent.p99),
        ),
        (
            format!("reads/s, {rd}"),
            Figure::Rate(e.read.per_sec),
            Figure::Rate(d.read.per_sec),
        ),
        (
            "  get p50".into(),
            Figure::Time(e.read.p50),
            Figure::Time(d.read.p50),
        ),
        (
            "  get p99".into(),
            Figure::Time(e.read.p99),
            Figure::Time(d.read.p99),
        ),
        (
            format!(
                "list {} keys, 1 request (median of {})",
                n(c.range_keys),
                c.range_runs
            ),
            Figure::Time(e.range_full),
            Figure::Time(d.range_full),
        ),
        (
            format!(
                "list {} keys, {pages} pages of {} (median of {})",
                n(c.range_keys),
                c.page,
                c.range_runs
            ),
            Figure::Time(e.range_paged),
            Figure::Time(d.range_paged),
        ),
        (
            format!("open {} watches", n(c.watchers)),
            Figure::Time(e.watch.open),
            Figure::Time(d.watch.open),
        ),
        (
            format!("watch delivery p50, {wa}"),
            Figure::Time(e.watch.p50),
            Figure::Time(d.watch.p50),
        ),
        (
            "  watch delivery p99".into(),
            Figure::Time(e.watch.p99),
            Figure::Time(d.watch.p99),
        ),
        (
            "  watch delivery max".into(),
            Figure::Time(e.watch.max),
            Figure::Time(d.watch.max),
        ),
        (
            format!("  events delivered (of {})", n(c.watchers * c.watch_writes)),
            Figure::Count(e.watch.delivered),
            Figure::Count(d.watch.delivered),
        ),
    ]
}

fn print_report(dir: &Path, c: &Counts, e: &Figures, d: &Figures, others: Option<f64>) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!();
    println!("krate bench store: the embedded datastore vs a real etcd, same machine, same run");
    println!("  machine:  {cores} cores ({})", std::env::consts::ARCH);
    if let Some(others) = others {
        println!(
            "  others:   other processes kept {others:.2} of {cores} cores busy on average during the run{}",
            if others > 0.25 { " (figures are noisy: the embedded store's wake-ups wait behind them)" } else { "" }
        );
    }
    println!(
        "  disk:     both data directories under {} ({})",
        dir.display(),
        filesystem_kind(dir)
    );
    println!("  embedded: SQLite WAL, synchronous=FULL, group commit; auto-compaction off during the run");
    println!(
        "  etcd:     {}, one member on 127.0.0.1, default flags",
        etcd_version()
    );
    println!(
        "  values:   {} bytes; keys created fresh, nothing compacted",
        c.value_bytes
    );
    println!("  ratio:    embedded / etcd (rates: higher is better; times: lower is better)");
    println!("  watch delivery: event arrival at each watcher minus the start of the write that caused it");
    println!();

    let rows = rows(c, e, d);
    let header = ("figure", "embedded", "etcd", "embedded/etcd");
    let shown: Vec<(String, String, String, String)> = rows
        .iter()
        .map(|(name, a, b)| {
            let r = match a {
                Figure::Count(_) => String::new(),
                _ => ratio(a.value(), b.value()),
            };
            (name.clone(), a.show(), b.show(), r)
        })
        .collect();
    let w0 = shown
        .iter()
        .map(|r| r.0.len())
        .max()
        .unwrap_or(0)
        .max(header.0.len());
    let w1 = shown
        .iter()
        .map(|r| r.1.len())
        .max()
        .unwrap_or(0)
        .max(header.1.len());
    let w2 = shown
        .iter()
        .map(|r| r.2.len())
        .max()
        .unwrap_or(0)
        .max(header.2.len());
    let w3 = header.3.len();
    println!(
        "{:<w0$} | {:>w1$} | {:>w2$} | {:>w3$}",
        header.0, header.1, header.2, header.3
    );
    println!(
        "{}-+-{}-+-{}-+-{}",
        "-".repeat(w0),
        "-".repeat(w1),
        "-".repeat(w2),
        "-".repeat(w3)
    );
    for (name, a, b, r) in &shown {
        println!("{name:<w0$} | {a:>w1$} | {b:>w2$} | {r:>w3$}");
    }
    println!();

    println!("target (issue): embedded >= {TARGET_WRITE_RATIO}x etcd write throughput at 1 and {} writers", c.writers);
    for (label, emb, etcd) in [
        ("1 writer".to_string(), e.single.per_sec, d.single.per_sec),
        (
            format!("{} writers", c.writers),
            e.concurrent.per_sec,
            d.concurrent.per_sec,
        ),
    ] {
        let r = emb / etcd;
        let verdict = if r >= TARGET_WRITE_RATIO {
            "met"
        } else {
            "NOT met"
        };
        println!("  {label:<12} {r:.2}x  {verdict}");
    }
}

/// CPU time of the whole machine and of this process and its reaped
/// children (etcd, once dropped), in clock ticks, to tell how busy the
/// machine was with other work during the run.
struct CpuTimes {
    at: Instant,
    busy: u64,
    ours: u64,
}

impl CpuTimes {
    fn now() -> Option<CpuTimes> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal: all but idle and
        // iowait were someone's work.
        let busy = cpu
            .iter()
            .take(8)
            .enumerate()
            .filter(|(i, _)| *i != 3 && *i != 4)
            .map(|(_, v)| v)
            .sum();
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name (which may hold spaces): utime,
        // stime, cutime, cstime are the 12th to 15th.
        let after_name = &own[own.rfind(')')? + 2..];
        let fields: Vec<u64> = after_name
            .split_whitespace()
            .skip(11)
            .take(4)
            .filter_map(|f| f.parse().ok())
            .collect();
        Some(CpuTimes {
            at: Instant::now(),
            busy,
            ours: fields.iter().sum(),
        })
    }

    /// Cores' worth of CPU that other processes used since `before`.
    fn others_since(&self, before: &CpuTimes) -> f64 {
        let ticks_per_sec = 100.0; // USER_HZ on Linux
        let others = self
            .busy
            .saturating_sub(before.busy)
            .saturating_sub(self.ours.saturating_sub(before.ours));
        others as f64 / ticks_per_sec / (self.at - before.at).as_secs_f64()
    }
}

/// The first line of `etcd --version` of the binary the harness runs.
fn etcd_version() -> String {
    let binary = std::env::var("KRATE_TEST_ETCD").unwrap_or_else(|_| "etcd".into());
    std::process::Command::new(&binary)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            let version = s
                .lines()
                .next()?
                .strip_prefix("etcd Version:")?
                .trim()
                .to_string();
            Some(format!("etcd {version} ({binary})"))
        })
        .unwrap_or(binary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_picks_the_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_millis(51));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn quick_shrinks_counts_but_explicit_flags_win() {
        let args =
            <StoreArgsParser as clap::Parser>::parse_from(["x", "--quick", "--reads", "7"]).args;
        let c = Counts::from_args(&args);
        assert_eq!((c.single_writes, c.reads, c.watchers), (500, 7, 200));
    }

    #[derive(clap::Parser)]
    struct StoreArgsParser {
        #[command(flatten)]
        args: StoreArgs,
    }
}
