//! The Kubernetes resource model, without IO.
//!
//! Everything here is pure: selectors, quantities, validators and patch
//! application work on plain values, so the API server, the controllers and the
//! tests all share one implementation that behaves (and words its errors) the
//! way upstream Kubernetes v1.32 does.

pub mod apply;
pub mod defaults;
pub mod fields;
pub mod gofmt;
pub mod kinds;
pub mod labels;
pub mod patch;
pub mod quantity;
pub mod validation;

pub use fields::FieldSelector;
pub use labels::LabelSelector;
pub use quantity::Quantity;
pub use validation::field::{ErrorList, FieldError, FieldErrorType, Path};
