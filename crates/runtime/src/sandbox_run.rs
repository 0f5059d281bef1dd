//! RunPodSandbox: the sandbox's files (hostname, hosts, resolv.conf), its
//! /dev/shm tmpfs, its network namespace (pinned, set up through CNI), and
//! the pause process run by runc under a shim, holding the pod's IPC, UTS and
//! PID namespaces; the network and the pause start at the same time. Anything
//! half made is undone on failure.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chrono::Utc;

use crate::cri::*;
use crate::runc::{io_err, Runc};
use crate::spec::{self, SandboxFiles, SandboxSpecInput};
use crate::state::{self, SandboxRecord, ShimConfig};
use crate::sys;

/// The pause binary, built from pause/pause.c by build.rs.
pub(crate) const PAUSE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pause"));

pub(crate) fn sandbox_files(dir: &Path, shm: Option<&Path>) -> SandboxFiles {
    SandboxFiles {
        hostname: dir.join("hostname"),
        hosts: dir.join("hosts"),
        resolv_conf: dir.join("resolv.conf"),
        shm: shm.map_or_else(|| PathBuf::from("/dev/shm"), Path::to_path_buf),
    }
}

pub(crate) fn netns_name(id: &str) -> String {
    format!("krate-{}", &id[..id.len().min(16)])
}

pub(crate) fn pod_ref(cfg: &PodSandboxConfig) -> net::cni::PodRef {
    net::cni::PodRef {
        namespace: cfg.metadata.namespace.clone(),
        name: cfg.metadata.name.clone(),
        uid: cfg.metadata.uid.clone(),
    }
}

impl Runc {
    pub(crate) async fn run_sandbox(&self, config: &PodSandboxConfig) -> Result<String> {
        if !self.cfg.runtime_handlers.contains(&config.runtime_handler) {
            return Err(Error::NoRuntimeHandler(config.runtime_handler.clone()));
        }
        let id = state::new_id();
        let dir = self.sandbox_dir(&id);
        let mut rec = SandboxRecord {
            id: id.clone(),
            config: config.clone(),
            created_at: Utc::now(),
            netns: None,
            ips: Vec::new(),
            cgroup_parent: crate::cgroups::join(&[
                &self.cfg.cgroup_root,
                config.cgroup_parent.as_deref().unwrap_or(""),
            ]),
            shm: None,
            stopped: false,
        };
        match self.set_up_sandbox(&dir, &mut rec).await {
            Ok(()) => Ok(id),
            Err(err) => {
                tracing::warn!(sandbox = %id, error = %err, "running the pod sandbox failed; undoing");
                // The pause process may run (its network failed beside it):
                // remove the sandbox as a whole, as far as it was made.
                if self.remove_sandbox(&id).await.is_err() {
                    self.tear_down_sandbox(&rec).await;
                    let _ = std::fs::remove_dir_all(&dir);
                }
                Err(err)
            }
        }
    }

    async fn set_up_sandbox(&self, dir: &Path, rec: &mut SandboxRecord) -> Result<()> {
        let cfg = rec.config.clone();
        let ns = &cfg.namespace_options;
        let rootfs = dir.join("bundle/rootfs");
        std::fs::create_dir_all(&rootfs)
            .map_err(io_err(format!("creating {}", rootfs.display())))?;
        self.save_sandbox(rec)?;

        if let (Some(resources), Some(_)) = (&cfg.resources, &cfg.cgroup_parent) {
            crate::cgroups::set_pod_resources(&rec.cgroup_parent, resources).map_err(|e| {
                Error::Runtime {
                    op: "setting the pod cgroup's resources".into(),
                    message: e.to_string(),
                }
            })?;
        }

        if ns.ipc != NamespaceMode::Node {
            let shm = dir.join("shm");
            std::fs::create_dir_all(&shm).map_err(io_err(format!("creating {}", shm.display())))?;
            self.sys
                .mount(
                    "shm",
                    &shm,
                    "tmpfs",
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    Some("mode=1777,size=65536k"),
                )
                .map_err(io_err(format!(
                    "mounting the sandbox shm at {}",
                    shm.display()
                )))?;
            rec.shm = Some(shm);
            self.save_sandbox(rec)?;
        }

        if ns.network != NamespaceMode::Node {
            let run_dir = self.cfg.run_dir.clone();
            let name = netns_name(&rec.id);
            let netns = tokio::task::spawn_blocking(move || net::netns::create(&run_dir, &name))
                .await
                .map_err(|e| Error::Network(e.to_string()))?
                .map_err(|e| Error::Network(e.to_string()))?;
            rec.netns = Some(netns);
            self.save_sandbox(rec)?;
        }

        // The network and the pause process are independent of each other
        // (the pause joins the namespace by its path): both at once.
        let (ips, pause) = tokio::join!(self.set_up_network(rec), self.start_pause(dir, rec));
        rec.ips = ips?;
        pause?;
        self.save_sandbox(rec)?;
        // Only the app containers mount the hosts file, which names the
        // pod's IP.
        let hosts = sandbox_files(dir, rec.shm.as_deref()).hosts;
        std::fs::write(
            &hosts,
            spec::hosts_file(rec.ips.first().copied(), &cfg.hostname),
        )
        .map_err(io_err(format!("writing {}", hosts.display())))?;
        Ok(())
    }

    /// Attaches the sandbox's namespace to the pod network through CNI (or,
    /// without CNI, brings its loopback up); the pod's addresses.
    async fn set_up_network(&self, rec: &SandboxRecord) -> Result<Vec<std::net::IpAddr>> {
        let Some(netns) = rec.netns.clone() else {
            return Ok(Vec::new());
        };
        let cfg = &rec.config;
        let Some(cni) = &self.cfg.cni else {
            tokio::task::spawn_blocking(move || net::netns::run_in(&netns, sys::loopback_up))
                .await
                .map_err(|e| Error::Network(e.to_string()))?
                .map_err(|e| Error::Network(e.to_string()))?
                .map_err(|e| Error::Network(format!("bringing up lo: {e}")))?;
            return Ok(Vec::new());
        };
        let mappings: Vec<net::cni::PortMapping> = cfg
            .port_mappings
            .iter()
            .map(|m| net::cni::PortMapping {
                protocol: match m.protocol {
                    Protocol::Tcp => "tcp",
                    Protocol::Udp => "udp",
                    Protocol::Sctp => "sctp",
                }
                .into(),
                container_port: m.container_port,
                host_port: m.host_port,
                host_ip: m.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            })
            .collect();
        cni.add(&rec.id, &netns, &pod_ref(cfg), &mappings)
            .await
            .map_err(|e| {
                Error::Network(format!(
                    "failed to setup network for sandbox {:?}: {e}",
                    rec.id
                ))
            })
    }

    /// Writes the sandbox's files and bundle and starts the pause process
    /// under its shim.
    async fn start_pause(&self, dir: &Path, rec: &SandboxRecord) -> Result<()> {
        let cfg = &rec.config;
        let rootfs = dir.join("bundle/rootfs");
        let files = sandbox_files(dir, rec.shm.as_deref());
        let write = |path: &Path, text: &str| {
            std::fs::write(path, text).map_err(io_err(format!("writing {}", path.display())))
        };
        write(&files.hostname, &format!("{}\n", cfg.hostname))?;
        write(&files.hosts, &spec::hosts_file(None, &cfg.hostname))?;
        let resolv = match &cfg.dns_config {
            Some(dns) => spec::resolv_conf(dns),
            None => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        };
        write(&files.resolv_conf, &resolv)?;

        let pause = rootfs.join("pause");
        std::fs::write(&pause, PAUSE).map_err(io_err(format!("writing {}", pause.display())))?;
        std::fs::set_permissions(&pause, std::fs::Permissions::from_mode(0o755))
            .map_err(io_err(format!("chmod {}", pause.display())))?;
        let spec = spec::sandbox_spec(&SandboxSpecInput {
            config: cfg,
            rootfs: &rootfs,
            netns: rec.netns.as_deref(),
            files: &files,
            cgroups_path: crate::cgroups::join(&[&rec.cgroup_parent, &rec.id]),
            host: &self.host,
        });
        let config_json = dir.join("bundle/config.json");
        state::write_json(&config_json, &spec)
            .map_err(io_err(format!("writing {}", config_json.display())))?;

        let shim = ShimConfig {
            id: rec.id.clone(),
            runc: self.cfg.runc.clone(),
            runc_root: self.runc_root(),
            bundle: dir.join("bundle"),
            log_path: None,
            stdin: false,
            stdin_once: false,
            tty: false,
            oom_file: None,
            attach_socket: self.socket_path(&rec.id, ""),
        };
        let shim_json = dir.join(state::SHIM_CONFIG);
        state::write_json(&shim_json, &shim)
            .map_err(io_err(format!("writing {}", shim_json.display())))?;
        self.launch_shim(dir)
            .await
            .map_err(|message| Error::Runtime {
                op: "starting the pause process".into(),
                message,
            })?;
        Ok(())
    }

    /// Undoes the network, namespace and shm of a sandbox; each step is
    /// skipped when already done, so it can run again after a failure.
    pub(crate) async fn tear_down_sandbox(&self, rec: &SandboxRecord) {
        if let Some(netns) = &rec.netns {
            if let Some(cni) = &self.cfg.cni {
                if let Err(e) = cni.del(&rec.id, Some(netns), &pod_ref(&rec.config)).await {
                    tracing::warn!(sandbox = %rec.id, error = %e, "CNI DEL");
                }
            }
            let path = netns.clone();
            match tokio::task::spawn_blocking(move || net::netns::remove(&path)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(sandbox = %rec.id, error = %e, "removing the netns"),
                Err(e) => tracing::warn!(sandbox = %rec.id, error = %e, "removing the netns"),
            }
        }
        if let Some(shm) = &rec.shm {
            let _ = self.sys.unmount(shm);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::cri::*;
    use crate::runc::{Runc, RuncConfig};
    use crate::sys::Recording;

    #[tokio::test]
    async fn a_sandbox_for_an_unconfigured_handler_is_refused_in_containerd_words() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = RuncConfig::new(tmp.path().join("runtime"));
        cfg.runc = "/nonexistent/runc".into();
        cfg.run_dir = tmp.path().join("run");
        let sys = Arc::new(Recording::default());
        let runc = Runc::with_syscall(cfg, sys.clone()).unwrap();
        let config = PodSandboxConfig {
            runtime_handler: "kata".into(),
            ..Default::default()
        };
        let err = runc.run_pod_sandbox(&config).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"failed to get sandbox runtime: no runtime for "kata" is configured"#
        );
        assert!(runc.list_pod_sandbox().await.unwrap().is_empty());
        assert!(sys.calls().is_empty());
    }
}
