//! The ownership graph (upstream's `GraphBuilder` and `uidToNode`), without
//! IO: objects observed by the monitors go in, the work they cause comes
//! out. An owner referenced before it is observed (or after it is gone) is a
//! *virtual* node, which the collector checks against the API.

use std::collections::{HashMap, HashSet};

pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
pub const ORPHAN_FINALIZER: &str = "orphan";

/// One entry of `metadata.ownerReferences`, as the graph keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub uid: String,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub block_owner_deletion: bool,
}

/// Who an object is: enough to GET or DELETE it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub api_version: String,
    pub kind: String,
    /// The namespace of the object, or for a virtual owner the namespace
    /// of the dependent that named it (used only if its kind is namespaced).
    pub namespace: Option<String>,
    pub name: String,
}

/// An object as a monitor saw it.
#[derive(Clone, Debug)]
pub struct Observed {
    pub uid: String,
    /// The monitor (resource) that saw it, for relists.
    pub resource: String,
    pub identity: Identity,
    pub owners: Vec<Owner>,
    pub being_deleted: bool,
    pub finalizers: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub identity: Identity,
    pub resource: String,
    pub owners: Vec<Owner>,
    pub dependents: HashSet<String>,
    pub is_virtual: bool,
    pub being_deleted: bool,
    /// Being deleted in the foreground: waiting for blocking dependents.
    pub deleting_dependents: bool,
    /// Being deleted with the orphan finalizer: dependents to release.
    pub orphaning: bool,
}

impl Node {
    fn new(identity: Identity, resource: String) -> Node {
        Node {
            identity,
            resource,
            owners: Vec::new(),
            dependents: HashSet::new(),
            is_virtual: true,
            being_deleted: false,
            deleting_dependents: false,
            orphaning: false,
        }
    }
}

/// What a graph change asks the collector to do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Work {
    /// Check the object (upstream's `attemptToDelete` queue): a virtual node
    /// is verified, an object whose owners are gone is collected, an owner
    /// deleting in the foreground is finalized when no dependent blocks it.
    AttemptToDelete(String),
    /// Release the dependents of an owner deleted with the orphan policy
    /// (upstream's `attemptToOrphan` queue).
    AttemptToOrphan(String),
}

#[derive(Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The dependents of `uid` that block its foreground deletion: those
    /// whose reference to it has `blockOwnerDeletion: true`.
    pub fn blocking_dependents(&self, uid: &str) -> Vec<String> {
        let Some(node) = self.nodes.get(uid) else {
            return Vec::new();
        };
        node.dependents
            .iter()
            .filter(|d| {
                self.nodes.get(*d).is_some_and(|dep| {
                    dep.owners
                        .iter()
                        .any(|o| o.uid == uid && o.block_owner_deletion)
                })
            })
            .cloned()
            .collect()
    }

    /// The uids of observed objects of one monitor.
    pub fn uids_of(&self, resource: &str) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| !n.is_virtual && n.resource == resource)
            .map(|(uid, _)| uid.clone())
            .collect()
    }

    fn add_dependency(
        &mut self,
        dependent: &str,
        owner: &Owner,
        namespace: &Option<String>,
        work: &mut Vec<Work>,
    ) {
        match self.nodes.get_mut(&owner.uid) {
            Some(node) => {
                node.dependents.insert(dependent.to_string());
                if node.is_virtual {
                    // An owner not observed (or seen deleted): check the
                    // dependent against the API.
                    work.push(Work::AttemptToDelete(dependent.to_string()));
                }
            }
            None => {
                let mut node = Node::new(
                    Identity {
                        api_version: owner.api_version.clone(),
                        kind: owner.kind.clone(),
                        namespace: namespace.clone(),
                        name: owner.name.clone(),
                    },
                    String::new(),
                );
                node.dependents.insert(dependent.to_string());
                self.nodes.insert(owner.uid.clone(), node);
                // Verify the owner exists.
                work.push(Work::AttemptToDelete(owner.uid.clone()));
            }
        }
    }

    fn remove_dependency(&mut self, dependent: &str, owner_uid: &str) {
        let drop_virtual = match self.nodes.get_mut(owner_uid) {
            Some(node) => {
                node.dependents.remove(dependent);
                node.is_virtual && node.dependents.is_empty()
            }
            None => false,
        };
        if drop_virtual {
            self.nodes.remove(owner_uid);
        }
    }

    /// An object was added or changed.
    pub fn observe(&mut self, o: Observed) -> Vec<Work> {
        let mut work = Vec::new();
        let deleting_dependents =
            o.being_deleted && o.finalizers.iter().any(|f| f == FOREGROUND_FINALIZER);
        let orphaning = o.being_deleted && o.finalizers.iter().any(|f| f == ORPHAN_FINALIZER);
        let old = self.nodes.get(&o.uid).map(|n| {
            (
                n.is_virtual,
                n.owners.clone(),
                n.deleting_dependents,
                n.orphaning,
            )
        });
        let (old_owners, was_deleting_dependents, was_orphaning) = match &old {
            // An observed object: diff its owners.
            Some((false, owners, dd, orph)) => (owners.clone(), *dd, *orph),
            // New, or a virtual node now observed: every owner is new.
            _ => (Vec::new(), false, false),
        };
        for removed in old_owners
            .iter()
            .filter(|r| !o.owners.iter().any(|n| n.uid == r.uid))
        {
            self.remove_dependency(&o.uid, &removed.uid);
            if self
                .nodes
                .get(&removed.uid)
                .is_some_and(|n| n.deleting_dependents)
            {
                work.push(Work::AttemptToDelete(removed.uid.clone()));
            }
        }
        for owner in &o.owners {
            match old_owners.iter().find(|r| r.uid == owner.uid) {
                None => self.add_dependency(&o.uid, owner, &o.identity.namespace, &mut work),
                Some(before) => {
                    // No longer blocking an owner that waits for it.
                    if before.block_owner_deletion
                        && !owner.block_owner_deletion
                        && self
                            .nodes
                            .get(&owner.uid)
                            .is_some_and(|n| n.deleting_dependents)
                    {
                        work.push(Work::AttemptToDelete(owner.uid.clone()));
                    }
                }
            }
        }
        let node = self
            .nodes
            .entry(o.uid.clone())
            .or_insert_with(|| Node::new(o.identity.clone(), o.resource.clone()));
        node.identity = o.identity;
        node.resource = o.resource;
        node.owners = o.owners;
        node.is_virtual = false;
        node.being_deleted = o.being_deleted;
        node.deleting_dependents = deleting_dependents;
        node.orphaning = orphaning;
        if orphaning && !was_orphaning {
            work.push(Work::AttemptToOrphan(o.uid.clone()));
        }
        if deleting_dependents && !was_deleting_dependents {
            for dep in &node.dependents {
                work.push(Work::AttemptToDelete(dep.clone()));
            }
            work.push(Work::AttemptToDelete(o.uid.clone()));
        }
        work
    }

    /// An object is gone (a watch delete, a relist that no longer has it, or
    /// a virtual owner found absent).
    pub fn remove(&mut self, uid: &str) -> Vec<Work> {
        let mut work = Vec::new();
        let Some(node) = self.nodes.remove(uid) else {
            return work;
        };
        for dep in &node.dependents {
            work.push(Work::AttemptToDelete(dep.clone()));
        }
        for owner in &node.owners {
            self.remove_dependency(uid, &owner.uid);
            if self
                .nodes
                .get(&owner.uid)
                .is_some_and(|n| n.deleting_dependents)
            {
                work.push(Work::AttemptToDelete(owner.uid.clone()));
            }
        }
        // Dependents still name it; keep it as a virtual node so that a
        // later change to them finds it (and it is checked again).
        if !node.dependents.is_empty() {
            let mut ghost = Node::new(node.identity, String::new());
            ghost.dependents = node.dependents;
            self.nodes.insert(uid.to_string(), ghost);
        }
        work
    }

    /// A virtual node was found absent in the API: forget it and have its
    /// dependents checked.
    pub fn remove_virtual(&mut self, uid: &str) -> Vec<Work> {
        match self.nodes.get(uid) {
            Some(n) if n.is_virtual => {}
            _ => return Vec::new(),
        }
        let node = self.nodes.remove(uid).unwrap();
        node.dependents
            .into_iter()
            .map(Work::AttemptToDelete)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(uid: &str, block: bool) -> Owner {
        Owner {
            uid: uid.into(),
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: format!("cm-{uid}"),
            block_owner_deletion: block,
        }
    }

    fn observed(uid: &str, owners: Vec<Owner>, finalizers: &[&str], deleting: bool) -> Observed {
        Observed {
            uid: uid.into(),
            resource: "configmaps".into(),
            identity: Identity {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: Some("default".into()),
                name: format!("cm-{uid}"),
            },
            owners,
            being_deleted: deleting,
            finalizers: finalizers.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn an_unseen_owner_becomes_a_virtual_node_to_verify() {
        let mut g = Graph::default();
        let work = g.observe(observed("d", vec![owner("o", false)], &[], false));
        assert!(work.contains(&Work::AttemptToDelete("o".into())));
        assert!(g.get("o").unwrap().is_virtual);
        // The owner shows up: no longer virtual, dependents kept.
        g.observe(observed("o", vec![], &[], false));
        let o = g.get("o").unwrap();
        assert!(!o.is_virtual);
        assert!(o.dependents.contains("d"));
    }

    #[test]
    fn deleting_an_owner_queues_its_dependents() {
        let mut g = Graph::default();
        g.observe(observed("o", vec![], &[], false));
        g.observe(observed("d1", vec![owner("o", false)], &[], false));
        g.observe(observed("d2", vec![owner("o", false)], &[], false));
        let work = g.remove("o");
        assert!(work.contains(&Work::AttemptToDelete("d1".into())));
        assert!(work.contains(&Work::AttemptToDelete("d2".into())));
    }

    #[test]
    fn foreground_deletion_queues_dependents_and_waits_for_blocking_ones() {
        let mut g = Graph::default();
        g.observe(observed("o", vec![], &[], false));
        g.observe(observed("d1", vec![owner("o", true)], &[], false));
        g.observe(observed("d2", vec![owner("o", false)], &[], false));
        let work = g.observe(observed("o", vec![], &[FOREGROUND_FINALIZER], true));
        assert!(work.contains(&Work::AttemptToDelete("d1".into())));
        assert!(work.contains(&Work::AttemptToDelete("d2".into())));
        assert!(work.contains(&Work::AttemptToDelete("o".into())));
        assert_eq!(g.blocking_dependents("o"), vec!["d1".to_string()]);
        // The blocking dependent goes: the owner is checked again.
        let work = g.remove("d1");
        assert!(work.contains(&Work::AttemptToDelete("o".into())));
        assert!(g.blocking_dependents("o").is_empty());
    }

    #[test]
    fn orphan_finalizer_queues_the_owner_once() {
        let mut g = Graph::default();
        g.observe(observed("o", vec![], &[], false));
        let work = g.observe(observed("o", vec![], &[ORPHAN_FINALIZER], true));
        assert_eq!(work, vec![Work::AttemptToOrphan("o".into())]);
        let again = g.observe(observed("o", vec![], &[ORPHAN_FINALIZER], true));
        assert!(again.is_empty());
    }

    #[test]
    fn a_released_dependent_leaves_its_owner() {
        let mut g = Graph::default();
        g.observe(observed("o", vec![], &[], false));
        g.observe(observed("d", vec![owner("o", true)], &[], false));
        g.observe(observed("d", vec![], &[], false));
        assert!(g.get("o").unwrap().dependents.is_empty());
    }

    #[test]
    fn a_virtual_owner_found_absent_queues_its_dependents() {
        let mut g = Graph::default();
        g.observe(observed("d", vec![owner("gone", false)], &[], false));
        let work = g.remove_virtual("gone");
        assert_eq!(work, vec![Work::AttemptToDelete("d".into())]);
        assert!(g.get("gone").is_none());
    }
}
