//! Running the scenario: the options, one policy's run on a fresh cluster, and all of them in
//! order with the report written at the end.
//!
//! One run: start a cluster on a `ScaledClock`, create the Deployment (and the HPA), wait for
//! the baseline pods, start a warm-up load at the baseline rate, write the synthetic history
//! and start the daemon, then pick scenario second 0 on the next whole minute and hand over
//! from the warm-up load to the scenario's load. While the load
//! runs, a sampler reads replicas, CPU and memory from the cluster, a poller reads the daemon's
//! forecast, and the event is announced on time.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use chrono::{DateTime, Utc};
use prescale_cluster::{AutoscalerSpec, Cluster, ClusterConfig, DeploymentSpec, PodConfig};
use prescale_core::{ScaledClock, ScheduledEvent, SharedClock, SystemClock};
use tokio::sync::watch;
use tokio::time::Instant;

use super::daemon::{DaemonPlan, MetricsPlan, NAMESPACE, RunningDaemon, WORKLOAD};
use super::history::{EVENT_KIND, HistorySpec};
use super::measure::{ForecastSnapshot, MeasureSettings, RunRecord, Sample, measure, replicas_needed};
use super::progress::{Progress, Status};
use super::prometheus::PrometheusServer;
use super::report::{self, CheckLimits, ReportSettings, RunNotes, ScenarioReport};
use super::timeline::{Timeline, TimelineKind};
use super::{ScenarioError, wall, write_file};
use crate::load::{LoadConfig, LoadGenerator, RateSchedule};

/// Memory request of the cluster's pods (memory utilization is relative to it).
const MEMORY_REQUEST_BYTES: f64 = 256.0 * 1024.0 * 1024.0;
/// The fewest replicas the daemon may ask for.
const DAEMON_MIN_REPLICAS: u32 = 2;
/// Target CPU utilization of the HPA and of the daemon's plan.
const TARGET_UTILIZATION: f64 = 0.7;
/// Least lead the verdict asks for, scenario seconds.
const MIN_LEAD_S: f64 = 60.0;
/// Time from the daemon's decision to new pods existing (the scale patch, the deployment
/// controller, the kubelet), with room for a loaded machine at a high time scale.
const DECISION_LATENCY_S: f64 = 10.0;
/// The HPA controller's sync period: in `hpa-floor` mode a raised floor acts at its next sync.
const HPA_SYNC_S: f64 = 15.0;
/// Requests without a complete answer after this long count as timeouts.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// A way of scaling the shop during the surge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Policy {
    /// The daemon in `direct` mode: it sets the Deployment's replicas.
    Prescale,
    /// The reactive HPA (CPU 70%) alone, run by the cluster's HPA controller.
    Hpa,
    /// The daemon in `hpa-floor` mode over that HPA: it raises the HPA's `minReplicas`.
    PrescaleFloor,
}

impl Policy {
    /// The policy's name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Prescale => "prescale",
            Policy::Hpa => "hpa",
            Policy::PrescaleFloor => "prescale-floor",
        }
    }

    fn has_hpa(self) -> bool {
        matches!(self, Policy::Hpa | Policy::PrescaleFloor)
    }

    fn daemon_mode(self) -> Option<&'static str> {
        match self {
            Policy::Prescale => Some("direct"),
            Policy::PrescaleFloor => Some("hpa-floor"),
            Policy::Hpa => None,
        }
    }
}

/// An OpenAI-compatible endpoint for the daemon's LLM predictor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmOptions {
    /// Base URL, e.g. `http://localhost:11434/v1`.
    pub endpoint: String,
    /// Model name.
    pub model: String,
    /// Environment variable holding the API key, if the endpoint needs one.
    pub api_key_env: Option<String>,
}

/// Everything a scenario run needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioOptions {
    /// Policies, run one after the other, each on a fresh cluster.
    pub policies: Vec<Policy>,
    /// Scenario seconds per wall second (request rates are not scaled).
    pub time_scale: f64,
    /// Which timeline.
    pub timeline: TimelineKind,
    /// Baseline load, requests per wall second.
    pub baseline_rps: f64,
    /// Surge load over the baseline.
    pub surge_multiplier: f64,
    /// SLO on the surge's p95 latency, ms.
    pub slo_p95_ms: f64,
    /// Where the report goes.
    pub report_dir: PathBuf,
    /// Capacity model of the pods.
    pub pod: PodConfig,
    /// Pod startup delay, scenario time.
    pub startup_delay: Duration,
    /// Pod startup jitter (uniform within `±`), scenario time.
    pub startup_jitter: Duration,
    /// The LLM predictor's endpoint; `None` runs `statistical+events`.
    pub llm: Option<LlmOptions>,
    /// The `prometheus` binary, in `--prometheus` mode.
    pub prometheus: Option<PathBuf>,
    /// Live progress bars.
    pub progress: bool,
    /// Days of synthetic history.
    pub history_days: u32,
    /// Seed of the history's noise and the cluster's names.
    pub seed: u64,
}

impl ScenarioOptions {
    /// The defaults of `prescale-harness scenario`, writing to `report_dir`.
    pub fn new(report_dir: impl Into<PathBuf>) -> Self {
        Self {
            policies: vec![Policy::Prescale, Policy::Hpa],
            time_scale: 60.0,
            timeline: TimelineKind::Default,
            baseline_rps: 100.0,
            surge_multiplier: 4.0,
            slo_p95_ms: 250.0,
            report_dir: report_dir.into(),
            pod: default_pod(),
            startup_delay: Duration::from_secs(45),
            startup_jitter: Duration::from_secs(5),
            llm: None,
            prometheus: None,
            progress: true,
            history_days: 14,
            seed: 0x5eed,
        }
    }

    /// One pod's capacity at 100%, requests per second.
    pub fn capacity_rps(&self) -> f64 {
        self.pod.capacity_rps()
    }

    /// Pods the baseline runs on: enough for the baseline at the target utilization.
    pub fn baseline_replicas(&self) -> u32 {
        ((self.baseline_rps / (self.capacity_rps() * TARGET_UTILIZATION)) - 1e-9).ceil().max(1.0) as u32
    }

    /// The predictor's label in the report.
    pub fn predictor_label(&self) -> String {
        match &self.llm {
            Some(llm) => format!("llm:{}", llm.model),
            None => "statistical+events".to_string(),
        }
    }

    /// Check the options; the error names the bad one.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |option: &'static str, problem: String| Err(ScenarioError::InvalidOption { option, problem });
        if self.policies.is_empty() {
            return bad("--policies", "name at least one of prescale, hpa, prescale-floor".into());
        }
        if !(self.time_scale.is_finite() && self.time_scale > 0.0 && self.time_scale <= 600.0) {
            return bad("--time-scale", format!("must be in (0, 600], got {}", self.time_scale));
        }
        if self.prometheus.is_some() && (self.time_scale - 1.0).abs() > f64::EPSILON {
            return bad(
                "--time-scale",
                format!("--prometheus needs 1 (Prometheus stamps wall-clock time), got {}", self.time_scale),
            );
        }
        if !(self.baseline_rps.is_finite() && self.baseline_rps > 0.0 && self.baseline_rps <= 5000.0) {
            return bad("--baseline-rps", format!("must be in (0, 5000], got {}", self.baseline_rps));
        }
        if !(self.surge_multiplier.is_finite() && self.surge_multiplier >= 1.0 && self.surge_multiplier <= 20.0) {
            return bad("--surge-multiplier", format!("must be in [1, 20], got {}", self.surge_multiplier));
        }
        if !(self.slo_p95_ms.is_finite() && self.slo_p95_ms > 0.0) {
            return bad("--slo-p95-ms", format!("must be positive, got {}", self.slo_p95_ms));
        }
        if self.pod.workers == 0 || self.pod.service_time.is_zero() {
            return bad("--pod-workers / --pod-service-time-ms", "must both be positive".into());
        }
        if self.startup_jitter > self.startup_delay {
            return bad("--startup-jitter-s", "must not exceed the startup delay".into());
        }
        if self.history_days < 3 {
            return bad("--history-days", format!("needs at least 3 days, got {}", self.history_days));
        }
        if let Some(llm) = &self.llm
            && !(llm.endpoint.starts_with("http://") || llm.endpoint.starts_with("https://"))
        {
            return bad("--llm-endpoint", format!("{:?} is not an http(s) URL", llm.endpoint));
        }
        Ok(())
    }

    fn timeline(&self) -> Timeline {
        Timeline::of(self.timeline)
    }

    fn limits(&self) -> CheckLimits {
        CheckLimits {
            min_lead_s: MIN_LEAD_S,
            slo_p95_ms: self.slo_p95_ms,
            max_error_rate: super::measure::SLO_ERROR_RATE,
            scale_down_limit_s: self.timeline().scale_down_limit_s,
        }
    }
}

/// The default pod: 3 workers at 50 ms per request, 60 requests/s at 100%; the 100 requests/s
/// baseline needs 3 pods at 70%, the 4x surge 7 at 100% and 10 at 70%.
pub fn default_pod() -> PodConfig {
    PodConfig {
        workers: 3,
        service_time: Duration::from_millis(50),
        cpu_window: Duration::from_secs(30),
        ..PodConfig::default()
    }
}

/// What the scenario produced.
#[derive(Debug, Clone)]
pub struct ScenarioOutcome {
    /// `report.json`'s content.
    pub report: ScenarioReport,
    /// Per run, what the markdown report says besides the JSON fields.
    pub notes: Vec<RunNotes>,
    /// The side-by-side table.
    pub table: String,
    /// Where the report was written.
    pub report_dir: PathBuf,
}

/// Run every policy in order and write `report.json`, `report.md` and `report.svg`.
pub async fn run(options: &ScenarioOptions) -> Result<ScenarioOutcome, ScenarioError> {
    options.validate()?;
    let timeline = options.timeline();
    let schedule = timeline.schedule(options.baseline_rps, options.surge_multiplier)?;
    let settings = MeasureSettings {
        time_scale: options.time_scale,
        capacity_rps: options.capacity_rps(),
        peak_rps: schedule.peak_rps(),
        slo_p95_ms: options.slo_p95_ms,
    };
    let mut runs = Vec::new();
    let mut notes = Vec::new();
    for policy in &options.policies {
        let (record, note) = run_policy(options, *policy, &timeline, &schedule).await?;
        runs.push(measure(&record, &timeline, &settings));
        notes.push(note);
    }
    let limits = options.limits();
    let verdict = report::verdict(&runs, &limits);
    let table = report::table(&runs, &verdict);
    let report = ScenarioReport { runs, verdict };
    let json = serde_json::to_string_pretty(&report).map_err(|e| ScenarioError::Write {
        path: options.report_dir.join("report.json"),
        source: std::io::Error::other(e),
    })?;
    write_file(&options.report_dir.join("report.json"), &(json + "\n"))?;
    let report_settings = ReportSettings {
        timeline: timeline.clone(),
        time_scale: options.time_scale,
        baseline_rps: options.baseline_rps,
        surge_multiplier: options.surge_multiplier,
        pod: (
            options.pod.workers,
            options.pod.service_time.as_secs_f64() * 1000.0,
            options.capacity_rps(),
            options.pod.queue_capacity,
        ),
        startup: (options.startup_delay.as_secs_f64(), options.startup_jitter.as_secs_f64()),
        metrics_source: if options.prometheus.is_some() {
            "a real Prometheus scraping the pods".into()
        } else {
            "the pods' /metrics, found through the Kubernetes API (pod-scrape)".into()
        },
        limits,
    };
    write_file(&options.report_dir.join("report.md"), &report::markdown(&report, &notes, &report_settings))?;
    let needed = replicas_needed(settings.peak_rps, settings.capacity_rps);
    let svg = super::chart::svg(&report.runs, needed, options.slo_p95_ms).map_err(ScenarioError::Chart)?;
    write_file(&options.report_dir.join("report.svg"), &svg)?;
    Ok(ScenarioOutcome { report, notes, table, report_dir: options.report_dir.clone() })
}

/// The pod startup the daemon plans with: the slowest pod's (delay + jitter), what an operator
/// would measure on the cluster.
pub fn planned_startup_s(options: &ScenarioOptions) -> u64 {
    (options.startup_delay + options.startup_jitter).as_secs_f64().ceil() as u64
}

/// The daemon's safety buffer on top of the startup: the lead the checks ask for, plus the
/// decision's latency (and, over an HPA, one HPA sync before a raised floor acts).
pub fn planned_safety_buffer_s(policy: Policy) -> u64 {
    let hpa = if policy.has_hpa() { HPA_SYNC_S } else { 0.0 };
    (MIN_LEAD_S + DECISION_LATENCY_S + hpa).ceil() as u64
}

/// Stops a load generator when dropped, so that an early return never leaves load running.
struct StopOnDrop(watch::Sender<bool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

/// The daemon's rates per wall-clock rate. The pod-scrape source measures rates per real
/// second (a pod's throughput is physical), and Prometheus runs in real time: both read the
/// wall-clock rate the load generator offers, so capacity and history are in the same unit.
fn daemon_rate_factor(_time_scale: f64) -> f64 {
    1.0
}

/// Scenario seconds from `t0` to `t`.
fn since(t0: DateTime<Utc>, t: DateTime<Utc>) -> f64 {
    (t - t0).num_microseconds().map_or(0.0, |us| us as f64 / 1e6)
}

/// Read the cluster at one moment.
fn sample(cluster: &Cluster, t_s: f64) -> Result<Sample, ScenarioError> {
    let state = cluster.deployment_state(NAMESPACE, WORKLOAD)?;
    let pods = cluster.pods(NAMESPACE, WORKLOAD)?;
    let ready: Vec<_> = pods.iter().filter(|p| p.ready).collect();
    let n = ready.len() as f64;
    let mean =
        |f: &dyn Fn(&prescale_cluster::PodInfo) -> f64| (n > 0.0).then(|| ready.iter().map(|p| f(p)).sum::<f64>() / n);
    Ok(Sample {
        t_s,
        desired: state.spec,
        ready: ready.len() as u32,
        hpa_floor: state.hpa_floor,
        cpu: mean(&|p| p.cpu_utilization),
        memory: mean(&|p| p.memory_bytes as f64 / MEMORY_REQUEST_BYTES),
    })
}

/// Poll `check` every 20 ms of wall time until it holds, for at most `timeout`.
async fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> Result<(), ScenarioError> {
    let started = StdInstant::now();
    while !check() {
        if started.elapsed() > timeout {
            return Err(ScenarioError::Timeout(format!("{what} within {timeout:?}")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Set the HPA's scale-down stabilization window through the Kubernetes API (a merge patch,
/// as `kubectl patch` sends it).
async fn patch_hpa_stabilization(api_url: &str, seconds: u64) -> Result<(), ScenarioError> {
    let url = format!("{api_url}/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers/{WORKLOAD}");
    let body = serde_json::json!({"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": seconds}}}});
    let response = reqwest::Client::new()
        .patch(url)
        .header("content-type", "application/merge-patch+json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| ScenarioError::Daemon(format!("patching the HPA: {e}")))?;
    if !response.status().is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(ScenarioError::Daemon(format!("patching the HPA: {text}")));
    }
    Ok(())
}

/// The announced event: `spring-campaign`, kind `marketing-campaign`, no expected multiplier.
fn spring_campaign(t0: DateTime<Utc>, timeline: &Timeline) -> ScheduledEvent {
    let at = |s: f64| t0 + chrono::Duration::milliseconds((s * 1000.0) as i64);
    ScheduledEvent {
        id: "spring-campaign".into(),
        name: "Spring campaign".into(),
        kind: EVENT_KIND.into(),
        start: at(timeline.surge_start_s),
        end: at(timeline.surge_end_s),
        description: Some("Spring campaign email to every customer, with a discount code.".into()),
        expected_multiplier: None,
    }
}

/// One policy's run on a fresh cluster.
async fn run_policy(
    options: &ScenarioOptions,
    policy: Policy,
    timeline: &Timeline,
    schedule: &RateSchedule,
) -> Result<(RunRecord, RunNotes), ScenarioError> {
    let wall_started = StdInstant::now();
    let scale = options.time_scale;
    let dir = options.report_dir.join(policy.as_str());
    // A fresh run: the daemon's durable events and Prometheus' data of an earlier run must not leak in.
    for stale in ["state", "prometheus"] {
        let path = dir.join(stale);
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|source| ScenarioError::Write { path, source })?;
        }
    }
    let progress = Arc::new(Progress::new(options.progress, policy.as_str(), timeline.end_s));
    let clock: SharedClock = if (scale - 1.0).abs() < f64::EPSILON {
        Arc::new(SystemClock)
    } else {
        Arc::new(ScaledClock::new(Utc::now(), scale))
    };

    // 1. Setup: cluster, Deployment, Service, HPA.
    progress.note("starting the cluster");
    let mut config = ClusterConfig::new(clock.clone());
    config.startup_delay = options.startup_delay;
    config.startup_jitter = options.startup_jitter;
    config.pod = options.pod.clone();
    config.seed = options.seed;
    let cluster = Arc::new(Cluster::start(config).await?);
    let kubeconfig = dir.join("kubeconfig");
    write_file(&kubeconfig, &cluster.kubeconfig())?;
    let baseline = options.baseline_replicas();
    cluster.create_deployment(&DeploymentSpec::new(NAMESPACE, WORKLOAD, baseline)).await?;
    let max_replicas = (replicas_needed(schedule.peak_rps(), options.capacity_rps()) * 4).max(baseline + 4);
    let service = cluster.service_url(NAMESPACE, WORKLOAD).await?;
    let url = format!("{service}/");
    progress.note("waiting for the baseline pods");
    let startup_wall = wall((options.startup_delay + options.startup_jitter).as_secs_f64(), scale);
    let ready_in = startup_wall * 3 + Duration::from_secs(20);
    if let Err(e) = wait_for("the baseline pods to be Ready", ready_in, || {
        cluster
            .pods(NAMESPACE, WORKLOAD)
            .map(|p| p.iter().filter(|p| p.ready).count() as u32 >= baseline)
            .unwrap_or(false)
    })
    .await
    {
        let pods = cluster.pods(NAMESPACE, WORKLOAD).unwrap_or_default();
        let ready = pods.iter().filter(|p| p.ready).count();
        return Err(ScenarioError::Timeout(format!(
            "the baseline pods to be Ready within {ready_in:?}: {} pods, {ready} Ready, {baseline} wanted ({e})",
            pods.len()
        )));
    }

    // Warm-up load at the baseline rate until scenario second 0.
    let warmup = Arc::new(LoadGenerator::new(
        LoadConfig { timeout: REQUEST_TIMEOUT, time_scale: scale, ..LoadConfig::new(url.clone()) },
        RateSchedule::constant("warm-up", options.baseline_rps, 1e7)?,
    )?);
    let (warmup_stop, warmup_stopped) = watch::channel(false);
    let warmup_stop = StopOnDrop(warmup_stop);
    let warmup_task = {
        let warmup = warmup.clone();
        tokio::spawn(async move { warmup.run(Instant::now(), warmup_stopped).await })
    };

    // The HPA comes once the baseline load has run for a CPU window, so that its first syncs
    // read the baseline's utilization rather than idle pods.
    if policy.has_hpa() {
        tokio::time::sleep(wall(options.pod.cpu_window.as_secs_f64() * 1.5, scale)).await;
        cluster
            .create_hpa(&AutoscalerSpec {
                namespace: NAMESPACE.into(),
                name: WORKLOAD.into(),
                deployment: WORKLOAD.into(),
                // The user's own floor: the baseline's pods, as an operator would set it.
                min_replicas: baseline,
                max_replicas,
                target_cpu_percent: (TARGET_UTILIZATION * 100.0).round() as u32,
            })
            .await?;
        if timeline.stabilization_s != 300 {
            patch_hpa_stabilization(&cluster.api_url(), timeline.stabilization_s).await?;
        }
    }
    // Prometheus, when asked for and a daemon will read it.
    let mut prometheus = match options.prometheus.as_ref().filter(|_| policy.daemon_mode().is_some()) {
        Some(binary) => {
            progress.note("starting Prometheus");
            let mut server = PrometheusServer::start(binary, &dir.join("prometheus")).await?;
            server.set_targets(&pod_targets(&cluster)?)?;
            Some(server)
        }
        None => None,
    };

    // The daemon, seeded with the synthetic history.
    let factor = daemon_rate_factor(scale);
    let daemon = match policy.daemon_mode() {
        None => None,
        Some(mode) => {
            progress.note("fitting the daemon's model");
            let now = clock.now();
            let end = prescale_daemon::history::align_down(now, 60);
            let history = super::history::generate(&HistorySpec {
                end,
                days: options.history_days,
                step_secs: 60,
                peak_rps: options.baseline_rps * factor,
                peak_at: end + chrono::Duration::seconds((timeline.end_s / 2.0) as i64),
                depth: 0.4,
                uplifts: [3.8, 4.2],
                noise: 0.05,
                seed: options.seed,
            });
            let history_file = dir.join("history.csv");
            write_file(&history_file, &history.csv)?;
            let calendar_file = dir.join("past-events.yaml");
            let calendar = history
                .calendar_yaml()
                .map_err(|e| ScenarioError::Write { path: calendar_file.clone(), source: std::io::Error::other(e) })?;
            write_file(&calendar_file, &calendar)?;
            let plan = DaemonPlan {
                dir: dir.clone(),
                mode,
                kubeconfig: kubeconfig.clone(),
                metrics: match &prometheus {
                    Some(p) => MetricsPlan::Prometheus(p.url().to_string()),
                    None => MetricsPlan::PodScrape,
                },
                capacity_per_pod: options.capacity_rps() * factor,
                startup_s: planned_startup_s(options),
                safety_buffer_s: planned_safety_buffer_s(policy),
                tick_s: timeline.daemon_tick_s,
                stabilization_s: timeline.stabilization_s,
                scale_down_cooldown_s: timeline.scale_down_cooldown_s,
                replicas: (DAEMON_MIN_REPLICAS.min(baseline), max_replicas),
                history_file,
                calendar_file,
                llm: options.llm.clone(),
            };
            Some(Arc::new(RunningDaemon::start(&plan, clock.clone(), Duration::from_secs(300)).await?))
        }
    };

    // Scenario second 0: the next whole minute, so the event's start and end fall on the
    // daemon's one-minute steps (a forecast step holds an event from its own start on).
    let granularity = 60.0;
    let now = clock.now();
    let margin_s = 0.3 * scale;
    let t0_secs = ((now.timestamp_millis() as f64 / 1000.0 + margin_s) / granularity).ceil() * granularity;
    let t0 = DateTime::<Utc>::from_timestamp(t0_secs as i64, 0).unwrap_or(now);
    let t0_instant = Instant::now() + wall(since(clock.now(), t0), scale);
    let at = |s: f64| t0_instant + wall(s, scale);

    let generator = Arc::new(LoadGenerator::new(
        LoadConfig { timeout: REQUEST_TIMEOUT, time_scale: scale, ..LoadConfig::new(url) },
        schedule.clone(),
    )?);
    let recorder = generator.recorder();
    let (load_stop, load_stopped) = watch::channel(false);
    let load_stop = StopOnDrop(load_stop);
    let load_task = {
        let generator = generator.clone();
        tokio::spawn(async move { generator.run(t0_instant, load_stopped).await })
    };
    tokio::spawn(async move {
        tokio::time::sleep_until(t0_instant).await;
        drop(warmup_stop);
    });

    // Sampler: replicas, CPU, memory; progress; Prometheus targets.
    let (done, done_rx) = watch::channel(false);
    let sampler = {
        let cluster = cluster.clone();
        let clock = clock.clone();
        let recorder = recorder.clone();
        let progress = progress.clone();
        let timeline = timeline.clone();
        let mut done_rx = done_rx.clone();
        let mut prometheus = prometheus.take();
        let period = Duration::from_secs_f64((2.0 / scale).max(0.02));
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut problems = Vec::new();
            let mut last_draw = StdInstant::now();
            loop {
                let t_s = since(t0, clock.now());
                if t_s >= 0.0 {
                    match sample(&cluster, t_s) {
                        Ok(s) => samples.push(s),
                        Err(e) => problems.push(format!("sampling at {t_s:.0} s: {e}")),
                    }
                }
                if let Some(p) = prometheus.as_mut()
                    && let Err(e) = pod_targets(&cluster).and_then(|t| p.set_targets(&t))
                {
                    problems.push(format!("prometheus targets at {t_s:.0} s: {e}"));
                }
                if last_draw.elapsed() > Duration::from_millis(200)
                    && let Some(s) = samples.last()
                {
                    last_draw = StdInstant::now();
                    let window = recorder.window(t_s - 10.0);
                    progress.update(&Status {
                        t_s,
                        phase: timeline.phase_at(t_s),
                        desired: s.desired,
                        ready: s.ready,
                        rps: window.as_ref().map_or(0.0, |w| w.tally.sent as f64 * scale / 10.0),
                        p95_ms: window.filter(|w| w.tally.ok > 0).map(|w| w.tally.summary().p95),
                        errors: recorder.total().errors(),
                    });
                }
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = done_rx.wait_for(|d| *d) => break,
                }
            }
            problems.truncate(10);
            (samples, problems, prometheus)
        })
    };

    // Forecast poller.
    let poller = daemon.clone().map(|daemon| {
        let clock = clock.clone();
        let mut done_rx = done_rx.clone();
        let period = Duration::from_secs_f64((10.0 / scale).max(0.1));
        tokio::spawn(async move {
            let mut forecasts = Vec::new();
            let mut errors: Vec<(f64, String)> = Vec::new();
            loop {
                let t_s = since(t0, clock.now());
                if let Some(view) = daemon.forecast().await {
                    let step_s = f64::from(view.step_secs.max(1));
                    let steps =
                        view.steps.iter().map(|s| (since(t0, s.t), s.p50 / step_s / factor)).collect::<Vec<_>>();
                    forecasts.push(ForecastSnapshot { t_s, step_s, steps });
                }
                if let Some(e) = daemon.last_error().await
                    && errors.len() < 20
                    && !errors.iter().any(|(_, seen)| *seen == e)
                {
                    errors.push((t_s, e));
                }
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = done_rx.wait_for(|d| *d) => break,
                }
            }
            (forecasts, errors)
        })
    });

    // 3. Trigger: announce the event on time.
    let mut trigger_s = None;
    let mut problems = Vec::new();
    if let Some(daemon) = &daemon {
        tokio::time::sleep_until(at(timeline.announce_s)).await;
        match daemon.announce(&spring_campaign(t0, timeline)).await {
            Ok(()) => trigger_s = Some(since(t0, clock.now())),
            Err(e) => problems.push(format!("the announcement failed: {e}")),
        }
    }

    // 4-8 run by themselves; wait for the end of the load.
    tokio::time::sleep_until(at(timeline.end_s)).await;
    let load_result = load_task.await;
    drop(load_stop);
    done.send_replace(true);
    let (samples, sample_problems, prometheus) =
        sampler.await.map_err(|e| ScenarioError::Timeout(format!("the sampler failed: {e}")))?;
    problems.extend(sample_problems);
    let mut forecasts = Vec::new();
    let mut daemon_errors = Vec::new();
    if let Some(poller) = poller {
        let (f, errors) =
            poller.await.map_err(|e| ScenarioError::Timeout(format!("the forecast poller failed: {e}")))?;
        forecasts = f;
        daemon_errors = errors;
    }
    match load_result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(e) => return Err(ScenarioError::Timeout(format!("the load generator failed: {e}"))),
    }
    let _ = warmup_task.await;
    let mut llm = None;
    if let Some(daemon) = daemon {
        if options.llm.is_some() {
            llm = daemon.llm_usage().await;
        }
        match Arc::try_unwrap(daemon) {
            Ok(daemon) => {
                if let Err(e) = daemon.stop().await {
                    problems.push(e.to_string());
                }
            }
            Err(_) => problems.push("the daemon was still shared at the end; aborted".into()),
        }
    }
    if let Some(p) = prometheus {
        p.stop().await;
    }
    match Arc::try_unwrap(cluster) {
        Ok(cluster) => cluster.shutdown().await,
        Err(cluster) => drop(cluster),
    }

    let lag_ms = recorder.max_send_lag().as_secs_f64() * 1000.0;
    if lag_ms > 250.0 {
        problems.push(format!(
            "the load generator fell up to {lag_ms:.0} ms behind schedule (latencies include it); a --release build keeps up better"
        ));
    }
    let record = RunRecord {
        policy: policy.as_str().into(),
        predictor: policy.daemon_mode().map(|_| options.predictor_label()),
        trigger_s,
        samples,
        windows: recorder.windows(),
        phases: recorder.phases(),
        total: recorder.total(),
        forecasts,
        llm,
    };
    let mut notes = notes(&record, options, timeline, policy, schedule, wall_started.elapsed(), lag_ms, problems);
    notes.daemon_errors = daemon_errors;
    progress.finish(&format!("done in {:.0} s", notes.wall_s));
    Ok((record, notes))
}

/// `(namespace, pod, port)` of every pod of the workload, for Prometheus' targets.
fn pod_targets(cluster: &Cluster) -> Result<Vec<(String, String, u16)>, ScenarioError> {
    Ok(cluster.pods(NAMESPACE, WORKLOAD)?.into_iter().map(|p| (NAMESPACE.to_string(), p.name, p.port)).collect())
}

#[allow(clippy::too_many_arguments)]
fn notes(
    record: &RunRecord,
    options: &ScenarioOptions,
    timeline: &Timeline,
    policy: Policy,
    schedule: &RateSchedule,
    wall_time: Duration,
    lag_ms: f64,
    problems: Vec<String>,
) -> RunNotes {
    let reference = record.trigger_s.unwrap_or(timeline.surge_start_s).min(timeline.surge_start_s);
    let before: Vec<&Sample> = record.samples.iter().filter(|s| s.t_s < reference).collect();
    let mean = |f: &dyn Fn(&Sample) -> Option<f64>| {
        let v: Vec<f64> = before.iter().filter_map(|s| f(s)).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let original_floor = policy.has_hpa().then(|| options.baseline_replicas());
    let mut floor_raised = None;
    let mut floor_restored_s = None;
    if let Some(original) = original_floor {
        for s in &record.samples {
            match (s.hpa_floor, floor_raised) {
                (Some(f), None) if f > original => floor_raised = Some((s.t_s, f)),
                (Some(f), Some((at, peak))) if f > peak => floor_raised = Some((at, f)),
                (Some(f), Some(_)) if f == original && floor_restored_s.is_none() => floor_restored_s = Some(s.t_s),
                _ => {}
            }
        }
    }
    RunNotes {
        baseline_cpu: mean(&|s| s.cpu),
        baseline_memory: mean(&|s| s.memory),
        baseline_ready: before.last().map_or(0, |s| s.ready),
        original_floor,
        floor_raised,
        floor_restored_s,
        needed_replicas: replicas_needed(schedule.peak_rps(), options.capacity_rps()),
        wall_s: wall_time.as_secs_f64(),
        max_send_lag_ms: lag_ms,
        problems,
        daemon_errors: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_sizing_needs_clearly_more_pods_in_the_surge() {
        let o = ScenarioOptions::new("target/x");
        assert_eq!(o.capacity_rps(), 60.0);
        assert_eq!(o.baseline_replicas(), 3);
        assert_eq!(replicas_needed(o.baseline_rps * o.surge_multiplier, o.capacity_rps()), 7);
        assert!(o.validate().is_ok());
        assert_eq!(o.predictor_label(), "statistical+events");
    }

    #[test]
    fn bad_options_name_the_option() {
        let mut o = ScenarioOptions::new("target/x");
        o.time_scale = 0.0;
        assert!(o.validate().unwrap_err().to_string().contains("--time-scale"));
        let mut o = ScenarioOptions::new("target/x");
        o.prometheus = Some("/usr/bin/prometheus".into());
        assert!(o.validate().unwrap_err().to_string().contains("--prometheus needs 1"));
        let mut o = ScenarioOptions::new("target/x");
        o.policies.clear();
        assert!(o.validate().unwrap_err().to_string().contains("--policies"));
        let mut o = ScenarioOptions::new("target/x");
        o.llm = Some(LlmOptions { endpoint: "localhost:1".into(), model: "m".into(), api_key_env: None });
        assert!(o.validate().unwrap_err().to_string().contains("--llm-endpoint"));
    }
}
