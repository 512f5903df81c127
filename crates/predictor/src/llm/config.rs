//! Configuration of the LLM predictor: endpoint, credentials, time budget, bounds.
//!
//! The config holds only the *name* of the environment variable or the *path* of the
//! file that holds the API key, never the key itself, so it can be printed and logged.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use prescale_core::UpliftTable;

use crate::PredictError;

/// How the LLM predictor reaches its endpoint and how far it trusts the answers.
///
/// Build one with [`LlmConfig::new`] and adjust the public fields.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmConfig {
    /// Base URL of an OpenAI-compatible API, e.g. `http://localhost:11434/v1`
    /// (`/chat/completions` is appended unless the URL already ends with it).
    pub endpoint: String,
    /// Model name sent with every request; the forecast source is `llm:<model>`.
    pub model: String,
    /// Name of the environment variable that holds the API key, if any.
    pub api_key_env: Option<String>,
    /// Path of a file that holds the API key (a mounted secret), if any.
    pub api_key_file: Option<PathBuf>,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for one HTTP request, response body included.
    pub request_timeout: Duration,
    /// The daemon's tick; the whole LLM step must finish within `min(max_deadline, tick / 3)`.
    pub tick: Duration,
    /// Upper bound of the LLM step's deadline.
    pub max_deadline: Duration,
    /// `max_tokens` sent with every request.
    pub max_tokens: u32,
    /// Bounds an answer must respect to be used.
    pub bounds: LlmBounds,
    /// Ask again once an event is this close to its start, even when a cached answer exists.
    pub reask_before_start: Duration,
    /// Ask again when observed traffic during an event leaves `[low, high]` times the adjusted forecast.
    pub traffic_band: (f64, f64),
    /// Consecutive failed LLM steps that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker stays open before one probe request is allowed.
    pub breaker_cooldown: Duration,
}

impl LlmConfig {
    /// A config with the project's defaults: no API key, 5 s connect timeout, 20 s request
    /// timeout, a 60 s tick (so a 20 s deadline), 400 completion tokens, default bounds,
    /// re-ask 15 min before an event starts, traffic band [0.8, 1.25], breaker after 3
    /// failures with a 5 min cool-down.
    pub fn new(endpoint: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            model: model.into(),
            api_key_env: None,
            api_key_file: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            tick: Duration::from_secs(60),
            max_deadline: Duration::from_secs(20),
            max_tokens: 400,
            bounds: LlmBounds::default(),
            reask_before_start: Duration::from_secs(15 * 60),
            traffic_band: (0.8, 1.25),
            breaker_failures: 3,
            breaker_cooldown: Duration::from_secs(5 * 60),
        }
    }

    /// The deadline of one whole LLM step (every attempt and wait included): `min(max_deadline, tick / 3)`.
    pub fn deadline(&self) -> Duration {
        self.max_deadline.min(self.tick / 3)
    }

    /// Every problem of this config at once, each naming its field.
    pub fn validate(&self) -> Result<(), PredictError> {
        let mut problems = Vec::new();
        if self.model.trim().is_empty() {
            problems.push("model: must not be empty".to_string());
        }
        match reqwest::Url::parse(self.endpoint.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            Ok(url) => problems.push(format!("endpoint: scheme must be http or https, got {:?}", url.scheme())),
            Err(e) => problems.push(format!("endpoint: {:?} is not a URL ({e})", self.endpoint)),
        }
        if self.api_key_env.is_some() && self.api_key_file.is_some() {
            problems.push("api_key_env, api_key_file: set at most one".to_string());
        }
        if self.api_key_env.as_deref().is_some_and(|v| v.trim().is_empty()) {
            problems.push("api_key_env: must not be empty".to_string());
        }
        for (field, value) in [
            ("connect_timeout", self.connect_timeout),
            ("request_timeout", self.request_timeout),
            ("tick", self.tick),
            ("max_deadline", self.max_deadline),
        ] {
            if value.is_zero() {
                problems.push(format!("{field}: must be positive"));
            }
        }
        if self.max_tokens == 0 {
            problems.push("max_tokens: must be positive".to_string());
        }
        let (low, high) = self.traffic_band;
        if !(low.is_finite() && high.is_finite() && 0.0 < low && low <= 1.0 && 1.0 <= high) {
            problems.push(format!("traffic_band: need 0 < low <= 1 <= high, got ({low}, {high})"));
        }
        if self.breaker_failures == 0 {
            problems.push("breaker_failures: must be at least 1".to_string());
        }
        problems.extend(self.bounds.problems());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PredictError::InvalidRequest(format!("LLM config: {}", problems.join("; "))))
        }
    }
}

/// A closed range `[min, max]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MultiplierRange {
    /// Smallest accepted value.
    pub min: f64,
    /// Largest accepted value.
    pub max: f64,
}

impl MultiplierRange {
    /// The range `[min, max]`.
    pub fn new(min: f64, max: f64) -> Self {
        Self { min, max }
    }

    /// Whether `value` is finite and lies in the range.
    pub fn contains(&self, value: f64) -> bool {
        value.is_finite() && self.min <= value && value <= self.max
    }

    fn is_valid(&self) -> bool {
        self.min.is_finite() && self.max.is_finite() && 0.0 < self.min && self.min <= self.max
    }
}

impl std::fmt::Display for MultiplierRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {}]", trim_float(self.min), trim_float(self.max))
    }
}

/// A float with at most two decimals, without trailing zeros.
pub(crate) fn trim_float(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Bounds an LLM answer must respect; any value outside them rejects the whole answer.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmBounds {
    /// Smallest accepted event multiplier (default 0.5).
    pub multiplier_min: f64,
    /// The largest accepted multiplier is at least this (default 3.0).
    pub multiplier_max_floor: f64,
    /// ... and at least this factor times the kind's learned median uplift, or the
    /// operator's own estimate for the event (default 1.5).
    pub learned_uplift_factor: f64,
    /// Per event kind, an explicit multiplier range replacing the rule above.
    pub per_kind: BTreeMap<String, MultiplierRange>,
    /// Largest accepted lead ramp, in steps (default 6).
    pub max_lead_steps: u32,
    /// Largest accepted lag ramp, in steps (default 12).
    pub max_lag_steps: u32,
    /// Accepted drift factor (default [0.85, 1.2]).
    pub drift: MultiplierRange,
    /// The materialized forecast may not exceed this times the baseline at any step (default 6).
    pub max_ratio: f64,
    /// Largest accepted advisory replica count (default 10,000); the count is advice only.
    pub max_advisory_replicas: u32,
}

impl Default for LlmBounds {
    fn default() -> Self {
        Self {
            multiplier_min: 0.5,
            multiplier_max_floor: 3.0,
            learned_uplift_factor: 1.5,
            per_kind: BTreeMap::new(),
            max_lead_steps: 6,
            max_lag_steps: 12,
            drift: MultiplierRange::new(0.85, 1.2),
            max_ratio: 6.0,
            max_advisory_replicas: 10_000,
        }
    }
}

impl LlmBounds {
    /// The accepted multiplier range for an event of `kind`: the explicit per-kind range if
    /// configured, else `[multiplier_min, max(multiplier_max_floor, learned_uplift_factor x
    /// max(learned median uplift, operator estimate))]`.
    pub fn multiplier_range(
        &self,
        kind: &str,
        uplift: &UpliftTable,
        operator_estimate: Option<f64>,
    ) -> MultiplierRange {
        if let Some(range) = self.per_kind.get(kind) {
            return *range;
        }
        let learned = uplift.get(kind).map(|k| k.median_uplift).filter(|u| u.is_finite()).unwrap_or(0.0);
        let declared = operator_estimate.filter(|m| m.is_finite()).unwrap_or(0.0);
        let max = self.multiplier_max_floor.max(self.learned_uplift_factor * learned.max(declared));
        MultiplierRange::new(self.multiplier_min, max)
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(self.multiplier_min.is_finite() && self.multiplier_min > 0.0) {
            problems.push(format!("bounds.multiplier_min: must be positive, got {}", self.multiplier_min));
        }
        if !(self.multiplier_max_floor.is_finite() && self.multiplier_max_floor >= self.multiplier_min) {
            problems.push(format!(
                "bounds.multiplier_max_floor: must be at least multiplier_min, got {}",
                self.multiplier_max_floor
            ));
        }
        if !(self.learned_uplift_factor.is_finite() && self.learned_uplift_factor >= 0.0) {
            problems.push(format!(
                "bounds.learned_uplift_factor: must be non-negative, got {}",
                self.learned_uplift_factor
            ));
        }
        for (kind, range) in &self.per_kind {
            if !range.is_valid() {
                problems.push(format!("bounds.per_kind[{kind}]: need 0 < min <= max, got {range}"));
            }
        }
        if !(self.drift.is_valid() && self.drift.contains(1.0)) {
            problems.push(format!("bounds.drift: need 0 < min <= 1 <= max, got {}", self.drift));
        }
        if !(self.max_ratio.is_finite() && self.max_ratio >= 1.0) {
            problems.push(format!("bounds.max_ratio: must be at least 1, got {}", self.max_ratio));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prescale_core::{KindUplift, UpliftObservation};

    fn table(kind: &str, uplift: f64) -> UpliftTable {
        let obs = UpliftObservation {
            event_id: "past".into(),
            date: "2026-01-01T12:00:00Z".parse().unwrap(),
            uplift,
            lead_steps: 1,
            lag_steps: 2,
        };
        let mut t = UpliftTable { step_secs: 300, kinds: BTreeMap::new() };
        t.kinds.insert(kind.into(), KindUplift::from_observations(vec![obs]).unwrap());
        t
    }

    #[test]
    fn multiplier_range_follows_learned_uplift_and_overrides() {
        let mut b = LlmBounds::default();
        assert_eq!(b.multiplier_range("match", &UpliftTable::default(), None), MultiplierRange::new(0.5, 3.0));
        assert_eq!(b.multiplier_range("match", &table("match", 4.0), None), MultiplierRange::new(0.5, 6.0));
        assert_eq!(b.multiplier_range("match", &table("match", 1.2), Some(4.0)), MultiplierRange::new(0.5, 6.0));
        b.per_kind.insert("match".into(), MultiplierRange::new(1.0, 2.0));
        assert_eq!(b.multiplier_range("match", &table("match", 4.0), None), MultiplierRange::new(1.0, 2.0));
    }

    #[test]
    fn deadline_is_a_third_of_the_tick_capped_at_twenty_seconds() {
        let mut c = LlmConfig::new("http://localhost:11434/v1", "qwen2.5:7b");
        assert_eq!(c.deadline(), Duration::from_secs(20));
        c.tick = Duration::from_secs(30);
        assert_eq!(c.deadline(), Duration::from_secs(10));
    }

    #[test]
    fn validate_names_every_bad_field() {
        let mut c = LlmConfig::new("ftp://x", "");
        c.api_key_env = Some("A".into());
        c.api_key_file = Some("/k".into());
        c.bounds.max_ratio = 0.5;
        let msg = c.validate().unwrap_err().to_string();
        for field in ["model", "endpoint", "api_key_file", "bounds.max_ratio"] {
            assert!(msg.contains(field), "{field} missing from {msg}");
        }
        assert!(LlmConfig::new("http://localhost:8000/v1", "m").validate().is_ok());
    }
}
