//! The daemon's Prometheus metrics, in a registry passed around as a value (never a global).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prescale_core::{ScaleDirection, WorkloadRef};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a per-workload series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkloadLabels {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Deployment name.
    pub workload: String,
}

impl From<&WorkloadRef> for WorkloadLabels {
    fn from(w: &WorkloadRef) -> Self {
        Self { namespace: w.namespace.clone(), workload: w.name.clone() }
    }
}

/// Labels of a per-workload series split by a second dimension.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkloadKindLabels {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Deployment name.
    pub workload: String,
    /// The split: decision direction, failing stage, LLM outcome.
    pub kind: String,
}

impl WorkloadKindLabels {
    fn new(w: &WorkloadRef, kind: &str) -> Self {
        Self { namespace: w.namespace.clone(), workload: w.name.clone(), kind: kind.to_string() }
    }
}

type GaugeF = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 2.0, 12))
}

/// Every metric the daemon exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    forecast_p50: Family<WorkloadLabels, GaugeF>,
    forecast_p90: Family<WorkloadLabels, GaugeF>,
    desired_replicas: Family<WorkloadLabels, Gauge>,
    current_replicas: Family<WorkloadLabels, Gauge>,
    decisions: Family<WorkloadKindLabels, Counter>,
    failures: Family<WorkloadKindLabels, Counter>,
    tick_duration: Histogram,
    llm_calls: Family<WorkloadKindLabels, Counter>,
    llm_fallbacks: Family<WorkloadLabels, Counter>,
    llm_tokens: Family<WorkloadKindLabels, Counter>,
    llm_latency: Family<WorkloadLabels, Histogram, fn() -> Histogram>,
    accuracy_rel_mae: Family<WorkloadLabels, GaugeF>,
    accuracy_bias: Family<WorkloadLabels, GaugeF>,
    cpu_cores: Family<WorkloadLabels, GaugeF>,
    memory_bytes: Family<WorkloadLabels, GaugeF>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered under the `prescale_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("prescale");
        let forecast_p50 = Family::<WorkloadLabels, GaugeF>::default();
        let forecast_p90 = Family::<WorkloadLabels, GaugeF>::default();
        let desired_replicas = Family::<WorkloadLabels, Gauge>::default();
        let current_replicas = Family::<WorkloadLabels, Gauge>::default();
        let decisions = Family::<WorkloadKindLabels, Counter>::default();
        let failures = Family::<WorkloadKindLabels, Counter>::default();
        let tick_duration = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        let llm_calls = Family::<WorkloadKindLabels, Counter>::default();
        let llm_fallbacks = Family::<WorkloadLabels, Counter>::default();
        let llm_tokens = Family::<WorkloadKindLabels, Counter>::default();
        let llm_latency: Family<WorkloadLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        let accuracy_rel_mae = Family::<WorkloadLabels, GaugeF>::default();
        let accuracy_bias = Family::<WorkloadLabels, GaugeF>::default();
        let cpu_cores = Family::<WorkloadLabels, GaugeF>::default();
        let memory_bytes = Family::<WorkloadLabels, GaugeF>::default();
        registry.register(
            "pod_cpu_cores",
            "CPU in use summed over the workload's pods (metrics.k8s.io)",
            cpu_cores.clone(),
        );
        registry.register(
            "pod_memory_bytes",
            "Memory working set summed over the workload's pods (metrics.k8s.io)",
            memory_bytes.clone(),
        );
        registry.register(
            "forecast_p50_requests_per_second",
            "Median forecast at the lead time, in requests per second",
            forecast_p50.clone(),
        );
        registry.register(
            "forecast_p90_requests_per_second",
            "90th percentile forecast at the lead time, in requests per second",
            forecast_p90.clone(),
        );
        registry.register("desired_replicas", "Replicas the policy wants now", desired_replicas.clone());
        registry.register("current_replicas", "Replicas the Deployment has (spec)", current_replicas.clone());
        registry.register("decisions", "Decisions by direction (kind = up, down, hold)", decisions.clone());
        registry.register(
            "workload_failures",
            "Failed stages of a workload's tick (kind = metrics, predictor, actuator, ...)",
            failures.clone(),
        );
        registry.register("tick_duration_seconds", "Duration of one whole tick", tick_duration.clone());
        registry.register("llm_calls", "LLM predictor steps by outcome (kind = ok, fallback)", llm_calls.clone());
        registry.register(
            "llm_fallbacks",
            "Forecasts answered by the fallback of the LLM predictor",
            llm_fallbacks.clone(),
        );
        registry.register(
            "llm_tokens",
            "Tokens used by the LLM predictor, by kind (prompt, completion)",
            llm_tokens.clone(),
        );
        registry.register("llm_latency_seconds", "Duration of the LLM predictor's step", llm_latency.clone());
        registry.register(
            "forecast_rel_mae",
            "Live forecast accuracy: rolling MAE of the forecast made one lead time earlier, relative to daily seasonal naive",
            accuracy_rel_mae.clone(),
        );
        registry.register(
            "forecast_bias",
            "Live forecast bias: rolling mean of (forecast - observed) / mean observed",
            accuracy_bias.clone(),
        );
        Self {
            registry: Arc::new(registry),
            forecast_p50,
            forecast_p90,
            desired_replicas,
            current_replicas,
            decisions,
            failures,
            tick_duration,
            llm_calls,
            llm_fallbacks,
            llm_tokens,
            llm_latency,
            accuracy_rel_mae,
            accuracy_bias,
            cpu_cores,
            memory_bytes,
        }
    }

    /// Record the CPU and memory of a workload's pods.
    pub fn set_resources(&self, w: &WorkloadRef, cpu_cores: f64, memory_bytes: f64) {
        self.cpu_cores.get_or_create(&w.into()).set(cpu_cores);
        self.memory_bytes.get_or_create(&w.into()).set(memory_bytes);
    }

    /// The registry in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Record the forecast at the lead time (requests per second).
    pub fn set_forecast(&self, w: &WorkloadRef, p50: f64, p90: f64) {
        self.forecast_p50.get_or_create(&w.into()).set(p50);
        self.forecast_p90.get_or_create(&w.into()).set(p90);
    }

    /// Record desired and current replicas and count the decision's direction.
    pub fn record_decision(&self, w: &WorkloadRef, current: u32, desired: u32, direction: ScaleDirection) {
        self.desired_replicas.get_or_create(&w.into()).set(i64::from(desired));
        self.current_replicas.get_or_create(&w.into()).set(i64::from(current));
        self.decisions.get_or_create(&WorkloadKindLabels::new(w, direction.as_str())).inc();
    }

    /// Count a failed stage of a workload's tick.
    pub fn record_failure(&self, w: &WorkloadRef, stage: &str) {
        self.failures.get_or_create(&WorkloadKindLabels::new(w, stage)).inc();
    }

    /// Record one whole tick's duration.
    pub fn observe_tick(&self, seconds: f64) {
        self.tick_duration.observe(seconds);
    }

    /// Record one LLM predictor step: its latency, whether its fallback answered, and the
    /// (prompt, completion) tokens it used.
    pub fn record_llm(&self, w: &WorkloadRef, seconds: f64, fell_back: bool, tokens: Option<(u64, u64)>) {
        let outcome = if fell_back { "fallback" } else { "ok" };
        self.llm_calls.get_or_create(&WorkloadKindLabels::new(w, outcome)).inc();
        if fell_back {
            self.llm_fallbacks.get_or_create(&w.into()).inc();
        }
        if let Some((prompt, completion)) = tokens {
            self.llm_tokens.get_or_create(&WorkloadKindLabels::new(w, "prompt")).inc_by(prompt);
            self.llm_tokens.get_or_create(&WorkloadKindLabels::new(w, "completion")).inc_by(completion);
        }
        self.llm_latency.get_or_create(&w.into()).observe(seconds);
    }

    /// Record the live accuracy of a workload's forecasts.
    pub fn set_accuracy(&self, w: &WorkloadRef, rel_mae: Option<f64>, bias: Option<f64>) {
        if let Some(r) = rel_mae {
            self.accuracy_rel_mae.get_or_create(&w.into()).set(r);
        }
        if let Some(b) = bias {
            self.accuracy_bias.get_or_create(&w.into()).set(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_encoded_with_workload_labels() {
        let m = Metrics::new();
        let w = WorkloadRef::new("shop", "frontend");
        m.record_decision(&w, 2, 5, ScaleDirection::Up);
        m.set_forecast(&w, 10.5, 12.0);
        m.record_llm(&w, 0.3, true, Some((900, 120)));
        m.set_accuracy(&w, Some(0.8), Some(-0.05));
        let text = m.encode();
        for needle in [
            r#"prescale_desired_replicas{namespace="shop",workload="frontend"} 5"#,
            r#"prescale_decisions_total{namespace="shop",workload="frontend",kind="up"} 1"#,
            r#"prescale_forecast_p90_requests_per_second{namespace="shop",workload="frontend"} 12.0"#,
            r#"prescale_llm_tokens_total{namespace="shop",workload="frontend",kind="prompt"} 900"#,
            r#"prescale_llm_tokens_total{namespace="shop",workload="frontend",kind="completion"} 120"#,
            r#"prescale_llm_fallbacks_total{namespace="shop",workload="frontend"} 1"#,
            r#"prescale_forecast_rel_mae{namespace="shop",workload="frontend"} 0.8"#,
            "prescale_tick_duration_seconds_count 0",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
