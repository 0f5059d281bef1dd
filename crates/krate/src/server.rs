//! `krate server`: the datastore (embedded, or etcd with
//! `--datastore-endpoint`) and the API server over TLS. Controllers,
//! scheduler and node agent are wired in here as they land.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use apiserver::admission::limits::LimitsAdmission;
use apiserver::admission::pods::{PodAdmission, SYSTEM_PRIORITY_CLASSES};
use apiserver::admission::runtime_class::RuntimeClassAdmission;
use apiserver::admission::services::{Cidr, ServiceAllocator};
use apiserver::admission::storage::StorageObjectInUseProtection;
use apiserver::registry::{Registry, WriteOptions};
use apiserver::server::ApiServer;
use apiserver::status::ApiError;
use apiserver::tls::{Pki, PkiOptions};
use apiserver::tokens::TokenIssuer;
use clap::Args;
use serde_json::{json, Value};
use store::Store;

pub const DEFAULT_DATA_DIR: &str = "/var/lib/krate";

/// Namespaces every cluster has from the start.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

#[derive(Args)]
pub struct ServerArgs {
    /// Directory holding krate's state.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// HTTPS port of the API server.
    #[arg(long, default_value_t = 6443)]
    pub https_listen_port: u16,
    /// Address the API server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// The range Service ClusterIPs are allocated from.
    #[arg(long, default_value = "10.43.0.0/16")]
    pub service_cidr: String,
    /// The range nodes' pod CIDRs (one /24 each) are allocated from.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// The range NodePorts are allocated from.
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,
    /// Use an etcd cluster instead of the embedded datastore, e.g.
    /// `http://127.0.0.1:2379` (comma-separated for several members).
    #[arg(long)]
    pub datastore_endpoint: Option<String>,
    /// Register this many simulated nodes, which run pods without
    /// containers (for trying out controllers and for scale tests).
    #[arg(long, default_value_t = 0)]
    pub simulated_nodes: usize,
    /// Capacity of each simulated node, e.g. `cpu=64,memory=512Gi,pods=250`;
    /// resources not named keep their defaults (cpu 32, memory 256Gi,
    /// pods 110, ephemeral-storage 100Gi).
    #[arg(long, value_delimiter = ',', value_name = "RESOURCE=QUANTITY")]
    pub simulated_node_capacity: Vec<String>,
    /// Record kubelet events (Pulled, Created, Started, ...) for the pods of
    /// simulated nodes: `true` or `false` (default: only up to 100 nodes).
    #[arg(long)]
    pub simulated_node_events: Option<bool>,
    /// How often simulated nodes renew their Leases, in seconds.
    #[arg(long, default_value_t = 10, hide = true)]
    pub simulated_node_lease_seconds: u64,
    /// Do not run a node agent on this machine.
    #[arg(long)]
    pub disable_agent: bool,
    #[command(flatten)]
    pub agent: crate::agent::AgentArgs,
    /// Run only the API server: no controllers and no scheduler.
    #[arg(long, hide = true)]
    pub disable_controllers: bool,
    /// A node whose kubelet has not renewed its Lease or posted status for
    /// this long is marked Unknown and tainted unreachable (e.g. 40s, 1m).
    #[arg(long, default_value = "40s", value_parser = parse_go_duration)]
    pub node_monitor_grace_period: std::time::Duration,
    /// Seconds pods tolerate a not-ready node before eviction, for pods
    /// that set no such toleration themselves.
    #[arg(long, default_value_t = apiserver::admission::pods::DEFAULT_TOLERATION_SECONDS)]
    pub default_not_ready_toleration_seconds: i64,
    /// Seconds pods tolerate an unreachable node before eviction, for pods
    /// that set no such toleration themselves.
    #[arg(long, default_value_t = apiserver::admission::pods::DEFAULT_TOLERATION_SECONDS)]
    pub default_unreachable_toleration_seconds: i64,
    /// Terminated pods kept before the oldest are deleted (0 keeps all).
    #[arg(long, default_value_t = 12500)]
    pub terminated_pod_gc_threshold: usize,
    /// How long pods of a deleted node wait before the pod GC deletes them
    /// (upstream's fixed 40 s; for tests).
    #[arg(long, default_value = "40s", value_parser = parse_go_duration, hide = true)]
    pub pod_gc_orphan_quarantine: std::time::Duration,
    /// How often the metrics API scrapes kubelets (metrics-server's
    /// `--metric-resolution`; shorter for tests).
    #[arg(long, default_value = "15s", value_parser = parse_go_duration, hide = true)]
    pub metric_resolution: std::time::Duration,
}

/// A Go duration as kube-controller-manager flags take them: `40s`, `1m30s`,
/// `500ms`, `2h` (Go's `time.ParseDuration`; negative ones are refused).
pub(crate) fn parse_go_duration(s: &str) -> Result<std::time::Duration, String> {
    let seconds = api::gofmt::parse_duration(s)?;
    if seconds < 0.0 {
        return Err(format!("invalid duration {s:?}: must not be negative"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

/// Where the embedded datastore lives inside the data directory.
pub fn datastore_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("db")
}

fn check_data_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"ok")
        .with_context(|| format!("the data directory {} is not writable", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Addresses of this machine for the serving certificate, and the
/// `kubernetes` service's ClusterIP.
fn node_ips(first_service_ip: IpAddr) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|list| {
            list.into_iter()
                .map(|i| i.ip())
                .filter(|ip| !ip.is_loopback())
                .collect()
        })
        .unwrap_or_default();
    ips.push(first_service_ip);
    ips.sort();
    ips.dedup();
    ips
}

async fn open_store(args: &ServerArgs) -> Result<Arc<dyn Store>> {
    Ok(match &args.datastore_endpoint {
        Some(endpoints) => {
            let endpoints: Vec<String> =
                endpoints.split(',').map(|s| s.trim().to_string()).collect();
            Arc::new(
                store::etcd::Etcd::connect(&endpoints)
                    .await
                    .with_context(|| {
                        format!("the datastore at {} cannot be reached", endpoints.join(","))
                    })?,
            )
        }
        None => {
            let dir = datastore_dir(&args.data_dir);
            Arc::new(
                store::embedded::Embedded::open(&dir).with_context(|| {
                    format!("opening the embedded datastore in {}", dir.display())
                })?,
            )
        }
    })
}

fn parse_port_range(s: &str) -> Result<(u16, u16)> {
    let (lo, hi) = s
        .split_once('-')
        .with_context(|| format!("--service-node-port-range {s:?}: want LOW-HIGH"))?;
    let (lo, hi): (u16, u16) = (
        lo.trim()
            .parse()
            .with_context(|| format!("--service-node-port-range {s:?}"))?,
        hi.trim()
            .parse()
            .with_context(|| format!("--service-node-port-range {s:?}"))?,
    );
    if lo == 0 || lo > hi {
        bail!("--service-node-port-range {s:?}: the range is empty");
    }
    Ok((lo, hi))
}

/// Upstream's bootstrap RBAC policy that every cluster starts with: the
/// super-user role for `system:masters`, what every authenticated user
/// may do (discovery, asking about themselves), and the `admin`, `edit`
/// and `view` roles users bind.
async fn bootstrap_rbac(registry: &Registry) -> Result<()> {
    let roles = apiserver::resources::lookup("rbac.authorization.k8s.io", "v1", "clusterroles")
        .context("clusterroles")?;
    let bindings =
        apiserver::resources::lookup("rbac.authorization.k8s.io", "v1", "clusterrolebindings")
            .context("clusterrolebindings")?;
    let meta = |name: &str| {
        json!({
            "name": name,
            "labels": { "kubernetes.io/bootstrapping": "rbac-defaults" },
            "annotations": { "rbac.authorization.kubernetes.io/autoupdate": "true" },
        })
    };
    let cluster_roles = [
        (
            "cluster-admin",
            json!([
                { "apiGroups": ["*"], "resources": ["*"], "verbs": ["*"] },
                { "nonResourceURLs": ["*"], "verbs": ["*"] },
            ]),
        ),
        (
            "system:basic-user",
            json!([
                { "apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"] },
                { "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"] },
            ]),
        ),
        (
            "system:discovery",
            json!([
                { "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"], "verbs": ["get"] },
            ]),
        ),
        // Scraping the server's health and metrics (upstream's
        // system:monitoring, bound to the group of the same name).
        (
            "system:monitoring",
            json!([
                { "nonResourceURLs": ["/healthz", "/healthz/*", "/livez", "/livez/*", "/metrics", "/metrics/slis", "/readyz", "/readyz/*"], "verbs": ["get"] },
            ]),
        ),
        (
            "system:public-info-viewer",
            json!([
                { "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"] },
            ]),
        ),
        // What a kubelet does (upstream's system:node role, kept for those
        // who bind it; nodes get it from the Node authorizer, which also
        // narrows it to their own objects).
        (
            "system:node",
            json!([
                { "apiGroups": [""], "resources": ["nodes"], "verbs": ["create", "get", "list", "watch", "update", "patch", "delete"] },
                { "apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch", "update"] },
                { "apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "create", "delete"] },
                { "apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch", "update"] },
                { "apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"] },
                { "apiGroups": [""], "resources": ["configmaps", "secrets", "services", "endpoints", "persistentvolumeclaims", "persistentvolumes"], "verbs": ["get", "list", "watch"] },
                { "apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"] },
                { "apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch", "update"] },
                { "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update", "patch", "delete"] },
                { "apiGroups": ["storage.k8s.io"], "resources": ["csidrivers", "csinodes", "volumeattachments"], "verbs": ["get", "list", "watch"] },
                { "apiGroups": ["node.k8s.io"], "resources": ["runtimeclasses"], "verbs": ["get", "list", "watch"] },
                { "apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"], "verbs": ["create", "get", "list", "watch"] },
            ]),
        ),
        // What a joining node's bootstrap identity may do: ask for its
        // client certificate (upstream's system:node-bootstrapper).
        (
            "system:node-bootstrapper",
            json!([
                { "apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"], "verbs": ["create", "get", "list", "watch"] },
            ]),
        ),
        // What the CSR approver asks before approving kubelet client
        // certificates (upstream's bootstrap roles).
        (
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            json!([
                { "apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests/nodeclient"], "verbs": ["create"] },
            ]),
        ),
        (
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            json!([
                { "apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests/selfnodeclient"], "verbs": ["create"] },
            ]),
        ),
    ];
    let role_of = |name: &str, rules: Value| json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta(name), "rules": rules });
    let mut all_roles: Vec<Value> = cluster_roles
        .into_iter()
        .map(|(name, rules)| role_of(name, rules))
        .collect();
    // The user-facing roles: `admin`, `edit` and `view` hold what the
    // clusterrole-aggregation controller gathers from the roles labelled
    // to aggregate into them, upstream's `system:aggregate-to-*` first;
    // `view` aggregates into `edit`, and `edit` into `admin`.
    let crud = json!(["create", "delete", "deletecollection", "patch", "update"]);
    let read = json!(["get", "list", "watch"]);
    let all = json!(apiserver::resources::ALL_VERBS);
    let user_roles = [
        ("admin", None, Some("admin"), json!(null)),
        ("edit", Some("admin"), Some("edit"), json!(null)),
        ("view", Some("edit"), Some("view"), json!(null)),
        (
            "system:aggregate-to-admin",
            Some("admin"),
            None,
            json!([
                { "apiGroups": ["authorization.k8s.io"], "resources": ["localsubjectaccessreviews"], "verbs": ["create"] },
                { "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings", "roles"], "verbs": all },
            ]),
        ),
        (
            "system:aggregate-to-edit",
            Some("edit"),
            None,
            json!([
                { "apiGroups": [""], "resources": ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"], "verbs": read },
                { "apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"] },
                { "apiGroups": [""], "resources": ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], "verbs": crud },
                { "apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"] },
                { "apiGroups": [""], "resources": ["configmaps", "events", "persistentvolumeclaims", "replicationcontrollers", "replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy"], "verbs": crud },
                { "apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"] },
                { "apiGroups": ["apps"], "resources": ["daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale"], "verbs": crud },
                { "apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": crud },
                { "apiGroups": ["batch"], "resources": ["cronjobs", "jobs"], "verbs": crud },
                { "apiGroups": ["extensions"], "resources": ["daemonsets", "deployments", "deployments/rollback", "deployments/scale", "ingresses", "networkpolicies", "replicasets", "replicasets/scale", "replicationcontrollers/scale"], "verbs": crud },
                { "apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": crud },
                { "apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "networkpolicies"], "verbs": crud },
                { "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": all },
            ]),
        ),
        (
            "system:aggregate-to-view",
            Some("view"),
            None,
            json!([
                { "apiGroups": [""], "resources": ["configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services", "services/status"], "verbs": read },
                { "apiGroups": [""], "resources": ["bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status", "replicationcontrollers/status", "resourcequotas", "resourcequotas/status"], "verbs": read },
                { "apiGroups": [""], "resources": ["namespaces"], "verbs": read },
                { "apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read },
                { "apiGroups": ["apps"], "resources": ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale", "deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets", "statefulsets/scale", "statefulsets/status"], "verbs": read },
                { "apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers", "horizontalpodautoscalers/status"], "verbs": read },
                { "apiGroups": ["batch"], "resources": ["cronjobs", "cronjobs/status", "jobs", "jobs/status"], "verbs": read },
                { "apiGroups": ["extensions"], "resources": ["daemonsets", "daemonsets/status", "deployments", "deployments/scale", "deployments/status", "ingresses", "ingresses/status", "networkpolicies", "replicasets", "replicasets/scale", "replicasets/status", "replicationcontrollers/scale"], "verbs": read },
                { "apiGroups": ["policy"], "resources": ["poddisruptionbudgets", "poddisruptionbudgets/status"], "verbs": read },
                { "apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "ingresses/status", "networkpolicies"], "verbs": read },
            ]),
        ),
    ];
    let aggregate_label = |to: &str| format!("rbac.authorization.k8s.io/aggregate-to-{to}");
    for (name, into, gathers, rules) in user_roles {
        let mut role = role_of(name, rules);
        if let Some(into) = into {
            role["metadata"]["labels"][aggregate_label(into)] = json!("true");
        }
        if let Some(gathers) = gathers {
            let mut selector = serde_json::Map::new();
            selector.insert(aggregate_label(gathers), json!("true"));
            role["aggregationRule"] =
                json!({ "clusterRoleSelectors": [{ "matchLabels": selector }] });
        }
        all_roles.push(role);
    }
    for role in all_roles {
        let name = role["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match registry
            .create(roles, None, role, &WriteOptions::default())
            .await
        {
            Ok(_) | Err(ApiError { code: 409, .. }) => {}
            Err(e) => bail!("creating cluster role {name}: {e}"),
        }
    }
    // What k3s's metrics-server manifest adds: reading the metrics API,
    // aggregated into the view, edit and admin roles.
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": "system:aggregated-metrics-reader",
            "labels": {
                "rbac.authorization.k8s.io/aggregate-to-admin": "true",
                "rbac.authorization.k8s.io/aggregate-to-edit": "true",
                "rbac.authorization.k8s.io/aggregate-to-view": "true",
            },
        },
        "rules": [{ "apiGroups": ["metrics.k8s.io"], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"] }],
    });
    match registry
        .create(roles, None, role, &WriteOptions::default())
        .await
    {
        Ok(_) | Err(ApiError { code: 409, .. }) => {}
        Err(e) => bail!("creating cluster role system:aggregated-metrics-reader: {e}"),
    }
    let group =
        |g: &str| json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g });
    let cluster_bindings = [
        ("cluster-admin", json!([group("system:masters")])),
        ("system:basic-user", json!([group("system:authenticated")])),
        ("system:discovery", json!([group("system:authenticated")])),
        ("system:monitoring", json!([group("system:monitoring")])),
        // No subjects, as upstream since the Node authorizer: a node may
        // read only what its pods use.
        ("system:node", json!([])),
        // Joining nodes (the join token's group) ask for their client
        // certificate and get it approved (kubeadm's kubelet-bootstrap
        // and node-autoapprove-bootstrap bindings).
        (
            "system:node-bootstrapper",
            json!([group(apiserver::server::BOOTSTRAPPERS_GROUP)]),
        ),
        (
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            json!([group(apiserver::server::BOOTSTRAPPERS_GROUP)]),
        ),
        // Nodes renew their own client certificates (as kubeadm and k3s
        // bind it).
        (
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            json!([group("system:nodes")]),
        ),
        // Scraping the server's health and metrics (upstream's
        // system:monitoring, bound to the group of the same name).
        (
            "system:monitoring",
            json!([
                { "nonResourceURLs": ["/healthz", "/healthz/*", "/livez", "/livez/*", "/metrics", "/metrics/slis", "/readyz", "/readyz/*"], "verbs": ["get"] },
            ]),
        ),
        (
            "system:public-info-viewer",
            json!([
                group("system:authenticated"),
                group("system:unauthenticated")
            ]),
        ),
    ];
    for (name, subjects) in cluster_bindings {
        let binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": meta(name),
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name },
            "subjects": subjects,
        });
        match registry
            .create(bindings, None, binding, &WriteOptions::default())
            .await
        {
            Ok(_) | Err(ApiError { code: 409, .. }) => {}
            Err(e) => bail!("creating cluster role binding {name}: {e}"),
        }
    }
    // A cluster started before the Node authorizer bound every node to
    // system:node: take that away, or nodes would read every secret.
    if let Ok(mut binding) = registry.get(bindings, None, "system:node").await {
        let nodes = group(apiserver::node_authz::NODES_GROUP);
        if let Some(subjects) = binding["subjects"].as_array_mut() {
            if subjects.contains(&nodes) {
                subjects.retain(|s| *s != nodes);
                registry
                    .update(
                        bindings,
                        None,
                        "system:node",
                        None,
                        binding,
                        &WriteOptions::default(),
                    )
                    .await
                    .context("unbinding system:nodes from the system:node cluster role")?;
            }
        }
    }
    Ok(())
}

async fn bootstrap(registry: &Registry, first_service_ip: IpAddr, https_port: u16) -> Result<()> {
    let namespaces =
        apiserver::resources::lookup("", "v1", "namespaces").context("namespaces resource")?;
    for ns in SYSTEM_NAMESPACES {
        let obj = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
        match registry
            .create(namespaces, None, obj, &WriteOptions::default())
            .await
        {
            Ok(_) => tracing::info!(namespace = ns, "created namespace"),
            Err(e) if e.code == 409 => {}
            Err(e) => bail!("creating namespace {ns}: {e}"),
        }
    }
    let classes = apiserver::resources::lookup("scheduling.k8s.io", "v1", "priorityclasses")
        .context("priorityclasses resource")?;
    for (name, value, description) in SYSTEM_PRIORITY_CLASSES {
        let pc = json!({
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": { "name": name },
            "value": value,
            "description": description,
            "preemptionPolicy": "PreemptLowerPriority",
        });
        match registry
            .create(classes, None, pc, &WriteOptions::default())
            .await
        {
            Ok(_) | Err(ApiError { code: 409, .. }) => {}
            Err(e) => bail!("creating priority class {name}: {e}"),
        }
    }
    bootstrap_rbac(registry).await?;
    // The default StorageClass, as k3s ships one: volumes from local disk,
    // made on the node of the first pod that uses the claim.
    let storage_classes = apiserver::resources::lookup("storage.k8s.io", "v1", "storageclasses")
        .context("storageclasses resource")?;
    let local_path = json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": { "name": "local-path", "annotations": { "storageclass.kubernetes.io/is-default-class": "true" } },
        "provisioner": "krate.io/local-path",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    });
    match registry
        .create(storage_classes, None, local_path, &WriteOptions::default())
        .await
    {
        Ok(_) | Err(ApiError { code: 409, .. }) => {}
        Err(e) => bail!("creating storage class local-path: {e}"),
    }
    // The API server's own service, at the first IP of the service range.
    let services =
        apiserver::resources::lookup("", "v1", "services").context("services resource")?;
    let svc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": "kubernetes", "namespace": "default", "labels": { "component": "apiserver", "provider": "kubernetes" } },
        "spec": {
            "clusterIP": first_service_ip.to_string(),
            "ports": [{ "name": "https", "port": 443, "protocol": "TCP", "targetPort": https_port }],
            "type": "ClusterIP",
        },
    });
    match registry
        .create(services, Some("default"), svc, &WriteOptions::default())
        .await
    {
        Ok(_) => tracing::info!(ip = %first_service_ip, "created the kubernetes service"),
        Err(e) if e.code == 409 => {}
        Err(e) => bail!("creating the kubernetes service: {e}"),
    }
    Ok(())
}

pub async fn run(args: ServerArgs) -> Result<()> {
    check_data_dir(&args.data_dir)?;
    let service_cidr =
        Cidr::parse(&args.service_cidr).map_err(|e| anyhow::anyhow!("--service-cidr: {e}"))?;
    let node_ports = parse_port_range(&args.service_node_port_range)?;
    let first_service_ip = IpAddr::V4(service_cidr.nth(1));
    let addr = SocketAddr::new(args.bind_address, args.https_listen_port);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!(
                "port {} is already in use (is another krate server or kube-apiserver running?)",
                args.https_listen_port
            )
        } else {
            anyhow::Error::new(e).context(format!("listening on {addr}"))
        }
    })?;
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let pki = Pki::ensure(&PkiOptions {
        data_dir: args.data_dir.clone(),
        hostnames: if hostname.is_empty() {
            vec![]
        } else {
            vec![hostname.clone()]
        },
        ips: node_ips(first_service_ip),
    })
    .context("preparing TLS certificates")?;
    let tls = pki.server_config().context("configuring TLS")?;

    let store = open_store(&args).await?;
    let rev = store
        .current_revision()
        .await
        .context("reading the datastore revision")?;
    tracing::info!(revision = rev, "datastore ready");

    let pods = PodAdmission::with_default_tolerations(
        args.default_not_ready_toleration_seconds,
        args.default_unreachable_toleration_seconds,
    );
    let limits = LimitsAdmission::new();
    let runtime_classes = RuntimeClassAdmission::new();
    let registry = Registry::new(store.clone())
        .with_admission(Arc::new(ServiceAllocator::new(
            store,
            service_cidr,
            node_ports,
        )))
        .with_admission(pods.clone())
        .with_admission(runtime_classes.clone())
        .with_admission(limits.clone())
        .with_admission(Arc::new(StorageObjectInUseProtection))
        .with_cache();
    let api = ApiServer::new(
        registry,
        format!("{}:{}", "127.0.0.1", args.https_listen_port),
    );
    pods.attach(api.registry());
    runtime_classes.attach(api.registry());
    let issuer = TokenIssuer::load_or_create(&args.data_dir.join("tls"))
        .context("preparing the service account token key")?;
    api.set_token_issuer(Arc::new(issuer));
    api.set_kubelet_client(
        pki.kubelet_client()
            .context("preparing the kubelet client certificate")?,
    );
    api.start_metrics(args.metric_resolution);
    api.set_node_token(ensure_token(&args.data_dir, &pki.ca_cert_pem)?);
    api.set_ca_certs(pki.ca_cert_pem.clone());
    limits.attach(api.registry());
    bootstrap(api.registry(), first_service_ip, args.https_listen_port).await?;
    let url = format!("https://127.0.0.1:{}", args.https_listen_port);
    let kubeconfig = pki
        .write_admin_kubeconfig(&url)
        .context("writing the admin kubeconfig")?;
    api.start_controllers();
    let serving = tokio::spawn(api.clone().serve(listener, Some(tls)));
    api.set_ready();
    tracing::info!(%addr, "API server listening");
    let components = start_components(&args, &pki, &api, &hostname)?;
    println!("krate server is ready on {url}");
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  kubectl get namespaces");
    // Start-up's code leaves memory once start-up is over (memory.rs).
    crate::memory::page_out_binary_after_start_up();

    tokio::select! {
        r = tokio::signal::ctrl_c() => { r.context("waiting for Ctrl-C")?; }
        r = wait_sigterm() => { r?; }
    }
    tracing::info!("shutting down");
    drop(components);
    serving.abort();
    Ok(())
}

/// The hash a join token carries of the cluster CA: the SHA-256 of the CA
/// certificate's PEM, hex (k3s' `K10<hash>::server:<secret>`).
pub fn ca_hash(ca_pem: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(ca_pem.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A join token: the CA's hash, when it names one, and the secret.
pub fn parse_token(token: &str) -> (Option<&str>, &str) {
    let token = token.trim();
    match token
        .strip_prefix("K10")
        .and_then(|rest| rest.split_once("::server:"))
    {
        Some((hash, secret)) => (Some(hash), secret),
        None => (None, token),
    }
}

/// The join token of `krate agent --token` (`<data-dir>/token`): the
/// secret is made once, the file says it with the CA's hash
/// (`K10<hash>::server:<secret>`). Returns the secret.
fn ensure_token(data_dir: &Path, ca_pem: &str) -> Result<String> {
    let path = data_dir.join("token");
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    let secret = match parse_token(&stored).1 {
        "" => format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ),
        s => s.to_string(),
    };
    let token = format!("K10{}::server:{secret}", ca_hash(ca_pem));
    if stored.trim() == token {
        return Ok(secret);
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        writeln!(f, "{token}").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(secret)
}

/// Starts the controllers, the scheduler and the simulated nodes, each an
/// API client of this server. They stop when the returned set is dropped.
fn start_components(
    args: &ServerArgs,
    pki: &Pki,
    api: &Arc<ApiServer>,
    hostname: &str,
) -> Result<tokio::task::JoinSet<()>> {
    let mut tasks = tokio::task::JoinSet::new();
    let identity = format!("{}_{}", hostname, uuid::Uuid::new_v4());
    // One set of informer caches for every component: each object is held
    // once in this process; each component writes with its own identity.
    let informers = controllers::informer::Informers::new(crate::in_process::client(
        api,
        "system:krate-informers",
        "system:masters",
    ));
    if !args.disable_controllers {
        let client =
            crate::in_process::client(api, "system:kube-controller-manager", "system:masters");
        let options = controllers::Options {
            root_ca_pem: pki.ca_cert_pem.clone(),
            local_path_root: args.data_dir.join("storage"),
            node_monitor_grace_period: args.node_monitor_grace_period,
            terminated_pod_gc_threshold: args.terminated_pod_gc_threshold,
            pod_gc_orphan_quarantine: args.pod_gc_orphan_quarantine,
            cluster_cidr: Some(args.cluster_cidr.clone()),
            csr_authority: Some(Arc::new(CsrAuthority(
                pki.csr_authority()
                    .context("loading the CA to sign certificate requests")?,
            ))),
            ..Default::default()
        };
        tasks.spawn(controllers::run_with(
            informers.with_client(client),
            options,
            identity.clone(),
        ));
        let client = crate::in_process::client(api, "system:kube-scheduler", "system:masters");
        tasks.spawn(scheduler::run_with(informers.with_client(client), identity));
    }
    if !args.disable_agent {
        let node_name = args
            .agent
            .node_name
            .clone()
            .map(|n| n.to_lowercase())
            .unwrap_or_else(node::agent::default_node_name);
        // The server's node is a node like any other: the Node authorizer
        // and NodeRestriction apply to it.
        let client =
            crate::in_process::client(api, &format!("system:node:{node_name}"), "system:nodes");
        // Its role label is the server's to set: NodeRestriction keeps
        // node-role.kubernetes.io/ labels from kubelets (k3s sets them the
        // same way).
        tasks.spawn(label_control_plane(
            crate::in_process::client(api, "system:krate-node-roles", "system:masters"),
            node_name.clone(),
        ));
        let (cert_pem, key_pem) = pki
            .issue_kubelet_serving_cert(
                &node_name,
                &[hostname.to_string()],
                &args.agent.node_ip.into_iter().collect::<Vec<_>>(),
                std::time::Duration::from_secs(365 * 24 * 3600),
            )
            .context("issuing the kubelet serving certificate")?;
        let kubelet_tls = crate::agent::KubeletTls {
            cert_pem,
            key_pem,
            client_ca_pem: pki.ca_cert_pem.clone(),
        };
        let mut agent_args = args.agent.clone();
        agent_args.node_name = Some(node_name);
        let (data_dir, cluster_cidr, service_cidr) = (
            args.data_dir.clone(),
            args.cluster_cidr.clone(),
            args.service_cidr.clone(),
        );
        tasks.spawn(async move {
            let setup = crate::agent::Setup {
                data_dir: &data_dir,
                cluster_cidr: &cluster_cidr,
                service_cidr: &service_cidr,
                control_plane: false,
                kubelet_tls: Some(kubelet_tls),
                kubelet_csr_client_ca: None,
            };
            if let Err(e) = crate::agent::run(client, agent_args, setup).await {
                tracing::error!(error = format!("{e:#}"), "the node agent stopped");
            }
        });
    }
    if args.simulated_nodes > 0 {
        let count = args.simulated_nodes.min(node::simulated::nodes::MAX_NODES);
        api.set_simulated_nodes(move |name| node::simulated::nodes::index(name, count).is_some());
        let client =
            crate::in_process::client(api, "system:krate-simulated-nodes", "system:masters");
        let mut options = node::simulated::Options {
            count: args.simulated_nodes,
            events: args.simulated_node_events,
            lease_period: std::time::Duration::from_secs(args.simulated_node_lease_seconds.max(1)),
            ..Default::default()
        };
        for item in &args.simulated_node_capacity {
            match item.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
                    options
                        .capacity
                        .insert(k.trim().to_string(), v.trim().to_string());
                }
                _ => bail!("--simulated-node-capacity {item:?}: want RESOURCE=QUANTITY"),
            }
        }
        tasks.spawn(node::simulated::run_with(
            informers.with_client(client),
            options,
        ));
    }
    Ok(tasks)
}

/// Keeps the server's own Node labelled `node-role.kubernetes.io/control-plane`
/// (again after the Node is deleted and registers anew).
async fn label_control_plane(client: kube::Client, node_name: String) {
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{Api, Patch, PatchParams};
    const ROLE: &str = "node-role.kubernetes.io/control-plane";
    let api: Api<Node> = Api::all(client);
    loop {
        let labelled = match api.get_opt(&node_name).await {
            Ok(Some(node))
                if node
                    .metadata
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key(ROLE)) =>
            {
                true
            }
            Ok(Some(_)) => {
                let patch = json!({ "metadata": { "labels": { ROLE: "true" } } });
                match api
                    .patch(&node_name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::debug!(error = %e, "labelling the server's node");
                        false
                    }
                }
            }
            _ => false,
        };
        let wait = if labelled { 10_000 } else { 200 };
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    }
}

/// The cluster CA as kube-controller-manager's CSR signer.
#[derive(Debug)]
struct CsrAuthority(apiserver::tls::CsrAuthority);

impl controllers::certificates::Authority for CsrAuthority {
    fn sign(
        &self,
        request: &[u8],
        usages: &[String],
        not_before: std::time::SystemTime,
        not_after: std::time::SystemTime,
    ) -> Result<String, String> {
        self.0.sign(request, usages, not_before, not_after)
    }

    fn not_after(&self) -> std::time::SystemTime {
        self.0.not_after()
    }
}

async fn wait_sigterm() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing SIGTERM handler")?;
    term.recv().await;
    Ok(())
}
