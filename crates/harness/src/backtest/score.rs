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
