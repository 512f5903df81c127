//! Criterion benchmarks of the daemon's loop: one tick of one workload (collect from memory ->
//! predict with the fitted model -> decide -> act on a fake, 14 days of 1-minute history
//! kept), one tick over 1,000 workloads on a 2-thread runtime, and the refit (uplift table +
//! model fit) of one workload on 14 days. No LLM.
//!
//! Run with `cargo bench --workspace --bench tick` (release build).

// criterion_group! generates undocumented functions.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Benchmark setup may unwrap, like tests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use prescale_collector::{CollectorError, MetricSource, Signal};
use prescale_core::{ManualClock, ReplicaState, SharedClock, TimeSeries, UpliftTable, WorkloadRef};
use prescale_daemon::config::{Mode, PredictorKind, Setting, WorkloadConfig};
use prescale_daemon::engine::{Engine, EngineSettings, WorkloadParts, build_predictor};
use prescale_daemon::history::align_down;
use prescale_daemon::metrics::Metrics;
use prescale_daemon::state::DaemonState;
use prescale_daemon::store::FileEventStore;
use prescale_predictor::FitConfig;
use prescale_provisioner::testutil::FakeActuator;

const DAYS: i64 = 14;

fn t0() -> DateTime<Utc> {
    "2026-03-16T12:00:30Z".parse().unwrap()
}

/// A daily and weekly pattern with deterministic noise, requests per second.
fn rps_at(t: DateTime<Utc>, seed: u64) -> f64 {
    let minute = t.timestamp() / 60;
    let day = (minute % 1440) as f64 / 1440.0;
    let weekday = (minute / 1440) % 7;
    let weekly = if weekday >= 5 { 0.7 } else { 1.0 };
    let mut x = (minute as u64).wrapping_mul(6364136223846793005).wrapping_add(seed.wrapping_mul(1442695040888963407));
    x ^= x >> 33;
    let noise = (x % 1000) as f64 / 1000.0 - 0.5;
    (100.0 + 60.0 * (std::f64::consts::TAU * (day - 0.3)).sin()) * weekly * (1.0 + 0.1 * noise)
}

fn history(end: DateTime<Utc>, seed: u64) -> TimeSeries {
    let end = align_down(end, 60);
    let start = end - Duration::days(DAYS);
    let values = (0..DAYS * 1440).map(|i| rps_at(start + Duration::minutes(i), seed) * 60.0).collect();
    TimeSeries::from_values(start, Duration::minutes(1), values).unwrap()
}

/// Metrics from memory: the same pattern, as a source answers it.
struct InMemoryRate(u64);

#[async_trait]
impl MetricSource for InMemoryRate {
    async fn range(
        &self,
        _: &WorkloadRef,
        _: Signal,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: Duration,
    ) -> Result<TimeSeries, CollectorError> {
        let start = align_down(from, step.num_seconds() as u32);
        let n = ((to - start).num_seconds() / step.num_seconds()).max(0);
        let values = (0..n).map(|i| rps_at(start + step * i as i32, self.0)).collect();
        Ok(TimeSeries::from_values(start, step, values).unwrap())
    }

    async fn instant(&self, _: &WorkloadRef, _: Signal, at: DateTime<Utc>) -> Result<Option<f64>, CollectorError> {
        Ok(Some(rps_at(at, self.0)))
    }
}

fn config(name: &str) -> WorkloadConfig {
    WorkloadConfig {
        workload: WorkloadRef::new("bench", name),
        mode: Mode::Direct,
        min_replicas: 2,
        max_replicas: 100,
        capacity_per_pod: Setting::Fixed(10.0),
        target_utilization: 0.7,
        startup: Setting::Fixed(StdDuration::from_secs(120)),
        safety_buffer: StdDuration::from_secs(30),
        stabilization_window: StdDuration::from_secs(300),
        max_scale_down_fraction: 0.25,
        tolerance: 0.1,
        scale_down_cooldown: StdDuration::from_secs(120),
        horizon: StdDuration::from_secs(3600),
        signals: BTreeMap::new(),
        events: vec![],
        history_file: None,
        predictor: PredictorKind::StatisticalEvents,
    }
}

fn settings(concurrency: usize) -> EngineSettings {
    EngineSettings {
        tick: Duration::seconds(30),
        // Ticks only evaluate the fitted model; no refit inside the measurement.
        refit: Duration::days(100_000),
        concurrency,
        step_secs: 60,
        stale_after: Duration::minutes(3),
        history_len: (DAYS * 1440) as usize,
        metrics_timeout: StdDuration::from_secs(5),
        predict_timeout: StdDuration::from_secs(30),
        llm: None,
    }
}

struct Bench {
    engine: Engine,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

async fn bench_engine(n: usize, shared_model: bool, concurrency: usize) -> Bench {
    let clock = ManualClock::new(t0());
    let shared: SharedClock = Arc::new(clock.clone());
    let dir = tempfile::tempdir().unwrap();
    let configs: Vec<WorkloadConfig> = (0..n).map(|i| config(&format!("w{i}"))).collect();
    let state = Arc::new(
        DaemonState::load(shared, Metrics::new(), Arc::new(FileEventStore::new(dir.path())), configs.clone(), 100)
            .await
            .unwrap(),
    );
    // One model fitted on the pattern serves every workload of the 1,000-workload tick, so the
    // setup does not take 1,000 fits; evaluating it costs each workload the same.
    let predictor = shared_model.then(|| {
        let h = history(t0(), 0);
        let config = FitConfig { fit_time: Some(t0()), ..FitConfig::default() };
        let model = Arc::new(prescale_predictor::fit(&h, &[], &UpliftTable::default(), &config).unwrap());
        build_predictor(
            PredictorKind::StatisticalEvents,
            Some(&model),
            None,
            &UpliftTable::default(),
            StdDuration::from_secs(30),
        )
    });
    let mut parts = BTreeMap::new();
    for (i, c) in configs.iter().enumerate() {
        let state = ReplicaState { spec: 10, ready: 10, hpa_floor: None, observed_load: None };
        let fake = Arc::new(FakeActuator::new().with_workload(c.workload.clone(), state));
        let part = WorkloadParts {
            metrics: Some(Arc::new(InMemoryRate(i as u64))),
            seed: Some(history(t0(), i as u64)),
            predictor: predictor.clone(),
            ..WorkloadParts::new(fake)
        };
        parts.insert(c.workload.clone(), part);
    }
    let engine = Engine::new(state, settings(concurrency), parts).unwrap();
    // The first tick fits (one workload) and warms up.
    let report = engine.tick().await;
    assert_eq!(report.decisions.len(), n, "{:?}", report.failures);
    Bench { engine, clock, _dir: dir }
}

fn one_workload(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let bench = runtime.block_on(bench_engine(1, false, 4));
    c.bench_function("tick/1 workload (fitted model, 14 d history)", |b| {
        b.iter(|| {
            bench.clock.advance(Duration::seconds(30));
            let report = runtime.block_on(bench.engine.tick());
            assert_eq!(report.decisions.len(), 1);
        })
    });
}

fn thousand_workloads(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let bench = runtime.block_on(bench_engine(1000, true, 8));
    let mut group = c.benchmark_group("tick");
    group.sample_size(10).measurement_time(StdDuration::from_secs(20));
    group.bench_function("1000 workloads on 2 threads", |b| {
        b.iter(|| {
            bench.clock.advance(Duration::seconds(30));
            let report = runtime.block_on(bench.engine.tick());
            assert_eq!(report.decisions.len(), 1000);
        })
    });
    group.finish();
}

fn refit(c: &mut Criterion) {
    let h = history(t0(), 7);
    let config = FitConfig { fit_time: Some(t0()), ..FitConfig::default() };
    let mut group = c.benchmark_group("refit");
    group.sample_size(10);
    group.bench_function("1 workload (uplift table + fit, 14 d of 1-minute history)", |b| {
        b.iter(|| {
            let uplift = prescale_features::uplift_table(&h, &[], &prescale_features::UpliftConfig::default())
                .unwrap_or_default();
            prescale_predictor::fit(&h, &[], &uplift, &config).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, one_workload, thousand_workloads, refit);
criterion_main!(benches);
