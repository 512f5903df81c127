//! The API's JSON errors: `{"error": ..., "field": ..., "problem": ...}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prescale_core::FieldError;
use serde::Serialize;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

#[derive(Debug, Clone, Serialize)]
struct ErrorBody {
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    problems: Vec<FieldError>,
}

impl ApiError {
    /// An error with a status and a message.
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self { status, body: ErrorBody { error: error.into(), field: None, problem: None, problems: Vec::new() } }
    }

    /// 400 for a body that is not the expected JSON, naming the field when known.
    pub fn bad_request(field: Option<String>, problem: impl Into<String>) -> Self {
        let problem = problem.into();
        let error = match &field {
            Some(f) => format!("invalid request body: {f}: {problem}"),
            None => format!("invalid request body: {problem}"),
        };
        Self {
            status: StatusCode::BAD_REQUEST,
            body: ErrorBody { error, field, problem: Some(problem), problems: vec![] },
        }
    }

    /// 422 listing every invalid field; `field`/`problem` name the first.
    pub fn invalid(problems: Vec<FieldError>) -> Self {
        let first = problems.first().cloned();
        let error =
            format!("invalid input: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "));
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: ErrorBody {
                error,
                field: first.as_ref().map(|f| f.field.clone()),
                problem: first.map(|f| f.problem),
                problems,
            },
        }
    }

    /// 404 for a workload that is not configured.
    pub fn unknown_workload(namespace: &str, name: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("workload {namespace}/{name} is not configured"))
    }

    /// 401 for a missing or wrong bearer token.
    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// The same error with another status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Parse a JSON body into `T`, mapping serde's first error to a 400 naming the field.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // `unknown field `x`` and `missing field `x`` name the field inside the message.
        let named = backticked(&message);
        // serde_path_to_error's path already ends at an unknown field, but stops at the
        // parent of a missing one.
        let field = match (path.as_str(), named) {
            (".", Some(n)) => Some(n),
            (".", None) => None,
            (p, Some(n)) if message.starts_with("missing field") => Some(format!("{p}.{n}")),
            (p, _) => Some(p.to_string()),
        };
        ApiError::bad_request(field, strip_position(&message))
    })?;
    de.end().map_err(|e| ApiError::bad_request(None, strip_position(&e.to_string())))?;
    Ok(value)
}

/// The first `backticked` word of a serde message.
fn backticked(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

/// Drop serde_json's " at line 1 column 42" suffix.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}
