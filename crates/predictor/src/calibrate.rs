//! Uplifts measured against the model's own baseline, so that an event's multiplier says how
//! far traffic rose above what this baseline forecast for the event window.
//!
//! The uplift table (from `prescale-features`) compares each past event with comparable days.
//! When the level of all traffic moves (a tournament that lifts the whole site, a service
//! that grows), comparable days understate the event day's level, while the baseline's level
//! already follows it: the table's multiplier, applied on top of the baseline, would count the
//! level twice (on the World Cup 1998 trace, 3-4x too high). [`calibrate`] re-measures every
//! observation as `sum(actual) / sum(baseline)` over the event window, each step's baseline
//! being the forecast made `lead` ahead of its bucket from the data before that origin, with
//! the events masked, exactly as the model predicts. Other kinds' uplifts in the window are
//! divided out (a second pass, on the first pass's scale), so overlapping events are not
//! counted twice either; events of the same kind at the same time count once (see
//! `events::combined_factor`), so their window measures the joint effect as it is. Leads and lags stay as
//! measured (they are time extents, not levels).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use prescale_core::{KindUplift, ScheduledEvent, TimeSeries, UpliftObservation, UpliftTable};

use crate::backtest::RollingBaseline;
use crate::events::{Effect, SHAPE_SEGMENTS, Shapes, Spreads, combined_factor, segment_of};
use crate::grid::Grid;
use crate::seasonal::BaselineParams;
use crate::stats::{median, quantile};

/// Share of an event window's steps that need an actual and a baseline value.
const MIN_COVERAGE: f64 = 0.5;
/// Events of a kind with a fully measured window needed before the kind gets a shape.
const MIN_SHAPED_EVENTS: usize = 3;

/// What [`calibrate`] learns: the re-measured table, and per kind with enough measured
/// windows its shape and its spread.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Calibrated {
    pub table: UpliftTable,
    pub shapes: Shapes,
    pub spreads: Spreads,
}

/// The table with each kind's observations re-measured against the baseline `params` fits on
/// `grid` (built from `history`), and the shapes and spreads of the kinds with enough
/// measured windows. A kind none of whose events can be re-measured (outside the grid, no
/// baseline yet) keeps its observations as they were, so that no announced kind loses its
/// uplift; a kind with some keeps only the re-measured ones, never a mix of two scales.
pub(crate) fn calibrate(
    history: &TimeSeries,
    grid: &Grid,
    params: BaselineParams,
    events: &[ScheduledEvent],
    table: &UpliftTable,
    lead: Duration,
) -> Calibrated {
    if table.kinds.is_empty() {
        return Calibrated { table: table.clone(), ..Calibrated::default() };
    }
    let rolling = RollingBaseline::new(history, grid, params);
    let by_id: HashMap<&str, &ScheduledEvent> = events.iter().map(|e| (e.id.as_str(), e)).collect();
    let measure = Measure { history, grid, rolling: &rolling, by_id: &by_id, table, lead };
    // Pass 1 measures each event alone; pass 2 divides out the other kinds' pass-1 uplifts
    // (on the same scale), which matters only where windows or ramps overlap.
    let alone = measure.pass(None);
    measure.pass(Some((&alone, events)))
}

/// One event window as measured: its uplift over the baseline, the ratio per shape segment
/// (when every segment has a step), and per step (actual, expected, segment).
struct Window {
    uplift: f64,
    segments: Option<Vec<f64>>,
    steps: Vec<(f64, f64, usize)>,
}

/// What both passes of [`calibrate`] share.
struct Measure<'a> {
    history: &'a TimeSeries,
    grid: &'a Grid,
    rolling: &'a RollingBaseline<'a>,
    by_id: &'a HashMap<&'a str, &'a ScheduledEvent>,
    table: &'a UpliftTable,
    lead: Duration,
}

impl Measure<'_> {
    /// Every kind of the table re-measured, dividing out the factors the events of `others`
    /// get from what was learned before.
    fn pass(&self, others: Option<(&Calibrated, &[ScheduledEvent])>) -> Calibrated {
        let step_secs = self.history.step_secs();
        let effects: Vec<(&str, Effect)> = others
            .map(|(known, events)| {
                events
                    .iter()
                    .map(|e| {
                        (
                            e.id.as_str(),
                            Effect::resolve(e, &[&known.table], step_secs).shaped(&known.shapes, &known.spreads),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut out = Calibrated::default();
        for (kind, summary) in &self.table.kinds {
            let mut windows = Vec::new();
            let measured: Vec<UpliftObservation> = summary
                .observations
                .iter()
                .filter_map(|o| {
                    let event = self.by_id.get(o.event_id.as_str())?;
                    // Events of the same kind at the same time count once: what this window
                    // shows is their joint effect, nothing to divide out.
                    let others: Vec<Effect> = effects
                        .iter()
                        .filter(|(id, e)| *id != o.event_id && e.kind != *kind)
                        .map(|(_, e)| e.clone())
                        .collect();
                    let window = self.against_baseline(event, &others)?;
                    let uplift = window.uplift;
                    windows.push(window);
                    Some(UpliftObservation { uplift, ..o.clone() })
                })
                .collect();
            let Some(calibrated) = KindUplift::from_observations(measured) else {
                out.table.kinds.insert(kind.clone(), summary.clone());
                continue;
            };
            if windows.len() >= MIN_SHAPED_EVENTS {
                let relative: Vec<Vec<f64>> = windows
                    .iter()
                    .filter_map(|w| Some(w.segments.as_ref()?.iter().map(|r| r / w.uplift).collect()))
                    .collect();
                let shape = (relative.len() >= MIN_SHAPED_EVENTS).then(|| median_shape(&relative)).flatten();
                // The spread: the 90th percentile of actual over what the kind's median (and
                // shape) would have forecast, over every step of every measured window.
                let mut residuals: Vec<f64> = windows
                    .iter()
                    .flat_map(|w| w.steps.iter())
                    .filter_map(|&(y, f, k)| {
                        let forecast = f * calibrated.median_uplift * shape.as_ref().map_or(1.0, |s| s[k]);
                        (forecast > 0.0).then(|| y / forecast)
                    })
                    .collect();
                if let Some(q) = quantile(&mut residuals, 0.9) {
                    out.spreads.insert(kind.clone(), q.max(1.0));
                }
                if let Some(shape) = shape {
                    out.shapes.insert(kind.clone(), shape);
                }
            }
            out.table.kinds.insert(kind.clone(), calibrated);
        }
        out.table.step_secs = self.table.step_secs;
        out
    }

    /// `sum(actual) / sum(baseline x other events' factors)` over the steps overlapping the
    /// event's window, the same ratio per shape segment when every segment has a step with
    /// both, and the steps; `None` when too few steps have both or the baseline sums to zero.
    fn against_baseline(&self, event: &ScheduledEvent, others: &[Effect]) -> Option<Window> {
        let (history, grid) = (self.history, self.grid);
        let step = i64::from(history.step_secs());
        let offset = |t: DateTime<Utc>| (t - history.start()).num_seconds();
        let lo = offset(event.start).div_euclid(step).max(0);
        let hi = (offset(event.end) + step - 1).div_euclid(step).min(i64::try_from(grid.len() * grid.per).ok()?);
        if hi <= lo {
            return None;
        }
        let (mut actual, mut expected) = (0.0, 0.0);
        let mut segments = [(0.0, 0.0); SHAPE_SEGMENTS];
        let mut steps = Vec::new();
        let half_step = Duration::seconds(step / 2);
        for i in lo as usize..hi as usize {
            let Some(y) = history.values().get(i).copied().flatten() else { continue };
            let origin = grid.bucket_start(i / grid.per) - self.lead;
            let Some(f) = self.rolling.point_forecast(origin, i) else { continue };
            let mid = history.timestamp(i) + half_step;
            let f = f * combined_factor(others, mid);
            actual += y;
            expected += f;
            let k = segment_of(mid, event.start, event.end).unwrap_or(if mid < event.start {
                0
            } else {
                SHAPE_SEGMENTS - 1
            });
            segments[k].0 += y;
            segments[k].1 += f;
            steps.push((y, f, k));
        }
        let enough = steps.len() as f64 >= MIN_COVERAGE * (hi - lo) as f64;
        if !(enough && expected > 0.0) {
            return None;
        }
        let shape = segments.iter().map(|&(a, e)| (e > 0.0).then(|| a / e)).collect::<Option<Vec<f64>>>();
        Some(Window { uplift: actual / expected, segments: shape, steps })
    }
}

/// Per segment, the median of the events' relative ratios, rescaled to mean 1; `None` when
/// the result is not a usable shape.
fn median_shape(ratios: &[Vec<f64>]) -> Option<Vec<f64>> {
    let mut shape = Vec::with_capacity(SHAPE_SEGMENTS);
    for k in 0..SHAPE_SEGMENTS {
        let mut column: Vec<f64> = ratios.iter().map(|r| r[k]).filter(|r| r.is_finite()).collect();
        shape.push(median(&mut column)?);
    }
    let mean = shape.iter().sum::<f64>() / SHAPE_SEGMENTS as f64;
    (mean > 0.0 && shape.iter().all(|s| s.is_finite() && *s > 0.0)).then(|| shape.iter().map(|s| s / mean).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::mask_windows;
    use crate::seasonal::{DayGrouping, ProfileParams};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// The grid of 5-minute `history` with the windows of `events` masked, and a baseline of
    /// the daily profile of the last 3 days with a level that follows at once, no damping.
    fn daily_baseline(history: &TimeSeries, events: &[ScheduledEvent], table: &UpliftTable) -> (Grid, BaselineParams) {
        let masks = mask_windows(events, &[table], 300, Duration::minutes(30), Duration::hours(1));
        let grid = Grid::build(history, history.len(), 300, &masks, 0);
        let params = BaselineParams {
            profile: ProfileParams { grouping: DayGrouping::AllDays, days: 3, half_window: 0 },
            alpha: 1.0,
            phi: 1.0,
        };
        (grid, params)
    }

    fn event(id: &str, start: &str, end: &str) -> ScheduledEvent {
        ScheduledEvent {
            id: id.into(),
            name: id.into(),
            kind: "match".into(),
            start: t(start),
            end: t(end),
            description: None,
            expected_multiplier: None,
        }
    }

    #[test]
    fn an_uplift_measured_on_a_lower_level_is_rescaled_to_the_baseline() {
        // Ten days of 5-minute steps at 100 per step; from day 7 on the whole level is 300
        // (a tournament starts); on day 9, 12:00-13:00, an event doubles traffic.
        let mut values = vec![100.0; 10 * 288];
        for v in values.iter_mut().skip(7 * 288) {
            *v = 300.0;
        }
        for v in values.iter_mut().skip(9 * 288 + 144).take(12) {
            *v = 600.0;
        }
        let history = TimeSeries::from_values(t("2026-01-01T00:00:00Z"), Duration::minutes(5), values).unwrap();
        let match_day = event("m", "2026-01-10T12:00:00Z", "2026-01-10T13:00:00Z");
        // Comparable days before the tournament say x6.
        let observation =
            UpliftObservation { event_id: "m".into(), date: match_day.start, uplift: 6.0, lead_steps: 0, lag_steps: 0 };
        let mut table = UpliftTable { step_secs: 300, ..UpliftTable::default() };
        table.kinds.insert("match".into(), KindUplift::from_observations(vec![observation]).unwrap());
        let events = vec![match_day];
        let (grid, params) = daily_baseline(&history, &events, &table);
        let learned = calibrate(&history, &grid, params, &events, &table, Duration::minutes(30));
        let (calibrated, shapes) = (&learned.table, &learned.shapes);
        let m = calibrated.get("match").unwrap();
        assert!((m.median_uplift - 2.0).abs() < 1e-9, "{}", m.median_uplift);
        assert_eq!(m.observations[0].lead_steps, 0);
        assert!(shapes.is_empty(), "one event is too few for a shape");

        // An observation whose event is not in the calendar cannot be re-measured: kept as is.
        let unknown = calibrate(&history, &grid, params, &[], &table, Duration::minutes(30));
        assert_eq!(unknown.table, table);
    }

    #[test]
    fn three_events_that_peak_at_their_end_teach_the_kind_its_shape() {
        // 100 per 5-minute step; on days 7, 8 and 9, 12:00-14:00, an event doubles traffic in
        // the first three quarters of its window and quadruples it in the last quarter.
        let mut values = vec![100.0; 10 * 288];
        let mut events = Vec::new();
        let mut observations = Vec::new();
        for day in 7..10 {
            let from = day * 288 + 144;
            for (k, v) in values.iter_mut().skip(from).take(24).enumerate() {
                *v = if k >= 18 { 400.0 } else { 200.0 };
            }
            let start = t("2026-01-01T12:00:00Z") + Duration::days(day as i64);
            let id = format!("m{day}");
            events.push(event(&id, &start.to_rfc3339(), &(start + Duration::hours(2)).to_rfc3339()));
            observations.push(UpliftObservation {
                event_id: id,
                date: start,
                uplift: 2.5,
                lead_steps: 0,
                lag_steps: 0,
            });
        }
        let history = TimeSeries::from_values(t("2026-01-01T00:00:00Z"), Duration::minutes(5), values).unwrap();
        let mut table = UpliftTable { step_secs: 300, ..UpliftTable::default() };
        table.kinds.insert("match".into(), KindUplift::from_observations(observations).unwrap());
        let (grid, params) = daily_baseline(&history, &events, &table);
        let learned = calibrate(&history, &grid, params, &events, &table, Duration::minutes(30));
        // Mean over the window: (18 x 2 + 6 x 4) / 24 = 2.5.
        assert!((learned.table.get("match").unwrap().median_uplift - 2.5).abs() < 1e-9);
        // The shape explains every step: nothing is left for the spread.
        assert!((learned.spreads["match"] - 1.0).abs() < 1e-9, "{:?}", learned.spreads);
        let shape = &learned.shapes["match"];
        assert_eq!(shape.len(), SHAPE_SEGMENTS);
        for (k, s) in shape.iter().enumerate() {
            let expected = if k >= 6 { 4.0 / 2.5 } else { 2.0 / 2.5 };
            assert!((s - expected).abs() < 1e-9, "segment {k}: {s}");
        }
    }
}
