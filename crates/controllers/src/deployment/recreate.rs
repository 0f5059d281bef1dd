//! Recreate: every old pod goes before the new ReplicaSet starts any
//! (upstream `recreate.go`).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;

use super::util;
use super::{active, uid, Run};
use crate::runner::Result;

impl Run<'_> {
    pub(super) async fn rollout_recreate(&mut self) -> Result<()> {
        // No new ReplicaSet yet: it must not scale up before the old ones
        // are down.
        let (new_rs, old) = self.get_all_replica_sets_and_sync_revision(false).await?;
        let new_uid = new_rs.as_ref().map(uid);

        let mut scaled_down = false;
        for rs in active(&old) {
            if self.scale_replica_set_and_record_event(&rs, 0).await?.0 {
                scaled_down = true;
            }
        }
        if scaled_down {
            let (new_rs, old) = self.split(new_uid.as_deref());
            return self.sync_rollout_status(new_rs.as_ref(), &old).await;
        }

        if old_pods_running(new_rs.as_ref(), &old, &self.pod_map()) {
            return self.sync_rollout_status(new_rs.as_ref(), &old).await;
        }

        let (new_rs, old) = match new_rs {
            Some(rs) => (Some(rs), old),
            None => self.get_all_replica_sets_and_sync_revision(true).await?,
        };
        let new_uid = new_rs.as_ref().map(uid);
        if let Some(rs) = &new_rs {
            self.scale_replica_set_and_record_event(rs, util::replicas(&self.d))
                .await?;
        }

        let status = self.d.status.clone().unwrap_or_default();
        if util::deployment_complete(&self.d, &status) {
            self.cleanup_deployment(&old).await?;
        }
        let (new_rs, old) = self.split(new_uid.as_deref());
        self.sync_rollout_status(new_rs.as_ref(), &old).await
    }
}

/// Whether old ReplicaSets still report pods, or old pods are not yet in
/// a terminal phase.
fn old_pods_running(
    new_rs: Option<&ReplicaSet>,
    old: &[ReplicaSet],
    pods: &BTreeMap<String, Vec<Arc<Pod>>>,
) -> bool {
    if util::actual_replicas_sum(old) > 0 {
        return true;
    }
    let new_uid = new_rs.map(uid);
    pods.iter()
        .filter(|(rs_uid, _)| Some(*rs_uid) != new_uid.as_ref())
        .flat_map(|(_, pods)| pods)
        .any(|p| !matches!(crate::pod::phase(p), "Failed" | "Succeeded"))
}
