//! The status after a rollout step, with the Progressing condition judged
//! against progressDeadlineSeconds (upstream `progress.go`).

use k8s_openapi::api::apps::v1::ReplicaSet;

use super::util;
use super::{all_of, Run};
use crate::runner::Result;

impl Run<'_> {
    pub(super) async fn sync_rollout_status(
        &mut self,
        new_rs: Option<&ReplicaSet>,
        old: &[ReplicaSet],
    ) -> Result<()> {
        let now = util::now();
        let status = util::rollout_status(&all_of(new_rs, old), new_rs, &self.d, now);
        if self.d.status.as_ref() == Some(&status) {
            // Nothing new; look again when the deadline would pass.
            self.requeue = util::stuck_requeue_after(&self.d, &status, now);
            return Ok(());
        }
        self.d.status = Some(status);
        self.write_status().await
    }
}
