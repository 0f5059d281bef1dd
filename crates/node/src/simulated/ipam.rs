//! Pod addresses of the simulated nodes, as host-local IPAM hands them
//! out: each node owns a /24, `.1` is its bridge, pods get `.2` to `.254`
//! round-robin (an address freed is not reused at once), one address per
//! pod UID until the pod ends.

use std::collections::HashMap;
use std::net::Ipv4Addr;

struct Block {
    network: u32,
    next: u32,
    used: HashMap<u32, String>,
}

const FIRST: u32 = 2;
const LAST: u32 = 254;

#[derive(Default)]
pub struct Ipam {
    blocks: Vec<Block>,
    by_uid: HashMap<String, (usize, u32)>,
}

impl Ipam {
    /// One /24 per node, from each node's network address.
    pub fn new(networks: impl IntoIterator<Item = Ipv4Addr>) -> Ipam {
        Ipam {
            blocks: networks
                .into_iter()
                .map(|n| Block {
                    network: u32::from(n),
                    next: FIRST,
                    used: HashMap::new(),
                })
                .collect(),
            by_uid: HashMap::new(),
        }
    }

    /// Records an address a pod already has (after a restart). False if
    /// it is not in the node's block or another pod holds it.
    pub fn reserve(&mut self, node: usize, uid: &str, ip: Ipv4Addr) -> bool {
        let Some(block) = self.blocks.get_mut(node) else {
            return false;
        };
        let offset = u32::from(ip).wrapping_sub(block.network);
        if !(FIRST..=LAST).contains(&offset) {
            return false;
        }
        match block.used.get(&offset) {
            Some(holder) => holder == uid,
            None => {
                block.used.insert(offset, uid.to_string());
                self.by_uid.insert(uid.to_string(), (node, offset));
                true
            }
        }
    }

    /// The pod's address on `node`, allocated on first use; `None` when the
    /// block is full.
    pub fn assign(&mut self, node: usize, uid: &str) -> Option<Ipv4Addr> {
        if let Some(&(n, offset)) = self.by_uid.get(uid) {
            if n == node {
                return Some(Ipv4Addr::from(self.blocks[n].network + offset));
            }
            self.release(uid);
        }
        let block = self.blocks.get_mut(node)?;
        let span = LAST - FIRST + 1;
        for step in 0..span {
            let offset = FIRST + (block.next - FIRST + step) % span;
            if let std::collections::hash_map::Entry::Vacant(e) = block.used.entry(offset) {
                e.insert(uid.to_string());
                block.next = FIRST + (offset - FIRST + 1) % span;
                self.by_uid.insert(uid.to_string(), (node, offset));
                return Some(Ipv4Addr::from(block.network + offset));
            }
        }
        None
    }

    /// Frees the pod's address, if it has one.
    pub fn release(&mut self, uid: &str) {
        if let Some((node, offset)) = self.by_uid.remove(uid) {
            self.blocks[node].used.remove(&offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipam() -> Ipam {
        Ipam::new([Ipv4Addr::new(10, 42, 0, 0), Ipv4Addr::new(10, 42, 1, 0)])
    }

    #[test]
    fn addresses_start_at_dot_2_and_stay_with_their_pod() {
        let mut ipam = ipam();
        assert_eq!(ipam.assign(0, "a"), Some(Ipv4Addr::new(10, 42, 0, 2)));
        assert_eq!(ipam.assign(0, "b"), Some(Ipv4Addr::new(10, 42, 0, 3)));
        assert_eq!(ipam.assign(0, "a"), Some(Ipv4Addr::new(10, 42, 0, 2)));
        assert_eq!(ipam.assign(1, "c"), Some(Ipv4Addr::new(10, 42, 1, 2)));
    }

    #[test]
    fn a_freed_address_is_not_reused_at_once() {
        let mut ipam = ipam();
        ipam.assign(0, "a");
        ipam.release("a");
        assert_eq!(ipam.assign(0, "b"), Some(Ipv4Addr::new(10, 42, 0, 3)));
    }

    #[test]
    fn a_full_block_hands_out_nothing_until_an_address_is_freed() {
        let mut ipam = ipam();
        for i in 0..253 {
            assert!(ipam.assign(0, &format!("p{i}")).is_some());
        }
        assert_eq!(ipam.assign(0, "late"), None);
        ipam.release("p7");
        assert_eq!(ipam.assign(0, "late"), Some(Ipv4Addr::new(10, 42, 0, 9)));
    }

    #[test]
    fn reserved_addresses_are_skipped() {
        let mut ipam = ipam();
        assert!(ipam.reserve(0, "old", Ipv4Addr::new(10, 42, 0, 2)));
        assert!(!ipam.reserve(0, "other", Ipv4Addr::new(10, 42, 0, 2)));
        assert!(!ipam.reserve(0, "x", Ipv4Addr::new(10, 42, 1, 5)));
        assert_eq!(ipam.assign(0, "new"), Some(Ipv4Addr::new(10, 42, 0, 3)));
    }
}
