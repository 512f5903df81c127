//! The one error type of the collector: every way a metric or event source can fail.
//!
//! No reqwest, csv or serde type appears here: transport failures are carried as
//! strings and status codes, so callers can match on the variant without pinning
//! this crate's HTTP stack.

use std::path::PathBuf;

use prescale_core::FieldError;
use thiserror::Error;

use crate::Signal;

/// Errors raised by metric and event sources.
#[derive(Debug, Error)]
pub enum CollectorError {
    /// Prometheus answered `status: "error"`, e.g. for a PromQL syntax error.
    #[error("Prometheus rejected query {query:?} ({error_type}): {message}")]
    Query {
        /// The PromQL that was sent.
        query: String,
        /// Prometheus' `errorType`, e.g. `bad_data` or `execution`.
        error_type: String,
        /// Prometheus' `error` text.
        message: String,
    },
    /// The server answered with an HTTP error status and no Prometheus error body.
    #[error("{url} answered HTTP {status}: {body}")]
    Http {
        /// The requested URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, for diagnosis.
        body: String,
    },
    /// The request did not reach the server or the connection broke (refused, reset, DNS).
    #[error("request to {url} failed: {message}")]
    Transport {
        /// The requested URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// No answer within the deadline, or Prometheus itself gave up (`errorType: timeout`).
    #[error("query {query:?} timed out after {timeout_ms} ms")]
    Timeout {
        /// The PromQL that was sent.
        query: String,
        /// The deadline that passed, in milliseconds.
        timeout_ms: u64,
    },
    /// The server answered, but not in the shape the Prometheus HTTP API documents.
    #[error("malformed response to query {query:?}: {message}")]
    MalformedResponse {
        /// The PromQL that was sent.
        query: String,
        /// What is wrong with the body.
        message: String,
    },
    /// The query matched no series at all over the whole requested time.
    #[error("query {query:?} returned no data")]
    EmptyResult {
        /// The PromQL that was sent.
        query: String,
    },
    /// The query returned several series where one was expected (aggregate it, e.g. with `sum`).
    #[error("query {query:?} returned {count} series; a signal query must return one (wrap it in sum(...))")]
    MultipleSeries {
        /// The PromQL that was sent.
        query: String,
        /// How many series came back.
        count: usize,
    },
    /// A time range or step that cannot be served.
    #[error("invalid range: {0}")]
    InvalidRange(String),
    /// A source was configured with an unusable value.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A workload name that cannot be put into a query safely.
    #[error("invalid workload {workload}: {reason}")]
    InvalidWorkload {
        /// The workload as `namespace/name`.
        workload: String,
        /// What is wrong with it.
        reason: String,
    },
    /// This source does not provide the requested signal.
    #[error("{source_name} does not provide the {signal} signal")]
    UnsupportedSignal {
        /// The signal that was asked for.
        signal: Signal,
        /// Which source was asked.
        source_name: String,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A row of a CSV file is malformed.
    #[error("{file}: line {line}, column {column}: {message}")]
    BadRow {
        /// The file (or the name given to a reader).
        file: String,
        /// 1-based line number.
        line: u64,
        /// The column's header name, or its 1-based position when the header is the problem.
        column: String,
        /// What is wrong.
        message: String,
    },
    /// A YAML calendar is malformed.
    #[error("{file}: {location}: {message}")]
    BadCalendar {
        /// The file (or the name given to a reader).
        file: String,
        /// Where: `line 4 column 3`, or the entry, e.g. `events[2]`.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// A resampling request that cannot be met without inventing data.
    #[error("cannot resample {file} from {from_secs} s to {to_secs} s: {reason}")]
    Resample {
        /// The file.
        file: String,
        /// The file's own step in seconds.
        from_secs: i64,
        /// The requested step in seconds.
        to_secs: i64,
        /// Why not.
        reason: String,
    },
    /// An event failed validation.
    #[error("invalid event {id:?}: {}", join_problems(problems))]
    InvalidEvent {
        /// The event's id.
        id: String,
        /// Every invalid field.
        problems: Vec<FieldError>,
    },
    /// An event with this id already exists for the workload.
    #[error("event {id:?} already exists for {workload}")]
    DuplicateEvent {
        /// The workload as `namespace/name`.
        workload: String,
        /// The event id.
        id: String,
    },
}

fn join_problems(problems: &[FieldError]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}
