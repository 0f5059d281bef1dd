//! Request handling details clients rely on, through the real kubectl:
//! what a page of a list says about the rest, and how duplicate fields in
//! a request body are reported per `fieldValidation`.

mod support;

use serde_json::Value;
use support::Cluster;

fn raw(c: &Cluster, path: &str) -> Value {
    serde_json::from_str(&c.ok(&["get", "--raw", path])).unwrap()
}

#[test]
fn pages_of_unfiltered_lists_count_the_items_that_remain() {
    // The API alone: no controller adds objects (kube-root-ca.crt).
    let c = Cluster::start_with(&["--disable-controllers"]);
    for i in 0..7 {
        let label = if i % 2 == 0 { "even" } else { "odd" };
        c.ok_stdin(
            &["create", "-f", "-"],
            &format!(
                r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{i}","labels":{{"parity":"{label}"}}}}}}"#
            ),
        );
    }
    let base = "/api/v1/namespaces/default/configmaps";
    let first = raw(&c, &format!("{base}?limit=3"));
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    assert_eq!(first["metadata"]["remainingItemCount"], 4);
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();

    // A new object after the first page is not counted: the pages read
    // the list as it was.
    c.ok_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-late"}}"#,
    );
    let second = raw(&c, &format!("{base}?limit=3&continue={token}"));
    assert_eq!(second["metadata"]["remainingItemCount"], 1);
    let token = second["metadata"]["continue"].as_str().unwrap().to_string();
    let last = raw(&c, &format!("{base}?limit=3&continue={token}"));
    assert_eq!(last["items"].as_array().unwrap().len(), 1);
    assert!(last["metadata"].get("continue").is_none(), "{last}");
    assert!(
        last["metadata"].get("remainingItemCount").is_none(),
        "{last}"
    );

    // With a selector the store's count would be wrong: upstream leaves it out.
    let even = raw(&c, &format!("{base}?limit=2&labelSelector=parity%3Deven"));
    assert_eq!(even["items"].as_array().unwrap().len(), 2);
    assert!(even["metadata"]["continue"].is_string(), "{even}");
    assert!(
        even["metadata"].get("remainingItemCount").is_none(),
        "{even}"
    );
    let cluster_wide = raw(&c, "/api/v1/configmaps?limit=5");
    assert_eq!(cluster_wide["metadata"]["remainingItemCount"], 3);

    // kubectl pages through Tables transparently.
    assert_eq!(
        c.ok(&["get", "cm", "--chunk-size=2", "-o", "name"])
            .lines()
            .count(),
        8
    );
    let table = c.ok(&["get", "cm", "--chunk-size=3", "-l", "parity=odd"]);
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(table.starts_with("NAME"), "{table}");
}
