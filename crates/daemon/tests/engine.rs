//! The loop with fakes: a failed predictor or missing metrics never lower replicas, one failing
//! (or panicking) workload does not stop the others, forecast-only and a follower send no
//! write, an announced event raises capacity even with little history, and a raised floor is
//! held until the event's end plus the stabilization window.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may unwrap, like the tests themselves.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use prescale_collector::{CollectorError, MetricSource, Signal};
use prescale_core::{
    Decision, Forecast, ForecastSource, ManualClock, ReplicaState, ScheduledEvent, SharedClock, TimeSeries, WorkloadRef,
};
use prescale_daemon::config::{Mode, PredictorKind, Setting, WorkloadConfig};
use prescale_daemon::engine::{Engine, EngineSettings, WorkloadParts};
use prescale_daemon::leader::Leadership;
use prescale_daemon::metrics::Metrics;
use prescale_daemon::state::DaemonState;
use prescale_daemon::store::FileEventStore;
use prescale_predictor::{PredictError, PredictRequest, Predictor};
use prescale_provisioner::testutil::FakeActuator;
use prescale_provisioner::{ActuationOutcome, Actuator, ActuatorError};

fn t0() -> DateTime<Utc> {
    "2026-03-02T12:00:30Z".parse().unwrap()
}

fn workload(name: &str, mode: Mode) -> WorkloadConfig {
    WorkloadConfig {
        workload: WorkloadRef::new("shop", name),
        mode,
        min_replicas: 1,
        max_replicas: 40,
        capacity_per_pod: Setting::Fixed(10.0),
        target_utilization: 0.7,
        startup: Setting::Fixed(StdDuration::from_secs(120)),
        safety_buffer: StdDuration::from_secs(30),
        stabilization_window: StdDuration::from_secs(300),
        max_scale_down_fraction: 0.5,
        tolerance: 0.1,
        scale_down_cooldown: StdDuration::from_secs(120),
        horizon: StdDuration::from_secs(3600),
        signals: BTreeMap::new(),
        events: vec![],
        history_file: None,
        predictor: PredictorKind::StatisticalEvents,
    }
}

fn settings() -> EngineSettings {
    EngineSettings {
        tick: Duration::seconds(60),
        refit: Duration::hours(6),
        concurrency: 2,
        step_secs: 60,
        stale_after: Duration::minutes(3),
        history_len: 14 * 1440,
        metrics_timeout: StdDuration::from_secs(5),
        predict_timeout: StdDuration::from_secs(5),
        llm: None,
    }
}

/// `minutes` of history before `end` at `rps` requests per second (requests per minute).
fn history(end: DateTime<Utc>, minutes: i64, rps: f64) -> TimeSeries {
    let end = prescale_daemon::history::align_down(end, 60);
    TimeSeries::from_values(end - Duration::minutes(minutes), Duration::minutes(1), vec![rps * 60.0; minutes as usize])
        .unwrap()
}

/// A fake metric source answering a constant request rate.
struct FakeRate(f64);

#[async_trait]
impl MetricSource for FakeRate {
    async fn range(
        &self,
        _: &WorkloadRef,
        _: Signal,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: Duration,
    ) -> Result<TimeSeries, CollectorError> {
        let start = prescale_daemon::history::align_down(from, step.num_seconds() as u32);
        let n = ((to - start).num_seconds() / step.num_seconds()).max(0) as usize;
        Ok(TimeSeries::from_values(start, step, vec![self.0; n]).unwrap())
    }

    async fn instant(&self, _: &WorkloadRef, _: Signal, _: DateTime<Utc>) -> Result<Option<f64>, CollectorError> {
        Ok(Some(self.0))
    }
}

/// A fake metric source that always fails.
struct FakeBrokenMetrics;

#[async_trait]
impl MetricSource for FakeBrokenMetrics {
    async fn range(
        &self,
        _: &WorkloadRef,
        _: Signal,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
        _: Duration,
    ) -> Result<TimeSeries, CollectorError> {
        Err(CollectorError::Transport { url: "http://prometheus".into(), message: "connection refused".into() })
    }

    async fn instant(&self, _: &WorkloadRef, _: Signal, _: DateTime<Utc>) -> Result<Option<f64>, CollectorError> {
        Err(CollectorError::Transport { url: "http://prometheus".into(), message: "connection refused".into() })
    }
}

/// A fake predictor that fails, or panics.
struct FakeBrokenPredictor {
    panic: bool,
}

#[async_trait]
impl Predictor for FakeBrokenPredictor {
    fn source(&self) -> ForecastSource {
        ForecastSource::Statistical
    }

    async fn predict(&self, _: &PredictRequest) -> Result<Forecast, PredictError> {
        if self.panic {
            panic!("a deliberately panicking predictor");
        }
        Err(PredictError::Upstream("the model server is down".into()))
    }
}

/// Records the hold time of every `apply_until`, then applies through a fake.
struct RecordingActuator {
    inner: FakeActuator,
    holds: Mutex<Vec<DateTime<Utc>>>,
}

#[async_trait]
impl Actuator for RecordingActuator {
    fn mode(&self) -> &'static str {
        "recording"
    }

    async fn current(&self, w: &WorkloadRef) -> Result<ReplicaState, ActuatorError> {
        self.inner.current(w).await
    }

    async fn apply(&self, w: &WorkloadRef, d: &Decision) -> Result<ActuationOutcome, ActuatorError> {
        self.inner.apply(w, d).await
    }

    async fn apply_until(
        &self,
        w: &WorkloadRef,
        d: &Decision,
        hold_until: DateTime<Utc>,
    ) -> Result<ActuationOutcome, ActuatorError> {
        self.holds.lock().unwrap().push(hold_until);
        self.inner.apply(w, d).await
    }
}

fn state_of(spec: u32) -> ReplicaState {
    ReplicaState { spec, ready: spec, hpa_floor: None, observed_load: None }
}

struct Setup {
    engine: Engine,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

async fn setup(workloads: Vec<(WorkloadConfig, WorkloadParts)>, leadership: Option<Leadership>) -> Setup {
    let clock = ManualClock::new(t0());
    let shared: SharedClock = Arc::new(clock.clone());
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileEventStore::new(dir.path()));
    let configs = workloads.iter().map(|(c, _)| c.clone()).collect();
    let state = Arc::new(DaemonState::load(shared, Metrics::new(), store, configs, 1000).await.unwrap());
    let parts = workloads.into_iter().map(|(c, p)| (c.workload, p)).collect();
    let mut engine = Engine::new(state, settings(), parts).unwrap();
    if let Some(l) = leadership {
        engine = engine.with_leadership(Arc::new(l));
    }
    Setup { engine, clock, _dir: dir }
}

/// Tick `n` times, a minute apart; every decision of `w`.
async fn ticks(setup: &Setup, w: &WorkloadRef, n: usize) -> Vec<Decision> {
    let mut out = Vec::new();
    for _ in 0..n {
        let report = setup.engine.tick().await;
        if let Some(d) = report.decisions.get(w) {
            out.push(d.clone());
        }
        setup.clock.advance(Duration::minutes(1));
    }
    out
}

#[tokio::test]
async fn a_failing_predictor_never_lowers_replicas() {
    let broken = workload("broken", Mode::Direct);
    let healthy = workload("healthy", Mode::Direct);
    let fake_broken = Arc::new(FakeActuator::new().with_workload(broken.workload.clone(), state_of(10)));
    let fake_healthy = Arc::new(FakeActuator::new().with_workload(healthy.workload.clone(), state_of(10)));
    // 1 request per second: one pod would do.
    let parts_broken = WorkloadParts {
        metrics: Some(Arc::new(FakeRate(1.0))),
        seed: Some(history(t0(), 180, 1.0)),
        predictor: Some(Arc::new(FakeBrokenPredictor { panic: false })),
        ..WorkloadParts::new(fake_broken.clone())
    };
    let parts_healthy = WorkloadParts {
        metrics: Some(Arc::new(FakeRate(1.0))),
        seed: Some(history(t0(), 180, 1.0)),
        ..WorkloadParts::new(fake_healthy.clone())
    };
    let setup = setup(vec![(broken.clone(), parts_broken), (healthy.clone(), parts_healthy)], None).await;
    let decisions = ticks(&setup, &broken.workload, 20).await;
    assert_eq!(decisions.len(), 20);
    for d in &decisions {
        assert!(d.target >= 10, "{d:?}");
        assert!(d.explanation.contains("predictor failed"), "{}", d.explanation);
    }
    assert_eq!(fake_broken.state(&broken.workload).unwrap().spec, 10);
    // The same inputs with a working predictor do scale down: the hold is the failure's doing.
    assert!(fake_healthy.state(&healthy.workload).unwrap().spec < 10);
}

#[tokio::test]
async fn missing_metrics_never_lower_replicas() {
    let w = workload("web", Mode::Direct);
    let fake = Arc::new(FakeActuator::new().with_workload(w.workload.clone(), state_of(10)));
    let parts = WorkloadParts {
        metrics: Some(Arc::new(FakeBrokenMetrics)),
        seed: Some(history(t0(), 180, 1.0)),
        ..WorkloadParts::new(fake.clone())
    };
    let setup = setup(vec![(w.clone(), parts)], None).await;
    let decisions = ticks(&setup, &w.workload, 20).await;
    assert_eq!(decisions.len(), 20);
    for d in &decisions {
        assert!(d.target >= 10, "{d:?}");
    }
    assert!(decisions.last().unwrap().explanation.contains("metrics unavailable"), "{}", decisions[19].explanation);
    assert_eq!(fake.state(&w.workload).unwrap().spec, 10);
    assert!(setup.engine.state().metrics().encode().contains(r#"kind="metrics"} 20"#));
}

#[tokio::test]
async fn one_failing_workload_does_not_stop_the_others() {
    let gone = workload("gone", Mode::Direct);
    let panicking = workload("panicking", Mode::Direct);
    let fine = workload("fine", Mode::Direct);
    // The fake knows no "gone" workload: reading its replicas fails.
    let fake = Arc::new(
        FakeActuator::new()
            .with_workload(panicking.workload.clone(), state_of(2))
            .with_workload(fine.workload.clone(), state_of(2)),
    );
    let seeded = |p: WorkloadParts| WorkloadParts {
        metrics: Some(Arc::new(FakeRate(50.0))),
        seed: Some(history(t0(), 180, 50.0)),
        ..p
    };
    let setup = setup(
        vec![
            (gone.clone(), seeded(WorkloadParts::new(fake.clone()))),
            (
                panicking.clone(),
                seeded(WorkloadParts {
                    predictor: Some(Arc::new(FakeBrokenPredictor { panic: true })),
                    ..WorkloadParts::new(fake.clone())
                }),
            ),
            (fine.clone(), seeded(WorkloadParts::new(fake.clone()))),
        ],
        None,
    )
    .await;
    let report = setup.engine.tick().await;
    assert!(report.failures[&gone.workload].contains("cannot read replicas"), "{report:?}");
    assert!(report.failures[&panicking.workload].contains("panicked"), "{report:?}");
    // 50 rps at 10 per pod and 70 %: 8 pods, raised from 2 on the same tick.
    assert_eq!(report.decisions[&fine.workload].target, 8, "{report:?}");
    assert_eq!(fake.state(&fine.workload).unwrap().spec, 8);
    let status = setup.engine.state().workload(&gone.workload).unwrap().status();
    assert!(status.last_error.unwrap().contains("not found"));
    // The next tick runs every workload again.
    setup.clock.advance(Duration::minutes(1));
    let report = setup.engine.tick().await;
    assert_eq!(report.failures.len(), 2);
    assert!(report.decisions.contains_key(&fine.workload));
}

#[tokio::test]
async fn forecast_only_and_a_follower_send_no_write() {
    let observing = workload("observing", Mode::ForecastOnly);
    let fake = Arc::new(FakeActuator::new().with_workload(observing.workload.clone(), state_of(2)));
    let parts = WorkloadParts {
        metrics: Some(Arc::new(FakeRate(50.0))),
        seed: Some(history(t0(), 180, 50.0)),
        ..WorkloadParts::new(fake.clone())
    };
    let setup_a = setup(vec![(observing.clone(), parts)], None).await;
    let decisions = ticks(&setup_a, &observing.workload, 3).await;
    assert!(decisions.iter().all(|d| d.target == 8), "{decisions:?}");
    assert!(fake.applied().is_empty(), "forecast-only never applies");
    assert_eq!(fake.state(&observing.workload).unwrap().spec, 2);
    let log = setup_a.engine.state().decisions();
    assert!(log.iter().all(|r| !r.applied && r.leader));

    // A direct workload on a replica that does not hold the Lease: decides, never writes.
    let direct = workload("direct", Mode::Direct);
    let fake = Arc::new(FakeActuator::new().with_workload(direct.workload.clone(), state_of(2)));
    let parts = WorkloadParts {
        metrics: Some(Arc::new(FakeRate(50.0))),
        seed: Some(history(t0(), 180, 50.0)),
        ..WorkloadParts::new(fake.clone())
    };
    let follower = setup(vec![(direct.clone(), parts)], Some(Leadership::elected())).await;
    let decisions = ticks(&follower, &direct.workload, 3).await;
    assert!(decisions.iter().all(|d| d.target == 8), "{decisions:?}");
    assert!(fake.applied().is_empty(), "a follower never applies");
    assert!(follower.engine.state().decisions().iter().all(|r| !r.applied && !r.leader));
}

#[tokio::test]
async fn an_announced_event_raises_capacity_with_little_history_and_holds_past_its_end() {
    let w = WorkloadConfig { mode: Mode::HpaFloor, ..workload("shop", Mode::HpaFloor) };
    let recording = Arc::new(RecordingActuator {
        inner: FakeActuator::new().with_workload(w.workload.clone(), state_of(2)),
        holds: Mutex::new(Vec::new()),
    });
    // 90 minutes of history at 10 rps: far too little for a fitted model.
    let parts = WorkloadParts {
        metrics: Some(Arc::new(FakeRate(10.0))),
        seed: Some(history(t0(), 90, 10.0)),
        ..WorkloadParts::new(recording.clone())
    };
    let setup = setup(vec![(w.clone(), parts)], None).await;
    let entry = setup.engine.state().workload(&w.workload).unwrap().clone();
    let event = ScheduledEvent {
        id: "launch".into(),
        name: "Product launch".into(),
        kind: "launch".into(),
        start: t0() + Duration::minutes(5),
        end: t0() + Duration::minutes(35),
        description: None,
        expected_multiplier: Some(4.0),
    };
    setup.engine.state().add_event(&entry, event.clone()).await.unwrap();
    let decisions = ticks(&setup, &w.workload, 6).await;
    // 40 rps at 10 per pod and 70 %: 6 pods, ordered one lead time (startup 2 min plus the
    // buffer) ahead of the start, not earlier.
    let raised = decisions.iter().find(|d| d.target > 2).unwrap_or_else(|| panic!("{decisions:?}"));
    assert_eq!(raised.target, 6, "{raised:?}");
    assert!(raised.at <= event.start - Duration::minutes(2), "{raised:?}");
    assert!(raised.at >= event.start - Duration::minutes(5), "{raised:?}");
    let forecast = entry.status().forecast.unwrap();
    assert_eq!(forecast.source, ForecastSource::StatisticalEvents);
    assert!(forecast.explanation.contains("Product launch"), "{}", forecast.explanation);
    let holds = recording.holds.lock().unwrap().clone();
    assert_eq!(holds.len(), 6);
    assert!(
        holds.iter().all(|h| *h == event.end + Duration::minutes(5)),
        "until the event's end plus the stabilization window: {holds:?}"
    );
}
