//! Live forecast accuracy: each observed point is scored against the forecast made one lead
//! time before it, as a rolling `rel_mae` (against daily seasonal naive, as in
//! `prescale_core::accuracy`) and a relative bias.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};

/// One scored point.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scored {
    forecast: f64,
    observed: f64,
    naive: Option<f64>,
}

/// Rolling accuracy of one workload's forecasts.
#[derive(Debug, Clone)]
pub struct LiveAccuracy {
    pending: BTreeMap<DateTime<Utc>, f64>,
    scored: VecDeque<Scored>,
    window: usize,
}

impl LiveAccuracy {
    /// A tracker over the last `window` scored points.
    pub fn new(window: usize) -> Self {
        Self { pending: BTreeMap::new(), scored: VecDeque::new(), window: window.max(1) }
    }

    /// Remember the forecast for the step starting at `target` (the first one made for it wins,
    /// so each target is scored against the forecast made a full lead time earlier).
    pub fn record_forecast(&mut self, target: DateTime<Utc>, p50: f64) {
        if p50.is_finite() {
            self.pending.entry(target).or_insert(p50);
        }
        // Bound the memory when observations stop arriving.
        while self.pending.len() > 4 * self.window {
            self.pending.pop_first();
        }
    }

    /// Score the observation of the step starting at `t` (`naive`: the value one day earlier).
    pub fn observe(&mut self, t: DateTime<Utc>, observed: f64, naive: Option<f64>) {
        // Forecasts for steps before `t` can no longer be scored.
        while let Some((&first, _)) = self.pending.first_key_value() {
            if first >= t {
                break;
            }
            self.pending.pop_first();
        }
        if let Some(forecast) = self.pending.remove(&t) {
            self.scored.push_back(Scored { forecast, observed, naive });
            while self.scored.len() > self.window {
                self.scored.pop_front();
            }
        }
    }

    /// Number of scored points in the window.
    pub fn len(&self) -> usize {
        self.scored.len()
    }

    /// Whether no point has been scored yet.
    pub fn is_empty(&self) -> bool {
        self.scored.is_empty()
    }

    /// MAE of the forecasts over MAE of seasonal naive, on the points that have a naive value.
    pub fn rel_mae(&self) -> Option<f64> {
        let (err, naive_err) = self
            .scored
            .iter()
            .filter_map(|s| s.naive.map(|n| ((s.forecast - s.observed).abs(), (n - s.observed).abs())))
            .fold((0.0, 0.0), |(a, b), (e, n)| (a + e, b + n));
        (naive_err > 0.0).then(|| err / naive_err)
    }

    /// Mean signed error relative to the mean observation (positive: forecasts too high).
    pub fn bias(&self) -> Option<f64> {
        let (diff, obs) =
            self.scored.iter().fold((0.0, 0.0), |(d, o), s| (d + s.forecast - s.observed, o + s.observed));
        (!self.scored.is_empty() && obs > 0.0).then(|| diff / obs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn scores_against_the_forecast_made_a_lead_earlier() {
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut acc = LiveAccuracy::new(10);
        acc.record_forecast(t0 + Duration::minutes(5), 110.0);
        // A later forecast for the same step does not replace the earlier one.
        acc.record_forecast(t0 + Duration::minutes(5), 500.0);
        acc.record_forecast(t0 + Duration::minutes(6), 90.0);
        acc.observe(t0 + Duration::minutes(5), 100.0, Some(80.0));
        acc.observe(t0 + Duration::minutes(6), 100.0, Some(120.0));
        assert_eq!(acc.len(), 2);
        // errors 10 + 10 over naive errors 20 + 20
        assert!((acc.rel_mae().unwrap() - 0.5).abs() < 1e-12);
        assert!(acc.bias().unwrap().abs() < 1e-12);
        acc.observe(t0 + Duration::minutes(7), 100.0, None);
        assert_eq!(acc.len(), 2, "a step without a forecast is not scored");
    }
}
