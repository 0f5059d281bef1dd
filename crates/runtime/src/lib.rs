//! Containers on Linux: pod sandboxes (a pause process holding the pod's
//! namespaces) and containers run by the OCI runtime `runc`, behind the
//! CRI-shaped [`cri::RuntimeService`] so that another runtime can be put
//! behind the same interface. All syscalls and `unsafe` live in this crate.

pub mod cri;

pub use cri::*;
