//! ControllerRevisions, the history of a StatefulSet's or DaemonSet's pod
//! template (upstream `pkg/controller/history`): a revision stores the
//! template as the strategic-merge patch `{"spec":{"template":{...,
//! "$patch":"replace"}}}`, so `kubectl rollout undo` can apply it as is.
//! Revisions are named `<owner>-<hash>` and numbered; the pure helpers here
//! hash, name, order and read them.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::{json, Value};

/// The characters `rand.SafeEncodeString` maps bytes to: no vowels (no
/// words) and no easily confused characters.
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Upstream's `rand.SafeEncodeString`.
pub fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| ALPHANUMS[b as usize % ALPHANUMS.len()] as char)
        .collect()
}

/// 32-bit FNV-1 (Go's `fnv.New32`).
pub fn fnv32(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in data {
        h = h.wrapping_mul(0x01000193);
        h ^= u32::from(*b);
    }
    h
}

/// 32-bit FNV-1a (Go's `fnv.New32a`).
pub fn fnv32a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x01000193);
    }
    h
}

/// The hash of a revision's data and collision count (upstream
/// `HashControllerRevision`): FNV-1 of the data, then of the count in
/// decimal, safe-encoded.
pub fn hash_revision(data: &Value, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(data).unwrap_or_default();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(c.to_string().as_bytes());
    }
    safe_encode(&fnv32(&bytes).to_string())
}

/// The hash of a pod template and collision count, upstream's
/// `controller.ComputeHash`: FNV-1a of the template, then of the count as
/// 8 bytes (the low 4 little-endian, as Go's
/// `binary.LittleEndian.PutUint32` into an 8-byte buffer), the 32-bit sum
/// in decimal, safe-encoded — so 1 to 10 characters of upstream's
/// alphabet. It names a Deployment's ReplicaSets (`pod-template-hash`) and
/// a DaemonSet's revisions.
///
/// Upstream hashes Go's `%#v`-style deep print of the struct; we hash the
/// template's JSON, serialized from the typed value (fixed field order,
/// sorted maps), so a template always gets the same hash, across restarts
/// too, but not the string a Go controller would pick.
pub fn hash_template(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(template).unwrap_or_default();
    if let Some(c) = collision_count {
        let mut count = [0u8; 8];
        count[..4].copy_from_slice(&(c as u32).to_le_bytes());
        bytes.extend_from_slice(&count);
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

/// `<prefix>-<hash>`, the prefix cut to 223 characters so the name stays
/// a valid object name (upstream `ControllerRevisionName`).
pub fn revision_name(prefix: &str, hash: &str) -> String {
    let prefix = match prefix.char_indices().nth(223) {
        Some((i, _)) => &prefix[..i],
        None => prefix,
    };
    format!("{prefix}-{hash}")
}

/// The revision data for a pod template: the patch that puts this
/// template back (upstream `getPatch`).
pub fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut t {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({ "spec": { "template": t } })
}

/// The pod template a revision holds (upstream `ApplyRevision`, which
/// patches the owner with the revision's data; the data only replaces the
/// template).
pub fn template_of(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = revision.data.as_ref()?.0.pointer("/spec/template")?.clone();
    if let Value::Object(m) = &mut t {
        m.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

/// The data of a revision (`Value::Null` when absent).
pub fn data(revision: &ControllerRevision) -> &Value {
    static NULL: Value = Value::Null;
    revision.data.as_ref().map(|d| &d.0).unwrap_or(&NULL)
}

/// Orders revisions by number, then by creation time, then by name
/// (upstream `SortControllerRevisions`).
pub fn sort(revisions: &mut [Arc<ControllerRevision>]) {
    revisions.sort_by(|a, b| {
        a.revision
            .cmp(&b.revision)
            .then_with(|| {
                let ta = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
                let tb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
                ta.cmp(&tb)
            })
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

/// The number for a new revision: one past the highest (revisions sorted).
pub fn next_revision(sorted: &[Arc<ControllerRevision>]) -> i64 {
    sorted.last().map_or(1, |r| r.revision + 1)
}

/// The revisions whose data equals `data`, in the given order (upstream
/// `FindEqualRevisions`).
pub fn find_equal<'a>(
    sorted: &'a [Arc<ControllerRevision>],
    data: &Value,
) -> Vec<&'a Arc<ControllerRevision>> {
    sorted.iter().filter(|r| self::data(r) == data).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_go_hash_fnv() {
        // Go: fnv.New32() / fnv.New32a() of "hello".
        assert_eq!(fnv32(b"hello"), 0xb6fa7167);
        assert_eq!(fnv32a(b"hello"), 0x4f9f2cab);
    }

    #[test]
    fn safe_encode_uses_no_vowels() {
        assert_eq!(safe_encode("0123"), "4567");
        let s = safe_encode("3412659123");
        assert!(s.chars().all(|c| !"aeiou".contains(c)));
        assert_eq!(s.len(), 10);
    }

    fn template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": image}]}
        }))
        .unwrap()
    }

    #[test]
    fn template_hash_has_upstreams_alphabet_and_length() {
        let h = hash_template(&template("nginx:1"), None);
        // A u32 in decimal is 1 to 10 digits, each mapped to one of
        // upstream's characters ('0'..'9' land on "4567895bcdf"'s range).
        assert!((1..=10).contains(&h.len()), "{h}");
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert!(h.chars().all(|c| "456789bcdf".contains(c)), "{h}");
    }

    #[test]
    fn template_hash_is_stable_and_follows_the_template_and_collision_count() {
        let t = template("nginx:1");
        let h = hash_template(&t, None);
        // The same template read back (as after a restart) hashes alike.
        let reread: PodTemplateSpec =
            serde_json::from_slice(&serde_json::to_vec(&t).unwrap()).unwrap();
        assert_eq!(hash_template(&reread, None), h);
        assert_ne!(hash_template(&template("nginx:2"), None), h);
        let with_count: Vec<String> = (0..3).map(|c| hash_template(&t, Some(c))).collect();
        assert_ne!(with_count[0], h, "a count of 0 still adds its bytes");
        assert_ne!(with_count[0], with_count[1]);
        assert_ne!(with_count[1], with_count[2]);
    }

    #[test]
    fn collision_count_is_hashed_as_eight_little_endian_bytes() {
        let t = template("nginx:1");
        let mut bytes = serde_json::to_vec(&t).unwrap();
        bytes.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            hash_template(&t, Some(2)),
            safe_encode(&fnv32a(&bytes).to_string())
        );
    }

    #[test]
    fn revision_names_cut_long_prefixes() {
        assert_eq!(revision_name("web", "5c7b"), "web-5c7b");
        let long = "a".repeat(300);
        assert_eq!(revision_name(&long, "h").len(), 225);
    }

    #[test]
    fn a_template_survives_the_round_trip_through_revision_data() {
        let template: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}
        }))
        .unwrap();
        let data = template_patch(&template);
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        let revision = ControllerRevision {
            data: Some(k8s_openapi::apimachinery::pkg::runtime::RawExtension(data)),
            ..Default::default()
        };
        assert_eq!(template_of(&revision), Some(template));
    }
}
