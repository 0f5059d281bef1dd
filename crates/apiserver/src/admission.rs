//! Admission: the stage between validation and the write, where plugins
//! may change an object and reserve what it needs (IPs, ports), and the
//! hooks that give reservations back when the write fails or the object
//! goes away. Plugins run in order; each sees the previous one's changes.

pub mod limits;
pub mod pods;
pub mod runtime_class;
pub mod services;
pub mod storage;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::resources::ResourceInfo;
use crate::status::ApiResult;

#[async_trait]
pub trait Admission: Send + Sync {
    /// Before a create is written. May change `obj` and reserve resources.
    async fn admit_create(&self, _r: &ResourceInfo, _obj: &mut Value) -> ApiResult<()> {
        Ok(())
    }

    /// Before an update is written.
    async fn admit_update(
        &self,
        _r: &ResourceInfo,
        _new: &mut Value,
        _old: &Value,
    ) -> ApiResult<()> {
        Ok(())
    }

    /// The write after a successful `admit_create` failed: undo
    /// reservations made for `obj`.
    async fn create_failed(&self, _r: &ResourceInfo, _obj: &Value) {}

    /// The write after a successful `admit_update` failed: undo what was
    /// reserved for `new` and not held by `old`.
    async fn update_failed(&self, _r: &ResourceInfo, _new: &Value, _old: &Value) {}

    /// An update was written: release what `old` held and `new` no longer
    /// holds.
    async fn updated(&self, _r: &ResourceInfo, _new: &Value, _old: &Value) {}

    /// The object was removed from the store.
    async fn deleted(&self, _r: &ResourceInfo, _obj: &Value) {}
}

/// The registry a plugin reads other objects through, known once that
/// registry exists (plugins are built before it).
#[derive(Default)]
pub struct RegistryRef(std::sync::OnceLock<std::sync::Weak<crate::registry::Registry>>);

impl RegistryRef {
    pub fn attach(&self, registry: &Arc<crate::registry::Registry>) {
        let _ = self.0.set(Arc::downgrade(registry));
    }

    pub fn get(&self) -> ApiResult<Arc<crate::registry::Registry>> {
        self.0
            .get()
            .and_then(std::sync::Weak::upgrade)
            .ok_or_else(|| {
                crate::status::ApiError::unavailable("the server is not ready to admit objects")
            })
    }
}

/// The plugins in the order they run.
#[derive(Clone, Default)]
pub struct Chain(pub Vec<Arc<dyn Admission>>);

impl Chain {
    pub async fn admit_create(&self, r: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
        for (i, p) in self.0.iter().enumerate() {
            if let Err(e) = p.admit_create(r, obj).await {
                for done in self.0[..i].iter().rev() {
                    done.create_failed(r, obj).await;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    pub async fn admit_update(
        &self,
        r: &ResourceInfo,
        new: &mut Value,
        old: &Value,
    ) -> ApiResult<()> {
        for (i, p) in self.0.iter().enumerate() {
            if let Err(e) = p.admit_update(r, new, old).await {
                for done in self.0[..i].iter().rev() {
                    done.update_failed(r, new, old).await;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    pub async fn create_failed(&self, r: &ResourceInfo, obj: &Value) {
        for p in self.0.iter().rev() {
            p.create_failed(r, obj).await;
        }
    }

    pub async fn update_failed(&self, r: &ResourceInfo, new: &Value, old: &Value) {
        for p in self.0.iter().rev() {
            p.update_failed(r, new, old).await;
        }
    }

    pub async fn updated(&self, r: &ResourceInfo, new: &Value, old: &Value) {
        for p in &self.0 {
            p.updated(r, new, old).await;
        }
    }

    pub async fn deleted(&self, r: &ResourceInfo, obj: &Value) {
        for p in &self.0 {
            p.deleted(r, obj).await;
        }
    }
}
