//! The algorithm alone at scale, for `krate bench`: decisions per second
//! over a snapshot of simulated-like nodes, each decision assumed into the
//! snapshot as the driver does. No IO; the figure bounds what the driver
//! can reach before the API server's binding writes do.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::json;

use crate::algorithm::{Algorithm, ObjectMaps};
use crate::snapshot::Snapshot;

/// What [`algorithm`] measured.
#[derive(Clone, Debug)]
pub struct AlgorithmBench {
    pub nodes: usize,
    pub pods: usize,
    pub elapsed: Duration,
    /// Nodes filtered per decision, on average (percentageOfNodesToScore).
    pub evaluated_per_pod: f64,
}

impl AlgorithmBench {
    pub fn per_second(&self) -> f64 {
        self.pods as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A node shaped like a simulated one: 32 cpu, 256Gi, 110 pods.
pub fn simulated_node(i: usize) -> Node {
    let name = format!("sim-node-{i}");
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "type": "simulated", "topology.kubernetes.io/zone": format!("zone-{}", i % 3)
        }},
        "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"}}
    }))
    .expect("a valid node")
}

/// A pending pod with small requests, as a Deployment's replica.
pub fn pending_pod(i: usize) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": format!("bench-{i}"), "namespace": "bench", "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}
    }))
    .expect("a valid pod")
}

/// Schedules `pods` pending pods onto `nodes` nodes with the default
/// profile, assuming each decision before the next.
pub fn algorithm(nodes: usize, pods: usize) -> AlgorithmBench {
    let mut snapshot = Snapshot::from_objects((0..nodes).map(simulated_node), []);
    let objects = ObjectMaps::default();
    let nominated = HashMap::new();
    let mut alg = Algorithm::default();
    let pending: Vec<Arc<Pod>> = (0..pods).map(|i| Arc::new(pending_pod(i))).collect();
    let mut evaluated = 0usize;
    let start = Instant::now();
    for pod in &pending {
        match alg.schedule(&snapshot, pod, &objects, &nominated) {
            Ok(placement) => {
                evaluated += placement.evaluated;
                let mut bound = (**pod).clone();
                bound.spec.get_or_insert_with(Default::default).node_name = Some(placement.node);
                snapshot.upsert_pod(Arc::new(bound));
            }
            Err(_) => evaluated += nodes,
        }
    }
    AlgorithmBench {
        nodes,
        pods,
        elapsed: start.elapsed(),
        evaluated_per_pod: evaluated as f64 / pods.max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_algorithm_bench_places_every_pod() {
        let b = super::algorithm(150, 300);
        assert_eq!(b.pods, 300);
        assert_eq!(b.evaluated_per_pod, 100.0);
    }
}
