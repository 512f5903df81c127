//! The seasonal exponential-smoothing baseline: a robust seasonal profile times an
//! exponentially smoothed level, damped toward the profile over the horizon.
//!
//! For a bucket `b` forecast from an origin whose last complete bucket is `k - 1`:
//!
//! ```text
//! profile[b] = median over the `days` most recent comparable days d of
//!              mean(y[b - d*day - w ..= b - d*day + w])        (present, unmasked buckets)
//! level[k]   = Sy[k] / Sp[k],  Sy <- (1-alpha) Sy + alpha y[t],  Sp <- (1-alpha) Sp + alpha profile[t]
//! forecast   = profile[b] * (1 + (level[k] - 1) * phi^(b - k + 1))
//! ```
//!
//! This is multiplicative exponential smoothing on the profile-normalised series, with the
//! seasonal component estimated robustly (a median over comparable days, so one surge or
//! one bad day does not move it) instead of by its own smoothing recursion, and a damped
//! level (the correction fades toward the profile, which already carries the recent
//! days' level). Comparable days are all days, weekdays vs weekend days, or the same day
//! of the week (the weekly season). Buckets inside event windows are masked: they feed
//! neither the profile nor the level, so the baseline stays event-free.

use serde::{Deserialize, Serialize};

use crate::grid::Grid;
use crate::stats::median;

/// How far back comparable days are searched.
pub(crate) const LOOKBACK_DAYS: usize = 28;
/// Bounds on the level factor: a guard against a near-zero profile, not a tuning knob.
const LEVEL_BOUNDS: (f64, f64) = (0.05, 20.0);

/// Which past days count as comparable when building a bucket's seasonal profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayGrouping {
    /// Every day (daily season).
    AllDays,
    /// Monday-Friday with Monday-Friday, Saturday-Sunday with Saturday-Sunday (local time).
    WeekdayWeekend,
    /// The same day of the week (weekly season).
    SameWeekday,
}

impl DayGrouping {
    fn comparable(self, target_weekday: usize, candidate_weekday: usize) -> bool {
        match self {
            DayGrouping::AllDays => true,
            DayGrouping::WeekdayWeekend => (target_weekday >= 5) == (candidate_weekday >= 5),
            DayGrouping::SameWeekday => target_weekday == candidate_weekday,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            DayGrouping::AllDays => "all days",
            DayGrouping::WeekdayWeekend => "weekdays/weekend days apart",
            DayGrouping::SameWeekday => "same weekday",
        }
    }
}

/// How the seasonal profile is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileParams {
    /// Which days are comparable.
    pub grouping: DayGrouping,
    /// How many of the most recent comparable days (within 28 days) the median takes.
    pub days: usize,
    /// Each day contributes the mean of the buckets within this many buckets of the same time.
    pub half_window: usize,
}

impl ProfileParams {
    /// A short human-readable description.
    pub(crate) fn describe(&self) -> String {
        format!(
            "median of the last {} comparable days ({}), ±{} buckets",
            self.days,
            self.grouping.describe(),
            self.half_window
        )
    }
}

/// The fitted parameters of the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BaselineParams {
    /// How the seasonal profile is built.
    pub profile: ProfileParams,
    /// Smoothing weight of the level, per bucket, in (0, 1].
    pub alpha: f64,
    /// Damping of the level correction per bucket ahead, in (0, 1].
    pub phi: f64,
}

/// The seasonal profile of bucket `target`, from buckets before `visible` only.
/// Falls back to all days when no comparable day has data; `None` when no day has.
pub(crate) fn profile_value(
    grid: &Grid,
    target: usize,
    visible: usize,
    params: &ProfileParams,
    scratch: &mut Vec<f64>,
) -> Option<f64> {
    let found = collect_days(grid, target, visible, params, params.grouping, scratch);
    if found == 0 && params.grouping != DayGrouping::AllDays {
        collect_days(grid, target, visible, params, DayGrouping::AllDays, scratch);
    }
    median(scratch)
}

/// Fill `scratch` with the window means of up to `params.days` comparable days; returns how many.
///
/// A day further back than the `params.days` most recent comparable ones (because those have
/// no usable data at this time, typically an event window masked day after day) is rescaled
/// by [`Grid::day_ratio`] to the level of the most recent comparable day, so that a slot
/// masked for weeks is not forecast at the level of weeks ago.
fn collect_days(
    grid: &Grid,
    target: usize,
    visible: usize,
    params: &ProfileParams,
    grouping: DayGrouping,
    scratch: &mut Vec<f64>,
) -> usize {
    scratch.clear();
    let spd = grid.slots_per_day;
    let target_weekday = grid.weekday(target);
    let w = params.half_window;
    let mut candidates = 0usize;
    let mut reference = None;
    for day in 1..=LOOKBACK_DAYS {
        let Some(center) = target.checked_sub(day * spd) else { break };
        // `center` lies exactly `day` days before `target`.
        let candidate_weekday = (target_weekday + 7 - day % 7) % 7;
        if !grouping.comparable(target_weekday, candidate_weekday) {
            continue;
        }
        candidates += 1;
        let recent = *reference.get_or_insert(center);
        let lo = center.saturating_sub(w);
        let hi = (center + w + 1).min(visible);
        let (sum, n) = (lo..hi).filter_map(|b| grid.usable(b)).fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
        if n > 0 {
            let mut value = sum / n as f64;
            if candidates > params.days
                && let Some(ratio) = grid.day_ratio(recent, center, visible)
            {
                value *= ratio;
            }
            scratch.push(value);
            if scratch.len() >= params.days {
                break;
            }
        }
    }
    scratch.len()
}

/// The smoothed level: exponentially weighted sums of observations and of their profile.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Level {
    /// Smoothed observations (buckets with a profile).
    observed: f64,
    /// Smoothed profile values of the same buckets.
    expected: f64,
    /// Smoothed observations of every usable bucket, and their weight: the recent mean,
    /// used when a bucket has no profile at all.
    recent: f64,
    recent_weight: f64,
}

impl Level {
    /// Take one usable bucket `y` whose profile was `profile`.
    pub fn update(&mut self, y: f64, profile: Option<f64>, alpha: f64) {
        if let Some(p) = profile {
            self.observed += alpha * (y - self.observed);
            self.expected += alpha * (p - self.expected);
        }
        self.recent += alpha * (y - self.recent);
        self.recent_weight += alpha * (1.0 - self.recent_weight);
    }

    /// Observed over expected, 1 before any observation.
    pub fn factor(&self) -> f64 {
        if self.expected > 0.0 { (self.observed / self.expected).clamp(LEVEL_BOUNDS.0, LEVEL_BOUNDS.1) } else { 1.0 }
    }

    /// Exponentially weighted mean of recent buckets, if any was seen.
    pub fn recent_mean(&self) -> Option<f64> {
        (self.recent_weight > 0.0).then(|| self.recent / self.recent_weight)
    }
}

/// The forecast of a bucket `lead` buckets after the origin bucket (0 = the first unseen one).
pub(crate) fn point(profile: Option<f64>, level: &Level, lead: usize, phi: f64) -> Option<f64> {
    match profile {
        Some(p) => {
            let damping = phi.powi(i32::try_from(lead + 1).unwrap_or(i32::MAX));
            Some((p * (1.0 + (level.factor() - 1.0) * damping)).max(0.0))
        }
        None => level.recent_mean(),
    }
}

/// The profile of every bucket of the grid, each from the buckets before it.
pub(crate) fn profile_series(grid: &Grid, params: &ProfileParams) -> Vec<Option<f64>> {
    let mut scratch = Vec::with_capacity(params.days);
    (0..grid.len()).map(|b| profile_value(grid, b, b, params, &mut scratch)).collect()
}

/// The level state before each bucket: `levels[k]` has seen buckets `0..k`.
pub(crate) fn level_series(grid: &Grid, profile: &[Option<f64>], alpha: f64) -> Vec<Level> {
    let mut levels = Vec::with_capacity(grid.len() + 1);
    let mut level = Level::default();
    levels.push(level);
    for (b, p) in profile.iter().enumerate() {
        if let Some(y) = grid.usable(b) {
            level.update(y, *p, alpha);
        }
        levels.push(level);
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Duration, Utc};
    use prescale_core::TimeSeries;

    fn monday() -> DateTime<Utc> {
        "2026-01-05T00:00:00Z".parse().unwrap()
    }

    /// Hourly buckets: day d has value (d + 1) * 10 at every hour, except weekends which have 1.
    fn hourly(days: usize) -> Grid {
        let mut v = Vec::new();
        for d in 0..days {
            for _ in 0..24 {
                v.push(Some(if d % 7 >= 5 { 1.0 } else { (d + 1) as f64 * 10.0 }));
            }
        }
        let h = TimeSeries::new(monday(), Duration::hours(1), v).unwrap();
        Grid::build(&h, h.len(), 3600, &[], 0)
    }

    #[test]
    fn profile_is_the_median_of_comparable_days() {
        let g = hourly(9); // Mon..Fri = days 0-4 (10..50), Sat-Sun = 1, Mon = 80, Tue = 90
        let mut s = Vec::new();
        let target = 8 * 24 + 5; // Tuesday of week 2, 05:00
        let all = ProfileParams { grouping: DayGrouping::AllDays, days: 3, half_window: 0 };
        // Last 3 days: Mon 80, Sun 1, Sat 1 -> median 1.
        assert_eq!(profile_value(&g, target, target, &all, &mut s), Some(1.0));
        let weekday = ProfileParams { grouping: DayGrouping::WeekdayWeekend, days: 3, half_window: 0 };
        // Last 3 weekdays: Mon 80, Fri 50, Thu 40 -> 50.
        assert_eq!(profile_value(&g, target, target, &weekday, &mut s), Some(50.0));
        let same = ProfileParams { grouping: DayGrouping::SameWeekday, days: 3, half_window: 0 };
        // Only one earlier Tuesday (20).
        assert_eq!(profile_value(&g, target, target, &same, &mut s), Some(20.0));
    }

    #[test]
    fn profile_ignores_masked_and_invisible_buckets() {
        let mut g = hourly(3);
        let target = 2 * 24 + 3;
        let p = ProfileParams { grouping: DayGrouping::AllDays, days: 2, half_window: 1 };
        let mut s = Vec::new();
        // Days 1 (20) and 0 (10): median of two = 15.
        assert_eq!(profile_value(&g, target, target, &p, &mut s), Some(15.0));
        for b in 24 + 2..=24 + 4 {
            g.mask_bucket(b);
        }
        assert_eq!(profile_value(&g, target, target, &p, &mut s), Some(10.0), "day 1's window is masked");
        assert_eq!(profile_value(&g, target, 3, &p, &mut s), Some(10.0), "visible cuts day 0's window short");
        assert_eq!(profile_value(&g, target, 1, &p, &mut s), None, "nothing visible in any window");
        assert_eq!(profile_value(&g, 5, 5, &p, &mut s), None, "no earlier day");
    }

    #[test]
    fn a_slot_masked_for_days_is_rescaled_to_the_recent_level() {
        // Hourly buckets: 10 per hour for six days, then 30 (the level triples); hour 12 is an
        // event window on the three days at 30.
        let v: Vec<Option<f64>> = (0..10 * 24).map(|b| Some(if b / 24 >= 6 { 30.0 } else { 10.0 })).collect();
        let h = TimeSeries::new(monday(), Duration::hours(1), v).unwrap();
        let mut g = Grid::build(&h, h.len(), 3600, &[], 0);
        for day in 6..9 {
            g.mask_bucket(day * 24 + 12);
        }
        let target = 9 * 24 + 12;
        let p = ProfileParams { grouping: DayGrouping::AllDays, days: 1, half_window: 0 };
        let mut s = Vec::new();
        // Day 5 is the nearest usable one; the days since ran 3x as high outside hour 12.
        assert_eq!(profile_value(&g, target, target, &p, &mut s), Some(30.0));
        // An unmasked slot comes from the most recent day as it is.
        assert_eq!(profile_value(&g, target - 1, target - 1, &p, &mut s), Some(30.0));
        // Around day 8 noon against around day 5 noon: 30 against 10 (hour 12 left out of both).
        assert!((g.day_ratio(8 * 24 + 12, 5 * 24 + 12, target).unwrap() - 3.0).abs() < 1e-12);
        // Around day 6 00:00 against day 2 00:00: the six days at 10 and the days at 30 split it.
        assert!((g.day_ratio(6 * 24, 2 * 24, target).unwrap() - 2.0).abs() < 1e-12);
        // Only what lies before `visible` counts: six hours of the day around day 9 06:00.
        assert!((g.day_ratio(9 * 24 + 6, 24 + 6, 9 * 24 + 6).unwrap() - 3.0).abs() < 1e-12);
        assert_eq!(g.day_ratio(9 * 24 + 6, 24 + 6, 9 * 24 - 1), None, "fewer than a quarter of a day in common");
    }

    #[test]
    fn level_is_a_ratio_of_exponential_smoothings() {
        // Hand-computed: alpha 0.5, observations 2, 4 against profile 1, 2.
        let mut l = Level::default();
        l.update(2.0, Some(1.0), 0.5); // observed 1.0, expected 0.5
        l.update(4.0, Some(2.0), 0.5); // observed 2.5, expected 1.25
        assert!((l.factor() - 2.0).abs() < 1e-12);
        // recent: 1.0 then 2.5, weight 0.5 then 0.75 -> 3.333...
        assert!((l.recent_mean().unwrap() - 2.5 / 0.75).abs() < 1e-12);
        // forecast: profile 10, level 2, phi 0.5, lead 0 -> 10 * (1 + 1 * 0.5) = 15; lead 1 -> 12.5
        assert!((point(Some(10.0), &l, 0, 0.5).unwrap() - 15.0).abs() < 1e-12);
        assert!((point(Some(10.0), &l, 1, 0.5).unwrap() - 12.5).abs() < 1e-12);
        assert_eq!(point(Some(10.0), &Level::default(), 0, 0.5), Some(10.0), "no observation: the profile");
        assert_eq!(point(None, &Level::default(), 0, 0.5), None);
    }

    #[test]
    fn level_series_skips_missing_and_masked_buckets() {
        let h = TimeSeries::new(monday(), Duration::hours(1), vec![Some(2.0), None, Some(100.0), Some(4.0)]).unwrap();
        let mut g = Grid::build(&h, 4, 3600, &[], 0);
        g.mask_bucket(2);
        let profile = vec![Some(1.0), Some(1.0), Some(1.0), Some(2.0)];
        let levels = level_series(&g, &profile, 0.5);
        assert_eq!(levels.len(), 5);
        assert_eq!(levels[2], levels[1], "a missing bucket changes nothing");
        assert_eq!(levels[3], levels[2], "a masked bucket changes nothing");
        assert!((levels[4].factor() - 2.0).abs() < 1e-12);
    }
}
