//! Reading a kubelet's `/metrics/resource` answer: the Prometheus text
//! exposition format, and the batch of node and container points decoded
//! from it the way metrics-server's `decodeBatch` does (CPU seconds to
//! nanoseconds, millisecond timestamps, a container's start time; points
//! with zero CPU or memory dropped).

use std::collections::BTreeMap;

/// One sample: metric name, labels, value, timestamp in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parses the text exposition format (version 0.0.4): comments and blank
/// lines are skipped, every other line is `name{labels} value [timestamp]`.
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message: &str| ParseError {
            line: i + 1,
            message: message.to_string(),
        };
        let name_end = line
            .find(|c: char| c == '{' || c.is_whitespace())
            .ok_or_else(|| err("a sample without a value"))?;
        let name = &line[..name_end];
        if name.is_empty() {
            return Err(err("a sample without a metric name"));
        }
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(body) = rest.strip_prefix('{') {
            let (parsed, after) = parse_labels(body).map_err(|m| err(&m))?;
            labels = parsed;
            rest = after;
        }
        let mut fields = rest.split_whitespace();
        let value = fields
            .next()
            .ok_or_else(|| err("a sample without a value"))
            .and_then(|v| parse_value(v).ok_or_else(|| err(&format!("bad value {v:?}"))))?;
        let timestamp_ms = match fields.next() {
            Some(t) => Some(
                t.parse::<i64>()
                    .map_err(|_| err(&format!("bad timestamp {t:?}")))?,
            ),
            None => None,
        };
        out.push(Sample {
            name: name.to_string(),
            labels,
            value,
            timestamp_ms,
        });
    }
    Ok(out)
}

fn parse_value(v: &str) -> Option<f64> {
    match v {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => v.parse().ok(),
    }
}

/// `k="v",k2="v2"}` → the labels and what follows the closing brace.
fn parse_labels(mut s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let eq = s.find('=').ok_or("a label without a value")?;
        let key = s[..eq].trim().to_string();
        s = s[eq + 1..].trim_start();
        s = s.strip_prefix('"').ok_or("a label value without quotes")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("an unterminated label value".into()),
                },
                Some((_, c)) => value.push(c),
                None => return Err("an unterminated label value".into()),
            }
        };
        labels.insert(key, value);
        s = s[end + 1..].trim_start();
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err("labels not separated by commas".into());
        }
    }
}

/// A measurement of a node or container: cumulative CPU time and working
/// set at `timestamp`; `start_time` is when the container started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Point {
    /// Unix nanoseconds.
    pub start_time: i64,
    /// Unix nanoseconds.
    pub timestamp: i64,
    pub cumulative_cpu_used: u64,
    pub memory_usage: u64,
}

/// The points of one scrape: the node's, and per (namespace, pod) its
/// containers'.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    pub node: Option<Point>,
    pub pods: Pods,
}

/// The batch in a kubelet's answer; samples without a timestamp take
/// `default_ms` (the scrape's time).
pub fn decode(text: &str, default_ms: i64) -> Result<Batch, ParseError> {
    let mut node = Point::default();
    let mut pods = Pods::new();
    for s in parse(text)? {
        let ts = s.timestamp_ms.unwrap_or(default_ms) * 1_000_000;
        match s.name.as_str() {
            "node_cpu_usage_seconds_total" => {
                node.cumulative_cpu_used = (s.value * 1e9) as u64;
                node.timestamp = ts;
            }
            "node_memory_working_set_bytes" => {
                node.memory_usage = s.value as u64;
                node.timestamp = ts;
            }
            "container_cpu_usage_seconds_total" => {
                let c = container_point(&mut pods, &s);
                c.cumulative_cpu_used = (s.value * 1e9) as u64;
                c.timestamp = ts;
            }
            "container_memory_working_set_bytes" => {
                let c = container_point(&mut pods, &s);
                c.memory_usage = s.value as u64;
                c.timestamp = ts;
            }
            "container_start_time_seconds" => {
                container_point(&mut pods, &s).start_time = (s.value * 1e9) as i64;
            }
            _ => {}
        }
    }
    let complete =
        |p: &Point| p.timestamp != 0 && p.cumulative_cpu_used != 0 && p.memory_usage != 0;
    // A pod with one incomplete container is left out whole.
    pods.retain(|_, containers| {
        containers.retain(|_, p| *p != Point::default());
        !containers.is_empty() && containers.values().all(complete)
    });
    Ok(Batch {
        node: complete(&node).then_some(node),
        pods,
    })
}

type Pods = BTreeMap<(String, String), BTreeMap<String, Point>>;

/// The point of the container a sample's labels name.
fn container_point<'a>(pods: &'a mut Pods, s: &Sample) -> &'a mut Point {
    let label = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
    pods.entry((label("namespace"), label("pod")))
        .or_default()
        .entry(label("container"))
        .or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBELET: &str = r#"# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="coredns",namespace="kube-system",pod="coredns-558bd4d5db-4x6kv"} 0.195744 1624396278302
container_cpu_usage_seconds_total{container="idle",namespace="default",pod="idle"} 0 1624396278302
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="coredns",namespace="kube-system",pod="coredns-558bd4d5db-4x6kv"} 1.296384e+07 1624396278302
container_memory_working_set_bytes{container="idle",namespace="default",pod="idle"} 4096 1624396278302
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="coredns",namespace="kube-system",pod="coredns-558bd4d5db-4x6kv"} 1.6243962105e+09
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 357.35491 1624396278302
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 1.616084992e+09 1624396278302
# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 0
"#;

    #[test]
    fn samples_keep_labels_values_and_timestamps() {
        let samples = parse(KUBELET).unwrap();
        assert_eq!(samples.len(), 8);
        assert_eq!(samples[0].name, "container_cpu_usage_seconds_total");
        assert_eq!(samples[0].labels["pod"], "coredns-558bd4d5db-4x6kv");
        assert_eq!(samples[0].value, 0.195744);
        assert_eq!(samples[0].timestamp_ms, Some(1624396278302));
        assert_eq!(samples[7].timestamp_ms, None);
        let escaped = parse("m{a=\"x\\\"y\\\\z\\n\",b=\"\"} +Inf\n").unwrap();
        assert_eq!(escaped[0].labels["a"], "x\"y\\z\n");
        assert_eq!(escaped[0].labels["b"], "");
        assert!(escaped[0].value.is_infinite());
        assert_eq!(parse("m{a=\"x\" 1\n").unwrap_err().line, 1);
        assert!(parse("m 1 notatime\n").is_err());
    }

    #[test]
    fn decoding_converts_units_and_drops_incomplete_pods() {
        let b = decode(KUBELET, 1).unwrap();
        assert_eq!(
            b.node,
            Some(Point {
                start_time: 0,
                timestamp: 1_624_396_278_302_000_000,
                cumulative_cpu_used: 357_354_910_000,
                memory_usage: 1_616_084_992,
            })
        );
        // The idle container used no CPU yet: its pod has no point.
        assert_eq!(b.pods.len(), 1);
        let coredns = &b.pods[&(
            "kube-system".to_string(),
            "coredns-558bd4d5db-4x6kv".to_string(),
        )]["coredns"];
        assert_eq!(coredns.cumulative_cpu_used, 195_744_000);
        assert_eq!(coredns.memory_usage, 12_963_840);
        assert_eq!(coredns.start_time, 1_624_396_210_500_000_000);
    }
}
