//! The pod network: a network namespace per pod, set up by CNI plugins
//! (the specification's conventions: configs in /etc/cni/net.d, plugins in
//! /opt/cni/bin or /usr/lib/cni) with a working bridge default, and the
//! unreachable routes that keep cluster traffic on the machine.
//!
//! A sandbox's life, as the runtime drives it:
//! [`netns::create`] its namespace, [`Cni::add`] (loopback, then the
//! configured network; returns the pod's addresses), and on removal
//! [`Cni::del`] *before* [`netns::remove`] (some plugins find what to clean
//! only through the namespace). The agent writes the default config with
//! [`Cni::ensure_default_config`] once it knows the node's pod CIDR,
//! reports [`Cni::status`] as the node's network readiness, and installs
//! [`routes::ensure_unreachable`] for the cluster CIDR.

pub mod cni;
pub mod default_network;
pub mod netns;
pub mod routes;

pub use cni::{Cni, CniConfig, PodRef, PortMapping};
pub use default_network::{default_config, DefaultNetwork};
pub use ipnet::IpNet;
