//! The one error type of the cluster crate.

use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong starting, driving or stopping the embedded cluster.
#[derive(Debug, Error)]
pub enum ClusterError {
    /// A configuration value cannot work; the message names the field.
    #[error("invalid cluster configuration: {0}")]
    Config(String),
    /// A listener could not be bound.
    #[error("could not listen for the {what} on {addr}: {source}")]
    Bind {
        /// Which listener (API server, service...).
        what: &'static str,
        /// The address asked for.
        addr: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The kubeconfig file could not be written.
    #[error("could not write the kubeconfig to {path}: {source}")]
    Kubeconfig {
        /// Where it was to go.
        path: PathBuf,
        /// The file system error.
        #[source]
        source: std::io::Error,
    },
    /// The cluster's API refused a request made through the library (same codes as over HTTP).
    #[error("{reason} ({code}): {message}")]
    Api {
        /// HTTP status code.
        code: u16,
        /// Kubernetes reason (`NotFound`, `Conflict`, `Invalid`...).
        reason: String,
        /// The message.
        message: String,
    },
    /// Something did not happen in time.
    #[error("timed out: {0}")]
    Timeout(String),
}

impl From<crate::status::ApiError> for ClusterError {
    fn from(e: crate::status::ApiError) -> Self {
        ClusterError::Api { code: e.code, reason: e.reason.to_string(), message: e.message }
    }
}
