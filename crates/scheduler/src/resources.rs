//! Resource arithmetic as upstream's scheduler framework does it: a pod's
//! effective requests (containers, init containers and sidecars, overhead),
//! the "non-zero" requests scoring uses, and a node's allocatable.

use std::collections::BTreeMap;

use api::quantity::Quantity;
use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as KQuantity;

/// Requests assumed for a container that sets none, when scoring
/// (upstream's `DefaultMilliCPURequest` and `DefaultMemoryRequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Upstream's `framework.Resource`: cpu in millicores, memory and
/// ephemeral storage in bytes, the pod count, and every other resource
/// (extended resources, hugepages) by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub allowed_pod_number: i64,
    pub scalar: BTreeMap<String, i64>,
}

fn parse(q: &KQuantity) -> Option<Quantity> {
    Quantity::parse(&q.0).ok()
}

impl Resources {
    /// From a resource list (container requests, node allocatable).
    pub fn from_list(list: Option<&BTreeMap<String, KQuantity>>) -> Resources {
        let mut r = Resources::default();
        for (name, q) in list.into_iter().flatten() {
            let Some(q) = parse(q) else { continue };
            match name.as_str() {
                "cpu" => r.milli_cpu += q.milli_value(),
                "memory" => r.memory += q.value(),
                "ephemeral-storage" => r.ephemeral_storage += q.value(),
                "pods" => r.allowed_pod_number += q.value(),
                other => *r.scalar.entry(other.to_string()).or_default() += q.value(),
            }
        }
        r
    }

    pub fn add(&mut self, o: &Resources) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.ephemeral_storage += o.ephemeral_storage;
        self.allowed_pod_number += o.allowed_pod_number;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    pub fn sub(&mut self, o: &Resources) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.ephemeral_storage -= o.ephemeral_storage;
        self.allowed_pod_number -= o.allowed_pod_number;
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e -= v;
            if *e == 0 {
                self.scalar.remove(k);
            }
        }
    }

    /// Each field the larger of the two.
    pub fn max(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        self.allowed_pod_number = self.allowed_pod_number.max(o.allowed_pod_number);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar.get(name).copied().unwrap_or(0)
    }

    /// The amount of a named resource (`cpu` in millicores).
    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.milli_cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            "pods" => self.allowed_pod_number,
            other => self.scalar(other),
        }
    }
}

fn container_requests(c: &Container) -> Resources {
    Resources::from_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()))
}

fn is_restartable_init(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// A pod's effective requests, as upstream's `resourcehelper.PodRequests`:
/// the larger of the containers' sum (sidecars included) and the largest
/// init container (plus the sidecars started before it), plus overhead.
/// `non_zero` substitutes the scoring defaults for unset cpu/memory.
fn pod_requests_with(pod: &Pod, non_zero: bool) -> Resources {
    let Some(spec) = pod.spec.as_ref() else {
        return Resources::default();
    };
    let reqs_of = |c: &Container| {
        let mut r = container_requests(c);
        if non_zero {
            let list = c.resources.as_ref().and_then(|r| r.requests.as_ref());
            if !list.is_some_and(|l| l.contains_key("cpu")) {
                r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
            }
            if !list.is_some_and(|l| l.contains_key("memory")) {
                r.memory = DEFAULT_MEMORY_REQUEST;
            }
        }
        r
    };
    let mut reqs = Resources::default();
    for c in &spec.containers {
        reqs.add(&reqs_of(c));
    }
    let mut restartable = Resources::default();
    let mut init_max = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let mut r = reqs_of(c);
        if is_restartable_init(c) {
            reqs.add(&r);
            restartable.add(&r);
            r = restartable.clone();
        } else {
            r.add(&restartable);
        }
        init_max.max(&r);
    }
    reqs.max(&init_max);
    if let Some(overhead) = spec.overhead.as_ref() {
        reqs.add(&Resources::from_list(Some(overhead)));
    }
    reqs
}

pub fn pod_requests(pod: &Pod) -> Resources {
    pod_requests_with(pod, false)
}

/// Requests with upstream's defaults for unset cpu and memory, which the
/// scores use so that pods without requests still spread.
pub fn pod_non_zero_requests(pod: &Pod) -> Resources {
    pod_requests_with(pod, true)
}

pub fn node_allocatable(node: &Node) -> Resources {
    let status = node.status.as_ref();
    Resources::from_list(
        status
            .and_then(|s| s.allocatable.as_ref())
            .or_else(|| status.and_then(|s| s.capacity.as_ref())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn requests_take_the_larger_of_containers_and_init_containers_plus_overhead() {
        let p = pod(json!({"spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "200m"}}}
            ],
            "initContainers": [
                {"name": "i", "resources": {"requests": {"cpu": "1", "memory": "10Mi"}}}
            ],
            "overhead": {"cpu": "10m"}
        }}));
        let r = pod_requests(&p);
        assert_eq!(r.milli_cpu, 1010);
        assert_eq!(r.memory, 1 << 30);
    }

    #[test]
    fn sidecars_add_to_the_containers_and_to_later_init_containers() {
        let p = pod(json!({"spec": {
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}],
            "initContainers": [
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}},
                {"name": "i", "resources": {"requests": {"cpu": "500m"}}}
            ]
        }}));
        assert_eq!(pod_requests(&p).milli_cpu, 550);
    }

    #[test]
    fn non_zero_requests_default_unset_cpu_and_memory() {
        let p = pod(json!({"spec": {"containers": [{"name": "a"}]}}));
        let r = pod_non_zero_requests(&p);
        assert_eq!((r.milli_cpu, r.memory), (100, 200 * 1024 * 1024));
        assert_eq!(pod_requests(&p), Resources::default());
    }

    #[test]
    fn extended_resources_are_counted_by_name() {
        let p = pod(json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"example.com/gpu": "2"}}}
        ]}}));
        assert_eq!(pod_requests(&p).scalar("example.com/gpu"), 2);
    }
}
