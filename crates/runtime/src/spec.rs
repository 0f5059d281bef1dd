//! The OCI runtime spec (`config.json`) of a pod sandbox and of a container,
//! as containerd's CRI plugin writes them: pure functions of the CRI configs,
//! the sandbox's namespaces and files, the image's /etc/passwd and /etc/group,
//! and what the host supports. No IO here; the driver reads and passes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::cri::{
    ContainerConfig, LinuxContainerResources, MountPropagation, NamespaceMode, PodSandboxConfig,
};

/// The capabilities a container gets unless it asks otherwise (containerd's
/// and Docker's default set).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability by number (linux/capability.h).
const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Paths containerd masks (bind-mounts /dev/null or an empty tmpfs over)
/// in unprivileged containers.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    "/proc/scsi",
];

pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The user the pause process runs as (upstream's pause image: 65535).
pub const PAUSE_USER: u32 = 65535;

/// What the host offers that changes the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostInfo {
    /// cgroup v2 only (unified): a cgroup namespace per container.
    pub cgroup_v2: bool,
    /// memory.memsw (v1) / memory.swap.max (v2) exists: swap is limited to
    /// the memory limit, as the kubelet asks when swap is not allowed.
    pub swap_accounting: bool,
    /// The capabilities the runtime itself holds (a bit per number, its
    /// bounding set up to /proc/sys/kernel/cap_last_cap): what "ALL" and
    /// privileged mean, as containerd takes the current process's.
    pub capabilities: u64,
    /// The host's device nodes, given to privileged containers.
    pub devices: Vec<HostDevice>,
    /// The lowest oom_score_adj a container may get: without
    /// CAP_SYS_RESOURCE a process cannot go below its own (containerd
    /// restricts the same way).
    pub min_oom_score_adj: i64,
}

impl Default for HostInfo {
    fn default() -> Self {
        HostInfo {
            cgroup_v2: false,
            swap_accounting: true,
            capabilities: (1 << ALL_CAPABILITIES.len()) - 1,
            devices: Vec::new(),
            min_oom_score_adj: -1000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostDevice {
    pub path: String,
    /// "c" or "b".
    pub kind: &'static str,
    pub major: u64,
    pub minor: u64,
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The files every container of a sandbox shares, kept in the sandbox's
/// state directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxFiles {
    pub hostname: PathBuf,
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
    /// The tmpfs mounted at each container's /dev/shm (the host's /dev/shm
    /// with hostIPC).
    pub shm: PathBuf,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("no users found")]
    NoUsers,
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UserNotFound(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    GroupNotFound(String),
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
}

pub struct SandboxSpecInput<'a> {
    pub config: &'a PodSandboxConfig,
    pub rootfs: &'a Path,
    /// The pinned network namespace (`None` with host networking).
    pub netns: Option<&'a Path>,
    pub files: &'a SandboxFiles,
    pub cgroups_path: String,
    pub host: &'a HostInfo,
}

/// The pause container: its own PID, IPC and UTS namespaces (unless the pod
/// uses the host's), the pod's network namespace, a read-only rootfs holding
/// only `/pause`, no capabilities.
pub fn sandbox_spec(input: &SandboxSpecInput) -> Value {
    let cfg = input.config;
    let ns = &cfg.namespace_options;
    let host_network = ns.network == NamespaceMode::Node;
    let mut namespaces = vec![json!({"type": "mount"})];
    if ns.pid != NamespaceMode::Node {
        namespaces.push(json!({"type": "pid"}));
    }
    if ns.ipc != NamespaceMode::Node {
        namespaces.push(json!({"type": "ipc"}));
    }
    if !host_network {
        namespaces.push(json!({"type": "uts"}));
        if let Some(netns) = input.netns {
            namespaces.push(json!({"type": "network", "path": netns}));
        } else {
            namespaces.push(json!({"type": "network"}));
        }
    }
    if input.host.cgroup_v2 {
        namespaces.push(json!({"type": "cgroup"}));
    }
    let mut mounts = default_mounts(false);
    mounts.push(json!({
        "destination": "/dev/shm",
        "type": "bind",
        "source": input.files.shm,
        "options": ["rbind", "ro", "nosuid", "nodev", "noexec"],
    }));
    let mut spec = json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": PAUSE_USER, "gid": PAUSE_USER},
            "args": ["/pause"],
            "env": [format!("PATH={DEFAULT_PATH}")],
            "cwd": "/",
            "capabilities": {"bounding": [], "effective": [], "permitted": []},
            "noNewPrivileges": true,
            "oomScoreAdj": (-998i64).max(input.host.min_oom_score_adj),
        },
        "root": {"path": input.rootfs, "readonly": true},
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": input.cgroups_path,
            "resources": {
                "devices": [{"allow": false, "access": "rwm"}],
                "cpu": {"shares": 2},
            },
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
            "sysctl": sysctls(cfg),
        },
        "annotations": {
            "io.kubernetes.cri.container-type": "sandbox",
            "io.kubernetes.cri.sandbox-name": cfg.metadata.name,
            "io.kubernetes.cri.sandbox-namespace": cfg.metadata.namespace,
            "io.kubernetes.cri.sandbox-uid": cfg.metadata.uid,
        },
    });
    if !host_network {
        spec["hostname"] = json!(cfg.hostname);
    }
    spec
}

/// Namespaced sysctls apply to the pod; network ones only with its own
/// network namespace, IPC ones (upstream's list) only with its own IPC
/// namespace: the host's are not the pod's to change.
fn sysctls(cfg: &PodSandboxConfig) -> Value {
    let host_network = cfg.namespace_options.network == NamespaceMode::Node;
    let host_ipc = cfg.namespace_options.ipc == NamespaceMode::Node;
    let ipc = |k: &str| {
        ["kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue."]
            .iter()
            .any(|p| k.starts_with(p))
    };
    let map: serde_json::Map<String, Value> = cfg
        .sysctls
        .iter()
        .filter(|(k, _)| !(host_network && k.starts_with("net.")))
        .filter(|(k, _)| !(host_ipc && ipc(k)))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    Value::Object(map)
}

pub struct ContainerSpecInput<'a> {
    pub config: &'a ContainerConfig,
    pub sandbox: &'a PodSandboxConfig,
    /// The overlay mount point of the container's root filesystem.
    pub rootfs: &'a Path,
    /// The pause process (host PID): containers join its namespaces through
    /// `/proc/<pid>/ns/*`.
    pub sandbox_pid: i32,
    /// The pinned network namespace (`None` with host networking).
    pub netns: Option<&'a Path>,
    pub files: &'a SandboxFiles,
    pub cgroups_path: String,
    /// The image's /etc/passwd and /etc/group, if it has them.
    pub passwd: Option<&'a str>,
    pub group: Option<&'a str>,
    pub host: &'a HostInfo,
    /// The host PID of the container whose PID namespace this one joins.
    pub pid_target: Option<i32>,
}

/// An app container of a sandbox.
pub fn container_spec(input: &ContainerSpecInput) -> Result<Value, SpecError> {
    let cfg = input.config;
    let sc = &cfg.security_context;
    let ns = &input.sandbox.namespace_options;
    let host_network = ns.network == NamespaceMode::Node;
    let pause_ns = |kind: &str| format!("/proc/{}/ns/{kind}", input.sandbox_pid);

    let (uid, gid, additional_gids) = resolve_user(cfg, input.passwd, input.group)?;

    // containerd's order: PATH, HOSTNAME and TERM first, then the config's
    // (the image's env merged with the container's); a later value of a name
    // replaces the earlier one in place, so the process sees one of each.
    let mut env: Vec<(String, String)> = vec![("PATH".into(), DEFAULT_PATH.into())];
    if !input.sandbox.hostname.is_empty() {
        env.push(("HOSTNAME".into(), input.sandbox.hostname.clone()));
    }
    if cfg.tty {
        env.push(("TERM".into(), "xterm".into()));
    }
    for (k, v) in &cfg.envs {
        match env.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
    let env: Vec<String> = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();

    let caps = if sc.privileged {
        all_capabilities(input.host.capabilities)
    } else {
        capabilities(sc.capabilities.as_ref(), input.host.capabilities)?
    };

    let mut namespaces = vec![json!({"type": "mount"})];
    match (input.pid_target, ns.pid) {
        (Some(pid), _) => {
            namespaces.push(json!({"type": "pid", "path": format!("/proc/{pid}/ns/pid")}))
        }
        (None, NamespaceMode::Node) => {}
        (None, NamespaceMode::Pod) => {
            namespaces.push(json!({"type": "pid", "path": pause_ns("pid")}))
        }
        (None, NamespaceMode::Container) => namespaces.push(json!({"type": "pid"})),
    }
    if ns.ipc != NamespaceMode::Node {
        namespaces.push(json!({"type": "ipc", "path": pause_ns("ipc")}));
    }
    if !host_network {
        namespaces.push(json!({"type": "uts", "path": pause_ns("uts")}));
        let netns = input
            .netns
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| pause_ns("net"));
        namespaces.push(json!({"type": "network", "path": netns}));
    }
    if input.host.cgroup_v2 {
        namespaces.push(json!({"type": "cgroup"}));
    }

    let mounts = container_mounts(cfg, input.files, sc.privileged);
    let rootfs_propagation = cfg
        .mounts
        .iter()
        .map(|m| m.propagation)
        .max_by_key(|p| match p {
            MountPropagation::Private => 0,
            MountPropagation::HostToContainer => 1,
            MountPropagation::Bidirectional => 2,
        })
        .and_then(|p| match p {
            MountPropagation::Private => None,
            MountPropagation::HostToContainer => Some("rslave"),
            MountPropagation::Bidirectional => Some("rshared"),
        });

    let mut process = json!({
        "terminal": cfg.tty,
        "user": {"uid": uid, "gid": gid, "additionalGids": additional_gids},
        "args": cfg.args,
        "env": env,
        "cwd": cfg.working_dir.as_deref().filter(|d| !d.is_empty()).unwrap_or("/"),
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": sc.no_new_privs && !sc.privileged,
    });
    if let Some(adj) = cfg.resources.oom_score_adj {
        process["oomScoreAdj"] = json!(adj.max(input.host.min_oom_score_adj));
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": input.cgroups_path,
        "resources": resources(&cfg.resources, input.host, sc.privileged),
        "sysctl": sysctls(input.sandbox),
    });
    if sc.privileged {
        linux["devices"] = json!(input
            .host
            .devices
            .iter()
            .map(|d| json!({
                "path": d.path, "type": d.kind, "major": d.major, "minor": d.minor,
                "fileMode": d.file_mode, "uid": d.uid, "gid": d.gid,
            }))
            .collect::<Vec<_>>());
    } else {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    if let Some(p) = rootfs_propagation {
        linux["rootfsPropagation"] = json!(p);
    }

    let mut annotations = serde_json::Map::new();
    for (k, v) in &cfg.annotations {
        annotations.insert(k.clone(), json!(v));
    }
    annotations.insert(
        "io.kubernetes.cri.container-type".into(),
        json!("container"),
    );
    annotations.insert(
        "io.kubernetes.cri.container-name".into(),
        json!(cfg.metadata.name),
    );
    annotations.insert(
        "io.kubernetes.cri.image-name".into(),
        json!(cfg.image.image),
    );
    annotations.insert(
        "io.kubernetes.cri.sandbox-name".into(),
        json!(input.sandbox.metadata.name),
    );
    annotations.insert(
        "io.kubernetes.cri.sandbox-namespace".into(),
        json!(input.sandbox.metadata.namespace),
    );
    annotations.insert(
        "io.kubernetes.cri.sandbox-uid".into(),
        json!(input.sandbox.metadata.uid),
    );

    Ok(json!({
        "ociVersion": "1.0.2-dev",
        "process": process,
        "root": {"path": input.rootfs, "readonly": sc.readonly_rootfs},
        "mounts": mounts,
        "linux": linux,
        "annotations": annotations,
    }))
}

/// The linux.resources of a container: CFS shares/quota/period, memory (swap
/// limited to the memory limit, so a container OOMs instead of swapping), pids,
/// and the device cgroup (deny all but runc's defaults, or allow all when
/// privileged).
pub fn resources(r: &LinuxContainerResources, host: &HostInfo, privileged: bool) -> Value {
    let mut out = json!({
        "devices": [{"allow": privileged, "access": "rwm"}],
    });
    let mut cpu = serde_json::Map::new();
    if let Some(shares) = r.cpu_shares.filter(|s| *s > 0) {
        cpu.insert("shares".into(), json!(shares));
    }
    if let Some(quota) = r.cpu_quota.filter(|q| *q != 0) {
        cpu.insert("quota".into(), json!(quota));
    }
    if let Some(period) = r.cpu_period.filter(|p| *p > 0) {
        cpu.insert("period".into(), json!(period));
    }
    if !cpu.is_empty() {
        out["cpu"] = Value::Object(cpu);
    }
    if let Some(limit) = r.memory_limit_in_bytes.filter(|l| *l > 0) {
        let mut memory = json!({"limit": limit});
        if host.swap_accounting {
            memory["swap"] = json!(limit);
        }
        out["memory"] = memory;
    }
    if let Some(pids) = r.pids_limit.filter(|p| *p != 0) {
        out["pids"] = json!({"limit": pids});
    }
    out
}

/// The mounts of a container: the defaults (as containerd's), then the
/// sandbox's hostname/hosts/resolv.conf and shm, then the CRI mounts; a CRI
/// mount replaces a default at the same destination. Sorted by depth so a
/// parent is mounted before what goes inside it.
fn container_mounts(cfg: &ContainerConfig, files: &SandboxFiles, privileged: bool) -> Vec<Value> {
    let user_dests: BTreeSet<&str> = cfg
        .mounts
        .iter()
        .map(|m| m.container_path.trim_end_matches('/'))
        .collect();
    let ro = cfg.security_context.readonly_rootfs;
    let mut mounts: Vec<Value> = default_mounts(privileged)
        .into_iter()
        .filter(|m| !user_dests.contains(m["destination"].as_str().unwrap_or_default()))
        .collect();
    let sandbox_files = [
        ("/etc/hostname", &files.hostname, ro),
        ("/etc/hosts", &files.hosts, ro),
        ("/etc/resolv.conf", &files.resolv_conf, ro),
        ("/dev/shm", &files.shm, false),
    ];
    for (dest, source, readonly) in sandbox_files {
        if user_dests.contains(dest) {
            continue;
        }
        let mut options = vec!["rbind", "rprivate", if readonly { "ro" } else { "rw" }];
        if dest == "/dev/shm" {
            options.extend(["nosuid", "nodev", "noexec"]);
        }
        mounts.push(json!({
            "destination": dest, "type": "bind", "source": source, "options": options,
        }));
    }
    let mut user: Vec<&crate::cri::Mount> = cfg.mounts.iter().collect();
    user.sort_by_key(|m| Path::new(&m.container_path).components().count());
    for m in user {
        let propagation = match m.propagation {
            MountPropagation::Private => "rprivate",
            MountPropagation::HostToContainer => "rslave",
            MountPropagation::Bidirectional => "rshared",
        };
        mounts.push(json!({
            "destination": m.container_path,
            "type": "bind",
            "source": m.host_path,
            "options": ["rbind", propagation, if m.readonly { "ro" } else { "rw" }],
        }));
    }
    mounts
}

fn default_mounts(privileged: bool) -> Vec<Value> {
    let sys_mode = if privileged { "rw" } else { "ro" };
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", sys_mode]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", sys_mode]}),
    ]
}

fn all_capabilities(held: u64) -> Vec<String> {
    ALL_CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(i, _)| held & (1 << i) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// The default set with the pod's add/drop applied as containerd does:
/// "ALL" in add means every capability, "ALL" in drop means none, and then
/// the individual adds and drops apply (so add ALL + drop CHOWN is all but
/// CHOWN, drop ALL + add NET_ADMIN is only NET_ADMIN).
pub fn capabilities(
    caps: Option<&crate::cri::Capability>,
    held: u64,
) -> Result<Vec<String>, SpecError> {
    let mut set: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect();
    let Some(caps) = caps else {
        return Ok(set);
    };
    let is_all = |c: &String| c.eq_ignore_ascii_case("ALL");
    let normalize = |c: &String| -> Result<String, SpecError> {
        let upper = c.to_ascii_uppercase();
        let name = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        if ALL_CAPABILITIES.contains(&name.as_str()) {
            Ok(name)
        } else {
            Err(SpecError::UnknownCapability(c.clone()))
        }
    };
    if caps.add.iter().any(is_all) {
        set = all_capabilities(held);
    }
    if caps.drop.iter().any(is_all) {
        set.clear();
    }
    for c in caps.add.iter().filter(|c| !is_all(c)) {
        let c = normalize(c)?;
        if !set.contains(&c) {
            set.push(c);
        }
    }
    for c in caps.drop.iter().filter(|c| !is_all(c)) {
        let c = normalize(c)?;
        set.retain(|s| *s != c);
    }
    Ok(set)
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || line.starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
        })
    })
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn group_entries(group: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    group.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 3 || line.starts_with('#') {
            return None;
        }
        Some(GroupEntry {
            name: f[0],
            gid: f[2].parse().ok()?,
            members: f
                .get(3)
                .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
                .unwrap_or_default(),
        })
    })
}

/// uid, gid and additional gids of the container's process, as containerd
/// resolves them: `run_as_user` (gid from the passwd entry if there is one,
/// else 0) or `run_as_username` (`name`, `uid`, `name:group`, `uid:gid`,
/// which must exist in /etc/passwd unless numeric), `run_as_group`
/// overriding the gid, then the groups /etc/group lists the user in, then
/// the pod's supplemental groups.
pub fn resolve_user(
    cfg: &ContainerConfig,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<(u32, u32, Vec<u32>), SpecError> {
    let sc = &cfg.security_context;
    let passwd = passwd.unwrap_or("");
    let group = group.unwrap_or("");
    let (uid, mut gid, username) = if let Some(uid) = sc.run_as_user {
        let entry = passwd_entries(passwd).find(|e| e.uid == uid);
        (
            uid,
            entry.as_ref().map_or(0, |e| e.gid),
            entry.map(|e| e.name.to_string()),
        )
    } else if let Some(spec) = sc.run_as_username.as_deref().filter(|s| !s.is_empty()) {
        let (user, grp) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let (uid, gid, name) = if let Ok(uid) = user.parse::<u32>() {
            let entry = passwd_entries(passwd).find(|e| e.uid == uid);
            (
                uid,
                entry.as_ref().map_or(0, |e| e.gid),
                entry.map(|e| e.name.to_string()),
            )
        } else {
            if passwd.is_empty() {
                return Err(SpecError::NoUsers);
            }
            let entry = passwd_entries(passwd)
                .find(|e| e.name == user)
                .ok_or_else(|| SpecError::UserNotFound(user.to_string()))?;
            (entry.uid, entry.gid, Some(entry.name.to_string()))
        };
        let gid = match grp {
            None => gid,
            Some(g) => match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => group_entries(group)
                    .find(|e| e.name == g)
                    .map(|e| e.gid)
                    .ok_or_else(|| SpecError::GroupNotFound(g.to_string()))?,
            },
        };
        (uid, gid, name)
    } else {
        let entry = passwd_entries(passwd).find(|e| e.uid == 0);
        (
            0,
            entry.as_ref().map_or(0, |e| e.gid),
            Some(entry.map_or("root", |e| e.name).to_string()),
        )
    };
    if let Some(g) = sc.run_as_group {
        gid = g;
    }
    let mut gids = vec![gid];
    if let Some(name) = username {
        for g in group_entries(group) {
            if g.name != name && g.members.contains(&name.as_str()) && !gids.contains(&g.gid) {
                gids.push(g.gid);
            }
        }
    }
    for g in &sc.supplemental_groups {
        if !gids.contains(g) {
            gids.push(*g);
        }
    }
    Ok((uid, gid, gids))
}

/// /etc/resolv.conf of a pod from its DNS config (search, nameservers,
/// options), as containerd writes it.
pub fn resolv_conf(dns: &crate::cri::DnsConfig) -> String {
    let mut out = String::new();
    if !dns.searches.is_empty() {
        out.push_str(&format!("search {}\n", dns.searches.join(" ")));
    }
    for s in &dns.servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !dns.options.is_empty() {
        out.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    out
}

/// The kubelet-managed /etc/hosts of a pod.
pub fn hosts_file(ip: Option<std::net::IpAddr>, hostname: &str) -> String {
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    if let Some(ip) = ip {
        out.push_str(&format!("{ip}\t{hostname}\n"));
    }
    out
}

#[cfg(test)]
mod tests;
