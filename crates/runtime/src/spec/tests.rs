use super::*;
use crate::cri::{Capability, DnsConfig, Mount, NamespaceOption};

const ALL: u64 = (1 << 41) - 1;

fn files() -> SandboxFiles {
    SandboxFiles {
        hostname: "/s/hostname".into(),
        hosts: "/s/hosts".into(),
        resolv_conf: "/s/resolv.conf".into(),
        shm: "/s/shm".into(),
    }
}

fn sandbox() -> PodSandboxConfig {
    let mut s = PodSandboxConfig::default();
    s.metadata.name = "web".into();
    s.metadata.namespace = "default".into();
    s.metadata.uid = "u1".into();
    s.hostname = "web".into();
    // As the kubelet sends it without shareProcessNamespace (CRI's default is Pod).
    s.namespace_options.pid = NamespaceMode::Container;
    s
}

fn container() -> ContainerConfig {
    let mut c = ContainerConfig::default();
    c.metadata.name = "app".into();
    c.args = vec!["sh".into(), "-c".into(), "echo hi".into()];
    c
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
                      web:x:1000:1001::/home/web:/bin/sh\n";
const GROUP: &str = "root:x:0:\n\
                     daemon:x:1:\n\
                     wheel:x:10:web,root\n\
                     web:x:1001:web\n\
                     audio:x:29:web\n\
                     nogroup:x:65534:\n";

fn spec_of(c: &ContainerConfig, s: &PodSandboxConfig) -> Value {
    let host = HostInfo::default();
    let f = files();
    container_spec(&ContainerSpecInput {
        config: c,
        sandbox: s,
        rootfs: Path::new("/c/rootfs"),
        sandbox_pid: 42,
        netns: Some(Path::new("/run/netns/cni-1")),
        files: &f,
        cgroups_path: "/kubepods/pod1/abc".into(),
        passwd: Some(PASSWD),
        group: Some(GROUP),
        host: &host,
        pid_target: None,
    })
    .unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn mount<'a>(spec: &'a Value, dest: &str) -> Option<&'a Value> {
    spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == dest)
}

#[test]
fn a_plain_container_gets_the_default_capabilities_args_and_env() {
    let spec = spec_of(&container(), &sandbox());
    assert_eq!(
        strings(&spec["process"]["capabilities"]["bounding"]),
        DEFAULT_CAPABILITIES
    );
    assert_eq!(
        spec["process"]["capabilities"]["effective"],
        spec["process"]["capabilities"]["bounding"]
    );
    assert_eq!(strings(&spec["process"]["args"]), ["sh", "-c", "echo hi"]);
    let env = strings(&spec["process"]["env"]);
    assert_eq!(env[0], format!("PATH={DEFAULT_PATH}"));
    assert!(env.contains(&"HOSTNAME=web".to_string()));
    assert_eq!(spec["process"]["cwd"], "/");
    assert_eq!(spec["process"]["user"]["uid"], 0);
    assert_eq!(spec["root"]["readonly"], false);
    assert_eq!(spec["root"]["path"], "/c/rootfs");
    assert_eq!(spec["linux"]["cgroupsPath"], "/kubepods/pod1/abc");
    assert_eq!(strings(&spec["linux"]["maskedPaths"]), MASKED_PATHS);
    assert_eq!(strings(&spec["linux"]["readonlyPaths"]), READONLY_PATHS);
    assert_eq!(spec["process"]["noNewPrivileges"], false);
}

#[test]
fn a_path_in_the_env_replaces_the_default_and_tty_sets_term() {
    let mut c = container();
    c.envs = vec![("PATH".into(), "/x".into()), ("A".into(), "b".into())];
    c.tty = true;
    c.working_dir = Some("/work".into());
    let spec = spec_of(&c, &sandbox());
    let env = strings(&spec["process"]["env"]);
    assert_eq!(env, ["PATH=/x", "HOSTNAME=web", "TERM=xterm", "A=b"]);
    assert_eq!(spec["process"]["terminal"], true);
    assert_eq!(spec["process"]["cwd"], "/work");
}

#[test]
fn a_later_value_of_an_env_name_replaces_the_earlier_in_place() {
    let mut c = container();
    c.envs = vec![
        ("IMAGE".into(), "1".into()),
        ("MODE".into(), "image".into()),
        ("HOSTNAME".into(), "mine".into()),
        ("MODE".into(), "pod".into()),
    ];
    let spec = spec_of(&c, &sandbox());
    assert_eq!(
        strings(&spec["process"]["env"]),
        [
            format!("PATH={DEFAULT_PATH}"),
            "HOSTNAME=mine".into(),
            "IMAGE=1".into(),
            "MODE=pod".into()
        ]
    );
}

#[test]
fn containers_join_the_sandbox_namespaces() {
    let spec = spec_of(&container(), &sandbox());
    let ns = spec["linux"]["namespaces"].as_array().unwrap();
    let find = |t: &str| ns.iter().find(|n| n["type"] == t).cloned();
    assert_eq!(find("mount").unwrap(), json!({"type": "mount"}));
    assert_eq!(find("pid").unwrap(), json!({"type": "pid"}));
    assert_eq!(find("ipc").unwrap()["path"], "/proc/42/ns/ipc");
    assert_eq!(find("uts").unwrap()["path"], "/proc/42/ns/uts");
    assert_eq!(find("network").unwrap()["path"], "/run/netns/cni-1");
    assert!(find("cgroup").is_none());
    assert!(spec.get("hostname").is_none());
}

#[test]
fn share_process_namespace_joins_the_pause_pid_namespace() {
    let mut s = sandbox();
    s.namespace_options.pid = NamespaceMode::Pod;
    let spec = spec_of(&container(), &s);
    let ns = spec["linux"]["namespaces"].as_array().unwrap();
    let pid = ns.iter().find(|n| n["type"] == "pid").unwrap();
    assert_eq!(pid["path"], "/proc/42/ns/pid");
}

#[test]
fn host_namespaces_are_not_unshared() {
    let mut s = sandbox();
    s.namespace_options = NamespaceOption {
        network: NamespaceMode::Node,
        pid: NamespaceMode::Node,
        ipc: NamespaceMode::Node,
    };
    s.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
    s.sysctls
        .insert("kernel.shm_rmid_forced".into(), "1".into());
    let spec = spec_of(&container(), &s);
    let ns = spec["linux"]["namespaces"].as_array().unwrap();
    assert_eq!(ns, &vec![json!({"type": "mount"})]);
    assert_eq!(spec["linux"]["sysctl"], json!({}));
    s.namespace_options.ipc = NamespaceMode::Pod;
    let spec = spec_of(&container(), &s);
    assert_eq!(
        spec["linux"]["sysctl"],
        json!({"kernel.shm_rmid_forced": "1"})
    );
}

#[test]
fn cgroup_v2_hosts_get_a_cgroup_namespace() {
    let host = HostInfo {
        cgroup_v2: true,
        ..HostInfo::default()
    };
    let f = files();
    let c = container();
    let s = sandbox();
    let spec = container_spec(&ContainerSpecInput {
        config: &c,
        sandbox: &s,
        rootfs: Path::new("/r"),
        sandbox_pid: 1,
        netns: None,
        files: &f,
        cgroups_path: "/k/c".into(),
        passwd: None,
        group: None,
        host: &host,
        pid_target: None,
    })
    .unwrap();
    let ns = spec["linux"]["namespaces"].as_array().unwrap();
    assert!(ns.iter().any(|n| n["type"] == "cgroup"));
    let net = ns.iter().find(|n| n["type"] == "network").unwrap();
    assert_eq!(net["path"], "/proc/1/ns/net");
}

#[test]
fn drop_all_leaves_no_capabilities_and_adds_apply_after() {
    let mut c = container();
    c.security_context.capabilities = Some(Capability {
        add: vec![],
        drop: vec!["ALL".into()],
    });
    assert!(strings(&spec_of(&c, &sandbox())["process"]["capabilities"]["bounding"]).is_empty());

    c.security_context.capabilities = Some(Capability {
        add: vec!["NET_ADMIN".into()],
        drop: vec!["all".into()],
    });
    assert_eq!(
        strings(&spec_of(&c, &sandbox())["process"]["capabilities"]["bounding"]),
        ["CAP_NET_ADMIN"]
    );
}

#[test]
fn add_all_then_drop_one_is_every_capability_but_that_one() {
    let caps = capabilities(
        Some(&Capability {
            add: vec!["ALL".into()],
            drop: vec!["CHOWN".into()],
        }),
        ALL,
    )
    .unwrap();
    assert_eq!(caps.len(), 40);
    assert!(!caps.contains(&"CAP_CHOWN".to_string()));
    assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()));
}

#[test]
fn add_and_drop_single_capabilities() {
    let caps = capabilities(
        Some(&Capability {
            add: vec!["SYS_TIME".into(), "CAP_NET_ADMIN".into(), "CHOWN".into()],
            drop: vec!["KILL".into(), "net_raw".into()],
        }),
        ALL,
    )
    .unwrap();
    assert!(caps.contains(&"CAP_SYS_TIME".to_string()));
    assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
    assert!(!caps.contains(&"CAP_KILL".to_string()));
    assert!(!caps.contains(&"CAP_NET_RAW".to_string()));
    assert_eq!(caps.iter().filter(|c| *c == "CAP_CHOWN").count(), 1);
}

#[test]
fn unknown_capabilities_are_refused() {
    let err = capabilities(
        Some(&Capability {
            add: vec!["FLY".into()],
            drop: vec![],
        }),
        ALL,
    )
    .unwrap_err();
    assert_eq!(err, SpecError::UnknownCapability("FLY".into()));
}

#[test]
fn privileged_gets_all_capabilities_devices_and_writable_sysfs() {
    let mut c = container();
    c.security_context.privileged = true;
    c.security_context.no_new_privs = true;
    let host = HostInfo {
        // No CAP_SYS_RESOURCE (24), nothing above 37.
        capabilities: ((1 << 38) - 1) & !(1 << 24),
        devices: vec![HostDevice {
            path: "/dev/loop0".into(),
            kind: "b",
            major: 7,
            minor: 0,
            file_mode: 0o660,
            uid: 0,
            gid: 6,
        }],
        ..HostInfo::default()
    };
    let f = files();
    let s = sandbox();
    let spec = container_spec(&ContainerSpecInput {
        config: &c,
        sandbox: &s,
        rootfs: Path::new("/r"),
        sandbox_pid: 1,
        netns: None,
        files: &f,
        cgroups_path: "/k/c".into(),
        passwd: None,
        group: None,
        host: &host,
        pid_target: None,
    })
    .unwrap();
    assert_eq!(
        spec["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .len(),
        37
    );
    assert!(!strings(&spec["process"]["capabilities"]["bounding"])
        .contains(&"CAP_SYS_RESOURCE".to_string()));
    assert_eq!(spec["process"]["noNewPrivileges"], false);
    assert!(spec["linux"].get("maskedPaths").is_none());
    assert!(spec["linux"].get("readonlyPaths").is_none());
    assert_eq!(spec["linux"]["devices"][0]["path"], "/dev/loop0");
    assert_eq!(
        spec["linux"]["resources"]["devices"],
        json!([{"allow": true, "access": "rwm"}])
    );
    let sys = mount(&spec, "/sys").unwrap();
    assert!(strings(&sys["options"]).contains(&"rw".to_string()));
}

#[test]
fn unprivileged_containers_deny_devices_and_mount_sys_read_only() {
    let spec = spec_of(&container(), &sandbox());
    assert_eq!(
        spec["linux"]["resources"]["devices"],
        json!([{"allow": false, "access": "rwm"}])
    );
    for dest in ["/sys", "/sys/fs/cgroup"] {
        assert!(strings(&mount(&spec, dest).unwrap()["options"]).contains(&"ro".to_string()));
    }
}

#[test]
fn default_mounts_and_sandbox_files_are_present() {
    let spec = spec_of(&container(), &sandbox());
    for (dest, ty) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
        ("/sys/fs/cgroup", "cgroup"),
        ("/dev/shm", "bind"),
        ("/etc/hosts", "bind"),
        ("/etc/hostname", "bind"),
        ("/etc/resolv.conf", "bind"),
    ] {
        assert_eq!(mount(&spec, dest).unwrap()["type"], ty, "{dest}");
    }
    assert_eq!(mount(&spec, "/dev/shm").unwrap()["source"], "/s/shm");
    assert_eq!(mount(&spec, "/etc/hosts").unwrap()["source"], "/s/hosts");
}

#[test]
fn a_cri_mount_replaces_the_sandbox_file_at_the_same_path() {
    let mut c = container();
    c.mounts = vec![Mount {
        container_path: "/etc/hosts".into(),
        host_path: "/pods/u1/etc-hosts".into(),
        readonly: false,
        propagation: MountPropagation::Private,
    }];
    let spec = spec_of(&c, &sandbox());
    let hosts: Vec<_> = spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["destination"] == "/etc/hosts")
        .collect();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0]["source"], "/pods/u1/etc-hosts");
}

#[test]
fn mounts_carry_propagation_and_read_only_and_sort_parents_first() {
    let mut c = container();
    c.mounts = vec![
        Mount {
            container_path: "/data/deep/er".into(),
            host_path: "/h/a".into(),
            readonly: true,
            propagation: MountPropagation::HostToContainer,
        },
        Mount {
            container_path: "/data".into(),
            host_path: "/h/b".into(),
            readonly: false,
            propagation: MountPropagation::Bidirectional,
        },
    ];
    let spec = spec_of(&c, &sandbox());
    let mounts = spec["mounts"].as_array().unwrap();
    let pos = |d: &str| mounts.iter().position(|m| m["destination"] == d).unwrap();
    assert!(pos("/data") < pos("/data/deep/er"));
    assert_eq!(
        strings(&mounts[pos("/data/deep/er")]["options"]),
        ["rbind", "rslave", "ro"]
    );
    assert_eq!(
        strings(&mounts[pos("/data")]["options"]),
        ["rbind", "rshared", "rw"]
    );
    assert_eq!(spec["linux"]["rootfsPropagation"], "rshared");
}

#[test]
fn readonly_rootfs_makes_root_and_sandbox_files_read_only() {
    let mut c = container();
    c.security_context.readonly_rootfs = true;
    let spec = spec_of(&c, &sandbox());
    assert_eq!(spec["root"]["readonly"], true);
    assert!(strings(&mount(&spec, "/etc/hosts").unwrap()["options"]).contains(&"ro".to_string()));
    assert!(strings(&mount(&spec, "/dev/shm").unwrap()["options"]).contains(&"rw".to_string()));
}

#[test]
fn resources_become_cgroup_settings() {
    let mut c = container();
    c.resources = LinuxContainerResources {
        cpu_period: Some(100_000),
        cpu_quota: Some(50_000),
        cpu_shares: Some(512),
        memory_limit_in_bytes: Some(64 << 20),
        oom_score_adj: Some(999),
        pids_limit: Some(100),
    };
    let spec = spec_of(&c, &sandbox());
    let r = &spec["linux"]["resources"];
    assert_eq!(
        r["cpu"],
        json!({"shares": 512, "quota": 50000, "period": 100000})
    );
    assert_eq!(r["memory"], json!({"limit": 64 << 20, "swap": 64 << 20}));
    assert_eq!(r["pids"], json!({"limit": 100}));
    assert_eq!(spec["process"]["oomScoreAdj"], 999);

    let no_swap = HostInfo {
        swap_accounting: false,
        ..HostInfo::default()
    };
    assert_eq!(
        resources(&c.resources, &no_swap, false)["memory"],
        json!({"limit": 64 << 20})
    );
    let none = resources(&LinuxContainerResources::default(), &no_swap, false);
    assert!(none.get("cpu").is_none() && none.get("memory").is_none());
}

#[test]
fn run_as_user_takes_the_gid_of_its_passwd_entry_and_its_groups() {
    let mut c = container();
    c.security_context.run_as_user = Some(1000);
    c.security_context.supplemental_groups = vec![5000, 10];
    let (uid, gid, gids) = resolve_user(&c, Some(PASSWD), Some(GROUP)).unwrap();
    assert_eq!((uid, gid), (1000, 1001));
    assert_eq!(gids, [1001, 10, 29, 5000]);
}

#[test]
fn run_as_user_without_a_passwd_entry_is_gid_zero() {
    let mut c = container();
    c.security_context.run_as_user = Some(4242);
    assert_eq!(
        resolve_user(&c, Some(PASSWD), Some(GROUP)).unwrap(),
        (4242, 0, vec![0])
    );
    c.security_context.run_as_group = Some(7);
    assert_eq!(resolve_user(&c, None, None).unwrap(), (4242, 7, vec![7]));
}

#[test]
fn usernames_resolve_through_the_image_passwd_and_group_files() {
    let mut c = container();
    c.security_context.run_as_username = Some("nobody".into());
    assert_eq!(
        resolve_user(&c, Some(PASSWD), Some(GROUP)).unwrap(),
        (65534, 65534, vec![65534])
    );
    c.security_context.run_as_username = Some("web:audio".into());
    let (uid, gid, _) = resolve_user(&c, Some(PASSWD), Some(GROUP)).unwrap();
    assert_eq!((uid, gid), (1000, 29));
    c.security_context.run_as_username = Some("1000:50".into());
    let (uid, gid, _) = resolve_user(&c, Some(PASSWD), Some(GROUP)).unwrap();
    assert_eq!((uid, gid), (1000, 50));
    c.security_context.run_as_username = Some("ghost".into());
    assert_eq!(
        resolve_user(&c, Some(PASSWD), Some(GROUP)).unwrap_err(),
        SpecError::UserNotFound("ghost".into())
    );
    assert_eq!(
        resolve_user(&c, None, None).unwrap_err(),
        SpecError::NoUsers
    );
}

#[test]
fn the_default_user_is_root_with_root_groups() {
    assert_eq!(
        resolve_user(&container(), Some(PASSWD), Some(GROUP)).unwrap(),
        (0, 0, vec![0, 10])
    );
}

#[test]
fn the_sandbox_runs_pause_in_its_own_namespaces_with_the_hostname() {
    let s = sandbox();
    let f = files();
    let host = HostInfo::default();
    let spec = sandbox_spec(&SandboxSpecInput {
        config: &s,
        rootfs: Path::new("/s/rootfs"),
        netns: Some(Path::new("/run/netns/x")),
        files: &f,
        cgroups_path: "/kubepods/pod1/sb".into(),
        host: &host,
    });
    assert_eq!(strings(&spec["process"]["args"]), ["/pause"]);
    assert_eq!(spec["process"]["user"]["uid"], PAUSE_USER);
    assert_eq!(spec["root"]["readonly"], true);
    assert_eq!(spec["hostname"], "web");
    let ns: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(ns, ["mount", "pid", "ipc", "uts", "network"]);
    assert_eq!(spec["linux"]["namespaces"][4]["path"], "/run/netns/x");
    assert!(spec["process"]["capabilities"]["bounding"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn a_host_network_sandbox_keeps_the_host_uts_and_network() {
    let mut s = sandbox();
    s.namespace_options.network = NamespaceMode::Node;
    let f = files();
    let host = HostInfo::default();
    let spec = sandbox_spec(&SandboxSpecInput {
        config: &s,
        rootfs: Path::new("/s/rootfs"),
        netns: None,
        files: &f,
        cgroups_path: "/k/sb".into(),
        host: &host,
    });
    assert!(spec.get("hostname").is_none());
    let ns = spec["linux"]["namespaces"].as_array().unwrap();
    assert!(!ns
        .iter()
        .any(|n| n["type"] == "network" || n["type"] == "uts"));
}

#[test]
fn resolv_conf_lists_search_nameservers_and_options() {
    let dns = DnsConfig {
        servers: vec!["10.43.0.10".into()],
        searches: vec![
            "default.svc.cluster.local".into(),
            "svc.cluster.local".into(),
        ],
        options: vec!["ndots:5".into()],
    };
    assert_eq!(
        resolv_conf(&dns),
        "search default.svc.cluster.local svc.cluster.local\nnameserver 10.43.0.10\noptions ndots:5\n"
    );
}

#[test]
fn hosts_file_names_the_pod_ip() {
    let hosts = hosts_file(Some("10.42.0.7".parse().unwrap()), "web-1");
    assert!(hosts.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
    assert!(hosts.ends_with("10.42.0.7\tweb-1\n"));
}
