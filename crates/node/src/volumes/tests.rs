use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use k8s_openapi::api::core::v1::{Container, Pod};
use runtime::cri::MountPropagation;
use serde_json::json;

use super::atomic_writer::{self, validate_path, DATA_DIR};
use super::container::{expand_sub_path_expr, validate_sub_path};
use super::host_path::{check_type, TypeCheckError};
use super::*;

fn payload(files: &[(&str, &str, u32)]) -> Payload {
    files
        .iter()
        .map(|(p, d, m)| (p.to_string(), FileProjection::new(d.as_bytes(), *m)))
        .collect()
}

fn data_dir(dir: &Path) -> PathBuf {
    fs::read_link(dir.join(DATA_DIR)).unwrap()
}

#[test]
fn atomic_writer_publishes_files_as_symlinks_into_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let changed = atomic_writer::write(
        dir,
        &payload(&[("a", "one", 0o644), ("nested/b", "two", 0o400)]),
        None,
    )
    .unwrap();
    assert!(changed);
    let ts = data_dir(dir);
    let ts_name = ts.to_str().unwrap();
    // `..2026_11_22_21_00_00.123456789`
    assert!(
        ts_name.starts_with("..20") && ts_name.len() == 31,
        "{ts_name}"
    );
    assert_eq!(fs::read_link(dir.join("a")).unwrap(), Path::new("..data/a"));
    assert_eq!(
        fs::read_link(dir.join("nested")).unwrap(),
        Path::new("..data/nested")
    );
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "one");
    assert_eq!(fs::read_to_string(dir.join("nested/b")).unwrap(), "two");
    let mode = |p: &str| fs::metadata(dir.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("a"), 0o644);
    assert_eq!(mode("nested/b"), 0o400);
    assert_eq!(fs::metadata(dir.join(&ts)).unwrap().mode() & 0o7777, 0o755);
}

#[test]
fn atomic_writer_update_swaps_data_and_drops_removed_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    atomic_writer::write(dir, &payload(&[("a", "1", 0o644), ("b", "2", 0o644)]), None).unwrap();
    let first = data_dir(dir);

    // Unchanged payload: nothing is rewritten.
    let changed =
        atomic_writer::write(dir, &payload(&[("a", "1", 0o644), ("b", "2", 0o644)]), None).unwrap();
    assert!(!changed);
    assert_eq!(data_dir(dir), first);

    let changed = atomic_writer::write(dir, &payload(&[("a", "1b", 0o644)]), None).unwrap();
    assert!(changed);
    let second = data_dir(dir);
    assert_ne!(second, first);
    assert!(
        !dir.join(&first).exists(),
        "the old data directory is removed"
    );
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "1b");
    assert!(
        fs::symlink_metadata(dir.join("b")).is_err(),
        "removed key disappears"
    );
    let names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names.len(),
        3,
        "a, ..data and one timestamped dir: {names:?}"
    );

    // A mode change alone is a change.
    assert!(atomic_writer::write(dir, &payload(&[("a", "1b", 0o600)]), None).unwrap());
    assert_eq!(fs::metadata(dir.join("a")).unwrap().mode() & 0o7777, 0o600);
}

#[test]
fn atomic_writer_refuses_paths_that_leave_the_volume() {
    assert!(validate_path("a/b").is_ok());
    assert!(validate_path("..a").is_err());
    assert!(validate_path("..").is_err());
    assert!(validate_path("a/../b").is_err());
    assert!(validate_path("/etc/passwd").is_err());
    assert!(validate_path("").is_err());
    assert!(validate_path("a/..b").is_ok());
    let tmp = tempfile::tempdir().unwrap();
    let err =
        atomic_writer::write(tmp.path(), &payload(&[("../x", "1", 0o644)]), None).unwrap_err();
    assert_eq!(err.to_string(), "invalid path: must not contain '..': ../x");
    assert!(
        fs::read_dir(tmp.path()).unwrap().next().is_none(),
        "nothing written"
    );
}

#[test]
fn host_path_types_are_checked_with_upstreams_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let file = dir.join("file");
    fs::write(&file, "x").unwrap();
    let f = file.display().to_string();
    let d = dir.display().to_string();

    assert_eq!(check_type(&file, None), Ok(()));
    assert_eq!(check_type(&dir.join("missing"), Some("")), Ok(()));
    assert_eq!(check_type(dir, Some("Directory")), Ok(()));
    assert_eq!(
        check_type(&file, Some("Directory"))
            .unwrap_err()
            .to_string(),
        format!("hostPath type check failed: {f} is not a directory")
    );
    assert_eq!(
        check_type(&dir.join("nope"), Some("Directory"))
            .unwrap_err()
            .to_string(),
        format!("hostPath type check failed: {d}/nope is not a directory")
    );
    assert_eq!(check_type(&file, Some("File")), Ok(()));
    assert_eq!(
        check_type(dir, Some("File")),
        Err(TypeCheckError::NotFile { path: d.clone() })
    );
    assert_eq!(
        check_type(&file, Some("Socket")).unwrap_err().to_string(),
        format!("hostPath type check failed: {f} is not a socket file")
    );
    assert_eq!(
        check_type(&file, Some("CharDevice"))
            .unwrap_err()
            .to_string(),
        format!("hostPath type check failed: {f} is not a character device")
    );
    assert_eq!(
        check_type(Path::new("/dev/null"), Some("CharDevice")),
        Ok(())
    );
    assert_eq!(
        check_type(&file, Some("BlockDevice"))
            .unwrap_err()
            .to_string(),
        format!("hostPath type check failed: {f} is not a block device")
    );
    let sock = dir.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    assert_eq!(check_type(&sock, Some("Socket")), Ok(()));

    let made = dir.join("a/b/c");
    assert_eq!(check_type(&made, Some("DirectoryOrCreate")), Ok(()));
    assert!(made.is_dir());
    assert_eq!(
        fs::metadata(&made).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert_eq!(
        check_type(&file, Some("DirectoryOrCreate"))
            .unwrap_err()
            .to_string(),
        format!("hostPath type check failed: {f} is not a directory")
    );
    let new_file = dir.join("new");
    assert_eq!(check_type(&new_file, Some("FileOrCreate")), Ok(()));
    assert!(new_file.is_file());
    assert_eq!(
        check_type(dir, Some("FileOrCreate"))
            .unwrap_err()
            .to_string(),
        format!("hostPath type check failed: {d} is not a file")
    );
    // A file whose directory can't be written names the path.
    let err = check_type(Path::new("/proc/krate-test/file"), Some("FileOrCreate")).unwrap_err();
    assert!(
        err.to_string()
            .contains("could not create file /proc/krate-test/file"),
        "{err}"
    );
}

#[test]
fn sub_paths_are_relative_without_backsteps() {
    assert_eq!(validate_sub_path("a/b"), Ok(()));
    assert_eq!(validate_sub_path("a..b"), Ok(()));
    assert_eq!(
        validate_sub_path("/etc").unwrap_err().to_string(),
        "error SubPath `/etc` must not be an absolute path"
    );
    assert_eq!(
        validate_sub_path("a/../../etc").unwrap_err().to_string(),
        "unable to provision SubPath `a/../../etc`: must not contain '..'"
    );
    let env = vec![
        ("POD".to_string(), "web-0".to_string()),
        ("EMPTY".to_string(), String::new()),
    ];
    assert_eq!(
        expand_sub_path_expr("logs/$(POD)", &env).unwrap(),
        "logs/web-0"
    );
    assert_eq!(
        expand_sub_path_expr("$(EMPTY)/$(NOPE)", &env)
            .unwrap_err()
            .to_string(),
        "missing value for EMPTY, NOPE"
    );
}

fn test_pod() -> Pod {
    serde_json::from_value(json!({
        "metadata": {
            "name": "web", "namespace": "shop", "uid": "uid-1",
            "labels": { "app": "web" }
        },
        "spec": {
            "hostname": "h", "subdomain": "sub",
            "hostAliases": [{ "ip": "10.1.2.3", "hostnames": ["foo", "bar"] }],
            "containers": [{
                "name": "app", "terminationMessagePath": "/dev/termination-log",
                "resources": { "limits": { "memory": "128Mi" } },
                "volumeMounts": [
                    { "name": "data", "mountPath": "/data" },
                    { "name": "data", "mountPath": "/logs", "subPathExpr": "logs/$(POD)" },
                    { "name": "config", "mountPath": "/config", "mountPropagation": "HostToContainer" }
                ]
            }]
        }
    }))
    .unwrap()
}

#[test]
fn container_mounts_follow_volume_mounts_then_hosts_and_termination_log() {
    let tmp = tempfile::tempdir().unwrap();
    let pod_dir = tmp.path().join("uid-1");
    let data = pod_dir.join("volumes").join(EMPTY_DIR_PLUGIN).join("data");
    let config = pod_dir
        .join("volumes")
        .join(CONFIGMAP_PLUGIN)
        .join("config");
    fs::create_dir_all(&data).unwrap();
    fs::create_dir_all(&config).unwrap();
    let volumes = PodVolumes {
        pod_dir: pod_dir.clone(),
        volumes: BTreeMap::from([
            (
                "data".to_string(),
                MountedVolume {
                    host_path: data.clone(),
                    read_only: false,
                },
            ),
            (
                "config".to_string(),
                MountedVolume {
                    host_path: config.clone(),
                    read_only: true,
                },
            ),
        ]),
        cluster_domain: "cluster.local".into(),
    };
    let pod = test_pod();
    let container = &pod.spec.as_ref().unwrap().containers[0];
    let env = vec![("POD".to_string(), "web-0".to_string())];
    let ips = vec!["10.42.0.7".to_string()];
    let mounts = volumes
        .container_mounts(
            &pod,
            container,
            &MountContext {
                pod_ips: &ips,
                env: &env,
            },
        )
        .unwrap();
    let paths: Vec<&str> = mounts.iter().map(|m| m.container_path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/data",
            "/logs",
            "/config",
            "/etc/hosts",
            "/dev/termination-log"
        ]
    );
    assert_eq!(mounts[0].host_path, data);
    assert_eq!(
        mounts[1].host_path,
        data.canonicalize().unwrap().join("logs/web-0")
    );
    assert!(
        mounts[1].host_path.is_dir(),
        "the subPath directory is made"
    );
    assert!(mounts[2].readonly, "configMap volumes are read-only");
    assert_eq!(mounts[2].propagation, MountPropagation::HostToContainer);
    assert!(!mounts[0].readonly);
    assert_eq!(
        fs::read_to_string(&mounts[3].host_path).unwrap(),
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n\
         10.42.0.7\th.sub.shop.svc.cluster.local\th\n\
         \n# Entries added by HostAliases.\n\
         10.1.2.3\tfoo\tbar\n"
    );
    assert_eq!(mounts[3].host_path, pod_dir.join("etc-hosts"));
    let log = &mounts[4].host_path;
    assert!(log.starts_with(pod_dir.join("containers/app")));
    assert_eq!(fs::metadata(log).unwrap().mode() & 0o777, 0o666);

    // A volume the pod does not have.
    let mut bad: Container = container.clone();
    bad.volume_mounts.as_mut().unwrap()[0].name = "gone".into();
    assert_eq!(
        volumes
            .container_mounts(
                &pod,
                &bad,
                &MountContext {
                    pod_ips: &ips,
                    env: &env
                }
            )
            .unwrap_err()
            .to_string(),
        "cannot find volume \"gone\" to mount into container \"app\""
    );
    // Bidirectional needs a privileged container.
    let mut bidi: Container = container.clone();
    bidi.volume_mounts.as_mut().unwrap()[0].mount_propagation = Some("Bidirectional".into());
    assert_eq!(
        volumes
            .container_mounts(
                &pod,
                &bidi,
                &MountContext {
                    pod_ips: &ips,
                    env: &env
                }
            )
            .unwrap_err(),
        MountsError::BidirectionalNotPrivileged
    );
}

#[test]
fn missing_host_paths_become_directories_and_host_network_pods_get_the_nodes_hosts() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("made/by/mount");
    let volumes = PodVolumes {
        pod_dir: tmp.path().join("uid-1"),
        volumes: BTreeMap::from([(
            "h".to_string(),
            MountedVolume {
                host_path: missing.clone(),
                read_only: false,
            },
        )]),
        cluster_domain: "cluster.local".into(),
    };
    let mut pod = test_pod();
    pod.spec.as_mut().unwrap().host_network = Some(true);
    let container: Container = serde_json::from_value(json!({
        "name": "app",
        "volumeMounts": [{ "name": "h", "mountPath": "/h" }]
    }))
    .unwrap();
    let mounts = volumes
        .container_mounts(&pod, &container, &MountContext::default())
        .unwrap();
    assert!(missing.is_dir());
    assert_eq!(mounts[1].container_path, "/etc/hosts");
    let hosts = fs::read_to_string(&mounts[1].host_path).unwrap();
    assert!(
        hosts.starts_with("# Kubernetes-managed hosts file (host network).\n"),
        "{hosts}"
    );
    assert!(
        hosts.ends_with("\n# Entries added by HostAliases.\n10.1.2.3\tfoo\tbar\n"),
        "{hosts}"
    );
}

#[test]
fn sub_path_symlinks_out_of_the_volume_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pod_dir = tmp.path().join("uid-1");
    let data = pod_dir.join("volumes").join(EMPTY_DIR_PLUGIN).join("data");
    fs::create_dir_all(&data).unwrap();
    std::os::unix::fs::symlink("/etc", data.join("escape")).unwrap();
    let volumes = PodVolumes {
        pod_dir,
        volumes: BTreeMap::from([(
            "data".to_string(),
            MountedVolume {
                host_path: data,
                read_only: false,
            },
        )]),
        cluster_domain: "cluster.local".into(),
    };
    let container: Container = serde_json::from_value(json!({
        "name": "app",
        "volumeMounts": [{ "name": "data", "mountPath": "/x", "subPath": "escape" }]
    }))
    .unwrap();
    let err = volumes
        .container_mounts(&test_pod(), &container, &MountContext::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to prepare subPath for volumeMount \"data\" of container \"app\""
    );
    let container: Container = serde_json::from_value(json!({
        "name": "app",
        "volumeMounts": [{ "name": "data", "mountPath": "/x", "subPath": "escape/new/dir" }]
    }))
    .unwrap();
    let err = volumes
        .container_mounts(&test_pod(), &container, &MountContext::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to create subPath directory for volumeMount \"data\" of container \"app\""
    );
    assert!(!Path::new("/etc/new").exists());
}

#[test]
fn payloads_follow_items_modes_and_optional() {
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": { "name": "cfg" },
        "data": { "a": "1", "b": "2" },
        "binaryData": { "bin": "AAE=" }
    }))
    .unwrap();
    let all = config_map_payload(None, &cm, 0o640, false).unwrap();
    assert_eq!(all.keys().collect::<Vec<_>>(), ["a", "b", "bin"]);
    assert_eq!(all["bin"], FileProjection::new(vec![0u8, 1], 0o640));
    let items: Vec<KeyToPath> = serde_json::from_value(json!([
        { "key": "a", "path": "dir/a.txt", "mode": 0o400 },
        { "key": "b", "path": "b.txt" }
    ]))
    .unwrap();
    let some = config_map_payload(Some(&items), &cm, DEFAULT_MODE, false).unwrap();
    assert_eq!(some["dir/a.txt"], FileProjection::new("1", 0o400));
    assert_eq!(some["b.txt"], FileProjection::new("2", 0o644));
    let missing: Vec<KeyToPath> =
        serde_json::from_value(json!([{ "key": "zz", "path": "z" }])).unwrap();
    assert_eq!(
        config_map_payload(Some(&missing), &cm, DEFAULT_MODE, false).unwrap_err(),
        "configmap references non-existent config key: zz"
    );
    assert!(config_map_payload(Some(&missing), &cm, DEFAULT_MODE, true)
        .unwrap()
        .is_empty());
    let secret: Secret =
        serde_json::from_value(json!({ "data": { "token": "c2VjcmV0" } })).unwrap();
    assert_eq!(
        secret_payload(None, &secret, DEFAULT_MODE, false).unwrap()["token"],
        FileProjection::new("secret", 0o644)
    );
    assert_eq!(
        secret_payload(Some(&missing), &secret, DEFAULT_MODE, false).unwrap_err(),
        "references non-existent secret key: zz"
    );
}

#[test]
fn downward_api_files_hold_labels_and_resources() {
    let pod = test_pod();
    let items: Vec<DownwardAPIVolumeFile> = serde_json::from_value(json!([
        { "path": "labels", "fieldRef": { "fieldPath": "metadata.labels" } },
        { "path": "name", "fieldRef": { "fieldPath": "metadata.name" }, "mode": 0o600 },
        { "path": "mem", "resourceFieldRef": { "containerName": "app", "resource": "limits.memory", "divisor": "1Mi" } },
        { "path": "cpu", "resourceFieldRef": { "containerName": "app", "resource": "limits.cpu" } }
    ]))
    .unwrap();
    let allocatable = BTreeMap::from([("cpu".to_string(), Quantity("2".into()))]);
    let p = downward_api_payload(&items, &pod, DEFAULT_MODE, &allocatable).unwrap();
    assert_eq!(p["labels"], FileProjection::new("app=\"web\"", 0o644));
    assert_eq!(p["name"], FileProjection::new("web", 0o600));
    assert_eq!(p["mem"].data, b"128");
    assert_eq!(p["cpu"].data, b"2");
}

#[test]
fn memory_volumes_are_sized_by_limit_then_pod_then_node() {
    let pod = test_pod();
    let q = |s: &str| Quantity(s.into());
    // The pod's only container has a 128Mi limit.
    assert_eq!(
        empty_dir_memory_size(&pod, None, Some(&q("1Gi"))),
        Some(128 << 20)
    );
    assert_eq!(
        empty_dir_memory_size(&pod, Some(&q("64Mi")), Some(&q("1Gi"))),
        Some(64 << 20)
    );
    assert_eq!(
        empty_dir_memory_size(&pod, Some(&q("1Ti")), Some(&q("1Gi"))),
        Some(128 << 20)
    );
    let mut unlimited = pod.clone();
    unlimited.spec.as_mut().unwrap().containers[0].resources = None;
    assert_eq!(
        empty_dir_memory_size(&unlimited, None, Some(&q("1Gi"))),
        Some(1 << 30)
    );
    assert_eq!(empty_dir_memory_size(&unlimited, None, None), None);
}

#[test]
fn mountinfo_lines_are_parsed_with_escapes() {
    let text = "36 35 98:0 /mnt1 /mnt\\040with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n\
                37 35 0:5 / /var/lib/krate/pods/u/volumes/kubernetes.io~secret/s rw - tmpfs tmpfs rw\n";
    let m = mounts::parse_mountinfo(text);
    assert_eq!(m[0].mount_point, Path::new("/mnt with space"));
    assert_eq!(m[0].fs_type, "ext3");
    assert_eq!(m[1].fs_type, "tmpfs");
    assert!(!m[0].shared && !m[1].shared);
    let shared = mounts::parse_mountinfo("40 1 0:7 / /srv rw shared:5 master:1 - ext4 /dev/x rw\n");
    assert!(shared[0].shared);
    assert_eq!(shared[0].fs_type, "ext4");
}

/// Runs as root: a memory-backed volume is a tmpfs of the computed size,
/// and tearing the pod down unmounts it and removes the pod's directory.
#[test]
fn tmpfs_volumes_are_mounted_and_torn_down() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let pod_dir = tmp.path().join("uid-tmpfs");
    let dir = pod_dir.join("volumes").join(SECRET_PLUGIN).join("s");
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = mounts::unmount_all_under(&self.0);
        }
    }
    let _cleanup = Cleanup(pod_dir.clone());
    let plan = Plan::Files {
        dir: dir.clone(),
        memory: true,
        size: Some(8 << 20),
        payload: payload(&[("token", "t", 0o644)]),
    };
    make_pod_dirs(&pod_dir).unwrap();
    let mounted = apply(&plan, Some((1234, None))).unwrap();
    assert!(mounted.read_only);
    let info = mounts::mount_at(&dir).unwrap().expect("mounted");
    assert_eq!(info.fs_type, "tmpfs");
    assert_eq!(fs::read_to_string(dir.join("token")).unwrap(), "t");
    // fsGroup: group owner, read for the group, setgid directories.
    let ts = dir.join(data_dir(&dir));
    assert_eq!(fs::metadata(&ts).unwrap().gid(), 1234);
    assert_eq!(fs::metadata(&ts).unwrap().mode() & 0o2000, 0o2000);
    assert_eq!(
        fs::metadata(ts.join("token")).unwrap().mode() & 0o7777,
        0o644 | 0o040
    );
    // Applying again does not stack a second tmpfs.
    apply(&plan, None).unwrap();
    let count = mounts::mounts()
        .unwrap()
        .iter()
        .filter(|m| m.mount_point == dir)
        .count();
    assert_eq!(count, 1);

    remove_pod_dir(&pod_dir).unwrap();
    assert!(mounts::mount_at(&dir).unwrap().is_none());
    assert!(!pod_dir.exists());
}

/// Runs as root: a local PV is bind-mounted, and removing the pod unmounts
/// it without touching the PV's data.
#[test]
fn local_volumes_are_bind_mounted_and_their_data_survives_teardown() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("pv");
    fs::create_dir(&source).unwrap();
    fs::write(source.join("keep"), "data").unwrap();
    // The pods root is reached through a symlink: the mount table names
    // the real path, and teardown must still find (and unmount) the PV
    // before removing anything.
    fs::create_dir(tmp.path().join("real")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("real"), tmp.path().join("link")).unwrap();
    let pod_dir = tmp.path().join("link/uid-local");
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = mounts::unmount_all_under(&self.0);
        }
    }
    let _cleanup = Cleanup(pod_dir.clone());
    let dir = pod_dir
        .join("volumes")
        .join(LOCAL_VOLUME_PLUGIN)
        .join("pv-1");
    let plan = Plan::Bind {
        dir: dir.clone(),
        source: source.clone(),
        read_only: false,
    };
    make_pod_dirs(&pod_dir).unwrap();
    apply(&plan, None).unwrap();
    assert_eq!(fs::read_to_string(dir.join("keep")).unwrap(), "data");
    apply(&plan, None).unwrap();
    remove_pod_dir(&pod_dir).unwrap();
    assert!(!pod_dir.exists());
    assert_eq!(fs::read_to_string(source.join("keep")).unwrap(), "data");

    let missing = Plan::Bind {
        dir,
        source: tmp.path().join("nope"),
        read_only: false,
    };
    let err = apply(&missing, None).unwrap_err();
    assert!(err.contains("does not exist"), "{err}");
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[tokio::test]
async fn teardown_refuses_uids_that_are_not_one_directory_under_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pods");
    fs::create_dir_all(root.join("keep")).unwrap();
    let client =
        kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
    let manager = Manager::new(&root, client, "node-1");
    for uid in ["", ".", "..", "../pods", "a/b"] {
        assert!(manager.teardown(uid).await.is_err(), "{uid:?}");
    }
    assert!(root.join("keep").exists());
    manager.teardown("keep").await.unwrap();
    assert!(!root.join("keep").exists());
    assert!(root.exists());
}

/// Runs as root: the pods root becomes a shared mount, once.
#[test]
fn the_pods_root_is_made_a_shared_mount_once() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pods");
    fs::create_dir(&root).unwrap();
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = mounts::unmount_all_under(&self.0);
        }
    }
    let _cleanup = Cleanup(root.clone());
    mounts::make_rshared(&root).unwrap();
    mounts::make_rshared(&root).unwrap();
    let at_root: Vec<_> = mounts::mounts()
        .unwrap()
        .into_iter()
        .filter(|m| m.mount_point == root.canonicalize().unwrap())
        .collect();
    assert_eq!(at_root.len(), 1, "{at_root:?}");
    assert!(at_root[0].shared);
}
