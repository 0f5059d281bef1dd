//! The last two points of every node and container, and the usage computed
//! from them, as metrics-server's `pkg/storage` keeps and computes them:
//! CPU is the cumulative time's rate between the two points (nanocores),
//! memory the last working set; the window is the time between the points.
//! A container restarted between scrapes loses its previous point; one that
//! started less than a resolution ago (but at least 10 s ago) counts from
//! its start with zero CPU.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::text::{Batch, Point};

/// A container younger than this is not measured from its start.
const FRESH_CONTAINER_MIN_RESOLUTION: i64 = 10_000_000_000;

/// Usage over a window ending at `timestamp` (Unix nanoseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub timestamp: i64,
    pub window: i64,
    pub cpu_nanocores: u64,
    pub memory_bytes: u64,
}

/// metrics-server's `resourceUsage`: `None` when the counter went back or
/// the points coincide.
pub fn resource_usage(last: &Point, prev: &Point) -> Option<Usage> {
    if last.start_time < prev.start_time || last.cumulative_cpu_used < prev.cumulative_cpu_used {
        return None;
    }
    let window = last.timestamp - prev.timestamp;
    if window <= 0 {
        return None;
    }
    let cpu = (last.cumulative_cpu_used - prev.cumulative_cpu_used) as f64 / (window as f64 / 1e9);
    Some(Usage {
        timestamp: last.timestamp,
        window,
        cpu_nanocores: cpu as u64,
        memory_bytes: last.memory_usage,
    })
}

type PodKey = (String, String);

#[derive(Debug, Default)]
pub struct Storage {
    resolution: Duration,
    nodes_last: HashMap<String, Point>,
    nodes_prev: HashMap<String, Point>,
    pods_last: HashMap<PodKey, BTreeMap<String, Point>>,
    pods_prev: HashMap<PodKey, BTreeMap<String, Point>>,
}

impl Storage {
    pub fn new(resolution: Duration) -> Storage {
        Storage {
            resolution,
            ..Storage::default()
        }
    }

    /// Replaces the last points with one scrape of every node (`batches`:
    /// node name → its batch); what the scrape did not return is dropped.
    pub fn store(&mut self, batches: &BTreeMap<String, Batch>) {
        let mut nodes_last = HashMap::new();
        let mut nodes_prev = HashMap::new();
        let mut pods_last = HashMap::new();
        let mut pods_prev = HashMap::new();
        for (node, batch) in batches {
            if let Some(new) = batch.node {
                if let Some(last) = self.nodes_last.get(node) {
                    if new.timestamp > last.timestamp {
                        nodes_prev.insert(node.clone(), *last);
                    } else if let Some(prev) = self.nodes_prev.get(node) {
                        if prev.timestamp < new.timestamp {
                            nodes_prev.insert(node.clone(), *prev);
                        }
                    }
                }
                nodes_last.insert(node.clone(), new);
            }
            for (pod, containers) in &batch.pods {
                if pods_last.contains_key(pod) {
                    continue;
                }
                let mut prev_containers = BTreeMap::new();
                for (name, new) in containers {
                    if let Some(p) = self.previous(pod, name, new) {
                        prev_containers.insert(name.clone(), p);
                    }
                }
                if !prev_containers.is_empty() {
                    pods_prev.insert(pod.clone(), prev_containers);
                }
                pods_last.insert(pod.clone(), containers.clone());
            }
        }
        self.nodes_last = nodes_last;
        self.nodes_prev = nodes_prev;
        self.pods_last = pods_last;
        self.pods_prev = pods_prev;
    }

    /// The point a container's new point is compared with.
    fn previous(&self, pod: &PodKey, name: &str, new: &Point) -> Option<Point> {
        let age = new.timestamp - new.start_time;
        if new.start_time < new.timestamp
            && age < self.resolution.as_nanos() as i64
            && age >= FRESH_CONTAINER_MIN_RESOLUTION
        {
            return Some(Point {
                timestamp: new.start_time,
                cumulative_cpu_used: 0,
                ..*new
            });
        }
        let last = self.pods_last.get(pod)?.get(name)?;
        // Restarted since the last point: nothing to compare with.
        if new.start_time >= last.timestamp {
            return None;
        }
        if new.timestamp > last.timestamp {
            return Some(*last);
        }
        let prev = self.pods_prev.get(pod)?.get(name)?;
        (prev.timestamp < new.timestamp).then_some(*prev)
    }

    pub fn node(&self, name: &str) -> Option<Usage> {
        resource_usage(self.nodes_last.get(name)?, self.nodes_prev.get(name)?)
    }

    /// Per container usage of a pod (`None` unless every container has two
    /// points), with the earliest container's timestamp and window.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<(Usage, Vec<(String, Usage)>)> {
        let key = (namespace.to_string(), name.to_string());
        let last = self.pods_last.get(&key)?;
        let prev = self.pods_prev.get(&key)?;
        let mut containers = Vec::new();
        let mut earliest: Option<Usage> = None;
        for (c, l) in last {
            let p = prev.get(c)?;
            let Some(u) = resource_usage(l, p) else {
                continue;
            };
            if earliest.is_none_or(|e| e.timestamp > u.timestamp) {
                earliest = Some(u);
            }
            containers.push((c.clone(), u));
        }
        Some((earliest?, containers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn point(start: i64, ts: i64, cpu: i64, mem: u64) -> Point {
        Point {
            start_time: start,
            timestamp: ts,
            cumulative_cpu_used: cpu as u64,
            memory_usage: mem,
        }
    }

    fn batch(node: Option<Point>, container: Option<Point>) -> BTreeMap<String, Batch> {
        let mut b = Batch {
            node,
            ..Batch::default()
        };
        if let Some(c) = container {
            b.pods.insert(
                ("default".into(), "busy".into()),
                BTreeMap::from([("busy".to_string(), c)]),
            );
        }
        BTreeMap::from([("n1".to_string(), b)])
    }

    #[test]
    fn cpu_is_the_rate_between_two_points_and_memory_the_last_value() {
        let last = point(0, 115 * S, 30 * S, 2048);
        let prev = point(0, 100 * S, 15 * S, 1024);
        assert_eq!(
            resource_usage(&last, &prev),
            Some(Usage {
                timestamp: 115 * S,
                window: 15 * S,
                cpu_nanocores: 1_000_000_000,
                memory_bytes: 2048,
            })
        );
        // A counter that went back (a restart) gives nothing.
        assert_eq!(resource_usage(&prev, &last), None);
        assert_eq!(resource_usage(&last, &last), None);
    }

    #[test]
    fn usage_needs_two_scrapes_and_follows_the_newest_pair() {
        let mut s = Storage::new(Duration::from_secs(15));
        s.store(&batch(Some(point(0, 100 * S, 10 * S, 1)), None));
        assert_eq!(s.node("n1"), None);
        s.store(&batch(Some(point(0, 115 * S, 13 * S, 5)), None));
        let u = s.node("n1").unwrap();
        assert_eq!(
            (u.cpu_nanocores, u.window, u.memory_bytes),
            (200_000_000, 15 * S, 5)
        );
        // The same point again keeps the previous pair.
        s.store(&batch(Some(point(0, 115 * S, 13 * S, 5)), None));
        assert_eq!(s.node("n1").unwrap().cpu_nanocores, 200_000_000);
        // A node missing from a scrape is forgotten.
        s.store(&BTreeMap::new());
        assert_eq!(s.node("n1"), None);
    }

    #[test]
    fn containers_restarted_or_fresh_are_measured_from_their_start() {
        let mut s = Storage::new(Duration::from_secs(60));
        // Started 20 s before its first point, within one resolution: its
        // usage counts from the start with zero CPU.
        s.store(&batch(None, Some(point(80 * S, 100 * S, 5 * S, 4096))));
        let (pod, containers) = s.pod("default", "busy").unwrap();
        assert_eq!(pod.window, 20 * S);
        assert_eq!(containers[0].1.cpu_nanocores, 250_000_000);

        let mut s = Storage::new(Duration::from_secs(15));
        s.store(&batch(None, Some(point(10 * S, 100 * S, 50 * S, 1))));
        assert!(s.pod("default", "busy").is_none());
        s.store(&batch(None, Some(point(10 * S, 105 * S, 51 * S, 1))));
        assert_eq!(
            s.pod("default", "busy").unwrap().1[0].1.cpu_nanocores,
            200_000_000
        );
        // Restarted after the last point: no pair until the next scrape.
        s.store(&batch(None, Some(point(106 * S, 110 * S, S, 1))));
        assert!(s.pod("default", "busy").is_none());
        assert!(s.pod("default", "other").is_none());
    }
}
