//! [`uplift_table`]: what each past event did to traffic, measured against comparable days.
//!
//! Per event, in steps of the history:
//!
//! - **Eligible**: the event ended at or before the end of the history, and at least
//!   `min_coverage` of the steps overlapping its window are present. Otherwise it is skipped
//!   ([`SkipReason`]).
//! - **Baseline**: the same clock window shifted by whole days, on days of the same class
//!   (Monday-Friday with Monday-Friday, Saturday-Sunday with Saturday-Sunday, by the UTC date
//!   of the shifted start), at most `search_days` before or after, nearest first (the day
//!   before wins a tie). A day qualifies when no event of any kind overlaps the shifted window
//!   widened by `exclusion_margin` on both sides, and at least `min_coverage` of its steps are
//!   present. The first `baseline_days` qualifying days are used; fewer than
//!   `min_baseline_days` skips the event. The baseline is the median of their window means.
//! - **Uplift**: the mean of the present points in the event window divided by the baseline.
//! - **Lead and lag**: traffic and a per-step baseline profile (the median of the chosen days at
//!   the same clock step) are each smoothed by a centred rolling median of `smoothing_steps`,
//!   which ignores single spikes but keeps a sharp edge in place. A step is *elevated* when its
//!   smoothed traffic exceeds the smoothed profile times `1 + fraction · (uplift - 1)`.
//!   `lead_steps` counts the elevated steps right before the first step of the window, with
//!   `onset_fraction`, up to `max_lead`; `lag_steps` counts the elevated steps right after the
//!   last step of the window, with `settle_fraction`, up to `max_lag`. A missing or unsmoothable
//!   step ends a count. Both are 0 when the uplift is not above 1. A neighbouring event
//!   bounds both: the lead and the lag take at most half of the gap to the nearest other
//!   event on their side (none when the windows overlap on that side), because traffic in a
//!   gap between two events is raised by both and would otherwise be measured twice, once
//!   as the first event's lag and once as the next one's lead.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Utc, Weekday};
use prescale_core::{KindUplift, ScheduledEvent, TimeSeries, UpliftObservation, UpliftTable};

use crate::FeatureError;
use crate::input::{check_events, check_history, offset_ms, overlapping_steps};

/// How [`uplift_table`] measures each event (see the module documentation for the method).
#[derive(Debug, Clone, PartialEq)]
pub struct UpliftConfig {
    /// Comparable days used for the baseline, at most.
    pub baseline_days: usize,
    /// Comparable days needed for a baseline; an event with fewer is skipped.
    pub min_baseline_days: usize,
    /// How many days before and after the event to search for comparable days.
    pub search_days: u32,
    /// Fraction of the steps of a window (the event's or a comparable day's) that must be present.
    pub min_coverage: f64,
    /// A comparable day is rejected when an event overlaps its window widened by this on both sides.
    pub exclusion_margin: Duration,
    /// Longest lead looked for before the start.
    pub max_lead: Duration,
    /// Longest lag looked for after the end.
    pub max_lag: Duration,
    /// Share of the uplift that traffic must exceed before the start to count as risen (0-1].
    pub onset_fraction: f64,
    /// Share of the uplift that traffic must still exceed after the end to count as not yet settled (0-1].
    pub settle_fraction: f64,
    /// Width in steps of the centred rolling median applied before the lead and lag scans (odd).
    pub smoothing_steps: usize,
}

impl Default for UpliftConfig {
    /// 4 comparable days (2 needed) within ±14 days, half of each window present, a 1 h
    /// exclusion margin, lead and lag up to 6 h at the half-way level, a 5-step median.
    fn default() -> Self {
        Self {
            baseline_days: 4,
            min_baseline_days: 2,
            search_days: 14,
            min_coverage: 0.5,
            exclusion_margin: Duration::hours(1),
            max_lead: Duration::hours(6),
            max_lag: Duration::hours(6),
            onset_fraction: 0.5,
            settle_fraction: 0.5,
            smoothing_steps: 5,
        }
    }
}

impl UpliftConfig {
    fn check(&self) -> Result<(), FeatureError> {
        let invalid = |field: &str, problem: String| Err(FeatureError::InvalidConfig { field: field.into(), problem });
        if self.baseline_days == 0 {
            return invalid("baseline_days", "must be at least 1".into());
        }
        if self.min_baseline_days == 0 || self.min_baseline_days > self.baseline_days {
            return invalid(
                "min_baseline_days",
                format!("must be in 1..={} (baseline_days), got {}", self.baseline_days, self.min_baseline_days),
            );
        }
        if self.search_days == 0 {
            return invalid("search_days", "must be at least 1".into());
        }
        for (field, x) in [
            ("min_coverage", self.min_coverage),
            ("onset_fraction", self.onset_fraction),
            ("settle_fraction", self.settle_fraction),
        ] {
            if !(x > 0.0 && x <= 1.0) {
                return invalid(field, format!("must be in (0, 1], got {x}"));
            }
        }
        for (field, d) in
            [("exclusion_margin", self.exclusion_margin), ("max_lead", self.max_lead), ("max_lag", self.max_lag)]
        {
            if d < Duration::zero() {
                return invalid(field, format!("must not be negative, got {} s", d.num_seconds()));
            }
        }
        if self.smoothing_steps.is_multiple_of(2) {
            return invalid("smoothing_steps", format!("must be odd, got {}", self.smoothing_steps));
        }
        Ok(())
    }
}

/// Why an event has no uplift observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The event ends after the history does: its effect is not fully observed yet.
    NotEnded,
    /// Too many steps of the event window are missing (or outside the history).
    TooFewPoints {
        /// Present steps in the window.
        present: usize,
        /// Steps needed (`min_coverage` of the window).
        needed: usize,
    },
    /// Too few comparable days without events and with enough data.
    TooFewBaselineDays {
        /// Comparable days found.
        found: usize,
        /// Comparable days needed.
        needed: usize,
    },
    /// The baseline is zero, so a ratio is meaningless.
    ZeroBaseline,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotEnded => write!(f, "the event ends after the history"),
            Self::TooFewPoints { present, needed } => {
                write!(f, "{present} present points in the event window, {needed} needed")
            }
            Self::TooFewBaselineDays { found, needed } => {
                write!(f, "{found} comparable days without events, {needed} needed")
            }
            Self::ZeroBaseline => write!(f, "the baseline is zero"),
        }
    }
}

/// One event's measurement: its observation, or why it was skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct EventUplift {
    /// The event's id.
    pub event_id: String,
    /// The event's kind.
    pub kind: String,
    /// The observation, or the reason there is none.
    pub outcome: Result<UpliftObservation, SkipReason>,
}

/// Measure every event (see the module documentation), in input order, skipped ones included.
pub fn measure_event_uplifts(
    history: &TimeSeries,
    events: &[ScheduledEvent],
    config: &UpliftConfig,
) -> Result<Vec<EventUplift>, FeatureError> {
    let steps_per_day = check_history(history)?;
    check_events(events)?;
    config.check()?;
    let grid = Grid::new(history, steps_per_day, config);
    Ok(events
        .iter()
        .map(|event| EventUplift {
            event_id: event.id.clone(),
            kind: event.kind.clone(),
            outcome: grid.measure(event, events, config),
        })
        .collect())
}

/// The uplift table of `events` over `history`: per kind, the observations of the events that
/// could be measured (see the module documentation) and their medians. Kinds whose events
/// were all skipped are absent; [`measure_event_uplifts`] tells why.
pub fn uplift_table(
    history: &TimeSeries,
    events: &[ScheduledEvent],
    config: &UpliftConfig,
) -> Result<UpliftTable, FeatureError> {
    let mut by_kind: BTreeMap<String, Vec<UpliftObservation>> = BTreeMap::new();
    for measured in measure_event_uplifts(history, events, config)? {
        if let Ok(observation) = measured.outcome {
            by_kind.entry(measured.kind).or_default().push(observation);
        }
    }
    let kinds = by_kind
        .into_iter()
        .filter_map(|(kind, observations)| KindUplift::from_observations(observations).map(|k| (kind, k)))
        .collect();
    Ok(UpliftTable { step_secs: history.step_secs(), kinds })
}

/// The history on its grid, with the config resolved into steps.
struct Grid<'a> {
    history: &'a TimeSeries,
    values: &'a [Option<f64>],
    step_ms: i64,
    steps_per_day: i64,
    max_lead_steps: i64,
    max_lag_steps: i64,
}

const DAY_MS: i64 = 86_400_000;

impl<'a> Grid<'a> {
    fn new(history: &'a TimeSeries, steps_per_day: usize, config: &UpliftConfig) -> Self {
        let step_ms = i64::from(history.step_secs()) * 1000;
        Self {
            history,
            values: history.values(),
            step_ms,
            steps_per_day: steps_per_day as i64,
            max_lead_steps: config.max_lead.num_milliseconds() / step_ms,
            max_lag_steps: config.max_lag.num_milliseconds() / step_ms,
        }
    }

    fn get(&self, index: i64) -> Option<f64> {
        usize::try_from(index).ok().and_then(|i| self.values.get(i).copied().flatten())
    }

    /// Present count and mean of the steps `[lo, hi)`.
    fn window_mean(&self, lo: i64, hi: i64) -> (usize, Option<f64>) {
        let (sum, present) = (lo..hi).filter_map(|i| self.get(i)).fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
        (present, (present > 0).then(|| sum / present as f64))
    }

    fn measure(
        &self,
        event: &ScheduledEvent,
        events: &[ScheduledEvent],
        config: &UpliftConfig,
    ) -> Result<UpliftObservation, SkipReason> {
        if event.end > self.history.end() {
            return Err(SkipReason::NotEnded);
        }
        let from_ms = offset_ms(self.history, event.start);
        let to_ms = offset_ms(self.history, event.end);
        let (lo, hi) = overlapping_steps(from_ms, to_ms, self.step_ms);
        let needed = ((config.min_coverage * (hi - lo) as f64).ceil() as usize).max(1);
        let (present, observed) = self.window_mean(lo, hi);
        let observed = match observed {
            Some(mean) if present >= needed => mean,
            _ => return Err(SkipReason::TooFewPoints { present, needed }),
        };

        let day_shifts = self.comparable_days(event, events, config, (lo, hi), needed);
        if day_shifts.len() < config.min_baseline_days {
            return Err(SkipReason::TooFewBaselineDays { found: day_shifts.len(), needed: config.min_baseline_days });
        }
        let baseline = median(day_shifts.iter().map(|&(_, mean)| mean).collect()).unwrap_or(0.0);
        if baseline <= 0.0 {
            return Err(SkipReason::ZeroBaseline);
        }
        let uplift = observed / baseline;
        let shifts: Vec<i64> = day_shifts.iter().map(|&(d, _)| d).collect();
        let (max_lead, max_lag) = self.free_steps_around(event, events, (lo, hi));
        let (lead_steps, lag_steps) =
            if uplift > 1.0 { self.rise_extent(lo, hi, &shifts, uplift, config, max_lead, max_lag) } else { (0, 0) };
        Ok(UpliftObservation { event_id: event.id.clone(), date: event.start, uplift, lead_steps, lag_steps })
    }

    /// Up to `baseline_days` comparable days as (day shift, window mean), nearest first.
    fn comparable_days(
        &self,
        event: &ScheduledEvent,
        events: &[ScheduledEvent],
        config: &UpliftConfig,
        (lo, hi): (i64, i64),
        needed: usize,
    ) -> Vec<(i64, f64)> {
        let weekend = is_weekend(event.start);
        let margin_ms = config.exclusion_margin.num_milliseconds();
        let from_ms = offset_ms(self.history, event.start);
        let to_ms = offset_ms(self.history, event.end);
        let spans: Vec<(i64, i64)> =
            events.iter().map(|e| (offset_ms(self.history, e.start), offset_ms(self.history, e.end))).collect();

        let mut chosen = Vec::with_capacity(config.baseline_days);
        for distance in 1..=i64::from(config.search_days) {
            for shift in [-distance, distance] {
                if chosen.len() == config.baseline_days {
                    return chosen;
                }
                if is_weekend(event.start + Duration::days(shift)) != weekend {
                    continue;
                }
                let guard_from = from_ms + shift * DAY_MS - margin_ms;
                let guard_to = to_ms + shift * DAY_MS + margin_ms;
                if spans.iter().any(|&(s, e)| s < guard_to && e > guard_from) {
                    continue;
                }
                let offset = shift * self.steps_per_day;
                if let (present, Some(mean)) = self.window_mean(lo + offset, hi + offset)
                    && present >= needed
                {
                    chosen.push((shift, mean));
                }
            }
        }
        chosen
    }

    /// How many steps before `lo` and after `hi - 1` belong to this event: half of the gap to
    /// the nearest other event on each side (an overlapping one leaves none), at most the
    /// configured maxima. Traffic in a gap between two events is raised by both; splitting it
    /// keeps one event's tail from being measured as the next one's lead.
    fn free_steps_around(&self, event: &ScheduledEvent, events: &[ScheduledEvent], (lo, hi): (i64, i64)) -> (i64, i64) {
        let (mut lead, mut lag) = (self.max_lead_steps, self.max_lag_steps);
        for other in events.iter().filter(|e| !std::ptr::eq(*e, event) && e.id != event.id) {
            let (o_lo, o_hi) = overlapping_steps(
                offset_ms(self.history, other.start),
                offset_ms(self.history, other.end),
                self.step_ms,
            );
            if o_lo < hi && o_hi > lo {
                // Overlapping windows: the side the other event sticks out of cannot be told apart.
                if o_lo < lo {
                    lead = 0;
                }
                if o_hi > hi {
                    lag = 0;
                }
            } else if o_hi <= lo {
                lead = lead.min((lo - o_hi) / 2);
            } else {
                lag = lag.min((o_lo - hi) / 2);
            }
        }
        (lead.max(0), lag.max(0))
    }

    /// (lead, lag) in steps: the elevated runs right before `lo` and right after `hi - 1`, at
    /// most `max_lead` and `max_lag`.
    #[allow(clippy::too_many_arguments)]
    fn rise_extent(
        &self,
        lo: i64,
        hi: i64,
        shifts: &[i64],
        uplift: f64,
        config: &UpliftConfig,
        max_lead: i64,
        max_lag: i64,
    ) -> (u32, u32) {
        let half = (config.smoothing_steps / 2) as i64;
        let first = lo - self.max_lead_steps - half;
        let last = hi + self.max_lag_steps + half;
        let observed: Vec<Option<f64>> = (first..last).map(|i| self.get(i)).collect();
        let profile: Vec<Option<f64>> = (first..last)
            .map(|i| median(shifts.iter().filter_map(|d| self.get(i + d * self.steps_per_day)).collect()))
            .collect();
        let observed = centred_median(&observed, config.smoothing_steps);
        let profile = centred_median(&profile, config.smoothing_steps);
        let elevated = |i: i64, fraction: f64| {
            let k = (i - first) as usize;
            matches!((observed[k], profile[k]), (Some(o), Some(p)) if o > p * (1.0 + fraction * (uplift - 1.0)))
        };
        let lead = (1..=max_lead).take_while(|k| elevated(lo - k, config.onset_fraction)).count();
        let lag = (0..max_lag).take_while(|k| elevated(hi + k, config.settle_fraction)).count();
        (u32::try_from(lead).unwrap_or(u32::MAX), u32::try_from(lag).unwrap_or(u32::MAX))
    }
}

fn is_weekend(t: DateTime<Utc>) -> bool {
    matches!(t.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Median of the values, `None` when there is none.
fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 })
}

/// Centred rolling median of odd `width` over the present values; `None` where fewer than
/// half of the window (rounded up) is present or the window leaves the slice.
fn centred_median(values: &[Option<f64>], width: usize) -> Vec<Option<f64>> {
    let half = width / 2;
    let needed = width.div_ceil(2);
    (0..values.len())
        .map(|i| {
            if i < half || i + half >= values.len() {
                return None;
            }
            let window: Vec<f64> = values[i - half..=i + half].iter().flatten().copied().collect();
            if window.len() >= needed { median(window) } else { None }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centred_median_keeps_a_sharp_edge_and_drops_a_spike() {
        let v: Vec<Option<f64>> = [1.0, 1.0, 9.0, 1.0, 1.0, 1.0, 4.0, 4.0, 4.0, 4.0].map(Some).to_vec();
        let m = centred_median(&v, 5);
        assert_eq!(m[2..8], [Some(1.0), Some(1.0), Some(1.0), Some(1.0), Some(4.0), Some(4.0)]);
        assert_eq!(m[0], None);
        assert_eq!(m[9], None);
    }

    #[test]
    fn centred_median_needs_half_the_window() {
        let v = vec![Some(1.0), None, None, None, Some(2.0)];
        assert_eq!(centred_median(&v, 5)[2], None);
        let v = vec![Some(1.0), None, Some(3.0), None, Some(2.0)];
        assert_eq!(centred_median(&v, 5)[2], Some(2.0));
    }

    #[test]
    fn median_of_even_count_averages_the_middle() {
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
