//! Persistent volumes through a real `krate server`: binding claims to
//! volumes, phases, reclaim policies, in-use protection and dynamic
//! provisioning by the default `local-path` class, checked with kubectl.

mod support;

use std::time::Duration;

use support::{eventually_blocking, Cluster};

const WAIT: Duration = Duration::from_secs(30);

fn volume(name: &str, size: &str, extra_spec: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"PersistentVolume","metadata":{{"name":"{name}"}},"spec":{{"capacity":{{"storage":"{size}"}},"accessModes":["ReadWriteOnce"],"hostPath":{{"path":"/srv/{name}"}}{extra_spec}}}}}"#
    )
}

fn claim(name: &str, size: &str, extra_spec: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{{"name":"{name}"}},"spec":{{"accessModes":["ReadWriteOnce"],"resources":{{"requests":{{"storage":"{size}"}}}}{extra_spec}}}}}"#
    )
}

/// A pod on `node` (set directly, as a scheduler would bind it) using `claim`.
fn pod_using(name: &str, claim: &str, node: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},"spec":{{"nodeName":"{node}","containers":[{{"name":"c","image":"busybox"}}],"volumes":[{{"name":"data","persistentVolumeClaim":{{"claimName":"{claim}"}}}}]}}}}"#
    )
}

fn field(c: &Cluster, kind: &str, name: &str, path: &str) -> String {
    let out = c.kubectl(&["get", kind, name, "-o", &format!("jsonpath={path}")]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_field(c: &Cluster, kind: &str, name: &str, path: &str, want: &str) {
    eventually_blocking(WAIT, &format!("{kind}/{name} {path} = {want}"), || {
        let got = field(c, kind, name, path);
        if got == want {
            Ok(())
        } else {
            Err(format!("got {got:?}"))
        }
    })
}

fn gone(c: &Cluster, kind: &str, name: &str) -> bool {
    let out = c.kubectl(&["get", kind, name]);
    !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound")
}

fn wait_gone(c: &Cluster, kind: &str, name: &str) {
    eventually_blocking(WAIT, &format!("{kind}/{name} gone"), || {
        if gone(c, kind, name) {
            Ok(())
        } else {
            Err("still there".into())
        }
    })
}

/// Waits for an event on the object with this reason and message.
fn wait_event(c: &Cluster, name: &str, reason: &str, message: &str) {
    eventually_blocking(WAIT, &format!("event {reason} on {name}"), || {
        let events = c.ok(&[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={name}"),
            "-o",
            "jsonpath={range .items[*]}{.reason}|{.source.component}|{.message}{\"\\n\"}{end}",
        ]);
        if events
            .lines()
            .any(|l| l.starts_with(&format!("{reason}|")) && l.ends_with(message))
        {
            Ok(())
        } else {
            Err(events)
        }
    })
}

#[test]
fn a_claim_binds_the_smallest_volume_that_fits_and_kubectl_shows_both_bound() {
    let c = Cluster::start_with(&["--simulated-nodes", "2"]);
    for (name, size) in [
        ("pv-small", "1Gi"),
        ("pv-medium", "5Gi"),
        ("pv-large", "10Gi"),
    ] {
        c.ok_stdin(
            &["create", "-f", "-"],
            &volume(name, size, r#","storageClassName":"manual""#),
        );
    }
    c.ok_stdin(
        &["create", "-f", "-"],
        &claim("data", "3Gi", r#","storageClassName":"manual""#),
    );
    wait_field(&c, "pvc", "data", "{.status.phase}", "Bound");
    assert_eq!(field(&c, "pvc", "data", "{.spec.volumeName}"), "pv-medium");
    assert_eq!(
        field(&c, "pvc", "data", "{.status.capacity.storage}"),
        "5Gi"
    );
    assert_eq!(
        field(
            &c,
            "pvc",
            "data",
            r#"{.metadata.annotations.pv\.kubernetes\.io/bind-completed}"#
        ),
        "yes"
    );
    assert_eq!(
        field(
            &c,
            "pvc",
            "data",
            r#"{.metadata.annotations.pv\.kubernetes\.io/bound-by-controller}"#
        ),
        "yes"
    );
    assert_eq!(
        field(&c, "pvc", "data", "{.metadata.finalizers}"),
        r#"["kubernetes.io/pvc-protection"]"#
    );
    wait_field(&c, "pv", "pv-medium", "{.status.phase}", "Bound");
    assert_eq!(
        field(&c, "pv", "pv-medium", "{.spec.claimRef.name}"),
        "data"
    );
    assert_eq!(
        field(&c, "pv", "pv-medium", "{.metadata.finalizers}"),
        r#"["kubernetes.io/pv-protection"]"#
    );
    wait_field(&c, "pv", "pv-small", "{.status.phase}", "Available");

    let table = c.ok(&["get", "pv,pvc"]);
    let lines: Vec<&str> = table.lines().collect();
    let header = |prefix: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| panic!("no {prefix} line in\n{table}"))
    };
    assert!(
        header("NAME").starts_with(
            "NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS VOLUMEATTRIBUTESCLASS REASON AGE"
        ),
        "{table}"
    );
    let claims_header = lines
        .iter()
        .filter(|l| l.starts_with("NAME"))
        .nth(1)
        .expect("a claims table");
    assert_eq!(
        claims_header
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        "NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE"
    );
    let row = header("persistentvolume/pv-medium");
    assert!(
        row.starts_with("persistentvolume/pv-medium 5Gi RWO Retain Bound default/data manual"),
        "{table}"
    );
    let row = header("persistentvolumeclaim/data");
    assert!(
        row.starts_with("persistentvolumeclaim/data Bound pv-medium 5Gi RWO manual"),
        "{table}"
    );
}

#[test]
fn a_volume_pre_bound_by_claim_ref_waits_for_its_claim_and_refuses_others() {
    let c = Cluster::start_with(&["--simulated-nodes", "2"]);
    c.ok_stdin(
        &["create", "-f", "-"],
        &volume(
            "reserved",
            "10Gi",
            r#","claimRef":{"namespace":"default","name":"mine"}"#,
        ),
    );
    wait_field(&c, "pv", "reserved", "{.status.phase}", "Available");
    // No class and nothing free for it: the claim waits, as upstream says.
    c.ok_stdin(
        &["create", "-f", "-"],
        &claim("other", "1Gi", r#","storageClassName":"""#),
    );
    wait_event(
        &c,
        "other",
        "FailedBinding",
        "no persistent volumes available for this claim and no storage class is set",
    );
    assert_eq!(field(&c, "pvc", "other", "{.status.phase}"), "Pending");
    c.ok_stdin(
        &["create", "-f", "-"],
        &claim("mine", "1Gi", r#","storageClassName":"""#),
    );
    wait_field(&c, "pvc", "mine", "{.status.phase}", "Bound");
    assert_eq!(field(&c, "pvc", "mine", "{.spec.volumeName}"), "reserved");
    wait_field(&c, "pv", "reserved", "{.status.phase}", "Bound");
    // The user bound the volume: the controller did not.
    assert_eq!(
        field(
            &c,
            "pv",
            "reserved",
            r#"{.metadata.annotations.pv\.kubernetes\.io/bound-by-controller}"#
        ),
        ""
    );
    assert_eq!(field(&c, "pvc", "other", "{.status.phase}"), "Pending");

    // A claim that names its volume gets it, and only if it fits.
    // Its own class, so that the waiting classless claim cannot take it.
    c.ok_stdin(
        &["create", "-f", "-"],
        &volume("named", "2Gi", r#","storageClassName":"byname""#),
    );
    c.ok_stdin(
        &["create", "-f", "-"],
        &claim(
            "too-big",
            "5Gi",
            r#","storageClassName":"byname","volumeName":"named""#,
        ),
    );
    wait_event(
        &c,
        "too-big",
        "VolumeMismatch",
        r#"Cannot bind to requested volume "named": requested PV is too small"#,
    );
    c.ok_stdin(
        &["create", "-f", "-"],
        &claim(
            "wants-named",
            "1Gi",
            r#","storageClassName":"byname","volumeName":"named""#,
        ),
    );
    wait_field(&c, "pvc", "wants-named", "{.status.phase}", "Bound");
    wait_field(&c, "pv", "named", "{.spec.claimRef.name}", "wants-named");
}

#[test]
fn deleting_claims_releases_retain_volumes_and_fails_volumes_nothing_can_delete() {
    let c = Cluster::start_with(&["--simulated-nodes", "2"]);
    let policies = [
        ("keep", "Retain"),
        ("recycle", "Recycle"),
        ("remove", "Delete"),
    ];
    for (name, policy) in policies {
        c.ok_stdin(
            &["create", "-f", "-"],
            &volume(
                name,
                "1Gi",
                &format!(
                    r#","storageClassName":"{name}","persistentVolumeReclaimPolicy":"{policy}""#
                ),
            ),
        );
        c.ok_stdin(
            &["create", "-f", "-"],
            &claim(name, "1Gi", &format!(r#","storageClassName":"{name}""#)),
        );
    }
    for (name, _) in policies {
        wait_field(&c, "pvc", name, "{.status.phase}", "Bound");
        wait_field(&c, "pv", name, "{.status.phase}", "Bound");
        c.ok(&["delete", "pvc", name, "--wait=false"]);
    }
    for (name, _) in policies {
        wait_gone(&c, "pvc", name);
    }
    wait_field(&c, "pv", "keep", "{.status.phase}", "Released");
    assert_eq!(field(&c, "pv", "keep", "{.spec.claimRef.name}"), "keep");
    let row = c.ok(&["get", "pv", "keep", "--no-headers"]);
    assert!(
        row.contains("Retain") && row.contains("Released") && row.contains("default/keep"),
        "{row}"
    );

    wait_field(&c, "pv", "recycle", "{.status.phase}", "Failed");
    assert_eq!(
        field(&c, "pv", "recycle", "{.status.message}"),
        "No recycler plugin found for the volume!"
    );
    wait_event(
        &c,
        "recycle",
        "VolumeFailedRecycle",
        "No recycler plugin found for the volume!",
    );

    // A hand-made hostPath volume outside /tmp: upstream's deleter refuses.
    wait_field(&c, "pv", "remove", "{.status.phase}", "Failed");
    wait_event(
        &c,
        "remove",
        "VolumeFailedDelete",
        "host_path deleter only supports /tmp/.+ but received provided /srv/remove",
    );

    // A Released volume is not in use: deleting it is not held back.
    c.ok(&["delete", "pv", "keep", "--wait=false"]);
    wait_gone(&c, "pv", "keep");
}

#[test]
fn a_claim_used_by_a_pod_stays_terminating_until_the_pod_is_gone() {
    let c = Cluster::start_with(&["--simulated-nodes", "2"]);
    c.ok_stdin(
        &["create", "-f", "-"],
        &volume("pv1", "1Gi", r#","storageClassName":"manual""#),
    );
    c.ok_stdin(
        &["create", "-f", "-"],
        &claim("data", "1Gi", r#","storageClassName":"manual""#),
    );
    wait_field(&c, "pvc", "data", "{.status.phase}", "Bound");
    c.ok_stdin(
        &["create", "-f", "-"],
        &pod_using("user", "data", "sim-node-0"),
    );
    c.ok(&["delete", "pvc", "data", "--wait=false"]);
    // Deleted but held: Terminating in kubectl, the finalizer still on it.
    let row = c.ok(&["get", "pvc", "data", "--no-headers"]);
    assert!(row.contains("Terminating"), "{row}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        field(&c, "pvc", "data", "{.metadata.finalizers}"),
        r#"["kubernetes.io/pvc-protection"]"#
    );
    // The volume stays Bound and its own deletion waits too.
    c.ok(&["delete", "pv", "pv1", "--wait=false"]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(field(&c, "pv", "pv1", "{.status.phase}"), "Bound");
    assert_eq!(
        field(&c, "pv", "pv1", "{.metadata.finalizers}"),
        r#"["kubernetes.io/pv-protection"]"#
    );

    c.ok(&["delete", "pod", "user", "--grace-period=0", "--force"]);
    wait_gone(&c, "pvc", "data");
    wait_gone(&c, "pv", "pv1");
}

#[test]
fn the_default_class_provisions_a_directory_on_the_node_of_the_first_consumer() {
    let c = Cluster::start_with(&["--simulated-nodes", "2"]);
    let classes = c.ok(&["get", "storageclass", "--no-headers"]);
    assert!(
        classes.starts_with("local-path (default)")
            && classes.contains("krate.io/local-path")
            && classes.contains("Delete")
            && classes.contains("WaitForFirstConsumer"),
        "{classes}"
    );
    c.ok_stdin(&["create", "-f", "-"], &claim("data", "2Gi", ""));
    assert_eq!(
        field(&c, "pvc", "data", "{.spec.storageClassName}"),
        "local-path"
    );
    wait_event(
        &c,
        "data",
        "WaitForFirstConsumer",
        "waiting for first consumer to be created before binding",
    );
    assert_eq!(field(&c, "pvc", "data", "{.status.phase}"), "Pending");

    c.ok_stdin(
        &["create", "-f", "-"],
        &pod_using("app", "data", "sim-node-1"),
    );
    wait_field(&c, "pvc", "data", "{.status.phase}", "Bound");
    let uid = field(&c, "pvc", "data", "{.metadata.uid}");
    let pv = format!("pvc-{uid}");
    assert_eq!(field(&c, "pvc", "data", "{.spec.volumeName}"), pv);
    assert_eq!(
        field(
            &c,
            "pvc",
            "data",
            r#"{.metadata.annotations.volume\.kubernetes\.io/selected-node}"#
        ),
        "sim-node-1"
    );
    assert_eq!(
        field(
            &c,
            "pvc",
            "data",
            r#"{.metadata.annotations.volume\.kubernetes\.io/storage-provisioner}"#
        ),
        "krate.io/local-path"
    );
    wait_field(&c, "pv", &pv, "{.status.phase}", "Bound");
    assert_eq!(
        field(
            &c,
            "pv",
            &pv,
            r#"{.metadata.annotations.pv\.kubernetes\.io/provisioned-by}"#
        ),
        "krate.io/local-path"
    );
    assert_eq!(
        field(&c, "pv", &pv, "{.spec.persistentVolumeReclaimPolicy}"),
        "Delete"
    );
    assert_eq!(
        field(
            &c,
            "pv",
            &pv,
            "{.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}"
        ),
        "sim-node-1"
    );
    let dir = c
        .data_dir()
        .join("storage")
        .join(format!("pvc-{uid}_default_data"));
    assert!(dir.is_dir(), "{} missing", dir.display());
    assert_eq!(
        field(&c, "pv", &pv, "{.spec.hostPath.path}"),
        dir.to_string_lossy()
    );
    wait_event(
        &c,
        "data",
        "ExternalProvisioning",
        "Waiting for a volume to be created either by the external provisioner 'krate.io/local-path' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.",
    );
    wait_event(
        &c,
        "data",
        "Provisioning",
        r#"External provisioner is provisioning volume for claim "default/data""#,
    );
    wait_event(
        &c,
        "data",
        "ProvisioningSucceeded",
        &format!("Successfully provisioned volume {pv}"),
    );

    // Delete: the claim goes once its pod has, then the volume and its directory.
    c.ok(&["delete", "pod", "app", "--grace-period=0", "--force"]);
    c.ok(&["delete", "pvc", "data", "--wait=false"]);
    wait_gone(&c, "pvc", "data");
    wait_gone(&c, "pv", &pv);
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn the_scheduler_picks_the_node_and_the_claim_is_provisioned_there() {
    let c = Cluster::start_with(&["--simulated-nodes", "2"]);
    c.ok_stdin(&["create", "-f", "-"], &claim("data", "1Gi", ""));
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"app"},"spec":{"containers":[{"name":"c","image":"busybox"}],"volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"data"}}]}}"#;
    c.ok_stdin(&["create", "-f", "-"], pod);
    wait_field(&c, "pvc", "data", "{.status.phase}", "Bound");
    let node = eventually_blocking(WAIT, "pod scheduled", || {
        let n = field(&c, "pod", "app", "{.spec.nodeName}");
        if n.is_empty() {
            Err("not scheduled".into())
        } else {
            Ok(n)
        }
    });
    assert_eq!(
        field(
            &c,
            "pvc",
            "data",
            r#"{.metadata.annotations.volume\.kubernetes\.io/selected-node}"#
        ),
        node
    );
    let pv = field(&c, "pvc", "data", "{.spec.volumeName}");
    assert_eq!(
        field(
            &c,
            "pv",
            &pv,
            "{.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}"
        ),
        node
    );
}

#[test]
fn a_waiting_claim_binds_the_local_volume_on_the_node_its_pod_is_scheduled_to() {
    let c = Cluster::start_with(&["--simulated-nodes", "2"]);
    c.ok_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"local-disks"},"provisioner":"kubernetes.io/no-provisioner","volumeBindingMode":"WaitForFirstConsumer"}"#,
    );
    let local = |name: &str, node: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"PersistentVolume","metadata":{{"name":"{name}"}},"spec":{{"capacity":{{"storage":"5Gi"}},"accessModes":["ReadWriteOnce"],"storageClassName":"local-disks","local":{{"path":"/mnt/{name}"}},"nodeAffinity":{{"required":{{"nodeSelectorTerms":[{{"matchExpressions":[{{"key":"kubernetes.io/hostname","operator":"In","values":["{node}"]}}]}}]}}}}}}}}"#
        )
    };
    c.ok_stdin(&["create", "-f", "-"], &local("disk-1", "sim-node-1"));
    c.ok_stdin(
        &["create", "-f", "-"],
        &claim("data", "1Gi", r#","storageClassName":"local-disks""#),
    );
    wait_event(
        &c,
        "data",
        "WaitForFirstConsumer",
        "waiting for first consumer to be created before binding",
    );
    wait_field(&c, "pv", "disk-1", "{.status.phase}", "Available");
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"app"},"spec":{"containers":[{"name":"c","image":"busybox"}],"volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"data"}}]}}"#;
    c.ok_stdin(&["create", "-f", "-"], pod);
    wait_field(&c, "pvc", "data", "{.status.phase}", "Bound");
    assert_eq!(field(&c, "pvc", "data", "{.spec.volumeName}"), "disk-1");
    wait_field(&c, "pod", "app", "{.spec.nodeName}", "sim-node-1");
}
