//! `metadata.managedFields` as upstream's field manager keeps it: managers
//! identified by name, operation, API version (updates only) and
//! subresource; each with a set of fields, the API version it was recorded
//! at and the time of its last change; decoded from and encoded to the
//! object in upstream's order.

use super::fieldpath::Set;
use super::value::go_json_string;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub(crate) const APPLY: &str = "Apply";
pub(crate) const UPDATE: &str = "Update";

/// A manager identity (upstream's `BuildManagerIdentifier`), ordered as its
/// JSON encoding is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ManagerId {
    key: String,
    pub manager: String,
    pub operation: String,
    /// Empty for appliers: they keep one identity across versions.
    pub api_version: String,
    pub subresource: String,
}

impl ManagerId {
    pub(crate) fn new(
        manager: &str,
        operation: &str,
        api_version: &str,
        subresource: &str,
    ) -> ManagerId {
        let api_version = if operation == APPLY { "" } else { api_version };
        let mut key = String::from("{");
        let mut field = |name: &str, v: &str| {
            if v.is_empty() {
                return;
            }
            if key.len() > 1 {
                key.push(',');
            }
            key.push_str(&format!("\"{name}\":{}", go_json_string(v)));
        };
        field("manager", manager);
        field("operation", operation);
        field("apiVersion", api_version);
        field("subresource", subresource);
        key.push('}');
        ManagerId {
            key,
            manager: manager.to_string(),
            operation: operation.to_string(),
            api_version: api_version.to_string(),
            subresource: subresource.to_string(),
        }
    }

    /// A bare internal name (upstream's `current-operation`).
    pub(crate) fn internal(name: &str) -> ManagerId {
        ManagerId {
            key: name.to_string(),
            manager: name.to_string(),
            operation: String::new(),
            api_version: String::new(),
            subresource: String::new(),
        }
    }

    /// `printManager`: `"kubectl"`, `"kube-controller-manager" using apps/v1`.
    pub(crate) fn display(&self) -> String {
        let mut s = crate::gofmt::quote(&self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(
                " with subresource {}",
                crate::gofmt::quote(&self.subresource)
            ));
        }
        if self.operation == UPDATE {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// The fields of one manager.
#[derive(Clone, Debug)]
pub(crate) struct VersionedSet {
    pub set: Set,
    pub api_version: String,
    pub applied: bool,
}

pub(crate) type ManagedFields = BTreeMap<ManagerId, VersionedSet>;

/// The managers' fields and the times of their last change.
#[derive(Clone, Debug, Default)]
pub(crate) struct Managed {
    pub fields: ManagedFields,
    pub times: BTreeMap<ManagerId, Option<String>>,
}

impl Managed {
    /// Decodes `managedFields` (`DecodeManagedFields`).
    pub(crate) fn decode(entries: Option<&Value>) -> Result<Managed, String> {
        let mut managed = Managed::default();
        let entries = match entries {
            None | Some(Value::Null) => return Ok(managed),
            Some(Value::Array(a)) => a,
            Some(_) => return Err("managedFields must be a list".to_string()),
        };
        for (i, entry) in entries.iter().enumerate() {
            let Some(e) = entry.as_object() else {
                return Err(format!("managed fields entry {i} is not an object"));
            };
            let text = |k: &str| -> Result<String, String> {
                match e.get(k) {
                    None | Some(Value::Null) => Ok(String::new()),
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(_) => Err(format!("managed fields entry {i}: {k} must be a string")),
                }
            };
            let operation = text("operation")?;
            if operation != APPLY && operation != UPDATE {
                return Err("operation must be `Apply` or `Update`".to_string());
            }
            let api_version = text("apiVersion")?;
            if api_version.is_empty() {
                return Err("apiVersion must not be empty".to_string());
            }
            match text("fieldsType")?.as_str() {
                "FieldsV1" => {}
                "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
                other => {
                    return Err(format!(
                        "invalid fieldsType {} in managed fields entry {i}",
                        crate::gofmt::quote(other)
                    ))
                }
            }
            let id = ManagerId::new(
                &text("manager")?,
                &operation,
                &api_version,
                &text("subresource")?,
            );
            let set = match e.get("fieldsV1") {
                None => Set::new(),
                Some(v) => Set::from_fields_v1(v).map_err(|err| {
                    format!(
                        "error decoding versioned set from {}: error decoding set: {err}",
                        entry
                    )
                })?,
            };
            let time = text("time")?;
            managed
                .times
                .insert(id.clone(), (!time.is_empty()).then_some(time));
            managed.fields.insert(
                id,
                VersionedSet {
                    set,
                    api_version,
                    applied: operation == APPLY,
                },
            );
        }
        Ok(managed)
    }

    /// Encodes the entries in upstream's order; `None` when there are none.
    pub(crate) fn encode(&self) -> Option<Value> {
        if self.fields.is_empty() {
            return None;
        }
        let mut entries: Vec<(&ManagerId, &VersionedSet, Option<&String>)> = self
            .fields
            .iter()
            .map(|(id, vs)| (id, vs, self.times.get(id).and_then(Option::as_ref)))
            .collect();
        let operation = |id: &ManagerId, vs: &VersionedSet| -> String {
            if vs.applied {
                APPLY.to_string()
            } else {
                id.operation.clone()
            }
        };
        entries.sort_by(|(ia, va, ta), (ib, vb, tb)| {
            operation(ia, va)
                .cmp(&operation(ib, vb))
                .then_with(|| unix_seconds(*ta).cmp(&unix_seconds(*tb)))
                .then_with(|| ia.manager.cmp(&ib.manager))
                .then_with(|| va.api_version.cmp(&vb.api_version))
                .then_with(|| ia.subresource.cmp(&ib.subresource))
        });
        let list = entries
            .into_iter()
            .map(|(id, vs, time)| {
                let mut e = Map::new();
                if !id.manager.is_empty() {
                    e.insert("manager".into(), Value::String(id.manager.clone()));
                }
                e.insert("operation".into(), Value::String(operation(id, vs)));
                if !vs.api_version.is_empty() {
                    e.insert("apiVersion".into(), Value::String(vs.api_version.clone()));
                }
                if let Some(t) = time {
                    e.insert("time".into(), Value::String(t.clone()));
                }
                e.insert("fieldsType".into(), Value::String("FieldsV1".into()));
                e.insert("fieldsV1".into(), vs.set.to_fields_v1());
                if !id.subresource.is_empty() {
                    e.insert("subresource".into(), Value::String(id.subresource.clone()));
                }
                Value::Object(e)
            })
            .collect();
        Some(Value::Array(list))
    }

    /// Keeps at most `max` update managers, folding the oldest into one
    /// `ancient-changes` entry per API version (`capManagersManager`).
    pub(crate) fn cap_update_managers(&mut self, max: usize) {
        let mut updaters: Vec<ManagerId> = self
            .fields
            .iter()
            .filter(|(_, vs)| !vs.applied)
            .map(|(id, _)| id.clone())
            .collect();
        if updaters.len() <= max {
            return;
        }
        let time_of = |id: &ManagerId| unix_seconds(self.times.get(id).and_then(Option::as_ref));
        updaters.sort_by(|a, b| time_of(a).cmp(&time_of(b)).then_with(|| a.cmp(b)));
        let mut first_of_version: BTreeMap<String, ManagerId> = BTreeMap::new();
        let mut length = updaters.len();
        for id in updaters {
            if length <= max {
                break;
            }
            let Some(vs) = self.fields.get(&id).cloned() else {
                continue;
            };
            let time = self.times.get(&id).cloned().flatten();
            let bucket = ManagerId::new("ancient-changes", UPDATE, &vs.api_version, "");
            match first_of_version.get(&vs.api_version) {
                Some(first) => {
                    if !self.fields.contains_key(&bucket) {
                        if let Some(s) = self.fields.remove(first) {
                            self.times.remove(first);
                            self.fields.insert(bucket.clone(), s);
                        }
                    }
                    let merged = match self.fields.get(&bucket) {
                        Some(b) => vs.set.union(&b.set),
                        None => vs.set.clone(),
                    };
                    self.fields.insert(
                        bucket.clone(),
                        VersionedSet {
                            set: merged,
                            api_version: vs.api_version.clone(),
                            applied: false,
                        },
                    );
                    self.fields.remove(&id);
                    self.times.remove(&id);
                    length -= 1;
                    self.times.insert(bucket, time);
                }
                None => {
                    first_of_version.insert(vs.api_version.clone(), id);
                }
            }
        }
    }
}

/// Seconds since the epoch of an RFC 3339 time; 0 when absent or unreadable
/// (upstream sorts entries without a time first).
pub(crate) fn unix_seconds(t: Option<&String>) -> i64 {
    t.and_then(|t| parse_rfc3339(t)).unwrap_or(0)
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + sec - offset)
}
