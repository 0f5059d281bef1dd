//! Node-pressure eviction (upstream `pkg/kubelet/eviction`): the signals
//! the node is watched on (memory.available, nodefs/imagefs available and
//! inodesFree, pid.available), the hard thresholds (`--eviction-hard`) and
//! the soft ones that must hold for a grace period first
//! (`--eviction-soft`, `--eviction-soft-grace-period`), the minimum a
//! signal must recover past its threshold (`--eviction-minimum-reclaim`),
//! the MemoryPressure/DiskPressure/PIDPressure conditions they raise, and
//! which pod is failed to reclaim the resource, with upstream's ranking and
//! messages. Local ephemeral storage limits (emptyDir `sizeLimit`,
//! container and pod `ephemeral-storage` limits) are enforced here too.
//!
//! Everything here is pure; [`manager`] measures and acts.

pub mod manager;
pub mod signals;

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use api::quantity::{Format, Quantity};
use k8s_openapi::api::core::v1::{NodeCondition, Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The pod status reason of an evicted pod and the reason of its event.
pub const REASON: &str = "Evicted";
/// Upstream's `scheduling.SystemCriticalPriority`: pods at or above it are
/// never evicted.
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// An eviction signal (upstream `evictionapi.Signal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    MemoryAvailable,
    NodeFsAvailable,
    NodeFsInodesFree,
    ImageFsAvailable,
    ImageFsInodesFree,
    PidAvailable,
}

/// The node condition a signal raises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    Memory,
    Disk,
    Pid,
}

impl Signal {
    pub const ALL: [Signal; 6] = [
        Signal::MemoryAvailable,
        Signal::NodeFsAvailable,
        Signal::NodeFsInodesFree,
        Signal::ImageFsAvailable,
        Signal::ImageFsInodesFree,
        Signal::PidAvailable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory.available",
            Signal::NodeFsAvailable => "nodefs.available",
            Signal::NodeFsInodesFree => "nodefs.inodesFree",
            Signal::ImageFsAvailable => "imagefs.available",
            Signal::ImageFsInodesFree => "imagefs.inodesFree",
            Signal::PidAvailable => "pid.available",
        }
    }

    pub fn condition(self) -> Condition {
        match self {
            Signal::MemoryAvailable => Condition::Memory,
            Signal::PidAvailable => Condition::Pid,
            _ => Condition::Disk,
        }
    }

    /// The resource reclaimed when the signal's threshold is met
    /// (upstream `signalToResource`).
    pub fn resource(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory",
            Signal::NodeFsAvailable | Signal::ImageFsAvailable => "ephemeral-storage",
            Signal::NodeFsInodesFree | Signal::ImageFsInodesFree => "inodes",
            Signal::PidAvailable => "pids",
        }
    }

    /// Bytes print as binary quantities (`12Ki`), counts as decimal ones.
    fn format(self) -> Format {
        match self.resource() {
            "memory" | "ephemeral-storage" => Format::BinarySI,
            _ => Format::DecimalSI,
        }
    }
}

/// A threshold's value: an absolute quantity or a share of the capacity.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Quantity(Quantity),
    Percentage(f64),
}

/// An eviction threshold: `<signal> < <value>`.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    pub signal: Signal,
    pub value: Value,
    /// How long the threshold must stay crossed before pods are evicted
    /// for it: zero for a hard threshold, a soft one's grace period.
    pub grace_period: Duration,
    /// How far past the threshold the signal must recover before a
    /// threshold that drove evictions counts as resolved.
    pub min_reclaim: Option<Value>,
}

impl Threshold {
    fn new(signal: Signal, value: Value) -> Threshold {
        Threshold {
            signal,
            value,
            grace_period: Duration::ZERO,
            min_reclaim: None,
        }
    }

    /// The threshold as a quantity of `capacity` (upstream
    /// `GetThresholdQuantity`).
    pub fn quantity(&self, capacity: i64) -> Quantity {
        self.value.quantity(capacity, self.signal.format())
    }

    /// A hard threshold evicts at once, and with grace period 0 (upstream
    /// `isHardEvictionThreshold`).
    pub fn is_hard(&self) -> bool {
        self.grace_period.is_zero()
    }
}

impl Value {
    fn quantity(&self, capacity: i64, format: Format) -> Quantity {
        match self {
            Value::Quantity(q) => q.clone(),
            Value::Percentage(p) => Quantity::new((capacity as f64 * p) as i64, format),
        }
    }
}

/// Upstream's default hard thresholds on Linux.
pub const DEFAULT_EVICTION_HARD: &str =
    "memory.available<100Mi,nodefs.available<10%,imagefs.available<15%,nodefs.inodesFree<5%,imagefs.inodesFree<5%";

/// Parses `--eviction-hard` (`memory.available<100Mi,nodefs.available<10%`).
/// As upstream, a flag given replaces the defaults as a whole, and `0%` or
/// `100%` switch a signal off.
pub fn parse_thresholds(flag: &str) -> Result<Vec<Threshold>, String> {
    let mut out: Vec<Threshold> = Vec::new();
    for statement in flag.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((signal, value)) = statement.split_once('<') else {
            return Err(format!(
                "invalid eviction threshold {statement:?}: expected <signal><<value>"
            ));
        };
        let signal = signal_named(signal.trim())?;
        let value = value.trim();
        let value = if let Some(p) = value.strip_suffix('%') {
            if value == "0%" || value == "100%" {
                out.retain(|t| t.signal != signal);
                continue;
            }
            let p: f64 = p
                .parse()
                .map_err(|_| format!("invalid eviction percentage threshold {value:?}"))?;
            if p < 0.0 {
                return Err(format!(
                    "eviction percentage threshold {} must be >= 0%: {value}",
                    signal.name()
                ));
            }
            if p > 100.0 {
                return Err(format!(
                    "eviction percentage threshold {} must be <= 100%: {value}",
                    signal.name()
                ));
            }
            Value::Percentage(p / 100.0)
        } else {
            let q = Quantity::parse(value).map_err(|e| format!("{value:?}: {e}"))?;
            if q.sign() <= 0 {
                return Err(format!(
                    "eviction threshold {} must be positive: {q}",
                    signal.name()
                ));
            }
            Value::Quantity(q)
        };
        out.retain(|t| t.signal != signal);
        out.push(Threshold::new(signal, value));
    }
    Ok(out)
}

fn signal_named(name: &str) -> Result<Signal, String> {
    Signal::ALL
        .into_iter()
        .find(|s| s.name() == name)
        .ok_or_else(|| format!("unsupported eviction signal {name}"))
}

/// The `<signal>=<value>` pairs of a kubelet map flag
/// (`memory.available=1m30s,nodefs.available=2m`), the last of a signal
/// winning.
fn signal_map(flag: &str) -> Result<Vec<(Signal, &str)>, String> {
    let mut out: Vec<(Signal, &str)> = Vec::new();
    for pair in flag.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((signal, value)) = pair.split_once('=') else {
            return Err(format!("malformed pair, expect string=string: {pair:?}"));
        };
        let signal = signal_named(signal.trim())?;
        out.retain(|(s, _)| *s != signal);
        out.push((signal, value.trim()));
    }
    Ok(out)
}

/// The thresholds of the kubelet's eviction flags (upstream
/// `ParseThresholdConfig`): the hard ones, then the soft ones, each of
/// which must have a grace period, with the minimum reclaims of their
/// signals.
pub fn threshold_config(
    hard: &str,
    soft: &str,
    soft_grace_period: &str,
    minimum_reclaim: &str,
) -> Result<Vec<Threshold>, String> {
    let mut out = parse_thresholds(hard)?;
    let mut soft = parse_thresholds(soft)?;
    let mut grace_periods = Vec::new();
    for (signal, value) in signal_map(soft_grace_period)? {
        let seconds = api::gofmt::parse_duration(value)?;
        if seconds < 0.0 {
            return Err(format!(
                "invalid eviction grace period specified: {value}, must be a positive value"
            ));
        }
        grace_periods.push((signal, Duration::from_secs_f64(seconds)));
    }
    for t in &mut soft {
        let Some((_, period)) = grace_periods.iter().find(|(s, _)| *s == t.signal) else {
            return Err(format!(
                "grace period must be specified for the soft eviction threshold {}",
                t.signal.name()
            ));
        };
        t.grace_period = *period;
    }
    out.extend(soft);
    for (signal, value) in signal_map(minimum_reclaim)? {
        let reclaim = if let Some(p) = value.strip_suffix('%') {
            let p: f64 = p
                .parse()
                .map_err(|_| format!("invalid percentage {value:?}"))?;
            if p <= 0.0 {
                return Err(format!(
                    "eviction percentage minimum reclaim {} must be positive: {value}",
                    signal.name()
                ));
            }
            Value::Percentage(p / 100.0)
        } else {
            let q = Quantity::parse(value).map_err(|e| format!("{value:?}: {e}"))?;
            if q.sign() < 0 {
                return Err(format!(
                    "negative eviction minimum reclaim specified for {}",
                    signal.name()
                ));
            }
            Value::Quantity(q)
        };
        for t in out.iter_mut().filter(|t| t.signal == signal) {
            t.min_reclaim = Some(reclaim.clone());
        }
    }
    Ok(out)
}

/// The eviction manager's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Hard and soft thresholds ([`threshold_config`]).
    pub thresholds: Vec<Threshold>,
    /// The longest grace period a pod evicted for a soft threshold gets
    /// (`--eviction-max-pod-grace-period`, 0).
    pub max_pod_grace_period: i64,
    /// How long a pressure condition stays after its signal last crossed
    /// (`--eviction-pressure-transition-period`, 5 min).
    pub pressure_transition_period: Duration,
    /// How often the signals are measured (10 s).
    pub monitoring_interval: Duration,
    /// An image first seen this recently is not deleted to reclaim disk
    /// (`--image-minimum-gc-age`, 2 min): a pod may be about to use it.
    pub image_minimum_gc_age: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            thresholds: parse_thresholds(DEFAULT_EVICTION_HARD)
                .expect("the default thresholds parse"),
            max_pod_grace_period: 0,
            pressure_transition_period: Duration::from_secs(300),
            monitoring_interval: Duration::from_secs(10),
            image_minimum_gc_age: Duration::from_secs(120),
        }
    }
}

/// What a signal measured: available and capacity in the signal's unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observation {
    pub available: i64,
    pub capacity: i64,
}

pub type Observations = BTreeMap<Signal, Observation>;

/// The thresholds `observations` cross (upstream `thresholdsMet`), memory
/// first (upstream `byEvictionPriority`). With `enforce_min_reclaim` a
/// threshold counts as crossed until its signal is its minimum reclaim
/// past it.
pub fn thresholds_met(
    thresholds: &[Threshold],
    observations: &Observations,
    enforce_min_reclaim: bool,
) -> Vec<Threshold> {
    let crossed = |t: &Threshold, o: &Observation| {
        let mut quantity = t.quantity(o.capacity);
        if let Some(reclaim) = t.min_reclaim.as_ref().filter(|_| enforce_min_reclaim) {
            quantity.add(&reclaim.quantity(o.capacity, t.signal.format()));
        }
        quantity.cmp_i64(o.available) == Ordering::Greater
    };
    let mut met: Vec<Threshold> = thresholds
        .iter()
        .filter(|t| observations.get(&t.signal).is_some_and(|o| crossed(t, o)))
        .cloned()
        .collect();
    met.sort_by_key(|t| t.signal != Signal::MemoryAvailable);
    met
}

/// What one sync of the eviction manager decided about its thresholds.
#[derive(Debug, Default, PartialEq)]
pub struct Crossed {
    /// Crossed now, or driving evictions before and not yet recovered by
    /// their minimum reclaim: these raise the pressure conditions.
    pub observed: Vec<Threshold>,
    /// Of those, the ones crossed for their whole grace period, memory
    /// first: these evict pods.
    pub evicting: Vec<Threshold>,
}

/// When each crossed threshold was first seen crossed, and which drove
/// evictions at the last sync (upstream `thresholdsFirstObservedAt`,
/// `thresholdsMet`).
#[derive(Debug, Default)]
pub struct ThresholdTracker {
    first_observed: Vec<(Threshold, std::time::Instant)>,
    evicting: Vec<Threshold>,
}

impl ThresholdTracker {
    /// Upstream `synchronize`'s bookkeeping for `observations` made at
    /// `now`.
    pub fn update(
        &mut self,
        thresholds: &[Threshold],
        observations: &Observations,
        now: std::time::Instant,
    ) -> Crossed {
        let mut observed = thresholds_met(thresholds, observations, false);
        for t in thresholds_met(&self.evicting, observations, true) {
            if !observed.contains(&t) {
                observed.push(t);
            }
        }
        self.first_observed = observed
            .iter()
            .map(|t| {
                let at = self.first_observed.iter().find(|(f, _)| f == t);
                (t.clone(), at.map_or(now, |(_, at)| *at))
            })
            .collect();
        let mut evicting: Vec<Threshold> = self
            .first_observed
            .iter()
            .filter(|(t, at)| now.duration_since(*at) >= t.grace_period)
            .map(|(t, _)| t.clone())
            .collect();
        evicting.sort_by_key(|t| t.signal != Signal::MemoryAvailable);
        self.evicting = evicting.clone();
        Crossed { observed, evicting }
    }
}

/// The grace period of a pod evicted for `threshold` (upstream
/// `synchronize`): none for a hard threshold; for a soft one the pod's
/// own, at most `max_pod_grace_period`.
pub fn eviction_grace_period(threshold: &Threshold, pod: &Pod, max_pod_grace_period: i64) -> i64 {
    if threshold.is_hard() {
        return 0;
    }
    let own = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30);
    own.min(max_pod_grace_period).max(0)
}

/// The node's pressure conditions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pressure {
    pub memory: bool,
    pub disk: bool,
    pub pid: bool,
}

impl Pressure {
    pub fn of(met: &[Threshold]) -> Pressure {
        let has = |c| met.iter().any(|t| t.signal.condition() == c);
        Pressure {
            memory: has(Condition::Memory),
            disk: has(Condition::Disk),
            pid: has(Condition::Pid),
        }
    }

    fn get(&self, c: Condition) -> bool {
        match c {
            Condition::Memory => self.memory,
            Condition::Disk => self.disk,
            Condition::Pid => self.pid,
        }
    }

    /// The three conditions as the kubelet's setters report them:
    /// (type, status, reason, message, the node event of that status).
    pub fn conditions(
        &self,
    ) -> [(&'static str, bool, &'static str, &'static str, &'static str); 3] {
        let pick = |on: bool, yes: [&'static str; 3], no: [&'static str; 3]| {
            if on {
                yes
            } else {
                no
            }
        };
        let [mr, mm, me] = pick(
            self.memory,
            [
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available",
                "NodeHasInsufficientMemory",
            ],
            [
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
                "NodeHasSufficientMemory",
            ],
        );
        let [dr, dm, de] = pick(
            self.disk,
            [
                "KubeletHasDiskPressure",
                "kubelet has disk pressure",
                "NodeHasDiskPressure",
            ],
            [
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
                "NodeHasNoDiskPressure",
            ],
        );
        let [pr, pm, pe] = pick(
            self.pid,
            [
                "KubeletHasInsufficientPID",
                "kubelet has insufficient PID available",
                "NodeHasInsufficientPID",
            ],
            [
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
                "NodeHasSufficientPID",
            ],
        );
        [
            ("MemoryPressure", self.memory, mr, mm, me),
            ("DiskPressure", self.disk, dr, dm, de),
            ("PIDPressure", self.pid, pr, pm, pe),
        ]
    }

    /// Sets the three pressure conditions in `conditions` (keeping the
    /// transition time of a condition whose status is unchanged in `old`);
    /// returns the node events of the conditions that changed status.
    pub fn apply(
        &self,
        conditions: &mut [NodeCondition],
        old: &[NodeCondition],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<&'static str> {
        let mut events = Vec::new();
        for (type_, on, reason, message, event) in self.conditions() {
            let status = if on { "True" } else { "False" };
            let before = old.iter().find(|c| c.type_ == type_);
            if before.is_some_and(|c| c.status != status) {
                events.push(event);
            }
            for c in conditions.iter_mut().filter(|c| c.type_ == type_) {
                c.status = status.into();
                c.reason = Some(reason.into());
                c.message = Some(message.into());
                c.last_transition_time = before
                    .filter(|b| b.status == status)
                    .and_then(|b| b.last_transition_time.clone())
                    .or(Some(Time(now)));
            }
        }
        events
    }

    /// Whether `current` already says what [`Pressure::apply`] would set
    /// (times aside).
    pub fn current(&self, current: &[NodeCondition]) -> bool {
        self.conditions()
            .iter()
            .all(|(type_, on, reason, message, _)| {
                current.iter().any(|c| {
                    c.type_ == *type_
                        && c.status == if *on { "True" } else { "False" }
                        && c.reason.as_deref() == Some(*reason)
                        && c.message.as_deref() == Some(*message)
                })
            })
    }
}

/// Keeps a pressure condition for the transition period after its signal
/// last crossed (upstream `nodeConditionsObservedSince`), so that the
/// condition does not flap.
#[derive(Debug, Default)]
pub struct PressureTracker {
    last_observed: HashMap<&'static str, std::time::Instant>,
}

impl PressureTracker {
    pub fn update(
        &mut self,
        observed: Pressure,
        now: std::time::Instant,
        period: Duration,
    ) -> Pressure {
        let mut out = Pressure::default();
        for (c, name) in [
            (Condition::Memory, "memory"),
            (Condition::Disk, "disk"),
            (Condition::Pid, "pid"),
        ] {
            if observed.get(c) {
                self.last_observed.insert(name, now);
            }
            let on = self
                .last_observed
                .get(name)
                .is_some_and(|t| now.duration_since(*t) < period || observed.get(c));
            match c {
                Condition::Memory => out.memory = on,
                Condition::Disk => out.disk = on,
                Condition::Pid => out.pid = on,
            }
        }
        out
    }
}

/// What one container of a pod uses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerUsage {
    pub name: String,
    pub memory_working_set: Option<u64>,
    /// Writable layer bytes.
    pub rootfs: Option<u64>,
    /// Log bytes.
    pub logs: Option<u64>,
}

/// What a pod uses (upstream's `PodStats` as far as eviction reads it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodUsage {
    pub containers: Vec<ContainerUsage>,
    /// Bytes used by each of the pod's disk-backed emptyDir volumes.
    pub volumes: BTreeMap<String, u64>,
}

impl PodUsage {
    pub fn memory(&self) -> i64 {
        self.containers
            .iter()
            .filter_map(|c| c.memory_working_set)
            .sum::<u64>() as i64
    }

    fn container_disk(c: &ContainerUsage) -> u64 {
        c.rootfs.unwrap_or(0) + c.logs.unwrap_or(0)
    }

    /// Containers' writable layers and logs plus local volumes.
    pub fn ephemeral_storage(&self) -> i64 {
        let containers: u64 = self.containers.iter().map(Self::container_disk).sum();
        (containers + self.volumes.values().sum::<u64>()) as i64
    }
}

pub type Stats = HashMap<String, PodUsage>;

fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

fn parse(q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity) -> Option<Quantity> {
    Quantity::parse(&q.0).ok()
}

fn container_quantity(
    c: &k8s_openapi::api::core::v1::Container,
    limits: bool,
    resource: &str,
) -> Option<Quantity> {
    let r = c.resources.as_ref()?;
    let map = if limits {
        r.limits.as_ref()
    } else {
        r.requests.as_ref()
    };
    map?.get(resource).and_then(parse)
}

/// The pod's request of `resource`: its containers' sum, at least each
/// init container's, plus the overhead (upstream `GetResourceRequestQuantity`).
pub fn pod_request(pod: &Pod, resource: &str) -> i64 {
    let Some(spec) = pod.spec.as_ref() else {
        return 0;
    };
    let value = |q: Option<Quantity>| q.map(|q| q.value()).unwrap_or(0);
    let mut sum: i64 = spec
        .containers
        .iter()
        .map(|c| value(container_quantity(c, false, resource)))
        .sum();
    for c in spec.init_containers.iter().flatten() {
        sum = sum.max(value(container_quantity(c, false, resource)));
    }
    sum + value(
        spec.overhead
            .as_ref()
            .and_then(|o| o.get(resource))
            .and_then(parse),
    )
}

/// Critical pods are never evicted: static and mirror pods and pods at
/// system-critical priority (upstream `IsCriticalPod`).
pub fn is_critical(pod: &Pod) -> bool {
    let annotations = pod.metadata.annotations.as_ref();
    let annotation = |k: &str| annotations.and_then(|a| a.get(k)).map(String::as_str);
    let static_pod = annotation(super::static_pods::CONFIG_SOURCE).is_some_and(|s| s != "api");
    static_pod
        || annotation(super::static_pods::CONFIG_MIRROR).is_some()
        || priority(pod) >= SYSTEM_CRITICAL_PRIORITY
}

/// true before false (upstream `cmpBool`).
fn cmp_bool(a: bool, b: bool) -> Ordering {
    b.cmp(&a)
}

/// Orders `pods` for eviction when `signal`'s threshold is met, the first
/// to go first (upstream `rankMemoryPressure`, `rankDiskPressureFunc`,
/// `rankPIDPressure`): pods without stats, then pods using more than they
/// request, then lower priority, then larger use above the request.
pub fn rank(pods: &mut [&Pod], signal: Signal, stats: &Stats) {
    let usage = |p: &Pod| -> Option<i64> {
        let s = stats.get(uid(p))?;
        Some(match signal.resource() {
            "memory" => s.memory(),
            "ephemeral-storage" => s.ephemeral_storage(),
            _ => 0,
        })
    };
    let request = |p: &Pod| match signal.resource() {
        "memory" => pod_request(p, "memory"),
        "ephemeral-storage" => pod_request(p, "ephemeral-storage"),
        _ => 0,
    };
    pods.sort_by(|a, b| {
        let (ua, ub) = (usage(a), usage(b));
        let (Some(ua), Some(ub)) = (ua, ub) else {
            return cmp_bool(ua.is_none(), ub.is_none()).then(priority(a).cmp(&priority(b)));
        };
        if signal == Signal::PidAvailable {
            return priority(a).cmp(&priority(b));
        }
        let (ra, rb) = (request(a), request(b));
        cmp_bool(ua > ra, ub > rb)
            .then(priority(a).cmp(&priority(b)))
            .then((ub - rb).cmp(&(ua - ra)))
    });
}

fn binary(bytes: i64) -> String {
    Quantity::new(bytes, Format::BinarySI).to_string()
}

/// The message of an eviction for `threshold` (upstream `evictionMessage`):
/// "The node was low on resource: memory. Threshold quantity: 100Mi,
/// available: 12Ki. Container x was using 20Mi, request is 0, has larger
/// consumption of memory. "
pub fn eviction_message(
    pod: &Pod,
    threshold: &Threshold,
    observation: &Observation,
    stats: &Stats,
) -> String {
    let resource = threshold.signal.resource();
    let mut message = format!("The node was low on resource: {resource}. ");
    let quantity = threshold.quantity(observation.capacity);
    let available = Quantity::new(observation.available, threshold.signal.format());
    message += &format!("Threshold quantity: {quantity}, available: {available}. ");
    let Some(usage) = stats.get(uid(pod)) else {
        return message;
    };
    let containers = pod.spec.as_ref().map(|s| s.containers.as_slice());
    for c in containers.unwrap_or_default() {
        let Some(cu) = usage.containers.iter().find(|u| u.name == c.name) else {
            continue;
        };
        let used = match resource {
            "memory" => cu.memory_working_set,
            "ephemeral-storage" => match (cu.rootfs, cu.logs) {
                (Some(r), Some(l)) => Some(r + l),
                _ => None,
            },
            _ => None,
        };
        let request = container_quantity(c, false, resource).unwrap_or_else(Quantity::zero);
        if let Some(used) = used {
            if request.cmp_i64(used as i64) == Ordering::Less {
                message += &format!(
                    "Container {} was using {}, request is {request}, has larger consumption of {resource}. ",
                    c.name,
                    binary(used as i64)
                );
            }
        }
    }
    message
}

/// Why the pod breaks one of its local ephemeral storage limits, if it
/// does (upstream `localStorageEviction`: an emptyDir over its sizeLimit,
/// the pod over the sum of its containers' limits, a container over its
/// limit, checked in that order).
pub fn local_storage_violation(pod: &Pod, usage: &PodUsage) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    for v in spec.volumes.iter().flatten() {
        let Some(limit) = v
            .empty_dir
            .as_ref()
            .and_then(|e| e.size_limit.as_ref())
            .and_then(parse)
        else {
            continue;
        };
        let used = usage.volumes.get(&v.name);
        if limit.sign() > 0 && used.is_some_and(|u| limit.cmp_i64(*u as i64) == Ordering::Less) {
            return Some(format!(
                "Usage of EmptyDir volume {:?} exceeds the limit {:?}. ",
                v.name,
                limit.to_string()
            ));
        }
    }
    let limits: Vec<Quantity> = spec
        .containers
        .iter()
        .filter_map(|c| container_quantity(c, true, "ephemeral-storage"))
        .collect();
    if !limits.is_empty() {
        let mut total = Quantity::zero();
        for l in &limits {
            total.add(l);
        }
        if total.cmp_i64(usage.ephemeral_storage()) == Ordering::Less {
            return Some(format!(
                "Pod ephemeral local storage usage exceeds the total limit of containers {total}. "
            ));
        }
    }
    for cu in &usage.containers {
        let Some(limit) = spec
            .containers
            .iter()
            .find(|c| c.name == cu.name)
            .and_then(|c| container_quantity(c, true, "ephemeral-storage"))
            .filter(|l| !l.is_zero())
        else {
            continue;
        };
        if limit.cmp_i64(PodUsage::container_disk(cu) as i64) == Ordering::Less {
            return Some(format!(
                "Container {} exceeded its local ephemeral storage limit {:?}. ",
                cu.name,
                limit.to_string()
            ));
        }
    }
    None
}

/// Whether a new pod may start on a node under `pressure` (upstream
/// `managerImpl.Admit`): `None` admits it, else the rejection's message
/// ("The node had condition: [MemoryPressure]. "). Critical pods always
/// start; under memory pressure alone, pods that are not BestEffort or
/// that tolerate the memory-pressure taint start too.
pub fn admit(pod: &Pod, pressure: &Pressure) -> Option<String> {
    let conditions: Vec<&str> = pressure
        .conditions()
        .iter()
        .filter(|c| c.1)
        .map(|c| c.0)
        .collect();
    if conditions.is_empty() || is_critical(pod) {
        return None;
    }
    if conditions == ["MemoryPressure"] {
        if super::container_config::qos_class(pod) != "BestEffort" {
            return None;
        }
        let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.as_ref());
        let taint = k8s_openapi::api::core::v1::Taint {
            key: "node.kubernetes.io/memory-pressure".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if tolerations
            .into_iter()
            .flatten()
            .any(|t| controllers::node_lifecycle::tolerates(t, &taint))
        {
            return None;
        }
    }
    Some(format!(
        "The node had condition: [{}]. ",
        conditions.join(" ")
    ))
}

/// The images no container uses (upstream image GC's
/// `DeleteUnusedImages`), given the containers' image names and refs.
pub fn unused_images<'a>(
    images: &'a [super::images::ListedImage],
    container_images: &[&str],
) -> Vec<&'a super::images::ListedImage> {
    images
        .iter()
        .filter(|i| {
            !container_images.iter().any(|c| {
                *c == i.id
                    || i.id.strip_prefix("sha256:") == Some(*c)
                    || i.repo_tags.iter().any(|t| t == c)
                    || i.repo_digests.iter().any(|d| d == c)
            })
        })
        .collect()
}

/// What the worker writes into an evicted pod's status (upstream
/// `evictPod`'s status function): phase Failed, reason Evicted, the
/// message, and the DisruptionTarget condition.
/// A pod rejected at admission (`disruption` false) gets only its QoS
/// class, phase Failed, reason Evicted and "Pod was rejected: <message>"
/// (upstream `rejectPod`).
pub fn set_evicted(
    status: &mut PodStatus,
    message: &str,
    now: chrono::DateTime<chrono::Utc>,
    disruption: bool,
) {
    if !disruption {
        *status = PodStatus {
            qos_class: status.qos_class.take(),
            phase: Some("Failed".into()),
            reason: Some(REASON.into()),
            message: Some(format!("Pod was rejected: {message}")),
            ..Default::default()
        };
        return;
    }
    status.phase = Some("Failed".into());
    status.reason = Some(REASON.into());
    status.message = Some(message.into());
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    conditions.retain(|c| c.type_ != "DisruptionTarget");
    conditions.push(PodCondition {
        type_: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some("TerminationByKubelet".into()),
        message: Some(message.into()),
        last_transition_time: Some(Time(now)),
        ..Default::default()
    });
}

#[cfg(test)]
mod tests;
