//! What every backend must pass: the conformance suite, the crash harness,
//! and a helper that runs a real etcd on loopback for tests and benchmarks.

pub mod conformance;
pub mod crash;
pub mod disk_full;
pub mod etcd_server;
