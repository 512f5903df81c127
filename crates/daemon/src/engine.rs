//! The loop: per workload per tick, collect -> predict -> decide -> act.
//!
//! Workloads run concurrently (bounded), each in its own task so that one failing or
//! panicking workload is reported and skipped while the others go on. A tick evaluates the
//! fitted model on a recent window; the full uplift measurement and fit run at refit time
//! (at start, then every `refit_interval` of clock time). Missing or stale metrics, or a
//! failed predictor, hold the current capacity: nothing scales down on missing data.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use prescale_collector::{EventCalendar, MetricSource, Signal};
use prescale_core::{Decision, Forecast, ReplicaState, ScheduledEvent, SharedClock, UpliftTable, WorkloadRef};
use prescale_predictor::llm::{LlmConfig, LlmPredictor, StructuredOutputMemory};
use prescale_predictor::{EventAware, Fallback, FitConfig, Model, PredictRequest, Predictor};
use prescale_provisioner::{ActuationOutcome, Actuator, DecisionMemory, PodCapacity, Policy, PolicyConfig, decide};
use tokio::sync::Mutex;

use crate::DaemonError;
use crate::accuracy::LiveAccuracy;
use crate::config::{DaemonConfig, LlmSettings, Mode, PredictorKind, Setting, WorkloadConfig};
use crate::history::{History, align_down};
use crate::leader::Leadership;
use crate::recent::RecentLevel;
use crate::state::{DaemonState, DecisionRecord, Plan, Planner, PodResourceUse, WorkloadEntry, WorkloadStatus};

/// Pod startup assumed while `startup: auto` has nothing learned.
const DEFAULT_STARTUP_SECS: u32 = 120;
/// Per-pod throughput samples needed before `capacity_per_pod: auto` is trusted.
const MIN_CAPACITY_SAMPLES: usize = 30;
/// Per-pod throughput samples kept.
const MAX_CAPACITY_SAMPLES: usize = 20_000;
/// History the cold-start baseline averages.
const RECENT_LEVEL_WINDOW_MINUTES: i64 = 60;
/// Window of history sent with each predict request (the fitted model warms up on 2 days).
const PREDICT_WINDOW_DAYS: i64 = 8;
/// How soon a failed fit is retried.
const FIT_RETRY_MINUTES: i64 = 30;
/// Steps re-read at each tick, so late samples fill earlier gaps.
const REREAD_STEPS: i64 = 5;
/// Scored points in the live accuracy window.
const ACCURACY_WINDOW: usize = 1440;
/// Startup samples needed before `startup: auto` is trusted.
const MIN_STARTUP_SAMPLES: usize = 1;
/// Startup samples kept (the newest win).
const MAX_STARTUP_SAMPLES: usize = 200;

/// Observes how long the workload's new pods take from creation to Ready (`startup: auto`).
#[async_trait]
pub trait StartupObserver: Send + Sync {
    /// Creation-to-Ready times of the workload's Ready pods.
    async fn startup_times(&self, workload: &WorkloadRef) -> Result<Vec<std::time::Duration>, String>;
}

/// Reads the CPU and memory the workload's pods use now (reported, never decisive).
#[async_trait]
pub trait ResourceObserver: Send + Sync {
    /// CPU cores and memory bytes summed over the workload's pods.
    async fn resources(&self, workload: &WorkloadRef) -> Result<PodResourceUse, String>;
}

/// Loop-wide settings, from the configuration.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Time between ticks.
    pub tick: Duration,
    /// Time between fits.
    pub refit: Duration,
    /// Workloads handled at once.
    pub concurrency: usize,
    /// History step in seconds.
    pub step_secs: u32,
    /// A newest point older than this is missing.
    pub stale_after: Duration,
    /// History points kept per workload.
    pub history_len: usize,
    /// Deadline of one metrics query.
    pub metrics_timeout: std::time::Duration,
    /// Deadline of one predictor call.
    pub predict_timeout: std::time::Duration,
    /// The LLM endpoint, for workloads with `predictor: llm`.
    pub llm: Option<LlmSettings>,
}

impl EngineSettings {
    /// Settings from a validated configuration.
    pub fn from_config(config: &DaemonConfig) -> Self {
        let tick = Duration::from_std(config.tick_interval).unwrap_or(Duration::seconds(30));
        let step_secs = u32::try_from(config.metrics.step.as_secs()).unwrap_or(60).max(1);
        let history_len = (config.history_retention.as_secs() / u64::from(step_secs)).max(1) as usize;
        Self {
            tick,
            refit: Duration::from_std(config.refit_interval).unwrap_or(Duration::hours(6)),
            concurrency: config.concurrency,
            step_secs,
            stale_after: Duration::from_std(config.metrics.stale_after).unwrap_or(Duration::minutes(3)),
            history_len,
            metrics_timeout: config.metrics.timeout,
            // The predictor must leave room for the rest of the tick.
            predict_timeout: (config.tick_interval / 2).max(std::time::Duration::from_secs(1)),
            llm: config.llm.clone(),
        }
    }
}

/// What the engine needs for one workload besides its configuration.
pub struct WorkloadParts {
    /// Where its request rate comes from (requests per second); `None` when metrics are off.
    pub metrics: Option<Arc<dyn MetricSource>>,
    /// Reads its replicas and applies decisions (never asked to apply in forecast-only mode).
    pub actuator: Arc<dyn Actuator>,
    /// History that seeds the daemon's own (requests per step, on the daemon's step).
    pub seed: Option<prescale_core::TimeSeries>,
    /// A predictor to use instead of the one built from the configuration and the fitted model
    /// (no fit runs for the workload then).
    pub predictor: Option<Arc<dyn Predictor>>,
    /// Where `startup: auto` learns pod startup times; `None`: the default startup applies.
    pub startup: Option<Arc<dyn StartupObserver>>,
    /// Where the pods' CPU and memory come from, if anywhere.
    pub resources: Option<Arc<dyn ResourceObserver>>,
}

impl WorkloadParts {
    /// Parts with an actuator only: no metrics, no seed, the configured predictor.
    pub fn new(actuator: Arc<dyn Actuator>) -> Self {
        Self { metrics: None, actuator, seed: None, predictor: None, startup: None, resources: None }
    }
}

/// A fitted model with what it was fitted with.
struct Fitted {
    model: Arc<Model>,
    llm: Option<Arc<LlmPredictor>>,
}

/// One workload's loop state.
struct Runtime {
    entry: Arc<WorkloadEntry>,
    metrics: Option<Arc<dyn MetricSource>>,
    actuator: Arc<dyn Actuator>,
    predictor_override: Option<Arc<dyn Predictor>>,
    history: History,
    fitted: Option<Fitted>,
    uplift: UpliftTable,
    last_fit_attempt: Option<DateTime<Utc>>,
    memory: DecisionMemory,
    per_pod_rps: VecDeque<f64>,
    accuracy: LiveAccuracy,
    output_memory: StructuredOutputMemory,
    /// Prompt and completion tokens of the current LLM predictor already counted in the metrics.
    llm_tokens_seen: (u64, u64),
    startup_observer: Option<Arc<dyn StartupObserver>>,
    startup_samples: VecDeque<std::time::Duration>,
    last_ready: u32,
    resources: Option<Arc<dyn ResourceObserver>>,
}

/// The result of one tick.
#[derive(Debug, Clone, Default)]
pub struct TickReport {
    /// Decisions taken, per workload.
    pub decisions: BTreeMap<WorkloadRef, Decision>,
    /// Workloads whose tick failed, with why.
    pub failures: BTreeMap<WorkloadRef, String>,
}

/// The scaling loop over every configured workload.
pub struct Engine {
    state: Arc<DaemonState>,
    clock: SharedClock,
    settings: EngineSettings,
    runtimes: BTreeMap<WorkloadRef, Arc<Mutex<Runtime>>>,
    leadership: Arc<Leadership>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over the workloads of `state`, with `parts` for each of them.
    /// Calendar files are read now: a bad one stops the start.
    pub fn new(
        state: Arc<DaemonState>,
        settings: EngineSettings,
        mut parts: BTreeMap<WorkloadRef, WorkloadParts>,
    ) -> Result<Self, DaemonError> {
        let clock = state.clock().clone();
        let now = clock.now();
        let mut runtimes = BTreeMap::new();
        for entry in state.workloads() {
            let w = entry.config.workload.clone();
            let part = parts.remove(&w).ok_or_else(|| DaemonError::Stage {
                stage: "engine",
                message: format!("no metric source or actuator was built for {w}"),
            })?;
            entry.set_file_events(read_calendars(&entry.config)?);
            let history = match &part.seed {
                Some(seed) => History::seeded(settings.step_secs, settings.history_len, seed)?,
                None => History::new(settings.step_secs, settings.history_len, now)?,
            };
            let runtime = Runtime {
                entry: entry.clone(),
                metrics: part.metrics,
                actuator: part.actuator,
                predictor_override: part.predictor,
                history,
                fitted: None,
                uplift: UpliftTable::default(),
                last_fit_attempt: None,
                memory: DecisionMemory::new(),
                per_pod_rps: VecDeque::new(),
                accuracy: LiveAccuracy::new(ACCURACY_WINDOW),
                output_memory: StructuredOutputMemory::new(),
                llm_tokens_seen: (0, 0),
                startup_observer: part.startup,
                startup_samples: VecDeque::new(),
                last_ready: 0,
                resources: part.resources,
            };
            runtimes.insert(w, Arc::new(Mutex::new(runtime)));
        }
        Ok(Self { state, clock, settings, runtimes, leadership: Arc::new(Leadership::always()) })
    }

    /// The same engine acting only while `leadership` says this replica leads; a follower
    /// forecasts and decides (for its read API) but changes nothing.
    pub fn with_leadership(mut self, leadership: Arc<Leadership>) -> Self {
        self.leadership = leadership;
        self
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<DaemonState> {
        &self.state
    }

    /// One tick over every workload, concurrently up to the configured bound.
    pub async fn tick(&self) -> TickReport {
        let started = Instant::now();
        let now = self.clock.now();
        // Every workload in its own task (a panic stays in it), at most `concurrency` at once.
        let permits = Arc::new(tokio::sync::Semaphore::new(self.settings.concurrency.max(1)));
        let mut tasks = Vec::with_capacity(self.runtimes.len());
        for (w, runtime) in &self.runtimes {
            let runtime = runtime.clone();
            let state = self.state.clone();
            let settings = self.settings.clone();
            let leadership = self.leadership.clone();
            let permits = permits.clone();
            let task = tokio::spawn(async move {
                let _permit = permits.acquire_owned().await;
                let mut runtime = runtime.lock_owned().await;
                runtime.tick(now, &settings, &state, &leadership).await
            });
            tasks.push((w.clone(), task));
        }
        let mut results = Vec::with_capacity(tasks.len());
        for (w, task) in tasks {
            results.push((w, task.await));
        }
        let mut report = TickReport::default();
        for (w, result) in results {
            match result {
                Ok(Ok(decision)) => {
                    report.decisions.insert(w, decision);
                }
                Ok(Err(message)) => {
                    tracing::warn!(workload = %w, error = %message, "workload tick failed; the others go on");
                    report.failures.insert(w, message);
                }
                Err(join) => {
                    let message = format!("the workload's tick panicked: {join}");
                    tracing::error!(workload = %w, error = %message);
                    self.state.metrics().record_failure(&w, "panic");
                    if let Some(entry) = self.state.workload(&w) {
                        let mut status = entry.status();
                        status.last_error = Some(message.clone());
                        status.updated_at = Some(now);
                        entry.set_status(status);
                    }
                    report.failures.insert(w, message);
                }
            }
        }
        self.state.metrics().observe_tick(started.elapsed().as_secs_f64());
        report
    }

    /// Tick until `shutdown` resolves; a tick in progress is finished first.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let started = self.clock.now();
            self.state.reload_events().await;
            let report = self.tick().await;
            self.state.set_ready();
            tracing::info!(decisions = report.decisions.len(), failures = report.failures.len(), "tick finished");
            let wait = (started + self.settings.tick - self.clock.now()).max(Duration::zero());
            tokio::select! {
                _ = self.clock.sleep(wait) => {}
                _ = &mut shutdown => {
                    tracing::info!("shutdown requested; the loop stops");
                    return;
                }
            }
        }
    }
}

#[async_trait]
impl Planner for Engine {
    async fn plan(&self, workload: &WorkloadRef, extra_events: Vec<ScheduledEvent>) -> Result<Plan, DaemonError> {
        let runtime = self.runtimes.get(workload).ok_or_else(|| DaemonError::Stage {
            stage: "planner",
            message: format!("workload {workload} is not configured"),
        })?;
        let runtime = runtime.lock().await;
        runtime.plan(self.clock.now(), &self.settings, extra_events).await
    }
}

/// Read a workload's calendar files.
fn read_calendars(config: &WorkloadConfig) -> Result<Vec<ScheduledEvent>, DaemonError> {
    let mut events = Vec::new();
    for path in &config.events {
        let calendar = EventCalendar::from_path(path)
            .map_err(|e| DaemonError::Input { file: path.display().to_string(), message: e.to_string() })?;
        events.extend(calendar.all().iter().cloned());
    }
    Ok(events)
}

/// The LLM predictor's configuration from the daemon's settings.
pub fn llm_config(settings: &LlmSettings, tick: std::time::Duration) -> LlmConfig {
    let mut config = LlmConfig::new(settings.endpoint.clone(), settings.model.clone());
    match &settings.api_key {
        Some(crate::config::SecretSource::Env(var)) => config.api_key_env = Some(var.clone()),
        Some(crate::config::SecretSource::File(path)) => config.api_key_file = Some(path.clone()),
        None => {}
    }
    config.connect_timeout = settings.connect_timeout;
    config.request_timeout = settings.request_timeout;
    config.max_deadline = settings.max_deadline;
    config.tick = tick;
    config
}

/// Build the predictor of `kind` over an optional fitted model.
pub fn build_predictor(
    kind: PredictorKind,
    model: Option<&Arc<Model>>,
    llm: Option<&Arc<LlmPredictor>>,
    uplift: &UpliftTable,
    deadline: std::time::Duration,
) -> Arc<dyn Predictor> {
    let recent: Arc<dyn Predictor> = Arc::new(RecentLevel::new(Duration::minutes(RECENT_LEVEL_WINDOW_MINUTES)));
    let baseline: Arc<dyn Predictor> = match model {
        Some(model) => Arc::new(Fallback::new(model.clone(), recent, deadline)),
        None => recent,
    };
    match (kind, llm) {
        (PredictorKind::Statistical, _) => baseline,
        (PredictorKind::Llm, Some(llm)) => llm.clone(),
        // Until an LLM predictor is built (no fit yet), the event-aware predictor answers.
        (PredictorKind::StatisticalEvents | PredictorKind::Llm, _) => {
            let event_aware = EventAware::new(baseline, uplift.clone());
            // With a model, its learned event shapes and spreads apply too, as in `Model::event_aware`.
            Arc::new(match model {
                Some(model) => {
                    event_aware.with_shapes(model.event_shapes().clone()).with_spreads(model.event_spreads().clone())
                }
                None => event_aware,
            })
        }
    }
}

/// The uplift table forecasts apply: the fitted model's (the measured table re-calibrated
/// against its own baseline, what the backtests score) when it has one, else `measured`.
pub(crate) fn applied_uplift(model: Option<&Model>, measured: UpliftTable) -> UpliftTable {
    match model {
        Some(model) if !model.uplift().kinds.is_empty() => model.uplift().clone(),
        _ => measured,
    }
}

/// The policy of a workload, or why there is none yet.
pub(crate) fn policy_for(
    config: &WorkloadConfig,
    settings_tick: Duration,
    step_secs: u32,
    learned_capacity_rps: Option<f64>,
    learned_startup: Option<std::time::Duration>,
) -> Result<Policy, String> {
    let rps = match config.capacity_per_pod {
        Setting::Fixed(rps) => rps,
        Setting::Auto => learned_capacity_rps.ok_or_else(|| {
            "capacity_per_pod is auto and not learned yet (needs observed load with Ready pods)".to_string()
        })?,
    };
    let startup = config
        .startup
        .or_learned(learned_startup.unwrap_or(std::time::Duration::from_secs(u64::from(DEFAULT_STARTUP_SECS))));
    let policy = PolicyConfig {
        target_utilization: config.target_utilization,
        pod_startup_secs: u32::try_from(startup.as_secs()).unwrap_or(u32::MAX),
        safety_buffer_secs: u32::try_from(config.safety_buffer.as_secs()).unwrap_or(u32::MAX),
        tick_secs: u32::try_from(settings_tick.num_seconds()).unwrap_or(60).max(1),
        scale_down_stabilization_secs: u32::try_from(config.stabilization_window.as_secs()).unwrap_or(u32::MAX),
        max_scale_down_fraction: config.max_scale_down_fraction,
        tolerance: config.tolerance,
        scale_down_cooldown_secs: u32::try_from(config.scale_down_cooldown.as_secs()).unwrap_or(u32::MAX),
        ..PolicyConfig::new(
            PodCapacity::from_requests_per_second(rps, step_secs),
            config.min_replicas,
            config.max_replicas,
        )
    };
    policy.build().map_err(|e| e.to_string())
}

impl Runtime {
    fn workload(&self) -> &WorkloadRef {
        &self.entry.config.workload
    }

    fn learned_capacity(&self) -> Option<f64> {
        (self.per_pod_rps.len() >= MIN_CAPACITY_SAMPLES)
            .then(|| self.per_pod_rps.iter().copied().fold(0.0, f64::max))
            .filter(|c| *c > 0.0)
    }

    /// The 90th percentile of the observed pod startup times, once there are enough.
    fn learned_startup(&self) -> Option<std::time::Duration> {
        if self.startup_samples.len() < MIN_STARTUP_SAMPLES {
            return None;
        }
        let mut sorted: Vec<_> = self.startup_samples.iter().copied().collect();
        sorted.sort();
        let index = ((sorted.len() - 1) as f64 * 0.9).round() as usize;
        sorted.get(index).copied()
    }

    /// Learn pod startup times (only for `startup: auto`; new pods only add new samples).
    async fn observe_startup(&mut self) {
        if self.entry.config.startup != Setting::Auto {
            return;
        }
        let Some(observer) = &self.startup_observer else {
            return;
        };
        match observer.startup_times(self.workload()).await {
            Ok(times) => {
                // One sample per distinct time: the same Ready pods are seen at every look.
                for t in times {
                    if !self.startup_samples.contains(&t) {
                        self.startup_samples.push_back(t);
                    }
                }
                while self.startup_samples.len() > MAX_STARTUP_SAMPLES {
                    self.startup_samples.pop_front();
                }
            }
            Err(e) => tracing::debug!(workload = %self.workload(), error = %e, "cannot read pod startup times"),
        }
    }

    fn fit_due(&self, now: DateTime<Utc>, refit: Duration) -> bool {
        match self.last_fit_attempt {
            None => true,
            Some(last) if self.fitted.is_none() => now - last >= Duration::minutes(FIT_RETRY_MINUTES).min(refit),
            Some(last) => now - last >= refit,
        }
    }

    /// Measure uplifts and fit the model on the history before `now` (CPU-heavy: off the runtime).
    async fn refit(&mut self, now: DateTime<Utc>, settings: &EngineSettings, state: &DaemonState) {
        self.last_fit_attempt = Some(now);
        self.observe_startup().await;
        match read_calendars(&self.entry.config) {
            Ok(events) => self.entry.set_file_events(events),
            Err(e) => {
                tracing::warn!(workload = %self.workload(), error = %e, "calendar files unreadable; keeping the events read before")
            }
        }
        let events = self.entry.all_events().await;
        let history = self.history.series().before(now);
        let joined = tokio::task::spawn_blocking(move || {
            let uplift =
                prescale_features::uplift_table(&history, &events, &prescale_features::UpliftConfig::default());
            let table = uplift.as_ref().cloned().unwrap_or_default();
            let config = FitConfig { fit_time: Some(now), ..FitConfig::default() };
            let model = prescale_predictor::fit(&history, &events, &table, &config);
            (uplift.map_err(|e| e.to_string()), model.map_err(|e| e.to_string()))
        })
        .await;
        let (uplift, model) = match joined {
            Ok(pair) => pair,
            Err(e) => {
                tracing::error!(workload = %self.workload(), error = %e, "fit task failed");
                return;
            }
        };
        match uplift {
            Ok(table) => self.uplift = table,
            Err(e) => tracing::info!(workload = %self.workload(), reason = %e, "no uplift table measured"),
        }
        match model {
            Ok(model) => {
                let model = Arc::new(model);
                tracing::info!(workload = %self.workload(), rel_mae = ?model.rel_mae(), "model fitted");
                self.uplift = applied_uplift(Some(&model), std::mem::take(&mut self.uplift));
                let llm = self.build_llm(&model, settings, state);
                // A new LLM predictor counts its tokens from zero.
                self.llm_tokens_seen = (0, 0);
                self.fitted = Some(Fitted { model, llm });
            }
            Err(e) => {
                tracing::info!(workload = %self.workload(), reason = %e, "no model fitted; forecasts use the recent level");
                state.metrics().record_failure(self.workload(), "fit");
            }
        }
    }

    fn build_llm(
        &self,
        model: &Arc<Model>,
        settings: &EngineSettings,
        state: &DaemonState,
    ) -> Option<Arc<LlmPredictor>> {
        if self.entry.config.predictor != PredictorKind::Llm {
            return None;
        }
        let llm = settings.llm.as_ref()?;
        let config = llm_config(llm, settings.tick.to_std().unwrap_or_default());
        let baseline =
            build_predictor(PredictorKind::Statistical, Some(model), None, &self.uplift, settings.predict_timeout);
        let fallback = build_predictor(
            PredictorKind::StatisticalEvents,
            Some(model),
            None,
            &self.uplift,
            settings.predict_timeout,
        );
        match LlmPredictor::new(config, baseline, fallback, state.clock().clone()) {
            Ok(p) => Some(Arc::new(p.with_output_memory(self.output_memory.clone()))),
            Err(e) => {
                tracing::error!(workload = %self.workload(), error = %e, "cannot build the LLM predictor; statistical+events answers");
                state.metrics().record_failure(self.workload(), "llm-config");
                None
            }
        }
    }

    fn predictor(&self, settings: &EngineSettings) -> Arc<dyn Predictor> {
        if let Some(p) = &self.predictor_override {
            return p.clone();
        }
        build_predictor(
            self.entry.config.predictor,
            self.fitted.as_ref().map(|f| &f.model),
            self.fitted.as_ref().and_then(|f| f.llm.as_ref()),
            &self.uplift,
            settings.predict_timeout,
        )
    }

    fn request(&self, now: DateTime<Utc>, events: Vec<ScheduledEvent>) -> PredictRequest {
        let at = align_down(now, self.history.step_secs());
        let history = self.history.series().window(at - Duration::days(PREDICT_WINDOW_DAYS), at);
        let horizon = self.entry.config.horizon.as_secs() / u64::from(self.history.step_secs());
        PredictRequest {
            history,
            events,
            uplift: self.uplift.clone(),
            at,
            horizon_steps: usize::try_from(horizon).unwrap_or(60).max(1),
        }
    }

    async fn predict(&self, request: &PredictRequest, settings: &EngineSettings) -> Result<Forecast, String> {
        let predictor = self.predictor(settings);
        match tokio::time::timeout(settings.predict_timeout, predictor.predict(request)).await {
            Ok(Ok(forecast)) => Ok(forecast),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no forecast within {:?}", settings.predict_timeout)),
        }
    }

    /// Read the newest samples into the history; `Err` names what is missing.
    async fn collect(&mut self, now: DateTime<Utc>, settings: &EngineSettings) -> Result<(), String> {
        self.history.extend_to(now);
        let Some(source) = &self.metrics else {
            return Ok(());
        };
        let step = Duration::seconds(i64::from(settings.step_secs));
        let to = self.history.end();
        // Ask every tick, also before the history has a complete point: sources that sample
        // "now" (pod scrapes) need every read. Points before the history's start are dropped.
        let from = to - step * REREAD_STEPS as i32;
        let query = source.range(self.workload(), Signal::RequestRate, from, to, step);
        let series = match tokio::time::timeout(settings.metrics_timeout, query).await {
            Ok(Ok(series)) => series,
            Ok(Err(e)) => return Err(format!("metrics unavailable: {e}")),
            Err(_) => return Err(format!("metrics query timed out after {:?}", settings.metrics_timeout)),
        };
        let per_step = f64::from(settings.step_secs);
        for (i, v) in series.values().iter().enumerate() {
            if let Some(rps) = v {
                self.history.set(series.timestamp(i), rps * per_step);
            }
        }
        Ok(())
    }

    /// How long a floor raised now may stand unless renewed: past the end of every event the
    /// forecast sees (the raise's reason), plus the stabilization window; at least two ticks.
    fn hold_until(&self, now: DateTime<Utc>, settings: &EngineSettings, events: &[ScheduledEvent]) -> DateTime<Utc> {
        let horizon = Duration::from_std(self.entry.config.horizon).unwrap_or(Duration::hours(1));
        let stabilization = Duration::from_std(self.entry.config.stabilization_window).unwrap_or(Duration::minutes(5));
        let reason_end = events
            .iter()
            .filter(|e| e.start < now + horizon && e.end > now)
            .map(|e| e.end)
            .fold(now + settings.tick * 2, DateTime::max);
        reason_end + stabilization
    }

    fn set_error(&self, now: DateTime<Utc>, message: &str) {
        let mut status = self.entry.status();
        status.last_error = Some(message.to_string());
        status.updated_at = Some(now);
        self.entry.set_status(status);
    }

    /// One tick; `Err` when nothing could be decided (the replicas could not be read) or the
    /// decision could not be applied.
    async fn tick(
        &mut self,
        now: DateTime<Utc>,
        settings: &EngineSettings,
        state: &DaemonState,
        leadership: &Leadership,
    ) -> Result<Decision, String> {
        let w = self.workload().clone();
        let metrics = state.metrics();
        let leader = leadership.is_leader(now);
        // A raised floor never outlives its reason: restore expired ones first, every tick.
        if leader {
            match self.actuator.restore_expired(&w, now).await {
                Ok(true) => tracing::info!(workload = %w, "restored an expired HPA floor"),
                Ok(false) => {}
                Err(e) => {
                    metrics.record_failure(&w, "actuator");
                    tracing::warn!(workload = %w, error = %e, "cannot check or restore the HPA floor");
                }
            }
        }
        let replicas = match self.actuator.current(&w).await {
            Ok(r) => r,
            Err(e) => {
                metrics.record_failure(&w, "cluster");
                let message = format!("cannot read replicas: {e}");
                self.set_error(now, &message);
                return Err(message);
            }
        };
        if replicas.ready > self.last_ready {
            // New pods turned Ready: their startup times are new samples.
            self.observe_startup().await;
        }
        self.last_ready = replicas.ready;

        let mut problems = Vec::new();
        if let Err(e) = self.collect(now, settings).await {
            metrics.record_failure(&w, "metrics");
            problems.push(e);
        }
        let observed = self.history.latest(now, settings.stale_after);
        match observed {
            Some((t, load)) => {
                self.accuracy.observe(t, load, self.history.day_before(t));
                metrics.set_accuracy(&w, self.accuracy.rel_mae(), self.accuracy.bias());
                if replicas.ready > 0 {
                    self.per_pod_rps.push_back(load / f64::from(settings.step_secs) / f64::from(replicas.ready));
                    while self.per_pod_rps.len() > MAX_CAPACITY_SAMPLES {
                        self.per_pod_rps.pop_front();
                    }
                }
            }
            None if self.metrics.is_some() => problems.push("no fresh request-rate sample".to_string()),
            None => {}
        }
        let resources = match &self.resources {
            Some(observer) => match observer.resources(&w).await {
                Ok(r) => {
                    metrics.set_resources(&w, r.cpu_cores, r.memory_bytes);
                    Some(r)
                }
                Err(e) => {
                    tracing::debug!(workload = %w, error = %e, "pod CPU and memory unavailable");
                    None
                }
            },
            None => None,
        };

        // A workload given its own predictor has nothing to fit.
        if self.predictor_override.is_none() && self.fit_due(now, settings.refit) {
            self.refit(now, settings, state).await;
        }

        let events = self.entry.all_events().await;
        let hold_until = self.hold_until(now, settings, &events);
        let request = self.request(now, events);
        let started = Instant::now();
        let forecast = self.predict(&request, settings).await;
        if self.entry.config.predictor == PredictorKind::Llm {
            let fell_back = forecast.as_ref().map_or(true, |f| f.source.is_fallback());
            let tokens = self.fitted.as_ref().and_then(|f| f.llm.as_ref()).map(|llm| {
                let stats = llm.stats();
                let (prompt_seen, completion_seen) = self.llm_tokens_seen;
                self.llm_tokens_seen = (stats.prompt_tokens, stats.completion_tokens);
                (
                    stats.prompt_tokens.saturating_sub(prompt_seen),
                    stats.completion_tokens.saturating_sub(completion_seen),
                )
            });
            metrics.record_llm(&w, started.elapsed().as_secs_f64(), fell_back, tokens);
        }
        let forecast = match forecast {
            Ok(f) => Some(f),
            Err(e) => {
                metrics.record_failure(&w, "predictor");
                problems.push(format!("predictor failed: {e}"));
                None
            }
        };

        let observed_state = ReplicaState { observed_load: observed.map(|(_, v)| v), ..replicas };
        let policy = policy_for(
            &self.entry.config,
            settings.tick,
            settings.step_secs,
            self.learned_capacity(),
            self.learned_startup(),
        );
        let mut decision = match &policy {
            Ok(policy) => decide(forecast.as_ref(), &observed_state, policy, &mut self.memory, now),
            Err(why) => {
                Decision::new(now, replicas.spec, replicas.spec, format!("holding {} replicas: {why}", replicas.spec))
            }
        };
        let missing_input = forecast.is_none() || observed_state.observed_load.is_none();
        if missing_input && decision.target < replicas.spec {
            // Never scale down on missing data, whatever bound asked for it.
            decision = Decision::new(
                now,
                replicas.spec,
                replicas.spec,
                format!("holding {} replicas: inputs are missing ({})", replicas.spec, decision.explanation),
            );
        }
        if !problems.is_empty() {
            decision.explanation = format!("{} [{}]", decision.explanation, problems.join("; "));
        }

        let mut applied = false;
        let mut act_error = None;
        let acting = self.entry.config.mode != Mode::ForecastOnly && leader;
        if acting {
            match self.actuator.apply_until(&w, &decision, hold_until).await {
                Ok(outcome) => {
                    applied = matches!(outcome, ActuationOutcome::Scaled { .. } | ActuationOutcome::FloorSet { .. })
                }
                Err(e) => {
                    metrics.record_failure(&w, "actuator");
                    act_error = Some(format!("cannot apply the decision: {e}"));
                }
            }
        }

        if let (Some(f), Ok(policy)) = (&forecast, &policy) {
            let target = align_down(now + policy.lead_time(), f.step_secs);
            if let Some(p) = f.point_at(target) {
                let per_sec = f64::from(f.step_secs.max(1));
                metrics.set_forecast(&w, p.p50 / per_sec, p.p90 / per_sec);
                self.accuracy.record_forecast(target, p.p50);
            }
        }
        metrics.record_decision(&w, replicas.spec, decision.target, decision.direction);
        tracing::info!(
            workload = %w,
            mode = self.entry.config.mode.as_str(),
            leader,
            current = decision.current,
            target = decision.target,
            applied,
            explanation = %decision.explanation,
            "decision"
        );
        state.log_decision(DecisionRecord {
            workload: w.clone(),
            mode: self.entry.config.mode,
            decision: decision.clone(),
            applied,
            leader,
            source: forecast.as_ref().map(|f| f.source.to_string()),
        });
        let last_error = act_error.clone().or_else(|| (!problems.is_empty()).then(|| problems.join("; ")));
        self.entry.set_status(WorkloadStatus {
            replicas: Some(observed_state),
            forecast,
            decision: Some(decision.clone()),
            resources,
            last_error,
            updated_at: Some(now),
        });
        match act_error {
            Some(e) => Err(e),
            None => Ok(decision),
        }
    }

    /// A what-if plan: the same forecast and policy with `extra` events, touching no state.
    async fn plan(
        &self,
        now: DateTime<Utc>,
        settings: &EngineSettings,
        extra: Vec<ScheduledEvent>,
    ) -> Result<Plan, DaemonError> {
        let mut events = self.entry.all_events().await;
        events.extend(extra);
        let request = self.request(now, events);
        let forecast = self
            .predict(&request, settings)
            .await
            .map_err(|message| DaemonError::Stage { stage: "predictor", message })?;
        let replicas = match self.entry.status().replicas {
            Some(r) => r,
            None => {
                let mut r = self
                    .actuator
                    .current(self.workload())
                    .await
                    .map_err(|e| DaemonError::Stage { stage: "cluster", message: e.to_string() })?;
                r.observed_load = self.history.latest(now, settings.stale_after).map(|(_, v)| v);
                r
            }
        };
        let policy = policy_for(
            &self.entry.config,
            settings.tick,
            settings.step_secs,
            self.learned_capacity(),
            self.learned_startup(),
        );
        let decision = match policy {
            Ok(policy) => {
                // A copy of the memory: a what-if must not move the stabilization window.
                let mut memory = self.memory.clone();
                decide(Some(&forecast), &replicas, &policy, &mut memory, now)
            }
            Err(why) => {
                Decision::new(now, replicas.spec, replicas.spec, format!("holding {} replicas: {why}", replicas.spec))
            }
        };
        Ok(Plan { forecast, decision })
    }
}
