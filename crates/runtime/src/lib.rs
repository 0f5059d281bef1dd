//! Containers on Linux: pod sandboxes (a pause process holding the pod's
//! namespaces) and containers run by the OCI runtime `runc`, behind the
//! CRI-shaped [`cri::RuntimeService`] so that another runtime can be put
//! behind the same interface. All syscalls and `unsafe` live in this crate
//! (in `sys`).

pub mod bare;
pub mod cgroups;
pub mod cri;
pub mod cri_log;
pub mod disk_usage;
pub mod shim;
pub mod spec;
pub mod state;

mod attach;
mod container_create;
mod container_start;
mod container_status;
mod container_stop;
mod exec;
mod port_forward;
mod runc;
mod sandbox_run;
mod sandbox_status;
mod sandbox_stop;
mod stream;
pub mod sys;

pub use cri::*;
pub use runc::{Runc, RuncConfig, STOP_SIGNAL_ANNOTATION};
