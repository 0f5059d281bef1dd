//! The API server's own Prometheus metrics, served at `/metrics` for
//! scrapers, as upstream's kube-apiserver serves them:
//! `apiserver_request_total` and `apiserver_request_duration_seconds` with
//! upstream's labels and buckets, and the process collector's
//! `process_*` series.
//!
//! Recording is one short lock per request; rendering is the Prometheus
//! text format ([`Requests::render`], pure over what was recorded).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::request::{ResourceRequest, Verb};

/// Upstream's buckets of `apiserver_request_duration_seconds`.
const BUCKETS: [f64; 24] = [
    0.005,
    0.025,
    0.05,
    0.1,
    0.2,
    0.4,
    0.6,
    0.8,
    1.0,
    1.25,
    1.5,
    2.0,
    3.0,
    4.0,
    5.0,
    6.0,
    8.0,
    10.0,
    15.0,
    20.0,
    30.0,
    45.0,
    60.0,
    f64::INFINITY,
];

/// What one request is counted under (upstream's labels but `code`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct Labels {
    pub verb: &'static str,
    pub dry_run: bool,
    pub group: &'static str,
    pub version: &'static str,
    pub resource: &'static str,
    pub subresource: String,
    pub scope: &'static str,
}

impl Labels {
    /// Upstream's labels of a resource request: the HTTP verb cleaned as
    /// upstream's `CleanVerb` does (LIST, WATCH, APPLY, CONNECT) and the
    /// scope (`resource`, `namespace` or `cluster`).
    pub fn of(rr: &ResourceRequest, method: &http::Method, apply: bool, dry_run: bool) -> Labels {
        let sub = rr.subresource.as_deref().unwrap_or("");
        let connect = matches!(sub, "exec" | "attach" | "portforward" | "proxy");
        let verb = match rr.verb {
            _ if connect => "CONNECT",
            Verb::List => "LIST",
            Verb::Watch => "WATCH",
            Verb::Patch if apply => "APPLY",
            _ => match *method {
                http::Method::GET => "GET",
                http::Method::POST => "POST",
                http::Method::PUT => "PUT",
                http::Method::PATCH => "PATCH",
                http::Method::DELETE => "DELETE",
                _ => "other",
            },
        };
        let scope = if rr.name.is_some() {
            "resource"
        } else if rr.namespace.is_some() {
            "namespace"
        } else {
            "cluster"
        };
        Labels {
            verb,
            dry_run,
            group: rr.info.group,
            version: rr.info.version,
            resource: rr.info.resource,
            subresource: sub.to_string(),
            scope,
        }
    }

    /// Watches and connections last as long as the client wants: counted,
    /// not timed (upstream leaves long-running requests out of the
    /// latency histogram).
    fn long_running(&self) -> bool {
        matches!(self.verb, "WATCH" | "CONNECT")
    }
}

#[derive(Debug, Default)]
struct Series {
    codes: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// The request counters and latency histograms.
#[derive(Debug, Default)]
pub struct Requests {
    series: Mutex<HashMap<Labels, Series>>,
}

impl Requests {
    pub fn record(&self, labels: Labels, code: u16, took: Duration) {
        let timed = !labels.long_running();
        let mut all = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let s = all.entry(labels).or_default();
        *s.codes.entry(code).or_default() += 1;
        if timed {
            let secs = took.as_secs_f64();
            if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
                s.buckets[i] += 1;
            }
            s.sum += secs;
            s.count += 1;
        }
    }

    /// The Prometheus text exposition of the recorded requests.
    pub fn render(&self, out: &mut String) {
        let all = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let mut sorted: Vec<(&Labels, &Series)> = all.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        let labels = |l: &Labels| {
            format!(
                "component=\"apiserver\",dry_run=\"{}\",group=\"{}\",resource=\"{}\",scope=\"{}\",subresource=\"{}\",verb=\"{}\",version=\"{}\"",
                if l.dry_run { "All" } else { "" },
                l.group,
                l.resource,
                l.scope,
                l.subresource,
                l.verb,
                l.version
            )
        };
        out.push_str("# HELP apiserver_request_total [STABLE] Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.\n");
        out.push_str("# TYPE apiserver_request_total counter\n");
        for (l, s) in &sorted {
            for (code, n) in &s.codes {
                let _ = writeln!(
                    out,
                    "apiserver_request_total{{code=\"{code}\",{}}} {n}",
                    labels(l)
                );
            }
        }
        out.push_str("# HELP apiserver_request_duration_seconds [STABLE] Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.\n");
        out.push_str("# TYPE apiserver_request_duration_seconds histogram\n");
        for (l, s) in sorted.iter().filter(|(l, _)| !l.long_running()) {
            let l = labels(l);
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(s.buckets.iter()) {
                cumulative += n;
                let le = if bound.is_infinite() {
                    "+Inf".to_string()
                } else {
                    bound.to_string()
                };
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_bucket{{{l},le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_sum{{{l}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_count{{{l}}} {}",
                s.count
            );
        }
    }
}

/// The process collector's series, read from `/proc/self`.
pub fn render_process(out: &mut String, started: std::time::SystemTime) {
    let mut series = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    let ticks = 100.0; // USER_HZ
    let page = 4096.0;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // utime and stime are stat fields 14 and 15 (11 and 12 after the name),
    // vsize 23 and rss 24 (20 and 21).
    if let (Some(u), Some(s)) = (field(11), field(12)) {
        let help = "Total user and system CPU time spent in seconds.";
        series(
            "process_cpu_seconds_total",
            "counter",
            help,
            (u + s) / ticks,
        );
    }
    if let Some(rss) = field(21) {
        let help = "Resident memory size in bytes.";
        series("process_resident_memory_bytes", "gauge", help, rss * page);
    }
    if let Some(vsize) = field(20) {
        let help = "Virtual memory size in bytes.";
        series("process_virtual_memory_bytes", "gauge", help, vsize);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        let help = "Number of open file descriptors.";
        series("process_open_fds", "gauge", help, fds.count() as f64);
    }
    if let Ok(since) = started.duration_since(std::time::UNIX_EPOCH) {
        let help = "Start time of the process since unix epoch in seconds.";
        series(
            "process_start_time_seconds",
            "gauge",
            help,
            since.as_secs_f64(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(verb: &'static str) -> Labels {
        Labels {
            verb,
            dry_run: false,
            group: "apps",
            version: "v1",
            resource: "deployments",
            subresource: String::new(),
            scope: "namespace",
        }
    }

    #[test]
    fn requests_are_counted_by_code_and_timed_in_upstreams_buckets() {
        let r = Requests::default();
        r.record(labels("LIST"), 200, Duration::from_millis(3));
        r.record(labels("LIST"), 200, Duration::from_millis(30));
        r.record(labels("LIST"), 403, Duration::from_millis(1));
        r.record(labels("WATCH"), 200, Duration::from_secs(300));
        let mut out = String::new();
        r.render(&mut out);
        let l = r#"component="apiserver",dry_run="",group="apps",resource="deployments",scope="namespace",subresource="",verb="LIST",version="v1""#;
        assert!(
            out.contains(&format!("apiserver_request_total{{code=\"200\",{l}}} 2\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!("apiserver_request_total{{code=\"403\",{l}}} 1\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "apiserver_request_duration_seconds_bucket{{{l},le=\"0.005\"}} 2\n"
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "apiserver_request_duration_seconds_bucket{{{l},le=\"0.05\"}} 3\n"
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "apiserver_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} 3\n"
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "apiserver_request_duration_seconds_count{{{l}}} 3\n"
            )),
            "{out}"
        );
        // A watch is counted, not timed.
        assert!(out.contains(r#"verb="WATCH",version="v1"} 1"#), "{out}");
        assert!(!out.contains(r#"verb="WATCH",version="v1",le="#), "{out}");
    }
}
