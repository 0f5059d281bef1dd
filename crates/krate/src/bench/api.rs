//! `krate bench api`: the API server as its clients see it. A real
//! `krate server` runs as a child process (this binary, a temporary data
//! directory, a free loopback port) and kube-rs clients drive it: create and
//! get latency and throughput, list times, watch fan-out delay, and the
//! server's CPU time per request (from `/proc/<pid>/stat`) and memory
//! (`VmRSS`). Figures are printed beside the targets and a peer's figures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};

use super::thousands;

#[derive(clap::Args, Debug)]
pub struct ApiArgs {
    /// Small ConfigMaps the server holds when its memory is measured at the end.
    #[arg(long, default_value_t = 100_000)]
    objects: usize,
    /// Shrink every phase for a smoke run of about 30 s.
    #[arg(long)]
    quick: bool,
    /// Concurrent clients for creates and gets.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Watchers of one namespace in the fan-out phase [default: 1,000; 100 with --quick].
    #[arg(long)]
    watchers: Option<usize>,
    /// Parent of the server's temporary data directory.
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    dir: PathBuf,
}

/// How big each phase is.
struct Plan {
    clients: usize,
    creates: usize,
    gets: usize,
    big_list_reps: usize,
    small_list: usize,
    small_list_reps: usize,
    watchers: usize,
    watch_events: usize,
    watch_interval: Duration,
    objects: usize,
}

impl Plan {
    fn new(args: &ApiArgs) -> Plan {
        let clients = args.clients.max(1);
        if args.quick {
            Plan {
                clients,
                creates: 2_000,
                gets: 4_000,
                big_list_reps: 3,
                small_list: 1_000,
                small_list_reps: 10,
                watchers: args.watchers.unwrap_or(100),
                watch_events: 50,
                watch_interval: Duration::from_millis(20),
                objects: args.objects.min(5_000),
            }
        } else {
            Plan {
                clients,
                creates: 10_000,
                gets: 20_000,
                big_list_reps: 10,
                small_list: 1_000,
                small_list_reps: 50,
                watchers: args.watchers.unwrap_or(1_000),
                watch_events: 100,
                watch_interval: Duration::from_millis(50),
                objects: args.objects,
            }
        }
    }
}

/// The server under test; killed (by PID) when dropped.
pub(super) struct Server {
    child: Child,
    _dir: tempfile::TempDir,
    pub(super) kubeconfig: PathBuf,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Server {
    fn start(parent: &Path) -> Result<Server> {
        // The API server, its controllers and scheduler: no node agent.
        Self::start_with(parent, &["--disable-agent".to_string()])
    }

    /// Starts `krate server` with `extra` flags in a new directory under `parent`.
    pub(super) fn start_with(parent: &Path, extra: &[String]) -> Result<Server> {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("krate-bench-api-")
            .tempdir_in(parent)?;
        let data = dir.path().join("data");
        let log = dir.path().join("server.log");
        let out = std::fs::File::create(&log)?;
        let port = free_port()?;
        let child = Command::new(std::env::current_exe().context("finding this binary")?)
            .arg("server")
            .arg("--data-dir")
            .arg(&data)
            .args([
                "--https-listen-port",
                &port.to_string(),
                "--bind-address",
                "127.0.0.1",
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting krate server")?;
        Ok(Server {
            child,
            kubeconfig: data.join("admin.kubeconfig"),
            log,
            _dir: dir,
        })
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(super) async fn wait_ready(&mut self) -> Result<Client> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "krate server exited ({status}):\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if self.kubeconfig.exists() {
                if let Ok(client) = client(&self.kubeconfig).await {
                    if Api::<Namespace>::all(client.clone())
                        .get("default")
                        .await
                        .is_ok()
                    {
                        return Ok(client);
                    }
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "krate server not ready within 60s:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub(super) async fn client(kubeconfig: &Path) -> Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig)?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// CPU time (user + system) a process has used.
pub(super) struct CpuClock {
    pid: u32,
    tick: Duration,
}

impl CpuClock {
    pub(super) fn new(pid: u32) -> Result<CpuClock> {
        let out = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .context("running getconf CLK_TCK")?;
        let hz: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .context("parsing CLK_TCK")?;
        Ok(CpuClock {
            pid,
            tick: Duration::from_secs(1) / hz.max(1) as u32,
        })
    }

    pub(super) fn now(&self) -> Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .context("parsing /proc/<pid>/stat")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here.
        let ticks: u64 = fields.get(11).context("utime")?.parse::<u64>()?
            + fields.get(12).context("stime")?.parse::<u64>()?;
        Ok(self.tick * ticks as u32)
    }
}

/// Resident memory of a process in bytes.
pub(super) fn rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?;
    Ok(kb * 1024)
}

/// What one phase measured.
struct Phase {
    requests: usize,
    wall: Duration,
    cpu: Duration,
    latencies: Vec<Duration>,
}

impl Phase {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64()
    }

    fn cpu_per_request(&self) -> Duration {
        self.cpu / self.requests.max(1) as u32
    }

    fn percentile(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }
}

/// The `p`-th percentile of `sorted` (nearest rank).
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs `total` operations over `clients` concurrent workers, each with its
/// own client, timing every one and the server's CPU over the whole run.
async fn concurrently<F, Fut>(
    clients: &[Client],
    total: usize,
    cpu: &CpuClock,
    op: F,
) -> Result<Phase>
where
    F: Fn(Client, usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = cpu.now()?;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        let (client, next, op) = (client.clone(), next.clone(), op.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let t = Instant::now();
                op(client.clone(), i).await?;
                latencies.push(t.elapsed());
            }
        });
    }
    let mut latencies = Vec::with_capacity(total);
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done??);
    }
    let wall = start.elapsed();
    let cpu = cpu.now()? - cpu_before;
    latencies.sort();
    Ok(Phase {
        requests: total,
        wall,
        cpu,
        latencies,
    })
}

fn small_configmap(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([("bench".into(), "api".into())])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("key".into(), "value".into())])),
        ..Default::default()
    }
}

async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    Ok(())
}

/// Creates `count` ConfigMaps named `{prefix}{i}` in `namespace`.
async fn create_many(
    clients: &[Client],
    namespace: &str,
    prefix: &str,
    count: usize,
    cpu: &CpuClock,
) -> Result<Phase> {
    let (namespace, prefix) = (namespace.to_string(), prefix.to_string());
    concurrently(clients, count, cpu, move |client, i| {
        let (namespace, name) = (namespace.clone(), format!("{prefix}{i}"));
        async move {
            Api::<ConfigMap>::namespaced(client, &namespace)
                .create(&PostParams::default(), &small_configmap(&name))
                .await?;
            Ok(())
        }
    })
    .await
}

/// Lists `namespace` `reps` times, one after another, without decoding the
/// items into typed objects (the client's own parsing is not the server's).
async fn list_repeatedly(
    client: &Client,
    namespace: &str,
    reps: usize,
    expect: usize,
    cpu: &CpuClock,
) -> Result<Phase> {
    let path = format!("/api/v1/namespaces/{namespace}/configmaps");
    let cpu_before = cpu.now()?;
    let start = Instant::now();
    let mut latencies = Vec::new();
    for _ in 0..reps {
        let req = kube::core::Request::new(&path).list(&ListParams::default())?;
        let t = Instant::now();
        let body = client.request_text(req).await?;
        latencies.push(t.elapsed());
        // Every namespace also holds the root CA's ConfigMap.
        let items = serde_json::from_str::<serde_json::Value>(&body)?["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|i| i["metadata"]["name"] != "kube-root-ca.crt")
                    .count()
            })
            .unwrap_or(0);
        if items != expect {
            bail!("listing {namespace}: {items} items, expected {expect}");
        }
    }
    let wall = start.elapsed();
    let cpu = cpu.now()? - cpu_before;
    latencies.sort();
    Ok(Phase {
        requests: reps,
        wall,
        cpu,
        latencies,
    })
}

/// What the fan-out phase measured.
struct Fanout {
    watchers: usize,
    events: usize,
    delays: Vec<Duration>,
    cpu: Duration,
    /// This process's CPU over the same span: decoding the deliveries.
    client_cpu: Duration,
    connect: Duration,
}

/// `watchers` watches of one namespace, then `events` creates there, one
/// every `interval`, each timestamped before it is sent; every watcher
/// records when each event reaches it.
async fn watch_fanout(client: &Client, plan: &Plan, cpu: &CpuClock) -> Result<Fanout> {
    const NS: &str = "bench-watch";
    create_namespace(client, NS).await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let from = api
        .list(&ListParams::default())
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();

    let connect_start = Instant::now();
    let arrivals: Arc<Mutex<Vec<(usize, Instant)>>> = Arc::new(Mutex::new(Vec::with_capacity(
        plan.watchers * plan.watch_events,
    )));
    let mut streams = Vec::with_capacity(plan.watchers);
    // Opened a few at a time: the response head means the server has
    // registered the watch.
    let mut opening = futures::stream::iter(0..plan.watchers)
        .map(|_| {
            let (api, from) = (api.clone(), from.clone());
            async move {
                api.watch(&WatchParams::default().timeout(290), &from)
                    .await
                    .map(|s| s.boxed())
            }
        })
        .buffer_unordered(64);
    while let Some(stream) = opening.next().await {
        streams.push(stream.context("opening a watch")?);
    }
    let connect = connect_start.elapsed();
    let total = plan.watch_events;
    let mut readers = tokio::task::JoinSet::new();
    for mut stream in streams {
        let arrivals = arrivals.clone();
        readers.spawn(async move {
            let mut seen = 0;
            let mut mine = Vec::with_capacity(total);
            while seen < total {
                match stream.next().await {
                    Some(Ok(WatchEvent::Added(cm))) => {
                        let now = Instant::now();
                        if let Some(i) = cm
                            .name_any()
                            .strip_prefix("ev-")
                            .and_then(|s| s.parse::<usize>().ok())
                        {
                            mine.push((i, now));
                            seen += 1;
                        }
                    }
                    Some(Ok(WatchEvent::Error(e))) => bail!("watch error: {e}"),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => bail!("watch failed: {e}"),
                    None => bail!("a watch ended after {seen} of {total} events"),
                }
            }
            arrivals
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(mine);
            Ok(())
        });
    }

    let me = CpuClock::new(std::process::id())?;
    let (cpu_before, me_before) = (cpu.now()?, me.now()?);
    let mut sent = Vec::with_capacity(total);
    let mut tick = tokio::time::interval(plan.watch_interval);
    for i in 0..total {
        tick.tick().await;
        sent.push(Instant::now());
        api.create(&PostParams::default(), &small_configmap(&format!("ev-{i}")))
            .await?;
    }
    let wait = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(done) = readers.join_next().await {
            done??;
        }
        Ok::<_, anyhow::Error>(())
    });
    wait.await
        .context("watchers did not receive every event within 120s")??;
    let (cpu, client_cpu) = (cpu.now()? - cpu_before, me.now()? - me_before);
    let arrivals = std::mem::take(&mut *arrivals.lock().unwrap_or_else(|p| p.into_inner()));
    let mut delays: Vec<Duration> = arrivals
        .iter()
        .map(|(i, at)| at.saturating_duration_since(sent[*i]))
        .collect();
    delays.sort();
    Ok(Fanout {
        watchers: plan.watchers,
        events: total,
        delays,
        cpu,
        client_cpu,
        connect,
    })
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{ms:.3} ms")
    } else if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// One printed line: what, our figure, the target, the peer's figure.
struct Row(String, String, &'static str, &'static str);

fn print_table(rows: &[Row]) {
    let w0 = rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let w1 = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let w2 = rows
        .iter()
        .map(|r| r.2.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    println!();
    println!(
        "{:<w0$}  {:>w1$}  {:>w2$}  peer",
        "figure", "krate", "target"
    );
    println!("{}", "-".repeat(w0 + w1 + w2 + 16));
    for Row(what, ours, target, peer) in rows {
        println!("{what:<w0$}  {ours:>w1$}  {target:>w2$}  {peer}");
    }
}

pub async fn run(args: ApiArgs) -> Result<()> {
    let plan = Plan::new(&args);
    let mut server = Server::start(&args.dir)?;
    let admin = server.wait_ready().await?;
    let pid = server.pid();
    let cpu = CpuClock::new(pid)?;
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "krate bench api: krate server (pid {pid}) on loopback, {} clients, {cpus} CPUs shared by server and clients, load average {}{}",
        plan.clients,
        load.split_whitespace().next().unwrap_or("?"),
        if args.quick { ", --quick" } else { "" }
    );
    let mut clients = Vec::new();
    for _ in 0..plan.clients {
        clients.push(client(&server.kubeconfig).await?);
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = rss(pid)?;
    println!("idle: RSS {}", mb(idle_rss));

    create_namespace(&admin, "bench-big").await?;
    let creates = create_many(&clients, "bench-big", "cm-", plan.creates, &cpu).await?;
    println!(
        "create: {} ConfigMaps in {:.1}s, {:.0}/s, p50 {} p99 {}, server CPU {} per create",
        thousands(creates.requests as u64),
        creates.wall.as_secs_f64(),
        creates.per_second(),
        ms(creates.percentile(50.0)),
        ms(creates.percentile(99.0)),
        ms(creates.cpu_per_request())
    );

    let n = plan.creates;
    let gets = concurrently(&clients, plan.gets, &cpu, move |client, i| async move {
        let name = format!("cm-{}", (i * 7919) % n);
        Api::<ConfigMap>::namespaced(client, "bench-big")
            .get(&name)
            .await?;
        Ok(())
    })
    .await?;
    println!(
        "get: {} in {:.1}s, {:.0}/s, p50 {} p99 {}, server CPU {} per get",
        thousands(gets.requests as u64),
        gets.wall.as_secs_f64(),
        gets.per_second(),
        ms(gets.percentile(50.0)),
        ms(gets.percentile(99.0)),
        ms(gets.cpu_per_request())
    );

    let big = list_repeatedly(&admin, "bench-big", plan.big_list_reps, plan.creates, &cpu).await?;
    println!(
        "list {}: median {}, server CPU {} per list",
        thousands(plan.creates as u64),
        ms(big.percentile(50.0)),
        ms(big.cpu_per_request())
    );

    create_namespace(&admin, "bench-small").await?;
    create_many(&clients, "bench-small", "cm-", plan.small_list, &cpu).await?;
    let small = list_repeatedly(
        &admin,
        "bench-small",
        plan.small_list_reps,
        plan.small_list,
        &cpu,
    )
    .await?;
    println!(
        "list {}: median {}, server CPU {} per list",
        thousands(plan.small_list as u64),
        ms(small.percentile(50.0)),
        ms(small.cpu_per_request())
    );

    let fanout = watch_fanout(&admin, &plan, &cpu).await?;
    let deliveries = fanout.delays.len();
    println!(
        "watch: {} watchers opened in {:.1}s; {} creates, one every {}: {} deliveries, delay p50 {} p99 {} max {}, server CPU {} and client CPU {} per delivery",
        thousands(fanout.watchers as u64),
        fanout.connect.as_secs_f64(),
        fanout.events,
        ms(plan.watch_interval),
        thousands(deliveries as u64),
        ms(percentile(&fanout.delays, 50.0)),
        ms(percentile(&fanout.delays, 99.0)),
        ms(fanout.delays.last().copied().unwrap_or_default()),
        ms(fanout.cpu / deliveries.max(1) as u32),
        ms(fanout.client_cpu / deliveries.max(1) as u32)
    );
    // Let the watch connections close before measuring memory.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let held = plan.creates + plan.small_list + plan.watch_events;
    let bulk = plan.objects.saturating_sub(held);
    if bulk > 0 {
        create_namespace(&admin, "bench-bulk").await?;
        let phase = create_many(&clients, "bench-bulk", "cm-", bulk, &cpu).await?;
        println!(
            "bulk: {} more ConfigMaps in {:.1}s, {:.0}/s, server CPU {} per create",
            thousands(bulk as u64),
            phase.wall.as_secs_f64(),
            phase.per_second(),
            ms(phase.cpu_per_request())
        );
    }
    let objects = held.max(plan.objects);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let loaded_rss = rss(pid)?;
    println!(
        "loaded: RSS {} holding {} ConfigMaps",
        mb(loaded_rss),
        thousands(objects as u64)
    );

    let per_thousand = |p: &Phase, n: usize| p.cpu_per_request() * 1000 / n.max(1) as u32;
    let rows = vec![
        Row(
            "create throughput".into(),
            format!("{:.0}/s", creates.per_second()),
            "",
            "",
        ),
        Row(
            "create latency p50 / p99".into(),
            format!(
                "{} / {}",
                ms(creates.percentile(50.0)),
                ms(creates.percentile(99.0))
            ),
            "",
            "",
        ),
        Row(
            "server CPU per create".into(),
            ms(creates.cpu_per_request()),
            "<= 0.5 ms",
            "1.5 ms",
        ),
        Row(
            "get latency p50 / p99".into(),
            format!(
                "{} / {}",
                ms(gets.percentile(50.0)),
                ms(gets.percentile(99.0))
            ),
            "",
            "",
        ),
        Row(
            "server CPU per get".into(),
            ms(gets.cpu_per_request()),
            "<= 0.2 ms",
            "0.55 ms",
        ),
        Row(
            format!(
                "list {} objects, wall (median)",
                thousands(plan.small_list as u64)
            ),
            ms(small.percentile(50.0)),
            "",
            "",
        ),
        Row(
            "server CPU per 1,000-object list".into(),
            ms(per_thousand(&small, plan.small_list)),
            "<= 8 ms",
            "24 ms",
        ),
        Row(
            format!(
                "list {} objects, wall (median)",
                thousands(plan.creates as u64)
            ),
            ms(big.percentile(50.0)),
            "",
            "",
        ),
        Row(
            format!(
                "server CPU per {}-object list",
                thousands(plan.creates as u64)
            ),
            ms(big.cpu_per_request()),
            "",
            "",
        ),
        Row(
            format!(
                "watch delay p50 ({} watchers)",
                thousands(fanout.watchers as u64)
            ),
            ms(percentile(&fanout.delays, 50.0)),
            "",
            "650 ms (median)",
        ),
        Row(
            format!(
                "watch delay p99 ({} watchers)",
                thousands(fanout.watchers as u64)
            ),
            ms(percentile(&fanout.delays, 99.0)),
            "<= 20 ms",
            "",
        ),
        Row(
            "server CPU per watch delivery".into(),
            ms(fanout.cpu / deliveries.max(1) as u32),
            "",
            "",
        ),
        Row(
            "bench client CPU per watch delivery".into(),
            ms(fanout.client_cpu / deliveries.max(1) as u32),
            "",
            "",
        ),
        Row("idle RSS".into(), mb(idle_rss), "<= 30 MB", "27 MB"),
        Row(
            format!("RSS with {} ConfigMaps", thousands(objects as u64)),
            mb(loaded_rss),
            "",
            "",
        ),
    ];
    print_table(&rows);
    drop(server);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_takes_the_nearest_rank() {
        let xs: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&xs, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&xs, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&xs[..1], 99.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }
}
