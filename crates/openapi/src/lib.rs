//! The OpenAPI documents of the built-in kinds, as a v1.32 API server
//! publishes them: the Swagger 2.0 document of `/openapi/v2` (JSON, and the
//! gnostic protobuf that kubectl asks for), the `/openapi/v3` index and the
//! per group/version OpenAPI 3.0 documents of `/openapi/v3/apis/apps/v1`.
//! kubectl reads them for `explain` (v3), for client-side validation and
//! for the strategic-merge metadata of `apply` (v2), and to learn whether
//! the server validates fields itself (v3 PATCH parameters).
//!
//! # Where the definitions come from
//!
//! - **Structure, types, formats, descriptions**: the
//!   `schemars::JsonSchema` implementations of `k8s-openapi` (feature
//!   `v1_32`, the version the `api` crate uses), which its code generator
//!   derives from upstream's v1.32 `swagger.json`. Schema names are
//!   upstream's (`io.k8s.api.core.v1.Pod`), so `$ref`s and kubectl's lookups
//!   line up. Nothing large is vendored, and the documents follow the
//!   `k8s-openapi` the rest of krate deserializes with.
//! - **What `k8s-openapi` leaves out or says differently**, restored from a
//!   generated table (`upstream.rs`, made by `tools/gen_upstream.py` from
//!   upstream's v1.32 definitions as shipped in the `kubernetes-validate`
//!   PyPI package): every `x-kubernetes-*` vendor extension upstream
//!   publishes (`group-version-kind`, `patch-merge-key`, `patch-strategy`,
//!   `list-type`, `list-map-keys`, `map-type`, `unions`), upstream's
//!   `required` lists (`k8s-openapi` requires every non-`Option` Rust
//!   field, `metadata` included), and the descriptions of the `<Kind>List`
//!   types (`k8s-openapi` has a generic `List<T>` without a schema). The
//!   api crate's strategic-merge table comes from the same source.
//! - **Special types** get upstream's exact shape: `IntOrString` is
//!   `type: string, format: int-or-string` in v2 and
//!   `oneOf: [integer, string]` in v3, `Quantity` is a string in v2 and
//!   `oneOf: [string, number]` in v3.
//! - **Paths** are generated from the served kinds (see `paths`).
//! - **Custom resources** (see `custom`): the server hands in the served
//!   versions of its CustomResourceDefinitions with [`OpenApi::set_custom`];
//!   each becomes a definition named as upstream's apiextensions builder
//!   names it (`com.example.v1.Widget`) in `/openapi/v2` and in its own
//!   `/openapi/v3/apis/<group>/<version>` document, rebuilt when next asked
//!   for after the definitions change.
//!
//! Vendoring upstream's `swagger.json` (3.7 MB, and about as much again as
//! the per group/version v3 files) or the whole `kubernetes-validate`
//! definitions (1.3 MB) were the alternatives: byte-exact, but large, and
//! free to drift from the types krate actually serves. Checked against
//! those definitions, every generated definition matches upstream's (types,
//! formats, descriptions, `required`, extensions) except for `required`
//! order and the v2/v3 shapes of `IntOrString` and `Quantity` above.
//!
//! # Cost
//!
//! Nothing is built until first asked for. Each document is then built
//! once, on a short-lived thread (so that glibc can give the transient
//! memory back), and kept gzip-compressed (what kubectl accepts); clients that do not accept gzip
//! get it inflated per request. For krate's 57 built-in resources (release
//! build, this machine): the v3 index builds all 20 group/version documents
//! (2.7 MB of JSON, 0.7 MB gzipped) in about 0.1 s, the v2 document
//! (1.6 MB JSON, 1.4 MB protobuf, 0.3 MB gzipped each) in about 0.05 s per
//! encoding. The process grows by about 6 MB once the v3 documents are
//! built and by about 7.5 MB once all are. Since the first request for a
//! document blocks for that long, a server should call
//! [`OpenApi::respond`] from a blocking-friendly context
//! (`spawn_blocking`).

mod custom;
mod fields;
mod paths;
mod proto;
mod registry;
mod schemas;
mod serve;
mod upstream;
mod v2;
mod v3;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::{Arc, OnceLock, RwLock};

use bytes::Bytes;
use serde_json::Value;

pub use custom::{definition_name, CustomKind};
pub use paths::group_version_path;

/// The Kubernetes version the documents describe (their `info.version`).
pub const KUBERNETES_VERSION: &str = "v1.32.0";

/// One served resource: its kind and how it is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// Plural, lower case: the URL segment.
    pub resource: &'static str,
    pub namespaced: bool,
    /// The verbs discovery lists (`create`, `get`, `list`, `patch`, ...):
    /// which operations the paths publish.
    pub verbs: &'static [&'static str],
}

/// How the documents describe the server.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The server honours the `fieldValidation` query parameter. When set,
    /// write operations list it and kubectl leaves unknown-field checks to
    /// the server; when not, kubectl validates manifests itself against
    /// `/openapi/v2` (`--validate=strict`, its default).
    pub field_validation: bool,
}

/// One serialized document, kept gzip-compressed. Cheap to clone.
#[derive(Clone)]
pub struct Document {
    gzip: Bytes,
    etag: String,
    len: usize,
}

impl Document {
    fn new(bytes: &[u8]) -> Document {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        // Writing into a Vec cannot fail.
        let _ = encoder.write_all(bytes);
        let gzip = encoder.finish().unwrap_or_default();
        Document {
            gzip: Bytes::from(gzip),
            etag: etag(bytes),
            len: bytes.len(),
        }
    }

    fn json(value: &Value) -> Document {
        Document::new(&serde_json::to_vec(value).unwrap_or_default())
    }

    /// Builds a document on a short-lived thread and copies the result out.
    /// Building allocates some ten MB of short-lived JSON values (small
    /// `serde_json` maps are costly); built on the caller's thread, glibc
    /// kept about 13 MB of it resident for good, built here about 5 MB,
    /// since the builder's arena is left empty once the result has been
    /// copied into the caller's memory and can be trimmed.
    fn build(make: impl FnOnce() -> Document + Send) -> Document {
        let built = std::thread::scope(|s| s.spawn(make).join());
        match built {
            Ok(d) => Document {
                gzip: Bytes::copy_from_slice(&d.gzip),
                etag: d.etag.clone(),
                len: d.len,
            },
            Err(_) => Document::new(b""),
        }
    }

    /// The content hash, as upstream uses it for `ETag` and `?hash=`.
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// The document gzip-compressed (`Content-Encoding: gzip`).
    pub fn gzipped(&self) -> &Bytes {
        &self.gzip
    }

    /// The document itself.
    pub fn bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.len);
        let _ = flate2::read::GzDecoder::new(&self.gzip[..]).read_to_end(&mut out);
        Bytes::from(out)
    }

    /// Size of the document itself, uncompressed.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A stable 64-bit FNV-1a hash, in upper-case hex as upstream's hashes are.
fn etag(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016X}")
}

/// The OpenAPI documents of a set of served kinds, each built on first use
/// and cached. Cheap to create; share one per server.
pub struct OpenApi {
    kinds: Vec<Kind>,
    options: Options,
    v2_json: OnceLock<Document>,
    v2_protobuf: OnceLock<Document>,
    v3_index: OnceLock<Document>,
    fields: OnceLock<fields::FieldIndex>,
    /// Group/version path (`apis/apps/v1`) -> its document.
    v3: BTreeMap<String, (&'static str, &'static str, OnceLock<Document>)>,
    /// The custom resources served now, with their documents.
    custom: RwLock<Arc<Custom>>,
}

/// The documents that depend on the custom resources, built on first use
/// after each change of them.
#[derive(Default)]
struct Custom {
    kinds: Vec<CustomKind>,
    v2_json: OnceLock<Document>,
    v2_protobuf: OnceLock<Document>,
    v3_index: OnceLock<Document>,
    /// Custom group/version path -> its document.
    v3: BTreeMap<String, (String, String, OnceLock<Document>)>,
}

impl OpenApi {
    pub fn new(kinds: Vec<Kind>, options: Options) -> OpenApi {
        let mut v3 = BTreeMap::new();
        for kind in &kinds {
            v3.entry(group_version_path(kind.group, kind.version))
                .or_insert_with(|| (kind.group, kind.version, OnceLock::new()));
        }
        OpenApi {
            kinds,
            options,
            v2_json: OnceLock::new(),
            v2_protobuf: OnceLock::new(),
            v3_index: OnceLock::new(),
            fields: OnceLock::new(),
            v3,
            custom: RwLock::default(),
        }
    }

    fn custom(&self) -> Arc<Custom> {
        self.custom
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Publishes the served versions of the custom resource definitions
    /// (all of them, replacing the previous set). The documents that
    /// depend on them are rebuilt when next asked for, if they changed.
    pub fn set_custom(&self, kinds: Vec<CustomKind>) {
        let mut current = self.custom.write().unwrap_or_else(|p| p.into_inner());
        if current.kinds == kinds {
            return;
        }
        let mut v3 = BTreeMap::new();
        for k in &kinds {
            v3.entry(group_version_path(k.kind.group, k.kind.version))
                .or_insert_with(|| {
                    (
                        k.kind.group.to_string(),
                        k.kind.version.to_string(),
                        OnceLock::new(),
                    )
                });
        }
        *current = Arc::new(Custom {
            kinds,
            v3,
            ..Custom::default()
        });
    }

    fn v2_document(&self, customs: &[CustomKind]) -> Value {
        let mut document = v2::document(&self.kinds, &self.options);
        custom::extend_v2(&mut document, customs, &self.options);
        document
    }

    fn field_index(&self) -> &fields::FieldIndex {
        // Built on a short-lived thread, as the documents are, so that the
        // large transient definitions go back to the system with it.
        self.fields.get_or_init(|| {
            std::thread::scope(|s| {
                s.spawn(|| {
                    let doc = v2::document(&self.kinds, &self.options);
                    doc.get("definitions")
                        .and_then(serde_json::Value::as_object)
                        .map(fields::FieldIndex::build)
                        .unwrap_or_default()
                })
                .join()
                .unwrap_or_default()
            })
        })
    }

    /// Paths of the fields of `obj` that its kind does not declare
    /// (`spec.replicass`, `spec.template.spec.containers[0].imagee`), for
    /// `fieldValidation`. Kinds without a schema have none.
    pub fn unknown_fields(
        &self,
        group: &str,
        version: &str,
        kind: &str,
        obj: &serde_json::Value,
    ) -> Vec<String> {
        self.field_index()
            .unknown(group, version, kind, &mut obj.clone(), false)
    }

    /// Removes the fields of `obj` its kind does not declare, as decoding
    /// into a typed object does; returns their paths.
    pub fn prune_unknown_fields(
        &self,
        group: &str,
        version: &str,
        kind: &str,
        obj: &mut serde_json::Value,
    ) -> Vec<String> {
        self.field_index().unknown(group, version, kind, obj, true)
    }

    /// The Swagger 2.0 document as JSON.
    pub fn v2_json(&self) -> Document {
        let custom = self.custom();
        if custom.kinds.is_empty() {
            return self
                .v2_json
                .get_or_init(|| {
                    Document::build(|| Document::json(&v2::document(&self.kinds, &self.options)))
                })
                .clone();
        }
        custom
            .v2_json
            .get_or_init(|| Document::build(|| Document::json(&self.v2_document(&custom.kinds))))
            .clone()
    }

    /// The Swagger 2.0 document as gnostic protobuf (what client-go's
    /// `OpenAPISchema()` decodes).
    pub fn v2_protobuf(&self) -> Document {
        let custom = self.custom();
        if custom.kinds.is_empty() {
            return self
                .v2_protobuf
                .get_or_init(|| {
                    Document::build(|| {
                        Document::new(&proto::encode_v2(&v2::document(&self.kinds, &self.options)))
                    })
                })
                .clone();
        }
        custom
            .v2_protobuf
            .get_or_init(|| {
                Document::build(|| {
                    Document::new(&proto::encode_v2(&self.v2_document(&custom.kinds)))
                })
            })
            .clone()
    }

    /// The group/version paths served under `/openapi/v3/`.
    pub fn group_versions(&self) -> Vec<String> {
        let custom = self.custom();
        let mut all: Vec<String> = self.v3.keys().chain(custom.v3.keys()).cloned().collect();
        all.sort();
        all.dedup();
        all
    }

    /// The OpenAPI 3 document of one group/version path (`api/v1`,
    /// `apis/apps/v1`); `None` when no served kind is in it.
    pub fn v3_document(&self, gv_path: &str) -> Option<Document> {
        if let Some((group, version, cell)) = self.v3.get(gv_path) {
            return Some(
                cell.get_or_init(|| {
                    Document::build(|| {
                        let document = v3::document(&self.kinds, &self.options, group, version)
                            .unwrap_or(Value::Null);
                        Document::json(&document)
                    })
                })
                .clone(),
            );
        }
        let custom = self.custom();
        let (group, version, cell) = custom.v3.get(gv_path)?;
        Some(
            cell.get_or_init(|| {
                Document::build(|| {
                    let document =
                        custom::v3_document(&custom.kinds, &self.options, group, version)
                            .unwrap_or(Value::Null);
                    Document::json(&document)
                })
            })
            .clone(),
        )
    }

    /// The `/openapi/v3` index: `{"paths": {"apis/apps/v1":
    /// {"serverRelativeURL": "/openapi/v3/apis/apps/v1?hash=..."}}}`.
    /// Building it builds every group/version document, for their hashes.
    pub fn v3_index(&self) -> Document {
        let custom = self.custom();
        let build = || {
            let paths: serde_json::Map<String, Value> = self
                .group_versions()
                .into_iter()
                .filter_map(|path| {
                    let hash = self.v3_document(&path)?.etag().to_string();
                    let url = format!("/openapi/v3/{path}?hash={hash}");
                    Some((path, serde_json::json!({ "serverRelativeURL": url })))
                })
                .collect();
            Document::json(&serde_json::json!({ "paths": paths }))
        };
        if custom.kinds.is_empty() {
            return self.v3_index.get_or_init(build).clone();
        }
        custom.v3_index.get_or_init(build).clone()
    }
}

/// The registry entries of every served group/version: the served kinds
/// and whatever else their group/versions define (subresource bodies).
fn served_entries(kinds: &[Kind]) -> Vec<&'static registry::TypeEntry> {
    let mut group_versions: Vec<(&str, &str)> =
        kinds.iter().map(|k| (k.group, k.version)).collect();
    group_versions.sort_unstable();
    group_versions.dedup();
    group_versions
        .into_iter()
        .flat_map(|(g, v)| registry::in_group_version(g, v))
        .collect()
}
