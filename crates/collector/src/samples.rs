//! Point-in-time samples laid on the range grid, for sources that can only read "now"
//! (pod scrapes, `metrics.k8s.io`): each read adds a sample, and a range answer averages the
//! samples inside each point. A point without a sample is missing, never zero.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};
use prescale_core::TimeSeries;

use crate::CollectorError;
use crate::source::Grid;

/// The samples of one signal of one workload over a bounded span of clock time.
#[derive(Debug, Clone)]
pub(crate) struct Samples {
    points: VecDeque<(DateTime<Utc>, f64)>,
    keep: Duration,
}

impl Samples {
    /// Keep samples for `keep` of clock time.
    pub fn new(keep: Duration) -> Self {
        Self { points: VecDeque::new(), keep }
    }

    /// Add a sample taken at `t` (non-finite values are dropped).
    pub fn push(&mut self, t: DateTime<Utc>, value: f64) {
        if !value.is_finite() {
            return;
        }
        // Keep the deque ordered even if a sample's time falls before the newest one.
        let pos = self.points.iter().rposition(|(at, _)| *at <= t).map_or(0, |i| i + 1);
        self.points.insert(pos, (t, value));
        let newest = self.points.back().map_or(t, |(at, _)| *at);
        while self.points.front().is_some_and(|(at, _)| *at < newest - self.keep) {
            self.points.pop_front();
        }
    }

    /// The newest sample.
    pub fn latest(&self) -> Option<(DateTime<Utc>, f64)> {
        self.points.back().copied()
    }

    /// The mean of the samples inside each point of the epoch-aligned grid over `[from, to)`.
    pub fn series(&self, from: DateTime<Utc>, to: DateTime<Utc>, step: Duration) -> Result<TimeSeries, CollectorError> {
        let grid = Grid::covering(from, to, step, 0)?;
        let mut sums = vec![(0.0, 0u32); grid.len];
        let end = grid.timestamp(grid.len);
        for (t, v) in self.points.iter().filter(|(t, _)| *t >= grid.start && *t < end) {
            let index = ((*t - grid.start).num_milliseconds() / (grid.step_secs * 1000)) as usize;
            if let Some(slot) = sums.get_mut(index) {
                slot.0 += v;
                slot.1 += 1;
            }
        }
        let values = sums.into_iter().map(|(sum, n)| (n > 0).then(|| sum / f64::from(n))).collect();
        TimeSeries::new(grid.start, grid.step(), values)
            .map_err(|e| CollectorError::InvalidRange(format!("cannot build the series: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn samples_average_per_point_and_gaps_stay_missing() {
        let mut s = Samples::new(Duration::hours(1));
        s.push(t("2026-01-01T00:00:10Z"), 10.0);
        s.push(t("2026-01-01T00:00:40Z"), 20.0);
        s.push(t("2026-01-01T00:02:30Z"), 7.0);
        s.push(t("2026-01-01T00:00:20Z"), f64::NAN);
        let series = s.series(t("2026-01-01T00:00:00Z"), t("2026-01-01T00:03:00Z"), Duration::minutes(1)).unwrap();
        assert_eq!(series.values(), &[Some(15.0), None, Some(7.0)]);
        assert_eq!(s.latest(), Some((t("2026-01-01T00:02:30Z"), 7.0)));
    }

    #[test]
    fn old_samples_are_dropped() {
        let mut s = Samples::new(Duration::minutes(5));
        s.push(t("2026-01-01T00:00:00Z"), 1.0);
        s.push(t("2026-01-01T00:10:00Z"), 2.0);
        let series = s.series(t("2026-01-01T00:00:00Z"), t("2026-01-01T00:11:00Z"), Duration::minutes(1)).unwrap();
        assert_eq!(series.values()[0], None);
        assert_eq!(series.values()[10], Some(2.0));
    }
}
