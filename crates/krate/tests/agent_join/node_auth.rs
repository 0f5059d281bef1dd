//! What a joined node's credentials are worth (part of `agent_join`): the
//! join token only bootstraps; the node works with a kubelet client
//! certificate of `system:node:<name>`, which the Node authorizer and
//! NodeRestriction hold to the node's own objects, as upstream words it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use super::support::{eventually_blocking, Cluster, BUSYBOX};

/// kubectl with the node's own client certificate.
struct NodeKubectl {
    kubeconfig: PathBuf,
}

impl NodeKubectl {
    fn new(c: &Cluster, cert: &Path) -> NodeKubectl {
        let kubeconfig = c.dir.path().join("node-kubeconfig");
        let cert = cert.display();
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    insecure-skip-tls-verify: true\nusers:\n- name: node\n  user:\n    client-certificate: {cert}\n    client-key: {cert}\ncontexts:\n- name: node\n  context:\n    cluster: c\n    user: node\ncurrent-context: node\n",
                c.server_url()
            ),
        )
        .unwrap();
        NodeKubectl { kubeconfig }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} as the node: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn forbidden(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} as the node succeeded"
        );
        String::from_utf8_lossy(&out.stderr).trim().to_string()
    }

    fn can_i(&self, args: &[&str]) -> String {
        let mut all = vec!["auth", "can-i"];
        all.extend_from_slice(args);
        String::from_utf8_lossy(&self.run(&all).stdout)
            .trim()
            .to_string()
    }
}

/// Checks the credentials of node `node` (joined with `token`, data in
/// `dir`) and what they allow.
pub fn node_credentials_are_its_own(c: &Cluster, token: &str, node: &str, dir: &Path) {
    // The client certificate on disk names the node.
    let cert = dir.join("agent/pki/kubelet-client-current.pem");
    let pem = std::fs::read(&cert).unwrap();
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let parsed = block.parse_x509().unwrap();
    assert_eq!(
        parsed.subject().to_string(),
        format!("CN=system:node:{node}, O=system:nodes")
    );
    // It came from a kubelet client CSR of the bootstrap identity, approved
    // after the SubjectAccessReview.
    let list: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "csr", "-o", "json"])).unwrap();
    let csr = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet")
        .unwrap_or_else(|| panic!("no kubelet client CSR: {list}"));
    assert_eq!(csr["spec"]["username"], format!("system:bootstrap:{node}"));
    assert_eq!(csr["spec"]["groups"][0], "system:bootstrappers");
    assert_eq!(
        csr["status"]["conditions"][0]["message"],
        "Auto approving kubelet client certificate after SubjectAccessReview."
    );

    // The join token is a bootstrapper and nothing more.
    let as_token = |args: &[&str]| {
        Command::new("kubectl")
            .args([
                "--server",
                &c.server_url(),
                "--insecure-skip-tls-verify",
                "--token",
                &format!("{token}:{node}"),
            ])
            .args(args)
            .env("KUBECONFIG", "/dev/null")
            .output()
            .unwrap()
    };
    let who = String::from_utf8_lossy(&as_token(&["auth", "whoami"]).stdout).into_owned();
    assert!(
        who.contains(&format!("system:bootstrap:{node}")) && who.contains("system:bootstrappers"),
        "{who}"
    );
    let nodes = as_token(&["get", "nodes"]);
    assert!(!nodes.status.success());
    assert!(
        String::from_utf8_lossy(&nodes.stderr).contains(&format!(
            "User \"system:bootstrap:{node}\" cannot list resource \"nodes\""
        )),
        "{}",
        String::from_utf8_lossy(&nodes.stderr)
    );

    let kubectl = NodeKubectl::new(c, &cert);
    let who = kubectl.ok(&["auth", "whoami"]);
    assert!(
        who.contains(&format!("system:node:{node}")) && who.contains("system:nodes"),
        "{who}"
    );

    // Secrets: only what its pods use.
    c.ok(&[
        "create",
        "secret",
        "generic",
        "used",
        "--from-literal=word=sesame",
    ]);
    c.ok(&[
        "create",
        "secret",
        "generic",
        "unrelated",
        "--from-literal=word=x",
    ]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: reader\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  volumes:\n  - name: s\n    secret:\n      secretName: used\n  containers:\n  - name: c\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n    command: [\"sh\", \"-c\", \"cat /s/word; echo; sleep 3600\"]\n    volumeMounts:\n    - name: s\n      mountPath: /s\n"
        ),
    );
    // The node itself read the secret for the volume.
    eventually_blocking(
        Duration::from_secs(60),
        "the secret in the pod's log",
        || {
            let out = c.kubectl(&["logs", "reader"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if text.contains("sesame") {
                Ok(())
            } else {
                Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
            }
        },
    );
    assert!(kubectl
        .ok(&["get", "secret", "used", "-o", "name"])
        .contains("secret/used"));
    assert_eq!(
        kubectl.forbidden(&["get", "secret", "unrelated"]),
        format!(
            "Error from server (Forbidden): secrets \"unrelated\" is forbidden: User \"system:node:{node}\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\": no relationship found between node '{node}' and this object"
        )
    );
    assert_eq!(kubectl.can_i(&["get", "secret/used"]), "yes");
    // kubectl prints the Node authorizer's reason after the answer.
    assert_eq!(
        kubectl.can_i(&["get", "secret/unrelated"]),
        format!("no - no relationship found between node '{node}' and this object")
    );
    assert_eq!(
        kubectl.can_i(&["list", "secrets"]),
        "no - No Object name found"
    );
    assert_eq!(
        kubectl.can_i(&["patch", "nodes", "--subresource=status"]),
        "yes"
    );
    assert_eq!(kubectl.can_i(&["create", "deployments"]), "no");
    assert_eq!(
        kubectl.can_i(&["update", "leases/other", "-n", "kube-node-lease"]),
        "no - can only access node lease with the same name as the requesting node"
    );

    // Its rules cannot be listed: they depend on its pods.
    let review = c.dir.path().join("rules-review.json");
    std::fs::write(
        &review,
        r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectRulesReview","spec":{"namespace":"default"}}"#,
    )
    .unwrap();
    let rules: serde_json::Value = serde_json::from_str(&kubectl.ok(&[
        "create",
        "--validate=false",
        "-o",
        "json",
        "-f",
        review.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(rules["status"]["incomplete"], true, "{rules}");
    assert_eq!(
        rules["status"]["evaluationError"],
        "node authorizer does not support user rule resolution"
    );

    // Nodes: its own only, and not its restricted labels.
    c.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: other\n",
    );
    assert_eq!(
        kubectl.forbidden(&["label", "node", "other", "team=a"]),
        format!(
            "Error from server (Forbidden): nodes \"other\" is forbidden: User \"system:node:{node}\" cannot get resource \"nodes\" in API group \"\" at the cluster scope: node '{node}' cannot read 'other', only its own Node object"
        )
    );
    assert_eq!(
        kubectl.forbidden(&[
            "label",
            "node",
            node,
            "node-restriction.kubernetes.io/pool=a"
        ]),
        format!(
            "Error from server (Forbidden): nodes \"{node}\" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool"
        )
    );
    kubectl.ok(&["label", "node", node, "example.com/pool=a"]);
    // Its own Node's status it writes (kubectl cannot read nodes/status as
    // a node, upstream neither: the status goes up whole, as a PUT).
    let status_put = |name: &str| {
        let mut obj: serde_json::Value =
            serde_json::from_str(&c.ok(&["get", "node", name, "-o", "json"])).unwrap();
        obj["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("resourceVersion");
        obj["status"]["capacity"]["example.com/dongle"] = "2".into();
        let file = c.dir.path().join(format!("{name}-status.json"));
        std::fs::write(&file, obj.to_string()).unwrap();
        let path = format!("/api/v1/nodes/{name}/status");
        kubectl.run(&["replace", "--raw", &path, "-f", file.to_str().unwrap()])
    };
    let other = status_put("other");
    assert!(
        String::from_utf8_lossy(&other.stderr).contains(&format!(
            "nodes \"other\" is forbidden: node \"{node}\" is not allowed to modify node \"other\""
        )),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    let own = status_put(node);
    assert!(
        own.status.success(),
        "{}",
        String::from_utf8_lossy(&own.stderr)
    );
    assert_eq!(
        c.ok(&[
            "get",
            "node",
            node,
            "-o",
            r"jsonpath={.status.capacity.example\.com/dongle}"
        ]),
        "2"
    );
    c.ok(&[
        "delete",
        "pod",
        "reader",
        "--grace-period=1",
        "--wait=true",
        "--timeout=60s",
    ]);
}
