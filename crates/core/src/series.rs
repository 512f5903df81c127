//! A regular time series with explicit missing points, and the reference to a workload.
//!
//! Missing points are `None`, never zero: a gap in the metrics is not a quiet
//! minute, and the provisioner must be able to tell the two apart.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::CoreError;

/// A Kubernetes workload (a Deployment) by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkloadRef {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Deployment name.
    pub name: String,
}

impl WorkloadRef {
    /// A reference to `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), name: name.into() }
    }
}

impl std::fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A series on a regular grid: point `i` covers `[start + i*step, start + (i+1)*step)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeSeries {
    start: DateTime<Utc>,
    step_secs: u32,
    values: Vec<Option<f64>>,
}

impl TimeSeries {
    /// A series from its grid and values; `None` marks a missing point.
    pub fn new(start: DateTime<Utc>, step: Duration, values: Vec<Option<f64>>) -> Result<Self, CoreError> {
        let step_secs = u32::try_from(step.num_seconds()).map_err(|_| CoreError::ZeroStep)?;
        if step_secs == 0 {
            return Err(CoreError::ZeroStep);
        }
        Ok(Self { start, step_secs, values })
    }

    /// A series with no missing point.
    pub fn from_values(start: DateTime<Utc>, step: Duration, values: Vec<f64>) -> Result<Self, CoreError> {
        Self::new(start, step, values.into_iter().map(Some).collect())
    }

    /// Start of the first point.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// The grid step.
    pub fn step(&self) -> Duration {
        Duration::seconds(i64::from(self.step_secs))
    }

    /// The grid step in seconds.
    pub fn step_secs(&self) -> u32 {
        self.step_secs
    }

    /// End of the last point (exclusive).
    pub fn end(&self) -> DateTime<Utc> {
        self.timestamp(self.values.len())
    }

    /// Number of points, missing ones included.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the series has no point at all.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values, `None` where missing.
    pub fn values(&self) -> &[Option<f64>] {
        &self.values
    }

    /// Mutable access to the values (the grid stays fixed).
    pub fn values_mut(&mut self) -> &mut [Option<f64>] {
        &mut self.values
    }

    /// Append a point at the end of the grid.
    pub fn push(&mut self, value: Option<f64>) {
        self.values.push(value);
    }

    /// Drop the oldest points so that at most `max_len` remain.
    pub fn truncate_front(&mut self, max_len: usize) {
        if self.values.len() > max_len {
            let drop = self.values.len() - max_len;
            self.values.drain(..drop);
            self.start += self.step() * i32::try_from(drop).unwrap_or(i32::MAX);
        }
    }

    /// Start time of point `index`.
    pub fn timestamp(&self, index: usize) -> DateTime<Utc> {
        self.start + Duration::seconds(i64::from(self.step_secs) * index as i64)
    }

    /// Index of the point that contains `t`, if `t` lies on or after the start.
    /// The index may be past the end of the series.
    pub fn index_at(&self, t: DateTime<Utc>) -> Option<usize> {
        let secs = (t - self.start).num_seconds();
        if secs < 0 {
            return None;
        }
        Some((secs / i64::from(self.step_secs)) as usize)
    }

    /// Value at `t`, `None` when missing or outside the series.
    pub fn value_at(&self, t: DateTime<Utc>) -> Option<f64> {
        self.index_at(t).and_then(|i| self.values.get(i).copied().flatten())
    }

    /// The points strictly before `t`: what a forecaster standing at `t` may see.
    pub fn before(&self, t: DateTime<Utc>) -> TimeSeries {
        let n = match self.index_at(t) {
            None => 0,
            Some(_) => {
                let secs = (t - self.start).num_seconds();
                // A point is visible only once it is complete.
                ((secs / i64::from(self.step_secs)) as usize).min(self.values.len())
            }
        };
        TimeSeries { start: self.start, step_secs: self.step_secs, values: self.values[..n].to_vec() }
    }

    /// The points whose start lies in `[from, to)`.
    pub fn window(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> TimeSeries {
        let lo = self.index_at(from).unwrap_or(0).min(self.values.len());
        let hi = self.index_at(to).unwrap_or(0).min(self.values.len()).max(lo);
        TimeSeries { start: self.timestamp(lo), step_secs: self.step_secs, values: self.values[lo..hi].to_vec() }
    }

    /// Number of missing points.
    pub fn missing(&self) -> usize {
        self.values.iter().filter(|v| v.is_none()).count()
    }

    /// Mean of the present values, `None` if all are missing.
    pub fn mean(&self) -> Option<f64> {
        mean_present(&self.values)
    }

    /// Mean of the present values among the last `n` points.
    pub fn tail_mean(&self, n: usize) -> Option<f64> {
        let from = self.values.len().saturating_sub(n);
        mean_present(&self.values[from..])
    }

    /// Sum consecutive points into buckets of `step` (a multiple of this series' step),
    /// aligned to the Unix epoch. A bucket with any missing point is missing, so a gap
    /// never looks like a quiet period; a bucket only partly covered by the series is
    /// missing too.
    pub fn aggregate_sum(&self, step: Duration) -> Result<TimeSeries, CoreError> {
        let big = u32::try_from(step.num_seconds()).map_err(|_| CoreError::ZeroStep)?;
        if big == 0 || big % self.step_secs != 0 {
            return Err(CoreError::GridMismatch(format!(
                "cannot aggregate a {} s series to {} s buckets",
                self.step_secs,
                step.num_seconds()
            )));
        }
        let per = (big / self.step_secs) as usize;
        let offset_secs = self.start.timestamp().rem_euclid(i64::from(big));
        let bucket_start = self.start - Duration::seconds(offset_secs);
        let lead = (offset_secs / i64::from(self.step_secs)) as usize;
        let total = lead + self.values.len();
        let buckets = total.div_ceil(per);
        let mut out = Vec::with_capacity(buckets);
        for b in 0..buckets {
            let mut sum = 0.0;
            let mut complete = true;
            for k in 0..per {
                let slot = b * per + k;
                match slot.checked_sub(lead).and_then(|i| self.values.get(i)) {
                    Some(Some(v)) => sum += v,
                    _ => {
                        complete = false;
                        break;
                    }
                }
            }
            out.push(complete.then_some(sum));
        }
        TimeSeries::new(bucket_start, step, out)
    }
}

/// Mean of the present values of a slice.
pub(crate) fn mean_present(values: &[Option<f64>]) -> Option<f64> {
    let (sum, n) = values.iter().flatten().fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap_or_default()
    }

    #[test]
    fn before_hides_the_point_that_is_not_complete() {
        let s =
            TimeSeries::from_values(t0(), Duration::minutes(1), vec![1.0, 2.0, 3.0]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.before(t0() + Duration::seconds(90)).len(), 1);
        assert_eq!(s.before(t0() + Duration::minutes(2)).len(), 2);
        assert_eq!(s.before(t0() - Duration::minutes(2)).len(), 0);
        assert_eq!(s.before(t0() + Duration::hours(2)).len(), 3);
    }

    #[test]
    fn aggregate_marks_buckets_with_gaps_missing() {
        let start = t0() + Duration::minutes(3);
        let s = TimeSeries::new(
            start,
            Duration::minutes(1),
            vec![Some(1.0), Some(1.0), Some(2.0), Some(2.0), Some(2.0), Some(2.0), Some(2.0), None],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let a = s.aggregate_sum(Duration::minutes(5)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.start(), t0());
        // bucket 0 (00:00-00:05) is only partly covered; bucket 1 is complete; bucket 2 has a gap.
        assert_eq!(a.values(), &[None, Some(10.0), None]);
    }

    #[test]
    fn truncate_front_moves_the_start() {
        let mut s =
            TimeSeries::from_values(t0(), Duration::minutes(1), vec![1.0, 2.0, 3.0]).unwrap_or_else(|e| panic!("{e}"));
        s.truncate_front(2);
        assert_eq!(s.start(), t0() + Duration::minutes(1));
        assert_eq!(s.values(), &[Some(2.0), Some(3.0)]);
    }

    #[test]
    fn zero_step_is_rejected() {
        assert_eq!(TimeSeries::new(t0(), Duration::zero(), vec![]), Err(CoreError::ZeroStep));
    }
}
