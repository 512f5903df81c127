//! The harness's one error type.

use std::path::PathBuf;

use prescale_collector::CollectorError;
use prescale_features::FeatureError;
use prescale_predictor::PredictError;
use thiserror::Error;

/// Why a harness command could not run.
#[derive(Debug, Error)]
pub enum HarnessError {
    /// A setting cannot work; names the option and what is wrong with it.
    #[error("invalid {option}: {problem}")]
    InvalidOption {
        /// The option, as written on the command line (e.g. `--warmup`).
        option: &'static str,
        /// What is wrong, with the value seen.
        problem: String,
    },
    /// A trace or calendar file could not be read.
    #[error(transparent)]
    Input(#[from] CollectorError),
    /// The trace holds no usable data where it is needed.
    #[error("trace {trace}: {problem}")]
    Trace {
        /// The trace's name (its file).
        trace: String,
        /// What is missing.
        problem: String,
    },
    /// A model could not be fitted where the backtest needs its first one.
    #[error("policy {policy}: first fit at {at} failed: {source}")]
    Fit {
        /// The policy whose model failed.
        policy: &'static str,
        /// The fit time.
        at: String,
        /// The predictor's error.
        source: PredictError,
    },
    /// The event uplift table could not be measured.
    #[error("measuring event uplifts: {0}")]
    Uplift(#[from] FeatureError),
    /// The LLM predictor could not be built (bad config, unreadable API key).
    #[error("LLM predictor: {0}")]
    Llm(PredictError),
    /// A file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The simulation itself failed (a runtime could not start, a worker died).
    #[error("simulation of {policy}: {problem}")]
    Simulation {
        /// The policy being simulated.
        policy: &'static str,
        /// What went wrong.
        problem: String,
    },
}
