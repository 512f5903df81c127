//! The load generator: open-loop constant arrival rate following a schedule.
//!
//! - [`RateSchedule`]: named phases (baseline, ramp-up, surge, ...) of linear rate segments
//!   over scenario time; rates are requests per wall-clock second.
//! - [`LoadGenerator`]: sends each request at its scheduled time in its own task, whatever the
//!   earlier responses do (no coordinated omission); a request without a complete response
//!   within the timeout is an error.
//! - [`Recorder`]: HDR histograms (`hdrhistogram`) of successful latencies and error counts
//!   per window of scenario time (10 s by default) and per phase, measured from each
//!   request's intended send time.
//! - [`LoadArgs`]: the `prescale-harness load` subcommand, a fixed rate against one URL.

mod cli;
mod generator;
mod record;
mod schedule;

pub use cli::{LoadArgs, run_cli, summary_text};
pub use generator::{LoadConfig, LoadGenerator};
pub use record::{LatencySummary, Outcome, Recorder, Tally, WindowTally};
pub use schedule::{RateSchedule, Segment};

use thiserror::Error;

/// Why the load generator cannot run.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The schedule is malformed; says which segment and why.
    #[error("load schedule: {0}")]
    Schedule(String),
    /// A setting cannot work (URL, time scale, timeout, window).
    #[error("load generator: {0}")]
    Config(String),
    /// A histogram could not be created or merged.
    #[error("latency histogram: {0}")]
    Histogram(String),
    /// A request task failed (panicked or was cancelled).
    #[error("request task: {0}")]
    Task(String),
}
