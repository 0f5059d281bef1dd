//! Volumes and container environment through real containers of the node
//! agent of `krate server`, black-box through kubectl: configMap (and its
//! live update), secret, downwardAPI, the service-account token, emptyDir
//! shared between containers, hostPath, a claim of the default local-path
//! class, env from configMaps/secrets/fields, and upstream's events when a
//! volume or variable can't be made. Root only; nextest group `agent`.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{eventually_blocking, Cluster, BUSYBOX};

const WAIT: Duration = Duration::from_secs(90);

/// A cluster whose agent refreshes pods' configMap/secret/downwardAPI
/// volumes every `seconds` (the kubelet's minute by default).
fn cluster_refreshing_every(seconds: u64) -> Cluster {
    Cluster::start_with_agent(&["--volume-refresh-interval", &seconds.to_string()])
}

fn cluster() -> Cluster {
    cluster_refreshing_every(2)
}

fn json(c: &Cluster, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&c.ok(&a)).unwrap()
}

fn apply(c: &Cluster, manifest: &str) {
    c.ok_stdin(&["apply", "-f", "-"], manifest);
}

fn wait_running(c: &Cluster, name: &str) -> Value {
    eventually_blocking(WAIT, &format!("pod {name} running"), || {
        let p = json(c, &["get", "pod", name]);
        let all_running = p["status"]["containerStatuses"]
            .as_array()
            .is_some_and(|s| s.iter().all(|s| s["state"]["running"].is_object()));
        if p["status"]["phase"] == "Running" && all_running {
            Ok(p)
        } else {
            Err(format!("{}", p["status"]))
        }
    })
}

fn logs(c: &Cluster, pod: &str, container: &str) -> String {
    let out = c.kubectl(&["logs", pod, "-c", container]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until the container's log has a line starting with `prefix`, and
/// returns that line's rest.
fn log_line(c: &Cluster, pod: &str, container: &str, prefix: &str) -> String {
    eventually_blocking(WAIT, &format!("{pod}/{container} logging {prefix}"), || {
        let text = logs(c, pod, container);
        text.lines()
            .rev()
            .find_map(|l| l.strip_prefix(prefix).map(str::to_string))
            .ok_or(text)
    })
}

/// The Warning events of `pod` with `reason`, waited for.
fn event_message(c: &Cluster, pod: &str, reason: &str, containing: &str) -> String {
    eventually_blocking(WAIT, &format!("a {reason} event of {pod}"), || {
        let events = json(
            c,
            &[
                "get",
                "events",
                "--field-selector",
                &format!("involvedObject.name={pod}"),
            ],
        );
        events["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["reason"] == reason)
            .filter_map(|e| e["message"].as_str())
            .find(|m| m.contains(containing))
            .map(str::to_string)
            .ok_or_else(|| format!("{events}"))
    })
}

#[test]
fn a_pod_reads_its_volumes_and_env_and_sees_configmap_edits() {
    // No periodic refresh during the test: the edit comes through the
    // agent's watch on the configMap.
    let c = cluster_refreshing_every(3600);
    let host_dir = c.dir.path().join("host");
    let manifest = format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  greeting: hello
  mode: fast
---
apiVersion: v1
kind: Secret
metadata:
  name: sec
stringData:
  password: hunter2
---
apiVersion: v1
kind: Pod
metadata:
  name: vols
  labels:
    app: vols
    tier: web
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: writer
    image: {BUSYBOX}
    command: ["sh", "-c", "echo shared > /shared/file; echo from-pod > /host/file; sleep 3600"]
    volumeMounts:
    - {{ name: shared, mountPath: /shared }}
    - {{ name: host, mountPath: /host }}
  - name: reader
    image: {BUSYBOX}
    env:
    - {{ name: GREETING, valueFrom: {{ configMapKeyRef: {{ name: cfg, key: greeting }} }} }}
    - {{ name: PASSWORD, valueFrom: {{ secretKeyRef: {{ name: sec, key: password }} }} }}
    - {{ name: POD_NAME, valueFrom: {{ fieldRef: {{ fieldPath: metadata.name }} }} }}
    - {{ name: POD_IP, valueFrom: {{ fieldRef: {{ fieldPath: status.podIP }} }} }}
    - {{ name: MSG, value: "$(GREETING) from $(POD_NAME)" }}
    envFrom:
    - {{ configMapRef: {{ name: cfg }}, prefix: CFG_ }}
    command:
    - sh
    - -c
    - |
      echo "env=$GREETING,$PASSWORD,$POD_NAME,$POD_IP,$MSG,$CFG_mode"
      echo "secret=`cat /sec/password`"
      echo "labels=`cat /info/labels | tr '\n' ' '`"
      echo "token=`cat /var/run/secrets/kubernetes.io/serviceaccount/token | wc -c`"
      echo "namespace=`cat /var/run/secrets/kubernetes.io/serviceaccount/namespace`"
      echo "ca=`grep -c 'BEGIN CERTIFICATE' /var/run/secrets/kubernetes.io/serviceaccount/ca.crt`"
      echo "readonly=`touch /cfg/x 2>/dev/null && echo no || echo yes`"
      until [ -f /shared/file ]; do sleep 0.2; done
      echo "shared=`cat /shared/file`"
      while true; do echo "cfg=`cat /cfg/greeting`"; sleep 1; done
    volumeMounts:
    - {{ name: shared, mountPath: /shared }}
    - {{ name: cfg, mountPath: /cfg }}
    - {{ name: sec, mountPath: /sec }}
    - {{ name: info, mountPath: /info }}
  volumes:
  - {{ name: shared, emptyDir: {{}} }}
  - {{ name: host, hostPath: {{ path: {host}, type: DirectoryOrCreate }} }}
  - {{ name: cfg, configMap: {{ name: cfg }} }}
  - {{ name: sec, secret: {{ secretName: sec }} }}
  - name: info
    downwardAPI:
      items:
      - {{ path: labels, fieldRef: {{ fieldPath: metadata.labels }} }}
"#,
        host = host_dir.display()
    );
    apply(&c, &manifest);
    let pod = wait_running(&c, "vols");
    let ip = pod["status"]["podIP"].as_str().unwrap().to_string();

    assert_eq!(
        log_line(&c, "vols", "reader", "env="),
        format!("hello,hunter2,vols,{ip},hello from vols,fast")
    );
    assert_eq!(log_line(&c, "vols", "reader", "secret="), "hunter2");
    assert_eq!(
        log_line(&c, "vols", "reader", "labels="),
        "app=\"vols\" tier=\"web\""
    );
    let token_len: usize = log_line(&c, "vols", "reader", "token=")
        .trim()
        .parse()
        .unwrap();
    assert!(
        token_len > 100,
        "a service-account token of {token_len} bytes"
    );
    assert_eq!(log_line(&c, "vols", "reader", "namespace="), "default");
    assert_eq!(log_line(&c, "vols", "reader", "ca="), "1");
    assert_eq!(log_line(&c, "vols", "reader", "readonly="), "yes");
    assert_eq!(log_line(&c, "vols", "reader", "shared="), "shared");
    assert_eq!(log_line(&c, "vols", "reader", "cfg="), "hello");
    assert_eq!(
        std::fs::read_to_string(host_dir.join("file")).unwrap(),
        "from-pod\n"
    );

    // An edited configMap reaches the running container (at once: the
    // agent watches the configMaps and secrets its pods mount).
    c.ok(&[
        "patch",
        "configmap",
        "cfg",
        "-p",
        r#"{"data":{"greeting":"bonjour"}}"#,
    ]);
    eventually_blocking(WAIT, "the configMap edit in the container", || {
        let line = log_line(&c, "vols", "reader", "cfg=");
        (line == "bonjour").then_some(()).ok_or(line)
    });

    // Deleting the pod removes its volumes from the node.
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    let pod_dir = c.data_dir().join("pods").join(&uid);
    assert!(pod_dir.exists(), "{}", pod_dir.display());
    c.ok(&["delete", "pod", "vols", "--wait=false"]);
    eventually_blocking(WAIT, "the pod's directory removed", || {
        (!pod_dir.exists())
            .then_some(())
            .ok_or_else(|| pod_dir.display().to_string())
    });
    assert!(host_dir.join("file").exists(), "hostPath data stays");
}

#[test]
fn a_claim_of_the_default_class_keeps_what_the_pod_wrote() {
    let c = cluster();
    apply(
        &c,
        &format!(
            r#"apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
---
apiVersion: v1
kind: Pod
metadata:
  name: writer
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "echo persisted > /data/file; sleep 3600"]
    volumeMounts:
    - {{ name: data, mountPath: /data }}
  volumes:
  - {{ name: data, persistentVolumeClaim: {{ claimName: data }} }}
"#
        ),
    );
    wait_running(&c, "writer");
    let claim = json(&c, &["get", "pvc", "data"]);
    assert_eq!(claim["status"]["phase"], "Bound");
    let pv = json(
        &c,
        &["get", "pv", claim["spec"]["volumeName"].as_str().unwrap()],
    );
    let path = pv["spec"]["hostPath"]["path"]
        .as_str()
        .or(pv["spec"]["local"]["path"].as_str())
        .unwrap()
        .to_string();
    eventually_blocking(WAIT, "the pod's file in the volume", || {
        let text = std::fs::read_to_string(format!("{path}/file")).map_err(|e| e.to_string())?;
        (text == "persisted\n").then_some(()).ok_or(text)
    });
}

#[test]
fn volumes_and_env_that_cant_be_made_give_upstreams_events() {
    let c = cluster();
    let pod = |name: &str, container_extra: &str, volumes: &str| {
        format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sleep", "3600"]
{container_extra}
{volumes}
"#
        )
    };
    apply(
        &c,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: \"1\"\n",
    );
    apply(
        &c,
        &pod(
            "no-configmap",
            "",
            "  volumes:\n  - { name: cfg, configMap: { name: nope } }",
        ),
    );
    apply(
        &c,
        &pod(
            "bad-host",
            "",
            "  volumes:\n  - { name: h, hostPath: { path: /proc/krate-test/file, type: FileOrCreate } }",
        ),
    );
    apply(
        &c,
        &pod(
            "no-key",
            "    env:\n    - { name: X, valueFrom: { configMapKeyRef: { name: cfg, key: nope } } }",
            "",
        ),
    );
    apply(&c, &pod("healthy", "", ""));

    assert_eq!(
        event_message(&c, "no-configmap", "FailedMount", "nope"),
        "MountVolume.SetUp failed for volume \"cfg\" : configmap \"nope\" not found"
    );
    let msg = event_message(&c, "bad-host", "FailedMount", "/proc/krate-test/file");
    assert!(
        msg.starts_with(
            "MountVolume.SetUp failed for volume \"h\" : hostPath type check failed: could not create file /proc/krate-test/file"
        ),
        "{msg}"
    );
    let waiting = eventually_blocking(WAIT, "no-key waiting", || {
        let p = json(&c, &["get", "pod", "no-key"]);
        let w = p["status"]["containerStatuses"][0]["state"]["waiting"].clone();
        (w["reason"] == "CreateContainerConfigError")
            .then_some(w)
            .ok_or_else(|| format!("{}", p["status"]))
    });
    assert_eq!(
        waiting["message"],
        "couldn't find key nope in ConfigMap default/cfg"
    );
    for name in ["no-configmap", "bad-host"] {
        let p = json(&c, &["get", "pod", name]);
        assert_eq!(p["status"]["phase"], "Pending", "{name}: {}", p["status"]);
    }
    // The agent keeps serving other pods.
    wait_running(&c, "healthy");
}

#[test]
fn new_labels_reach_a_running_pods_downward_api_volume() {
    let c = cluster();
    apply(
        &c,
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: labelled
  labels:
    app: one
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "while true; do echo \"labels=`cat /info/labels | tr '\\n' ' '`\"; sleep 1; done"]
    volumeMounts:
    - {{ name: info, mountPath: /info }}
  volumes:
  - name: info
    downwardAPI:
      items:
      - {{ path: labels, fieldRef: {{ fieldPath: metadata.labels }} }}
"#
        ),
    );
    wait_running(&c, "labelled");
    assert_eq!(log_line(&c, "labelled", "app", "labels="), "app=\"one\"");
    c.ok(&["label", "pod", "labelled", "app=two", "--overwrite"]);
    eventually_blocking(WAIT, "the new label in the container", || {
        let line = log_line(&c, "labelled", "app", "labels=");
        (line == "app=\"two\"").then_some(()).ok_or(line)
    });
}

#[test]
fn fs_group_lets_a_non_root_container_share_and_read_its_volumes() {
    let c = cluster();
    apply(
        &c,
        &format!(
            r#"apiVersion: v1
kind: Secret
metadata:
  name: sec
stringData:
  password: hunter2
---
apiVersion: v1
kind: Pod
metadata:
  name: grouped
spec:
  terminationGracePeriodSeconds: 1
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    fsGroup: 2000
  containers:
  - name: app
    image: {BUSYBOX}
    command:
    - sh
    - -c
    - |
      echo "groups=`id -G`"
      echo "secret=`cat /sec/password 2>&1`"
      mkdir /data/dir && touch /data/dir/file
      echo "file=`stat -c '%u %g' /data/dir/file`"
      sleep 3600
    volumeMounts:
    - {{ name: data, mountPath: /data }}
    - {{ name: sec, mountPath: /sec }}
  volumes:
  - {{ name: data, emptyDir: {{ medium: Memory }} }}
  - {{ name: sec, secret: {{ secretName: sec, defaultMode: 0400 }} }}
"#
        ),
    );
    wait_running(&c, "grouped");
    let groups = log_line(&c, "grouped", "app", "groups=");
    assert!(groups.split(' ').any(|g| g == "2000"), "{groups}");
    // 0400 plus group read from fsGroup: the secret is readable.
    assert_eq!(log_line(&c, "grouped", "app", "secret="), "hunter2");
    // The volume's root is setgid: new files get the fsGroup.
    assert_eq!(log_line(&c, "grouped", "app", "file="), "1000 2000");
}

#[test]
fn sub_paths_mount_one_key_or_one_directory_of_a_volume() {
    let c = cluster();
    apply(
        &c,
        &format!(
            r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  app.conf: "port=80"
  other: "x"
---
apiVersion: v1
kind: Pod
metadata:
  name: subs
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {BUSYBOX}
    env:
    - {{ name: POD_NAME, valueFrom: {{ fieldRef: {{ fieldPath: metadata.name }} }} }}
    command: ["sh", "-c", "echo \"conf=`cat /etc/app.conf`\"; echo mine > /logs/out; sleep 3600"]
    volumeMounts:
    - {{ name: cfg, mountPath: /etc/app.conf, subPath: app.conf }}
    - {{ name: logs, mountPath: /logs, subPathExpr: "$(POD_NAME)" }}
  - name: all
    image: {BUSYBOX}
    command: ["sh", "-c", "until [ -f /all/subs/out ]; do sleep 0.2; done; echo \"all=`ls /all` `cat /all/subs/out`\"; sleep 3600"]
    volumeMounts:
    - {{ name: logs, mountPath: /all }}
  volumes:
  - {{ name: cfg, configMap: {{ name: cfg }} }}
  - {{ name: logs, emptyDir: {{}} }}
"#
        ),
    );
    wait_running(&c, "subs");
    assert_eq!(log_line(&c, "subs", "app", "conf="), "port=80");
    assert_eq!(log_line(&c, "subs", "all", "all="), "subs mine");
}

#[test]
fn services_of_the_namespace_are_in_the_environment() {
    let c = cluster();
    apply(
        &c,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web-api\nspec:\n  selector: { app: none }\n  ports:\n  - { name: http, port: 8080 }\n",
    );
    let ip = c.ok(&["get", "svc", "web-api", "-o", "jsonpath={.spec.clusterIP}"]);
    let kubernetes = c.ok(&[
        "get",
        "svc",
        "kubernetes",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let pod = |name: &str, links: bool| {
        format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  enableServiceLinks: {links}
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "echo \"links=$WEB_API_SERVICE_HOST:$WEB_API_SERVICE_PORT_HTTP $WEB_API_PORT k8s=$KUBERNETES_SERVICE_HOST\"; sleep 3600"]
"#
        )
    };
    apply(&c, &pod("linked", true));
    apply(&c, &pod("unlinked", false));
    wait_running(&c, "linked");
    wait_running(&c, "unlinked");
    assert_eq!(
        log_line(&c, "linked", "app", "links="),
        format!("{ip}:8080 tcp://{ip}:8080 k8s={kubernetes}")
    );
    assert_eq!(
        log_line(&c, "unlinked", "app", "links="),
        format!(":  k8s={kubernetes}")
    );
}

#[test]
fn host_to_container_propagation_shows_later_host_mounts_in_the_container() {
    let c = cluster();
    apply(
        &c,
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: prop
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "while true; do echo \"seen=`cat /vol/sub/marker 2>/dev/null`\"; sleep 0.5; done"]
    volumeMounts:
    - {{ name: vol, mountPath: /vol, mountPropagation: HostToContainer }}
  volumes:
  - {{ name: vol, emptyDir: {{}} }}
"#
        ),
    );
    let pod = wait_running(&c, "prop");
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    let dir = c
        .data_dir()
        .join("pods")
        .join(uid)
        .join("volumes/kubernetes.io~empty-dir/vol/sub");
    std::fs::create_dir_all(&dir).unwrap();
    // A mount made on the host after the container started (the harness
    // unmounts everything under the test directory).
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(dir.join("marker"), "from-host").unwrap();
    eventually_blocking(WAIT, "the host's mount in the container", || {
        let line = log_line(&c, "prop", "app", "seen=");
        (line == "from-host").then_some(()).ok_or(line)
    });
}

#[test]
fn a_host_network_pod_has_the_nodes_ip_and_hosts_file() {
    let c = cluster();
    apply(
        &c,
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: hostnet
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {BUSYBOX}
    env:
    - {{ name: POD_IP, valueFrom: {{ fieldRef: {{ fieldPath: status.podIP }} }} }}
    - {{ name: HOST_IP, valueFrom: {{ fieldRef: {{ fieldPath: status.hostIP }} }} }}
    command: ["sh", "-c", "echo \"ips=$POD_IP $HOST_IP\"; echo \"hosts=`head -n 1 /etc/hosts`\"; sleep 3600"]
"#
        ),
    );
    wait_running(&c, "hostnet");
    let node = c.ok(&[
        "get",
        "nodes",
        "-o",
        "jsonpath={.items[0].status.addresses[?(@.type==\"InternalIP\")].address}",
    ]);
    assert_eq!(
        log_line(&c, "hostnet", "app", "ips="),
        format!("{node} {node}")
    );
    assert_eq!(
        log_line(&c, "hostnet", "app", "hosts="),
        "# Kubernetes-managed hosts file (host network)."
    );
}
