//! Unreachable routes for the cluster and service CIDRs in the host's main
//! routing table: a packet for an address of those ranges that no pod or
//! service holds is refused at once (EHOSTUNREACH to a local sender, ICMP
//! host unreachable to a forwarded packet) instead of following the default
//! route off the machine. More specific routes still win: the node's own pod
//! CIDR on its bridge, routes to other nodes' pod CIDRs; service addresses
//! are rewritten (DNAT) before the routing decision.
//!
//! The routes are made with iproute2's `ip route` rather than a netlink
//! library: two commands at agent start and stop do not justify the netlink
//! crates' dependency tree, `ip` is on every node (./dev installs iproute2),
//! and what it did is easy to repeat and inspect by hand
//! (`ip route show type unreachable`).
//!
//! Adding is idempotent and never replaces a route of another type for the
//! same prefix (someone who routes the whole range elsewhere keeps it);
//! removing deletes only `unreachable` routes.
//!
//! Mind the service CIDR: a process on the host itself (hostNetwork pods,
//! `curl <ClusterIP>` on the node) looks its route up in connect(), before
//! the nat table's OUTPUT chain could rewrite a service address, so under an
//! `unreachable` route the host cannot reach ClusterIPs at all (EHOSTUNREACH;
//! pods are not affected: their packets are rewritten in PREROUTING, before
//! routing). A service proxy that serves the host must replace the service
//! CIDR's route with one that lets packets reach the nat table (a route to a
//! dummy device, plus a REJECT for addresses no service holds).

use std::process::Command;

pub use ipnet::IpNet;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("ip {args}: {message}")]
    Ip { args: String, message: String },
    #[error("execute ip: {0}")]
    Spawn(#[source] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Installs `unreachable <cidr>` in the main table for each CIDR (the
/// network address of each, whatever host bits it was written with).
pub fn ensure_unreachable(cidrs: &[IpNet]) -> Result<()> {
    for cidr in cidrs {
        let prefix = cidr.trunc().to_string();
        match ip(&["route", "add", "unreachable", &prefix]) {
            Ok(()) => tracing::info!(cidr = %prefix, "installed unreachable route"),
            // Ours from an earlier start, or a route someone else owns.
            Err(Error::Ip { message, .. }) if message.contains("File exists") => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Removes the `unreachable <cidr>` routes; missing ones are not an error.
pub fn remove_unreachable(cidrs: &[IpNet]) -> Result<()> {
    for cidr in cidrs {
        let prefix = cidr.trunc().to_string();
        match ip(&["route", "del", "unreachable", &prefix]) {
            Ok(()) => {}
            Err(Error::Ip { message, .. }) if message.contains("No such process") => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Whether the main table has `unreachable <cidr>`.
pub fn has_unreachable(cidr: &IpNet) -> Result<bool> {
    let prefix = cidr.trunc().to_string();
    let out = Command::new("ip")
        .args(["route", "show", "exact", &prefix, "type", "unreachable"])
        .output()
        .map_err(Error::Spawn)?;
    if !out.status.success() {
        return Err(Error::Ip {
            args: format!("route show exact {prefix} type unreachable"),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(!out.stdout.iter().all(u8::is_ascii_whitespace))
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(Error::Spawn)?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Ip {
        args: args.join(" "),
        message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}
