//! Which PersistentVolume a claim binds to, without IO (upstream's
//! `index.go` `findBestMatchForClaim` / `FindMatchingVolume` and
//! `checkVolumeSatisfyClaim`): the smallest Available volume that holds the
//! requested storage, offers every requested access mode (volumes with the
//! fewest extra modes first), has the claim's class and volume mode and
//! matches its selector; a volume pre-bound to the claim (its claimRef names
//! the claim) wins over all others.

use std::collections::BTreeMap;
use std::sync::Arc;

use api::{LabelSelector, Quantity};
use k8s_openapi::api::core::v1::{
    NodeSelector, ObjectReference, PersistentVolume, PersistentVolumeClaim,
};

/// Set on a claim once the controller finished binding it.
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// Set on a volume or claim whose half of the binding the controller wrote.
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// Set on a volume by the provisioner that created it.
pub const ANN_PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// Set on a claim: the provisioner asked to create its volume.
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// Set on a claim by the scheduler: the node its first consumer runs on.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The class before `storageClassName` existed; still wins when set.
pub const ANN_BETA_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

fn annotation<'a>(annotations: &'a Option<BTreeMap<String, String>>, key: &str) -> Option<&'a str> {
    annotations.as_ref()?.get(key).map(String::as_str)
}

/// The claim's class (upstream's `GetPersistentVolumeClaimClass`): the beta
/// annotation, else `storageClassName`, else "" (no class).
pub fn claim_class(claim: &PersistentVolumeClaim) -> &str {
    if let Some(class) = annotation(&claim.metadata.annotations, ANN_BETA_CLASS) {
        return class;
    }
    claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or("")
}

/// The volume's class (upstream's `GetPersistentVolumeClass`).
pub fn volume_class(volume: &PersistentVolume) -> &str {
    if let Some(class) = annotation(&volume.metadata.annotations, ANN_BETA_CLASS) {
        return class;
    }
    volume
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or("")
}

pub fn claim_ref(volume: &PersistentVolume) -> Option<&ObjectReference> {
    volume.spec.as_ref()?.claim_ref.as_ref()
}

/// Whether the volume's claimRef names this claim: by namespace and name,
/// and by UID unless the claimRef leaves it empty (pre-bound by a user).
pub fn is_bound_to_claim(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let Some(r) = claim_ref(volume) else {
        return false;
    };
    r.name.as_deref() == claim.metadata.name.as_deref()
        && r.namespace.as_deref() == claim.metadata.namespace.as_deref()
        && match r.uid.as_deref() {
            None | Some("") => true,
            Some(uid) => Some(uid) == claim.metadata.uid.as_deref(),
        }
}

/// The storage a claim requests.
pub fn requested_storage(claim: &PersistentVolumeClaim) -> Quantity {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| Quantity::parse(&q.0).ok())
        .unwrap_or_default()
}

/// The storage a volume holds.
pub fn volume_capacity(volume: &PersistentVolume) -> Quantity {
    volume
        .spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(|q| Quantity::parse(&q.0).ok())
        .unwrap_or_default()
}

fn claim_modes(claim: &PersistentVolumeClaim) -> &[String] {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.as_deref())
        .unwrap_or_default()
}

fn volume_modes(volume: &PersistentVolume) -> &[String] {
    volume
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.as_deref())
        .unwrap_or_default()
}

/// Whether the volume offers every access mode the claim asks for.
pub fn access_modes_fit(claim: &PersistentVolumeClaim, volume: &PersistentVolume) -> bool {
    let offered = volume_modes(volume);
    claim_modes(claim).iter().all(|m| offered.contains(m))
}

/// Whether claim and volume disagree on Filesystem vs Block (both default
/// to Filesystem).
pub fn volume_mode_mismatch(claim: &PersistentVolumeClaim, volume: &PersistentVolume) -> bool {
    let claim_mode = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_mode.as_deref())
        .unwrap_or("Filesystem");
    let volume_mode = volume
        .spec
        .as_ref()
        .and_then(|s| s.volume_mode.as_deref())
        .unwrap_or("Filesystem");
    claim_mode != volume_mode
}

fn phase(volume: &PersistentVolume) -> &str {
    volume
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// A node as volume topology sees it: its name and labels.
#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// Whether a node selector (terms ORed, expressions ANDed) admits the node
/// (upstream's `MatchNodeSelectorTerms`; a term with nothing in it matches
/// no node).
pub fn node_selector_matches(selector: &NodeSelector, node: &NodeInfo) -> bool {
    selector.node_selector_terms.iter().any(|term| {
        let exprs = term.match_expressions.as_deref().unwrap_or_default();
        let fields = term.match_fields.as_deref().unwrap_or_default();
        if exprs.is_empty() && fields.is_empty() {
            return false;
        }
        let label = |key: &str| node.labels.get(key).map(String::as_str);
        let field = |key: &str| (key == "metadata.name").then_some(node.name.as_str());
        exprs
            .iter()
            .all(|r| requirement_holds(&r.operator, label(&r.key), r.values.as_deref()))
            && fields
                .iter()
                .all(|r| requirement_holds(&r.operator, field(&r.key), r.values.as_deref()))
    })
}

fn requirement_holds(operator: &str, value: Option<&str>, values: Option<&[String]>) -> bool {
    let values = values.unwrap_or_default();
    let number = |s: &str| s.parse::<i64>().ok();
    match operator {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => !value.is_some_and(|v| values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), Some(want)) = (
                value.and_then(number),
                values.first().and_then(|s| number(s)),
            ) else {
                return false;
            };
            if operator == "Gt" {
                have > want
            } else {
                have < want
            }
        }
        _ => false,
    }
}

/// Whether a volume's nodeAffinity admits the node (no affinity: any node).
pub fn volume_fits_node(volume: &PersistentVolume, node: &NodeInfo) -> bool {
    match volume
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
    {
        None => true,
        Some(selector) => node_selector_matches(selector, node),
    }
}

/// The best volume for `claim` among `volumes`, or `None`.
///
/// `delay_binding` (the claim's class waits for the first consumer) limits
/// the choice to volumes pre-bound to the claim unless `node` says where the
/// consumer runs; with a node, volumes whose nodeAffinity excludes it are
/// skipped. Errors only on a claim selector that does not parse.
pub fn find_best_match(
    claim: &PersistentVolumeClaim,
    volumes: &[Arc<PersistentVolume>],
    node: Option<&NodeInfo>,
    delay_binding: bool,
) -> Result<Option<Arc<PersistentVolume>>, String> {
    // Upstream indexes volumes by their set of access modes and tries the
    // sets that contain every requested mode, fewest modes first.
    let mut mode_sets: Vec<Vec<String>> = Vec::new();
    for volume in volumes {
        let mut modes = volume_modes(volume).to_vec();
        modes.sort();
        modes.dedup();
        if !mode_sets.contains(&modes) {
            mode_sets.push(modes);
        }
    }
    mode_sets.retain(|set| claim_modes(claim).iter().all(|m| set.contains(m)));
    mode_sets.sort_by_key(Vec::len);
    for set in mode_sets {
        let candidates: Vec<Arc<PersistentVolume>> = volumes
            .iter()
            .filter(|v| {
                let mut modes = volume_modes(v).to_vec();
                modes.sort();
                modes.dedup();
                modes == set
            })
            .cloned()
            .collect();
        if let Some(found) = find_matching_volume(claim, &candidates, node, delay_binding)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Upstream's `FindMatchingVolume` over volumes of one access-mode set.
fn find_matching_volume(
    claim: &PersistentVolumeClaim,
    volumes: &[Arc<PersistentVolume>],
    node: Option<&NodeInfo>,
    delay_binding: bool,
) -> Result<Option<Arc<PersistentVolume>>, String> {
    let requested = requested_storage(claim);
    let class = claim_class(claim);
    let selector = match claim.spec.as_ref().and_then(|s| s.selector.as_ref()) {
        None => None,
        Some(s) => Some(LabelSelector::from_metav1(Some(s)).map_err(|e| {
            format!(
                "error creating internal label selector for claim: {}: {e}",
                claim_key(claim)
            )
        })?),
    };
    let mut smallest: Option<(Quantity, &Arc<PersistentVolume>)> = None;
    for volume in volumes {
        if claim_ref(volume).is_some() && !is_bound_to_claim(volume, claim) {
            continue;
        }
        let capacity = volume_capacity(volume);
        if capacity < requested {
            continue;
        }
        if volume_mode_mismatch(claim, volume) {
            continue;
        }
        if volume.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let node_ok = node.is_none_or(|n| volume_fits_node(volume, n));
        if is_bound_to_claim(volume, claim) {
            // Pre-bound: this volume or none (if its node does not fit).
            return Ok(node_ok.then(|| volume.clone()));
        }
        if node.is_none() && delay_binding {
            // The scheduler picks among unbound volumes once it knows the node.
            continue;
        }
        if phase(volume) != "Available" {
            continue;
        }
        if let Some(selector) = &selector {
            if !selector.matches_opt(volume.metadata.labels.as_ref()) {
                continue;
            }
        }
        if volume_class(volume) != class || !node_ok {
            continue;
        }
        if node.is_some() && !access_modes_fit(claim, volume) {
            continue;
        }
        if smallest.as_ref().is_none_or(|(q, _)| *q > capacity) {
            smallest = Some((capacity, volume));
        }
    }
    Ok(smallest.map(|(_, v)| v.clone()))
}

/// Why a volume the claim names in `volumeName` cannot back it, in
/// upstream's words (`checkVolumeSatisfyClaim`).
pub fn check_volume_satisfies_claim(
    volume: &PersistentVolume,
    claim: &PersistentVolumeClaim,
) -> Result<(), String> {
    let name = volume.metadata.name.as_deref().unwrap_or_default();
    if volume.metadata.deletion_timestamp.is_some() {
        return Err(format!("the volume is marked for deletion {name:?}"));
    }
    if volume_capacity(volume).value() < requested_storage(claim).value() {
        return Err("requested PV is too small".into());
    }
    if volume_class(volume) != claim_class(claim) {
        return Err("storageClassName does not match".into());
    }
    if volume_mode_mismatch(claim, volume) {
        return Err("incompatible volumeMode".into());
    }
    if !access_modes_fit(claim, volume) {
        return Err("incompatible accessMode".into());
    }
    Ok(())
}

/// `namespace/name` of a claim, as upstream's messages print it.
pub fn claim_key(claim: &PersistentVolumeClaim) -> String {
    format!(
        "{}/{}",
        claim.metadata.namespace.as_deref().unwrap_or_default(),
        claim.metadata.name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pv(
        name: &str,
        size: &str,
        modes: &[&str],
        extra: serde_json::Value,
    ) -> Arc<PersistentVolume> {
        let mut v = json!({
            "metadata": { "name": name },
            "spec": { "capacity": { "storage": size }, "accessModes": modes },
            "status": { "phase": "Available" },
        });
        merge(&mut v, extra);
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn pvc(size: &str, modes: &[&str], extra: serde_json::Value) -> PersistentVolumeClaim {
        let mut v = json!({
            "metadata": { "name": "data", "namespace": "default", "uid": "u-1" },
            "spec": { "accessModes": modes, "resources": { "requests": { "storage": size } } },
        });
        merge(&mut v, extra);
        serde_json::from_value(v).unwrap()
    }

    fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
        match (into, from) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (slot, v) => *slot = v,
        }
    }

    fn best(claim: &PersistentVolumeClaim, volumes: &[Arc<PersistentVolume>]) -> Option<String> {
        find_best_match(claim, volumes, None, false)
            .unwrap()
            .and_then(|v| v.metadata.name.clone())
    }

    #[test]
    fn the_smallest_volume_that_holds_the_request_wins() {
        let volumes = [
            pv("big", "10Gi", &["ReadWriteOnce"], json!({})),
            pv("small", "1Gi", &["ReadWriteOnce"], json!({})),
            pv("fits", "2Gi", &["ReadWriteOnce"], json!({})),
        ];
        assert_eq!(
            best(&pvc("1500Mi", &["ReadWriteOnce"], json!({})), &volumes).as_deref(),
            Some("fits")
        );
        assert_eq!(
            best(&pvc("1Gi", &["ReadWriteOnce"], json!({})), &volumes).as_deref(),
            Some("small")
        );
        assert_eq!(
            best(&pvc("20Gi", &["ReadWriteOnce"], json!({})), &volumes),
            None
        );
    }

    #[test]
    fn every_requested_access_mode_must_be_offered_fewest_modes_first() {
        let volumes = [
            pv(
                "rwo-rox",
                "1Gi",
                &["ReadWriteOnce", "ReadOnlyMany"],
                json!({}),
            ),
            pv("rwx", "5Gi", &["ReadWriteMany"], json!({})),
            pv("rwo", "5Gi", &["ReadWriteOnce"], json!({})),
        ];
        // The single-mode volume wins over a smaller one with more modes.
        assert_eq!(
            best(&pvc("1Gi", &["ReadWriteOnce"], json!({})), &volumes).as_deref(),
            Some("rwo")
        );
        assert_eq!(
            best(&pvc("1Gi", &["ReadOnlyMany"], json!({})), &volumes).as_deref(),
            Some("rwo-rox")
        );
        assert_eq!(
            best(
                &pvc("1Gi", &["ReadWriteMany", "ReadOnlyMany"], json!({})),
                &volumes
            ),
            None
        );
    }

    #[test]
    fn classes_must_be_equal_and_no_class_matches_only_no_class() {
        let volumes = [
            pv(
                "fast",
                "1Gi",
                &["ReadWriteOnce"],
                json!({ "spec": { "storageClassName": "fast" } }),
            ),
            pv("none", "5Gi", &["ReadWriteOnce"], json!({})),
        ];
        let fast = pvc(
            "1Gi",
            &["ReadWriteOnce"],
            json!({ "spec": { "storageClassName": "fast" } }),
        );
        assert_eq!(best(&fast, &volumes).as_deref(), Some("fast"));
        let empty = pvc(
            "1Gi",
            &["ReadWriteOnce"],
            json!({ "spec": { "storageClassName": "" } }),
        );
        assert_eq!(best(&empty, &volumes).as_deref(), Some("none"));
        let beta = pvc(
            "1Gi",
            &["ReadWriteOnce"],
            json!({ "metadata": { "annotations": { ANN_BETA_CLASS: "fast" } } }),
        );
        assert_eq!(best(&beta, &volumes).as_deref(), Some("fast"));
    }

    #[test]
    fn a_selector_volume_mode_and_phase_filter_volumes() {
        let volumes = [
            pv(
                "labelled",
                "5Gi",
                &["ReadWriteOnce"],
                json!({ "metadata": { "labels": { "tier": "gold" } } }),
            ),
            pv(
                "block",
                "1Gi",
                &["ReadWriteOnce"],
                json!({ "metadata": { "labels": { "tier": "gold" } }, "spec": { "volumeMode": "Block" } }),
            ),
            pv(
                "released",
                "1Gi",
                &["ReadWriteOnce"],
                json!({ "metadata": { "labels": { "tier": "gold" } }, "status": { "phase": "Released" } }),
            ),
        ];
        let gold = pvc(
            "1Gi",
            &["ReadWriteOnce"],
            json!({ "spec": { "selector": { "matchLabels": { "tier": "gold" } } } }),
        );
        assert_eq!(best(&gold, &volumes).as_deref(), Some("labelled"));
        let block = pvc(
            "1Gi",
            &["ReadWriteOnce"],
            json!({ "spec": { "volumeMode": "Block" } }),
        );
        assert_eq!(best(&block, &volumes).as_deref(), Some("block"));
    }

    #[test]
    fn a_volume_pre_bound_to_the_claim_wins_and_refuses_every_other_claim() {
        let reserved = |uid: &str| {
            pv(
                "reserved",
                "10Gi",
                &["ReadWriteOnce"],
                json!({ "spec": { "claimRef": { "namespace": "default", "name": "data", "uid": uid } } }),
            )
        };
        let volumes = [
            pv("small", "1Gi", &["ReadWriteOnce"], json!({})),
            reserved(""),
        ];
        let claim = pvc("1Gi", &["ReadWriteOnce"], json!({}));
        assert_eq!(best(&claim, &volumes).as_deref(), Some("reserved"));
        let other = pvc(
            "1Gi",
            &["ReadWriteOnce"],
            json!({ "metadata": { "name": "other" } }),
        );
        assert_eq!(best(&other, &[reserved("")]), None);
        // A claimRef with another claim's UID: not this claim's.
        assert_eq!(best(&claim, &[reserved("u-2")]), None);
    }

    #[test]
    fn waiting_for_the_first_consumer_binds_only_pre_bound_volumes_until_a_node_is_known() {
        let affinity = |host: &str| {
            json!({ "spec": { "nodeAffinity": { "required": { "nodeSelectorTerms": [
                { "matchExpressions": [{ "key": "kubernetes.io/hostname", "operator": "In", "values": [host] }] }
            ] } } } })
        };
        let volumes = [
            pv("on-a", "1Gi", &["ReadWriteOnce"], affinity("a")),
            pv("on-b", "2Gi", &["ReadWriteOnce"], affinity("b")),
        ];
        let claim = pvc("1Gi", &["ReadWriteOnce"], json!({}));
        assert!(find_best_match(&claim, &volumes, None, true)
            .unwrap()
            .is_none());
        let node_b = NodeInfo {
            name: "b".into(),
            labels: [("kubernetes.io/hostname".to_string(), "b".to_string())].into(),
        };
        let found = find_best_match(&claim, &volumes, Some(&node_b), true)
            .unwrap()
            .unwrap();
        assert_eq!(found.metadata.name.as_deref(), Some("on-b"));
    }

    #[test]
    fn a_named_volume_is_checked_with_upstream_messages() {
        let claim = pvc("2Gi", &["ReadWriteOnce"], json!({}));
        let small = pv("small", "1Gi", &["ReadWriteOnce"], json!({}));
        assert_eq!(
            check_volume_satisfies_claim(&small, &claim).unwrap_err(),
            "requested PV is too small"
        );
        let classed = pv(
            "c",
            "5Gi",
            &["ReadWriteOnce"],
            json!({ "spec": { "storageClassName": "x" } }),
        );
        assert_eq!(
            check_volume_satisfies_claim(&classed, &claim).unwrap_err(),
            "storageClassName does not match"
        );
        let rox = pv("r", "5Gi", &["ReadOnlyMany"], json!({}));
        assert_eq!(
            check_volume_satisfies_claim(&rox, &claim).unwrap_err(),
            "incompatible accessMode"
        );
        assert!(check_volume_satisfies_claim(
            &pv("ok", "2Gi", &["ReadWriteOnce"], json!({})),
            &claim
        )
        .is_ok());
    }

    #[test]
    fn node_selector_terms_are_ored_and_expressions_anded() {
        let node = NodeInfo {
            name: "n1".into(),
            labels: [
                ("zone".to_string(), "z1".to_string()),
                ("gen".to_string(), "5".to_string()),
            ]
            .into(),
        };
        let sel = |terms: serde_json::Value| -> NodeSelector {
            serde_json::from_value(json!({ "nodeSelectorTerms": terms })).unwrap()
        };
        assert!(node_selector_matches(
            &sel(
                json!([{ "matchExpressions": [{ "key": "zone", "operator": "In", "values": ["z1"] }, { "key": "gen", "operator": "Gt", "values": ["4"] }] }])
            ),
            &node
        ));
        assert!(!node_selector_matches(
            &sel(
                json!([{ "matchExpressions": [{ "key": "zone", "operator": "In", "values": ["z1"] }, { "key": "gen", "operator": "Lt", "values": ["4"] }] }])
            ),
            &node
        ));
        assert!(node_selector_matches(
            &sel(
                json!([{ "matchExpressions": [{ "key": "zone", "operator": "NotIn", "values": ["z1"] }] }, { "matchFields": [{ "key": "metadata.name", "operator": "In", "values": ["n1"] }] }])
            ),
            &node
        ));
        assert!(!node_selector_matches(&sel(json!([{}])), &node));
    }
}
