//! The error type of the features crate: bad history, bad events, bad configuration.

use chrono::{DateTime, Utc};
use thiserror::Error;

/// Errors raised while building features or measuring uplifts.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FeatureError {
    /// The history has no point at all, so there is nothing to build features on.
    #[error("history has no points")]
    EmptyHistory,
    /// A history value is NaN or infinite; a gap must be a missing point (`None`) instead.
    #[error("history value at index {index} ({timestamp}) is {value}: values must be finite, mark gaps as missing")]
    NonFiniteValue {
        /// Index of the point in the history.
        index: usize,
        /// Start time of that point.
        timestamp: DateTime<Utc>,
        /// The offending value.
        value: f64,
    },
    /// The series step does not divide a day, so day and week lags and clock windows are undefined.
    #[error(
        "series step of {step_secs} s does not divide a day (86400 s): day lags and clock windows need one that does"
    )]
    StepDoesNotDivideDay {
        /// The series step in seconds.
        step_secs: u32,
    },
    /// A configuration field holds a value that cannot be used.
    #[error("invalid configuration: {field}: {problem}")]
    InvalidConfig {
        /// The field's path, e.g. `rolling_windows[1]`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// An event failed validation.
    #[error("events[{index}] ({id:?}) is invalid: {problems}")]
    InvalidEvent {
        /// Position of the event in the input slice.
        index: usize,
        /// The event's id as given.
        id: String,
        /// Every problem found, `field: problem` joined by `; `.
        problems: String,
    },
    /// The polars pipeline failed; the message is polars' own.
    #[error("polars failed while {stage}: {message}")]
    Polars {
        /// What the pipeline was doing.
        stage: &'static str,
        /// The polars error message.
        message: String,
    },
}
