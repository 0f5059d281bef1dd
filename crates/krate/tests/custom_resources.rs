//! Custom resources beyond CRUD, through the real kubectl: `kubectl explain`
//! from the definition's published schema, several versions of one
//! resource, deprecated versions, and conversion.

mod support;

use std::time::{Duration, Instant};

use support::Cluster;

const GADGETS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget, shortNames: [gd]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        description: A Gadget is a thing with a size and a colour.
        type: object
        properties:
          spec:
            description: What the gadget should be.
            type: object
            required: [size]
            properties:
              size:
                description: How big the gadget is, in centimetres.
                type: integer
              colour:
                description: The gadget's colour.
                type: string
"#;

/// Runs kubectl until it succeeds (kubectl rediscovers once a new type is
/// served); returns its stdout.
fn eventually_ok(c: &Cluster, args: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = c.kubectl(args);
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "kubectl {} kept failing: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs kubectl until it fails; returns its stderr.
fn eventually_fails(c: &Cluster, args: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = c.kubectl(args);
        if !out.status.success() {
            return String::from_utf8_lossy(&out.stderr).into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "kubectl {} kept succeeding",
            args.join(" ")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn kubectl_explain_prints_a_custom_resource_schema_until_its_definition_is_deleted() {
    let c = Cluster::start_with(&["--disable-controllers"]);
    c.ok_stdin(&["apply", "-f", "-"], GADGETS);
    c.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/gadgets.example.com",
        "--timeout=20s",
    ]);

    let out = eventually_ok(&c, &["explain", "gadgets"]);
    assert!(out.contains("GROUP:      example.com"), "{out}");
    assert!(out.contains("KIND:       Gadget"), "{out}");
    assert!(out.contains("VERSION:    v1"), "{out}");
    assert!(
        out.contains("A Gadget is a thing with a size and a colour."),
        "{out}"
    );
    assert!(out.contains("metadata\t<ObjectMeta>"), "{out}");
    assert!(out.contains("spec\t<Object>"), "{out}");

    let out = c.ok(&["explain", "gadgets.spec"]);
    assert!(out.contains("FIELD: spec <Object>"), "{out}");
    assert!(out.contains("What the gadget should be."), "{out}");
    assert!(out.contains("size\t<integer> -required-"), "{out}");
    assert!(out.contains("colour\t<string>"), "{out}");

    let out = c.ok(&["explain", "gd.spec.size"]);
    assert!(out.contains("FIELD: size <integer>"), "{out}");
    assert!(
        out.contains("How big the gadget is, in centimetres."),
        "{out}"
    );

    // Built-in kinds are still explained, and client-side apply (which
    // reads the OpenAPI documents) works for the custom kind.
    let out = c.ok(&["explain", "deployment.spec.replicas"]);
    assert!(out.contains("FIELD: replicas <integer>"), "{out}");
    let gadget =
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g1\nspec:\n  size: 3\n";
    assert_eq!(
        c.ok_stdin(&["apply", "-f", "-"], gadget).trim(),
        "gadget.example.com/g1 created"
    );
    assert_eq!(
        c.ok_stdin(&["apply", "-f", "-"], gadget).trim(),
        "gadget.example.com/g1 unchanged"
    );
    assert_eq!(
        c.ok_stdin(&["apply", "-f", "-"], &gadget.replace("size: 3", "size: 4"))
            .trim(),
        "gadget.example.com/g1 configured"
    );

    // The Swagger 2.0 document carries the kind too.
    let v2 = c.ok(&["get", "--raw", "/openapi/v2"]);
    assert!(
        v2.contains("\"com.example.v1.Gadget\""),
        "no Gadget in /openapi/v2"
    );

    // A changed schema is published again.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &GADGETS.replace("The gadget's colour.", "The gadget's paint colour."),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = c.ok(&["explain", "gadgets.spec.colour"]);
        if out.contains("The gadget's paint colour.") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "schema change not published: {out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    c.ok(&["delete", "crd", "gadgets.example.com"]);
    // kubectl's discovery cache still knows the type; the schema is gone.
    let err = eventually_fails(&c, &["explain", "gadgets"]);
    assert!(
        err.contains("couldn't find resource for \"example.com/v1, Resource=gadgets\""),
        "{err}"
    );
    let fresh = c.dir.path().join("fresh-cache");
    let err = c.fails(&["explain", "gadgets", "--cache-dir", fresh.to_str().unwrap()]);
    assert!(
        err.contains("the server doesn't have a resource type \"gadgets\""),
        "{err}"
    );
    let raw = c.kubectl(&["get", "--raw", "/openapi/v3/apis/example.com/v1"]);
    assert!(
        !raw.status.success(),
        "the group/version document outlived its definition"
    );
}

const GIZMOS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gizmos, singular: gizmo, kind: Gizmo}
  versions:
  - name: v1alpha1
    served: true
    storage: false
    deprecated: true
    deprecationWarning: "gizmos v1alpha1 goes away in the next release"
    schema: &schema
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
  - name: v1beta1
    served: true
    storage: false
    deprecated: true
    schema: *schema
  - name: v1
    served: true
    storage: true
    schema: *schema
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
"#;

fn stored_versions(c: &Cluster, crd: &str) -> String {
    c.ok(&["get", "crd", crd, "-o", "jsonpath={.status.storedVersions}"])
}

#[test]
fn a_multi_version_resource_is_read_in_every_served_version() {
    let c = Cluster::start_with(&["--disable-controllers"]);
    c.ok_stdin(&["apply", "-f", "-"], GIZMOS);
    c.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/gizmos.example.com",
        "--timeout=20s",
    ]);
    assert_eq!(stored_versions(&c, "gizmos.example.com"), r#"["v1"]"#);

    // Written in a deprecated version: kubectl prints the default warning.
    let gizmo = r#"{"apiVersion":"example.com/v1beta1","kind":"Gizmo","metadata":{"name":"g1"},"spec":{"size":3}}"#;
    let deadline = Instant::now() + Duration::from_secs(20);
    let out = loop {
        let out = c.kubectl_stdin(&["create", "-f", "-"], Some(gizmo));
        if out.status.success() {
            break out;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("Warning: example.com/v1beta1 Gizmo is deprecated; use example.com/v1 Gizmo"),
        "{stderr}"
    );

    // Every version reads the same object, under its own apiVersion.
    for (resource, api_version) in [
        ("gizmos.v1.example.com", "example.com/v1"),
        ("gizmos.v1beta1.example.com", "example.com/v1beta1"),
        ("gizmos.v1alpha1.example.com", "example.com/v1alpha1"),
    ] {
        let out = c.kubectl(&["get", resource, "g1", "-o", "json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let obj: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(obj["apiVersion"], api_version);
        assert_eq!(obj["spec"]["size"], 3);
        let list = c.ok(&["get", resource, "-o", "jsonpath={.items[*].apiVersion}"]);
        assert_eq!(list, api_version);
    }
    // Each version prints its own columns.
    let header = |resource: &str| -> Vec<String> {
        let table = c.ok(&["get", resource]);
        table
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(header("gizmos.v1.example.com"), ["NAME", "SIZE"]);
    assert_eq!(header("gizmos.v1beta1.example.com"), ["NAME", "AGE"]);

    // Unqualified, kubectl uses the preferred version: the most stable.
    let out = c.kubectl(&["get", "gizmos"]);
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("Warning"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("NAME   SIZE"));
    let group: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "--raw", "/apis/example.com"])).unwrap();
    assert_eq!(group["preferredVersion"]["version"], "v1");
    assert_eq!(group["versions"][2]["version"], "v1alpha1");

    // A version's own deprecation warning replaces the default one.
    let out = c.kubectl(&["get", "gizmos.v1alpha1.example.com", "g1"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Warning: gizmos v1alpha1 goes away in the next release"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = c.kubectl(&["get", "gizmos.v1.example.com", "g1"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("Warning"));

    // Moving storage to another version records it in storedVersions.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &GIZMOS
            .replace("    storage: true", "    storage: STORAGE")
            .replace(
                "  - name: v1beta1\n    served: true\n    storage: false",
                "  - name: v1beta1\n    served: true\n    storage: true",
            )
            .replace("STORAGE", "false"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while stored_versions(&c, "gizmos.example.com") != r#"["v1","v1beta1"]"# {
        assert!(
            Instant::now() < deadline,
            "storedVersions: {}",
            stored_versions(&c, "gizmos.example.com")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"example.com/v1","kind":"Gizmo","metadata":{"name":"g2"},"spec":{"size":4}}"#,
    );
    let raw = c.ok(&[
        "get",
        "--raw",
        "/apis/example.com/v1/namespaces/default/gizmos/g2",
    ]);
    assert!(raw.contains(r#""apiVersion":"example.com/v1""#), "{raw}");

    // A version objects may still be stored in cannot be dropped.
    let without_v1 = GIZMOS
        .replace("    storage: true", "    storage: false")
        .replace(
            "  - name: v1beta1\n    served: true\n    storage: false",
            "  - name: v1beta1\n    served: true\n    storage: true",
        );
    let without_v1 = &without_v1[..without_v1.find("  - name: v1\n").unwrap()];
    let err = c.fails_stdin(&["apply", "-f", "-"], without_v1);
    assert!(
        err.contains(
            "The CustomResourceDefinition \"gizmos.example.com\" is invalid: \
             status.storedVersions[0]: Invalid value: \"v1\": must appear in spec.versions"
        ),
        "{err}"
    );
}

const THINGS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: things.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: things, singular: thing, kind: Thing}
  conversion:
    strategy: Webhook
    webhook:
      conversionReviewVersions: [v1]
      clientConfig:
        service: {namespace: default, name: thing-converter, path: /convert}
  versions:
  - name: v1
    served: true
    storage: true
    schema: &schema
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
  - name: v2
    served: true
    storage: false
    schema: *schema
"#;

#[test]
fn reads_that_need_an_unreachable_conversion_webhook_fail_in_upstreams_words() {
    let c = Cluster::start_with(&["--disable-controllers"]);
    c.ok_stdin(&["apply", "-f", "-"], THINGS);
    c.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/things.example.com",
        "--timeout=20s",
    ]);
    let thing = r#"{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t1"},"data":{"a":"b"}}"#;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !c
        .kubectl_stdin(&["create", "-f", "-"], Some(thing))
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "could not create a Thing");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The storage version needs no conversion.
    assert_eq!(
        c.ok(&[
            "get",
            "things.v1.example.com",
            "t1",
            "-o",
            "jsonpath={.data.a}"
        ]),
        "b"
    );
    let err = c.fails(&["get", "things.v2.example.com", "t1"]);
    assert!(
        err.contains(
            "Error from server: conversion webhook for example.com/v1, Kind=Thing failed: \
             Post \"https://thing-converter.default.svc:443/convert?timeout=30s\": \
             service \"thing-converter\" not found"
        ),
        "{err}"
    );
    let v2 = r#"{"apiVersion":"example.com/v2","kind":"Thing","metadata":{"name":"t2"}}"#;
    let err = c.fails_stdin(&["create", "-f", "-"], v2);
    assert!(
        err.contains(
            "Internal error occurred: conversion webhook for example.com/v2, Kind=Thing failed"
        ),
        "{err}"
    );
    assert!(!c
        .kubectl(&["get", "things.v1.example.com", "t2"])
        .status
        .success());

    // Once the service exists, its address refuses the connection.
    c.ok(&[
        "create",
        "service",
        "clusterip",
        "thing-converter",
        "--tcp=443:8443",
    ]);
    let ip = c.ok(&[
        "get",
        "svc",
        "thing-converter",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let want = format!(
        "conversion webhook for example.com/v1, Kind=Thing failed: \
         Post \"https://thing-converter.default.svc:443/convert?timeout=30s\": \
         dial tcp {ip}:443: connect: connection refused"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let err = c.fails(&["get", "things.v2.example.com", "t1"]);
        if err.contains(&want) {
            break;
        }
        assert!(Instant::now() < deadline, "{err}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn unknown_fields_of_a_custom_resource_are_refused_or_warned_about() {
    let c = Cluster::start_with(&["--disable-controllers"]);
    c.ok_stdin(&["apply", "-f", "-"], GADGETS);
    c.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/gadgets.example.com",
        "--timeout=20s",
    ]);
    let gadget = r#"{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{"name":"g1"},
        "spec":{"size":3,"shape":"round","parts":[1]}}"#;
    // kubectl validates strictly by default, through the server.
    let deadline = Instant::now() + Duration::from_secs(20);
    let err = loop {
        let out = c.kubectl_stdin(&["create", "-f", "-"], Some(gadget));
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "a Gadget with unknown fields was created"
        );
        if err.contains("strict decoding error") || Instant::now() > deadline {
            break err;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        err.contains(
            "Gadget in version \"v1\" cannot be handled as a Gadget: strict decoding error: \
             unknown field \"spec.parts\", unknown field \"spec.shape\""
        ),
        "{err}"
    );
    let out = c.kubectl_stdin(&["create", "-f", "-", "--validate=warn"], Some(gadget));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Warning: unknown field \"spec.shape\""),
        "{stderr}"
    );
    assert_eq!(
        c.ok(&["get", "gadget", "g1", "-o", "jsonpath={.spec}"]),
        r#"{"size":3}"#
    );
}
