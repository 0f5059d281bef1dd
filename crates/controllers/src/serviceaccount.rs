//! Two controllers that furnish every namespace, as kube-controller-manager's
//! `serviceaccount-controller` and `root-ca-certificate-publisher` do:
//! - a `default` ServiceAccount in every active namespace, created again if
//!   it is deleted;
//! - the ConfigMap `kube-root-ca.crt` holding the cluster CA under `ca.crt`
//!   (with upstream's `kubernetes.io/description` annotation), created again
//!   if it is deleted and put back if its data or annotation is changed.
//!
//! Both queue namespace names; a namespace that is terminating or gone is
//! skipped, as upstream does.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::Client;
use tokio::task::JoinSet;

use crate::informer::{Change, Informer, Key};
use crate::queue::WorkQueue;
use crate::runner::{self, Action, Reconciler, Result};
use crate::Context;

/// The accounts every namespace gets (upstream's
/// `DefaultServiceAccountsControllerOptions`).
pub const DEFAULT_SERVICE_ACCOUNTS: &[&str] = &["default"];

pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
pub const ROOT_CA_DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let namespaces = ctx.informers.get::<Namespace>();
    let accounts = ctx.informers.get::<ServiceAccount>();
    let configmaps = ctx.informers.get::<ConfigMap>();

    let sa_queue = WorkQueue::<Key>::new();
    let ca_queue = WorkQueue::<Key>::new();
    {
        let (sa_queue, ca_queue) = (sa_queue.clone(), ca_queue.clone());
        namespaces.on_change(move |change| {
            let ns = change.object();
            if matches!(change, Change::Deleted(_)) || !is_active(ns) {
                return;
            }
            let key = Key::cluster(ns.metadata.name.clone().unwrap_or_default());
            sa_queue.add(key.clone());
            ca_queue.add(key);
        });
    }
    {
        let sa_queue = sa_queue.clone();
        accounts.on_change(move |change| {
            if let Change::Deleted(sa) = change {
                if let Some(ns) = &sa.metadata.namespace {
                    sa_queue.add(Key::cluster(ns.clone()));
                }
            }
        });
    }
    {
        let ca_queue = ca_queue.clone();
        configmaps.on_change(move |change| {
            if matches!(change, Change::Added(_)) {
                return;
            }
            let cm = change.object();
            if cm.metadata.name.as_deref() == Some(ROOT_CA_CONFIG_MAP) {
                if let Some(ns) = &cm.metadata.namespace {
                    ca_queue.add(Key::cluster(ns.clone()));
                }
            }
        });
    }

    let sa = Arc::new(ServiceAccounts {
        client: ctx.client.clone(),
        namespaces: namespaces.clone(),
        accounts: accounts.clone(),
    });
    let ca = Arc::new(RootCaPublisher {
        client: ctx.client.clone(),
        namespaces: namespaces.clone(),
        configmaps: configmaps.clone(),
        root_ca: ctx.options.root_ca_pem.clone(),
    });
    tasks.spawn(async move {
        // Upstream waits for the caches before the first sync, so that it
        // does not try to create what already exists.
        namespaces.wait_synced().await;
        accounts.wait_synced().await;
        configmaps.wait_synced().await;
        let mut workers = JoinSet::new();
        runner::spawn(sa, sa_queue, 2, &mut workers);
        runner::spawn(ca, ca_queue, 2, &mut workers);
        while workers.join_next().await.is_some() {}
    });
}

fn is_active(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none()
        && ns
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_none_or(|p| p == "Active")
}

/// A create refused because the namespace is gone or terminating is not
/// retried (upstream checks `NamespaceTerminatingCause`).
fn namespace_gone(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => {
            s.code == 404 || (s.code == 403 && s.message.contains("because it is being terminated"))
        }
        _ => false,
    }
}

struct ServiceAccounts {
    client: Client,
    namespaces: Informer<Namespace>,
    accounts: Informer<ServiceAccount>,
}

#[async_trait::async_trait]
impl Reconciler for ServiceAccounts {
    fn name(&self) -> &'static str {
        "serviceaccount-controller"
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let ns = &key.name;
        match self.namespaces.get(&Key::cluster(ns.clone())) {
            Some(n) if is_active(&n) => {}
            _ => return Ok(Action::Done),
        }
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), ns);
        for name in DEFAULT_SERVICE_ACCOUNTS {
            if self.accounts.get(&Key::new(ns.clone(), *name)).is_some() {
                continue;
            }
            let sa = ServiceAccount {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    ..Default::default()
                },
                ..Default::default()
            };
            match api.create(&PostParams::default(), &sa).await {
                Ok(_) => {}
                Err(e) if runner::is_conflict(&e) || namespace_gone(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Action::Done)
    }
}

struct RootCaPublisher {
    client: Client,
    namespaces: Informer<Namespace>,
    configmaps: Informer<ConfigMap>,
    root_ca: String,
}

impl RootCaPublisher {
    fn data(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("ca.crt".to_string(), self.root_ca.clone())])
    }
}

#[async_trait::async_trait]
impl Reconciler for RootCaPublisher {
    fn name(&self) -> &'static str {
        "root-ca-certificate-publisher"
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let ns = &key.name;
        if self.namespaces.get(&Key::cluster(ns.clone())).is_none() {
            return Ok(Action::Done);
        }
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let data = self.data();
        let Some(cm) = self
            .configmaps
            .get(&Key::new(ns.clone(), ROOT_CA_CONFIG_MAP))
        else {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(ROOT_CA_CONFIG_MAP.into()),
                    annotations: Some(BTreeMap::from([(
                        DESCRIPTION_ANNOTATION.to_string(),
                        ROOT_CA_DESCRIPTION.to_string(),
                    )])),
                    ..Default::default()
                },
                data: Some(data),
                ..Default::default()
            };
            return match api.create(&PostParams::default(), &cm).await {
                Ok(_) => Ok(Action::Done),
                Err(e) if namespace_gone(&e) => Ok(Action::Done),
                Err(e) => Err(e.into()),
            };
        };
        let described = cm
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
            .is_some_and(|d| !d.is_empty());
        if cm.data.as_ref() == Some(&data) && described {
            return Ok(Action::Done);
        }
        let mut cm = (*cm).clone();
        cm.data = Some(data);
        cm.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(DESCRIPTION_ANNOTATION.into(), ROOT_CA_DESCRIPTION.into());
        api.replace(ROOT_CA_CONFIG_MAP, &PostParams::default(), &cm)
            .await?;
        Ok(Action::Done)
    }
}
