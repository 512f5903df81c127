//! The bounded history the daemon keeps per workload, on a grid aligned to the Unix epoch.
//!
//! Values are requests per step (counts), as the predictors and the policy read them. Gaps
//! stay `None`; a gap longer than the retention restarts the history rather than filling it.

use chrono::{DateTime, Duration, Utc};
use prescale_core::TimeSeries;

use crate::DaemonError;

/// A workload's recent history.
#[derive(Debug, Clone)]
pub struct History {
    series: TimeSeries,
    max_len: usize,
}

/// The start of the step containing `t` on an epoch-aligned grid of `step_secs`.
pub fn align_down(t: DateTime<Utc>, step_secs: u32) -> DateTime<Utc> {
    let step = i64::from(step_secs.max(1));
    let secs = t.timestamp().div_euclid(step) * step;
    DateTime::from_timestamp(secs, 0).unwrap_or(t)
}

impl History {
    /// An empty history on `step_secs` keeping at most `max_len` points, starting at `start` (aligned down).
    pub fn new(step_secs: u32, max_len: usize, start: DateTime<Utc>) -> Result<Self, DaemonError> {
        let series = TimeSeries::new(align_down(start, step_secs), Duration::seconds(i64::from(step_secs)), vec![])
            .map_err(|e| DaemonError::Stage { stage: "history", message: e.to_string() })?;
        Ok(Self { series, max_len: max_len.max(1) })
    }

    /// A history seeded with `seed` (re-gridded onto this step by timestamp; its step must
    /// equal this step), keeping at most `max_len` points.
    pub fn seeded(step_secs: u32, max_len: usize, seed: &TimeSeries) -> Result<Self, DaemonError> {
        if seed.step_secs() != step_secs {
            return Err(DaemonError::Stage {
                stage: "history",
                message: format!("the seed's step is {} s, the daemon's {} s", seed.step_secs(), step_secs),
            });
        }
        let mut history = Self::new(step_secs, max_len, seed.start())?;
        history.extend_to(seed.end());
        for (i, v) in seed.values().iter().enumerate() {
            if let Some(v) = v {
                history.set(seed.timestamp(i), *v);
            }
        }
        Ok(history)
    }

    /// The series.
    pub fn series(&self) -> &TimeSeries {
        &self.series
    }

    /// The step in seconds.
    pub fn step_secs(&self) -> u32 {
        self.series.step_secs()
    }

    /// End of the last point (exclusive).
    pub fn end(&self) -> DateTime<Utc> {
        self.series.end()
    }

    /// Grow the grid with missing points up to `end` (aligned down), dropping the oldest
    /// beyond the retention. A gap longer than the retention restarts the grid.
    pub fn extend_to(&mut self, end: DateTime<Utc>) {
        let end = align_down(end, self.step_secs());
        let step = i64::from(self.step_secs());
        let gap = (end - self.series.end()).num_seconds() / step;
        if gap <= 0 {
            return;
        }
        if gap as usize >= self.max_len {
            let start = end - Duration::seconds(step * self.max_len as i64);
            if let Ok(fresh) = TimeSeries::new(start, self.series.step(), vec![None; self.max_len]) {
                self.series = fresh;
            }
            return;
        }
        for _ in 0..gap {
            self.series.push(None);
        }
        self.series.truncate_front(self.max_len);
    }

    /// Set the point starting at `t` if it lies on the grid (ignored otherwise).
    pub fn set(&mut self, t: DateTime<Utc>, value: f64) {
        if !value.is_finite() {
            return;
        }
        if let Some(i) = self.series.index_at(t)
            && let Some(slot) = self.series.values_mut().get_mut(i)
        {
            *slot = Some(value);
        }
    }

    /// The newest present point no older than `stale_after` before `now`: `(its start, value)`.
    pub fn latest(&self, now: DateTime<Utc>, stale_after: Duration) -> Option<(DateTime<Utc>, f64)> {
        let values = self.series.values();
        let i = values.iter().rposition(Option::is_some)?;
        let t = self.series.timestamp(i);
        // A point is observed once it is complete: at its end.
        let observed_at = t + self.series.step();
        (now - observed_at <= stale_after).then(|| values[i].map(|v| (t, v))).flatten()
    }

    /// The number of present points.
    pub fn present(&self) -> usize {
        self.series.len() - self.series.missing()
    }

    /// The value one day before `t`, for the seasonal naive reference.
    pub fn day_before(&self, t: DateTime<Utc>) -> Option<f64> {
        self.series.value_at(t - Duration::days(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn extends_sets_and_bounds() {
        let mut h = History::new(60, 5, t("2026-01-01T00:00:30Z")).unwrap();
        assert_eq!(h.end(), t("2026-01-01T00:00:00Z"));
        h.extend_to(t("2026-01-01T00:03:10Z"));
        assert_eq!(h.series().len(), 3);
        h.set(t("2026-01-01T00:02:00Z"), 7.0);
        assert_eq!(h.latest(t("2026-01-01T00:03:10Z"), Duration::minutes(3)), Some((t("2026-01-01T00:02:00Z"), 7.0)));
        assert_eq!(h.latest(t("2026-01-01T00:10:00Z"), Duration::minutes(3)), None, "stale");
        h.extend_to(t("2026-01-01T00:06:00Z"));
        assert_eq!(h.series().len(), 5, "bounded");
        assert_eq!(h.series().start(), t("2026-01-01T00:01:00Z"));
        h.extend_to(t("2026-01-02T00:00:00Z"));
        assert_eq!(h.series().len(), 5);
        assert_eq!(h.end(), t("2026-01-02T00:00:00Z"));
        assert_eq!(h.present(), 0, "a gap longer than the retention restarts the history");
    }
}
