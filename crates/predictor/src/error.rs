//! The predictor crate's error type.

use thiserror::Error;

/// Why a predictor could not forecast.
#[derive(Debug, Error)]
pub enum PredictError {
    /// Not enough usable history to forecast.
    #[error("not enough history: {0}")]
    InsufficientHistory(String),
    /// The request itself is malformed.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A fitting configuration is invalid (names the field).
    #[error("invalid fit config: {0}")]
    InvalidConfig(String),
    /// The predictor did not answer within its deadline.
    #[error("timeout after {0:?}")]
    Timeout(std::time::Duration),
    /// A model artifact could not be read or written.
    #[error("model artifact: {0}")]
    Artifact(String),
    /// An external predictor (for example an LLM endpoint) failed.
    #[error("{0}")]
    Upstream(String),
}
