//! Leader election through a coordination.k8s.io/v1 Lease, as client-go's
//! `leaderelection` does it: the holder renews `renewTime` every retry
//! period; another candidate takes the Lease over once it has seen the same
//! record unchanged for the lease duration (judged by its own clock, so the
//! holders' clocks need not agree). Several servers can run the same
//! components; only the holder of a component's Lease runs them.

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::Utc;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::Client;

use crate::runner::is_not_found;

#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub namespace: String,
    /// The Lease's name: `kube-controller-manager`, `kube-scheduler`.
    pub name: String,
    /// This candidate: `<hostname>_<random>` as upstream.
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaderElection {
    /// Upstream's defaults: 15 s lease, 10 s renew deadline, 2 s retry,
    /// in kube-system.
    pub fn new(name: &str, identity: &str) -> LeaderElection {
        LeaderElection {
            namespace: "kube-system".into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Runs forever: waits to become leader, then runs `lead()` until the
    /// Lease cannot be renewed within the renew deadline, when the future
    /// `lead()` returned is dropped (so it must own every task it starts)
    /// and this candidate tries again.
    pub async fn run<F, Fut>(&self, client: Client, lead: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = ()>,
    {
        let api: Api<Lease> = Api::namespaced(client, &self.namespace);
        let mut observed: Option<(Option<LeaseSpec>, Instant)> = None;
        loop {
            // Acquire.
            loop {
                match self.try_acquire_or_renew(&api, &mut observed).await {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => tracing::debug!(lease = %self.name, error = %e, "leader election"),
                }
                tokio::time::sleep(self.retry_period).await;
            }
            tracing::info!(lease = %self.name, identity = %self.identity, "became leader");
            let leading = lead();
            tokio::pin!(leading);
            let mut last_renew = Instant::now();
            loop {
                tokio::select! {
                    _ = &mut leading => return,
                    _ = tokio::time::sleep(self.retry_period) => {}
                }
                match self.try_acquire_or_renew(&api, &mut observed).await {
                    Ok(true) => last_renew = Instant::now(),
                    Ok(false) => break,
                    Err(e) => {
                        tracing::debug!(lease = %self.name, error = %e, "renewing lease");
                        if last_renew.elapsed() > self.renew_deadline {
                            break;
                        }
                    }
                }
            }
            tracing::warn!(lease = %self.name, identity = %self.identity, "lost leadership");
        }
    }

    /// One round: `Ok(true)` when this candidate holds the Lease afterwards.
    async fn try_acquire_or_renew(
        &self,
        api: &Api<Lease>,
        observed: &mut Option<(Option<LeaseSpec>, Instant)>,
    ) -> Result<bool, kube::Error> {
        let now = MicroTime(Utc::now());
        let secs = self.lease_duration.as_secs() as i32;
        let current = match api.get(&self.name).await {
            Ok(l) => l,
            Err(e) if is_not_found(&e) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        namespace: Some(self.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(secs),
                        acquire_time: Some(now.clone()),
                        renew_time: Some(now),
                        lease_transitions: Some(0),
                        ..Default::default()
                    }),
                };
                return match api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(e) if crate::runner::is_conflict(&e) => Ok(false),
                    Err(e) => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let changed = observed
            .as_ref()
            .is_none_or(|(s, _)| s.as_ref() != Some(&spec));
        if changed {
            *observed = Some((Some(spec.clone()), Instant::now()));
        }
        let seen_at = observed
            .as_ref()
            .map(|(_, t)| *t)
            .unwrap_or_else(Instant::now);
        let duration =
            Duration::from_secs(spec.lease_duration_seconds.unwrap_or(secs).max(1) as u64);
        let mine = holder == self.identity;
        if !mine && !holder.is_empty() && seen_at.elapsed() < duration {
            return Ok(false);
        }
        let mut lease = current;
        let mut next = spec.clone();
        next.holder_identity = Some(self.identity.clone());
        next.lease_duration_seconds = Some(secs);
        next.renew_time = Some(now.clone());
        if !mine {
            next.acquire_time = Some(now);
            next.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        lease.spec = Some(next.clone());
        match api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                *observed = Some((Some(next), Instant::now()));
                Ok(true)
            }
            Err(e) if crate::runner::is_conflict(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
