//! The discrete-time replay of one policy over the scored steps.
//!
//! Time runs in decision steps. Demand is a constant rate within a step. At the start of
//! step `i` a predictive policy decides once, from the demand before step `i`; the HPA syncs
//! every 15 s, observing the previous step's load at the step's first instant and the
//! current step's load at the syncs after it. Pods ordered at a decision are Ready after the
//! startup time; ready capacity over a step is its time-weighted Ready pods times the
//! capacity per pod. The oracle has exactly the pods each step needs.

use std::ops::Range;

use chrono::{DateTime, Duration, Utc};
use prescale_core::accuracy::RelMaeSpec;
use prescale_core::{Forecast, ReplicaState, TimeSeries};
use prescale_provisioner::hpa::{HpaAlgorithm, HpaSpec};
use prescale_provisioner::{DecisionMemory, PodCapacity, Policy, PolicyConfig, decide, replicas_for};
use serde::Serialize;

use super::config::BacktestConfig;
use super::forecasters::Forecaster;
use crate::HarnessError;

/// The HPA controller's sync period.
const HPA_SYNC_SECS: i64 = 15;

/// A replica target set at a point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimedTarget {
    /// When the policy decided.
    pub at: DateTime<Utc>,
    /// The replica target it set.
    pub target: u32,
}

/// One 5-minute accuracy target: the bucket, the step whose forecast predicts it, and the
/// steps it sums.
#[derive(Debug, Clone)]
pub(crate) struct AccuracyTarget {
    /// Start of the aggregated bucket.
    pub bucket: DateTime<Utc>,
    /// The last step starting at or before the origin (`bucket - horizon`): its forecast counts.
    pub origin_step: usize,
    /// The demand steps inside the bucket.
    pub steps: Range<usize>,
}

/// Everything every policy's replay shares.
pub(crate) struct Setup<'a> {
    pub demand: &'a TimeSeries,
    pub config: &'a BacktestConfig,
    /// First scored step (the end of the warm-up).
    pub first: usize,
    /// Requests per step one pod serves at 100%.
    pub capacity: f64,
    /// Replicas every policy starts with: what the last warm-up step needed.
    pub initial: u32,
    /// The accuracy targets, ordered by origin step.
    pub targets: Vec<AccuracyTarget>,
    /// How accuracy is measured.
    pub accuracy: RelMaeSpec,
}

impl Setup<'_> {
    pub fn step_secs(&self) -> i64 {
        i64::from(self.demand.step_secs())
    }

    /// Seconds from the trace's start to the start of step `i`.
    fn secs(&self, i: usize) -> i64 {
        self.step_secs() * i as i64
    }

    pub fn time(&self, i: usize) -> DateTime<Utc> {
        self.demand.timestamp(i)
    }

    fn demand(&self, i: usize) -> Option<f64> {
        self.demand.values().get(i).copied().flatten()
    }

    /// Pods the demand of a step needs at the target utilization, within the bounds.
    pub fn need(&self, demand: f64) -> u32 {
        let c = self.config;
        replicas_for(demand, self.capacity, c.target_utilization).clamp(c.min_replicas, c.max_replicas)
    }

    fn startup_secs(&self) -> i64 {
        self.config.startup.num_seconds()
    }

    /// The predictive policies' settings.
    pub fn policy(&self) -> Result<Policy, HarnessError> {
        let c = self.config;
        let secs = |d: Duration| u32::try_from(d.num_seconds().max(0)).unwrap_or(u32::MAX);
        let mut config = PolicyConfig::new(
            PodCapacity::per_step(self.capacity, self.demand.step_secs()),
            c.min_replicas,
            c.max_replicas,
        );
        config.target_utilization = c.target_utilization;
        config.pod_startup_secs = secs(c.startup);
        config.safety_buffer_secs = secs(c.safety_buffer);
        config.tick_secs = self.demand.step_secs();
        config.scale_down_stabilization_secs = secs(c.scale_down_stabilization);
        config.build().map_err(|e| HarnessError::InvalidOption { option: "policy", problem: e.to_string() })
    }

    /// Steps every forecast must cover from its origin: the policy's look-ahead, and the
    /// accuracy targets up to one step after their origin.
    pub fn horizon_steps(&self) -> usize {
        let step = self.step_secs();
        let look_ahead = self.config.startup + self.config.safety_buffer + Duration::seconds(step);
        let accuracy = self.accuracy.horizon + self.accuracy.aggregate + Duration::seconds(step);
        let longest = look_ahead.max(accuracy).num_seconds();
        usize::try_from((longest + step - 1) / step).unwrap_or(1).max(1)
    }
}

/// What one policy did over the scored steps.
#[derive(Debug, Clone, Default)]
pub(crate) struct Run {
    /// Time-weighted Ready pods per scored step.
    pub ready: Vec<f64>,
    /// Every decision (every sync for the HPA), in order.
    pub decisions: Vec<TimedTarget>,
    /// Changes of the replica target.
    pub scale_events: u64,
    /// Per accuracy target, the forecast of its bucket (`None` without a forecast); empty for
    /// a policy without forecasts.
    pub forecasts: Vec<Option<f64>>,
    /// Forecasts that failed.
    pub forecast_failures: u64,
    /// Refits that failed.
    pub refit_failures: u64,
}

/// The HPA v2 algorithm syncing every 15 s on the utilization of served load.
///
/// Utilization is served load over the capacity of all current replicas, which is how the
/// upstream controller counts pods that are not Ready yet on a scale-up (at 0%); without a
/// Ready pod there is no metric and nothing changes.
pub(crate) fn hpa(setup: &Setup<'_>) -> Run {
    let c = setup.config;
    let mut hpa = HpaAlgorithm::new(HpaSpec {
        min_replicas: c.min_replicas,
        max_replicas: c.max_replicas,
        target_utilization: c.target_utilization,
        ..HpaSpec::default()
    });
    let n = setup.demand.len();
    let mut fleet = super::fleet::Fleet::new(setup.secs(setup.first), setup.initial, setup.startup_secs());
    let mut run = Run::default();
    let step = setup.step_secs();
    for i in setup.first..n {
        let (start, end) = (setup.secs(i), setup.secs(i + 1));
        let mut pod_secs = 0.0;
        let mut sync = (start + HPA_SYNC_SECS - 1).div_euclid(HPA_SYNC_SECS) * HPA_SYNC_SECS;
        while sync < end {
            pod_secs += fleet.advance_to(sync);
            // The load of the step that is under way, except at its very first instant.
            let load = if sync == start { i.checked_sub(1).and_then(|p| setup.demand(p)) } else { setup.demand(i) };
            let spec = fleet.spec();
            let utilization = load.filter(|_| fleet.ready() > 0 && spec > 0).map(|load| {
                let served = load.min(f64::from(fleet.ready()) * setup.capacity);
                served / (f64::from(spec) * setup.capacity)
            });
            let at = setup.time(0) + Duration::seconds(sync);
            let desired = hpa.sync(at, spec, utilization);
            if desired != spec {
                run.scale_events += 1;
            }
            fleet.scale_to(desired);
            run.decisions.push(TimedTarget { at, target: desired });
            sync += HPA_SYNC_SECS;
        }
        pod_secs += fleet.advance_to(end);
        run.ready.push(pod_secs / step as f64);
    }
    run
}

/// Perfect foresight: each step has exactly the pods its demand needs; a gap holds the count.
pub(crate) fn oracle(setup: &Setup<'_>) -> Run {
    let mut run = Run::default();
    let mut current = setup.initial;
    for i in setup.first..setup.demand.len() {
        let target = setup.demand(i).map_or(current, |d| setup.need(d));
        if target != current {
            run.scale_events += 1;
        }
        current = target;
        run.ready.push(f64::from(target));
        run.decisions.push(TimedTarget { at: setup.time(i), target });
    }
    let aggregate = setup.demand.aggregate_sum(setup.accuracy.aggregate).ok();
    run.forecasts = setup.targets.iter().map(|t| aggregate.as_ref().and_then(|a| a.value_at(t.bucket))).collect();
    run
}

/// A predictive policy: at each step's start, the forecaster's forecast (from the demand
/// before the step) and the load of the last step go through `provisioner::decide`.
pub(crate) async fn predictive<F: Forecaster>(setup: &Setup<'_>, policy: &Policy, forecaster: &mut F) -> Run {
    let n = setup.demand.len();
    let mut fleet = super::fleet::Fleet::new(setup.secs(setup.first), setup.initial, setup.startup_secs());
    let mut memory = DecisionMemory::new();
    let mut run = Run { forecasts: vec![None; setup.targets.len()], ..Run::default() };
    let mut next_target = 0;
    let step = setup.step_secs();
    for i in setup.first..n {
        let now = setup.time(i);
        fleet.advance_to(setup.secs(i));
        let forecast = forecaster.forecast(i).await;
        while let Some(target) = setup.targets.get(next_target).filter(|t| t.origin_step <= i) {
            if target.origin_step == i {
                run.forecasts[next_target] = forecast.as_deref().and_then(|f| bucket_forecast(setup, f, &target.steps));
            }
            next_target += 1;
        }
        let state = ReplicaState {
            spec: fleet.spec(),
            ready: fleet.ready(),
            hpa_floor: None,
            observed_load: i.checked_sub(1).and_then(|p| setup.demand(p)),
        };
        let decision = decide(forecast.as_deref(), &state, policy, &mut memory, now);
        if decision.target != fleet.spec() {
            run.scale_events += 1;
        }
        fleet.scale_to(decision.target);
        run.decisions.push(TimedTarget { at: now, target: decision.target });
        run.ready.push(fleet.advance_to(setup.secs(i + 1)) / step as f64);
    }
    run.forecast_failures = forecaster.failures();
    run.refit_failures = forecaster.refit_failures();
    run
}

/// The forecast's p50 summed over the steps of an accuracy bucket; `None` if one is not covered.
fn bucket_forecast(setup: &Setup<'_>, forecast: &Forecast, steps: &Range<usize>) -> Option<f64> {
    steps.clone().map(|j| forecast.point_at(setup.time(j)).map(|p| p.p50)).sum()
}

/// The accuracy targets: every aggregated bucket whose origin (`bucket - horizon`) lies in the
/// scored range and whose steps lie in the trace, ordered by origin.
pub(crate) fn accuracy_targets(demand: &TimeSeries, first: usize, spec: &RelMaeSpec) -> Vec<AccuracyTarget> {
    let Ok(aggregate) = demand.aggregate_sum(spec.aggregate) else { return Vec::new() };
    let scored_from = demand.timestamp(first);
    let step = i64::from(demand.step_secs());
    let index_from =
        |t: DateTime<Utc>| ((t - demand.start()).num_seconds() + step - 1).div_euclid(step).max(0) as usize;
    (0..aggregate.len())
        .filter_map(|b| {
            let bucket = aggregate.timestamp(b);
            let origin = bucket - spec.horizon;
            if origin < scored_from {
                return None;
            }
            let origin_step = ((origin - demand.start()).num_seconds() / step) as usize;
            let steps = index_from(bucket)..index_from(bucket + spec.aggregate).min(demand.len());
            (!steps.is_empty() && steps.end <= demand.len()).then_some(AccuracyTarget { bucket, origin_step, steps })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oracle_has_what_each_step_needs_and_counts_each_change_of_target() {
        let config = BacktestConfig { min_replicas: 1, ..BacktestConfig::default() };
        // Capacity 10 per pod at 100%, 7 at the 70% target.
        let demand = TimeSeries::new(
            "2026-01-01T00:00:00Z".parse().unwrap(),
            Duration::minutes(1),
            vec![Some(7.0), Some(7.0), Some(14.1), None, Some(14.0), Some(0.0)],
        )
        .unwrap();
        let accuracy = RelMaeSpec::default();
        let setup = Setup {
            demand: &demand,
            config: &config,
            first: 1,
            capacity: 10.0,
            initial: 1,
            targets: accuracy_targets(&demand, 1, &accuracy),
            accuracy,
        };
        let run = oracle(&setup);
        // 7 needs 1, 14.1 needs 3, a gap holds 3, 14 needs 2, 0 needs the minimum 1.
        assert_eq!(run.ready, vec![1.0, 3.0, 3.0, 2.0, 1.0]);
        assert_eq!(run.scale_events, 3, "1 -> 3, 3 -> 2, 2 -> 1");
        assert_eq!(run.decisions.len(), 5);
    }
}
