//! The two source traits and the grid every range answer is laid on.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use prescale_core::{ScheduledEvent, TimeSeries, WorkloadRef};

use crate::{CollectorError, Signal};

/// Reads a workload's metrics.
///
/// Range answers share one grid contract: the series' step is `step`, points are aligned to
/// multiples of `step` since the Unix epoch (file sources: since the file's own phase, see
/// [`CsvHistory`](crate::CsvHistory)), the first point contains `from`, and the series holds
/// every point that is complete by `to` (ends at or before it), so a point still in progress
/// at `to` is left out. Points without data are `None`, never zero.
#[async_trait]
pub trait MetricSource: Send + Sync {
    /// `signal` of `workload` over `[from, to)` on a grid of `step` (whole seconds, at least 1).
    async fn range(
        &self,
        workload: &WorkloadRef,
        signal: Signal,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: Duration,
    ) -> Result<TimeSeries, CollectorError>;

    /// `signal` of `workload` as of `at`; `None` when the value is missing at that time.
    async fn instant(
        &self,
        workload: &WorkloadRef,
        signal: Signal,
        at: DateTime<Utc>,
    ) -> Result<Option<f64>, CollectorError>;
}

/// Reads a workload's scheduled events.
#[async_trait]
pub trait EventSource: Send + Sync {
    /// The events of `workload` that overlap `[from, to)`, ordered by start, then id.
    async fn events(
        &self,
        workload: &WorkloadRef,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ScheduledEvent>, CollectorError>;
}

/// The most points one range answer may hold (a week at one second, or ~9.5 years at one minute).
pub(crate) const MAX_RANGE_POINTS: i64 = 5_000_000;

/// The grid of a range answer: `len` points of `step_secs` from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grid {
    pub start: DateTime<Utc>,
    pub step_secs: i64,
    pub len: usize,
}

impl Grid {
    /// The grid from the point containing `from` to the last point that ends by `to`,
    /// with points at `phase_secs + k * step` seconds since the epoch.
    pub fn covering(
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: Duration,
        phase_secs: i64,
    ) -> Result<Grid, CollectorError> {
        let step_secs = step_seconds(step)?;
        if to <= from {
            return Err(CollectorError::InvalidRange(format!(
                "end {} is not after start {}",
                to.to_rfc3339(),
                from.to_rfc3339()
            )));
        }
        let shift = (from.timestamp() - phase_secs).rem_euclid(step_secs);
        let start_secs = from.timestamp() - shift;
        let start = DateTime::from_timestamp(start_secs, 0)
            .ok_or_else(|| CollectorError::InvalidRange(format!("start {from} is out of range")))?;
        let len = (to - start).num_milliseconds() / (step_secs * 1000);
        if len < 1 {
            return Err(CollectorError::InvalidRange(format!(
                "no {step_secs} s point that contains {} ends by {}",
                from.to_rfc3339(),
                to.to_rfc3339()
            )));
        }
        if len > MAX_RANGE_POINTS {
            return Err(CollectorError::InvalidRange(format!(
                "{len} points of {step_secs} s requested; at most {MAX_RANGE_POINTS} per call"
            )));
        }
        Ok(Grid { start, step_secs, len: len as usize })
    }

    /// Start of point `index`.
    pub fn timestamp(&self, index: usize) -> DateTime<Utc> {
        self.start + Duration::seconds(self.step_secs * index as i64)
    }

    /// The step as a chrono duration.
    pub fn step(&self) -> Duration {
        Duration::seconds(self.step_secs)
    }
}

/// A step as whole seconds, rejecting zero, negative and fractional steps.
pub(crate) fn step_seconds(step: Duration) -> Result<i64, CollectorError> {
    let secs = step.num_seconds();
    if secs < 1 || step != Duration::seconds(secs) || secs > i64::from(u32::MAX) {
        return Err(CollectorError::InvalidRange(format!(
            "step must be a whole number of seconds between 1 and {}, got {step}",
            u32::MAX
        )));
    }
    Ok(secs)
}

/// Whether an event overlaps `[from, to)`.
pub(crate) fn overlaps(event: &ScheduledEvent, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    event.start < to && event.end > from
}

/// Orders events by start, then id.
pub(crate) fn sort_events(events: &mut [ScheduledEvent]) {
    events.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.id.cmp(&b.id)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn grid_aligns_down_and_keeps_only_complete_points() {
        let g = Grid::covering(t("2026-01-01T00:00:30Z"), t("2026-01-01T00:03:10Z"), Duration::minutes(1), 0).unwrap();
        assert_eq!(g.start, t("2026-01-01T00:00:00Z"));
        assert_eq!(g.len, 3);
        let g = Grid::covering(t("2026-01-01T00:00:00Z"), t("2026-01-01T00:03:00Z"), Duration::minutes(1), 0).unwrap();
        assert_eq!(g.len, 3);
        let short = Grid::covering(t("2026-01-01T00:00:30Z"), t("2026-01-01T00:00:50Z"), Duration::minutes(1), 0);
        assert!(matches!(short, Err(CollectorError::InvalidRange(_))));
    }

    #[test]
    fn grid_honours_a_phase() {
        let g =
            Grid::covering(t("2026-01-01T00:00:00Z"), t("2026-01-01T00:10:00Z"), Duration::minutes(5), 240).unwrap();
        assert_eq!(g.start, t("2025-12-31T23:59:00Z"));
        assert_eq!(g.len, 2);
    }

    #[test]
    fn bad_steps_and_ranges_are_rejected() {
        let (a, b) = (t("2026-01-01T00:00:00Z"), t("2026-01-01T01:00:00Z"));
        for step in [Duration::zero(), Duration::seconds(-5), Duration::milliseconds(1500)] {
            assert!(matches!(Grid::covering(a, b, step, 0), Err(CollectorError::InvalidRange(_))), "{step}");
        }
        assert!(matches!(Grid::covering(b, a, Duration::seconds(1), 0), Err(CollectorError::InvalidRange(_))));
        assert!(matches!(Grid::covering(a, a, Duration::seconds(1), 0), Err(CollectorError::InvalidRange(_))));
    }

    #[test]
    fn huge_ranges_are_rejected() {
        let err = Grid::covering(t("2000-01-01T00:00:00Z"), t("2026-01-01T00:00:00Z"), Duration::seconds(1), 0);
        assert!(matches!(err, Err(CollectorError::InvalidRange(m)) if m.contains("at most")));
    }
}
