//! Splitting a long range query into calls Prometheus accepts.
//!
//! Prometheus refuses a `query_range` whose `(end - start) / step` exceeds 11,000
//! ("exceeded maximum resolution of 11,000 points per timeseries"). A long grid is
//! therefore cut into consecutive windows of at most `max_points` evaluations each.

use chrono::{DateTime, Utc};

use crate::source::Grid;

/// The most points per series one Prometheus range call may return.
pub const PROMETHEUS_MAX_POINTS: usize = 11_000;

/// One `query_range` call: evaluations at `start`, `start + step`, ..., `end` (inclusive),
/// which fill grid points `first_index .. first_index + points`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueryWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub first_index: usize,
    pub points: usize,
}

/// The evaluation time of grid point `index`: the END of its interval, so a
/// `rate(...[step])` evaluated there describes exactly that interval.
pub(crate) fn evaluation_time(grid: &Grid, index: usize) -> DateTime<Utc> {
    grid.timestamp(index + 1)
}

/// Consecutive windows covering every point of `grid` once, each at most `max_points` long.
pub(crate) fn split_range(grid: &Grid, max_points: usize) -> Vec<QueryWindow> {
    let max_points = max_points.max(1);
    let mut windows = Vec::with_capacity(grid.len.div_ceil(max_points));
    let mut first_index = 0;
    while first_index < grid.len {
        let points = max_points.min(grid.len - first_index);
        windows.push(QueryWindow {
            start: evaluation_time(grid, first_index),
            end: evaluation_time(grid, first_index + points - 1),
            first_index,
            points,
        });
        first_index += points;
    }
    windows
}

/// The evaluation times Prometheus uses for a window: `start + k * step <= end`.
#[cfg(test)]
fn prometheus_evaluations(window: &QueryWindow, step: chrono::Duration) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = window.start;
    while t <= window.end {
        out.push(t);
        t += step;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use proptest::prelude::*;

    #[test]
    fn a_short_range_is_one_call() {
        let start: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let grid = Grid { start, step_secs: 60, len: 60 };
        let w = split_range(&grid, PROMETHEUS_MAX_POINTS);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].start, start + Duration::minutes(1));
        assert_eq!(w[0].end, start + Duration::minutes(60));
    }

    #[test]
    fn four_hours_at_one_second_takes_two_calls() {
        let start: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let grid = Grid { start, step_secs: 1, len: 4 * 3600 };
        let w = split_range(&grid, PROMETHEUS_MAX_POINTS);
        assert_eq!(w.iter().map(|w| w.points).collect::<Vec<_>>(), vec![11_000, 3_400]);
        assert_eq!(w[1].start, w[0].end + Duration::seconds(1));
    }

    proptest! {
        #[test]
        fn windows_cover_the_grid_exactly_and_stay_under_the_limit(
            start_secs in 0i64..4_000_000_000,
            step_secs in 1i64..7200,
            len in 1usize..60_000,
            max_points in prop_oneof![Just(PROMETHEUS_MAX_POINTS), 1usize..=PROMETHEUS_MAX_POINTS],
        ) {
            let start = DateTime::from_timestamp(start_secs, 0).unwrap();
            let grid = Grid { start, step_secs, len };
            let step = Duration::seconds(step_secs);
            let windows = split_range(&grid, max_points);
            let mut evaluated = Vec::with_capacity(len);
            let mut next_index = 0;
            for w in &windows {
                prop_assert_eq!(w.first_index, next_index);
                let evals = prometheus_evaluations(w, step);
                prop_assert_eq!(evals.len(), w.points);
                prop_assert!(w.points >= 1 && w.points <= max_points && w.points <= PROMETHEUS_MAX_POINTS);
                // The check Prometheus itself makes before it answers.
                prop_assert!((w.end - w.start).num_seconds() / step_secs <= PROMETHEUS_MAX_POINTS as i64);
                evaluated.extend(evals);
                next_index += w.points;
            }
            let expected: Vec<_> = (0..len).map(|i| evaluation_time(&grid, i)).collect();
            prop_assert_eq!(evaluated, expected);
        }
    }
}
