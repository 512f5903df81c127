//! `prescale-harness backtest`: replay a real trace through each scaling policy and score it.
//!
//! A fast discrete-time simulation: no HTTP, no sleeping, days of trace in seconds. The trace
//! is cut into a warm-up (fitting only) and a scored range. Every decision at time `t` uses only
//! the demand before `t`; models are refitted on a schedule from the demand before the refit.
//! The policies, the cluster model and every score are defined in the submodules:
//! [`PolicyKind`] (what each policy is), `simulate` (how time, pods and the HPA run), and
//! [`PolicyScores`] (what each number means).
//!
//! ```text
//! Trace::load ─► run(trace, config) ─► BacktestReport ─► table() / JSON
//! ```

mod cli;
mod config;
mod fleet;
mod forecasters;
mod report;
mod score;
mod simulate;

pub use cli::{BacktestArgs, Format, run_cli};
pub use config::{BacktestConfig, Capacity, PolicyKind, parse_duration, show};
pub use report::{BacktestReport, ScoredRange, Settings};
pub use score::PolicyScores;
pub use simulate::TimedTarget;
pub use trace::Trace;

mod trace;

use chrono::Duration;
use prescale_core::ScheduledEvent;
use prescale_core::accuracy::RelMaeSpec;

use crate::HarnessError;
use forecasters::{DemandView, PredictorForecaster, ProfileReference};
use simulate::{Run, Setup};

/// Replay `trace` through every policy of `config` and score each. Policies run in parallel,
/// one thread each; the result is the same as running them one after the other.
pub fn run(trace: &Trace, config: &BacktestConfig) -> Result<BacktestReport, HarnessError> {
    config.validate()?;
    let demand = &trace.demand;
    let step_secs = i64::from(demand.step_secs());
    let first = usize::try_from((config.warmup.num_seconds() + step_secs - 1) / step_secs).unwrap_or(usize::MAX);
    let trace_error = |problem: String| HarnessError::Trace { trace: trace.name.clone(), problem };
    if first >= demand.len() {
        return Err(trace_error(format!(
            "the warm-up of {} covers the whole trace ({} steps of {step_secs} s)",
            show(config.warmup),
            demand.len()
        )));
    }
    let warmup_median = median(demand.values()[..first].iter().flatten().copied().collect());
    let capacity = match config.capacity {
        Capacity::PerPod(c) => c,
        Capacity::PodsAtMedian(pods) => match warmup_median {
            Some(m) if m > 0.0 => m / (f64::from(pods) * config.target_utilization),
            _ => {
                return Err(trace_error(format!(
                    "--pods-at-median needs a positive median demand in the warm-up of {}, got {warmup_median:?}",
                    show(config.warmup)
                )));
            }
        },
    };
    let accuracy = RelMaeSpec {
        aggregate: if 300 % step_secs == 0 { Duration::minutes(5) } else { Duration::seconds(step_secs) },
        ..RelMaeSpec::default()
    };
    let mut setup = Setup {
        demand,
        config,
        first,
        capacity,
        initial: config.min_replicas,
        targets: simulate::accuracy_targets(demand, first, &accuracy),
        accuracy,
    };
    setup.initial =
        demand.values()[..first].iter().rev().flatten().next().map_or(config.min_replicas, |d| setup.need(*d));

    let from = demand.timestamp(first);
    let events: Vec<ScheduledEvent> = trace.events.clone().unwrap_or_default();
    let scored_events = trace.events.as_ref().map(|e| score::scored_events(e, from, demand.end()));

    let mut kinds = config.policies.clone();
    if !kinds.contains(&PolicyKind::Oracle) {
        // The oracle's replica-minutes are every ratio's denominator.
        kinds.push(PolicyKind::Oracle);
    }
    let runs: Vec<Result<Run, HarnessError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = kinds
            .iter()
            .map(|&kind| {
                (
                    kind,
                    scope.spawn({
                        let (setup, events) = (&setup, &events);
                        move || run_policy(setup, kind, events)
                    }),
                )
            })
            .collect();
        handles
            .into_iter()
            .map(|(kind, handle)| {
                handle.join().unwrap_or_else(|_| {
                    Err(HarnessError::Simulation {
                        policy: kind.name(),
                        problem: "the simulation thread panicked".into(),
                    })
                })
            })
            .collect()
    });
    let mut by_kind = Vec::with_capacity(runs.len());
    for (kind, run) in kinds.iter().zip(runs) {
        by_kind.push((*kind, run?));
    }
    let oracle_replica_minutes = by_kind
        .iter()
        .find(|(k, _)| *k == PolicyKind::Oracle)
        .map(|(_, run)| run.ready.iter().sum::<f64>() * step_secs as f64 / 60.0);
    let policies = by_kind
        .into_iter()
        .filter(|(kind, _)| config.policies.contains(kind))
        .map(|(kind, run)| score::score(kind.name(), &setup, run, oracle_replica_minutes, scored_events.as_deref()))
        .collect();

    Ok(BacktestReport {
        trace: trace.name.clone(),
        scored: ScoredRange {
            from,
            to: demand.end(),
            steps: demand.len() - first,
            events: scored_events.as_ref().map(Vec::len),
            accuracy_buckets: setup.targets.len(),
        },
        settings: Settings {
            step_secs: demand.step_secs(),
            capacity_per_pod: capacity,
            warmup_median,
            target_utilization: config.target_utilization,
            startup: show(config.startup),
            safety_buffer: show(config.safety_buffer),
            min_replicas: config.min_replicas,
            max_replicas: config.max_replicas,
            warmup: show(config.warmup),
            refit_every: show(config.refit_every),
            scale_down_stabilization: show(config.scale_down_stabilization),
            llm_model: config.llm.as_ref().map(|l| l.model.clone()),
        },
        policies,
    })
}

/// Replay one policy.
fn run_policy(setup: &Setup<'_>, kind: PolicyKind, events: &[ScheduledEvent]) -> Result<Run, HarnessError> {
    match kind {
        PolicyKind::Hpa => return Ok(simulate::hpa(setup)),
        PolicyKind::Oracle => return Ok(simulate::oracle(setup)),
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
        HarnessError::Simulation { policy: kind.name(), problem: format!("cannot start a runtime: {e}") }
    })?;
    let policy = setup.policy()?;
    let view = DemandView { demand: setup.demand, horizon_steps: setup.horizon_steps() };
    let refit = setup.config.refit_every;
    runtime.block_on(async {
        Ok(match kind {
            PolicyKind::Profile => simulate::predictive(setup, &policy, &mut ProfileReference::new(view)).await,
            PolicyKind::SeasonalNaive => {
                simulate::predictive(setup, &policy, &mut PredictorForecaster::seasonal_naive(view)).await
            }
            PolicyKind::HoltWinters => {
                let mut forecaster = PredictorForecaster::holt_winters(view, setup.first, refit)?;
                simulate::predictive(setup, &policy, &mut forecaster).await
            }
            _ => {
                let llm = setup.config.llm.clone();
                let mut forecaster = PredictorForecaster::prescale(view, events.to_vec(), setup.first, refit, llm)?;
                simulate::predictive(setup, &policy, &mut forecaster).await
            }
        })
    })
}

/// Median of the values, `None` when empty.
fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 })
}
