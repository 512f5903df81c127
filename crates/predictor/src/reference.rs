//! Reference forecasters that a model has to beat, as plain functions and as predictors.
//!
//! - **Persistence**: every step is the mean of the last hour of history.
//! - **Profile**: each step is the mean of the same time of day over the last 7 days,
//!   rescaled by the current level: the last hour's mean over the mean of the profile at
//!   the same points.
//!
//! Both work on the history's own step, skip missing points (never read as zero), ignore
//! events, and give no uncertainty band (`p90 = p50`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prescale_core::{Forecast, ForecastPoint, ForecastSource, TimeSeries};

use crate::grid::{DAY_SECS, point_index, visible_len};
use crate::stats::mean_present;
use crate::{PredictError, PredictRequest, Predictor};

/// Days averaged by the profile reference.
const PROFILE_DAYS: usize = 7;

/// Points in the last hour for a step (at least one).
fn hour_points(step_secs: u32) -> usize {
    (3600 / step_secs.max(1) as usize).max(1)
}

/// Mean of the last `window` present points before `visible`.
pub(crate) fn persistence_value(values: &[Option<f64>], visible: usize, window: usize) -> Option<f64> {
    mean_present(&values[visible.saturating_sub(window)..visible.min(values.len())])
}

/// Mean of point `index`'s same time of day over the previous 7 days, among points before `visible`.
pub(crate) fn profile_value(values: &[Option<f64>], visible: usize, index: usize, steps_per_day: usize) -> Option<f64> {
    let (sum, n) = (1..=PROFILE_DAYS)
        .filter_map(|d| index.checked_sub(d * steps_per_day))
        .filter(|&i| i < visible)
        .filter_map(|i| values.get(i).copied().flatten())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Last hour's observed mean over its profile's mean (points where both exist); 1 when undefined.
pub(crate) fn profile_level(values: &[Option<f64>], visible: usize, window: usize, steps_per_day: usize) -> f64 {
    let (observed, expected) = (visible.saturating_sub(window)..visible.min(values.len()))
        .filter_map(|i| Some((values[i]?, profile_value(values, visible, i, steps_per_day)?)))
        .fold((0.0, 0.0), |(o, e), (y, p)| (o + y, e + p));
    if expected > 0.0 { observed / expected } else { 1.0 }
}

/// Steps per day for the history's step, when a day holds whole steps.
fn steps_per_day(history: &TimeSeries) -> Result<usize, PredictError> {
    let step = i64::from(history.step_secs());
    if DAY_SECS % step != 0 {
        return Err(PredictError::InvalidRequest(format!("history step of {step} s does not divide a day")));
    }
    Ok((DAY_SECS / step) as usize)
}

/// Persistence: the mean of the last hour before `at`, repeated for `horizon_steps` steps.
pub fn persistence(history: &TimeSeries, at: DateTime<Utc>, horizon_steps: usize) -> Result<Vec<f64>, PredictError> {
    let visible = visible_len(history, at);
    let value = persistence_value(history.values(), visible, hour_points(history.step_secs())).ok_or_else(|| {
        PredictError::InsufficientHistory(format!("no point present in the hour before {}", at.to_rfc3339()))
    })?;
    Ok(vec![value; horizon_steps])
}

/// Profile: per step, the 7-day same-time mean times the current level (see the module
/// documentation); a step without any same-time point falls back to persistence.
pub fn profile(history: &TimeSeries, at: DateTime<Utc>, horizon_steps: usize) -> Result<Vec<f64>, PredictError> {
    let spd = steps_per_day(history)?;
    let visible = visible_len(history, at);
    let window = hour_points(history.step_secs());
    let recent = persistence(history, at, 1)?[0];
    let level = profile_level(history.values(), visible, window, spd);
    Ok((0..horizon_steps)
        .map(|i| {
            let t = at + history.step() * i32::try_from(i).unwrap_or(i32::MAX);
            point_index(history, t)
                .and_then(|index| profile_value(history.values(), visible, index, spd))
                .map_or(recent, |p| p * level)
        })
        .collect())
}

/// The persistence reference as a [`Predictor`] (source `statistical`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Persistence;

/// The rescaled 7-day profile reference as a [`Predictor`] (source `statistical`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Profile;

/// A forecast without an uncertainty band.
fn flat_band(request: &PredictRequest, values: Vec<f64>, explanation: String) -> Forecast {
    Forecast {
        start: request.at,
        step_secs: request.history.step_secs(),
        points: values.iter().map(|&v| ForecastPoint { p50: v, p90: v }).collect(),
        baseline: values,
        source: ForecastSource::Statistical,
        explanation,
    }
}

fn check_horizon(request: &PredictRequest) -> Result<(), PredictError> {
    if request.horizon_steps == 0 {
        return Err(PredictError::InvalidRequest("horizon_steps must be at least 1".into()));
    }
    Ok(())
}

#[async_trait]
impl Predictor for Persistence {
    fn source(&self) -> ForecastSource {
        ForecastSource::Statistical
    }

    async fn predict(&self, request: &PredictRequest) -> Result<Forecast, PredictError> {
        check_horizon(request)?;
        let values = persistence(&request.history, request.at, request.horizon_steps)?;
        let explanation =
            format!("persistence reference: mean of the last hour, {:.1} per step; no uncertainty band", values[0]);
        Ok(flat_band(request, values, explanation))
    }
}

#[async_trait]
impl Predictor for Profile {
    fn source(&self) -> ForecastSource {
        ForecastSource::Statistical
    }

    async fn predict(&self, request: &PredictRequest) -> Result<Forecast, PredictError> {
        check_horizon(request)?;
        let values = profile(&request.history, request.at, request.horizon_steps)?;
        let spd = steps_per_day(&request.history)?;
        let visible = visible_len(&request.history, request.at);
        let level = profile_level(request.history.values(), visible, hour_points(request.history.step_secs()), spd);
        let explanation = format!(
            "profile reference: 7-day same-time mean x level {level:.2} from the last hour; no uncertainty band"
        );
        Ok(flat_band(request, values, explanation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn t0() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn persistence_is_the_mean_of_the_last_hour_skipping_gaps() {
        let mut v = vec![Some(100.0); 2];
        v.extend(vec![Some(1.0), None, Some(3.0), None]); // hourly step 15 min: last 4 points
        let h = TimeSeries::new(t0(), Duration::minutes(15), v).unwrap();
        assert_eq!(persistence(&h, h.end(), 3).unwrap(), vec![2.0; 3]);
        // Standing 30 minutes earlier only the points before then are seen.
        assert_eq!(persistence(&h, h.end() - Duration::minutes(30), 1).unwrap(), vec![67.0]);
        let gap = TimeSeries::new(t0(), Duration::minutes(15), vec![None; 8]).unwrap();
        assert!(matches!(persistence(&gap, gap.end(), 1), Err(PredictError::InsufficientHistory(_))));
    }

    #[test]
    fn profile_rescales_the_weekly_mean_by_the_recent_level() {
        // Hourly data, 8 days: value = hour of day + 1, doubled on the last day.
        let mut v = Vec::new();
        for d in 0..8 {
            for h in 0..24 {
                v.push(Some((h + 1) as f64 * if d == 7 { 2.0 } else { 1.0 }));
            }
        }
        let h = TimeSeries::new(t0(), Duration::hours(1), v).unwrap();
        let at = t0() + Duration::days(7) + Duration::hours(10);
        // Last hour (09:00) is 20 against a profile of 10: level 2. Profile at 10:00 is 11.
        let f = profile(&h, at, 2).unwrap();
        assert!((f[0] - 22.0).abs() < 1e-12, "{f:?}");
        assert!((f[1] - 24.0).abs() < 1e-12, "{f:?}");
        // After one day: the last hour has no profile yet (level 1), the next hour has one day.
        let f = profile(&h, t0() + Duration::days(1), 1).unwrap();
        assert_eq!(f, vec![1.0]);
    }
}
