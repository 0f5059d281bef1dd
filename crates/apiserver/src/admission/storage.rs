//! StorageObjectInUseProtection: every new PersistentVolumeClaim gets the
//! `kubernetes.io/pvc-protection` finalizer and every new PersistentVolume
//! `kubernetes.io/pv-protection`, so that neither disappears while in use;
//! the protection controllers remove them once it is safe.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::Admission;
use crate::resources::ResourceInfo;
use crate::status::ApiResult;

pub const PVC_PROTECTION_FINALIZER: &str = "kubernetes.io/pvc-protection";
pub const PV_PROTECTION_FINALIZER: &str = "kubernetes.io/pv-protection";

#[derive(Default)]
pub struct StorageObjectInUseProtection;

fn add_finalizer(obj: &mut Value, finalizer: &str) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let list = meta.entry("finalizers").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    let list = list.as_array_mut().expect("an array");
    if !list.iter().any(|f| f == finalizer) {
        list.push(json!(finalizer));
    }
}

#[async_trait]
impl Admission for StorageObjectInUseProtection {
    async fn admit_create(&self, r: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
        match (r.group, r.resource) {
            ("", "persistentvolumeclaims") => add_finalizer(obj, PVC_PROTECTION_FINALIZER),
            ("", "persistentvolumes") => add_finalizer(obj, PV_PROTECTION_FINALIZER),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::lookup;

    #[tokio::test]
    async fn new_claims_and_volumes_get_their_protection_finalizer_once() {
        let plugin = StorageObjectInUseProtection;
        let pvcs = lookup("", "v1", "persistentvolumeclaims").unwrap();
        let mut claim =
            json!({ "metadata": { "name": "data", "finalizers": ["example.com/keep"] } });
        plugin.admit_create(pvcs, &mut claim).await.unwrap();
        plugin.admit_create(pvcs, &mut claim).await.unwrap();
        assert_eq!(
            claim["metadata"]["finalizers"],
            json!(["example.com/keep", PVC_PROTECTION_FINALIZER])
        );

        let pvs = lookup("", "v1", "persistentvolumes").unwrap();
        let mut volume = json!({ "metadata": { "name": "pv1" } });
        plugin.admit_create(pvs, &mut volume).await.unwrap();
        assert_eq!(
            volume["metadata"]["finalizers"],
            json!([PV_PROTECTION_FINALIZER])
        );

        let pods = lookup("", "v1", "pods").unwrap();
        let mut pod = json!({ "metadata": { "name": "p" } });
        plugin.admit_create(pods, &mut pod).await.unwrap();
        assert!(pod["metadata"].get("finalizers").is_none());
    }
}
