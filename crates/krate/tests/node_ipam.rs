//! The node IPAM controller (range allocator): nodes without a pod CIDR get
//! the next free /24 of `--cluster-cidr`, a node's own CIDR is kept and
//! counted, a deleted node's CIDR is handed out again, and a full range
//! records `CIDRNotAvailable`. API only (no agent).

mod support;

use std::time::Duration;

use support::{eventually_blocking, Cluster};

fn node(name: &str, cidr: Option<&str>) -> String {
    let spec = match cidr {
        Some(c) => format!("spec:\n  podCIDR: {c}\n  podCIDRs: [{c}]\n"),
        None => String::new(),
    };
    format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n{spec}")
}

fn pod_cidr(c: &Cluster, name: &str) -> String {
    eventually_blocking(
        Duration::from_secs(30),
        &format!("{name}'s pod CIDR"),
        || {
            let out = c.ok(&[
                "get",
                "node",
                name,
                "-o",
                "jsonpath={.spec.podCIDR} {.spec.podCIDRs[*]}",
            ]);
            let mut parts = out.split_whitespace();
            match (parts.next(), parts.next()) {
                (Some(a), Some(b)) if a == b => Ok(a.to_string()),
                _ => Err(out),
            }
        },
    )
}

#[test]
fn nodes_get_the_next_free_slash_24_and_a_deleted_nodes_cidr_is_reused() {
    let c = Cluster::start_with(&["--cluster-cidr", "10.42.0.0/22"]);
    // A node that brings its own CIDR keeps it, and it is not handed out.
    c.ok_stdin(&["apply", "-f", "-"], &node("own", Some("10.42.0.0/24")));
    assert_eq!(pod_cidr(&c, "own"), "10.42.0.0/24");
    c.ok_stdin(&["apply", "-f", "-"], &node("a", None));
    assert_eq!(pod_cidr(&c, "a"), "10.42.1.0/24");
    c.ok_stdin(&["apply", "-f", "-"], &node("b", None));
    assert_eq!(pod_cidr(&c, "b"), "10.42.2.0/24");
    c.ok(&["delete", "node", "a"]);
    // The released block goes to the next node (once the deletion is seen).
    eventually_blocking(Duration::from_secs(30), "a's CIDR free again", || {
        c.ok_stdin(&["apply", "-f", "-"], &node("probe", None));
        let got = pod_cidr(&c, "probe");
        c.ok(&["delete", "node", "probe"]);
        if got == "10.42.1.0/24" {
            Ok(())
        } else {
            Err(got)
        }
    });
}

#[test]
fn a_full_cluster_cidr_records_cidr_not_available() {
    let c = Cluster::start_with(&["--cluster-cidr", "10.42.0.0/24"]);
    c.ok_stdin(&["apply", "-f", "-"], &node("first", None));
    assert_eq!(pod_cidr(&c, "first"), "10.42.0.0/24");
    c.ok_stdin(&["apply", "-f", "-"], &node("second", None));
    eventually_blocking(Duration::from_secs(30), "CIDRNotAvailable", || {
        let out = c.ok(&[
            "get",
            "events",
            "-A",
            "--field-selector",
            "involvedObject.name=second",
        ]);
        if out.contains("CIDRNotAvailable")
            && out.contains("Node second status is now: CIDRNotAvailable")
        {
            Ok(())
        } else {
            Err(out)
        }
    });
    let out = c.ok(&["get", "node", "second", "-o", "jsonpath={.spec.podCIDR}"]);
    assert_eq!(out, "");
}
