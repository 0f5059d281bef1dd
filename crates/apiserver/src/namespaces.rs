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

/// What is left in a namespace after a deletion pass.
#[derive(Default)]
struct Remaining {
    /// `resource.group` and how many objects of it remain, sorted.
    resources: Vec<(String, usize)>,
    /// Finalizer and how many remaining objects carry it, sorted.
    finalizers: std::collections::BTreeMap<String, usize>,
    /// Deletions that failed, as their error messages.
    failures: Vec<String>,
}

/// Deletes what is in `ns`; returns what still holds objects (being
/// finalized or gracefully terminated).
async fn empty(reg: &Registry, catalog: &Catalog, ns: &str) -> ApiResult<Remaining> {
    let mut remaining = Remaining::default();
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
                Err(e) => remaining.failures.push(e.message.clone()),
            }
        }
        let left = reg
            .list(r, Some(ns), &ListOptions::default(), &|_| true)
            .await?;
        let left = left["items"].as_array().cloned().unwrap_or_default();
        if !left.is_empty() {
            // Upstream names the resource `resource.group`, with a
            // trailing dot for the core group.
            remaining
                .resources
                .push((format!("{}.{}", r.resource, r.group), left.len()));
        }
        for item in &left {
            for f in finalizers(item) {
                *remaining.finalizers.entry(f).or_default() += 1;
            }
        }
    }
    remaining.resources.sort();
    Ok(remaining)
}

/// The five conditions upstream's namespace controller keeps on a
/// terminating namespace, each False unless something blocks.
fn deletion_conditions(remaining: &Remaining, now: &str) -> Vec<Value> {
    let cond = |type_: &str, problem: Option<(&str, String)>, ok: (&str, &str)| match problem {
        Some((reason, message)) => {
            json!({ "type": type_, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message })
        }
        None => {
            json!({ "type": type_, "status": "False", "lastTransitionTime": now, "reason": ok.0, "message": ok.1 })
        }
    };
    let content_failure = (!remaining.failures.is_empty()).then(|| {
        (
            "ContentDeletionFailed",
            format!(
                "Failed to delete all resource types, {} remaining: {}",
                remaining.failures.len(),
                remaining.failures.join(", ")
            ),
        )
    });
    let content_remaining = (!remaining.resources.is_empty()).then(|| {
        let list: Vec<String> = remaining
            .resources
            .iter()
            .map(|(r, n)| format!("{r} has {n} resource instances"))
            .collect();
        (
            "SomeResourcesRemain",
            format!("Some resources are remaining: {}", list.join(", ")),
        )
    });
    let finalizers_remaining = (!remaining.finalizers.is_empty()).then(|| {
        let list: Vec<String> = remaining
            .finalizers
            .iter()
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect();
        (
            "SomeFinalizersRemain",
            format!(
                "Some content in the namespace has finalizers remaining: {}",
                list.join(", ")
            ),
        )
    });
    vec![
        cond(
            "NamespaceDeletionDiscoveryFailure",
            None,
            (
                "ResourcesDiscovered",
                "All resources successfully discovered",
            ),
        ),
        cond(
            "NamespaceDeletionGroupVersionParsingFailure",
            None,
            (
                "ParsedGroupVersions",
                "All legacy kube types successfully parsed",
            ),
        ),
        cond(
            "NamespaceDeletionContentFailure",
            content_failure,
            (
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization",
            ),
        ),
        cond(
            "NamespaceContentRemaining",
            content_remaining,
            ("ContentRemoved", "All content successfully removed"),
        ),
        cond(
            "NamespaceFinalizersRemaining",
            finalizers_remaining,
            (
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished",
            ),
        ),
    ]
}

async fn set_conditions(reg: &Registry, name: &str, remaining: &Remaining) -> ApiResult<()> {
    let now = crate::registry::now_rfc3339();
    let wanted = deletion_conditions(remaining, &now);
    reg.guaranteed_update(namespaces(), None, name, |ns| {
        let mut conds: Vec<Value> = ns
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut changed = false;
        for want in &wanted {
            match conds.iter_mut().find(|c| c["type"] == want["type"]) {
                Some(old)
                    if old["status"] == want["status"] && old["message"] == want["message"] => {}
                Some(old) => {
                    *old = want.clone();
                    changed = true;
                }
                None => {
                    conds.push(want.clone());
                    changed = true;
                }
            }
        }
        if !changed {
            return Err(ApiError::new(304, "Unchanged", ""));
        }
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
        if remaining.resources.is_empty() {
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
