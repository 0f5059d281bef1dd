//! The pod network: a network namespace per pod, set up by CNI plugins
//! (the specification's conventions: configs in /etc/cni/net.d, plugins in
//! /opt/cni/bin or /usr/lib/cni) with a working bridge default, and the
//! unreachable routes that keep cluster traffic on the machine.
