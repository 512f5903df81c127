//! "Training": [`fit`] turns a history into a [`Model`], a serializable artifact with the
//! fitted baseline parameters, residual quantiles for p90, a stored seasonal profile, the
//! uplift table, the fit range and the model's own backtest.
//!
//! Fitting sees only the history before the fit time. Parameters are chosen over a small
//! grid (profile grouping, days and smoothing window; level weight `alpha`; damping `phi`)
//! by the mean absolute error of the forecast made 30 minutes ahead of each bucket (rolling
//! origins, in sample). The backtest repeats the whole fit on the data before the last 7
//! days and scores those 7 days with `rel_mae`; the artifact then refits on everything.
//!
//! The uplift table handed to [`fit`] is re-measured against the fitted baseline before it is
//! stored (see `calibrate`): the stored multipliers say how far each past event rose above
//! what this baseline forecast.
//!
//! A [`Model`] is itself the event-free baseline [`Predictor`] (source `statistical`);
//! [`Model::event_aware`] wraps it with its uplift table (source `statistical+events`).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use prescale_core::{Forecast, ForecastPoint, ForecastSource, KindUplift, ScheduledEvent, TimeSeries, UpliftTable};
use serde::{Deserialize, Serialize};

use crate::backtest::{self, Backtest, BacktestInput, RollingBaseline};
use crate::calibrate::calibrate;
use crate::events::{EventAware, SHAPE_SEGMENTS, Shapes, Spreads, mask_windows};
use crate::grid::{Grid, bucket_secs_for, point_index, slot_of, visible_len, weekday_of};
use crate::seasonal::{
    BaselineParams, DayGrouping, Level, ProfileParams, level_series, point, profile_series, profile_value,
};
use crate::stats::quantile;
use crate::{PredictError, PredictRequest, Predictor};

/// Version of the [`Model`] JSON layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Leads (in buckets) with their own p90 ratio; longer leads use the last one.
const QUANTILE_LEADS: usize = 36;
/// Bands of forecast level with their own p90 ratios (quartiles).
const LEVEL_BANDS: usize = 4;
/// Points a band needs at a lead for its own p90 ratio.
const MIN_BAND_SAMPLES: usize = 100;
/// Days of history the level is warmed up on when predicting.
const LEVEL_WARMUP_DAYS: usize = 2;
/// Minimum history before the fit time.
const MIN_FIT_DAYS: usize = 2;
/// Candidate level weights and dampings (alpha >= 0.05 keeps the level's memory well
/// inside the warm-up window).
const ALPHAS: [f64; 7] = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0];
const PHIS: [f64; 6] = [0.8, 0.9, 0.95, 0.97, 0.99, 1.0];

/// How [`fit`] runs.
#[derive(Debug, Clone, PartialEq)]
pub struct FitConfig {
    /// Only history before this instant is used (default: the end of the history).
    pub fit_time: Option<DateTime<Utc>>,
    /// Length of the backtest at the end of the fit range.
    pub backtest: Duration,
    /// The lead the parameters are tuned for.
    pub tune_horizon: Duration,
    /// The workload's local time offset from UTC, in minutes, for weekday/weekend days.
    pub utc_offset_minutes: i32,
    /// Past and scheduled events are masked from this long before their start (or their
    /// kind's learned lead, if longer)...
    pub mask_before: Duration,
    /// ...to this long after their end (or their kind's learned lag, if longer).
    pub mask_after: Duration,
    /// Whether to run the model's own backtest (its `rel_mae`). A caller that refits often
    /// and never reads it (the harness's replay) skips it: it costs about a second fit.
    pub self_backtest: bool,
}

impl Default for FitConfig {
    /// Fit on the whole history, backtest the last 7 days, tune for 30 minutes ahead, UTC,
    /// mask events from 30 minutes before to 1 hour after, run the backtest.
    fn default() -> Self {
        Self {
            fit_time: None,
            backtest: Duration::days(7),
            tune_horizon: Duration::minutes(30),
            utc_offset_minutes: 0,
            mask_before: Duration::minutes(30),
            mask_after: Duration::hours(1),
            self_backtest: true,
        }
    }
}

impl FitConfig {
    fn check(&self) -> Result<(), PredictError> {
        let bad = |field: &str, problem: &str| Err(PredictError::InvalidConfig(format!("{field}: {problem}")));
        if self.backtest <= Duration::zero() {
            return bad("backtest", "must be positive");
        }
        if self.tune_horizon < Duration::zero() || self.tune_horizon > Duration::days(1) {
            return bad("tune_horizon", "must be between 0 and 1 day");
        }
        if self.utc_offset_minutes.abs() > 14 * 60 {
            return bad("utc_offset_minutes", "must be within ±14 hours");
        }
        if self.mask_before < Duration::zero() || self.mask_after < Duration::zero() {
            return bad("mask_before/mask_after", "must not be negative");
        }
        Ok(())
    }
}

/// A fitted baseline: the artifact of [`fit`], serializable as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    schema_version: u32,
    fit_from: DateTime<Utc>,
    fit_to: DateTime<Utc>,
    step_secs: u32,
    bucket_secs: u32,
    utc_offset_minutes: i32,
    mask_before_secs: i64,
    mask_after_secs: i64,
    params: BaselineParams,
    /// Per lead bucket, the 90th percentile of actual / forecast (per history step).
    p90_ratio: Vec<f64>,
    /// The same by band of the forecast's level (absent in artifacts written before it).
    #[serde(default)]
    p90_by_level: LevelSpread,
    /// The profile for the week after the fit, per (local weekday, UTC slot), per bucket.
    seasonal: Vec<Option<f64>>,
    uplift: UpliftTable,
    /// Per event kind with enough measured windows, its multiplier in each eighth of the
    /// window relative to the window's mean (absent in artifacts written before shapes).
    #[serde(default)]
    event_shapes: Shapes,
    /// Per event kind with enough measured windows, the 90th percentile of actual over
    /// forecast inside them (absent in artifacts written before spreads).
    #[serde(default)]
    event_spreads: Spreads,
    backtest: Option<Backtest>,
}

/// Fit a [`Model`] on `history` before `config.fit_time`, leaving `events` out of the
/// seasonal profiles and levels, and storing `uplift` for the event-aware predictor,
/// re-measured against the fitted baseline (each observation becomes actual over baseline
/// in its event window), so that the multiplier and the baseline never both carry a level
/// shift. Use [`Model::uplift`], not the input table, with this model.
pub fn fit(
    history: &TimeSeries,
    events: &[ScheduledEvent],
    uplift: &UpliftTable,
    config: &FitConfig,
) -> Result<Model, PredictError> {
    config.check()?;
    let step_secs = history.step_secs();
    let bucket_secs = bucket_secs_for(step_secs)?;
    let fit_to = config.fit_time.unwrap_or_else(|| history.end());
    let offset_secs = i64::from(config.utc_offset_minutes) * 60;
    let masks = mask_windows(events, &[uplift], step_secs, config.mask_before, config.mask_after);
    let visible = visible_len(history, fit_to);
    let grid = Grid::build(history, visible, bucket_secs, &masks, offset_secs);
    if grid.len() < MIN_FIT_DAYS * grid.slots_per_day || grid.values.iter().all(Option::is_none) {
        return Err(PredictError::InsufficientHistory(format!(
            "fitting needs at least {MIN_FIT_DAYS} days of history before {}, got {} buckets of {bucket_secs} s",
            fit_to.to_rfc3339(),
            grid.len()
        )));
    }
    let tune_lead = usize::try_from(config.tune_horizon.num_seconds() / bucket_secs).unwrap_or(0);
    let params = select_params(&grid, tune_lead);

    let seen = history.window(history.start(), fit_to);
    let holdout_from = fit_to - config.backtest;
    let holdout_len = if config.self_backtest { visible_len(history, holdout_from) } else { 0 };
    let holdout_grid = Grid::build(history, holdout_len, bucket_secs, &masks, offset_secs);
    let backtest = if config.self_backtest && holdout_grid.len() >= MIN_FIT_DAYS * holdout_grid.slots_per_day {
        // The backtest's uplifts are what was known at its start, calibrated on its own fit.
        let holdout_params = select_params(&holdout_grid, tune_lead);
        let holdout_history = history.window(history.start(), holdout_from);
        let known = calibrate(
            &holdout_history,
            &holdout_grid,
            holdout_params,
            events,
            &uplift_known_before(uplift, holdout_from),
            config.tune_horizon,
        );
        backtest::run(&BacktestInput {
            history: &seen,
            grid: &grid,
            params: holdout_params,
            events,
            uplift: &known.table,
            shapes: &known.shapes,
            from: holdout_from,
            to: fit_to,
        })?
    } else {
        None
    };

    let (p90_ratio, p90_by_level) = residual_quantiles(&seen, &grid, params);
    let seasonal = week_profile(&grid, &params.profile);
    let learned = calibrate(&seen, &grid, params, events, uplift, config.tune_horizon);
    Ok(Model {
        schema_version: SCHEMA_VERSION,
        fit_from: history.start(),
        fit_to,
        step_secs,
        bucket_secs: u32::try_from(bucket_secs).unwrap_or(u32::MAX),
        utc_offset_minutes: config.utc_offset_minutes,
        mask_before_secs: config.mask_before.num_seconds(),
        mask_after_secs: config.mask_after.num_seconds(),
        params,
        p90_ratio,
        p90_by_level,
        seasonal,
        uplift: learned.table,
        event_shapes: learned.shapes,
        event_spreads: learned.spreads,
        backtest,
    })
}

/// The profile candidates: daily, weekday/weekend and weekly seasons, each with a few
/// day counts and smoothing windows.
fn candidate_profiles() -> Vec<ProfileParams> {
    let mut out = Vec::new();
    for (grouping, day_counts) in [
        (DayGrouping::AllDays, &[3usize, 7][..]),
        (DayGrouping::WeekdayWeekend, &[3, 5, 10][..]),
        (DayGrouping::SameWeekday, &[1, 2, 3][..]),
    ] {
        for &days in day_counts {
            for half_window in [0, 1, 2] {
                out.push(ProfileParams { grouping, days, half_window });
            }
        }
    }
    out
}

/// Buckets at the start of a grid that only warm the profile up (not scored while tuning).
fn warmup_buckets(grid: &Grid) -> usize {
    (7 * grid.slots_per_day).min(grid.len() / 2)
}

/// The parameters with the smallest in-sample error `lead` buckets ahead.
fn select_params(grid: &Grid, lead: usize) -> BaselineParams {
    let from = warmup_buckets(grid).max(lead);
    let targets: Vec<(usize, f64)> = (from..grid.len()).filter_map(|b| Some((b, grid.usable(b)?))).collect();
    let mut best: Option<(f64, BaselineParams)> = None;
    for profile_params in candidate_profiles() {
        let profile = profile_series(grid, &profile_params);
        for alpha in ALPHAS {
            let levels = level_series(grid, &profile, alpha);
            // `point` for every target at once: the profile and the level's excess do not
            // depend on phi, only the damping does.
            let scored: Vec<(f64, f64, f64)> =
                targets.iter().filter_map(|&(b, y)| Some((profile[b]?, levels[b - lead].factor() - 1.0, y))).collect();
            for phi in PHIS {
                let damping = phi.powi(i32::try_from(lead + 1).unwrap_or(i32::MAX));
                let error: f64 =
                    scored.iter().map(|&(p, excess, y)| ((p * (1.0 + excess * damping)).max(0.0) - y).abs()).sum();
                if best.as_ref().is_none_or(|(e, _)| error < *e) {
                    best = Some((error, BaselineParams { profile: profile_params, alpha, phi }));
                }
            }
        }
    }
    best.map(|(_, p)| p).unwrap_or(BaselineParams {
        profile: ProfileParams { grouping: DayGrouping::AllDays, days: 7, half_window: 1 },
        alpha: 0.2,
        phi: 0.95,
    })
}

/// The p90 ratios by the forecast's own level: count data is relatively noisier where the
/// counts are small (a quiet night) than where they are large, so one ratio for all levels
/// would over-provision the busy hours and under-cover the quiet ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct LevelSpread {
    /// Upper bounds (forecast per history step) of the level bands but the last, increasing.
    edges: Vec<f64>,
    /// Per band, per lead bucket, the 90th percentile of actual / forecast.
    ratios: Vec<Vec<f64>>,
}

impl LevelSpread {
    /// The ratio for a forecast of `value` per step, `lead` buckets ahead; `None` when empty.
    fn ratio(&self, value: f64, lead: usize) -> Option<f64> {
        let row = self.ratios.get(Self::band(&self.edges, value))?;
        row.get(lead.min(row.len().checked_sub(1)?)).copied()
    }

    /// The band of `value` among `edges`: an edge belongs to the band above it.
    fn band(edges: &[f64], value: f64) -> usize {
        edges.iter().position(|edge| value < *edge).unwrap_or(edges.len())
    }

    fn check(&self) -> Result<(), String> {
        if self.ratios.is_empty() && self.edges.is_empty() {
            return Ok(());
        }
        let sorted = self.edges.windows(2).all(|w| w[0] <= w[1]) && self.edges.iter().all(|e| e.is_finite());
        let rows_ok = self.ratios.len() == self.edges.len() + 1
            && self.ratios.iter().all(|r| !r.is_empty() && r.iter().all(|x| x.is_finite() && *x >= 1.0));
        if sorted && rows_ok { Ok(()) } else { Err("p90_by_level is malformed".into()) }
    }
}

/// Per lead, the 90th percentile of actual / forecast over the unmasked points, at the
/// history's own step; at least 1 and never decreasing with the lead. Also the same per
/// band of the forecast's level (quartiles of the lead-0 forecasts); a band-lead cell with
/// fewer than [`MIN_BAND_SAMPLES`] points takes the all-levels ratio.
fn residual_quantiles(history: &TimeSeries, grid: &Grid, params: BaselineParams) -> (Vec<f64>, LevelSpread) {
    let rolling = RollingBaseline::new(history, grid, params);
    let from = warmup_buckets(grid);
    let mut pairs: Vec<Vec<(f64, f64)>> = vec![Vec::new(); QUANTILE_LEADS];
    for b in from..grid.len() {
        if grid.masked[b] {
            continue;
        }
        for (lead, bucket_pairs) in pairs.iter_mut().enumerate() {
            let Some(origin_bucket) = b.checked_sub(lead) else { break };
            for i in b * grid.per..(b + 1) * grid.per {
                if let (Some(y), Some(f)) = (history.values()[i], rolling.point_forecast_after(origin_bucket, i))
                    && f > 0.0
                {
                    bucket_pairs.push((f, y / f));
                }
            }
        }
    }
    let running_floor = |quantiles: Vec<Option<f64>>| {
        let mut floor = 1.0_f64;
        quantiles
            .into_iter()
            .map(|q| {
                floor = floor.max(q.unwrap_or(floor));
                floor
            })
            .collect::<Vec<f64>>()
    };
    let overall_q: Vec<Option<f64>> =
        pairs.iter().map(|p| quantile(&mut p.iter().map(|(_, r)| *r).collect::<Vec<_>>(), 0.9)).collect();
    let overall = running_floor(overall_q.clone());

    let mut levels: Vec<f64> = pairs[0].iter().map(|(f, _)| *f).collect();
    let edges: Vec<f64> =
        (1..LEVEL_BANDS).filter_map(|k| quantile(&mut levels, k as f64 / LEVEL_BANDS as f64)).collect();
    if edges.len() + 1 != LEVEL_BANDS {
        return (overall, LevelSpread::default());
    }
    let ratios = (0..LEVEL_BANDS)
        .map(|band| {
            let per_lead = pairs
                .iter()
                .zip(&overall_q)
                .map(|(p, all)| {
                    let mut in_band: Vec<f64> =
                        p.iter().filter(|(f, _)| LevelSpread::band(&edges, *f) == band).map(|(_, r)| *r).collect();
                    if in_band.len() >= MIN_BAND_SAMPLES { quantile(&mut in_band, 0.9) } else { *all }
                })
                .collect();
            running_floor(per_lead)
        })
        .collect();
    (overall, LevelSpread { edges, ratios })
}

/// The profile of each bucket of the week after the grid, by (local weekday, UTC slot).
fn week_profile(grid: &Grid, params: &ProfileParams) -> Vec<Option<f64>> {
    let spd = grid.slots_per_day;
    let mut out = vec![None; 7 * spd];
    let mut scratch = Vec::new();
    for b in grid.len()..grid.len() + 7 * spd {
        out[grid.weekday(b) * spd + grid.slot(b)] = profile_value(grid, b, grid.len(), params, &mut scratch);
    }
    out
}

/// The table restricted to observations dated before `t`, re-summarized.
fn uplift_known_before(table: &UpliftTable, t: DateTime<Utc>) -> UpliftTable {
    let kinds = table
        .kinds
        .iter()
        .filter_map(|(kind, k)| {
            let seen = k.observations.iter().filter(|o| o.date < t).cloned().collect();
            Some((kind.clone(), KindUplift::from_observations(seen)?))
        })
        .collect();
    UpliftTable { step_secs: table.step_secs, kinds }
}

impl Model {
    /// Version of the JSON layout this model was written with.
    pub fn schema_version(&self) -> u32 {
        self.schema_version
    }

    /// The fitted range: history from `.0` up to `.1` (exclusive).
    pub fn fit_range(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (self.fit_from, self.fit_to)
    }

    /// The fitted baseline parameters.
    pub fn params(&self) -> &BaselineParams {
        &self.params
    }

    /// The uplift table stored at fit time, re-measured against this model's baseline: the
    /// table to use in requests and in [`EventAware`] with this model.
    pub fn uplift(&self) -> &UpliftTable {
        &self.uplift
    }

    /// Per event kind, the learned shape of its multiplier over the window: one factor per
    /// eighth of the window, relative to the window's mean (so mean 1). Kinds with fewer than
    /// three measured windows have none and stay flat.
    pub fn event_shapes(&self) -> &BTreeMap<String, Vec<f64>> {
        &self.event_shapes
    }

    /// Per event kind, the learned spread inside its windows: the 90th percentile of actual
    /// over the event-aware forecast in past windows of the kind (at least 1). Kinds with fewer
    /// than three measured windows have none.
    pub fn event_spreads(&self) -> &BTreeMap<String, f64> {
        &self.event_spreads
    }

    /// The backtest over the last days of the fit range, when the history was long enough.
    pub fn backtest(&self) -> Option<&Backtest> {
        self.backtest.as_ref()
    }

    /// The model's own `rel_mae` on its backtest.
    pub fn rel_mae(&self) -> Option<f64> {
        self.backtest.as_ref().map(|b| b.rel_mae)
    }

    /// Score this model's parameters on `[from, to)` of `history` the way the fit's
    /// backtest does (rolling origins 30 minutes ahead of each 5-minute target, data
    /// before each origin only, uplifts observed before `from`), with the references.
    /// `None` when no target could be scored.
    pub fn evaluate(
        &self,
        history: &TimeSeries,
        events: &[ScheduledEvent],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Option<Backtest>, PredictError> {
        let bucket_secs = bucket_secs_for(history.step_secs())?;
        if bucket_secs != i64::from(self.bucket_secs) {
            return Err(PredictError::InvalidRequest(format!(
                "the model was fitted on {} s buckets; a history step of {} s gives {bucket_secs} s buckets",
                self.bucket_secs,
                history.step_secs()
            )));
        }
        let masks = mask_windows(
            events,
            &[&self.uplift],
            history.step_secs(),
            Duration::seconds(self.mask_before_secs),
            Duration::seconds(self.mask_after_secs),
        );
        let offset_secs = i64::from(self.utc_offset_minutes) * 60;
        let grid = Grid::build(history, visible_len(history, to), bucket_secs, &masks, offset_secs);
        let seen = history.window(history.start(), to);
        // Uplifts and shapes as they could be measured before `from`.
        let before = Grid::build(history, visible_len(history, from), bucket_secs, &masks, offset_secs);
        let known = calibrate(
            &history.window(history.start(), from),
            &before,
            self.params,
            events,
            &uplift_known_before(&self.uplift, from),
            Duration::minutes(30),
        );
        backtest::run(&BacktestInput {
            history: &seen,
            grid: &grid,
            params: self.params,
            events,
            uplift: &known.table,
            shapes: &known.shapes,
            from,
            to,
        })
    }

    /// The event-aware predictor over this model, with its stored uplift table, shapes and spreads.
    pub fn event_aware(self: &Arc<Self>) -> EventAware {
        EventAware::new(self.clone(), self.uplift.clone())
            .with_shapes(self.event_shapes.clone())
            .with_spreads(self.event_spreads.clone())
    }

    /// The artifact as JSON.
    pub fn to_json(&self) -> Result<String, PredictError> {
        serde_json::to_string_pretty(self).map_err(|e| PredictError::Artifact(format!("cannot write model: {e}")))
    }

    /// Read an artifact written by [`Model::to_json`], checking its schema version and shape.
    pub fn from_json(json: &str) -> Result<Self, PredictError> {
        let version = serde_json::from_str::<serde_json::Value>(json)
            .map_err(|e| PredictError::Artifact(format!("model is not JSON: {e}")))?
            .get("schema_version")
            .and_then(serde_json::Value::as_u64);
        if version != Some(u64::from(SCHEMA_VERSION)) {
            return Err(PredictError::Artifact(format!(
                "model schema_version {version:?} is not supported (expected {SCHEMA_VERSION})"
            )));
        }
        let model: Model =
            serde_json::from_str(json).map_err(|e| PredictError::Artifact(format!("malformed model: {e}")))?;
        model.check()?;
        Ok(model)
    }

    fn check(&self) -> Result<(), PredictError> {
        let bad = |problem: String| Err(PredictError::Artifact(problem));
        let expected_bucket = bucket_secs_for(self.step_secs)?;
        if i64::from(self.bucket_secs) != expected_bucket {
            return bad(format!("bucket_secs {} does not match step_secs {}", self.bucket_secs, self.step_secs));
        }
        let spd = (crate::grid::DAY_SECS / expected_bucket) as usize;
        if self.seasonal.len() != 7 * spd {
            return bad(format!("seasonal has {} values, expected {}", self.seasonal.len(), 7 * spd));
        }
        if self.p90_ratio.is_empty() || self.p90_ratio.iter().any(|r| !r.is_finite() || *r < 1.0) {
            return bad("p90_ratio must be non-empty, finite and at least 1".into());
        }
        self.p90_by_level.check().map_err(PredictError::Artifact)?;
        if let Some((kind, _)) = self
            .event_shapes
            .iter()
            .find(|(_, s)| s.len() != SHAPE_SEGMENTS || s.iter().any(|f| !(f.is_finite() && *f > 0.0)))
        {
            return bad(format!("event_shapes[{kind}] must hold {SHAPE_SEGMENTS} finite positive factors"));
        }
        if let Some((kind, spread)) = self.event_spreads.iter().find(|(_, s)| !(s.is_finite() && **s >= 1.0)) {
            return bad(format!("event_spreads[{kind}] must be finite and at least 1, got {spread}"));
        }
        let p = &self.params;
        if !(p.alpha > 0.0 && p.alpha <= 1.0 && p.phi > 0.0 && p.phi <= 1.0 && p.profile.days > 0) {
            return bad(format!("params out of range: {p:?}"));
        }
        Ok(())
    }
}

#[async_trait]
impl Predictor for Model {
    fn source(&self) -> ForecastSource {
        ForecastSource::Statistical
    }

    async fn predict(&self, request: &PredictRequest) -> Result<Forecast, PredictError> {
        self.baseline(request)
    }
}

impl Model {
    /// The event-free baseline forecast for `request`.
    fn baseline(&self, request: &PredictRequest) -> Result<Forecast, PredictError> {
        if request.horizon_steps == 0 {
            return Err(PredictError::InvalidRequest("horizon_steps must be at least 1".into()));
        }
        let history = &request.history;
        let bucket_secs = bucket_secs_for(history.step_secs())?;
        if bucket_secs != i64::from(self.bucket_secs) {
            return Err(PredictError::InvalidRequest(format!(
                "the model was fitted on {} s buckets (step {} s); the request's history step of {} s gives {bucket_secs} s buckets",
                self.bucket_secs,
                self.step_secs,
                history.step_secs()
            )));
        }
        let masks = mask_windows(
            &request.events,
            &[&request.uplift, &self.uplift],
            history.step_secs(),
            Duration::seconds(self.mask_before_secs),
            Duration::seconds(self.mask_after_secs),
        );
        let visible = visible_len(history, request.at);
        let offset_secs = i64::from(self.utc_offset_minutes) * 60;
        let grid = Grid::build(history, visible, bucket_secs, &masks, offset_secs);
        let complete = grid.len();

        let mut scratch = Vec::new();
        let mut level = Level::default();
        let warm_from = complete.saturating_sub(LEVEL_WARMUP_DAYS * grid.slots_per_day);
        let mut masked_recently = 0usize;
        for b in warm_from..complete {
            if let Some(y) = grid.usable(b) {
                level.update(y, profile_value(&grid, b, b, &self.params.profile, &mut scratch), self.params.alpha);
            }
        }
        for b in complete.saturating_sub(12)..complete {
            masked_recently += usize::from(grid.masked[b]);
        }

        let spd = grid.slots_per_day;
        let per = grid.per as f64;
        let mut cached: Option<(usize, Option<f64>, usize)> = None;
        let mut points = Vec::with_capacity(request.horizon_steps);
        let mut from_stored = 0usize;
        for i in 0..request.horizon_steps {
            let t = request.at + history.step() * i32::try_from(i).unwrap_or(i32::MAX);
            let index = point_index(history, t).ok_or_else(|| {
                PredictError::InvalidRequest(format!(
                    "forecast start {} is before the history",
                    request.at.to_rfc3339()
                ))
            })?;
            let bucket = index / grid.per;
            let (bucket_value, lead) = match cached {
                Some((b, value, lead)) if b == bucket => (value, lead),
                _ => {
                    let lead = bucket.saturating_sub(complete);
                    let profile =
                        profile_value(&grid, bucket, complete, &self.params.profile, &mut scratch).or_else(|| {
                            from_stored += 1;
                            self.seasonal[weekday_of(t, offset_secs) * spd + slot_of(t, bucket_secs)]
                        });
                    let value = point(profile, &level, lead, self.params.phi);
                    cached = Some((bucket, value, lead));
                    (value, lead)
                }
            };
            let value = bucket_value.ok_or_else(|| {
                PredictError::InsufficientHistory(format!(
                    "no usable history before {} and no stored profile for {}",
                    request.at.to_rfc3339(),
                    t.to_rfc3339()
                ))
            })? / per;
            let ratio = self
                .p90_by_level
                .ratio(value, lead)
                .unwrap_or_else(|| self.p90_ratio[lead.min(self.p90_ratio.len() - 1)]);
            points.push(ForecastPoint { p50: value, p90: value * ratio });
        }

        let mut explanation = format!(
            "seasonal baseline: profile = {}, times level x{:.2} (smoothing {}), its correction fading by {} per {} min ahead",
            self.params.profile.describe(),
            level.factor(),
            self.params.alpha,
            self.params.phi,
            bucket_secs / 60
        );
        if masked_recently > 0 {
            explanation.push_str(&format!(
                "; {masked_recently} of the last 12 buckets lie in event windows and are left out of the level"
            ));
        }
        if from_stored > 0 {
            explanation.push_str(&format!("; {from_stored} buckets use the profile stored at fit time"));
        }
        if let Some(b) = &self.backtest {
            explanation.push_str(&format!(
                "; backtest rel_mae {:.2} over {} days",
                b.rel_mae,
                (b.to - b.from).num_days()
            ));
        }
        explanation.push_str("; p90 from fitted residual quantiles by forecast level");
        Ok(Forecast {
            start: request.at,
            step_secs: history.step_secs(),
            baseline: points.iter().map(|p| p.p50).collect(),
            points,
            source: ForecastSource::Statistical,
            explanation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_p90_ratio_follows_the_band_of_the_forecast_level() {
        let spread = LevelSpread { edges: vec![10.0, 20.0], ratios: vec![vec![1.8, 1.9], vec![1.4], vec![1.2, 1.25]] };
        assert_eq!(spread.ratio(5.0, 0), Some(1.8));
        assert_eq!(spread.ratio(5.0, 7), Some(1.9), "past the last lead, the last one");
        assert_eq!(spread.ratio(10.0, 1), Some(1.4), "an edge belongs to the band above it");
        assert_eq!(spread.ratio(1e6, 0), Some(1.2));
        assert!(spread.check().is_ok());
        assert_eq!(LevelSpread::default().ratio(5.0, 0), None);
        assert!(LevelSpread { edges: vec![20.0, 10.0], ratios: vec![vec![1.0]; 3] }.check().is_err());
        assert!(LevelSpread { edges: vec![10.0], ratios: vec![vec![0.9], vec![1.0]] }.check().is_err());
    }
}
