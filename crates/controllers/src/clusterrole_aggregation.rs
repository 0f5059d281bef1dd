//! The ClusterRole aggregation controller (upstream
//! `pkg/controller/clusterroleaggregation`): a ClusterRole with an
//! `aggregationRule` gets, as its rules, the rules of every other
//! ClusterRole its selectors match, in the order of their names, each rule
//! once. This is how `admin`, `edit` and `view` take in
//! `system:aggregate-to-*` and what users label
//! `rbac.authorization.k8s.io/aggregate-to-edit: "true"`. The rules are
//! [`aggregated_rules`], a pure function.

use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::{Api, PostParams};
use tokio::task::JoinSet;

use crate::informer::{Informer, Key};
use crate::queue::WorkQueue;
use crate::runner::{self, Action, Reconciler, Result};
use crate::Context;

const COMPONENT: &str = "clusterrole-aggregation-controller";
const WORKERS: usize = 1;

/// The rules `owner` aggregates from `roles` (upstream `syncClusterRole`):
/// `None` for a role without an aggregation rule.
pub fn aggregated_rules(
    owner: &ClusterRole,
    roles: &[Arc<ClusterRole>],
) -> Option<Vec<PolicyRule>> {
    let rule = owner.aggregation_rule.as_ref()?;
    let selectors: Vec<api::LabelSelector> = rule
        .cluster_role_selectors
        .iter()
        .flatten()
        .map(|s| crate::owner::selector(Some(s)))
        .collect();
    let mut sorted: Vec<&ClusterRole> = roles.iter().map(|r| r.as_ref()).collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut rules: Vec<PolicyRule> = Vec::new();
    for role in sorted {
        if role.metadata.name == owner.metadata.name {
            continue;
        }
        let labels = crate::owner::labels(&role.metadata);
        if !selectors.iter().any(|s| s.matches(labels)) {
            continue;
        }
        for r in role.rules.iter().flatten() {
            if !rules.contains(r) {
                rules.push(r.clone());
            }
        }
    }
    Some(rules)
}

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let roles = ctx.informers.get::<ClusterRole>();
    let queue = WorkQueue::new();
    {
        let queue = queue.clone();
        let all = roles.clone();
        // Any change may change what an aggregating role selects: every
        // aggregating role is looked at again.
        roles.on_change(move |_| {
            for role in all.list() {
                if role.aggregation_rule.is_some() {
                    queue.add(Key::of(role.as_ref()));
                }
            }
        });
    }
    let controller = Arc::new(Aggregation {
        client: ctx.client.clone(),
        roles: roles.clone(),
    });
    tasks.spawn(async move {
        roles.wait_synced().await;
        let mut workers = JoinSet::new();
        runner::spawn(controller, queue, WORKERS, &mut workers);
        while workers.join_next().await.is_some() {}
    });
}

pub struct Aggregation {
    client: kube::Client,
    roles: Informer<ClusterRole>,
}

#[async_trait::async_trait]
impl Reconciler for Aggregation {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let Some(role) = self.roles.get(key) else {
            return Ok(Action::Done);
        };
        let Some(rules) = aggregated_rules(&role, &self.roles.list()) else {
            return Ok(Action::Done);
        };
        if role.rules.as_deref().unwrap_or_default() == rules.as_slice() {
            return Ok(Action::Done);
        }
        let mut updated = (*role).clone();
        updated.rules = Some(rules);
        let api: Api<ClusterRole> = Api::all(self.client.clone());
        match api
            .replace(&key.name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(Action::Done),
            Err(e) if runner::is_not_found(&e) => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::rbac::v1::AggregationRule;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

    fn rule(verb: &str, resource: &str) -> PolicyRule {
        PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec![resource.into()]),
            verbs: vec![verb.into()],
            ..Default::default()
        }
    }

    fn role(name: &str, label: Option<&str>, rules: Vec<PolicyRule>) -> Arc<ClusterRole> {
        Arc::new(ClusterRole {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: label.map(|l| [(l.to_string(), "true".to_string())].into()),
                ..Default::default()
            },
            rules: Some(rules),
            ..Default::default()
        })
    }

    fn aggregating(name: &str, label: &str) -> ClusterRole {
        ClusterRole {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            aggregation_rule: Some(AggregationRule {
                cluster_role_selectors: Some(vec![LabelSelector {
                    match_labels: Some([(label.to_string(), "true".to_string())].into()),
                    ..Default::default()
                }]),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_selected_roles_rules_are_joined_in_name_order_each_once() {
        let owner = aggregating("view", "agg");
        let roles = vec![
            role(
                "z-last",
                Some("agg"),
                vec![rule("get", "pods"), rule("list", "pods")],
            ),
            role("a-first", Some("agg"), vec![rule("get", "pods")]),
            role("unlabelled", None, vec![rule("delete", "pods")]),
            Arc::new(owner.clone()),
        ];
        assert_eq!(
            aggregated_rules(&owner, &roles),
            Some(vec![rule("get", "pods"), rule("list", "pods")])
        );
    }

    #[test]
    fn a_role_without_an_aggregation_rule_is_left_as_it_is() {
        let plain = role("plain", Some("agg"), vec![rule("get", "pods")]);
        assert_eq!(aggregated_rules(&plain, std::slice::from_ref(&plain)), None);
        // Selecting nothing empties the rules.
        let owner = aggregating("edit", "nobody");
        assert_eq!(aggregated_rules(&owner, &[plain]), Some(vec![]));
    }
}
