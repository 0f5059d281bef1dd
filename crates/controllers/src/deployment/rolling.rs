//! RollingUpdate: the new ReplicaSet grows within maxSurge while old ones
//! shrink within maxUnavailable (upstream `rolling.go`).

use k8s_openapi::api::apps::v1::ReplicaSet;

use super::util;
use super::{active, all_of, uid, Run};
use crate::runner::{Error, Result};

impl Run<'_> {
    pub(super) async fn rollout_rolling(&mut self) -> Result<()> {
        let (new_rs, old) = self.get_all_replica_sets_and_sync_revision(true).await?;
        let Some(new_rs) = new_rs else {
            return Err(Error::Other("no new replica set".into()));
        };
        let new_uid = uid(&new_rs);

        if self.reconcile_new_replica_set(&new_rs, &old).await? {
            let (new_rs, old) = self.split(Some(&new_uid));
            return self.sync_rollout_status(new_rs.as_ref(), &old).await;
        }

        if self.reconcile_old_replica_sets(&new_rs, &old).await {
            let (new_rs, old) = self.split(Some(&new_uid));
            return self.sync_rollout_status(new_rs.as_ref(), &old).await;
        }

        let status = self.d.status.clone().unwrap_or_default();
        if util::deployment_complete(&self.d, &status) {
            self.cleanup_deployment(&old).await?;
        }
        let (new_rs, old) = self.split(Some(&new_uid));
        self.sync_rollout_status(new_rs.as_ref(), &old).await
    }

    /// Grows the new ReplicaSet as far as maxSurge allows (or shrinks it to
    /// the deployment's size); whether it scaled.
    async fn reconcile_new_replica_set(
        &mut self,
        new_rs: &ReplicaSet,
        old: &[ReplicaSet],
    ) -> Result<bool> {
        let want = util::replicas(&self.d);
        let have = util::rs_replicas(new_rs);
        if have == want {
            return Ok(false);
        }
        if have > want {
            return Ok(self
                .scale_replica_set_and_record_event(new_rs, want)
                .await?
                .0);
        }
        let count = util::new_rs_new_replicas(&self.d, &all_of(Some(new_rs), old), new_rs)
            .map_err(Error::Other)?;
        Ok(self
            .scale_replica_set_and_record_event(new_rs, count)
            .await?
            .0)
    }

    /// Shrinks old ReplicaSets as far as maxUnavailable allows, unhealthy
    /// replicas first; whether anything scaled. Failures are retried on
    /// the next sync, as upstream does.
    async fn reconcile_old_replica_sets(
        &mut self,
        new_rs: &ReplicaSet,
        old: &[ReplicaSet],
    ) -> bool {
        let mut old_active = active(old);
        if util::spec_replicas_sum(&old_active) == 0 {
            return false;
        }
        let max_scaled_down = util::max_scaled_down(&self.d, &all_of(Some(new_rs), old), new_rs);
        if max_scaled_down <= 0 {
            return false;
        }
        let Ok(cleaned) = self
            .cleanup_unhealthy_replicas(&mut old_active, max_scaled_down)
            .await
        else {
            return false;
        };
        let Ok(scaled) = self
            .scale_down_old_replica_sets_for_rolling_update(new_rs, &mut old_active)
            .await
        else {
            return false;
        };
        cleaned + scaled > 0
    }

    /// Scales away old replicas that are not available: removing them
    /// does not lower availability.
    async fn cleanup_unhealthy_replicas(
        &mut self,
        old: &mut [ReplicaSet],
        max_cleanup: i32,
    ) -> Result<i32> {
        old.sort_by(util::by_creation);
        let mut total = 0;
        for rs in old.iter_mut() {
            if total >= max_cleanup {
                break;
            }
            let have = util::rs_replicas(rs);
            let available = util::rs_available(rs);
            if have == 0 || have == available {
                continue;
            }
            let down = (max_cleanup - total).min(have - available);
            let (_, updated) = self
                .scale_replica_set_and_record_event(rs, have - down)
                .await?;
            *rs = updated;
            total += down;
        }
        Ok(total)
    }

    /// Scales old ReplicaSets down, oldest first, by what the available
    /// pods exceed the availability floor.
    async fn scale_down_old_replica_sets_for_rolling_update(
        &mut self,
        new_rs: &ReplicaSet,
        old: &mut [ReplicaSet],
    ) -> Result<i32> {
        let min_available = util::replicas(&self.d) - util::max_unavailable(&self.d);
        let available = util::available_replicas_sum(old.iter().chain(Some(new_rs)));
        if available <= min_available {
            return Ok(0);
        }
        old.sort_by(util::by_creation);
        let budget = available - min_available;
        let mut total = 0;
        for rs in old.iter_mut() {
            if total >= budget {
                break;
            }
            let have = util::rs_replicas(rs);
            if have == 0 {
                continue;
            }
            let down = have.min(budget - total);
            let (_, updated) = self
                .scale_replica_set_and_record_event(rs, have - down)
                .await?;
            *rs = updated;
            total += down;
        }
        Ok(total)
    }
}
