use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::*;

fn pod(name: &str, priority: i32) -> Arc<Pod> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [], "priority": priority}
        }))
        .unwrap(),
    )
}

#[test]
fn higher_priority_pods_come_first_then_older_ones() {
    let mut q = SchedulingQueue::new();
    let now = Instant::now();
    q.upsert(pod("low", 1), now);
    q.upsert(pod("high", 100), now);
    q.upsert(pod("low2", 1), now);
    let order: Vec<String> = std::iter::from_fn(|| q.pop().map(|p| p.key.name)).collect();
    assert_eq!(order, ["high", "low", "low2"]);
}

#[test]
fn unschedulable_pods_wait_for_a_cluster_change() {
    let mut q = SchedulingQueue::new();
    let now = Instant::now();
    q.upsert(pod("p", 0), now);
    let p = q.pop().unwrap();
    q.unschedulable(&p.key, vec!["NodeResourcesFit"], now);
    assert!(q.pop().is_none());
    assert!(!q.flush(now + Duration::from_secs(60)));
    // A change that concerns another plugin does not wake it.
    q.move_unschedulable(Some(&["InterPodAffinity"]), now);
    assert!(q.pop().is_none());
    // A node change does; the back-off (1 s after the first failure) applies.
    q.move_unschedulable(None, now);
    assert!(q.pop().is_none());
    assert!(q.flush(now + Duration::from_secs(1)));
    assert_eq!(q.pop().unwrap().attempts, 2);
}

#[test]
fn unschedulable_pods_are_retried_after_five_minutes() {
    let mut q = SchedulingQueue::new();
    let now = Instant::now();
    q.upsert(pod("p", 0), now);
    let p = q.pop().unwrap();
    q.unschedulable(&p.key, vec!["NodeResourcesFit"], now);
    assert!(q.flush(now + MAX_UNSCHEDULABLE_DURATION));
    assert!(q.pop().is_some());
}

#[test]
fn a_change_during_the_attempt_sends_the_pod_to_back_off_not_to_wait() {
    let mut q = SchedulingQueue::new();
    let now = Instant::now();
    q.upsert(pod("p", 0), now);
    let p = q.pop().unwrap();
    q.move_unschedulable(None, now);
    q.unschedulable(&p.key, vec!["NodeResourcesFit"], now);
    assert!(q.flush(now + Duration::from_secs(1)));
    assert!(q.pop().is_some());
}

#[test]
fn back_off_doubles_up_to_ten_seconds() {
    let mut q = SchedulingQueue::new();
    let now = Instant::now();
    q.upsert(pod("p", 0), now);
    for attempt in 1..=6u32 {
        let p = q.pop().unwrap();
        assert_eq!(p.attempts, attempt);
        q.error(&p.key, now);
        let wait = Duration::from_secs((1u64 << (attempt - 1)).min(10));
        assert!(
            !q.flush(now + wait - Duration::from_millis(1)),
            "attempt {attempt}"
        );
        assert!(q.flush(now + wait), "attempt {attempt}");
    }
}

#[test]
fn a_spec_change_wakes_an_unschedulable_pod_but_a_status_change_does_not() {
    let mut q = SchedulingQueue::new();
    let now = Instant::now();
    q.upsert(pod("p", 0), now);
    let p = q.pop().unwrap();
    q.unschedulable(&p.key, vec!["NodeResourcesFit"], now);
    let mut status_only = (*pod("p", 0)).clone();
    status_only.status = Some(Default::default());
    q.upsert(Arc::new(status_only), now + Duration::from_secs(5));
    assert!(q.pop().is_none());
    let mut relabelled = (*pod("p", 0)).clone();
    relabelled.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
    q.upsert(Arc::new(relabelled), now + Duration::from_secs(5));
    assert!(q.pop().is_some());
}

#[test]
fn deleted_pods_leave_the_queue() {
    let mut q = SchedulingQueue::new();
    let now = Instant::now();
    q.upsert(pod("p", 0), now);
    q.remove(&PodKey {
        namespace: "default".into(),
        name: "p".into(),
    });
    assert!(q.pop().is_none());
    assert!(q.is_empty());
}
