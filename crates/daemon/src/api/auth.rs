//! Bearer-token authentication for mutating requests.

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::DaemonError;
use crate::config::SecretSource;

/// The token mutating requests must present as `Authorization: Bearer <token>`.
#[derive(Clone)]
pub struct BearerToken(String);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

impl BearerToken {
    /// A token from its value; it must be at least 16 characters without surrounding whitespace.
    pub fn new(token: impl Into<String>) -> Result<Self, DaemonError> {
        let token = token.into().trim().to_string();
        if token.len() < 16 {
            return Err(DaemonError::Secret {
                source_name: "API token".into(),
                message: format!("the token must be at least 16 characters, got {}", token.len()),
            });
        }
        Ok(Self(token))
    }

    /// Read the token from its configured source.
    pub fn from_source(source: &SecretSource) -> Result<Self, DaemonError> {
        let (name, value) = read_secret(source)?;
        Self::new(value).map_err(|e| match e {
            DaemonError::Secret { message, .. } => DaemonError::Secret { source_name: name, message },
            other => other,
        })
    }

    /// Check the request's `Authorization` header in constant time.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized("this request needs an Authorization: Bearer <token> header"));
        };
        let presented = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).unwrap_or("");
        if bool::from(presented.as_bytes().ct_eq(self.0.as_bytes())) {
            Ok(())
        } else {
            Err(ApiError::unauthorized("invalid bearer token"))
        }
    }
}

/// Read a secret: `(where it came from, its trimmed value)`.
pub fn read_secret(source: &SecretSource) -> Result<(String, String), DaemonError> {
    match source {
        SecretSource::File(path) => {
            let name = path.display().to_string();
            let value = std::fs::read_to_string(path)
                .map_err(|e| DaemonError::Secret { source_name: name.clone(), message: e.to_string() })?;
            Ok((name, value.trim().to_string()))
        }
        SecretSource::Env(var) => {
            let name = format!("environment variable {var}");
            let value = std::env::var(var)
                .map_err(|e| DaemonError::Secret { source_name: name.clone(), message: e.to_string() })?;
            Ok((name, value.trim().to_string()))
        }
    }
}
