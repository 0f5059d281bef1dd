//! Rollbacks asked for through the `deprecated.deployment.rollback.to`
//! annotation (upstream `rollback.go`). `kubectl rollout undo` does not
//! use it: it writes the old template into the deployment, and the sync
//! then finds the old ReplicaSet with that template and makes it the new
//! one again, with the next revision.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::util;
use super::Run;
use crate::runner::Result;

/// The revision the annotation asks for (0: the previous one).
pub(super) fn rollback_to(d: &Deployment) -> Option<i64> {
    let v = util::annotation(&d.metadata, util::DEPRECATED_ROLLBACK_TO)?;
    Some(v.parse().unwrap_or(0))
}

impl Run<'_> {
    pub(super) async fn rollback(&mut self) -> Result<()> {
        let (new_rs, old) = self.get_all_replica_sets_and_sync_revision(true).await?;
        let all: Vec<ReplicaSet> = old.into_iter().chain(new_rs).collect();
        let mut to = rollback_to(&self.d).unwrap_or(0);
        if to == 0 {
            to = util::last_revision(&all);
            if to == 0 {
                self.c.recorder.warning(
                    &self.d,
                    util::ROLLBACK_REVISION_NOT_FOUND,
                    "Unable to find last revision.",
                );
                return self.clear_rollback_to().await;
            }
        }
        let Some(target) = all.iter().find(|rs| util::revision(rs).ok() == Some(to)) else {
            self.c.recorder.warning(
                &self.d,
                util::ROLLBACK_REVISION_NOT_FOUND,
                "Unable to find the revision to rollback to.",
            );
            return self.clear_rollback_to().await;
        };
        let template = util::rs_template(target);
        let current = self
            .d
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        if util::equal_ignore_hash(&template, &current) {
            let msg = format!(
                "The rollback revision contains the same template as current deployment \"{}\"",
                self.name()
            );
            self.c
                .recorder
                .warning(&self.d, util::ROLLBACK_TEMPLATE_UNCHANGED, msg);
            return self.clear_rollback_to().await;
        }
        let mut template = template;
        if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(util::POD_TEMPLATE_HASH);
        }
        self.d.spec.get_or_insert_with(Default::default).template = template;
        util::set_deployment_annotations_to(&mut self.d, target);
        self.clear_rollback_to().await?;
        let msg = format!(
            "Rolled back deployment \"{}\" to revision {}",
            self.name(),
            to
        );
        self.c.recorder.normal(&self.d, util::ROLLBACK_DONE, msg);
        Ok(())
    }

    async fn clear_rollback_to(&mut self) -> Result<()> {
        if let Some(a) = self.d.metadata.annotations.as_mut() {
            a.remove(util::DEPRECATED_ROLLBACK_TO);
        }
        self.write_deployment().await
    }
}
