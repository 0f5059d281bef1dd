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
