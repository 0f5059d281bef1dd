//! Namespace deletion, as upstream's namespace lifecycle: a deleted
//! namespace goes `Terminating`, everything in it is deleted, and once it
//! is empty its `kubernetes` finalizer is removed (the `finalize`
//! subresource) and the namespace goes away. While content remains, the
//! namespace's conditions say what.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::registry::{finalizers, DeleteOptions, ListOptions, Registry};
use crate::resources::{lookup, Catalog, ResourceInfo};
use crate::status::{ApiError, ApiResult};

/// Namespaces that may not be deleted.
pub const UNDELETABLE: &[&str] = &["default", "kube-system", "kube-public"];
/// The finalizer of `spec.finalizers` the namespace controller owns.
pub const FINALIZER: &str = "kubernetes";

fn namespaces() -> &'static ResourceInfo {
    lookup("", "v1", "namespaces").expect("namespaces are served")
}

/// `PUT namespaces/<name>/finalize`: replaces `spec.finalizers`; a
/// terminating namespace with none left is removed.
pub async fn finalize(reg: &Registry, name: &str, body: &Value) -> ApiResult<Value> {
    let wanted = body
        .pointer("/spec/finalizers")
        .cloned()
        .unwrap_or(json!([]));
    let updated = reg
        .guaranteed_update(namespaces(), None, name, |ns| {
            if !ns["spec"].is_object() {
                ns["spec"] = json!({});
            }
            ns["spec"]["finalizers"] = wanted.clone();
            Ok(())
        })
        .await?;
    let done = updated
        .pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .is_none_or(|f| f.is_empty())
        && finalizers(&updated).is_empty()
        && updated.pointer("/metadata/deletionTimestamp").is_some();
    if done {
        let key = Registry::key(namespaces(), None, name);
        let _ = reg.store().delete(key.as_bytes(), None).await;
    }
    Ok(updated)
}

/// Deletes what is in `ns`; returns the resources still holding objects
/// (being finalized or gracefully terminated) with their counts.
async fn empty(reg: &Registry, catalog: &Catalog, ns: &str) -> ApiResult<Vec<(String, usize)>> {
    let mut remaining = Vec::new();
    for r in catalog.all_stored() {
        if !r.namespaced || !r.has_verb("list") || !r.has_verb("delete") {
            continue;
        }
        let list = reg
            .list(r, Some(ns), &ListOptions::default(), &|_| true)
            .await?;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            continue;
        }
        for item in &items {
            if item.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let name = item
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            match reg
                .delete(r, Some(ns), name, &DeleteOptions::default())
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == 404 || e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
        let left = reg
            .list(r, Some(ns), &ListOptions::default(), &|_| true)
            .await?;
        let n = left["items"].as_array().map(Vec::len).unwrap_or(0);
        if n > 0 {
            remaining.push((r.qualified_resource(), n));
        }
    }
    Ok(remaining)
}

async fn set_conditions(
    reg: &Registry,
    name: &str,
    remaining: &[(String, usize)],
) -> ApiResult<()> {
    let now = crate::registry::now_rfc3339();
    let content = if remaining.is_empty() {
        json!({ "type": "NamespaceContentRemaining", "status": "False", "lastTransitionTime": now, "reason": "ContentRemoved", "message": "All content successfully removed" })
    } else {
        let list: Vec<String> = remaining
            .iter()
            .map(|(r, n)| format!("{r} has {n} resource instances"))
            .collect();
        json!({ "type": "NamespaceContentRemaining", "status": "True", "lastTransitionTime": now, "reason": "SomeResourcesRemain", "message": format!("Some resources are remaining: {}", list.join(", ")) })
    };
    reg.guaranteed_update(namespaces(), None, name, |ns| {
        let mut conds: Vec<Value> = ns
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(old) = conds
            .iter()
            .find(|c| c["type"] == "NamespaceContentRemaining")
        {
            if old["status"] == content["status"] && old["message"] == content["message"] {
                return Err(ApiError::new(304, "Unchanged", ""));
            }
        }
        conds.retain(|c| c["type"] != "NamespaceContentRemaining");
        conds.push(content.clone());
        ns["status"]["conditions"] = json!(conds);
        Ok(())
    })
    .await
    .map(|_| ())
    .or_else(|e| if e.code == 304 { Ok(()) } else { Err(e) })
}

async fn reconcile(reg: &Registry, catalog: &Catalog) -> ApiResult<(store::Revision, bool)> {
    let list = reg
        .list(namespaces(), None, &ListOptions::default(), &|_| true)
        .await?;
    let rev = list["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut pending = false;
    for ns in list["items"].as_array().cloned().unwrap_or_default() {
        if ns.pointer("/metadata/deletionTimestamp").is_none() {
            continue;
        }
        let owned = ns
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|x| x == FINALIZER));
        if !owned {
            continue;
        }
        let name = ns
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let remaining = empty(reg, catalog, &name).await?;
        set_conditions(reg, &name, &remaining).await?;
        if remaining.is_empty() {
            let rest: Vec<Value> = ns["spec"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|f| f != FINALIZER)
                .collect();
            finalize(reg, &name, &json!({ "spec": { "finalizers": rest } })).await?;
        } else {
            pending = true;
        }
    }
    Ok((rev, pending))
}

/// Runs until the server stops.
pub async fn run_controller(reg: Arc<Registry>, catalog: Arc<Catalog>) {
    loop {
        let (rev, pending) = match reconcile(&reg, &catalog).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "namespace deletion pass failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let prefix = namespaces().storage_prefix();
        let Ok(mut watch) = reg.store().watch(prefix.as_bytes(), rev).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        // A namespace change wakes the controller; content still going
        // away (graceful pods, finalizers) is checked again shortly.
        let wait = if pending {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(3600)
        };
        let _ = tokio::time::timeout(wait, watch.next()).await;
    }
}
