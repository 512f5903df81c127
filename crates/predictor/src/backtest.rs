//! Rolling-origin backtests with the project's `rel_mae` (5-minute aggregates, each
//! forecast made 30 minutes ahead from data before its origin).
//!
//! The baseline's state is computed once for the whole series (the profile of each
//! bucket from the buckets before it, the level before each bucket), so that each origin
//! costs a lookup: the same numbers [`crate::Model`]'s `predict` computes from scratch.

use chrono::{DateTime, Duration, Utc};
use prescale_core::accuracy::{RelMae, RelMaeSpec, rel_mae};
use prescale_core::{ScheduledEvent, TimeSeries, UpliftTable};
use serde::{Deserialize, Serialize};

use crate::PredictError;
use crate::events::{Effect, Shapes, Spreads, combined_factor};
use crate::grid::{DAY_SECS, Grid};
use crate::reference;
use crate::seasonal::{BaselineParams, Level, level_series, point, profile_series};

/// The outcome of a model's backtest: `rel_mae` of the model and of the references on the
/// same targets, all against daily seasonal naive (below 1 beats it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backtest {
    /// First target scored.
    pub from: DateTime<Utc>,
    /// End of the scored range (exclusive).
    pub to: DateTime<Utc>,
    /// Parameters used, fitted on data before `from` only.
    pub params: BaselineParams,
    /// Number of 5-minute targets scored.
    pub targets: usize,
    /// The event-free baseline (`statistical`).
    pub rel_mae: f64,
    /// The baseline times event uplifts learned before `from` (`statistical+events`).
    pub events_rel_mae: Option<f64>,
    /// Persistence (mean of the last hour).
    pub persistence_rel_mae: Option<f64>,
    /// The 7-day same-time profile rescaled by the last hour's level.
    pub profile_rel_mae: Option<f64>,
}

/// The baseline's state over a whole series, for fast rolling-origin forecasts.
pub(crate) struct RollingBaseline<'a> {
    history: &'a TimeSeries,
    grid: &'a Grid,
    params: BaselineParams,
    profile: Vec<Option<f64>>,
    levels: Vec<Level>,
}

impl<'a> RollingBaseline<'a> {
    /// Precompute profiles and levels of `grid` (built from `history`) for `params`.
    pub fn new(history: &'a TimeSeries, grid: &'a Grid, params: BaselineParams) -> Self {
        let profile = profile_series(grid, &params.profile);
        let levels = level_series(grid, &profile, params.alpha);
        Self { history, grid, params, profile, levels }
    }

    /// Buckets complete before `origin`.
    fn complete_buckets(&self, origin: DateTime<Utc>) -> usize {
        crate::grid::visible_len(self.history, origin) / self.grid.per
    }

    /// The forecast made at `origin` of history point `index` (per history step); `None`
    /// when the point is outside the grid or nothing is known yet.
    pub fn point_forecast(&self, origin: DateTime<Utc>, index: usize) -> Option<f64> {
        self.point_forecast_after(self.complete_buckets(origin), index)
    }

    /// [`Self::point_forecast`] from an origin at the start of bucket `complete` (the
    /// buckets before it are known).
    pub fn point_forecast_after(&self, complete: usize, index: usize) -> Option<f64> {
        let bucket = index / self.grid.per;
        let lead = bucket.checked_sub(complete)?;
        let bucket_value = point(*self.profile.get(bucket)?, self.levels.get(complete)?, lead, self.params.phi)?;
        Some(bucket_value / self.grid.per as f64)
    }
}

/// History points whose start lies in `[from, from + length)`.
fn points_in(history: &TimeSeries, from: DateTime<Utc>, length: Duration) -> std::ops::Range<usize> {
    let step = i64::from(history.step_secs());
    let first = |t: DateTime<Utc>| {
        let secs = (t - history.start()).num_seconds();
        usize::try_from((secs.max(0) + step - 1) / step).unwrap_or(usize::MAX).min(history.len())
    };
    first(from)..first(from + length)
}

/// Sum over a target bucket of per-point forecasts; `None` if any point has none.
fn bucket_sum(range: std::ops::Range<usize>, mut per_point: impl FnMut(usize) -> Option<f64>) -> Option<f64> {
    if range.is_empty() {
        return None;
    }
    range.map(&mut per_point).sum()
}

/// Inputs of a backtest over `[from, to)` of `history` (which holds only data before `to`).
pub(crate) struct BacktestInput<'a> {
    pub history: &'a TimeSeries,
    pub grid: &'a Grid,
    pub params: BaselineParams,
    pub events: &'a [ScheduledEvent],
    /// Uplifts known at `from` (observations dated before it).
    pub uplift: &'a UpliftTable,
    /// The kinds' shapes known at `from`.
    pub shapes: &'a Shapes,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Score the baseline, the event-aware model and both references; `None` when no target could be scored.
pub(crate) fn run(input: &BacktestInput<'_>) -> Result<Option<Backtest>, PredictError> {
    let spec = RelMaeSpec::default();
    let history = input.history;
    let score = |forecast: &mut dyn FnMut(DateTime<Utc>, DateTime<Utc>) -> Option<f64>| -> Result<Option<RelMae>, PredictError> {
        rel_mae(history, input.from, input.to, &spec, &mut *forecast)
            .map_err(|e| PredictError::InvalidRequest(format!("backtest: {e}")))
    };
    let rolling = RollingBaseline::new(history, input.grid, input.params);
    let Some(model) = score(&mut |origin, target| {
        bucket_sum(points_in(history, target, spec.aggregate), |i| rolling.point_forecast(origin, i))
    })?
    else {
        return Ok(None);
    };

    let step = history.step();
    let effects: Vec<Effect> = input
        .events
        .iter()
        .map(|e| Effect::resolve(e, &[input.uplift], history.step_secs()).shaped(input.shapes, &Spreads::new()))
        .collect();
    let events = score(&mut |origin, target| {
        bucket_sum(points_in(history, target, spec.aggregate), |i| {
            let mid = history.timestamp(i) + step / 2;
            Some(rolling.point_forecast(origin, i)? * combined_factor(&effects, mid))
        })
    })?;

    let values = history.values();
    let hour = (3600 / history.step_secs().max(1) as usize).max(1);
    let persistence = score(&mut |origin, target| {
        let visible = crate::grid::visible_len(history, origin);
        let per_point = reference::persistence_value(values, visible, hour)?;
        Some(per_point * points_in(history, target, spec.aggregate).len() as f64)
    })?;
    let steps_per_day = (DAY_SECS / i64::from(history.step_secs())) as usize;
    let profile = score(&mut |origin, target| {
        let visible = crate::grid::visible_len(history, origin);
        let level = reference::profile_level(values, visible, hour, steps_per_day);
        let recent = reference::persistence_value(values, visible, hour)?;
        bucket_sum(points_in(history, target, spec.aggregate), |i| {
            Some(reference::profile_value(values, visible, i, steps_per_day).map_or(recent, |p| p * level))
        })
    })?;

    Ok(Some(Backtest {
        from: input.from,
        to: input.to,
        params: input.params,
        targets: model.targets,
        rel_mae: model.rel_mae,
        events_rel_mae: events.map(|r| r.rel_mae),
        persistence_rel_mae: persistence.map(|r| r.rel_mae),
        profile_rel_mae: profile.map(|r| r.rel_mae),
    }))
}
