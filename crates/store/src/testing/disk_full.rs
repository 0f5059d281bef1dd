//! The full-disk check: fill the filesystem under a store until a write
//! fails, then check that the failure is a clear `DiskFull` error, that the
//! failed write left nothing behind, and that the store still reads and
//! reopens with every acknowledged write. The test runs this in a child
//! process inside a private mount namespace holding a small tmpfs.

use std::path::Path;

use bytes::Bytes;

use crate::embedded::Embedded;
use crate::{RangeRequest, Store, StoreError};

/// Returns a one-line report on success, the violation otherwise.
pub fn fill_and_check(dir: &Path) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async {
        let store = Embedded::open(dir).map_err(|e| format!("opening store: {e}"))?;
        let value = Bytes::from(vec![b'f'; 64 * 1024]);
        let mut written = 0u64;
        let failure = loop {
            let key = format!("/fill/{written:06}");
            match store.create(key.as_bytes(), value.clone(), 0).await {
                Ok(_) => written += 1,
                Err(e) => break (key, e),
            }
            if written > 100_000 {
                return Err("the filesystem never filled up".into());
            }
        };
        let (failed_key, err) = failure;
        if !matches!(err, StoreError::DiskFull { .. }) {
            return Err(format!("expected DiskFull, got: {err}"));
        }
        let message = err.to_string();
        let current = store.current_revision().await.map_err(|e| e.to_string())?;
        if current != written as i64 {
            return Err(format!(
                "revision {current} after {written} acknowledged writes"
            ));
        }
        if store
            .get(failed_key.as_bytes(), 0)
            .await
            .map_err(|e| e.to_string())?
            .0
            .is_some()
        {
            return Err(format!("the failed write of {failed_key} was stored"));
        }
        let all = store
            .range(RangeRequest {
                prefix: b"/fill/".to_vec(),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("reading after a full disk: {e}"))?;
        if all.kvs.len() as u64 != written || all.kvs.iter().any(|kv| kv.value != value) {
            return Err(format!(
                "{} keys readable after {written} acknowledged writes",
                all.kvs.len()
            ));
        }
        store.close();
        drop(store);
        let store = Embedded::open(dir).map_err(|e| format!("reopening after a full disk: {e}"))?;
        let count = store.count(b"/fill/").await.map_err(|e| e.to_string())?;
        if count as u64 != written {
            return Err(format!(
                "{count} keys after reopening, {written} acknowledged"
            ));
        }
        Ok(format!(
            "ok: {written} writes acknowledged, then: {message}"
        ))
    })
}
