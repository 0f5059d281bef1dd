//! The pod network: a network namespace per pod, set up by CNI plugins
//! (the specification's conventions: configs in /etc/cni/net.d, plugins in
//! /opt/cni/bin or /usr/lib/cni) with a working bridge default, and the
//! unreachable routes that keep cluster traffic on the machine.

pub mod cni;
pub mod default_network;
pub mod netns;
pub mod routes;

pub use cni::{Cni, CniConfig, PodRef, PortMapping};
pub use default_network::{default_config, DefaultNetwork};
pub use ipnet::IpNet;
