//! Forecast accuracy, defined once for the whole project.
//!
//! **`rel_mae`** is the forecast's mean absolute error divided by the mean
//! absolute error of the daily seasonal naive forecast (the value one day
//! earlier) on the same targets. Unless a caller states otherwise
//! ([`RelMaeSpec::default`]): the series is summed into 5-minute buckets, and
//! the forecast for the bucket starting at `t` is made at the origin
//! `t - 30 min`, using only data before the origin (rolling origins). A
//! target counts only when its actual value and its seasonal naive value are
//! both present. Below 1 beats seasonal naive; 0 is perfect.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::{CoreError, TimeSeries};

/// How `rel_mae` is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelMaeSpec {
    /// Bucket length the raw series is summed into.
    pub aggregate: Duration,
    /// How far ahead of each target its forecast is made.
    pub horizon: Duration,
    /// The season of the naive reference.
    pub season: Duration,
}

impl Default for RelMaeSpec {
    fn default() -> Self {
        Self { aggregate: Duration::minutes(5), horizon: Duration::minutes(30), season: Duration::days(1) }
    }
}

/// The outcome of a `rel_mae` evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RelMae {
    /// MAE of the forecast / MAE of seasonal naive.
    pub rel_mae: f64,
    /// MAE of the forecast, in aggregated units.
    pub mae: f64,
    /// MAE of daily seasonal naive on the same targets.
    pub naive_mae: f64,
    /// Number of targets scored.
    pub targets: usize,
}

/// Score a forecaster by `rel_mae` on `raw` (any step dividing `spec.aggregate`),
/// over targets whose bucket starts in `[from, to)`.
///
/// `forecast(origin, target)` returns the forecast of the aggregated bucket that
/// starts at `target`, made at `origin = target - spec.horizon`; it must use only
/// data before `origin`. Returning `None` skips the target for both the forecast
/// and the reference. Returns `Ok(None)` when no target could be scored or the
/// reference error is zero.
pub fn rel_mae(
    raw: &TimeSeries,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    spec: &RelMaeSpec,
    mut forecast: impl FnMut(DateTime<Utc>, DateTime<Utc>) -> Option<f64>,
) -> Result<Option<RelMae>, CoreError> {
    let agg = raw.aggregate_sum(spec.aggregate)?;
    let (mut err, mut naive_err, mut n) = (0.0, 0.0, 0usize);
    for (i, actual) in agg.values().iter().enumerate() {
        let target = agg.timestamp(i);
        if target < from || target >= to {
            continue;
        }
        let (Some(actual), Some(naive)) = (*actual, agg.value_at(target - spec.season)) else {
            continue;
        };
        let Some(f) = forecast(target - spec.horizon, target) else {
            continue;
        };
        err += (f - actual).abs();
        naive_err += (naive - actual).abs();
        n += 1;
    }
    if n == 0 || naive_err <= 0.0 {
        return Ok(None);
    }
    Ok(Some(RelMae { rel_mae: err / naive_err, mae: err / n as f64, naive_mae: naive_err / n as f64, targets: n }))
}

/// Mean absolute error of paired values (`None` when empty).
pub fn mae(pairs: impl IntoIterator<Item = (f64, f64)>) -> Option<f64> {
    let (sum, n) = pairs.into_iter().fold((0.0, 0usize), |(s, n), (f, a)| (s + (f - a).abs(), n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Symmetric mean absolute percentage error in [0, 2] (pairs where both are 0 count as 0).
pub fn smape(pairs: impl IntoIterator<Item = (f64, f64)>) -> Option<f64> {
    let (sum, n) = pairs.into_iter().fold((0.0, 0usize), |(s, n), (f, a)| {
        let denom = (f.abs() + a.abs()) / 2.0;
        let term = if denom == 0.0 { 0.0 } else { (f - a).abs() / denom };
        (s + term, n + 1)
    });
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_days(shift: f64) -> TimeSeries {
        // Day 1 is a ramp; day 2 is the same ramp plus `shift`.
        let mut v = Vec::new();
        for day in 0..2 {
            for m in 0..1440 {
                v.push(m as f64 + if day == 1 { shift } else { 0.0 });
            }
        }
        TimeSeries::from_values("2026-01-01T00:00:00Z".parse().unwrap(), Duration::minutes(1), v).unwrap()
    }

    #[test]
    fn seasonal_naive_scores_one_and_perfect_scores_zero() {
        let s = two_days(1.0);
        let agg = s.aggregate_sum(Duration::minutes(5)).unwrap();
        let from = s.start() + Duration::days(1);
        let spec = RelMaeSpec::default();
        let naive = rel_mae(&s, from, s.end(), &spec, |_, t| agg.value_at(t - Duration::days(1))).unwrap().unwrap();
        assert!((naive.rel_mae - 1.0).abs() < 1e-12);
        assert_eq!(naive.targets, 288);
        assert!((naive.naive_mae - 5.0).abs() < 1e-9, "each 5-minute bucket is off by 5 x 1");
        let perfect = rel_mae(&s, from, s.end(), &spec, |_, t| agg.value_at(t)).unwrap().unwrap();
        assert_eq!(perfect.rel_mae, 0.0);
    }

    #[test]
    fn origin_is_horizon_before_target() {
        let s = two_days(1.0);
        let from = s.start() + Duration::days(1);
        rel_mae(&s, from, s.end(), &RelMaeSpec::default(), |origin, target| {
            assert_eq!(target - origin, Duration::minutes(30));
            Some(0.0)
        })
        .unwrap();
    }

    #[test]
    fn mae_and_smape() {
        assert_eq!(mae([(1.0, 2.0), (3.0, 3.0)]), Some(0.5));
        assert_eq!(smape([(0.0, 0.0), (1.0, 3.0)]), Some(0.5));
        assert_eq!(mae(std::iter::empty()), None);
    }
}
