//! The cold-start baseline: a flat forecast at the recent level, for a workload whose history
//! is too short for a fitted model. Wrapped in the event-aware predictor, it lets announced
//! events with a declared multiplier raise capacity from the first hour on.

use async_trait::async_trait;
use chrono::Duration;
use prescale_core::{Forecast, ForecastPoint, ForecastSource};
use prescale_predictor::{PredictError, PredictRequest, Predictor};

/// Flat baseline at the mean of the last `window` of history before the origin.
#[derive(Debug, Clone, Copy)]
pub struct RecentLevel {
    window: Duration,
}

impl RecentLevel {
    /// Average over the last `window` of history.
    pub fn new(window: Duration) -> Self {
        Self { window }
    }
}

#[async_trait]
impl Predictor for RecentLevel {
    fn source(&self) -> ForecastSource {
        ForecastSource::Statistical
    }

    async fn predict(&self, request: &PredictRequest) -> Result<Forecast, PredictError> {
        if request.horizon_steps == 0 {
            return Err(PredictError::InvalidRequest("horizon_steps must be at least 1".into()));
        }
        let seen = request.history.before(request.at);
        let recent = seen.window(request.at - self.window, request.at);
        let mut values: Vec<f64> = recent.values().iter().flatten().copied().collect();
        if values.is_empty() {
            return Err(PredictError::InsufficientHistory(format!(
                "no observed point in the {} min before {}",
                self.window.num_minutes(),
                request.at.to_rfc3339()
            )));
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        values.sort_by(f64::total_cmp);
        let p90_index = ((values.len() as f64 - 1.0) * 0.9).round() as usize;
        let p90 = values.get(p90_index).copied().unwrap_or(mean).max(mean);
        let point = ForecastPoint { p50: mean, p90 };
        Ok(Forecast {
            start: request.at,
            step_secs: request.history.step_secs(),
            points: vec![point; request.horizon_steps],
            baseline: vec![mean; request.horizon_steps],
            source: ForecastSource::Statistical,
            explanation: format!(
                "history too short for a fitted model: flat baseline at the mean of the last {} observed points",
                values.len()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prescale_core::{TimeSeries, UpliftTable};

    #[tokio::test]
    async fn flat_at_the_recent_mean_using_only_the_past() {
        let start = "2026-01-01T00:00:00Z".parse().unwrap();
        let history = TimeSeries::from_values(start, Duration::minutes(1), vec![1.0, 10.0, 20.0, 1000.0]).unwrap();
        let request = PredictRequest {
            history,
            events: vec![],
            uplift: UpliftTable::default(),
            at: start + Duration::minutes(3),
            horizon_steps: 4,
        };
        let f = RecentLevel::new(Duration::minutes(2)).predict(&request).await.unwrap();
        assert_eq!(f.points.len(), 4);
        assert_eq!(f.points[0].p50, 15.0, "the mean of 10 and 20; the point at the origin is not seen");
        assert!(f.points[0].p90 >= f.points[0].p50);
    }
}
