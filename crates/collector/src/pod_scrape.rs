//! [`PodScrapeSource`]: a [`MetricSource`] for clusters without Prometheus. It lists the
//! workload's Ready pods through the Kubernetes API and reads each pod's Prometheus-text
//! `/metrics`: the request counter (`http_requests_total{code}`) gives the request and
//! error rates, the latency histogram (`http_request_duration_seconds`) the p95.
//!
//! A scrape sees counters, not rates: each read compares every pod's counters with its
//! previous read and records one sample per signal, which range answers lay on their grid
//! (see [`crate::samples`]). The first read of a workload therefore yields no rate yet.
//!
//! Rates are per REAL second, measured with [`std::time::Instant`], never with the clock:
//! a pod serves real requests in real time, so its throughput (and the capacity per pod the
//! policy divides by) is physical. Under the harness' scaled clock (60 clock seconds per wall
//! second) dividing by clock time would understate every rate 60-fold. Sample TIMES are clock
//! time, so they line up with the daemon's history grid.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use prescale_core::{SharedClock, TimeSeries, WorkloadRef};
use tokio::task::JoinSet;

use crate::exposition::{self, Sample};
use crate::kube_pods::{KubePods, PodEndpoint};
use crate::samples::Samples;
use crate::{CollectorError, MetricSource, Signal};

/// How to scrape the pods.
#[derive(Debug, Clone, PartialEq)]
pub struct PodScrapeConfig {
    /// Metrics port of a pod without the port annotation.
    pub port: u16,
    /// Pod annotation naming its metrics port, e.g. `prometheus.io/port`; wins over `port`.
    pub port_annotation: Option<String>,
    /// Path of the metrics endpoint.
    pub path: String,
    /// Deadline of one pod's scrape.
    pub timeout: StdDuration,
    /// Counter of requests by status code (`code` label).
    pub requests_metric: String,
    /// Histogram of request durations in seconds.
    pub latency_metric: String,
    /// Reads of one workload closer together than this (real time) reuse the last samples.
    pub min_interval: StdDuration,
    /// How much clock time of samples is kept per workload.
    pub retention: Duration,
}

impl Default for PodScrapeConfig {
    fn default() -> Self {
        Self {
            port: 8080,
            port_annotation: Some("prometheus.io/port".into()),
            path: "/metrics".into(),
            timeout: StdDuration::from_secs(5),
            requests_metric: "http_requests_total".into(),
            latency_metric: "http_request_duration_seconds".into(),
            min_interval: StdDuration::from_millis(100),
            retention: Duration::hours(3),
        }
    }
}

/// Counters of one pod at one read.
#[derive(Debug, Clone)]
struct PodReading {
    at: Instant,
    requests: f64,
    errors: f64,
    buckets: Vec<(f64, f64)>,
}

/// One workload's scrape memory.
#[derive(Debug)]
struct WorkloadScrape {
    last_read: Option<(Instant, DateTime<Utc>)>,
    pods: HashMap<String, PodReading>,
    samples: BTreeMap<Signal, Samples>,
}

/// Reads request rate, error rate and p95 latency from the workload's Ready pods.
pub struct PodScrapeSource {
    pods: KubePods,
    http: reqwest::Client,
    config: PodScrapeConfig,
    clock: SharedClock,
    workloads: Mutex<HashMap<WorkloadRef, Arc<tokio::sync::Mutex<WorkloadScrape>>>>,
}

impl std::fmt::Debug for PodScrapeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodScrapeSource").field("config", &self.config).finish_non_exhaustive()
    }
}

/// What one pass over the pods measured.
#[derive(Debug, Default, PartialEq)]
struct Rates {
    requests_per_second: Option<f64>,
    error_rate: Option<f64>,
    latency_p95: Option<f64>,
}

fn reading(samples: &[Sample], config: &PodScrapeConfig, at: Instant) -> Result<PodReading, String> {
    let counters: Vec<&Sample> = samples.iter().filter(|s| s.name == config.requests_metric).collect();
    if counters.is_empty() {
        return Err(format!("no {} counter", config.requests_metric));
    }
    let requests = counters.iter().map(|s| s.value).sum();
    let errors =
        counters.iter().filter(|s| s.labels.get("code").is_some_and(|c| c.starts_with('5'))).map(|s| s.value).sum();
    Ok(PodReading { at, requests, errors, buckets: exposition::buckets(samples, &config.latency_metric) })
}

/// A counter's increase; a smaller value means the process restarted and counts from zero.
fn increase(now: f64, before: f64) -> f64 {
    if now >= before { now - before } else { now }
}

/// Rates from this read's counters against the previous ones. Ready pods without a usable
/// difference (new, or their scrape failed) are assumed to carry the mean load of the others,
/// since the Service balances over Ready pods: an undercount would look like falling load.
fn rates(previous: &HashMap<String, PodReading>, current: &HashMap<String, PodReading>, ready: usize) -> Rates {
    let mut rate = 0.0;
    let mut requests = 0.0;
    let mut errors = 0.0;
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    let mut measured = 0usize;
    for (name, now) in current {
        let Some(before) = previous.get(name) else {
            continue;
        };
        let seconds = now.at.duration_since(before.at).as_secs_f64();
        if seconds <= 0.0 {
            continue;
        }
        measured += 1;
        let delta = increase(now.requests, before.requests);
        rate += delta / seconds;
        requests += delta;
        errors += increase(now.errors, before.errors).min(delta);
        for &(bound, count) in &now.buckets {
            let old = before.buckets.iter().find(|(b, _)| *b == bound).map_or(0.0, |(_, c)| *c);
            let d = increase(count, old);
            match buckets.iter_mut().find(|(b, _)| *b == bound) {
                Some((_, c)) => *c += d,
                None => buckets.push((bound, d)),
            }
        }
    }
    if measured == 0 {
        return Rates::default();
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    Rates {
        requests_per_second: Some(rate * ready.max(measured) as f64 / measured as f64),
        error_rate: (requests > 0.0).then(|| errors / requests),
        latency_p95: exposition::quantile(&buckets, 0.95),
    }
}

impl PodScrapeSource {
    /// A source reading the pods `pods` lists. The process must have installed a rustls
    /// crypto provider (the HTTP client is built on rustls without one of its own).
    pub fn new(pods: KubePods, config: PodScrapeConfig, clock: SharedClock) -> Result<Self, CollectorError> {
        if !config.path.starts_with('/') {
            return Err(CollectorError::InvalidConfig(format!("scrape path {:?} must start with '/'", config.path)));
        }
        if config.timeout.is_zero() {
            return Err(CollectorError::InvalidConfig("scrape timeout must be positive".into()));
        }
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            return Err(CollectorError::InvalidConfig(
                "no rustls crypto provider is installed; call rustls::crypto::ring::default_provider().install_default()"
                    .into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| CollectorError::InvalidConfig(format!("HTTP client: {e}")))?;
        Ok(Self { pods, http, config, clock, workloads: Mutex::new(HashMap::new()) })
    }

    fn state(&self, workload: &WorkloadRef) -> Arc<tokio::sync::Mutex<WorkloadScrape>> {
        let mut map = self.workloads.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(workload.clone())
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(WorkloadScrape {
                    last_read: None,
                    pods: HashMap::new(),
                    samples: BTreeMap::new(),
                }))
            })
            .clone()
    }

    fn url(&self, pod: &PodEndpoint) -> Option<String> {
        let ip = pod.ip?;
        let port = self
            .config
            .port_annotation
            .as_ref()
            .and_then(|key| pod.annotations.get(key))
            .and_then(|p| p.trim().parse::<u16>().ok())
            .unwrap_or(self.config.port);
        let host = match ip {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        };
        Some(format!("http://{host}:{port}{}", self.config.path))
    }

    /// Read every Ready pod once and record the samples (unless the last read is too recent).
    async fn read(&self, workload: &WorkloadRef, scrape: &mut WorkloadScrape) -> Result<(), CollectorError> {
        if scrape.last_read.is_some_and(|(at, _)| at.elapsed() < self.config.min_interval) {
            return Ok(());
        }
        let pods: Vec<PodEndpoint> = self.pods.pods(workload).await?.into_iter().filter(|p| p.ready).collect();
        let mut tasks = JoinSet::new();
        for pod in &pods {
            let Some(url) = self.url(pod) else {
                continue;
            };
            let (http, name, config) = (self.http.clone(), pod.name.clone(), self.config.clone());
            tasks.spawn(async move {
                let result = async {
                    let response = http.get(&url).send().await.map_err(|e| e.to_string())?;
                    if !response.status().is_success() {
                        return Err(format!("HTTP {}", response.status().as_u16()));
                    }
                    let text = response.text().await.map_err(|e| e.to_string())?;
                    reading(&exposition::parse(&text), &config, Instant::now())
                }
                .await;
                (name, url, result)
            });
        }
        let mut current = HashMap::new();
        let mut failures = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((name, _, Ok(r))) => {
                    current.insert(name, r);
                }
                Ok((name, url, Err(e))) => failures.push(format!("{name} ({url}): {e}")),
                Err(e) => failures.push(format!("scrape task: {e}")),
            }
        }
        if current.is_empty() && !failures.is_empty() {
            return Err(CollectorError::Transport {
                url: format!("pods of {workload}"),
                message: format!("every scrape failed: {}", failures.join("; ")),
            });
        }
        if !failures.is_empty() {
            tracing::debug!(workload = %workload, failures = ?failures, "some pods could not be scraped");
        }
        let now = self.clock.now();
        let measured = rates(&scrape.pods, &current, pods.len());
        // The rates describe the interval since the last read: date them at its middle.
        let at = match scrape.last_read {
            Some((_, before)) => before + (now - before) / 2,
            None => now,
        };
        let keep = self.config.retention;
        for (signal, value) in [
            (Signal::RequestRate, measured.requests_per_second),
            (Signal::ErrorRate, measured.error_rate),
            (Signal::LatencyP95, measured.latency_p95),
        ] {
            if let Some(v) = value {
                scrape.samples.entry(signal).or_insert_with(|| Samples::new(keep)).push(at, v);
            }
        }
        // Pods that failed this time keep their previous reading for the next difference.
        for (name, before) in std::mem::take(&mut scrape.pods) {
            if !current.contains_key(&name) && pods.iter().any(|p| p.name == name) {
                current.insert(name, before);
            }
        }
        scrape.pods = current;
        scrape.last_read = Some((Instant::now(), now));
        Ok(())
    }

    fn check_signal(signal: Signal) -> Result<(), CollectorError> {
        match signal {
            Signal::RequestRate | Signal::ErrorRate | Signal::LatencyP95 => Ok(()),
            Signal::Cpu | Signal::Memory => {
                Err(CollectorError::UnsupportedSignal { signal, source_name: "pod scrape (use metrics.k8s.io)".into() })
            }
        }
    }
}

#[async_trait]
impl MetricSource for PodScrapeSource {
    async fn range(
        &self,
        workload: &WorkloadRef,
        signal: Signal,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: Duration,
    ) -> Result<TimeSeries, CollectorError> {
        Self::check_signal(signal)?;
        let state = self.state(workload);
        let mut scrape = state.lock().await;
        self.read(workload, &mut scrape).await?;
        match scrape.samples.get(&signal) {
            Some(samples) => samples.series(from, to, step),
            None => Samples::new(self.config.retention).series(from, to, step),
        }
    }

    async fn instant(
        &self,
        workload: &WorkloadRef,
        signal: Signal,
        at: DateTime<Utc>,
    ) -> Result<Option<f64>, CollectorError> {
        Self::check_signal(signal)?;
        let state = self.state(workload);
        let mut scrape = state.lock().await;
        self.read(workload, &mut scrape).await?;
        Ok(scrape.samples.get(&signal).and_then(Samples::latest).filter(|(t, _)| *t <= at).map(|(_, v)| v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(at: Instant, requests: f64, errors: f64, buckets: Vec<(f64, f64)>) -> PodReading {
        PodReading { at, requests, errors, buckets }
    }

    #[test]
    fn rates_are_per_real_second_across_pods_with_resets_and_missing_pods() {
        let t0 = Instant::now();
        let t1 = t0 + StdDuration::from_secs(2);
        let before: HashMap<String, PodReading> = [
            ("a".to_string(), pod(t0, 100.0, 0.0, vec![(0.1, 90.0), (f64::INFINITY, 100.0)])),
            ("b".to_string(), pod(t0, 50.0, 5.0, vec![(0.1, 50.0), (f64::INFINITY, 50.0)])),
        ]
        .into();
        let after: HashMap<String, PodReading> = [
            // +20 requests in 2 s, 10 of them slow.
            ("a".to_string(), pod(t1, 120.0, 0.0, vec![(0.1, 100.0), (f64::INFINITY, 120.0)])),
            // Restarted: counts from zero, 20 requests, 4 errors.
            ("b".to_string(), pod(t1, 20.0, 4.0, vec![(0.1, 20.0), (f64::INFINITY, 20.0)])),
            // New pod: no difference yet.
            ("c".to_string(), pod(t1, 7.0, 0.0, vec![])),
        ]
        .into();
        let r = rates(&before, &after, 3);
        // (10 + 10) rps measured on 2 pods, 3 Ready: 30 rps.
        assert!((r.requests_per_second.unwrap() - 30.0).abs() < 1e-9, "{r:?}");
        assert!((r.error_rate.unwrap() - 0.1).abs() < 1e-9, "4 of 40");
        // 30 of 40 under 0.1 s: the 95th percentile lies in the +Inf bucket.
        assert_eq!(r.latency_p95, Some(0.1));
        assert_eq!(rates(&HashMap::new(), &after, 3), Rates::default(), "the first read has no rate");
    }

    #[test]
    fn a_pod_without_the_counter_is_an_error() {
        let samples = exposition::parse("other_metric 1\n");
        let err = reading(&samples, &PodScrapeConfig::default(), Instant::now()).unwrap_err();
        assert!(err.contains("http_requests_total"), "{err}");
    }
}
