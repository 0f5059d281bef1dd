//! The krate binary is linked as a position-dependent executable (as Go
//! links containerd's shims and k3s): every shim is this binary, and in a
//! PIE the dynamic loader rewrites 2 MB of relocated read-only data in each
//! process, which then stays private to it. Without PIE those pages are the
//! file's, shared by every shim, and a process starts without the
//! relocation pass.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
