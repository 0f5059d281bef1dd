//! PodTopologySpread.

use crate::algorithm::{CycleState, Objects};
use crate::filters::Status;
use crate::snapshot::{NodeInfo, PodInfo, Snapshot};

pub struct State {}

pub fn prefilter(_pod: &PodInfo, _snapshot: &Snapshot, _objects: &dyn Objects) -> Option<State> {
    None
}

pub fn filter(_state: &State, _pod: &PodInfo, _node: &NodeInfo) -> Option<Status> {
    None
}

pub fn score(
    _state: &CycleState<'_>,
    _snapshot: &Snapshot,
    _nodes: &[&NodeInfo],
) -> Option<Vec<i64>> {
    None
}

pub const PLUGIN: &str = "PodTopologySpread";
