//! The daemon library's one error type.

use prescale_core::FieldError;
use thiserror::Error;

/// Everything that can stop the daemon or one of its commands.
#[derive(Debug, Error)]
pub enum DaemonError {
    /// The configuration file could not be read or parsed at all.
    #[error("cannot load configuration {file}: {message}")]
    ConfigLoad {
        /// The file.
        file: String,
        /// What went wrong.
        message: String,
    },
    /// The configuration was read but has problems; every one is listed.
    #[error("{file}: {} problem(s):\n{}", problems.len(), list(problems))]
    InvalidConfig {
        /// The file.
        file: String,
        /// Every problem, with its key path.
        problems: Vec<FieldError>,
    },
    /// A secret (API token, LLM key) could not be read.
    #[error("cannot read secret from {source_name}: {message}")]
    Secret {
        /// The file or environment variable.
        source_name: String,
        /// What went wrong.
        message: String,
    },
    /// The event store could not be read or written.
    #[error("event store {location}: {message}")]
    Store {
        /// The file or ConfigMap.
        location: String,
        /// What went wrong.
        message: String,
    },
    /// An input file (history, events) could not be used.
    #[error("{file}: {message}")]
    Input {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A command-line argument is invalid.
    #[error("invalid argument {argument}: {message}")]
    Argument {
        /// The argument, e.g. `--at`.
        argument: String,
        /// What is wrong.
        message: String,
    },
    /// A pipeline stage (collector, predictor, provisioner, Kubernetes) failed.
    #[error("{stage}: {message}")]
    Stage {
        /// The stage.
        stage: &'static str,
        /// What failed.
        message: String,
    },
    /// The API server could not listen or failed.
    #[error("API server on {address}: {message}")]
    Server {
        /// The listen address.
        address: String,
        /// What went wrong.
        message: String,
    },
}

fn list(problems: &[FieldError]) -> String {
    problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
}
