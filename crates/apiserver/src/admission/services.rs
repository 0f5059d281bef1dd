//! Services: ClusterIPs from the service CIDR and NodePorts from the node
//! port range, with upstream's defaults and error messages.
//!
//! Each allocated IP or port is a key in the store
//! (`/registry/ranges/serviceips/<ip>`, `/registry/ranges/servicenodeports/<port>`)
//! whose creation is the reservation: two services racing for one IP cannot
//! both win, across API servers too. The key's value names the owner so a
//! repair pass can free reservations whose service is gone.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::{json, Value};
use store::{RangeRequest, Store, StoreError};

use super::Admission;
use crate::resources::ResourceInfo;
use crate::status::{ApiError, ApiResult, Cause};

const IP_PREFIX: &str = "/registry/ranges/serviceips/";
const PORT_PREFIX: &str = "/registry/ranges/servicenodeports/";

/// An IPv4 CIDR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (ip, len) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR (want e.g. 10.43.0.0/16)"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("{s:?}: {ip:?} is not an IPv4 address"))?;
        let prefix: u8 = len
            .parse()
            .ok()
            .filter(|p| *p <= 30)
            .ok_or_else(|| format!("{s:?}: prefix must be 0..=30"))?;
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Ok(Cidr {
            base: Ipv4Addr::from(u32::from(ip) & mask),
            prefix,
        })
    }

    fn size(&self) -> u32 {
        1u32 << (32 - self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        };
        u32::from(ip) & mask == u32::from(self.base)
    }

    /// The `n`th address (0 is the network address).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + n)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

pub struct ServiceAllocator {
    store: Arc<dyn Store>,
    cidr: Cidr,
    ports: (u16, u16),
}

fn is_services(r: &ResourceInfo) -> bool {
    r.group.is_empty() && r.resource == "services"
}

fn invalid(obj: &Value, field: &str, message: String) -> ApiError {
    field_error(obj, "FieldValueInvalid", field, message)
}

/// A 422 on a Service naming one field, as upstream words it.
fn field_error(obj: &Value, reason: &str, field: &str, message: String) -> ApiError {
    let r = crate::resources::lookup("", "v1", "services").expect("services are served");
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    ApiError::invalid(
        r,
        name,
        vec![Cause {
            reason: reason.into(),
            message,
            field: field.into(),
        }],
    )
}

fn service_type(obj: &Value) -> &str {
    obj.pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
}

fn wants_node_ports(obj: &Value) -> bool {
    match service_type(obj) {
        "NodePort" => true,
        "LoadBalancer" => obj
            .pointer("/spec/allocateLoadBalancerNodePorts")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        _ => false,
    }
}

fn owner(obj: &Value) -> Bytes {
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    Bytes::from(format!("{ns}/{name}"))
}

/// IPv4 cluster IPs a service holds (not "None").
fn cluster_ips(obj: &Value) -> Vec<Ipv4Addr> {
    obj.pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter_map(|s| s.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn node_ports(obj: &Value) -> Vec<u16> {
    obj.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                .filter_map(|p| u16::try_from(p).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Upstream's defaults for a service spec.
pub fn default_service(obj: &mut Value) {
    if !obj.get("spec").is_some_and(Value::is_object) {
        obj["spec"] = json!({});
    }
    let spec = obj["spec"].as_object_mut().expect("spec is an object");
    let ty = spec
        .entry("type")
        .or_insert_with(|| json!("ClusterIP"))
        .as_str()
        .unwrap_or("ClusterIP")
        .to_string();
    spec.entry("sessionAffinity")
        .or_insert_with(|| json!("None"));
    if ty != "ExternalName" {
        spec.entry("internalTrafficPolicy")
            .or_insert_with(|| json!("Cluster"));
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        spec.entry("externalTrafficPolicy")
            .or_insert_with(|| json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        spec.entry("allocateLoadBalancerNodePorts")
            .or_insert_with(|| json!(true));
    }
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            p.entry("protocol").or_insert_with(|| json!("TCP"));
            if !p.contains_key("targetPort") {
                if let Some(port) = p.get("port").cloned() {
                    p.insert("targetPort".into(), port);
                }
            }
        }
    }
    // clusterIP and clusterIPs mirror each other.
    match (
        spec.get("clusterIP")
            .and_then(Value::as_str)
            .map(str::to_string),
        spec.get("clusterIPs").cloned(),
    ) {
        (Some(ip), None) if !ip.is_empty() => {
            spec.insert("clusterIPs".into(), json!([ip]));
        }
        (None, Some(Value::Array(ips))) if !ips.is_empty() => {
            spec.insert("clusterIP".into(), ips[0].clone());
        }
        _ => {}
    }
    if !obj.get("status").is_some_and(Value::is_object) {
        obj["status"] = json!({ "loadBalancer": {} });
    }
}

impl ServiceAllocator {
    pub fn new(store: Arc<dyn Store>, cidr: Cidr, ports: (u16, u16)) -> ServiceAllocator {
        ServiceAllocator { store, cidr, ports }
    }

    async fn reserve(&self, key: String, owner: Bytes) -> Result<bool, StoreError> {
        match self.store.create(key.as_bytes(), owner, 0).await {
            Ok(_) => Ok(true),
            Err(StoreError::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn release(&self, key: String) {
        match self.store.delete(key.as_bytes(), None).await {
            Ok(_) | Err(StoreError::NotFound { .. }) => {}
            Err(e) => tracing::warn!(key, error = %e, "releasing a service reservation failed"),
        }
    }

    async fn reserved(&self, prefix: &str) -> ApiResult<HashSet<String>> {
        let resp = self
            .store
            .range(RangeRequest {
                prefix: prefix.as_bytes().to_vec(),
                ..Default::default()
            })
            .await
            .map_err(ApiError::internal)?;
        Ok(resp
            .kvs
            .iter()
            .map(|kv| String::from_utf8_lossy(&kv.key[prefix.len()..]).into_owned())
            .collect())
    }

    async fn allocate_ip(&self, obj: &Value) -> ApiResult<Ipv4Addr> {
        let used = self.reserved(IP_PREFIX).await?;
        // Skip the network address, and the broadcast address of the range.
        for n in 1..self.cidr.size().saturating_sub(1) {
            let ip = self.cidr.nth(n);
            if used.contains(&ip.to_string()) {
                continue;
            }
            if self
                .reserve(format!("{IP_PREFIX}{ip}"), owner(obj))
                .await
                .map_err(ApiError::internal)?
            {
                return Ok(ip);
            }
        }
        Err(ApiError::internal(format!(
            "failed to allocate a serviceIP: range is full ({})",
            self.cidr
        )))
    }

    async fn allocate_port(&self, obj: &Value) -> ApiResult<u16> {
        let used = self.reserved(PORT_PREFIX).await?;
        for port in self.ports.0..=self.ports.1 {
            if used.contains(&port.to_string()) {
                continue;
            }
            if self
                .reserve(format!("{PORT_PREFIX}{port}"), owner(obj))
                .await
                .map_err(ApiError::internal)?
            {
                return Ok(port);
            }
        }
        Err(ApiError::internal(
            "failed to allocate a nodePort: range is full",
        ))
    }

    /// Reserves the IPs and ports `obj` asks for that `old` does not hold.
    async fn allocate(&self, obj: &mut Value, old: Option<&Value>) -> ApiResult<()> {
        let mut taken: Vec<String> = Vec::new();
        let result = self.allocate_inner(obj, old, &mut taken).await;
        if result.is_err() {
            for key in taken {
                self.release(key).await;
            }
        }
        result
    }

    async fn allocate_inner(
        &self,
        obj: &mut Value,
        old: Option<&Value>,
        taken: &mut Vec<String>,
    ) -> ApiResult<()> {
        let ty = service_type(obj).to_string();
        let old_ips: Vec<Ipv4Addr> = old.map(cluster_ips).unwrap_or_default();
        if ty != "ExternalName" {
            let requested = obj
                .pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if requested == "None" {
                obj["spec"]["clusterIPs"] = json!(["None"]);
            } else if requested.is_empty() {
                let ip = match old_ips.first() {
                    Some(ip) => *ip,
                    None => {
                        let ip = self.allocate_ip(obj).await?;
                        taken.push(format!("{IP_PREFIX}{ip}"));
                        ip
                    }
                };
                obj["spec"]["clusterIP"] = json!(ip.to_string());
                obj["spec"]["clusterIPs"] = json!([ip.to_string()]);
            } else {
                let ip: Ipv4Addr = requested.parse().map_err(|_| {
                    invalid(obj, "spec.clusterIPs[0]", format!("Invalid value: {requested:?}: must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
                })?;
                if !old_ips.contains(&ip) {
                    if !self.cidr.contains(ip) {
                        return Err(invalid(
                            obj,
                            "spec.clusterIPs",
                            format!("Invalid value: []string{{{requested:?}}}: failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid range. The range of valid IPs is {}", self.cidr),
                        ));
                    }
                    if !self
                        .reserve(format!("{IP_PREFIX}{ip}"), owner(obj))
                        .await
                        .map_err(ApiError::internal)?
                    {
                        return Err(invalid(
                            obj,
                            "spec.clusterIPs",
                            format!("Invalid value: []string{{{requested:?}}}: failed to allocate IP {requested}: provided IP is already allocated"),
                        ));
                    }
                    taken.push(format!("{IP_PREFIX}{ip}"));
                }
                obj["spec"]["clusterIPs"] = json!([requested]);
                if obj["spec"].get("ipFamilies").is_none() {
                    obj["spec"]["ipFamilies"] = json!(["IPv4"]);
                }
            }
            if obj["spec"].get("ipFamilies").is_none() && requested != "None" {
                obj["spec"]["ipFamilies"] = json!(["IPv4"]);
            }
            if requested == "None" && obj["spec"].get("ipFamilies").is_none() {
                obj["spec"]["ipFamilies"] = json!(["IPv4"]);
            }
            if obj["spec"].get("ipFamilyPolicy").is_none() {
                obj["spec"]["ipFamilyPolicy"] = json!("SingleStack");
            }
        }
        if wants_node_ports(obj) {
            let old_ports: Vec<u16> = old.map(node_ports).unwrap_or_default();
            let count = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0);
            for i in 0..count {
                let requested = obj["spec"]["ports"][i]
                    .get("nodePort")
                    .and_then(Value::as_i64);
                match requested {
                    Some(p) => {
                        let field = format!("spec.ports[{i}].nodePort");
                        if p < self.ports.0 as i64 || p > self.ports.1 as i64 {
                            return Err(invalid(
                                obj,
                                &field,
                                format!(
                                    "Invalid value: {p}: provided port is not in the valid range. The range of valid ports is {}-{}",
                                    self.ports.0, self.ports.1
                                ),
                            ));
                        }
                        let p = p as u16;
                        if old_ports.contains(&p) {
                            continue;
                        }
                        if !self
                            .reserve(format!("{PORT_PREFIX}{p}"), owner(obj))
                            .await
                            .map_err(ApiError::internal)?
                        {
                            return Err(invalid(
                                obj,
                                &field,
                                format!("Invalid value: {p}: provided port is already allocated"),
                            ));
                        }
                        taken.push(format!("{PORT_PREFIX}{p}"));
                    }
                    None => {
                        let p = self.allocate_port(obj).await?;
                        taken.push(format!("{PORT_PREFIX}{p}"));
                        obj["spec"]["ports"][i]["nodePort"] = json!(p);
                    }
                }
            }
        } else if ty == "ClusterIP" || ty == "ExternalName" {
            let count = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0);
            for i in 0..count {
                if obj["spec"]["ports"][i]
                    .get("nodePort")
                    .and_then(Value::as_i64)
                    .is_some_and(|p| p != 0)
                {
                    return Err(field_error(
                        obj,
                        "FieldValueForbidden",
                        &format!("spec.ports[{i}].nodePort"),
                        format!("Forbidden: may not be used when `type` is '{ty}'"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Releases what `old` holds and `new` (if any) does not.
    async fn release_difference(&self, old: &Value, new: Option<&Value>) {
        let keep_ips: Vec<Ipv4Addr> = new.map(cluster_ips).unwrap_or_default();
        for ip in cluster_ips(old) {
            if !keep_ips.contains(&ip) {
                self.release(format!("{IP_PREFIX}{ip}")).await;
            }
        }
        let keep_ports: Vec<u16> = new.map(node_ports).unwrap_or_default();
        for p in node_ports(old) {
            if !keep_ports.contains(&p) {
                self.release(format!("{PORT_PREFIX}{p}")).await;
            }
        }
    }
}

#[async_trait]
impl Admission for ServiceAllocator {
    async fn admit_create(&self, r: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
        if !is_services(r) {
            return Ok(());
        }
        default_service(obj);
        self.allocate(obj, None).await
    }

    async fn admit_update(&self, r: &ResourceInfo, new: &mut Value, old: &Value) -> ApiResult<()> {
        if !is_services(r) {
            return Ok(());
        }
        default_service(new);
        let old_ip = old
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("");
        let new_ip = new
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !old_ip.is_empty() && new_ip.is_empty() && service_type(new) != "ExternalName" {
            // Clients that omit the IP keep the one allocated.
            new["spec"]["clusterIP"] = json!(old_ip);
            new["spec"]["clusterIPs"] = old
                .pointer("/spec/clusterIPs")
                .cloned()
                .unwrap_or(json!([old_ip]));
        } else if !old_ip.is_empty()
            && new_ip != old_ip
            && service_type(new) != "ExternalName"
            && service_type(old) != "ExternalName"
        {
            return Err(invalid(
                new,
                "spec.clusterIPs[0]",
                format!("Invalid value: []string{{{new_ip:?}}}: may not change once set"),
            ));
        }
        // Keep node ports a client left out (as kubectl apply does).
        if wants_node_ports(new) {
            let old_ports = old
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(Value::Array(ports)) = new.pointer_mut("/spec/ports") {
                for p in ports.iter_mut() {
                    if p.get("nodePort").is_none() {
                        let same = old_ports.iter().find(|o| {
                            o.get("port") == p.get("port") && o.get("protocol") == p.get("protocol")
                        });
                        if let Some(np) = same.and_then(|o| o.get("nodePort")) {
                            p["nodePort"] = np.clone();
                        }
                    }
                }
            }
        }
        self.allocate(new, Some(old)).await
    }

    async fn create_failed(&self, r: &ResourceInfo, obj: &Value) {
        if is_services(r) {
            self.release_difference(obj, None).await;
        }
    }

    async fn update_failed(&self, r: &ResourceInfo, new: &Value, old: &Value) {
        if is_services(r) {
            self.release_difference(new, Some(old)).await;
        }
    }

    async fn updated(&self, r: &ResourceInfo, new: &Value, old: &Value) {
        if is_services(r) {
            self.release_difference(old, Some(new)).await;
        }
    }

    async fn deleted(&self, r: &ResourceInfo, obj: &Value) {
        if is_services(r) {
            self.release_difference(obj, None).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_contain() {
        let c = Cidr::parse("10.43.0.0/16").unwrap();
        assert_eq!(c.nth(1), Ipv4Addr::new(10, 43, 0, 1));
        assert!(c.contains(Ipv4Addr::new(10, 43, 255, 254)));
        assert!(!c.contains(Ipv4Addr::new(10, 44, 0, 1)));
        assert_eq!(
            Cidr::parse("10.43.1.7/16").unwrap().base,
            Ipv4Addr::new(10, 43, 0, 0)
        );
        assert!(Cidr::parse("10.43.0.0").is_err());
    }

    #[test]
    fn service_defaults_match_upstream() {
        let mut svc = json!({ "spec": { "ports": [{ "port": 80 }] } });
        default_service(&mut svc);
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(svc["spec"]["sessionAffinity"], "None");
        assert_eq!(svc["spec"]["internalTrafficPolicy"], "Cluster");
        assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(svc["status"], json!({ "loadBalancer": {} }));
    }
}
