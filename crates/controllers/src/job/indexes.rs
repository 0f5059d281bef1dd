//! Completion indexes of Indexed Jobs: the annotation and label pods carry,
//! and the interval strings of `status.completedIndexes` /
//! `status.failedIndexes` ("0-2,4"), as upstream's `orderedIntervals`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;

/// Annotation (and, since the PodIndexLabel gate, label) with a pod's index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The environment variable every container of an Indexed Job's pods gets.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// A pod's completion index, if it has a valid one (upstream
/// `getCompletionIndex`: the annotation, a non-negative decimal).
pub fn of_pod(pod: &Pod) -> Option<i32> {
    of_annotations(pod.metadata.annotations.as_ref())
}

pub fn of_annotations(annotations: Option<&BTreeMap<String, String>>) -> Option<i32> {
    let v = annotations?.get(COMPLETION_INDEX)?;
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<i32>().ok()
}

/// Parses an interval string, keeping indexes below `completions` and
/// skipping what does not parse (upstream `parseIndexesFromString`).
pub fn parse(s: &str, completions: i32) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
            None => (part.parse::<i32>(), part.parse::<i32>()),
        };
        let (Ok(first), Ok(last)) = (first, last) else {
            continue;
        };
        for ix in first.max(0)..=last.min(completions - 1) {
            out.insert(ix);
        }
    }
    out
}

/// Formats indexes as intervals: `0-2,4,6-7`.
pub fn format(indexes: &BTreeSet<i32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = indexes.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last + 1)) {
            last += 1;
            iter.next();
        }
        parts.push(if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        });
    }
    parts.join(",")
}

/// The first `count` indexes below `completions` that are neither done nor
/// taken (upstream `firstPendingIndexes`).
pub fn first_pending(taken: &BTreeSet<i32>, count: usize, completions: i32) -> Vec<i32> {
    (0..completions.max(0))
        .filter(|ix| !taken.contains(ix))
        .take(count)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_format_as_intervals() {
        let set: BTreeSet<i32> = [0, 1, 2, 4, 6, 7].into_iter().collect();
        assert_eq!(format(&set), "0-2,4,6-7");
        assert_eq!(format(&BTreeSet::new()), "");
        assert_eq!(format(&[3].into_iter().collect()), "3");
    }

    #[test]
    fn interval_strings_parse_within_completions() {
        let set = parse("0-2,4,6-9", 8);
        assert_eq!(set.into_iter().collect::<Vec<_>>(), [0, 1, 2, 4, 6, 7]);
        assert!(parse("", 3).is_empty());
    }

    #[test]
    fn pending_indexes_skip_done_and_running_ones() {
        let taken: BTreeSet<i32> = [0, 2].into_iter().collect();
        assert_eq!(first_pending(&taken, 2, 5), [1, 3]);
        assert_eq!(first_pending(&taken, 9, 4), [1, 3]);
    }

    #[test]
    fn only_plain_decimal_annotations_are_indexes() {
        let ann = |v: &str| BTreeMap::from([(COMPLETION_INDEX.to_string(), v.to_string())]);
        assert_eq!(of_annotations(Some(&ann("3"))), Some(3));
        assert_eq!(of_annotations(Some(&ann("-1"))), None);
        assert_eq!(of_annotations(Some(&ann("x"))), None);
        assert_eq!(of_annotations(None), None);
    }
}

/// Annotation with how many times a pod's index failed before it
/// (`backoffLimitPerIndex`).
pub const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";

/// The failures of one index so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexFailures {
    pub count: i32,
    pub last: Option<chrono::DateTime<chrono::Utc>>,
    /// A `FailIndex` rule of the pod failure policy matched.
    pub fail_index: bool,
}

/// Per index, its failures as its pods tell them: the failure count a pod
/// was created with, plus one if it failed (and the failure counts).
/// `failed` says whether a pod failed and how the policy judged it
/// (counted, `FailIndex`), with its finish time.
pub fn failures(
    pods: &[std::sync::Arc<Pod>],
    completions: i32,
    failed: impl Fn(&Pod) -> Option<(bool, bool, chrono::DateTime<chrono::Utc>)>,
) -> BTreeMap<i32, IndexFailures> {
    let mut out: BTreeMap<i32, IndexFailures> = BTreeMap::new();
    for p in pods {
        let Some(ix) = of_pod(p).filter(|ix| *ix < completions) else {
            continue;
        };
        let before = p
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(INDEX_FAILURE_COUNT))
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(0);
        let entry = out.entry(ix).or_default();
        let mut count = before;
        if let Some((counted, fail_index, at)) = failed(p) {
            if counted {
                count += 1;
            }
            entry.fail_index |= fail_index;
            entry.last = Some(entry.last.map_or(at, |l| l.max(at)));
        }
        entry.count = entry.count.max(count);
    }
    out
}

/// The indexes that have failed for good: past `backoffLimitPerIndex`
/// failures or matched by `FailIndex`, unless they succeeded meanwhile.
pub fn failed_indexes(
    previous: &BTreeSet<i32>,
    failures: &BTreeMap<i32, IndexFailures>,
    limit: i32,
    succeeded: &BTreeSet<i32>,
) -> BTreeSet<i32> {
    let mut out = previous.clone();
    for (ix, f) in failures {
        if (f.count > limit || f.fail_index) && !succeeded.contains(ix) {
            out.insert(*ix);
        }
    }
    out
}

#[cfg(test)]
mod per_index_tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::sync::Arc;

    fn pod(ix: i32, before: i32, failed: bool) -> Arc<Pod> {
        let annotations = BTreeMap::from([
            (COMPLETION_INDEX.to_string(), ix.to_string()),
            (INDEX_FAILURE_COUNT.to_string(), before.to_string()),
            ("failed".to_string(), failed.to_string()),
        ]);
        Arc::new(Pod {
            metadata: ObjectMeta {
                annotations: Some(annotations),
                ..Default::default()
            },
            spec: None,
            status: None,
        })
    }

    #[test]
    fn an_index_fails_once_its_failures_pass_the_per_index_limit() {
        let now = chrono::Utc::now();
        let pods = vec![
            pod(0, 0, true),
            pod(0, 1, true),
            pod(1, 0, true),
            pod(2, 0, false),
        ];
        let f = failures(&pods, 3, |p| {
            (p.metadata.annotations.as_ref().unwrap()["failed"] == "true")
                .then_some((true, false, now))
        });
        assert_eq!(f[&0].count, 2);
        assert_eq!(f[&1].count, 1);
        assert_eq!(f[&2].count, 0);
        let failed = failed_indexes(&BTreeSet::new(), &f, 1, &BTreeSet::new());
        assert_eq!(format(&failed), "0");
        let failed = failed_indexes(&BTreeSet::new(), &f, 0, &[1].into_iter().collect());
        assert_eq!(format(&failed), "0");
    }
}
