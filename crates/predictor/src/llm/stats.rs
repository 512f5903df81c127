//! Counters of the LLM predictor, read as a snapshot (no global registry).
//!
//! The daemon turns an [`LlmStats`] snapshot into metrics; label values are stable
//! snake_case keys.

use std::collections::BTreeMap;
use std::time::Duration;

/// Upper bounds (seconds) of the call-latency histogram buckets; a last bucket holds the rest.
pub const LATENCY_BUCKETS_SECS: [f64; 8] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0];

/// A snapshot of the LLM predictor's counters since it was built.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LlmStats {
    /// HTTP calls by outcome: `ok`, `rate_limited`, `server_error`, `timeout`,
    /// `connection_error`, `auth_error`, `not_found`, `insufficient_quota`, `bad_request`,
    /// `schema_unsupported`, `invalid_response`.
    pub calls: BTreeMap<String, u64>,
    /// Forecasts by path: `llm` (fresh answer), `llm_cached`, `fallback`.
    pub forecasts: BTreeMap<String, u64>,
    /// Fallbacks by reason: `no_events` (nothing to ask about), `circuit_open`, `rejected`,
    /// `baseline_failed`, `baseline_invalid`, `no_traffic_level`, and the call outcomes above.
    pub fallbacks: BTreeMap<String, u64>,
    /// Rejected answers by the rule they broke (`multiplier_bounds`, `unknown_event`,
    /// `refusal`, `finish_length`, `series_above_cap`, ...), repaired ones included.
    pub validation_failures: BTreeMap<String, u64>,
    /// `usage.prompt_tokens` summed over every call.
    pub prompt_tokens: u64,
    /// `usage.completion_tokens` summed over every call.
    pub completion_tokens: u64,
    /// Times the circuit breaker opened.
    pub breaker_opened: u64,
    /// Latency of HTTP calls.
    pub latency: LatencyHistogram,
}

/// A latency histogram over [`LATENCY_BUCKETS_SECS`].
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyHistogram {
    /// Calls per bucket (not cumulative); one more entry than `LATENCY_BUCKETS_SECS`, the last
    /// for calls slower than every bound.
    pub counts: Vec<u64>,
    /// Sum of all latencies, in seconds.
    pub sum_secs: f64,
    /// Number of calls observed.
    pub count: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self { counts: vec![0; LATENCY_BUCKETS_SECS.len() + 1], sum_secs: 0.0, count: 0 }
    }
}

impl LatencyHistogram {
    fn observe(&mut self, latency: Duration) {
        let secs = latency.as_secs_f64();
        let bucket = LATENCY_BUCKETS_SECS.iter().position(|b| secs <= *b).unwrap_or(LATENCY_BUCKETS_SECS.len());
        if let Some(c) = self.counts.get_mut(bucket) {
            *c += 1;
        }
        self.sum_secs += secs;
        self.count += 1;
    }
}

impl LlmStats {
    pub(crate) fn call(&mut self, outcome: &str, latency: Duration) {
        bump(&mut self.calls, outcome);
        self.latency.observe(latency);
    }

    pub(crate) fn forecast(&mut self, path: &str) {
        bump(&mut self.forecasts, path);
    }

    pub(crate) fn fallback(&mut self, reason: &str) {
        bump(&mut self.fallbacks, reason);
    }

    pub(crate) fn rejected(&mut self, rule: &str) {
        bump(&mut self.validation_failures, rule);
    }

    pub(crate) fn tokens(&mut self, prompt: u64, completion: u64) {
        self.prompt_tokens += prompt;
        self.completion_tokens += completion;
    }
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    *map.entry(key.to_string()).or_default() += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_lands_in_its_bucket() {
        let mut s = LlmStats::default();
        s.call("ok", Duration::from_millis(300));
        s.call("timeout", Duration::from_secs(30));
        assert_eq!(s.latency.counts[2], 1);
        assert_eq!(s.latency.counts[LATENCY_BUCKETS_SECS.len()], 1);
        assert_eq!(s.latency.count, 2);
        assert_eq!(s.calls["ok"], 1);
    }
}
