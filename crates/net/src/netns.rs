//! Named network namespaces, kept alive by a bind mount of the namespace file
//! at `<run dir>/netns/<name>` (as `ip netns add` does under /run/netns), and
//! a helper that runs code inside one.
//!
//! A namespace is made by a dedicated thread that unshares its network
//! namespace, bind-mounts `/proc/thread-self/ns/net` onto the file and exits:
//! the mount holds the namespace, the process itself never leaves the host's.
//! `nix` wraps unshare, setns and mount without `unsafe` in this crate.
//!
//! Like iproute2, the `netns` directory is made a shared mount point (bound on
//! itself first if it is not a mount point yet), so that a namespace created
//! or removed here is mounted or unmounted in every mount namespace that was
//! copied from this one (containers started in between do not pin a removed
//! namespace).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::{statfs, NSFS_MAGIC};

/// The run directory a node agent uses unless told otherwise.
pub const DEFAULT_RUN_DIR: &str = "/run/krate";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid network namespace name {0:?}: it must be a plain file name")]
    InvalidName(String),
    #[error("{op} {path}: {source}")]
    Sys {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn sys(op: &'static str, path: &Path) -> impl FnOnce(Errno) -> Error {
    let path = path.to_owned();
    move |source| Error::Sys { op, path, source }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::Io { op, path, source }
}

/// The directory that holds the namespace files: `<run dir>/netns`.
pub fn dir(run_dir: &Path) -> PathBuf {
    run_dir.join("netns")
}

/// Where the namespace `name` is (or would be) mounted.
pub fn path(run_dir: &Path, name: &str) -> PathBuf {
    dir(run_dir).join(name)
}

/// Whether `path` is a mounted network namespace file.
pub fn exists(path: &Path) -> bool {
    statfs(path).is_ok_and(|s| s.filesystem_type() == NSFS_MAGIC)
}

/// Creates the network namespace `name` under `run_dir` and returns its path.
/// An existing namespace of that name is kept and its path returned.
/// The new namespace has only a loopback device, down (the CNI loopback
/// plugin brings it up).
pub fn create(run_dir: &Path, name: &str) -> Result<PathBuf> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Error::InvalidName(name.to_owned()));
    }
    let dir = dir(run_dir);
    fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
    make_shared(&dir)?;

    let path = dir.join(name);
    if exists(&path) {
        return Ok(path);
    }
    // The mount point: an empty file (left over if a previous attempt died).
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o444)
        .open(&path)
        .map_err(io_err("create", &path))?;

    let mounted = std::thread::scope(|s| {
        s.spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET)
                .map_err(sys("unshare network namespace for", &path))?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(sys("bind-mount network namespace on", &path))
            // The thread exits here, in the new namespace; the mount keeps it.
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    if let Err(err) = mounted {
        let _ = fs::remove_file(&path);
        return Err(err);
    }
    Ok(path)
}

/// Makes `dir` a shared mount point, binding it on itself first when it is
/// not a mount point (what `ip netns add` does for /run/netns).
fn make_shared(dir: &Path) -> Result<()> {
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    match mount(None::<&str>, dir, None::<&str>, shared, None::<&str>) {
        Ok(()) => return Ok(()),
        Err(Errno::EINVAL) => {}
        Err(err) => return Err(sys("make shared mount", dir)(err)),
    }
    mount(
        Some(dir),
        dir,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys("bind-mount on itself", dir))?;
    mount(None::<&str>, dir, None::<&str>, shared, None::<&str>)
        .map_err(sys("make shared mount", dir))
}

/// Removes a namespace created by [`create`]: unmounts and unlinks its file.
/// A path that is not mounted or does not exist is not an error, so removing
/// twice is fine. The namespace itself goes away with its last user.
pub fn remove(path: &Path) -> Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(err) => return Err(sys("unmount", path)(err)),
    }
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(io_err("remove", path)(err)),
        _ => Ok(()),
    }
}

/// Removes every namespace under `run_dir` and then the `netns` directory's
/// own bind mount and the directory (uninstall, and tests that use a
/// directory of their own).
pub fn remove_all(run_dir: &Path) -> Result<()> {
    let dir = dir(run_dir);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(io_err("read directory", &dir)(err)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("read directory", &dir))?;
        remove(&entry.path())?;
    }
    match umount2(&dir, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(err) => return Err(sys("unmount", &dir)(err)),
    }
    match fs::remove_dir(&dir) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &dir)(err)),
        _ => Ok(()),
    }
}

/// Runs `f` on a thread of its own that has entered the network namespace at
/// `path` (any namespace file: one made by [`create`], or `/proc/<pid>/ns/net`),
/// and returns its value. Sockets made inside `f` stay in that namespace after
/// it returns (a `std::net::TcpStream` connected there can be handed to tokio
/// with `from_std`), and processes spawned inside `f` start in it. The calling
/// thread never changes namespace. It blocks: call it from `spawn_blocking`
/// in async code. A panic in `f` is resumed on the caller.
pub fn run_in<F, T>(path: &Path, f: F) -> Result<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let file = File::open(path).map_err(io_err("open network namespace", path))?;
    std::thread::scope(|s| {
        s.spawn(move || {
            setns(&file, CloneFlags::CLONE_NEWNET).map_err(sys("enter network namespace", path))?;
            drop(file);
            Ok(f())
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Opens a TCP connection from inside the network namespace at `path` (a
/// pod's `localhost:port` for port-forward). Only the socket is made on a
/// thread in the namespace, which fixes the socket's namespace for good; the
/// connect itself is asynchronous.
pub async fn connect_tcp(path: &Path, addr: SocketAddr) -> io::Result<tokio::net::TcpStream> {
    let socket = run_in(path, || {
        if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
    })
    .map_err(io::Error::other)??;
    socket.connect(addr).await
}
