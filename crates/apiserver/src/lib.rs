//! krate's Kubernetes API server. Only this crate touches the [`store`];
//! everything else is a client of the REST API it serves.
//!
//! A request goes: TLS → authentication → routing ([`request`]) →
//! authorization → the generic registry ([`registry`]), which applies the
//! kind's [`strategy`] (defaulting, validation, status handling) and writes
//! JSON to the store. Errors are Kubernetes `Status` objects ([`status`]).

pub mod admission;
pub mod authz;
pub mod cache;
pub mod convert;
pub mod crd;
pub mod csr;
pub mod discovery;
pub mod duplicates;
pub mod filter;
pub mod kubelet;
pub mod metrics;
pub mod namespaces;
pub mod node_authz;
pub mod node_restriction;
pub mod partial;
pub mod registry;
pub mod request;
pub mod resources;
pub mod scan;
pub mod self_metrics;
pub mod server;
pub mod status;
pub mod strategy;
pub mod subresources;
pub mod table;
pub mod tls;
pub mod tokens;
pub mod watch;
