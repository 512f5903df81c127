//! Kubernetes `Status` errors: every failed API request answers with one.

use serde_json::{Value, json};

use crate::resources::ResourceDef;

/// A failed API request, rendered as a `v1 Status` body with the same HTTP code.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Machine-readable reason (`NotFound`, `Conflict`, ...).
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// `details` of the Status, when the error is about one object.
    pub details: Option<Value>,
}

fn details(res: &ResourceDef, name: &str) -> Option<Value> {
    Some(json!({"name": name, "group": res.group, "kind": res.plural}))
}

impl ApiError {
    /// 404 for a missing object.
    pub fn not_found(res: &ResourceDef, name: &str) -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: format!("{} \"{name}\" not found", res.qualified()),
            details: details(res, name),
        }
    }

    /// 404 for a path the server does not serve.
    pub fn no_route(path: &str) -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: format!("the server could not find the requested resource ({path})"),
            details: None,
        }
    }

    /// 405 for a verb a resource does not support.
    pub fn method_not_allowed(method: &str, what: &str) -> Self {
        Self {
            code: 405,
            reason: "MethodNotAllowed",
            message: format!("the server does not allow this method on the requested resource: {method} {what}"),
            details: None,
        }
    }

    /// 409 for a stale `resourceVersion`.
    pub fn conflict(res: &ResourceDef, name: &str) -> Self {
        Self {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                res.qualified()
            ),
            details: details(res, name),
        }
    }

    /// 409 for a create of an existing name.
    pub fn already_exists(res: &ResourceDef, name: &str) -> Self {
        Self {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{} \"{name}\" already exists", res.qualified()),
            details: details(res, name),
        }
    }

    /// 400 for a body or query the server cannot read.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self { code: 400, reason: "BadRequest", message: message.into(), details: None }
    }

    /// 422 for an object that fails validation.
    pub fn invalid(res: &ResourceDef, name: &str, message: impl Into<String>) -> Self {
        Self {
            code: 422,
            reason: "Invalid",
            message: format!("{} \"{name}\" is invalid: {}", res.kind, message.into()),
            details: details(res, name),
        }
    }

    /// 415 for a body type the verb does not accept.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/merge-patch+json, application/strategic-merge-patch+json, application/json-patch+json, application/apply-patch+yaml (got {content_type:?})"
            ),
            details: None,
        }
    }

    /// 410 for a watch from a resourceVersion older than the server keeps.
    pub fn expired(rv: u64) -> Self {
        Self { code: 410, reason: "Expired", message: format!("too old resource version: {rv}"), details: None }
    }

    /// 500 for a failure inside the server.
    pub fn internal(message: impl Into<String>) -> Self {
        Self { code: 500, reason: "InternalError", message: message.into(), details: None }
    }

    /// The `Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            status["details"] = d.clone();
        }
        status
    }
}

/// A `Status` of success, as some deletes answer.
pub(crate) fn success(res: &ResourceDef, name: &str, uid: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": res.group, "kind": res.plural, "uid": uid},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;

    #[test]
    fn conflict_status_has_the_kubernetes_shape() {
        let s = ApiError::conflict(resources::deployments(), "web").to_status();
        assert_eq!(s["kind"], "Status");
        assert_eq!(s["apiVersion"], "v1");
        assert_eq!(s["status"], "Failure");
        assert_eq!(s["reason"], "Conflict");
        assert_eq!(s["code"], 409);
        assert!(s["message"].as_str().unwrap().contains("deployments.apps \"web\""));
        assert_eq!(s["details"]["name"], "web");
    }
}
