//! Kubernetes protobuf on the wire, Kubernetes JSON inside krate.
//!
//! kubectl's typed commands (`create namespace|configmap|secret|deployment|...`,
//! `auth can-i`, `create token`) send bodies as
//! `application/vnd.kubernetes.protobuf` and list that type first in `Accept`.
//! The API server stores and serves `serde_json::Value`; this crate converts
//! between the two for every built-in kind.
//!
//! # Wire format
//! An object is the 4-byte magic `k8s\0` followed by a `runtime.Unknown`
//! message `{typeMeta {apiVersion, kind}, raw, contentEncoding, contentType}`
//! whose `raw` is the typed message (`k8s.io.api.core.v1.ConfigMap`, ...).
//! A watch stream (`;stream=watch`) is a sequence of frames: a 4-byte
//! big-endian length, then a bare `metav1.WatchEvent` (no magic, no envelope:
//! upstream's stream serializer is the "raw" protobuf serializer) whose
//! `object.raw` is an enveloped object as above.
//!
//! # Schemas: where they come from
//! The conversion is driven by descriptors, not per-type code: the vendored
//! `proto/` tree is compiled by protox (a Rust protobuf compiler: no protoc)
//! in `build.rs` into one FileDescriptorSet (360 KB), which `prost-reflect`
//! decodes once, lazily, on first use.
//! - `proto/k8s.io/api/**` and `proto/k8s.io/apimachinery/**` are the schemas
//!   embedded in the installed kubectl (v1.32.4, `gitCommit 4cb5f076`): Go's
//!   generated code carries each `generated.proto` as a gzipped
//!   FileDescriptorProto, and `proto/extract.py` prints them back as `.proto`
//!   source, for every group and version kubectl knows (GA, beta and alpha).
//!   Comments are not in descriptors. Two field options are kept:
//!   `(gogoproto.nullable) = false` (a Go value field, not a pointer; declared
//!   by a minimal `proto/github.com/gogo/.../gogo.proto`) and `(krate.json)`,
//!   the Go field's `json` struct tag, which extract.py reads from the Go
//!   reflection data in the same binary (`proto/krate/options.proto`).
//! - apiextensions.k8s.io/v1 and apiregistration.k8s.io/v1 are not in kubectl;
//!   they are written from upstream's generated.proto and types.go (v1.32
//!   field set: `selectableFields`, ValidationRule fields 1-6), tags included.
//!
//! The `k8s-pb` crate (kube-rs) was considered and rejected: it ships
//! prost-generated structs only (no `.proto` files or descriptor set), whose
//! snake_case field names cannot be mapped back to the JSON names, and it has
//! no JSON mapping.
//!
//! # JSON mapping
//! Decoding prints what Go's `encoding/json` prints for the decoded struct,
//! driven by each field's Go json tag: its name (mostly the protobuf field
//! name; not for `aPIGroup`, `uID`, `Webhooks`, JSONSchemaProps' `$ref` and
//! `x-kubernetes-*`), `,inline` (Probe's handler, Volume's source,
//! `localObjectReference`, IngressRule's value, ...: members of the parent
//! object) and `omitempty`. Unset pointers and `omitempty` zeros are left
//! out; pointers keep explicit zeros (`replicas: 0`, `runAsUser: 0`); value
//! fields without `omitempty` print their zero (`"currentHealthy": 0`, nil
//! lists as `null`); value structs always print (`"status": {}`, a zero
//! `metav1.Time` as `null`). The real kubectl's protobuf bodies decode to
//! exactly the JSON kubectl prints for the same object (tests/kubectl.rs).
//!
//! Custom JSON types: `metav1.Time` (RFC 3339, seconds) and `MicroTime` (6
//! fractional digits), `Duration` (Go duration string), `resource.Quantity`
//! (string), `intstr.IntOrString` (number or string), `runtime.RawExtension`
//! (embedded JSON, or an enveloped protobuf object inside protobuf lists and
//! watch events), `FieldsV1` / apiextensions `JSON` (embedded JSON), `Verbs` /
//! `ExtraValue` (string arrays), the JSONSchemaPropsOr* unions, `bytes`
//! (base64).
//!
//! Encoding writes every JSON member that has a schema field and drops members
//! the schema does not know, as a Go decode into the typed struct would;
//! `null` is dropped except for a value `metav1.Time`, written as its empty
//! message (which decodes back to `null`); `apiVersion`/`kind` go into the
//! envelope. Kinds without a schema (custom resources) fail with
//! [`WireError::UnsupportedKind`]: answer those in JSON.

mod envelope;
mod from_json;
pub mod schema;
pub mod time;
mod to_json;

use serde_json::Value;

/// The protobuf media type of single objects.
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
/// The protobuf media type of watch streams.
pub const PROTOBUF_WATCH: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// Decodes a request body in Kubernetes protobuf to Kubernetes JSON (with
/// `apiVersion` and `kind` set from the envelope).
pub fn decode(body: &[u8]) -> Result<Value, WireError> {
    envelope::decode(body, 0)
}

/// Encodes a Kubernetes JSON object (it must carry `apiVersion` and `kind`;
/// lists too, e.g. `ConfigMapList`; `Status`) to the protobuf envelope.
/// Errors when the kind has no protobuf schema (custom resources: answer JSON).
pub fn encode(obj: &Value) -> Result<Vec<u8>, WireError> {
    envelope::encode(obj)
}

/// One framed protobuf watch event (`ADDED`, `MODIFIED`, `DELETED`,
/// `BOOKMARK`, `ERROR`) carrying `obj`, as the server writes it on a
/// `PROTOBUF_WATCH` stream.
pub fn encode_watch_event(event_type: &str, obj: &Value) -> Result<Vec<u8>, WireError> {
    envelope::encode_watch_event(event_type, obj)
}

/// Reads one frame written by [`encode_watch_event`] (the length prefix
/// included; `frame` must hold exactly one frame) back to its type and object.
pub fn decode_watch_event(frame: &[u8]) -> Result<(String, Value), WireError> {
    envelope::decode_watch_event(frame)
}

/// Whether `apiVersion`/`kind` has a protobuf schema (built-in kinds, their
/// lists, and meta kinds such as `Status` or `DeleteOptions` in any version).
pub fn supports(api_version: &str, kind: &str) -> bool {
    schema::Schema::get()
        .message_for(api_version, kind)
        .is_some()
}

/// Why a body could not be converted. Messages name the kind and the JSON
/// path of the offending field.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("not a Kubernetes protobuf message: it does not start with the \"k8s\\0\" prefix")]
    MissingMagic,
    #[error("malformed protobuf {what}: {source}")]
    Malformed {
        what: String,
        #[source]
        source: prost::DecodeError,
    },
    #[error("the protobuf envelope has no {0}")]
    EmptyTypeMeta(&'static str),
    #[error("no protobuf schema for apiVersion {api_version:?} kind {kind:?}")]
    UnsupportedKind { api_version: String, kind: String },
    #[error("unsupported protobuf envelope {what} {value:?}")]
    UnsupportedEnvelope { what: &'static str, value: String },
    #[error("cannot encode to protobuf: the object has no string {0:?}")]
    MissingTypeMeta(&'static str),
    #[error("{kind} {path}: {reason}")]
    Field {
        kind: String,
        path: String,
        reason: String,
    },
    #[error("objects nested in RawExtensions more than {0} deep")]
    TooDeep(usize),
    #[error("watch frame: {0}")]
    Frame(String),
}
