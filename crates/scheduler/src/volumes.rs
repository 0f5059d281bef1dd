//! VolumeBinding and VolumeRestrictions.

use k8s_openapi::api::core::v1::Pod;

use crate::algorithm::Objects;
use crate::filters::Status;
use crate::snapshot::NodeInfo;

#[derive(Default)]
pub struct State {}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Actions {}

pub fn prefilter(_pod: &Pod, _objects: &dyn Objects) -> Result<State, Status> {
    Ok(State {})
}

pub fn filter(_state: &State, _node: &NodeInfo, _objects: &dyn Objects) -> Option<Status> {
    None
}

pub fn actions(_state: &State, _node: &NodeInfo, _objects: &dyn Objects) -> Actions {
    Actions {}
}

pub const BINDING: &str = "VolumeBinding";
pub const RESTRICTIONS: &str = "VolumeRestrictions";

/// Carries out the volume actions before the pod is bound.
pub async fn apply(
    _client: &kube::Client,
    _pod: &Pod,
    _node: &str,
    _actions: &Actions,
) -> Result<(), kube::Error> {
    Ok(())
}
