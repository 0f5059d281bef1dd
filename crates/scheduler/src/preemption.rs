//! DefaultPreemption.

use std::collections::HashMap;
use std::sync::Arc;

use controllers::events::Recorder;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;

use crate::algorithm::{histogram, FitError, Objects};
use crate::snapshot::{PodInfo, Snapshot};

pub enum Outcome {
    Nominate {
        node: String,
        victims: Vec<Arc<PodInfo>>,
    },
    Fail {
        message: String,
    },
}

pub fn preempt(
    snapshot: &Snapshot,
    _pod: &Arc<Pod>,
    _objects: &dyn Objects,
    fit: &FitError,
    _nominated: &HashMap<String, Vec<Arc<PodInfo>>>,
) -> Outcome {
    let _ = histogram(fit.node_status.values());
    let helpless = fit.prefilter.is_some() || fit.node_status.values().all(|s| s.unresolvable);
    let reason = if helpless {
        "Preemption is not helpful for scheduling"
    } else {
        "No preemption victims found for incoming pod"
    };
    Outcome::Fail {
        message: format!(
            "preemption: 0/{} nodes are available: {} {reason}",
            snapshot.len(),
            snapshot.len()
        ),
    }
}

pub async fn evict(
    _client: Client,
    _recorder: Recorder,
    _victim: Arc<Pod>,
    _preemptor: Arc<Pod>,
    _node: String,
) {
}
