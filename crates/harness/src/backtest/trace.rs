//! The trace a backtest replays: demand per decision step, and the optional event calendar.

use std::path::Path;

use chrono::Duration;
use prescale_collector::{Aggregate, CsvHistory, EventCalendar};
use prescale_core::{ScheduledEvent, TimeSeries};

use crate::HarnessError;

/// Demand per decision step (requests per step, `None` where the trace has a gap) and the
/// events an operator announced, if a calendar was given.
#[derive(Debug, Clone)]
pub struct Trace {
    /// What to call the trace in reports (its file name).
    pub name: String,
    /// Requests per step on the decision grid.
    pub demand: TimeSeries,
    /// The calendar, when one was given (an empty calendar still asks for `event_capture`).
    pub events: Option<Vec<ScheduledEvent>>,
}

impl Trace {
    /// Read a `timestamp,requests` CSV and an optional calendar. The decision step is `step`
    /// or the trace's own step, whichever is coarser; a coarser `step` must be a multiple of
    /// the trace's.
    pub fn load(trace: &Path, events: Option<&Path>, step: Duration) -> Result<Self, HarnessError> {
        let history = CsvHistory::from_path(trace)?;
        let file_step = history.step();
        let step = step.max(file_step);
        if step.num_seconds() % file_step.num_seconds() != 0 {
            return Err(HarnessError::InvalidOption {
                option: "--step",
                problem: format!(
                    "{} s is not a multiple of the trace's {} s step ({})",
                    step.num_seconds(),
                    file_step.num_seconds(),
                    trace.display()
                ),
            });
        }
        let demand = history.series("requests", step, Aggregate::Sum)?;
        let events = events.map(|path| EventCalendar::from_path(path).map(|c| c.all().to_vec())).transpose()?;
        let name = trace.file_name().map_or_else(|| trace.display().to_string(), |n| n.to_string_lossy().into_owned());
        Ok(Self { name, demand, events })
    }
}
