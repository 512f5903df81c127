//! [`FeatureFrame`]: the plain result of feature engineering, and the names of its columns.

use chrono::{DateTime, Duration, Utc};

/// Feature columns on the history's grid: one timestamp per step and one `f64` per step and column.
///
/// Undefined values (a missing input point, a lag reaching before the history, a rolling
/// window with too few present points, no upcoming event of a kind) are `NaN`, never zero.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureFrame {
    timestamps: Vec<DateTime<Utc>>,
    names: Vec<String>,
    columns: Vec<Vec<f64>>,
}

impl FeatureFrame {
    /// A frame from parts that the builder already checked to be of equal length.
    pub(crate) fn from_parts(timestamps: Vec<DateTime<Utc>>, named: Vec<(String, Vec<f64>)>) -> Self {
        let (names, columns) = named.into_iter().unzip();
        Self { timestamps, names, columns }
    }

    /// Number of steps (rows).
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// Whether the frame has no step.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// Start time of each step.
    pub fn timestamps(&self) -> &[DateTime<Utc>] {
        &self.timestamps
    }

    /// Column names, in a stable order (see [`columns`](crate::columns)).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The column called `name`, one value per step.
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.names.iter().position(|n| n == name).map(|i| self.columns[i].as_slice())
    }

    /// Every column with its name, in the order of [`names`](Self::names).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[f64])> {
        self.names.iter().map(String::as_str).zip(self.columns.iter().map(Vec::as_slice))
    }
}

/// Names of the columns of a [`FeatureFrame`].
///
/// Fixed columns are constants; columns that depend on a rolling window or an event kind
/// are named by the functions below. Calendar columns are in UTC.
pub mod columns {
    use super::Duration;

    /// The history itself (`NaN` where missing).
    pub const VALUE: &str = "value";
    /// Minutes since midnight UTC, `0 <= x < 1440` (fractional for sub-minute steps).
    pub const MINUTE_OF_DAY: &str = "minute_of_day";
    /// `sin(2π · minute_of_day / 1440)`.
    pub const MINUTE_OF_DAY_SIN: &str = "minute_of_day_sin";
    /// `cos(2π · minute_of_day / 1440)`.
    pub const MINUTE_OF_DAY_COS: &str = "minute_of_day_cos";
    /// Day of the week, 0 = Monday .. 6 = Sunday (UTC).
    pub const DAY_OF_WEEK: &str = "day_of_week";
    /// `sin(2π · day_of_week / 7)`.
    pub const DAY_OF_WEEK_SIN: &str = "day_of_week_sin";
    /// `cos(2π · day_of_week / 7)`.
    pub const DAY_OF_WEEK_COS: &str = "day_of_week_cos";
    /// The value one step earlier.
    pub const LAG_1_STEP: &str = "lag_1_step";
    /// The value one day earlier.
    pub const LAG_1_DAY: &str = "lag_1_day";
    /// The value one week earlier.
    pub const LAG_1_WEEK: &str = "lag_1_week";
    /// 1 when any event overlaps the step, else 0.
    pub const EVENT_ACTIVE: &str = "event_active";
    /// Minutes from the start of the most recently started active event to the step's start
    /// (0 while the event starts inside the step); `NaN` when no event is active.
    pub const EVENT_MINUTES_SINCE_START: &str = "event_minutes_since_start";

    /// Trailing mean over `window`, the current step included.
    pub fn rolling_mean(window: Duration) -> String {
        format!("rolling_mean_{}", label(window))
    }

    /// Trailing sample standard deviation (ddof 1) over `window`, the current step included.
    pub fn rolling_std(window: Duration) -> String {
        format!("rolling_std_{}", label(window))
    }

    /// Trailing maximum over `window`, the current step included.
    pub fn rolling_max(window: Duration) -> String {
        format!("rolling_max_{}", label(window))
    }

    /// Change of the trailing mean over `window` against the mean of the window before it,
    /// per step: `(mean[t] - mean[t - w]) / w` with `w` the window in steps. On a line of
    /// slope `a` per step it equals `a`.
    pub fn trend(window: Duration) -> String {
        format!("trend_{}", label(window))
    }

    /// 1 when an event of `kind` overlaps the step, else 0.
    pub fn event_active_of_kind(kind: &str) -> String {
        format!("event_active:{kind}")
    }

    /// Minutes from the step's start to the next start of an event of `kind` at or after it;
    /// `NaN` when none is scheduled.
    pub fn event_minutes_until(kind: &str) -> String {
        format!("event_minutes_until:{kind}")
    }

    /// A short label for a window: `15m`, `1h`, `1d`, or seconds (`90s`) when nothing rounder fits.
    pub fn label(window: Duration) -> String {
        let secs = window.num_seconds();
        if secs > 0 && secs % 86_400 == 0 {
            format!("{}d", secs / 86_400)
        } else if secs > 0 && secs % 3_600 == 0 {
            format!("{}h", secs / 3_600)
        } else if secs > 0 && secs % 60 == 0 {
            format!("{}m", secs / 60)
        } else {
            format!("{secs}s")
        }
    }
}
