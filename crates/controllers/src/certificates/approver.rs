//! The CSR approver (upstream `pkg/controller/certificates/approver`,
//! `csrapproving`): a kubelet client request (`kube-apiserver-client-kubelet`)
//! is approved when a SubjectAccessReview says its requester may create
//! `certificatesigningrequests/selfnodeclient` (renewing its own identity) or
//! `certificatesigningrequests/nodeclient`. A kubelet serving request
//! (`kubelet-serving`), which upstream leaves to the administrator, is
//! approved when it is the node's own and names only the Node's addresses
//! and host name (the k3s way: a node may serve under its own names only);
//! anything else stays pending for `kubectl certificate approve`.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, PostParams};
use tokio::task::JoinSet;

use super::signer::{validate_kubelet_client, validate_kubelet_serving};
use super::{
    approval, is_issued, Request, KUBELET_SERVING_SIGNER, KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
};
use crate::informer::{Informer, Key};
use crate::queue::WorkQueue;
use crate::runner::{self, Action, Error, Reconciler, Result};
use crate::Context;

const COMPONENT: &str = "csrapproving";
const WORKERS: usize = 2;

pub const REASON: &str = "AutoApproved";
pub const SELF_NODE_CLIENT_MESSAGE: &str =
    "Auto approving self kubelet client certificate after SubjectAccessReview.";
pub const NODE_CLIENT_MESSAGE: &str =
    "Auto approving kubelet client certificate after SubjectAccessReview.";
pub const KUBELET_SERVING_MESSAGE: &str =
    "Auto approving kubelet serving certificate: its subject and names are the requesting Node's own.";

/// What the approver does with a CSR.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Leave it (already decided or issued, not recognized, or not the
    /// node's own): it waits for an administrator.
    Leave,
    /// Approve it if the requester may create the CSR subresource
    /// (`selfnodeclient` or `nodeclient`), with this message.
    AskAccess {
        subresource: &'static str,
        message: &'static str,
    },
    /// Approve it with this message.
    Approve(&'static str),
}

/// Upstream `sarApprover.handle` before the SubjectAccessReview, plus the
/// kubelet serving check against `node` (the Node the requester is).
pub fn decide(csr: &CertificateSigningRequest, request: &Request, node: Option<&Node>) -> Decision {
    let (approved, denied) = approval(csr);
    if is_issued(csr) || approved || denied {
        return Decision::Leave;
    }
    match csr.spec.signer_name.as_str() {
        KUBE_APISERVER_CLIENT_KUBELET_SIGNER => {
            if validate_kubelet_client(request, csr).is_err() {
                Decision::Leave
            } else if csr.spec.username.as_deref() == Some(request.common_name.as_str()) {
                Decision::AskAccess {
                    subresource: "selfnodeclient",
                    message: SELF_NODE_CLIENT_MESSAGE,
                }
            } else {
                Decision::AskAccess {
                    subresource: "nodeclient",
                    message: NODE_CLIENT_MESSAGE,
                }
            }
        }
        KUBELET_SERVING_SIGNER if node.is_some_and(|n| is_own_serving_request(csr, request, n)) => {
            Decision::Approve(KUBELET_SERVING_MESSAGE)
        }
        _ => Decision::Leave,
    }
}

/// The node a requester is: `system:node:<name>` in group `system:nodes`.
pub fn requesting_node(csr: &CertificateSigningRequest) -> Option<&str> {
    let name = csr.spec.username.as_deref()?.strip_prefix("system:node:")?;
    let in_nodes = csr
        .spec
        .groups
        .iter()
        .flatten()
        .any(|g| g == "system:nodes");
    (in_nodes && !name.is_empty()).then_some(name)
}

/// A kubelet serving request of node `node` for itself: a valid kubelet
/// serving request (upstream's checks) whose subject is
/// `CN=system:node:<name>, O=system:nodes`, sent by that node, naming only
/// the Node's host names and addresses (and its name).
pub fn is_own_serving_request(
    csr: &CertificateSigningRequest,
    request: &Request,
    node: &Node,
) -> bool {
    let name = node.metadata.name.as_deref().unwrap_or("");
    if validate_kubelet_serving(request, csr).is_err()
        || requesting_node(csr) != Some(name)
        || request.common_name != format!("system:node:{name}")
    {
        return false;
    }
    let addresses = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten();
    let mut hostnames: BTreeSet<String> = BTreeSet::from([name.to_ascii_lowercase()]);
    let mut ips = BTreeSet::new();
    for a in addresses {
        match a.type_.as_str() {
            "Hostname" | "InternalDNS" | "ExternalDNS" => {
                hostnames.insert(a.address.to_ascii_lowercase());
            }
            "InternalIP" | "ExternalIP" => {
                if let Ok(ip) = a.address.parse::<std::net::IpAddr>() {
                    ips.insert(ip);
                }
            }
            _ => {}
        }
    }
    request
        .dns_names
        .iter()
        .all(|d| hostnames.contains(&d.to_ascii_lowercase()))
        && request.ip_addresses.iter().all(|ip| ips.contains(ip))
}

/// The Approved condition the approver adds.
pub fn approved_condition(message: &str) -> CertificateSigningRequestCondition {
    CertificateSigningRequestCondition {
        type_: "Approved".into(),
        status: "True".into(),
        reason: Some(REASON.into()),
        message: Some(message.into()),
        ..Default::default()
    }
}

pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let csrs = ctx.informers.get::<CertificateSigningRequest>();
    let nodes = ctx.informers.get::<Node>();
    let queue = WorkQueue::new();
    {
        let queue = queue.clone();
        csrs.on_change(move |change| queue.add(Key::of(change.object().as_ref())));
    }
    {
        // A Node that registers or changes its addresses may make its
        // pending serving request its own.
        let (queue, csrs) = (queue.clone(), csrs.clone());
        nodes.on_change(move |change| {
            let name = change.object().metadata.name.clone().unwrap_or_default();
            for csr in csrs.list() {
                if csr.spec.signer_name == KUBELET_SERVING_SIGNER
                    && requesting_node(&csr) == Some(name.as_str())
                {
                    queue.add(Key::of(csr.as_ref()));
                }
            }
        });
    }
    let controller = Arc::new(Approver {
        client: ctx.client.clone(),
        csrs: csrs.clone(),
        nodes: nodes.clone(),
    });
    tasks.spawn(async move {
        csrs.wait_synced().await;
        nodes.wait_synced().await;
        let mut workers = JoinSet::new();
        runner::spawn(controller, queue, WORKERS, &mut workers);
        while workers.join_next().await.is_some() {}
    });
}

struct Approver {
    client: kube::Client,
    csrs: Informer<CertificateSigningRequest>,
    nodes: Informer<Node>,
}

impl Approver {
    /// Upstream `sarApprover.authorize`.
    async fn authorized(&self, csr: &CertificateSigningRequest, subresource: &str) -> Result<bool> {
        let sar = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: csr.spec.username.clone(),
                uid: csr.spec.uid.clone(),
                groups: csr.spec.groups.clone(),
                extra: csr.spec.extra.clone(),
                resource_attributes: Some(ResourceAttributes {
                    group: Some("certificates.k8s.io".into()),
                    resource: Some("certificatesigningrequests".into()),
                    verb: Some("create".into()),
                    subresource: Some(subresource.into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let answer = api.create(&PostParams::default(), &sar).await?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }
}

#[async_trait::async_trait]
impl Reconciler for Approver {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    async fn sync(&self, key: &Key) -> Result<Action> {
        let Some(csr) = self.csrs.get(key) else {
            return Ok(Action::Done);
        };
        let Ok(request) = Request::parse(&csr.spec.request.0) else {
            return Ok(Action::Done);
        };
        let node = requesting_node(&csr).and_then(|n| self.nodes.get(&Key::cluster(n)));
        let message = match decide(&csr, &request, node.as_deref()) {
            Decision::Leave => return Ok(Action::Done),
            Decision::Approve(message) => message,
            Decision::AskAccess {
                subresource,
                message,
            } => {
                if !self.authorized(&csr, subresource).await? {
                    tracing::info!(csr = %key, subresource, "recognized a kubelet client CSR but the subject access review was not approved");
                    return Ok(Action::Done);
                }
                message
            }
        };
        let mut approved = (*csr).clone();
        approved
            .status
            .get_or_insert_with(Default::default)
            .conditions
            .get_or_insert_with(Vec::new)
            .push(approved_condition(message));
        let api: Api<CertificateSigningRequest> = Api::all(self.client.clone());
        let body = serde_json::to_vec(&approved).map_err(|e| Error::Other(e.to_string()))?;
        match api
            .replace_subresource("approval", &key.name, &PostParams::default(), body)
            .await
        {
            Ok(_) => Ok(Action::Done),
            Err(e) if runner::is_not_found(&e) => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }
}
