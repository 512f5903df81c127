//! The LLM-adjusted predictor (`llm:<model>`).
//!
//! The event-free statistical baseline always produces the series. The LLM, reached over
//! any OpenAI-compatible Chat Completions endpoint, is asked only for a bounded
//! multiplier per scheduled event (with lead and lag ramps), a drift factor, a
//! confidence, an optional advisory replica count and a short rationale. Code turns that
//! into `f[t] = baseline[t] * drift * prod_e(1 + w_e(t)(m_e - 1))` and validates it.
//!
//! Whenever the answer is rejected or unavailable (deadline, HTTP error, open circuit
//! breaker, invalid output), the event-aware statistical predictor answers instead,
//! labelled `statistical+events (fallback: <reason>)`: an announced event is never
//! forgotten because the LLM failed, and uplifts are never applied twice (the baseline
//! is always asked without events).
//!
//! Network time (deadline, per-call timeouts, retry waits) runs on tokio's monotonic
//! timer; the circuit breaker reads the injected [`prescale_core::Clock`]; the cache reasons in the
//! request's forecast origin.

mod answer;
mod breaker;
mod cache;
mod client;
mod config;
mod prompt;
mod stats;
mod wire;

pub use client::{StructuredOutput, StructuredOutputMemory};
pub use config::{LlmBounds, LlmConfig, MultiplierRange};
pub use prompt::PROMPT_VERSION;
pub use stats::{LATENCY_BUCKETS_SECS, LatencyHistogram, LlmStats};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prescale_core::{Forecast, ForecastPoint, ForecastSource, ScheduledEvent, SharedClock, UpliftTable};
use tokio::time::Instant;

use crate::{PredictError, PredictRequest, Predictor};
use answer::{Answer, EventSlot, Rejection, check_series, materialize, p90, validate_reply, weight};
use breaker::{Breaker, Permit};
use cache::{AnswerCache, CacheEntry, CacheKey, canonical_events, feature_bucket};
use client::{CallError, ChatClient, Message};
use config::trim_float;

/// Least time worth starting another call (or a retry wait) with.
const MIN_ATTEMPT: Duration = Duration::from_millis(500);
/// Wait before the one retry when the server gives no hint.
const DEFAULT_BACKOFF: Duration = Duration::from_millis(500);
/// Slack of the safety-net timeout around the LLM step; the step enforces its deadline itself.
const DEADLINE_SLACK: Duration = Duration::from_millis(250);

/// Why the LLM's answer was not used: a stable key (metric label) and a human reason.
#[derive(Debug, Clone)]
struct Failure {
    key: &'static str,
    reason: String,
    /// Opens the circuit breaker at once.
    fatal: bool,
}

impl Failure {
    fn new(key: &'static str, reason: impl Into<String>) -> Self {
        Self { key, reason: reason.into(), fatal: false }
    }

    fn from_call(error: &CallError, note: Option<String>) -> Self {
        let mut reason = format!("llm {error}");
        if let Some(note) = note {
            reason.push_str("; ");
            reason.push_str(&note);
        }
        Self { key: error.outcome(), reason, fatal: error.fatal() }
    }

    fn rejected(rejection: &Rejection) -> Self {
        Self::new("rejected", format!("llm answer rejected: {rejection}"))
    }
}

/// Breaker and cache, behind one lock that is never held across an await.
#[derive(Debug)]
struct State {
    breaker: Breaker,
    cache: AnswerCache,
}

/// A predictor that adjusts the statistical baseline with an LLM's bounded judgement of
/// scheduled events, and falls back to the event-aware statistical predictor.
pub struct LlmPredictor {
    config: LlmConfig,
    client: ChatClient,
    baseline: Arc<dyn Predictor>,
    fallback: Arc<dyn Predictor>,
    clock: SharedClock,
    memory: StructuredOutputMemory,
    system_prompt: String,
    state: Mutex<State>,
    stats: Mutex<LlmStats>,
}

impl std::fmt::Debug for LlmPredictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config names the key's variable or file, never the key; the client redacts too.
        f.debug_struct("LlmPredictor")
            .field("config", &self.config)
            .field("client", &self.client)
            .field("baseline", &self.baseline.source().to_string())
            .field("fallback", &self.fallback.source().to_string())
            .finish_non_exhaustive()
    }
}

impl LlmPredictor {
    /// A predictor for `config`. `baseline` must be event-free (source `statistical`);
    /// `fallback` is event-aware (source `statistical+events`) and answers whenever the
    /// LLM does not. The breaker reads time from `clock`.
    ///
    /// Fails on an invalid config, an API key that cannot be read, or when no rustls
    /// crypto provider is installed for the process.
    pub fn new(
        config: LlmConfig,
        baseline: Arc<dyn Predictor>,
        fallback: Arc<dyn Predictor>,
        clock: SharedClock,
    ) -> Result<Self, PredictError> {
        let client = ChatClient::new(&config)?;
        let cooldown = chrono::Duration::from_std(config.breaker_cooldown).unwrap_or(chrono::Duration::minutes(5));
        Ok(Self {
            system_prompt: prompt::system_prompt(&config.bounds),
            client,
            baseline,
            fallback,
            clock,
            memory: StructuredOutputMemory::new(),
            state: Mutex::new(State {
                breaker: Breaker::new(config.breaker_failures, cooldown),
                cache: AnswerCache::default(),
            }),
            stats: Mutex::new(LlmStats::default()),
            config,
        })
    }

    /// Share the structured-output ladder memory with other predictors of the same endpoint.
    pub fn with_output_memory(mut self, memory: StructuredOutputMemory) -> Self {
        self.memory = memory;
        self
    }

    /// The structured-output rung the next call will start with.
    pub fn structured_output(&self) -> StructuredOutput {
        self.memory.get(&self.config.endpoint, &self.config.model).unwrap_or(StructuredOutput::JsonSchema)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> LlmStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The config this predictor was built with.
    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    fn with_stats(&self, f: impl FnOnce(&mut LlmStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The event-aware predictor's forecast, labelled as a fallback for `failure`.
    async fn fall_back(&self, request: &PredictRequest, failure: Failure) -> Result<Forecast, PredictError> {
        if failure.key == "no_events" {
            tracing::debug!(reason = %failure.reason, "LLM not asked");
        } else {
            tracing::info!(reason = %failure.reason, key = failure.key, "LLM predictor falls back");
        }
        self.with_stats(|s| {
            s.fallback(failure.key);
            s.forecast("fallback");
        });
        let mut forecast = self.fallback.predict(request).await?;
        forecast.source = forecast.source.fallback(failure.reason.clone());
        forecast.explanation = format!("{} LLM not used: {}.", forecast.explanation.trim_end(), failure.reason);
        Ok(forecast)
    }

    /// Ask the LLM, within `deadline`, for an answer that passes validation.
    async fn ask(
        &self,
        mut messages: Vec<Message>,
        slots: &[EventSlot],
        baseline: &[f64],
        deadline: Instant,
    ) -> Result<Answer, Failure> {
        let (endpoint, model) = (&self.config.endpoint, &self.config.model);
        let mut mode = self.structured_output();
        let mut retried = false;
        let mut repaired = false;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Failure::new(
                    "timeout",
                    format!("llm deadline of {:.1} s exceeded", self.config.deadline().as_secs_f64()),
                ));
            }
            let started = Instant::now();
            let result =
                self.client.call(&messages, mode, remaining.min(self.config.request_timeout), self.clock.now()).await;
            let latency = started.elapsed();
            let error = match result {
                Ok(reply) => {
                    self.with_stats(|s| {
                        s.call("ok", latency);
                        s.tokens(reply.prompt_tokens, reply.completion_tokens);
                    });
                    let verdict = validate_reply(&reply, slots, &self.config.bounds).and_then(|answer| {
                        check_series(&materialize(baseline, slots, &answer), baseline, self.config.bounds.max_ratio)
                            .map(|()| answer)
                    });
                    match verdict {
                        Ok(answer) => {
                            self.memory.set(endpoint, model, mode);
                            return Ok(answer);
                        }
                        Err(rejection) => {
                            tracing::info!(rule = rejection.rule, detail = %rejection.detail, "LLM answer rejected");
                            self.with_stats(|s| s.rejected(rejection.rule));
                            let left = deadline.saturating_duration_since(Instant::now());
                            if rejection.repairable() && !repaired && left >= MIN_ATTEMPT {
                                repaired = true;
                                messages.push(Message { role: "assistant", content: reply.content });
                                messages.push(Message {
                                    role: "user",
                                    content: prompt::repair_prompt(&rejection.to_string()),
                                });
                                continue;
                            }
                            return Err(Failure::rejected(&rejection));
                        }
                    }
                }
                Err(error) => error,
            };
            self.with_stats(|s| s.call(error.outcome(), latency));
            if error.outcome() == "schema_unsupported"
                && let Some(weaker) = mode.weaker()
            {
                tracing::info!(
                    from = mode.label(),
                    to = weaker.label(),
                    "LLM endpoint rejected response_format; stepping down"
                );
                mode = weaker;
                self.memory.set(endpoint, model, mode);
                continue;
            }
            if error.retryable() && !retried {
                let wait = error.retry_hint().unwrap_or(DEFAULT_BACKOFF);
                let left = deadline.saturating_duration_since(Instant::now());
                if wait + MIN_ATTEMPT <= left {
                    retried = true;
                    tokio::time::sleep(wait).await;
                    continue;
                }
                let note = format!(
                    "retry after {:.1} s does not fit the {:.1} s left",
                    wait.as_secs_f64(),
                    left.as_secs_f64()
                );
                return Err(Failure::from_call(&error, Some(note)));
            }
            return Err(Failure::from_call(&error, None));
        }
    }

    /// The LLM forecast for `answer` over `baseline`, or the rule it breaks.
    fn llm_forecast(
        &self,
        baseline: &Forecast,
        slots: &[EventSlot],
        answer: &Answer,
        cached_from: Option<DateTime<Utc>>,
    ) -> Result<Forecast, Rejection> {
        let base: Vec<f64> = baseline.points.iter().map(|p| p.p50).collect();
        let series = materialize(&base, slots, answer);
        check_series(&series, &base, self.config.bounds.max_ratio)?;
        let points = series
            .iter()
            .zip(&baseline.points)
            .map(|(f, b)| ForecastPoint { p50: *f, p90: p90(*f, b.p50, b.p90, answer.confidence) })
            .collect();
        Ok(Forecast {
            start: baseline.start,
            step_secs: baseline.step_secs,
            points,
            baseline: base,
            source: self.source(),
            explanation: self.explain(slots, answer, cached_from),
        })
    }

    fn explain(&self, slots: &[EventSlot], answer: &Answer, cached_from: Option<DateTime<Utc>>) -> String {
        let events: Vec<String> = slots
            .iter()
            .map(|slot| {
                let what = format!(
                    "\"{}\" ({}, from step {} for {} steps)",
                    slot.name,
                    slot.kind,
                    slot.start_step,
                    slot.end_step - slot.start_step
                );
                match answer.adjustments.get(&slot.event_id) {
                    Some(a) => {
                        format!("{what} x{}, lead {} lag {} steps", trim_float(a.multiplier), a.lead_steps, a.lag_steps)
                    }
                    None => format!("{what} x1 (left unadjusted by the model)"),
                }
            })
            .collect();
        // The first clause is the headline a scaling decision quotes: each event and its multiplier.
        let headline: Vec<String> = slots
            .iter()
            .map(|slot| {
                let m = answer.adjustments.get(&slot.event_id).map_or(1.0, |a| a.multiplier);
                format!("'{}' x{} (llm)", slot.name, trim_float(m))
            })
            .collect();
        let mut text = format!(
            "{}; llm:{} adjusted the event-free baseline for {} event(s): {}; drift x{}; confidence {}",
            headline.join(", "),
            self.config.model,
            slots.len(),
            events.join("; "),
            trim_float(answer.drift),
            trim_float(answer.confidence),
        );
        if let Some(r) = answer.advisory_replicas {
            text.push_str(&format!("; advisory replicas {r} (advice only, not applied)"));
        }
        if !answer.rationale.is_empty() {
            text.push_str(&format!("; rationale: \"{}\"", answer.rationale));
        }
        if let Some(t) = cached_from {
            text.push_str(&format!("; cached answer from {}", t.to_rfc3339()));
        }
        text.push('.');
        text
    }

    /// Remember the in-event steps of a forecast built from the entry at `key`.
    fn remember_forecast(&self, key: &CacheKey, forecast: &Forecast, slots: &[EventSlot], answer: &Answer) {
        let steps: Vec<(DateTime<Utc>, f64)> = forecast
            .points
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                slots
                    .iter()
                    .any(|s| answer.adjustments.get(&s.event_id).is_some_and(|a| weight(*i as i64, s, a) >= 1.0))
            })
            .map(|(i, p)| (forecast.timestamp(i), p.p50))
            .collect();
        self.with_state(|st| {
            if let Some(entry) = st.cache.get_mut(key) {
                entry.remember(steps);
            }
        });
    }
}

/// Whether the baseline forecast fits the request: length, step, finite non-negative values.
fn check_baseline(baseline: &Forecast, request: &PredictRequest) -> Result<(), String> {
    if baseline.points.len() != request.horizon_steps {
        return Err(format!("baseline has {} steps, {} requested", baseline.points.len(), request.horizon_steps));
    }
    if baseline.step_secs != request.history.step_secs() {
        return Err(format!(
            "baseline step {} s differs from the history's {} s",
            baseline.step_secs,
            request.history.step_secs()
        ));
    }
    match baseline.points.iter().position(|p| !(p.p50.is_finite() && p.p90.is_finite() && p.p50 >= 0.0 && p.p90 >= 0.0))
    {
        Some(i) => Err(format!("baseline step {i} is not a finite non-negative value")),
        None => Ok(()),
    }
}

#[async_trait]
impl Predictor for LlmPredictor {
    fn source(&self) -> ForecastSource {
        ForecastSource::Llm { model: self.config.model.clone() }
    }

    async fn predict(&self, request: &PredictRequest) -> Result<Forecast, PredictError> {
        // The baseline never sees the events, so no uplift is applied twice.
        let baseline_request = PredictRequest {
            events: Vec::new(),
            uplift: UpliftTable { step_secs: request.uplift.step_secs, ..UpliftTable::default() },
            ..request.clone()
        };
        let baseline = match self.baseline.predict(&baseline_request).await {
            Ok(b) => b,
            Err(e) => {
                return self.fall_back(request, Failure::new("baseline_failed", format!("baseline failed: {e}"))).await;
            }
        };
        if let Err(problem) = check_baseline(&baseline, request) {
            return self
                .fall_back(request, Failure::new("baseline_invalid", format!("baseline unusable: {problem}")))
                .await;
        }

        let bounds = &self.config.bounds;
        let slots = prompt::event_slots(
            &request.events,
            &request.uplift,
            request.at,
            request.history.step(),
            request.horizon_steps,
            bounds,
        );
        if slots.is_empty() || request.horizon_steps == 0 {
            // Nothing for the model to judge: the event-aware forecast is the baseline here.
            return self.fall_back(request, Failure::new("no_events", "no scheduled event near the horizon")).await;
        }
        let slot_events: Vec<&ScheduledEvent> =
            slots.iter().filter_map(|s| request.events.iter().find(|e| e.id == s.event_id)).collect();
        let key = CacheKey {
            endpoint: self.config.endpoint.trim().trim_end_matches('/').to_string(),
            model: self.config.model.clone(),
            prompt_version: PROMPT_VERSION,
            events: canonical_events(&slot_events),
            bucket: feature_bucket(&request.history, request.at),
        };

        let reask_before =
            chrono::Duration::from_std(self.config.reask_before_start).unwrap_or(chrono::Duration::minutes(15));
        let cached = self.with_state(|st| {
            st.cache.get(&key).map(|entry| {
                let stale =
                    entry.staleness(&slot_events, &request.history, request.at, reask_before, self.config.traffic_band);
                (entry.answer.clone(), entry.asked_at, stale)
            })
        });
        if let Some((answer, asked_at, stale)) = cached {
            match stale {
                None => match self.llm_forecast(&baseline, &slots, &answer, Some(asked_at)) {
                    Ok(forecast) => {
                        self.remember_forecast(&key, &forecast, &slots, &answer);
                        self.with_stats(|s| s.forecast("llm_cached"));
                        return Ok(forecast);
                    }
                    Err(rejection) => {
                        self.with_stats(|s| s.rejected(rejection.rule));
                        self.with_state(|st| st.cache.remove(&key));
                    }
                },
                Some(why) => tracing::debug!(%why, "cached LLM answer is stale; asking again"),
            }
        }

        let base: Vec<f64> = baseline.points.iter().map(|p| p.p50).collect();
        let Some(level) = prompt::index_level(&request.history, request.at, &base) else {
            return self
                .fall_back(request, Failure::new("no_traffic_level", "no recent traffic to index the prompt against"))
                .await;
        };
        let permit = self.with_state(|st| st.breaker.permit(self.clock.now()));
        if let Permit::Denied { until, reason } = permit {
            let reason = format!("llm circuit open until {} after: {reason}", until.format("%H:%M:%S UTC"));
            return self.fall_back(request, Failure::new("circuit_open", reason)).await;
        }

        let input = prompt::PromptInput {
            history: &request.history,
            events: &request.events,
            uplift: &request.uplift,
            at: request.at,
            baseline: &base,
            slots: &slots,
            level,
        };
        let messages = vec![
            Message { role: "system", content: self.system_prompt.clone() },
            Message { role: "user", content: prompt::user_prompt(&input, &prompt::random_marker()) },
        ];

        let deadline = self.config.deadline();
        let step = tokio::time::timeout(
            deadline + DEADLINE_SLACK,
            self.ask(messages, &slots, &base, Instant::now() + deadline),
        );
        let outcome = step.await.unwrap_or_else(|_| {
            Err(Failure::new("timeout", format!("llm deadline of {:.1} s exceeded", deadline.as_secs_f64())))
        });
        match outcome {
            Ok(answer) => {
                self.with_state(|st| {
                    st.breaker.record_success();
                    st.cache.insert(key.clone(), CacheEntry::new(answer.clone(), request.at));
                });
                match self.llm_forecast(&baseline, &slots, &answer, None) {
                    Ok(forecast) => {
                        self.remember_forecast(&key, &forecast, &slots, &answer);
                        self.with_stats(|s| s.forecast("llm"));
                        Ok(forecast)
                    }
                    // Validated in `ask` against the same baseline; kept for safety.
                    Err(rejection) => self.fall_back(request, Failure::rejected(&rejection)).await,
                }
            }
            Err(failure) => {
                let opened =
                    self.with_state(|st| st.breaker.record_failure(self.clock.now(), failure.fatal, &failure.reason));
                if opened {
                    self.with_stats(|s| s.breaker_opened += 1);
                }
                self.fall_back(request, failure).await
            }
        }
    }
}
