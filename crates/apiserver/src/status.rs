//! API errors as Kubernetes `Status` objects, with upstream's codes,
//! reasons and message wording (k8s.io/apimachinery/pkg/api/errors).

use serde_json::{json, Value};

use crate::resources::ResourceInfo;

/// One cause of an `Invalid` error: a field and what is wrong with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, ...
    pub reason: String,
    pub message: String,
    pub field: String,
}

/// An error answered to a client.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details` of the Status, when upstream sets them.
    pub details: Option<Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

fn resource_details(r: &ResourceInfo, name: &str) -> Value {
    let mut d = json!({ "name": name, "kind": r.resource });
    if !r.group.is_empty() {
        d["group"] = json!(r.group);
    }
    d
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn not_found(r: &ResourceInfo, name: &str) -> ApiError {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: format!("{} \"{}\" not found", r.qualified_resource(), name),
            details: Some(resource_details(r, name)),
        }
    }

    /// A path the server does not serve at all.
    pub fn path_not_found() -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn already_exists(r: &ResourceInfo, name: &str) -> ApiError {
        ApiError {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{} \"{}\" already exists", r.qualified_resource(), name),
            details: Some(resource_details(r, name)),
        }
    }

    /// The optimistic-concurrency failure of an update.
    pub fn conflict(r: &ResourceInfo, name: &str) -> ApiError {
        Self::conflict_because(
            r,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn conflict_because(r: &ResourceInfo, name: &str, why: &str) -> ApiError {
        ApiError {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                r.qualified_resource(),
                name,
                why
            ),
            details: Some(resource_details(r, name)),
        }
    }

    /// 422 with one cause per field error, worded as upstream's
    /// `NewInvalid`.
    pub fn invalid(r: &ResourceInfo, name: &str, causes: Vec<Cause>) -> ApiError {
        let text: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let joined = if text.len() == 1 {
            text[0].clone()
        } else {
            format!("[{}]", text.join(", "))
        };
        let mut details = json!({ "name": name, "kind": r.kind });
        if !r.group.is_empty() {
            details["group"] = json!(r.group);
        }
        details["causes"] = Value::Array(
            causes
                .iter()
                .map(|c| json!({ "reason": c.reason, "message": c.message, "field": c.field }))
                .collect(),
        );
        ApiError {
            code: 422,
            reason: "Invalid",
            message: format!("{} \"{}\" is invalid: {}", r.qualified_kind(), name, joined),
            details: Some(details),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    pub fn gone(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> ApiError {
        ApiError::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type:?})"))
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "Forbidden", message)
    }

    pub fn internal(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(503, "ServiceUnavailable", message)
    }

    /// The `Status` body.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if self.reason.is_empty() {
            if let Some(o) = s.as_object_mut() {
                o.remove("reason");
            }
        }
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

/// A `Status` reporting success (e.g. the answer to some deletes).
pub fn success_status(details: Option<Value>) -> Value {
    let mut s =
        json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success" });
    if let Some(d) = details {
        s["details"] = d;
    }
    s
}

/// Maps a datastore failure that the registry did not turn into something
/// more specific. Internals are logged, not leaked.
pub fn from_store(r: &ResourceInfo, name: &str, e: store::StoreError) -> ApiError {
    use store::StoreError as E;
    match e {
        E::AlreadyExists { .. } => ApiError::already_exists(r, name),
        E::NotFound { .. } => ApiError::not_found(r, name),
        E::Conflict { .. } => ApiError::conflict(r, name),
        E::Compacted {
            requested,
            compacted,
        } => ApiError::gone(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        E::ValueTooLarge { .. } => ApiError::too_large(store::MAX_VALUE_BYTES),
        E::FutureRevision { requested, current } => ApiError {
            code: 504,
            reason: "Timeout",
            message: format!("Too large resource version: {requested}, current: {current}"),
            details: Some(
                json!({ "causes": [{ "reason": "ResourceVersionTooLarge", "message": "Too large resource version" }], "retryAfterSeconds": 1 }),
            ),
        },
        other => {
            tracing::error!(resource = r.resource, name, error = %other, "datastore error");
            ApiError::internal("the datastore failed; see the server log")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::lookup;

    #[test]
    fn already_exists_reads_as_upstream() {
        let cm = lookup("", "v1", "configmaps").unwrap();
        let s = ApiError::already_exists(cm, "x").to_status();
        assert_eq!(s["message"], "configmaps \"x\" already exists");
        assert_eq!(s["reason"], "AlreadyExists");
        assert_eq!(s["code"], 409);
        assert_eq!(s["metadata"], json!({}));
        assert_eq!(s["details"], json!({ "name": "x", "kind": "configmaps" }));
    }

    #[test]
    fn not_found_of_a_grouped_resource_names_the_group() {
        let d = lookup("apps", "v1", "deployments").unwrap();
        let s = ApiError::not_found(d, "web").to_status();
        assert_eq!(s["message"], "deployments.apps \"web\" not found");
        assert_eq!(
            s["details"],
            json!({ "name": "web", "group": "apps", "kind": "deployments" })
        );
    }

    #[test]
    fn invalid_lists_causes_and_joins_several() {
        let d = lookup("apps", "v1", "deployments").unwrap();
        let one = ApiError::invalid(
            d,
            "web",
            vec![Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: "spec.selector".into(),
            }],
        );
        assert_eq!(
            one.message,
            "Deployment.apps \"web\" is invalid: spec.selector: Required value"
        );
        let two = ApiError::invalid(
            d,
            "web",
            vec![
                Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value".into(),
                    field: "spec.selector".into(),
                },
                Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value".into(),
                    field: "spec.template".into(),
                },
            ],
        );
        assert_eq!(
            two.message,
            "Deployment.apps \"web\" is invalid: [spec.selector: Required value, spec.template: Required value]"
        );
        assert_eq!(two.code, 422);
    }

    #[test]
    fn conflict_uses_the_upstream_retry_hint() {
        let cm = lookup("", "v1", "configmaps").unwrap();
        assert_eq!(
            ApiError::conflict(cm, "x").message,
            "Operation cannot be fulfilled on configmaps \"x\": the object has been modified; please apply your changes to the latest version and try again"
        );
    }
}
