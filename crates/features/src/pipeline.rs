//! [`build_features`]: the lazy polars pipeline for calendar, lag, rolling and trend columns,
//! joined with the event columns computed in plain Rust.

use chrono::{DateTime, Duration, Utc};
use polars::prelude::*;
use prescale_core::{ScheduledEvent, TimeSeries};

use crate::columns;
use crate::events::event_columns;
use crate::input::{check_events, check_history};
use crate::{FeatureError, FeatureFrame};

/// What [`build_features`] computes beyond the fixed columns.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureConfig {
    /// Trailing windows for the rolling mean, std, max and trend columns. Each must be a
    /// positive multiple of the history's step, and no two may be equal.
    pub rolling_windows: Vec<Duration>,
    /// Fraction of a window's points that must be present for its rolling statistics to be
    /// defined (`0 < x <= 1`); below it they are `NaN`. Missing points are skipped, not zeroed.
    pub min_window_coverage: f64,
}

impl Default for FeatureConfig {
    /// Windows of 15 minutes and 1 hour; a window needs half of its points.
    fn default() -> Self {
        Self { rolling_windows: vec![Duration::minutes(15), Duration::hours(1)], min_window_coverage: 0.5 }
    }
}

/// A rolling window resolved against the series step.
struct Window {
    duration: Duration,
    steps: usize,
    min_present: usize,
}

impl FeatureConfig {
    /// The windows in steps, after checking the configuration against a step.
    fn windows(&self, step_secs: u32) -> Result<Vec<Window>, FeatureError> {
        let coverage = self.min_window_coverage;
        if !(coverage > 0.0 && coverage <= 1.0) {
            return Err(FeatureError::InvalidConfig {
                field: "min_window_coverage".into(),
                problem: format!("must be in (0, 1], got {coverage}"),
            });
        }
        let mut windows: Vec<Window> = Vec::with_capacity(self.rolling_windows.len());
        for (i, &duration) in self.rolling_windows.iter().enumerate() {
            let secs = duration.num_seconds();
            let step = i64::from(step_secs);
            let invalid =
                |problem: String| FeatureError::InvalidConfig { field: format!("rolling_windows[{i}]"), problem };
            if secs <= 0 || secs % step != 0 || duration.subsec_nanos() != 0 {
                return Err(invalid(format!(
                    "{} ms is not a positive multiple of the {step_secs} s step",
                    duration.num_milliseconds()
                )));
            }
            if windows.iter().any(|w| w.duration == duration) {
                return Err(invalid(format!("window {} is listed twice", columns::label(duration))));
            }
            let steps = (secs / step) as usize;
            let min_present = ((coverage * steps as f64).ceil() as usize).clamp(1, steps);
            windows.push(Window { duration, steps, min_present });
        }
        Ok(windows)
    }
}

/// Build the feature columns of `history` (one row per step, see [`columns`] for every column).
///
/// The calendar, lag, rolling and trend columns come from one lazy polars query; the event
/// columns are a linear sweep in plain Rust. Events may lie anywhere in time: one after the
/// history still shows in `event_minutes_until:<kind>`. To get features for future steps
/// (calendar, lags, events), append missing points to the history up to the horizon.
///
/// Errors: an empty history, a non-finite value, a step that does not divide a day, an
/// invalid event or configuration.
pub fn build_features(
    history: &TimeSeries,
    events: &[ScheduledEvent],
    config: &FeatureConfig,
) -> Result<FeatureFrame, FeatureError> {
    let steps_per_day = check_history(history)?;
    check_events(events)?;
    let windows = config.windows(history.step_secs())?;

    let timestamps: Vec<DateTime<Utc>> = (0..history.len()).map(|i| history.timestamp(i)).collect();
    let mut named = series_columns(history, &timestamps, steps_per_day, &windows)?;
    named.extend(event_columns(history, events));
    Ok(FeatureFrame::from_parts(timestamps, named))
}

const TS: &str = "ts";

/// Run the lazy polars query and hand its columns back as plain vectors.
fn series_columns(
    history: &TimeSeries,
    timestamps: &[DateTime<Utc>],
    steps_per_day: usize,
    windows: &[Window],
) -> Result<Vec<(String, Vec<f64>)>, FeatureError> {
    let polars_err = |stage: &'static str| move |e: PolarsError| FeatureError::Polars { stage, message: e.to_string() };

    let ts_ms: Vec<i64> = timestamps.iter().map(DateTime::timestamp_millis).collect();
    let frame = DataFrame::new(
        history.len(),
        vec![Column::new(TS.into(), ts_ms), Column::new(columns::VALUE.into(), history.values().to_vec())],
    )
    .map_err(polars_err("assembling the input frame"))?;

    let value = || col(columns::VALUE);
    let ts = || col(TS);
    let tau = std::f64::consts::TAU;
    let minute_of_day = ts().dt().hour().cast(DataType::Float64) * lit(60.0)
        + ts().dt().minute().cast(DataType::Float64)
        + ts().dt().second().cast(DataType::Float64) / lit(60.0);
    // polars numbers weekdays 1 (Monday) to 7.
    let day_of_week = ts().dt().weekday().cast(DataType::Float64) - lit(1.0);

    let mut stage_one = vec![
        minute_of_day.alias(columns::MINUTE_OF_DAY),
        day_of_week.alias(columns::DAY_OF_WEEK),
        value().shift(lit(1i64)).alias(columns::LAG_1_STEP),
        value().shift(lit(steps_per_day as i64)).alias(columns::LAG_1_DAY),
        value().shift(lit(7 * steps_per_day as i64)).alias(columns::LAG_1_WEEK),
    ];
    for w in windows {
        let options =
            || RollingOptionsFixedWindow { window_size: w.steps, min_periods: w.min_present, ..Default::default() };
        stage_one.push(value().rolling_mean(options()).alias(columns::rolling_mean(w.duration)));
        stage_one.push(value().rolling_std(options()).alias(columns::rolling_std(w.duration)));
        stage_one.push(value().rolling_max(options()).alias(columns::rolling_max(w.duration)));
    }

    let mut stage_two = vec![
        (col(columns::MINUTE_OF_DAY) * lit(tau / 1440.0)).sin().alias(columns::MINUTE_OF_DAY_SIN),
        (col(columns::MINUTE_OF_DAY) * lit(tau / 1440.0)).cos().alias(columns::MINUTE_OF_DAY_COS),
        (col(columns::DAY_OF_WEEK) * lit(tau / 7.0)).sin().alias(columns::DAY_OF_WEEK_SIN),
        (col(columns::DAY_OF_WEEK) * lit(tau / 7.0)).cos().alias(columns::DAY_OF_WEEK_COS),
    ];
    for w in windows {
        let mean = || col(columns::rolling_mean(w.duration));
        stage_two.push(
            ((mean() - mean().shift(lit(w.steps as i64))) / lit(w.steps as f64)).alias(columns::trend(w.duration)),
        );
    }

    let mut order: Vec<String> = [
        columns::VALUE,
        columns::MINUTE_OF_DAY,
        columns::MINUTE_OF_DAY_SIN,
        columns::MINUTE_OF_DAY_COS,
        columns::DAY_OF_WEEK,
        columns::DAY_OF_WEEK_SIN,
        columns::DAY_OF_WEEK_COS,
        columns::LAG_1_STEP,
        columns::LAG_1_DAY,
        columns::LAG_1_WEEK,
    ]
    .map(String::from)
    .to_vec();
    for w in windows {
        order.extend([
            columns::rolling_mean(w.duration),
            columns::rolling_std(w.duration),
            columns::rolling_max(w.duration),
            columns::trend(w.duration),
        ]);
    }

    let out = frame
        .lazy()
        .with_column(ts().cast(DataType::Datetime(TimeUnit::Milliseconds, None)))
        .with_columns(stage_one)
        .with_columns(stage_two)
        .select(order.iter().map(|name| col(name.as_str()).cast(DataType::Float64)).collect::<Vec<_>>())
        .collect()
        .map_err(polars_err("running the feature query"))?;

    order
        .into_iter()
        .map(|name| {
            let column = out.column(&name).map_err(polars_err("reading a result column"))?;
            let floats = column.f64().map_err(polars_err("reading a result column"))?;
            // Undefined results (nulls) become NaN at the boundary; no polars type leaves the crate.
            let values = floats.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
            Ok((name, values))
        })
        .collect()
}
