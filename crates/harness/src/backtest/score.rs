//! The scores of one policy's run. Every number follows from these definitions:
//!
//! - **ready capacity** of a step = its time-weighted Ready pods x capacity per pod (100%);
//!   a step is **underprovisioned** when its demand exceeds it; **unserved** demand is the excess.
//! - `underprovisioned_minutes` = underprovisioned steps x step minutes; `unserved_fraction` =
//!   unserved / total demand; steps with missing demand are not scored.
//! - `replica_minutes` = sum of Ready pods x step minutes; `overprovision_ratio` = that over
//!   the oracle's.
//! - `scale_events` = changes of the replica target.
//! - `mae`, `rel_mae`, `smape`: the forecast (p50) of each 5-minute bucket made 30 minutes
//!   before it, as `prescale_core::accuracy` defines them, over the buckets `rel_mae` scores.
//! - `event_capture` = the share of scored calendar events (whole window, start to end + 30
//!   minutes, inside the scored range) during whose window ready capacity covered demand in at
//!   least 95% of the steps.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use prescale_core::accuracy::{mae, rel_mae, smape};
use prescale_core::{ScheduledEvent, TimeSeries};
use serde::Serialize;

use super::simulate::{Run, Setup, TimedTarget};

/// How long after its scheduled end an event's window is scored.
pub(crate) const EVENT_TAIL: Duration = Duration::minutes(30);
/// Share of an event window's steps that must be covered for the event to count as captured.
const CAPTURE_SHARE: f64 = 0.95;

/// One policy's scores (and, outside the JSON, what it did step by step).
#[derive(Debug, Clone, Serialize)]
pub struct PolicyScores {
    /// The policy's name.
    pub name: String,
    /// Minutes in which demand exceeded ready capacity.
    pub underprovisioned_minutes: f64,
    /// Unserved demand over total demand.
    pub unserved_fraction: f64,
    /// Ready pods x minutes.
    pub replica_minutes: f64,
    /// Replica-minutes over the oracle's.
    pub overprovision_ratio: Option<f64>,
    /// Changes of the replica target.
    pub scale_events: u64,
    /// Mean absolute error of the 30-minute-ahead forecast of 5-minute buckets (requests per bucket).
    pub mae: Option<f64>,
    /// That error over daily seasonal naive's on the same buckets.
    pub rel_mae: Option<f64>,
    /// Symmetric mean absolute percentage error of the same forecasts, in [0, 2].
    pub smape: Option<f64>,
    /// Share of scored events captured (present when a calendar was given and an event was scored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_capture: Option<f64>,
    /// Number of scored events captured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_captured: Option<usize>,
    /// Forecasts that failed (the policy then held its capacity or followed the observed load).
    pub forecast_failures: u64,
    /// Refits that failed (the previous model kept answering).
    pub refit_failures: u64,
    /// Time-weighted Ready pods per scored step.
    #[serde(skip)]
    pub ready: Vec<f64>,
    /// Every decision (every sync for the HPA).
    #[serde(skip)]
    pub decisions: Vec<TimedTarget>,
}

/// The calendar events scored: their whole window (start to end + 30 minutes) lies in `[from, to]`.
pub(crate) fn scored_events(events: &[ScheduledEvent], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<&ScheduledEvent> {
    events.iter().filter(|e| e.start >= from && e.end + EVENT_TAIL <= to).collect()
}

/// Score `run` of policy `name`; `oracle_replica_minutes` is the denominator of the ratio.
pub(crate) fn score(
    name: &str,
    setup: &Setup<'_>,
    run: Run,
    oracle_replica_minutes: Option<f64>,
    events: Option<&[&ScheduledEvent]>,
) -> PolicyScores {
    let step_minutes = setup.step_secs() as f64 / 60.0;
    let (mut under, mut unserved, mut total, mut replica_minutes) = (0usize, 0.0, 0.0, 0.0);
    for (k, ready) in run.ready.iter().enumerate() {
        replica_minutes += ready * step_minutes;
        if let Some(demand) = setup.demand.values().get(setup.first + k).copied().flatten() {
            let capacity = ready * setup.capacity;
            total += demand;
            if exceeds(demand, capacity) {
                under += 1;
                unserved += demand - capacity;
            }
        }
    }
    let (mae, rel_mae, smape) = accuracy(setup, &run);
    let captured =
        events.filter(|e| !e.is_empty()).map(|events| events.iter().filter(|e| captured(setup, &run.ready, e)).count());
    PolicyScores {
        name: name.to_string(),
        underprovisioned_minutes: under as f64 * step_minutes,
        unserved_fraction: if total > 0.0 { unserved / total } else { 0.0 },
        replica_minutes,
        overprovision_ratio: oracle_replica_minutes.filter(|o| *o > 0.0).map(|o| replica_minutes / o),
        scale_events: run.scale_events,
        mae,
        rel_mae,
        smape,
        event_capture: captured.zip(events).map(|(c, e)| c as f64 / e.len() as f64),
        events_captured: captured,
        forecast_failures: run.forecast_failures,
        refit_failures: run.refit_failures,
        ready: run.ready,
        decisions: run.decisions,
    }
}

/// Whether demand exceeds capacity (float noise of the time weighting aside).
fn exceeds(demand: f64, capacity: f64) -> bool {
    demand > capacity * (1.0 + 1e-9) + 1e-9
}

/// Whether ready capacity covered demand in at least 95% of the event window's present steps.
fn captured(setup: &Setup<'_>, ready: &[f64], event: &ScheduledEvent) -> bool {
    let (mut present, mut covered) = (0usize, 0usize);
    for (k, r) in ready.iter().enumerate() {
        let i = setup.first + k;
        let t = setup.time(i);
        if t < event.start || t >= event.end + EVENT_TAIL {
            continue;
        }
        if let Some(demand) = setup.demand.values().get(i).copied().flatten() {
            present += 1;
            covered += usize::from(!exceeds(demand, r * setup.capacity));
        }
    }
    present > 0 && covered as f64 >= CAPTURE_SHARE * present as f64
}

/// `mae`, `rel_mae` and `smape` of the run's bucket forecasts; all `None` without forecasts.
fn accuracy(setup: &Setup<'_>, run: &Run) -> (Option<f64>, Option<f64>, Option<f64>) {
    if run.forecasts.is_empty() {
        return (None, None, None);
    }
    let by_bucket: HashMap<DateTime<Utc>, f64> =
        setup.targets.iter().zip(&run.forecasts).filter_map(|(t, f)| Some((t.bucket, (*f)?))).collect();
    let demand: &TimeSeries = setup.demand;
    let Ok(aggregate) = demand.aggregate_sum(setup.accuracy.aggregate) else { return (None, None, None) };
    let from = setup.time(setup.first) + setup.accuracy.horizon;
    let mut scored = Vec::new();
    let outcome = rel_mae(demand, from, demand.end(), &setup.accuracy, |_, target| {
        let forecast = by_bucket.get(&target).copied();
        if let (Some(f), Some(actual)) = (forecast, aggregate.value_at(target)) {
            scored.push((f, actual));
        }
        forecast
    });
    let rel = outcome.ok().flatten().map(|r| r.rel_mae);
    (mae(scored.iter().copied()), rel, smape(scored.iter().copied()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backtest::config::BacktestConfig;
    use crate::backtest::simulate::accuracy_targets;
    use prescale_core::accuracy::RelMaeSpec;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn setup<'a>(demand: &'a TimeSeries, config: &'a BacktestConfig, first: usize, capacity: f64) -> Setup<'a> {
        let accuracy = RelMaeSpec {
            aggregate: if demand.step_secs() <= 300 { Duration::minutes(5) } else { demand.step() },
            ..RelMaeSpec::default()
        };
        Setup {
            demand,
            config,
            first,
            capacity,
            initial: 1,
            targets: accuracy_targets(demand, first, &accuracy),
            accuracy,
        }
    }

    fn event(start: &str, end: &str) -> ScheduledEvent {
        ScheduledEvent {
            id: start.into(),
            name: format!("event at {start}"),
            kind: "test".into(),
            start: t(start),
            end: t(end),
            description: None,
            expected_multiplier: None,
        }
    }

    #[test]
    fn provisioning_scores_follow_their_definitions() {
        let config = BacktestConfig::default();
        for step_minutes in [1, 5] {
            // Step 0 is warm-up; step 2 is missing.
            let demand = TimeSeries::new(
                t("2026-01-01T00:00:00Z"),
                Duration::minutes(step_minutes),
                vec![Some(10.0), Some(20.0), None, Some(30.0), Some(40.0)],
            )
            .unwrap();
            let setup = setup(&demand, &config, 1, 10.0);
            let run = Run { ready: vec![1.0, 5.0, 2.5, 4.0], scale_events: 7, ..Run::default() };
            let s = score("p", &setup, run, Some(10.0 * step_minutes as f64), None);
            let m = step_minutes as f64;
            // 20 > 1 x 10 (10 unserved); 30 > 2.5 x 10 (5 unserved); 40 = 4 x 10 is covered.
            assert_eq!(s.underprovisioned_minutes, 2.0 * m);
            assert!((s.unserved_fraction - 15.0 / 90.0).abs() < 1e-12, "{}", s.unserved_fraction);
            // The missing step still has Ready pods: 1 + 5 + 2.5 + 4 pods for a step each.
            assert!((s.replica_minutes - 12.5 * m).abs() < 1e-9);
            assert!((s.overprovision_ratio.unwrap() - 1.25).abs() < 1e-12);
            assert_eq!(s.scale_events, 7);
            assert_eq!((s.mae, s.rel_mae, s.smape), (None, None, None), "no forecasts, no accuracy");
            assert_eq!((s.event_capture, s.events_captured), (None, None), "no calendar, no capture");
        }
    }

    #[test]
    fn no_oracle_no_ratio_and_a_zero_demand_serves_everything() {
        let config = BacktestConfig::default();
        let demand = TimeSeries::from_values(t("2026-01-01T00:00:00Z"), Duration::minutes(1), vec![0.0; 3]).unwrap();
        let setup = setup(&demand, &config, 0, 10.0);
        let s = score("p", &setup, Run { ready: vec![0.0; 3], ..Run::default() }, None, None);
        assert_eq!(s.overprovision_ratio, None);
        assert_eq!((s.underprovisioned_minutes, s.unserved_fraction, s.replica_minutes), (0.0, 0.0, 0.0));
    }

    #[test]
    fn accuracy_scores_the_forecast_made_30_minutes_before_each_bucket() {
        let config = BacktestConfig::default();
        // Two days of 5-minute steps; day 2 is day 1 plus 4, so seasonal naive is off by 4.
        let day1: Vec<f64> = (0..288).map(|k| 100.0 + f64::from(k % 50)).collect();
        let values: Vec<f64> = day1.iter().copied().chain(day1.iter().map(|v| v + 4.0)).collect();
        let demand = TimeSeries::from_values(t("2026-01-01T00:00:00Z"), Duration::minutes(5), values).unwrap();
        let setup = setup(&demand, &config, 288, 10.0);
        // Scored buckets: day 2 from 00:30 on (their origins lie in the scored range).
        assert_eq!(setup.targets.len(), 288 - 6);
        assert_eq!(setup.targets[0].bucket, t("2026-01-02T00:30:00Z"));
        assert_eq!(setup.targets[0].origin_step, 288);
        // Every forecast is 2 above the actual, except the first ten, which failed.
        let forecasts: Vec<Option<f64>> = setup
            .targets
            .iter()
            .enumerate()
            .map(|(n, target)| (n >= 10).then(|| demand.value_at(target.bucket).unwrap() + 2.0))
            .collect();
        let expected_smape = {
            let terms: Vec<f64> = setup.targets[10..]
                .iter()
                .map(|x| demand.value_at(x.bucket).unwrap())
                .map(|a| 2.0 / (a + 1.0))
                .collect();
            terms.iter().sum::<f64>() / terms.len() as f64
        };
        let run = Run { ready: vec![1.0; 288], forecasts, ..Run::default() };
        let s = score("p", &setup, run, None, None);
        assert!((s.mae.unwrap() - 2.0).abs() < 1e-9, "{:?}", s.mae);
        assert!((s.rel_mae.unwrap() - 0.5).abs() < 1e-9, "{:?}", s.rel_mae);
        assert!((s.smape.unwrap() - expected_smape).abs() < 1e-12, "{:?}", s.smape);
    }

    #[test]
    fn an_event_is_captured_when_95_percent_of_its_window_is_covered() {
        let config = BacktestConfig::default();
        let from = t("2026-01-01T00:00:00Z");
        let demand = TimeSeries::from_values(from, Duration::minutes(1), vec![10.0; 240]).unwrap();
        let setup = setup(&demand, &config, 0, 10.0);
        // Windows: 01:00-01:40 (event 01:00-01:10 plus 30 minutes) and 02:00-02:40: 40 steps each.
        let calendar = vec![
            event("2026-01-01T01:00:00Z", "2026-01-01T01:10:00Z"),
            event("2026-01-01T02:00:00Z", "2026-01-01T02:10:00Z"),
            // Its window outlasts the trace: not scored.
            event("2026-01-01T03:30:00Z", "2026-01-01T03:45:00Z"),
        ];
        let scored = scored_events(&calendar, from, demand.end());
        assert_eq!(scored.len(), 2);
        let mut ready = vec![1.0; 240];
        // Two uncovered steps in the first window (38 of 40 = 95%: captured), three in the
        // second (37 of 40: missed). Steps outside the windows do not count.
        for i in [60, 99, 120, 121, 139, 100, 101, 102] {
            ready[i] = 0.9;
        }
        let s = score("p", &setup, Run { ready, ..Run::default() }, None, Some(&scored));
        assert_eq!(s.events_captured, Some(1));
        assert_eq!(s.event_capture, Some(0.5));
        assert_eq!(s.underprovisioned_minutes, 8.0);
        // An empty calendar has nothing to capture.
        let s = score("p", &setup, Run { ready: vec![1.0; 240], ..Run::default() }, None, Some(&[]));
        assert_eq!((s.event_capture, s.events_captured), (None, None));
    }
}
