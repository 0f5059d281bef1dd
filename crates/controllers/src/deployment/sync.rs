//! Finding and creating the new ReplicaSet, scaling (proportionally in the
//! middle of a rollout), pruning old revisions, and the deployment's
//! status (upstream `sync.go`).

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};

use super::util::{self, PROGRESSING};
use super::{active, all_of, api_message, rs_name, uid, Run};
use crate::owner;
use crate::runner::{self, Error, Result};

impl Run<'_> {
    /// Status only: a deployment being deleted.
    pub(super) async fn sync_status_only(&mut self) -> Result<()> {
        let (new_rs, old) = self.get_all_replica_sets_and_sync_revision(false).await?;
        self.sync_deployment_status(new_rs.as_ref(), &old).await
    }

    /// Scaling events and paused deployments: resize without rolling out.
    pub(super) async fn sync(&mut self) -> Result<()> {
        let (new_rs, old) = self.get_all_replica_sets_and_sync_revision(false).await?;
        self.scale(new_rs.as_ref(), &old).await?;
        let new_uid = new_rs.as_ref().map(uid);
        let (new_rs, old) = self.split(new_uid.as_deref());
        if util::paused(&self.d) && super::rollback::rollback_to(&self.d).is_none() {
            self.cleanup_deployment(&old).await?;
        }
        self.sync_deployment_status(new_rs.as_ref(), &old).await
    }

    pub(super) async fn check_paused_conditions(&mut self) -> Result<()> {
        if util::progress_deadline(&self.d).is_none() {
            return Ok(());
        }
        let status = self.d.status.clone().unwrap_or_default();
        let reason = util::condition_reason(&status, PROGRESSING);
        if reason == Some(util::TIMED_OUT) {
            // A reported lack of progress stays.
            return Ok(());
        }
        let paused_cond = reason == Some(util::PAUSED);
        let paused = util::paused(&self.d);
        let condition = if paused && !paused_cond {
            util::new_condition(
                PROGRESSING,
                "Unknown",
                util::PAUSED,
                "Deployment is paused",
                util::now(),
            )
        } else if !paused && paused_cond {
            util::new_condition(
                PROGRESSING,
                "Unknown",
                util::RESUMED,
                "Deployment is resumed",
                util::now(),
            )
        } else {
            return Ok(());
        };
        util::set_condition(
            self.d.status.get_or_insert_with(Default::default),
            condition,
        );
        self.write_status().await
    }

    /// The new ReplicaSet (created if asked and missing) and the old ones,
    /// with the revisions of the new one and of the deployment brought up
    /// to date (upstream `getAllReplicaSetsAndSyncRevision`).
    pub(super) async fn get_all_replica_sets_and_sync_revision(
        &mut self,
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>)> {
        let existing_uid = util::find_new_replica_set(&self.d, &self.rs_list).map(uid);
        let (_, old) = self.split(existing_uid.as_deref());
        let new_rs = self.get_new_replica_set(&old, create).await?;
        let (new_rs2, old) = self.split(new_rs.as_ref().map(uid).as_deref());
        Ok((new_rs2.or(new_rs), old))
    }

    async fn get_new_replica_set(
        &mut self,
        old: &[ReplicaSet],
        create: bool,
    ) -> Result<Option<ReplicaSet>> {
        let existing = util::find_new_replica_set(&self.d, &self.rs_list).cloned();
        let new_revision = util::max_revision(old) + 1;

        if let Some(existing) = existing {
            let mut copy = existing.clone();
            let annotations_updated =
                util::set_new_replica_set_annotations(&self.d, &mut copy, new_revision, true);
            let min_ready = util::min_ready_seconds(&self.d);
            let min_ready_changed = copy
                .spec
                .as_ref()
                .and_then(|s| s.min_ready_seconds)
                .unwrap_or(0)
                != min_ready;
            if annotations_updated || min_ready_changed {
                if min_ready_changed {
                    copy.spec
                        .get_or_insert_with(Default::default)
                        .min_ready_seconds = Some(min_ready);
                }
                return Ok(Some(self.update_rs(&copy).await?));
            }
            let revision = util::annotation(&copy.metadata, util::REVISION)
                .unwrap_or_default()
                .to_string();
            let mut needs_update = util::set_deployment_revision(&mut self.d, &revision);
            let has_progressing = self
                .d
                .status
                .as_ref()
                .is_some_and(|s| util::get_condition(s, PROGRESSING).is_some());
            if util::progress_deadline(&self.d).is_some() && !has_progressing {
                let msg = format!("Found new replica set \"{}\"", rs_name(&copy));
                let status = self.d.status.get_or_insert_with(Default::default);
                util::set_condition(
                    status,
                    util::new_condition(PROGRESSING, "True", util::FOUND_NEW_RS, msg, util::now()),
                );
                needs_update = true;
            }
            if needs_update {
                self.write_status().await?;
            }
            return Ok(Some(copy));
        }

        if !create {
            return Ok(None);
        }

        let spec = self.d.spec.clone().unwrap_or_default();
        let collision_count = self.d.status.as_ref().and_then(|s| s.collision_count);
        let hash = util::compute_hash(&spec.template, collision_count);
        let mut template = spec.template.clone();
        template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(Default::default)
            .insert(util::POD_TEMPLATE_HASH.into(), hash.clone());
        let mut selector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(util::POD_TEMPLATE_HASH.into(), hash.clone());
        let mut new_rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{}-{}", self.name(), hash)),
                namespace: Some(self.ns().to_string()),
                owner_references: Some(vec![owner::controller_ref(&self.d)]),
                labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: Some(util::min_ready_seconds(&self.d)).filter(|s| *s != 0),
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let count = {
            let all = all_of(Some(&new_rs), old);
            util::new_rs_new_replicas(&self.d, &all, &new_rs).map_err(Error::Other)?
        };
        util::set_rs_replicas(&mut new_rs, count);
        util::set_new_replica_set_annotations(&self.d, &mut new_rs, new_revision, false);

        let name = rs_name(&new_rs);
        let mut already_exists = false;
        let created = match self.rs_api().create(&PostParams::default(), &new_rs).await {
            Ok(rs) => rs,
            Err(e) if runner::is_conflict(&e) => {
                already_exists = true;
                // A slow cache, or a hash collision with another template.
                let found = match self
                    .c
                    .replica_sets
                    .get(&crate::informer::Key::new(self.ns(), &name))
                {
                    Some(rs) => (*rs).clone(),
                    None => self.rs_api().get(&name).await?,
                };
                let ours = owner::controller_of(&found.metadata)
                    .is_some_and(|r| Some(r.uid.as_str()) == self.d.metadata.uid.as_deref());
                if ours && util::equal_ignore_hash(&spec.template, &util::rs_template(&found)) {
                    found
                } else {
                    let status = self.d.status.get_or_insert_with(Default::default);
                    status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
                    if self.write_status().await.is_ok() {
                        tracing::info!(deployment = %self.name(), "found a hash collision for deployment; bumped collisionCount");
                    }
                    return Err(e.into());
                }
            }
            Err(e) => {
                let e = Error::from(e);
                let msg = format!(
                    "Failed to create new replica set \"{}\": {}",
                    name,
                    api_message(&e)
                );
                if util::progress_deadline(&self.d).is_some() {
                    util::set_condition(
                        self.d.status.get_or_insert_with(Default::default),
                        util::new_condition(
                            PROGRESSING,
                            "False",
                            util::FAILED_RS_CREATE,
                            msg.clone(),
                            util::now(),
                        ),
                    );
                    let _ = self.write_status().await;
                }
                self.c
                    .recorder
                    .warning(&self.d, util::FAILED_RS_CREATE, msg);
                return Err(e);
            }
        };
        self.remember(&created);
        if !already_exists && count > 0 {
            self.c.recorder.normal(
                &self.d,
                "ScalingReplicaSet",
                format!(
                    "Scaled up replica set {} from 0 to {}",
                    rs_name(&created),
                    count
                ),
            );
        }
        let mut needs_update =
            util::set_deployment_revision(&mut self.d, &new_revision.to_string());
        if !already_exists && util::progress_deadline(&self.d).is_some() {
            let msg = format!("Created new replica set \"{}\"", rs_name(&created));
            util::set_condition(
                self.d.status.get_or_insert_with(Default::default),
                util::new_condition(PROGRESSING, "True", util::NEW_REPLICA_SET, msg, util::now()),
            );
            needs_update = true;
        }
        if needs_update {
            self.write_status().await?;
        }
        Ok(Some(created))
    }

    /// Scales to the deployment's size: the only active ReplicaSet
    /// directly, old ones to zero once the new one is saturated, or all
    /// active ones in proportion during a rolling update.
    pub(super) async fn scale(
        &mut self,
        new_rs: Option<&ReplicaSet>,
        old: &[ReplicaSet],
    ) -> Result<()> {
        let want = util::replicas(&self.d);
        if let Some(target) = util::find_active_or_latest(new_rs, old) {
            if util::rs_replicas(&target) == want {
                return Ok(());
            }
            self.scale_replica_set_and_record_event(&target, want)
                .await?;
            return Ok(());
        }
        if util::is_saturated(&self.d, new_rs) {
            for rs in active(old) {
                self.scale_replica_set_and_record_event(&rs, 0).await?;
            }
            return Ok(());
        }
        if util::is_rolling_update(&self.d) {
            let mut all: Vec<ReplicaSet> =
                active(&all_of(new_rs, old).into_iter().cloned().collect::<Vec<_>>());
            let refs: Vec<&ReplicaSet> = all.iter().collect();
            match util::proportional_direction(&self.d, &refs) {
                1 => all.sort_by(util::by_size_newer),
                -1 => all.sort_by(util::by_size_older),
                _ => {}
            }
            let refs: Vec<&ReplicaSet> = all.iter().collect();
            let sizes = util::proportional_sizes(&self.d, &refs);
            for (rs, size) in all.iter().zip(sizes) {
                self.scale_replica_set(rs, size).await?;
            }
        }
        Ok(())
    }

    /// Scales a ReplicaSet if its size differs; whether it did.
    pub(super) async fn scale_replica_set_and_record_event(
        &mut self,
        rs: &ReplicaSet,
        new_scale: i32,
    ) -> Result<(bool, ReplicaSet)> {
        if util::rs_replicas(rs) == new_scale {
            return Ok((false, rs.clone()));
        }
        self.scale_replica_set(rs, new_scale).await
    }

    /// Sets a ReplicaSet's size and replica annotations, with a
    /// ScalingReplicaSet event when the size changed.
    pub(super) async fn scale_replica_set(
        &mut self,
        rs: &ReplicaSet,
        new_scale: i32,
    ) -> Result<(bool, ReplicaSet)> {
        let want = util::replicas(&self.d);
        let max = want + util::max_surge(&self.d);
        let old_scale = util::rs_replicas(rs);
        let size_changes = old_scale != new_scale;
        if !size_changes && !util::replicas_annotations_need_update(rs, want, max) {
            return Ok((false, rs.clone()));
        }
        let mut copy = rs.clone();
        util::set_rs_replicas(&mut copy, new_scale);
        util::set_replicas_annotations(&mut copy, want, max);
        let updated = self.update_rs(&copy).await?;
        if size_changes {
            let op = if old_scale < new_scale { "up" } else { "down" };
            self.c.recorder.normal(
                &self.d,
                "ScalingReplicaSet",
                format!(
                    "Scaled {} replica set {} from {} to {}",
                    op,
                    rs_name(&updated),
                    old_scale,
                    new_scale
                ),
            );
        }
        Ok((size_changes, updated))
    }

    /// Deletes the oldest scaled-down ReplicaSets beyond
    /// revisionHistoryLimit.
    pub(super) async fn cleanup_deployment(&mut self, old: &[ReplicaSet]) -> Result<()> {
        let Some(limit) = util::revision_history_limit(&self.d) else {
            return Ok(());
        };
        let mut cleanable: Vec<&ReplicaSet> = old
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let diff = cleanable.len() as i64 - i64::from(limit);
        if diff <= 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| util::by_revision(a, b));
        let api = self.rs_api();
        for rs in cleanable.into_iter().take(diff as usize) {
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if util::rs_status_replicas(rs) != 0
                || util::rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            match api.delete(&rs_name(rs), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if runner::is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
            let gone = uid(rs);
            self.rs_list
                .retain(|x| x.metadata.uid.as_deref() != Some(gone.as_str()));
        }
        Ok(())
    }

    /// Writes the status the ReplicaSets give, if it changed.
    pub(super) async fn sync_deployment_status(
        &mut self,
        new_rs: Option<&ReplicaSet>,
        old: &[ReplicaSet],
    ) -> Result<()> {
        let status = util::calculate_status(&all_of(new_rs, old), new_rs, &self.d, util::now());
        if self.d.status.as_ref() == Some(&status) {
            return Ok(());
        }
        self.d.status = Some(status);
        self.write_status().await
    }

    /// Whether the deployment was scaled since its ReplicaSets were last
    /// sized: an active one records another desired size.
    pub(super) async fn is_scaling_event(&mut self) -> Result<bool> {
        let (new_rs, old) = self.get_all_replica_sets_and_sync_revision(false).await?;
        let want = util::replicas(&self.d);
        Ok(all_of(new_rs.as_ref(), &old)
            .into_iter()
            .filter(|rs| util::rs_replicas(rs) > 0)
            .filter_map(util::desired_replicas_annotation)
            .any(|desired| desired != want))
    }
}
