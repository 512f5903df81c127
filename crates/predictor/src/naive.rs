//! Seasonal naive: each step repeats the value one season (a day or a week) earlier.
//!
//! Event-free like every baseline: a same-time value inside an event window (or missing,
//! or not yet observed at the origin) is skipped for the one a season before it, up to
//! four seasons back. The p90 is the 90th percentile of the same-time values found in
//! those four seasons, never below the p50.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use prescale_core::{Forecast, ForecastPoint, ForecastSource};

use crate::events::mask_windows;
use crate::grid::{MaskWindow, point_index, visible_len};
use crate::stats::quantile;
use crate::{PredictError, PredictRequest, Predictor};

/// Seasons searched back for a usable value.
const SEASONS_BACK: i32 = 4;

/// The season a seasonal naive forecast repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Season {
    /// One day.
    Daily,
    /// One week.
    Weekly,
}

impl Season {
    fn length(self) -> Duration {
        match self {
            Season::Daily => Duration::days(1),
            Season::Weekly => Duration::weeks(1),
        }
    }
}

/// Seasonal naive forecaster (source `statistical`).
#[derive(Debug, Clone, Copy)]
pub struct SeasonalNaive {
    season: Season,
}

impl SeasonalNaive {
    /// Repeat `season`.
    pub fn new(season: Season) -> Self {
        Self { season }
    }

    /// Repeat the day before.
    pub fn daily() -> Self {
        Self::new(Season::Daily)
    }

    /// Repeat the week before.
    pub fn weekly() -> Self {
        Self::new(Season::Weekly)
    }
}

fn in_any(windows: &[MaskWindow], t: DateTime<Utc>) -> bool {
    windows.iter().any(|(from, to)| *from <= t && t < *to)
}

#[async_trait]
impl Predictor for SeasonalNaive {
    fn source(&self) -> ForecastSource {
        ForecastSource::Statistical
    }

    async fn predict(&self, request: &PredictRequest) -> Result<Forecast, PredictError> {
        if request.horizon_steps == 0 {
            return Err(PredictError::InvalidRequest("horizon_steps must be at least 1".into()));
        }
        let history = &request.history;
        let visible = visible_len(history, request.at);
        let masks = mask_windows(
            &request.events,
            &[&request.uplift],
            history.step_secs(),
            Duration::minutes(30),
            Duration::hours(1),
        );
        let season = self.season.length();
        let mut points = Vec::with_capacity(request.horizon_steps);
        let mut found = Vec::new();
        for i in 0..request.horizon_steps {
            let t = request.at + history.step() * i32::try_from(i).unwrap_or(i32::MAX);
            found.clear();
            for k in 1..=SEASONS_BACK
                + i32::try_from(i as i64 * i64::from(history.step_secs()) / season.num_seconds()).unwrap_or(0)
            {
                let past = t - season * k;
                let value = point_index(history, past)
                    .filter(|&index| index < visible && !in_any(&masks, history.timestamp(index)))
                    .and_then(|index| history.values()[index]);
                if let Some(v) = value {
                    found.push(v);
                }
                if found.len() == SEASONS_BACK as usize {
                    break;
                }
            }
            let Some(&p50) = found.first() else {
                return Err(PredictError::InsufficientHistory(format!(
                    "no usable value at the same time as {} in the {SEASONS_BACK} {} before {}",
                    t.to_rfc3339(),
                    if self.season == Season::Daily { "days" } else { "weeks" },
                    request.at.to_rfc3339()
                )));
            };
            let p90 = quantile(&mut found, 0.9).unwrap_or(p50).max(p50);
            points.push(ForecastPoint { p50, p90 });
        }
        let name = if self.season == Season::Daily { "daily" } else { "weekly" };
        Ok(Forecast {
            start: request.at,
            step_secs: history.step_secs(),
            baseline: points.iter().map(|p| p.p50).collect(),
            points,
            source: ForecastSource::Statistical,
            explanation: format!(
                "{name} seasonal naive: each step repeats the same time one {} earlier (skipping missing points and event windows); p90 from the last {SEASONS_BACK} seasons",
                if self.season == Season::Daily { "day" } else { "week" }
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prescale_core::{ScheduledEvent, TimeSeries, UpliftTable};

    fn t0() -> DateTime<Utc> {
        "2026-01-05T00:00:00Z".parse().unwrap()
    }

    fn request(values: Vec<Option<f64>>, at: DateTime<Utc>, horizon: usize) -> PredictRequest {
        PredictRequest {
            history: TimeSeries::new(t0(), Duration::hours(6), values).unwrap(),
            events: vec![],
            uplift: UpliftTable::default(),
            at,
            horizon_steps: horizon,
        }
    }

    #[tokio::test]
    async fn daily_repeats_the_day_before_and_skips_missing_points() {
        // 6-hour steps, 3 days.
        let v = vec![1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0, 100.0, 200.0, 300.0, 400.0];
        let mut values: Vec<Option<f64>> = v.into_iter().map(Some).collect();
        values[9] = None; // day 3, 06:00
        let at = t0() + Duration::days(3);
        let f = SeasonalNaive::daily().predict(&request(values, at, 4)).await.unwrap();
        let p50: Vec<f64> = f.points.iter().map(|p| p.p50).collect();
        assert_eq!(p50, vec![100.0, 20.0, 300.0, 400.0], "06:00 falls back two days");
        assert!(f.points.iter().all(|p| p.p90 >= p.p50));
        // p90 at 00:00 over {100, 10, 1}: type-7 quantile = 10 + 0.8 * 90 = 82 < p50, so p50.
        assert_eq!(f.points[0].p90, 100.0);
    }

    #[tokio::test]
    async fn weekly_repeats_the_week_before_and_never_peeks_past_the_origin() {
        let values: Vec<Option<f64>> = (0..4 * 8).map(|i| Some(f64::from(i))).collect(); // 8 days
        // Standing at day 7 00:00 with a 2-day horizon: day 7 repeats day 0; day 8 would need
        // day 1 (visible) - fine; both exist.
        let at = t0() + Duration::days(7);
        let f = SeasonalNaive::weekly().predict(&request(values.clone(), at, 8)).await.unwrap();
        assert_eq!(f.points[0].p50, 0.0);
        assert_eq!(f.points[4].p50, 4.0);
        // Standing at day 6, day 7's values are not visible yet and nothing is 2 weeks back.
        let err = SeasonalNaive::weekly().predict(&request(values, t0() + Duration::days(6), 8)).await.unwrap_err();
        assert!(err.to_string().contains("no usable value"), "{err}");
    }

    #[tokio::test]
    async fn event_windows_are_skipped() {
        let values: Vec<Option<f64>> = (0..12).map(|i| Some(f64::from(i))).collect();
        let mut req = request(values, t0() + Duration::days(3), 1);
        req.events.push(ScheduledEvent {
            id: "e".into(),
            name: "Spike".into(),
            kind: "launch".into(),
            start: t0() + Duration::days(2),
            end: t0() + Duration::days(2) + Duration::hours(1),
            description: None,
            expected_multiplier: None,
        });
        let f = SeasonalNaive::daily().predict(&req).await.unwrap();
        assert_eq!(f.points[0].p50, 4.0, "day 2 00:00 is inside the event window");
    }
}
