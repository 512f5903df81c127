//! `prescaled forecast`: a one-shot forecast from files, standing at a chosen instant.
//!
//! The history after `--at` is never read; events are all known in advance, so the whole
//! calendar is used. The model is fitted on the history before `at`, the forecast made with
//! the event-aware predictor (or the LLM predictor, falling back to it), and, when a pod
//! capacity is given, the policy plans the replicas.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use prescale_collector::{Aggregate, CsvHistory, EventCalendar};
use prescale_core::{Decision, Forecast, ReplicaState, ScheduledEvent, SharedClock};
use prescale_predictor::llm::LlmPredictor;
use prescale_predictor::{FitConfig, PredictRequest};
use prescale_provisioner::{DecisionMemory, decide};
use serde::Serialize;

use crate::DaemonError;
use crate::config::{LlmSettings, Mode, PredictorKind, Setting, WorkloadConfig};
use crate::engine::{applied_uplift, build_predictor, llm_config, policy_for};

/// What to forecast.
#[derive(Debug, Clone)]
pub struct OfflineRequest {
    /// CSV `timestamp,requests` history.
    pub history: PathBuf,
    /// Optional event calendar (CSV or YAML).
    pub events: Option<PathBuf>,
    /// The forecast origin; history at or after it is not used.
    pub at: DateTime<Utc>,
    /// How far ahead.
    pub horizon: Duration,
    /// Requests per second one pod serves at 100 %; without it no replicas are planned.
    pub capacity_per_pod: Option<f64>,
    /// Utilization to plan for.
    pub target_utilization: f64,
    /// Pod startup time.
    pub startup: std::time::Duration,
    /// Replica bounds.
    pub min_replicas: u32,
    /// Replica bounds.
    pub max_replicas: u32,
    /// Ask this LLM endpoint (falling back to the event-aware statistical predictor).
    pub llm: Option<LlmSettings>,
}

/// One forecast step.
#[derive(Debug, Clone, Serialize)]
pub struct OfflineStep {
    /// Start of the step.
    pub t: DateTime<Utc>,
    /// Median, requests per step.
    pub p50: f64,
    /// 90th percentile, requests per step.
    pub p90: f64,
    /// Event-free baseline, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
}

/// The outcome of `prescaled forecast`.
#[derive(Debug, Clone, Serialize)]
pub struct OfflineForecast {
    /// The forecast's source label.
    pub source: String,
    /// Why the forecast looks the way it does.
    pub explanation: String,
    /// Step length in seconds.
    pub step_secs: u32,
    /// The forecast per step.
    pub steps: Vec<OfflineStep>,
    /// Replicas planned now, when a capacity was given.
    pub planned_replicas: Option<u32>,
    /// The policy's decision, when a capacity was given.
    pub decision: Option<Decision>,
    /// The fitted model's backtest `rel_mae`, when the history allowed a backtest.
    pub model_rel_mae: Option<f64>,
}

fn input_error(file: &std::path::Path, message: impl std::fmt::Display) -> DaemonError {
    DaemonError::Input { file: file.display().to_string(), message: message.to_string() }
}

/// Run the one-shot forecast.
pub async fn forecast(request: &OfflineRequest, clock: SharedClock) -> Result<OfflineForecast, DaemonError> {
    let csv = CsvHistory::from_path(&request.history).map_err(|e| input_error(&request.history, e))?;
    let step = csv.step();
    let full = csv.series("requests", step, Aggregate::Sum).map_err(|e| input_error(&request.history, e))?;
    // Only the past: nothing at or after `at` is ever seen.
    let history = full.before(request.at);
    if history.is_empty() || history.mean().is_none() {
        return Err(input_error(&request.history, format!("no data before {}", request.at.to_rfc3339())));
    }
    let events: Vec<ScheduledEvent> = match &request.events {
        Some(path) => EventCalendar::from_path(path).map_err(|e| input_error(path, e))?.all().to_vec(),
        None => Vec::new(),
    };
    let step_secs = history.step_secs();
    let horizon_steps = (request.horizon.num_seconds() / i64::from(step_secs)).max(1) as usize;

    let (fit_history, fit_events, at) = (history.clone(), events.clone(), request.at);
    let (uplift, model) = tokio::task::spawn_blocking(move || {
        let uplift =
            prescale_features::uplift_table(&fit_history, &fit_events, &prescale_features::UpliftConfig::default())
                .unwrap_or_default();
        let config = FitConfig { fit_time: Some(at), ..FitConfig::default() };
        let model = prescale_predictor::fit(&fit_history, &fit_events, &uplift, &config);
        (uplift, model)
    })
    .await
    .map_err(|e| DaemonError::Stage { stage: "fit", message: e.to_string() })?;
    let model = match model {
        Ok(m) => Some(Arc::new(m)),
        Err(e) => {
            tracing::warn!(reason = %e, "no model fitted; the forecast uses the recent level");
            None
        }
    };
    let uplift = applied_uplift(model.as_deref(), uplift);
    let deadline = std::time::Duration::from_secs(60);
    let event_aware = build_predictor(PredictorKind::StatisticalEvents, model.as_ref(), None, &uplift, deadline);
    let predictor = match &request.llm {
        Some(settings) => {
            let baseline = build_predictor(PredictorKind::Statistical, model.as_ref(), None, &uplift, deadline);
            let config = llm_config(settings, std::time::Duration::from_secs(60));
            let llm = LlmPredictor::new(config, baseline, event_aware, clock)
                .map_err(|e| DaemonError::Stage { stage: "llm", message: e.to_string() })?;
            Arc::new(llm) as Arc<dyn prescale_predictor::Predictor>
        }
        None => event_aware,
    };
    let predict_request = PredictRequest { history: history.clone(), events, uplift, at: request.at, horizon_steps };
    let forecast: Forecast = predictor
        .predict(&predict_request)
        .await
        .map_err(|e| DaemonError::Stage { stage: "predictor", message: e.to_string() })?;

    let decision = match request.capacity_per_pod {
        Some(capacity) => {
            let config = WorkloadConfig {
                workload: prescale_core::WorkloadRef::new("offline", "offline"),
                mode: Mode::ForecastOnly,
                min_replicas: request.min_replicas,
                max_replicas: request.max_replicas,
                capacity_per_pod: Setting::Fixed(capacity),
                target_utilization: request.target_utilization,
                startup: Setting::Fixed(request.startup),
                safety_buffer: std::time::Duration::from_secs(30),
                stabilization_window: std::time::Duration::from_secs(300),
                max_scale_down_fraction: 0.25,
                tolerance: 0.1,
                scale_down_cooldown: std::time::Duration::from_secs(120),
                horizon: request.horizon.to_std().unwrap_or_default(),
                signals: Default::default(),
                events: vec![],
                history_file: None,
                predictor: PredictorKind::StatisticalEvents,
            };
            let policy = policy_for(&config, Duration::seconds(i64::from(step_secs)), step_secs, None, None)
                .map_err(|message| DaemonError::Argument { argument: "policy".into(), message })?;
            let current = request.min_replicas.max(1);
            let state = ReplicaState {
                spec: current,
                ready: current,
                hpa_floor: None,
                observed_load: history.values().last().copied().flatten(),
            };
            Some(decide(Some(&forecast), &state, &policy, &mut DecisionMemory::new(), request.at))
        }
        None => None,
    };
    let steps = forecast
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| OfflineStep {
            t: forecast.timestamp(i),
            p50: p.p50,
            p90: p.p90,
            baseline: forecast.baseline.get(i).copied(),
        })
        .collect();
    Ok(OfflineForecast {
        source: forecast.source.to_string(),
        explanation: forecast.explanation.clone(),
        step_secs: forecast.step_secs,
        steps,
        planned_replicas: decision.as_ref().map(|d| d.target),
        decision,
        model_rel_mae: model.and_then(|m| m.rel_mae()),
    })
}

/// The forecast as text for a terminal.
pub fn render_text(f: &OfflineForecast) -> String {
    let mut out = String::new();
    out.push_str(&format!("source: {}\n", f.source));
    out.push_str(&format!("explanation: {}\n", f.explanation));
    if let Some(r) = f.model_rel_mae {
        out.push_str(&format!("model rel_mae (backtest): {r:.3}\n"));
    }
    match (&f.planned_replicas, &f.decision) {
        (Some(n), Some(d)) => out.push_str(&format!("planned replicas: {n} ({})\n", d.explanation)),
        _ => out.push_str("planned replicas: - (give --capacity-per-pod to plan)\n"),
    }
    out.push_str(&format!("{:<22} {:>12} {:>12} {:>12}\n", "t", "p50", "p90", "baseline"));
    for s in &f.steps {
        let baseline = s.baseline.map_or("-".to_string(), |b| format!("{b:.1}"));
        out.push_str(&format!(
            "{:<22} {:>12.1} {:>12.1} {:>12}\n",
            s.t.format("%Y-%m-%dT%H:%M:%SZ"),
            s.p50,
            s.p90,
            baseline
        ));
    }
    out
}
