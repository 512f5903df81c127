//! What a predictor is asked.

use chrono::{DateTime, Utc};
use prescale_core::{ScheduledEvent, TimeSeries, UpliftTable};

/// One forecast request.
#[derive(Debug, Clone)]
pub struct PredictRequest {
    /// Observed history; only points before `at` may be used.
    pub history: TimeSeries,
    /// Scheduled events known at `at` (past ones included, for context).
    pub events: Vec<ScheduledEvent>,
    /// The uplifts learned from past events, per kind.
    pub uplift: UpliftTable,
    /// The forecast origin: the first forecast step starts here.
    pub at: DateTime<Utc>,
    /// Number of steps (of the history's step) to forecast.
    pub horizon_steps: usize,
}
