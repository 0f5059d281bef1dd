//! `krate bench cluster`: controllers and scheduler at scale, on simulated
//! nodes. A real `krate server --simulated-nodes N` runs as a child
//! process; kube-rs clients create pods and a Deployment and watch them.
//! Figures:
//! - the scheduling algorithm alone, in this process, without IO;
//! - the baseline: pods created with `spec.nodeName` already set (the API
//!   and simulated nodes alone, no scheduling), per second;
//! - scheduling throughput: pods created unbound, from the first create to
//!   the last one bound, per second, and as a ratio to the baseline;
//! - time to all Running, server RSS with every pod in place;
//! - a Deployment of R replicas, from create to all Ready.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube::Client;
use serde_json::json;

use super::api::{rss, Server};
use super::thousands;

#[derive(clap::Args, Debug)]
pub struct ClusterArgs {
    /// Simulated nodes.
    #[arg(long, default_value_t = 1_000)]
    nodes: usize,
    /// Pods created unbound for the scheduler.
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Pods created already bound, for the baseline.
    #[arg(long, default_value_t = 2_000)]
    baseline_pods: usize,
    /// Replicas of the Deployment timed to all Ready (0 to skip).
    #[arg(long, default_value_t = 1_000)]
    deployment_replicas: usize,
    /// Concurrent create requests.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// After the phases, keep the cluster this many seconds and report its RSS again.
    #[arg(long, default_value_t = 0)]
    hold_seconds: u64,
    /// Parent of the server's temporary data directory.
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    dir: PathBuf,
    /// Another flag for the server (repeatable), e.g. `--server-flag=--disable-controllers`.
    #[arg(long)]
    server_flag: Vec<String>,
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn pod(name: &str, node: Option<&str>) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "labels": { "app": "bench" } },
        "spec": {
            "nodeName": node,
            "containers": [{
                "name": "c",
                "image": "registry.local/pause:3.10",
                "resources": { "requests": { "cpu": "10m", "memory": "16Mi" } },
            }],
        },
    }))
    .expect("a valid pod")
}

async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } }))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    Ok(())
}

/// Creates `n` pods in `ns`, `concurrency` at a time; returns the wall time.
async fn create_pods(
    client: &Client,
    ns: &str,
    n: usize,
    concurrency: usize,
    node_of: impl Fn(usize) -> Option<String>,
) -> Result<Duration> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let start = Instant::now();
    futures::stream::iter((0..n).map(|i| {
        let api = api.clone();
        let p = pod(&format!("p-{i}"), node_of(i).as_deref());
        async move { api.create(&PostParams::default(), &p).await.map(|_| ()) }
    }))
    .buffer_unordered(concurrency.max(1))
    .try_collect::<()>()
    .await
    .context("creating pods")?;
    Ok(start.elapsed())
}

/// Watches pods in `ns` and records when `n` of them are bound and when `n`
/// are Running.
struct Progress {
    bound: HashSet<String>,
    running: HashSet<String>,
    all_bound: Option<Instant>,
    all_running: Option<Instant>,
}

/// What the progress watch reads of a watch event: the pod's name,
/// resource version, node and phase. Everything else is skipped unread:
/// decoding whole Pods took CPU the server shares with this process.
#[derive(serde::Deserialize)]
struct ProgressEvent {
    #[serde(rename = "type")]
    kind: String,
    object: ProgressPod,
}

#[derive(serde::Deserialize)]
struct ProgressPod {
    #[serde(default)]
    metadata: ProgressMeta,
    #[serde(default)]
    spec: Option<ProgressSpec>,
    #[serde(default)]
    status: Option<ProgressStatus>,
}

#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProgressMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    resource_version: String,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProgressSpec {
    node_name: Option<String>,
}

#[derive(serde::Deserialize)]
struct ProgressStatus {
    phase: Option<String>,
}

impl Progress {
    fn record(&mut self, pod: ProgressPod, n: usize) {
        if pod.spec.and_then(|s| s.node_name).is_some() {
            self.bound.insert(pod.metadata.name.clone());
            if self.bound.len() >= n && self.all_bound.is_none() {
                self.all_bound = Some(Instant::now());
            }
        }
        if pod.status.and_then(|s| s.phase).as_deref() == Some("Running") {
            self.running.insert(pod.metadata.name);
            if self.running.len() >= n && self.all_running.is_none() {
                self.all_running = Some(Instant::now());
            }
        }
    }
}

fn watch_progress(
    client: &Client,
    ns: &str,
    n: usize,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Arc<Mutex<Progress>> {
    let progress = Arc::new(Mutex::new(Progress {
        bound: HashSet::new(),
        running: HashSet::new(),
        all_bound: None,
        all_running: None,
    }));
    let (client, ns, p) = (client.clone(), ns.to_string(), progress.clone());
    tasks.spawn(async move {
        use futures::AsyncBufReadExt;
        // The namespace is new and empty: the watch starts from now, and
        // after the server ends it, goes on from the last event seen.
        let mut from = String::new();
        loop {
            let uri = format!(
                "/api/v1/namespaces/{ns}/pods?watch=true&resourceVersion={from}&allowWatchBookmarks=true"
            );
            let Ok(request) = http::Request::get(uri).body(Vec::new()) else {
                return;
            };
            let lines = match client.request_stream(request).await {
                Ok(body) => body.lines(),
                Err(e) => {
                    tracing::warn!(error = %e, "bench: watching pods");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let mut lines = std::pin::pin!(lines);
            while let Some(Ok(line)) = lines.next().await {
                let Ok(event) = serde_json::from_str::<ProgressEvent>(&line) else {
                    continue;
                };
                match event.kind.as_str() {
                    // A Status, e.g. 410 Gone: start over from now; the
                    // pods that exist come again as ADDED.
                    "ERROR" => from.clear(),
                    kind => {
                        from = event.object.metadata.resource_version.clone();
                        if matches!(kind, "ADDED" | "MODIFIED") {
                            p.lock().unwrap().record(event.object, n);
                        }
                    }
                }
            }
        }
    });
    progress
}

async fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + within;
    while !done() {
        if Instant::now() > deadline {
            bail!("{what}: not reached within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn ready_nodes(client: &Client) -> Result<usize> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    Ok(nodes
        .items
        .iter()
        .filter(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count())
}

pub async fn run(args: ClusterArgs) -> Result<()> {
    // The scheduling algorithm alone, without IO: the ceiling the binding
    // loop could reach if API writes were free.
    let alone = scheduler::bench::algorithm(args.nodes, 20_000);
    println!(
        "algorithm alone: {:.0} decisions/s on {} nodes ({:.0} nodes filtered per pod)",
        alone.per_second(),
        thousands(args.nodes as u64),
        alone.evaluated_per_pod
    );
    let started = Instant::now();
    let mut flags = vec![
        "--simulated-nodes".to_string(),
        args.nodes.to_string(),
        // Simulated nodes only: no real node agent beside them.
        "--disable-agent".to_string(),
    ];
    flags.extend(args.server_flag.iter().cloned());
    let mut server = Server::start_with(&args.dir, &flags)?;
    // The watches end before the server does.
    let mut watches = tokio::task::JoinSet::new();
    let client = server.wait_ready().await?;
    let pid = server.pid();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "krate bench cluster: krate server (pid {pid}) with {} simulated nodes, {} CPUs shared with the clients, load average {}",
        thousands(args.nodes as u64),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        load.split_whitespace().next().unwrap_or("?"),
    );
    let within = Duration::from_secs(120 + args.nodes as u64 / 10);
    let deadline = Instant::now() + within;
    loop {
        let ready = ready_nodes(&client).await.unwrap_or(0);
        if ready >= args.nodes {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {ready} of {} nodes Ready within {within:?}",
                args.nodes
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "nodes: {} Ready {:.1}s after start; server RSS {}",
        thousands(args.nodes as u64),
        started.elapsed().as_secs_f64(),
        mib(rss(pid)?)
    );

    // Baseline: pods bound at creation.
    let nodes = args.nodes;
    create_namespace(&client, "bench-bound").await?;
    let base = watch_progress(&client, "bench-bound", args.baseline_pods, &mut watches);
    let base_wall = create_pods(
        &client,
        "bench-bound",
        args.baseline_pods,
        args.concurrency,
        |i| Some(format!("sim-node-{}", i % nodes)),
    )
    .await?;
    wait_for("baseline pods Running", Duration::from_secs(600), || {
        base.lock().unwrap().all_running.is_some()
    })
    .await?;
    let base_rate = args.baseline_pods as f64 / base_wall.as_secs_f64();
    println!(
        "baseline: {} pods created already bound in {:.1}s: {:.0}/s",
        thousands(args.baseline_pods as u64),
        base_wall.as_secs_f64(),
        base_rate
    );

    println!("baseline: server RSS {}", mib(rss(pid)?));

    // Scheduling.
    if args.pods == 0 {
        watches.abort_all();
        return Ok(());
    }
    create_namespace(&client, "bench-sched").await?;
    let sched = watch_progress(&client, "bench-sched", args.pods, &mut watches);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t0 = Instant::now();
    let create_wall = create_pods(&client, "bench-sched", args.pods, args.concurrency, |_| {
        None
    })
    .await?;
    let bound_when_created = sched.lock().unwrap().bound.len();
    wait_for("all pods bound", Duration::from_secs(1800), || {
        sched.lock().unwrap().all_bound.is_some()
    })
    .await?;
    let bound_at = sched.lock().unwrap().all_bound.unwrap();
    let bound_secs = (bound_at - t0).as_secs_f64();
    let rate = args.pods as f64 / bound_secs;
    println!(
        "scheduling: {} pods created in {:.1}s ({:.0}/s, {} of them bound by then), all bound {:.1}s after the first create: {:.0} pods/s, {:.2}x the baseline",
        thousands(args.pods as u64),
        create_wall.as_secs_f64(),
        args.pods as f64 / create_wall.as_secs_f64(),
        thousands(bound_when_created as u64),
        bound_secs,
        rate,
        rate / base_rate
    );
    wait_for("all pods Running", Duration::from_secs(1800), || {
        sched.lock().unwrap().all_running.is_some()
    })
    .await?;
    let running_at = sched.lock().unwrap().all_running.unwrap();
    println!(
        "running: all {} Running {:.1}s after the first create; server RSS {} with {} pods",
        thousands(args.pods as u64),
        (running_at - t0).as_secs_f64(),
        mib(rss(pid)?),
        thousands((args.pods + args.baseline_pods) as u64)
    );

    if args.deployment_replicas > 0 {
        create_namespace(&client, "bench-deploy").await?;
        let replicas = args.deployment_replicas;
        let d: Deployment = serde_json::from_value(json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": { "name": "web" },
            "spec": {
                "replicas": replicas,
                "selector": { "matchLabels": { "app": "web" } },
                "template": {
                    "metadata": { "labels": { "app": "web" } },
                    "spec": { "containers": [{ "name": "c", "image": "registry.local/web:1" }] },
                },
            },
        }))?;
        let api: Api<Deployment> = Api::namespaced(client.clone(), "bench-deploy");
        let t0 = Instant::now();
        api.create(&PostParams::default(), &d).await?;
        let deadline = t0 + Duration::from_secs(900);
        loop {
            let d = api.get("web").await?;
            let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0) as usize;
            if ready >= replicas {
                break;
            }
            if Instant::now() > deadline {
                bail!("the deployment has {ready} of {replicas} ready after 900s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!(
            "deployment: {} replicas from create to all Ready in {:.1}s",
            thousands(replicas as u64),
            t0.elapsed().as_secs_f64()
        );
    }

    if args.hold_seconds > 0 {
        tokio::time::sleep(Duration::from_secs(args.hold_seconds)).await;
        println!(
            "hold: after {}s more, server RSS {}",
            args.hold_seconds,
            mib(rss(pid)?)
        );
    }
    println!("total: {:.1}s", started.elapsed().as_secs_f64());
    watches.abort_all();
    Ok(())
}
