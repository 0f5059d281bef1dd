//! `krate bench pods`: pod start latency and the node agent's memory, on
//! real containers. A real `krate server` (this binary) runs as a child
//! process with its own node agent, data directory, loopback port, bridge,
//! pod and service CIDRs and cgroup; a kube-rs watch sees pods reach
//! Running. Figures:
//! - the baseline, in the same run: a bare `runc run --detach` of `sleep`
//!   (`runtime::bare`) from a bundle whose rootfs is an overlay of the same
//!   image's layers, the mount included;
//! - pod start latency, create → Running (phase Running and the container
//!   running) seen by the watch, the image present, for pods created one
//!   after another, p50/p99 and the p50 as a ratio to bare runc's;
//! - pods created at once: time to all Running, p50/p99 of each one's;
//! - a separate `krate agent` process joined with the server's token: its
//!   memory idle and with pods running.
//!
//! Everything made is removed at the end, on error and on Ctrl-C: pods
//! through the API (so the agents tear their networks down), then the
//! processes by PID, then containers, mounts, bridges, routes, CNI state,
//! NAT rules and cgroups left on the machine.

use std::collections::{HashMap, HashSet};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::watcher::{self, watcher, Event};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::sync::mpsc;

use super::api::client;
use super::mib;

/// The image of every pod and of the baseline (busybox, written by
/// `image::testing` and imported by the agents at start).
const IMAGE: &str = "krate.test/busybox:1";
const NAMESPACE: &str = "bench-pods";

#[derive(clap::Args, Debug)]
pub struct PodsArgs {
    /// Pods created one after another, each once the previous one is Running.
    #[arg(long, default_value_t = 100)]
    pods: usize,
    /// Pods created at once.
    #[arg(long, default_value_t = 50)]
    burst: usize,
    /// Bare `runc run --detach` runs of the baseline.
    #[arg(long, default_value_t = 20)]
    runc_runs: usize,
    /// Seconds the joined agent idles before its memory is read.
    #[arg(long, default_value_t = 10)]
    idle_seconds: u64,
    /// Skip the joined `krate agent` (its memory, idle and with pods).
    #[arg(long)]
    no_joined_agent: bool,
    /// Parent of the temporary directory (data directories, bundle, logs).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    dir: PathBuf,
}

pub async fn run(args: PodsArgs) -> Result<()> {
    let mut bench = Bench::new(&args.dir)?;
    let outcome = tokio::select! {
        r = measure(&mut bench, &args) => r,
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C").and(Err(anyhow!("interrupted"))),
    };
    if outcome.is_err() {
        bench.print_log_tails();
    }
    // Pods go first, through the API, so that the agents tear their
    // containers and networks down; what is left goes on drop.
    tokio::select! {
        r = bench.delete_all_pods() => if let Err(e) = r {
            eprintln!("cleanup: {e:#}; removing what is left directly");
        },
        _ = tokio::signal::ctrl_c() => eprintln!("interrupted again: removing what is left directly"),
    }
    drop(bench);
    outcome
}

async fn measure(b: &mut Bench, args: &PodsArgs) -> Result<()> {
    let started = Instant::now();
    let archive = b.path().join("busybox.tar");
    {
        let archive = archive.clone();
        tokio::task::spawn_blocking(move || image::testing::busybox_oci_archive(&archive, IMAGE))
            .await?
            .context("writing the busybox image archive")?;
    }
    let client = b.start_server(&archive).await?;
    let server_pid = b.server.as_ref().map(Child::id).unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "krate bench pods: krate server (pid {server_pid}) with its node agent, {} CPUs shared with the clients, load average {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        load.split_whitespace().next().unwrap_or("?"),
    );
    let node = b.names.server_node.clone();
    wait_node_ready(&client, &node, Duration::from_secs(120)).await?;
    println!(
        "node {node}: Ready {:.1}s after start; server RSS {} (API server, controllers, scheduler and agent in one process)",
        started.elapsed().as_secs_f64(),
        mib(proc_status_bytes(server_pid, "VmRSS")?)
    );

    // Baseline: bare runc on an overlay of the same image's layers.
    let runs = args.runc_runs.max(1);
    let bare = bare_runc(&b.path().join("bare"), &archive, runs).await?;
    let bare_p50 = percentile(&bare, 50);
    println!(
        "bare runc: overlay mount + `runc run --detach` of sleep from the image's layers, {runs} runs: p50 {}, p99 {}",
        ms(bare_p50),
        ms(percentile(&bare, 99))
    );

    create_namespace(&client).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let mut running = Running::watch(pods.clone()).await?;

    // One after another.
    if args.pods > 0 {
        let mut took = Vec::with_capacity(args.pods);
        for i in 0..args.pods {
            let name = format!("seq-{i}");
            let t0 = Instant::now();
            pods.create(&PostParams::default(), &pod(&name, None))
                .await
                .with_context(|| format!("creating pod {name}"))?;
            running
                .wait(&pods, std::slice::from_ref(&name), Duration::from_secs(60))
                .await?;
            took.push(running.seen[&name] - t0);
        }
        let (p50, p99) = (percentile(&took, 50), percentile(&took, 99));
        let ratio = p50.as_secs_f64() / bare_p50.as_secs_f64().max(1e-9);
        println!(
            "pod start, one after another: {} pods, create → Running seen by a watch: p50 {} (target ≤ 300 ms: {}), p99 {} (target ≤ 1 s: {}); p50 {ratio:.1}x bare runc's (target ≤ 5x: {})",
            args.pods,
            ms(p50),
            verdict(p50 <= Duration::from_millis(300)),
            ms(p99),
            verdict(p99 <= Duration::from_secs(1)),
            verdict(ratio <= 5.0),
        );
        let t0 = Instant::now();
        delete_pods(&pods, &[b.server_runc_root()], Duration::from_secs(120)).await?;
        println!(
            "  {} pods deleted, containers gone, in {:.1}s",
            args.pods,
            t0.elapsed().as_secs_f64()
        );
    }

    // At once.
    if args.burst > 0 {
        let burst = burst(&pods, &mut running, "burst", args.burst, None).await?;
        println!(
            "pod start, {} at once: all Running {} after the first create; each create → Running: first {}, p50 {}, p99 {}; server RSS {} with them",
            args.burst,
            secs(burst.all),
            ms(percentile(&burst.each, 0)),
            ms(percentile(&burst.each, 50)),
            ms(percentile(&burst.each, 99)),
            mib(proc_status_bytes(server_pid, "VmRSS")?)
        );
        delete_pods(&pods, &[b.server_runc_root()], Duration::from_secs(120)).await?;
    }

    if !args.no_joined_agent {
        let agent_pid = b.start_agent().await?;
        let node = b.names.agent_node.clone();
        wait_node_ready(&client, &node, Duration::from_secs(120)).await?;
        tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
        let idle = proc_status_bytes(agent_pid, "VmRSS")?;
        println!(
            "agent idle: krate agent (pid {agent_pid}), node {node} Ready, no pods, after {}s: VmRSS {} = {:.1} MB (target ≤ 40 MB: {}); peak VmHWM {}",
            args.idle_seconds,
            mib(idle),
            idle as f64 / 1e6,
            verdict(idle <= 40_000_000),
            mib(proc_status_bytes(agent_pid, "VmHWM")?)
        );
        if args.burst > 0 {
            let burst = burst(&pods, &mut running, "joined", args.burst, Some(&node)).await?;
            // Let the pods' first status writes and probes settle.
            tokio::time::sleep(Duration::from_secs(5)).await;
            let with_pods = proc_status_bytes(agent_pid, "VmRSS")?;
            let shims = shim_pids(&b.agent_data());
            let shim_pss: u64 = shims.iter().filter_map(|p| pss(*p)).sum();
            println!(
                "agent with {} pods (created at once, all Running {} after the first create, each first {}, p50 {}, p99 {}): VmRSS {} = {:.1} MB; its {} shims (sandboxes and containers) {} in all (PSS)",
                args.burst,
                secs(burst.all),
                ms(percentile(&burst.each, 0)),
                ms(percentile(&burst.each, 50)),
                ms(percentile(&burst.each, 99)),
                mib(with_pods),
                with_pods as f64 / 1e6,
                shims.len(),
                mib(shim_pss),
            );
            delete_pods(&pods, &[b.agent_runc_root()], Duration::from_secs(120)).await?;
        }
    }
    drop(running);
    println!("total: {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// What creating pods at once measured.
struct Burst {
    /// From the first create to the last pod Running.
    all: Duration,
    /// Each pod's own create → Running.
    each: Vec<Duration>,
}

async fn burst(
    pods: &Api<Pod>,
    running: &mut Running,
    prefix: &str,
    n: usize,
    node: Option<&str>,
) -> Result<Burst> {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let first = Instant::now();
    let creates = futures::future::join_all(names.iter().map(|name| {
        let pods = pods.clone();
        let body = pod(name, node);
        async move {
            let t0 = Instant::now();
            pods.create(&PostParams::default(), &body)
                .await
                .with_context(|| format!("creating pod {}", body.name_any()))
                .map(|_| t0)
        }
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<Instant>>>()?;
    running
        .wait(pods, &names, Duration::from_secs(120 + n as u64))
        .await?;
    let at: Vec<Instant> = names.iter().map(|n| running.seen[n]).collect();
    let last = at.iter().max().copied().unwrap_or(first);
    Ok(Burst {
        all: last - first,
        each: at.iter().zip(&creates).map(|(r, c)| *r - *c).collect(),
    })
}

fn pod(name: &str, node: Option<&str>) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "labels": { "app": "bench-pods" } },
        "spec": {
            "nodeName": node,
            "containers": [{ "name": "c", "image": IMAGE, "command": ["sleep", "3600"] }],
        },
    }))
    .expect("a valid pod")
}

/// Whether the pod is Running with every container running.
fn is_running(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status.container_statuses.as_ref().is_some_and(|cs| {
            !cs.is_empty()
                && cs
                    .iter()
                    .all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
        })
}

/// The first time a watch saw each pod of the namespace running.
struct Running {
    rx: mpsc::UnboundedReceiver<(String, Instant)>,
    seen: HashMap<String, Instant>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Starts the watch and returns once its initial list is done.
    async fn watch(pods: Api<Pod>) -> Result<Running> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (listed_tx, listed) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut listed_tx = Some(listed_tx);
            let mut reported = HashSet::new();
            let mut stream = watcher(pods, watcher::Config::default()).boxed();
            while let Some(event) = stream.next().await {
                let at = Instant::now();
                let pod = match event {
                    Ok(Event::Apply(pod)) | Ok(Event::InitApply(pod)) => pod,
                    Ok(Event::InitDone) => {
                        if let Some(tx) = listed_tx.take() {
                            let _ = tx.send(());
                        }
                        continue;
                    }
                    _ => continue,
                };
                if is_running(&pod) && reported.insert(pod.name_any()) {
                    if tx.send((pod.name_any(), at)).is_err() {
                        return;
                    }
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(30), listed)
            .await
            .context("the pod watch did not list within 30s")?
            .context("the pod watch ended")?;
        Ok(Running {
            rx,
            seen: HashMap::new(),
            task,
        })
    }

    /// Waits until every pod of `names` was seen running.
    async fn wait(&mut self, pods: &Api<Pod>, names: &[String], within: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        while let Some(missing) = names.iter().find(|n| !self.seen.contains_key(*n)) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some((name, at))) => {
                    self.seen.insert(name, at);
                }
                Ok(None) => bail!("the pod watch ended"),
                Err(_) => {
                    let left = names.iter().filter(|n| !self.seen.contains_key(*n)).count();
                    bail!(
                        "{left} of {} pods not Running within {within:?}; {missing}: {}",
                        names.len(),
                        describe(pods, missing).await
                    )
                }
            }
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A pod's phase, node and container states, for a failure message.
async fn describe(pods: &Api<Pod>, name: &str) -> String {
    let pod = match pods.get(name).await {
        Ok(p) => p,
        Err(e) => return format!("({e})"),
    };
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    let Some(status) = pod.status else {
        return format!("no status, node {node:?}");
    };
    let containers: Vec<String> = status
        .container_statuses
        .unwrap_or_default()
        .iter()
        .map(|c| format!("{}: {:?}", c.name, c.state))
        .collect();
    let conditions: Vec<String> = status
        .conditions
        .unwrap_or_default()
        .iter()
        .map(|c| {
            format!(
                "{}={} {}",
                c.type_,
                c.status,
                c.message.as_deref().unwrap_or("")
            )
        })
        .collect();
    format!(
        "phase {:?}, node {node:?}, conditions [{}], containers [{}]",
        status.phase,
        conditions.join("; "),
        containers.join("; ")
    )
}

async fn create_namespace(client: &Client) -> Result<()> {
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": NAMESPACE } }))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .with_context(|| format!("creating namespace {NAMESPACE}"))?;
    // Pods are admitted once the namespace's default service account exists.
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), NAMESPACE);
    poll(
        "the default service account",
        Duration::from_secs(30),
        || {
            let accounts = accounts.clone();
            async move { Ok(accounts.get_opt("default").await?.is_some()) }
        },
    )
    .await
}

async fn wait_node_ready(client: &Client, name: &str, within: Duration) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    poll(&format!("node {name} Ready"), within, || {
        let nodes = nodes.clone();
        async move {
            let Some(node) = nodes.get_opt(name).await? else {
                return Ok(false);
            };
            Ok(node
                .status
                .and_then(|s| s.conditions)
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")))
        }
    })
    .await
}

/// Polls `check` every 100 ms until it holds, for at most `within`.
async fn poll<F, Fut>(what: &str, within: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + within;
    loop {
        let last = match check().await {
            Ok(true) => return Ok(()),
            Ok(false) => String::new(),
            Err(e) => format!(": {e:#}"),
        };
        if Instant::now() > deadline {
            bail!("{what}: not reached within {within:?}{last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Deletes every pod of the namespace (1 s grace: `sleep` as PID 1 ignores
/// SIGTERM) and waits until they are gone from the API and no container
/// of theirs runs under `runc_roots`; pods still there after `within` are
/// force-deleted and the call fails.
async fn delete_pods(pods: &Api<Pod>, runc_roots: &[PathBuf], within: Duration) -> Result<()> {
    let graceful = DeleteParams {
        grace_period_seconds: Some(1),
        ..Default::default()
    };
    let list = pods.list(&ListParams::default()).await?;
    futures::future::join_all(list.items.iter().map(|p| {
        let name = p.name_any();
        let graceful = graceful.clone();
        async move { pods.delete(&name, &graceful).await }
    }))
    .await;
    let gone = poll("pods deleted", within, || async {
        Ok(pods.list(&ListParams::default()).await?.items.is_empty())
    })
    .await;
    if let Err(e) = gone {
        let force = DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        for p in pods.list(&ListParams::default()).await?.items {
            let _ = pods.delete(&p.name_any(), &force).await;
        }
        return Err(e);
    }
    let roots = runc_roots.to_vec();
    poll("containers stopped", Duration::from_secs(60), || {
        let roots = roots.clone();
        async move { Ok(roots.iter().all(|r| running_containers(r) == 0)) }
    })
    .await?;
    // Stopped sandboxes may stay a little longer (the agent's garbage
    // collection); the final cleanup removes any left.
    let _ = poll("containers removed", Duration::from_secs(10), || {
        let roots = roots.clone();
        async move { Ok(roots.iter().all(|r| runc_containers(r).is_empty())) }
    })
    .await;
    Ok(())
}

/// The p-th percentile (nearest rank) of `samples`; the 0th is the least.
fn percentile(samples: &[Duration], p: usize) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

/// The baseline: `runs` times the runtime's bare `runc run --detach` of
/// `sleep 3600` (an overlay of the image's layers as its root, new
/// namespaces, no pod sandbox or network), each removed before the next.
/// The layers come from a store of its own that imports the same archive.
async fn bare_runc(dir: &Path, archive: &Path, runs: usize) -> Result<Vec<Duration>> {
    let (store_dir, archive) = (dir.join("images"), archive.to_path_buf());
    let image = tokio::task::spawn_blocking(move || -> Result<image::Image> {
        let store = image::Store::open(store_dir).context("opening an image store")?;
        store.import(&archive).context("importing the image")?;
        store
            .resolve(IMAGE)
            .with_context(|| format!("{IMAGE} not in the store after import"))
    })
    .await??;
    let mut took = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = runtime::bare::bare_runc_run(
            Path::new("runc"),
            &dir.join("runs"),
            &image.layers,
            &["sleep", "3600"],
        )
        .await
        .context("bare runc run")?;
        took.push(t);
    }
    Ok(took)
}

fn run_quiet(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// IDs of the runc containers under `root`.
fn runc_containers(root: &Path) -> Vec<String> {
    let root = root.display().to_string();
    run_quiet("runc", &["--root", &root, "list", "-q"])
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn running_containers(root: &Path) -> usize {
    let root = root.display().to_string();
    let Some(out) = run_quiet("runc", &["--root", &root, "list", "--format", "json"]) else {
        return 0;
    };
    serde_json::from_str::<Vec<serde_json::Value>>(&out)
        .unwrap_or_default()
        .iter()
        .filter(|c| c["status"] != "stopped")
        .count()
}

/// A size field (`VmRSS`, `VmHWM`) of `/proc/<pid>/status` in bytes.
fn proc_status_bytes(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(kb * 1024)
}

/// A process's proportional set size (shared pages divided among their
/// users), so that the sizes of processes sharing one binary add up.
fn pss(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let kb = rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))?
        .split_whitespace()
        .next()?
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}

/// Container shims (`krate __shim ...`) whose command line names a path
/// under `under`.
fn shim_pids(under: &Path) -> Vec<u32> {
    let under = under.display().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            args.get(1).map(String::as_str) == Some("__shim")
                && args.iter().any(|a| a.contains(&under))
        })
        .collect()
}

/// The host-global names this run's agents use, unique on
/// the machine: bridges, cgroups, node names, and pod and service CIDRs
/// no route uses yet.
struct Names {
    server_node: String,
    agent_node: String,
    server_bridge: String,
    agent_bridge: String,
    /// A /23: a /24 pod CIDR for each of the two nodes.
    cluster_cidr: String,
    service_cidr: String,
    server_cgroup: String,
    agent_cgroup: String,
}

impl Names {
    fn pick() -> Names {
        let pid = std::process::id();
        let routes = run_quiet("ip", &["-4", "route", "show", "table", "all"]).unwrap_or_default();
        let used = |prefix: &str| {
            routes
                .split_whitespace()
                .any(|word| word.starts_with(prefix))
        };
        let mut k = pid % 128;
        for _ in 0..128 {
            if !used(&format!("10.238.{}.", 2 * k))
                && !used(&format!("10.238.{}.", 2 * k + 1))
                && !used(&format!("10.239.{k}."))
            {
                break;
            }
            k = (k + 1) % 128;
        }
        let links = run_quiet("ip", &["-o", "link", "show"]).unwrap_or_default();
        let mut n = pid % 100_000;
        while links.contains(&format!(": kbs{n}:")) || links.contains(&format!(": kba{n}:")) {
            n = (n + 1) % 100_000;
        }
        Names {
            server_node: format!("krate-bench-{pid}"),
            agent_node: format!("krate-bench-{pid}-agent"),
            server_bridge: format!("kbs{n}"),
            agent_bridge: format!("kba{n}"),
            cluster_cidr: format!("10.238.{}.0/23", 2 * k),
            service_cidr: format!("10.239.{k}.0/24"),
            server_cgroup: format!("krate-bench-{pid}-server"),
            agent_cgroup: format!("krate-bench-{pid}-agent"),
        }
    }
}

/// This run's directory, names and processes; dropping it stops the
/// processes by PID and removes what they left on the machine.
struct Bench {
    dir: tempfile::TempDir,
    names: Names,
    server: Option<Child>,
    agent: Option<Child>,
    port: u16,
    client: Option<Client>,
}

impl Bench {
    fn new(parent: &Path) -> Result<Bench> {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("krate-bench-pods-")
            .tempdir_in(parent)?;
        Ok(Bench {
            dir,
            names: Names::pick(),
            server: None,
            agent: None,
            port: 0,
            client: None,
        })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn server_data(&self) -> PathBuf {
        self.path().join("server")
    }

    fn agent_data(&self) -> PathBuf {
        self.path().join("agent")
    }

    fn server_runc_root(&self) -> PathBuf {
        self.server_data().join("runtime/runc")
    }

    fn agent_runc_root(&self) -> PathBuf {
        self.agent_data().join("runtime/runc")
    }

    /// The agents' runc roots, then the baseline's (one per run).
    fn runc_roots(&self) -> Vec<PathBuf> {
        let bare = std::fs::read_dir(self.path().join("bare/runs"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("runc"));
        [self.server_runc_root(), self.agent_runc_root()]
            .into_iter()
            .chain(bare)
            .collect()
    }

    /// The agent flags that keep host-global names to this run.
    fn agent_flags(&self, data: &Path, bridge: &str, cgroup: &str) -> Vec<String> {
        vec![
            "--cni-bridge".into(),
            bridge.into(),
            "--cluster-cidr".into(),
            self.names.cluster_cidr.clone(),
            "--service-cidr".into(),
            self.names.service_cidr.clone(),
            "--cgroup-root".into(),
            format!("/{cgroup}/kubepods"),
            "--kubelet-port".into(),
            "0".into(),
            "--pod-log-dir".into(),
            data.join("pod-logs").display().to_string(),
        ]
    }

    /// Starts a child in a process group of its own (a terminal's Ctrl-C
    /// reaches this process only, which then cleans up in order), logging
    /// to `<dir>/<name>.log`, with the image archive in its agent's import
    /// directory.
    fn spawn(&self, name: &str, data: &Path, archive: &Path, args: &[String]) -> Result<Child> {
        let images = data.join("agent/images");
        std::fs::create_dir_all(&images)?;
        std::fs::copy(archive, images.join("busybox.tar"))?;
        let log = std::fs::File::create(self.path().join(format!("{name}.log")))?;
        Command::new(std::env::current_exe().context("finding this binary")?)
            .args(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting krate {name}"))
    }

    async fn start_server(&mut self, archive: &Path) -> Result<Client> {
        self.port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let data = self.server_data();
        let mut args: Vec<String> = vec![
            "server".into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--https-listen-port".into(),
            self.port.to_string(),
            "--bind-address".into(),
            "127.0.0.1".into(),
            "--node-name".into(),
            self.names.server_node.clone(),
        ];
        args.extend(self.agent_flags(&data, &self.names.server_bridge, &self.names.server_cgroup));
        self.server = Some(self.spawn("server", &data, archive, &args)?);
        let kubeconfig = data.join("admin.kubeconfig");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.server.as_mut().unwrap().try_wait()? {
                bail!("krate server exited ({status})");
            }
            if kubeconfig.exists() {
                if let Ok(c) = client(&kubeconfig).await {
                    if Api::<Namespace>::all(c.clone())
                        .get("default")
                        .await
                        .is_ok()
                    {
                        self.client = Some(c.clone());
                        return Ok(c);
                    }
                }
            }
            if Instant::now() > deadline {
                bail!("krate server not ready within 60s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts `krate agent` joined with the server's token; returns its PID.
    async fn start_agent(&mut self) -> Result<u32> {
        let token = std::fs::read_to_string(self.server_data().join("token"))
            .context("reading the server's join token")?;
        let data = self.agent_data();
        let mut args: Vec<String> = vec![
            "agent".into(),
            "--server".into(),
            format!("https://127.0.0.1:{}", self.port),
            "--token".into(),
            token.trim().into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--node-name".into(),
            self.names.agent_node.clone(),
        ];
        args.extend(self.agent_flags(&data, &self.names.agent_bridge, &self.names.agent_cgroup));
        let archive = self.path().join("busybox.tar");
        let child = self.spawn("agent", &data, &archive, &args)?;
        let pid = child.id();
        self.agent = Some(child);
        Ok(pid)
    }

    /// Deletes the bench's pods through the API and waits for their
    /// containers to stop.
    async fn delete_all_pods(&self) -> Result<()> {
        let Some(client) = &self.client else {
            return Ok(());
        };
        if self.server.is_none() {
            return Ok(());
        }
        let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
        delete_pods(&pods, &self.runc_roots()[..2], Duration::from_secs(60)).await
    }

    fn print_log_tails(&self) {
        for name in ["server", "agent"] {
            let Ok(log) = std::fs::read_to_string(self.path().join(format!("{name}.log"))) else {
                continue;
            };
            let lines: Vec<&str> = log.lines().collect();
            eprintln!("--- the last lines of the {name}'s log:");
            for line in &lines[lines.len().saturating_sub(30)..] {
                eprintln!("{line}");
            }
        }
    }

    /// Removes what the agents and the baseline left on the machine:
    /// containers, shims, mounts (network namespaces included), NAT rules,
    /// bridges, routes, CNI IPAM state and cgroups.
    fn remove_leftovers(&self) {
        for root in self.runc_roots() {
            let r = root.display().to_string();
            for id in runc_containers(&root) {
                let _ = run_quiet("runc", &["--root", &r, "kill", &id, "KILL"]);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        for root in self.runc_roots() {
            let r = root.display().to_string();
            for id in runc_containers(&root) {
                let _ = run_quiet("runc", &["--root", &r, "delete", "--force", &id]);
            }
        }
        for pid in shim_pids(self.path()) {
            let _ = run_quiet("kill", &["-KILL", &pid.to_string()]);
        }
        // Mounts under this run's directory, deepest first.
        let dir = self.path().display().to_string();
        let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&dir))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = run_quiet("umount", &["-l", &m]);
        }
        for bridge in [&self.names.server_bridge, &self.names.agent_bridge] {
            let _ = net::default_network::tear_down(&agent_network(bridge));
        }
        for cidr in [&self.names.cluster_cidr, &self.names.service_cidr] {
            let _ = run_quiet("ip", &["route", "del", "unreachable", cidr]);
        }
        for cgroup in [&self.names.server_cgroup, &self.names.agent_cgroup] {
            runtime::cgroups::remove_tree(cgroup);
        }
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        for child in [self.agent.take(), self.server.take()]
            .into_iter()
            .flatten()
        {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        self.remove_leftovers();
    }
}

/// The CNI network an agent with a non-default bridge writes (see
/// `krate::agent`): named after its bridge.
fn agent_network(bridge: &str) -> net::DefaultNetwork {
    net::DefaultNetwork {
        name: format!("krate-{bridge}"),
        bridge: bridge.to_string(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|m| Duration::from_millis(*m)).collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let hundred: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(percentile(&ms(&hundred), 50), Duration::from_millis(50));
        assert_eq!(percentile(&ms(&hundred), 99), Duration::from_millis(99));
        let twenty: Vec<u64> = (1..=20).collect();
        assert_eq!(percentile(&ms(&twenty), 50), Duration::from_millis(10));
        assert_eq!(percentile(&ms(&twenty), 99), Duration::from_millis(20));
        assert_eq!(percentile(&ms(&[7]), 99), Duration::from_millis(7));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
    }

    #[test]
    fn a_pod_is_running_once_its_phase_and_every_container_are() {
        let mut p = pod("p", None);
        assert!(!is_running(&p));
        p.status = serde_json::from_value(json!({
            "phase": "Running",
            "containerStatuses": [{ "name": "c", "image": IMAGE, "imageID": "", "ready": false,
                "restartCount": 0, "state": { "waiting": { "reason": "ContainerCreating" } } }],
        }))
        .unwrap();
        assert!(!is_running(&p));
        p.status = serde_json::from_value(json!({
            "phase": "Running",
            "containerStatuses": [{ "name": "c", "image": IMAGE, "imageID": "", "ready": true,
                "restartCount": 0, "state": { "running": { "startedAt": "2026-01-01T00:00:00Z" } } }],
        }))
        .unwrap();
        assert!(is_running(&p));
    }
}
