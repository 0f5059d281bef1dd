//! The rollout arithmetic, checked against upstream's worked examples.

use std::collections::BTreeMap;

use chrono::{Duration, TimeZone, Utc};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStatus, DeploymentStrategy, ReplicaSet, ReplicaSetSpec,
    ReplicaSetStatus, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::util::*;

fn pct(s: &str) -> IntOrString {
    IntOrString::String(s.into())
}

fn template(image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(BTreeMap::from([("app".into(), "web".into())])),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "web".into(),
                image: Some(image.into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

fn deployment(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            generation: Some(1),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            strategy: Some(DeploymentStrategy {
                type_: Some(ROLLING_UPDATE.into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(surge),
                    max_unavailable: Some(unavailable),
                }),
            }),
            progress_deadline_seconds: Some(600),
            template: template("nginx:1"),
            ..Default::default()
        }),
        status: None,
    }
}

fn rs(name: &str, replicas: i32, available: i32, age_secs: i64) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            creation_timestamp: Some(Time(Utc.timestamp_opt(1_000_000 - age_secs, 0).unwrap())),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            ..Default::default()
        }),
        status: Some(ReplicaSetStatus {
            replicas,
            available_replicas: Some(available),
            ready_replicas: Some(available),
            ..Default::default()
        }),
    }
}

fn with_annotation(mut rs: ReplicaSet, k: &str, v: &str) -> ReplicaSet {
    rs.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(k.into(), v.into());
    rs
}

#[test]
fn fenceposts_round_surge_up_and_unavailability_down() {
    // 25% of 10: surge 2.5 -> 3, unavailable 2.5 -> 2.
    assert_eq!(
        resolve_fenceposts(Some(&pct("25%")), Some(&pct("25%")), 10),
        Ok((3, 2))
    );
    assert_eq!(
        resolve_fenceposts(Some(&IntOrString::Int(2)), Some(&pct("0%")), 5),
        Ok((2, 0))
    );
}

#[test]
fn fenceposts_that_both_resolve_to_zero_allow_one_unavailable() {
    // 1% of 2 rounds to zero both ways.
    assert_eq!(
        resolve_fenceposts(Some(&pct("0%")), Some(&pct("1%")), 2),
        Ok((0, 1))
    );
}

#[test]
fn max_unavailable_never_exceeds_replicas_and_is_zero_for_recreate() {
    let d = deployment(2, IntOrString::Int(1), IntOrString::Int(5));
    assert_eq!(max_unavailable(&d), 2);
    let mut r = d.clone();
    r.spec.as_mut().unwrap().strategy = Some(DeploymentStrategy {
        type_: Some(RECREATE.into()),
        rolling_update: None,
    });
    assert_eq!(max_unavailable(&r), 0);
    assert_eq!(max_surge(&r), 0);
}

#[test]
fn new_replica_set_grows_by_the_surge_and_never_past_replicas() {
    let d = deployment(10, IntOrString::Int(3), IntOrString::Int(2));
    let old = rs("old", 10, 10, 100);
    let new = rs("new", 0, 0, 0);
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), Ok(3));
    // At the surge ceiling nothing more is added.
    let new = rs("new", 3, 0, 0);
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), Ok(3));
    // Old scaled down to 1: room for 12 more, but only 7 are wanted.
    let old = rs("old", 1, 1, 100);
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), Ok(10));
}

#[test]
fn recreate_new_replica_set_gets_every_replica_at_once() {
    let mut d = deployment(4, IntOrString::Int(1), IntOrString::Int(1));
    d.spec.as_mut().unwrap().strategy = Some(DeploymentStrategy {
        type_: Some(RECREATE.into()),
        rolling_update: None,
    });
    let new = rs("new", 0, 0, 0);
    assert_eq!(new_rs_new_replicas(&d, &[&new], &new), Ok(4));
}

#[test]
fn old_replica_sets_shrink_only_by_what_availability_allows() {
    // Upstream's example: 10 replicas, maxUnavailable 2, maxSurge 3; the
    // new ReplicaSet (5) crash-loops: 13 - 8 - 5 = 0, nothing to scale down.
    let d = deployment(10, IntOrString::Int(3), IntOrString::Int(2));
    let old = rs("old", 8, 8, 100);
    let new = rs("new", 5, 0, 0);
    assert_eq!(max_scaled_down(&d, &[&old, &new], &new), 0);
    // Roll-over to a third template: the newest starts at 0 and the old
    // ones may lose 13 - 8 - 0 = 5.
    let newest = rs("newest", 0, 0, 0);
    assert_eq!(max_scaled_down(&d, &[&old, &new, &newest], &newest), 5);
}

#[test]
fn scaling_up_mid_rollout_spreads_replicas_in_proportion() {
    // 10 -> 20 with two ReplicaSets of 5 each that were sized for 10.
    let d = deployment(20, IntOrString::Int(0), IntOrString::Int(1));
    let old = with_annotation(rs("old", 5, 5, 100), MAX_REPLICAS, "10");
    let new = with_annotation(rs("new", 5, 5, 0), MAX_REPLICAS, "10");
    let mut all = vec![old, new];
    all.sort_by(by_size_newer);
    assert_eq!(
        all[0].metadata.name.as_deref(),
        Some("new"),
        "ties go to the newer when scaling up"
    );
    let refs: Vec<&ReplicaSet> = all.iter().collect();
    assert_eq!(proportional_direction(&d, &refs), 1);
    assert_eq!(proportional_sizes(&d, &refs), vec![10, 10]);
}

#[test]
fn scaling_down_mid_rollout_gives_the_leftover_to_the_largest() {
    // 10 -> 5: each gets round(5 * 5 / 10) = 3 (-2), the leftover -1
    // goes to the first, the older of two equals.
    let d = deployment(5, IntOrString::Int(0), IntOrString::Int(1));
    let old = with_annotation(rs("old", 5, 5, 100), MAX_REPLICAS, "10");
    let new = with_annotation(rs("new", 5, 5, 0), MAX_REPLICAS, "10");
    let mut all = vec![new, old];
    all.sort_by(by_size_older);
    assert_eq!(all[0].metadata.name.as_deref(), Some("old"));
    let refs: Vec<&ReplicaSet> = all.iter().collect();
    assert_eq!(proportional_direction(&d, &refs), -1);
    assert_eq!(proportional_sizes(&d, &refs), vec![2, 3]);
}

#[test]
fn scaling_to_zero_takes_every_replica_set_to_zero() {
    let d = deployment(0, IntOrString::Int(1), IntOrString::Int(1));
    let a = with_annotation(rs("a", 3, 3, 100), MAX_REPLICAS, "5");
    let b = with_annotation(rs("b", 2, 2, 0), MAX_REPLICAS, "5");
    let refs = vec![&a, &b];
    assert_eq!(proportional_sizes(&d, &refs), vec![0, 0]);
}

#[test]
fn saturation_needs_size_annotation_and_availability_to_agree() {
    let d = deployment(3, IntOrString::Int(1), IntOrString::Int(1));
    let full = with_annotation(rs("new", 3, 3, 0), DESIRED_REPLICAS, "3");
    assert!(is_saturated(&d, Some(&full)));
    assert!(
        !is_saturated(&d, Some(&rs("new", 3, 3, 0))),
        "no annotation"
    );
    let unready = with_annotation(rs("new", 3, 2, 0), DESIRED_REPLICAS, "3");
    assert!(!is_saturated(&d, Some(&unready)));
}

#[test]
fn pod_template_hash_is_stable_short_and_changes_with_template_or_collisions() {
    let t = template("nginx:1");
    let h = compute_hash(&t, None);
    assert_eq!(h, compute_hash(&t.clone(), None));
    assert!(h.len() <= 10 && !h.is_empty());
    assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    assert_ne!(h, compute_hash(&template("nginx:2"), None));
    assert_ne!(h, compute_hash(&t, Some(1)));
}

#[test]
fn templates_equal_but_for_the_hash_label_match() {
    let mut a = template("nginx:1");
    a.metadata
        .as_mut()
        .unwrap()
        .labels
        .as_mut()
        .unwrap()
        .insert(POD_TEMPLATE_HASH.into(), "abc".into());
    assert!(equal_ignore_hash(&a, &template("nginx:1")));
    assert!(!equal_ignore_hash(&a, &template("nginx:2")));
}

#[test]
fn new_replica_set_is_the_oldest_with_the_deployments_template() {
    let d = deployment(3, IntOrString::Int(1), IntOrString::Int(1));
    let mut older = rs("older", 1, 1, 100);
    older.spec.as_mut().unwrap().template = Some(template("nginx:1"));
    let mut newer = rs("newer", 1, 1, 10);
    newer.spec.as_mut().unwrap().template = Some(template("nginx:1"));
    let mut other = rs("other", 1, 1, 200);
    other.spec.as_mut().unwrap().template = Some(template("nginx:0"));
    let list = vec![newer, other, older];
    assert_eq!(
        find_new_replica_set(&d, &list)
            .and_then(|r| r.metadata.name.clone())
            .as_deref(),
        Some("older")
    );
}

#[test]
fn reusing_an_old_replica_set_bumps_its_revision_and_keeps_the_history() {
    let d = deployment(3, IntOrString::Int(1), IntOrString::Int(1));
    let mut old = with_annotation(rs("old", 0, 0, 100), REVISION, "1");
    assert!(set_new_replica_set_annotations(&d, &mut old, 3, true));
    assert_eq!(annotation(&old.metadata, REVISION), Some("3"));
    assert_eq!(annotation(&old.metadata, REVISION_HISTORY), Some("1"));
    // Existing ReplicaSets keep their replica annotations.
    assert_eq!(annotation(&old.metadata, DESIRED_REPLICAS), None);
    assert!(set_new_replica_set_annotations(&d, &mut old, 5, true));
    assert_eq!(annotation(&old.metadata, REVISION_HISTORY), Some("1,3"));
    // A lower revision is never written back.
    assert!(!set_new_replica_set_annotations(&d, &mut old, 2, true));
}

#[test]
fn a_new_replica_set_copies_annotations_but_not_revision_or_apply_ones() {
    let mut d = deployment(3, pct("25%"), pct("25%"));
    d.metadata.annotations = Some(BTreeMap::from([
        ("team".into(), "a".into()),
        (REVISION.into(), "7".into()),
        (
            "kubectl.kubernetes.io/last-applied-configuration".into(),
            "{}".into(),
        ),
    ]));
    let mut new = rs("new", 0, 0, 0);
    set_new_replica_set_annotations(&d, &mut new, 8, false);
    let a = new.metadata.annotations.unwrap();
    assert_eq!(a.get("team").map(String::as_str), Some("a"));
    assert_eq!(a.get(REVISION).map(String::as_str), Some("8"));
    assert!(!a.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
    // 25% of 3: surge ceil(0.75) = 1.
    assert_eq!(a.get(DESIRED_REPLICAS).map(String::as_str), Some("3"));
    assert_eq!(a.get(MAX_REPLICAS).map(String::as_str), Some("4"));
}

#[test]
fn revisions_sort_numerically_and_the_last_is_the_second_highest() {
    let a = with_annotation(rs("a", 0, 0, 30), REVISION, "10");
    let b = with_annotation(rs("b", 0, 0, 20), REVISION, "9");
    let c = with_annotation(rs("c", 0, 0, 10), REVISION, "11");
    let mut v = vec![a.clone(), b.clone(), c.clone()];
    v.sort_by(by_revision);
    let names: Vec<_> = v.iter().map(|r| r.metadata.name.clone().unwrap()).collect();
    assert_eq!(names, ["b", "a", "c"]);
    assert_eq!(max_revision([&a, &b, &c]), 11);
    assert_eq!(last_revision([&a, &b, &c]), 10);
}

#[test]
fn a_condition_with_the_same_status_keeps_its_transition_time() {
    let t0 = Utc.timestamp_opt(1000, 0).unwrap();
    let t1 = t0 + Duration::seconds(30);
    let mut s = DeploymentStatus::default();
    set_condition(
        &mut s,
        new_condition(PROGRESSING, "True", NEW_REPLICA_SET, "a", t0),
    );
    set_condition(
        &mut s,
        new_condition(PROGRESSING, "True", REPLICA_SET_UPDATED, "b", t1),
    );
    let c = get_condition(&s, PROGRESSING).unwrap();
    assert_eq!(c.last_transition_time, Some(Time(t0)));
    assert_eq!(c.last_update_time, Some(Time(t1)));
    // Same status and reason: left alone.
    set_condition(
        &mut s,
        new_condition(PROGRESSING, "True", REPLICA_SET_UPDATED, "c", t1),
    );
    assert_eq!(
        get_condition(&s, PROGRESSING).unwrap().message.as_deref(),
        Some("b")
    );
}

#[test]
fn status_counts_replica_sets_and_reports_minimum_availability() {
    let now = Utc::now();
    let d = deployment(4, IntOrString::Int(1), IntOrString::Int(1));
    let old = rs("old", 2, 2, 100);
    let new = rs("new", 2, 1, 0);
    let s = calculate_status(&[&old, &new], Some(&new), &d, now);
    assert_eq!(s.replicas, Some(4));
    assert_eq!(s.updated_replicas, Some(2));
    assert_eq!(s.available_replicas, Some(3));
    assert_eq!(s.unavailable_replicas, Some(1));
    assert_eq!(s.observed_generation, Some(1));
    let c = get_condition(&s, AVAILABLE).unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("True", Some(MINIMUM_REPLICAS_AVAILABLE))
    );
    assert_eq!(
        c.message.as_deref(),
        Some("Deployment has minimum availability.")
    );

    let new = rs("new", 2, 0, 0);
    let old = rs("old", 2, 1, 100);
    let s = calculate_status(&[&old, &new], Some(&new), &d, now);
    let c = get_condition(&s, AVAILABLE).unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("False", Some(MINIMUM_REPLICAS_UNAVAILABLE))
    );
    assert_eq!(
        c.message.as_deref(),
        Some("Deployment does not have minimum availability.")
    );
}

#[test]
fn a_finished_rollout_reports_the_new_replica_set_available() {
    let now = Utc::now();
    let d = deployment(3, IntOrString::Int(1), IntOrString::Int(1));
    let mut new = rs("web-abc", 3, 3, 0);
    new.metadata.name = Some("web-abc".into());
    let s = rollout_status(&[&new], Some(&new), &d, now);
    let c = get_condition(&s, PROGRESSING).unwrap();
    assert_eq!(c.reason.as_deref(), Some(NEW_RS_AVAILABLE));
    assert_eq!(
        c.message.as_deref(),
        Some("ReplicaSet \"web-abc\" has successfully progressed.")
    );
}

#[test]
fn a_rollout_without_progress_past_its_deadline_times_out() {
    let start = Utc.timestamp_opt(1_000_000, 0).unwrap();
    let mut d = deployment(3, IntOrString::Int(1), IntOrString::Int(1));
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(10);
    let new = rs("web-abc", 3, 0, 0);
    let mut status = calculate_status(&[&new], Some(&new), &d, start);
    set_condition(
        &mut status,
        new_condition(
            PROGRESSING,
            "True",
            NEW_REPLICA_SET,
            "Created new replica set \"web-abc\"",
            start,
        ),
    );
    d.status = Some(status);

    // Within the deadline: no change, and a look again just after it.
    let s = rollout_status(&[&new], Some(&new), &d, start + Duration::seconds(5));
    assert_eq!(condition_reason(&s, PROGRESSING), Some(NEW_REPLICA_SET));
    let after = stuck_requeue_after(&d, &s, start + Duration::seconds(5)).unwrap();
    assert_eq!(after, std::time::Duration::from_secs(6));

    let s = rollout_status(&[&new], Some(&new), &d, start + Duration::seconds(11));
    let c = get_condition(&s, PROGRESSING).unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("False", Some(TIMED_OUT))
    );
    assert_eq!(
        c.message.as_deref(),
        Some("ReplicaSet \"web-abc\" has timed out progressing.")
    );
}

#[test]
fn progress_refreshes_the_condition_without_changing_its_transition_time() {
    let start = Utc.timestamp_opt(1_000_000, 0).unwrap();
    let mut d = deployment(3, IntOrString::Int(1), IntOrString::Int(1));
    let new = rs("web-abc", 3, 1, 0);
    let mut status = calculate_status(&[&new], Some(&new), &d, start);
    set_condition(
        &mut status,
        new_condition(PROGRESSING, "True", NEW_REPLICA_SET, "x", start),
    );
    d.status = Some(status);
    let later = start + Duration::seconds(5);
    let more = rs("web-abc", 3, 2, 0);
    let s = rollout_status(&[&more], Some(&more), &d, later);
    let c = get_condition(&s, PROGRESSING).unwrap();
    assert_eq!(c.reason.as_deref(), Some(REPLICA_SET_UPDATED));
    assert_eq!(
        c.message.as_deref(),
        Some("ReplicaSet \"web-abc\" is progressing.")
    );
    assert_eq!(c.last_transition_time, Some(Time(start)));
    assert_eq!(c.last_update_time, Some(Time(later)));
}

#[test]
fn without_a_deadline_there_is_no_progressing_condition() {
    let mut d = deployment(1, IntOrString::Int(1), IntOrString::Int(1));
    d.spec.as_mut().unwrap().progress_deadline_seconds = None;
    let mut status = DeploymentStatus::default();
    set_condition(
        &mut status,
        new_condition(PROGRESSING, "True", NEW_REPLICA_SET, "x", Utc::now()),
    );
    d.status = Some(status);
    let new = rs("web-abc", 1, 1, 0);
    let s = rollout_status(&[&new], Some(&new), &d, Utc::now());
    assert!(get_condition(&s, PROGRESSING).is_none());
}

#[test]
fn the_only_active_replica_set_or_else_the_newest_takes_a_plain_scale() {
    let new = rs("new", 0, 0, 0);
    let old = rs("old", 3, 3, 100);
    let older = rs("older", 0, 0, 200);
    let pick = |n: Option<&ReplicaSet>, o: &[ReplicaSet]| {
        find_active_or_latest(n, o).and_then(|r| r.metadata.name)
    };
    assert_eq!(
        pick(Some(&new), &[old.clone(), older.clone()]).as_deref(),
        Some("old")
    );
    // None active: the new one, else the newest old one.
    assert_eq!(pick(Some(&new), &[older.clone()]).as_deref(), Some("new"));
    assert_eq!(
        pick(None, &[older.clone(), rs("mid", 0, 0, 50)]).as_deref(),
        Some("mid")
    );
    // Two active: scale in proportion instead.
    assert_eq!(pick(Some(&rs("new", 1, 0, 0)), &[old]), None);
}
