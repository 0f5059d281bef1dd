//! The node's OCI image store: images pulled from registries speaking the OCI
//! distribution API or imported from OCI/docker archives, each layer verified
//! by digest and unpacked once into a content-addressed directory that the
//! runtime stacks with overlayfs.
//!
//! Registries on loopback (`localhost`, `127.0.0.0/8`, `[::1]`) are spoken
//! to over plain HTTP, all others over HTTPS. Mirrors, credentials and TLS
//! settings per registry host come from a k3s-style `registries.yaml`
//! (`<root>/../registries.yaml` by default):
//!
//! ```yaml
//! mirrors:
//!   docker.io:
//!     endpoint: ["http://127.0.0.1:5000", "https://mirror.example.com"]
//! configs:
//!   mirror.example.com:
//!     auth: {username: user, password: secret}
//!     tls: {ca_file: /etc/ssl/mirror-ca.pem}
//! ```
//!
//! ```no_run
//! # async fn f() -> image::Result<()> {
//! let store = image::Store::open("/var/lib/krate/images")?;
//! let image = match store.resolve("busybox") {
//!     Some(image) => image,
//!     None => store.pull("busybox", None).await?,
//! };
//! println!("{} {:?} {:?}", image.id, image.config.cmd, image.layers);
//! # Ok(()) }
//! ```

mod archive;
pub mod auth;
mod digest;
mod error;
pub mod layer;
pub mod reference;
mod registry;
pub mod spec;
mod store;
pub mod testing;

pub use auth::Credentials;
pub use error::{Error, Result};
pub use reference::Reference;
pub use registry::RegistriesConfig;
pub use store::{GcReport, Image, ImageConfig, Removed, Store};

impl Store {
    /// Pulls `name` (a tag or digest reference) from its registry, or from
    /// its mirrors in the registries config, with `auth` (from an
    /// imagePullSecret) when given, and records it. Blobs and layers already
    /// in the store are not fetched again.
    pub async fn pull(&self, name: &str, auth: Option<&Credentials>) -> Result<Image> {
        registry::pull(self, name, auth).await
    }
}

/// `sha256:<hex>` of `bytes`, as image IDs and digests are written.
pub fn sha256_digest(bytes: &[u8]) -> String {
    digest::sha256(bytes)
}

#[cfg(test)]
mod tests {
    /// The agent drives pulls from tokio tasks.
    #[test]
    fn pull_futures_are_send() {
        fn assert_send<T: Send>(_: &T) {}
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path()).unwrap();
        let pull = store.pull("busybox", None);
        assert_send(&pull);
    }
}
