//! `spec.podFailurePolicy`: which rule a failed pod matches (upstream
//! `matchPodFailurePolicy`), by its containers' exit codes or its
//! conditions, in rule order.

use k8s_openapi::api::batch::v1::{PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition};

/// What a failed pod means for its Job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// A `FailJob` rule matched: the Job fails with this message.
    pub fail_job: Option<String>,
    /// Whether the failure counts towards `backoffLimit` (not for `Ignore`).
    pub count: bool,
    /// The matched rule's action, if any.
    pub action: Option<String>,
}

impl Verdict {
    fn unmatched() -> Verdict {
        Verdict {
            fail_job: None,
            count: true,
            action: None,
        }
    }
}

pub fn evaluate(policy: Option<&PodFailurePolicy>, pod: &Pod) -> Verdict {
    let Some(policy) = policy else {
        return Verdict::unmatched();
    };
    let status = pod.status.clone().unwrap_or_default();
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    for (index, rule) in policy.rules.iter().enumerate() {
        let failed_job_message = if let Some(req) = &rule.on_exit_codes {
            let Some(c) = matching_container(status.container_statuses.as_deref(), req)
                .or_else(|| matching_container(status.init_container_statuses.as_deref(), req))
            else {
                continue;
            };
            let code = exit_code(c).unwrap_or_default();
            format!(
                "Container {} for pod {ns}/{name} failed with exit code {code} matching {} rule at index {index}",
                c.name, rule.action
            )
        } else if let Some(patterns) = &rule.on_pod_conditions {
            let Some(cond) = matching_condition(status.conditions.as_deref(), patterns) else {
                continue;
            };
            format!(
                "Pod {ns}/{name} has condition {} matching {} rule at index {index}",
                cond.type_, rule.action
            )
        } else {
            continue;
        };
        let action = Some(rule.action.clone());
        return match rule.action.as_str() {
            "Ignore" => Verdict {
                fail_job: None,
                count: false,
                action,
            },
            "FailJob" => Verdict {
                fail_job: Some(failed_job_message),
                count: true,
                action,
            },
            // Count, FailIndex.
            _ => Verdict {
                fail_job: None,
                count: true,
                action,
            },
        };
    }
    Verdict::unmatched()
}

fn exit_code(c: &ContainerStatus) -> Option<i32> {
    Some(c.state.as_ref()?.terminated.as_ref()?.exit_code)
}

fn matching_container<'a>(
    statuses: Option<&'a [ContainerStatus]>,
    req: &PodFailurePolicyOnExitCodesRequirement,
) -> Option<&'a ContainerStatus> {
    statuses?.iter().find(|c| {
        let Some(code) = exit_code(c) else {
            return false;
        };
        if code == 0 || req.container_name.as_ref().is_some_and(|n| *n != c.name) {
            return false;
        }
        match req.operator.as_str() {
            "In" => req.values.contains(&code),
            "NotIn" => !req.values.contains(&code),
            _ => false,
        }
    })
}

fn matching_condition<'a>(
    conditions: Option<&'a [PodCondition]>,
    patterns: &[k8s_openapi::api::batch::v1::PodFailurePolicyOnPodConditionsPattern],
) -> Option<&'a PodCondition> {
    conditions?.iter().find(|c| {
        patterns.iter().any(|p| {
            p.type_ == c.type_
                && (if p.status.is_empty() {
                    "True"
                } else {
                    p.status.as_str()
                }) == c.status
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{
        PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
    };
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn failed_pod(code: i32, conditions: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some("Failed".into()),
                container_statuses: Some(vec![ContainerStatus {
                    name: "main".into(),
                    state: Some(ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            exit_code: code,
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                conditions: Some(
                    conditions
                        .iter()
                        .map(|(t, s)| PodCondition {
                            type_: t.to_string(),
                            status: s.to_string(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
        }
    }

    fn exit_rule(action: &str, op: &str, values: &[i32]) -> PodFailurePolicyRule {
        PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: None,
                operator: op.into(),
                values: values.to_vec(),
            }),
            on_pod_conditions: None,
        }
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let policy = PodFailurePolicy {
            rules: vec![
                exit_rule("Ignore", "In", &[3]),
                exit_rule("FailJob", "NotIn", &[3, 4]),
                PodFailurePolicyRule {
                    action: "Ignore".into(),
                    on_exit_codes: None,
                    on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                        type_: "DisruptionTarget".into(),
                        status: "True".into(),
                    }]),
                },
            ],
        };
        let v = evaluate(Some(&policy), &failed_pod(3, &[]));
        assert_eq!((v.count, v.action.as_deref()), (false, Some("Ignore")));
        let v = evaluate(Some(&policy), &failed_pod(42, &[]));
        assert_eq!(
            v.fail_job.as_deref(),
            Some("Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1")
        );
        let v = evaluate(
            Some(&policy),
            &failed_pod(4, &[("DisruptionTarget", "True")]),
        );
        assert_eq!((v.count, v.action.as_deref()), (false, Some("Ignore")));
        let v = evaluate(Some(&policy), &failed_pod(4, &[]));
        assert_eq!(v, Verdict::unmatched());
        assert_eq!(evaluate(None, &failed_pod(1, &[])), Verdict::unmatched());
    }

    #[test]
    fn condition_rules_name_the_condition_in_the_failure_message() {
        let policy = PodFailurePolicy {
            rules: vec![PodFailurePolicyRule {
                action: "FailJob".into(),
                on_exit_codes: None,
                on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                    type_: "ConfigIssue".into(),
                    status: String::new(),
                }]),
            }],
        };
        let v = evaluate(Some(&policy), &failed_pod(1, &[("ConfigIssue", "True")]));
        assert_eq!(
            v.fail_job.as_deref(),
            Some("Pod ns/p has condition ConfigIssue matching FailJob rule at index 0")
        );
    }
}
