//! Prints what loading the schemas costs (first use: decode the embedded
//! descriptor set, index every field) and how fast a Pod converts.
//! `cargo run -p wire --example schema_cost [--release]`

use std::time::Instant;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let before = rss_kib();
    let start = Instant::now();
    let schema = wire::schema::Schema::get();
    let load = start.elapsed();
    let after = rss_kib();
    println!(
        "schema load: {:.1} ms, RSS +{} KiB ({} messages)",
        load.as_secs_f64() * 1e3,
        after.saturating_sub(before),
        schema.message_count()
    );

    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": "1",
                     "creationTimestamp": "2024-01-02T03:04:05Z", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                 "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                 "livenessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 10}}],
                 "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "nodeName": "node-1"},
        "status": {"phase": "Running", "podIP": "10.42.0.5", "startTime": "2024-01-02T03:04:05Z",
                   "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-02T03:04:05Z"}]}
    });
    let n = 2000;
    let start = Instant::now();
    let mut bytes = Vec::new();
    for _ in 0..n {
        bytes = wire::encode(&pod).unwrap();
    }
    let encode = start.elapsed() / n;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(wire::decode(&bytes).unwrap());
    }
    let decode = start.elapsed() / n;
    let json = serde_json::to_vec(&pod).unwrap();
    println!(
        "Pod: {} bytes protobuf vs {} bytes JSON; encode {:.1} µs, decode {:.1} µs",
        bytes.len(),
        json.len(),
        encode.as_secs_f64() * 1e6,
        decode.as_secs_f64() * 1e6
    );
}
