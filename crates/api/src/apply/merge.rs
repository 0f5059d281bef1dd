//! structured-merge-diff's `merge.Updater`: ownership bookkeeping for
//! updates, and apply (merge the configuration, prune what the applier
//! stopped setting, detect conflicts with other managers).
//!
//! Managers recorded at another API version of the kind are compared at the
//! current one: krate serves one version per kind, and field paths rarely
//! differ between versions.

use super::fieldpath::{Path, Set};
use super::managed::{ManagedFields, ManagerId, VersionedSet};
use super::schema::Ty;
use super::typed::{self, Comparison};
use super::value;
use serde_json::Value;

/// Fields other managers own and an apply would change, by manager.
#[derive(Debug)]
pub(crate) struct Conflicts(pub Vec<(ManagerId, Path)>);

impl Conflicts {
    pub(crate) fn to_set(&self) -> Set {
        let mut s = Set::new();
        for (_, p) in &self.0 {
            s.insert(&p.0);
        }
        s
    }
}

pub(crate) struct Updater {
    pub ty: Ty,
    /// Fields the operation never records (upstream's reset fields).
    pub ignored: Set,
}

impl Updater {
    /// Takes from other managers the fields `new` changes relative to
    /// `old` (failing instead when `force` is false) and the fields it
    /// removes; drops managers left with nothing.
    fn update(
        &self,
        old: &Value,
        new: &Value,
        managers: &mut ManagedFields,
        workflow: &ManagerId,
        force: bool,
    ) -> Result<Comparison, Conflicts> {
        let compare = typed::compare(old, new, self.ty).exclude(&self.ignored);
        let changed = compare.modified.union(&compare.added);
        let mut conflicts: Vec<(ManagerId, Set)> = Vec::new();
        for (id, vs) in managers.iter() {
            if id == workflow {
                continue;
            }
            let c = vs.set.intersection(&changed);
            if !c.is_empty() {
                conflicts.push((id.clone(), c));
            }
        }
        if !force && !conflicts.is_empty() {
            return Err(Conflicts(
                conflicts
                    .into_iter()
                    .flat_map(|(id, set)| set.paths().into_iter().map(move |p| (id.clone(), p)))
                    .collect(),
            ));
        }
        for (id, c) in &conflicts {
            if let Some(vs) = managers.get_mut(id) {
                vs.set = vs.set.difference(c);
            }
        }
        if !compare.removed.is_empty() {
            for (id, vs) in managers.iter_mut() {
                if id != workflow {
                    vs.set = vs.set.difference(&compare.removed);
                }
            }
        }
        managers.retain(|_, vs| !vs.set.is_empty());
        Ok(compare)
    }

    /// `Updater.Update`, for a non-apply write: `manager` owns what changed.
    pub(crate) fn update_op(
        &self,
        live: &Value,
        new: &Value,
        version: &str,
        managers: &mut ManagedFields,
        manager: &ManagerId,
    ) {
        let compare = match self.update(live, new, managers, manager, true) {
            Ok(c) => c,
            Err(_) => unreachable!("forced updates do not conflict"),
        };
        let previous = managers
            .remove(manager)
            .map(|vs| vs.set)
            .unwrap_or_default();
        let set = previous
            .union(&compare.modified)
            .union(&compare.added)
            .difference(&compare.removed)
            .recursive_difference(&self.ignored);
        if !set.is_empty() {
            managers.insert(
                manager.clone(),
                VersionedSet {
                    set,
                    api_version: version.to_string(),
                    applied: false,
                },
            );
        }
    }

    /// `Updater.Apply`: the merged object (`None` when it equals `live`).
    pub(crate) fn apply(
        &self,
        live: &Value,
        config: &Value,
        version: &str,
        managers: &mut ManagedFields,
        manager: &ManagerId,
        force: bool,
    ) -> Result<Option<Value>, Conflicts> {
        let merged = typed::merge(Some(live), Some(config), self.ty)
            .unwrap_or_else(|| Value::Object(Default::default()));
        let last = managers.get(manager).map(|vs| vs.set.clone());
        let set = typed::to_field_set(config, self.ty).recursive_difference(&self.ignored);
        managers.insert(
            manager.clone(),
            VersionedSet {
                set,
                api_version: version.to_string(),
                applied: true,
            },
        );
        let new = match last {
            Some(last) if !last.is_empty() => self.prune(&merged, managers, &last),
            _ => merged,
        };
        self.update(live, &new, managers, manager, force)?;
        Ok((!value::equals(live, &new)).then_some(new))
    }

    fn remove(&self, v: &Value, set: &Set) -> Value {
        typed::remove_items(v, set, self.ty).unwrap_or_else(|| Value::Object(Default::default()))
    }

    fn named(&self, set: &Set) -> Set {
        typed::ensure_named_fields_are_members(set, Some(self.ty))
    }

    /// Removes what the applier set last time and no longer sets, unless
    /// another manager (or the new configuration) owns it.
    fn prune(&self, merged: &Value, managers: &ManagedFields, last: &Set) -> Value {
        let last = self.named(last);
        let pruned = self.remove(merged, &last);

        // addBackOwnedItems
        let managed = managers
            .values()
            .fold(Set::new(), |acc, vs| acc.union(&vs.set));
        let merged_set = self.named(&typed::to_field_set(merged, self.ty));
        let pruned_set = self.named(&typed::to_field_set(&pruned, self.ty));
        let keep = pruned_set.union(&self.named(&managed));
        let pruned = self.remove(merged, &merged_set.difference(&keep));

        // addBackDanglingItems
        let pruned_set = self.named(&typed::to_field_set(&pruned, self.ty));
        self.remove(
            merged,
            &merged_set.difference(&pruned_set).intersection(&last),
        )
    }
}
