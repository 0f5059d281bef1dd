//! The documents krate serves for its built-in kinds, checked as kubectl
//! reads them: every kind findable by its GVK, every `$ref` resolvable,
//! upstream's extensions where kubectl's patching and validation look.

mod common;

use std::collections::BTreeSet;

use common::BUILTIN;
use openapi::{group_version_path, OpenApi, Options};
use serde_json::{json, Value};

fn openapi() -> OpenApi {
    OpenApi::new(BUILTIN.to_vec(), Options::default())
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("a JSON document")
}

fn has_gvk(schema: &Value, group: &str, version: &str, kind: &str) -> bool {
    let wanted = json!({"group": group, "kind": kind, "version": version});
    schema["x-kubernetes-group-version-kind"]
        .as_array()
        .is_some_and(|list| list.contains(&wanted))
}

fn unresolved_refs(document: &Value, definitions: &Value, prefix: &str) -> BTreeSet<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("$ref", Value::String(target)) => out.push(target.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut refs = Vec::new();
    walk(document, &mut refs);
    refs.into_iter()
        .filter(|r| {
            r.strip_prefix(prefix)
                .is_none_or(|name| definitions.get(name).is_none())
        })
        .collect()
}

#[test]
fn every_served_kind_has_a_definition_tagged_with_its_gvk_in_v2_and_v3() {
    let openapi = openapi();
    let v2 = parse(&openapi.v2_json().bytes());
    let definitions = &v2["definitions"];
    for kind in BUILTIN {
        let found = definitions
            .as_object()
            .unwrap()
            .values()
            .any(|schema| has_gvk(schema, kind.group, kind.version, kind.kind));
        assert!(
            found,
            "v2 has no definition for {}/{} {}",
            kind.group, kind.version, kind.kind
        );

        let v3 = parse(
            &openapi
                .v3_document(&group_version_path(kind.group, kind.version))
                .unwrap()
                .bytes(),
        );
        let found = v3["components"]["schemas"]
            .as_object()
            .unwrap()
            .values()
            .any(|schema| has_gvk(schema, kind.group, kind.version, kind.kind));
        assert!(
            found,
            "v3 has no schema for {}/{} {}",
            kind.group, kind.version, kind.kind
        );
    }
}

#[test]
fn every_ref_resolves_within_its_document() {
    let openapi = openapi();
    let v2 = parse(&openapi.v2_json().bytes());
    assert_eq!(
        unresolved_refs(&v2, &v2["definitions"], "#/definitions/"),
        BTreeSet::new()
    );
    for gv in openapi.group_versions() {
        let v3 = parse(&openapi.v3_document(&gv).unwrap().bytes());
        assert_eq!(
            unresolved_refs(&v3, &v3["components"]["schemas"], "#/components/schemas/"),
            BTreeSet::new(),
            "in {gv}"
        );
    }
}

#[test]
fn container_lists_carry_upstreams_patch_merge_keys() {
    let openapi = openapi();
    let v2 = parse(&openapi.v2_json().bytes());
    let container = &v2["definitions"]["io.k8s.api.core.v1.Container"];
    assert_eq!(
        container["properties"]["ports"]["x-kubernetes-patch-merge-key"],
        "containerPort"
    );
    assert_eq!(
        container["properties"]["ports"]["x-kubernetes-patch-strategy"],
        "merge"
    );
    assert_eq!(
        container["properties"]["ports"]["x-kubernetes-list-map-keys"],
        json!(["containerPort", "protocol"])
    );
    assert_eq!(
        container["properties"]["env"]["x-kubernetes-patch-merge-key"],
        "name"
    );
    assert_eq!(container["required"], json!(["name"]));
    let pod_spec = &v2["definitions"]["io.k8s.api.core.v1.PodSpec"];
    assert_eq!(
        pod_spec["properties"]["containers"]["x-kubernetes-patch-merge-key"],
        "name"
    );
    assert_eq!(
        pod_spec["properties"]["volumes"]["x-kubernetes-patch-strategy"],
        "merge,retainKeys"
    );

    let v3 = parse(&openapi.v3_document("api/v1").unwrap().bytes());
    let ports = &v3["components"]["schemas"]["io.k8s.api.core.v1.Container"]["properties"]["ports"];
    assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
    assert_eq!(
        ports["items"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.ContainerPort"
    );
}

#[test]
fn deployment_matches_upstream_definition() {
    let openapi = openapi();
    let v2 = parse(&openapi.v2_json().bytes());
    let deployment = &v2["definitions"]["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        deployment["description"],
        "Deployment enables declarative updates for Pods and ReplicaSets."
    );
    assert_eq!(
        deployment["properties"]["spec"]["$ref"],
        "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    );
    let spec = &v2["definitions"]["io.k8s.api.apps.v1.DeploymentSpec"];
    assert_eq!(spec["required"], json!(["selector", "template"]));
    assert_eq!(spec["properties"]["replicas"]["format"], "int32");
    let status = &v2["definitions"]["io.k8s.api.apps.v1.DeploymentStatus"];
    assert_eq!(
        status["properties"]["conditions"]["x-kubernetes-list-type"],
        "map"
    );
    assert_eq!(
        status["properties"]["conditions"]["x-kubernetes-list-map-keys"],
        json!(["type"])
    );
    let list = &v2["definitions"]["io.k8s.api.apps.v1.DeploymentList"];
    assert_eq!(
        list["description"],
        "DeploymentList is a list of Deployments."
    );
    assert_eq!(
        list["properties"]["items"]["items"]["$ref"],
        "#/definitions/io.k8s.api.apps.v1.Deployment"
    );
    assert!(has_gvk(list, "apps", "v1", "DeploymentList"));

    let v3 = parse(&openapi.v3_document("apis/apps/v1").unwrap().bytes());
    let spec = &v3["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"];
    assert_eq!(
        spec["allOf"],
        json!([{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}])
    );
    assert!(spec["description"].is_string());
}

#[test]
fn int_or_string_and_quantity_take_upstreams_shapes() {
    let openapi = openapi();
    let v2 = parse(&openapi.v2_json().bytes());
    let int_or_string = &v2["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(
        (&int_or_string["type"], &int_or_string["format"]),
        (&json!("string"), &json!("int-or-string"))
    );
    assert_eq!(
        v2["definitions"]["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"],
        "string"
    );

    let v3 = parse(&openapi.v3_document("apis/apps/v1").unwrap().bytes());
    let schemas = &v3["components"]["schemas"];
    assert_eq!(
        schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["oneOf"],
        json!([{"type": "integer"}, {"type": "string"}])
    );
    assert_eq!(
        schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]["oneOf"],
        json!([{"type": "string"}, {"type": "number"}])
    );
}

#[test]
fn patch_operations_name_their_kind_and_list_field_validation_only_when_the_server_honours_it() {
    let patch_params = |openapi: &OpenApi| {
        let v3 = parse(&openapi.v3_document("apis/apps/v1").unwrap().bytes());
        let patch =
            &v3["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-action"], "patch");
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "kind": "Deployment", "version": "v1"})
        );
        assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
        patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert!(!patch_params(&openapi()).contains(&"fieldValidation".to_string()));
    let validating = OpenApi::new(
        BUILTIN.to_vec(),
        Options {
            field_validation: true,
        },
    );
    assert!(patch_params(&validating).contains(&"fieldValidation".to_string()));
}

#[test]
fn v3_index_points_at_every_group_version_with_its_hash() {
    let openapi = openapi();
    let index = parse(&openapi.v3_index().bytes());
    let served: BTreeSet<String> = BUILTIN
        .iter()
        .map(|k| group_version_path(k.group, k.version))
        .collect();
    let listed: BTreeSet<String> = index["paths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(listed, served);
    let apps = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap();
    let hash = openapi
        .v3_document("apis/apps/v1")
        .unwrap()
        .etag()
        .to_string();
    assert_eq!(apps, format!("/openapi/v3/apis/apps/v1?hash={hash}"));
    assert!(openapi.v3_document("apis/apps/v1beta1").is_none());
}

#[test]
fn responses_follow_upstreams_caching_and_negotiation() {
    use http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
    let openapi = openapi();
    let get = |uri: &str, headers: &[(header::HeaderName, &'static str)]| {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(name.clone(), HeaderValue::from_static(value));
        }
        openapi
            .respond(&Method::GET, &uri.parse::<Uri>().unwrap(), &map)
            .expect("an openapi path")
    };
    assert!(openapi
        .respond(&Method::GET, &"/api/v1".parse().unwrap(), &HeaderMap::new())
        .is_none());

    let proto = get(
        "/openapi/v2",
        &[(
            header::ACCEPT,
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        )],
    );
    assert_eq!(proto.status(), StatusCode::OK);
    assert_eq!(
        proto.headers()[header::CONTENT_TYPE],
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    );
    let json = get("/openapi/v2", &[(header::ACCEPT, "*/*")]);
    assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(parse(json.body())["swagger"], "2.0");
    assert_eq!(
        get("/openapi/v2", &[(header::ACCEPT, "text/html")]).status(),
        StatusCode::NOT_ACCEPTABLE
    );

    let hash = openapi.v3_document("api/v1").unwrap().etag().to_string();
    let current = get(
        &format!("/openapi/v3/api/v1?hash={hash}"),
        &[(header::ACCEPT_ENCODING, "gzip")],
    );
    assert_eq!(current.status(), StatusCode::OK);
    assert_eq!(
        current.headers()[header::CACHE_CONTROL],
        "public, immutable"
    );
    assert_eq!(current.headers()[header::CONTENT_ENCODING], "gzip");
    assert_eq!(
        current.headers()[header::ETAG].to_str().unwrap(),
        format!("\"{hash}\"")
    );
    let stale = get("/openapi/v3/api/v1?hash=0123", &[]);
    assert_eq!(stale.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        stale.headers()[header::LOCATION].to_str().unwrap(),
        format!("/openapi/v3/api/v1?hash={hash}")
    );
    let etag: &'static str = Box::leak(format!("\"{hash}\"").into_boxed_str());
    assert_eq!(
        get("/openapi/v3/api/v1", &[(header::IF_NONE_MATCH, etag)]).status(),
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        get("/openapi/v3/apis/nope/v1", &[]).status(),
        StatusCode::NOT_FOUND
    );
}

#[test]
fn documents_stay_small_once_built() {
    let openapi = openapi();
    let mut report = vec![(
        "v2 json",
        openapi.v2_json().len(),
        openapi.v2_json().gzipped().len(),
    )];
    report.push((
        "v2 protobuf",
        openapi.v2_protobuf().len(),
        openapi.v2_protobuf().gzipped().len(),
    ));
    let (mut raw, mut packed) = (0, 0);
    for gv in openapi.group_versions() {
        let d = openapi.v3_document(&gv).unwrap();
        raw += d.len();
        packed += d.gzipped().len();
    }
    report.push(("v3 (all group/versions)", raw, packed));
    for (what, raw, packed) in &report {
        eprintln!("{what}: {raw} bytes, {packed} gzipped");
    }
    let resident: usize = report.iter().map(|(_, _, packed)| packed).sum();
    assert!(resident < 4 << 20, "cached documents take {resident} bytes");
}
