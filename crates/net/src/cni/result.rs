//! Reading plugin results: the addresses a network gave the container, from
//! results of every spec version (0.3.0 and later list `ips`, older ones
//! `ip4`/`ip6`), and error results.

use std::net::IpAddr;

use serde_json::Value;

/// The container's addresses in `result`, for interface `ifname`: the `ips`
/// whose `interface` index names an interface called `ifname`, and those
/// without an index.
pub fn container_ips(result: &Value, ifname: &str) -> Vec<IpAddr> {
    let interfaces = result.get("interfaces").and_then(Value::as_array);
    let interface_name = |index: u64| {
        interfaces
            .and_then(|ifs| ifs.get(index as usize))
            .and_then(|i| i.get("name"))
            .and_then(Value::as_str)
    };
    let mut ips = Vec::new();
    if let Some(list) = result.get("ips").and_then(Value::as_array) {
        for ip in list {
            if let Some(index) = ip.get("interface").and_then(Value::as_u64) {
                if interface_name(index).is_some_and(|name| name != ifname) {
                    continue;
                }
            }
            if let Some(addr) = ip
                .get("address")
                .and_then(Value::as_str)
                .and_then(parse_cidr_addr)
            {
                ips.push(addr);
            }
        }
    }
    for key in ["ip4", "ip6"] {
        if let Some(addr) = result
            .get(key)
            .and_then(|v| v.get("ip"))
            .and_then(Value::as_str)
            .and_then(parse_cidr_addr)
        {
            ips.push(addr);
        }
    }
    ips
}

/// "10.42.0.5/24" -> 10.42.0.5.
fn parse_cidr_addr(cidr: &str) -> Option<IpAddr> {
    cidr.split('/').next()?.parse().ok()
}

/// The message of an error result (`{"code":..,"msg":..,"details":..}`)
/// as libcni prints it: msg, then "; details" when there are details.
pub fn error_message(result: &Value) -> Option<(Option<u64>, String)> {
    let msg = result.get("msg").and_then(Value::as_str)?;
    let code = result.get("code").and_then(Value::as_u64);
    let details = result
        .get("details")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = if details.is_empty() {
        msg.to_owned()
    } else {
        format!("{msg}; {details}")
    };
    Some((code, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn addresses_of_the_container_interface_only() {
        let result = json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "cni0", "mac": "aa"},
                {"name": "veth1", "mac": "bb"},
                {"name": "eth0", "mac": "cc", "sandbox": "/run/krate/netns/x"}
            ],
            "ips": [
                {"interface": 2, "address": "10.42.0.5/24", "gateway": "10.42.0.1"},
                {"interface": 0, "address": "10.99.0.1/24"},
                {"address": "fd00::5/64"}
            ]
        });
        assert_eq!(
            container_ips(&result, "eth0"),
            vec![
                "10.42.0.5".parse::<IpAddr>().unwrap(),
                "fd00::5".parse().unwrap()
            ]
        );
    }

    #[test]
    fn pre_0_3_results_name_ip4_and_ip6() {
        let result = json!({"cniVersion": "0.2.0", "ip4": {"ip": "10.1.2.3/16"}});
        assert_eq!(
            container_ips(&result, "eth0"),
            vec!["10.1.2.3".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn error_results_keep_the_plugins_words() {
        let err = json!({"cniVersion": "1.0.0", "code": 11, "msg": "failed to allocate", "details": "range full"});
        assert_eq!(
            error_message(&err),
            Some((Some(11), "failed to allocate; range full".into()))
        );
        assert_eq!(
            error_message(&json!({"msg": "no"})),
            Some((None, "no".into()))
        );
        assert_eq!(error_message(&json!({"ips": []})), None);
    }
}
