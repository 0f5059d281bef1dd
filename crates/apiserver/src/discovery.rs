//! Discovery documents, derived from the resource table: the legacy
//! `/api`, `/apis`, `/apis/<g>`, `/api(s)/.../<v>` lists and the aggregated
//! `apidiscovery.k8s.io/v2` form that kubectl 1.32 asks for first (with
//! short names and categories, from which kubectl resolves `deploy`, `rs`
//! and `all`).

use serde_json::{json, Value};

use crate::resources::{Catalog, ResourceInfo};

/// Media type of aggregated discovery, as clients put it in `Accept`.
pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
pub const AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// Which aggregated discovery version (if any) the `Accept` header asks
/// for, honouring the client's order of preference.
pub fn wants_aggregated(accept: &str) -> Option<&'static str> {
    for part in accept.split(',') {
        let p: String = part
            .split(';')
            .map(str::trim)
            .filter(|s| !s.starts_with("q="))
            .collect::<Vec<_>>()
            .join(";");
        if p.contains("as=APIGroupDiscoveryList") && p.contains("g=apidiscovery.k8s.io") {
            if p.contains("v=v2beta1") {
                return Some("v2beta1");
            }
            if p.contains("v=v2") {
                return Some("v2");
            }
        }
        if p.starts_with("application/json") && !p.contains("as=") {
            return None;
        }
    }
    None
}

pub fn legacy_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }],
    })
}

fn group_json(name: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({ "groupVersion": format!("{name}/{v}"), "version": v }))
        .collect();
    json!({
        "name": name,
        "versions": vs,
        "preferredVersion": { "groupVersion": format!("{name}/{}", versions[0]), "version": versions[0] },
    })
}

pub fn group_list(catalog: &Catalog) -> Value {
    let groups: Vec<Value> = catalog
        .groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_json(g, &vs))
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

pub fn group(catalog: &Catalog, name: &str) -> Option<Value> {
    let (g, vs) = catalog
        .groups()
        .into_iter()
        .find(|(g, _)| !g.is_empty() && *g == name)?;
    let mut doc = group_json(g, &vs);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

fn resource_entry(r: &ResourceInfo) -> Value {
    let mut e = json!({
        "name": r.resource,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        e["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        e["categories"] = json!(r.categories);
    }
    e
}

pub fn resource_list(catalog: &Catalog, group: &str, version: &str) -> Option<Value> {
    let mut entries = Vec::new();
    for r in catalog.in_group_version(group, version) {
        entries.push(resource_entry(r));
        for s in r.subresources {
            let mut e = json!({
                "name": format!("{}/{}", r.resource, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind.unwrap_or(r.kind),
                "verbs": s.verbs,
            });
            if let Some((g, v)) = s.kind_group_version {
                if g != r.group || v != r.version {
                    e["group"] = json!(g);
                    e["version"] = json!(v);
                }
            }
            entries.push(e);
        }
    }
    if entries.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": entries }),
    )
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let mut e = json!({
        "resource": r.resource,
        "responseKind": { "group": r.group, "version": r.version, "kind": r.kind },
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        e["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        e["categories"] = json!(r.categories);
    }
    if !r.subresources.is_empty() {
        let subs: Vec<Value> = r
            .subresources
            .iter()
            .map(|s| {
                let (g, v) = s.kind_group_version.unwrap_or((r.group, r.version));
                json!({
                    "subresource": s.name,
                    "responseKind": { "group": g, "version": v, "kind": s.kind.unwrap_or(r.kind) },
                    "verbs": s.verbs,
                })
            })
            .collect();
        e["subresources"] = json!(subs);
    }
    e
}

/// The aggregated document for `/api` (`legacy`) or `/apis`.
pub fn aggregated(catalog: &Catalog, legacy: bool, version: &str) -> Value {
    let items: Vec<Value> = catalog
        .groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == legacy)
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| {
                    let res: Vec<Value> = catalog
                        .in_group_version(g, v)
                        .into_iter()
                        .map(aggregated_resource)
                        .collect();
                    json!({ "version": v, "resources": res, "freshness": "Current" })
                })
                .collect();
            let mut meta = json!({ "creationTimestamp": null });
            if !g.is_empty() {
                meta["name"] = json!(g);
            }
            json!({ "metadata": meta, "versions": versions })
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_accept_header_selects_aggregated_v2() {
        let accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(wants_aggregated(accept), Some("v2"));
        assert_eq!(wants_aggregated("application/json, */*"), None);
        assert_eq!(wants_aggregated(AGGREGATED_V2BETA1), Some("v2beta1"));
    }

    #[test]
    fn aggregated_discovery_carries_short_names_categories_and_subresources() {
        let doc = aggregated(&Catalog::default(), false, "v2");
        let apps = doc["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == "apps")
            .unwrap();
        let deploy = apps["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "deployments")
            .unwrap();
        assert_eq!(deploy["shortNames"], json!(["deploy"]));
        assert_eq!(deploy["categories"], json!(["all"]));
        assert_eq!(deploy["scope"], "Namespaced");
        let scale = deploy["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["subresource"] == "scale")
            .unwrap();
        assert_eq!(
            scale["responseKind"],
            json!({ "group": "autoscaling", "version": "v1", "kind": "Scale" })
        );
        let core = aggregated(&Catalog::default(), true, "v2");
        assert_eq!(core["items"].as_array().unwrap().len(), 1);
        let pods = core["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "pods")
            .unwrap();
        assert_eq!(pods["shortNames"], json!(["po"]));
    }

    #[test]
    fn legacy_resource_list_names_subresources_with_their_kinds() {
        let list = resource_list(&Catalog::default(), "apps", "v1").unwrap();
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"deployments/scale"));
        let scale = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .unwrap();
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["group"], "autoscaling");
        assert!(resource_list(&Catalog::default(), "apps", "v9").is_none());
    }
}
