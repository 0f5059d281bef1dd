use super::*;
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, PodSpec, ResourceRequirements, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn q(s: &str) -> Quantity {
    Quantity::parse(s).unwrap()
}

fn resources(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> ResourceRequirements {
    let map = |v: &[(&str, &str)]| {
        (!v.is_empty()).then(|| {
            v.iter()
                .map(|(k, v)| (k.to_string(), ApiQuantity(v.to_string())))
                .collect()
        })
    };
    ResourceRequirements {
        requests: map(requests),
        limits: map(limits),
        ..Default::default()
    }
}

fn pod(name: &str, priority: i32, containers: Vec<Container>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            uid: Some(name.into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            priority: Some(priority),
            containers,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container(name: &str, r: ResourceRequirements) -> Container {
    Container {
        name: name.into(),
        resources: Some(r),
        ..Default::default()
    }
}

fn memory_usage(name: &str, bytes: u64) -> PodUsage {
    PodUsage {
        containers: vec![ContainerUsage {
            name: name.into(),
            memory_working_set: Some(bytes),
            ..Default::default()
        }],
        ..Default::default()
    }
}

const MI: u64 = 1 << 20;

#[test]
fn thresholds_parse_as_the_kubelet_flag() {
    let t = parse_thresholds("memory.available<100Mi,nodefs.available<10%").unwrap();
    assert_eq!(
        t,
        [
            Threshold::new(Signal::MemoryAvailable, Value::Quantity(q("100Mi"))),
            Threshold::new(Signal::NodeFsAvailable, Value::Percentage(0.1)),
        ]
    );
    let defaults = Config::default().thresholds;
    let names: Vec<&str> = defaults.iter().map(|t| t.signal.name()).collect();
    assert_eq!(
        names,
        [
            "memory.available",
            "nodefs.available",
            "imagefs.available",
            "nodefs.inodesFree",
            "imagefs.inodesFree"
        ]
    );
    // 0% switches a signal off; the last statement of a signal wins.
    assert_eq!(parse_thresholds("nodefs.available<0%").unwrap(), []);
    assert_eq!(
        parse_thresholds("pid.available<10,pid.available<20").unwrap()[0].value,
        Value::Quantity(q("20"))
    );
    assert_eq!(
        parse_thresholds("memory.free<1Mi").unwrap_err(),
        "unsupported eviction signal memory.free"
    );
    assert_eq!(
        parse_thresholds("nodefs.available<120%").unwrap_err(),
        "eviction percentage threshold nodefs.available must be <= 100%: 120%"
    );
    assert_eq!(
        parse_thresholds("memory.available<0").unwrap_err(),
        "eviction threshold memory.available must be positive: 0"
    );
    assert!(parse_thresholds("memory.available>1Mi").is_err());
}

#[test]
fn a_percentage_threshold_is_a_share_of_the_capacity() {
    let t = &parse_thresholds("nodefs.available<10%").unwrap()[0];
    assert_eq!(t.quantity(10 * 1024 * 1024).to_string(), "1Mi");
    let obs = |available| {
        Observations::from([(
            Signal::NodeFsAvailable,
            Observation {
                available,
                capacity: 1000,
            },
        )])
    };
    assert_eq!(
        thresholds_met(std::slice::from_ref(t), &obs(99), false).len(),
        1
    );
    assert!(thresholds_met(std::slice::from_ref(t), &obs(100), false).is_empty());
    // A signal that was not measured is not met.
    assert!(thresholds_met(std::slice::from_ref(t), &Observations::new(), false).is_empty());
}

#[test]
fn memory_is_reclaimed_before_disk() {
    let t = parse_thresholds("nodefs.available<50%,memory.available<1Gi").unwrap();
    let low = Observation {
        available: 1,
        capacity: 1 << 40,
    };
    let obs = Observations::from([
        (Signal::NodeFsAvailable, low),
        (Signal::MemoryAvailable, low),
    ]);
    let met = thresholds_met(&t, &obs, false);
    assert_eq!(met[0].signal, Signal::MemoryAvailable);
    assert_eq!(
        Pressure::of(&met),
        Pressure {
            memory: true,
            disk: true,
            pid: false
        }
    );
}

#[test]
fn soft_thresholds_take_their_grace_periods_and_minimum_reclaims_as_the_kubelet_flags() {
    let t = threshold_config(
        "memory.available<100Mi",
        "memory.available<1Gi,nodefs.available<20%",
        "memory.available=1m30s,nodefs.available=2m",
        "memory.available=500Mi,nodefs.available=5%",
    )
    .unwrap();
    let summary: Vec<(&str, Duration, Option<Value>)> = t
        .iter()
        .map(|t| (t.signal.name(), t.grace_period, t.min_reclaim.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "memory.available",
                Duration::ZERO,
                Some(Value::Quantity(q("500Mi")))
            ),
            (
                "memory.available",
                Duration::from_secs(90),
                Some(Value::Quantity(q("500Mi")))
            ),
            (
                "nodefs.available",
                Duration::from_secs(120),
                Some(Value::Percentage(0.05))
            ),
        ]
    );
    assert!(t[0].is_hard() && !t[1].is_hard());
    assert_eq!(
        threshold_config("", "memory.available<1Gi", "", "").unwrap_err(),
        "grace period must be specified for the soft eviction threshold memory.available"
    );
    assert_eq!(
        threshold_config("", "", "memory.free=1m", "").unwrap_err(),
        "unsupported eviction signal memory.free"
    );
    assert_eq!(
        threshold_config("", "memory.available<1Gi", "memory.available=-1m", "").unwrap_err(),
        "invalid eviction grace period specified: -1m, must be a positive value"
    );
    assert_eq!(
        threshold_config("", "memory.available<1Gi", "memory.available=soon", "").unwrap_err(),
        "time: invalid duration \"soon\""
    );
    assert_eq!(
        threshold_config("", "", "", "nodefs.available=0%").unwrap_err(),
        "eviction percentage minimum reclaim nodefs.available must be positive: 0%"
    );
    assert_eq!(
        threshold_config("", "", "", "memory.available=-1Mi").unwrap_err(),
        "negative eviction minimum reclaim specified for memory.available"
    );
    assert!(threshold_config("", "", "memory.available", "").is_err());
    // No soft flags: the hard thresholds alone.
    assert_eq!(
        threshold_config(DEFAULT_EVICTION_HARD, "", "", "").unwrap(),
        Config::default().thresholds
    );
}

fn memory_available(bytes: i64) -> Observations {
    Observations::from([(
        Signal::MemoryAvailable,
        Observation {
            available: bytes,
            capacity: 8 << 30,
        },
    )])
}

#[test]
fn a_soft_threshold_raises_pressure_at_once_and_evicts_after_its_grace_period() {
    let t = threshold_config("", "memory.available<1Gi", "memory.available=30s", "").unwrap();
    let mut tracker = ThresholdTracker::default();
    let start = std::time::Instant::now();
    let low = memory_available(512 << 20);
    let crossed = tracker.update(&t, &low, start);
    assert_eq!(crossed.observed, t);
    assert!(crossed.evicting.is_empty());
    assert!(Pressure::of(&crossed.observed).memory);
    let crossed = tracker.update(&t, &low, start + Duration::from_secs(29));
    assert!(crossed.evicting.is_empty());
    let crossed = tracker.update(&t, &low, start + Duration::from_secs(30));
    assert_eq!(crossed.evicting, t);
    // Recovered, then crossed again: the grace period starts over.
    let crossed = tracker.update(
        &t,
        &memory_available(2 << 30),
        start + Duration::from_secs(31),
    );
    assert_eq!(crossed, Crossed::default());
    let crossed = tracker.update(&t, &low, start + Duration::from_secs(40));
    assert!(crossed.evicting.is_empty());
    let crossed = tracker.update(&t, &low, start + Duration::from_secs(70));
    assert_eq!(crossed.evicting, t);
}

#[test]
fn a_threshold_that_evicted_holds_until_the_signal_recovers_by_its_minimum_reclaim() {
    let t = threshold_config("memory.available<1Gi", "", "", "memory.available=512Mi").unwrap();
    let mut tracker = ThresholdTracker::default();
    let now = std::time::Instant::now();
    assert_eq!(
        tracker
            .update(&t, &memory_available(900 << 20), now)
            .evicting,
        t
    );
    // Above the threshold but within the minimum reclaim: still evicting.
    let crossed = tracker.update(&t, &memory_available(1200 << 20), now);
    assert_eq!(crossed.evicting, t);
    assert!(Pressure::of(&crossed.observed).memory);
    // Past threshold + minimum reclaim: resolved.
    let crossed = tracker.update(&t, &memory_available(1600 << 20), now);
    assert_eq!(crossed, Crossed::default());
    // A threshold that never evicted does not wait for its minimum reclaim.
    let mut fresh = ThresholdTracker::default();
    assert_eq!(
        fresh.update(&t, &memory_available(1200 << 20), now),
        Crossed::default()
    );
}

#[test]
fn a_pod_evicted_for_a_soft_threshold_gets_its_grace_period_up_to_the_maximum() {
    let hard = &parse_thresholds("memory.available<1Gi").unwrap()[0];
    let soft = &threshold_config("", "memory.available<1Gi", "memory.available=1m", "").unwrap()[0];
    let mut p = pod("p", 0, vec![]);
    assert_eq!(eviction_grace_period(hard, &p, 60), 0);
    // The pod's default of 30 s, capped by the maximum.
    assert_eq!(eviction_grace_period(soft, &p, 0), 0);
    assert_eq!(eviction_grace_period(soft, &p, 10), 10);
    assert_eq!(eviction_grace_period(soft, &p, 60), 30);
    p.spec.as_mut().unwrap().termination_grace_period_seconds = Some(5);
    assert_eq!(eviction_grace_period(soft, &p, 60), 5);
    assert_eq!(eviction_grace_period(soft, &p, -1), 0);
}

#[test]
fn memory_ranking_puts_pods_over_their_requests_first_then_priority_then_usage() {
    let best_effort_small = pod("be-small", 0, vec![container("c", resources(&[], &[]))]);
    let best_effort_big = pod("be-big", 0, vec![container("c", resources(&[], &[]))]);
    let within = pod(
        "within",
        0,
        vec![container("c", resources(&[("memory", "100Mi")], &[]))],
    );
    let high = pod("high", 1000, vec![container("c", resources(&[], &[]))]);
    let over = pod(
        "over",
        0,
        vec![container("c", resources(&[("memory", "10Mi")], &[]))],
    );
    let stats: Stats = [
        ("be-small", memory_usage("c", 5 * MI)),
        ("be-big", memory_usage("c", 50 * MI)),
        ("within", memory_usage("c", 90 * MI)),
        ("high", memory_usage("c", 500 * MI)),
        ("over", memory_usage("c", 30 * MI)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let no_stats = pod("no-stats", 5000, vec![]);
    let mut pods = vec![
        &within,
        &high,
        &best_effort_small,
        &over,
        &best_effort_big,
        &no_stats,
    ];
    rank(&mut pods, Signal::MemoryAvailable, &stats);
    let order: Vec<&str> = pods
        .iter()
        .map(|p| p.metadata.name.as_deref().unwrap())
        .collect();
    assert_eq!(
        order,
        ["no-stats", "be-big", "over", "be-small", "high", "within"]
    );
}

#[test]
fn disk_ranking_is_by_disk_usage_above_requests() {
    let a = pod("a", 0, vec![container("c", resources(&[], &[]))]);
    let b = pod("b", 0, vec![container("c", resources(&[], &[]))]);
    let usage = |rootfs: u64, volume: u64| PodUsage {
        containers: vec![ContainerUsage {
            name: "c".into(),
            rootfs: Some(rootfs),
            logs: Some(0),
            ..Default::default()
        }],
        volumes: [("data".to_string(), volume)].into(),
    };
    let stats: Stats = [
        ("a".to_string(), usage(MI, 0)),
        ("b".to_string(), usage(MI, MI)),
    ]
    .into();
    let mut pods = vec![&a, &b];
    rank(&mut pods, Signal::NodeFsAvailable, &stats);
    assert_eq!(pods[0].metadata.name.as_deref(), Some("b"));
}

#[test]
fn the_eviction_message_names_the_threshold_and_containers_over_their_requests() {
    let p = pod(
        "p",
        0,
        vec![
            container("x", resources(&[], &[])),
            container("y", resources(&[("memory", "1Gi")], &[])),
        ],
    );
    let usage = PodUsage {
        containers: vec![
            ContainerUsage {
                name: "x".into(),
                memory_working_set: Some(20 * MI),
                ..Default::default()
            },
            ContainerUsage {
                name: "y".into(),
                memory_working_set: Some(MI),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let stats: Stats = [("p".to_string(), usage)].into();
    let t = &parse_thresholds("memory.available<100Mi").unwrap()[0];
    let obs = Observation {
        available: 12 * 1024,
        capacity: 1 << 30,
    };
    assert_eq!(
        eviction_message(&p, t, &obs, &stats),
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 12Ki. \
         Container x was using 20Mi, request is 0, has larger consumption of memory. "
    );
}

#[test]
fn local_storage_limits_are_checked_emptydir_then_pod_then_container() {
    let mut p = pod(
        "p",
        0,
        vec![
            container("small", resources(&[], &[("ephemeral-storage", "1Mi")])),
            container("big", resources(&[], &[("ephemeral-storage", "100Mi")])),
        ],
    );
    p.spec.as_mut().unwrap().volumes = Some(vec![Volume {
        name: "scratch".into(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(ApiQuantity("1Mi".into())),
            ..Default::default()
        }),
        ..Default::default()
    }]);
    let usage = |small: u64, volume: u64| PodUsage {
        containers: vec![
            ContainerUsage {
                name: "small".into(),
                rootfs: Some(small),
                logs: Some(4096),
                ..Default::default()
            },
            ContainerUsage {
                name: "big".into(),
                rootfs: Some(0),
                logs: Some(0),
                ..Default::default()
            },
        ],
        volumes: [("scratch".to_string(), volume)].into(),
    };
    assert_eq!(local_storage_violation(&p, &usage(0, MI)), None);
    assert_eq!(
        local_storage_violation(&p, &usage(0, 2 * MI)).as_deref(),
        Some("Usage of EmptyDir volume \"scratch\" exceeds the limit \"1Mi\". ")
    );
    assert_eq!(
        local_storage_violation(&p, &usage(2 * MI, 0)).as_deref(),
        Some("Container small exceeded its local ephemeral storage limit \"1Mi\". ")
    );
    assert_eq!(
        local_storage_violation(&p, &usage(200 * MI, 0)).as_deref(),
        Some("Pod ephemeral local storage usage exceeds the total limit of containers 101Mi. ")
    );
}

#[test]
fn static_mirror_and_system_critical_pods_are_critical() {
    let mut p = pod("p", 0, vec![]);
    assert!(!is_critical(&p));
    p.spec.as_mut().unwrap().priority = Some(SYSTEM_CRITICAL_PRIORITY);
    assert!(is_critical(&p));
    let mut m = pod("m", 0, vec![]);
    m.metadata.annotations =
        Some([("kubernetes.io/config.mirror".to_string(), "abc".to_string())].into());
    assert!(is_critical(&m));
}

#[test]
fn pressure_conditions_use_the_kubelet_words_and_stay_for_the_transition_period() {
    let t0 = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    let healthy = crate::simulated::nodes::conditions(&[], t0);
    let mut conditions = healthy.clone();
    let pressure = Pressure {
        memory: true,
        ..Default::default()
    };
    assert!(!pressure.current(&healthy));
    let events = pressure.apply(&mut conditions, &healthy, t0 + chrono::Duration::seconds(1));
    assert_eq!(events, ["NodeHasInsufficientMemory"]);
    let memory = conditions
        .iter()
        .find(|c| c.type_ == "MemoryPressure")
        .unwrap();
    assert_eq!(memory.status, "True");
    assert_eq!(
        memory.reason.as_deref(),
        Some("KubeletHasInsufficientMemory")
    );
    assert_eq!(
        memory.message.as_deref(),
        Some("kubelet has insufficient memory available")
    );
    assert!(pressure.current(&conditions));
    let disk = conditions
        .iter()
        .find(|c| c.type_ == "DiskPressure")
        .unwrap();
    assert_eq!(disk.last_transition_time.as_ref().unwrap().0, t0);

    let mut tracker = PressureTracker::default();
    let start = std::time::Instant::now();
    let period = Duration::from_secs(30);
    assert!(tracker.update(pressure, start, period).memory);
    let later = start + Duration::from_secs(10);
    assert!(tracker.update(Pressure::default(), later, period).memory);
    let after = start + Duration::from_secs(31);
    assert!(!tracker.update(Pressure::default(), after, period).memory);
}

#[test]
fn an_evicted_status_is_failed_with_the_disruption_condition() {
    let mut status = PodStatus {
        phase: Some("Running".into()),
        ..Default::default()
    };
    let t = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    set_evicted(&mut status, "m. ", t, true);
    assert_eq!(status.phase.as_deref(), Some("Failed"));
    assert_eq!(status.reason.as_deref(), Some("Evicted"));
    let c = &status.conditions.as_ref().unwrap()[0];
    assert_eq!(c.type_, "DisruptionTarget");
    assert_eq!(c.reason.as_deref(), Some("TerminationByKubelet"));

    let mut rejected = PodStatus {
        qos_class: Some("BestEffort".into()),
        container_statuses: Some(vec![Default::default()]),
        ..Default::default()
    };
    set_evicted(&mut rejected, "m. ", t, false);
    assert_eq!(
        rejected,
        PodStatus {
            qos_class: Some("BestEffort".into()),
            phase: Some("Failed".into()),
            reason: Some("Evicted".into()),
            message: Some("Pod was rejected: m. ".into()),
            ..Default::default()
        }
    );
}

#[test]
fn the_tasks_count_comes_from_loadavg() {
    assert_eq!(
        signals::parse_loadavg_tasks("0.00 0.01 0.05 1/234 5678\n"),
        Some(234)
    );
    let pids = signals::pids().unwrap();
    assert!(pids.available > 0 && pids.available < pids.capacity);
    let (bytes, inodes) = signals::filesystem(std::path::Path::new("/")).unwrap();
    assert!(bytes.available <= bytes.capacity && inodes.capacity > 0);
}

#[test]
fn under_memory_pressure_only_best_effort_pods_without_the_toleration_are_rejected() {
    let memory = Pressure {
        memory: true,
        ..Default::default()
    };
    let best_effort = pod("be", 0, vec![container("c", resources(&[], &[]))]);
    assert_eq!(admit(&best_effort, &Pressure::default()), None);
    assert_eq!(
        admit(&best_effort, &memory).as_deref(),
        Some("The node had condition: [MemoryPressure]. ")
    );
    let burstable = pod(
        "b",
        0,
        vec![container("c", resources(&[("memory", "1Mi")], &[]))],
    );
    assert_eq!(admit(&burstable, &memory), None);
    let mut tolerating = best_effort.clone();
    tolerating.spec.as_mut().unwrap().tolerations =
        Some(vec![k8s_openapi::api::core::v1::Toleration {
            key: Some("node.kubernetes.io/memory-pressure".into()),
            operator: Some("Exists".into()),
            effect: Some("NoSchedule".into()),
            ..Default::default()
        }]);
    assert_eq!(admit(&tolerating, &memory), None);
    let disk = Pressure {
        disk: true,
        ..Default::default()
    };
    assert_eq!(
        admit(&burstable, &disk).as_deref(),
        Some("The node had condition: [DiskPressure]. ")
    );
}

#[test]
fn images_no_container_names_are_unused() {
    use crate::agent::images::ListedImage;
    let image = |id: &str, tag: &str, digest: &str| ListedImage {
        id: id.into(),
        repo_tags: vec![tag.into()],
        repo_digests: vec![digest.into()],
        size: 1,
    };
    let images = [
        image("sha256:a", "r/a:1", "r/a@sha256:ma"),
        image("sha256:b", "r/b:1", "r/b@sha256:mb"),
        image("sha256:c", "r/c:1", "r/c@sha256:mc"),
        image("sha256:d", "r/d:1", "r/d@sha256:md"),
    ];
    let unused = unused_images(&images, &["r/a:1", "r/b@sha256:mb", "sha256:c"]);
    let ids: Vec<&str> = unused.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["sha256:d"]);
}
