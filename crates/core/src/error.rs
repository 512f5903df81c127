//! The error type of the core crate: malformed values handed to constructors and parsers.

use thiserror::Error;

/// Errors raised when a core value is built from invalid parts.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CoreError {
    /// A series was given a step of zero seconds.
    #[error("series step must be at least one second")]
    ZeroStep,
    /// A forecast source label is not one of the closed set.
    #[error(
        "unknown forecast source {0:?}: expected statistical, statistical+events, llm:<model>, optionally followed by \" (fallback: <reason>)\""
    )]
    UnknownSource(String),
    /// Two series that must share a grid do not.
    #[error("series grids differ: {0}")]
    GridMismatch(String),
}
