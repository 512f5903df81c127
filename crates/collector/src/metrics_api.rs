//! [`MetricsApiSource`]: pod CPU and memory from the `metrics.k8s.io/v1beta1` API (what
//! metrics-server serves, and what `kubectl top` reads), summed over the workload's pods.
//!
//! The API only knows "now" (averaged over its own window), so each read adds one sample,
//! and range answers lay the samples on their grid (see [`crate::samples`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use prescale_core::{SharedClock, TimeSeries, WorkloadRef};
use serde_json::Value;

use crate::kube_pods::{KubePods, kube_error};
use crate::samples::Samples;
use crate::{CollectorError, MetricSource, Signal};

/// Resource use of a workload's pods at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodResources {
    /// CPU in use, cores, summed over the pods.
    pub cpu_cores: f64,
    /// Memory working set, bytes, summed over the pods.
    pub memory_bytes: f64,
    /// Pods the metrics API reported.
    pub pods: usize,
}

/// Reads [`Signal::Cpu`] and [`Signal::Memory`] from `metrics.k8s.io`.
pub struct MetricsApiSource {
    pods: KubePods,
    clock: SharedClock,
    retention: Duration,
    samples: Mutex<HashMap<WorkloadRef, BTreeMap<Signal, Samples>>>,
}

impl std::fmt::Debug for MetricsApiSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsApiSource")
    }
}

fn pod_metrics_resource() -> ApiResource {
    ApiResource {
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "metrics.k8s.io/v1beta1".into(),
        kind: "PodMetrics".into(),
        plural: "pods".into(),
    }
}

/// A Kubernetes quantity (`250m`, `500000000n`, `64Mi`, `1.5G`, `1e3`) as a number.
pub(crate) fn parse_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    const SUFFIXES: [(&str, f64); 16] = [
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("Pi", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("Ei", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
        ("", 1.0),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(number) = text.strip_suffix(suffix)
            && let Ok(n) = number.parse::<f64>()
            && n.is_finite()
        {
            return Some(n * factor);
        }
    }
    None
}

impl MetricsApiSource {
    /// A source over the pods `pods` lists, keeping three hours of samples per workload.
    pub fn new(pods: KubePods, clock: SharedClock) -> Self {
        Self { pods, clock, retention: Duration::hours(3), samples: Mutex::new(HashMap::new()) }
    }

    /// CPU and memory of the workload's pods now.
    pub async fn resources(&self, workload: &WorkloadRef) -> Result<PodResources, CollectorError> {
        let selector = self.pods.selector(workload).await?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.pods.client().clone(), &workload.namespace, &pod_metrics_resource());
        let what = format!("metrics.k8s.io pods of {workload}");
        let list = api.list(&ListParams::default().labels(&selector)).await.map_err(|e| kube_error(&what, e))?;
        let mut out = PodResources { cpu_cores: 0.0, memory_bytes: 0.0, pods: 0 };
        for item in &list.items {
            out.pods += 1;
            let containers = item.data.get("containers").and_then(Value::as_array).cloned().unwrap_or_default();
            for c in containers {
                let usage =
                    |key: &str| c.pointer(&format!("/usage/{key}")).and_then(Value::as_str).and_then(parse_quantity);
                out.cpu_cores += usage("cpu").unwrap_or(0.0);
                out.memory_bytes += usage("memory").unwrap_or(0.0);
            }
        }
        if out.pods == 0 {
            return Err(CollectorError::EmptyResult { query: what });
        }
        Ok(out)
    }

    async fn sample(&self, workload: &WorkloadRef) -> Result<PodResources, CollectorError> {
        let r = self.resources(workload).await?;
        let now = self.clock.now();
        let mut map = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let signals = map.entry(workload.clone()).or_default();
        signals.entry(Signal::Cpu).or_insert_with(|| Samples::new(self.retention)).push(now, r.cpu_cores);
        signals.entry(Signal::Memory).or_insert_with(|| Samples::new(self.retention)).push(now, r.memory_bytes);
        Ok(r)
    }

    fn check_signal(signal: Signal) -> Result<(), CollectorError> {
        match signal {
            Signal::Cpu | Signal::Memory => Ok(()),
            other => Err(CollectorError::UnsupportedSignal { signal: other, source_name: "metrics.k8s.io".into() }),
        }
    }
}

#[async_trait]
impl MetricSource for MetricsApiSource {
    async fn range(
        &self,
        workload: &WorkloadRef,
        signal: Signal,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: Duration,
    ) -> Result<TimeSeries, CollectorError> {
        Self::check_signal(signal)?;
        self.sample(workload).await?;
        let map = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(workload).and_then(|s| s.get(&signal)) {
            Some(samples) => samples.series(from, to, step),
            None => Samples::new(self.retention).series(from, to, step),
        }
    }

    async fn instant(
        &self,
        workload: &WorkloadRef,
        signal: Signal,
        _at: DateTime<Utc>,
    ) -> Result<Option<f64>, CollectorError> {
        Self::check_signal(signal)?;
        let r = self.sample(workload).await?;
        Ok(Some(if signal == Signal::Cpu { r.cpu_cores } else { r.memory_bytes }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_in_every_unit() {
        assert_eq!(parse_quantity("500000000n"), Some(0.5));
        assert_eq!(parse_quantity("250m"), Some(0.25));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("65536Ki"), Some(64.0 * 1024.0 * 1024.0));
        assert_eq!(parse_quantity("1.5G"), Some(1.5e9));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("lots"), None);
    }
}
