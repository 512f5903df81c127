//! The signals a metric source serves, and the PromQL templates that fetch them.

use serde::{Deserialize, Serialize};

use crate::CollectorError;
use prescale_core::WorkloadRef;

/// A per-workload metric that prescale reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Requests per second, averaged over each step.
    RequestRate,
    /// CPU use in cores, summed over the workload's pods.
    Cpu,
    /// Memory working set in bytes, summed over the workload's pods.
    Memory,
    /// 95th percentile request latency in seconds.
    LatencyP95,
    /// Fraction of requests answered with a 5xx status (0..1).
    ErrorRate,
}

impl Signal {
    /// Every signal, in a fixed order.
    pub const ALL: [Signal; 5] =
        [Signal::RequestRate, Signal::Cpu, Signal::Memory, Signal::LatencyP95, Signal::ErrorRate];

    /// The snake_case name used in configuration and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::RequestRate => "request_rate",
            Signal::Cpu => "cpu",
            Signal::Memory => "memory",
            Signal::LatencyP95 => "latency_p95",
            Signal::ErrorRate => "error_rate",
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// PromQL per signal. `{namespace}` and `{name}` are replaced by the workload's
/// namespace and Deployment name; each query must return a single series.
///
/// Deserializes from a map with any subset of the fields; missing ones keep the default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryTemplates {
    /// Requests per second.
    pub request_rate: String,
    /// CPU cores in use.
    pub cpu: String,
    /// Memory working set in bytes.
    pub memory: String,
    /// 95th percentile latency in seconds.
    pub latency_p95: String,
    /// Fraction of 5xx responses.
    pub error_rate: String,
}

impl Default for QueryTemplates {
    fn default() -> Self {
        Self {
            request_rate: r#"sum(rate(http_requests_total{namespace="{namespace}",pod=~"{name}-.*"}[1m]))"#.into(),
            cpu: r#"sum(rate(container_cpu_usage_seconds_total{namespace="{namespace}",pod=~"{name}-.*",container!=""}[1m]))"#
                .into(),
            memory: r#"sum(container_memory_working_set_bytes{namespace="{namespace}",pod=~"{name}-.*",container!=""})"#.into(),
            latency_p95: r#"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="{namespace}",pod=~"{name}-.*"}[1m])))"#
                .into(),
            error_rate: r#"sum(rate(http_requests_total{namespace="{namespace}",pod=~"{name}-.*",code=~"5.."}[1m])) / sum(rate(http_requests_total{namespace="{namespace}",pod=~"{name}-.*"}[1m]))"#
                .into(),
        }
    }
}

impl QueryTemplates {
    /// The template for `signal`.
    pub fn template(&self, signal: Signal) -> &str {
        match signal {
            Signal::RequestRate => &self.request_rate,
            Signal::Cpu => &self.cpu,
            Signal::Memory => &self.memory,
            Signal::LatencyP95 => &self.latency_p95,
            Signal::ErrorRate => &self.error_rate,
        }
    }

    /// The PromQL for `signal` of `workload`. Names must be Kubernetes names
    /// (lowercase letters, digits, `-`, `.`), so they cannot break out of a label matcher.
    pub fn render(&self, signal: Signal, workload: &WorkloadRef) -> Result<String, CollectorError> {
        check_kubernetes_name(workload, "namespace", &workload.namespace)?;
        check_kubernetes_name(workload, "name", &workload.name)?;
        Ok(self.template(signal).replace("{namespace}", &workload.namespace).replace("{name}", &workload.name))
    }

    /// Checks that every template is non-empty; called when a source is built.
    pub(crate) fn check(&self) -> Result<(), CollectorError> {
        for signal in Signal::ALL {
            if self.template(signal).trim().is_empty() {
                return Err(CollectorError::InvalidConfig(format!("the query template for {signal} is empty")));
            }
        }
        Ok(())
    }
}

/// Longest Kubernetes object name (DNS subdomain).
const MAX_NAME_LEN: usize = 253;

fn check_kubernetes_name(workload: &WorkloadRef, field: &str, value: &str) -> Result<(), CollectorError> {
    let problem = if value.is_empty() {
        Some(format!("{field} must not be empty"))
    } else if value.len() > MAX_NAME_LEN {
        Some(format!("{field} must be at most {MAX_NAME_LEN} characters"))
    } else if !value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.')) {
        Some(format!("{field} {value:?} may contain only lowercase letters, digits, '-' and '.'"))
    } else {
        None
    };
    match problem {
        Some(reason) => Err(CollectorError::InvalidWorkload { workload: workload.to_string(), reason }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_namespace_and_name() {
        let q = QueryTemplates::default().render(Signal::RequestRate, &WorkloadRef::new("shop", "frontend")).unwrap();
        assert_eq!(q, r#"sum(rate(http_requests_total{namespace="shop",pod=~"frontend-.*"}[1m]))"#);
    }

    #[test]
    fn every_default_template_uses_both_placeholders() {
        let t = QueryTemplates::default();
        for signal in Signal::ALL {
            let q = t.render(signal, &WorkloadRef::new("ns1", "app1")).unwrap();
            assert!(q.contains(r#"namespace="ns1""#) && q.contains(r#"pod=~"app1-.*""#), "{signal}: {q}");
            assert!(!q.contains("{name}") && !q.contains("{namespace}"), "{signal}: {q}");
        }
    }

    #[test]
    fn names_that_could_escape_a_matcher_are_rejected() {
        let t = QueryTemplates::default();
        let err = t.render(Signal::Cpu, &WorkloadRef::new("shop", r#"x"}or vector(1)"#)).unwrap_err();
        assert!(matches!(err, CollectorError::InvalidWorkload { .. }), "{err}");
        let err = t.render(Signal::Cpu, &WorkloadRef::new("", "x")).unwrap_err();
        assert!(err.to_string().contains("namespace must not be empty"), "{err}");
    }

    #[test]
    fn partial_yaml_keeps_defaults_and_rejects_typos() {
        let t: QueryTemplates = serde_yaml_ng::from_str("cpu: up{job=\"{name}\"}").unwrap();
        assert_eq!(t.cpu, "up{job=\"{name}\"}");
        assert_eq!(t.memory, QueryTemplates::default().memory);
        assert!(serde_yaml_ng::from_str::<QueryTemplates>("cpuu: x").is_err());
    }

    #[test]
    fn signal_names_match_serde() {
        for s in Signal::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
