//! Every syscall the runtime makes that the standard library does not wrap:
//! mounts, namespaces, process reaping, signals, file descriptor passing and
//! terminal sizes. The only module of the workspace allowed `unsafe`; each
//! function here is a thin, safe wrapper that checks the return value. The
//! ones the lifecycle verbs use go through the [`Syscall`] trait.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
}

/// Starts a new session so that the process outlives its parent's terminal
/// and process group.
pub fn setsid() -> io::Result<()> {
    check(unsafe { libc::setsid() }).map(drop)
}

/// Orphaned descendants (the container's init once `runc run --detach` exits) are
/// re-parented to this process, which can then wait for them.
pub fn set_child_subreaper() -> io::Result<()> {
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(drop)
}

/// How a reaped child ended, as a shell reports it: the exit code, or
/// 128 + the signal that killed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reaped {
    pub pid: i32,
    pub code: i32,
}

/// Waits for any child; `None` when there are no children left.
pub fn wait_any() -> io::Result<Option<Reaped>> {
    loop {
        let mut status = 0;
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid < 0 {
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => return Ok(None),
                _ => return Err(err),
            }
        }
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else if libc::WIFSIGNALED(status) {
            128 + libc::WTERMSIG(status)
        } else {
            continue;
        };
        return Ok(Some(Reaped { pid, code }));
    }
}

/// Sends `signal` to `pid`; `Ok(false)` when there is no such process.
pub fn kill(pid: i32, signal: i32) -> io::Result<bool> {
    if pid <= 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad pid"));
    }
    if unsafe { libc::kill(pid, signal) } < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ESRCH) {
            return Ok(false);
        }
        return Err(err);
    }
    Ok(true)
}

pub fn mount(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let source = CString::new(source).map_err(|_| io::ErrorKind::InvalidInput)?;
    let fstype = CString::new(fstype).map_err(|_| io::ErrorKind::InvalidInput)?;
    let target = cstr(target)?;
    let data = data
        .map(|d| CString::new(d).map_err(|_| io::ErrorKind::InvalidInput))
        .transpose()?;
    check(unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ref()
                .map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        )
    })
    .map(drop)
}

/// Detaches the mount at `target`; `Ok(false)` when nothing is mounted there.
pub fn unmount(target: &Path) -> io::Result<bool> {
    let target = cstr(target)?;
    if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EINVAL) | Some(libc::ENOENT) => Ok(false),
            _ => Err(err),
        };
    }
    Ok(true)
}

/// Brings the loopback interface of the calling thread's network namespace up.
pub fn loopback_up() -> io::Result<()> {
    let sock = check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) })?;
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) })?;
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) }).map(drop)
}

/// Receives one file descriptor sent with SCM_RIGHTS (runc's
/// `--console-socket` sends the pty master this way).
pub fn recv_fd(stream: &UnixStream) -> io::Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut control = vec![0u8; space];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    if cmsg.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no file descriptor received",
        ));
    }
    unsafe {
        if (*cmsg).cmsg_level != libc::SOL_SOCKET || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected control message",
            ));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const RawFd);
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Sets a terminal's size (TIOCSWINSZ on the pty master).
pub fn set_winsize(fd: RawFd, width: u16, height: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    check(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) }).map(drop)
}

/// Points `target` (0, 1 or 2) at `fd`.
pub fn dup_onto(fd: RawFd, target: RawFd) -> io::Result<()> {
    check(unsafe { libc::dup2(fd, target) }).map(drop)
}

/// The signal number of a name as `kill -l` and image configs spell it
/// (`SIGTERM`, `TERM`, `15`).
pub fn signal_number(name: &str) -> Option<i32> {
    let name = name.trim();
    if let Ok(n) = name.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    Some(match bare {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        "WINCH" => libc::SIGWINCH,
        "PWR" => libc::SIGPWR,
        "ABRT" => libc::SIGABRT,
        "ALRM" => libc::SIGALRM,
        _ => return None,
    })
}

/// The syscalls the runtime's lifecycle verbs make, behind one trait so that
/// their logic can be tested without root: [`Linux`] makes them,
/// [`Recording`] writes them down (and succeeds).
pub trait Syscall: Send + Sync + 'static {
    fn mount(
        &self,
        source: &str,
        target: &Path,
        fstype: &str,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> io::Result<()>;
    /// `Ok(false)` when nothing is mounted at `target`.
    fn unmount(&self, target: &Path) -> io::Result<bool>;
    /// `Ok(false)` when there is no such process.
    fn kill(&self, pid: i32, signal: i32) -> io::Result<bool>;
}

/// The real syscalls.
#[derive(Clone, Copy, Debug, Default)]
pub struct Linux;

impl Syscall for Linux {
    fn mount(
        &self,
        source: &str,
        target: &Path,
        fstype: &str,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> io::Result<()> {
        mount(source, target, fstype, flags, data)
    }
    fn unmount(&self, target: &Path) -> io::Result<bool> {
        unmount(target)
    }
    fn kill(&self, pid: i32, signal: i32) -> io::Result<bool> {
        kill(pid, signal)
    }
}

/// One call [`Recording`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Mount {
        source: String,
        target: std::path::PathBuf,
        fstype: String,
        data: Option<String>,
    },
    Unmount(std::path::PathBuf),
    Kill {
        pid: i32,
        signal: i32,
    },
}

/// Records calls instead of making them.
#[derive(Debug, Default)]
pub struct Recording {
    calls: std::sync::Mutex<Vec<Call>>,
}

impl Recording {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
    fn record(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }
}

impl Syscall for Recording {
    fn mount(
        &self,
        source: &str,
        target: &Path,
        fstype: &str,
        _flags: libc::c_ulong,
        data: Option<&str>,
    ) -> io::Result<()> {
        self.record(Call::Mount {
            source: source.into(),
            target: target.into(),
            fstype: fstype.into(),
            data: data.map(Into::into),
        });
        Ok(())
    }
    fn unmount(&self, target: &Path) -> io::Result<bool> {
        self.record(Call::Unmount(target.into()));
        Ok(true)
    }
    fn kill(&self, pid: i32, signal: i32) -> io::Result<bool> {
        self.record(Call::Kill { pid, signal });
        Ok(true)
    }
}

/// Advice about a range of this process's memory that leaves its contents
/// as they are (for `krate server`'s resident memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryAdvice {
    /// MADV_NOHUGEPAGE: no transparent huge pages for the range.
    NoHugePage,
    /// MADV_PAGEOUT: reclaim the range's pages now; clean file pages fault
    /// back in from the file on their next use.
    PageOut,
}

/// madvise(2) with advice that keeps the memory's contents.
pub fn advise_memory(start: usize, len: usize, advice: MemoryAdvice) -> io::Result<()> {
    let advice = match advice {
        MemoryAdvice::NoHugePage => libc::MADV_NOHUGEPAGE,
        MemoryAdvice::PageOut => libc::MADV_PAGEOUT,
    };
    check(unsafe { libc::madvise(start as *mut libc::c_void, len, advice) }).map(drop)
}

/// `mi_option_purge_delay` in mimalloc.h (v3's `mi_option_e`, which the
/// `mimalloc` crate builds by default); a unit test checks its default.
const MI_OPTION_PURGE_DELAY: libc::c_int = 15;

/// How long mimalloc keeps a freed page before it gives it back to the
/// kernel, in milliseconds (0: at once). Before any other thread starts:
/// mimalloc's options are not synchronised.
pub fn set_allocator_purge_delay(ms: i64) {
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms as libc::c_long) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_delay_option_is_mimallocs_purge_delay() {
        // 1,000 ms is mimalloc v3's default purge delay; an option with
        // another meaning behind this number has another default.
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) },
            1000
        );
    }

    #[test]
    fn memory_advice_keeps_the_contents() {
        let data: Vec<u8> = (0..64 * 4096).map(|i| (i % 251) as u8).collect();
        let start = data.as_ptr() as usize / 4096 * 4096 + 4096;
        advise_memory(start, 32 * 4096, MemoryAdvice::NoHugePage).unwrap();
        advise_memory(start, 32 * 4096, MemoryAdvice::PageOut).unwrap();
        assert!(data.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
        assert!(advise_memory(0, 4096, MemoryAdvice::PageOut).is_err());
    }

    #[test]
    fn signal_names_parse_as_kill_spells_them() {
        assert_eq!(signal_number("SIGTERM"), Some(15));
        assert_eq!(signal_number("term"), Some(15));
        assert_eq!(signal_number("9"), Some(9));
        assert_eq!(signal_number("SIGQUIT"), Some(3));
        assert_eq!(signal_number("NOPE"), None);
        assert_eq!(signal_number("0"), None);
    }
}
