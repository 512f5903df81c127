//! The working grid of the statistical models: a history summed into buckets, with
//! event masks and calendar positions.
//!
//! Finer histories (1 minute, 10 seconds...) are summed into 5-minute buckets: per-minute
//! counts are too noisy to fit a seasonal profile on, and 5 minutes is the project's
//! accuracy grain. Buckets start at the history's own start, so that every bucket holds
//! whole history points and "visible before `at`" means the same for both.

use std::cell::RefCell;
use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use prescale_core::TimeSeries;

use crate::PredictError;

/// Seconds in a day.
pub(crate) const DAY_SECS: i64 = 86_400;
/// The bucket length for histories whose step divides it.
const WORKING_BUCKET_SECS: i64 = 300;

/// The bucket length the statistical models use for a history step.
pub(crate) fn bucket_secs_for(step_secs: u32) -> Result<i64, PredictError> {
    let step = i64::from(step_secs);
    let bucket = if WORKING_BUCKET_SECS % step == 0 { WORKING_BUCKET_SECS } else { step };
    if DAY_SECS % bucket != 0 {
        return Err(PredictError::InvalidRequest(format!(
            "history step of {step} s does not divide a day: daily seasonality needs whole steps per day"
        )));
    }
    Ok(bucket)
}

/// A time window `[from, to)` whose buckets are left out of seasonal profiles and level estimates.
pub(crate) type MaskWindow = (DateTime<Utc>, DateTime<Utc>);

/// A history summed into buckets.
#[derive(Debug, Clone)]
pub(crate) struct Grid {
    /// Start of bucket 0 (the history's start).
    pub start: DateTime<Utc>,
    /// Bucket length in seconds (a multiple of the step).
    pub bucket_secs: i64,
    /// History points per bucket.
    pub per: usize,
    /// Buckets per day.
    pub slots_per_day: usize,
    /// Sum per bucket; `None` when fewer than half of its points are present.
    pub values: Vec<Option<f64>>,
    /// Whether a bucket overlaps an event window (left out of profiles and levels).
    pub masked: Vec<bool>,
    /// Offset of the workload's local time from UTC, for weekday positions.
    pub utc_offset_secs: i64,
    /// Level ratios between whole grid days already computed (see [`Grid::day_ratio`]).
    day_ratios: RefCell<HashMap<(usize, usize), Option<f64>>>,
}

impl Grid {
    /// Sum the first `visible` points of `history` into `bucket_secs` buckets. A trailing
    /// bucket that `visible` cuts short is left out. A bucket with at least half of its
    /// points present is their mean times the points per bucket; with fewer it is missing.
    pub fn build(
        history: &TimeSeries,
        visible: usize,
        bucket_secs: i64,
        masks: &[MaskWindow],
        utc_offset_secs: i64,
    ) -> Self {
        let per = usize::try_from(bucket_secs / i64::from(history.step_secs())).unwrap_or(1).max(1);
        let raw = &history.values()[..visible.min(history.len())];
        let values: Vec<Option<f64>> = raw
            .chunks_exact(per)
            .map(|chunk| {
                let (sum, present) = chunk.iter().flatten().fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
                (present * 2 >= per && present > 0).then(|| sum / present as f64 * per as f64)
            })
            .collect();
        let mut grid = Self {
            start: history.start(),
            bucket_secs,
            per,
            slots_per_day: usize::try_from(DAY_SECS / bucket_secs).unwrap_or(1),
            masked: vec![false; values.len()],
            values,
            utc_offset_secs,
            day_ratios: RefCell::new(HashMap::new()),
        };
        grid.mask(masks);
        grid
    }

    /// Mark every bucket overlapping one of `windows`.
    fn mask(&mut self, windows: &[MaskWindow]) {
        let n = self.values.len() as i64;
        for (from, to) in windows {
            let lo = ((*from - self.start).num_seconds()).div_euclid(self.bucket_secs).max(0);
            let hi = ((*to - self.start).num_seconds() + self.bucket_secs - 1).div_euclid(self.bucket_secs).min(n);
            for b in lo..hi {
                self.masked[b as usize] = true;
            }
        }
    }

    /// Leave bucket `b` out of profiles and levels from now on.
    #[cfg(test)]
    pub fn mask_bucket(&mut self, b: usize) {
        self.masked[b] = true;
        self.day_ratios.borrow_mut().clear();
    }

    /// How much higher traffic ran around bucket `recent` than around bucket `old`: over the
    /// day centred on each (half a day either side), the sum of the buckets usable at the same
    /// offset on both, and before `visible`, of `recent`'s over `old`'s. `None` when fewer
    /// than a quarter of a day's buckets are usable on both, or the old sum is not positive.
    /// Centred days make the ratio independent of where the grid happens to start.
    pub fn day_ratio(&self, recent: usize, old: usize, visible: usize) -> Option<f64> {
        let spd = self.slots_per_day;
        let half = spd / 2;
        let end = visible.min(self.len());
        let complete = recent.max(old) + spd - half <= end;
        if complete && let Some(cached) = self.day_ratios.borrow().get(&(recent, old)) {
            return *cached;
        }
        let (mut sum_recent, mut sum_old, mut common) = (0.0, 0.0, 0usize);
        for k in 0..spd {
            let (Some(r), Some(o)) = ((recent + k).checked_sub(half), (old + k).checked_sub(half)) else { continue };
            if r >= end || o >= end {
                break;
            }
            if let (Some(r), Some(o)) = (self.usable(r), self.usable(o)) {
                sum_recent += r;
                sum_old += o;
                common += 1;
            }
        }
        let ratio = (common * 4 >= spd && sum_old > 0.0).then(|| sum_recent / sum_old);
        if complete {
            self.day_ratios.borrow_mut().insert((recent, old), ratio);
        }
        ratio
    }

    /// Number of buckets.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Start of bucket `b` (which may lie past the end).
    pub fn bucket_start(&self, b: usize) -> DateTime<Utc> {
        self.start + Duration::seconds(self.bucket_secs * b as i64)
    }

    /// The bucket's value when it is present and not masked.
    pub fn usable(&self, b: usize) -> Option<f64> {
        if self.masked.get(b).copied().unwrap_or(true) { None } else { self.values.get(b).copied().flatten() }
    }

    /// Day of the week of bucket `b` in local time, Monday = 0 (integer arithmetic: this runs
    /// for every candidate day of every profile value).
    pub fn weekday(&self, b: usize) -> usize {
        let secs = self.start.timestamp() + self.bucket_secs * b as i64 + self.utc_offset_secs;
        (secs.div_euclid(DAY_SECS) + 3).rem_euclid(7) as usize
    }

    /// Bucket of the day (UTC) that bucket `b` starts in.
    pub fn slot(&self, b: usize) -> usize {
        slot_of(self.bucket_start(b), self.bucket_secs)
    }
}

/// Number of points of `history` complete before `at`: what a forecaster standing at `at` may see.
pub(crate) fn visible_len(history: &TimeSeries, at: DateTime<Utc>) -> usize {
    let secs = (at - history.start()).num_seconds();
    if secs <= 0 {
        0
    } else {
        usize::try_from(secs / i64::from(history.step_secs())).unwrap_or(usize::MAX).min(history.len())
    }
}

/// Index (on the history's grid, possibly past its end) of the point containing `t`; `None` before the start.
pub(crate) fn point_index(history: &TimeSeries, t: DateTime<Utc>) -> Option<usize> {
    let secs = (t - history.start()).num_seconds();
    (secs >= 0).then(|| usize::try_from(secs / i64::from(history.step_secs())).unwrap_or(usize::MAX))
}

/// Day of the week of `t` in local time (`utc_offset_secs` east of UTC), Monday = 0.
pub(crate) fn weekday_of(t: DateTime<Utc>, utc_offset_secs: i64) -> usize {
    // 1970-01-01 was a Thursday (index 3).
    ((t.timestamp() + utc_offset_secs).div_euclid(DAY_SECS) + 3).rem_euclid(7) as usize
}

/// Bucket of the UTC day that `t` falls in.
pub(crate) fn slot_of(t: DateTime<Utc>, bucket_secs: i64) -> usize {
    (t.timestamp().rem_euclid(DAY_SECS) / bucket_secs) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn buckets_sum_whole_points_and_rescale_half_covered_ones() {
        let mut v: Vec<Option<f64>> = vec![Some(1.0); 15];
        v[5] = None; // 4 of 5 present: mean 1 x 5
        v[10] = None;
        v[11] = None;
        v[12] = None; // 2 of 5 present: missing
        let h = TimeSeries::new(t("2026-01-01T00:00:00Z"), Duration::minutes(1), v).unwrap();
        let g = Grid::build(&h, 14, 300, &[], 0);
        // The third bucket is cut short by `visible` and left out.
        assert_eq!(g.values, vec![Some(5.0), Some(5.0)]);
        let g = Grid::build(&h, 15, 300, &[], 0);
        assert_eq!(g.values, vec![Some(5.0), Some(5.0), None]);
    }

    #[test]
    fn masks_cover_every_overlapping_bucket() {
        let h = TimeSeries::from_values(t("2026-01-01T00:00:00Z"), Duration::minutes(5), vec![1.0; 6]).unwrap();
        let g = Grid::build(&h, 6, 300, &[(t("2026-01-01T00:07:00Z"), t("2026-01-01T00:15:00Z"))], 0);
        assert_eq!(g.masked, vec![false, true, true, false, false, false]);
        assert_eq!(g.usable(1), None);
        assert_eq!(g.usable(3), Some(1.0));
    }

    #[test]
    fn calendar_positions() {
        // 2026-01-05 is a Monday.
        assert_eq!(weekday_of(t("2026-01-05T12:00:00Z"), 0), 0);
        assert_eq!(weekday_of(t("2026-01-05T02:00:00Z"), -4 * 3600), 6, "still Sunday in UTC-4");
        assert_eq!(slot_of(t("2026-01-05T01:07:00Z"), 300), 13);
        assert!(bucket_secs_for(7).is_err());
        assert_eq!(bucket_secs_for(60).unwrap(), 300);
        assert_eq!(bucket_secs_for(3600).unwrap(), 3600);
    }

    #[test]
    fn bucket_weekdays_match_their_start_times() {
        let h = TimeSeries::from_values(t("2026-01-04T21:30:00Z"), Duration::minutes(5), vec![1.0; 3000]).unwrap();
        for offset in [0, -4 * 3600, 5 * 3600 + 1800] {
            let g = Grid::build(&h, h.len(), 300, &[], offset);
            for b in (0..g.len()).step_by(7) {
                assert_eq!(g.weekday(b), weekday_of(g.bucket_start(b), offset), "bucket {b}, offset {offset}");
            }
        }
    }
}
