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
//! the events masked, exactly as the model predicts. Other events' uplifts in the window are
//! divided out (a second pass, on the first pass's scale), so overlapping events are not
//! counted twice either. Leads and lags stay as
//! measured (they are time extents, not levels).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use prescale_core::{KindUplift, ScheduledEvent, TimeSeries, UpliftObservation, UpliftTable};

use crate::backtest::RollingBaseline;
use crate::events::{Effect, combined_factor};
use crate::grid::Grid;
use crate::seasonal::BaselineParams;

/// Share of an event window's steps that need an actual and a baseline value.
const MIN_COVERAGE: f64 = 0.5;

/// The table with each kind's observations re-measured against the baseline `params` fits on
/// `grid` (built from `history`). A kind none of whose events can be re-measured (outside the
/// grid, no baseline yet) keeps its observations as they were, so that no announced kind loses
/// its uplift; a kind with some keeps only the re-measured ones, never a mix of two scales.
pub(crate) fn calibrate(
    history: &TimeSeries,
    grid: &Grid,
    params: BaselineParams,
    events: &[ScheduledEvent],
    table: &UpliftTable,
    lead: Duration,
) -> UpliftTable {
    if table.kinds.is_empty() {
        return table.clone();
    }
    let rolling = RollingBaseline::new(history, grid, params);
    let by_id: HashMap<&str, &ScheduledEvent> = events.iter().map(|e| (e.id.as_str(), e)).collect();
    // Pass 1 measures each event alone; pass 2 divides out the other events' pass-1 uplifts
    // (on the same scale), which matters only where windows or ramps overlap.
    let alone = remeasure(history, grid, &rolling, &by_id, table, None, lead);
    remeasure(history, grid, &rolling, &by_id, table, Some((&alone, events)), lead)
}

/// One pass of [`calibrate`]: every kind of `table` re-measured, dividing out the factors
/// the events of `others` get from its table.
fn remeasure(
    history: &TimeSeries,
    grid: &Grid,
    rolling: &RollingBaseline<'_>,
    by_id: &HashMap<&str, &ScheduledEvent>,
    table: &UpliftTable,
    others: Option<(&UpliftTable, &[ScheduledEvent])>,
    lead: Duration,
) -> UpliftTable {
    let effects: Vec<(&str, Effect)> = others
        .map(|(known, events)| {
            events.iter().map(|e| (e.id.as_str(), Effect::resolve(e, &[known], history.step_secs()))).collect()
        })
        .unwrap_or_default();
    let kinds = table
        .kinds
        .iter()
        .map(|(kind, summary)| {
            let measured: Vec<UpliftObservation> = summary
                .observations
                .iter()
                .filter_map(|o| {
                    let event = by_id.get(o.event_id.as_str())?;
                    let others: Vec<Effect> =
                        effects.iter().filter(|(id, _)| *id != o.event_id).map(|(_, e)| e.clone()).collect();
                    let uplift = against_baseline(history, grid, rolling, event, &others, lead)?;
                    Some(UpliftObservation { uplift, ..o.clone() })
                })
                .collect();
            let calibrated = KindUplift::from_observations(measured).unwrap_or_else(|| summary.clone());
            (kind.clone(), calibrated)
        })
        .collect();
    UpliftTable { step_secs: table.step_secs, kinds }
}

/// `sum(actual) / sum(baseline x other events' factors)` over the steps overlapping the
/// event's window; `None` when too few steps have both or the baseline sums to zero.
fn against_baseline(
    history: &TimeSeries,
    grid: &Grid,
    rolling: &RollingBaseline<'_>,
    event: &ScheduledEvent,
    others: &[Effect],
    lead: Duration,
) -> Option<f64> {
    let step = i64::from(history.step_secs());
    let offset = |t: DateTime<Utc>| (t - history.start()).num_seconds();
    let lo = offset(event.start).div_euclid(step).max(0);
    let hi = (offset(event.end) + step - 1).div_euclid(step).min(i64::try_from(grid.len() * grid.per).ok()?);
    if hi <= lo {
        return None;
    }
    let (mut actual, mut expected, mut used) = (0.0, 0.0, 0usize);
    let half_step = Duration::seconds(step / 2);
    for i in lo as usize..hi as usize {
        let Some(y) = history.values().get(i).copied().flatten() else { continue };
        let origin = grid.bucket_start(i / grid.per) - lead;
        let Some(f) = rolling.point_forecast(origin, i) else { continue };
        actual += y;
        expected += f * combined_factor(others, history.timestamp(i) + half_step);
        used += 1;
    }
    let enough = used as f64 >= MIN_COVERAGE * (hi - lo) as f64;
    (enough && expected > 0.0).then(|| actual / expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::mask_windows;
    use crate::seasonal::{DayGrouping, ProfileParams};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
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
        let observation = UpliftObservation {
            event_id: "m".into(),
            date: match_day.start,
            uplift: 6.0,
            lead_steps: 0,
            lag_steps: 0,
        };
        let mut table = UpliftTable { step_secs: 300, ..UpliftTable::default() };
        table.kinds.insert("match".into(), KindUplift::from_observations(vec![observation]).unwrap());
        let events = vec![match_day];
        let masks = mask_windows(&events, &[&table], 300, Duration::minutes(30), Duration::hours(1));
        let grid = Grid::build(&history, history.len(), 300, &masks, 0);
        // Daily profile of the last 3 days, a level that follows at once, no damping.
        let params = BaselineParams {
            profile: ProfileParams { grouping: DayGrouping::AllDays, days: 3, half_window: 0 },
            alpha: 1.0,
            phi: 1.0,
        };
        let calibrated = calibrate(&history, &grid, params, &events, &table, Duration::minutes(30));
        let m = calibrated.get("match").unwrap();
        assert!((m.median_uplift - 2.0).abs() < 1e-9, "{}", m.median_uplift);
        assert_eq!(m.observations[0].lead_steps, 0);

        // An observation whose event is not in the calendar cannot be re-measured: kept as is.
        let unknown = calibrate(&history, &grid, params, &[], &table, Duration::minutes(30));
        assert_eq!(unknown, table);
    }
}
