//! File-backed sources: metric history as CSV, event calendars as CSV or YAML.

mod calendar;
mod history;

pub use calendar::EventCalendar;
pub use history::{Aggregate, CsvHistory};

use chrono::{DateTime, Utc};

/// Parses an RFC 3339 timestamp (any offset) as UTC.
pub(crate) fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{text:?} is not an RFC 3339 timestamp such as 1995-07-01T04:00:00Z ({e})"))
}

/// The line a csv error points at, or 0 when the reader cannot tell.
pub(crate) fn csv_line(error: &csv::Error) -> u64 {
    error.position().map(csv::Position::line).unwrap_or(0)
}
