//! Node lifecycle, taint-based eviction, cordon and drain with
//! PodDisruptionBudgets, pod GC and ResourceQuota usage, through a real
//! `krate server` with simulated nodes and the real kubectl.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, ListParams};
use kube::ResourceExt;
use serde_json::json;
use support::{eventually, eventually_blocking, Cluster};

const WAIT: Duration = Duration::from_secs(40);

fn replicaset_yaml(name: &str, replicas: i32, extra_spec: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: c
        image: busybox
{extra_spec}"#
    )
}

fn node_of(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default()
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn live_pods(pods: &Api<Pod>, app: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

async fn wait_ready_pods(pods: &Api<Pod>, app: &str, n: usize) -> Vec<Pod> {
    eventually(WAIT, &format!("{n} ready {app} pods"), || async {
        let live = live_pods(pods, app).await;
        let ready_count = live
            .iter()
            .filter(|p| ready(p) && !node_of(p).is_empty())
            .count();
        if live.len() == n && ready_count == n {
            Ok(live)
        } else {
            Err(format!("{} live, {ready_count} ready", live.len()))
        }
    })
    .await
}

fn taint_set(n: &Node) -> Vec<String> {
    let mut v: Vec<String> = n
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .map(|t| format!("{}:{}", t.key, t.effect))
        .collect();
    v.sort();
    v
}

fn ready_condition(n: &Node) -> Option<(String, String, String)> {
    let c = n
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    Some((
        c.status.clone(),
        c.reason.clone().unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    ))
}

async fn wait_nodes_ready(nodes: &Api<Node>, n: usize) {
    eventually(WAIT, "nodes Ready", || async {
        let list = nodes.list(&ListParams::default()).await.unwrap().items;
        let ready = list
            .iter()
            .filter(|n| ready_condition(n).is_some_and(|c| c.0 == "True"))
            .count();
        if ready == n {
            Ok(())
        } else {
            Err(format!("{ready} of {} Ready", list.len()))
        }
    })
    .await
}

#[tokio::test]
async fn a_lost_node_goes_unknown_is_tainted_and_its_pods_are_evicted_and_recreated_elsewhere() {
    let c = Cluster::start_with(&[
        "--simulated-nodes",
        "3",
        // Healthy nodes renew their Leases well within the shortened grace.
        "--simulated-node-lease-seconds",
        "1",
        "--node-monitor-grace-period",
        "3s",
        "--default-unreachable-toleration-seconds",
        "2",
    ]);
    let client = c.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    wait_nodes_ready(&nodes, 3).await;
    c.ok_stdin(&["apply", "-f", "-"], &replicaset_yaml("web", 3, ""));
    let before = wait_ready_pods(&pods, "web", 3).await;

    // Every pod got the default tolerations, with the shortened unreachable one.
    let tolerations = before[0]
        .spec
        .as_ref()
        .unwrap()
        .tolerations
        .clone()
        .unwrap();
    let unreachable = tolerations
        .iter()
        .find(|t| t.key.as_deref() == Some("node.kubernetes.io/unreachable"))
        .expect("default unreachable toleration");
    assert_eq!(unreachable.toleration_seconds, Some(2));
    assert_eq!(unreachable.effect.as_deref(), Some("NoExecute"));
    assert!(tolerations
        .iter()
        .any(|t| t.key.as_deref() == Some("node.kubernetes.io/not-ready")
            && t.toleration_seconds == Some(300)));

    let lost = node_of(&before[0]);
    let on_lost: Vec<String> = before
        .iter()
        .filter(|p| node_of(p) == lost)
        .map(|p| p.name_any())
        .collect();
    c.ok(&["annotate", "node", &lost, "sim.krate.io/stopped=true"]);

    let node = eventually(WAIT, "the lost node Unknown and tainted", || async {
        let n = nodes.get(&lost).await.unwrap();
        let taints = taint_set(&n);
        let want = [
            "node.kubernetes.io/unreachable:NoExecute",
            "node.kubernetes.io/unreachable:NoSchedule",
        ];
        if ready_condition(&n).is_some_and(|c| c.0 == "Unknown")
            && want.iter().all(|w| taints.contains(&w.to_string()))
        {
            Ok(n)
        } else {
            Err(format!("{:?} {:?}", ready_condition(&n), taints))
        }
    })
    .await;
    let (_, reason, message) = ready_condition(&node).unwrap();
    assert_eq!(reason, "NodeStatusUnknown");
    assert_eq!(message, "Kubelet stopped posting node status.");
    let pressure = node
        .status
        .as_ref()
        .unwrap()
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "MemoryPressure")
        .unwrap()
        .clone();
    assert_eq!(pressure.status, "Unknown");
    for other in (0..3)
        .map(|i| format!("sim-node-{i}"))
        .filter(|n| *n != lost)
    {
        let n = nodes.get(&other).await.unwrap();
        assert_eq!(
            ready_condition(&n).map(|c| c.0).as_deref(),
            Some("True"),
            "{other}"
        );
        assert!(taint_set(&n).is_empty(), "{other}: {:?}", taint_set(&n));
    }
    let get_nodes = c.ok(&["get", "nodes"]);
    let row = get_nodes.lines().find(|l| l.starts_with(&lost)).unwrap();
    assert!(row.contains("NotReady"), "{get_nodes}");

    // The ReplicaSet replaces the evicted pods on the other nodes.
    let after = wait_ready_pods(&pods, "web", 3).await;
    assert!(
        after.iter().all(|p| node_of(p) != lost),
        "pods still on the lost node"
    );
    let events: Api<Event> = Api::default_namespaced(client.clone());
    let evicted = on_lost[0].clone();
    eventually(WAIT, "TaintManagerEviction event", || async {
        let list = events.list(&ListParams::default()).await.unwrap().items;
        let found = list.iter().any(|e| {
            e.reason.as_deref() == Some("TaintManagerEviction")
                && e.message.as_deref()
                    == Some(&format!("Marking for deletion Pod default/{evicted}"))
                && e.source.as_ref().and_then(|s| s.component.as_deref())
                    == Some("taint-eviction-controller")
        });
        found
            .then_some(())
            .ok_or_else(|| "no event yet".to_string())
    })
    .await;
    // The evicted pod waits, Terminating, for its node; it is marked a
    // disruption target and not Ready.
    if let Some(p) = pods.get_opt(&evicted).await.unwrap() {
        assert!(p.metadata.deletion_timestamp.is_some());
        let conds = p.status.as_ref().unwrap().conditions.clone().unwrap();
        assert!(conds.iter().any(|c| c.type_ == "DisruptionTarget"
            && c.reason.as_deref() == Some("DeletionByTaintManager")));
        assert!(!ready(&p));
    }

    // The node comes back: Ready again, taints gone.
    c.ok(&["annotate", "node", &lost, "sim.krate.io/stopped-"]);
    eventually(WAIT, "the node Ready and untainted", || async {
        let n = nodes.get(&lost).await.unwrap();
        let taints = taint_set(&n);
        if ready_condition(&n).is_some_and(|c| c.0 == "True") && taints.is_empty() {
            Ok(())
        } else {
            Err(format!("{:?} {:?}", ready_condition(&n), taints))
        }
    })
    .await;
    let describe = c.ok(&["describe", "node", &lost]);
    assert!(describe.contains("NodeNotReady"), "{describe}");
}

#[tokio::test]
async fn cordon_adds_the_unschedulable_taint_and_uncordon_removes_it() {
    let c = Cluster::start_with(&["--simulated-nodes", "1"]);
    let client = c.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    wait_nodes_ready(&nodes, 1).await;
    c.ok(&["cordon", "sim-node-0"]);
    eventually(WAIT, "the unschedulable taint", || async {
        let n = nodes.get("sim-node-0").await.unwrap();
        let taints = n
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        match taints
            .iter()
            .find(|t| t.key == "node.kubernetes.io/unschedulable")
        {
            Some(t) if t.effect == "NoSchedule" && t.time_added.is_some() => Ok(()),
            _ => Err(format!("{:?}", taint_set(&n))),
        }
    })
    .await;
    let out = c.ok(&["get", "node", "sim-node-0"]);
    assert!(out.contains("Ready,SchedulingDisabled"), "{out}");
    c.ok(&["uncordon", "sim-node-0"]);
    eventually(WAIT, "no taints", || async {
        let n = nodes.get("sim-node-0").await.unwrap();
        let taints = taint_set(&n);
        taints.is_empty().then_some(()).ok_or(format!("{taints:?}"))
    })
    .await;
}

#[tokio::test]
async fn drain_evicts_pods_ignores_daemonsets_and_respects_the_disruption_budget() {
    let c = Cluster::start_with(&["--simulated-nodes", "3"]);
    let client = c.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    wait_nodes_ready(&nodes, 3).await;
    // Everything lands on sim-node-0.
    c.ok(&["cordon", "sim-node-1", "sim-node-2"]);
    c.ok_stdin(&["apply", "-f", "-"], &replicaset_yaml("web", 3, ""));
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  minAvailable: 2
  selector:
    matchLabels: {app: web}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: c
        image: busybox
"#,
    );
    let web = wait_ready_pods(&pods, "web", 3).await;
    assert!(web.iter().all(|p| node_of(p) == "sim-node-0"));
    eventually_blocking(WAIT, "PDB status", || {
        let out = c.ok(&["get", "pdb", "web"]);
        let row: Vec<&str> = out
            .lines()
            .nth(1)
            .unwrap_or("")
            .split_whitespace()
            .collect();
        // NAME MIN-AVAILABLE MAX-UNAVAILABLE ALLOWED-DISRUPTIONS AGE
        if row.get(1) == Some(&"2") && row.get(2) == Some(&"N/A") && row.get(3) == Some(&"1") {
            Ok(())
        } else {
            Err(out)
        }
    });
    let status = c.ok(&["get", "pdb", "web", "-o", "jsonpath={.status}"]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["currentHealthy"], 3);
    assert_eq!(status["desiredHealthy"], 2);
    assert_eq!(status["expectedPods"], 3);
    let cond = &status["conditions"][0];
    assert_eq!(cond["type"], "DisruptionAllowed");
    assert_eq!(cond["status"], "True");
    assert_eq!(cond["reason"], "SufficientPods");
    eventually(WAIT, "the DaemonSet pod on sim-node-0", || async {
        let agents = live_pods(&pods, "agent").await;
        agents
            .iter()
            .any(|p| node_of(p) == "sim-node-0")
            .then_some(())
            .ok_or(format!("{} agent pods", agents.len()))
    })
    .await;

    // With nowhere to go, only one pod may leave.
    let out = c.kubectl(&["drain", "sim-node-0", "--ignore-daemonsets", "--timeout=6s"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{stderr}"
    );
    assert!(
        stderr.contains("ignoring DaemonSet-managed Pods: default/agent-"),
        "{stderr}"
    );
    let still = live_pods(&pods, "web").await;
    assert_eq!(
        still.iter().filter(|p| node_of(p) == "sim-node-0").count(),
        2
    );

    // Room elsewhere: the drain completes, the budget honoured on the way.
    c.ok(&["uncordon", "sim-node-1", "sim-node-2"]);
    let out = c.ok(&[
        "drain",
        "sim-node-0",
        "--ignore-daemonsets",
        "--timeout=60s",
    ]);
    assert!(out.contains("node/sim-node-0 drained"), "{out}");
    let web = wait_ready_pods(&pods, "web", 3).await;
    assert!(web.iter().all(|p| node_of(p) != "sim-node-0"));
    assert!(live_pods(&pods, "agent")
        .await
        .iter()
        .any(|p| node_of(p) == "sim-node-0"));
    let out = c.ok(&["get", "node", "sim-node-0"]);
    assert!(out.contains("SchedulingDisabled"), "{out}");
}

#[tokio::test]
async fn a_percentage_budget_counts_the_controllers_scale() {
    let c = Cluster::start_with(&["--simulated-nodes", "2"]);
    let client = c.client().await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    c.ok_stdin(&["apply", "-f", "-"], &replicaset_yaml("api", 4, ""));
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: api
spec:
  maxUnavailable: 30%
  selector:
    matchLabels: {app: api}
"#,
    );
    wait_ready_pods(&pods, "api", 4).await;
    // 30% of 4 rounds up to 2 unavailable: 2 healthy needed, 2 may go.
    eventually_blocking(WAIT, "PDB status", || {
        let s = c.ok(&[
            "get",
            "pdb",
            "api",
            "-o",
            "jsonpath={.status.expectedPods},{.status.desiredHealthy},{.status.disruptionsAllowed}",
        ]);
        (s == "4,2,2").then_some(()).ok_or(s)
    });
    // Scaling the ReplicaSet down moves the expectation with it.
    c.ok(&["scale", "rs", "api", "--replicas=2"]);
    eventually_blocking(WAIT, "PDB status after scale", || {
        let s = c.ok(&[
            "get",
            "pdb",
            "api",
            "-o",
            "jsonpath={.status.expectedPods},{.status.desiredHealthy},{.status.disruptionsAllowed}",
        ]);
        (s == "2,1,1").then_some(()).ok_or(s)
    });
}

#[tokio::test]
async fn quota_usage_is_counted_and_shown_by_describe() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "q"]);
    // A kind the controller has no informer for, counted through discovery.
    c.ok(&[
        "create",
        "ingress",
        "web",
        "-n",
        "q",
        "--rule=example.com/=web:80",
    ]);
    c.ok_stdin(
        &["apply", "-n", "q", "-f", "-"],
        r#"apiVersion: v1
kind: ResourceQuota
metadata:
  name: compute
spec:
  hard:
    pods: "10"
    requests.cpu: "2"
    requests.memory: 1Gi
    limits.memory: 2Gi
    services: "3"
    count/deployments.apps: "2"
    count/ingresses.networking.k8s.io: "3"
"#,
    );
    for name in ["a", "b"] {
        c.ok_stdin(
            &["apply", "-n", "q", "-f", "-"],
            &format!(
                r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  containers:
  - name: c
    image: busybox
    resources:
      requests: {{cpu: 100m, memory: 64Mi}}
      limits: {{memory: 128Mi}}
"#
            ),
        );
    }
    c.ok(&[
        "create",
        "service",
        "clusterip",
        "s1",
        "-n",
        "q",
        "--tcp=80:80",
    ]);
    c.ok(&[
        "create",
        "deployment",
        "d",
        "-n",
        "q",
        "--image=busybox",
        "--replicas=0",
    ]);
    eventually_blocking(WAIT, "quota usage", || {
        let out = c.ok(&["describe", "quota", "compute", "-n", "q"]);
        let used = |res: &str| {
            out.lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .find(|w| w.first() == Some(&res))
                .map(|w| (w[1].to_string(), w[2].to_string()))
        };
        let want = [
            ("pods", "2", "10"),
            ("requests.cpu", "200m", "2"),
            ("requests.memory", "128Mi", "1Gi"),
            ("limits.memory", "256Mi", "2Gi"),
            ("services", "1", "3"),
            ("count/deployments.apps", "1", "2"),
            ("count/ingresses.networking.k8s.io", "1", "3"),
        ];
        if want
            .iter()
            .all(|(r, u, h)| used(r) == Some((u.to_string(), h.to_string())))
        {
            Ok(())
        } else {
            Err(out)
        }
    });
    // Deleting a pod gives its share back.
    c.ok(&[
        "delete",
        "pod",
        "a",
        "-n",
        "q",
        "--grace-period=0",
        "--force",
    ]);
    eventually_blocking(WAIT, "quota after delete", || {
        let s = c.ok(&[
            "get",
            "quota",
            "compute",
            "-n",
            "q",
            "-o",
            "jsonpath={.status.used.pods},{.status.used.requests\\.cpu}",
        ]);
        (s == "1,100m").then_some(()).ok_or(s)
    });
}

#[tokio::test]
async fn pod_gc_deletes_pods_of_missing_nodes_and_terminated_pods_beyond_the_threshold() {
    let c = Cluster::start_with(&[
        "--simulated-nodes",
        "1",
        "--pod-gc-orphan-quarantine",
        "1s",
        "--terminated-pod-gc-threshold",
        "2",
    ]);
    let client = c.client().await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pod = |name: &str, node: &str, annotations: serde_json::Value| -> Pod {
        serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": name, "annotations": annotations },
            "spec": {
                "nodeName": node,
                "restartPolicy": "Never",
                "containers": [{ "name": "c", "image": "busybox" }],
            },
        }))
        .unwrap()
    };
    pods.create(&Default::default(), &pod("orphan", "gone-node", json!({})))
        .await
        .unwrap();
    for i in 0..4 {
        pods.create(
            &Default::default(),
            &pod(
                &format!("done-{i}"),
                "sim-node-0",
                json!({ "sim.krate.io/run-seconds": "0" }),
            ),
        )
        .await
        .unwrap();
        // Distinct creation times, so that the oldest are known.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    eventually(WAIT, "the orphan deleted", || async {
        match pods.get_opt("orphan").await.unwrap() {
            None => Ok(()),
            Some(p) => Err(format!("{:?}", p.status.and_then(|s| s.phase))),
        }
    })
    .await;
    eventually(WAIT, "the two newest finished pods kept", || async {
        let mut names: Vec<String> = pods
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|p| p.name_any())
            .collect();
        names.sort();
        (names == ["done-2", "done-3"])
            .then_some(())
            .ok_or(format!("{names:?}"))
    })
    .await;
}

#[tokio::test]
async fn pods_on_a_lost_node_go_not_ready_and_stay_when_it_returns_within_their_toleration() {
    let c = Cluster::start_with(&[
        "--simulated-nodes",
        "3",
        "--simulated-node-lease-seconds",
        "1",
        "--node-monitor-grace-period",
        "3s",
    ]);
    let client = c.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    wait_nodes_ready(&nodes, 3).await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  nodeName: sim-node-1
  containers:
  - name: c
    image: busybox
"#,
    );
    eventually(WAIT, "p Ready", || async {
        let p = pods.get("p").await.unwrap();
        ready(&p).then_some(()).ok_or("not ready".to_string())
    })
    .await;
    c.ok(&[
        "annotate",
        "node",
        "sim-node-1",
        "sim.krate.io/stopped=true",
    ]);
    eventually(WAIT, "p not Ready with a NodeNotReady event", || async {
        let p = pods.get("p").await.unwrap();
        let describe = c.ok(&["describe", "pod", "p"]);
        let event = describe.lines().any(|l| {
            l.contains("NodeNotReady")
                && l.contains("node-controller")
                && l.contains("Node is not ready")
        });
        (!ready(&p) && event).then_some(()).ok_or(describe)
    })
    .await;
    eventually(WAIT, "the NoExecute taint", || async {
        let n = nodes.get("sim-node-1").await.unwrap();
        let t = taint_set(&n);
        t.contains(&"node.kubernetes.io/unreachable:NoExecute".to_string())
            .then_some(())
            .ok_or(format!("{t:?}"))
    })
    .await;
    c.ok(&["annotate", "node", "sim-node-1", "sim.krate.io/stopped-"]);
    let events: Api<Event> = Api::default_namespaced(client.clone());
    eventually(WAIT, "the eviction cancelled", || async {
        let list = events.list(&ListParams::default()).await.unwrap().items;
        list.iter()
            .any(|e| {
                e.reason.as_deref() == Some("TaintManagerEviction")
                    && e.message.as_deref() == Some("Cancelling deletion of Pod default/p")
            })
            .then_some(())
            .ok_or("no event yet".to_string())
    })
    .await;
    let p = pods.get("p").await.unwrap();
    assert!(
        p.metadata.deletion_timestamp.is_none(),
        "p must not be evicted"
    );
}
